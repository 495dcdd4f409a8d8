"""Contract: API v5 prospects (and list memberships) as the fake serves them.

What each answer rests on (cited per test as [KEY]):

- [API] /work/shared/PARDOT_API.md, "API v5 (prospects)" — the project's spec; first.
- [GUIDE] Salesforce's v5 Prospect guide (developer.salesforce.com/docs/marketing/pardot/
  guide/prospect-v5): the operations table — "Upsert (Record with Latest Activity At by
  Email)" and "Undelete (Record in deleted state with Latest Activity At by Email)" on
  paths without an id, PATCH update, DELETE delete.
- [TRANSITION] Salesforce's "Transitioning to V5?": upsertLatestByEmail "will find the
  most recently updated prospect" (the other side of the ``v5_upsert_match`` switch).
- [OVERVIEW] Salesforce's Version 5 overview: ``fields`` required on reads and queries,
  ``deleted`` = true/false/all, reads served from a cache up to 60 s behind; and its
  summary in api-evangelist/pardot ``conventions/pardot-conventions.yml``: create 201 with
  Location, delete 204, update 204 when no fields are asked, ``Pardot-Warning:
  201;Record In Recycle Bin``, page tokens (only ``fields`` may accompany one), page size
  200 by default and at most 1000.
- [CODES] Salesforce's error-code registry (as transcribed in api-evangelist/pardot
  ``errors/pardot-error-codes.yml``): 4 (invalid email, also on create/upsert), 54 (email
  in use), 60, 109, 132 ("in the recycle bin and can't be read"), 150-154, 180 (fields
  not valid for the operation), 211, 219 (deleted records can't be updated).
- [SEGMENT] segmentio/action-destinations ``actions-pardot``: pa-operations.ts (body
  ``{matchEmail, prospect, secondaryDeletedSearch}``, no ``fields``; answer typed
  ``{id, email}``), prospects/index.ts (emails are case-sensitive; secondaryDeletedSearch
  "only affects AMPSEA accounts"; JSON errors vs XML 400/403 for business-unit/token).
- [BOULDER] letsencrypt/boulder ``email/pardot.go``: body ``{matchEmail, prospect:
  {email}}`` only, any 2xx is success (so ``fields`` cannot be required in production).
- [TRAILHEAD] a Trailblazer Community transcript (2022): ``405`` with
  ``{"code":60,"message":"Invalid HTTP request method"}``, ``application/json``.
- [HELP] Salesforce Help, "Remove a Prospect from the Recycle Bin": without AMPSEA,
  adding a prospect with a deleted prospect's email undeletes it.
- (chosen) the fake's own pick where no source speaks; listed in fakepardot/v5*.py.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fakepardot import DEMO, FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot, V5Client

UPSERT = "prospects/do/upsertLatestByEmail"
UNDELETE = "prospects/do/undelete"


def upsert(v5: V5Client, email: str, status: int = 200, **body: Any) -> Any:
    prospect = body.pop("prospect", {"email": email})
    return v5.ok("POST", UPSERT, status, json={"matchEmail": email, "prospect": prospect, **body})


# --- upsertLatestByEmail -----------------------------------------------------------------


def test_upsert_creates_a_prospect_and_answers_the_fields_asked(
    v5: V5Client, fake: FakePardot
) -> None:
    """[API] 200, a bare object of the requested fields: no @attributes, no wrapper."""
    answer = upsert(
        v5,
        "kevin@example.com",
        prospect={"email": "kevin@example.com", "firstName": "Kevin"},
        fields=["id", "email", "firstName"],
    )
    assert list(answer) == ["id", "email", "firstName"]
    assert isinstance(answer["id"], int)
    assert answer["email"] == "kevin@example.com" and answer["firstName"] == "Kevin"
    [stored] = fake.state.prospects("v4")
    assert (stored["id"], stored["first_name"], stored["campaign_id"]) == (
        answer["id"],
        "Kevin",
        1001,
    )


def test_upsert_updates_a_prospect_written_by_v4(v5: V5Client, v4: Pardot) -> None:
    """[API] one store: a prospect created by v4 is the one v5 updates, and v4 reads
    v5's write back under its own names."""
    created = v4.ok("create", "email", "shared@example.com", first_name="Old")["prospect"]
    answer = upsert(
        v5,
        "shared@example.com",
        prospect={"jobTitle": "CTO", "org_id__c": "42"},
        fields=["id", "jobTitle", "firstName", "org_id__c"],
    )
    assert answer == {"id": created["id"], "jobTitle": "CTO", "firstName": "Old", "org_id__c": "42"}
    read = v4.ok("read", "id", created["id"])["prospect"]
    assert (read["job_title"], read["org_id"]) == ("CTO", "42")


