"""Issue 11 end to end: Salesforce's OAuth refusals by cause, and what real Pardot does
where our client used to expect otherwise — through the live server and fakepardot over
real sockets.

- Each refusal (PARDOT_API.md, "Authentication": RECORDED in Salesforce client issues)
  reaches the caller as FAILED_PRECONDITION ``PARDOT_AUTH_FAILED`` whose message names
  the configuration key to fix, never a value, with Salesforce's ``oauth_error`` in
  ``ErrorInfo.metadata``.
- Two connections refreshing one refresh token at once (as two replicas would): one is
  granted, the other answered "token request is already being processed"; that one
  waits and asks again, and both calls succeed — no cooldown, no FAILED_PRECONDITION.
- IdFidV4 under both sides of the fake's ``upsert_fid_creates`` switch (UNCONFIRMED:
  v4 upsert/fid with an fid nobody has and an email creates, as Pardot's docs say, or
  answers err 77).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.config import parse_config
from support.service import FAST, Service, close_service, config_for, identify, open_service

LEAD = "00Q5e00000AbCdEFGH"
SECRETS = (DEMO.client_secret, DEMO.refresh_token, DEMO.password)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status"
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    return info


async def failure(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def token_requests(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if "oauth2/token" in c.path]


@pytest.fixture
async def open_with(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A service whose connections get the given overrides."""
    opened: list[Service] = []

    async def open_(**overrides: dict[str, Any]) -> Service:
        service = await open_service(config_for(fake, tmp_path / "state", **overrides))
        opened.append(service)
        return service

    yield open_
    for service in opened:
        await close_service(service)


@pytest.fixture
async def twins(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    """A service with two connections, "left" and "right", on the same Salesforce
    credentials and business unit: as two replicas (each keeps its own token)."""
    twin = {
        "pardot_url": fake.url,
        "auth": "oauth",
        "token_url": fake.token_url,
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
        "api_version": 4,
        "business_unit_id": DEMO.business_unit_v4,
        "grant_type": "refresh_token",
        "refresh_token": DEMO.refresh_token,
        **FAST,
    }
    config = parse_config(
        {
            "server": {"listen": "127.0.0.1:0", "state_dir": str(tmp_path / "state")},
            "connections": {"left": twin, "right": twin},
        }
    )
    service = await open_service(config)
    yield service
    await close_service(service)


# --- each refusal, by cause -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "request_", "oauth_error", "keys"),
    [
        (
            {"default": {"refresh_token": "revoked-refresh-token"}},
            identify({"email": "a@example.com"}, pardot_id="1"),
            "invalid_grant",
            ["connections.default.refresh_token"],
        ),
        (
            {"default": {"client_id": "unknown-app"}},
            identify({"email": "a@example.com"}, pardot_id="1"),
            "invalid_client_id",
            ["connections.default.client_id"],
        ),
        (
            {"default": {"client_secret": "not-the-secret"}},
            identify({"email": "a@example.com"}, pardot_id="1"),
            "invalid_client",
            ["connections.default.client_secret"],
        ),
        (
            {"v3": {"password": "not-the-password"}},
            identify({"email": "a@example.com"}, connection="v3"),
            "invalid_grant",
            ["connections.v3.username", "connections.v3.password"],
        ),
        (
            {},  # the token endpoint stops taking refresh_token grants (the switch below)
            identify({"email": "a@example.com"}, pardot_id="1"),
            "unsupported_grant_type",
            ["connections.default.grant_type"],
        ),
    ],
    ids=["refresh-token", "client-id", "client-secret", "username-password", "grant-type"],
)
async def test_each_oauth_refusal_tells_the_operator_which_key_to_fix(
    open_with: Callable[..., Any],
    fake: FakePardot,
    overrides: dict[str, dict[str, str]],
    request_: pb.IdentifyRequest,
    oauth_error: str,
    keys: list[str],
) -> None:
    if oauth_error == "unsupported_grant_type":
        fake.state.oauth_grant_types = ["password", "client_credentials"]
    service = await open_with(**overrides)

    first = await failure(service.stub.Identify(request_, timeout=10))
    later = await failure(service.stub.Identify(request_, timeout=10))

    for error in (first, later):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert info.reason == "PARDOT_AUTH_FAILED"
        assert dict(info.metadata) == {"oauth_error": oauth_error}
        details = error.details() or ""
        for key in keys:
            assert key in details
        for value in (*SECRETS, "revoked-refresh-token", "unknown-app", "not-the-secret"):
            assert value not in details
        assert "not-the-password" not in details
    assert len(token_requests(fake)) == 1  # the second call was inside the cooldown
    assert [c for c in fake.state.calls if c.path.startswith("/api/")] == []


