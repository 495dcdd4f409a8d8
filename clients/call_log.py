"""Record and log one HTTP call: a :class:`CallRecord` for the response, a ``pardot.call``
log event for the operator.

Both hold the method, the path (never the query string), the status, Pardot's
err_code, the duration and the attempt number. This module must never see headers or
bodies, so it cannot leak a credential.
"""

from __future__ import annotations

import time

import structlog

from strategies.core.model import CallRecord

log = structlog.get_logger("clients")


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
    log.info(
        "pardot.call",
        connection=connection,
        method=method,
        path=path,
        http_status=http_status,
        err_code=err_code,
        duration_ms=round(duration * 1000, 1),
        attempt=attempt,
        purpose=purpose,
        batch_size=batch_size,
    )
    return record
