"""strategies.unchanged against the in-memory gateway: a write that would change
nothing the service last wrote is answered without a call (OUTCOME_UNCHANGED), for
every strategy of the registry run through the call's policies (``governed``), and
everything else is still sent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from clients.state.written import MemoryWrittenFields, WrittenView
from strategies.catalog import REGISTRY
from strategies.core.errors import PardotError
from strategies.core.model import Event, Outcome, Settings, SyncResult, TrackMapping
from strategies.policies import governed
from strategies.track import identity_event, plan_track, run_track
from support.memory_gateway import MemoryGateway

ANN = {"email": "ann@example.com", "first_name": "Ann", "org_id": "o-1"}

#: strategy → (settings, how its event names the person beyond the traits, seeding)
CASES: dict[str, tuple[Settings, dict[str, str]]] = {
    "EmailV3": (Settings(api_version=3), {}),
    "EmailV5": (Settings(api_version=5), {}),
    "IdFidV4": (Settings(api_version=4), {"pardot_id": "SEEDED"}),
    "LookupFieldV4": (Settings(api_version=4, lookup_field="org_id"), {}),
    "UserIdLookupV4": (
        Settings(api_version=4, lookup_field="org_id", use_user_id_as_lookup_value=True),
        {"user_id": "o-1"},
    ),
    "CreateV4": (Settings(api_version=4, create_when_unmatched=True), {}),
}


def memory_gateway(api_version: int, **kw: Any) -> MemoryGateway:
    gateway = MemoryGateway(api_version=api_version, **kw)
    gateway.written = WrittenView(MemoryWrittenFields(), "default")
    return gateway


def event(identity: dict[str, str], traits: dict[str, str] | None = None) -> Event:
    return Event(traits=dict(traits if traits is not None else ANN), **identity)


async def identify(gateway: MemoryGateway, settings: Settings, ev: Event) -> SyncResult:
    strategy = REGISTRY.pick(ev, settings)
    return await strategy.sync(ev, settings, governed(gateway, settings))


async def prepared(name: str) -> tuple[MemoryGateway, Settings, dict[str, str]]:
    settings, identity = CASES[name]
    gateway = memory_gateway(settings.api_version)
    if identity.get("pardot_id") == "SEEDED":
        identity = {"pardot_id": str(gateway.seed(email="ann@example.com"))}
    assert REGISTRY.pick(event(identity), settings).name == name
    return gateway, settings, identity


@pytest.mark.parametrize("name", list(CASES))
async def test_a_repeated_identical_identify_makes_no_call(name: str) -> None:
    gateway, settings, identity = await prepared(name)
    first = await identify(gateway, settings, event(identity))
    assert first.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UPSERTED)
    calls = list(gateway.calls)

    again = await identify(gateway, settings, event(identity))

    assert again.outcome is Outcome.UNCHANGED
    assert gateway.calls == calls  # not one read or write
    assert again.prospect.id == first.prospect.id
    assert len(gateway.prospects) == len({p["id"] for p in gateway.prospects.values()})


@pytest.mark.parametrize("name", list(CASES))
async def test_a_changed_trait_is_written(name: str) -> None:
    gateway, settings, identity = await prepared(name)
    await identify(gateway, settings, event(identity))
    calls = len(gateway.calls)

    changed = await identify(gateway, settings, event(identity, {**ANN, "first_name": "Anne"}))

    assert changed.outcome is not Outcome.UNCHANGED
    assert len(gateway.calls) > calls
    assert any(p.get("first_name") == "Anne" for p in gateway.prospects.values())


@pytest.mark.parametrize("name", list(CASES))
async def test_skip_unchanged_false_sends_every_write(name: str) -> None:
    gateway, settings, identity = await prepared(name)
    settings = replace(settings, skip_unchanged=False)
    await identify(gateway, settings, event(identity))
    calls = len(gateway.calls)

    again = await identify(gateway, settings, event(identity))

    assert again.outcome is not Outcome.UNCHANGED
    assert len(gateway.calls) > calls


async def test_a_write_of_other_fields_keeps_the_memory_of_the_rest() -> None:
    gateway = memory_gateway(4)
    settings = Settings(api_version=4)
    pid = gateway.seed(email="ann@example.com")
    who = {"pardot_id": str(pid)}
    await identify(gateway, settings, event(who))
    await governed(gateway, settings).update_by_id(pid, {"city": "Oslo"})  # e.g. a track
    calls = len(gateway.calls)

    assert (await identify(gateway, settings, event(who))).outcome is Outcome.UNCHANGED
    assert len(gateway.calls) == calls
    gateway.prospects[pid]["first_name"] = "Changed in Pardot"  # the stale-memory case:
    assert (await identify(gateway, settings, event(who))).outcome is Outcome.UNCHANGED


async def test_a_failed_write_forgets_the_prospect_so_the_next_one_is_sent() -> None:
    gateway = memory_gateway(4)
    settings = Settings(api_version=4)
    pid = gateway.seed(email="ann@example.com")
    who = {"pardot_id": str(pid)}
    await identify(gateway, settings, event(who))
    del gateway.prospects[pid]  # deleted in Pardot
    with pytest.raises(PardotError):  # err 3: Pardot says it is gone
        await identify(gateway, settings, event(who, {**ANN, "first_name": "Anne"}))
    gateway.prospects[pid] = {"id": pid, "email": "ann@example.com"}  # back (undeleted)
    calls = len(gateway.calls)

    again = await identify(gateway, settings, event(who))

    assert again.outcome is Outcome.UPDATED
    assert len(gateway.calls) == calls + 1


async def test_a_dry_run_answers_unchanged_and_remembers_nothing() -> None:
    gateway = memory_gateway(4, dry_run=True)
    settings = Settings(api_version=4, dry_run=True)
    pid = gateway.seed(email="ann@example.com")
    who = {"pardot_id": str(pid)}
    first = await identify(gateway, settings, event(who))
    assert first.outcome is Outcome.PLANNED
    assert (await identify(gateway, settings, event(who))).outcome is Outcome.PLANNED

    live = replace(gateway, dry_run=False)
    live.written = gateway.written  # the same memory, outside the dry run
    await identify(live, replace(settings, dry_run=False), event(who))
    assert (await identify(gateway, settings, event(who))).outcome is Outcome.UNCHANGED


async def test_an_email_in_another_case_is_sent_on_v5() -> None:
    """upsertLatestByEmail matches case-sensitively: a case variant is another prospect
    to Pardot, whatever the identity map (which folds case) says."""
    gateway = memory_gateway(5)
    settings = Settings(api_version=5)
    await identify(gateway, settings, event({}))
    calls = len(gateway.calls)

    variant = await identify(gateway, settings, event({}, {**ANN, "email": "Ann@example.com"}))

    assert variant.outcome is not Outcome.UNCHANGED
    assert len(gateway.calls) > calls


SAME = TrackMapping(fields={"plan": "plan"})
WITH_ACTIVITY = TrackMapping(fields={"plan": "plan"}, external_activity=("PS", "Signed Up"))


async def track(gateway: MemoryGateway, settings: Settings, properties: dict[str, Any]) -> Any:
    ev = Event(
        kind="track", name="Signed Up", traits={"email": "ann@example.com"}, properties=properties
    )
    plan = plan_track(ev, settings)
    assert plan is not None
    who = identity_event(ev, settings)
    strategy = REGISTRY.pick(who, settings)
    pardot = governed(gateway, settings)
    return await run_track(plan, who, settings, pardot, lambda g: strategy.sync(who, settings, g))


async def test_a_track_with_the_same_mapped_fields_makes_no_call() -> None:
    gateway = memory_gateway(3)
    settings = Settings(api_version=3, track_mappings={"Signed Up": SAME})
    await track(gateway, settings, {"plan": "pro"})
    calls = len(gateway.calls)

    again = await track(gateway, settings, {"plan": "pro"})

    assert again.sync.outcome is Outcome.UNCHANGED
    assert len(gateway.calls) == calls
    assert (await track(gateway, settings, {"plan": "team"})).sync.outcome is Outcome.UPDATED


async def test_a_track_still_records_its_external_activity() -> None:
    gateway = memory_gateway(3)
    settings = Settings(api_version=3, track_mappings={"Signed Up": WITH_ACTIVITY})
    await track(gateway, settings, {"plan": "pro"})
    writes = [c for c in gateway.calls if c[0].startswith(("upsert", "update", "create"))]

    again = await track(gateway, settings, {"plan": "pro"})

    assert len(gateway.activities) == 2  # recorded every time
    assert [c for c in gateway.calls if c[0].startswith(("upsert", "update", "create"))] == writes
    # Something was sent and changed the prospect in Pardot: not UNCHANGED.
    assert again.sync.outcome is Outcome.UPDATED
