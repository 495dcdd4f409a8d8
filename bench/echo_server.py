"""A bare grpc.aio server that answers ProspectSync.Identify with one constant response:
the yardstick for the service's own overhead in ``make bench``'s zero-latency run.

Same proto, same grpc.aio, same kind of answer (one Pardot call listed, as EmailV3's
are) — and nothing else: no interceptors, health, reflection, logging, strategy or
Pardot. It must stay that bare, or the comparison stops measuring our overhead.
Loopback only; stops on SIGTERM/SIGINT.

Run: ``python -m bench.echo_server --listen 127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import grpc
from google.protobuf import duration_pb2

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc

ANSWER = pb.IdentifyResponse(
    prospect_id="100001",
    outcome=pb.OUTCOME_CREATED,
    strategy="EmailV3",
    pardot_calls=[
        pb.PardotCall(
            method="POST",
            path="/api/prospect/version/3/do/upsert/email/bench@example.com",
            http_status=200,
            duration=duration_pb2.Duration(nanos=1_000_000),
            attempt=1,
        )
    ],
)


class EchoServicer(pb_grpc.ProspectSyncServicer):
    async def Identify(
        self, request: pb.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.IdentifyResponse:
        return ANSWER


async def serve(listen: str) -> None:
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    pb_grpc.add_ProspectSyncServicer_to_server(EchoServicer(), server)
    server.add_insecure_port(listen)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(grace=0.5)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__)
    parser.add_argument("--listen", required=True, metavar="127.0.0.1:PORT")
    asyncio.run(serve(parser.parse_args(argv).listen))


if __name__ == "__main__":
    main()
