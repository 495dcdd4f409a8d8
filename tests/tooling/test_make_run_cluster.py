"""`make run-cluster` starts redis-server, the fake Pardot and three replicas on one
shared state, each replica answers an Identify, and however it is stopped (Ctrl-C to
the group, or `timeout N make run-cluster`, which signals make and its group) nothing it
started is left running and its temporary folder is gone. Free ports for everything;
every wait is bounded, and none is the thing that passes or fails a test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tooling.test_make_run import alive, argv, free_port, processes_running, within

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from support.make import IN_A_VENV, REPO, make_command
from support.redis_server import redis_server_binary

pytestmark = pytest.mark.skipif(not IN_A_VENV, reason="runs make with the suite's virtualenv")

SERVING = health_pb2.HealthCheckResponse.SERVING


def redis_servers(port: int) -> list[int]:
    """Live redis-server processes on ``port`` (redis rewrites its title to
    ``redis-server 127.0.0.1:PORT``; before that its argv holds ``--port PORT``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        words = " ".join(argv(int(entry.name)))
        named = "redis-server" in words and re.search(rf"(:|--port ){port}\b", words)
        if named and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@dataclass
class ClusterRun:
    process: subprocess.Popen[bytes]
    log: Path
    ports: list[int]
    fake_port: int
    redis_port: int

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def replica_pids(self) -> list[int]:
        return [
            pid for port in self.ports for pid in processes_running("serve", "--config")
            if f"127.0.0.1:{port}" in argv(pid)
        ]  # fmt: skip

    def fake_pids(self) -> list[int]:
        return processes_running("fake-pardot", "--port", str(self.fake_port))

    def everything(self) -> list[int]:
        return [*self.replica_pids(), *self.fake_pids(), *redis_servers(self.redis_port)]

    def serving(self) -> bool:
        try:
            httpx.get(
                f"http://127.0.0.1:{self.fake_port}/_fake/state", timeout=1
            ).raise_for_status()
            for port in self.ports:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    health = health_pb2_grpc.HealthStub(channel)
                    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status != SERVING:
                        return False
        except (httpx.HTTPError, grpc.RpcError):
            return False
        return True


@pytest.fixture
def cluster_run(tmp_path: Path) -> Iterator[Callable[..., ClusterRun]]:
    runs: list[ClusterRun] = []

    def start(*wrapper: str) -> ClusterRun:
        redis_server_binary()  # skips (fails on CI) without redis-server
        fake_port, redis_port = free_port(), free_port()
        ports = [free_port() for _ in range(3)]
        config = tmp_path / f"demo-{fake_port}.toml"
        demo = (REPO / "examples" / "demo.toml").read_text()
        config.write_text(demo.replace("127.0.0.1:8750", f"127.0.0.1:{fake_port}"))
        log = tmp_path / f"make-run-cluster-{fake_port}.log"
        args = [f"CONFIG={config}", f"FAKE_PORT={fake_port}", f"REDIS_PORT={redis_port}"]
        args.append(f"CLUSTER_PORTS={' '.join(map(str, ports))}")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*wrapper, *make_command("run-cluster", *args)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, as a terminal's foreground job is
            )
        run = ClusterRun(process, log, ports, fake_port, redis_port)
        runs.append(run)
        return run

    yield start
    for run in runs:  # whatever a failed test left behind, by pid
        for pid in [run.process.pid, *run.everything()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.process.wait(timeout=10)


def identify_on(port: int) -> pb.IdentifyResponse:
    traits = struct_pb2.Struct()
    traits.update({"email": f"cluster-{uuid.uuid4().hex[:10]}@example.com"})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        settings = pb.PardotSettings(create_when_unmatched=True)
        request = pb.IdentifyRequest(traits=traits, settings=settings)
        reply: pb.IdentifyResponse = pb_grpc.ProspectSyncStub(channel).Identify(request, timeout=20)
        return reply


STOPS = {
    "SIGINT to the group (Ctrl-C)": ((), lambda pid: os.killpg(pid, signal.SIGINT)),
    # timeout, on expiry or on a SIGTERM of its own, signals make and then its group.
    "timeout N make run-cluster": (("timeout", "600"), lambda pid: os.kill(pid, signal.SIGTERM)),
}


@pytest.mark.parametrize("how", sorted(STOPS))
def test_make_run_cluster_serves_on_3_ports_and_stops_everything(
    cluster_run: Callable[..., ClusterRun], how: str
) -> None:
    wrapper, stop = STOPS[how]
    run = cluster_run(*wrapper)
    started = within(90, lambda: run.process.poll() is not None or run.serving())
    assert started and run.process.poll() is None, f"make run-cluster did not start:\n{run.output}"
    started_pids = run.everything()
    assert len(run.replica_pids()) == 3 and run.fake_pids() and redis_servers(run.redis_port)
    words = argv(run.replica_pids()[0])
    folder = Path(words[words.index("--config") + 1]).parent  # the make run's own folder
    assert (folder / "cluster.toml").exists()

    for port in run.ports:
        assert identify_on(port).prospect_id  # each replica answers, on the shared state

    stop(run.process.pid)
    run.process.wait(timeout=60)
    assert within(10, lambda: not any(alive(pid) for pid in started_pids)), run.output
    assert run.everything() == [], run.output
    assert run.output.count("server.stopped") == 3, run.output  # each drained in order
    assert not folder.exists()
