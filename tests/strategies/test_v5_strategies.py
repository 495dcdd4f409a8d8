"""IdFidV4, the lookup-field strategies and CreateV4 on API v5 connections, against the
in-memory gateway: the same decisions, through v5's operations (PATCH by id, a query by
email that returns the lookup field, create), and never relying on a read of a write."""

import pytest

from strategies.base import ProspectKey
from strategies.catalog import REGISTRY
from strategies.core.errors import FailedPrecondition, PardotError
from strategies.core.model import Event, Outcome, Settings
from strategies.create_v4 import CreateV4
from strategies.id_fid_v4 import IdFidV4
from strategies.lookup_field_v4 import LookupFieldV4
from strategies.user_id_lookup_v4 import UserIdLookupV4
from support.memory_gateway import MemoryGateway

ORG = Settings(api_version=5, lookup_field="org_id")
BY_USER = Settings(api_version=5, lookup_field="org_id", use_user_id_as_lookup_value=True)
V5 = Settings(api_version=5)


def v5(**options) -> MemoryGateway:
    return MemoryGateway(api_version=5, **options)


def identify(user_id: str = "", pardot_id: str = "", pardot_fid: str = "", **traits) -> Event:
    return Event(user_id=user_id, pardot_id=pardot_id, pardot_fid=pardot_fid, traits=traits)


@pytest.mark.parametrize(
    ("event", "settings", "name"),
    [
        (identify(pardot_id="7", email="a@b.co"), V5, "IdFidV4"),
        (identify(pardot_fid="00339000033ZUR6"), ORG, "IdFidV4"),
        (identify(org_id="x", email="a@b.co"), BY_USER, "UserIdLookupV4"),
        (identify(org_id="x", email="a@b.co"), ORG, "LookupFieldV4"),
        (identify(email="a@b.co"), V5, "EmailV5"),
    ],
)
def test_v5_selection_follows_the_design(event, settings, name) -> None:
    assert REGISTRY.pick(event, settings).name == name


# --- IdFidV4 -----------------------------------------------------------------------


async def test_an_id_updates_that_prospect_with_one_patch() -> None:
    pardot = v5()
    existing = pardot.seed(email="old@example.com")
    result = await IdFidV4().sync(
        identify(pardot_id=str(existing), email="new@example.com"), V5, pardot
    )
    assert result.outcome is Outcome.UPDATED and result.prospect.id == existing
    assert pardot.ops == ["upsert_by_id"]
    assert pardot.prospects[existing]["email"] == "new@example.com"


async def test_an_unknown_id_is_v5_not_found_never_a_new_prospect() -> None:
    pardot = v5()
    with pytest.raises(PardotError) as caught:
        await IdFidV4().sync(identify(pardot_id="999", email="a@b.co"), V5, pardot)
    assert caught.value.err_code == 109 and caught.value.code.name == "NOT_FOUND"
    assert caught.value.reason == "PROSPECT_NOT_FOUND"
    assert pardot.prospects == {}


async def test_an_fid_alone_is_refused_on_v5_before_any_call() -> None:
    pardot = v5()
    with pytest.raises(FailedPrecondition) as caught:
        await IdFidV4().sync(identify(pardot_fid="00339000033ZUR6"), V5, pardot)
    assert caught.value.reason == "FID_NEEDS_V4"
    assert "v5 has no Salesforce fid" in caught.value.message
    assert pardot.calls == []


# --- LookupFieldV4 / UserIdLookupV4 --------------------------------------------------


async def test_lookup_field_created_then_updated_by_id_when_warm() -> None:
    pardot = v5()
    event = identify(email="bill@segment.com", org_id="1sf324fd53")
    created = await LookupFieldV4().sync(event, ORG, pardot)
    assert created.outcome is Outcome.CREATED
    assert pardot.ops == ["read_by_email", "create"]
    assert pardot.prospects[created.prospect.id]["org_id"] == "1sf324fd53"

    pardot.calls.clear()
    updated = await LookupFieldV4().sync(event, ORG, pardot)
    assert updated.outcome is Outcome.UPDATED and updated.prospect.id == created.prospect.id
    assert pardot.ops == ["update_by_id"]


