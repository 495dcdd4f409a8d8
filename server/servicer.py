"""The ProspectSync gRPC service: request in, strategy chosen, response out.

The servicer translates (``server.convert``), asks the configured connection for a
gateway bounded by the caller's deadline, lets the registry pick the strategy, runs it
(one call at a time per person when the strategy reads before it creates), and reports
failures as rich statuses (``server.status``). Identify and Track share that path: a
track call is resolved to its prospect exactly as an identify would be, then
``strategies.track`` applies what the event's mapping asks for. GetTrackingSnippet
renders through ``server.snippet`` and calls nobody. BatchSync runs each of its items
through that same path, concurrently, each idempotent as its unary call would be: the
gateway coalesces their writes into Pardot batch calls, and every item gets its own
response or its own status (docs/batch-sync.md).

It never talks HTTP, never decides how an event maps to Pardot calls, and never
chooses a Pardot host from anything in a request: the connection's configuration does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import structlog

from clients.state.health import StateHealth
from clients.state.protocols import PersonLocks
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.batch_order import run_after
from server.convert import (
    connection_name,
    event_from_identify,
    event_from_track,
    identify_response,
    settings_from_proto,
    skipped_track_response,
    snippet_response,
    track_response,
)
from server.forget import Forgetting
from server.idempotency import as_item
from server.interceptors import report_unexpected
from server.snippet import render_snippet
from server.status import abort_with, to_rpc_status
from strategies.base import Gateway, Strategy
from strategies.catalog import REGISTRY
from strategies.core.errors import InvalidArgument, ProspectSyncError
from strategies.core.model import (
    Event,
    Outcome,
    Prospect,
    Settings,
    Skipped,
    SyncResult,
    TrackResult,
)
from strategies.core.pardot_facts import MAX_BATCH_PROSPECTS, MAX_CONCURRENT_REQUESTS
from strategies.emails import normalized
from strategies.policies import PolicyGateway, governed
from strategies.registry import Registry
from strategies.track import identity_event, mapping_path, plan_identify, plan_track, run_track

if TYPE_CHECKING:
    from clients.connections import PardotConnection, PardotConnections
    from clients.gateway import PardotGateway

bind = structlog.contextvars.bind_contextvars

Response = TypeVar("Response")

_SERVICE = pb.DESCRIPTOR.services_by_name["ProspectSync"]
#: A BatchSync item is idempotent under the key of the unary method of its kind.
IDENTIFY_METHOD = f"/{_SERVICE.full_name}/Identify"
TRACK_METHOD = f"/{_SERVICE.full_name}/Track"

#: Items per BatchSync request: our contract (the proto's comment), not Pardot's.
MAX_BATCH_ITEMS = 1000
#: Items of one BatchSync that run at once. Pardot takes 5 calls of 50 prospects at a
#: time per account: twice that keeps the next batches filling while those are in
#: flight. The per-account limiter and the coalescer's bounded queue downstream are
#: what keep Pardot safe; this bounds what one call holds.
BATCH_ITEMS_IN_FLIGHT = 2 * MAX_CONCURRENT_REQUESTS * MAX_BATCH_PROSPECTS


@dataclass
class _Rpc:
    """One call's connection, resolved settings and (once opened) gateway."""

    connection: PardotConnection
    settings: Settings
    deadline: float | None
    gateway: PardotGateway | None = None

    def open_gateway(self) -> PardotGateway:
        self.gateway = self.connection.gateway(
            api_version=self.settings.api_version,
            dry_run=self.settings.dry_run,
            deadline=self.deadline,
        )
        return self.gateway


