"""The ``prospect-sync`` command: ``serve`` runs the service, ``backfill`` prepares
existing prospects for a lookup field (``server.backfill.cli``), ``fake-pardot`` runs the
Pardot emulator for local use.

A configuration problem is one line on stderr and exit code 2, never a traceback;
this module never prints a configuration value, only the messages ``server.config``
wrote (which name keys, not values).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from server.backfill import cli as backfill_cli
from server.config import ConfigError, load_config
from server.logging import configure_logging

PROG = "prospect-sync"
EXIT_OK = 0
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.config, args.listen)
    if args.command == "backfill":
        return backfill_cli.command(args, PROG)
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

    backfill_cli.add_parser(commands)

    fake = commands.add_parser("fake-pardot", help="run the Pardot emulator (for local use)")
    fake.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    fake.add_argument("--port", type=int, default=8750, help="default: %(default)s")
    fake.add_argument(
        "--demo",
        action="store_true",
        help="accepted for scripts; the emulator always knows the demo credentials",
    )
    return parser


def _serve(config_path: Path, listen: str | None) -> int:
    from server.app import serve
    from server.config import listen_problem

    try:
        config = load_config(config_path)
        if listen is not None and (problem := listen_problem(listen)):
            raise ConfigError([f"--listen: {problem}"])
        configure_logging(config.server.log_level, config.secrets)
        asyncio.run(serve(config, listen))
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


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
