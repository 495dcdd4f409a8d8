"""The ProspectSync gRPC service: request in, strategy chosen, response out.

The servicer translates (``server.convert``), asks the configured connection for a
gateway bounded by the caller's deadline, lets the registry pick the strategy, runs it
(one call at a time per person when the strategy reads before it creates), and reports
failures as rich statuses (``server.status``). It never talks HTTP, never
decides how an event maps to Pardot calls, and never chooses a Pardot host from
anything in a request: the connection's configuration does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc
import structlog

from clients.errors import ProspectSyncError
from clients.identity import KeyedLocks
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.convert import (
    connection_name,
    event_from_identify,
    identify_response,
    settings_from_proto,
)
from server.status import abort_with
from strategies.registry import REGISTRY, Registry

if TYPE_CHECKING:
    from clients.connections import PardotConnections

bind = structlog.contextvars.bind_contextvars


class NotYetAvailable(ProspectSyncError):
    """An RPC the contract already declares but this release does not serve: callers
    generated from the proto get a clear UNIMPLEMENTED instead of a silent no-op."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class ProspectSyncServicer(pb_grpc.ProspectSyncServicer):
    """Per-call log fields (message_id, connection, strategy, outcome, pardot_calls) are
    bound here; ``server.interceptors`` logs them once, in "rpc.done", with the status
    and latency of every call."""

    def __init__(self, connections: PardotConnections, registry: Registry = REGISTRY) -> None:
        self._connections = connections
        self._registry = registry
        self._person_locks = KeyedLocks()

    async def Identify(
        self, request: pb.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.IdentifyResponse:
        event = event_from_identify(request)
        bind(message_id=event.message_id)
        gateway = None
        try:
            connection = self._connections.get(connection_name(request.settings))
            settings = settings_from_proto(request.settings, connection.config)
            bind(connection=settings.connection, api_version=settings.api_version)
            strategy = self._registry.pick(event, settings)
            bind(strategy=strategy.name, dry_run=settings.dry_run)
            gateway = connection.gateway(
                api_version=settings.api_version,
                dry_run=settings.dry_run,
                deadline=deadline_of(context),
            )
            key = strategy.identity_key(event, settings)
            if key is None:
                result = await strategy.sync(event, settings, gateway)
            else:
                # Concurrent first identifies of one person would each read "nobody",
                # then each create: one at a time per person, so one prospect is born.
                async with self._person_locks.hold(settings.connection, key):
                    result = await strategy.sync(event, settings, gateway)
        except ProspectSyncError as error:
            bind(reason=error.reason, pardot_calls=0 if gateway is None else len(gateway.calls))
            if "err_code" in error.metadata:
                bind(err_code=error.metadata["err_code"])
            await abort_with(context, error)
        bind(outcome=result.outcome.name, pardot_calls=len(gateway.calls))
        return identify_response(result, strategy.name, gateway.calls)

    async def Track(
        self, request: pb.TrackRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrackResponse:
        bind(message_id=request.message_id)
        await abort_with(context, NotYetAvailable("Track arrives in a later release"))

    async def GetTrackingSnippet(
        self, request: pb.GetTrackingSnippetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrackingSnippetResponse:
        await abort_with(context, NotYetAvailable("GetTrackingSnippet arrives in a later release"))


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The caller's deadline as an absolute ``time.monotonic()`` value, so that every
    Pardot call and retry below can stop in time; None when the caller set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
