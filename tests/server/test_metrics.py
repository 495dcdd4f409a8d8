"""The metrics' promises, scraped as Prometheus scrapes them: over HTTP from the real side
port, parsed with prometheus-client's own parser.

- RPCs are counted as go-grpc-prometheus counts them (names, labels, Go's code names),
  unary and streaming, by the interceptor in a real grpc.aio server with the real
  ProspectSync servicer over fakepardot.
- Every Pardot attempt moves the request counter and its latency histogram, labelled by
  connection, endpoint kind, err_code and outcome (a real err 66 from fakepardot, then
  its retry); token grants are counted apart; no label holds an email.
- The hook functions the other modules call each move their metric.
- ``prospect-sync serve`` opens the port from ``[server.metrics]`` and refuses, as a
  configuration error, a port in use.
- With PROMETHEUS_MULTIPROC_DIR, the metrics of several worker processes are served
  together.
- Every metric name the alert rules (docs/operations.md) and the Grafana dashboard
  (docs/grafana-dashboard.json) use is one the registry defines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import prometheus_client
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from clients import metrics as client_metrics
from clients.call_log import record_call
from clients.connections import PardotConnections
from clients.state.local import LocalState
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server import metrics
from server.app import open_connections, open_state
from server.config import ConfigError, MetricsConfig, ServiceConfig, parse_config
from server.interceptors import RpcContextInterceptor
from server.servicer import ProspectSyncServicer
from strategies.core.errors import Reason
from support.service import Service, close_service, config_for, identify, open_service

from .conftest import offline_config

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).with_name("prospect-sync")
SERVICE = "prospectsync.v1.ProspectSync"


# --- scraping ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """One scrape of the endpoint: its text and its samples."""

    text: str
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` whose labels include ``labels``; 0 when there is none."""
        found = [s for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples: name them all"
        return found[0].value if found else 0.0

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


async def scrape(port: int) -> Scrape:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = text_string_to_metric_families(answer.text)
    return Scrape(answer.text, tuple(s for f in families for s in f.samples))


@pytest.fixture
def endpoint() -> Iterable[metrics.MetricsEndpoint]:
    opened = metrics.start_metrics_endpoint("127.0.0.1:0")
    yield opened
    opened.close()


# --- a real server with the interceptor ------------------------------------------------


@dataclass
class MeasuredService:
    server: grpc.aio.Server
    channel: grpc.aio.Channel
    stub: pb_grpc.ProspectSyncStub
    connections: PardotConnections
    state: LocalState


async def measured_service(config: ServiceConfig) -> MeasuredService:
    """The ProspectSync servicer over real connections to fakepardot, health and
    reflection, behind the metrics interceptor and the RPC context interceptor, in the
    order issue14-metrics-hooks.md gives server.app."""
    state = open_state(config)
    connections = open_connections(config, state)
    server = grpc.aio.server(
        interceptors=[metrics.RpcMetricsInterceptor(), RpcContextInterceptor()]
    )
    servicer = ProspectSyncServicer(
        connections, person_locks=state.person_locks(), state_health=state.health
    )
    pb_grpc.add_ProspectSyncServicer_to_server(servicer, server)
    checks = health.aio.HealthServicer()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    reflection.enable_server_reflection((SERVICE, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return MeasuredService(server, channel, pb_grpc.ProspectSyncStub(channel), connections, state)


@pytest.fixture
async def service(fake: FakePardot, tmp_path: Path) -> AsyncIterator[MeasuredService]:
    opened = await measured_service(config_for(fake, tmp_path / "state"))
    yield opened
    await opened.channel.close()
    await opened.server.stop(None)
    await opened.connections.aclose()
    opened.state.health.close()


def handled(method: str, code: str, kind: str = "unary", service: str = SERVICE) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "grpc_code": code}


def started(method: str, kind: str = "unary", service: str = SERVICE) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method}


async def test_rpcs_are_counted_as_go_grpc_prometheus_counts_them(
    service: MeasuredService, endpoint: metrics.MetricsEndpoint
) -> None:
    before = await scrape(endpoint.port)

    ok = await service.stub.Identify(identify({"email": "ada@example.com"}, connection="v3"))
    assert ok.prospect_id
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # v3 needs an email
        await service.stub.Identify(identify({"first_name": "Ada"}, connection="v3"))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # Streaming, both kinds of behavior: health Watch writes through its context (a
    # coroutine) and ends Canceled when the caller goes; reflection yields (a generator).
    watch = health_pb2_grpc.HealthStub(service.channel).Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    listing = reflection_pb2_grpc.ServerReflectionStub(service.channel).ServerReflectionInfo()
    await listing.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    assert (await listing.read()).list_services_response.service
    await listing.done_writing()
    assert await listing.code() is grpc.StatusCode.OK

    after = await until_scraped(
        endpoint.port,
        lambda s: (
            s.value(
                "grpc_server_handled_total",
                **handled("Watch", "Canceled", "server_stream", "grpc.health.v1.Health"),
            )
            > before.value(
                "grpc_server_handled_total",
                **handled("Watch", "Canceled", "server_stream", "grpc.health.v1.Health"),
            )
        ),
    )

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("grpc_server_started_total", **started("Identify")) == 2
    assert moved("grpc_server_handled_total", **handled("Identify", "OK")) == 1
    assert moved("grpc_server_handled_total", **handled("Identify", "InvalidArgument")) == 1
    assert moved("grpc_server_handling_seconds_count", **started("Identify")) == 2
    assert moved("grpc_server_handling_seconds_sum", **started("Identify")) > 0
    health_watch = ("Watch", "server_stream", "grpc.health.v1.Health")
    assert moved("grpc_server_started_total", **started(*health_watch)) == 1
    reflected = ("ServerReflectionInfo", "bidi_stream", reflection.SERVICE_NAME)
    assert moved("grpc_server_handled_total", **handled(reflected[0], "OK", *reflected[1:])) == 1


async def until_scraped(
    port: int, condition: Callable[[Scrape], bool], attempts: int = 200
) -> Scrape:
    """Scrape until ``condition(scrape)`` holds: a cancelled stream's handler finishes on
    the server after the caller has already gone (bounded; no timing is asserted)."""
    for _ in range(attempts):
        scraped = await scrape(port)
        if condition(scraped):
            return scraped
        await asyncio.sleep(0.01)
    raise AssertionError("the scrape never showed what the calls did")


async def test_every_pardot_attempt_is_counted_by_kind_err_code_and_outcome(
    service: MeasuredService, endpoint: metrics.MetricsEndpoint, fake: FakePardot
) -> None:
    upsert = {"connection": "v3", "kind": "v3/prospect/upsert"}
    token = {"connection": "v3", "kind": "oauth/token"}
    before = await scrape(endpoint.port)

    await service.stub.Identify(identify({"email": "grace@example.com"}, connection="v3"))
    fake.state.inject("err", err_code=66, path_contains="/do/upsert")  # then a retry
    changed = {
        "email": "grace@example.com",
        "first_name": "Grace",
    }  # an identical one sends nothing
    await service.stub.Identify(identify(changed, connection="v3"))

    after = await scrape(endpoint.port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    requests = "prospectsync_pardot_requests_total"
    assert moved(requests, **upsert, err_code="0", outcome="ok") == 2
    assert moved(requests, **upsert, err_code="66", outcome="pardot_error") == 1
    assert moved("prospectsync_pardot_request_seconds_count", **upsert) == 3
    assert moved("prospectsync_pardot_token_fetches_total", **token, outcome="ok") == 1
    # The v3 path holds the email; the labels only its kind.
    assert "@" not in after.text and "grace" not in after.text


def test_a_batch_call_records_its_size() -> None:
    labels = {"connection": f"batching-{uuid.uuid4().hex[:8]}", "kind": "v4/prospect/batchUpsert"}
    for size in (3, 50):
        record_call(
            [],
            connection=labels["connection"],
            method="POST",
            path="/api/prospect/version/4/do/batchUpsert",
            started=0.0,
            attempt=1,
            http_status=200,
            batch_size=size,
        )
    sample = prometheus_client.REGISTRY.get_sample_value
    assert sample("prospectsync_pardot_batch_size_count", labels) == 2
    assert sample("prospectsync_pardot_batch_size_sum", labels) == 53
    assert sample("prospectsync_pardot_batch_size_bucket", {**labels, "le": "5.0"}) == 1


V4 = "/api/prospect/version/4/do"
V5 = "/api/v5/objects"


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", f"{V4}/read/email/ada%40example.com", "v4/prospect/read"),
        ("POST", "/api/prospect/version/3/do/upsert/email/x%2Fy%40z.com", "v3/prospect/upsert"),
        ("POST", f"{V4}/batchUpsert", "v4/prospect/batchUpsert"),
        ("POST", "/api/listMembership/version/4/do/create/list_id/7", "v4/listMembership/create"),
        ("PATCH", f"{V5}/prospects/1234", "v5/prospects/update"),
        ("GET", f"{V5}/prospects/1234", "v5/prospects/read"),
        ("GET", f"{V5}/prospects", "v5/prospects/query"),
        ("POST", f"{V5}/prospects/do/upsertLatestByEmail", "v5/prospects/upsertLatestByEmail"),
        ("POST", f"{V5}/list-memberships", "v5/list-memberships/create"),
        ("POST", "/api/v5/external-activities", "v5/external-activities/create"),
        ("POST", "/somewhere/ada@example.com", "other"),
    ],
)
def test_an_endpoint_kind_names_the_operation_never_a_path_value(
    method: str, path: str, kind: str
) -> None:
    assert client_metrics.endpoint_kind(method, path) == kind


