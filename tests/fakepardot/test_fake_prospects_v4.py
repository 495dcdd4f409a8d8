"""Contract: prospect operations of API version 4, where several prospects may share
an email (PARDOT_API.md, "Prospect operations, version 4").

Evidence: a v4 read/email that finds nobody is HTTP 400 err 4 (PARDOT_API.md,
"Responses": RECORDED; grouparoo/grouparoo
``plugins/@grouparoo/pardot/__tests__/fixtures/export/export-records.js``, every
read/email of an absent prospect, 2021). upsert/fid with an unknown fid and an email
creates (Pardot's v4 prospect docs, "Upserting Prospects"; UNCONFIRMED in traffic, no
recording holds one): the ``upsert_fid_creates`` switch, both sides below."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

LEAD_18 = "00Q5e00000AbCdEFGH"
CONTACT_15 = "0035e00000XyZab"


def test_create_by_email_always_creates_even_when_the_email_exists(
    v4: Pardot, fake: FakePardot
) -> None:
    existing = fake.state.add_prospect("v4", email="twin@example.com")
    created = v4.ok("create", "email", "twin@example.com")["prospect"]
    assert created["id"] != existing["id"]
    assert len(fake.state.prospects("v4")) == 2


def test_create_invalid_email_is_err_4(v4: Pardot) -> None:
    v4.fails(4, "create", "email", "nope@")


def test_read_by_email_returns_an_object_for_one(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="one@example.com")
    assert v4.ok("read", "email", "one@example.com")["prospect"] == seeded


def test_read_by_email_returns_a_list_for_several_without_archived(
    v4: Pardot, fake: FakePardot
) -> None:
    first = fake.state.add_prospect("v4", email="many@example.com")
    second = fake.state.add_prospect("v4", email="MANY@example.com")
    fake.state.add_prospect("v4", email="many@example.com", is_archived=True)
    prospects = v4.ok("read", "email", "many@example.com")["prospect"]
    assert isinstance(prospects, list)
    assert [p["id"] for p in prospects] == [first["id"], second["id"]]


def test_read_by_email_in_xml_repeats_the_prospect_element(v4: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v4", email="x@example.com")
    fake.state.add_prospect("v4", email="x@example.com")
    response = v4.call("read", "email", "x@example.com", fmt="xml")
    rsp = ET.fromstring(response.content)
    assert [p.findtext("email") for p in rsp.findall("prospect")] == ["x@example.com"] * 2


def test_read_by_email_that_finds_nobody_is_err_4_with_http_400(v4: Pardot) -> None:
    """PARDOT_API.md, "Responses": RECORDED (HTTP 400, JSON, err 4, this text)."""
    response = v4.call("read", "email", "nobody@example.com", method="GET")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "@attributes": {"stat": "fail", "version": 1, "err_code": 4},
        "err": "Invalid prospect email address",
    }
    xml = v4.call("read", "email", "nobody@example.com", fmt="xml")
    assert xml.status_code == 400
    err = ET.fromstring(xml.content).find("err")
    assert err is not None and (err.attrib, err.text) == (
        {"code": "4"},
        "Invalid prospect email address",
    )


def test_read_by_email_with_only_archived_matches_is_err_4(v4: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v4", email="gone@example.com", is_archived=True)
    v4.fails(4, "read", "email", "gone@example.com", http_status=400)


def test_only_a_read_by_email_answers_err_4_with_http_400(v4: Pardot) -> None:
    """A write's bad email stays HTTP 200 (PARDOT_API.md: other errors 200 or an
    unconfirmed 4xx; the recording shows only the read)."""
    v4.fails(4, "create", "email", "nope@")


def test_read_by_id(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="id@example.com")
    assert v4.ok("read", "id", seeded["id"])["prospect"] == seeded
    v4.fails(3, "read", "id", seeded["id"] + 1000)


@pytest.mark.parametrize(
    ("seed", "asked"),
    [
        ({"crm_lead_fid": LEAD_18}, LEAD_18),
        ({"crm_lead_fid": LEAD_18}, LEAD_18[:15]),  # the 15-character form names it too
        ({"crm_contact_fid": CONTACT_15}, CONTACT_15),
    ],
    ids=["lead-18", "lead-as-15", "contact-15"],
)
def test_read_by_fid_matches_lead_or_contact_id(
    v4: Pardot, fake: FakePardot, seed: dict[str, str], asked: str
) -> None:
    seeded = fake.state.add_prospect("v4", email="fid@example.com", **seed)
    assert v4.ok("read", "fid", asked)["prospect"]["id"] == seeded["id"]


@pytest.mark.parametrize("fid", ["00Q5e00000AbCdEFGZ", "not-a-salesforce-id", "0015e00000AbCdE"])
def test_read_by_unknown_or_invalid_fid_is_err_77(v4: Pardot, fake: FakePardot, fid: str) -> None:
    fake.state.add_prospect("v4", email="fid@example.com", crm_lead_fid=LEAD_18)
    assert v4.fails(77, "read", "fid", fid) == "Invalid prospect fid"


def test_update_by_id_and_by_fid(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="up@example.com", crm_contact_fid=CONTACT_15)
    v4.ok("update", "id", seeded["id"], first_name="Ida", email="up2@example.com")
    v4.ok("update", "fid", CONTACT_15, last_name="Fid")
    stored = fake.state.get_prospect("v4", seeded["id"])
    assert stored is not None
    assert (stored["first_name"], stored["last_name"], stored["email"]) == (
        "Ida",
        "Fid",
        "up2@example.com",
    )


def test_update_absent_prospect_is_err_3_or_77(v4: Pardot) -> None:
    v4.fails(3, "update", "id", 999999, city="x")
    v4.fails(77, "update", "fid", LEAD_18, city="x")


def test_update_by_email_is_not_allowed(v4: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v4", email="e@example.com")
    v4.fails(2, "update", "email", "e@example.com", city="x")


def test_upsert_by_id_updates_and_unarchives(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="a@example.com", is_archived=True)
    v4.fails(132, "update", "id", seeded["id"], city="x")
    prospect = v4.ok("upsert", "id", seeded["id"], city="Lima")["prospect"]
    assert (prospect["id"], prospect["city"]) == (seeded["id"], "Lima")
    assert v4.ok("read", "id", seeded["id"])["prospect"]["city"] == "Lima"  # not archived


def test_upsert_by_fid_updates_the_match(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="f@example.com", crm_lead_fid=LEAD_18)
    assert v4.ok("upsert", "fid", LEAD_18, zip="0150")["prospect"]["id"] == seeded["id"]
    assert len(fake.state.prospects("v4")) == 1


def test_upsert_by_unknown_id_does_not_create(v4: Pardot, fake: FakePardot) -> None:
    v4.fails(3, "upsert", "id", 999999, email="x@example.com")
    assert fake.state.prospects("v4") == []


@pytest.mark.parametrize(
    ("fid", "kept_as"), [(LEAD_18, "crm_lead_fid"), (CONTACT_15, "crm_contact_fid")]
)
def test_upsert_by_unknown_fid_with_an_email_creates_by_default(
    v4: Pardot, fake: FakePardot, fid: str, kept_as: str
) -> None:
    """Pardot's docs: "a prospect will be created with the given email address/FID
    combination, so long as no prospect already exists ... with the same FID"
    (UNCONFIRMED in traffic: the switch's default)."""
    assert fake.state.upsert_fid_creates is True
    created = v4.ok("upsert", "fid", fid, email="new@example.com", city="Oslo")["prospect"]
    assert (created["email"], created["city"], created[kept_as]) == ("new@example.com", "Oslo", fid)
    assert [p["id"] for p in fake.state.prospects("v4")] == [created["id"]]
    # The fid names it from now on: the next upsert updates it.
    again = v4.ok("upsert", "fid", fid, email="new@example.com", city="Bergen")["prospect"]
    assert (again["id"], again["city"]) == (created["id"], "Bergen")
    assert v4.ok("read", "fid", fid)["prospect"]["id"] == created["id"]


def test_upsert_by_unknown_fid_is_err_77_when_switched_off(v4: Pardot, fake: FakePardot) -> None:
    fake.state.upsert_fid_creates = False
    assert v4.fails(77, "upsert", "fid", LEAD_18, email="x@example.com") == "Invalid prospect fid"
    assert fake.state.prospects("v4") == []
    fake.state.reset()
    assert fake.state.upsert_fid_creates is True


@pytest.mark.parametrize("creates", [True, False], ids=["docs", "switched-off"])
def test_upsert_by_unknown_fid_never_creates_without_a_usable_email_or_fid(
    v4: Pardot, fake: FakePardot, creates: bool
) -> None:
    fake.state.upsert_fid_creates = creates
    v4.fails(77, "upsert", "fid", LEAD_18, city="x")  # no email
    v4.fails(77, "upsert", "fid", "0015e00000AbCdE", email="x@example.com")  # an Account id
    v4.fails(4 if creates else 77, "upsert", "fid", LEAD_18, email="not-an-email")
    assert fake.state.prospects("v4") == []


@pytest.mark.parametrize("creates", [True, False], ids=["docs", "switched-off"])
def test_batch_upsert_by_unknown_fid_follows_the_switch(
    v4: Pardot, fake: FakePardot, creates: bool
) -> None:
    fake.state.upsert_fid_creates = creates
    entry = {"fid": LEAD_18, "email": "batch@example.com"}
    document = v4.call("batchUpsert", prospects=json.dumps({"prospects": [entry]})).json()
    assert document["@attributes"]["stat"] == ("ok" if creates else "fail")
    assert [p["crm_lead_fid"] for p in fake.state.prospects("v4")] == ([LEAD_18] if creates else [])


def test_upsert_by_email_always_creates(v4: Pardot, fake: FakePardot) -> None:
    existing = fake.state.add_prospect("v4", email="dup@example.com")
    created = v4.ok("upsert", "email", "dup@example.com", first_name="Dup")["prospect"]
    assert created["id"] != existing["id"]
    assert [p["email"] for p in fake.state.prospects("v4")] == ["dup@example.com"] * 2


def test_id_and_fid_naming_different_prospects_is_err_81(v4: Pardot, fake: FakePardot) -> None:
    first = fake.state.add_prospect("v4", email="1@example.com", crm_lead_fid=LEAD_18)
    second = fake.state.add_prospect("v4", email="2@example.com")
    assert v4.fails(81, "update", "id", second["id"], fid=LEAD_18) == (
        "Prospect ID and FID do not match"
    )
    v4.ok("update", "id", first["id"], fid=LEAD_18, city="ok")


def test_delete_by_id_and_fid_answer_204(v4: Pardot, fake: FakePardot) -> None:
    first = fake.state.add_prospect("v4", email="d@example.com")
    fake.state.add_prospect("v4", email="d@example.com", crm_lead_fid=LEAD_18)
    for response in (v4.call("delete", "id", first["id"]), v4.call("delete", "fid", LEAD_18)):
        assert (response.status_code, response.content) == (204, b"")
    assert fake.state.prospects("v4") == []


def test_prospect_deleted_behind_the_clients_back_is_err_3(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="stale@example.com")
    assert fake.state.delete_prospect("v4", seeded["id"])
    v4.fails(3, "update", "id", seeded["id"], city="x")


def test_seeding_a_chosen_id_keeps_later_ids_unique(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", id=900_000_000, email="chosen@example.com")
    assert v4.ok("read", "id", 900_000_000)["prospect"] == seeded
    created = v4.ok("create", "email", "later@example.com")["prospect"]
    assert created["id"] > 900_000_000
    with pytest.raises(ValueError, match="already exists"):
        fake.state.add_prospect("v4", id=900_000_000, email="again@example.com")
