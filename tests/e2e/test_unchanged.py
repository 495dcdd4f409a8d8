"""No call for nothing (issue 15) end to end: the real server over real sockets against
fakepardot. For each of the six strategies a second identical identify answers
OUTCOME_UNCHANGED with no Pardot call (the fake's request log says so, not only the
response); a changed trait is written; ``skip_unchanged: false`` writes; a track whose
mapped fields are unchanged sends no prospect write but still records its activity."""

from __future__ import annotations

from typing import Any

import pytest

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify, struct

ANN = {"email": "ann@example.com", "first_name": "Ann", "org_id": "o-1"}

#: strategy → the request's settings and identity (a pardot_id "SEEDED" is seeded first)
CASES: dict[str, dict[str, Any]] = {
    "EmailV3": {"connection": "v3"},
    "EmailV5": {"connection": "v5"},
    "IdFidV4": {"pardot_id": "SEEDED"},
    "LookupFieldV4": {"lookup_field": "org_id"},
    "UserIdLookupV4": {
        "lookup_field": "org_id",
        "use_user_id_as_lookup_value": True,
        "user_id": "o-1",
    },
    "CreateV4": {"create_when_unmatched": True},
}


def request_for(fake: FakePardot, name: str, **more: Any) -> dict[str, Any]:
    options = dict(CASES[name])
    if options.get("pardot_id") == "SEEDED":
        options["pardot_id"] = str(fake.state.add_prospect("v4", email="ann@example.com")["id"])
    return {**options, **more}


def api_calls(fake: FakePardot) -> list[str]:
    return [c.path for c in fake.state.calls if c.path.startswith("/api/")]


@pytest.mark.parametrize("name", list(CASES))
async def test_a_repeated_identical_identify_costs_no_call(
    service: Service, fake: FakePardot, name: str
) -> None:
    options = request_for(fake, name)
    first = await service.stub.Identify(identify(ANN, **options))
    assert first.strategy == name and first.outcome != pb.OUTCOME_UNCHANGED
    log = api_calls(fake)

    again = await service.stub.Identify(identify(ANN, **options))

    assert again.outcome == pb.OUTCOME_UNCHANGED
    assert list(again.pardot_calls) == []
    assert api_calls(fake) == log  # Pardot was not asked anything
    assert again.prospect_id == first.prospect_id


@pytest.mark.parametrize("name", list(CASES))
async def test_a_changed_trait_is_written(service: Service, fake: FakePardot, name: str) -> None:
    options = request_for(fake, name)
    await service.stub.Identify(identify(ANN, **options))
    log = len(api_calls(fake))

    changed = await service.stub.Identify(identify({**ANN, "first_name": "Anne"}, **options))

    assert changed.outcome in (pb.OUTCOME_UPDATED, pb.OUTCOME_CREATED, pb.OUTCOME_UPSERTED)
    assert len(api_calls(fake)) > log


@pytest.mark.parametrize("name", list(CASES))
async def test_skip_unchanged_false_writes_again(
    service: Service, fake: FakePardot, name: str
) -> None:
    options = request_for(fake, name, skip_unchanged=False)
    await service.stub.Identify(identify(ANN, **options))
    log = len(api_calls(fake))

    again = await service.stub.Identify(identify(ANN, **options))

    assert again.outcome != pb.OUTCOME_UNCHANGED
    assert len(again.pardot_calls) >= 1 and len(api_calls(fake)) > log


def track(mapping: pb.TrackMapping, plan: str = "pro") -> pb.TrackRequest:
    return pb.TrackRequest(
        event="Signed Up",
        context=struct({"traits": {"email": "ann@example.com", "org_id": "o-1"}}),
        properties=struct({"plan": plan}),
        settings=pb.PardotSettings(lookup_field="org_id", track_mappings={"Signed Up": mapping}),
    )


async def test_a_track_with_the_same_mapped_fields_costs_no_call(
    service: Service, fake: FakePardot
) -> None:
    mapping = pb.TrackMapping(fields={"plan": "comments"})
    await service.stub.Track(track(mapping))
    log = api_calls(fake)

    again = await service.stub.Track(track(mapping))

    assert again.outcome == pb.OUTCOME_UNCHANGED and list(again.pardot_calls) == []
    assert api_calls(fake) == log
    # The fields' action says Pardot held them already, not that they were written.
    assert [(a.kind, a.status) for a in again.actions] == [
        (pb.TRACK_ACTION_KIND_WRITE_FIELDS, pb.TRACK_ACTION_STATUS_ALREADY_APPLIED)
    ]
    changed = await service.stub.Track(track(mapping, plan="team"))
    assert changed.outcome == pb.OUTCOME_UPDATED
    assert [a.status for a in changed.actions] == [pb.TRACK_ACTION_STATUS_APPLIED]
    assert fake.state.get_prospect("v4", int(changed.prospect_id))["comments"] == "team"


async def test_a_track_records_its_external_activity_every_time(
    service: Service, fake: FakePardot
) -> None:
    mapping = pb.TrackMapping(
        fields={"plan": "comments"},
        external_activity=pb.ExternalActivity(extension="ProspectSync", type="Signed Up"),
    )
    await service.stub.Track(track(mapping))
    writes = [p for p in api_calls(fake) if "/prospect/" in p]

    again = await service.stub.Track(track(mapping))

    assert len(fake.state.activities("v4")) == 2
    assert [p for p in api_calls(fake) if "/prospect/" in p] == writes  # no prospect write
    assert again.outcome == pb.OUTCOME_UPDATED  # the activity changed the prospect
