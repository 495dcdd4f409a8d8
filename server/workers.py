"""``server.workers > 1``: a supervisor process and N worker processes serving one port
on this host, for the cores one event loop cannot use (DESIGN.md: scale with
processes, not threads).

Each worker is a whole server (``server.app.serve``: its own event loop, Pardot
clients, coalescing and graceful shutdown) and shares what must be shared through the
Redis state (``server.state = "redis"``, which ``server.config`` requires). The kernel
spreads connections over the workers: each binds the port with SO_REUSEPORT
(``grpc.so_reuseport``, on in ``server.app`` when ``workers > 1``). The supervisor
serves no RPC; it:

- holds the port from before the first worker starts to after the last one stops (a
  bound socket that never listens gets no connections), so port 0 becomes one port
  for every worker, a port in use is a configuration error before any worker starts,
  and no other program can take the port between the workers' binds;
- keeps the metrics in prometheus-client's multiprocess mode: a fresh, empty
  ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts (:func:`multiprocess_metrics`),
  the metrics port in this process (workers never open it), and
  ``mark_process_dead`` for every worker that exits, so its gauges leave the sums;
- forwards SIGTERM/SIGINT to every worker, waits for each one's own drain and exits 0.

A worker that dies while the others serve is not restarted: the supervisor logs it
(``workers.worker_died``: pid, exit code), drains the others and exits 1. A worker
runs the same code on the same configuration as its siblings, so what killed it
(a bug, memory, a bad host) is likely to kill the next one too; restarting in here
would need its own backoff and would hide a crash loop from the process manager
(systemd, Kubernetes), which already restarts with backoff, counts restarts and
alerts. The replicas behind the load balancer carry the traffic meanwhile, and
nothing is lost: every worker's state is in Redis. Workers are spawned (never
forked: gRPC's core does not survive a fork) and die with the supervisor (Linux
``PR_SET_PDEATHSIG``), so a supervisor killed with SIGKILL leaves no orphan serving.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess

import structlog
from prometheus_client import multiprocess

from server.config import ConfigError, ServiceConfig
from server.metrics import MULTIPROC_DIR_VARIABLE

log = structlog.get_logger("server.workers")

#: What a worker runs: ``(config, listen, index) -> exit code``; a module-level function
#: (it is named, not pickled, into the spawned process).
Worker = Callable[[ServiceConfig, str, int], int]

EXIT_OK = 0
#: A worker died, or did not stop within its grace: the process manager should look.
EXIT_WORKER_FAILED = 1
#: A worker found a configuration problem at start (exit code 2, like ``serve``).
EXIT_CONFIG = 2

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Beyond ``server.shutdown_grace_s``: closing HTTP clients and the state after the
#: drain. A worker still running then is killed, and the exit code says so.
_STOP_MARGIN_S = 15.0
#: prctl(2): the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """A fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` for the workers (they inherit it and
    write their values there), removed afterwards. Set before any worker starts: a
    worker imports prometheus-client already in multiprocess mode. This process's own
    prometheus-client was imported before (with ``server.config``) and keeps its values
    in memory, so the supervisor adds no files of its own."""
    directory = tempfile.mkdtemp(prefix="prospectsync-metrics-")
    previous = os.environ.get(MULTIPROC_DIR_VARIABLE)
    os.environ[MULTIPROC_DIR_VARIABLE] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
        else:
            os.environ[MULTIPROC_DIR_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)


def hold_port(address: str, setting: str) -> tuple[socket.socket, str]:
    """Binds ``address`` (``HOST:PORT``; port 0: any free one) with SO_REUSEPORT and
    never listens; returns the socket and the concrete ``HOST:PORT`` for the workers.
    A port another program holds is a ConfigError naming ``setting``."""
    host, _, port = address.rpartition(":")
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    held = socket.socket(family, socket.SOCK_STREAM)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((bare, int(port)))
    except OSError:
        held.close()
        problem = f"cannot listen on {address} (port in use, or not an address of this host)"
        raise ConfigError([f"{setting}: {problem}"]) from None
    return held, f"{host}:{held.getsockname()[1]}"


def supervise(config: ServiceConfig, listen: str, count: int, worker: Worker) -> int:
    """Runs ``count`` workers of ``worker`` on ``listen`` (a concrete port, see
    :func:`hold_port`) until SIGTERM/SIGINT or a worker's death; the exit code."""
    waker_in, waker_out = socket.socketpair()
    waker_in.setblocking(False)
    stop_requested: list[signal.Signals] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop_requested.append(signal.Signals(signum))
        with contextlib.suppress(OSError):
            waker_in.send(b"\0")

    previous = {s: signal.signal(s, on_signal) for s in _STOP_SIGNALS}
    spawn = multiprocessing.get_context("spawn")
    running: dict[int, BaseProcess] = {}
    try:
        for index in range(count):
            process = spawn.Process(
                target=_worker_entry,
                args=(worker, config, listen, index, os.getpid()),
                name=f"prospect-sync-worker-{index}",
            )
            process.start()
            assert process.pid is not None
            running[process.pid] = process
            log.info("workers.started", worker=index, worker_pid=process.pid, listen=listen)
            if stop_requested:
                break
        code = _watch(running, waker_out, stop_requested)
        stopped = _stop_all(running, config.server.shutdown_grace_s + _STOP_MARGIN_S)
        code = code if stopped else max(code, EXIT_WORKER_FAILED)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for left in running.values():  # only after a failure of this function itself
            left.kill()
        waker_in.close()
        waker_out.close()
    log.info("workers.stopped", exit_code=code)
    return code


def _watch(
    running: dict[int, BaseProcess],
    waker: socket.socket,
    stop_requested: list[signal.Signals],
) -> int:
    """Waits for a stop signal (EXIT_OK) or a worker's exit (its failure's code)."""
    while not stop_requested:
        sentinels = {p.sentinel: pid for pid, p in running.items()}
        ready = multiprocessing.connection.wait([*sentinels, waker])
        for each in ready:
            if each is waker:
                continue
            assert isinstance(each, int)
            pid = sentinels[each]
            process = running.pop(pid)
            process.join()
            _gone(pid)
            log.error(
                "workers.worker_died",
                worker_pid=pid,
                exit_code=process.exitcode,
                effect="stopping the other workers; the process manager restarts the service",
            )
            return EXIT_CONFIG if process.exitcode == EXIT_CONFIG else EXIT_WORKER_FAILED
    log.info("workers.stopping", signal=stop_requested[0].name, workers=len(running))
    return EXIT_OK


def _stop_all(running: dict[int, BaseProcess], within_s: float) -> bool:
    """SIGTERM to every worker (each drains on its own), then waits for all of them;
    whether each exited 0 within ``within_s``."""
    for process in running.values():
        with contextlib.suppress(OSError):
            os.kill(process.pid or 0, signal.SIGTERM)
    deadline = time.monotonic() + within_s
    clean = True
    for pid, process in list(running.items()):
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            log.error("workers.worker_killed", worker_pid=pid, after_s=within_s)
            process.kill()
            process.join()
        if process.exitcode != EXIT_OK:
            clean = False
            log.error("workers.worker_failed", worker_pid=pid, exit_code=process.exitcode)
        _gone(pid)
        del running[pid]
    return clean


def _gone(pid: int) -> None:
    """A worker's live gauges leave the sums (docs/operations.md)."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _worker_entry(
    worker: Worker, config: ServiceConfig, listen: str, index: int, supervisor: int
) -> None:
    """The spawned process's first code: die with the supervisor, stop cleanly on a
    signal that arrives before the server's own handlers are in place, run ``worker``."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    _die_with_parent(supervisor)
    try:
        code = worker(config, listen, index)
    except KeyboardInterrupt:  # stopped while starting: nothing was served yet
        code = EXIT_OK
    sys.exit(code)


def _die_with_parent(supervisor: int) -> None:
    """SIGTERM (a drain, not a kill) to this worker when the supervisor dies, however
    it dies. Linux only; elsewhere a killed supervisor leaves its workers running."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before prctl: no one would signal us
        os.kill(os.getpid(), signal.SIGTERM)