# --- several refreshes of one refresh token at once ---------------------------------------


async def test_two_replicas_refreshing_one_refresh_token_at_once_both_succeed(
    twins: Service, fake: FakePardot
) -> None:
    ids = [fake.state.add_prospect("v4", email=f"t{n}@example.com")["id"] for n in range(2)]
    fake.state.latency_s = 0.2  # a grant is "being processed" this long

    replies = await asyncio.gather(
        twins.stub.Identify(identify({}, connection="left", pardot_id=str(ids[0])), timeout=10),
        twins.stub.Identify(identify({}, connection="right", pardot_id=str(ids[1])), timeout=10),
    )

    assert [r.outcome for r in replies] == [pb.OUTCOME_UPDATED] * 2
    grants = token_requests(fake)
    assert [c.http_status for c in grants] == [200, 400, 200]  # granted, in progress, granted
    assert grants[2].ts >= grants[0].ts + fake.state.latency_s  # asked once the first was done
    assert fake.state.token_grants == 2  # embedded state: each replica asks for its own

    # Neither connection cools down: with fresh tokens needed, both simply ask again.
    fake.state.latency_s = 0.0
    fake.state.expire_tokens()
    for name, prospect_id in (("left", ids[0]), ("right", ids[1])):
        reply = await twins.stub.Identify(
            identify({}, connection=name, pardot_id=str(prospect_id)), timeout=10
        )
        assert reply.outcome == pb.OUTCOME_UPDATED
    assert [c.http_status for c in token_requests(fake)][3:] == [200, 200]


# --- IdFidV4 and upsert/fid on an fid nobody has --------------------------------------------


async def test_idfid_with_an_unknown_fid_and_an_email_creates_as_pardots_docs_say(
    service: Service, fake: FakePardot
) -> None:
    """The fake's default side: Pardot creates the prospect with that email and fid.
    The caller gets the new prospect's id."""
    reply = await service.stub.Identify(
        identify({"email": "new@example.com", "first_name": "Nia"}, pardot_fid=LEAD), timeout=10
    )

    [created] = fake.state.prospects("v4")
    assert (created["email"], created["first_name"], created["crm_lead_fid"]) == (
        "new@example.com",
        "Nia",
        LEAD,
    )
    assert reply.strategy == "IdFidV4"
    assert reply.prospect_id == str(created["id"])
    assert reply.outcome == pb.OUTCOME_CREATED  # said as it is, not taken for an update


async def test_idfid_with_a_known_fid_and_an_email_updates(
    service: Service, fake: FakePardot
) -> None:
    first = await service.stub.Identify(
        identify({"email": "new@example.com"}, pardot_fid=LEAD), timeout=10
    )
    again = await service.stub.Identify(
        identify({"email": "new@example.com", "first_name": "Nia"}, pardot_fid=LEAD), timeout=10
    )

    assert (again.outcome, again.prospect_id) == (pb.OUTCOME_UPDATED, first.prospect_id)
    assert len(fake.state.prospects("v4")) == 1


