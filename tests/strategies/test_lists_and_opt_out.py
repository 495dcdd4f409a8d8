"""List membership both ways and the opt-out guard, against the in-memory gateway
(strategies.track's list handling, strategies.opt_out through strategies.policies):
removals ride on the prospect write on v3/v4 and are their own call on v5; an
identify carries lists too; a false ``is_do_not_email`` / ``opted_out`` and a re-add of
an opted-out membership are refused unless the connection allows re-subscribing."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

import pytest

from strategies.base import Gateway
from strategies.catalog import REGISTRY
from strategies.core.errors import InvalidArgument
from strategies.core.model import (
    ActionKind,
    ActionStatus,
    Event,
    Fields,
    Settings,
    Suppressed,
    SyncResult,
    TrackAction,
    TrackMapping,
    TrackResult,
)
from strategies.opt_out import is_true
from strategies.policies import governed
from strategies.track import identity_event, plan_identify, plan_track, run_track
from support.memory_gateway import MemoryGateway

WHERE = 'settings.track_mappings["Left"]'
LEFT = TrackMapping(fields={"dne": "is_do_not_email"}, remove_from_list_ids=(501,))


def identify(**traits: Any) -> Event:
    return Event(kind="identify", traits={"email": "ann@example.com", **traits})


def track(properties: dict[str, Any] | None = None) -> Event:
    return Event(
        kind="track",
        name="Left",
        traits={"email": "ann@example.com"},
        properties=properties if properties is not None else {},
    )


def settings(version: int, **values: Any) -> Settings:
    return Settings(**{"api_version": version, "track_mappings": {"Left": LEFT}, **values})


async def run_identify(event: Event, chosen: Settings, pardot: MemoryGateway) -> TrackResult:
    """What the server's Identify does: plan the lists, govern the gateway, run."""
    plan = plan_identify(event, chosen)
    strategy = REGISTRY.pick(event, chosen)
    gateway = governed(pardot, chosen)

    def resolve(through: Gateway) -> Awaitable[SyncResult]:
        return strategy.sync(event, chosen, through)

    if plan is None:
        done = TrackResult(await resolve(gateway))
    else:
        done = await run_track(plan, event, chosen, gateway, resolve)
    done.sync.suppressed.extend(gateway.suppressed)
    return done


async def run_event(event: Event, chosen: Settings, pardot: MemoryGateway) -> TrackResult:
    """What the server's Track does."""
    plan = plan_track(event, chosen)
    assert plan is not None
    who = identity_event(event, chosen)
    strategy = REGISTRY.pick(who, chosen)
    gateway = governed(pardot, chosen)

    def resolve(through: Gateway) -> Awaitable[SyncResult]:
        return strategy.sync(who, chosen, through)

    done = await run_track(plan, who, chosen, gateway, resolve)
    done.sync.suppressed.extend(gateway.suppressed)
    return done


def seeded(
    version: int, *, member_of: tuple[int, ...] = (), opted_out: bool = False
) -> tuple[MemoryGateway, int]:
    pardot = MemoryGateway(api_version=version)
    prospect_id = pardot.seed(email="ann@example.com")
    for list_id in member_of:
        pardot.lists[list_id].add(prospect_id)
        if opted_out:
            pardot.opted_out.setdefault(list_id, set()).add(prospect_id)
    return pardot, prospect_id


def writes(pardot: MemoryGateway) -> list[str]:
    return [op for op in pardot.ops if op not in ("read_by_email", "read_by_id")]


# --- removal -------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 4])
async def test_a_v3_v4_track_removal_rides_on_the_prospect_write(version: int) -> None:
    pardot, ann = seeded(version, member_of=(501,))
    chosen = settings(version, lookup_field="org_id" if version == 4 else "")
    event = track({"dne": True})
    if version == 4:
        event = replace(event, pardot_id=str(ann))
    done = await run_event(event, chosen, pardot)
    assert ann not in pardot.lists[501]
    assert "remove_from_list" not in pardot.ops  # no call of its own
    assert len(writes(pardot)) == 1
    assert "list_501" not in pardot.prospects[ann]
    assert (
        TrackAction(ActionKind.REMOVE_FROM_LIST, ActionStatus.APPLIED, list_id=501) in done.actions
    )