@pytest.mark.parametrize(
    ("mode", "winner"),
    [("last_activity", "active"), ("updated", "touched")],
)
def test_upsert_picks_by_the_match_switch(
    v5: V5Client, fake: FakePardot, mode: str, winner: str
) -> None:
    """UNCONFIRMED → ``v5_upsert_match``: [GUIDE] names the latest activity (default),
    [TRANSITION] the most recent update."""
    fake.state.v5_upsert_match = mode
    ids = {
        "active": fake.state.add_prospect(
            "v4",
            email="two@example.com",
            last_activity_at="2024-06-01 00:00:00",
            updated_at="2024-01-01 00:00:00",
        )["id"],
        "touched": fake.state.add_prospect(
            "v4",
            email="two@example.com",
            last_activity_at="2024-01-01 00:00:00",
            updated_at="2024-06-01 00:00:00",
        )["id"],
    }
    answer = upsert(v5, "two@example.com", prospect={"city": "Here"}, fields=["id"])
    assert answer == {"id": ids[winner]}
    assert len(fake.state.prospects("v4")) == 2


def test_upsert_tie_goes_to_the_newest_prospect(v5: V5Client, fake: FakePardot) -> None:
    """(chosen) no activity on either: the newest id."""
    fake.state.add_prospect("v4", email="tie@example.com")
    newest = fake.state.add_prospect("v4", email="tie@example.com")
    assert upsert(v5, "tie@example.com", fields=["id"]) == {"id": newest["id"]}


def test_upsert_email_match_is_case_sensitive(v5: V5Client, fake: FakePardot) -> None:
    """[SEGMENT] "Pardot treats email address as case sensitive and will create
    multiple prospects for casing differences"."""
    seeded = fake.state.add_prospect("v4", email="Case@example.com")
    answer = upsert(v5, "case@example.com", fields=["id", "email"])
    assert answer["id"] != seeded["id"] and answer["email"] == "case@example.com"
    assert len(fake.state.prospects("v4")) == 2


@pytest.mark.parametrize("search", [True, False])
def test_upsert_secondary_deleted_search(
    v5: V5Client, v4: Pardot, fake: FakePardot, search: bool
) -> None:
    """[API]/[SEGMENT] with secondaryDeletedSearch, a prospect in the recycle bin is
    undeleted and updated; without, a new one is created."""
    deleted = fake.state.add_prospect("v4", email="bin@example.com")
    v5.ok("DELETE", f"prospects/{deleted['id']}", 204)
    answer = upsert(
        v5,
        "bin@example.com",
        prospect={"city": "Back"},
        fields=["id", "isDeleted"],
        secondaryDeletedSearch=search,
    )
    if search:
        assert answer == {"id": deleted["id"], "isDeleted": False}
        assert v4.ok("read", "id", deleted["id"])["prospect"]["city"] == "Back"
    else:
        assert answer["id"] != deleted["id"] and answer["isDeleted"] is False
        v4.fails(132, "read", "id", deleted["id"])


def test_upsert_without_ampsea_undeletes_whatever_the_flag(
    v5_unique: V5Client, fake: FakePardot
) -> None:
    """[SEGMENT] secondaryDeletedSearch "only affects AMPSEA accounts"; [HELP] without
    AMPSEA an email that a deleted prospect holds brings that prospect back."""
    deleted = fake.state.add_prospect("v3", email="one@example.com")
    v5_unique.ok("DELETE", f"prospects/{deleted['id']}", 204)
    answer = upsert(v5_unique, "one@example.com", fields=["id"], secondaryDeletedSearch=False)
    assert answer == {"id": deleted["id"]}
    assert len(fake.state.prospects("v3")) == 1


