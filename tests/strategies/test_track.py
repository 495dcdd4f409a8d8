"""strategies.track's decisions against the in-memory gateway (no network): which
actions a mapping asks for, checked before any call; how the prospect is resolved by
the registry's own strategies; what each action did."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from strategies import validation
from strategies.base import EarlierAttempt, Gateway
from strategies.catalog import REGISTRY
from strategies.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PardotError,
    ProspectSyncError,
)
from strategies.core.model import (
    ActionKind,
    ActionStatus,
    Event,
    Outcome,
    Prospect,
    Settings,
    SyncResult,
    TrackMapping,
    TrackResult,
    field_namespace,
)
from strategies.track import TrackPlan, identity_event, plan_track, run_track
from support.memory_gateway import MemoryGateway

SIGNED_UP = TrackMapping(
    fields={"plan": "plan", "seats": "employees"},
    add_to_list_ids=(501,),
    external_activity=("ProspectSync", "Signed Up"),
)
V3 = Settings(api_version=3, track_mappings={"Signed Up": SIGNED_UP})
ORG = Settings(api_version=4, lookup_field="org_id", track_mappings={"Signed Up": SIGNED_UP})
WHERE = 'settings.track_mappings["Signed Up"]'


def track(
    name: str = "Signed Up",
    *,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    **identity: str,
) -> Event:
    return Event(
        kind="track",
        name=name,
        traits=traits if traits is not None else {"email": "ann@example.com"},
        properties=properties if properties is not None else {"plan": "pro", "seats": 12},
        **identity,
    )


def with_mapping(settings: Settings, mapping: TrackMapping) -> Settings:
    return replace(settings, track_mappings={"Signed Up": mapping})


async def apply(event: Event, settings: Settings, pardot: MemoryGateway) -> TrackResult:
    """What the server does: plan, then resolve through the registry's strategy."""
    plan = plan_track(event, settings)
    assert plan is not None
    who = identity_event(event, settings)
    strategy = REGISTRY.pick(who, settings)

    def resolve(through: Gateway) -> Awaitable[SyncResult]:
        return strategy.sync(who, settings, through)

    return await run_track(plan, who, settings, pardot, resolve)


# --- the plan: checked before any call ------------------------------------------------


def test_an_event_without_a_mapping_has_no_plan() -> None:
    assert plan_track(track("Page Viewed"), V3) is None


def test_the_event_name_is_required() -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_track(track(" "), V3)
    assert caught.value.field == "event"


def test_a_plan_holds_the_mapped_properties_as_pardot_values() -> None:
    plan = plan_track(track(), V3)
    assert plan == TrackPlan(
        event="Signed Up",
        fields={"plan": "pro", "employees": "12"},
        list_ids=(501,),
        external_activity=("ProspectSync", "Signed Up"),
    )


def test_absent_properties_are_not_written_and_none_at_all_says_so() -> None:
    some = plan_track(track(properties={"plan": "pro"}), V3)
    assert some is not None and some.fields == {"plan": "pro"} and some.warnings == ()
    none = plan_track(track(properties={}), V3)
    assert none is not None and none.fields == {}
    assert none.warnings and f"{WHERE}.fields" in none.warnings[0]


