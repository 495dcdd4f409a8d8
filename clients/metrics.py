"""What the Pardot client reports to Prometheus: requests, their latency and batch sizes,
the account's slots, write queue and daily budget, the identity map's hits, token fetches.

Each metric has one small function that the module owning the event calls (the call
log calls :func:`pardot_request` and :func:`token_fetch` for every attempt it records;
``docs/operations.md`` names the metrics and /work/notes/issue14-metrics-hooks.md where
each other call goes). The metrics live on prometheus-client's default registry, which
``server.metrics`` serves; this module never serves, never imports ``server`` (the
import contract) and never takes a value that could carry a secret or an email: labels
are connection names, account labels (a business unit id is not a secret), endpoint
kinds (:func:`endpoint_kind`, built only from the constant parts of a path), err_codes
and outcomes, all of bounded number.

Gauges are set to absolute values by their owner rather than moved up and down here, so
a missed call cannot leave a gauge drifting, and so that prometheus-client's
multiprocess mode (``server.metrics.exposition_registry``) can add up the live workers'
values (``livesum``) or take the largest (``max``: a count that the shared state
already knows whole, the daily budget).
"""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

#: Pardot answers in 50 ms to a few seconds; a timeout is at most ``timeout_s`` (10 s).
PARDOT_LATENCY_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: A batch call carries 1 to 50 prospects (PARDOT_API.md, "Batches").
BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 20, 30, 40, 50)

#: ``outcome`` of one attempt: Pardot answered and accepted it; answered with an error
#: envelope (``err_code`` says which); answered HTTP >= 300 without one (a proxy page, a
#: 5xx); or never answered (a timeout, a dropped connection, the caller's deadline).
OUTCOME_OK: Final = "ok"
OUTCOME_PARDOT_ERROR: Final = "pardot_error"
OUTCOME_HTTP_ERROR: Final = "http_error"
OUTCOME_NO_ANSWER: Final = "no_answer"

PARDOT_REQUESTS = Counter(
    "prospectsync_pardot_requests",
    "Pardot API attempts (retries count again), by connection, endpoint kind, err_code "
    "(0: none) and outcome (ok, pardot_error, http_error, no_answer).",
    ["connection", "kind", "err_code", "outcome"],
)
PARDOT_REQUEST_SECONDS = Histogram(
    "prospectsync_pardot_request_seconds",
    "Latency of one Pardot API attempt, from the request leaving to its answer (or end).",
    ["connection", "kind"],
    buckets=PARDOT_LATENCY_BUCKETS,
)
PARDOT_BATCH_SIZE = Histogram(
    "prospectsync_pardot_batch_size",
    "Prospects carried by one Pardot batch call (batchUpsert, batchCreate, batchUpdate).",
    ["connection", "kind"],
    buckets=BATCH_SIZE_BUCKETS,
)
TOKEN_FETCHES = Counter(
    "prospectsync_pardot_token_fetches",
    "OAuth token grants and legacy logins, by connection and outcome (ok, or why not).",
    ["connection", "kind", "outcome"],
)
SLOTS_IN_USE = Gauge(
    "prospectsync_pardot_slots_in_use",
    "Pardot requests in flight for the account now (at most its max_concurrency).",
    ["account"],
    multiprocess_mode="livesum",
)
SLOTS_LIMIT = Gauge(
    "prospectsync_pardot_slots_limit",
    "The account's max_concurrency: requests it may have in flight at once.",
    ["account"],
    multiprocess_mode="max",
)
CALLERS_WAITING = Gauge(
    "prospectsync_pardot_callers_waiting",
    "Requests waiting for one of the account's slots now.",
    ["account"],
    multiprocess_mode="livesum",
)
QUEUED_WRITES = Gauge(
    "prospectsync_pardot_queued_writes",
    "Writes waiting for a batch call on the account now.",
    ["account"],
    multiprocess_mode="livesum",
)
QUEUED_WRITES_LIMIT = Gauge(
    "prospectsync_pardot_queued_writes_limit",
    "The account's max_queued_writes: beyond, RESOURCE_EXHAUSTED PARDOT_QUEUE_FULL.",
    ["account"],
    multiprocess_mode="max",
)
QUEUE_REFUSALS = Counter(
    "prospectsync_pardot_queue_refusals",
    "Writes refused because the account's write queue was full (PARDOT_QUEUE_FULL).",
    ["account"],
)
IDENTITY_LOOKUPS = Counter(
    "prospectsync_identity_lookups",
    "Identity map lookups, by connection and result (hit: the prospect id was known).",
    ["connection", "result"],
)
DAILY_CALLS_USED = Gauge(
    "prospectsync_pardot_daily_calls_used",
    "API calls counted against the account's daily limit today (its own time zone).",
    ["account"],
    multiprocess_mode="max",
)
DAILY_CALLS_LIMIT = Gauge(
    "prospectsync_pardot_daily_calls_limit",
    "The account's daily_call_limit (Pardot's err 122 stays the authority).",
    ["account"],
    multiprocess_mode="max",
)

