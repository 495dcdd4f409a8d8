"""Issue 5 end to end: Track through the live server and fakepardot over HTTP — mapped
fields, list memberships and v5 external activities, the prospect resolved by every
strategy exactly as Identify would, skipped events, dry runs and refusals."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.grpcurl import grpcurl, needs_grpcurl
from support.service import Service, struct

ROOT = Path(__file__).resolve().parents[2]

SIGNED_UP = pb.TrackMapping(
    fields={"plan": "plan", "role": "job_title"},
    add_to_list_ids=[501],
    external_activity=pb.ExternalActivity(extension="ProspectSync", type="Signed Up"),
)
ORG = {"lookup_field": "org_id"}
ANN = {"email": "ann@example.com", "org_id": "o-ann"}
PLAN = {"plan": "pro", "role": "CTO"}


def track(
    event: str = "Signed Up",
    *,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    mappings: dict[str, pb.TrackMapping] | None = None,
    connection: str = "",
    pardot_id: str = "",
    pardot_fid: str = "",
    user_id: str = "",
    **settings: Any,
) -> pb.TrackRequest:
    context = {"traits": traits} if traits is not None else {}
    return pb.TrackRequest(
        event=event,
        user_id=user_id,
        context=struct(context),
        properties=struct(PLAN if properties is None else properties),
        pardot=pb.PardotOptions(id=pardot_id, fid=pardot_fid),
        settings=pb.PardotSettings(
            connection=connection,
            track_mappings={"Signed Up": SIGNED_UP} if mappings is None else mappings,
            **settings,
        ),
    )


def only(fields: dict[str, str]) -> dict[str, pb.TrackMapping]:
    return {"Signed Up": pb.TrackMapping(fields=fields)}


def kinds(response: pb.TrackResponse) -> list[tuple[str, str]]:
    return [
        (pb.TrackActionKind.Name(a.kind), pb.TrackActionStatus.Name(a.status))
        for a in response.actions
    ]


def operations(response: pb.TrackResponse) -> list[str]:
    """What each Pardot call was: "read", "update", "listMembership", "list" (a list
    read), "v5", …"""
    names = []
    for call in response.pardot_calls:
        if call.path.startswith("/api/v5/"):
            names.append("v5")
        elif call.path.startswith("/api/listMembership/"):
            names.append("listMembership")
        elif call.path.startswith("/api/list/"):
            names.append("list")
        else:
            names.append(call.path.split("/do/")[1].split("/")[0])
    return names


def api_calls(fake: FakePardot) -> list[str]:
    """Paths of every API call the fake answered (token grants and logins left out)."""
    return [
        c.path for c in fake.state.calls if c.path.startswith("/api/") and "/login/" not in c.path
    ]


def prospect(fake: FakePardot, account: str, prospect_id: str) -> dict[str, Any]:
    found = fake.state.get_prospect(account, int(prospect_id))
    assert found is not None, f"no prospect {prospect_id} in {account}"
    return found


def refusal(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    """ErrorInfo and the BadRequest field paths of a rich status."""
    info, fields = error_details_pb2.ErrorInfo(), []
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return info, fields


async def send(service: Service, request: pb.TrackRequest) -> pb.TrackResponse:
    return await service.stub.Track(request, timeout=10)


async def refused(service: Service, request: pb.TrackRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(service, request)
    return caught.value


# --- what a mapped event does --------------------------------------------------------------


async def test_a_mapped_event_writes_its_properties_in_the_one_write_it_costs(
    service: Service, fake: FakePardot
) -> None:
    seeded = fake.state.add_prospect("v4", email="ann@example.com", org_id="o-ann")
    response = await send(
        service, track(traits=ANN, mappings=only({"plan": "plan", "role": "job_title"}), **ORG)
    )
    assert response.outcome == pb.OUTCOME_UPDATED and response.strategy == "LookupFieldV4"
    assert response.prospect_id == str(seeded["id"])
    assert operations(response) == ["read", "update"], "the fields ride on the strategy's write"
    stored = prospect(fake, "v4", response.prospect_id)
    assert (stored["plan"], stored["job_title"]) == ("pro", "CTO")
    assert kinds(response) == [("TRACK_ACTION_KIND_WRITE_FIELDS", "TRACK_ACTION_STATUS_APPLIED")]
    assert list(response.actions[0].fields) == ["job_title", "plan"]


async def test_a_mapped_event_adds_the_prospect_to_a_list_once(
    service: Service, fake: FakePardot
) -> None:
    mapping = {"Signed Up": pb.TrackMapping(add_to_list_ids=[501, 502])}
    first = await send(service, track(traits=ANN, mappings=mapping, **ORG))
    prospect_id = int(first.prospect_id)
    assert fake.state.list_members("v4", 501) == [prospect_id]
    assert fake.state.list_members("v4", 502) == [prospect_id]
    assert [a.list_id for a in first.actions] == [501, 502]

    # skip_unchanged off: the memberships are asked again (on, they cost no call).
    again = await send(service, track(traits=ANN, mappings=mapping, **ORG, skip_unchanged=False))
    assert again.prospect_id == first.prospect_id
    assert {s for _, s in kinds(again)} == {"TRACK_ACTION_STATUS_ALREADY_APPLIED"}
    # err 58, then one read of the membership (opted out or not: issue 15).
    assert [c.err_code for c in again.pardot_calls if "listMembership" in c.path] == [58, 0, 58, 0]
    assert fake.state.list_members("v4", 501) == [prospect_id]


async def test_a_mapped_event_records_an_external_activity_named_after_it(
    service: Service, fake: FakePardot
) -> None:
    mapping = {"Signed Up": pb.TrackMapping(external_activity=SIGNED_UP.external_activity)}
    response = await send(service, track(traits=ANN, mappings=mapping, **ORG))
    [activity] = fake.state.activities("v4")
    assert activity["extension"] == "ProspectSync" and activity["type"] == "Signed Up"
    assert activity["value"] == "Signed Up" and activity["email"] == "ann@example.com"
    assert activity["prospect_ids"] == [int(response.prospect_id)]
    [v5] = [c for c in response.pardot_calls if c.path == "/api/v5/external-activities"]
    assert (v5.method, v5.http_status) == ("POST", 204)
    assert kinds(response)[-1] == (
        "TRACK_ACTION_KIND_EXTERNAL_ACTIVITY",
        "TRACK_ACTION_STATUS_APPLIED",
    )


async def test_an_unmapped_event_is_skipped_without_any_pardot_call(
    service: Service, fake: FakePardot
) -> None:
    response = await send(service, track("Page Viewed", traits=ANN, **ORG))
    assert response.outcome == pb.OUTCOME_SKIPPED
    assert (response.prospect_id, response.strategy) == ("", "")
    assert list(response.pardot_calls) == [] and list(response.actions) == []
    assert 'settings.track_mappings["Page Viewed"] is not set' in response.warnings[0]
    assert fake.state.calls == [], "not even a token was fetched"


async def test_track_creates_the_prospect_identify_would_have_created(
    service: Service, fake: FakePardot
) -> None:
    response = await send(service, track(traits=ANN, **ORG, campaign_id="1002"))
    assert response.outcome == pb.OUTCOME_CREATED
    [created] = fake.state.prospects("v4")
    assert str(created["id"]) == response.prospect_id
    assert (created["email"], created["org_id"], created["campaign_id"]) == (
        "ann@example.com",
        "o-ann",
        1002,
    )
    assert (created["plan"], created["job_title"]) == ("pro", "CTO")
    # The list is read first (it exists), then the prospect resolved as identify would.
    assert operations(response) == ["list", "read", "create", "listMembership", "v5"]


async def test_identity_found_only_in_properties_is_used(
    service: Service, fake: FakePardot
) -> None:
    properties = {**PLAN, "email": "bob@example.com", "org_id": "o-bob"}
    created = await send(service, track(properties=properties, **ORG))
    [stored] = fake.state.prospects("v4")
    assert (stored["email"], stored["org_id"], stored["plan"]) == (
        "bob@example.com",
        "o-bob",
        "pro",
    )
    again = await send(service, track(properties=properties, **ORG))
    assert again.prospect_id == created.prospect_id and again.outcome == pb.OUTCOME_UPDATED


async def test_identify_then_track_is_one_prospect(service: Service, fake: FakePardot) -> None:
    identified = await service.stub.Identify(
        pb.IdentifyRequest(traits=struct(ANN), settings=pb.PardotSettings(**ORG)), timeout=10
    )
    tracked = await send(service, track(traits=ANN, **ORG))
    assert tracked.prospect_id == identified.prospect_id
    assert operations(tracked)[:2] == ["list", "update"], "the identity map knows the prospect"
    assert len(fake.state.prospects("v4")) == 1


# --- every strategy resolves a track call as it would an identify --------------------------

STRATEGIES = [
    "EmailV3",
    "IdFidV4 (id)",
    "IdFidV4 (fid)",
    "LookupFieldV4",
    "UserIdLookupV4",
    "CreateV4",
]


@pytest.mark.parametrize("case", STRATEGIES)
async def test_track_with_each_strategy(service: Service, fake: FakePardot, case: str) -> None:
    account = "v3" if case == "EmailV3" else "v4"
    seeded = fake.state.add_prospect(
        account, email="ann@example.com", crm_lead_fid="00Q000000000001AAA"
    )
    request = {
        "EmailV3": track(traits={"email": "ann@example.com"}, connection="v3"),
        "IdFidV4 (id)": track(pardot_id=str(seeded["id"])),
        "IdFidV4 (fid)": track(pardot_fid="00Q000000000001AAA"),
        "LookupFieldV4": track(traits=ANN, **ORG),
        "UserIdLookupV4": track(
            traits={"email": "ann@example.com"},
            user_id="u-ann",
            use_user_id_as_lookup_value=True,
            **ORG,
        ),
        "CreateV4": track(traits={"email": "ann@example.com"}, create_when_unmatched=True),
    }[case]
    response = await send(service, request)

    assert response.strategy == case.split(" ")[0]
    if case.startswith(("EmailV3", "IdFidV4")):
        assert response.prospect_id == str(seeded["id"])
    stored = prospect(fake, account, response.prospect_id)
    assert (stored["plan"], stored["job_title"]) == ("pro", "CTO")
    assert fake.state.list_members(account, 501) == [int(response.prospect_id)]
    [activity] = fake.state.activities(account)
    assert activity["email"] == "ann@example.com" and activity["value"] == "Signed Up"
    assert [k for k, _ in kinds(response)] == [
        "TRACK_ACTION_KIND_WRITE_FIELDS",
        "TRACK_ACTION_KIND_ADD_TO_LIST",
        "TRACK_ACTION_KIND_EXTERNAL_ACTIVITY",
    ]


async def test_v4_with_nothing_to_match_is_refused_as_identify_would_be(
    service: Service, fake: FakePardot
) -> None:
    error = await refused(service, track(traits={"email": "ann@example.com"}))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refusal(error)[0].reason == "NO_MATCHING_STRATEGY"
    assert api_calls(fake) == []


# --- a dry run plans everything ----------------------------------------------------------


async def test_a_dry_run_plans_every_action_and_changes_nothing(
    service: Service, fake: FakePardot
) -> None:
    response = await send(service, track(traits=ANN, dry_run=True, **ORG))
    assert response.outcome == pb.OUTCOME_PLANNED and response.prospect_id == ""
    planned = [(c.method, c.path) for c in response.pardot_calls if c.planned]
    assert planned == [
        ("POST", "/api/prospect/version/4/do/create/email/ann%40example.com"),
        ("POST", "/api/listMembership/version/4/do/create/list_id/501/prospect_id/{new}"),
        ("POST", "/api/v5/external-activities"),
    ]
    assert {s for _, s in kinds(response)} == {"TRACK_ACTION_STATUS_PLANNED"}
    assert fake.state.prospects("v4") == [] and fake.state.activities("v4") == []
    assert [p for p in api_calls(fake) if "/do/read/" not in p] == [], "reads only"


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (pb.TrackMapping(fields={"plan": "no such field!"}), 'fields["plan"]'),
        (pb.TrackMapping(fields={"plan": "updated_at"}), 'fields["plan"]'),
        (pb.TrackMapping(add_to_list_ids=[0]), "add_to_list_ids[0]"),
        (
            pb.TrackMapping(external_activity=pb.ExternalActivity(extension="ProspectSync")),
            "external_activity.type",
        ),
    ],
)
async def test_a_bad_mapping_is_invalid_argument_before_any_call(
    service: Service, fake: FakePardot, mapping: pb.TrackMapping, field: str
) -> None:
    error = await refused(service, track(traits=ANN, mappings={"Signed Up": mapping}, **ORG))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(error)[1] == [f'settings.track_mappings["Signed Up"].{field}']
    assert fake.state.calls == []


async def test_a_list_pardot_does_not_know_names_the_setting(
    service: Service, fake: FakePardot
) -> None:
    mapping = {"Signed Up": pb.TrackMapping(add_to_list_ids=[999])}
    error = await refused(service, track(traits=ANN, mappings=mapping, **ORG))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, fields = refusal(error)
    assert fields == ['settings.track_mappings["Signed Up"].add_to_list_ids[0]']
    assert info.metadata["err_code"] == "55"
    # Found by the list read, before the prospect write: nothing written, nobody created.
    assert api_calls(fake) == ["/api/list/version/4/do/read/id/999"]
    assert fake.state.prospects("v4") == []


@pytest.mark.parametrize("connection", ["", "v3", "v5"], ids=["v4", "v3", "v5"])
async def test_an_unknown_list_writes_no_prospect_on_any_api_version(
    service: Service, fake: FakePardot, connection: str
) -> None:
    """A mapping with one known and one unknown list: the call is refused after the
    list reads alone, on v3, v4 and v5 (v5 reads /api/v5/objects/lists/<id>)."""
    mapping = {"Signed Up": pb.TrackMapping(fields={"plan": "plan"}, add_to_list_ids=[501, 999])}
    settings = ORG if connection == "" else {}
    error = await refused(
        service, track(traits=ANN, mappings=mapping, connection=connection, **settings)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(error)[1] == ['settings.track_mappings["Signed Up"].add_to_list_ids[1]']
    assert all("/list" in path and "Membership" not in path for path in api_calls(fake))
    assert len(api_calls(fake)) == 2
    assert fake.state.prospects("v4") == [] and fake.state.prospects("v3") == []


async def test_a_list_is_read_once_per_connection_for_many_calls(
    service: Service, fake: FakePardot
) -> None:
    """The list read is remembered per connection: 20 concurrent first calls share one
    read, and later calls make none — the check costs one call per list, not per event."""
    people = [{"email": f"p{n}@example.com", "org_id": f"o-{n}"} for n in range(20)]
    mapping = {"Signed Up": pb.TrackMapping(add_to_list_ids=[501, 502])}
    first = await asyncio.gather(
        *(send(service, track(traits=p, mappings=mapping, **ORG)) for p in people)
    )
    again = await send(service, track(traits=people[0], mappings=mapping, **ORG))
    list_reads = [p for p in api_calls(fake) if p.startswith("/api/list/")]
    assert sorted(list_reads) == [
        "/api/list/version/4/do/read/id/501",
        "/api/list/version/4/do/read/id/502",
    ]
    assert all(r.outcome == pb.OUTCOME_CREATED for r in first)
    assert "list" not in operations(again)
    assert set(fake.state.list_members("v4", 502)) == {int(r.prospect_id) for r in first}


async def test_a_list_deleted_after_it_was_read_is_still_named(
    service: Service, fake: FakePardot
) -> None:
    """A list remembered as existing, then deleted in Pardot: the add answers err 55
    after the prospect write (as before this check), named the same way; the next call
    reads nothing (the list is remembered missing) and writes nothing."""
    mapping = {"Signed Up": pb.TrackMapping(add_to_list_ids=[502])}
    await send(service, track(traits=ANN, mappings=mapping, **ORG))
    fake.state.configure_account("v4", lists=[501])
    # skip_unchanged off: the memory of the add would otherwise answer without a call.
    error = await refused(service, track(traits=ANN, mappings=mapping, **ORG, skip_unchanged=False))
    assert refusal(error)[1] == ['settings.track_mappings["Signed Up"].add_to_list_ids[0]']
    calls_before = len(fake.state.calls)
    bob = {"email": "bob@example.com", "org_id": "o-bob"}
    error = await refused(service, track(traits=bob, mappings=mapping, **ORG))
    assert refusal(error)[0].metadata["err_code"] == "55"
    assert len(fake.state.calls) == calls_before  # no call at all
    assert [p["email"] for p in fake.state.prospects("v4")] == ["ann@example.com"]


async def test_an_activity_type_the_account_lacks_is_a_failed_precondition(
    service: Service, fake: FakePardot
) -> None:
    activity = pb.ExternalActivity(extension="ProspectSync", type="Unheard Of")
    mapping = {"Signed Up": pb.TrackMapping(external_activity=activity)}
    error = await refused(service, track(traits=ANN, mappings=mapping, **ORG))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = refusal(error)
    assert info.reason == "EXTERNAL_ACTIVITY_REFUSED" and "err_code" in info.metadata
    assert "Unheard Of" in error.details() and "external_activity" in error.details()
    assert fake.state.activities("v4") == []


async def test_an_activity_type_refused_once_is_refused_before_any_call_after(
    service: Service, fake: FakePardot
) -> None:
    """Pardot's API cannot say which activity types exist, so the first refusal comes
    after the prospect write (Ann is created); the connection remembers it, and the
    next call naming that type — Bob's — is refused with no call and no prospect."""
    activity = pb.ExternalActivity(extension="ProspectSync", type="Unheard Of")
    mapping = {"Signed Up": pb.TrackMapping(external_activity=activity)}
    first = await refused(service, track(traits=ANN, mappings=mapping, **ORG))
    assert refusal(first)[0].reason == "EXTERNAL_ACTIVITY_REFUSED"
    assert [p["email"] for p in fake.state.prospects("v4")] == ["ann@example.com"]

    calls_before = len(fake.state.calls)
    bob = {"email": "bob@example.com", "org_id": "o-bob"}
    second = await refused(service, track(traits=bob, mappings=mapping, **ORG))
    info, _ = refusal(second)
    assert second.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.reason == "EXTERNAL_ACTIVITY_REFUSED" and "err_code" in info.metadata
    assert len(fake.state.calls) == calls_before
    assert [p["email"] for p in fake.state.prospects("v4")] == ["ann@example.com"]
    # Another type of the same extension is not affected.
    known = pb.ExternalActivity(extension="ProspectSync", type="Signed Up")
    fine = {"Signed Up": pb.TrackMapping(external_activity=known)}
    assert kinds(await send(service, track(traits=bob, mappings=fine, **ORG))) == [
        ("TRACK_ACTION_KIND_EXTERNAL_ACTIVITY", "TRACK_ACTION_STATUS_APPLIED")
    ]


