"""Issue 4, client side, end to end: the live server under Pardot's limits and faults,
against fakepardot over HTTP — concurrency under load, queueing within the deadline,
the daily limit, retries that never duplicate a prospect, single-flight token refresh,
rejected credentials, and settings errors that say what to change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, close_service, config_for, identify, open_service
from support.waiting import until

ORG = {"lookup_field": "org_id"}
T = TypeVar("T", bound=Message)


def detail(error: grpc.aio.AioRpcError, kind: type[T]) -> T | None:
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status"
    message = kind()
    return message if any(d.Unpack(message) for d in status.details) else None


def reason(error: grpc.aio.AioRpcError) -> str:
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info is not None
    return info.reason


def retry_after_s(error: grpc.aio.AioRpcError) -> float:
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None, "no RetryInfo"
    return retry.retry_delay.ToNanoseconds() / 1e9


async def failure(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def api_calls(fake: FakePardot, contains: str = "/api/") -> list[Any]:
    return [c for c in fake.state.calls if contains in c.path]


def token_requests(fake: FakePardot) -> list[Any]:
    return api_calls(fake, "oauth2/token")


def org(n: int | str) -> pb.IdentifyRequest:
    return identify({"email": f"user{n}@example.com", "org_id": f"org-{n}"}, **ORG)


@pytest.fixture
async def open_with(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A service whose connections get the given overrides: ``await open_with(default={...})``."""
    opened: list[Service] = []

    async def open_(**overrides: dict[str, Any]) -> Service:
        service = await open_service(config_for(fake, tmp_path / "state", **overrides))
        opened.append(service)
        return service

    yield open_
    for service in opened:
        await close_service(service)


# --- limits -----------------------------------------------------------------------------


async def test_sixty_concurrent_identifies_stay_within_pardots_concurrency_limit(
    service: Service, fake: FakePardot
) -> None:
    fake.state.latency_s = 0.02

    replies = await asyncio.gather(*(service.stub.Identify(org(n), timeout=30) for n in range(60)))

    assert {r.outcome for r in replies} == {pb.OUTCOME_CREATED}
    assert [c for c in fake.state.calls if c.err_code == 66] == []
    creates = api_calls(fake, "/do/create/") + api_calls(fake, "/do/batchCreate")
    sent = sum(
        len(json.loads(c.form["prospects"])["prospects"]) if "batch" in c.path else 1
        for c in creates
    )
    assert sent == 60 and len(creates) < 60  # each prospect sent once, coalesced
    assert len(fake.state.prospects("v4")) == 60


async def test_the_concurrency_check_above_can_fail(
    open_with: Callable[..., Any], fake: FakePardot
) -> None:
    """Control: with Pardot allowing fewer requests in flight than the connection
    sends, the fake does answer err 66, so the test above would see it."""
    service = await open_with(default={"max_retries": 0})
    fake.state.latency_s = 0.02
    fake.state.max_concurrency = 3
    await asyncio.gather(
        *(service.stub.Identify(org(n), timeout=30) for n in range(20)),
        return_exceptions=True,
    )
    assert [c for c in fake.state.calls if c.err_code == 66] != []


async def test_a_caller_whose_deadline_passes_in_the_queue_gets_deadline_exceeded_unsent(
    service: Service, fake: FakePardot
) -> None:
    ids = [fake.state.add_prospect("v4", email=f"q{n}@example.com")["id"] for n in range(6)]
    await service.stub.Identify(identify({}, pardot_id=str(ids[0])), timeout=10)  # token
    fake.state.latency_s = 0.5
    holding = [
        asyncio.ensure_future(service.stub.Identify(identify({}, pardot_id=str(i)), timeout=10))
        for i in ids[:5]
    ]
    await until(lambda: fake.state.in_flight("v4") == 5)  # every slot is taken

    late = await failure(service.stub.Identify(identify({}, pardot_id=str(ids[5])), timeout=0.2))
    replies = await asyncio.gather(*holding)

    assert late.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert {r.outcome for r in replies} == {pb.OUTCOME_UPDATED}
    assert not [c for c in fake.state.calls if c.path.endswith(f"/id/{ids[5]}")]


