"""EmailV3: Pardot API v3, where the email is a prospect's unique key."""

from __future__ import annotations

from dataclasses import replace

from strategies.base import Gateway, Strategy
from strategies.core.model import Event, Settings, SyncResult
from strategies.fields import prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_campaign_id, require_email


@REGISTRY.register(name="EmailV3", priority=100)
class EmailV3(Strategy):
    """One ``upsert/email`` creates or updates: Segment's documented read-then-write
    costs two calls for the same effect.

    ``settings.campaign_id`` is for new prospects only, and an upsert cannot tell in
    advance whether it creates; sending the campaign on every upsert would move existing
    prospects to it. So the campaign is set by one more call, by id, only when the
    upsert created the prospect. That needs the upsert's own answer (its id, and
    whether it created), which a batch call does not give: with a campaign, the upsert
    is never batched (``need_answer``).
    """

    def matches(self, event: Event, settings: Settings) -> bool:
        return settings.api_version == 3

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        email = require_email(event, "for API v3 (EmailV3)")
        campaign_id = check_campaign_id(settings.campaign_id)
        mapped = prospect_fields(event.traits, path=event.traits_path)
        prospect = await pardot.upsert_by_email(email, mapped.fields, need_answer=bool(campaign_id))
        if campaign_id and prospect.created and prospect.id is not None:
            updated = await pardot.update_by_id(prospect.id, {"campaign_id": campaign_id})
            prospect = replace(updated, created=True)
        return SyncResult.of(prospect, mapped.warnings)
