"""The two seams of a strategy: the :class:`Gateway` it asks Pardot through, and the
:class:`Strategy` it is.

A strategy is decision logic only (DESIGN.md): it never builds a URL, sleeps, retries
or locks. ``clients.gateway.PardotGateway`` implements :class:`Gateway` over HTTP (with
auth, limits, retries, batching and dry-run recording); the unit tests implement it in
memory. Both implement only its two primitives, so the verbs and their version rules
are the same for both, and one contract test (tests/clients/test_gateway_contract.py)
holds both to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal, NamedTuple, Protocol

from strategies.core.errors import FailedPrecondition, Reason
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


#: How a prospect is named to Pardot: Pardot's email, its id, or a Salesforce fid.
KeyField = Literal["email", "id", "fid"]
#: What a prospect write does: ``create`` always makes a new prospect (v3 refuses an
#: email it has), ``update`` changes the one named, ``upsert`` updates or creates.
WriteOperation = Literal["create", "update", "upsert"]


class ProspectKey(NamedTuple):
    """A prospect as a write or a read names it: by ``email``, ``id`` or ``fid``."""

    by: KeyField
    value: str | int


class Gateway(ABC):
    """What a strategy may ask of one Pardot connection, for one request.

    Writes return the prospect as Pardot returned it (``created`` says whether it is
    new); in a dry run they return ``planned=True`` and send nothing. Reads are always
    made. Pardot failures raise ``strategies.core.errors.PardotError`` (err_code and
    meaning from the table), except the "not found" of a read, which is an empty answer.

    Under load a write may travel in a Pardot batch call, whose answer holds no
    prospect: then the returned prospect says only what is known — ``id`` None unless
    the write named it by id, ``created`` None when an upsert may have done either,
    ``fields`` as sent. A caller that needs Pardot's own answer (the id, whether it
    created) passes ``need_answer=True``: that write is never batched.

    The nine verbs are written once, here, with Pardot's version rules (upsert by email
    is v3's; fids are v4's), over two primitives each gateway implements: :meth:`write`
    and :meth:`read` — over HTTP (``clients.gateway``), in memory for the unit tests,
    or wrapping another gateway (``strategies.track``). So every gateway refuses the
    same questions the same way, and a new one cannot forget a rule.
    """

    api_version: int
    #: What earlier calls learned: (namespace, key) → prospect id, for this connection.
    identity: IdentityView

    # --- the two primitives ---------------------------------------------------------

    @abstractmethod
    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
    ) -> Prospect:
        """One prospect write, already allowed by the version rules: ``create`` is
        always by email; v4 never gets an upsert by email, v3 never an fid."""

    @abstractmethod
    async def read(self, key: ProspectKey) -> list[Prospect]:
        """The prospects ``key`` names: every one with the email (v4 may have several),
        at most one by id or fid; [] when Pardot knows none."""

    # --- the verbs strategies use -----------------------------------------------------

    async def upsert_by_email(
        self, email: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        """v3 only (in v4 ``upsert/email`` always creates)."""
        if self.api_version != 3:
            raise FailedPrecondition(
                "upsert by email needs API v3: in v4 upsert/email always creates a new "
                "prospect, so match by id, fid or a lookup field instead",
                reason=Reason.UPSERT_BY_EMAIL_NEEDS_V3,
            )
        return await self.write(
            "upsert", ProspectKey("email", email), fields, need_answer=need_answer
        )

    async def upsert_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        """v4 updates the prospect and never creates; v3 falls back to the email."""
        return await self.write(
            "upsert", ProspectKey("id", prospect_id), fields, need_answer=need_answer
        )

    async def upsert_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        self._require_v4("upsert by fid")
        return await self.write("upsert", ProspectKey("fid", fid), fields, need_answer=need_answer)

    async def update_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        return await self.write(
            "update", ProspectKey("id", prospect_id), fields, need_answer=need_answer
        )

    async def update_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        self._require_v4("update by fid")
        return await self.write("update", ProspectKey("fid", fid), fields, need_answer=need_answer)

    async def create(self, email: str, fields: Fields, *, need_answer: bool = False) -> Prospect:
        """``create/email``: v4 always creates; v3 fails with err 9 if the email exists."""
        return await self.write(
            "create", ProspectKey("email", email), fields, need_answer=need_answer
        )

    async def read_by_email(self, email: str) -> list[Prospect]:
        """Every prospect with that email (v4 may return several); [] for none."""
        return await self.read(ProspectKey("email", email))

    async def read_by_id(self, prospect_id: int) -> Prospect | None:
        found = await self.read(ProspectKey("id", prospect_id))
        return found[0] if found else None

    async def read_by_fid(self, fid: str) -> Prospect | None:
        self._require_v4("read by fid")
        found = await self.read(ProspectKey("fid", fid))
        return found[0] if found else None

    def _require_v4(self, what: str) -> None:
        if self.api_version != 4:
            raise FailedPrecondition(
                f"{what} needs API v4 (Salesforce fids are a v4 key); set "
                "settings.api_version to 4 or match by email",
                reason=Reason.FID_NEEDS_V4,
            )


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