#: ``/api/<object>/version/<3|4>/do/<operation>`` (the rest holds request data).
_V3V4 = re.compile(r"/api/([a-zA-Z]+)/version/([345])/do/([a-zA-Z]+)(?:/|$)")
#: ``/api/v5/objects/<collection>[/do/<operation> | /<id>]`` and ``/api/v5/<collection>``.
_V5 = re.compile(r"/api/v5/(?:objects/)?([a-z][a-z-]*)(?:/do/([a-zA-Z]+)|/([^/]+))?/?$")
_LOGIN = re.compile(r"/api/login/version/([345])$")
#: What an HTTP method does to a v5 record or collection.
_V5_BY_ID = {"GET": "read", "PATCH": "update", "DELETE": "delete"}
_V5_COLLECTION = {"GET": "query", "POST": "create"}


def endpoint_kind(method: str, path: str, *, purpose: str = "api") -> str:
    """A bounded name for what a request does, ``v4/prospect/read``, ``v5/prospects/update``,
    ``oauth/token``: the object and operation only, never a path value (v3/v4 put emails
    and ids in the path), so it is safe as a label and a span attribute. "other" for a
    path of no known shape."""
    if (login := _LOGIN.fullmatch(path)) is not None:
        return f"v{login.group(1)}/login"
    if purpose == "auth":
        return "oauth/token"
    if (v3v4 := _V3V4.match(path)) is not None:
        pardot_object, version, operation = v3v4.groups()
        return f"v{version}/{pardot_object}/{operation}"
    if (v5 := _V5.match(path)) is not None:
        collection, operation, record = v5.groups()
        if operation is None:
            table = _V5_BY_ID if record is not None else _V5_COLLECTION
            operation = table.get(method.upper(), method.lower())
        return f"v5/{collection}/{operation}"
    return "other"


def outcome_of(http_status: int, err_code: int) -> str:
    """The ``outcome`` label of one attempt (see ``OUTCOME_*``)."""
    if err_code:
        return OUTCOME_PARDOT_ERROR
    if http_status == 0:
        return OUTCOME_NO_ANSWER
    if http_status >= 300:
        return OUTCOME_HTTP_ERROR
    return OUTCOME_OK


def pardot_request(
    connection: str, kind: str, err_code: int, outcome: str, seconds: float, batch_size: int = 0
) -> None:
    """One Pardot API attempt ended (``clients.call_log``, for every attempt that left)."""
    PARDOT_REQUESTS.labels(connection, kind, str(err_code), outcome).inc()
    PARDOT_REQUEST_SECONDS.labels(connection, kind).observe(seconds)
    if batch_size > 0:
        PARDOT_BATCH_SIZE.labels(connection, kind).observe(batch_size)


def token_fetch(connection: str, kind: str, outcome: str) -> None:
    """One token grant or legacy login ended (``clients.call_log``, purpose "auth")."""
    TOKEN_FETCHES.labels(connection, kind, outcome).inc()


def account_slots(account: str, *, in_use: int, waiting: int, limit: int) -> None:
    """The account's slots now: held, waited for, and how many there are."""
    SLOTS_IN_USE.labels(account).set(in_use)
    CALLERS_WAITING.labels(account).set(waiting)
    SLOTS_LIMIT.labels(account).set(limit)


def account_queue(account: str, *, queued: int, limit: int) -> None:
    """The account's write queue now: writes waiting for a batch call, and its limit."""
    QUEUED_WRITES.labels(account).set(queued)
    QUEUED_WRITES_LIMIT.labels(account).set(limit)


def queue_refused(account: str) -> None:
    """A write was refused with PARDOT_QUEUE_FULL."""
    QUEUE_REFUSALS.labels(account).inc()


def identity_lookup(connection: str, *, hit: bool) -> None:
    """One identity map lookup: the prospect id was known (hit) or not (miss)."""
    IDENTITY_LOOKUPS.labels(connection, "hit" if hit else "miss").inc()


def daily_calls(account: str, *, used: int, limit: int) -> None:
    """The account's calls counted today and its daily limit."""
    DAILY_CALLS_USED.labels(account).set(used)
    DAILY_CALLS_LIMIT.labels(account).set(limit)