async def test_the_daily_limit_fails_fast_with_retry_info_and_no_call(
    service: Service, fake: FakePardot
) -> None:
    seeded = fake.state.add_prospect("v4", email="daily@example.com")
    # skip_unchanged off: each identical call is sent, and counts against the limit.
    by_id = identify({"first_name": "D"}, pardot_id=str(seeded["id"]), skip_unchanged=False)
    fake.state.daily_limit = 2
    await service.stub.Identify(by_id, timeout=10)
    await service.stub.Identify(by_id, timeout=10)

    first = await failure(service.stub.Identify(by_id, timeout=10))
    sent = len(fake.state.calls)
    again = await failure(service.stub.Identify(by_id, timeout=10))

    for error in (first, again):
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(error) == "PARDOT_DAILY_LIMIT"
        info = detail(error, error_details_pb2.ErrorInfo)
        assert info is not None and info.metadata["err_code"] == "122"
        assert 0 < retry_after_s(error) <= 24 * 3600  # until midnight UTC
    assert len(fake.state.calls) == sent  # the second one reached nobody
    budget = await service.running.connections.get("default").budget()
    assert (budget.used, budget.remaining, budget.exhausted) == (2, 0, True)
    assert budget.used == fake.state.daily_calls("v4")


# --- faults and retries -----------------------------------------------------------------


