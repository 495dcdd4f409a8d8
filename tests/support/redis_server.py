"""A real redis-server for the tests (Debian's package; ``make test`` installs it on CI
or as root): one process per test session on a free loopback port, no persistence, its
files in a temporary folder. No fake Redis: the shared-state backend must be tested
against what it will run against.

Tests share the server and stay apart by key prefix (:func:`fresh_prefix`): a new
prefix per test is cheaper than a FLUSHDB and lets tests that run servers of their own
(several replicas) see the same keys. :meth:`RedisServer.stop` and :meth:`start` stop
and restart the same port, for the tests of what an outage does.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio

LOOPBACK = "127.0.0.1"
_prefixes = itertools.count(1)


def redis_server_binary() -> str:
    """The redis-server command; skips (fails on CI) when it is missing."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server is missing on CI: `make test` installs it (make redis-deps)")
    pytest.skip("redis-server is not installed: run `make redis-deps` as root to run these tests")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on ``port`` (loopback only), data in ``folder``."""

    def __init__(self, binary: str, folder: Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.folder = folder
        #: Appended to the command line (later settings win): persistence, for one.
        self.extra_args = extra_args
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        """Starts the server (again, on the same port) and waits until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            *self.extra_args,
        ]  # fmt: skip
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early; see {self.folder / 'redis.log'}")
            if self._answers():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self) -> None:
        """Stops the server at once (SIGKILL: an outage, not a clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): its connections stay open and nothing answers,
        as when its host stalls. :meth:`resume` thaws it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _answers(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


async def read_events(client: redis.asyncio.Redis) -> int:
    """redis-server's read events so far — one per request or pipeline that arrives, so
    the round trips its clients made — this INFO's own included."""
    stats = await client.info("stats")
    return int(stats["total_reads_processed"])


def fresh_prefix() -> str:
    """A key prefix no other test of this session uses."""
    return f"test{os.getpid()}-{next(_prefixes)}:"


_SESSION: RedisServer | None = None


def session_server() -> RedisServer:
    """The session's redis-server, started on first use and stopped when the test
    process exits (skips, or fails on CI, when redis-server is missing)."""
    global _SESSION
    if _SESSION is None:
        server = RedisServer(redis_server_binary(), Path(tempfile.mkdtemp(prefix="redis-")))
        server.start()
        atexit.register(server.stop)
        _SESSION = server
    return _SESSION