async def test_a_legacy_login_cannot_record_activities_and_sends_nothing(
    service: Service, fake: FakePardot
) -> None:
    error = await refused(service, track(traits={"email": "ann@example.com"}, connection="legacy"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refusal(error)[0].reason == "EXTERNAL_ACTIVITY_NEEDS_OAUTH"
    assert "connections.legacy.auth" in error.details()
    assert fake.state.calls == [] and fake.state.logins == 0


async def test_the_event_name_is_required(service: Service, fake: FakePardot) -> None:
    error = await refused(service, track("", traits=ANN, **ORG))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(error)[1] == ["event"]


# --- the v5 call goes through the same client: auth, limits, retries ----------------------


async def test_an_expired_token_on_the_activity_is_refreshed_once(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("err", err_code=184, path_contains="external-activities")
    response = await send(service, track(traits=ANN, **ORG))
    v5 = [(c.http_status, c.err_code) for c in response.pardot_calls if "/v5/" in c.path]
    assert v5 == [(401, 184), (204, 0)]
    assert len(fake.state.activities("v4")) == 1
    assert fake.state.token_grants == 2


async def test_the_concurrency_limit_on_the_activity_is_retried(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("err", err_code=66, path_contains="external-activities")
    response = await send(service, track(traits=ANN, **ORG))
    v5 = [(c.http_status, c.err_code, c.attempt) for c in response.pardot_calls if "/v5/" in c.path]
    assert v5 == [(429, 66, 1), (204, 0, 2)]
    assert len(fake.state.activities("v4")) == 1


async def test_an_activity_that_may_have_been_recorded_is_not_sent_twice(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("html_502", path_contains="external-activities")
    error = await refused(service, track(traits=ANN, **ORG))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "may have been applied" in error.details()
    assert [p for p in api_calls(fake) if "/v5/" in p] == ["/api/v5/external-activities"]


# --- the documentation's grpcurl session ---------------------------------------------------


def documented_track_call() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and the response shown in docs/track.md's grpcurl example."""
    text = (ROOT / "docs" / "track.md").read_text(encoding="utf-8")
    match = re.search(
        r"\$ grpcurl -plaintext -d '(?P<request>.*?)' \\\n\s*127\.0\.0\.1:50051 "
        r"prospectsync\.v1\.ProspectSync/Track\n(?P<response>\{.*?\n\})\n",
        text,
        re.DOTALL,
    )
    assert match, "docs/track.md shows a grpcurl Track call and its answer"
    return json.loads(match["request"]), json.loads(match["response"])


def paths(response: dict[str, Any]) -> list[str]:
    """The calls' paths; prospect ids differ from run to run."""
    return [
        re.sub(r"/prospect_id/\d+", "/prospect_id/N", c["path"]) for c in response["pardot_calls"]
    ]


@needs_grpcurl
async def test_the_documented_grpcurl_example_does_what_the_docs_say(
    service: Service, fake: FakePardot
) -> None:
    request, shown = documented_track_call()
    json_format.ParseDict(request, pb.TrackRequest())  # the example is a valid request
    code, out, err = await grpcurl(service.port, "prospectsync.v1.ProspectSync/Track", data=request)
    assert code == 0, err
    answer = json.loads(out)
    for key in ("outcome", "strategy", "actions"):
        assert answer[key] == shown[key], key
    assert paths(answer) == paths(shown)
    assert len(fake.state.activities("v4")) == 1
