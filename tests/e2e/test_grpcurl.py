"""The README's grpcurl session, run for real: reflection lets an engineer list,
describe and call the service with no proto files at hand."""

from __future__ import annotations

import json

from fakepardot import FakePardot
from support.grpcurl import grpcurl, needs_grpcurl
from support.service import Service

pytestmark = needs_grpcurl

TOM = {
    "user_id": "u-tom",
    "traits": {
        "email": "tom@example.com",
        "name": "Tom Smykowski",
        "company": "Initech, Inc",
        "title": "VP of Engineering",
    },
    "settings": {"connection": "v3"},
}


async def test_list_shows_the_service_health_and_reflection(service: Service) -> None:
    code, out, _ = await grpcurl(service.port, "list")
    assert code == 0
    assert out.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "prospectsync.v1.ProspectSync",
    ]


async def test_describe_shows_the_contract(service: Service) -> None:
    code, out, _ = await grpcurl(service.port, "describe", "prospectsync.v1.IdentifyRequest")
    assert code == 0
    for field in ("message_id", "traits", "pardot", "settings"):
        assert field in out


async def test_identify_with_the_documentation_example(service: Service, fake: FakePardot) -> None:
    code, out, err = await grpcurl(service.port, "prospectsync.v1.ProspectSync/Identify", data=TOM)
    assert code == 0, err
    response = json.loads(out)
    assert response["outcome"] == "OUTCOME_CREATED"
    assert response["strategy"] == "EmailV3"
    [prospect] = fake.state.prospects("v3")
    assert response["prospect_id"] == str(prospect["id"])


async def test_an_invalid_request_shows_the_field_to_fix(service: Service) -> None:
    request = {"traits": {"name": "No Email"}, "settings": {"connection": "v3"}}
    code, _, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/Identify", data=request
    )
    assert code != 0
    assert "InvalidArgument" in err and "traits.email is required" in err


async def test_describe_lists_every_rpc_as_the_readme_shows(service: Service) -> None:
    code, out, _ = await grpcurl(service.port, "describe", "prospectsync.v1.ProspectSync")
    assert code == 0
    rpcs = sorted(line.split()[1] for line in out.splitlines() if line.strip().startswith("rpc "))
    assert rpcs == ["BatchSync", "Forget", "GetTrackingSnippet", "Identify", "Track"]


async def test_the_readme_update_only_and_forget_sessions(
    service: Service, fake: FakePardot
) -> None:
    """README, "Sync modes" and "Forget: erasure in Pardot", as printed there."""
    nobody = {
        "traits": {"email": "nobody@example.com", "first_name": "No"},
        "settings": {"connection": "v3", "sync_mode": "SYNC_MODE_UPDATE_ONLY"},
    }
    code, out, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/Identify", data=nobody
    )
    assert code == 0, err
    skipped = json.loads(out)
    assert (skipped["outcome"], skipped["strategy"]) == ("OUTCOME_SKIPPED", "EmailV3")
    assert skipped["warnings"] == [
        "no prospect matches and settings.sync_mode is SYNC_MODE_UPDATE_ONLY: nothing was created"
    ]
    assert fake.state.prospects("v3") == []

    ann = {"traits": {"email": "ann@example.com"}, "settings": {"connection": "v5"}}
    code, out, err = await grpcurl(service.port, "prospectsync.v1.ProspectSync/Identify", data=ann)
    assert code == 0, err
    created = json.loads(out)["prospect_id"]
    forget = {"email": "ann@example.com", "settings": {"connection": "v5"}}
    code, out, err = await grpcurl(service.port, "prospectsync.v1.ProspectSync/Forget", data=forget)
    assert code == 0, err
    forgotten = json.loads(out)
    assert forgotten["prospects"] == [{"prospect_id": created, "deleted": True}]
    assert forgotten["suppression_recorded"] is True
    code, _, err = await grpcurl(service.port, "prospectsync.v1.ProspectSync/Identify", data=ann)
    assert code != 0 and "FailedPrecondition" in err and "PERSON_FORGOTTEN" in err
