"""Issue 4: no secret in logs, errors, responses or pardot_calls — over the live server
against fakepardot, with the real logging setup, and every secret value the process
holds: the configured ones, the caller token, and the OAuth access tokens and legacy
api key the Pardot client learned at run time (through ``clients.auth``'s hook)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import structlog

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import RunningServer, start_server
from server.config import CallerAuthConfig
from server.logging import REDACTED, configure_logging
from support.service import config_for, identify

if TYPE_CHECKING:
    from .conftest import LogCapture

CALLER_TOKEN = "caller-token-5e1f0a9b7c3d2e4f"
AUTH = (("authorization", f"Bearer {CALLER_TOKEN}"),)
CONNECTIONS = ("default", "v3", "legacy")


async def learned_secrets(running: RunningServer) -> set[str]:
    """The access tokens and api key the connections hold right now."""
    return {
        await running.connections.get(name).transport.auth.token(request_timeout_s=5)
        for name in CONNECTIONS
    }


async def test_no_secret_reaches_a_log_line_a_status_or_a_response(
    fresh_fake: FakePardot, tmp_path: Path, logs: LogCapture
) -> None:
    fake = fresh_fake
    config = config_for(fake, tmp_path / "state")
    config = dataclasses.replace(
        config,
        server=dataclasses.replace(config.server, auth=CallerAuthConfig((CALLER_TOKEN,))),
    )
    configured = {
        DEMO.client_secret,
        DEMO.refresh_token,
        DEMO.password,
        DEMO.legacy_password,
        DEMO.user_key,
        CALLER_TOKEN,
    }
    assert configured <= set(config.secrets)
    configure_logging("debug", config.secrets, stream=logs.stream)  # as `serve` does

    answers: list[bytes] = []  # every response and every error's trailers, serialized
    learned: set[str] = set()
    running = await start_server(config)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.ProspectSyncStub(channel)

            async def call(request: pb.IdentifyRequest) -> None:
                try:
                    reply = await stub.Identify(request, timeout=10, metadata=AUTH)
                    answers.append(reply.SerializeToString())
                except grpc.aio.AioRpcError as error:
                    answers.append(error.details().encode())
                    answers.extend(
                        value if isinstance(value, bytes) else value.encode()
                        for _, value in error.trailing_metadata() or ()
                    )

            for round_ in range(2):
                # A change each round: an identical repeat would send nothing.
                traits = {"email": "sec@example.com", "org_id": "o-1", "first_name": f"R{round_}"}
                await call(identify(traits, lookup_field="org_id"))
                await call(identify(traits, connection="v3"))
                await call(identify(traits, connection="legacy"))
                learned |= await learned_secrets(running)
                fake.state.expire_tokens()  # the second round refreshes every credential
            # Failures too: Pardot refusing, and a caller sending a secret as a setting.
            fake.state.inject("err", err_code=46, path_contains="/api/prospect/")
            await call(identify(traits, connection="v3"))
            await call(identify(traits, strategy=DEMO.client_secret))
            learned |= await learned_secrets(running)
    finally:
        await running.stop(0)

    assert len(learned) == 6  # three connections, two rounds: every credential renewed
    secrets = configured | learned
    text = logs.text
    assert logs.named("pardot.call") and logs.named("rpc.done")
    for secret in secrets:
        assert secret not in text
        assert all(secret.encode() not in answer for answer in answers)
    paths = [call.path for call in fake.state.calls]
    assert not [p for p in paths if any(secret in p for secret in secrets)]

    # The learned ones are redacted, not merely absent: the hook reached the redactor.
    structlog.get_logger("probe").info("probe", values=sorted(learned))
    [probe] = logs.named("probe")
    assert probe["values"] == [REDACTED] * len(learned)
