"""The configured Pardot connections of the process, by name — and the one place where
the Pardot client is put together.

Everything is built here, once at startup: one HTTP client for all connections; one
``PardotAccount`` per Pardot account (its concurrency slots, daily budget and write
queue, shared by every connection to that business unit, since Pardot counts requests
in flight and calls per day per account, not per our name); and per connection its
credentials, retry policy, transport and what it remembers between requests (ids seen,
creates in doubt). What is state — the identity map, the slots, the budget's count and
mark, the tokens, the creates in doubt — comes from the state backend it is given
(``clients.state.protocols.ClientState``), asked once per account or connection. The
server asks a connection for a fresh gateway per request, and closes everything on
shutdown.

The Pardot and token hosts come only from configuration: a request names a
connection, never a host.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx

from clients import metrics
from clients.account import AccountKey, PardotAccount, account_key, account_label
from clients.auth import make_authenticator
from clients.budget import BudgetSnapshot, DailyBudget
from clients.coalescer import WriteCoalescer
from clients.config import ConnectionConfig
from clients.config.connection import check_connection
from clients.gateway import PardotGateway
from clients.gateway_v5 import PardotV5Gateway
from clients.known_ids import KnownProspectIds
from clients.retry import RetryPolicy
from clients.state.identity import IdentityView
from clients.state.local import MemoryState
from clients.state.protocols import ClientState, CreateHolds, IdentityStore, WrittenFields
from clients.state.written import WrittenView
from clients.track_targets import TrackTargets
from clients.transport import PardotTransport, new_http_client
from strategies.core import pardot_facts as facts
from strategies.core.errors import FailedPrecondition, Reason

DEFAULT_CONNECTION = "default"


class PardotConnection:
    """One configured connection: its settings, its ``transport``, the ``account`` whose
    limits it shares, and what it remembers between requests."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: PardotTransport,
        account: PardotAccount,
        identity: IdentityStore,
        unconfirmed_creates: CreateHolds,
        written: WrittenFields,
    ) -> None:
        self.config = config
        self.transport = transport
        self.account = account
        #: Prospect ids this connection has seen: its gateways tell an upsert's create
        #: from its update by them (``clients.known_ids``).
        self.known_ids = KnownProspectIds()
        #: Emails whose create is on its way or got no answer and may still land (the
        #: state's create holds, for ``unconfirmed_create_hold_s``; durable where the
        #: backend is).
        self.unconfirmed_creates = unconfirmed_creates
        #: The lists and refused activity types its track calls met (``clients.track_targets``).
        self.track_targets = TrackTargets()
        self._identity = identity
        #: What the service last wrote to each prospect (``skip_unchanged``).
        self._written = WrittenView(written, config.name)

    @property
    def name(self) -> str:
        return self.config.name

    async def budget(self) -> BudgetSnapshot:
        """The account's daily API budget as this process sees it: calls used today,
        the configured limit, what remains, when the account's day ends, and whether
        Pardot declared it spent (err 122). See ``clients.budget`` for what counts."""
        return await self.account.budget.snapshot()

    def gateway(self, *, api_version: int, dry_run: bool, deadline: float | None) -> PardotGateway:
        """A fresh gateway for one request; ``deadline`` is absolute ``time.monotonic()``.
        API v5 speaks its own dialect (``PardotV5Gateway``); v3 and v4 share one."""
        dialect = PardotV5Gateway if api_version == facts.V5 else PardotGateway
        return dialect(
            self.transport,
            self.account.writes,
            config=self.config,
            known_ids=self.known_ids,
            unconfirmed_creates=self.unconfirmed_creates,
            identity=IdentityView(self._identity, self.config.name),
            api_version=api_version,
            dry_run=dry_run,
            deadline=deadline,
            track_targets=self.track_targets,
            written=self._written,
        )