async def test_the_read_by_email_asks_for_the_lookup_field() -> None:
    pardot = v5()
    mine = pardot.seed(email="shared@example.com", org_id="1sf324fd53")
    pardot.seed(email="shared@example.com", org_id="other")
    result = await LookupFieldV4().sync(
        identify(email="shared@example.com", org_id="1sf324fd53"), ORG, pardot
    )
    assert result.prospect.id == mine
    assert pardot.read_keys == [ProspectKey("email", "shared@example.com", ("org_id",))]
    assert pardot.ops == ["read_by_email", "update_by_id"]


async def test_a_trailing_read_cache_cannot_make_a_twin_the_identity_map_answers() -> None:
    pardot = v5(stale_reads=True)  # reads do not see what was created moments ago
    event = identify(email="fast@example.com", org_id="o-1")
    first = await LookupFieldV4().sync(event, ORG, pardot)
    again = await LookupFieldV4().sync(
        identify(email="fast@example.com", org_id="o-1"), ORG, pardot
    )
    assert again.prospect.id == first.prospect.id and len(pardot.prospects) == 1
    assert pardot.ops == ["read_by_email", "create", "update_by_id"]


async def test_a_stale_map_entry_v5_109_is_dropped_and_resolved_afresh() -> None:
    pardot = v5()
    event = identify(email="gone@example.com", org_id="o-9")
    first = await LookupFieldV4().sync(event, ORG, pardot)
    del pardot.prospects[first.prospect.id]  # merged or purged: gone for good
    pardot.calls.clear()

    result = await LookupFieldV4().sync(event, ORG, pardot)
    assert result.outcome is Outcome.CREATED and result.prospect.id != first.prospect.id
    assert pardot.ops == ["update_by_id", "read_by_email", "create"]
    assert any("gone from Pardot" in w for w in result.warnings)


async def test_a_known_prospect_in_the_recycle_bin_is_reported_not_twinned() -> None:
    pardot = v5()
    event = identify(email="bin@example.com", org_id="o-8")
    first = await LookupFieldV4().sync(event, ORG, pardot)
    pardot.delete(first.prospect.id)
    with pytest.raises(PardotError) as caught:
        await LookupFieldV4().sync(event, ORG, pardot)
    assert caught.value.err_code == 219 and caught.value.reason == "PROSPECT_ARCHIVED"
    assert len(pardot.prospects) == 1


async def test_user_id_lookup_writes_the_user_id_into_the_field_on_v5() -> None:
    pardot = v5()
    result = await UserIdLookupV4().sync(
        identify(user_id="u-42", email="u@example.com"), BY_USER, pardot
    )
    assert result.outcome is Outcome.CREATED
    assert pardot.prospects[result.prospect.id]["org_id"] == "u-42"
    assert pardot.read_keys[0].custom_fields == ("org_id",)


# --- CreateV4 ------------------------------------------------------------------------


async def test_create_v4_forced_on_v5_creates_through_v5() -> None:
    pardot = v5()
    settings = Settings(api_version=5, strategy="CreateV4", create_when_unmatched=True)
    assert REGISTRY.pick(identify(email="n@example.com"), settings).name == "CreateV4"
    result = await CreateV4().sync(identify(email="n@example.com"), settings, pardot)
    assert result.outcome is Outcome.CREATED and pardot.ops == ["create"]


async def test_upsert_by_email_is_v3s_and_says_what_v5_uses_instead() -> None:
    pardot = v5()
    with pytest.raises(FailedPrecondition) as caught:
        await pardot.upsert_by_email("a@example.com", {})
    assert caught.value.reason == "UPSERT_BY_EMAIL_NEEDS_V3"
    assert "upsertLatestByEmail" in caught.value.message and pardot.calls == []
