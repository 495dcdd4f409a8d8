"""The processes a benchmark run starts — fakepardot, the service (one process, or a
supervisor with its workers), a redis-server of its own, the bare echo server, the load
generator — each on a free loopback port, each stopped by its own pid; and the server's
resident memory and worker pids, read from /proc.

Every wait here is bounded, and a child that dies early is reported with the tail of
its log. It never touches a process it did not start, and never binds anything but
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.fake_control import FakeControl
from fakepardot import DEMO
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from strategies.core.pardot_facts import MAX_CONCURRENT_REQUESTS

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
#: The daily budget the bench's connections count against: the largest edition's
#: (PARDOT_API.md, "Limits"), so that a long zero-latency run never trips it.
BENCH_DAILY_CALL_LIMIT = 100_000


class ChildFailed(RuntimeError):
    """A child process could not start, or failed; the message carries its log tail."""


def free_port() -> int:
    """A port free on loopback now (the child binds it a moment later; a clash shows
    up as a start failure, never as talking to someone else's process)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ChildFailed(
                f"{self.name} exited with {self.process.returncode}; its log ends:\n{self.tail()}"
            )

    def stop(self) -> None:
        """SIGTERM (an orderly stop), then SIGKILL if it has not ended in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)

    def descendants(self) -> list[int]:
        """The pids this process started, and theirs (a supervisor's workers), from
        /proc: the processes whose CPU is the server's too."""
        found: list[int] = []
        parents = [self.pid]
        while parents:
            parent = parents.pop()
            with contextlib.suppress(OSError, ValueError):
                text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
                children = [int(pid) for pid in text.split()]
                found += children
                parents += children
        return found

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (resident now) and VmHWM (the peak since the process started), KiB."""
        wanted = {"VmRSS", "VmHWM"}
        found: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in wanted:
                    found[key] = int(value.split()[0])
        return found


@dataclass(frozen=True)
class Watched:
    """A process whose CPU a measurement reports, though the bench did not start it
    (a supervisor's worker): named, by its pid."""

    name: str
    pid: int


@dataclass(frozen=True)
class Source:
    """Where the service and the fake run from: this checkout, or a tree exported from
    another commit (``export_tree``) — ahead of the virtualenv's editable install on the
    import path, which only finds what the tree does not have."""

    root: Path = ROOT

    def env(self) -> dict[str, str] | None:
        if self.root == ROOT:
            return None
        return {**os.environ, "PYTHONPATH": f"{self.root}{os.pathsep}{self.root / 'protos'}"}


HERE = Source()


def export_tree(revision: str, into: Path) -> Source:
    """``git archive`` of ``revision`` into ``into``, with its stubs generated — the
    service exactly as committed, whatever is being edited in this checkout."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if archive.returncode != 0:
        raise ChildFailed(f"git archive {revision}: {archive.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    protoc = [sys.executable, "-m", "grpc_tools.protoc", "-I", "protos"]
    protoc += ["--python_out=protos", "--grpc_python_out=protos"]
    protoc += ["protos/prospectsync/v1/prospect_sync.proto"]
    generated = subprocess.run(protoc, cwd=into, capture_output=True, timeout=60, check=False)
    if generated.returncode != 0:
        raise ChildFailed(f"protoc in {into}: {generated.stderr.decode(errors='replace')}")
    return Source(into)


def _spawn(name: str, argv: list[str], workdir: Path, source: Source = HERE) -> Child:
    log = workdir / f"{name}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            argv,
            cwd=source.root,
            env=source.env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Child(name, process, log)


def _prospect_sync() -> list[str]:
    """The ``prospect-sync`` command of this virtualenv (``python -m server`` without it)."""
    script = Path(sys.executable).parent / "prospect-sync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "server"]


@dataclass(frozen=True)
class Pardot:
    """The fake a run drives, and its control API."""

    child: Child
    url: str
    control: FakeControl

    def fresh(self, latency_s: float) -> None:
        """A reset fake with Pardot's shape: ``latency_s`` per call, 5 in flight per
        account, no daily limit. Resetting before each measurement keeps the fake's
        prospect store small and every scenario's start equal."""
        self.control.reset(
            latency_s=latency_s, max_concurrency=MAX_CONCURRENT_REQUESTS, daily_limit=None
        )


@dataclass(frozen=True)
class SharedState:
    """Where ``state = "redis"`` servers keep what they share: one redis-server of the
    bench's own and a key prefix, so that a group of replicas (or workers) shares one
    limiter, token and records, and the next group starts from nothing."""

    url: str
    key_prefix: str


def start_fake(workdir: Path, source: Source = HERE) -> tuple[Child, str]:
    port = free_port()
    argv = [*_prospect_sync(), "fake-pardot", "--port", str(port)]
    return _spawn("fakepardot", argv, workdir, source), f"http://{LOOPBACK}:{port}"


def start_redis(workdir: Path, name: str = "redis") -> tuple[Child, str]:
    """A redis-server of the bench's own on a free loopback port, without persistence
    (nothing it holds outlives the run; persistence would add disk writes the service
    does not ask for), answering PING; with its URL. Debian's package:
    ``make redis-deps`` installs it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ChildFailed("redis-server is not installed: run `make redis-deps` as root")
    folder = workdir / f"{name}-data"
    folder.mkdir()
    port = free_port()
    argv = [
        binary, "--bind", LOOPBACK, "--port", str(port), "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning",
    ]  # fmt: skip
    child = _spawn(name, argv, workdir)
    try:
        _wait(child, lambda: _pongs(port))
    except BaseException:
        child.stop()
        raise
    return child, f"redis://{LOOPBACK}:{port}/0"


def _pongs(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def write_server_config(
    path: Path,
    fake_url: str,
    state_dir: Path,
    *,
    v5: bool = False,
    shared: SharedState | None = None,
) -> None:
    """A config like examples/demo.toml aimed at the fake, logging warnings only (so
    logging does not dominate what is measured); owner-readable, since it holds the
    fake's demo credentials. ``v5`` adds the API v5 connection (``v5``, on the v4
    business unit): only when a v5 row is measured, so that ``--commit`` can still run
    trees from before API v5. ``shared`` sets ``state = "redis"`` on it (absent: the
    embedded SQLite state, so trees from before Redis still run)."""
    oauth = f"""pardot_url = "{fake_url}"
auth = "oauth"
token_url = "{fake_url}/services/oauth2/token"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
daily_call_limit = {BENCH_DAILY_CALL_LIMIT}
"""
    redis = "" if shared is None else 'state = "redis"\n'
    text = f"""[server]
listen = "{LOOPBACK}:0"
state_dir = "{state_dir}"
log_level = "warning"
shutdown_grace_s = 1.0
{redis}
[connections.default]
api_version = 4
business_unit_id = "{DEMO.business_unit_v4}"
grant_type = "refresh_token"
refresh_token = "{DEMO.refresh_token}"
{oauth}
[connections.v3]
api_version = 3
business_unit_id = "{DEMO.business_unit_v3}"
grant_type = "password"
username = "{DEMO.username}"
password = "{DEMO.password}"
{oauth}"""
    if v5:
        text += f"""
[connections.v5]
api_version = 5
business_unit_id = "{DEMO.business_unit_v4}"
grant_type = "client_credentials"
{oauth}"""
    if shared is not None:
        text += f"""
[redis]
url = "{shared.url}"
key_prefix = "{shared.key_prefix}"
"""
    path.write_text(text)
    path.chmod(0o600)


def start_server(
    workdir: Path,
    fake_url: str,
    name: str = "server",
    source: Source = HERE,
    *,
    v5: bool = False,
    shared: SharedState | None = None,
    workers: int = 1,
) -> tuple[Child, str]:
    """The service as ``prospect-sync serve``, SERVING on a free port (fresh embedded
    state, or ``shared``); ``workers`` > 1 runs ``--workers N`` (it needs ``shared``)."""
    config = workdir / f"{name}.toml"
    write_server_config(config, fake_url, workdir / f"{name}-state", v5=v5, shared=shared)
    target = f"{LOOPBACK}:{free_port()}"
    argv = [*_prospect_sync(), "serve", "--config", str(config), "--listen", target]
    if workers > 1:
        argv += ["--workers", str(workers)]
    child = _spawn(name, argv, workdir, source)
    try:
        wait_serving(child, target)
        # A worker gets connections only once it listens: until every one does, the
        # load generator's connections would all go to the first.
        port = int(target.rpartition(":")[2])
        _wait(child, lambda: listening_sockets(port) >= workers)
    except BaseException:
        child.stop()
        raise
    return child, target


def start_echo(workdir: Path) -> tuple[Child, str]:
    target = f"{LOOPBACK}:{free_port()}"
    child = _spawn("echo", [sys.executable, "-m", "bench.echo_server", "--listen", target], workdir)
    try:
        with grpc.insecure_channel(target) as channel:
            identify = pb_grpc.ProspectSyncStub(channel).Identify
            _wait(child, lambda: _answers(identify))
    except BaseException:
        child.stop()
        raise
    return child, target


def wait_serving(child: Child, target: str) -> None:
    """Until the health service says SERVING for the whole server."""
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            except grpc.RpcError:
                return False
            return answer.status == health_pb2.HealthCheckResponse.SERVING

        _wait(child, serving)


#: /proc/net/tcp's state of a listening socket.
_TCP_LISTEN = "0A"


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``LOOPBACK:port`` (one per worker under SO_REUSEPORT;
    the supervisor's held socket is bound but never listens). gRPC binds an IPv6
    socket with the v4-mapped address, so both tables count."""
    wanted = {f"0100007F:{port:04X}", f"0000000000000000FFFF00000100007F:{port:04X}"}
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            rows = Path(table).read_text().splitlines()[1:]
            found += sum(1 for row in rows if _listens_on(row.split(), wanted))
    return found


def _listens_on(fields: list[str], addresses: set[str]) -> bool:
    return len(fields) > 3 and fields[1] in addresses and fields[3] == _TCP_LISTEN


def _answers(identify: Any) -> bool:
    try:
        identify(pb.IdentifyRequest(), timeout=1.0)
    except grpc.RpcError:
        return False
    return True


def _wait(child: Child, ready: Any) -> None:
    give_up = time.monotonic() + START_TIMEOUT_S
    while not ready():
        child.check_alive()
        if time.monotonic() > give_up:
            child.stop()
            raise ChildFailed(f"{child.name} not ready in {START_TIMEOUT_S:.0f} s:\n{child.tail()}")
        time.sleep(0.05)


def run_loadgen(workdir: Path, args: list[str], timeout_s: float) -> dict[str, Any]:
    """One ``bench.loadgen`` process; its JSON result. A hang is killed at ``timeout_s``."""
    argv = [sys.executable, "-m", "bench.loadgen", *args]
    log = workdir / "loadgen.log"
    with open(log, "ab") as sink:
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=sink,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ChildFailed(f"loadgen did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ChildFailed(f"loadgen exited with {done.returncode}:\n{tail}")
    return dict(json.loads(done.stdout))


class MemorySampler:
    """Samples a child's VmRSS every ``interval_s`` in a thread, for the peak seen
    (VmHWM is the kernel's own peak; the samples cross-check it)."""

    def __init__(self, child: Child, interval_s: float = 0.05) -> None:
        self._child = child
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_rss_kib = 0
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                rss = self._child.memory_kib()["VmRSS"]
                self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self._stop.wait(self._interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "kernel": os.uname().release,
    }
