"""The strategy registry: strategies register by name with a match rule and a priority;
``pick`` returns the highest-priority match, or the one ``settings.strategy`` forces.

Adding a strategy is one new module that registers itself, and its tests.
"""

from __future__ import annotations

from collections.abc import Callable

from strategies.base import Strategy
from strategies.core.errors import FailedPrecondition, InvalidArgument, Reason
from strategies.core.model import Event, Settings


class Registry:
    def __init__(self) -> None:
        self._strategies: dict[str, Strategy] = {}
        #: Highest priority first; sorted when a strategy registers, not on every pick.
        self._ordered: list[Strategy] = []

    def register(self, *, name: str, priority: int) -> Callable[[type[Strategy]], type[Strategy]]:
        def add(cls: type[Strategy]) -> type[Strategy]:
            if name in self._strategies:
                raise ValueError(f"strategy {name!r} is registered twice")
            cls.name = name
            cls.priority = priority
            self._strategies[name] = cls()
            self._ordered = sorted(self._strategies.values(), key=lambda s: (-s.priority, s.name))
            return cls

        return add

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._ordered]

    def get(self, name: str) -> Strategy:
        try:
            return self._strategies[name]
        except KeyError:
            raise InvalidArgument(
                "settings.strategy",
                f"names no registered strategy ({name!r}); registered: {', '.join(self.names)}",
            ) from None

    def pick(self, event: Event, settings: Settings) -> Strategy:
        if settings.strategy:
            return self.get(settings.strategy)
        for strategy in self._ordered:
            if strategy.matches(event, settings):
                return strategy
        raise FailedPrecondition(_no_match_message(settings), reason=Reason.NO_MATCHING_STRATEGY)


def _no_match_message(settings: Settings) -> str:
    if settings.api_version == 4:
        return (
            "API v4 lets several prospects share an email, so a prospect must be matched: "
            "send integrations.Pardot id or fid (pardot.id / pardot.fid), or set "
            "settings.lookup_field to a custom field (optionally with "
            "settings.use_user_id_as_lookup_value), or set settings.create_when_unmatched "
            "to create a new prospect on every unmatched call"
        )
    return f"no registered strategy handles API v{settings.api_version}"


REGISTRY = Registry()
