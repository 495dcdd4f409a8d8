"""``settings.sync_mode``: whether a call may create a prospect, update one, or both —
decided at the write primitive, as one :class:`~strategies.base.WritePolicy`.

UPSERT (the default) has no policy. UPDATE_ONLY never creates: a write that could
create is turned into one that cannot, or, when nothing matches, refused with
``Skipped``. CREATE_ONLY never touches an existing prospect: a write that could update
is turned into a create, or refused. A refused write was never sent, and the strategy
stops there (``Skipped`` travels out of it), so it learns nothing into the identity
map; the servicer answers OUTCOME_SKIPPED with the reason.

Why at the write and not in each strategy: the six strategies, a track mapping's
fields and a strategy's follow-up writes (a campaign set after a create, a retry after
a stale id) all reach Pardot through these writes, so one rule per write operation
covers every one of them, and they cannot disagree.

The policy reads when it must know whether a prospect matches (v3: a read by email;
v5: the identity map, else a read by email): reads are made in a dry run too, so a dry
run decides the same way, and a refused write is not planned. Decision logic only: no
URL, no sleep, no retry.
"""

from __future__ import annotations

from strategies.base import Gateway, ProspectKey, WriteFn, WriteOperation
from strategies.core.errors import PardotError
from strategies.core.model import EMAIL, Fields, Prospect, Settings, Skipped, SyncMode
from strategies.core.pardot_facts import ERR_EMAIL_EXISTS, ERR_INVALID_FID, ERR_PROSPECT_GONE

_UPSERT_LATEST: frozenset[WriteOperation] = frozenset(
    {"upsert_latest", "upsert_latest_or_undelete"}
)

#: v5 reads come from a cache that may trail writes by up to 60 s (PARDOT_API.md).
_V5_READ_LAG = (
    " (API v5 reads may trail writes by up to 60 s: a prospect created in Pardot in the "
    "last minute by something other than this service may not be found yet)"
)


def no_match(api_version: int) -> str:
    """Why an UPDATE_ONLY call that matched nobody wrote nothing."""
    lag = _V5_READ_LAG if api_version == 5 else ""
    return (
        "no prospect matches and settings.sync_mode is SYNC_MODE_UPDATE_ONLY: nothing "
        f"was created{lag}"
    )


def matched(what: str) -> str:
    """Why a CREATE_ONLY call that matched ``what`` wrote nothing."""
    return (
        f"{what} and settings.sync_mode is SYNC_MODE_CREATE_ONLY: it was not updated, "
        "nothing was written"
    )


def sync_mode_policy(settings: Settings, reader: Gateway) -> UpdateOnly | CreateOnly:
    """The policy ``settings.sync_mode`` asks for; UPSERT has none (the caller adds
    this one only for the other modes). ``reader`` is the call's own gateway: the
    policy reads and consults the identity map through it, never through the chain (a
    read is not a write)."""
    if settings.sync_mode is SyncMode.UPDATE_ONLY:
        return UpdateOnly(reader, dry_run=settings.dry_run)
    if settings.sync_mode is SyncMode.CREATE_ONLY:
        return CreateOnly(reader, dry_run=settings.dry_run)
    raise ValueError(f"settings.sync_mode {settings.sync_mode.name} has no write policy")


