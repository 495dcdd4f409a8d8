"""Issue 15, "Multi-select custom fields", end to end: the real server over real sockets
against fakepardot. A list for a custom field is written as Pardot takes a multi-value
field — ``f_0=a&f_1=b`` on v3/v4 single calls and in v4/v3 batch entries, a JSON array
on v5 — an empty list clears it, and a list for a standard field is INVALID_ARGUMENT
before any call. Evidence for each form: tests/fakepardot/test_fake_multi_value.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify, struct
from support.waiting import until

ORG = {"lookup_field": "org_id"}


def api_writes(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if c.path.startswith("/api/") and c.method != "GET"]


def only(fake: FakePardot, account: str) -> dict[str, Any]:
    [prospect] = fake.state.prospects(account)
    return prospect


async def test_v4_a_list_trait_is_a_multi_value_custom_field(
    service: Service, fake: FakePardot
) -> None:
    response = await service.stub.Identify(
        identify({"email": "m@example.com", "org_id": "O-1", "plan": ["pro", "team"]}, **ORG)
    )
    assert response.outcome == pb.OUTCOME_CREATED
    [write] = [c for c in api_writes(fake) if "/do/create/" in c.path]
    assert (write.form["plan_0"], write.form["plan_1"]) == ("pro", "team")
    assert "plan" not in write.form
    assert only(fake, DEMO.account_v4)["plan"] == {"value": ["pro", "team"]}


async def test_v3_numbers_and_bools_in_the_list_are_formatted_as_scalars(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Identify(
        identify({"email": "m@example.com", "plan": [10, True, "x"]}, connection="v3")
    )
    assert only(fake, DEMO.account_v3)["plan"] == {"value": ["10", "true", "x"]}


async def test_an_empty_list_clears_every_value(service: Service, fake: FakePardot) -> None:
    traits = {"email": "m@example.com", "plan": ["pro", "team"]}
    await service.stub.Identify(identify(traits, connection="v3"))
    await service.stub.Identify(identify({**traits, "plan": []}, connection="v3"))
    assert "plan" not in only(fake, DEMO.account_v3)
    assert api_writes(fake)[-1].form["plan_0"] == ""


async def test_v5_sends_the_list_as_a_json_array(service: Service, fake: FakePardot) -> None:
    await service.stub.Identify(
        identify({"email": "m@example.com", "plan": ["pro", "team"]}, connection="v5")
    )
    [write] = api_writes(fake)
    assert write.form["prospect"]["plan__c"] == ["pro", "team"]
    assert only(fake, DEMO.account_v4)["plan"] == {"value": ["pro", "team"]}


async def test_a_list_for_a_standard_field_is_refused_before_any_call(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(
            identify({"email": "m@example.com", "first_name": ["A", "B"]}, connection="v3")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.first_name is a list" in caught.value.details()
    assert api_writes(fake) == []


async def test_a_list_holding_objects_is_refused_naming_the_entry(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(
            identify({"email": "m@example.com", "plan": ["a", {"b": 1}]}, connection="v3")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.plan[1] is an object" in caught.value.details()
    assert api_writes(fake) == []


async def test_a_field_named_like_a_multi_values_wire_key_is_refused_naming_it(
    service: Service, fake: FakePardot
) -> None:
    """v3/v4 send a multi-value plan as plan_0, plan_1…: a trait plan_0 beside it
    would be taken by Pardot for plan's first value (or the other way round)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(
            identify(
                {"email": "m@example.com", "plan": ["pro", "team"], "plan_0": "x"},
                connection="v3",
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.plan_0 is sent as Pardot's plan_0" in caught.value.details()
    assert api_writes(fake) == []


async def test_a_track_mapped_list_property_is_a_multi_value_too(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Track(
        pb.TrackRequest(
            event="Plan Chosen",
            context=struct({"traits": {"email": "m@example.com"}}),
            properties=struct({"plans": ["pro", "team"]}),
            settings=pb.PardotSettings(
                connection="v3",
                track_mappings={"Plan Chosen": pb.TrackMapping(fields={"plans": "plan"})},
            ),
        )
    )
    assert only(fake, DEMO.account_v3)["plan"] == {"value": ["pro", "team"]}


async def test_a_track_mapped_list_for_a_standard_field_is_refused(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Track(
            pb.TrackRequest(
                event="Moved",
                context=struct({"traits": {"email": "m@example.com"}}),
                properties=struct({"cities": ["Paris", "Lyon"]}),
                settings=pb.PardotSettings(
                    connection="v3",
                    track_mappings={"Moved": pb.TrackMapping(fields={"cities": "city"})},
                ),
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "properties.cities is a list, but city is a standard Pardot field" in (
        caught.value.details()
    )
    assert api_writes(fake) == []


async def test_batched_writes_carry_multi_values_as_numbered_keys(
    service: Service, fake: FakePardot
) -> None:
    """Concurrent identifies share a batch call; its JSON entries carry the values as
    ``plan_0``/``plan_1`` (what a v4 client in production sends), never an array: with
    the fake refusing arrays (``batch_list_values``), every value still lands."""
    fake.state.batch_list_values = "refuse"
    await service.stub.Identify(identify({"email": "p0@example.com"}, connection="v3"))  # warm
    fake.state.calls.clear()
    fake.state.answers_held = True
    people = [
        identify({"email": f"p{n}@example.com", "plan": [f"a{n}", f"b{n}"]}, connection="v3")
        for n in range(1, 13)
    ]
    calls = [asyncio.ensure_future(service.stub.Identify(r, timeout=30)) for r in people]
    queue = service.running.connections.get("v3").account.writes
    await until(lambda: fake.state.in_flight("v3") == 5 and queue.queued == 7)
    fake.state.answers_held = False
    await asyncio.gather(*calls)
    batches = [c for c in api_writes(fake) if "/do/batch" in c.path]
    assert batches
    entries = [e for c in batches for e in json.loads(c.form["prospects"])["prospects"].values()]
    assert all("plan" not in entry and "plan_0" in entry for entry in entries)
    stored = {p["email"]: p.get("plan") for p in fake.state.prospects(DEMO.account_v3)}
    for n in range(1, 13):
        assert stored[f"p{n}@example.com"] == {"value": [f"a{n}", f"b{n}"]}
