"""Contract: lookups by email and fid answer as a walk over every prospect would,
whatever happened to the prospect since it was stored (fakepardot/store.py keeps
indexes so that lookups do not walk)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fakepardot import FakePardot
from fakepardot.store import ProspectStore

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

LEAD_18 = "00Q000000000001AAA"
CONTACT_15 = "003000000000002"


def test_v3_email_change_moves_the_lookup(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="old@example.com")
    v3.ok("update", "id", seeded["id"], email="New@Example.com")
    v3.fails(4, "read", "email", "old@example.com")
    assert v3.ok("read", "email", "new@example.com")["prospect"]["id"] == seeded["id"]
    # The old email is free again: upsert creates, create succeeds.
    v3.ok("create", "email", "old@example.com")
    assert len(fake.state.prospects("v3")) == 2


def test_v3_email_changed_by_upsert_by_id_then_taken(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="a@example.com")
    v3.ok("upsert", "id", seeded["id"], email="b@example.com")
    v3.fails(9, "create", "email", "B@example.com")
    other = fake.state.add_prospect("v3", email="c@example.com")
    v3.fails(9, "update", "id", other["id"], email="b@example.com")


def test_v3_first_match_is_the_oldest_stored_not_the_lowest_id(
    v3: Pardot, fake: FakePardot
) -> None:
    older = fake.state.add_prospect("v3", id=900, email="dup@example.com", first_name="Older")
    fake.state.add_prospect("v3", id=800, email="DUP@example.com", first_name="Newer")
    assert v3.ok("read", "email", "dup@example.com")["prospect"]["id"] == older["id"]
    fake.state.delete_prospect("v3", older["id"])
    assert v3.ok("read", "email", "dup@example.com")["prospect"]["id"] == 800


def test_deleted_prospects_are_not_found_by_email_or_fid(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="gone@example.com", crm_lead_fid=LEAD_18)
    assert v4.call("delete", "id", seeded["id"]).status_code == 204
    v4.fails(4, "read", "email", "gone@example.com", http_status=400)  # RECORDED status
    v4.fails(77, "read", "fid", LEAD_18)


def test_v4_email_change_by_batch_moves_the_lookup(v4: Pardot, fake: FakePardot) -> None:
    first = fake.state.add_prospect("v4", email="one@example.com")
    second = fake.state.add_prospect("v4", email="two@example.com")
    entries = [{"id": first["id"], "email": "two@example.com"}]
    document = v4.ok("batchUpdate", prospects=json.dumps({"prospects": entries}))
    assert document["errors"] == {}
    v4.fails(4, "read", "email", "one@example.com", http_status=400)
    found = v4.ok("read", "email", "two@example.com")["prospect"]
    assert [p["id"] for p in found] == sorted([first["id"], second["id"]])


def test_fid_lookup_takes_15_or_18_characters(v4: Pardot, fake: FakePardot) -> None:
    lead = fake.state.add_prospect("v4", email="l@example.com", crm_lead_fid=LEAD_18)
    contact = fake.state.add_prospect("v4", email="c@example.com", crm_contact_fid=CONTACT_15)
    assert v4.ok("read", "fid", LEAD_18[:15])["prospect"]["id"] == lead["id"]
    assert v4.ok("read", "fid", CONTACT_15 + "AAB")["prospect"]["id"] == contact["id"]
    v4.fails(77, "read", "fid", LEAD_18[:15] + "AAB")  # 18 vs 18: all of it must match


def test_store_keeps_insertion_order_when_an_older_record_joins() -> None:
    store = ProspectStore()
    older = {"id": 2, "email": "a@example.com"}
    newer = {"id": 1, "email": "b@example.com"}
    store.add(older)
    store.add(newer)
    store.set_email(older, "B@example.com")
    assert [r["id"] for r in store.with_email("b@example.com")] == [2, 1]
    assert store.with_email("a@example.com") == []
    store.remove(2)
    assert [r["id"] for r in store.with_email("B@EXAMPLE.COM")] == [1]
    assert list(store) == [1] and 2 not in store and len(store) == 1
