"""Forget end to end (issue 15, "Erasure"; docs/erasure.md): the real server over real
sockets against fakepardot. Forget by each key deletes every matching prospect, a
later identify for the person is refused with PERSON_FORGOTTEN and nothing is
re-created; a dry run deletes nothing; a second Forget succeeds with nothing left;
the suppression store holds digests, never the plain email.

Permanent deletion from the recycle bin has no confirmed API (Salesforce Help,
"Permanently Delete Prospects", documents it only on the recycle bin's page): it is
tried only where the connection sets ``permanent_delete``, and fakepardot's
``v5_permanent_delete`` switch plays both sides of the account's answer."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.state.local import SUPPRESSIONS_FILE
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.log_capture import captured_logs
from support.service import Service, close_service, config_for, identify, open_service
from support.waiting import until

EMAIL = "forget.me@example.com"
ORG = {"lookup_field": "org_id"}
BY_USER = {"lookup_field": "org_id", "use_user_id_as_lookup_value": True}


def forget(connection: str = "", **keys: Any) -> pb.ForgetRequest:
    settings = {k: keys.pop(k) for k in list(keys) if k in ("lookup_field", "dry_run")}
    return pb.ForgetRequest(settings=pb.PardotSettings(connection=connection, **settings), **keys)


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info.reason


async def refused(service: Service, request: pb.IdentifyRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(request)
    return caught.value


def live(fake: FakePardot, account: str, email: str = EMAIL) -> list[int]:
    """The prospects with ``email`` not in the recycle bin."""
    return [
        p["id"]
        for p in fake.state.prospects(account)
        if p.get("email") == email and not fake.state.in_recycle_bin(account, p["id"])
    ]


def api_calls(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if c.path.startswith("/api/")]


@pytest.mark.parametrize("connection", ["default", "v5"])
async def test_forget_by_email_deletes_every_prospect_sharing_it_and_refuses_it_later(
    service: Service, fake: FakePardot, connection: str
) -> None:
    ids = [fake.state.add_prospect(DEMO.account_v4, email=EMAIL)["id"] for _ in range(2)]

    answer = await service.stub.Forget(forget(connection, email=EMAIL))

    assert sorted(int(p.prospect_id) for p in answer.prospects) == sorted(ids)
    assert all(p.deleted and not p.permanently_deleted for p in answer.prospects)
    assert answer.suppression_recorded and not answer.planned
    assert len(answer.warnings) == 2  # each still in the recycle bin
    assert live(fake, DEMO.account_v4) == []
    assert all(fake.state.in_recycle_bin(DEMO.account_v4, i) for i in ids)
    deletes = [c for c in answer.pardot_calls if c.method == "DELETE"]
    assert len(deletes) == 2  # to the recycle bin; no permanent delete unless configured

    fake.state.clear_calls()
    # v4 needs a way to match (a lookup field); v5 matches by email alone.
    how: dict[str, Any] = {"org_id": "o-1"} if connection == "default" else {}
    settings = ORG if connection == "default" else {}
    for variant in (EMAIL, EMAIL.upper()):
        traits = {"email": variant, **how}
        error = await refused(service, identify(traits, connection=connection, **settings))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(error) == "PERSON_FORGOTTEN"
    assert api_calls(fake) == []
    assert live(fake, DEMO.account_v4) == []
    assert len(fake.state.prospects(DEMO.account_v4)) == 2  # nothing re-created


async def test_forget_by_pardot_id_refuses_that_id_and_the_email_it_had(
    service: Service, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    answer = await service.stub.Forget(forget("v5", pardot_id=str(prospect["id"])))
    assert [p.prospect_id for p in answer.prospects] == [str(prospect["id"])]
    assert fake.state.in_recycle_bin(DEMO.account_v4, prospect["id"])
    error = await refused(
        service, identify({"email": "other@example.com"}, pardot_id=str(prospect["id"]))
    )
    assert reason_of(error) == "PERSON_FORGOTTEN"


async def test_forget_by_user_id_finds_the_prospect_through_the_identity_map(
    service: Service, fake: FakePardot
) -> None:
    created = await service.stub.Identify(identify({"email": EMAIL}, user_id="user-77", **BY_USER))
    answer = await service.stub.Forget(forget("default", user_id="user-77", **ORG))
    assert [p.prospect_id for p in answer.prospects] == [created.prospect_id]
    assert answer.identity_entries_dropped >= 1
    assert live(fake, DEMO.account_v4) == []
    fake.state.clear_calls()
    error = await refused(
        service, identify({"email": "new.address@example.com"}, user_id="user-77", **BY_USER)
    )
    assert reason_of(error) == "PERSON_FORGOTTEN"
    assert api_calls(fake) == []


async def test_forget_by_lookup_value_finds_the_prospect_through_the_identity_map(
    service: Service, fake: FakePardot
) -> None:
    created = await service.stub.Identify(identify({"email": EMAIL, "org_id": "org-9"}, **ORG))
    answer = await service.stub.Forget(forget("default", lookup_value="org-9", **ORG))
    assert [p.prospect_id for p in answer.prospects] == [created.prospect_id]
    error = await refused(
        service, identify({"email": "renamed@example.com", "org_id": "org-9"}, **ORG)
    )
    assert reason_of(error) == "PERSON_FORGOTTEN"


async def test_a_dry_run_reads_and_plans_but_deletes_drops_and_records_nothing(
    service: Service, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    answer = await service.stub.Forget(forget("v5", email=EMAIL, dry_run=True))
    assert answer.planned and not answer.suppression_recorded
    assert [p.prospect_id for p in answer.prospects] == [str(prospect["id"])]
    assert not answer.prospects[0].deleted
    assert [c.planned for c in answer.pardot_calls if c.method == "DELETE"] == [True]
    assert live(fake, DEMO.account_v4) == [prospect["id"]]
    again = await service.stub.Identify(identify({"email": EMAIL}, connection="v5"))
    assert again.prospect_id == str(prospect["id"])  # not refused: nothing was recorded


async def test_a_second_forget_succeeds_with_nothing_left(
    service: Service, fake: FakePardot
) -> None:
    fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    await service.stub.Forget(forget("v5", email=EMAIL))
    second = await service.stub.Forget(forget("v5", email=EMAIL))
    assert list(second.prospects) == [] and second.suppression_recorded


async def test_forget_with_nobody_in_pardot_still_refuses_a_later_create(
    service: Service, fake: FakePardot
) -> None:
    answer = await service.stub.Forget(forget("v5", email=EMAIL))
    assert list(answer.prospects) == [] and answer.suppression_recorded
    error = await refused(service, identify({"email": EMAIL}, connection="v5"))
    assert reason_of(error) == "PERSON_FORGOTTEN"
    assert fake.state.prospects(DEMO.account_v4) == []


async def test_a_legacy_login_connection_deletes_with_v3(
    service: Service, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v3, email=EMAIL)
    answer = await service.stub.Forget(forget("legacy", email=EMAIL))
    assert [p.prospect_id for p in answer.prospects] == [str(prospect["id"])]
    assert any("/do/delete/id/" in c.path for c in answer.pardot_calls)
    assert fake.state.get_prospect(DEMO.account_v3, prospect["id"]) is None


@pytest.mark.parametrize("account_allows", [True, False])
async def test_a_connection_with_permanent_delete_deletes_for_good_where_the_account_allows(
    fake: FakePardot, tmp_path: Path, account_allows: bool
) -> None:
    fake.state.set_switches(v5_permanent_delete=account_allows)
    config = config_for(fake, tmp_path / "state", v5={"permanent_delete": True})
    purging = await open_service(config)
    try:
        prospect = fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
        answer = await purging.stub.Forget(forget("v5", email=EMAIL))
    finally:
        await close_service(purging)
    [erased] = answer.prospects
    deletes = [c for c in answer.pardot_calls if c.method == "DELETE"]
    assert len(deletes) == 2  # to the recycle bin, then out of it
    assert erased.deleted and erased.permanently_deleted is account_allows
    if account_allows:
        assert list(answer.warnings) == []
        assert fake.state.in_recycle_bin(DEMO.account_v4, prospect["id"]) is None
    else:  # refused: still in the recycle bin, and the answer says so
        assert len(answer.warnings) == 1
        assert fake.state.in_recycle_bin(DEMO.account_v4, prospect["id"])


async def test_message_records_naming_the_prospect_are_dropped(
    service: Service, fake: FakePardot
) -> None:
    first = identify({"email": EMAIL}, connection="v5", message_id="m-forget-1")
    await service.stub.Identify(first)
    answer = await service.stub.Forget(forget("v5", email=EMAIL))
    assert answer.message_records_dropped == 1
    error = await refused(service, first)  # not answered from the dropped record
    assert reason_of(error) == "PERSON_FORGOTTEN"


async def test_forget_is_idempotent_by_message_id(service: Service, fake: FakePardot) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    request = forget("v5", email=EMAIL, message_id="forget-1")
    first = await service.stub.Forget(request)
    fake.state.clear_calls()
    replay = await service.stub.Forget(request)
    assert [p.prospect_id for p in replay.prospects] == [str(prospect["id"])]
    assert list(replay.pardot_calls) == [] and api_calls(fake) == []
    assert replay.prospects == first.prospects


@pytest.mark.parametrize(
    ("keys", "field", "reason"),
    [
        ({}, "email", "FORGET_NEEDS_A_KEY"),
        ({"user_id": "u-1"}, "settings.lookup_field", "INVALID_ARGUMENT"),
        ({"lookup_value": "v"}, "settings.lookup_field", "INVALID_ARGUMENT"),
        ({"email": "not an email"}, "email", "INVALID_ARGUMENT"),
        ({"pardot_id": "12x"}, "pardot_id", "INVALID_ARGUMENT"),
    ],
)
async def test_a_forget_that_names_nobody_usable_is_invalid(
    service: Service, fake: FakePardot, keys: dict[str, str], field: str, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Forget(forget("v5", **keys))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == reason
    assert field in (caught.value.details() or "")
    assert api_calls(fake) == []


async def test_the_suppression_file_holds_no_plain_email(
    service: Service, fake: FakePardot, tmp_path: Path
) -> None:
    fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    await service.stub.Forget(forget("v5", email=EMAIL))
    folder = tmp_path / "state"
    stored = b"".join(
        f.read_bytes() for f in folder.iterdir() if f.name.startswith(SUPPRESSIONS_FILE)
    )
    assert stored and b"forget.me" not in stored and b"example.com" not in stored


async def test_the_cli_sends_forget_and_prints_the_response_as_json(
    service: Service, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v4, email=EMAIL)
    args = ["--target", f"127.0.0.1:{service.port}", "--email", EMAIL, "--connection", "v5"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "forget",
        *args,
        "--dry-run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    printed = json.loads(out)
    assert printed["planned"] is True
    assert [p["prospectId"] for p in printed["prospects"]] == [str(prospect["id"])]
    assert live(fake, DEMO.account_v4) == [prospect["id"]]

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "forget",
        "--target",
        f"127.0.0.1:{service.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 1 and b"INVALID_ARGUMENT" in err


async def test_the_logs_of_a_forget_hold_neither_the_email_nor_the_ids(
    service: Service, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect(DEMO.account_v3, email=EMAIL)
    with captured_logs() as logs:  # the service's real logging setup
        await service.stub.Forget(forget("legacy", email=EMAIL))  # v3: read/email/<email>
        # "rpc.done" is logged after the answer has left.
        await until(lambda: bool(logs.named("rpc.done")))
    logged = logs.text
    assert logs.named("pardot.call")
    assert "forget.me" not in logged and str(prospect["id"]) not in logged