@pytest.mark.parametrize("required", [False, True])
def test_upsert_fields_switch(v5: V5Client, fake: FakePardot, required: bool) -> None:
    """UNCONFIRMED → ``v5_upsert_fields_required``: [SEGMENT] and [BOULDER] never send
    ``fields`` (default: not required; the answer then is ``{id, email}``, the shape
    [SEGMENT] types it as); required: 400 code 13 as every v5 read [API]."""
    fake.state.v5_upsert_fields_required = required
    body = {"matchEmail": "f@example.com", "prospect": {"email": "f@example.com"}}
    if required:
        message = v5.fails(13, 400, "POST", UPSERT, json=body)
        assert message == "One or more required parameters are missing: fields"
        assert fake.state.prospects("v4") == []
    else:
        answer = v5.ok("POST", UPSERT, json=body)
        assert answer == {"id": fake.state.prospects("v4")[0]["id"], "email": "f@example.com"}


def test_upsert_may_change_the_email(v5: V5Client, fake: FakePardot) -> None:
    """(chosen, from a v5 client's documentation) ``prospect.email`` other than
    ``matchEmail`` changes the matched prospect's email."""
    seeded = fake.state.add_prospect("v4", email="old@example.com")
    answer = upsert(
        v5, "old@example.com", prospect={"email": "new@example.com"}, fields=["id", "email"]
    )
    assert answer == {"id": seeded["id"], "email": "new@example.com"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prospect": {"email": "a@example.com"}}, 153),
        ({"matchEmail": "a@example.com"}, 153),
        ({"matchEmail": "not-an-email", "prospect": {}}, 4),
        ({"matchEmail": "a@example.com", "prospect": {"email": "bad@"}}, 4),
        ({"matchEmail": "a@example.com", "prospect": {"first_name": "v3 name"}}, 180),
        ({"matchEmail": "a@example.com", "prospect": {"id": 5}}, 180),
        ({"matchEmail": "a@example.com", "prospect": {"nope__c": "x"}}, 180),
        ({"matchEmail": "a@example.com", "prospect": {}, "fields": ["first_name"]}, 180),
        ({"matchEmail": "a@example.com", "prospect": {"isDoNotEmail": "yes"}}, 50),
        ({"matchEmail": "a@example.com", "prospect": {"score": "7"}}, 56),
        ({"matchEmail": "a@example.com", "prospect": {"campaignId": 9}}, 38),
        ({"matchEmail": "a@example.com", "prospect": {"city": 7}}, 154),
        ({"matchEmail": "a@example.com", "prospect": {}, "secondaryDeletedSearch": 1}, 154),
    ],
)
def test_upsert_refusals_write_nothing(
    v5: V5Client, fake: FakePardot, body: dict[str, Any], code: int
) -> None:
    """[CODES] 4 on create/upsert for a bad email, 153 missing property, 180 fields not
    valid for the operation (v3/v4 names, read-only, unknown custom fields); (chosen) the
    v3/v4 codes for a wrong JSON type, 154 for the rest."""
    v5.fails(code, 400, "POST", UPSERT, json=body)
    assert fake.state.prospects("v4") == []


# --- create, read, update, delete, undelete ------------------------------------------------


def test_create_answers_201_with_location(v5: V5Client, fake: FakePardot) -> None:
    """[OVERVIEW] create is 201 with a Location; (chosen) ``{id, email}`` without fields."""
    response = v5.request("POST", "prospects", json={"email": "new@example.com", "lastName": "N"})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert set(answer) == {"id", "email"}
    assert response.headers["location"] == f"{fake.url}/api/v5/objects/prospects/{answer['id']}"
    read = v5.ok("GET", f"prospects/{answer['id']}", params={"fields": "lastName,campaignId"})
    assert read == {"lastName": "N", "campaignId": 1001}  # the oldest campaign


def test_create_with_ampsea_always_creates(v5: V5Client, fake: FakePardot) -> None:
    """[API] v5 with AMPSEA: a create with an email in use creates another prospect."""
    for _ in range(2):
        v5.ok("POST", "prospects", 201, json={"email": "dup@example.com"})
    assert len(fake.state.prospects("v4")) == 2


