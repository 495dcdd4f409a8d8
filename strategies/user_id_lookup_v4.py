"""UserIdLookupV4: LookupFieldV4 whose value is the caller's ``user_id`` (Segment's "Use
UserID as Lookup Field Value")."""

from __future__ import annotations

from strategies.core.errors import InvalidArgument
from strategies.core.model import Event, Settings
from strategies.lookup_field_v4 import LookupFieldV4
from strategies.registry import REGISTRY
from strategies.validation import lookup_text


@REGISTRY.register(name="UserIdLookupV4", priority=80)
class UserIdLookupV4(LookupFieldV4):
    """The user id is written into the lookup field, so later calls find the prospect
    by it even when no trait carries it. Trimmed like every lookup value (" u-1" is
    u-1: LookupFieldV4 says why), at most 255 characters."""

    def matches(self, event: Event, settings: Settings) -> bool:
        return (
            settings.api_version in (4, 5)
            and bool(settings.lookup_field)
            and settings.use_user_id_as_lookup_value
        )

    def lookup_value(self, event: Event, settings: Settings) -> str:
        if not event.user_id.strip():
            raise InvalidArgument(
                "user_id",
                f"is required: settings.use_user_id_as_lookup_value matches "
                f"{settings.lookup_field} on it ({self.name})",
            )
        return lookup_text(event.user_id, "user_id")
