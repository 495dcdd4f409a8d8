"""``PardotV5Gateway``: the ``strategies.base.Gateway`` over Pardot API v5's JSON dialect
(PARDOT_API.md, "API v5 (prospects)"), for one request on one v5 connection.

Its two primitives map to v5's prospect operations (``clients.wire.v5`` builds them):

- ``upsert_latest*`` by email → ``do/upsertLatestByEmail`` (one call; undeletes from
  the recycle bin with ``secondaryDeletedSearch``);
- ``create`` → ``POST objects/prospects`` (held like a v4 create while unconfirmed);
- ``update`` / ``upsert`` by id → ``PATCH objects/prospects/<id>`` (never creates: an
  id nobody has is err 109, NOT_FOUND, like v4's upsert by id);
- reads: by id ``GET objects/prospects/<id>`` (err 109 → nobody), by email a query
  followed page by page on the configured host.

v5 has no fid operations (the base class refuses them before anything is sent) and no
batch endpoint: every write is its own call, inside the account's slots like any other
(``sending_alone`` tells the account's write queue that it is on its way). Answers
come back with v3/v4's field names, so strategies read them as on v4. v5 reads come
from a cache that may trail writes by up to 60 s: nothing here reads its own writes,
and a write's answer (not a read) is what the identity map learns from.

It never builds a host, retries, sleeps or limits (the transport does), and never sends
a write in a dry run.
"""

from __future__ import annotations

from typing import ClassVar

from clients.config import ConnectionConfig
from clients.gateway import PardotGateway, _int_or_none, _prospect
from clients.wire import v5
from clients.wire.request import PardotRequest
from strategies.base import ProspectKey
from strategies.core import pardot_facts as facts
from strategies.core.errors import FailedPrecondition, PardotError, ProspectSyncError, Reason
from strategies.core.model import CallRecord, Fields, Prospect
from strategies.track import ListChange