def test_create_without_ampsea_refuses_an_email_in_use(
    v5_unique: V5Client, fake: FakePardot
) -> None:
    """[CODES] 54 "Email address is already in use" (chosen for v5's create); [HELP] an
    email only a deleted prospect holds undeletes that prospect."""
    live = fake.state.add_prospect("v3", email="taken@example.com")
    v5_unique.fails(54, 400, "POST", "prospects", json={"email": "taken@example.com"})
    v5_unique.ok("DELETE", f"prospects/{live['id']}", 204)
    again = v5_unique.ok("POST", "prospects", 201, json={"email": "taken@example.com"})
    assert again["id"] == live["id"] and len(fake.state.prospects("v3")) == 1


def test_create_refusals(v5: V5Client) -> None:
    """[CODES] 153 missing email, 4 bad email; [API] bodies are JSON: 151 for a form, 152
    for none, 150 for unreadable JSON (the registry's v5 body codes)."""
    v5.fails(153, 400, "POST", "prospects", json={"firstName": "No email"})
    v5.fails(4, 400, "POST", "prospects", json={"email": "a b@example.com"})
    form = {"content-type": "application/x-www-form-urlencoded"}
    v5.fails(151, 400, "POST", "prospects", content=b"email=a%40example.com", headers=form)
    v5.fails(152, 400, "POST", "prospects")
    broken = {"content-type": "application/json"}
    v5.fails(150, 400, "POST", "prospects", content=b"{nope", headers=broken)


def test_read_renders_v5_names_and_types(v5: V5Client, fake: FakePardot) -> None:
    """[API] camelCase names, custom fields ``<id>__c``, ISO-8601 timestamps with offset;
    (chosen) JSON booleans, integers, null for an empty field, arrays for multi-value."""
    seeded = fake.state.add_prospect(
        "v4",
        email="r@example.com",
        first_name="R",
        score=12,
        is_do_not_email="1",
        org_id="42",
        plan=["a", "b"],
        created_at="2024-01-02 03:04:05",
        crm_lead_fid="00Q000000000001AAA",
    )
    names = (
        "id,email,firstName,lastName,score,isDoNotEmail,isDoNotCall,org_id__c,plan__c,"
        "external_id__c,createdAt,salesforceLeadId,isDeleted"
    )
    answer = v5.ok("GET", f"prospects/{seeded['id']}", params={"fields": names})
    assert answer == {
        "id": seeded["id"],
        "email": "r@example.com",
        "firstName": "R",
        "lastName": None,
        "score": 12,
        "isDoNotEmail": True,
        "isDoNotCall": False,
        "org_id__c": "42",
        "plan__c": ["a", "b"],
        "external_id__c": None,
        "createdAt": "2024-01-02T03:04:05+00:00",
        "salesforceLeadId": "00Q000000000001AAA",
        "isDeleted": False,
    }


def test_read_needs_fields_and_a_known_record(v5: V5Client, fake: FakePardot) -> None:
    """[API] reads require ``fields``: 400 code 13; 404 code 109 for no such record;
    (chosen) 180 for a field v5 does not have."""
    seeded = fake.state.add_prospect("v4", email="x@example.com")
    message = v5.fails(13, 400, "GET", f"prospects/{seeded['id']}")
    assert message == "One or more required parameters are missing: fields"
    v5.fails(180, 400, "GET", f"prospects/{seeded['id']}", params={"fields": "first_name"})
    message = v5.fails(109, 404, "GET", "prospects/999999999", params={"fields": "id"})
    assert message == "The requested record was not found."
    v5.fails(109, 404, "GET", "prospects/abc", params={"fields": "id"})


def test_update_patches_only_what_it_names(v5: V5Client, fake: FakePardot) -> None:
    """[GUIDE] PATCH updates; [OVERVIEW] 200 with the fields asked, 204 with none."""
    seeded = fake.state.add_prospect("v4", email="u@example.com", first_name="U", city="Old")
    answer = v5.ok(
        "PATCH",
        f"prospects/{seeded['id']}",
        json={"city": "New", "isDoNotCall": True},
        params={"fields": "firstName,city,isDoNotCall"},
    )
    assert answer == {"firstName": "U", "city": "New", "isDoNotCall": True}
    assert v5.ok("PATCH", f"prospects/{seeded['id']}", 204, json={"city": None}) is None
    stored = fake.state.get_prospect("v4", seeded["id"])
    assert stored is not None and stored["city"] is None


