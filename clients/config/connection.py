"""A Pardot connection's settings, each declared once with its default, its rule and its
doc line, and the one check every connection passes before anything is opened.

``server.config`` reads a ``[connections.<name>]`` table into a :class:`ConnectionConfig`
and checks it with :func:`connection_problems`; a connection built in code (tests,
``clients.connections``) is checked by :func:`check_connection` against the same rules,
which reports every problem at once in one FailedPrecondition.

Secrets are resolved (from the file, ``<name>_env`` or ``<name>_file``) before they get
here and are kept out of ``repr``. Problems name the key (``connections.<name>.<key>``)
and the fix, never a value that could be a secret. This module never talks to the
network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from clients.budget import account_zone
from clients.config.schema import (
    CrossRule,
    Problem,
    at_least,
    at_most,
    full_match,
    http_url,
    more_than,
    not_negative,
    one_of,
    problems,
    setting,
    settings_of,
)
from strategies.core import pardot_facts as facts
from strategies.core.errors import FailedPrecondition, Reason

AuthMode = Literal["oauth", "legacy"]
GrantType = Literal["refresh_token", "password", "client_credentials"]

AUTH_MODES: tuple[AuthMode, ...] = ("oauth", "legacy")
GRANT_TYPES: tuple[GrantType, ...] = ("refresh_token", "password", "client_credentials")

#: The settings each OAuth grant sends to the token endpoint.
GRANT_KEYS: dict[str, tuple[str, ...]] = {
    "refresh_token": ("client_id", "client_secret", "refresh_token"),
    "password": ("client_id", "client_secret", "username", "password"),
    "client_credentials": ("client_id", "client_secret"),
}
#: What the legacy Pardot login sends.
LEGACY_KEYS: tuple[str, ...] = ("email", "password", "user_key")
#: The OAuth settings every grant uses (token_url and grant_type have defaults).
_OAUTH_KEYS: tuple[str, ...] = ("business_unit_id", "token_url", "grant_type")
_CREDENTIAL_KEYS = frozenset(
    (*_OAUTH_KEYS, *(k for keys in GRANT_KEYS.values() for k in keys), *LEGACY_KEYS)
)

#: A host name with an optional port, as the tracking snippet puts it after the scheme.
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")


def _time_zone(name: str) -> str | None:
    try:
        account_zone(name)
    except ValueError as problem:
        return str(problem)
    return None


@dataclass(frozen=True)
class ConnectionConfig:
    """One ``[connections.<name>]`` table: a Pardot account and how to reach it. Every
    field but ``name`` is a setting, declared here once so that the file, code and the
    README cannot disagree about its default, its rule or its meaning."""

    #: The table's name (``[connections.<name>]``): where the settings below live.
    name: str
    pardot_url: str = setting(
        "https://pi.pardot.com",
        rule=http_url,
        doc="the Pardot API; `https://pi.demo.pardot.com` for developer orgs and sandboxes",
    )
    api_version: int = setting(
        4,
        rule=one_of(*sorted(facts.API_VERSIONS)),
        doc="3, 4 or 5: the version used when a request's `settings.api_version` is "
        "unspecified (5 needs OAuth)",
    )
    auth: AuthMode = setting(
        "oauth",
        rule=one_of(*AUTH_MODES),
        doc="`oauth` (Salesforce OAuth: the only mode Pardot accepts since 2021) or `legacy` "
        "(email, password and user_key)",
    )
    # --- OAuth (Salesforce)
    business_unit_id: str = setting(
        "",
        rule=full_match(
            facts.BUSINESS_UNIT_ID_PATTERN,
            "must be an 18-character Pardot business unit id starting with 0Uv",
        ),
        doc="required with OAuth: the Pardot business unit, 18 characters starting with `0Uv`",
    )
    token_url: str = setting(
        "https://login.salesforce.com/services/oauth2/token",
        rule=http_url,
        doc="Salesforce's token endpoint; `https://test.salesforce.com/services/oauth2/token` "
        "for sandboxes",
    )
    grant_type: GrantType = setting(
        "refresh_token",
        rule=one_of(*GRANT_TYPES),
        doc="`refresh_token`, `password` (with `username` and `password`) or `client_credentials`",
    )
    client_id: str = setting("", doc="required with OAuth: the connected app's consumer key")
    client_secret: str = setting(
        "", secret=True, doc="required with OAuth: the connected app's consumer secret"
    )
    refresh_token: str = setting(
        "", secret=True, doc='required with `grant_type = "refresh_token"`'
    )
    username: str = setting("", doc='required with `grant_type = "password"`: the Salesforce user')
    password: str = setting(
        "",
        secret=True,
        doc='required with `grant_type = "password"` (the Salesforce user\'s) and with '
        '`auth = "legacy"` (the Pardot user\'s)',
    )
    # --- Legacy Pardot login
    email: str = setting("", doc='required with `auth = "legacy"`: the Pardot user\'s email')
    user_key: str = setting(
        "",
        secret=True,
        rule=full_match(facts.USER_KEY_PATTERN, "must be 32 hexadecimal characters"),
        doc='required with `auth = "legacy"`: the Pardot user key, 32 hexadecimal characters',
    )
    # --- Transport
    timeout_s: float = setting(
        10.0,
        rule=more_than(0, "seconds"),
        doc="per HTTP request; never more than the caller's remaining gRPC deadline",
    )
    # The file may not go past Pardot's limit; code may, to provoke err 66 on purpose.
    max_concurrency: int = setting(
        facts.MAX_CONCURRENT_REQUESTS,
        rule=at_least(1),
        file_rule=at_most(
            facts.MAX_CONCURRENT_REQUESTS,
            "Pardot refuses more concurrent requests per account with err 66",
        ),
        doc="requests in flight to this Pardot account, for the whole process (Pardot's limit "
        f"is {facts.MAX_CONCURRENT_REQUESTS})",
    )
    max_retries: int = setting(
        3,
        rule=at_least(0),
        doc="retries of retryable failures (5xx, timeouts, err 66, …), with full-jitter backoff",
    )
    # Retry delays: full jitter, uniform in [0, min(backoff_max_s, backoff_base_s * 2**n)].
    backoff_base_s: float = setting(
        0.1,
        rule=not_negative,
        doc="backoff before retry n: uniform in [0, min(backoff_max_s, backoff_base_s·2ⁿ⁻¹)]",
    )
    backoff_max_s: float = setting(
        2.0, rule=not_negative, doc="the longest backoff before any one retry"
    )
    # After Pardot/Salesforce rejected the credentials, calls fail fast (no request
    # at all) for this long instead of asking the token endpoint again on every call.
    auth_failure_cooldown_s: float = setting(
        30.0,
        rule=not_negative,
        doc="after credentials are rejected, fail fast this long instead of asking again",
    )
    # A v4/v5 create on its way, or one that got no answer (a timeout, a dropped
    # connection, a process killed), may still land in Pardot; its hold is written to
    # state_dir before it is sent, and for this long after no answer came no other
    # create for that email is sent, so a caller's retry finds the prospect by reading
    # instead of creating it twice (clients.gateway, clients.state.holds).
    unconfirmed_create_hold_s: float = setting(
        60.0,
        rule=not_negative,
        doc="a v4/v5 create is held from before it is sent until Pardot answers, and this "
        "long after no answer came (timeout, dropped, proxy page, the process killed): no "
        "other create for that email is sent meanwhile, so a retry updates the prospect "
        "once a read finds it, never creates a twin",
    )
    # Prospect writes waiting to be sent in a batch call (clients.coalescer), for the
    # whole Pardot account; beyond it a write is refused instead of queueing without
    # bound. 5,000 is about 4 s of work at the account's ceiling (5 calls of 50 per
    # 200 ms): a caller queued behind more would mostly see its deadline pass.
    max_queued_writes: int = setting(
        5_000,
        rule=at_least(1, "writes waiting for a batch call, per Pardot account"),
        doc="writes waiting for a batch call on this account; beyond, RESOURCE_EXHAUSTED "
        "`PARDOT_QUEUE_FULL` + RetryInfo",
    )
    # Daily API budget (PARDOT_API.md "Limits": 25k / 50k / 100k by edition).
    daily_call_limit: int = setting(
        25_000,
        rule=at_least(1, "Pardot editions allow 25000, 50000 or 100000 calls a day"),
        doc="the account's daily API calls (25k / 50k / 100k by edition): counted, logged at "
        "50/80/90/100 %, exposed by `PardotConnection.budget()`; Pardot's err 122 is the "
        "authority",
    )
    timezone: str = setting(
        "UTC",
        rule=_time_zone,
        doc="the account's time zone (IANA name): the daily count resets at its midnight",
    )
    # --- The browser side (tracking snippet, docs/snippet.md)
    tracker_host: str = setting(
        "pi.pardot.com",
        rule=full_match(_HOST, 'must be a host name such as "pi.pardot.com" (no scheme)'),
        doc="where the browser snippet loads `pd.js` from (your tracker domain, if any)",
    )
    tracker_scheme: str = setting(
        "https",
        rule=one_of(*facts.TRACKER_SCHEMES, why="http only for a tracker on loopback"),
        doc="the scheme of that host (`http` only for a loopback test stub)",
    )
    # Pardot's own plugin renders piCId as campaign_id + 1000; 0 renders it as given.
    snippet_campaign_offset: int = setting(
        0,
        rule=at_least(0, "Pardot's plugin uses 1000"),
        doc="added to the campaign id in `piCId` (Pardot's own plugin uses 1000)",
    )

    allow_resubscribe: bool = setting(
        False,
        doc="let writes re-subscribe a person who opted out (`is_do_not_email` or "
        "`opted_out` back to false, a list membership they opted out of); off, such "
        "writes are left out and the response lists them under `suppressed`",
    )

    permanent_delete: bool = setting(
        False,
        doc="`Forget`: after the v5 delete, also try to remove each prospect from the "
        "recycle bin for good (`DELETE …/prospects/<id>?deleted=true`, not documented by "
        "Salesforce: turn it on only where the account is known to take it)",
    )

    def key(self, name: str) -> str:
        """Where setting ``name`` lives in the server's configuration, for error
        messages that tell an operator what to fix (never its value)."""
        return f"connections.{self.name}.{name}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for the log redactor."""
        return tuple(value for name in SECRET_KEYS if (value := getattr(self, name)))


