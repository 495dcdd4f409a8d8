"""The v4 strategies' decisions, against the in-memory gateway (no network)."""

import pytest

from strategies.catalog import REGISTRY
from strategies.core.errors import FailedPrecondition, InvalidArgument, PardotError
from strategies.core.model import Event, Outcome, Settings
from strategies.create_v4 import CreateV4
from strategies.id_fid_v4 import IdFidV4
from strategies.lookup_field_v4 import LookupFieldV4
from strategies.user_id_lookup_v4 import UserIdLookupV4
from support.memory_gateway import MemoryGateway

ORG = Settings(api_version=4, lookup_field="org_id")
BY_USER = Settings(api_version=4, lookup_field="org_id", use_user_id_as_lookup_value=True)


def v4() -> MemoryGateway:
    return MemoryGateway(api_version=4)


def identify(user_id: str = "", pardot_id: str = "", pardot_fid: str = "", **traits) -> Event:
    return Event(user_id=user_id, pardot_id=pardot_id, pardot_fid=pardot_fid, traits=traits)


@pytest.mark.parametrize(
    ("event", "settings", "name"),
    [
        (identify(pardot_id="7"), ORG, "IdFidV4"),
        (identify(pardot_fid="00339000033ZUR6"), BY_USER, "IdFidV4"),
        (identify(org_id="x"), BY_USER, "UserIdLookupV4"),
        (identify(org_id="x"), ORG, "LookupFieldV4"),
        (identify(), Settings(api_version=4, create_when_unmatched=True), "CreateV4"),
        (identify(pardot_id="7"), Settings(api_version=3), "EmailV3"),
    ],
)
def test_selection_order_follows_the_design(event, settings, name) -> None:
    assert REGISTRY.pick(event, settings).name == name


def test_v4_with_nothing_to_match_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition):
        REGISTRY.pick(identify(email="a@b.co"), Settings(api_version=4))


# --- IdFidV4 -----------------------------------------------------------------------


async def test_fid_from_the_documentation_updates_with_one_upsert() -> None:
    pardot = v4()
    existing = pardot.seed(email="old@segment.com", crm_contact_fid="00339000033ZUR6")
    event = identify(pardot_fid="00339000033ZUR6", email="bill@segment.com")
    result = await IdFidV4().sync(event, ORG, pardot)
    assert result.outcome is Outcome.UPDATED and result.prospect.id == existing
    assert pardot.ops == ["upsert_by_fid"]
    assert pardot.prospects[existing]["email"] == "bill@segment.com"
    assert await pardot.identity.lookup("fid", "00339000033ZUR6") == existing


async def test_id_wins_over_fid_and_says_so() -> None:
    pardot = v4()
    existing = pardot.seed(email="a@b.co")
    event = identify(pardot_id=str(existing), pardot_fid="00Q39000033ZUR6")
    result = await IdFidV4().sync(event, ORG, pardot)
    assert pardot.ops == ["upsert_by_id"]
    assert result.warnings == ["pardot.fid ignored: pardot.id names the prospect"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (identify(pardot_id="12a"), "pardot.id"),
        (identify(pardot_id="-4"), "pardot.id"),
        (identify(pardot_fid="0033900003"), "pardot.fid"),
        (identify(pardot_fid="00339000033ZUR6!!!"), "pardot.fid"),
    ],
)
async def test_malformed_id_or_fid_is_rejected_before_any_call(event, field) -> None:
    pardot = v4()
    with pytest.raises(InvalidArgument) as caught:
        await IdFidV4().sync(event, ORG, pardot)
    assert caught.value.field == field
    assert pardot.calls == []


async def test_unknown_id_is_not_found_never_a_new_prospect() -> None:
    pardot = v4()
    with pytest.raises(PardotError) as caught:
        await IdFidV4().sync(identify(pardot_id="999", email="a@b.co"), ORG, pardot)
    assert caught.value.err_code == 3 and caught.value.code.name == "NOT_FOUND"
    assert pardot.prospects == {}


# --- LookupFieldV4 -----------------------------------------------------------------


async def test_org_id_example_created_then_updated_with_one_call_when_warm() -> None:
    pardot = v4()
    event = identify(email="bill@segment.com", org_id="1sf324fd53")
    created = await LookupFieldV4().sync(event, ORG, pardot)
    assert created.outcome is Outcome.CREATED
    assert pardot.ops == ["read_by_email", "create"]
    assert pardot.prospects[created.prospect.id]["org_id"] == "1sf324fd53"

    pardot.calls.clear()
    updated = await LookupFieldV4().sync(event, ORG, pardot)
    assert updated.outcome is Outcome.UPDATED and updated.prospect.id == created.prospect.id
    assert pardot.ops == ["update_by_id"]


async def test_cold_map_finds_the_prospect_holding_the_value_among_shared_emails() -> None:
    pardot = v4()
    other = pardot.seed(email="shared@example.com", org_id="other-org")
    mine = pardot.seed(email="shared@example.com", org_id="1sf324fd53")
    result = await LookupFieldV4().sync(
        identify(email="shared@example.com", org_id="1sf324fd53", first_name="Bill"), ORG, pardot
    )
    assert result.prospect.id == mine
    assert pardot.ops == ["read_by_email", "update_by_id"]
    assert pardot.prospects[mine]["first_name"] == "Bill"
    assert "first_name" not in pardot.prospects[other]


