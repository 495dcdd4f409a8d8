"""``PardotGateway``: the ``strategies.base.Gateway`` a strategy asks Pardot through, for
one request on one connection.

It maps each question to one prospect operation (PARDOT_API.md, "Prospect
operations"), turns answers into ``Prospect`` values and "not found" into an empty
answer, and in a dry run makes the reads but only plans the writes. All writes go
through ``_write``, the one place where batching and budget counting can slot in.

It never builds a host, retries, sleeps or limits (``PardotClient`` does), and never
sends a write in a dry run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients import pardot_facts as facts
from clients.errors import FailedPrecondition, PardotError, ProspectSyncError
from clients.identity import IdentityView, MemoryIdentityStore
from clients.model import CallRecord, Fields, Prospect
from clients.responses import prospects_in
from clients.transport import PardotClient, api_path


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
                reason="API_VERSION_INVALID",
            )
        self._client = client
        self.api_version = api_version
        self.dry_run = dry_run
        self.deadline = deadline
        self.calls: list[CallRecord] = []
        #: What earlier calls on this connection learned (``clients.identity``).
        self.identity = identity or IdentityView(MemoryIdentityStore(), client.name)

    # --- writes -------------------------------------------------------------------

    async def upsert_by_email(self, email: str, fields: Fields) -> Prospect:
        if self.api_version != 3:
            raise FailedPrecondition(
                "upsert by email needs API v3: in v4 upsert/email always creates a new "
                "prospect, so match by id, fid or a lookup field instead",
                reason="UPSERT_BY_EMAIL_NEEDS_V3",
            )
        # Idempotent in v3: the email is unique, so a second send updates the first.
        return await self._write("upsert", "email", email, fields, idempotent=True, email=email)

    async def upsert_by_id(self, prospect_id: int, fields: Fields) -> Prospect:
        return await self._write(
            "upsert", "id", prospect_id, fields, idempotent=True, known_id=prospect_id
        )

    async def upsert_by_fid(self, fid: str, fields: Fields) -> Prospect:
        self._require_v4("upsert by fid")
        return await self._write("upsert", "fid", fid, fields, idempotent=True)

    async def update_by_id(self, prospect_id: int, fields: Fields) -> Prospect:
        return await self._write(
            "update", "id", prospect_id, fields, idempotent=True, known_id=prospect_id
        )

    async def update_by_fid(self, fid: str, fields: Fields) -> Prospect:
        self._require_v4("update by fid")
        return await self._write("update", "fid", fid, fields, idempotent=True)

    async def create(self, email: str, fields: Fields) -> Prospect:
        # Not idempotent: v4 creates a second prospect, v3 answers err 9 to a resend.
        return await self._write("create", "email", email, fields, idempotent=False, email=email)

    async def add_to_list(self, prospect_id: int, list_id: int) -> bool:
        """Beyond the Gateway protocol, for track mappings: True when the prospect was
        added, False when already a member (err 58) or only planned (dry run)."""
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
    ) -> Prospect:
        """Every prospect write passes here (one place for batching and budgets)."""
        path_params = {id_field: id_value}
        if self.dry_run:
            self._plan(facts.PROSPECT, operation, path_params)
            return Prospect(
                id=known_id,
                email=email or str(fields.get("email", "")),
                fields=dict(fields),
                planned=True,
            )
        envelope = await self._call(
            "POST", facts.PROSPECT, operation, path_params, fields, idempotent
        )
        found = prospects_in(envelope)
        if not found:
            raise ProspectSyncError(
                f"Pardot's answer to {operation} holds no prospect",
                reason="PARDOT_UNEXPECTED_RESPONSE",
            )
        answer = found[0]
        if operation == "create":
            created = True
        elif operation == "upsert":
            created = self._upsert_created(answer, id_field, id_value)
        else:
            created = False
        return self._seen(_prospect(answer, created=created))

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
                reason="FID_NEEDS_V4",
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
