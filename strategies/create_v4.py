"""CreateV4: Pardot API v4 with nothing to match on, for callers that opted in with
``settings.create_when_unmatched``."""

from __future__ import annotations

from strategies.base import Gateway, Strategy
from strategies.core.model import EMAIL, Event, Settings, SyncResult
from strategies.fields import prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_campaign_id, require_email


@REGISTRY.register(name="CreateV4", priority=10)
class CreateV4(Strategy):
    """Every call creates a prospect: v4 cannot update by email. This is how duplicates
    are born, so it never runs unless the settings ask for it (DESIGN.md). On API v5 an
    email is matched by EmailV5 first, so there CreateV4 runs only when forced by
    ``settings.strategy``."""

    def matches(self, event: Event, settings: Settings) -> bool:
        return settings.api_version in (4, 5) and settings.create_when_unmatched

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        email = require_email(event, f"to create a prospect ({self.name})")
        campaign_id = check_campaign_id(settings.campaign_id)
        mapped = prospect_fields(event.traits, path=event.traits_path)
        fields = {**mapped.fields, "campaign_id": campaign_id} if campaign_id else mapped.fields
        prospect = await pardot.create(email, fields)
        pardot.identity.remember(EMAIL, email, prospect)
        return SyncResult.of(prospect, mapped.warnings)
