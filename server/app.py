"""Assembles and runs the grpc.aio server: the ProspectSync service, health, reflection,
and an orderly shutdown.

One process, one event loop (DESIGN.md: scale with processes, not threads). On SIGTERM
or SIGINT the order matters and is fixed here: health turns NOT_SERVING first (load
balancers stop sending), then ``server.stop(grace)`` lets in-flight calls finish, then
the Pardot HTTP clients and the idempotency records close. Nothing here knows about
Pardot beyond handing the configured connections to the servicer, and nothing here
builds a store: :func:`open_state` chooses the state backend (``clients.state``) and
the stores come from it. Health also follows the state's own (``clients.state.health``):
NOT_SERVING for both names while the state cannot be written, SERVING again once it can.

The port is TLS (mutual TLS with a client CA) when ``[server.tls]`` is set, plaintext
otherwise; ``[server.auth]`` adds caller authentication (``server.interceptors``).
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

import grpc
import structlog
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from clients import auth as pardot_auth
from clients.account import account_label
from clients.config.connection import ConnectionMisconfigured
from clients.connections import PardotConnections
from clients.state.health import StateHealth
from clients.state.local import LocalState
from clients.state.protocols import ServiceState, StateUnavailable
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.config import ConfigError, ServiceConfig, TlsConfig
from server.forget import Forgetting, open_suppressions
from server.idempotency import Idempotency
from server.interceptors import (
    AdmissionInterceptor,
    CallerAuthInterceptor,
    IdempotencyInterceptor,
    RpcContextInterceptor,
)
from server.logging import register_secret
from server.metrics import RpcMetricsInterceptor
from server.servicer import ProspectSyncServicer
from server.tracing import RpcTracingInterceptor
from strategies.core.errors import ProspectSyncError, StateUnwritable

log = structlog.get_logger("server.app")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ProspectSync"].full_name
HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: grpc.reflection.v1, which newer grpcurl, grpcui and Postman ask first; grpcio-reflection
#: 1.85.1 serves only v1alpha (same messages, same field numbers: v1 is its promotion).
REFLECTION_V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"

_SERVER_OPTIONS = (
    # gRPC core cancels calls beyond 1,000 waiting for the application (3,000 at most):
    # let them reach AdmissionInterceptor, which answers the excess with documented
    # backpressure (RESOURCE_EXHAUSTED + RetryInfo) instead of a bare CANCELLED.
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 20_000),
)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class RunningServer:
    """A started server; ``stop`` runs the shutdown order once (later calls wait for it)."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    connections: PardotConnections
    idempotency: Idempotency
    state_health: StateHealth
    #: The backend the stores came from: closed last, once every store is closed.
    state: ServiceState
    #: :func:`follow_state_health`, until the server stops.
    _following: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: asyncio.Task[None] | None = field(default=None, repr=False)

    async def stop(self, grace: float | None = 5.0) -> None:
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._shutdown(grace))
        await asyncio.shield(self._stopping)

    async def _shutdown(self, grace: float | None) -> None:
        await self.health.enter_graceful_shutdown()  # from now on it stays NOT_SERVING
        try:
            await self.server.stop(grace)
        finally:
            if self._following is not None:
                self._following.cancel()
            self.state_health.close()
            try:
                await self.connections.aclose()
            finally:
                try:
                    self.idempotency.close()
                finally:
                    await self.state.aclose()


