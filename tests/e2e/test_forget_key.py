"""A configured suppression key end to end (``server.suppression_key``; docs/erasure.md,
"The suppression and its key"): the real server over real sockets against fakepardot.
Forget under the configured key, and a restarted server with the same key still refuses
the person while the state holds no key; a restart with another key, or with the
setting removed, refuses to start (its suppressions would stop matching, and a person
forgotten must stay forgotten); the generated key can be adopted as the configured one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc
import pytest

from clients.state.local import SUPPRESSION_KEY_FILE
from fakepardot import DEMO, FakePardot
from server.config import ConfigError, ServiceConfig
from support.service import close_service, config_for, identify, open_service

from .test_forget import EMAIL, forget, reason_of

KEY = "d4" * 32
OTHER_KEY = "e5" * 32


def with_key(config: ServiceConfig, key: str) -> ServiceConfig:
    return dataclasses.replace(
        config, server=dataclasses.replace(config.server, suppression_key=key)
    )


async def forget_then_restart(config: ServiceConfig, again: ServiceConfig) -> str:
    """Forget EMAIL on ``config``'s server, then an identify for them on ``again``'s
    (the same state): the identify's failure reason."""
    first = await open_service(config)
    try:
        answer = await first.stub.Forget(forget("v5", email=EMAIL))
        assert answer.suppression_recorded
    finally:
        await close_service(first)
    second = await open_service(again)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second.stub.Identify(identify({"email": EMAIL}, connection="v5"))
    finally:
        await close_service(second)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return reason_of(caught.value)


async def test_a_configured_key_refuses_the_forgotten_and_stays_out_of_the_state(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    config = with_key(config_for(fake, state_dir), KEY)
    assert await forget_then_restart(config, config) == "PERSON_FORGOTTEN"
    assert fake.state.prospects(DEMO.account_v4) == []  # nothing re-created
    assert not (state_dir / SUPPRESSION_KEY_FILE).exists()
    stored = b"".join(f.read_bytes() for f in state_dir.iterdir() if f.is_file())
    assert KEY.encode() not in stored and bytes.fromhex(KEY) not in stored


@pytest.mark.parametrize("changed", [OTHER_KEY, ""], ids=["another key", "setting removed"])
async def test_a_server_with_another_key_refuses_to_start(
    fake: FakePardot, tmp_path: Path, changed: str
) -> None:
    config = with_key(config_for(fake, tmp_path / "state"), KEY)
    first = await open_service(config)
    try:
        await first.stub.Forget(forget("v5", email=EMAIL))
    finally:
        await close_service(first)
    with pytest.raises(ConfigError) as refused:
        await open_service(with_key(config, changed))
    [problem] = refused.value.problems
    assert problem.startswith("server.suppression_key: ")
    assert "recorded under another key" in problem
    assert KEY not in problem and OTHER_KEY not in problem


async def test_the_generated_key_can_be_adopted_as_the_configured_one(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    generated = config_for(fake, state_dir)
    first = await open_service(generated)
    try:
        await first.stub.Forget(forget("v5", email=EMAIL))
    finally:
        await close_service(first)
    key_file = state_dir / SUPPRESSION_KEY_FILE
    kept = key_file.read_text().strip()
    key_file.unlink()  # the operator moved it out of the state, into the secret
    second = await open_service(with_key(generated, kept))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second.stub.Identify(identify({"email": EMAIL}, connection="v5"))
    finally:
        await close_service(second)
    assert reason_of(caught.value) == "PERSON_FORGOTTEN"
    assert not key_file.exists()
