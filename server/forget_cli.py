"""``prospect-sync forget``: a gRPC client of the running service that sends one Forget
and prints its response as JSON (docs/erasure.md). It holds no Pardot credentials and
opens no state: the service does the work, so the suppression lands in the state every
replica reads.

Exit codes: 0 success, 1 the service refused or failed the call (its status and message
on stderr), 2 a usage error. The caller token, when the service checks callers, comes
from the environment (``PROSPECT_SYNC_TOKEN``), never from the command line (where
``ps`` would show it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import grpc
from google.protobuf import json_format

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc

#: The environment variable the caller token is read from.
TOKEN_ENV = "PROSPECT_SYNC_TOKEN"
EXIT_OK = 0
EXIT_FAILED = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``forget`` to ``prospect-sync``'s subparsers."""
    forget = commands.add_parser(
        "forget",
        help="erase a person through the running service (Forget RPC)",
        description="Deletes every matching prospect in Pardot, drops the service's memory "
        "of them and records a suppression so later calls for them are refused.",
    )
    forget.add_argument("--target", default="127.0.0.1:50051", metavar="HOST:PORT")
    forget.add_argument("--email", default="")
    forget.add_argument("--user-id", default="")
    forget.add_argument("--lookup-field", default="", help="for --user-id / --lookup-value")
    forget.add_argument("--lookup-value", default="")
    forget.add_argument("--pardot-id", default="")
    forget.add_argument("--connection", default="", help='default: "default"')
    forget.add_argument("--message-id", default="", help="makes a retry of the command safe")
    forget.add_argument("--dry-run", action="store_true", help="read and plan, change nothing")
    forget.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")


def request_of(args: argparse.Namespace) -> pb.ForgetRequest:
    return pb.ForgetRequest(
        message_id=args.message_id,
        settings=pb.PardotSettings(
            connection=args.connection, lookup_field=args.lookup_field, dry_run=args.dry_run
        ),
        email=args.email,
        user_id=args.user_id,
        lookup_value=args.lookup_value,
        pardot_id=args.pardot_id,
    )


def command(args: argparse.Namespace, prog: str) -> int:
    try:
        response = asyncio.run(_send(args.target, request_of(args), args.timeout))
    except grpc.aio.AioRpcError as error:
        print(f"{prog} forget: {error.code().name}: {error.details()}", file=sys.stderr)
        return EXIT_FAILED
    print(json_format.MessageToJson(response, always_print_fields_with_no_presence=True))
    return EXIT_OK


async def _send(target: str, request: pb.ForgetRequest, timeout_s: float) -> pb.ForgetResponse:
    token = os.environ.get(TOKEN_ENV, "")
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ProspectSyncStub(channel)
        return await stub.Forget(request, timeout=timeout_s, metadata=metadata)
