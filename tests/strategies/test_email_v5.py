"""EmailV5's decisions, against the in-memory gateway (no network)."""

import pytest

from strategies.catalog import REGISTRY
from strategies.core.errors import FailedPrecondition, InvalidArgument
from strategies.core.model import Event, Outcome, Settings
from strategies.email_v5 import EmailV5
from support.memory_gateway import MemoryGateway

V5 = Settings(api_version=5)
UPSERT = "upsert_latest_or_undelete_by_email"


def v5(**options) -> MemoryGateway:
    return MemoryGateway(api_version=5, **options)


def identify(pardot_id: str = "", pardot_fid: str = "", **traits) -> Event:
    return Event(user_id="u-1", pardot_id=pardot_id, pardot_fid=pardot_fid, traits=traits)


@pytest.mark.parametrize(
    ("event", "settings"),
    [
        (identify(email="a@example.com"), V5),
        (identify(), V5),  # no email: EmailV5 names the missing trait
        (identify(email="a@example.com"), Settings(api_version=5, create_when_unmatched=True)),
    ],
)
def test_v5_with_no_other_key_picks_email_v5(event, settings) -> None:
    assert REGISTRY.pick(event, settings).name == "EmailV5"


@pytest.mark.parametrize(
    ("event", "settings"),
    [
        (identify(email="a@example.com"), Settings(api_version=4, create_when_unmatched=True)),
        (identify(email="a@example.com"), Settings(api_version=3)),
        (identify(email="a@example.com", pardot_id="7"), V5),
        (
            identify(email="a@example.com", org_id="o"),
            Settings(api_version=5, lookup_field="org_id"),
        ),
    ],
)
def test_email_v5_leaves_other_versions_and_other_keys_alone(event, settings) -> None:
    assert not EmailV5().matches(event, settings)


async def test_first_identify_creates_with_one_call_that_returns_the_id() -> None:
    pardot = v5()
    result = await EmailV5().sync(
        identify(email="kevin@example.com", first_name="Kevin"), V5, pardot
    )
    assert result.outcome is Outcome.CREATED and isinstance(result.prospect.id, int)
    assert pardot.ops == [UPSERT]
    assert pardot.prospects[result.prospect.id]["first_name"] == "Kevin"
    assert await pardot.identity.lookup("email", "kevin@example.com") == result.prospect.id


async def test_repeat_identify_updates_the_same_prospect_with_one_call() -> None:
    pardot = v5()
    existing = pardot.seed(email="kevin@example.com", company="Initech")
    result = await EmailV5().sync(
        identify(email="kevin@example.com", company="Initrode"), V5, pardot
    )
    assert result.outcome is Outcome.UPDATED and result.prospect.id == existing
    assert pardot.ops == [UPSERT]
    assert pardot.prospects[existing]["company"] == "Initrode"
    assert len(pardot.prospects) == 1


async def test_of_several_prospects_with_the_email_the_latest_is_updated() -> None:
    pardot = v5()
    older = pardot.seed(email="twin@example.com")
    latest = pardot.seed(email="twin@example.com")
    result = await EmailV5().sync(identify(email="twin@example.com", city="Austin"), V5, pardot)
    assert result.prospect.id == latest
    assert "city" not in pardot.prospects[older]


async def test_a_person_in_the_recycle_bin_is_undeleted_not_duplicated() -> None:
    pardot = v5()
    gone = pardot.seed(email="back@example.com")
    pardot.delete(gone)
    result = await EmailV5().sync(identify(email="back@example.com"), V5, pardot)
    assert result.outcome is Outcome.UPDATED and result.prospect.id == gone
    assert gone not in pardot.deleted and len(pardot.prospects) == 1


async def test_without_secondary_deleted_search_the_recycle_bin_is_left_alone() -> None:
    pardot = v5()
    gone = pardot.seed(email="back@example.com")
    pardot.delete(gone)
    settings = Settings(api_version=5, secondary_deleted_search=False)
    result = await EmailV5().sync(identify(email="back@example.com"), settings, pardot)
    assert result.outcome is Outcome.CREATED and result.prospect.id != gone
    assert pardot.ops == ["upsert_latest_by_email"]
    assert gone in pardot.deleted


async def test_the_email_matches_case_sensitively_as_pardot_does() -> None:
    pardot = v5()
    pardot.seed(email="Kevin@Example.com")
    result = await EmailV5().sync(identify(email="kevin@example.com"), V5, pardot)
    assert result.outcome is Outcome.CREATED


async def test_a_campaign_is_set_on_new_prospects_only() -> None:
    pardot = v5()
    settings = Settings(api_version=5, campaign_id="1002")
    created = await EmailV5().sync(identify(email="c@example.com"), settings, pardot)
    assert created.outcome is Outcome.CREATED
    assert pardot.ops == [UPSERT, "update_by_id"]
    assert pardot.prospects[created.prospect.id]["campaign_id"] == "1002"

    pardot.calls.clear()
    updated = await EmailV5().sync(identify(email="c@example.com"), settings, pardot)
    assert updated.outcome is Outcome.UPDATED and pardot.ops == [UPSERT]


async def test_nothing_is_read_so_a_trailing_read_cache_cannot_duplicate() -> None:
    pardot = v5(stale_reads=True)
    first = await EmailV5().sync(identify(email="fast@example.com"), V5, pardot)
    second = await EmailV5().sync(identify(email="fast@example.com"), V5, pardot)
    assert second.prospect.id == first.prospect.id and len(pardot.prospects) == 1
    assert pardot.ops == [UPSERT, UPSERT]
    # Concurrent first identifies of one person run one at a time, by the exact email.
    assert EmailV5().identity_key(identify(email="Fast@example.com"), V5) == (
        "email=Fast@example.com"
    )
    assert EmailV5().identity_key(identify(), V5) is None


@pytest.mark.parametrize("traits", [{}, {"email": ""}, {"name": "No Email"}])
async def test_missing_email_is_invalid_and_calls_nothing(traits) -> None:
    pardot = v5()
    with pytest.raises(InvalidArgument) as caught:
        await EmailV5().sync(identify(**traits), V5, pardot)
    assert caught.value.field == "traits.email"
    assert "EmailV5" in caught.value.message
    assert pardot.calls == []


async def test_a_dry_run_plans_the_upsert_and_changes_nothing() -> None:
    pardot = v5(dry_run=True)
    result = await EmailV5().sync(
        identify(email="dry@example.com"), Settings(api_version=5, dry_run=True), pardot
    )
    assert result.outcome is Outcome.PLANNED and pardot.prospects == {}


@pytest.mark.parametrize("version", [3, 4])
async def test_forced_on_v3_or_v4_it_is_refused_before_any_call(version: int) -> None:
    pardot = MemoryGateway(api_version=version)
    settings = Settings(api_version=version, strategy="EmailV5")
    strategy = REGISTRY.pick(identify(email="a@example.com"), settings)
    with pytest.raises(FailedPrecondition) as caught:
        await strategy.sync(identify(email="a@example.com"), settings, pardot)
    assert caught.value.reason == "PARDOT_UNSUPPORTED_IN_VERSION"
    assert "API v5" in caught.value.message
    assert pardot.calls == []