class PardotConnections:
    """Every configured connection. Construction validates each configuration and
    raises FailedPrecondition naming the key to fix.

    ``state`` is the backend every kind of state comes from (default: a
    ``MemoryState``, everything in this process's memory): its identity map is the one
    every gateway sees, which this object opens, owns and closes in :meth:`aclose`;
    a StateUnavailable from the backend propagates. ``rng`` draws every connection's
    retry jitter (tests rig it; default: a fresh ``random.Random``).
    """

    def __init__(
        self,
        configs: Mapping[str, ConnectionConfig],
        *,
        http: httpx.AsyncClient | None = None,
        state: ClientState | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._closed = False
        for name, config in configs.items():
            if config.name != name:
                raise ValueError(f"connection {name!r} is configured with name {config.name!r}")
            check_connection(config)  # before anything is opened that would need closing
        backend: ClientState = state if state is not None else MemoryState()
        self._accounts = _accounts(configs, backend)
        self.identity: IdentityStore = backend.identity()
        #: The memory of writes every connection's gateways share, closed with them.
        try:
            self.written: WrittenFields = backend.written()
        except BaseException:
            self.identity.close()
            raise
        #: Every connection's creates in doubt, closed with the connections.
        self._holds: list[CreateHolds] = []
        try:
            self._owns_http = http is None
            capacity = sum(c.max_concurrency + 1 for c in configs.values()) or 1
            self._http = http if http is not None else new_http_client(capacity)
            self._connections: dict[str, PardotConnection] = {}
            for name, config in configs.items():
                account = self._accounts[account_key(config)]
                auth = make_authenticator(config, self._http, account.slots, backend.tokens(name))
                transport = PardotTransport(
                    config,
                    http=self._http,
                    auth=auth,
                    slots=account.slots,
                    budget=account.budget,
                    retry=RetryPolicy(config, rng=rng),
                    pace=account.pace,
                )
                holds = backend.create_holds(name, hold_s=config.unconfirmed_create_hold_s)
                self._holds.append(holds)
                self._connections[name] = PardotConnection(
                    config,
                    transport=transport,
                    account=account,
                    identity=self.identity,
                    unconfirmed_creates=holds,
                    written=self.written,
                )
        except BaseException:
            for opened in self._holds:
                opened.close()
            self.identity.close()
            self.written.close()
            raise

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
        """Close the HTTP connections, the create holds and the identity map; later calls
        do nothing."""
        if self._closed:
            return
        self._closed = True
        for account in self._accounts.values():
            await account.aclose()  # first: its queue's senders use the transports
        for connection in self._connections.values():
            connection.transport.close()
        if self._owns_http:
            await self._http.aclose()
        for holds in self._holds:
            holds.close()
        self.identity.close()
        self.written.close()


def _accounts(
    configs: Mapping[str, ConnectionConfig], state: ClientState
) -> dict[AccountKey, PardotAccount]:
    """One account per ``account_key``, at the smallest max_concurrency,
    max_queued_writes and daily_call_limit configured for it, its slots and budget mark
    from ``state``. Its day ends at one midnight, so connections to one account must
    agree on the time zone: saying so at startup beats a budget that resets at the
    wrong hour."""
    first: dict[AccountKey, ConnectionConfig] = {}
    slots: dict[AccountKey, int] = {}
    queued: dict[AccountKey, int] = {}
    daily: dict[AccountKey, int] = {}
    for config in configs.values():
        key = account_key(config)
        earlier = first.setdefault(key, config)
        if config.timezone != earlier.timezone:
            raise FailedPrecondition(
                f"{config.key('timezone')} ({config.timezone!r}) and "
                f"{earlier.key('timezone')} ({earlier.timezone!r}) differ, but both "
                "connections reach the same Pardot account, whose day ends at one "
                "midnight: set the same time zone on both",
                reason=Reason.CONNECTION_MISCONFIGURED,
            )
        slots[key] = min(slots.get(key, config.max_concurrency), config.max_concurrency)
        queued[key] = min(queued.get(key, config.max_queued_writes), config.max_queued_writes)
        daily[key] = min(daily.get(key, config.daily_call_limit), config.daily_call_limit)
    accounts: dict[AccountKey, PardotAccount] = {}
    for key, config in first.items():
        label = account_label(config)
        limiter = state.slots(label, slots[key])
        accounts[key] = PardotAccount(
            slots=limiter,
            budget=DailyBudget(
                state.budget_mark(label),
                account=label,
                limit=daily[key],
                timezone=config.timezone,
            ),
            writes=WriteCoalescer(
                limiter, max_concurrency=slots[key], max_queued=queued[key], account=label
            ),
        )
        # Every series from the start, so alerts have their denominators before traffic.
        metrics.account_slots(label, in_use=0, waiting=0, limit=slots[key])
        metrics.account_queue(label, queued=0, limit=queued[key])
        # Its first count sets the figure: reading the mark here would await a shared
        # backend while building (a fresh in-process mark reads 0 anyway).
        metrics.daily_calls(label, used=0, limit=daily[key])
    return accounts
