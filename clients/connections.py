"""The configured Pardot connections of the process, by name.

One ``PardotConnection`` per configured name, each with its ``PardotClient`` (token,
limiter), all sharing one HTTP client. The server builds this once at startup, asks
it for a gateway per request, and closes it on shutdown.

The Pardot and token hosts come only from configuration: a request names a
connection, never a host. Connections to the same Pardot business unit share one
limiter, one daily budget and one write queue (``clients.coalescer``), since Pardot
counts requests in flight and calls per day per account, not per our name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from clients.budget import BudgetSnapshot, DailyBudget
from clients.coalescer import WriteCoalescer
from clients.config import ConnectionConfig
from clients.config_checks import check_connection
from clients.gateway import PardotGateway
from clients.identity import IdentityStore, IdentityView, MemoryIdentityStore
from clients.transport import PardotClient, new_http_client
from strategies.core.errors import FailedPrecondition, Reason

DEFAULT_CONNECTION = "default"


class PardotConnection:
    """One configured connection: its settings and its client."""

    def __init__(self, client: PardotClient, identity: IdentityStore) -> None:
        self.client = client
        self._identity = identity

    @property
    def config(self) -> ConnectionConfig:
        return self.client.config

    @property
    def name(self) -> str:
        return self.client.config.name

    def budget(self) -> BudgetSnapshot:
        """The account's daily API budget as this process sees it: calls used today,
        the configured limit, what remains, when the account's day ends, and whether
        Pardot declared it spent (err 122). See ``clients.budget`` for what counts."""
        return self.client.budget.snapshot()

    def gateway(self, *, api_version: int, dry_run: bool, deadline: float | None) -> PardotGateway:
        """A fresh gateway for one request; ``deadline`` is absolute ``time.monotonic()``."""
        return PardotGateway(
            self.client,
            api_version=api_version,
            dry_run=dry_run,
            deadline=deadline,
            identity=IdentityView(self._identity, self.name),
        )


class PardotConnections:
    """Every configured connection. Construction validates each configuration and
    raises FailedPrecondition naming the key to fix.

    ``identity`` is the identity map every gateway sees (default: in memory); this
    object owns it from then on and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        configs: Mapping[str, ConnectionConfig],
        *,
        http: httpx.AsyncClient | None = None,
        identity: IdentityStore | None = None,
    ) -> None:
        self._closed = False
        for name, config in configs.items():
            if config.name != name:
                raise ValueError(f"connection {name!r} is configured with name {config.name!r}")
            check_connection(config)  # before anything is opened that would need closing
        budgets = _budgets(configs)
        self._owns_http = http is None
        capacity = sum(c.max_concurrency + 1 for c in configs.values()) or 1
        self._http = http if http is not None else new_http_client(capacity)
        # One limiter per account, at the smallest max_concurrency configured for it,
        # and one write queue, at the smallest max_queued_writes.
        slots: dict[tuple[str, ...], int] = {}
        queued: dict[tuple[str, ...], int] = {}
        for config in configs.values():
            key = _account_key(config)
            slots[key] = min(slots.get(key, config.max_concurrency), config.max_concurrency)
            queued[key] = min(queued.get(key, config.max_queued_writes), config.max_queued_writes)
        limiters = {key: asyncio.Semaphore(n) for key, n in slots.items()}
        self._coalescers = {
            key: WriteCoalescer(limiters[key], max_concurrency=n, max_queued=queued[key])
            for key, n in slots.items()
        }
        self.identity: IdentityStore = identity if identity is not None else MemoryIdentityStore()
        self._connections: dict[str, PardotConnection] = {}
        for name, config in configs.items():
            key = _account_key(config)
            client = PardotClient(
                config,
                http=self._http,
                limiter=limiters[key],
                budget=budgets[key],
                coalescer=self._coalescers[key],
            )
            self._connections[name] = PardotConnection(client, self.identity)

    @property
    def names(self) -> list[str]:
        return list(self._connections)

    def get(self, name: str) -> PardotConnection:
        """The connection ``settings.connection`` names; "" means "default"."""
        key = name or DEFAULT_CONNECTION
        try:
            return self._connections[key]
        except KeyError:
            configured = ", ".join(repr(n) for n in self._connections) or "none"
            raise FailedPrecondition(
                f"settings.connection names {key!r}, which is not a configured Pardot "
                f"connection; configured: {configured}",
                reason=Reason.UNKNOWN_CONNECTION,
            ) from None

    async def aclose(self) -> None:
        """Close the HTTP connections and the identity map; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        for coalescer in self._coalescers.values():
            await coalescer.aclose()  # first: its senders use the clients
        for connection in self._connections.values():
            await connection.client.aclose()
        if self._owns_http:
            await self._http.aclose()
        self.identity.close()


def _account_key(config: ConnectionConfig) -> tuple[str, ...]:
    """What identifies the Pardot account whose concurrency limit a connection uses."""
    if config.auth == "oauth":
        return (config.pardot_url.rstrip("/"), config.business_unit_id)
    return ("connection", config.name)  # a legacy login names a user, not an account


def _budgets(configs: Mapping[str, ConnectionConfig]) -> dict[tuple[str, ...], DailyBudget]:
    """One daily budget per account, at the smallest daily_call_limit configured for
    it. Its day ends at one midnight, so connections to one account must agree on the
    time zone: saying so at startup beats a budget that resets at the wrong hour."""
    budgets: dict[tuple[str, ...], DailyBudget] = {}
    first: dict[tuple[str, ...], ConnectionConfig] = {}
    for config in configs.values():
        key = _account_key(config)
        if key not in first:
            first[key] = config
            budgets[key] = DailyBudget(
                account=_account_label(config),
                limit=config.daily_call_limit,
                timezone=config.timezone,
            )
            continue
        if config.timezone != first[key].timezone:
            raise FailedPrecondition(
                f"{config.key('timezone')} ({config.timezone!r}) and "
                f"{first[key].key('timezone')} ({first[key].timezone!r}) differ, but both "
                "connections reach the same Pardot account, whose day ends at one "
                "midnight: set the same time zone on both",
                reason=Reason.CONNECTION_MISCONFIGURED,
            )
        budgets[key].limit = min(budgets[key].limit, config.daily_call_limit)
    return budgets


def _account_label(config: ConnectionConfig) -> str:
    """How logs name the account of a budget (no secret: a business unit id is not one)."""
    if config.auth == "oauth":
        return config.business_unit_id
    return f"legacy:{config.name}"