async def start_server(
    config: ServiceConfig,
    *,
    listen: str | None = None,
    connections: PardotConnections | None = None,
) -> RunningServer:
    """Binds ``listen`` (default ``config.server.listen``; port 0 picks a free port) and
    starts serving. A bind failure is a ConfigError naming the setting to change.

    ``connections`` defaults to :func:`open_connections`; the server owns and closes
    whatever it is given.
    """
    address = listen or config.server.listen
    # Tokens and api keys the Pardot client learns are redacted like configured secrets.
    pardot_auth.on_secret_learned(register_secret)
    state = open_state(config)
    if connections is None:
        try:
            connections = open_connections(config, state)
        except BaseException:
            await state.aclose()
            raise
    try:
        idempotency = open_idempotency(config, state)
    except BaseException:
        await connections.aclose()
        await state.aclose()
        raise
    # Metrics (and traces, when on) outermost: refusals by admission and caller auth are
    # counted with their codes, and the RPC's span is current for all the call does.
    interceptors: list[grpc.aio.ServerInterceptor] = [
        RpcMetricsInterceptor(),
        RpcContextInterceptor(),
        AdmissionInterceptor(config.server.max_in_flight),
    ]
    if config.server.tracing is not None:  # ~11 µs per RPC even with no provider
        interceptors.insert(0, RpcTracingInterceptor())
    if config.server.auth is not None:
        interceptors.append(CallerAuthInterceptor(config.server.auth.tokens))
    interceptors.append(IdempotencyInterceptor(idempotency))
    options = (
        *_SERVER_OPTIONS,
        # grpc sets SO_REUSEPORT by default, which lets a second server bind a port in
        # use and silently share its traffic; we want "address in use" instead, unless
        # this is one of several workers (server.workers) sharing the port on purpose.
        ("grpc.so_reuseport", 1 if config.server.workers > 1 else 0),
        ("grpc.max_receive_message_length", config.server.max_message_bytes),
    )
    server = grpc.aio.server(interceptors=interceptors, options=options)
    try:
        try:
            port = _bind(server, address, config.server.tls)
        except RuntimeError:
            setting = "--listen" if listen else "server.listen"
            problem = f"cannot listen on {address} (port in use, or not an address of this host)"
            raise ConfigError([f"{setting}: {problem}"]) from None
        forgetting = Forgetting(
            suppressions=await open_suppressions(config, state),
            identity=connections.identity,
            written=state.written(),
            records=idempotency.store,
            scope=lambda name: account_label(connections.get(name).config),
        )
        servicer = ProspectSyncServicer(
            connections,
            person_locks=state.person_locks(),
            state_health=state.health,
            forgetting=forgetting,
        )
        pb_grpc.add_ProspectSyncServicer_to_server(servicer, server)
        checks = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        if config.server.reflection:
            enable_reflection(server, (SERVICE_NAME, HEALTH_SERVICE_NAME))
        await server.start()
    except BaseException:
        await server.stop(None)
        await connections.aclose()
        idempotency.close()
        await state.aclose()
        raise
    initial = SERVING if await state_answers(state) else NOT_SERVING
    for service in ("", SERVICE_NAME):
        await checks.set(service, initial)
    following = asyncio.ensure_future(follow_state_health(state.health, checks))
    log.info(
        "server.started",
        listen=address,
        port=port,
        connections=sorted(config.connections),
        reflection=config.server.reflection,
        tls=_tls_mode(config.server.tls),
        caller_auth=config.server.auth is not None,
    )
    return RunningServer(
        server=server,
        port=port,
        health=checks,
        connections=connections,
        idempotency=idempotency,
        state_health=state.health,
        state=state,
        _following=following,
    )


async def follow_state_health(state_health: StateHealth, checks: health.aio.HealthServicer) -> None:
    """Both health names NOT_SERVING while the state cannot be written, SERVING again
    once it can: a load balancer then sends the calls to a replica that can remember
    what it writes. After ``enter_graceful_shutdown`` the checks ignore this."""
    async for writable in state_health.changes():
        status = SERVING if writable else NOT_SERVING
        for service in ("", SERVICE_NAME):
            await checks.set(service, status)
        if not writable:
            log.warning("server.not_serving", because="state_unwritable")


def enable_reflection(server: grpc.aio.Server, service_names: tuple[str, ...]) -> None:
    """Server reflection under both names, grpc.reflection.v1 and v1alpha, listing
    ``service_names`` and the two reflection services. grpcio-reflection's servicer
    answers both: the v1 request and response are v1alpha's on the wire, and the v1
    service's descriptor (a renamed copy of v1alpha's) is added to the default pool so
    that describing it works too."""
    _add_reflection_v1_descriptor()
    names = (*service_names, REFLECTION_V1_SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.aio.ReflectionServicer(names)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    handlers = {"ServerReflectionInfo": method}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1_SERVICE_NAME, handlers),)
    )


