"""Strategy selection: priority order, forcing by name, and the no-match error."""

import pytest

from strategies.base import Strategy
from strategies.catalog import REGISTRY
from strategies.core.errors import FailedPrecondition, InvalidArgument
from strategies.core.model import Event, Settings
from strategies.registry import Registry


def test_v3_picks_email_v3() -> None:
    assert REGISTRY.pick(Event(), Settings(api_version=3)).name == "EmailV3"


def test_forcing_an_unknown_strategy_names_the_setting_and_the_choices() -> None:
    with pytest.raises(InvalidArgument) as caught:
        REGISTRY.pick(Event(), Settings(api_version=3, strategy="Nope"))
    assert caught.value.field == "settings.strategy"
    assert "EmailV3" in caught.value.message


def test_v4_without_a_way_to_match_says_what_to_configure() -> None:
    registry = Registry()
    with pytest.raises(FailedPrecondition) as caught:
        registry.pick(Event(), Settings(api_version=4))
    assert caught.value.reason == "NO_MATCHING_STRATEGY"
    for hint in ("pardot.id", "settings.lookup_field", "settings.create_when_unmatched"):
        assert hint in caught.value.message


def test_highest_priority_match_wins_and_force_overrides() -> None:
    registry = Registry()

    class Always(Strategy):
        def matches(self, event, settings):
            return True

        async def sync(self, event, settings, pardot):  # pragma: no cover - not called
            raise AssertionError

    registry.register(name="Low", priority=1)(type("Low", (Always,), {}))
    registry.register(name="High", priority=9)(type("High", (Always,), {}))
    assert registry.pick(Event(), Settings()).name == "High"
    assert registry.pick(Event(), Settings(strategy="Low")).name == "Low"
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(name="Low", priority=5)(type("Again", (Always,), {}))