def test_update_of_a_deleted_or_missing_prospect(v5: V5Client, fake: FakePardot) -> None:
    """[CODES] 219 "Deleted records can't be updated" (status chosen: 400); 404 code 109."""
    seeded = fake.state.add_prospect("v4", email="d@example.com")
    v5.ok("DELETE", f"prospects/{seeded['id']}", 204)
    v5.fails(219, 400, "PATCH", f"prospects/{seeded['id']}", json={"city": "X"})
    v5.fails(109, 404, "PATCH", "prospects/999999999", json={"city": "X"})


def test_update_without_ampsea_refuses_an_email_in_use(
    v5_unique: V5Client, fake: FakePardot
) -> None:
    """(chosen) one prospect per email: 400 code 54."""
    fake.state.add_prospect("v3", email="held@example.com")
    other = fake.state.add_prospect("v3", email="other@example.com")
    v5_unique.fails(
        54, 400, "PATCH", f"prospects/{other['id']}", json={"email": "held@example.com"}
    )


def test_delete_moves_to_the_recycle_bin(v5: V5Client, v4: Pardot, fake: FakePardot) -> None:
    """[OVERVIEW] delete is 204; a record in the recycle bin is a 404 with
    ``Pardot-Warning: 201;Record In Recycle Bin`` unless ``deleted=true``; [CODES] 132: v3/v4
    see the recycle bin as "archived"."""
    seeded = fake.state.add_prospect("v4", email="gone@example.com")
    response = v5.request("DELETE", f"prospects/{seeded['id']}")
    assert (response.status_code, response.content) == (204, b"")
    v4.fails(132, "read", "id", seeded["id"])
    v4.fails(4, "read", "email", "gone@example.com", http_status=400)
    response = v5.request("GET", f"prospects/{seeded['id']}", params={"fields": "id"})
    assert (response.status_code, response.json()["code"]) == (404, 109)
    assert response.headers["pardot-warning"] == "201;Record In Recycle Bin"
    read = v5.ok(
        "GET", f"prospects/{seeded['id']}", params={"fields": "isDeleted", "deleted": "true"}
    )
    assert read == {"isDeleted": True}
    v5.fails(109, 404, "DELETE", f"prospects/{seeded['id']}")
    assert fake.state.get_prospect("v4", seeded["id"]) is not None  # kept, in the bin


def test_undelete_by_email(v5: V5Client, v4: Pardot, fake: FakePardot) -> None:
    """[GUIDE] "Undelete (Record in deleted state with Latest Activity At by Email)" on a
    path without an id: (chosen) body ``{matchEmail, fields}``; 404 code 109 for none."""
    v5.fails(109, 404, "POST", UNDELETE, json={"matchEmail": "bin@example.com"})
    older = fake.state.add_prospect(
        "v4", email="bin@example.com", last_activity_at="2024-01-01 00:00:00"
    )
    newer = fake.state.add_prospect(
        "v4", email="bin@example.com", last_activity_at="2024-05-01 00:00:00"
    )
    for record in (older, newer):
        v5.ok("DELETE", f"prospects/{record['id']}", 204)
    answer = v5.ok(
        "POST", UNDELETE, json={"matchEmail": "bin@example.com", "fields": ["id", "isDeleted"]}
    )
    assert answer == {"id": newer["id"], "isDeleted": False}
    assert v4.ok("read", "id", newer["id"])["prospect"]["id"] == newer["id"]
    v4.fails(132, "read", "id", older["id"])
    v5.fails(153, 400, "POST", UNDELETE, json={"fields": ["id"]})


def test_writes_are_read_back_at_once(v5: V5Client) -> None:
    """[OVERVIEW] real v5 reads may trail writes by up to 60 s (never rely on
    read-your-writes); the fake does not emulate that lag, so that tests are not racy."""
    created = v5.ok("POST", "prospects", 201, json={"email": "now@example.com"})
    v5.ok("PATCH", f"prospects/{created['id']}", 204, json={"city": "Now"})
    assert v5.ok("GET", f"prospects/{created['id']}", params={"fields": "city"}) == {"city": "Now"}


# --- query -----------------------------------------------------------------------------


