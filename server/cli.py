"""The ``prospect-sync`` command: ``serve`` runs the service (with ``--workers N`` or
``server.workers``, N worker processes under a supervisor, ``server.workers``),
``backfill`` prepares existing prospects for a lookup field (``server.backfill.cli``),
``state migrate`` copies the embedded state to Redis (``server.state_migrate``),
``forget`` erases a person through the running service (``server.forget_cli``),
``fake-pardot`` runs the Pardot emulator for local use.

A configuration problem is one line on stderr and exit code 2, never a traceback;
this module never prints a configuration value, only the messages ``server.config``
wrote (which name keys, not values).

``serve`` also sets up what belongs to the process rather than to one gRPC server:
logging, the metrics port (``[server.metrics]``: it is bound before the service starts,
so a port in use is a configuration error like the gRPC one, and it is closed last, so
the drain can be watched to its end) and the tracer provider (``[server.tracing]``:
spans still buffered are sent before the process exits). With several workers the
metrics port is the supervisor's and each worker has a tracer provider of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from server import forget_cli, state_migrate
from server.backfill import cli as backfill_cli
from server.config import (
    ConfigError,
    MetricsConfig,
    ServiceConfig,
    TracingConfig,
    load_config,
    workers_need_shared_state,
)
from server.logging import configure_logging

log = structlog.get_logger("server.cli")

PROG = "prospect-sync"
EXIT_OK = 0
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.config, args.listen, args.workers)
    if args.command == "backfill":
        return backfill_cli.command(args, PROG)
    if args.command == "state":
        return state_migrate.command(args, PROG)
    if args.command == "forget":
        return forget_cli.command(args, PROG)
    return _fake_pardot(args.host, args.port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep Salesforce Pardot prospects in step with identify and track calls.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC service until SIGTERM/SIGINT")
    serve.add_argument("--config", required=True, type=Path, metavar="FILE", help="TOML file")
    serve.add_argument("--listen", metavar="HOST:PORT", help="overrides server.listen")
    serve.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help='overrides server.workers: N processes on one port (N > 1 needs state = "redis")',
    )

    backfill_cli.add_parser(commands)
    state_migrate.add_parser(commands)
    forget_cli.add_parser(commands)

    fake = commands.add_parser("fake-pardot", help="run the Pardot emulator (for local use)")
    fake.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    fake.add_argument("--port", type=int, default=8750, help="default: %(default)s")
    fake.add_argument(
        "--demo",
        action="store_true",
        help="accepted for scripts; the emulator always knows the demo credentials",
    )
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, 1 or more")
    return int(text)


def _serve(config_path: Path, listen: str | None, workers: int | None) -> int:
    from server.app import serve
    from server.config import listen_problem

    try:
        config = load_config(config_path)
        if listen is not None and (problem := listen_problem(listen)):
            raise ConfigError([f"--listen: {problem}"])
        if workers is not None:
            config = _with_workers(config, workers)
        configure_logging(config.server.log_level, config.secrets)
        if config.server.workers > 1:
            return _supervise(config, listen)
        with contextlib.ExitStack() as process_wide:
            _start_metrics(config.server.metrics, process_wide)
            _start_tracing(config.server.tracing, process_wide)
            asyncio.run(serve(config, listen))
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _with_workers(config: ServiceConfig, workers: int) -> ServiceConfig:
    """``--workers`` in place of ``server.workers``, held to the same rule."""
    server = dataclasses.replace(config.server, workers=workers)
    for _, fix in workers_need_shared_state(server, None):
        raise ConfigError([f"--workers: {fix}"])
    return dataclasses.replace(config, server=server)


def _supervise(config: ServiceConfig, listen: str | None) -> int:
    """The supervisor of ``server.workers`` processes: the port and the metrics port are
    bound here first (a problem is a configuration error, before any worker starts);
    the config's warnings are logged once here, not once per worker."""
    from server import workers

    for warning in config.warnings:
        log.warning(warning.event, **warning.fields)
    setting = "--listen" if listen else "server.listen"
    held, address = workers.hold_port(listen or config.server.listen, setting)
    worker_config = dataclasses.replace(config, warnings=())
    with held, workers.multiprocess_metrics(), contextlib.ExitStack() as process_wide:
        _start_metrics(config.server.metrics, process_wide)
        return workers.supervise(worker_config, address, config.server.workers, _worker)


def _worker(config: ServiceConfig, listen: str, index: int) -> int:
    """One worker process of :func:`_supervise`: a whole server on the shared port, its
    log lines marked with its index and pid, no metrics port (the supervisor's)."""
    from server.app import serve

    configure_logging(
        config.server.log_level, config.secrets, process={"worker": index, "pid": os.getpid()}
    )
    try:
        with contextlib.ExitStack() as process_wide:
            _start_tracing(config.server.tracing, process_wide)
            asyncio.run(serve(config, listen))
    except ConfigError as error:
        print(f"{PROG}: worker {index}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _start_metrics(config: MetricsConfig | None, cleanup: contextlib.ExitStack) -> None:
    """The metrics port, when configured; a bind failure names the setting."""
    if config is None:
        return
    from server.metrics import start_metrics_endpoint

    try:
        endpoint = start_metrics_endpoint(config.listen)
    except OSError:
        problem = f"cannot listen on {config.listen} (port in use, or not an address of this host)"
        raise ConfigError([f"server.metrics.listen: {problem}"]) from None
    cleanup.callback(endpoint.close)
    log.info("metrics.listening", listen=config.listen, port=endpoint.port)


def _start_tracing(config: TracingConfig | None, cleanup: contextlib.ExitStack) -> None:
    """The process's tracer provider, when configured; its spans are flushed at exit."""
    if config is None:
        return
    from server.tracing import install, tracer_provider

    provider = tracer_provider(
        config.otlp_endpoint,
        service_name=config.service_name,
        sample_ratio=config.sample_ratio,
    )
    install(provider)
    cleanup.callback(provider.shutdown)
    log.info("tracing.on", otlp_endpoint=config.otlp_endpoint, sample_ratio=config.sample_ratio)


def _fake_pardot(host: str, port: int) -> int:
    from fakepardot import FakePardot

    # uvicorn shuts down on SIGTERM/SIGINT, then re-raises the signal for the previous
    # handler; SIGTERM then ends like SIGINT does (KeyboardInterrupt), so a requested
    # stop exits 0 instead of dying of the signal.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        FakePardot().serve_forever(host=host, port=port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