async def test_prospects_with_another_value_are_never_taken() -> None:
    pardot = v4()
    pardot.seed(email="shared@example.com", org_id="other-org")
    result = await LookupFieldV4().sync(
        identify(email="shared@example.com", org_id="mine"), ORG, pardot
    )
    assert result.outcome is Outcome.CREATED
    assert len(pardot.prospects) == 2


async def test_email_change_under_a_lookup_field_keeps_one_prospect() -> None:
    pardot = v4()
    first = await LookupFieldV4().sync(identify(email="old@example.com", org_id="o-1"), ORG, pardot)
    changed = await LookupFieldV4().sync(
        identify(email="new@example.com", org_id="o-1"), ORG, pardot
    )
    assert changed.outcome is Outcome.UPDATED and changed.prospect.id == first.prospect.id
    assert len(pardot.prospects) == 1
    assert pardot.prospects[first.prospect.id]["email"] == "new@example.com"


async def test_stale_map_entry_is_dropped_and_resolved_afresh_once() -> None:
    pardot = v4()
    first = await LookupFieldV4().sync(identify(email="a@example.com", org_id="o-1"), ORG, pardot)
    del pardot.prospects[first.prospect.id]  # deleted in Pardot behind the map's back
    pardot.calls.clear()
    again = await LookupFieldV4().sync(identify(email="a@example.com", org_id="o-1"), ORG, pardot)
    assert pardot.ops == ["update_by_id", "read_by_email", "create"]
    assert again.outcome is Outcome.CREATED and again.prospect.id != first.prospect.id
    assert await pardot.identity.lookup("field:org_id", "o-1") == again.prospect.id
    assert any("gone from Pardot" in w for w in again.warnings)


async def test_missing_lookup_value_names_the_trait() -> None:
    pardot = v4()
    with pytest.raises(InvalidArgument) as caught:
        await LookupFieldV4().sync(identify(email="a@b.co"), ORG, pardot)
    assert caught.value.field == "traits.org_id"
    assert pardot.calls == []


async def test_cold_lookup_without_email_cannot_resolve() -> None:
    pardot = v4()
    with pytest.raises(InvalidArgument) as caught:
        await LookupFieldV4().sync(identify(org_id="o-1"), ORG, pardot)
    assert caught.value.field == "traits.email"


async def test_warm_lookup_needs_no_email() -> None:
    pardot = v4()
    await LookupFieldV4().sync(identify(email="a@b.co", org_id="o-1"), ORG, pardot)
    result = await LookupFieldV4().sync(identify(org_id="o-1", first_name="Al"), ORG, pardot)
    assert result.outcome is Outcome.UPDATED


async def test_lookup_field_must_be_a_field_id() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await LookupFieldV4().sync(
            identify(**{"org id": "1", "email": "a@b.co"}),
            Settings(api_version=4, lookup_field="org id"),
            v4(),
        )
    assert caught.value.field == "settings.lookup_field"


async def test_unset_lookup_fields_on_shared_email_are_warned_about() -> None:
    pardot = v4()
    pardot.seed(email="a@b.co")
    result = await LookupFieldV4().sync(identify(email="a@b.co", org_id="o-1"), ORG, pardot)
    assert result.outcome is Outcome.CREATED
    assert any("backfill" in w for w in result.warnings)


async def test_dry_run_reads_but_does_not_write_or_learn() -> None:
    pardot = MemoryGateway(api_version=4, dry_run=True)
    result = await LookupFieldV4().sync(identify(email="a@b.co", org_id="o-1"), ORG, pardot)
    assert result.outcome is Outcome.PLANNED
    assert pardot.ops == ["read_by_email", "create"]
    assert pardot.prospects == {}
    assert await pardot.identity.lookup("field:org_id", "o-1") is None


# --- UserIdLookupV4 and CreateV4 ---------------------------------------------------


async def test_user_id_is_the_lookup_value_and_is_written_on_create() -> None:
    pardot = v4()
    result = await UserIdLookupV4().sync(identify(user_id="u-42", email="a@b.co"), BY_USER, pardot)
    assert result.outcome is Outcome.CREATED
    assert pardot.prospects[result.prospect.id]["org_id"] == "u-42"
    pardot.calls.clear()
    again = await UserIdLookupV4().sync(identify(user_id="u-42"), BY_USER, pardot)
    assert again.prospect.id == result.prospect.id and pardot.ops == ["update_by_id"]


async def test_user_id_lookup_without_user_id_names_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await UserIdLookupV4().sync(identify(email="a@b.co"), BY_USER, v4())
    assert caught.value.field == "user_id"


def test_identity_keys_serialize_one_person_only() -> None:
    assert LookupFieldV4().identity_key(identify(org_id="o-1"), ORG) == "org_id=o-1"
    assert UserIdLookupV4().identity_key(identify(user_id="u"), BY_USER) == "org_id=u"
    assert LookupFieldV4().identity_key(identify(), ORG) is None
    assert IdFidV4().identity_key(identify(pardot_id="1"), ORG) is None


async def test_create_when_unmatched_creates_with_campaign() -> None:
    pardot = v4()
    settings = Settings(api_version=4, create_when_unmatched=True, campaign_id="1002")
    result = await CreateV4().sync(identify(email="a@b.co"), settings, pardot)
    assert result.outcome is Outcome.CREATED
    assert pardot.prospects[result.prospect.id]["campaign_id"] == "1002"
