"""Record and report one HTTP call: a :class:`CallRecord` for the response, a
``pardot.call`` log event for the operator, its Prometheus metrics (``clients.metrics``)
and, when tracing is on, a span as a child of the RPC's.

All of them hold the method, the status, Pardot's err_code, the duration and the
attempt number; the record and the log event also the path (never the query string).
The metrics and the span never hold the path: a v3/v4 path carries the email or id it
reads by, so they name the endpoint's kind instead (``clients.metrics.endpoint_kind``).
This module must never see headers or bodies, so it cannot leak a credential.

Every attempt that may have left passes here (``clients.transport`` for the API,
``clients.auth`` for token grants and logins), which is why the request metrics and
the spans are made here and nowhere else: one place sees every attempt, retries and
token fetches included.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Final

import structlog
from opentelemetry import trace

from clients import metrics
from strategies.core.model import CallRecord

log = structlog.get_logger("clients")

#: A no-op until a tracer provider is installed (``server.tracing``); then every span
#: made here is one of the Pardot requests of the RPC whose span is current.
_tracer = trace.get_tracer("prospectsync.clients")

#: The per-RPC log fields (bound by the servicer) that a span may carry: none of them
#: can hold an email or a secret (the message_id, a caller's value, is left out too).
SPAN_LOG_FIELDS: Final = ("strategy", "api_version")

#: True while the running call's paths name a person whose email and ids must not be
#: logged (``Forget``, ``server.forget``): the log event carries the endpoint's kind
#: instead of the path. A contextvar, so only that call's own requests are affected.
PRIVATE_PATHS: ContextVar[bool] = ContextVar("private_paths", default=False)


def record_call(
    calls: list[CallRecord] | None,
    *,
    connection: str,
    method: str,
    path: str,
    started: float,
    attempt: int,
    http_status: int = 0,
    err_code: int = 0,
    purpose: str = "api",
    batch_size: int = 0,
) -> CallRecord:
    """Log one finished attempt and append it to ``calls`` (None: log only).
    ``started`` is its ``time.monotonic()``; ``purpose`` is "api" or "auth" (a token
    grant or a legacy login: logged, but not one request's cost, since every request
    on the connection shares the token); ``batch_size`` is the number of prospects a
    batch call carried (0: not a batch)."""
    duration = time.monotonic() - started
    record = CallRecord(
        method=method,
        path=path,
        http_status=http_status,
        err_code=err_code,
        duration_s=duration,
        attempt=attempt,
        batch_size=batch_size,
    )
    if calls is not None:
        calls.append(record)
    kind = metrics.endpoint_kind(method, path, purpose=purpose)
    log.info(
        "pardot.call",
        connection=connection,
        method=method,
        path=kind if PRIVATE_PATHS.get() else path,
        http_status=http_status,
        err_code=err_code,
        duration_ms=round(duration * 1000, 1),
        attempt=attempt,
        purpose=purpose,
        batch_size=batch_size,
    )
    outcome = metrics.outcome_of(http_status, err_code)
    if purpose == "auth":
        metrics.token_fetch(connection, kind, outcome)
    else:
        metrics.pardot_request(connection, kind, err_code, outcome, duration, batch_size)
    _span(record, connection=connection, kind=kind, outcome=outcome, purpose=purpose)
    return record


def _span(record: CallRecord, *, connection: str, kind: str, outcome: str, purpose: str) -> None:
    """The attempt as a finished span, timed as it ran: made afterwards, from the record,
    so that the transport's code paths (a retry, a deadline cutting it off, a refused
    token) need no span handling of their own."""
    end_ns = time.time_ns()
    span = _tracer.start_span(
        f"pardot {kind}",
        kind=trace.SpanKind.CLIENT,
        start_time=end_ns - int(record.duration_s * 1e9),
    )
    if span.is_recording():
        fields = structlog.contextvars.get_contextvars()
        span.set_attributes(
            {
                "prospectsync.connection": connection,
                "prospectsync.pardot.kind": kind,
                "prospectsync.pardot.purpose": purpose,
                "prospectsync.pardot.outcome": outcome,
                "prospectsync.pardot.err_code": record.err_code,
                "prospectsync.pardot.batch_size": record.batch_size,
                "prospectsync.pardot.attempt": record.attempt,
                "http.request.method": record.method,
                "http.response.status_code": record.http_status,
                **{
                    f"prospectsync.{name}": fields[name]
                    for name in SPAN_LOG_FIELDS
                    if isinstance(fields.get(name), str | int)
                },
            }
        )
        if outcome != metrics.OUTCOME_OK:
            span.set_status(trace.StatusCode.ERROR, f"{outcome} (err_code {record.err_code})")
    span.end(end_time=end_ns)