async def test_idfid_with_an_unknown_fid_is_not_found_when_pardot_does_not_create(
    service: Service, fake: FakePardot
) -> None:
    """The switch's other side: err 77 → NOT_FOUND, nothing created."""
    fake.state.upsert_fid_creates = False

    error = await failure(
        service.stub.Identify(identify({"email": "new@example.com"}, pardot_fid=LEAD), timeout=10)
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(error)
    assert (info.reason, info.metadata["err_code"]) == ("PROSPECT_NOT_FOUND", "77")
    assert fake.state.prospects("v4") == []


@pytest.mark.parametrize("creates", [True, False], ids=["docs", "switched-off"])
async def test_idfid_with_an_unknown_fid_and_no_email_is_not_found_either_way(
    service: Service, fake: FakePardot, creates: bool
) -> None:
    fake.state.upsert_fid_creates = creates

    error = await failure(
        service.stub.Identify(identify({"first_name": "Nia"}, pardot_fid=LEAD), timeout=10)
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(error).reason == "PROSPECT_NOT_FOUND"
    assert fake.state.prospects("v4") == []


# --- a failing token endpoint: one request at a time, backoff, fail fast ----------------

#: The connection's retry settings at their defaults: the token backoff follows them.
DEFAULT_BACKOFF = {"backoff_base_s": 0.1, "backoff_max_s": 2.0}


def attempts_allowed(elapsed_s: float, backoff_base_s: float, backoff_max_s: float) -> int:
    """The most token requests the backoff schedule lets through in ``elapsed_s``: after
    the n-th failure in a row, at least half of min(max, base·2ⁿ⁻¹) passes before
    the next request may start."""
    allowed, waited = 1, 0.0
    while True:
        waited += min(backoff_max_s, backoff_base_s * 2.0 ** (allowed - 1)) / 2
        if waited > elapsed_s:
            return allowed
        allowed += 1


def retry_delay_s(error: grpc.aio.AioRpcError) -> float | None:
    status = rpc_status.from_call(error)
    retry = error_details_pb2.RetryInfo()
    if status is None or not any(d.Unpack(retry) for d in status.details):
        return None
    return retry.retry_delay.ToNanoseconds() / 1e9


@pytest.mark.parametrize("fault", ["http_500", "drop"])
@pytest.mark.parametrize(
    ("connection", "token_path"),
    [("v3", "oauth2/token"), ("legacy", "/api/login/")],
    ids=["oauth", "legacy"],
)
async def test_a_failing_token_endpoint_gets_few_requests_and_callers_fail_fast(
    fake: FakePardot, open_with: Callable[..., Any], connection: str, token_path: str, fault: str
) -> None:
    """200 concurrent calls while the token endpoint (OAuth's grant, or the legacy
    login) fails: the endpoint sees no more requests than the backoff schedule allows
    for the time the calls took (it used to see up to 4 per call: 800), every call is
    UNAVAILABLE with a RetryInfo, and once the endpoint recovers, a caller that waits
    the RetryInfo it was given succeeds."""
    service = await open_with(**{connection: DEFAULT_BACKOFF})
    fake.state.inject(fault, times=1_000_000, path_contains=token_path)

    def requests_seen() -> int:
        return len([c for c in fake.state.calls if token_path in c.path])

    started = asyncio.get_running_loop().time()
    calls = [
        service.stub.Identify(
            identify({"email": f"p{n}@example.com"}, connection=connection), timeout=20
        )
        for n in range(200)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = asyncio.get_running_loop().time() - started

    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert {e.code() for e in errors} == {grpc.StatusCode.UNAVAILABLE}
    assert all(retry_delay_s(e) is not None for e in errors)
    allowed = attempts_allowed(elapsed, **DEFAULT_BACKOFF)
    assert 1 <= requests_seen() <= allowed, (requests_seen(), allowed, elapsed)
    assert requests_seen() <= 10  # small, whatever the machine's speed

    fake.state.clear_faults()
    request = identify({"email": "after@example.com"}, connection=connection)
    async with asyncio.timeout(10):
        while True:
            try:
                reply = await service.stub.Identify(request, timeout=20)
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                delay = retry_delay_s(error)
                assert delay is not None
                await asyncio.sleep(delay)
    assert reply.outcome == pb.OUTCOME_CREATED
