"""CreateV4: Pardot API v4 with nothing to match on, for callers that opted in with
``settings.create_when_unmatched``."""

from __future__ import annotations

from dataclasses import replace

from strategies.base import Gateway, Strategy
from strategies.core.model import EMAIL, Event, Prospect, Settings, SyncResult
from strategies.fields import prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_campaign_id, require_email

#: How much earlier than its earlier attempt began (by this host's clock) a prospect's
#: ``created_at`` (by Pardot's, to the second) may read and still be that attempt's:
#: the two clocks' disagreement. Wider takes another message's create of the same
#: email as this one's more often; narrower misses this one's own and creates a twin.
CLOCK_ALLOWANCE_S = 60.0


@REGISTRY.register(name="CreateV4", priority=10)
class CreateV4(Strategy):
    """Every call creates a prospect: v4 cannot update by email. This is how duplicates
    are born, so it never runs unless the settings ask for it (DESIGN.md). On API v5 an
    email is matched by EmailV5 first, so there CreateV4 runs only when forced by
    ``settings.strategy``.

    A message whose earlier attempt got no answer (its process was killed, the call
    failed: ``pardot.earlier_attempt``) may have created its prospect already, so it
    reads before it creates. THE RULE: the prospect is the oldest one with the email
    that Pardot says was created since that attempt began (less
    :data:`CLOCK_ALLOWANCE_S`); it is answered as created, with no further call. With
    none, it creates — refused with PARDOT_WRITE_UNCONFIRMED while the earlier create
    may still be on its way (``clients.gateway``'s create holds), so a later retry
    reads again. ITS LIMIT: another create of the same email in that time (another
    message, another system) cannot be told from this message's own, and is taken for
    it; and on v5, whose reads trail writes by up to 60 s, a create that landed may
    not be read yet (only the hold then stands between it and a twin).
    """

    def matches(self, event: Event, settings: Settings) -> bool:
        return settings.api_version in (4, 5) and settings.create_when_unmatched

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        email = require_email(event, f"to create a prospect ({self.name})")
        campaign_id = check_campaign_id(settings.campaign_id)
        mapped = prospect_fields(event.traits, path=event.traits_path)
        fields = {**mapped.fields, "campaign_id": campaign_id} if campaign_id else mapped.fields
        prospect = await self._created_earlier(email, pardot)
        if prospect is None:
            prospect = await pardot.create(email, fields)
        await pardot.identity.remember(EMAIL, email, prospect)
        return SyncResult.of(prospect, mapped.warnings)

    @staticmethod
    async def _created_earlier(email: str, pardot: Gateway) -> Prospect | None:
        """The prospect an earlier attempt of this message created, by the rule above;
        None on a first attempt, or when none is found."""
        earlier = pardot.earlier_attempt
        if earlier is None:
            return None
        landed = [
            p
            for p in await pardot.read_by_email(email)
            if p.id is not None and earlier.created_since(p, allowance_s=CLOCK_ALLOWANCE_S)
        ]
        if not landed:
            return None
        return replace(min(landed, key=lambda p: p.id or 0), created=True)
