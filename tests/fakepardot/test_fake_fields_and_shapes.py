"""Contract: prospect fields (PARDOT_API.md, "Prospect fields") and the JSON/XML shapes
of answers ("Responses").

Evidence for a prospect record (PARDOT_API.md, "Responses": RECORDED): the v4 reads in
grouparoo/grouparoo ``plugins/@grouparoo/pardot/__tests__/fixtures/export/export-records.js``
(a sandbox, May 2021) — the default fields in this order, ``password: null``, no
``is_archived`` or ``prospect_account_id``, then ``campaign: {id, name}``, the custom
fields holding a value, ``profile``, ``visitors``, ``visitor_activities``, ``lists``
(``{"list_subscription": …}``); its prospect query with ``output=mobile`` answers only
id, first_name, last_name, email and company. Campaign, list and profile names are the
fake's own (fakepardot/fields.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot, V5Client


def test_custom_fields_come_back_only_when_they_hold_a_value(v4: Pardot) -> None:
    prospect = v4.ok("create", "email", "c@example.com", org_id="org-1")["prospect"]
    assert prospect["org_id"] == "org-1"
    assert "plan" not in prospect
    assert "external_id" not in prospect


def test_sending_a_field_empty_clears_it(v4: Pardot) -> None:
    """Pardot's v3/v4 docs (pardot/api-docs, docs/kb/api-version-4/prospects.md,
    "Updating Field Values"): "To clear a value, submit an update request containing a
    parameter with no specified value, such as phone=" — a standard field and a custom
    field alike (grouparoo/grouparoo PR 1391: "empty string clears the value")."""
    created = v4.ok(
        "create", "email", "c@example.com", org_id="o", city="Bergen", phone="555-0100"
    )["prospect"]
    cleared = v4.ok("update", "id", created["id"], org_id="", city="", phone="")["prospect"]
    assert "org_id" not in cleared
    assert cleared["city"] is None and cleared["phone"] is None


@pytest.mark.parametrize("null_clears", [True, False])
def test_a_v5_null_clears_by_the_switch_and_empty_always_clears(
    v5: V5Client, fake: FakePardot, null_clears: bool
) -> None:
    """UNCONFIRMED for v5 (fakepardot/v5_switches.py, ``v5_null_clears``): either a JSON
    null clears the field, or it leaves it as it was (as in v4's batch JSON, where null
    "just leaves the old value and does nothing": grouparoo/grouparoo PR 1391). An empty
    string clears on both sides."""
    fake.state.v5_null_clears = null_clears
    seeded = fake.state.add_prospect(
        "v4", email="n@example.com", phone="555-0100", city="Bergen", org_id="o-1"
    )
    body = {"phone": None, "org_id__c": None, "city": ""}
    v5.ok("PATCH", f"prospects/{seeded['id']}", status=204, json=body)
    after = fake.state.get_prospect("v4", seeded["id"])
    assert after is not None
    assert after["city"] is None  # "" clears on both sides
    if null_clears:
        assert after["phone"] is None and "org_id" not in after
    else:
        assert after["phone"] == "555-0100" and after["org_id"] == "o-1"


def test_multi_value_custom_field(v4: Pardot) -> None:
    prospect = v4.ok("create", "email", "m@example.com", plan_0="pro", plan_1="team")["prospect"]
    assert prospect["plan"] == {"value": ["pro", "team"]}


def test_read_only_fields_are_not_writable(v4: Pardot, fake: FakePardot) -> None:
    prospect = v4.ok(
        "create", "email", "r@example.com", grade="A+", crm_lead_fid="00Q5e00000AbCdEFGH", id=5
    )["prospect"]
    assert prospect["grade"] is None
    assert prospect["crm_lead_fid"] is None
    assert prospect["id"] != 5


def test_password_is_write_only_and_comes_back_null(v4: Pardot, fake: FakePardot) -> None:
    prospect = v4.ok("create", "email", "p@example.com", password="hunter2")["prospect"]
    assert prospect["password"] is None  # RECORDED: the key is there, never the value
    assert "hunter2" not in repr(fake.state.prospects("v4"))


#: PARDOT_API.md, "Responses": a prospect record, default output (RECORDED).
RECORDED_ORDER = [
    "id",
    "campaign_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "password",
    "company",
    "website",
    "job_title",
    "department",
    "country",
    "address_one",
    "address_two",
    "city",
    "state",
    "territory",
    "zip",
    "phone",
    "fax",
    "source",
    "annual_revenue",
    "employees",
    "industry",
    "years_in_business",
    "comments",
    "notes",
    "score",
    "grade",
    "last_activity_at",
    "recent_interaction",
    "crm_lead_fid",
    "crm_contact_fid",
    "crm_owner_fid",
    "crm_account_fid",
    "salesforce_fid",
    "crm_last_sync",
    "crm_url",
    "is_do_not_email",
    "is_do_not_call",
    "opted_out",
    "is_reviewed",
    "is_starred",
    "created_at",
    "updated_at",
]
RELATIONS = ["profile", "visitors", "visitor_activities", "lists"]


def test_a_prospect_record_has_pardots_fields_in_pardots_order(v4: Pardot) -> None:
    created = v4.ok("create", "email", "o@example.com", org_id="org-9")["prospect"]
    read = v4.ok("read", "id", created["id"])["prospect"]
    for prospect in (created, read):
        assert list(prospect) == [*RECORDED_ORDER, "campaign", "org_id", *RELATIONS]
        assert prospect["campaign"] == {"id": 1001, "name": "Campaign 1001"}
        assert prospect["campaign_id"] == 1001
        assert prospect["recent_interaction"] == "Never active."
        assert (prospect["visitors"], prospect["visitor_activities"], prospect["lists"]) == (
            None,
            None,
            None,
        )
        assert set(prospect["profile"]) == {"id", "name", "profile_criteria"}


def test_archived_and_prospect_account_id_are_writable_but_never_returned(
    v4: Pardot, fake: FakePardot
) -> None:
    created = v4.ok("create", "email", "h@example.com", prospect_account_id="77")["prospect"]
    assert "is_archived" not in created and "prospect_account_id" not in created
    v4.ok("update", "id", created["id"], is_archived="true")
    v4.fails(132, "read", "id", created["id"])  # stored all the same


def test_a_prospect_without_a_campaign_has_no_campaign_object(v4: Pardot, fake: FakePardot) -> None:
    fake.state.configure_account("v4", campaigns=[])
    prospect = v4.ok("create", "email", "nc@example.com")["prospect"]
    assert prospect["campaign_id"] is None
    assert "campaign" not in prospect


def test_lists_show_the_prospects_subscriptions(v4: Pardot) -> None:
    one = v4.ok("create", "email", "l1@example.com", list_501="1")["prospect"]
    assert one["lists"]["list_subscription"]["list"]["id"] == 501
    assert one["lists"]["list_subscription"]["did_opt_out"] is False
    two = v4.ok("update", "id", one["id"], list_502="1")["prospect"]
    assert [s["list"]["id"] for s in two["lists"]["list_subscription"]] == [501, 502]


def test_output_mobile_answers_only_five_fields(v4: Pardot) -> None:
    created = v4.ok("create", "email", "mo@example.com", first_name="Mo", org_id="x")["prospect"]
    mobile = v4.ok("read", "id", created["id"], output="mobile")["prospect"]
    assert mobile == {
        "id": created["id"],
        "first_name": "Mo",
        "last_name": None,
        "email": "mo@example.com",
        "company": None,
    }


@pytest.mark.parametrize("output", ["simple", "bulk"])
def test_output_simple_has_no_relations(v4: Pardot, output: str) -> None:
    created = v4.ok("create", "email", "s@example.com")["prospect"]
    simple = v4.ok("read", "id", created["id"], output=output)["prospect"]
    assert list(simple) == [*RECORDED_ORDER, "campaign"]


def test_xml_prospect_nests_campaign_and_profile(v4: Pardot) -> None:
    response = v4.call("create", "email", "nx@example.com", fmt="xml")
    rsp = ET.fromstring(response.content)
    assert rsp.findtext("prospect/campaign/id") == "1001"
    assert rsp.findtext("prospect/profile/name") == "Default"
    assert len(rsp.findall("prospect/profile/profile_criteria")) == 5
    assert rsp.find("prospect/password") is not None


def test_booleans_come_back_as_1_or_null(v4: Pardot) -> None:
    prospect = v4.ok("create", "email", "b@example.com", is_do_not_email="true", is_starred="0")[
        "prospect"
    ]
    assert prospect["is_do_not_email"] == 1
    assert prospect["is_starred"] is None


def test_list_field_on_a_write_adds_membership(v4: Pardot, fake: FakePardot) -> None:
    prospect = v4.ok("create", "email", "l@example.com", list_501="1")["prospect"]
    assert fake.state.list_members("v4", 501) == [prospect["id"]]
    v4.fails(55, "update", "id", prospect["id"], list_999="1")


def test_unknown_custom_field_is_ignored_by_default(v4: Pardot) -> None:
    prospect = v4.ok("create", "email", "u@example.com", not_a_field="x")["prospect"]
    assert "not_a_field" not in prospect


def test_unknown_custom_field_is_refused_when_switched_to_error(
    v4: Pardot, fake: FakePardot
) -> None:
    fake.state.unknown_custom_field = "error"
    text = v4.fails(130, "create", "email", "u@example.com", not_a_field="x")
    assert text == "One or more of the specified fields are invalid"
    assert fake.state.prospects("v4") == []
    v4.ok("create", "email", "u@example.com", org_id="known")  # known fields still pass


def test_unknown_custom_field_switch_rejects_other_values(fake: FakePardot) -> None:
    with pytest.raises(ValueError, match="unknown_custom_field"):
        fake.state.unknown_custom_field = "warn"


def test_configured_custom_fields_are_per_account(v4: Pardot, fake: FakePardot) -> None:
    fake.state.configure_account("v4", custom_fields={"tier"})
    prospect = v4.ok("create", "email", "t@example.com", tier="gold", org_id="x")["prospect"]
    assert prospect["tier"] == "gold"
    assert "org_id" not in prospect


def test_json_success_shape(v4: Pardot) -> None:
    response = v4.call("create", "email", "j@example.com")
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["@attributes"] == {"stat": "ok", "version": 1}
    prospect = document["prospect"]
    assert all(isinstance(prospect[k], int) for k in ("id", "campaign_id", "score"))


def test_json_error_shape(v4: Pardot) -> None:
    document = v4.call("read", "id", 1).json()
    assert document == {
        "@attributes": {"stat": "fail", "version": 1, "err_code": 3},
        "err": "Invalid prospect ID",
    }


def test_xml_is_the_default_format(v4: Pardot) -> None:
    response = v4.call("create", "email", "x@example.com", fmt="xml")
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    rsp = ET.fromstring(response.content)
    assert (rsp.tag, rsp.attrib) == ("rsp", {"stat": "ok", "version": "1.0"})
    assert rsp.findtext("prospect/email") == "x@example.com"
    assert (rsp.findtext("prospect/id") or "").isdigit()


def test_xml_error_shape(v4: Pardot) -> None:
    response = v4.call("read", "id", 1, fmt="xml")
    assert response.status_code == 200
    rsp = ET.fromstring(response.content)
    assert rsp.attrib == {"stat": "fail", "version": "1.0"}
    err = rsp.find("err")
    assert err is not None
    assert (err.attrib, err.text) == ({"code": "3"}, "Invalid prospect ID")


def test_unknown_operation_is_err_2(v4: Pardot) -> None:
    v4.fails(2, "assign", "id", 1)
    v4.fails(2, "read", "id", 1, obj="opportunity")


def test_the_fake_and_the_client_know_the_same_prospect_fields() -> None:
    """Two copies on purpose (the fake imports nothing of ours): they must not drift."""
    from fakepardot import constants
    from strategies.core import pardot_facts

    assert constants.WRITABLE_FIELDS == pardot_facts.WRITABLE_FIELDS
    assert constants.READ_ONLY_FIELDS == pardot_facts.READ_ONLY_FIELDS
