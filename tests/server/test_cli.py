"""The ``prospect-sync`` command as an operator runs it: a real process, real signals,
its stderr read line by line (every wait bounded)."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.cli import main

COMMAND = Path(sys.executable).with_name("prospect-sync")
WAIT_S = 20.0  # generous: only a broken shutdown ever waits this long
DEMO_SECRETS = (DEMO.client_secret, DEMO.refresh_token, DEMO.password)


@dataclass
class Process:
    """A running ``prospect-sync``; stderr lines arrive on a queue from a reader thread."""

    popen: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_event(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"exited before {event!r}; stderr:\n{''.join(self.seen)}")
            self.seen.append(line)
            record = _json(line)
            if record.get("event") == event:
                return record
        pytest.fail(f"no {event!r} within {WAIT_S}s; stderr:\n{''.join(self.seen)}")

    def finish(self) -> tuple[int, str]:
        """Exit code and all of stderr, once the process is gone (bounded)."""
        code = self.popen.wait(timeout=WAIT_S)
        while (line := self.lines.get(timeout=WAIT_S)) is not None:
            self.seen.append(line)
        return code, "".join(self.seen)

    def events(self) -> list[dict[str, Any]]:
        return [record for line in self.seen if (record := _json(line))]


def _json(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


@pytest.fixture
def spawn() -> Iterator[Any]:
    started: list[Process] = []

    def run(*args: str) -> Process:
        assert COMMAND.exists(), f"{COMMAND} is missing: run `make venv`"
        popen = subprocess.Popen(
            [str(COMMAND), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        process = Process(popen)
        started.append(process)
        return process

    yield run
    for process in started:  # only what this test started, by its own handle
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait(timeout=WAIT_S)


def write_config(tmp_path: Path, fake: FakePardot, *, mode: int) -> Path:
    """A v3 OAuth connection (password grant) to the fake, secrets in the file."""
    path = tmp_path / "service.toml"
    path.write_text(
        f"""
[server]
listen = "127.0.0.1:0"
state_dir = "state"

[connections.default]
pardot_url = "{fake.url}"
api_version = 3
business_unit_id = "{DEMO.business_unit_v3}"
auth = "oauth"
token_url = "{fake.token_url}"
grant_type = "password"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
username = "{DEMO.username}"
password = "{DEMO.password}"
timeout_s = 5
"""
    )
    path.chmod(mode)
    return path


def identify_once(port: int) -> pb.IdentifyResponse:
    traits = struct_pb2.Struct()
    # A new person each time, whatever the fake already holds.
    traits.update({"email": f"cli-{uuid.uuid4().hex[:8]}@example.com", "first_name": "Cli"})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        stub = pb_grpc.ProspectSyncStub(channel)
        return stub.Identify(pb.IdentifyRequest(message_id="cli-1", traits=traits), timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly_on_a_signal(
    spawn: Any, fake: FakePardot, tmp_path: Path, signum: signal.Signals
) -> None:
    config = write_config(tmp_path, fake, mode=0o644)
    process = spawn("serve", "--config", str(config))
    started = process.wait_for_event("server.started")

    reply = identify_once(started["port"])
    assert (reply.strategy, reply.outcome) == ("EmailV3", pb.OUTCOME_CREATED)

    process.popen.send_signal(signum)
    code, stderr = process.finish()
    assert code == 0, stderr
    names = [e.get("event") for e in process.events()]
    assert names.index("server.stopping") < names.index("server.stopped")
    [stopping] = [e for e in process.events() if e.get("event") == "server.stopping"]
    assert stopping["signal"] == signum.name
    [done] = [e for e in process.events() if e.get("event") == "rpc.done"]
    assert (done["code"], done["message_id"], done["strategy"]) == ("OK", "cli-1", "EmailV3")
    assert done["pardot_calls"] >= 1
    # The config file is world-readable and holds secrets: warned, by key, not by value.
    [warning] = [e for e in process.events() if e.get("event") == "config.world_readable"]
    assert "connections.default.client_secret" in warning["keys"]
    for secret in DEMO_SECRETS:
        assert secret not in stderr


def test_serve_does_not_warn_about_a_private_config(
    spawn: Any, fake: FakePardot, tmp_path: Path
) -> None:
    process = spawn("serve", "--config", str(write_config(tmp_path, fake, mode=0o600)))
    process.wait_for_event("server.started")
    process.popen.send_signal(signal.SIGTERM)
    code, stderr = process.finish()
    assert code == 0, stderr
    assert "config.world_readable" not in stderr


def test_a_bad_config_is_one_line_and_exit_code_2(spawn: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[connections.default]\napi_version = 6\nclient_secret = "hunter2-secret"\n')
    code, stderr = spawn("serve", "--config", str(bad)).finish()
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("prospect-sync: ")
    assert "connections.default.api_version: must be 3, 4 or 5" in stderr
    assert "hunter2-secret" not in stderr and "Traceback" not in stderr


def test_a_bad_listen_flag_is_a_config_error(
    capsys: pytest.CaptureFixture[str], fake: FakePardot, tmp_path: Path
) -> None:
    config = write_config(tmp_path, fake, mode=0o600)
    assert main(["serve", "--config", str(config), "--listen", "127.0.0.1"]) == 2
    assert capsys.readouterr().err.startswith("prospect-sync: --listen: must be")


def test_serve_without_a_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve"])
    assert caught.value.code == 2
    assert "--config" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_fake_pardot_serves_the_demo_credentials(spawn: Any) -> None:
    port = free_port()
    process = spawn("fake-pardot", "--port", str(port), "--host", "127.0.0.1", "--demo")
    token_url = f"http://127.0.0.1:{port}/services/oauth2/token"
    form = {
        "grant_type": "refresh_token",
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
        "refresh_token": DEMO.refresh_token,
    }
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            answer = httpx.post(token_url, data=form, timeout=2)
            break
        except httpx.TransportError:
            assert process.popen.poll() is None, "fake-pardot exited"
            assert time.monotonic() < deadline, "fake-pardot never answered"
            time.sleep(0.05)
    assert answer.status_code == 200 and "access_token" in answer.json()

    process.popen.send_signal(signal.SIGTERM)
    code, _ = process.finish()
    assert code == 0


def test_python_dash_m_server_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "--help"], capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0 and "fake-pardot" in done.stdout
