"""``PardotGateway``: the ``strategies.base.Gateway`` a strategy asks Pardot through, for
one request on one connection.

It maps each question to one prospect operation (PARDOT_API.md, "Prospect
operations"), turns answers into ``Prospect`` values and "not found" into an empty
answer, and in a dry run makes the reads but only plans the writes. All prospect
writes go through ``_write``: when the account is busy, a write Pardot can batch waits
there for a batch call (``clients.coalescer``), and the answer says only what a batch
answer tells (``_batched``). For track mappings it also adds list memberships and
records external activities (API v5, JSON).

It never builds a host, retries, sleeps or limits (``PardotClient`` does), never
sends a write in a dry run, and never invents an id a batch answer did not give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.batching import BatchEntry, batch_kind
from clients.coalescer import Route
from clients.identity import IdentityView, MemoryIdentityStore
from clients.responses import prospects_in
from clients.transport import PardotClient, api_path
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    FailedPrecondition,
    PardotError,
    PardotWriteUnconfirmed,
    ProspectSyncError,
    Reason,
)
from strategies.core.model import CallRecord, Fields, Prospect

#: How a planned call's path shows the id of a prospect that a dry run would create.
PLANNED_NEW_ID = "{new}"


class PardotGateway:
    """Implements ``strategies.base.Gateway`` over HTTP. ``calls`` lists every call made
    or (dry run) planned, in order, for the response's ``pardot_calls``."""

    def __init__(
        self,
        client: PardotClient,
        *,
        api_version: int,
        dry_run: bool,
        deadline: float | None,
        identity: IdentityView | None = None,
    ) -> None:
        if api_version not in facts.API_VERSIONS:
            raise FailedPrecondition(
                f"settings.api_version must be 3 or 4, not {api_version}",
                reason=Reason.API_VERSION_INVALID,
            )
        self._client = client
        self.api_version = api_version
        self.dry_run = dry_run
        self.deadline = deadline
        self.calls: list[CallRecord] = []
        #: What earlier calls on this connection learned (``clients.identity``).
        self.identity = identity or IdentityView(MemoryIdentityStore(), client.name)

    # --- writes -------------------------------------------------------------------
    #
    # Which writes are safe to repeat (``idempotent=True``: the transport resends them
    # after a timeout, a dropped connection or a 5xx):
    # - update / upsert by id or fid: they name one existing prospect and set values,
    #   so a second send sets the same values again (v4 upsert by id/fid never creates);
    # - v3 upsert by email, and v3 upsert by id (which falls back to the email): the
    #   email is unique in v3, so a second send updates what the first created;
    # - a list membership: a second add answers err 58, read as "already a member".
    # Not safe: a create (v4 makes a second prospect; v3 answers err 9), v4 upsert by
    # email (it always creates, so it is refused outright) and an external activity
    # (recorded twice). These are resent only when Pardot provably did not get them
    # (connection refused, err 66, a refused token); otherwise the caller gets
    # PARDOT_WRITE_UNCONFIRMED, and a create is held back as described at ``create``.
    #
    # ``need_answer``: the caller reads Pardot's own answer — the id, whether the write
    # created the prospect, the fields as stored — so the write is never batched (a
    # batch answer holds none of these). Without it, a write sent in a batch returns
    # what is known: see ``_batched``.

    async def upsert_by_email(
        self, email: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        if self.api_version != 3:
            raise FailedPrecondition(
                "upsert by email needs API v3: in v4 upsert/email always creates a new "
                "prospect, so match by id, fid or a lookup field instead",
                reason=Reason.UPSERT_BY_EMAIL_NEEDS_V3,
            )
        # Idempotent in v3: the email is unique, so a second send updates the first.
        return await self._write(
            "upsert", "email", email, fields, idempotent=True, email=email, need_answer=need_answer
        )

    async def upsert_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        return await self._write(
            "upsert",
            "id",
            prospect_id,
            fields,
            idempotent=True,
            known_id=prospect_id,
            need_answer=need_answer,
        )

    async def upsert_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        self._require_v4("upsert by fid")
        return await self._write(
            "upsert", "fid", fid, fields, idempotent=True, need_answer=need_answer
        )

    async def update_by_id(
        self, prospect_id: int, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        return await self._write(
            "update",
            "id",
            prospect_id,
            fields,
            idempotent=True,
            known_id=prospect_id,
            need_answer=need_answer,
        )

    async def update_by_fid(
        self, fid: str, fields: Fields, *, need_answer: bool = False
    ) -> Prospect:
        self._require_v4("update by fid")
        return await self._write(
            "update", "fid", fid, fields, idempotent=True, need_answer=need_answer
        )

    async def create(self, email: str, fields: Fields, *, need_answer: bool = False) -> Prospect:
        """Not idempotent: v4 creates a second prospect, v3 answers err 9 to a resend.

        A v4 create that got no answer may still land. The caller's retry reads by
        email before it creates (the lookup strategies do), and updates the prospect
        if it landed; but a read made before Pardot finished finds nothing. So while
        such a create is unconfirmed (``clients.unconfirmed``, for the connection's
        ``unconfirmed_create_hold_s``), no other create for that email is sent: the
        call fails again with PARDOT_WRITE_UNCONFIRMED, and a later retry reads again.
        """
        held = self.api_version == 4 and not self.dry_run
        if held:
            self._refuse_while_unconfirmed(email)
        try:
            return await self._write(
                "create",
                "email",
                email,
                fields,
                idempotent=False,
                email=email,
                need_answer=need_answer,
            )
        except PardotWriteUnconfirmed as unconfirmed:
            if held and not unconfirmed.settled:
                self._client.unconfirmed_creates.hold(email)
            raise

    def _refuse_while_unconfirmed(self, email: str) -> None:
        left = self._client.unconfirmed_creates.remaining(email)
        if left > 0:
            raise PardotWriteUnconfirmed(
                f"an earlier create of a prospect with this email on connection "
                f"{self._client.name!r} got no answer and may still land in Pardot; no "
                f"other is sent for {left:.1f} s more, unless a read finds it first",
                settled=False,
                retry_after=min(left, self._client.config.timeout_s),
            )

    # --- beyond the Gateway protocol, for track mappings (strategies.track) ----------

    async def add_to_list(self, prospect_id: int | None, list_id: int) -> bool:
        """True when the prospect was added, False when already a member (err 58) or
        only planned (dry run). ``prospect_id`` is None only in a dry run, for a
        prospect that would be created: the planned path shows ``{new}``."""
        if prospect_id is None:
            if not self.dry_run:
                raise ValueError("adding to a list needs the prospect's id")
            path = api_path(facts.LIST_MEMBERSHIP, self.api_version, "create", {"list_id": list_id})
            self.calls.append(
                CallRecord(method="POST", path=f"{path}/prospect_id/{PLANNED_NEW_ID}", planned=True)
            )
            return False
        path_params = {"list_id": list_id, "prospect_id": prospect_id}
        if self.dry_run:
            self._plan(facts.LIST_MEMBERSHIP, "create", path_params)
            return False
        try:
            await self._call("POST", facts.LIST_MEMBERSHIP, "create", path_params, {}, True)
        except PardotError as exc:
            if exc.err_code == facts.ERR_ALREADY_LIST_MEMBER:
                return False
            raise
        return True

    def check_external_activities(self) -> None:
        """Refuse, before anything is sent, a connection that cannot record external
        activities: API v5 accepts only Salesforce OAuth (PARDOT_API.md), so a legacy
        login would see every activity refused after the prospect was written."""
        config = self._client.config
        if config.auth != "oauth":
            raise FailedPrecondition(
                "external activities use Pardot API v5, which accepts only Salesforce "
                f"OAuth; connection {config.name!r} uses the legacy Pardot login "
                f"({config.key('auth')})",
                reason=Reason.EXTERNAL_ACTIVITY_NEEDS_OAUTH,
            )

    async def record_external_activity(
        self, extension: str, activity_type: str, value: str, email: str
    ) -> bool:
        """True when recorded, False when only planned (dry run). Pardot records an
        activity once per request, so a resend could record it twice: it is resent
        only when Pardot provably did not get it (as for a create)."""
        self.check_external_activities()
        path = facts.EXTERNAL_ACTIVITIES_PATH
        if self.dry_run:
            self.calls.append(CallRecord(method="POST", path=path, planned=True))
            return False
        body = {"extension": extension, "type": activity_type, "value": value, "email": email}
        await self._client.call_v5(
            "POST", path, body, deadline=self.deadline, calls=self.calls, idempotent=False
        )
        return True

    # --- reads (always made, also in a dry run) -------------------------------------

    async def read_by_email(self, email: str) -> list[Prospect]:
        envelope = await self._read("email", email, not_found={facts.ERR_INVALID_EMAIL})
        if envelope is None:
            return []
        return [self._seen(_prospect(p)) for p in prospects_in(envelope)]

    async def read_by_id(self, prospect_id: int) -> Prospect | None:
        envelope = await self._read("id", prospect_id, not_found={facts.ERR_INVALID_PROSPECT_ID})
        return self._first(envelope)

    async def read_by_fid(self, fid: str) -> Prospect | None:
        self._require_v4("read by fid")
        envelope = await self._read(
            "fid", fid, not_found={facts.ERR_INVALID_FID, facts.ERR_INVALID_PROSPECT_ID}
        )
        return self._first(envelope)

    # --- the one way in -------------------------------------------------------------

    async def _write(
        self,
        operation: str,
        id_field: str,
        id_value: str | int,
        fields: Fields,
        *,
        idempotent: bool,
        known_id: int | None = None,
        email: str = "",
        need_answer: bool = False,
    ) -> Prospect:
        """Every prospect write passes here: planned in a dry run; queued for a batch
        call when the account is busy (``clients.coalescer``); else sent alone."""
        path_params = {id_field: id_value}
        if self.dry_run:
            self._plan(facts.PROSPECT, operation, path_params)
            return Prospect(
                id=known_id,
                email=email or str(fields.get("email", "")),
                fields=dict(fields),
                planned=True,
            )
        kind = None if need_answer else batch_kind(self.api_version, operation, id_field)
        if kind is not None:
            entry = BatchEntry(operation, id_field, str(id_value), fields)
            coalescer = self._client.coalescer
            if coalescer.joins_queue(entry):
                queued = await coalescer.write(
                    self._client,
                    kind,
                    entry,
                    idempotent=idempotent,
                    deadline=self.deadline,
                    calls=self.calls,
                )
                if queued.route is Route.BATCH:
                    return self._seen(self._batched(entry, known_id=known_id, email=email))
                if queued.route is Route.ALONE and queued.answer is not None:
                    return self._answered(queued.answer, operation, id_field, id_value)
                # Route.SEND_ALONE: the batch could not settle it; send it alone.
        with self._client.coalescer.sending_alone():
            envelope = await self._call(
                "POST", facts.PROSPECT, operation, path_params, fields, idempotent
            )
        return self._answered(envelope, operation, id_field, id_value)

    def _answered(
        self, envelope: Mapping[str, Any], operation: str, id_field: str, id_value: str | int
    ) -> Prospect:
        """The prospect a single write's answer holds."""
        found = prospects_in(envelope)
        if not found:
            raise ProspectSyncError(
                f"Pardot's answer to {operation} holds no prospect",
                reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
            )
        answer = found[0]
        if operation == "create":
            created = True
        elif operation == "upsert":
            created = self._upsert_created(answer, id_field, id_value)
        else:
            created = False
        return self._seen(_prospect(answer, created=created))

    def _batched(self, entry: BatchEntry, *, known_id: int | None, email: str) -> Prospect:
        """What a batch call tells of a write it carried: only that it did not fail
        (PARDOT_API.md: the success body holds no ids). So:

        - an update (by id or fid), or a v4 upsert by id or fid (which never creates),
          changed an existing prospect: ``created=False``, with the id when the write
          named it by id (by fid, the id stays unknown: None);
        - a create created one: ``created=True``, id unknown (None);
        - a v3 upsert (by email, or by id, which falls back to the email and may
          create) did one or the other: ``created=None``, id None.

        ``fields`` are the fields sent. Nothing here is a guess, so the identity map
        (which learns only ids) learns nothing from a batched create or upsert.
        """
        created: bool | None
        if entry.operation == "create":
            prospect_id, created = None, True
        elif entry.operation == "update" or self.api_version == 4:
            prospect_id = known_id if entry.id_field == "id" else None
            created = False
        else:
            prospect_id, created = None, None
        return Prospect(
            id=prospect_id,
            email=email or str(entry.fields.get("email", "")),
            fields=dict(entry.fields),
            created=created,
        )

    async def _read(
        self, id_field: str, id_value: str | int, *, not_found: set[int]
    ) -> dict[str, Any] | None:
        try:
            return await self._call("GET", facts.PROSPECT, "read", {id_field: id_value}, {}, True)
        except PardotError as exc:
            if exc.err_code in not_found:
                return None
            raise

    async def _call(
        self,
        method: str,
        pardot_object: str,
        operation: str,
        path_params: Mapping[str, str | int],
        params: Mapping[str, str],
        idempotent: bool,
    ) -> dict[str, Any]:
        return await self._client.call(
            method,
            pardot_object,
            operation,
            path_params,
            params,
            deadline=self.deadline,
            calls=self.calls,
            idempotent=idempotent,
            api_version=self.api_version,
        )

    def _upsert_created(
        self, answer: Mapping[str, Any], id_field: str, id_value: str | int
    ) -> bool:
        """Whether an upsert created the prospect; Pardot's answer does not say.

        - v4 upsert by id or fid updates the match and never creates (PARDOT_API.md).
        - An answer carrying the id we asked for, or an id this connection has seen
          before, is an existing prospect.
        - Otherwise (v3 by email; v3 by an unknown id, which falls back to the email):
          a prospect whose ``created_at`` equals its ``updated_at`` was just created.
          Timestamps have one-second resolution, so an update of a prospect that was
          created elsewhere in the same second, or first seen by another process,
          reads as a create; so would an update Pardot did not stamp.
        """
        if self.api_version == 4 and id_field in ("id", "fid"):
            return False
        prospect_id = _int_or_none(answer.get("id"))
        if prospect_id is None:
            return False
        if id_field == "id" and prospect_id == _int_or_none(id_value):
            return False
        if prospect_id in self._client.known_ids:
            return False
        created_at = answer.get("created_at")
        return created_at is not None and created_at == answer.get("updated_at")

    def _seen(self, prospect: Prospect) -> Prospect:
        if prospect.id is not None:
            self._client.known_ids.add(prospect.id)
        return prospect

    def _first(self, envelope: Mapping[str, Any] | None) -> Prospect | None:
        found = prospects_in(envelope) if envelope is not None else []
        return self._seen(_prospect(found[0])) if found else None

    def _plan(
        self, pardot_object: str, operation: str, path_params: Mapping[str, str | int]
    ) -> None:
        path = api_path(pardot_object, self.api_version, operation, path_params)
        self.calls.append(CallRecord(method="POST", path=path, planned=True))

    def _require_v4(self, what: str) -> None:
        if self.api_version != 4:
            raise FailedPrecondition(
                f"{what} needs API v4 (Salesforce fids are a v4 key); set "
                "settings.api_version to 4 or match by email",
                reason=Reason.FID_NEEDS_V4,
            )


def _prospect(fields: Mapping[str, Any], *, created: bool = False) -> Prospect:
    return Prospect(
        id=_int_or_none(fields.get("id")),
        email=str(fields.get("email") or ""),
        fields=dict(fields),
        created=created,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
