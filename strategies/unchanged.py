"""No call for nothing (issue 15): a prospect write that would change nothing the
service last wrote to that prospect is answered without a call, ``OUTCOME_UNCHANGED``.

Let's Encrypt found some 40 % of its Pardot sends went to addresses already sent the
same values. The memory (``pardot.written``, ``clients.state.written``) holds a digest
per field of what Pardot last took for each prospect; this policy decides, before a
write goes, which prospect it concerns and whether every field it carries was last
written with the same value.

Which prospect a write concerns, before it is sent: by id, that id; by fid or by email,
the identity map's entry for it (a fact an earlier answer taught). A write by email
compares the email too (the key's exact text): v5 matches emails case-sensitively
while the identity map folds case, so a case variant is another prospect to Pardot and
is sent. A ``create`` is answered without a call only when the identity map names the
prospect this connection created for that email and the memory vouches for every field
and the email: CreateV4 creates on every call, so a repeated identical identify would
otherwise make a twin with the same values.

After a write Pardot took (not planned), its fields are remembered under the id Pardot
answered, else the id it was sent to (by id, or the identity map's entry; a batch answer
for a key nobody knows teaches nothing). A write by email also teaches the identity map
that email's id (EmailV3 does not remember it itself). A write that fails — Pardot says
the prospect is gone, or any other failure, which may have landed or not — forgets the
prospect, so the next write is sent and the strategy resolves afresh. A dry run compares
(a write that would change nothing is UNCHANGED there too) and never remembers.

What the memory cannot see is a change made in Pardot by someone else (a user, a form,
an automation): an identical identify is then not sent and Pardot keeps the other value.
That is why ``settings.skip_unchanged`` turns it off, per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import replace

from strategies.base import Gateway, ProspectKey, WriteFn, WriteOperation
from strategies.core.model import (
    EMAIL,
    FID,
    ActionKind,
    ActionStatus,
    Fields,
    Outcome,
    Prospect,
    SyncResult,
    TrackAction,
)


class UnchangedMemory:
    """The memory of writes as a ``strategies.base.WritePolicy``, over the call's
    ``gateway`` (its ``written`` memory and ``identity`` map)."""

    def __init__(self, gateway: Gateway, *, dry_run: bool) -> None:
        self._gateway = gateway
        self._written = gateway.written
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
        target = await self._prospect_named(key)
        compared = _with_key_email(key, fields)
        if target is not None and await self._written.unchanged(target, compared):
            email = str(key.value) if key.by == "email" else str(fields.get("email", ""))
            return Prospect(id=target, email=email, fields=dict(fields), unchanged=True)
        try:
            prospect = await then(operation, key, fields, need_answer)
        except Exception:
            if target is not None and not self._dry_run:
                await self._written.forget(target)
            raise
        if prospect.planned or self._dry_run:
            return prospect
        written_to = prospect.id if prospect.id is not None else target
        learned: list[Awaitable[None]] = []
        if written_to is not None:
            learned.append(self._written.wrote(written_to, compared))
        if key.by == "email" and operation != "create" and prospect.id != target:
            # Known already (the lookup above): a write to the map would change nothing.
            learned.append(self._gateway.identity.remember(EMAIL, str(key.value), prospect))
        await _together(learned)
        return prospect

    async def _prospect_named(self, key: ProspectKey) -> int | None:
        """The prospect ``key`` names, as far as is known before the write is sent."""
        if key.by == "id":
            return int(key.value)
        namespace = FID if key.by == "fid" else EMAIL
        return await self._gateway.identity.lookup(namespace, str(key.value))


async def _together(writes: list[Awaitable[None]]) -> None:
    """The writes at once: they do not depend on each other, and issued in one turn of
    the event loop a shared backend sends them as one round trip (Redis: the memory's
    HSET rides the identity map's script, ``clients.state.redis.written``). A lone one
    is awaited as it is, without a task."""
    if len(writes) == 1:
        await writes[0]
    elif writes:
        await asyncio.gather(*writes)


def _with_key_email(key: ProspectKey, fields: Fields) -> Fields:
    """The fields a write sets, with the email a write by email sets as its key."""
    if key.by == "email" and "email" not in fields:
        return {**fields, "email": str(key.value)}
    return fields


def track_outcome(synced: SyncResult, actions: Sequence[TrackAction]) -> SyncResult:
    """A track call is UNCHANGED only when nothing it did changed the prospect in
    Pardot: its prospect write was not needed and none of its other actions took
    effect. An external activity always does (it is recorded every time), as does a
    list membership added now: then the call is UPDATED (PLANNED in a dry run), and its
    ``actions`` say what was sent. The mapped fields' own action follows the prospect
    write (they rode on it), so it is not counted again."""
    if synced.outcome is not Outcome.UNCHANGED:
        return synced
    effects = {a.status for a in actions if a.kind is not ActionKind.WRITE_FIELDS}
    if ActionStatus.APPLIED in effects:
        return replace(synced, outcome=Outcome.UPDATED)
    if ActionStatus.PLANNED in effects:
        return replace(synced, outcome=Outcome.PLANNED)
    return synced