def test_query_by_email_returns_every_exact_match(v5: V5Client, fake: FakePardot) -> None:
    """[API] collections are ``{nextPageToken, nextPageUrl, values}``; with AMPSEA a query
    by email may hold several prospects; (chosen) the match is exact, like upserts'."""
    ids = [fake.state.add_prospect("v4", email="q@example.com")["id"] for _ in range(2)]
    fake.state.add_prospect("v4", email="Q@example.com")
    page = v5.ok("GET", "prospects", params={"fields": "id,email", "email": "q@example.com"})
    assert page == {
        "nextPageToken": None,
        "nextPageUrl": None,
        "values": [{"id": i, "email": "q@example.com"} for i in ids],
    }
    v5.fails(13, 400, "GET", "prospects", params={"email": "q@example.com"})


def test_query_pages_with_tokens(v5: V5Client, fake: FakePardot, http: httpx.Client) -> None:
    """[OVERVIEW] page tokens; the ``v5_page_size`` switch makes paging testable; a
    prospect created between pages does not shift the next page (a cursor)."""
    fake.state.v5_page_size = 2
    ids = [fake.state.add_prospect("v4", email=f"p{i}@example.com")["id"] for i in range(5)]
    first = v5.ok("GET", "prospects", params={"fields": "id"})
    assert [v["id"] for v in first["values"]] == ids[:2] and first["nextPageToken"]
    fake.state.add_prospect("v4", email="late@example.com")
    second = v5.ok("GET", "prospects", params={"nextPageToken": first["nextPageToken"]})
    assert [v["id"] for v in second["values"]] == ids[2:4]
    assert second["nextPageUrl"].startswith(f"{fake.url}/api/v5/objects/prospects?nextPageToken=")
    third = http.get(second["nextPageUrl"], headers=v5.headers).json()
    assert [v["id"] for v in third["values"]] == [ids[4], ids[4] + 1]
    assert (third["nextPageToken"], third["nextPageUrl"]) == (None, None)
    larger = v5.ok("GET", "prospects", params={"fields": "id", "limit": 10})
    assert len(larger["values"]) == 6 and larger["nextPageToken"] is None


def test_query_deleted_modes_and_order(v5: V5Client, fake: FakePardot) -> None:
    """[OVERVIEW] ``deleted`` false (default) / true / all; (chosen) ``orderBy``."""
    kept = fake.state.add_prospect("v4", email="k@example.com")["id"]
    binned = fake.state.add_prospect("v4", email="b@example.com")["id"]
    v5.ok("DELETE", f"prospects/{binned}", 204)

    def ids(**params: Any) -> list[int]:
        page = v5.ok("GET", "prospects", params={"fields": "id", **params})
        return [v["id"] for v in page["values"]]

    assert ids() == [kept]
    assert ids(deleted="true") == [binned]
    assert ids(deleted="all", orderBy="id desc") == [binned, kept]


def test_query_refusals(v5: V5Client) -> None:
    """[OVERVIEW] only ``fields`` may accompany a page token (code chosen: 5); [CODES] 211
    for a token the fake never issued, 23 for a limit over 1000."""
    v5.fails(211, 400, "GET", "prospects", params={"nextPageToken": "garbage", "fields": "id"})
    v5.fails(23, 400, "GET", "prospects", params={"fields": "id", "limit": 1001})
    v5.fails(5, 400, "GET", "prospects", params={"fields": "id", "deleted": "maybe"})


def test_query_token_takes_no_other_parameters(v5: V5Client, fake: FakePardot) -> None:
    fake.state.v5_page_size = 1
    for i in range(2):
        fake.state.add_prospect("v4", email=f"t{i}@example.com")
    token = v5.ok("GET", "prospects", params={"fields": "id"})["nextPageToken"]
    v5.fails(5, 400, "GET", "prospects", params={"nextPageToken": token, "limit": 5})


# --- list memberships --------------------------------------------------------------------


