"""Refuse at startup a connection configuration that cannot work, naming the key to fix.

A connection with a malformed business unit id or a missing secret would fail on every
call; saying so once, when the server starts, is kinder. Messages name configuration
keys (``connections.<name>.<key>``) and never print a secret's value. This module only
reads a ConnectionConfig: it never talks to the network.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from clients.budget import account_zone
from clients.config import ConnectionConfig
from strategies.core import pardot_facts as facts
from strategies.core.errors import FailedPrecondition, Reason

_MISCONFIGURED = Reason.CONNECTION_MISCONFIGURED

#: The settings each OAuth grant sends to the token endpoint.
GRANT_KEYS: dict[str, tuple[str, ...]] = {
    "refresh_token": ("client_id", "client_secret", "refresh_token"),
    "password": ("client_id", "client_secret", "username", "password"),
    "client_credentials": ("client_id", "client_secret"),
}
LEGACY_KEYS: tuple[str, ...] = ("email", "password", "user_key")


def check_connection(config: ConnectionConfig) -> None:
    """Everything: transport settings, then the auth mode's own."""
    check_transport(config)
    if config.auth == "oauth":
        check_oauth(config)
    elif config.auth == "legacy":
        check_legacy(config)
    else:
        raise FailedPrecondition(
            f'{config.key("auth")} must be "oauth" or "legacy", not {config.auth!r}',
            reason=_MISCONFIGURED,
        )


def check_transport(config: ConnectionConfig) -> None:
    require_http_url(config, "pardot_url")
    if config.api_version not in facts.API_VERSIONS:
        _refuse(config, "api_version", f"must be 3 or 4, not {config.api_version!r}")
    if config.max_concurrency < 1:
        _refuse(config, "max_concurrency", "must be at least 1")
    if config.max_retries < 0:
        _refuse(config, "max_retries", "must not be negative")
    if config.timeout_s <= 0:
        _refuse(config, "timeout_s", "must be positive")
    if config.backoff_base_s < 0 or config.backoff_max_s < 0:
        _refuse(config, "backoff_base_s", "and backoff_max_s must not be negative")
    if config.auth_failure_cooldown_s < 0:
        _refuse(config, "auth_failure_cooldown_s", "must not be negative")
    if config.unconfirmed_create_hold_s < 0:
        _refuse(config, "unconfirmed_create_hold_s", "must not be negative")
    if config.max_queued_writes < 1:
        _refuse(
            config,
            "max_queued_writes",
            "must be at least 1 (writes waiting for a batch call, per Pardot account)",
        )
    if config.tracker_scheme not in facts.TRACKER_SCHEMES:
        _refuse(config, "tracker_scheme", 'must be "https" or "http"')
    if config.snippet_campaign_offset < 0:
        _refuse(config, "snippet_campaign_offset", "must be 0 or more (Pardot's plugin uses 1000)")
    check_daily_budget(config)


def check_daily_budget(config: ConnectionConfig) -> None:
    """The account's daily limit and its time zone (Pardot's day ends at midnight there)."""
    if config.daily_call_limit < 1:
        _refuse(
            config,
            "daily_call_limit",
            "must be at least 1 (Pardot editions allow 25000, 50000 or 100000 calls a day)",
        )
    try:
        account_zone(config.timezone)
    except ValueError as problem:
        _refuse(config, "timezone", str(problem))


def check_oauth(config: ConnectionConfig) -> None:
    bu = config.business_unit_id
    if not facts.BUSINESS_UNIT_ID_PATTERN.fullmatch(bu):
        raise FailedPrecondition(
            f"{config.key('business_unit_id')} must be a Pardot business unit id: 18 letters "
            f"and digits starting with 0Uv (got {bu!r}, {len(bu)} characters)",
            reason=Reason.BUSINESS_UNIT_INVALID,
        )
    require_http_url(config, "token_url")
    if config.grant_type not in GRANT_KEYS:
        _refuse(
            config,
            "grant_type",
            f"must be refresh_token, password or client_credentials, not {config.grant_type!r}",
        )
    require_values(config, GRANT_KEYS[config.grant_type])


def check_legacy(config: ConnectionConfig) -> None:
    require_values(config, LEGACY_KEYS)
    if not facts.USER_KEY_PATTERN.fullmatch(config.user_key):
        _refuse(config, "user_key", "must be 32 hexadecimal characters")


def require_values(config: ConnectionConfig, names: tuple[str, ...]) -> None:
    missing = [config.key(name) for name in names if not getattr(config, name)]
    if missing:
        raise FailedPrecondition(
            f"connection {config.name!r} ({config.auth} auth) needs {', '.join(missing)}",
            reason=_MISCONFIGURED,
        )


def require_http_url(config: ConnectionConfig, name: str) -> None:
    parts = urlsplit(getattr(config, name))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        _refuse(config, name, "must be an http(s) URL with a host and no query string")


def _refuse(config: ConnectionConfig, name: str, problem: str) -> None:
    raise FailedPrecondition(f"{config.key(name)} {problem}", reason=_MISCONFIGURED)
