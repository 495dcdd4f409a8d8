"""Forget: erasing a person from Pardot and from the service's memory, and refusing to
re-create them afterwards (issue 15, "Erasure"; docs/erasure.md).

Order of one Forget, and why:

1. check the keys (``strategies.forget``) and find the prospects: the identity map's
   entries for the keys, Pardot's reads by email and by id (``clients.erasure``);
2. dry run: stop here — the reads were made, the deletes are planned, nothing is
   deleted, dropped or recorded;
3. **record the suppression**, before any delete: from then on every identify or
   track for the person is refused (:meth:`Forgetting.refuse_forgotten`), so no call
   running meanwhile can re-create a prospect the deletes have just removed. It is
   recorded even when Pardot knew nobody, so a later identify cannot create the person;
4. delete each prospect in Pardot (and for good where the account allows it);
5. drop the identity-map entries, the written-fields memory and the message_id records
   naming the deleted prospects.

A failure in 4 or 5 fails the call (its status says why) with the suppression already
in place: the person is never re-created and never reported as forgotten while a
prospect of theirs is left. Forget is idempotent, so sending it again finishes the
work (a prospect already gone counts as deleted).

Digests are HMAC-SHA256 under the suppression key (``server.suppression_key``, else
the one generated and kept with the state: ``clients.state.suppressions``; a key the
suppressions were not recorded under stops the start, :func:`open_suppressions`),
kept per Pardot account rather than per connection
name: two connections to one business unit reach the same prospects, so a person
erased through one must be refused through the other. Neither the plain email nor an
id of a forgotten person is logged (``clients.call_log.PRIVATE_PATHS``) or stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from clients.call_log import PRIVATE_PATHS
from clients.connections import PardotConnection
from clients.erasure import Erased, PardotErasure
from clients.state.protocols import (
    IdentityStore,
    ResponseRecords,
    ServiceState,
    StateUnavailable,
    Suppressions,
    WrittenFields,
)
from clients.state.suppressions import SuppressionKeyChanged, configured_key, digest
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.config import ConfigError, ServiceConfig
from server.convert import pardot_call
from strategies.core.errors import FailedPrecondition, Reason, StateUnwritable
from strategies.core.model import EMAIL, Event, Settings, field_namespace
from strategies.forget import ForgetTarget, event_identifiers, forget_target, id_identifier
from strategies.validation import check_message_id

bind = structlog.contextvars.bind_contextvars

#: The warning of a deleted prospect still in Pardot's recycle bin.
IN_RECYCLE_BIN = (
    "prospect {id} is in Pardot's recycle bin (the connection's permanent_delete is off, "
    "or the account refused it): an Administrator can delete it for good (Account "
    "Engagement, Admin > Recycle Bin)"
)


async def open_suppressions(config: ServiceConfig, state: ServiceState) -> Suppressions:
    """The state's suppressions under ``server.suppression_key`` (else the generated
    key), with the key settled now: a key the suppressions were not recorded under is a
    ConfigError, so the service refuses to start rather than let every forgotten person
    through. A Redis that does not answer yet does not stop the start (``server.app``
    says why): its store settles the key on first use and refuses calls until then."""
    try:
        suppressions = state.suppressions(configured_key(config.server.suppression_key))
        try:
            await suppressions.hash_key()
        except SuppressionKeyChanged:
            raise
        except StateUnwritable:
            pass  # Redis not answering yet: settled on first use
    except SuppressionKeyChanged as error:
        raise ConfigError([f"server.suppression_key: {error.message}"]) from None
    except StateUnavailable as error:
        raise ConfigError([f"server.state_dir: {error}"]) from None
    return suppressions


class Forgetting:
    """The Forget RPC's work, and the check every identify and track makes first.
    Built without stores (tests of other things), it refuses nobody and forgets
    nothing but Pardot's prospects."""

    def __init__(
        self,
        *,
        suppressions: Suppressions | None = None,
        identity: IdentityStore | None = None,
        written: WrittenFields | None = None,
        records: ResponseRecords | None = None,
        scope: Callable[[str], str] | None = None,
    ) -> None:
        self._suppressions = suppressions
        #: Connection name → what a suppression is kept under: the Pardot account
        #: (``clients.account.account_label``), so a person forgotten through one
        #: connection is refused on every connection to that account.
        self._scope = scope or (lambda name: name)
        self._identity = identity
        self._written = written
        self._records = records

    async def refuse_forgotten(self, event: Event, settings: Settings) -> None:
        """Raises FailedPrecondition PERSON_FORGOTTEN when the event names a person
        Forget erased on this connection: one state round trip (the key is the store's
        own, read once)."""
        if self._suppressions is None:
            return
        identifiers = event_identifiers(event, settings)
        if not identifiers:
            return
        scope, digests = await self._digests(settings.connection, identifiers)
        if await self._suppressions.any_of(scope, digests):
            raise FailedPrecondition(
                "this person was erased with Forget from the Pardot account of connection "
                f"{settings.connection!r}: the call was refused and nothing was sent to Pardot",
                reason=Reason.PERSON_FORGOTTEN,
            )

    async def forget(
        self,
        request: pb.ForgetRequest,
        connection: PardotConnection,
        settings: Settings,
        deadline: float | None,
    ) -> pb.ForgetResponse:
        private = PRIVATE_PATHS.set(True)  # its paths hold the person's email and ids
        try:
            return await self._forget(request, connection, settings, deadline)
        finally:
            PRIVATE_PATHS.reset(private)

    async def _forget(
        self,
        request: pb.ForgetRequest,
        connection: PardotConnection,
        settings: Settings,
        deadline: float | None,
    ) -> pb.ForgetResponse:
        check_message_id(request.message_id)
        target = forget_target(
            email=request.email,
            user_id=request.user_id,
            lookup_value=request.lookup_value,
            pardot_id=request.pardot_id,
            settings=settings,
        )
        erasure = PardotErasure(
            connection,
            api_version=settings.api_version,
            dry_run=settings.dry_run,
            deadline=deadline,
        )
        found = await self._prospects_of(target, erasure, settings.connection)
        bind(prospects=len(found), dry_run=settings.dry_run)
        response = pb.ForgetResponse(planned=settings.dry_run)
        if settings.dry_run:
            for prospect_id in found:
                await erasure.delete(prospect_id)  # planned: listed in pardot_calls
                response.prospects.add(prospect_id=str(prospect_id))
            response.pardot_calls.extend(pardot_call(c) for c in erasure.calls)
            return response
        await self._suppress(target, found, settings.connection)
        response.suppression_recorded = self._suppressions is not None
        erased: dict[int, Erased] = {}
        for prospect_id in found:
            erased[prospect_id] = await erasure.delete(prospect_id)
        identity_dropped, records_dropped = await self._drop_memory(found, settings.connection)
        for prospect_id, outcome in erased.items():
            response.prospects.add(
                prospect_id=str(prospect_id),
                deleted=outcome.deleted,
                permanently_deleted=outcome.permanently_deleted,
            )
            if not outcome.permanently_deleted:
                response.warnings.append(IN_RECYCLE_BIN.format(id=prospect_id))
        response.identity_entries_dropped = identity_dropped
        response.message_records_dropped = records_dropped
        response.pardot_calls.extend(pardot_call(c) for c in erasure.calls)
        bind(pardot_calls=len(erasure.calls), identity_dropped=identity_dropped)
        return response

    async def _prospects_of(
        self, target: ForgetTarget, erasure: PardotErasure, connection: str
    ) -> list[int]:
        """Every prospect the keys name that Pardot still has, in the order found."""
        candidates: list[int] = []
        known: list[int | None] = []
        if self._identity is not None:
            if target.email:
                known.append(await self._identity.lookup(connection, EMAIL, target.email))
            for field, value in target.lookup_values:
                known.append(await self._identity.lookup(connection, field_namespace(field), value))
        if target.email:
            candidates.extend(await erasure.with_email(target.email))
        for prospect_id in [target.pardot_id, *known]:
            if prospect_id is not None and prospect_id not in candidates:
                if await erasure.exists(prospect_id):
                    candidates.append(prospect_id)
                elif self._identity is not None and prospect_id in known:
                    await self._identity.forget(connection, prospect_id)  # a stale entry
        return list(dict.fromkeys(candidates))

    async def _suppress(self, target: ForgetTarget, found: list[int], connection: str) -> None:
        if self._suppressions is None:
            return
        identifiers = (*target.identifiers(), *(id_identifier(p) for p in found))
        await self._suppressions.add(*await self._digests(connection, identifiers))

    async def _digests(
        self, connection: str, identifiers: Iterable[str]
    ) -> tuple[str, tuple[str, ...]]:
        """The scope a connection's suppressions are kept under, and the digests of
        ``identifiers`` in it (each once): what a check asks and a Forget records."""
        assert self._suppressions is not None
        key = await self._suppressions.hash_key()
        scope = self._scope(connection)
        return scope, tuple(digest(key, scope, i) for i in dict.fromkeys(identifiers))

    async def _drop_memory(self, found: list[int], connection: str) -> tuple[int, int]:
        """The identity entries, written-fields memory and message_id records of the
        deleted prospects; how many identity entries and records went."""
        identity_dropped = 0
        for prospect_id in found:
            if self._identity is not None:
                identity_dropped += await self._identity.forget(connection, prospect_id)
            if self._written is not None:
                await self._written.forget(connection, prospect_id)
        records_dropped = 0
        if self._records is not None and found:
            records_dropped = await self._records.forget_prospects(connection, tuple(found))
        return identity_dropped, records_dropped
