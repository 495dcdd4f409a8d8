"""API v5 end to end: the real server over real sockets against fakepardot's v5
endpoints, on the "v5" connection (OAuth, the v4 business unit: several prospects may
share an email). Every Pardot call is counted in ``fake.state.calls``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.grpcurl import grpcurl, needs_grpcurl
from support.service import Service, identify, struct

UPSERT = "/api/v5/objects/prospects/do/upsertLatestByEmail"
LONG_AGO = "2020-01-01 00:00:00"


def api_calls(fake: FakePardot) -> list[Any]:
    """The fake's recorded API calls (token grants are not Pardot API calls)."""
    return [c for c in fake.state.calls if c.path.startswith("/api/")]


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info


async def refused(service: Service, request: pb.IdentifyRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(request)
    return caught.value


def with_email(fake: FakePardot, email: str) -> list[dict[str, Any]]:
    return [p for p in fake.state.prospects(DEMO.account_v4) if p.get("email") == email]


# --- EmailV5 -------------------------------------------------------------------------


async def test_email_v5_creates_then_updates_with_one_call_each(
    service: Service, fake: FakePardot
) -> None:
    traits = {"email": "kevin@example.com", "first_name": "Kevin", "org_id": "o-1"}

    created = await service.stub.Identify(identify(traits, connection="v5"))
    first_calls = api_calls(fake)
    fake.state.clear_calls()
    updated = await service.stub.Identify(
        identify({**traits, "company": "Initech"}, connection="v5")
    )

    assert (created.strategy, created.outcome) == ("EmailV5", pb.OUTCOME_CREATED)
    assert (updated.strategy, updated.outcome) == ("EmailV5", pb.OUTCOME_UPDATED)
    assert created.prospect_id and updated.prospect_id == created.prospect_id
    assert [(c.method, c.path) for c in first_calls] == [("POST", UPSERT)]
    assert [(c.method, c.path) for c in api_calls(fake)] == [("POST", UPSERT)]
    assert [(c.method, c.path) for c in updated.pardot_calls] == [("POST", UPSERT)]
    [stored] = with_email(fake, "kevin@example.com")
    assert (stored["id"], stored["first_name"], stored["company"]) == (
        int(created.prospect_id),
        "Kevin",
        "Initech",
    )
    assert stored.get("org_id") == "o-1"


async def test_a_v4_connection_speaks_v5_when_the_request_asks(
    service: Service, fake: FakePardot
) -> None:
    response = await service.stub.Identify(
        identify({"email": "asks@example.com"}, api_version=pb.API_VERSION_5)
    )
    assert (response.strategy, response.outcome) == ("EmailV5", pb.OUTCOME_CREATED)
    assert [c.path for c in api_calls(fake)] == [UPSERT]


async def test_a_prospect_in_the_recycle_bin_is_undeleted_not_duplicated(
    service: Service, fake: FakePardot
) -> None:
    gone = fake.state.add_prospect(
        DEMO.account_v4, email="back@example.com", created_at=LONG_AGO, is_archived=1
    )

    response = await service.stub.Identify(
        identify({"email": "back@example.com", "first_name": "Back"}, connection="v5")
    )

    assert response.outcome == pb.OUTCOME_UPDATED and response.prospect_id == str(gone["id"])
    [stored] = with_email(fake, "back@example.com")
    assert not stored.get("is_archived") and stored["first_name"] == "Back"
    assert len(api_calls(fake)) == 1


async def test_secondary_deleted_search_false_leaves_the_recycle_bin_alone(
    service: Service, fake: FakePardot
) -> None:
    gone = fake.state.add_prospect(
        DEMO.account_v4, email="stay@example.com", created_at=LONG_AGO, is_archived=1
    )
    response = await service.stub.Identify(
        identify({"email": "stay@example.com"}, connection="v5", secondary_deleted_search=False)
    )
    assert response.outcome == pb.OUTCOME_CREATED and response.prospect_id != str(gone["id"])
    assert len(with_email(fake, "stay@example.com")) == 2
    [call] = api_calls(fake)
    assert call.path == UPSERT


async def test_concurrent_first_identifies_of_one_person_make_one_prospect(
    service: Service, fake: FakePardot
) -> None:
    request = identify({"email": "once@example.com"}, connection="v5")
    responses = await asyncio.gather(*(service.stub.Identify(request) for _ in range(10)))
    assert len({r.prospect_id for r in responses}) == 1
    assert [r.outcome for r in responses].count(pb.OUTCOME_CREATED) == 1
    assert len(with_email(fake, "once@example.com")) == 1


async def test_track_on_v5_adds_to_a_list_once_and_records_the_activity(
    service: Service, fake: FakePardot
) -> None:
    mapping = pb.TrackMapping(
        add_to_list_ids=[501],
        external_activity=pb.ExternalActivity(extension="ProspectSync", type="Signed Up"),
    )

    def track() -> pb.TrackRequest:
        return pb.TrackRequest(
            event="Signed Up",
            context=struct({"traits": {"email": "t5@example.com"}}),
            settings=pb.PardotSettings(connection="v5", track_mappings={"Signed Up": mapping}),
        )

    first = await service.stub.Track(track())
    again = await service.stub.Track(track())

    assert first.strategy == "EmailV5" and first.outcome == pb.OUTCOME_CREATED
    assert [a.status for a in first.actions] == [
        pb.TRACK_ACTION_STATUS_APPLIED,
        pb.TRACK_ACTION_STATUS_APPLIED,
    ]
    assert again.actions[0].status == pb.TRACK_ACTION_STATUS_ALREADY_APPLIED
    assert fake.state.list_members(DEMO.account_v4, 501) == [int(first.prospect_id)]
    assert [c.path for c in first.pardot_calls] == [
        "/api/v5/objects/lists/501",  # the list exists (read once, then remembered)
        UPSERT,
        "/api/v5/objects/list-memberships",
        "/api/v5/external-activities",
    ]


# --- the other strategies through v5's operations ------------------------------------


async def test_v5_with_a_lookup_field_reads_creates_then_patches_by_id(
    service: Service, fake: FakePardot
) -> None:
    traits = {"email": "bill@segment.com", "org_id": "1sf324fd53"}
    other = fake.state.add_prospect(DEMO.account_v4, email="bill@segment.com", org_id="other")

    cold = await service.stub.Identify(identify(traits, connection="v5", lookup_field="org_id"))
    cold_calls = [(c.method, c.path) for c in api_calls(fake)]
    fake.state.clear_calls()
    warm = await service.stub.Identify(
        identify({**traits, "city": "Austin"}, connection="v5", lookup_field="org_id")
    )

    assert (cold.strategy, cold.outcome) == ("LookupFieldV4", pb.OUTCOME_CREATED)
    assert cold_calls == [
        ("GET", "/api/v5/objects/prospects"),
        ("POST", "/api/v5/objects/prospects"),
    ]
    assert (warm.outcome, warm.prospect_id) == (pb.OUTCOME_UPDATED, cold.prospect_id)
    assert [(c.method, c.path) for c in api_calls(fake)] == [
        ("PATCH", f"/api/v5/objects/prospects/{cold.prospect_id}")
    ]
    mine = fake.state.get_prospect(DEMO.account_v4, int(cold.prospect_id))
    assert mine is not None and (mine["org_id"], mine["city"]) == ("1sf324fd53", "Austin")
    assert cold.prospect_id != str(other["id"])


async def test_v5_with_a_lookup_field_updates_the_prospect_holding_the_value(
    service: Service, fake: FakePardot
) -> None:
    fake.state.add_prospect(DEMO.account_v4, email="held@example.com", org_id="other")
    mine = fake.state.add_prospect(DEMO.account_v4, email="held@example.com", org_id="o-7")
    response = await service.stub.Identify(
        identify(
            {"email": "held@example.com", "org_id": "o-7", "first_name": "Held"},
            connection="v5",
            lookup_field="org_id",
        )
    )
    assert (response.outcome, response.prospect_id) == (pb.OUTCOME_UPDATED, str(mine["id"]))
    assert [c.method for c in api_calls(fake)] == ["GET", "PATCH"]


async def test_v5_with_a_pardot_id_is_one_patch(service: Service, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect(DEMO.account_v4, email="old@example.com")
    response = await service.stub.Identify(
        identify({"email": "new@example.com"}, connection="v5", pardot_id=str(seeded["id"]))
    )
    assert (response.strategy, response.outcome) == ("IdFidV4", pb.OUTCOME_UPDATED)
    assert [(c.method, c.path) for c in api_calls(fake)] == [
        ("PATCH", f"/api/v5/objects/prospects/{seeded['id']}")
    ]
    assert with_email(fake, "new@example.com")[0]["id"] == seeded["id"]


# --- errors, through the one table ---------------------------------------------------


async def test_an_unknown_pardot_id_is_v5_109_not_found(service: Service, fake: FakePardot) -> None:
    error = await refused(
        service, identify({"email": "a@example.com"}, connection="v5", pardot_id="999999")
    )
    info = error_info(error)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (info.reason, info.metadata["err_code"]) == ("PROSPECT_NOT_FOUND", "109")
    assert fake.state.prospects(DEMO.account_v4) == []


async def test_a_custom_field_the_account_lacks_is_v5_180_invalid_field(
    service: Service, fake: FakePardot
) -> None:
    error = await refused(
        service, identify({"email": "a@example.com", "no_such_field": "x"}, connection="v5")
    )
    info = error_info(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.reason, info.metadata["err_code"]) == ("INVALID_FIELD", "180")


async def test_an_fid_on_v5_is_refused_before_any_call(service: Service, fake: FakePardot) -> None:
    error = await refused(
        service, identify({"email": "a@example.com"}, connection="v5", pardot_fid="00339000033ZUR6")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "FID_NEEDS_V4"
    assert api_calls(fake) == []


async def test_no_email_on_v5_names_the_trait(service: Service, fake: FakePardot) -> None:
    error = await refused(service, identify({"first_name": "Nobody"}, connection="v5"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.email is required for API v5" in (error.details() or "")
    assert api_calls(fake) == []


async def test_a_legacy_connection_cannot_be_asked_for_v5(
    service: Service, fake: FakePardot
) -> None:
    error = await refused(
        service,
        identify({"email": "a@example.com"}, connection="legacy", api_version=pb.API_VERSION_5),
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "PARDOT_AUTH_MECHANISM_INVALID"


# --- the README's v5 session ------------------------------------------------------------

#: README.md, "API v5": the grpcurl call, as it is printed there.
README_V5 = {
    "user_id": "u-kevin",
    "traits": {"email": "kevin@example.com", "first_name": "Kevin", "company": "Initech"},
    "settings": {"connection": "v5"},
}


@needs_grpcurl
async def test_the_readme_v5_session(service: Service, fake: FakePardot) -> None:
    code, out, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/Identify", data=README_V5
    )
    assert code == 0, err
    response = json.loads(out)
    assert (response["strategy"], response["outcome"]) == ("EmailV5", "OUTCOME_CREATED")
    [call] = response["pardot_calls"]
    assert (call["method"], call["path"], call["http_status"]) == ("POST", UPSERT, 200)

    code, out, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/Identify", data=README_V5
    )
    assert code == 0, err
    again = json.loads(out)
    assert (again["outcome"], again["prospect_id"]) == (
        "OUTCOME_UNCHANGED",
        response["prospect_id"],
    )
    assert "pardot_calls" not in again  # nothing sent: it would change nothing

    changed = {**README_V5, "traits": {**README_V5["traits"], "company": "Initrode"}}
    code, out, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/Identify", data=changed
    )
    assert code == 0, err
    updated = json.loads(out)
    assert (updated["outcome"], updated["prospect_id"]) == (
        "OUTCOME_UPDATED",
        response["prospect_id"],
    )
    assert len(updated["pardot_calls"]) == 1