async def test_a_v5_removal_is_a_membership_call_and_never_a_prospect_field() -> None:
    pardot, ann = seeded(5, member_of=(501,))
    done = await run_event(track({"dne": True}), settings(5), pardot)
    assert ann not in pardot.lists[501]
    assert pardot.ops[-1] == "remove_from_list"
    assert not any(name.startswith("list_") for name in pardot.prospects[ann])
    assert done.actions[-1] == TrackAction(
        ActionKind.REMOVE_FROM_LIST, ActionStatus.APPLIED, list_id=501
    )


@pytest.mark.parametrize(
    ("version", "status"), [(3, ActionStatus.APPLIED), (5, ActionStatus.ALREADY_APPLIED)]
)
async def test_removing_a_non_member_is_success(version: int, status: ActionStatus) -> None:
    pardot, ann = seeded(version)
    done = await run_identify(identify(), settings(version, list_ids_remove=(502,)), pardot)
    assert done.actions == [TrackAction(ActionKind.REMOVE_FROM_LIST, status, list_id=502)]
    assert ann not in pardot.lists[502]


@pytest.mark.parametrize("version", [3, 4, 5])
async def test_an_identify_adds_and_removes_lists(version: int) -> None:
    pardot, ann = seeded(version, member_of=(502,))
    chosen = settings(version, list_ids_add=(501,), list_ids_remove=(502,))
    event = identify(first_name="Ann")
    if version == 4:
        event = replace(event, pardot_id=str(ann))
    done = await run_identify(event, chosen, pardot)
    assert ann in pardot.lists[501] and ann not in pardot.lists[502]
    assert [(a.kind, a.status, a.list_id) for a in done.actions] == [
        (ActionKind.REMOVE_FROM_LIST, ActionStatus.APPLIED, 502),
        (ActionKind.ADD_TO_LIST, ActionStatus.APPLIED, 501),
    ]
    assert pardot.prospects[ann]["first_name"] == "Ann"


async def test_an_identify_without_lists_has_no_plan() -> None:
    assert plan_identify(identify(), settings(3)) is None


async def test_a_removal_with_no_write_to_carry_it_is_one_update_by_id() -> None:
    pardot, ann = seeded(4, member_of=(501,))
    chosen = settings(4, list_ids_remove=(501,))
    # IdFidV4 on a known id writes the traits; with none to write, nothing carries it.
    done = await run_identify(Event(kind="identify", traits={}, pardot_id=str(ann)), chosen, pardot)
    assert ann not in pardot.lists[501]
    assert done.actions[0].status is ActionStatus.APPLIED
    assert "remove_from_list" not in pardot.ops


# --- bad list ids: refused before any call, naming the field ---------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"list_ids_remove": (501, 0)}, "settings.list_ids_remove[1]"),
        ({"list_ids_add": (-3,)}, "settings.list_ids_add[0]"),
        ({"list_ids_add": (501,), "list_ids_remove": (502, 501)}, "settings.list_ids_remove[1]"),
    ],
)
def test_bad_identify_list_ids_name_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_identify(identify(), settings(3, **values))
    assert caught.value.field == field


def test_bad_removal_ids_in_a_mapping_name_the_field() -> None:
    chosen = settings(3, track_mappings={"Left": TrackMapping(remove_from_list_ids=(501, True))})
    with pytest.raises(InvalidArgument) as caught:
        plan_track(track(), chosen)
    assert caught.value.field == f"{WHERE}.remove_from_list_ids[1]"


async def test_an_unknown_list_to_remove_fails_before_any_write() -> None:
    pardot, _ = seeded(3)
    with pytest.raises(InvalidArgument) as caught:
        await run_identify(identify(), settings(3, list_ids_remove=(501, 999)), pardot)
    assert caught.value.field == "settings.list_ids_remove[1]"
    assert writes(pardot) == []


# --- the opt-out guard ----------------------------------------------------------------


@pytest.mark.parametrize("value", [False, None, "0", "no"])
async def test_a_false_do_not_email_is_left_out_and_reported(value: object) -> None:
    pardot, ann = seeded(3)
    pardot.prospects[ann]["is_do_not_email"] = "1"
    done = await run_identify(
        identify(is_do_not_email=value, first_name="Ann"), settings(3), pardot
    )
    assert pardot.prospects[ann]["is_do_not_email"] == "1"
    assert pardot.prospects[ann]["first_name"] == "Ann"  # the rest of the write went
    assert [s.field for s in done.sync.suppressed] == ["is_do_not_email"]