def _add_reflection_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    name = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(name)
        return
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    alpha, v1 = f".{file.package}.", ".grpc.reflection.v1."
    file.name, file.package = name, "grpc.reflection.v1"
    file.ClearField("options")

    def renamed(type_name: str) -> str:
        return v1 + type_name.removeprefix(alpha)

    messages = list(file.message_type)
    while messages:
        message = messages.pop()
        messages.extend(message.nested_type)
        for each in message.field:
            if each.HasField("type_name"):  # a message or enum field, never a scalar
                each.type_name = renamed(each.type_name)
    for service in file.service:
        for rpc in service.method:
            rpc.input_type, rpc.output_type = renamed(rpc.input_type), renamed(rpc.output_type)
    pool.AddSerializedFile(file.SerializeToString())


def _bind(server: grpc.aio.Server, address: str, tls: TlsConfig | None) -> int:
    if tls is None:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )
    return server.add_secure_port(address, credentials)


def _tls_mode(tls: TlsConfig | None) -> str:
    if tls is None:
        return "off"
    return "mutual" if tls.client_ca is not None else "on"


def open_state(config: ServiceConfig) -> ServiceState:
    """The state backend (``clients.state``): the one place it is chosen, by
    ``server.state``. ``"sqlite"``: the embedded one, SQLite files under
    ``server.state_dir`` and the rest in this process. ``"redis"``: every kind shared
    through ``[redis]`` by every worker and replica. Either opens each store when asked
    for it, and its ``health`` (probing while a write has failed) is what the servicer
    and the health service follow.

    Opening never talks to Redis (the client connects on first use):
    :func:`state_answers` is the first contact."""
    if config.server.state == "redis":
        from clients.state.redis.state import RedisState

        if config.redis is None:  # server.config refuses this file; code may not
            raise ConfigError(['server.state: "redis" needs a [redis] table with its url'])
        return RedisState(
            config.redis.url,
            key_prefix=config.redis.key_prefix,
            timeout_s=config.redis.timeout_s,
        )
    return LocalState(config.server.state_dir)


async def state_answers(state: ServiceState) -> bool:
    """Whether a shared backend answers now, asked once at start (the embedded one has
    nothing to ask). A Redis that does not answer does not stop the start: it is
    reported to the state's health like any failed command, so the server starts
    NOT_SERVING, refuses calls before they write, and turns SERVING by itself when the
    health's probe reaches Redis. Refusing to start instead would turn a Redis that
    comes up after the service (no start order is promised by an orchestrator) into a
    crash loop whose backoff outlasts the outage."""
    from clients.state.redis.state import RedisState

    if not isinstance(state, RedisState):
        return True
    try:
        await state.context.run("the Redis state", state.context.client.ping())
    except StateUnwritable:
        return False
    return True


def open_idempotency(config: ServiceConfig, state: ServiceState) -> Idempotency:
    """Single flight over ``state``'s message_id records (they survive a restart)."""
    try:
        store = state.responses(window_s=config.server.idempotency_window_s)
    except StateUnavailable as error:
        raise ConfigError([f"server.state_dir: {error}"]) from None
    return Idempotency(store)


def open_connections(config: ServiceConfig, state: ServiceState) -> PardotConnections:
    """The configured connections over ``state``: its identity map (it survives a
    restart), which they own from then on, and the slots, budget marks, tokens and
    create holds they ask it for."""
    try:
        return PardotConnections(config.connections, state=state)
    except StateUnavailable as error:
        raise ConfigError([f"server.state_dir: {error}"]) from None
    except ConnectionMisconfigured as error:  # every problem, one line each
        raise ConfigError(error.problems) from None
    except ProspectSyncError as error:  # the client's other checks (one time zone an account)
        raise ConfigError([error.message]) from None


async def serve(config: ServiceConfig, listen: str | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down in order within
    ``server.shutdown_grace_s``."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    # Handlers first: a signal that arrives while the server starts still stops it
    # in order, instead of killing the process.
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, _resolve_once, received, signum)
    try:
        for warning in config.warnings:
            log.warning(warning.event, **warning.fields)
        running = await start_server(config, listen=listen)
        try:
            signum = await received
            log.info("server.stopping", signal=signum.name, grace_s=config.server.shutdown_grace_s)
        finally:
            await running.stop(config.server.shutdown_grace_s)
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    log.info("server.stopped")


def _resolve_once(future: asyncio.Future[signal.Signals], signum: signal.Signals) -> None:
    # A second signal while stopping changes nothing: the grace period bounds the wait.
    if not future.done():
        future.set_result(signum)
