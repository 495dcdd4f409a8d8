"""One Pardot account (a business unit) as this process sees it: what Pardot limits per
account rather than per connection name.

Pardot counts requests in flight and calls per day per account, so two connection names
that reach one business unit must share one set of ``slots`` (its concurrency limit),
one daily ``budget``, one write queue (``writes``: batches mix writes of every
connection to the account) and one ``pace`` (the latency and requests per call seen,
which decide whether a call can still finish before its deadline: ``clients.pace``).
``clients.connections`` builds one ``PardotAccount`` per :func:`account_key` and hands
it to each of those connections; nothing here sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clients.budget import DailyBudget
from clients.coalescer import WriteCoalescer
from clients.config import ConnectionConfig
from clients.pace import AccountPace
from clients.state.protocols import ConcurrencySlots

#: What identifies a Pardot account (see :func:`account_key`).
AccountKey = tuple[str, ...]


@dataclass(eq=False)
class PardotAccount:
    """The account's shared limits: at most ``slots`` requests in flight (calls under
    way first, then arrival order), the day's ``budget``, the queue of ``writes``
    waiting for a batch call, and its observed ``pace``. Not frozen: a test may give the
    account a queue tuned to its needs."""

    slots: ConcurrencySlots
    budget: DailyBudget
    writes: WriteCoalescer
    pace: AccountPace = field(default_factory=AccountPace)

    async def aclose(self) -> None:
        """Stop the queue's senders; writes still waiting fail as Pardot unavailable."""
        await self.writes.aclose()


def account_key(config: ConnectionConfig) -> AccountKey:
    """What identifies the Pardot account whose limits a connection uses."""
    if config.auth == "oauth":
        return (config.pardot_url.rstrip("/"), config.business_unit_id)
    return ("connection", config.name)  # a legacy login names a user, not an account


def account_label(config: ConnectionConfig) -> str:
    """How logs name the account (no secret: a business unit id is not one)."""
    if config.auth == "oauth":
        return config.business_unit_id
    return f"legacy:{config.name}"