def test_a_null_property_clears_the_field_and_a_dotted_name_reaches_into_objects() -> None:
    mapping = TrackMapping(fields={"plan": "plan", "order.total": "annual_revenue"})
    event = track(properties={"plan": None, "order": {"total": 99.5}})
    plan = plan_track(event, with_mapping(V3, mapping))
    assert plan is not None and plan.fields == {"plan": "", "annual_revenue": "99.5"}


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"plan": "bad field"}, f'{WHERE}.fields["plan"]', "is not a Pardot field id"),
        ({"plan": "created_at"}, f'{WHERE}.fields["plan"]', "read-only"),
        ({"work": "email"}, f'{WHERE}.fields["work"]', "identifies the prospect"),
        ({"org": "org_id"}, f'{WHERE}.fields["org"]', "identifies the prospect"),
        ({"a": "plan", "b": "plan"}, f'{WHERE}.fields["b"]', "'a' writes too"),
        ({"": "plan"}, f'{WHERE}.fields[""]', "maps no property"),
    ],
)
def test_a_bad_field_mapping_names_the_setting(fields, field, says) -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_track(track(), with_mapping(ORG, TrackMapping(fields=fields)))
    assert caught.value.field == field
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (TrackMapping(add_to_list_ids=(501, 0)), f"{WHERE}.add_to_list_ids[1]"),
        (TrackMapping(add_to_list_ids=(-5,)), f"{WHERE}.add_to_list_ids[0]"),
        (TrackMapping(external_activity=("", "Signed Up")), f"{WHERE}.external_activity.extension"),
        (TrackMapping(external_activity=("ProspectSync", " ")), f"{WHERE}.external_activity.type"),
    ],
)
def test_a_bad_list_or_activity_names_the_setting(mapping, field) -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_track(track(), with_mapping(V3, mapping))
    assert caught.value.field == field


def test_an_object_property_is_refused_under_its_own_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_track(track(properties={"plan": {"name": "pro"}}), V3)
    assert caught.value.field == "properties.plan"


def test_repeated_list_ids_are_added_once() -> None:
    plan = plan_track(track(), with_mapping(V3, TrackMapping(add_to_list_ids=(502, 501, 502))))
    assert plan is not None and plan.list_ids == (502, 501)


# --- identity: context.traits, else properties ------------------------------------------


def test_identity_comes_from_context_traits_first_then_properties() -> None:
    event = track(
        traits={"email": "ctx@example.com", "first_name": "Ann"},
        properties={"email": "prop@example.com", "org_id": "o-1", "plan": "pro"},
    )
    who = identity_event(event, ORG)
    assert who.traits == {"email": "ctx@example.com", "org_id": "o-1"}, "identity only"
    assert identity_event(track(traits={}, properties={"email": "p@example.com"}), V3).email == (
        "p@example.com"
    )


def test_a_bad_email_is_refused_under_the_name_it_came_from() -> None:
    with pytest.raises(InvalidArgument) as caught:
        identity_event(track(traits={}, properties={"email": "not-an-email"}), V3)
    assert caught.value.field == "properties.email"


async def test_a_track_call_has_its_email_checked_by_email_validator_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []

    def counting(email: str, **options: Any) -> Any:
        checked.append(email)
        return real(email, **options)

    real = validation.validate_email
    monkeypatch.setattr(validation, "validate_email", counting)
    validation._email_problem.cache_clear()  # earlier tests may have checked the address
    try:
        # The identity event checks it, then EmailV3 asks again: the answer is reused.
        await apply(track(traits={"email": "once@example.com"}), V3, MemoryGateway(api_version=3))
        assert checked == ["once@example.com"]
    finally:
        validation._email_problem.cache_clear()  # forget what the stand-in answered


# --- applying: one strategy write carries the fields ------------------------------------


async def test_v3_fields_ride_on_the_upsert_then_list_and_activity() -> None:
    pardot = MemoryGateway(api_version=3)
    result = await apply(track(), V3, pardot)

    assert pardot.ops == ["upsert_by_email", "add_to_list", "record_external_activity"]
    assert result.sync.outcome is Outcome.CREATED
    prospect_id = result.sync.prospect.id
    assert pardot.prospects[prospect_id] == {
        "id": prospect_id,
        "email": "ann@example.com",
        "plan": "pro",
        "employees": "12",
    }
    assert pardot.lists[501] == {prospect_id}
    assert pardot.activities == [
        {
            "extension": "ProspectSync",
            "type": "Signed Up",
            "value": "Signed Up",
            "email": "ann@example.com",
        }
    ]
    assert [(a.kind, a.status) for a in result.actions] == [
        (ActionKind.WRITE_FIELDS, ActionStatus.APPLIED),
        (ActionKind.ADD_TO_LIST, ActionStatus.APPLIED),
        (ActionKind.EXTERNAL_ACTIVITY, ActionStatus.APPLIED),
    ]
    assert result.actions[0].fields == ("employees", "plan")


