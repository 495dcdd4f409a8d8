"""`make run` stops both of its processes (the fake Pardot and the server) however it is
stopped: SIGTERM to make (`kill`), Ctrl-C (SIGINT to the terminal's foreground group),
a closed terminal (SIGHUP to the group), `timeout N make run` (which signals make and its
group: sending timeout a SIGTERM does exactly what its expiry does), and when the server
exits on its own. Each run uses free ports and its own state folder; every wait is
bounded, and none is the thing that passes or fails a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support.make import IN_A_VENV, REPO, make_command

pytestmark = pytest.mark.skipif(not IN_A_VENV, reason="runs make with the suite's virtualenv")

SERVING = health_pb2.HealthCheckResponse.SERVING


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def alive(pid: int) -> bool:
    """Running, or stopped but not yet reaped by anyone (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_running(*args: str) -> list[int]:
    """The live processes whose argv holds ``args`` in a row after a path ending in
    ``prospect-sync`` (the console script; not the make recipe's shell, whose one
    argument quotes the whole recipe)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        words = argv(int(entry.name))
        for at, word in enumerate(words):
            if word.endswith("/prospect-sync") and words[at + 1 : at + 1 + len(args)] == [*args]:
                if alive(int(entry.name)):
                    found.append(int(entry.name))
                break
    return found


def within(seconds: float, condition: Callable[[], bool], step_s: float = 0.05) -> bool:
    """Polls ``condition`` until it holds or ``seconds`` pass; says whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)


@dataclass
class MakeRun:
    process: subprocess.Popen[bytes]
    log: Path
    grpc_port: int
    fake_port: int
    config: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def server_pids(self) -> list[int]:
        return processes_running("serve", "--config", str(self.config))

    def fake_pids(self) -> list[int]:
        return processes_running("fake-pardot", "--port", str(self.fake_port))

    def serving(self) -> bool:
        try:
            fake = httpx.get(f"http://127.0.0.1:{self.fake_port}/_fake/state", timeout=1)
            fake.raise_for_status()
            with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        except (httpx.HTTPError, grpc.RpcError):
            return False
        return reply.status == SERVING

    def wait_serving(self) -> None:
        started = within(90, lambda: self.process.poll() is not None or self.serving())
        assert started and self.process.poll() is None, f"make run did not start:\n{self.output}"


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., MakeRun]]:
    runs: list[MakeRun] = []

    def start(*wrapper: str, grpc_port: int | None = None) -> MakeRun:
        fake_port, grpc_port = free_port(), grpc_port or free_port()
        config = tmp_path / f"demo-{fake_port}.toml"
        demo = (REPO / "examples" / "demo.toml").read_text()
        text = (
            demo.replace("127.0.0.1:8750", f"127.0.0.1:{fake_port}")
            .replace('"127.0.0.1:50051"', f'"127.0.0.1:{grpc_port}"')
            .replace('".prospectsync"', f'"{tmp_path / "state"}"')
        )
        assert text.count(str(fake_port)) >= 3 and str(grpc_port) in text and "state" in text
        config.write_text(text)
        log = tmp_path / f"make-run-{fake_port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*wrapper, *make_command("run", f"CONFIG={config}", f"FAKE_PORT={fake_port}")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, as a terminal's foreground job is
            )
        run = MakeRun(process, log, grpc_port, fake_port, config)
        runs.append(run)
        return run

    yield start
    for run in runs:  # whatever a failed test left behind
        for pid in [run.process.pid, *run.server_pids(), *run.fake_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.process.wait(timeout=10)


STOPS = {
    "SIGTERM to make (kill)": lambda pid: os.kill(pid, signal.SIGTERM),
    "SIGINT to the group (Ctrl-C)": lambda pid: os.killpg(pid, signal.SIGINT),
    "SIGHUP to the group (terminal closed)": lambda pid: os.killpg(pid, signal.SIGHUP),
}


def assert_both_stop(run: MakeRun, stop: Callable[[int], None]) -> None:
    run.wait_serving()
    [server], [fake] = run.server_pids(), run.fake_pids()

    stop(run.process.pid)

    run.process.wait(timeout=60)
    assert within(10, lambda: not alive(server) and not alive(fake)), (
        f"still running: server={alive(server)} fake={alive(fake)}\n{run.output}"
    )
    assert "server.stopped" in run.output, run.output  # it drained in order, not killed


@pytest.mark.parametrize("how", sorted(STOPS))
def test_make_run_stops_both_processes(make_run: Callable[..., MakeRun], how: str) -> None:
    assert_both_stop(make_run(), STOPS[how])


def test_timeout_make_run_stops_both_processes(make_run: Callable[..., MakeRun]) -> None:
    # timeout, on expiry or on a SIGTERM of its own, sends the signal to make and then to
    # its whole process group.
    assert_both_stop(make_run("timeout", "600"), lambda pid: os.kill(pid, signal.SIGTERM))


def test_when_the_server_cannot_start_the_fake_stops_too(
    make_run: Callable[..., MakeRun],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = make_run(grpc_port=taken.getsockname()[1])
        assert run.process.wait(timeout=90) != 0

    assert "cannot listen on" in run.output, run.output
    assert within(10, lambda: not run.fake_pids()), run.output