#: Every setting of a connection, by name (``name`` itself is the table's, not one).
CONNECTION_SETTINGS = settings_of(ConnectionConfig)
SECRET_KEYS: tuple[str, ...] = tuple(n for n, s in CONNECTION_SETTINGS.items() if s.secret)


# --- rules across settings -----------------------------------------------------------


def _credentials(config: ConnectionConfig, given: frozenset[str] | None) -> Iterator[Problem]:
    """The credentials the auth mode (and the OAuth grant) sends, and, in a file, none
    it does not: a stray credential is a sign the file means another mode."""
    allowed: frozenset[str] | None
    if config.auth == "oauth":
        grant_keys = GRANT_KEYS.get(config.grant_type)
        needed = ("business_unit_id", *(grant_keys or GRANT_KEYS["client_credentials"]))
        # An unknown grant is refused by its own rule; what it would allow is unknown.
        allowed = None if grant_keys is None else frozenset((*_OAUTH_KEYS, *grant_keys))
        mode = f'auth = "oauth", grant_type = "{config.grant_type}"'
    elif config.auth == "legacy":
        needed, allowed = LEGACY_KEYS, frozenset(LEGACY_KEYS)
        mode = 'auth = "legacy"'
    else:
        return  # refused by auth's own rule
    for name in needed:
        if given is not None and name not in given:
            yield name, f"is required with {mode}"
        elif getattr(config, name) == "":
            fix = "must not be empty" if given is not None else "is required"
            yield name, f"{fix} with {mode}"
    if given is not None and allowed is not None:
        for name in sorted((given & _CREDENTIAL_KEYS) - allowed):
            yield name, f"is not used with {mode}; remove it"


