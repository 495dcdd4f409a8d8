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
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import ClassVar, Literal, NamedTuple, Protocol

from strategies.core.errors import FailedPrecondition, Reason
from strategies.core.model import Event, Fields, Prospect, Settings, SyncResult
from strategies.core.pardot_facts import TIMESTAMP_FORMAT


class IdentityView(Protocol):
    """The identity map as one connection's strategies see it (``pardot.identity``):
    (namespace, key) → the prospect id Pardot returned for it. Namespaces and keys:
    ``strategies.core.model`` (``EMAIL``, ``FID``, ``field_namespace``)."""

    async def lookup(self, namespace: str, key: str) -> int | None: ...

    async def remember(self, namespace: str, key: str, prospect: Prospect) -> None:
        """Learn that ``key`` names ``prospect`` — only if Pardot said so: a planned
        write (dry run) or an answer without an id teaches nothing."""
        ...

    async def forget(self, prospect_id: int) -> None:
        """Drop every entry that points at ``prospect_id`` (Pardot says it is gone)."""
        ...


class WrittenView(Protocol):
    """What the service last wrote to each prospect of one connection
    (``pardot.written``): digests per field, so a write that would change nothing is
    not sent (``strategies.unchanged``). ``clients.state.written`` implements it over
    the state seam; :data:`NO_MEMORY` remembers nothing."""

    async def unchanged(self, prospect_id: int, fields: Fields) -> bool:
        """Whether every field in ``fields`` was last written with this same value."""
        ...

    async def wrote(self, prospect_id: int, fields: Fields) -> None:
        """Remember that Pardot took ``fields`` for the prospect."""
        ...

    async def forget(self, prospect_id: int) -> None: ...


class _NoMemory:
    async def unchanged(self, prospect_id: int, fields: Fields) -> bool:
        return False

    async def wrote(self, prospect_id: int, fields: Fields) -> None:
        return None

    async def forget(self, prospect_id: int) -> None:
        return None


#: A memory of writes that remembers nothing: every write is sent.
NO_MEMORY: WrittenView = _NoMemory()


#: How a prospect is named to Pardot: Pardot's email, its id, or a Salesforce fid.
KeyField = Literal["email", "id", "fid"]
#: What a prospect write does: ``create`` always makes a new prospect (v3 refuses an
#: email it has), ``update`` changes the one named, ``upsert`` updates or creates.
#: v5's ``upsertLatestByEmail`` updates the prospect with the email that had the latest
#: activity, or creates one: ``upsert_latest_or_undelete`` first undeletes the latest
#: when every one is in the recycle bin (``secondaryDeletedSearch``), ``upsert_latest``
#: then creates.
WriteOperation = Literal["create", "update", "upsert", "upsert_latest", "upsert_latest_or_undelete"]


class ProspectKey(NamedTuple):
    """A prospect as a write or a read names it: by ``email``, ``id`` or ``fid``.

    ``custom_fields``: the custom fields a read must return. v5 returns only the fields
    it is asked for; v3/v4 return every custom field that holds a value (and ignore
    this). Writes ignore it."""

    by: KeyField
    value: str | int
    custom_fields: tuple[str, ...] = ()


#: What a write policy passes a write on to: the next policy, and at the chain's end the
#: gateway's own :meth:`Gateway.write` (``strategies.policies``).
WriteFn = Callable[[WriteOperation, "ProspectKey", Fields, bool], Awaitable[Prospect]]


class WritePolicy(Protocol):
    """One rule every prospect write of a call obeys (a sync mode, the opt-out guard, the
    memory of writes): it sees the write, may change it, refuse it (``Skipped``) or
    answer it without sending, and passes it on through ``then``."""

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
        then: WriteFn,
    ) -> Prospect: ...


