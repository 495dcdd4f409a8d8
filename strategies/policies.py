"""What every prospect write of a call passes through before the Pardot client sends it:
the caller's sync mode, the opt-out guard and the memory of what was last written.

Each is decision logic of its own module (``strategies.sync_mode``,
``strategies.opt_out``, ``strategies.unchanged``) with one shape, a :class:`WritePolicy`:
it sees a write (operation, key, fields), may change it, refuse it (``Skipped``) or
answer it without sending, and passes it on through ``then``. :class:`PolicyGateway`
chains them around the call's gateway, in the order the contract needs: the sync mode
first (a write it forbids is never screened or remembered), then the opt-out guard
(what it leaves out is not sent, so not remembered), then the memory (it compares what
would really be sent).

They sit at the write primitive rather than in each strategy so that the six
strategies, the track mappings' fields (``strategies.track``'s carrier wraps this
gateway) and every write a strategy makes (a retry after a stale id, a campaign set
after a create) obey them alike, and a seventh strategy cannot forget one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from strategies.base import (
    Gateway,
    GatewayWrapper,
    ProspectKey,
    WriteFn,
    WriteOperation,
    WritePolicy,
)
from strategies.core.errors import PardotError
from strategies.core.model import Fields, Prospect, Settings, Suppressed, SyncMode
from strategies.opt_out import OptOutGuard
from strategies.sync_mode import sync_mode_policy
from strategies.track import ListChange, TrackGateway
from strategies.unchanged import UnchangedMemory


class PolicyGateway(GatewayWrapper, TrackGateway):
    """The call's gateway with ``policies`` around its prospect writes. Reads and the
    track verbs pass through. ``suppressed`` collects what the opt-out guard left out,
    for the response."""

    def __init__(
        self,
        inner: TrackGateway,
        policies: Sequence[WritePolicy],
        suppressed: list[Suppressed] | None = None,
    ) -> None:
        super().__init__(inner)
        self.inner = inner
        self.suppressed: list[Suppressed] = [] if suppressed is None else suppressed
        #: The chain, linked once: each write goes in at its head.
        self._chain = _linked(tuple(policies), inner)

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
    ) -> Prospect:
        return await self._chain(operation, key, fields, need_answer)

    # --- the track verbs pass through --------------------------------------------------

    async def add_to_list(
        self, prospect_id: int | None, list_id: int, *, resubscribe: bool
    ) -> ListChange:
        return await self.inner.add_to_list(prospect_id, list_id, resubscribe=resubscribe)

    async def remove_from_list(self, prospect_id: int | None, list_id: int) -> ListChange:
        return await self.inner.remove_from_list(prospect_id, list_id)

    async def unknown_lists(self, list_ids: Sequence[int]) -> tuple[int, ...]:
        return await self.inner.unknown_lists(list_ids)

    def refused_external_activity(self, extension: str, activity_type: str) -> PardotError | None:
        return self.inner.refused_external_activity(extension, activity_type)

    def check_external_activities(self) -> None:
        self.inner.check_external_activities()

    async def record_external_activity(
        self, extension: str, activity_type: str, value: str, email: str
    ) -> bool:
        return await self.inner.record_external_activity(extension, activity_type, value, email)


def _linked(policies: Sequence[WritePolicy], inner: Gateway) -> WriteFn:
    """``policies`` in order, each passing a write on to the next, the last to
    ``inner``'s own write."""

    def send(
        operation: WriteOperation, key: ProspectKey, fields: Fields, need_answer: bool
    ) -> Awaitable[Prospect]:
        return inner.write(operation, key, fields, need_answer=need_answer)

    chain: WriteFn = send
    for policy in reversed(policies):
        chain = _step(policy, chain)
    return chain


def _step(policy: WritePolicy, then: WriteFn) -> WriteFn:
    def step(
        operation: WriteOperation, key: ProspectKey, fields: Fields, need_answer: bool
    ) -> Awaitable[Prospect]:
        return policy.write(operation, key, fields, need_answer=need_answer, then=then)

    return step


def policies_for(
    settings: Settings, gateway: Gateway, suppressed: list[Suppressed]
) -> list[WritePolicy]:
    """The policies a call's settings ask for, in chain order (module docstring).
    ``suppressed`` is where the opt-out guard reports what it left out."""
    chain: list[WritePolicy] = []
    if settings.sync_mode is not SyncMode.UPSERT:
        chain.append(sync_mode_policy(settings, gateway))
    if not settings.allow_resubscribe:
        chain.append(OptOutGuard(suppressed))
    if settings.skip_unchanged:
        chain.append(UnchangedMemory(gateway, dry_run=settings.dry_run))
    return chain


def governed(gateway: TrackGateway, settings: Settings) -> PolicyGateway:
    """``gateway`` with the policies ``settings`` ask for."""
    suppressed: list[Suppressed] = []
    return PolicyGateway(gateway, policies_for(settings, gateway, suppressed), suppressed)
