"""``settings.sync_mode`` (strategies/sync_mode.py) against the in-memory gateway: the
real strategies of strategies.catalog, run through a PolicyGateway holding the sync
mode's policy. Each mode by each strategy, on both sides (a prospect matches / none
does): UPDATE_ONLY never creates, CREATE_ONLY never touches an existing prospect, and
a refused call wrote nothing and learned nothing.

Pardot facts these rely on (PARDOT_API.md): v3 create answers err 9 when the email
exists; v3 upsert/id falls back to the email and creates; v4 upsert/fid with an email
and an unknown fid creates (UNCONFIRMED: the fake's ``upsert_fid_creates`` switch,
tests/e2e/test_sync_modes.py runs both sides); v4/v5 upsert by id never creates; v5
reads may trail writes by up to 60 s. Where PARDOT_API.md is silent: v3 ``update/email``
of an email nobody has answers err 4, the same code as a malformed email on a create
(pardot/api-docs, docs/kb/error-codes-messages.md, "Error Code: 4"), which is why
UPDATE_ONLY reads by email and then updates by id instead of sending it. The modes
themselves follow Segment's Salesforce (Actions) destination's create / update / upsert
operations (segmentio/segment-docs,
src/connections/destinations/catalog/actions-salesforce/index.md).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace

import pytest

from strategies.base import Gateway
from strategies.catalog import REGISTRY
from strategies.core.errors import PardotError
from strategies.core.model import (
    EMAIL,
    Event,
    Outcome,
    Prospect,
    Settings,
    Skipped,
    SyncMode,
    SyncResult,
    TrackMapping,
    TrackResult,
    field_namespace,
)
from strategies.policies import PolicyGateway, policies_for
from strategies.sync_mode import CreateOnly, UpdateOnly, sync_mode_policy
from strategies.track import plan_track, run_track
from support.memory_gateway import MemoryGateway

UPDATE_ONLY, CREATE_ONLY = SyncMode.UPDATE_ONLY, SyncMode.CREATE_ONLY
FID = "00Q1a000003DEnaEAG"
EMAIL_ADDR = "kevin@example.com"

V3 = Settings(api_version=3)
V5 = Settings(api_version=5)
ID_V4 = Settings(api_version=4)
ORG_V4 = Settings(api_version=4, lookup_field="org_id")
USER_V4 = Settings(api_version=4, lookup_field="org_id", use_user_id_as_lookup_value=True)
CREATE_V4 = Settings(api_version=4, create_when_unmatched=True)


def identify(user_id: str = "", pardot_id: str = "", pardot_fid: str = "", **traits) -> Event:
    return Event(user_id=user_id, pardot_id=pardot_id, pardot_fid=pardot_fid, traits=traits)


def governed(pardot: MemoryGateway, settings: Settings) -> PolicyGateway:
    """``pardot`` behind the sync mode's policy alone (UPSERT: none)."""
    upsert = settings.sync_mode is SyncMode.UPSERT
    return PolicyGateway(pardot, [] if upsert else [sync_mode_policy(settings, pardot)])


async def sync(
    event: Event, settings: Settings, pardot: MemoryGateway, mode: SyncMode
) -> SyncResult:
    settings = replace(settings, sync_mode=mode)
    strategy = REGISTRY.pick(event, settings)
    return await strategy.sync(event, settings, governed(pardot, settings))


async def skipped(event: Event, settings: Settings, pardot: MemoryGateway, mode: SyncMode) -> str:
    with pytest.raises(Skipped) as caught:
        await sync(event, settings, pardot, mode)
    return caught.value.reason


def writes(pardot: MemoryGateway) -> list[str]:
    return [op for op in pardot.ops if not op.startswith("read")]


# --- the chain --------------------------------------------------------------------