class UpdateOnly:
    """Never create. Per write that could create:

    - ``create`` → refused: the strategy found nothing to update.
    - v3 ``upsert`` by email → a read by email; none → refused; else ``update`` by the
      oldest match's id (one read more than UPSERT costs: v3 has no upsert that cannot
      create, and ``update/email`` answers a missing prospect with err 4, which is also
      Pardot's "bad email").
    - v3 ``upsert`` by id (it falls back to the email, and creates) → ``update`` by id.
    - v4 ``upsert`` by fid (with an email and an unknown fid the docs say it creates:
      UNCONFIRMED) → ``update`` by fid; err 77 (no prospect has the fid, its form was
      checked before) → refused; in a dry run (where nothing is sent to answer err 77)
      a read by fid decides instead. An archived prospect is not unarchived by it.
    - v5 ``upsertLatestByEmail`` → the identity map's prospect for the email, updated
      by id (a PATCH never creates); with no entry, or one Pardot says is gone (then
      dropped), a read by email: none → refused; some → the upsert, which then updates.
      (A prospect in the recycle bin is not found by the read: not undeleted, refused.)
    - v4/v5 ``upsert`` by id and every ``update``: they never create, so they pass.
    """

    def __init__(self, reader: Gateway, *, dry_run: bool = False) -> None:
        self._reader = reader
        self._dry_run = dry_run

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
        then: WriteFn,
    ) -> Prospect:
        version = self._reader.api_version
        if operation == "create":
            raise Skipped(no_match(version))
        if operation in _UPSERT_LATEST:
            return await self._upsert_latest(operation, key, fields, need_answer, then)
        if operation == "upsert" and key.by == "email":
            found = [p for p in await self._reader.read_by_email(str(key.value)) if p.id]
            if not found:
                raise Skipped(no_match(version))
            oldest = min(p.id or 0 for p in found)
            return await then("update", ProspectKey("id", oldest), fields, need_answer)
        if operation == "upsert" and key.by == "fid":
            if self._dry_run and await self._reader.read_by_fid(str(key.value)) is None:
                raise Skipped(no_match(version))
            try:
                return await then("update", key, fields, need_answer)
            except PardotError as exc:
                if exc.err_code != ERR_INVALID_FID:
                    raise
                raise Skipped(no_match(version)) from None
        if operation == "upsert" and version == 3:
            return await then("update", key, fields, need_answer)
        return await then(operation, key, fields, need_answer)

    async def _upsert_latest(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        need_answer: bool,
        then: WriteFn,
    ) -> Prospect:
        email = str(key.value)
        known = await self._reader.identity.lookup(EMAIL, email)
        if known is not None:
            try:
                return await then("update", ProspectKey("id", known), fields, need_answer)
            except PardotError as exc:
                if exc.err_code not in ERR_PROSPECT_GONE:
                    raise
                await self._reader.identity.forget(known)  # DESIGN.md: a stale entry is dropped
        if not await self._reader.read_by_email(email):
            raise Skipped(no_match(5))
        return await then(operation, key, fields, need_answer)


class CreateOnly:
    """Never touch an existing prospect. Per write:

    - ``create`` → passes (v3 answers err 9 when the email exists → refused; in a dry
      run, where nothing is sent to answer it, a v3 read by email decides instead); the
      id Pardot gives is remembered for the rest of the call.
    - v3 ``upsert`` by email → ``create`` (err 9 → refused).
    - v5 ``upsertLatestByEmail`` → the identity map knows the email, or a read by email
      finds a prospect → refused; else ``create``. (A prospect in the recycle bin is
      not undeleted: a new one is created.)
    - ``update`` / ``upsert`` by id or fid → refused, unless the id is one this same
      call created: EmailV3/EmailV5 set the campaign by id right after a create, and a
      track call writes its fields by id when the strategy wrote none.

    LookupFieldV4's create when prospects share the email but none holds the value is a
    create (none of them matches), so it passes. A stale identity-map entry (the person
    deleted in Pardot since) is still taken as a match: refused rather than a twin.
    """

    def __init__(self, reader: Gateway, *, dry_run: bool = False) -> None:
        self._reader = reader
        self._dry_run = dry_run
        #: The prospects this call created: its follow-up writes to them pass.
        self._created: set[int] = set()

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
        then: WriteFn,
    ) -> Prospect:
        if operation == "create" or (operation == "upsert" and key.by == "email"):
            return await self._create(key, fields, need_answer, then)
        if operation in _UPSERT_LATEST:
            email = str(key.value)
            known = await self._reader.identity.lookup(EMAIL, email)
            if known is not None:
                raise Skipped(matched(f"prospect {known} has this email"))
            found = sorted(p.id for p in await self._reader.read_by_email(email) if p.id)
            if found:
                raise Skipped(matched(f"prospect {found[0]} has this email"))
            return await self._create(key, fields, need_answer, then)
        if key.by == "id" and int(key.value) in self._created:
            return await then(operation, key, fields, need_answer)
        named = f"prospect {key.value}" if key.by == "id" else "the prospect with this fid"
        raise Skipped(matched(f"the write would update {named}"))

    async def _create(
        self, key: ProspectKey, fields: Fields, need_answer: bool, then: WriteFn
    ) -> Prospect:
        if self._dry_run and self._reader.api_version == 3:
            found = sorted(p.id for p in await self._reader.read_by_email(str(key.value)) if p.id)
            if found:
                raise Skipped(matched(f"prospect {found[0]} has this email"))
        try:
            prospect = await then("create", ProspectKey("email", key.value), fields, need_answer)
        except PardotError as exc:
            if exc.err_code != ERR_EMAIL_EXISTS:
                raise
            raise Skipped(matched("a prospect has this email")) from None
        if prospect.id is not None and not prospect.planned:
            self._created.add(prospect.id)
        return prospect