class ProspectSyncServicer(pb_grpc.ProspectSyncServicer):
    """Per-call log fields (message_id, connection, strategy, outcome, pardot_calls) are
    bound here; ``server.interceptors`` logs them once, in "rpc.done", with the status
    and latency of every call."""

    def __init__(
        self,
        connections: PardotConnections,
        *,
        person_locks: PersonLocks,
        state_health: StateHealth,
        forgetting: Forgetting | None = None,
        registry: Registry = REGISTRY,
    ) -> None:
        self._connections = connections
        self._registry = registry
        #: One call at a time per person (``_resolve``), from the state backend.
        self._person_locks = person_locks
        #: Whether the state backend can be written now (``_refuse_while_unwritable``).
        self._state_health = state_health
        #: Forget, and the check that refuses a forgotten person's calls.
        self._forgetting = forgetting or Forgetting()

    async def Identify(
        self,
        request: pb.IdentifyRequest,
        context: grpc.aio.ServicerContext[pb.IdentifyRequest, pb.IdentifyResponse],
    ) -> pb.IdentifyResponse:
        return await _reported(context, self._run_identify(request, deadline_of(context)))

    async def Track(
        self,
        request: pb.TrackRequest,
        context: grpc.aio.ServicerContext[pb.TrackRequest, pb.TrackResponse],
    ) -> pb.TrackResponse:
        return await _reported(context, self._run_track(request, deadline_of(context)))

    async def GetTrackingSnippet(
        self,
        request: pb.GetTrackingSnippetRequest,
        context: grpc.aio.ServicerContext[
            pb.GetTrackingSnippetRequest, pb.GetTrackingSnippetResponse
        ],
    ) -> pb.GetTrackingSnippetResponse:
        handle = self._run(
            request.settings, deadline_of(context), lambda rpc: self._snippet(request, rpc)
        )
        return await _reported(context, handle)

    async def Forget(
        self,
        request: pb.ForgetRequest,
        context: grpc.aio.ServicerContext[pb.ForgetRequest, pb.ForgetResponse],
    ) -> pb.ForgetResponse:
        deadline = deadline_of(context)
        bind(message_id=request.message_id)
        handle = self._run(
            request.settings,
            deadline,
            lambda rpc: self._forgetting.forget(request, rpc.connection, rpc.settings, deadline),
        )
        return await _reported(context, handle)

    async def BatchSync(
        self,
        request: pb.BatchSyncRequest,
        context: grpc.aio.ServicerContext[pb.BatchSyncRequest, pb.BatchSyncResponse],
    ) -> pb.BatchSyncResponse:
        return await _reported(context, self._run_batch(request, deadline_of(context)))

    # --- what each call does ------------------------------------------------------------

    async def _run_batch(
        self, request: pb.BatchSyncRequest, deadline: float | None
    ) -> pb.BatchSyncResponse:
        """Each item runs as its unary call would, in its own task (so its log fields
        stay its own), at most :data:`BATCH_ITEMS_IN_FLIGHT` at a time, all bounded by
        the call's deadline; items about one person one after another, in request order
        (``server.batch_order``). A failure is that item's result, never the call's."""
        count = len(request.items)
        bind(items=count)
        if not 1 <= count <= MAX_BATCH_ITEMS:
            raise InvalidArgument(
                "items",
                f"holds {count} items: send 1 to {MAX_BATCH_ITEMS:,} per BatchSync call",
            )
        slots = asyncio.Semaphore(BATCH_ITEMS_IN_FLIGHT)
        after = run_after(request.items)
        done = [asyncio.Event() for _ in range(count)]

        async def run(index: int, item: pb.BatchSyncItem) -> pb.BatchSyncResult:
            try:
                for earlier in after[index]:  # waiting holds no slot
                    await done[earlier].wait()
                async with slots:
                    return await self._batch_item(index, item, deadline)
            finally:
                done[index].set()

        # gather answers in the order it was given: result i is item i's.
        results = await asyncio.gather(*(run(i, item) for i, item in enumerate(request.items)))
        failed = sum(result.HasField("error") for result in results)
        bind(ok=count - failed, failed=failed)
        return pb.BatchSyncResponse(results=results)

    async def _run_identify(
        self, request: pb.IdentifyRequest, deadline: float | None
    ) -> pb.IdentifyResponse:
        event = event_from_identify(request)
        bind(message_id=event.message_id)
        return await self._run(request.settings, deadline, lambda rpc: self._identify(event, rpc))

    async def _run_track(
        self, request: pb.TrackRequest, deadline: float | None
    ) -> pb.TrackResponse:
        event = event_from_track(request)
        bind(message_id=event.message_id, track_event=event.name)
        return await self._run(request.settings, deadline, lambda rpc: self._track(event, rpc))

    async def _batch_item(
        self, index: int, item: pb.BatchSyncItem, deadline: float | None
    ) -> pb.BatchSyncResult:
        """One item's result: its response, or its failure as the status the unary call
        would have ended with, field paths placed inside the batch request."""
        kind = item.WhichOneof("call")
        try:
            if kind == "identify":
                identify = item.identify
                identified = await as_item(
                    IDENTIFY_METHOD, identify, lambda: self._run_identify(identify, deadline)
                )
                return pb.BatchSyncResult(identify=identified)
            if kind == "track":
                track = item.track
                tracked = await as_item(
                    TRACK_METHOD, track, lambda: self._run_track(track, deadline)
                )
                return pb.BatchSyncResult(track=tracked)
            raise InvalidArgument(f"items[{index}]", "sets neither identify nor track: set one")
        except ProspectSyncError as error:
            prefix = f"items[{index}].{kind}." if kind else ""
            return pb.BatchSyncResult(error=to_rpc_status(error, field_prefix=prefix))
        except Exception:
            unexpected = report_unexpected("rpc.unexpected_error", item=index)
            return pb.BatchSyncResult(error=to_rpc_status(unexpected))

    async def _identify(self, event: Event, rpc: _Rpc) -> pb.IdentifyResponse:
        event = normalized(event, rpc.settings)
        plan = plan_identify(event, rpc.settings)  # bad list ids fail before any call
        strategy = self._pick(event, rpc.settings)
        await self._forgetting.refuse_forgotten(event, rpc.settings)
        self._refuse_while_unwritable(rpc.settings)
        gateway = rpc.open_gateway()

        def resolve(through: Gateway) -> Awaitable[SyncResult]:
            return self._resolve(strategy, event, rpc.settings, through)

        async def run(governed_gateway: PolicyGateway) -> TrackResult:
            if plan is None:
                return TrackResult(await resolve(governed_gateway))
            return await run_track(plan, event, rpc.settings, governed_gateway, resolve)

        done = await _under_policies(gateway, rpc.settings, run)
        bind(outcome=done.sync.outcome.name, pardot_calls=len(gateway.calls))
        return identify_response(done.sync, strategy.name, gateway.calls, done.actions)

    async def _track(self, event: Event, rpc: _Rpc) -> pb.TrackResponse:
        plan = plan_track(event, rpc.settings)  # a bad mapping fails before any call
        if plan is None:
            bind(outcome=Outcome.SKIPPED.name, pardot_calls=0)
            return skipped_track_response(
                f"{mapping_path(event.name)} is not set: the event was skipped and nothing "
                "was sent to Pardot"
            )
        who = normalized(identity_event(event, rpc.settings), rpc.settings)
        strategy = self._pick(who, rpc.settings)
        await self._forgetting.refuse_forgotten(who, rpc.settings)
        self._refuse_while_unwritable(rpc.settings)
        gateway = rpc.open_gateway()

        def resolve(through: Gateway) -> Awaitable[SyncResult]:
            return self._resolve(strategy, who, rpc.settings, through)

        def run(governed_gateway: PolicyGateway) -> Awaitable[TrackResult]:
            return run_track(plan, who, rpc.settings, governed_gateway, resolve)

        result = await _under_policies(gateway, rpc.settings, run)
        bind(
            outcome=result.sync.outcome.name,
            pardot_calls=len(gateway.calls),
            actions=[action.kind.name for action in result.actions],
        )
        return track_response(result, strategy.name, gateway.calls)

    async def _snippet(
        self, request: pb.GetTrackingSnippetRequest, rpc: _Rpc
    ) -> pb.GetTrackingSnippetResponse:
        snippet = render_snippet(
            page_url=request.page_url,
            settings=rpc.settings,
            connection=rpc.connection.config,
            visitor_email=request.visitor_email,
            do_not_track=request.do_not_track,
        )
        bind(campaign_source=snippet.campaign_source.name, warnings=len(snippet.warnings))
        return snippet_response(snippet)

    # --- the path every call shares -------------------------------------------------------

    async def _run(
        self,
        settings: pb.PardotSettings,
        deadline: float | None,
        handle: Callable[[_Rpc], Awaitable[Response]],
    ) -> Response:
        """Resolves the connection and settings and runs ``handle``; a
        ProspectSyncError leaves with the calls it cost bound for the log."""
        rpc: _Rpc | None = None
        try:
            connection = self._connections.get(connection_name(settings))
            resolved = settings_from_proto(settings, connection.config)
            bind(connection=resolved.connection, api_version=resolved.api_version)
            rpc = _Rpc(connection, resolved, deadline)
            return await handle(rpc)
        except ProspectSyncError as error:
            gateway = rpc.gateway if rpc is not None else None
            bind(reason=error.reason, pardot_calls=0 if gateway is None else len(gateway.calls))
            if "err_code" in error.metadata:
                bind(err_code=error.metadata["err_code"])
            raise

    def _refuse_while_unwritable(self, settings: Settings) -> None:
        """StateUnwritable, before the strategy runs, while the state cannot be written.

        Here rather than in an interceptor: this is the last point before a call's first
        Pardot request, and the first where it is known to need state at all. A replay
        of a stored message_id (answered by the interceptor from the records, no write)
        and a GetTrackingSnippet (no state) are still served; a dry run writes no state
        and is served too; a BatchSync item is refused as its unary call would be, in
        its own result; and a mistake in the request (INVALID_ARGUMENT, an unknown
        connection) is still reported as such, which a retry would not mend."""
        if not settings.dry_run:
            self._state_health.check()

    def _pick(self, event: Event, settings: Settings) -> Strategy:
        strategy = self._registry.pick(event, settings)
        bind(strategy=strategy.name, dry_run=settings.dry_run)
        return strategy

    async def _resolve(
        self, strategy: Strategy, event: Event, settings: Settings, gateway: Gateway
    ) -> SyncResult:
        """Runs the strategy. Concurrent first calls for one person would each read
        "nobody", then each create: one at a time per person, so one prospect is born."""
        key = strategy.identity_key(event, settings)
        if key is None:
            return await strategy.sync(event, settings, gateway)
        async with self._person_locks.hold(settings.connection, key):
            return await strategy.sync(event, settings, gateway)


async def _under_policies(
    gateway: PardotGateway,
    settings: Settings,
    run: Callable[[PolicyGateway], Awaitable[TrackResult]],
) -> TrackResult:
    """``run`` through ``gateway`` with the write policies the settings ask for: a call
    its sync mode forbade answers SKIPPED (nothing was written, the warning says why),
    and what the opt-out guard left out joins the result."""
    governed_gateway = governed(gateway, settings)
    try:
        done = await run(governed_gateway)
    except Skipped as skip:
        done = TrackResult(SyncResult(Prospect(id=None), Outcome.SKIPPED, [skip.reason]))
    done.sync.suppressed.extend(governed_gateway.suppressed)
    return done


async def _reported(
    context: grpc.aio.ServicerContext[Any, Any], call: Awaitable[Response]
) -> Response:
    """``call``'s response; a ProspectSyncError ends the RPC with its rich status."""
    try:
        return await call
    except ProspectSyncError as error:
        bind(reason=error.reason)
        await abort_with(context, error)


def deadline_of(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The caller's deadline as an absolute ``time.monotonic()`` value, so that every
    Pardot call and retry below can stop in time; None when the caller set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