async def test_already_a_member_is_success_and_says_so() -> None:
    pardot = MemoryGateway(api_version=3)
    existing = pardot.seed(email="ann@example.com")
    pardot.lists[501].add(existing)
    result = await apply(track(), V3, pardot)
    assert result.sync.outcome is Outcome.UPDATED
    assert result.actions[1].status is ActionStatus.ALREADY_APPLIED
    assert pardot.lists[501] == {existing}


async def test_fields_survive_a_stale_identity_and_ride_on_the_create() -> None:
    pardot = MemoryGateway(api_version=4)
    gone = Prospect(id=4242, email="ann@example.com")  # deleted in Pardot since
    await pardot.identity.remember(field_namespace("org_id"), "o-1", gone)
    event = track(traits={"email": "ann@example.com", "org_id": "o-1"})
    result = await apply(event, ORG, pardot)
    assert pardot.ops[:3] == ["update_by_id", "read_by_email", "create"]
    created = pardot.prospects[result.sync.prospect.id]
    assert (created["plan"], created["org_id"]) == ("pro", "o-1")
    assert any("gone from Pardot" in w for w in result.sync.warnings)


async def test_the_strategy_fields_win_over_a_mapped_field_of_the_same_name() -> None:
    mapping = TrackMapping(fields={"campaign": "campaign_id"})
    settings = Settings(
        api_version=4,
        create_when_unmatched=True,
        campaign_id="1001",
        track_mappings={"Signed Up": mapping},
    )
    pardot = MemoryGateway(api_version=4)
    result = await apply(track(properties={"campaign": "1002"}), settings, pardot)
    assert pardot.prospects[result.sync.prospect.id]["campaign_id"] == "1001"


async def test_a_strategy_that_writes_nothing_gets_the_fields_by_id() -> None:
    pardot = MemoryGateway(api_version=4)
    existing = pardot.seed(email="ann@example.com")
    plan = plan_track(track(), with_mapping(ORG, TrackMapping(fields={"plan": "plan"})))
    assert plan is not None

    async def read_only(through: Gateway) -> SyncResult:
        found = await through.read_by_id(existing)
        assert found is not None
        return SyncResult.of(found)

    result = await run_track(plan, track(), ORG, pardot, read_only)
    assert pardot.ops == ["read_by_id", "update_by_id"]
    assert pardot.prospects[existing]["plan"] == "pro"
    assert result.actions[0].status is ActionStatus.APPLIED


async def test_a_dry_run_plans_every_action_and_changes_nothing() -> None:
    pardot = MemoryGateway(api_version=3, dry_run=True)
    settings = replace(V3, dry_run=True)
    result = await apply(track(), settings, pardot)
    assert result.sync.outcome is Outcome.PLANNED
    assert pardot.calls == [
        ("upsert_by_email", "ann@example.com"),
        ("add_to_list", (None, 501)),
        ("record_external_activity", ("ProspectSync", "Signed Up")),
    ]
    assert {a.status for a in result.actions} == {ActionStatus.PLANNED}
    assert pardot.prospects == {} and pardot.activities == []


async def test_an_activity_on_a_connection_without_v5_fails_before_any_call() -> None:
    pardot = MemoryGateway(api_version=3, oauth=False)
    with pytest.raises(FailedPrecondition):
        await apply(track(), V3, pardot)
    assert pardot.calls == []


async def test_a_list_pardot_does_not_know_names_the_setting() -> None:
    pardot = MemoryGateway(api_version=3)
    mapping = TrackMapping(add_to_list_ids=(501, 999))
    with pytest.raises(InvalidArgument) as caught:
        await apply(track(), with_mapping(V3, mapping), pardot)
    assert caught.value.field == f"{WHERE}.add_to_list_ids[1]"
    assert caught.value.metadata == {"err_code": "55"}
    assert pardot.calls == [] and pardot.prospects == {}  # found before any write