class PardotV5Gateway(PardotGateway):
    """``PardotGateway``'s job in v5's dialect; built by
    ``clients.connections.PardotConnection.gateway`` for API v5. Track's list
    memberships go to v5's list-membership object; external activities are v5's own."""

    versions: ClassVar[frozenset[int]] = frozenset({facts.V5})

    @classmethod
    def _refuse_connection(cls, config: ConnectionConfig) -> None:
        if config.auth != "oauth":
            raise FailedPrecondition(
                "Pardot API v5 accepts only Salesforce OAuth; connection "
                f"{config.name!r} uses the legacy Pardot login ({config.key('auth')}): send "
                "settings.api_version 3 or 4 on it, or use an OAuth connection",
                reason=Reason.PARDOT_AUTH_MECHANISM_INVALID,
            )

    # --- reads (always made, also in a dry run) -------------------------------------

    async def read(self, key: ProspectKey) -> list[Prospect]:
        if key.by == "id":
            request = v5.prospect_read(int(key.value), custom_fields=key.custom_fields)
            try:
                document = await self._send(request)
            except PardotError as exc:
                if exc.err_code == facts.ERR_V5_NOT_FOUND:
                    return []
                raise
            return [self._seen(_prospect(v5.prospect_from_v5(document)))]
        if key.by == "email":
            return [self._seen(_prospect(p)) for p in await self._query_by_email(key)]
        raise ValueError(f"API v5 cannot read a prospect by {key.by}")  # the verbs refuse fids

    async def _query_by_email(self, key: ProspectKey) -> list[dict[str, object]]:
        """Every page of the query, followed on the configured host, up to
        ``V5_MAX_QUERY_PAGES`` (more is not one person's prospects)."""
        request: PardotRequest | None = v5.prospect_query_by_email(
            str(key.value), custom_fields=key.custom_fields
        )
        found: list[dict[str, object]] = []
        for _ in range(facts.V5_MAX_QUERY_PAGES):
            assert request is not None
            document = await self._send(request)
            found.extend(v5.page_values(document))
            request = v5.next_page(document, request)
            if request is None:
                return found
        raise ProspectSyncError(
            f"Pardot's v5 query for one email ran past {facts.V5_MAX_QUERY_PAGES} pages",
            reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
        )

    # --- writes: one call each (v5 has no batch endpoint) ---------------------------

    async def _write(
        self,
        operation: str,
        id_field: str,
        id_value: str | int,
        fields: Fields,
        idempotent: bool,
        need_answer: bool,
    ) -> Prospect:
        """Every v5 prospect write passes here: planned in a dry run, else sent alone.
        ``idempotent`` is the request's own (a create is not; the rest are)."""
        request = self._request(operation, id_field, id_value, fields)
        known_id = _int_or_none(id_value) if id_field == "id" else None
        email = str(id_value) if id_field == "email" else str(fields.get("email", ""))
        if self.dry_run:
            self.calls.append(CallRecord(method=request.method, path=request.path, planned=True))
            return Prospect(id=known_id, email=email, fields=dict(fields), planned=True)
        with self._writes.sending_alone():
            document = await self._send(request)
        answer = v5.prospect_from_v5(document)
        if _int_or_none(answer.get("id")) is None:
            raise ProspectSyncError(
                f"Pardot's answer to v5 {request.method} {request.path} holds no prospect id",
                reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
            )
        if operation == "create":
            created = True
        elif operation.startswith("upsert_latest"):
            created = self._upsert_created(answer, id_field, id_value, fields)
        else:
            created = False  # PATCH by id never creates
        return self._seen(_prospect(answer, created=created))

    def _request(
        self, operation: str, id_field: str, id_value: str | int, fields: Fields
    ) -> PardotRequest:
        # The custom fields written are asked back, so the answer shows them stored.
        custom = tuple(name for name in fields if name not in facts.V5_FIELD_NAMES)
        if operation == "create" and id_field == "email":
            return v5.prospect_create(str(id_value), fields, custom_fields=custom)
        if operation in ("update", "upsert") and id_field == "id":
            return v5.prospect_update(int(id_value), fields, custom_fields=custom)
        if operation in ("upsert_latest", "upsert_latest_or_undelete") and id_field == "email":
            return v5.upsert_latest_by_email(
                str(id_value),
                fields,
                secondary_deleted_search=operation == "upsert_latest_or_undelete",
                custom_fields=custom,
            )
        # The verbs refuse the rest (fids, upsert by email) before anything is built.
        raise ValueError(f"API v5 has no prospect {operation} by {id_field}")

    # --- list memberships (track mappings) ------------------------------------------

    async def add_to_list(
        self, prospect_id: int | None, list_id: int, *, resubscribe: bool
    ) -> ListChange:
        """ADDED; on err 58 one membership query tells ALREADY_MEMBER from OPTED_OUT,
        and with ``resubscribe`` an opted-out membership is PATCHed ``optedOut: false``
        (RESUBSCRIBED); PLANNED in a dry run."""
        if prospect_id is None and not self.dry_run:
            raise ValueError("adding to a list needs the prospect's id")
        if self.dry_run:
            self.calls.append(
                CallRecord(method="POST", path=facts.V5_LIST_MEMBERSHIPS_PATH, planned=True)
            )
            return ListChange.PLANNED
        assert prospect_id is not None
        try:
            await self._send(v5.list_membership(list_id, prospect_id))
        except PardotError as exc:
            if exc.err_code != facts.ERR_ALREADY_LIST_MEMBER:
                raise
            membership = await self._find_membership(list_id, prospect_id)
            if membership is None or not membership.get("optedOut"):
                return ListChange.ALREADY_MEMBER
            if not resubscribe:
                return ListChange.OPTED_OUT
            await self._send(_membership_request("PATCH", membership, {"optedOut": False}))
            return ListChange.RESUBSCRIBED
        return ListChange.ADDED

    async def remove_from_list(self, prospect_id: int | None, list_id: int) -> ListChange:
        """v5 has no ``list_<id>`` on prospect writes: the membership is found by a
        query (also in a dry run: a read) and DELETEd. Not a member: NOT_A_MEMBER."""
        if prospect_id is None:
            if not self.dry_run:
                raise ValueError("removing from a list needs the prospect's id")
            return ListChange.PLANNED  # a prospect still to be created is on no list
        membership = await self._find_membership(list_id, prospect_id)
        if membership is None:
            return ListChange.NOT_A_MEMBER
        request = _membership_request("DELETE", membership, None)
        if self.dry_run:
            self.calls.append(CallRecord(method=request.method, path=request.path, planned=True))
            return ListChange.PLANNED
        try:
            await self._send(request)
        except PardotError as exc:
            if exc.err_code == facts.ERR_V5_NOT_FOUND:  # removed meanwhile
                return ListChange.NOT_A_MEMBER
            raise
        return ListChange.REMOVED

    async def _find_membership(self, list_id: int, prospect_id: int) -> dict[str, object] | None:
        """The prospect's membership of the list, by v5's list-membership query
        (filters ``listId`` and ``prospectId``), or None."""
        request = v5.v5_request(
            "GET",
            facts.V5_LIST_MEMBERSHIPS_PATH,
            None,
            idempotent=True,
            query={
                facts.V5_FIELDS_PARAM: "id,listId,prospectId,optedOut",
                "listId": str(list_id),
                "prospectId": str(prospect_id),
            },
        )
        values = (await self._send(request)).get("values")
        if not isinstance(values, list):
            raise ProspectSyncError(
                "Pardot's v5 list-membership query answered no `values` list",
                reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
            )
        for value in values:  # matched here too: the filters are not RECORDED
            if (
                isinstance(value, dict)
                and value.get("listId") == list_id
                and value.get("prospectId") == prospect_id
            ):
                return value
        return None

    async def _read_list(self, list_id: int) -> bool:
        """v5's list read: True when the account has the list, False for 404 code 109
        (or err 55)."""
        path = facts.V5_LIST_PATH.format(id=list_id)
        request = v5.v5_request(
            "GET", path, None, idempotent=True, query={facts.V5_FIELDS_PARAM: "id"}
        )
        try:
            await self._send(request)
        except PardotError as exc:
            if exc.err_code in (facts.ERR_V5_NOT_FOUND, facts.ERR_INVALID_LIST):
                return False
            raise
        return True

    async def _send(self, request: PardotRequest) -> dict[str, object]:
        return await self._transport.send(request, deadline=self.deadline, calls=self.calls)


def _membership_request(
    method: str, membership: dict[str, object], body: dict[str, object] | None
) -> PardotRequest:
    """A PATCH or DELETE of one list membership by its id (Salesforce's v5 List
    Membership object: ``/api/v5/objects/list-memberships/<id>``). Both are safe to
    repeat: a second PATCH sets the same value, a second DELETE finds nothing (404)."""
    membership_id = _int_or_none(membership.get("id"))
    if membership_id is None:
        raise ProspectSyncError(
            "Pardot's v5 list-membership query answered a membership without an id",
            reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
        )
    path = f"{facts.V5_LIST_MEMBERSHIPS_PATH}/{membership_id}"
    query = {facts.V5_FIELDS_PARAM: "id,optedOut"} if method == "PATCH" else None
    return v5.v5_request(method, path, body, idempotent=True, query=query)