async def test_a_proxy_502_page_on_a_read_is_retried_within_the_call(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("html_502", times=2, path_contains="/do/read/")

    reply = await service.stub.Identify(org(1), timeout=10)

    assert reply.outcome == pb.OUTCOME_CREATED
    steps = [(c.attempt, c.http_status) for c in reply.pardot_calls]
    # The read 3 times (the third finds nobody: HTTP 400 err 4, as Pardot answers), then
    # the create.
    assert steps == [(1, 502), (2, 502), (3, 400), (1, 200)]
    assert len(fake.state.prospects("v4")) == 1


async def test_err_66_on_a_create_is_resent_and_makes_one_prospect(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("err", times=2, err_code=66, path_contains="/do/create/")

    reply = await service.stub.Identify(org(2), timeout=10)

    assert reply.outcome == pb.OUTCOME_CREATED
    assert [c.err_code for c in reply.pardot_calls if "/do/create/" in c.path] == [66, 66, 0]
    assert [p["id"] for p in fake.state.prospects("v4")] == [int(reply.prospect_id)]


async def test_a_create_that_timed_out_is_updated_by_the_retry_not_created_twice(
    open_with: Callable[..., Any], fake: FakePardot
) -> None:
    service = await open_with(default={"timeout_s": 0.2})
    await service.stub.Identify(org("warm"), timeout=10)
    fake.state.inject("delay", times=1, delay_s=0.5, path_contains="/do/create/")

    first = await failure(service.stub.Identify(org(3), timeout=10))
    await until(lambda: len(fake.state.prospects("v4")) == 2)  # Pardot did create it
    retry = await service.stub.Identify(org(3), timeout=10)

    assert first.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(first) == "PARDOT_WRITE_UNCONFIRMED"
    assert retry_after_s(first) > 0
    assert retry.outcome == pb.OUTCOME_UPDATED
    [created] = [p for p in fake.state.prospects("v4") if p.get("org_id") == "org-3"]
    assert retry.prospect_id == str(created["id"])
    assert len(api_calls(fake, "/do/create/")) == 2  # warm-up and the one that timed out


async def test_a_retry_before_the_unanswered_create_lands_is_held_not_duplicated(
    open_with: Callable[..., Any], fake: FakePardot
) -> None:
    service = await open_with(default={"timeout_s": 0.2})
    await service.stub.Identify(org("warm"), timeout=10)
    fake.state.inject("delay", times=1, delay_s=1.0, path_contains="/do/create/")

    first = await failure(service.stub.Identify(org(4), timeout=10))
    early = await failure(service.stub.Identify(org(4), timeout=10))  # Pardot still busy
    await until(lambda: len(fake.state.prospects("v4")) == 2)
    retry = await service.stub.Identify(org(4), timeout=10)

    assert reason(first) == reason(early) == "PARDOT_WRITE_UNCONFIRMED"
    assert early.code() == grpc.StatusCode.UNAVAILABLE
    assert 0 < retry_after_s(early) <= 0.2
    assert retry.outcome == pb.OUTCOME_UPDATED
    assert len([p for p in fake.state.prospects("v4") if p.get("org_id") == "org-4"]) == 1
    assert len(api_calls(fake, "/do/create/")) == 2


# --- credentials ------------------------------------------------------------------------


async def test_expired_tokens_under_ten_concurrent_identifies_make_one_grant(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Identify(org("warm"), timeout=10)
    assert fake.state.token_grants == 1
    fake.state.expire_tokens()
    fake.state.latency_s = 0.01

    replies = await asyncio.gather(*(service.stub.Identify(org(n), timeout=10) for n in range(10)))

    assert {r.outcome for r in replies} == {pb.OUTCOME_CREATED}
    assert fake.state.token_grants == 2  # exactly one refresh for the ten
    assert len(token_requests(fake)) == 2


async def test_rejected_credentials_fail_fast_without_a_retry_storm(
    open_with: Callable[..., Any], fake: FakePardot
) -> None:
    service = await open_with(default={"refresh_token": "not-the-refresh-token"})

    errors = [
        e
        for e in await asyncio.gather(
            *(service.stub.Identify(org(n), timeout=10) for n in range(10)),
            return_exceptions=True,
        )
    ]
    later = await failure(service.stub.Identify(org("later"), timeout=10))

    for error in [*errors, later]:
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(error) == "PARDOT_AUTH_FAILED"
        assert "connections.default.refresh_token" in (error.details() or "")
        assert "not-the-refresh-token" not in (error.details() or "")
    assert len(token_requests(fake)) == 1  # one grant attempt for eleven calls
    assert api_calls(fake) == []


async def test_a_token_refused_again_after_one_refresh_is_pardot_auth_failed(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("err", times=2, err_code=184, path_contains="/api/prospect/")

    first = await failure(service.stub.Identify(org(5), timeout=10))
    later = await failure(service.stub.Identify(org(5), timeout=10))

    for error in (first, later):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(error) == "PARDOT_AUTH_FAILED"
    assert "connections.default.business_unit_id" in (first.details() or "")
    assert fake.state.token_grants == 2  # the first token and one refresh, then no more
    assert len(api_calls(fake)) == 2


# --- settings errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "request_", "expected_reason", "fix"),
    [
        (
            {"default": {"business_unit_id": "0Uv000000000009CAA"}},
            org(6),
            "BUSINESS_UNIT_INVALID",
            "connections.default.business_unit_id",
        ),
        (
            {},
            identify({"email": "v@example.com"}, api_version=pb.API_VERSION_3),
            "ACCOUNT_REQUIRES_API_V4",
            "set connections.default.api_version = 4",
        ),
        (
            {},
            identify({}, connection="v3", pardot_id="123", api_version=pb.API_VERSION_4),
            "ACCOUNT_REQUIRES_API_V3",
            "set connections.v3.api_version = 3",
        ),
    ],
)
async def test_settings_errors_tell_the_operator_what_to_change(
    open_with: Callable[..., Any],
    fake: FakePardot,
    overrides: dict[str, dict[str, Any]],
    request_: pb.IdentifyRequest,
    expected_reason: str,
    fix: str,
) -> None:
    service = await open_with(**overrides)

    error = await failure(service.stub.Identify(request_, timeout=10))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == expected_reason
    assert fix in (error.details() or "")
    assert len(api_calls(fake)) == 1  # not retried


async def test_a_missing_permission_names_the_credentials_to_look_at(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("err", times=1, err_code=46, path_contains="/do/read/")

    error = await failure(service.stub.Identify(org(7), timeout=10))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "PARDOT_PERMISSION_DENIED"
    assert "connections.default.client_id" in (error.details() or "")
    assert "pardot_api" in (error.details() or "")