def test_list_membership_create_and_duplicate(v5: V5Client, fake: FakePardot) -> None:
    """[API] 400 code 58 for a duplicate list membership; the membership is the one
    v3/v4 see; (chosen) 201 with the fields asked, 55 for an unknown list."""
    prospect = fake.state.add_prospect("v4", email="l@example.com")
    body = {"listId": 501, "prospectId": prospect["id"]}
    answer = v5.ok(
        "POST", "list-memberships", 201, json=body, params={"fields": "listId,prospectId,optedOut"}
    )
    assert answer == {"listId": 501, "prospectId": prospect["id"], "optedOut": False}
    assert fake.state.list_members("v4", 501) == [prospect["id"]]
    v5.fails(58, 400, "POST", "list-memberships", json=body)
    v5.fails(55, 400, "POST", "list-memberships", json={**body, "listId": 999})


# --- methods, paths, auth, limits, the call log -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "prospects/1"),
        ("POST", "prospects/1"),
        ("GET", UPSERT),
        ("PATCH", UNDELETE),
        ("DELETE", "prospects"),
        ("PUT", "list-memberships"),  # GET is v5's membership query
    ],
)
def test_wrong_method_is_405_code_60(v5: V5Client, method: str, path: str) -> None:
    """[API]/[TRAILHEAD] 405 ``{"code": 60, "message": "Invalid HTTP request method"}``."""
    assert v5.fails(60, 405, method, path) == "Invalid HTTP request method"


def test_unknown_v5_path_is_invalid_action(v5: V5Client) -> None:
    """(chosen) 404 code 2 for a path the fake does not serve."""
    v5.fails(2, 404, "GET", "prospects/1/do/addTag")
    v5.fails(2, 404, "GET", "campaigns")


def test_auth_failures_in_the_v5_envelope(http: httpx.Client) -> None:
    """[API] 401 code 184 and 400 code 181 (v5's text); err 201 takes the status of the
    shared ``bu_invalid_http_status`` switch (400 by default)."""
    path = "/api/v5/objects/prospects"
    params = {"fields": "id"}
    bad_token = {"Authorization": "Bearer nope", "Pardot-Business-Unit-Id": DEMO.business_unit_v4}
    response = http.get(path, params=params, headers=bad_token)
    assert (response.status_code, response.json()["code"]) == (401, 184)
    token = http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEMO.client_id,
            "client_secret": DEMO.client_secret,
            "refresh_token": DEMO.refresh_token,
        },
    ).json()["access_token"]
    response = http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.json() == {
        "code": 181,
        "message": (
            "A required header is missing: Pardot-Business-Unit-Id header not found on request."
        ),
    }
    unknown_bu = {
        "Authorization": f"Bearer {token}",
        "Pardot-Business-Unit-Id": "0Uv000000000099CAA",
    }
    response = http.get(path, params=params, headers=unknown_bu)
    assert (response.status_code, response.json()["code"]) == (400, 201)


