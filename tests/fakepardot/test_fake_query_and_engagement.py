"""Contract: the prospect query, list membership and external activities
(PARDOT_API.md, "Query", "List membership", "External activities").

Evidence: grouparoo/grouparoo ``plugins/@grouparoo/pardot/__tests__/fixtures/export/
export-records.js`` (recorded v4 traffic, 2021) — a prospect query with ``output=mobile``
answers id, first_name, last_name, email and company; a list membership carries
``opted_out: false``, a JSON boolean (PARDOT_API.md, "List membership": RECORDED).
A query's prospects carry no profile, visitors or lists (Pardot's v4 query docs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fakepardot import DEMO, FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot


@pytest.fixture
def three(fake: FakePardot) -> list[dict[str, Any]]:
    return [
        fake.state.add_prospect(
            "v4", email=f"q{month}@example.com", created_at=stamp, updated_at=stamp
        )
        for month, stamp in (
            (1, "2024-01-01 10:00:00"),
            (2, "2024-02-01 10:00:00"),
            (3, "2024-03-01 10:00:00"),
        )
    ]


def test_query_returns_total_and_a_list(v4: Pardot, three: list[dict[str, Any]]) -> None:
    result = v4.ok("query", sort_by="id", sort_order="ascending")["result"]
    assert result["total_results"] == 3
    assert [p["id"] for p in result["prospect"]] == [p["id"] for p in three]


def test_query_prospect_is_an_object_for_one_and_absent_for_none(
    v4: Pardot, three: list[dict[str, Any]]
) -> None:
    one = v4.ok("query", id_greater_than=three[1]["id"])["result"]
    relations = ("profile", "visitors", "visitor_activities", "lists")
    simple = {k: v for k, v in three[2].items() if k not in relations}
    assert one == {"total_results": 1, "prospect": simple}
    none = v4.ok("query", created_after="2030-01-01")["result"]
    assert none == {"total_results": 0}


def test_query_filters_by_created_after(v4: Pardot, three: list[dict[str, Any]]) -> None:
    result = v4.ok("query", created_after="2024-01-15", sort_by="created_at")["result"]
    assert [p["email"] for p in result["prospect"]] == ["q3@example.com", "q2@example.com"]


def test_query_filters_by_updated_after(v4: Pardot, three: list[dict[str, Any]]) -> None:
    v4.ok("update", "id", three[0]["id"], city="Now")
    cutoff = "2025-01-01 00:00:00"
    result = v4.ok("query", updated_after=cutoff)["result"]
    assert (result["total_results"], result["prospect"]["city"]) == (1, "Now")


def test_query_limit_offset_and_total(v4: Pardot, three: list[dict[str, Any]]) -> None:
    result = v4.ok("query", sort_by="id", sort_order="ascending", limit=1, offset=1)["result"]
    assert result["total_results"] == 3
    assert result["prospect"]["id"] == three[1]["id"]


def test_query_limit_above_200_is_err_23(v4: Pardot) -> None:
    assert v4.fails(23, "query", limit=201) == "Invalid value specified for limit"
    v4.ok("query", limit=200)


def test_query_fields_narrows_each_prospect(v4: Pardot, three: list[dict[str, Any]]) -> None:
    result = v4.ok("query", fields="email", limit=1, sort_by="id", sort_order="ascending")
    assert result["result"]["prospect"] == {"id": three[0]["id"], "email": "q1@example.com"}


def test_query_output_mobile_answers_five_fields(v4: Pardot, three: list[dict[str, Any]]) -> None:
    """RECORDED (a query with ``output=mobile``)."""
    result = v4.ok("query", output="mobile", id_greater_than=three[1]["id"])["result"]
    assert result["prospect"] == {
        "id": three[2]["id"],
        "first_name": None,
        "last_name": None,
        "email": "q3@example.com",
        "company": None,
    }


def test_query_prospects_carry_no_relations(v4: Pardot, three: list[dict[str, Any]]) -> None:
    for prospect in v4.ok("query")["result"]["prospect"]:
        assert not {"profile", "visitors", "visitor_activities", "lists"} & set(prospect)
        assert prospect["campaign"] == {"id": 1001, "name": "Campaign 1001"}


def test_query_bad_sort_is_refused(v4: Pardot) -> None:
    v4.fails(19, "query", sort_by="org_id")
    v4.fails(20, "query", sort_order="sideways")


# --- list membership -------------------------------------------------------------------


def test_list_membership_create(v4: Pardot, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect("v4", email="l@example.com")
    document = v4.ok("create", "list_id", 502, "prospect_id", prospect["id"], obj="listMembership")
    membership = document["list_membership"]
    assert (membership["list_id"], membership["prospect_id"]) == (502, prospect["id"])
    assert list(membership) == [
        "id",
        "list_id",
        "prospect_id",
        "opted_out",
        "created_at",
        "updated_at",
    ]
    assert membership["opted_out"] is False  # a JSON boolean (RECORDED), not 1/null
    assert fake.state.list_members("v4", 502) == [prospect["id"]]


def test_list_membership_read_carries_opted_out_false(v4: Pardot, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect("v4", email="r@example.com")
    fake.state.add_list_member("v4", 501, prospect["id"])
    document = v4.ok("read", "list_id", 501, "prospect_id", prospect["id"], obj="listMembership")
    assert document["list_membership"]["opted_out"] is False


def test_list_membership_twice_is_err_58(v4: Pardot, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect("v4", email="l@example.com")
    fake.state.add_list_member("v4", 501, prospect["id"])
    text = v4.fails(
        58, "create", "list_id", 501, "prospect_id", prospect["id"], obj="listMembership"
    )
    assert text == "That prospect is already a memeber of that list. Update the membership instead."


def test_list_membership_unknown_list_is_err_55(v4: Pardot, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect("v4", email="l@example.com")
    text = v4.fails(
        55, "create", "list_id", 999, "prospect_id", prospect["id"], obj="listMembership"
    )
    assert text == "Invalid list ID"


def test_list_membership_unknown_prospect_is_err_3(v4: Pardot) -> None:
    v4.fails(3, "create", "list_id", 501, "prospect_id", 424242, obj="listMembership")


# --- list reads (track checks a mapping's lists before any write) --------------------------

#: A list record's keys, in Pardot's order (RECORDED: the answer of list/version/4/do/create
#: in grouparoo's Pardot fixtures; a read answers the same ``list`` element, Pardot's docs).
LIST_KEYS = [
    "id",
    "name",
    "is_public",
    "is_dynamic",
    "title",
    "description",
    "is_crm_visible",
    "created_at",
    "updated_at",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_list_read_answers_the_list(v4: Pardot, method: str) -> None:
    response = v4.call("read", "id", 501, obj="list", method=method)
    document = response.json()
    assert response.status_code == 200, response.text
    assert document["@attributes"] == {"stat": "ok", "version": 1}
    assert list(document["list"]) == LIST_KEYS
    assert document["list"]["id"] == 501 and document["list"]["is_dynamic"] is False


def test_list_read_of_an_unknown_list_is_err_55(v4: Pardot, fake: FakePardot) -> None:
    assert v4.fails(55, "read", "id", 999, obj="list") == "Invalid list ID"
    fake.state.configure_account("v4", lists=[501])
    v4.fails(55, "read", "id", 502, obj="list")  # a list taken away is gone


def test_list_read_without_an_id_is_err_parameter_missing(v4: Pardot) -> None:
    v4.fails(13, "read", obj="list")


def test_list_read_v5_answers_the_fields_asked(v4: Pardot, http: httpx.Client) -> None:
    response = http.get("/api/v5/objects/lists/502?fields=id,name", headers=v4.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": 502, "name": "List 502"}


def test_list_read_v5_of_an_unknown_list_is_404_code_109(v4: Pardot, http: httpx.Client) -> None:
    response = http.get("/api/v5/objects/lists/999?fields=id", headers=v4.headers)
    assert response.status_code == 404
    assert response.json()["code"] == 109
    missing = http.get("/api/v5/objects/lists/501", headers=v4.headers)  # no fields
    assert missing.status_code == 400 and missing.json()["code"] == 13


# --- external activities (v5) ------------------------------------------------------------


ACTIVITY = {
    "extension": "ProspectSync",
    "type": "Signed Up",
    "value": "plan=pro",
    "email": "act@example.com",
}


def _activity(http: httpx.Client, headers: dict[str, str], body: Any) -> httpx.Response:
    return http.post("/api/v5/external-activities", json=body, headers=headers)


def test_external_activity_is_recorded(v4: Pardot, http: httpx.Client, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect("v4", email="act@example.com")
    response = _activity(http, v4.headers, ACTIVITY)
    assert (response.status_code, response.content) == (204, b"")
    [recorded] = fake.state.activities("v4")
    assert recorded["prospect_ids"] == [prospect["id"]]
    assert {k: recorded[k] for k in ACTIVITY} == ACTIVITY


@pytest.mark.parametrize(
    "body",
    [
        {**ACTIVITY, "type": "Unheard Of"},
        {**ACTIVITY, "extension": "Other"},
        {k: v for k, v in ACTIVITY.items() if k != "value"},
        {**ACTIVITY, "email": "not-an-email"},
    ],
    ids=["unknown-type", "unknown-extension", "missing-value", "bad-email"],
)
def test_external_activity_refusals_are_v5_errors(
    v4: Pardot, http: httpx.Client, fake: FakePardot, body: dict[str, str]
) -> None:
    response = _activity(http, v4.headers, body)
    assert response.status_code == 400
    document = response.json()
    assert set(document) == {"code", "message"}
    assert isinstance(document["code"], int)
    assert fake.state.activities("v4") == []


def test_external_activity_needs_a_valid_token(http: httpx.Client) -> None:
    headers = {"Authorization": "Bearer nope", "Pardot-Business-Unit-Id": DEMO.business_unit_v4}
    response = _activity(http, headers, ACTIVITY)
    assert response.status_code == 401
    assert response.json()["code"] == 184
