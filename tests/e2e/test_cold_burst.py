"""Issue 12, item 1, end to end: a cold LookupFieldV4 call that cannot finish before its
deadline is refused through the live server before it spends a Pardot call —
UNAVAILABLE, ``DEADLINE_UNREACHABLE``, RetryInfo — while the calls ahead of it finish.

The queue is made exact with ``answers_held`` (one slot, its request unanswered, two
calls waiting), and the account's pace is what it observed: one cold call answered
after the fake's 0.2 s per request (a read, then a create). How long the burst itself
takes under ``make bench`` is measured there ("cold lookup burst"), not here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, close_service, config_for, identify, open_service
from support.waiting import until

ORG = {"lookup_field": "org_id"}


def cold(n: int) -> pb.IdentifyRequest:
    return identify(
        {"email": f"c{n}@example.com", "org_id": f"org-{n}"}, message_id=f"cold-{n}", **ORG
    )


def about(fake: FakePardot, email: str) -> list[Any]:
    return [c for c in fake.state.calls if email in c.path or email in str(c.form)]


@pytest.fixture
async def one_slot(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    config = config_for(fake, tmp_path / "state", default={"max_concurrency": 1})
    service = await open_service(config)
    yield service
    fake.state.answers_held = False
    await close_service(service)


async def test_a_cold_call_that_cannot_finish_is_refused_before_any_pardot_call(
    one_slot: Service, fake: FakePardot
) -> None:
    service = one_slot
    slots = service.running.connections.get("default").account.slots
    fake.state.latency_s = 0.2
    warm = await service.stub.Identify(cold(0), timeout=30)  # read + create, ≥ 0.2 s each
    assert warm.outcome == pb.OUTCOME_CREATED
    fake.state.latency_s = 0.0
    fake.state.answers_held = True
    ahead = [asyncio.ensure_future(service.stub.Identify(cold(n), timeout=30)) for n in (1, 2, 3)]
    await until(lambda: fake.state.in_flight("v4") == 1 and slots.waiting() == 2)

    # Two reads wait before its own: ≥ 0.4 s, then a read and a create: ≥ 0.4 s more.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(cold(9), timeout=0.6)

    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "cannot finish before its deadline" in str(error.details())
    status = rpc_status.from_call(error)
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert info.reason == "DEADLINE_UNREACHABLE"
    assert any(d.Unpack(retry) for d in status.details)
    assert retry.retry_delay.ToNanoseconds() > 0
    fake.state.answers_held = False
    replies = await asyncio.gather(*ahead)
    assert {r.outcome for r in replies} == {pb.OUTCOME_CREATED}
    assert about(fake, "c9@example.com") == []  # not a read, not a create

    again = await service.stub.Identify(cold(9), timeout=30)  # retried: nothing to undo
    assert again.outcome == pb.OUTCOME_CREATED
