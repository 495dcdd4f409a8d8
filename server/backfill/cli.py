"""``prospect-sync backfill``: its options, and running it as an operator expects.

Ctrl-C (or SIGTERM) stops after the rows in flight, journals them and prints the
summary; a second one aborts at once (finished rows are journaled either way). Like
``serve``, a configuration or usage problem is one line on stderr and exit code 2,
never a traceback, and never a configuration value.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.backfill.model import Tally
    from server.backfill.run import BackfillOptions
    from server.config import ServiceConfig

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

DESCRIPTION = """\
Set a lookup field on the prospects that already exist, before the service matches on
it (settings.lookup_field), so that they are found instead of duplicated.

The CSV has a header row and two columns: email,value -- or email,user_id when the
service uses the user id as the lookup value (use_user_id_as_lookup_value); both
mean "the prospect with this email has this lookup value". For each row, the
prospects with the email are read; one that already holds the value counts as
"already set"; otherwise the oldest one whose field is empty gets the value ("set");
a value a prospect holds is never overwritten ("conflicts", listed at the end).

Exit codes: 0 every row done; 1 done, but conflicts, invalid or failed rows need
a look; 2 bad options, configuration or CSV header; 3 stopped early (daily limit,
credentials, Ctrl-C): run the same command again to resume.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the ``backfill`` subcommand to ``prospect-sync``'s subparsers."""
    parser = commands.add_parser(
        "backfill",
        help="set a lookup field on existing prospects from a CSV (before using it)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="TOML file")
    parser.add_argument(
        "--connection", default="default", metavar="NAME", help="default: %(default)s"
    )
    parser.add_argument(
        "--lookup-field", required=True, metavar="FIELD", help="the custom field id, e.g. org_id"
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        type=Path,
        metavar="CSV",
        help="columns email,value (or email,user_id)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="make the reads and report what would change; write nothing anywhere",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="rows in flight (default and maximum: the connection's max_concurrency); "
        "lower it to leave Pardot requests for a running server",
    )
    parser.add_argument(
        "--no-normalize-email",
        dest="normalize_email",
        action="store_false",
        help="send each email as written (settings.normalize_email = false); by default "
        "its domain is lower-cased, as the service does for every call",
    )
    parser.add_argument(
        "--normalize-email-local-part",
        action="store_true",
        help="lower-case the part before the @ too (settings.normalize_email_local_part): "
        "use it when the service's calls set that setting",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="forget what earlier runs of this file finished and start from the first row",
    )


def command(args: argparse.Namespace, prog: str) -> int:
    from server.backfill.report import EXIT_STOPPED, EXIT_USAGE, exit_code, render_summary
    from server.backfill.run import BackfillOptions, BackfillUsageError
    from server.config import ConfigError, load_config
    from server.logging import configure_logging

    options = BackfillOptions(
        lookup_field=args.lookup_field,
        source=args.source,
        connection=args.connection,
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        restart=args.restart,
        normalize_email=args.normalize_email,
        normalize_email_local_part=args.normalize_email_local_part,
    )
    try:
        config = load_config(args.config)
        # Warnings only: per-call events belong in the server's logs, not over a bar.
        configure_logging("warning", config.secrets)
        tally = asyncio.run(_run(config, options))
    except (ConfigError, BackfillUsageError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except asyncio.CancelledError:
        print(
            f"{prog}: aborted; finished rows are journaled: run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    print(
        render_summary(
            tally,
            lookup_field=options.lookup_field,
            connection=options.connection,
            source=str(options.source),
            dry_run=options.dry_run,
        )
    )
    return exit_code(tally)


async def _run(config: ServiceConfig, options: BackfillOptions) -> Tally:
    from server.backfill.report import ProgressBar
    from server.backfill.run import run_backfill

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()
    assert main is not None

    def on_signal() -> None:
        if stop.is_set():
            main.cancel()  # the second one: do not wait for the rows in flight
            return
        stop.set()
        print("\nstopping after the rows in flight (again to abort)", file=sys.stderr)

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal)
    try:
        progress = ProgressBar(f"backfill {options.lookup_field}")
        return await run_backfill(config, options, progress=progress, stop=stop)
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