def test_upsert_adds_no_policy_and_the_others_come_first_in_the_chain() -> None:
    pardot = MemoryGateway(api_version=4)
    assert not any(isinstance(p, UpdateOnly | CreateOnly) for p in policies_for(ID_V4, pardot, []))
    for mode, kind in ((UPDATE_ONLY, UpdateOnly), (CREATE_ONLY, CreateOnly)):
        chain = policies_for(replace(ID_V4, sync_mode=mode), pardot, [])
        assert isinstance(chain[0], kind)


# --- EmailV3 ----------------------------------------------------------------------


async def test_email_v3_update_only_updates_the_match_by_id() -> None:
    pardot = MemoryGateway(api_version=3)
    existing = pardot.seed(email=EMAIL_ADDR, first_name="Old")
    result = await sync(identify(email=EMAIL_ADDR, first_name="Kevin"), V3, pardot, UPDATE_ONLY)
    assert (result.outcome, result.prospect.id) == (Outcome.UPDATED, existing)
    assert pardot.ops == ["read_by_email", "update_by_id"]
    assert pardot.prospects[existing]["first_name"] == "Kevin"


async def test_email_v3_update_only_with_no_match_creates_nothing() -> None:
    pardot = MemoryGateway(api_version=3)
    reason = await skipped(identify(email=EMAIL_ADDR), V3, pardot, UPDATE_ONLY)
    assert "SYNC_MODE_UPDATE_ONLY" in reason and "nothing was created" in reason
    assert writes(pardot) == [] and pardot.prospects == {}


async def test_email_v3_create_only_creates_when_nobody_has_the_email() -> None:
    pardot = MemoryGateway(api_version=3)
    result = await sync(identify(email=EMAIL_ADDR), V3, pardot, CREATE_ONLY)
    assert result.outcome is Outcome.CREATED
    assert pardot.ops == ["create"]


async def test_email_v3_create_only_leaves_an_existing_prospect_alone() -> None:
    pardot = MemoryGateway(api_version=3)
    existing = pardot.seed(email=EMAIL_ADDR, first_name="Old")
    reason = await skipped(identify(email=EMAIL_ADDR, first_name="New"), V3, pardot, CREATE_ONLY)
    assert "SYNC_MODE_CREATE_ONLY" in reason and "not updated" in reason
    assert pardot.ops == ["create"]  # refused by Pardot (err 9): nothing written
    assert pardot.prospects == {
        existing: {"id": existing, "email": EMAIL_ADDR, "first_name": "Old"}
    }


async def test_email_v3_create_only_with_a_campaign_sets_it_on_the_new_prospect() -> None:
    pardot = MemoryGateway(api_version=3)
    result = await sync(
        identify(email=EMAIL_ADDR), replace(V3, campaign_id="42"), pardot, CREATE_ONLY
    )
    assert result.outcome is Outcome.CREATED
    assert pardot.ops == ["create", "update_by_id"]
    assert pardot.prospects[result.prospect.id]["campaign_id"] == "42"  # type: ignore[index]


async def test_v3_upsert_by_id_in_update_only_becomes_an_update_that_cannot_create() -> None:
    pardot = MemoryGateway(api_version=3)
    settings = replace(V3, sync_mode=UPDATE_ONLY)
    with pytest.raises(PardotError) as caught:
        await governed(pardot, settings).upsert_by_id(4242, {"email": EMAIL_ADDR})
    assert caught.value.err_code == 3
    assert pardot.ops == ["update_by_id"] and pardot.prospects == {}


# --- EmailV5 ----------------------------------------------------------------------


async def test_email_v5_update_only_reads_then_upserts_the_match() -> None:
    pardot = MemoryGateway(api_version=5)
    existing = pardot.seed(email=EMAIL_ADDR)
    result = await sync(identify(email=EMAIL_ADDR, first_name="K"), V5, pardot, UPDATE_ONLY)
    assert (result.outcome, result.prospect.id) == (Outcome.UPDATED, existing)
    assert pardot.ops == ["read_by_email", "upsert_latest_or_undelete_by_email"]


