"""Erasure in Pardot: finding a person's prospects and deleting them, over one
connection's transport (its auth, limits, retries and call records), for ``Forget``
(issue 15; docs/erasure.md).

Which dialect: a connection that can reach API v5 (Salesforce OAuth) reads and deletes
with v5 (``GET objects/prospects?email=…`` finds every prospect with the email,
``DELETE objects/prospects/<id>`` moves one to the recycle bin); a legacy-login
connection cannot, and uses v3/v4's ``read`` and ``delete/id/<id>`` (PARDOT_API.md,
"Prospect operations"). Reads go through the connection's gateway, so they are made
in a dry run too and recorded like any call; deletes are never sent in a dry run.

Permanent deletion from the recycle bin: Salesforce documents it only on the recycle
bin's page, for an Administrator, after the Salesforce lead/contact is deleted
(Salesforce Help, "Permanently Delete Prospects"); no API for it is confirmed. So only
where the connection sets ``permanent_delete`` (off by default: an undocumented request
is never sent to an account unasked), a v5 delete is followed by one ``DELETE
…/<id>?deleted=true`` (how v5 addresses a prospect in the recycle bin); a refusal means
"not permanently deleted", never a failure (fakepardot's ``v5_permanent_delete`` switch
plays both sides).

A prospect already gone (v3/v4 err 3, v5 code 109) counts as deleted: erasing twice
is success. It never decides whom to erase (``server.forget`` does) and never touches
the service's state.
"""

from __future__ import annotations

from typing import NamedTuple

from clients.connections import PardotConnection
from clients.gateway import PardotGateway
from clients.wire import v5
from clients.wire.request import PardotRequest
from clients.wire.v3v4 import api_request
from strategies.base import ProspectKey
from strategies.core import pardot_facts as facts
from strategies.core.errors import PardotError
from strategies.core.model import CallRecord


class Erased(NamedTuple):
    """What became of one prospect in Pardot."""

    deleted: bool
    permanently_deleted: bool


class PardotErasure:
    """One Forget call's reads and deletes on ``connection``; ``calls`` lists every
    call made or (dry run) planned, in order."""

    def __init__(
        self,
        connection: PardotConnection,
        *,
        api_version: int,
        dry_run: bool,
        deadline: float | None,
    ) -> None:
        self.uses_v5 = connection.config.auth == "oauth"
        self.permanent_delete = self.uses_v5 and connection.config.permanent_delete
        if self.uses_v5:
            version = facts.V5
        else:
            version = api_version if api_version in facts.V3V4_API_VERSIONS else 4
        self.api_version = version
        self.dry_run = dry_run
        self._deadline = deadline
        self._transport = connection.transport
        self._gateway: PardotGateway = connection.gateway(
            api_version=version, dry_run=dry_run, deadline=deadline
        )

    @property
    def calls(self) -> list[CallRecord]:
        return self._gateway.calls

    async def with_email(self, email: str) -> list[int]:
        """Every prospect Pardot has with ``email`` (v4/v5: all of them)."""
        found = await self._gateway.read(ProspectKey("email", email))
        return [p.id for p in found if p.id is not None]

    async def exists(self, prospect_id: int) -> bool:
        return bool(await self._gateway.read(ProspectKey("id", prospect_id)))

    async def delete(self, prospect_id: int) -> Erased:
        """Deletes the prospect (planned only in a dry run), then tries to delete it
        for good where the dialect may allow it."""
        request = self._delete_request(prospect_id)
        if self.dry_run:
            self.calls.append(CallRecord(method=request.method, path=request.path, planned=True))
            return Erased(deleted=False, permanently_deleted=False)
        await self._gone_is_done(request)
        if not self.permanent_delete:
            return Erased(deleted=True, permanently_deleted=False)
        try:
            await self._send(v5.prospect_delete(prospect_id, from_recycle_bin=True))
        except PardotError:
            return Erased(deleted=True, permanently_deleted=False)
        return Erased(deleted=True, permanently_deleted=True)

    def _delete_request(self, prospect_id: int) -> PardotRequest:
        if self.uses_v5:
            return v5.prospect_delete(prospect_id)
        return api_request(
            "POST",
            facts.PROSPECT,
            self.api_version,
            "delete",
            {"id": prospect_id},
            {},
            idempotent=True,  # a second delete answers err 3: read as done
        )

    async def _gone_is_done(self, request: PardotRequest) -> None:
        try:
            await self._send(request)
        except PardotError as exc:
            if exc.err_code not in facts.ERR_PROSPECT_GONE:
                raise

    async def _send(self, request: PardotRequest) -> dict[str, object]:
        return await self._transport.send(request, deadline=self._deadline, calls=self.calls)
