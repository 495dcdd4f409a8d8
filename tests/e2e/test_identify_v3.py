"""Issue 2 end to end: EmailV3 through the live server and fakepardot over HTTP."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.examples import TOM
from support.service import Service, identify

#: TOM with a trait changed: a repeat of an identical identify sends nothing
#: (settings.skip_unchanged), and these tests are about what a sent call meets.
CHANGED_TOM = {**TOM, "first_name": "Thomas"}


def prospect_calls(fake: FakePardot) -> list:
    return [c for c in fake.state.calls if "/api/prospect/" in c.path]


def stored(fake: FakePardot, account: str, email: str) -> list[dict]:
    return [p for p in fake.state.prospects(account) if p.get("email") == email]


def details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list]:
    status = rpc_status.from_call(error)
    info, violations = error_details_pb2.ErrorInfo(), []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(bad.field_violations)
    return info, violations


@pytest.mark.parametrize("connection", ["v3", "legacy"])
async def test_documentation_example_creates_then_updates(
    service: Service, fake: FakePardot, connection: str
) -> None:
    created = await service.stub.Identify(identify(TOM, connection=connection))
    assert created.outcome == pb.OUTCOME_CREATED
    assert created.strategy == "EmailV3"
    [prospect] = stored(fake, "v3", "tom@example.com")
    assert str(prospect["id"]) == created.prospect_id
    assert prospect["first_name"] == "Tom" and prospect["last_name"] == "Smykowski"
    assert prospect["job_title"] == "VP of Engineering"
    assert prospect["comments"].startswith("Im a people person")
    upserts = [c for c in created.pardot_calls if "/do/upsert/" in c.path]
    assert len(upserts) == 1 and upserts[0].http_status == 200 and upserts[0].err_code == 0

    fake.state.calls.clear()
    updated = await service.stub.Identify(
        identify({"email": "tom@example.com", "company": "Initrode"}, connection=connection)
    )
    assert updated.outcome == pb.OUTCOME_UPDATED
    assert updated.prospect_id == created.prospect_id
    assert len(prospect_calls(fake)) == 1, "one upsert, never read-then-write"
    assert stored(fake, "v3", "tom@example.com")[0]["company"] == "Initrode"


async def test_missing_email_is_invalid_argument_naming_the_field(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify({"name": "No Email"}, connection="v3"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.email is required for API v3 (EmailV3)" in caught.value.details()
    info, violations = details(caught.value)
    assert info.domain == "prospectsync.pardot" and info.reason
    assert [v.field for v in violations] == ["traits.email"]
    assert prospect_calls(fake) == []


async def test_plus_in_email_reaches_pardot_intact(service: Service, fake: FakePardot) -> None:
    response = await service.stub.Identify(
        identify({"email": "tom+pardot@example.com"}, connection="v3")
    )
    assert response.outcome == pb.OUTCOME_CREATED
    assert len(stored(fake, "v3", "tom+pardot@example.com")) == 1
    again = await service.stub.Identify(  # a change, so that it is sent
        identify({"email": "tom+pardot@example.com", "first_name": "Tom"}, connection="v3")
    )
    assert again.outcome == pb.OUTCOME_UPDATED and again.prospect_id == response.prospect_id


async def test_legacy_api_key_expiry_logs_in_again_once(service: Service, fake: FakePardot) -> None:
    await service.stub.Identify(identify(TOM, connection="legacy"))
    logins = fake.state.logins
    fake.state.expire_tokens()
    response = await service.stub.Identify(identify(CHANGED_TOM, connection="legacy"))
    assert response.outcome == pb.OUTCOME_UPDATED
    assert fake.state.logins == logins + 1
    assert [c.err_code for c in response.pardot_calls if "/do/upsert/" in c.path] == [1, 0]


async def test_oauth_token_expiry_refreshes_once(service: Service, fake: FakePardot) -> None:
    await service.stub.Identify(identify(TOM, connection="v3"))
    grants = fake.state.token_grants
    fake.state.expire_tokens()
    response = await service.stub.Identify(identify(CHANGED_TOM, connection="v3"))
    assert response.outcome == pb.OUTCOME_UPDATED
    assert fake.state.token_grants == grants + 1
    assert [c.err_code for c in response.pardot_calls if "/do/upsert/" in c.path] == [184, 0]


async def test_proxy_502_page_is_retried_without_a_duplicate(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("html_502", path_contains="/do/upsert/")
    response = await service.stub.Identify(identify(TOM, connection="v3"))
    assert response.outcome == pb.OUTCOME_CREATED
    assert [c.http_status for c in response.pardot_calls if "/do/upsert/" in c.path] == [502, 200]
    assert len(stored(fake, "v3", "tom@example.com")) == 1


async def test_concurrency_limit_err_66_is_retried(service: Service, fake: FakePardot) -> None:
    fake.state.inject("err", err_code=66, path_contains="/do/upsert/")
    response = await service.stub.Identify(identify(TOM, connection="v3"))
    assert response.outcome == pb.OUTCOME_CREATED
    assert [c.err_code for c in response.pardot_calls if "/do/upsert/" in c.path] == [66, 0]


async def test_502_on_every_attempt_is_unavailable_with_retry_info(
    service: Service, fake: FakePardot
) -> None:
    fake.state.inject("html_502", times=100, path_contains="/do/upsert/")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify(TOM, connection="v3"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info, _ = details(caught.value)
    assert info.reason == "PARDOT_UNAVAILABLE"
    assert stored(fake, "v3", "tom@example.com") == []


async def test_dry_run_plans_the_upsert_and_writes_nothing(
    service: Service, fake: FakePardot
) -> None:
    response = await service.stub.Identify(identify(TOM, connection="v3", dry_run=True))
    assert response.outcome == pb.OUTCOME_PLANNED
    [planned] = [c for c in response.pardot_calls if c.planned]
    assert planned.method == "POST" and "/do/upsert/email/tom%40example.com" in planned.path
    assert prospect_calls(fake) == []


async def test_unknown_connection_is_failed_precondition(service: Service) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify(TOM, connection="nope"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "settings.connection" in caught.value.details()
