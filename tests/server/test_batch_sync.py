"""BatchSync inside the server, over a real aio channel with stand-in connections that
let a test hold, fail or inspect each item's gateway: concurrency and its bound, the
call's deadline, a bug in one item, the one "rpc.done", and the per-item status built
by the same code as a unary call's."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
import structlog
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.servicer import BATCH_ITEMS_IN_FLIGHT
from server.status import to_grpc_status, to_rpc_status
from strategies.core.errors import (
    InvalidArgument,
    PardotError,
    PardotUnavailable,
    ProspectSyncError,
)
from support.waiting import until

if TYPE_CHECKING:  # the fixtures' types (conftest.py)
    from .conftest import LogCapture, Served


def identify(email: str, *, message_id: str = "", **settings: object) -> pb.BatchSyncItem:
    traits = struct_pb2.Struct()
    traits.update({"email": email} if email else {"first_name": "Nobody"})
    request = pb.IdentifyRequest(
        message_id=message_id, traits=traits, settings=pb.PardotSettings(**settings)
    )
    return pb.BatchSyncItem(identify=request)


def people(count: int) -> list[pb.BatchSyncItem]:
    return [identify(f"p{n}@example.com") for n in range(count)]


async def batch_sync(
    served: Served, items: list[pb.BatchSyncItem], deadline_s: float = 10
) -> pb.BatchSyncResponse:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    return await stub.BatchSync(pb.BatchSyncRequest(items=items), timeout=deadline_s)


def outcomes(reply: pb.BatchSyncResponse) -> list[str]:
    return [
        pb.Outcome.Name(r.identify.outcome) if r.HasField("identify") else r.WhichOneof("result")
        for r in reply.results
    ]


class Gate:
    """Holds every Pardot operation until opened; counts those that arrived."""

    def __init__(self) -> None:
        self.arrived = 0
        self.opened = asyncio.Event()

    async def __call__(self, operation: str) -> None:
        self.arrived += 1
        await self.opened.wait()


async def test_items_run_concurrently(served: Served) -> None:
    """Ten items are all at Pardot before any of them is answered: one at a time, the
    first would wait for the gate forever (and the bounded wait below would fail)."""
    gate = Gate()
    served.connections.before = gate
    call = asyncio.ensure_future(batch_sync(served, people(10)))
    await until(lambda: gate.arrived == 10)
    gate.opened.set()
    reply = await call
    assert outcomes(reply) == ["OUTCOME_CREATED"] * 10


async def test_items_in_flight_are_bounded(served: Served) -> None:
    gate = Gate()
    served.connections.before = gate
    count = BATCH_ITEMS_IN_FLIGHT + 100
    call = asyncio.ensure_future(batch_sync(served, people(count)))
    await until(lambda: gate.arrived == BATCH_ITEMS_IN_FLIGHT)
    for _ in range(20):  # give any item past the bound every chance to start
        await asyncio.sleep(0)
    assert gate.arrived == BATCH_ITEMS_IN_FLIGHT
    gate.opened.set()
    reply = await call
    assert gate.arrived == count
    assert outcomes(reply) == ["OUTCOME_CREATED"] * count


async def test_every_item_gets_the_calls_deadline(served: Served) -> None:
    await batch_sync(served, people(5), deadline_s=7)
    deadlines = served.connections.deadlines
    assert len(deadlines) == 5 and None not in deadlines
    assert len(set(deadlines)) == 1  # one deadline, the call's, read once


async def test_a_bug_in_one_item_is_that_items_internal_status(
    served: Served, logs: LogCapture, configured_secret: str
) -> None:
    async def explode_for_bob(operation: str) -> None:
        if structlog.contextvars.get_contextvars().get("message_id") == "m-bob":
            raise RuntimeError(f"kaboom with {configured_secret}")

    served.connections.before = explode_for_bob
    items = [
        identify("ann@example.com", message_id="m-ann"),
        identify("bob@example.com", message_id="m-bob"),
        identify("cy@example.com", message_id="m-cy"),
    ]
    reply = await batch_sync(served, items)

    assert outcomes(reply) == ["OUTCOME_CREATED", "error", "OUTCOME_CREATED"]
    status = reply.results[1].error
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "kaboom" not in status.message and "RuntimeError" not in status.message
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert info.reason == "INTERNAL" and info.metadata["error_id"] in status.message
    [logged] = logs.named("rpc.unexpected_error")
    assert (logged["error_id"], logged["item"]) == (info.metadata["error_id"], 1)
    assert logged["message_id"] == "m-bob" and "Traceback" in logged["exception"]
    assert configured_secret not in logs.text


async def test_one_rpc_done_for_the_call_with_its_counts(served: Served, logs: LogCapture) -> None:
    items = [identify("ann@example.com", message_id="m-1"), identify("")]
    await batch_sync(served, items)
    [done] = logs.named("rpc.done")
    assert done["method"] == "/prospectsync.v1.ProspectSync/BatchSync"
    assert (done["code"], done["items"], done["ok"], done["failed"]) == ("OK", 2, 1, 1)
    # The items' own fields stay in the items' log events.
    assert "message_id" not in done and "outcome" not in done and "reason" not in done


async def test_a_thousand_items_are_served(served: Served) -> None:
    reply = await batch_sync(served, people(1000))
    assert outcomes(reply) == ["OUTCOME_CREATED"] * 1000


async def test_too_many_items_are_refused_before_any_gateway(
    served: Served, logs: LogCapture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch_sync(served, people(1001))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert [v.field for v in bad.field_violations] == ["items"]
    assert served.connections.deadlines == []
    [done] = logs.named("rpc.done")
    assert (done["code"], done["items"], done["reason"]) == (
        "INVALID_ARGUMENT",
        1001,
        "INVALID_ARGUMENT",
    )


async def test_an_item_with_no_call_is_invalid_argument_naming_it(served: Served) -> None:
    reply = await batch_sync(served, [identify("ann@example.com"), pb.BatchSyncItem()])
    status = reply.results[1].error
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert [v.field for v in bad.field_violations] == ["items[1]"]
    assert reply.results[0].identify.outcome == pb.OUTCOME_CREATED


async def test_a_settings_problem_is_its_items_failed_precondition(served: Served) -> None:
    reply = await batch_sync(
        served, [identify("ann@example.com", connection="nope"), identify("bob@example.com")]
    )
    status = reply.results[0].error
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details) and info.reason == "UNKNOWN_CONNECTION"
    assert reply.results[1].identify.outcome == pb.OUTCOME_CREATED


async def test_batchsync_is_not_one_idempotent_unit(served: Served) -> None:
    """Only Identify and Track are keyed by message_id; a BatchSync sent twice runs its
    items twice unless the items carry message_ids."""
    items = [identify("ann@example.com")]
    first = await batch_sync(served, items)
    second = await batch_sync(served, items)
    assert outcomes(first) == ["OUTCOME_CREATED"]
    assert outcomes(second) == ["OUTCOME_UPDATED"]


def test_the_idempotent_methods_are_identify_track_and_forget(served: Served) -> None:
    keyed = served.running.idempotency.response_types
    assert sorted(keyed) == [
        "/prospectsync.v1.ProspectSync/Forget",
        "/prospectsync.v1.ProspectSync/Identify",
        "/prospectsync.v1.ProspectSync/Track",
    ]


# --- one status builder for unary calls and items ------------------------------------


def daily_limit() -> PardotError:
    error = PardotError(122, "Daily API rate limit met")
    error.retry_after = 60.0
    return error


ERRORS: list[ProspectSyncError] = [
    InvalidArgument("traits.email", "is required for API v3 (EmailV3)"),
    PardotUnavailable("Pardot did not answer"),
    daily_limit(),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.reason)
def test_a_unary_status_is_the_items_status(error: ProspectSyncError) -> None:
    """The trailers of a unary call carry exactly the Status an item's result holds
    (without a prefix): one builder."""
    unary = to_grpc_status(error)
    [(key, value)] = [(k, v) for k, v in unary.trailing_metadata if k.endswith("-bin")]
    assert key == "grpc-status-details-bin"
    assert status_pb2.Status.FromString(value) == to_rpc_status(error)


def test_the_prefix_places_field_violations_in_the_batch() -> None:
    error = InvalidArgument("context.traits.email", "is not an email address")
    status = to_rpc_status(error, field_prefix="items[7].track.")
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("items[7].track.context.traits.email", "is not an email address")
    ]
    assert status.message == "context.traits.email is not an email address"