async def test_an_unknown_list_is_found_before_the_prospect_write_in_a_dry_run_too() -> None:
    pardot = MemoryGateway(api_version=3, dry_run=True)
    mapping = TrackMapping(add_to_list_ids=(999,))
    with pytest.raises(InvalidArgument) as caught:
        await apply(track(), with_mapping(replace(V3, dry_run=True), mapping), pardot)
    assert caught.value.field == f"{WHERE}.add_to_list_ids[0]"
    assert pardot.calls == []


async def test_an_activity_type_pardot_refused_lately_fails_before_any_call() -> None:
    """Pardot cannot be asked which activity types exist; once it refused one on this
    connection, the gateway knows, and track refuses before writing the prospect."""
    pardot = MemoryGateway(api_version=4)
    pardot.refused_types[("ProspectSync", "Signed Up")] = PardotError(400, "no such type")
    with pytest.raises(FailedPrecondition) as caught:
        await apply(track(traits={"email": "ann@example.com", "org_id": "o-1"}), ORG, pardot)
    assert caught.value.reason == "EXTERNAL_ACTIVITY_REFUSED"
    assert f"{WHERE}.external_activity" in caught.value.message
    assert pardot.calls == [] and pardot.prospects == {}


async def test_an_event_name_too_long_for_an_activity_value_fails_before_any_call() -> None:
    """Pardot caps an external activity's value at 100 characters (PARDOT_API.md); our
    event names may be 255, so a longer one is refused at planning, not after the write."""
    long_name = "E" * 101
    settings = replace(ORG, track_mappings={long_name: SIGNED_UP})
    event = track(long_name, traits={"email": "ann@example.com", "org_id": "o-1"})
    with pytest.raises(InvalidArgument) as caught:
        plan_track(event, settings)
    assert caught.value.field == "event" and "100" in caught.value.message
    fits = replace(ORG, track_mappings={"E" * 100: SIGNED_UP})
    assert plan_track(track("E" * 100, traits={"email": "a@b.co"}), fits) is not None


async def test_an_activity_without_any_email_is_refused() -> None:
    pardot = MemoryGateway(api_version=4)
    existing = pardot.seed()  # a prospect Pardot holds with no email (only in memory)
    mapping = TrackMapping(external_activity=("ProspectSync", "Signed Up"))
    event = track(traits={}, properties={}, pardot_id=str(existing))
    with pytest.raises(ProspectSyncError) as caught:
        await apply(event, with_mapping(ORG, mapping), pardot)
    assert "email" in caught.value.message
    assert pardot.activities == []


async def test_an_empty_mapping_still_resolves_the_prospect() -> None:
    pardot = MemoryGateway(api_version=3)
    result = await apply(track(), with_mapping(V3, TrackMapping()), pardot)
    assert result.sync.outcome is Outcome.CREATED and result.actions == []
    assert pardot.ops == ["upsert_by_email"]


async def test_a_track_replayed_after_an_unanswered_create_adopts_it_instead_of_a_twin() -> None:
    """The strategy resolves a track call through the carrier of the mapped fields:
    the carrier must pass the earlier attempt on, or CreateV4 creates a second
    prospect where the crashed attempt's create had landed (issue 12, item 2)."""
    began = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    pardot = MemoryGateway(api_version=4)
    landed = pardot.seed(email="ann@example.com", created_at="2026-01-02 03:04:06")
    pardot.earlier_attempt = EarlierAttempt(began_at=began, pardot_zone=UTC)
    settings = Settings(
        api_version=4,
        create_when_unmatched=True,
        track_mappings={"Signed Up": TrackMapping(fields={"plan": "plan"})},
    )
    result = await apply(track(), settings, pardot)
    assert result.sync.prospect.id == landed
    assert "create" not in pardot.ops
    assert len(pardot.prospects) == 1
