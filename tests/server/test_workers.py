"""``prospect-sync serve --workers N`` as an operator runs it: a real supervisor process
and its real worker processes on one port (SO_REUSEPORT), sharing the state through
the session's real redis-server, against fakepardot over HTTP. Every wait is bounded;
which worker the kernel hands a connection to is its choice, so the test opens new
connections until both have answered (bounded), instead of assuming a spread.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
from support.redis_server import fresh_prefix, session_server

COMMAND = Path(sys.executable).with_name("prospect-sync")
WAIT_S = 30.0  # generous: only a broken start or shutdown ever waits this long
#: New connections to open, at most, before both workers must have answered one: the
#: chance that the kernel gives 40 connections in a row to one of 2 workers is 2**-39.
MAX_CONNECTIONS = 40


@dataclass
class Process:
    """A running ``prospect-sync``; its stderr's JSON lines, read by a thread."""

    popen: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _take(self, left: float) -> bool:
        try:
            line = self.lines.get(timeout=max(left, 0.0))
        except queue.Empty:
            return True
        if line is None:
            return False
        self.text.append(line)
        try:
            record = json.loads(line)
        except ValueError:
            return True
        if isinstance(record, dict):
            self.seen.append(record)
        return True

    def wait_until(self, condition: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {what} within {WAIT_S}s; stderr:\n{''.join(self.text)}")
            if not self._take(left):
                pytest.fail(f"exited before {what}; stderr:\n{''.join(self.text)}")

    def finish(self) -> int:
        code = self.popen.wait(timeout=WAIT_S)
        while self._take(WAIT_S):
            pass
        return code

    def events(self, name: str) -> list[dict[str, Any]]:
        return [record for record in self.seen if record.get("event") == name]


@pytest.fixture
def spawn() -> Iterator[Callable[..., Process]]:
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
        for pid in worker_pids(process):  # and its workers, by the pids it logged
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def worker_pids(process: Process) -> set[int]:
    return {event["worker_pid"] for event in process.events("workers.started")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def write_config(tmp_path: Path, fake: FakePardot, *, state: str = "redis") -> Path:
    """A v3 OAuth connection to the fake, the state on the session's Redis under a
    prefix of this test's own, metrics on any free port."""
    path = tmp_path / "service.toml"
    path.write_text(
        f"""
[server]
listen = "127.0.0.1:0"
state_dir = "state"
state = "{state}"
shutdown_grace_s = 2

[server.metrics]
listen = "127.0.0.1:0"

[redis]
url = "{session_server().url}"
key_prefix = "{fresh_prefix()}"

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
    path.chmod(0o600)
    return path


def identify_on_a_new_connection(port: int) -> None:
    traits = struct_pb2.Struct()
    traits.update({"email": f"w-{uuid.uuid4().hex[:10]}@example.com"})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        reply = pb_grpc.ProspectSyncStub(channel).Identify(
            pb.IdentifyRequest(message_id=uuid.uuid4().hex, traits=traits), timeout=10
        )
        assert reply.outcome == pb.OUTCOME_CREATED


def started_workers(process: Process, count: int) -> list[dict[str, Any]]:
    process.wait_until(
        lambda seen: len([e for e in seen if e.get("event") == "server.started"]) >= count,
        f"{count} started workers",
    )
    return process.events("server.started")


def answering_pids(process: Process) -> set[int]:
    return {e["pid"] for e in process.events("rpc.done") if "pid" in e}


def handled_identifies(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and 'grpc_method="Identify"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_workers_answer_on_one_port_and_stop_together_on_sigterm(
    spawn: Callable[..., Process], fake: FakePardot, tmp_path: Path
) -> None:
    process = spawn("serve", "--config", str(write_config(tmp_path, fake)), "--workers", "2")
    workers = started_workers(process, 2)
    assert len({w["pid"] for w in workers}) == 2
    [port] = {w["port"] for w in workers}  # port 0 resolved once, for both
    assert port != 0
    [metrics] = process.events("metrics.listening")  # the supervisor's, not a worker's
    assert "pid" not in metrics

    calls = 0
    while len(answering_pids(process)) < 2 and calls < MAX_CONNECTIONS:
        identify_on_a_new_connection(port)
        calls += 1
        process.wait_until(
            lambda seen, done=calls: len([e for e in seen if e.get("event") == "rpc.done"]) >= done,
            f"rpc.done #{calls}",
        )
    assert answering_pids(process) == {w["pid"] for w in workers}
    assert handled_identifies(metrics["port"]) == calls  # both workers' counts, added up

    pids = worker_pids(process)
    process.popen.send_signal(signal.SIGTERM)
    assert process.finish() == 0, "".join(process.text)
    stopped = {e.get("pid") for e in process.events("server.stopped")}
    assert stopped == pids  # each worker drained on its own
    assert not [pid for pid in pids if alive(pid)]
    assert DEMO.client_secret not in "".join(process.text)


def test_a_worker_that_dies_stops_the_service_with_exit_code_1(
    spawn: Callable[..., Process], fake: FakePardot, tmp_path: Path
) -> None:
    process = spawn("serve", "--config", str(write_config(tmp_path, fake)), "--workers", "2")
    workers = started_workers(process, 2)
    victim, survivor = (w["pid"] for w in workers)

    os.kill(victim, signal.SIGKILL)
    assert process.finish() == 1, "".join(process.text)
    [died] = process.events("workers.worker_died")
    assert (died["worker_pid"], died["exit_code"]) == (victim, -signal.SIGKILL)
    stopped = process.events("server.stopped")
    assert [e["pid"] for e in stopped] == [survivor]  # the other one drained
    assert not alive(victim) and not alive(survivor)


def test_several_workers_on_the_embedded_state_is_a_config_error(
    capsys: pytest.CaptureFixture[str], fake: FakePardot, tmp_path: Path
) -> None:
    config = write_config(tmp_path, fake, state="sqlite")
    assert main(["serve", "--config", str(config), "--workers", "2"]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "--workers" in stderr and "server.state" in stderr
