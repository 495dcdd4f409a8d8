"""A Pardot connection's settings, as ``server.config`` parsed them from the TOML file.

Secrets are resolved (from the file, ``<name>_env`` or ``<name>_file``) before they get
here, and are kept out of ``repr`` so that logging a config can never print one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthMode = Literal["oauth", "legacy"]
GrantType = Literal["refresh_token", "password", "client_credentials"]


@dataclass(frozen=True)
class ConnectionConfig:
    name: str
    pardot_url: str = "https://pi.pardot.com"
    api_version: int = 4
    auth: AuthMode = "oauth"
    # OAuth (Salesforce)
    business_unit_id: str = ""
    token_url: str = "https://login.salesforce.com/services/oauth2/token"
    grant_type: GrantType = "refresh_token"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    # Legacy Pardot login
    email: str = ""
    user_key: str = field(default="", repr=False)
    # Transport
    timeout_s: float = 10.0
    max_concurrency: int = 5
    max_retries: int = 3
    # Retry delays: full jitter, uniform in [0, min(backoff_max_s, backoff_base_s * 2**n)].
    backoff_base_s: float = 0.1
    backoff_max_s: float = 2.0
    # After Pardot/Salesforce rejected the credentials, calls fail fast (no request
    # at all) for this long instead of asking the token endpoint again on every call.
    auth_failure_cooldown_s: float = 30.0
    # A v4 create that got no answer (a timeout, a dropped connection) may still land
    # in Pardot; for this long no other create for that email is sent, so a caller's
    # retry finds the prospect by reading instead of creating it twice.
    unconfirmed_create_hold_s: float = 60.0
    # Prospect writes waiting to be sent in a batch call (clients.coalescer), for the
    # whole Pardot account; beyond it a write is refused (RESOURCE_EXHAUSTED, reason
    # PARDOT_QUEUE_FULL, with RetryInfo) instead of queueing without bound. 5,000 is
    # about 4 s of work at the account's ceiling (5 calls of 50 per 200 ms): a caller
    # queued behind more would mostly see its deadline pass.
    max_queued_writes: int = 5_000
    # Daily API budget (PARDOT_API.md "Limits": 25k / 50k / 100k by edition); the day
    # resets at midnight in the account's time zone (an IANA name).
    daily_call_limit: int = 25_000
    timezone: str = "UTC"
    # The browser side (tracking snippet)
    tracker_host: str = "pi.pardot.com"
    # How the page loads pd.js from tracker_host: "https" (Pardot's); "http" only for
    # a tracker on loopback, as the browser tests use (docs/snippet.md).
    tracker_scheme: str = "https"
    # Pardot's own plugin renders piCId as campaign_id + 1000; 0 renders it as given.
    snippet_campaign_offset: int = 0

    def key(self, name: str) -> str:
        """Where setting ``name`` lives in the server's configuration, for error
        messages that tell an operator what to fix (never its value)."""
        return f"connections.{self.name}.{name}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for the log redactor."""
        return tuple(
            s for s in (self.client_secret, self.refresh_token, self.password, self.user_key) if s
        )
