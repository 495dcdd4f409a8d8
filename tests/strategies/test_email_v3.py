"""EmailV3's decisions, against the in-memory gateway."""

import pytest

from strategies.core.errors import InvalidArgument
from strategies.core.model import Event, Outcome, Settings
from strategies.email_v3 import EmailV3
from support.memory_gateway import MemoryGateway

V3 = Settings(api_version=3)


def identify(**traits) -> Event:
    return Event(kind="identify", user_id="u-1", traits=traits)


async def test_first_identify_creates_with_one_upsert() -> None:
    pardot = MemoryGateway(api_version=3)
    result = await EmailV3().sync(
        identify(email="tom@example.com", name="Tom Smykowski"), V3, pardot
    )
    assert result.outcome is Outcome.CREATED
    assert pardot.ops == ["upsert_by_email"]
    stored = pardot.prospects[result.prospect.id]
    assert stored["first_name"] == "Tom" and stored["last_name"] == "Smykowski"


async def test_repeat_identify_updates_the_same_prospect_with_one_call() -> None:
    pardot = MemoryGateway(api_version=3)
    existing = pardot.seed(email="tom@example.com", company="Initech")
    result = await EmailV3().sync(identify(email="tom@example.com", company="Initrode"), V3, pardot)
    assert result.outcome is Outcome.UPDATED
    assert result.prospect.id == existing
    assert pardot.ops == ["upsert_by_email"]
    assert pardot.prospects[existing]["company"] == "Initrode"


@pytest.mark.parametrize("traits", [{}, {"email": ""}, {"name": "No Email"}])
async def test_missing_email_is_invalid_and_calls_nothing(traits) -> None:
    pardot = MemoryGateway(api_version=3)
    with pytest.raises(InvalidArgument) as caught:
        await EmailV3().sync(identify(**traits), V3, pardot)
    assert caught.value.message == "traits.email is required for API v3 (EmailV3)"
    assert pardot.calls == []


async def test_malformed_email_is_rejected_before_any_call() -> None:
    pardot = MemoryGateway(api_version=3)
    with pytest.raises(InvalidArgument) as caught:
        await EmailV3().sync(identify(email="a@b.com/../../login"), V3, pardot)
    assert caught.value.field == "traits.email"
    assert pardot.calls == []


async def test_campaign_is_set_on_new_prospects_only() -> None:
    settings = Settings(api_version=3, campaign_id="1002")
    pardot = MemoryGateway(api_version=3)
    created = await EmailV3().sync(identify(email="new@example.com"), settings, pardot)
    assert created.outcome is Outcome.CREATED
    assert pardot.ops == ["upsert_by_email", "update_by_id"]
    assert pardot.prospects[created.prospect.id]["campaign_id"] == "1002"

    existing = pardot.seed(email="old@example.com", campaign_id="1001")
    pardot.calls.clear()
    updated = await EmailV3().sync(identify(email="old@example.com"), settings, pardot)
    assert updated.outcome is Outcome.UPDATED
    assert pardot.ops == ["upsert_by_email"]
    assert pardot.prospects[existing]["campaign_id"] == "1001"


async def test_non_numeric_campaign_is_a_settings_argument_error() -> None:
    pardot = MemoryGateway(api_version=3)
    with pytest.raises(InvalidArgument) as caught:
        await EmailV3().sync(
            identify(email="a@b.co"), Settings(api_version=3, campaign_id="x1"), pardot
        )
    assert caught.value.field == "settings.campaign_id"
    assert pardot.calls == []


async def test_dry_run_plans_the_write() -> None:
    pardot = MemoryGateway(api_version=3, dry_run=True)
    result = await EmailV3().sync(identify(email="tom@example.com"), V3, pardot)
    assert result.outcome is Outcome.PLANNED
    assert pardot.prospects == {}