class EarlierAttempt(NamedTuple):
    """An earlier attempt of the running call's message began at ``began_at`` and got
    no answer (its process died, or the call failed), so it may have written: a
    strategy that would create resolves by reading first (issue 12, item 2).
    ``pardot_zone``: the zone Pardot writes ``created_at`` in (the account's)."""

    began_at: datetime
    pardot_zone: tzinfo

    def created_since(self, prospect: Prospect, *, allowance_s: float) -> bool:
        """Whether Pardot says ``prospect`` was created no earlier than ``allowance_s``
        before the earlier attempt began. v3/v4 write ``YYYY-MM-DD HH:MM:SS`` in the
        account's zone (to the second), v5 ISO-8601 with an offset; a prospect without
        a readable ``created_at`` was not (it cannot be told to be new)."""
        written = prospect.get("created_at")
        if not isinstance(written, str) or not written:
            return False
        try:
            created = datetime.strptime(written, TIMESTAMP_FORMAT).replace(tzinfo=self.pardot_zone)
        except ValueError:
            try:
                created = datetime.fromisoformat(written)
            except ValueError:
                return False
            if created.tzinfo is None:
                created = created.replace(tzinfo=self.pardot_zone)
        # Pardot stamps to the second: the second the attempt began counts as after it.
        since = self.began_at.replace(microsecond=0) - timedelta(seconds=allowance_s)
        return created >= since


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

    The ten verbs are written once, here, with Pardot's version rules (upsert by email
    is v3's; upsert latest by email is v5's; fids are v4's), over two primitives each
    gateway implements: :meth:`write`
    and :meth:`read` — over HTTP (``clients.gateway``), in memory for the unit tests,
    or wrapping another gateway (``strategies.track``). So every gateway refuses the
    same questions the same way, and a new one cannot forget a rule.
    """

    api_version: int
    #: What earlier calls learned: (namespace, key) → prospect id, for this connection.
    identity: IdentityView
    #: Set when an earlier attempt of this call's message may have written already.
    earlier_attempt: EarlierAttempt | None = None
    #: What this connection last wrote to each prospect (``skip_unchanged``).
    written: WrittenView = NO_MEMORY

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
        always by email; v4 and v5 never get an upsert by email, v3 and v5 never an fid,
        and only v5 an ``upsert_latest*``."""

    @abstractmethod
    async def read(self, key: ProspectKey) -> list[Prospect]:
        """The prospects ``key`` names: every one with the email (v4 may have several),
        at most one by id or fid; [] when Pardot knows none."""

    # --- the verbs strategies use -----------------------------------------------------

    async def upsert_by_email(
        self, email: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        """v3 only (in v4 ``upsert/email`` always creates; v5 has
        :meth:`upsert_latest_by_email`)."""
        if self.api_version == 5:
            raise FailedPrecondition(
                "upsert by email needs API v3: API v5 upserts by email with "
                "upsertLatestByEmail (strategy EmailV5), or match by id or a lookup field",
                reason=Reason.UPSERT_BY_EMAIL_NEEDS_V3,
            )
        if self.api_version != 3:
            raise FailedPrecondition(
                "upsert by email needs API v3: in v4 upsert/email always creates a new "
                "prospect, so match by id, fid or a lookup field instead",
                reason=Reason.UPSERT_BY_EMAIL_NEEDS_V3,
            )
        return await self.write(
            "upsert", ProspectKey("email", email), fields, need_answer=need_answer
        )

    async def upsert_latest_by_email(
        self, email: str, fields: Fields, *, undelete: bool = True, need_answer: bool = False
    ) -> Prospect:
        """v5 only (``upsertLatestByEmail``): update the prospect with this email that had
        the latest activity, or create one — one call either way. With ``undelete``
        (``settings.secondary_deleted_search``), when every prospect with the email is in
        the recycle bin the latest is undeleted and updated instead. Email matching is
        case-sensitive. v5 has no batch endpoint, so this write is always sent alone."""
        if self.api_version != 5:
            raise FailedPrecondition(
                f"upsert latest by email (upsertLatestByEmail) needs API v5, not "
                f"v{self.api_version}: set settings.api_version to API_VERSION_5, or use "
                "EmailV3 on v3 and IdFidV4 / LookupFieldV4 on v4",
                reason=Reason.PARDOT_UNSUPPORTED_IN_VERSION,
            )
        operation: WriteOperation = "upsert_latest_or_undelete" if undelete else "upsert_latest"
        return await self.write(
            operation, ProspectKey("email", email), fields, need_answer=need_answer
        )

    async def upsert_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        """v4 and v5 update the prospect and never create; v3 falls back to the email."""
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

    async def read_by_email(
        self, email: str, *, custom_fields: tuple[str, ...] = ()
    ) -> list[Prospect]:
        """Every prospect with that email (v4 and v5 may return several); [] for none.
        ``custom_fields`` must come back too (v5 returns only what it is asked for).
        v5 reads come from a cache that may trail writes by up to 60 s."""
        return await self.read(ProspectKey("email", email, custom_fields))

    async def read_by_id(
        self, prospect_id: int, *, custom_fields: tuple[str, ...] = ()
    ) -> Prospect | None:
        found = await self.read(ProspectKey("id", prospect_id, custom_fields))
        return found[0] if found else None

    async def read_by_fid(self, fid: str) -> Prospect | None:
        self._require_v4("read by fid")
        found = await self.read(ProspectKey("fid", fid))
        return found[0] if found else None

    def _require_v4(self, what: str) -> None:
        if self.api_version == 5:
            raise FailedPrecondition(
                f"{what} needs API v4: API v5 has no Salesforce fid operations; send "
                "pardot.id, match by email or a lookup field, or set settings.api_version "
                "to API_VERSION_4",
                reason=Reason.FID_NEEDS_V4,
            )
        if self.api_version != 4:
            raise FailedPrecondition(
                f"{what} needs API v4 (Salesforce fids are a v4 key); set "
                "settings.api_version to 4 or match by email",
                reason=Reason.FID_NEEDS_V4,
            )


class GatewayWrapper(Gateway):
    """A gateway around another that changes its writes: what the call knows (its API
    version, the identity map, the memory of writes, an earlier attempt of its message)
    is the inner gateway's, passed on here once so that no wrapper forgets one (a
    track carrier that dropped ``earlier_attempt`` let CreateV4 create a twin); reads
    pass through."""

    def __init__(self, inner: Gateway) -> None:
        self._inner = inner
        self.api_version = inner.api_version
        self.identity = inner.identity
        self.written = inner.written
        self.earlier_attempt = inner.earlier_attempt

    async def read(self, key: ProspectKey) -> list[Prospect]:
        return await self._inner.read(key)


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