def _backoff_bounds(config: ConnectionConfig, _given: frozenset[str] | None) -> Iterator[Problem]:
    """A base above the cap never applies (every backoff is then drawn up to the cap), so
    one of the two is a mistake. Either one's own rule speaks first when it is broken."""
    base, cap = config.backoff_base_s, config.backoff_max_s
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, cap))
    if numbers and 0 <= cap < base:
        yield "backoff_base_s", "must not be more than backoff_max_s (the longest backoff)"


def _v5_needs_oauth(config: ConnectionConfig, _given: frozenset[str] | None) -> Iterator[Problem]:
    """API v5 accepts only Salesforce OAuth (PARDOT_API.md, "API v5"): a legacy login
    would have every call refused."""
    if config.api_version == facts.V5 and config.auth == "legacy":
        yield "api_version", 'must be 3 or 4 with auth = "legacy": API v5 accepts only OAuth'


#: Every rule across a connection's settings. (That connections to one Pardot account
#: share its time zone is ``clients.connections``'s to check: it sees them all.)
CONNECTION_RULES: tuple[CrossRule[ConnectionConfig], ...] = (
    _credentials,
    _backoff_bounds,
    _v5_needs_oauth,
)


def connection_problems(
    config: ConnectionConfig, *, given: frozenset[str] | None = None
) -> list[Problem]:
    """Every problem of one connection at once: ``(setting name, fix)``. ``given`` holds
    the setting names a file set (which also holds it to the file-only rules)."""
    return problems(config, CONNECTION_RULES, given=given)


class ConnectionMisconfigured(FailedPrecondition):
    """A connection that cannot work, refused before anything is opened; ``problems``
    lists each ``connections.<name>.<key>: <fix>``, so they can be fixed in one go."""

    def __init__(self, config: ConnectionConfig, found: list[Problem]) -> None:
        self.problems = [f"{config.key(name)}: {fix}" for name, fix in found]
        # The business unit has its own reason (and its own fix in docs/errors.md); it is
        # the reason only when it is the whole story.
        only_unit = all(name == "business_unit_id" for name, _ in found)
        reason = Reason.BUSINESS_UNIT_INVALID if only_unit else Reason.CONNECTION_MISCONFIGURED
        super().__init__("; ".join(self.problems), reason=reason)


def check_connection(config: ConnectionConfig) -> None:
    """Raises ConnectionMisconfigured (a FailedPrecondition) listing every problem of a
    connection built in code; a file's connections were checked as they were read."""
    found = connection_problems(config)
    if found:
        raise ConnectionMisconfigured(config, found)


def check_oauth(config: ConnectionConfig) -> None:
    """For an OAuth authenticator: the connection's checks, and that it says OAuth."""
    _check_mode(config, "oauth")


def check_legacy(config: ConnectionConfig) -> None:
    """For a legacy-login authenticator: the connection's checks, and that it says legacy."""
    _check_mode(config, "legacy")


def _check_mode(config: ConnectionConfig, mode: AuthMode) -> None:
    found = connection_problems(config)
    if config.auth != mode and not any(name == "auth" for name, _ in found):
        found.append(("auth", f'must be "{mode}" for this authenticator'))
    if found:
        raise ConnectionMisconfigured(config, found)