async def test_email_v5_update_only_known_to_the_identity_map_is_one_patch() -> None:
    pardot = MemoryGateway(api_version=5, stale_reads=True)
    first = await sync(identify(email=EMAIL_ADDR), V5, pardot, SyncMode.UPSERT)
    pardot.calls.clear()
    # The read cache does not show it yet: the identity map does.
    result = await sync(identify(email=EMAIL_ADDR, first_name="K"), V5, pardot, UPDATE_ONLY)
    assert (result.outcome, result.prospect.id) == (Outcome.UPDATED, first.prospect.id)
    assert pardot.ops == ["update_by_id"]


async def test_email_v5_update_only_with_a_gone_map_entry_reads_and_creates_nothing() -> None:
    pardot = MemoryGateway(api_version=5)
    await pardot.identity.remember(EMAIL, EMAIL_ADDR, Prospect(id=4242, email=EMAIL_ADDR))
    reason = await skipped(identify(email=EMAIL_ADDR), V5, pardot, UPDATE_ONLY)
    assert "60 s" in reason
    assert pardot.ops == ["update_by_id", "read_by_email"] and pardot.prospects == {}
    assert await pardot.identity.lookup(EMAIL, EMAIL_ADDR) is None  # the stale entry dropped


async def test_email_v5_update_only_with_no_match_creates_nothing() -> None:
    pardot = MemoryGateway(api_version=5)
    reason = await skipped(identify(email=EMAIL_ADDR), V5, pardot, UPDATE_ONLY)
    assert "SYNC_MODE_UPDATE_ONLY" in reason
    assert writes(pardot) == [] and pardot.prospects == {}
    assert await pardot.identity.lookup(EMAIL, EMAIL_ADDR) is None


async def test_email_v5_create_only_creates_and_sets_the_campaign() -> None:
    pardot = MemoryGateway(api_version=5)
    settings = replace(V5, campaign_id="42")
    result = await sync(identify(email=EMAIL_ADDR), settings, pardot, CREATE_ONLY)
    assert result.outcome is Outcome.CREATED
    assert pardot.ops == ["read_by_email", "create", "update_by_id"]
    assert pardot.prospects[result.prospect.id]["campaign_id"] == "42"  # type: ignore[index]
    assert await pardot.identity.lookup(EMAIL, EMAIL_ADDR) == result.prospect.id


async def test_email_v5_create_only_leaves_an_existing_prospect_alone() -> None:
    pardot = MemoryGateway(api_version=5)
    pardot.seed(email=EMAIL_ADDR, first_name="Old")
    reason = await skipped(identify(email=EMAIL_ADDR, first_name="New"), V5, pardot, CREATE_ONLY)
    assert "SYNC_MODE_CREATE_ONLY" in reason
    assert writes(pardot) == [] and len(pardot.prospects) == 1
    assert await pardot.identity.lookup(EMAIL, EMAIL_ADDR) is None  # nothing learned


async def test_email_v5_create_only_known_to_the_identity_map_costs_no_call() -> None:
    pardot = MemoryGateway(api_version=5, stale_reads=True)
    await sync(identify(email=EMAIL_ADDR), V5, pardot, SyncMode.UPSERT)
    pardot.calls.clear()
    await skipped(identify(email=EMAIL_ADDR), V5, pardot, CREATE_ONLY)
    assert pardot.ops == [] and len(pardot.prospects) == 1


# --- IdFidV4 ----------------------------------------------------------------------


async def test_id_fid_v4_update_only_by_id_updates_and_an_unknown_id_stays_not_found() -> None:
    pardot = MemoryGateway(api_version=4)
    existing = pardot.seed(email=EMAIL_ADDR)
    result = await sync(
        identify(pardot_id=str(existing), first_name="K"), ID_V4, pardot, UPDATE_ONLY
    )
    assert result.outcome is Outcome.UPDATED and pardot.ops == ["upsert_by_id"]
    # An id names one prospect: no mode would create it, so absent is NOT_FOUND in all.
    with pytest.raises(PardotError) as caught:
        await sync(identify(pardot_id="4242"), ID_V4, pardot, UPDATE_ONLY)
    assert caught.value.err_code == 3 and len(pardot.prospects) == 1


