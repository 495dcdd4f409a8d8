"""The two seams of a strategy: the :class:`Gateway` it asks Pardot through, and the
:class:`Strategy` it is.

A strategy is decision logic only (DESIGN.md): it never builds a URL, sleeps, retries
or locks. ``clients.gateway.PardotGateway`` implements :class:`Gateway` over HTTP (with
auth, limits, retries, batching and dry-run recording); the unit tests implement it in
memory. Both must honour the same contract, written down here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

from strategies.core.model import Event, Fields, Prospect, Settings, SyncResult


class IdentityView(Protocol):
    """The identity map as one connection's strategies see it (``pardot.identity``):
    (namespace, key) → the prospect id Pardot returned for it. Namespaces and keys:
    ``strategies.core.model`` (``EMAIL``, ``FID``, ``field_namespace``)."""

    def lookup(self, namespace: str, key: str) -> int | None: ...

    def remember(self, namespace: str, key: str, prospect: Prospect) -> None:
        """Learn that ``key`` names ``prospect`` — only if Pardot said so: a planned
        write (dry run) or an answer without an id teaches nothing."""
        ...

    def forget(self, prospect_id: int) -> None:
        """Drop every entry that points at ``prospect_id`` (Pardot says it is gone)."""
        ...


class Gateway(Protocol):
    """What a strategy may ask of one Pardot connection, for one request.

    Writes return the prospect as Pardot returned it (``created`` says whether it is
    new); in a dry run they return ``planned=True`` and send nothing. Reads are always
    made. Pardot failures raise ``strategies.core.errors.PardotError`` (err_code and meaning
    from the table), except the "not found" of a read, which is an empty answer.

    Under load a write may travel in a Pardot batch call, whose answer holds no
    prospect: then the returned prospect says only what is known — ``id`` None unless
    the write named it by id, ``created`` None when an upsert may have done either,
    ``fields`` as sent. A caller that needs Pardot's own answer (the id, whether it
    created) passes ``need_answer=True``: that write is never batched.
    """

    api_version: int
    #: What earlier calls learned: (namespace, key) → prospect id, for this connection.
    identity: IdentityView

    async def upsert_by_email(
        self, email: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        """v3 only (in v4 ``upsert/email`` always creates)."""
        ...

    async def upsert_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect: ...

    async def upsert_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect: ...

    async def update_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect: ...

    async def update_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect: ...

    async def create(self, email: str, fields: Fields, *, need_answer: bool = False) -> Prospect:
        """``create/email``: v4 always creates; v3 fails with err 9 if the email exists."""
        ...

    async def read_by_email(self, email: str) -> list[Prospect]:
        """Every prospect with that email (v4 may return several); [] for none."""
        ...

    async def read_by_id(self, prospect_id: int) -> Prospect | None: ...

    async def read_by_fid(self, fid: str) -> Prospect | None: ...


class Strategy(ABC):
    """Decides how one event becomes Pardot calls. Subclasses register themselves with
    ``strategies.registry.REGISTRY.register(name=..., priority=...)``."""

    name: ClassVar[str]
    priority: ClassVar[int]

    @abstractmethod
    def matches(self, event: Event, settings: Settings) -> bool:
        """True when this strategy should handle the event under these settings."""

    @abstractmethod
    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        """Create or update the prospect the event identifies."""

    def identity_key(self, event: Event, settings: Settings) -> str | None:
        """The key under which concurrent calls for one person must run one at a time,
        because this strategy reads before it creates; None when nothing races."""
        return None
