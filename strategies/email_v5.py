"""EmailV5: Pardot API v5 with an email and no other key — ``upsertLatestByEmail``."""

from __future__ import annotations

from dataclasses import replace

from strategies.base import Gateway, Strategy
from strategies.core.model import EMAIL, Event, Settings, SyncResult
from strategies.fields import prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_campaign_id, require_email


@REGISTRY.register(name="EmailV5", priority=95)
class EmailV5(Strategy):
    """One ``upsertLatestByEmail`` updates the prospect with the email that had the
    latest activity, or creates one, and returns its id: v4 can only refuse such a call
    (nothing to match) or create on every one.

    With ``settings.secondary_deleted_search`` (unset means true, as in Segment's v5
    destination) a person whose every prospect is in the recycle bin gets the latest one
    undeleted, not a twin. Pardot matches the email case-sensitively, as sent.

    Nothing is read first (v5 reads may trail writes by up to 60 s): Pardot matches on
    write. Two first identifies of one person at once could still each create (nothing
    says Pardot's match is atomic), so they run one at a time, under the exact email
    (:meth:`identity_key`). ``settings.campaign_id`` is for new prospects only and one
    upsert cannot know whether it creates, so, as EmailV3 does, the campaign is set by
    one more call by id when the upsert created the prospect.
    """

    def matches(self, event: Event, settings: Settings) -> bool:
        # Without an email this is still the strategy that names the missing trait.
        return (
            settings.api_version == 5
            and not (event.pardot_id or event.pardot_fid)
            and not settings.lookup_field
        )

    def identity_key(self, event: Event, settings: Settings) -> str | None:
        # Exact: v5 matches the email case-sensitively, so two casings are two people.
        return f"email={event.email}" if event.email else None

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        email = require_email(event, "for API v5 without pardot.id or a lookup field (EmailV5)")
        campaign_id = check_campaign_id(settings.campaign_id)
        mapped = prospect_fields(event.traits, path=event.traits_path)
        prospect = await pardot.upsert_latest_by_email(
            email, mapped.fields, undelete=settings.secondary_deleted_search
        )
        if campaign_id and prospect.created and prospect.id is not None:
            updated = await pardot.update_by_id(prospect.id, {"campaign_id": campaign_id})
            prospect = replace(updated, created=True)
        await pardot.identity.remember(EMAIL, email, prospect)
        return SyncResult.of(prospect, mapped.warnings)