async def test_id_fid_v4_update_only_by_fid_updates_and_never_creates() -> None:
    pardot = MemoryGateway(api_version=4)
    existing = pardot.seed(email=EMAIL_ADDR, crm_lead_fid=FID)
    result = await sync(identify(pardot_fid=FID, first_name="K"), ID_V4, pardot, UPDATE_ONLY)
    assert (result.outcome, result.prospect.id) == (Outcome.UPDATED, existing)
    assert pardot.ops == ["update_by_fid"]

    other = MemoryGateway(api_version=4)
    reason = await skipped(identify(pardot_fid=FID, email=EMAIL_ADDR), ID_V4, other, UPDATE_ONLY)
    assert "SYNC_MODE_UPDATE_ONLY" in reason and other.prospects == {}
    assert await other.identity.lookup(EMAIL, EMAIL_ADDR) is None


@pytest.mark.parametrize("key", ["pardot_id", "pardot_fid"])
async def test_id_fid_v4_create_only_writes_nothing(key: str) -> None:
    pardot = MemoryGateway(api_version=4)
    existing = pardot.seed(email=EMAIL_ADDR, crm_lead_fid=FID)
    named = {"pardot_id": str(existing)} if key == "pardot_id" else {"pardot_fid": FID}
    reason = await skipped(identify(**named, first_name="New"), ID_V4, pardot, CREATE_ONLY)
    assert "SYNC_MODE_CREATE_ONLY" in reason
    assert pardot.ops == [] and "first_name" not in pardot.prospects[existing]


# --- LookupFieldV4 and UserIdLookupV4 ---------------------------------------------


@pytest.mark.parametrize(
    ("settings", "event"),
    [
        (ORG_V4, identify(email=EMAIL_ADDR, org_id="o-1", first_name="K")),
        (USER_V4, identify(user_id="o-1", email=EMAIL_ADDR, first_name="K")),
    ],
    ids=["LookupFieldV4", "UserIdLookupV4"],
)
class TestLookupStrategies:
    async def test_update_only_updates_the_holder(self, settings: Settings, event: Event) -> None:
        pardot = MemoryGateway(api_version=4)
        holder = pardot.seed(email=EMAIL_ADDR, org_id="o-1")
        result = await sync(event, settings, pardot, UPDATE_ONLY)
        assert (result.outcome, result.prospect.id) == (Outcome.UPDATED, holder)
        assert pardot.ops == ["read_by_email", "update_by_id"]

    async def test_update_only_with_no_holder_creates_nothing(
        self, settings: Settings, event: Event
    ) -> None:
        pardot = MemoryGateway(api_version=4)
        other = pardot.seed(email=EMAIL_ADDR, org_id="o-2")
        reason = await skipped(event, settings, pardot, UPDATE_ONLY)
        assert "SYNC_MODE_UPDATE_ONLY" in reason
        assert writes(pardot) == [] and list(pardot.prospects) == [other]
        assert await pardot.identity.lookup(field_namespace("org_id"), "o-1") is None

    async def test_create_only_creates_when_none_holds_the_value(
        self, settings: Settings, event: Event
    ) -> None:
        pardot = MemoryGateway(api_version=4)
        pardot.seed(email=EMAIL_ADDR, org_id="o-2")  # shares the email, not the value
        result = await sync(event, settings, pardot, CREATE_ONLY)
        assert result.outcome is Outcome.CREATED
        assert pardot.ops == ["read_by_email", "create"]

    async def test_create_only_leaves_the_holder_alone(
        self, settings: Settings, event: Event
    ) -> None:
        pardot = MemoryGateway(api_version=4)
        holder = pardot.seed(email=EMAIL_ADDR, org_id="o-1")
        reason = await skipped(event, settings, pardot, CREATE_ONLY)
        assert f"prospect {holder}" in reason and "SYNC_MODE_CREATE_ONLY" in reason
        assert writes(pardot) == [] and "first_name" not in pardot.prospects[holder]

    async def test_create_only_known_to_the_identity_map_costs_no_call(
        self, settings: Settings, event: Event
    ) -> None:
        pardot = MemoryGateway(api_version=4)
        first = await sync(event, settings, pardot, SyncMode.UPSERT)
        pardot.calls.clear()
        await skipped(event, settings, pardot, CREATE_ONLY)
        assert pardot.ops == [] and list(pardot.prospects) == [first.prospect.id]