@pytest.mark.parametrize(("code", "status"), [(184, 400), (181, 400), (201, 403)])
def test_auth_failures_as_xml_with_the_switch(
    v5: V5Client, fake: FakePardot, code: int, status: int
) -> None:
    """UNCONFIRMED → ``v5_auth_errors="xml"``: [API]/[SEGMENT] token and business-unit
    failures "have come back as XML with 400/403"."""
    fake.state.v5_auth_errors = "xml"
    fake.state.bu_invalid_http_status = 403
    headers = {
        184: {"Authorization": "Bearer nope"},
        181: {"Pardot-Business-Unit-Id": ""},
        201: {"Pardot-Business-Unit-Id": "0Uv000000000099CAA"},
    }[code]
    response = v5.request("GET", "prospects", params={"fields": "id"}, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/xml")
    assert f'<err code="{code}">' in response.text


@pytest.mark.parametrize("status", [429, 400])
def test_limits_answer_v5_errors_with_the_status_switch(
    v5: V5Client, fake: FakePardot, status: int
) -> None:
    """UNCONFIRMED → ``v5_limit_status``: err 66 (5 in flight per account) and err 122
    (daily limit) in the v5 envelope, 429 (default) or 400."""
    fake.state.v5_limit_status = status
    fake.state.max_concurrency = 0  # every call finds the account's slots taken
    message = v5.fails(66, status, "GET", "prospects", params={"fields": "id"})
    assert message.startswith("You have exceeded your concurrent request limit.")
    fake.state.max_concurrency = 5
    fake.state.daily_limit = fake.state.daily_calls("v4")
    v5.fails(122, status, "POST", UPSERT, json={"matchEmail": "a@example.com", "prospect": {}})


def test_sixth_call_in_flight_is_err_66(v5: V5Client, fake: FakePardot) -> None:
    """[API] the same per-account limit as v3/v4: five in flight, the sixth gets err 66."""
    fake.state.answers_held = True
    results: list[int] = []

    def call() -> None:
        with httpx.Client(base_url=fake.url, timeout=10.0) as own:
            response = own.get(
                "/api/v5/objects/prospects", params={"fields": "id"}, headers=v5.headers
            )
            results.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    try:
        while fake.state.in_flight("v4") < 5:
            threading.Event().wait(0.01)
        v5.fails(66, 429, "GET", "prospects", params={"fields": "id"})
    finally:
        fake.state.answers_held = False
        for thread in threads:
            thread.join()
    assert results == [200] * 5


def test_call_log_records_v5_calls_with_secrets_redacted(v5: V5Client, fake: FakePardot) -> None:
    """[API] the call log records v5 calls like the others: method, path, JSON body,
    secrets (a prospect's password, one level down) redacted."""
    fake.state.clear_calls()
    upsert(
        v5,
        "log@example.com",
        prospect={"email": "log@example.com", "password": "hunter2"},
        fields=["id"],
    )
    v5.ok("GET", "prospects", params={"fields": "id"})
    first, second = fake.state.calls
    assert (first.method, first.path, first.http_status, first.account) == (
        "POST",
        "/api/v5/objects/prospects/do/upsertLatestByEmail",
        200,
        "v4",
    )
    assert first.form == {
        "matchEmail": "log@example.com",
        "prospect": {"email": "log@example.com", "password": "[REDACTED]"},
        "fields": ["id"],
    }
    assert (second.method, second.query) == ("GET", {"fields": "id"})
    assert "hunter2" not in repr(fake.state.calls)


def test_injected_err_fault_on_v5_uses_the_v5_envelope(v5: V5Client, fake: FakePardot) -> None:
    fake.state.inject("err", err_code=66, path_contains="/api/v5/objects/")
    v5.fails(66, 429, "GET", "prospects", params={"fields": "id"})


def test_v5_switches_refuse_bad_values(fake: FakePardot, http: httpx.Client) -> None:
    """A typo in a switch must not silently test the default."""
    for name, value in (
        ("v5_upsert_match", "latest"),
        ("v5_limit_status", 503),
        ("v5_upsert_fields_required", 1),
        ("v5_auth_errors", "html"),
        ("v5_page_size", 0),
    ):
        with pytest.raises(ValueError, match=name):
            setattr(fake.state, name, value)
        assert http.post("/_fake/switches", json={name: value}).status_code == 400
    assert http.post("/_fake/switches", json={"v5_page_size": 3}).json()["v5_page_size"] == 3
    fake.state.reset()
    assert fake.state.switches()["v5_page_size"] == 200


@pytest.mark.parametrize("allowed", [False, True])
def test_permanent_delete_switch(v5: V5Client, fake: FakePardot, allowed: bool) -> None:
    """UNCONFIRMED → ``v5_permanent_delete``: Salesforce Help, "Permanently Delete
    Prospects" (help.salesforce.com, mktg.pardot_admin_prospects_permanently_delete),
    documents permanent deletion only from the recycle bin's page, by an Administrator;
    no public client or v5 guide found names an API for it. Default: refused like any
    DELETE of a prospect in the recycle bin (404 code 109); on: ``?deleted=true`` removes
    it for good. A prospect not in the recycle bin is never removed for good."""
    fake.state.v5_permanent_delete = allowed
    prospect = fake.state.add_prospect("v4", email="gone@example.com")
    path = f"prospects/{prospect['id']}"
    if allowed:
        v5.fails(109, 404, "DELETE", path, params={"deleted": "true"})  # not in the bin yet
    v5.ok("DELETE", path, 204)
    if allowed:
        v5.ok("DELETE", path, 204, params={"deleted": "true"})
        assert fake.state.in_recycle_bin("v4", prospect["id"]) is None
    else:
        v5.fails(109, 404, "DELETE", path, params={"deleted": "true"})
        assert fake.state.in_recycle_bin("v4", prospect["id"]) is True