async def test_with_allow_resubscribe_a_false_do_not_email_is_written() -> None:
    pardot, ann = seeded(3)
    pardot.prospects[ann]["is_do_not_email"] = "1"
    chosen = settings(3, allow_resubscribe=True)
    done = await run_identify(identify(is_do_not_email=False), chosen, pardot)
    assert pardot.prospects[ann]["is_do_not_email"] == "false"
    assert done.sync.suppressed == []


async def test_a_true_do_not_email_is_always_written() -> None:
    pardot, ann = seeded(5)
    done = await run_identify(identify(is_do_not_email=True), settings(5), pardot)
    assert pardot.prospects[ann]["is_do_not_email"] == "true"
    assert done.sync.suppressed == []


async def test_a_track_mapping_to_do_not_email_false_is_suppressed_too() -> None:
    pardot, ann = seeded(3)
    done = await run_event(track({"dne": False}), settings(3), pardot)
    assert "is_do_not_email" not in pardot.prospects[ann]
    assert done.sync.suppressed == [
        Suppressed(reason=done.sync.suppressed[0].reason, field="is_do_not_email")
    ]
    assert "allow_resubscribe" in done.sync.suppressed[0].reason


def test_what_counts_as_true() -> None:
    assert [is_true(v) for v in ("1", "true", " TRUE ", "0", "false", "", "yes")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert not is_true(("1",))


# --- re-adding an opted-out membership ---------------------------------------------------


@pytest.mark.parametrize("version", [3, 4, 5])
async def test_re_adding_an_opted_out_membership_is_suppressed(version: int) -> None:
    pardot, ann = seeded(version, member_of=(501,), opted_out=True)
    event = identify() if version != 4 else replace(identify(), pardot_id=str(ann))
    done = await run_identify(event, settings(version, list_ids_add=(501,)), pardot)
    assert done.actions == [
        TrackAction(ActionKind.ADD_TO_LIST, ActionStatus.SUPPRESSED, list_id=501)
    ]
    assert done.sync.suppressed[-1].list_id == 501
    assert ann in pardot.opted_out[501]
    assert "resubscribe" not in pardot.ops


async def test_with_allow_resubscribe_an_opted_out_membership_is_resubscribed() -> None:
    pardot, ann = seeded(3, member_of=(501,), opted_out=True)
    chosen = settings(3, list_ids_add=(501,), allow_resubscribe=True)
    done = await run_identify(identify(), chosen, pardot)
    assert done.actions == [TrackAction(ActionKind.ADD_TO_LIST, ActionStatus.APPLIED, list_id=501)]
    assert ann not in pardot.opted_out[501] and done.sync.suppressed == []


async def test_an_existing_membership_is_already_applied() -> None:
    pardot, _ = seeded(3, member_of=(501,))
    done = await run_identify(identify(), settings(3, list_ids_add=(501,)), pardot)
    assert done.actions[0].status is ActionStatus.ALREADY_APPLIED and done.sync.suppressed == []


# --- the memory of what was written ------------------------------------------------------


class _Remembers:
    """A WrittenView that remembers everything (what strategies.unchanged's store does)."""

    def __init__(self) -> None:
        self.fields: dict[int, dict[str, str]] = {}

    async def unchanged(self, prospect_id: int, fields: Fields) -> bool:
        known = self.fields.get(prospect_id, {})
        return all(known.get(k) == v for k, v in fields.items())

    async def wrote(self, prospect_id: int, fields: Fields) -> None:
        self.fields.setdefault(prospect_id, {}).update(fields)

    async def forget(self, prospect_id: int) -> None:
        self.fields.pop(prospect_id, None)


async def test_a_list_the_service_added_is_not_added_again() -> None:
    pardot, _ = seeded(5)
    pardot.written = _Remembers()
    chosen = settings(5, list_ids_add=(501,), list_ids_remove=(502,))
    await run_identify(identify(), chosen, pardot)
    assert pardot.ops.count("add_to_list") == 1 and pardot.ops.count("remove_from_list") == 1
    again = await run_identify(identify(), chosen, pardot)
    assert pardot.ops.count("add_to_list") == 1 and pardot.ops.count("remove_from_list") == 1
    assert {a.status for a in again.actions} == {ActionStatus.ALREADY_APPLIED}
    off = await run_identify(identify(), replace(chosen, skip_unchanged=False), pardot)
    assert pardot.ops.count("add_to_list") == 2
    assert off.actions[-1].status is ActionStatus.ALREADY_APPLIED