# --- CreateV4 ---------------------------------------------------------------------


async def test_create_v4_update_only_creates_nothing_and_create_only_creates() -> None:
    pardot = MemoryGateway(api_version=4)
    reason = await skipped(identify(email=EMAIL_ADDR), CREATE_V4, pardot, UPDATE_ONLY)
    assert "SYNC_MODE_UPDATE_ONLY" in reason and pardot.ops == [] and pardot.prospects == {}
    result = await sync(identify(email=EMAIL_ADDR), CREATE_V4, pardot, CREATE_ONLY)
    assert result.outcome is Outcome.CREATED and pardot.ops == ["create"]


# --- dry run: the same decisions, a refused write not planned -----------------------


async def test_dry_run_decides_as_a_real_call_does() -> None:
    dry = replace(V3, dry_run=True)
    pardot = MemoryGateway(api_version=3, dry_run=True)
    await skipped(identify(email=EMAIL_ADDR), dry, pardot, UPDATE_ONLY)
    existing = pardot.seed(email=EMAIL_ADDR)
    planned = await sync(identify(email=EMAIL_ADDR), dry, pardot, UPDATE_ONLY)
    assert (planned.outcome, planned.prospect.id) == (Outcome.PLANNED, existing)
    pardot.calls.clear()
    # Nothing is sent in a dry run to answer err 9: a read decides instead.
    await skipped(identify(email=EMAIL_ADDR), dry, pardot, CREATE_ONLY)
    assert pardot.ops == ["read_by_email"]


async def test_dry_run_update_only_by_an_unknown_fid_is_skipped_not_planned() -> None:
    pardot = MemoryGateway(api_version=4, dry_run=True)
    await skipped(
        identify(pardot_fid=FID, email=EMAIL_ADDR),
        replace(ID_V4, dry_run=True),
        pardot,
        UPDATE_ONLY,
    )
    assert pardot.ops == ["read_by_fid"]


# --- track ------------------------------------------------------------------------


async def track_signed_up(mode: SyncMode, pardot: MemoryGateway) -> TrackResult:
    """A Signed Up track of a new person (a field and list 501), as the servicer runs it:
    planned, then resolved through the registry's strategy behind the call's policies."""
    settings = replace(
        ORG_V4,
        sync_mode=mode,
        track_mappings={"Signed Up": TrackMapping(fields={"plan": "plan"}, add_to_list_ids=(501,))},
    )
    event = Event(
        kind="track",
        name="Signed Up",
        traits={"email": EMAIL_ADDR, "org_id": "o-1"},
        properties={"plan": "pro"},
    )
    plan = plan_track(event, settings)
    assert plan is not None

    def resolve(through: Gateway) -> Awaitable[SyncResult]:
        return REGISTRY.pick(event, settings).sync(event, settings, through)

    return await run_track(plan, event, settings, governed(pardot, settings), resolve)


async def test_a_track_in_update_only_with_no_match_applies_no_action() -> None:
    pardot = MemoryGateway(api_version=4)
    with pytest.raises(Skipped):
        await track_signed_up(UPDATE_ONLY, pardot)
    assert writes(pardot) == [] and pardot.lists[501] == set()


async def test_a_track_in_create_only_writes_its_fields_to_the_prospect_it_created() -> None:
    pardot = MemoryGateway(api_version=4)
    done = await track_signed_up(CREATE_ONLY, pardot)
    created = done.sync.prospect.id
    assert done.sync.outcome is Outcome.CREATED and created is not None
    assert pardot.prospects[created]["plan"] == "pro" and pardot.lists[501] == {created}
