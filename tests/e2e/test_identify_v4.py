"""Issue 3 end to end: the v4 strategies and the identity map, through the live server
and fakepardot over HTTP — the Segment documentation's own examples first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.examples import BILL_FID, BILL_ORG_ID
from support.service import Service, close_service, config_for, identify, open_service

ORG = {"lookup_field": "org_id"}
#: When a prospect that was in Pardot before the test was created.
LONG_AGO = "2020-01-21 18:21:46"
BY_USER = {"lookup_field": "org_id", "use_user_id_as_lookup_value": True}


def operation_of(call) -> str:
    return call.path.split("/do/")[1].split("/")[0]


def v4_prospects(fake: FakePardot, **match: str) -> list[dict]:
    return [
        p for p in fake.state.prospects("v4") if all(str(p.get(k)) == v for k, v in match.items())
    ]


def operations(response) -> list[str]:
    """The Pardot operations a response says it cost: ["read", "create"], …"""
    return [operation_of(c) for c in response.pardot_calls if "/do/" in c.path]


async def test_documentation_fid_example_updates_that_prospect(
    service: Service, fake: FakePardot
) -> None:
    # Bill has been in Pardot for a while: an upsert/fid with an email could have
    # created him (PARDOT_API.md), and a prospect whose created_at equals its
    # updated_at is taken for a new one (clients/gateway.py).
    seeded = fake.state.add_prospect(
        "v4", email="bill@old.example", crm_contact_fid=BILL_FID, created_at=LONG_AGO
    )
    response = await service.stub.Identify(
        identify({"email": "bill@segment.com"}, pardot_fid=BILL_FID, user_id="u-1")
    )
    assert response.strategy == "IdFidV4"
    assert response.outcome == pb.OUTCOME_UPDATED
    assert response.prospect_id == str(seeded["id"])
    assert operations(response) == ["upsert"]
    assert v4_prospects(fake, id=str(seeded["id"]))[0]["email"] == "bill@segment.com"
    assert len(fake.state.prospects("v4")) == 1


async def test_unknown_pardot_id_is_not_found_and_creates_nothing(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify({"email": "a@example.com"}, pardot_id="424242"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert fake.state.prospects("v4") == []


async def test_malformed_fid_is_rejected_before_any_call(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify({"email": "a@example.com"}, pardot_fid="0033"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pardot.fid" in caught.value.details()
    assert not [c for c in fake.state.calls if "/api/prospect/" in c.path]


async def test_documentation_org_id_example_created_then_updated_in_one_call(
    service: Service, fake: FakePardot
) -> None:
    traits = {"email": "bill@segment.com", "org_id": BILL_ORG_ID}
    created = await service.stub.Identify(identify(traits, **ORG))
    assert created.strategy == "LookupFieldV4" and created.outcome == pb.OUTCOME_CREATED
    assert operations(created) == ["read", "create"]
    [prospect] = v4_prospects(fake, org_id=BILL_ORG_ID)
    assert str(prospect["id"]) == created.prospect_id

    updated = await service.stub.Identify(identify({**traits, "first_name": "Bill"}, **ORG))
    assert updated.outcome == pb.OUTCOME_UPDATED and updated.prospect_id == created.prospect_id
    assert operations(updated) == ["update"], "a warm identify is one Pardot call"
    assert v4_prospects(fake, org_id=BILL_ORG_ID)[0]["first_name"] == "Bill"


async def test_user_id_as_the_lookup_value(service: Service, fake: FakePardot) -> None:
    created = await service.stub.Identify(
        identify({"email": "bill@segment.com"}, user_id=BILL_ORG_ID, **BY_USER)
    )
    assert created.strategy == "UserIdLookupV4" and created.outcome == pb.OUTCOME_CREATED
    assert len(v4_prospects(fake, org_id=BILL_ORG_ID)) == 1
    again = await service.stub.Identify(identify({"title": "CEO"}, user_id=BILL_ORG_ID, **BY_USER))
    assert again.prospect_id == created.prospect_id and operations(again) == ["update"]


async def test_email_change_under_a_lookup_field_keeps_one_prospect(
    service: Service, fake: FakePardot
) -> None:
    first = await service.stub.Identify(
        identify({"email": "old@example.com", "org_id": "o-1"}, **ORG)
    )
    changed = await service.stub.Identify(
        identify({"email": "new@example.com", "org_id": "o-1"}, **ORG)
    )
    assert changed.outcome == pb.OUTCOME_UPDATED and changed.prospect_id == first.prospect_id
    assert [p["email"] for p in fake.state.prospects("v4")] == ["new@example.com"]


async def test_two_prospects_sharing_an_email_are_told_apart_by_org_id(
    service: Service, fake: FakePardot
) -> None:
    theirs = fake.state.add_prospect("v4", email="shared@example.com", org_id="org-a")
    mine = fake.state.add_prospect("v4", email="shared@example.com", org_id="org-b")
    response = await service.stub.Identify(
        identify({"email": "shared@example.com", "org_id": "org-b", "title": "CTO"}, **ORG)
    )
    assert response.prospect_id == str(mine["id"]) and response.outcome == pb.OUTCOME_UPDATED
    assert v4_prospects(fake, id=str(mine["id"]))[0]["job_title"] == "CTO"
    assert v4_prospects(fake, id=str(theirs["id"]))[0].get("job_title") is None
    assert len(fake.state.prospects("v4")) == 2


async def test_prospect_deleted_behind_the_maps_back_is_resolved_afresh(
    service: Service, fake: FakePardot
) -> None:
    traits = {"email": "gone@example.com", "org_id": "o-9"}
    first = await service.stub.Identify(identify(traits, **ORG))
    fake.state.delete_prospect("v4", int(first.prospect_id))
    # The memory of writes cannot see a deletion made in Pardot: an identical repeat
    # is answered from it (the documented reason skip_unchanged is a setting) ...
    remembered = await service.stub.Identify(identify(traits, **ORG))
    assert remembered.outcome == pb.OUTCOME_UNCHANGED and not remembered.pardot_calls
    # ... and with it off, the call reaches Pardot, which says the prospect is gone.
    again = await service.stub.Identify(identify(traits, skip_unchanged=False, **ORG))
    assert operations(again) == ["update", "read", "create"]
    assert again.outcome == pb.OUTCOME_CREATED and again.prospect_id != first.prospect_id
    assert again.pardot_calls[0].err_code == 3
    assert any("gone from Pardot" in w for w in again.warnings)
    third = await service.stub.Identify(identify(traits, **ORG))
    assert operations(third) == ["update"] and third.prospect_id == again.prospect_id


async def test_concurrent_first_identifies_of_one_user_create_one_prospect(
    service: Service, fake: FakePardot
) -> None:
    fake.state.latency_s = 0.02
    request = identify({"email": "race@example.com", "org_id": "o-race"}, **ORG)
    responses = await asyncio.gather(*(service.stub.Identify(request) for _ in range(20)))
    assert len(v4_prospects(fake, org_id="o-race")) == 1
    assert {r.prospect_id for r in responses} == {responses[0].prospect_id}
    assert sorted(r.outcome for r in responses).count(pb.OUTCOME_CREATED) == 1


async def test_identity_map_survives_a_restart(fake: FakePardot, tmp_path: Path) -> None:
    config = config_for(fake, tmp_path / "state")
    traits = {"email": "durable@example.com", "org_id": "o-d"}
    first_run = await open_service(config)
    try:
        created = await first_run.stub.Identify(identify(traits, **ORG))
    finally:
        await close_service(first_run)
    second_run = await open_service(config)
    try:
        warm = await second_run.stub.Identify(identify({**traits, "first_name": "D"}, **ORG))
        same = await second_run.stub.Identify(identify({**traits, "first_name": "D"}, **ORG))
    finally:
        await close_service(second_run)
    assert warm.prospect_id == created.prospect_id and operations(warm) == ["update"]
    # The memory of what was written survives too: the repeat is not sent.
    assert same.outcome == pb.OUTCOME_UNCHANGED and operations(same) == []


async def test_v4_without_a_way_to_match_says_what_to_configure(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify({"email": "a@example.com"}))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "settings.lookup_field" in caught.value.details()
    assert fake.state.prospects("v4") == []


async def test_create_when_unmatched_opts_in_to_creating(
    service: Service, fake: FakePardot
) -> None:
    response = await service.stub.Identify(
        identify({"email": "a@example.com"}, create_when_unmatched=True)
    )
    assert response.strategy == "CreateV4" and response.outcome == pb.OUTCOME_CREATED
    assert len(fake.state.prospects("v4")) == 1


async def test_dry_run_reads_and_plans_without_writing(service: Service, fake: FakePardot) -> None:
    response = await service.stub.Identify(
        identify({"email": "dry@example.com", "org_id": "o-dry"}, dry_run=True, **ORG)
    )
    assert response.outcome == pb.OUTCOME_PLANNED
    assert [(c.planned, operation_of(c)) for c in response.pardot_calls] == [
        (False, "read"),
        (True, "create"),
    ]
    assert fake.state.prospects("v4") == []