def test_token_grants_and_logins_have_kinds_of_their_own() -> None:
    assert (
        client_metrics.endpoint_kind("POST", "/api/login/version/3", purpose="auth") == "v3/login"
    )
    token = client_metrics.endpoint_kind("POST", "/services/oauth2/token", purpose="auth")
    assert token == "oauth/token"


async def test_each_hook_moves_its_metric(endpoint: metrics.MetricsEndpoint) -> None:
    account = "0Uv0000000000HOOK"
    client_metrics.account_slots(account, in_use=4, waiting=7, limit=5)
    client_metrics.account_queue(account, queued=4100, limit=5000)
    client_metrics.queue_refused(account)
    client_metrics.daily_calls(account, used=21_000, limit=25_000)
    before = await scrape(endpoint.port)
    client_metrics.identity_lookup("hooks", hit=True)
    client_metrics.identity_lookup("hooks", hit=False)
    client_metrics.identity_lookup("hooks", hit=False)
    metrics.message_id_replayed(f"/{SERVICE}/Identify")
    metrics.admission_refused(Reason.SERVER_BUSY)
    metrics.rpc_error(f"/{SERVICE}/Identify", Reason.PARDOT_AUTH_FAILED)
    metrics.in_flight(1500, 2000)
    after = await scrape(endpoint.port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert after.value("prospectsync_pardot_slots_in_use", account=account) == 4
    assert after.value("prospectsync_pardot_callers_waiting", account=account) == 7
    assert after.value("prospectsync_pardot_slots_limit", account=account) == 5
    assert after.value("prospectsync_pardot_queued_writes", account=account) == 4100
    assert after.value("prospectsync_pardot_queued_writes_limit", account=account) == 5000
    assert after.value("prospectsync_pardot_queue_refusals_total", account=account) >= 1
    assert after.value("prospectsync_pardot_daily_calls_used", account=account) == 21_000
    assert after.value("prospectsync_pardot_daily_calls_limit", account=account) == 25_000
    assert moved("prospectsync_identity_lookups_total", connection="hooks", result="hit") == 1
    assert moved("prospectsync_identity_lookups_total", connection="hooks", result="miss") == 2
    assert moved("prospectsync_message_id_replays_total", grpc_method="Identify") == 1
    assert moved("prospectsync_admission_refusals_total", reason="SERVER_BUSY") == 1
    errors = {"grpc_method": "Identify", "reason": "PARDOT_AUTH_FAILED"}
    assert moved("prospectsync_rpc_errors_total", **errors) == 1
    assert after.value("prospectsync_in_flight_units") == 1500
    assert after.value("prospectsync_max_in_flight_units") == 2000


# --- configuration and the command ---------------------------------------------------


def test_the_metrics_table_is_read_and_checked(tmp_path: Path) -> None:
    config = parse_config(offline_config(metrics={"listen": "127.0.0.1:9464"}), base_dir=tmp_path)
    assert config.server.metrics == MetricsConfig(listen="127.0.0.1:9464")
    assert parse_config(offline_config(), base_dir=tmp_path).server.metrics is None
    with pytest.raises(ConfigError) as bad:
        parse_config(offline_config(metrics={"listen": "9464", "port": 1}), base_dir=tmp_path)
    assert bad.value.problems == [
        "server.metrics.port: unknown key; known keys: listen",
        'server.metrics.listen: must be "HOST:PORT", e.g. "127.0.0.1:50051" or "[::]:50051"',
    ]


def command_config(tmp_path: Path, metrics_listen: str) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [server]
            listen = "127.0.0.1:0"
            state_dir = "state"

            [server.metrics]
            listen = "{metrics_listen}"

            [connections.default]
            auth = "legacy"
            api_version = 3
            pardot_url = "http://127.0.0.1:9"
            email = "ops@example.com"
            password = "not-a-real-password"
            user_key = "0123456789abcdef0123456789abcdef"
            """
        )
    )
    path.chmod(0o600)
    return path


async def test_the_command_serves_metrics_on_the_configured_port(tmp_path: Path) -> None:
    assert COMMAND.exists(), f"{COMMAND} is missing: run `make venv`"
    config = command_config(tmp_path, "127.0.0.1:0")
    serving = await asyncio.create_subprocess_exec(
        str(COMMAND),
        "serve",
        "--config",
        str(config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert serving.stderr is not None
        port = None
        async with asyncio.timeout(30):  # it logs "server.started", or exits (EOF)
            while line := await serving.stderr.readline():
                event = json.loads(line)
                if event["event"] == "metrics.listening":
                    port = event["port"]
                if event["event"] == "server.started":
                    break
        assert port, "no metrics.listening event before server.started"
        scraped = await scrape(port)
        # Registered at start, before any call: a dashboard has its series from the start.
        assert "# TYPE grpc_server_handled_total counter" in scraped.text
        assert "# TYPE prospectsync_pardot_requests_total counter" in scraped.text
        assert "process_cpu_seconds_total" in scraped.names()
    finally:
        serving.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await serving.wait() == 0


def test_a_metrics_port_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(COMMAND), "serve", "--config", str(command_config(tmp_path, f"127.0.0.1:{port}"))],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == (
        f"prospect-sync: server.metrics.listen: cannot listen on 127.0.0.1:{port} "
        "(port in use, or not an address of this host)\n"
    )


# --- several worker processes ------------------------------------------------------------

WORKER = """
from clients import metrics
metrics.pardot_request("default", "v4/prospect/upsert", 0, "ok", 0.1)
metrics.account_slots("acct", in_use=2, waiting=0, limit=5)
"""
EXPOSITION = """
import prometheus_client
from server.metrics import exposition_registry
print(prometheus_client.generate_latest(exposition_registry()).decode())
"""


def test_with_a_multiprocess_dir_the_workers_are_served_together(tmp_path: Path) -> None:
    environ = {**os.environ, metrics.MULTIPROC_DIR_VARIABLE: str(tmp_path)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER], env=environ) for _ in range(2)]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]

    def served() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        shown = subprocess.run(
            [sys.executable, "-c", EXPOSITION],
            env=environ,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        ).stdout
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(shown)
            for s in f.samples
        }

    labels = (("connection", "default"), ("err_code", "0"), ("kind", "v4/prospect/upsert"))
    requests = ("prospectsync_pardot_requests_total", (*labels, ("outcome", "ok")))
    slots = ("prospectsync_pardot_slots_in_use", (("account", "acct"),))
    before = served()
    assert before[requests] == 2
    assert before[slots] == 4
    # A worker's gauges count until its parent marks it dead (issue 13's supervisor must).
    multiprocess.mark_process_dead(workers[0].pid, str(tmp_path))
    after = served()
    assert after[requests] == 2  # counters keep what the dead worker counted
    assert after[slots] == 2


# --- the dashboard and the alerts use only metrics that exist ---------------------------

#: A PromQL word that names a metric: ours or gRPC's (label names, functions and
#: keywords are not prefixed so).
_METRIC_NAME = re.compile(r"\b(?:prospectsync|grpc_server)_[a-z_]+\b")


def defined_names() -> set[str]:
    """Every sample name the registry can expose (``_total``, ``_bucket``…)."""
    names: set[str] = set()
    for family in prometheus_client.REGISTRY.collect():
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def alert_expressions() -> list[str]:
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    rules = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert rules, "docs/operations.md has no ```yaml block of alert rules"
    return [m for block in rules for m in re.findall(r"expr: (.*)", block)]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "docs/grafana-dashboard.json").read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_the_docs_use_is_defined(source: str) -> None:
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    assert expressions
    used = {name for expr in expressions for name in _METRIC_NAME.findall(expr)}
    assert used, f"the {source} name no metric"
    assert not used - defined_names(), f"the {source} use undefined metrics"


def test_the_alerts_cover_what_the_issue_asks() -> None:
    joined = "\n".join(alert_expressions())
    assert 'err_code="66"' in joined
    assert "prospectsync_pardot_daily_calls_used" in joined and "0.8" in joined
    assert "prospectsync_pardot_token_fetches_total" in joined and "PARDOT_AUTH_FAILED" in joined
    assert "prospectsync_pardot_queued_writes_limit" in joined
    assert "prospectsync_max_in_flight_units" in joined


# --- what the service's own modules report, through the real server ---------------------


@pytest.fixture
async def real_service(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    opened = await open_service(config_for(fake, tmp_path / "state"))
    yield opened
    await close_service(opened)


async def test_the_real_server_counts_its_rpcs(
    real_service: Service, endpoint: metrics.MetricsEndpoint
) -> None:
    before = await scrape(endpoint.port)
    await real_service.stub.Identify(identify({"email": "ada@example.com"}, connection="v3"))
    after = await scrape(endpoint.port)
    labels = handled("Identify", "OK")
    assert after.value("grpc_server_handled_total", **labels) > before.value(
        "grpc_server_handled_total", **labels
    )


async def test_a_replayed_message_id_and_an_identity_hit_are_counted(
    real_service: Service, endpoint: metrics.MetricsEndpoint
) -> None:
    before = await scrape(endpoint.port)
    for _ in range(2):  # the second: a replay, then an identity map hit
        await real_service.stub.Identify(
            identify({"email": "ada@example.com", "org_id": "o-1"}, lookup_field="org_id")
        )
        await real_service.stub.Identify(
            identify({"email": "ada@example.com"}, connection="v3", message_id="m-1")
        )
    after = await scrape(endpoint.port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("prospectsync_message_id_replays_total", grpc_method="Identify") == 1
    assert moved("prospectsync_identity_lookups_total", connection="default", result="hit") >= 1


async def test_the_accounts_limits_and_budget_are_shown(
    real_service: Service, endpoint: metrics.MetricsEndpoint
) -> None:
    await real_service.stub.Identify(identify({"email": "ada@example.com"}, connection="v3"))
    scraped = await scrape(endpoint.port)
    assert scraped.value("prospectsync_pardot_slots_limit", account=DEMO.business_unit_v3) == 5
    assert scraped.value("prospectsync_pardot_daily_calls_used", account=DEMO.business_unit_v3) > 0
    queue_limit = scraped.value(
        "prospectsync_pardot_queued_writes_limit", account=DEMO.business_unit_v3
    )
    assert queue_limit == 5000
