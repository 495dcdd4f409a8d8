"""IdFidV4: Pardot API v4 when the caller knows the prospect's Pardot id or Salesforce fid
(Segment's ``integrations.Pardot.id`` / ``.fid``)."""

from __future__ import annotations

from strategies.base import Gateway, Strategy
from strategies.core.model import EMAIL, FID, Event, Settings, SyncResult
from strategies.fields import prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_fid, check_prospect_id


@REGISTRY.register(name="IdFidV4", priority=90)
class IdFidV4(Strategy):
    """One ``upsert/id`` or ``upsert/fid`` updates that very prospect; an email trait
    changes its email. An id Pardot does not know is NOT_FOUND (err 3 / 77), never a
    silent new prospect: the caller named someone who is not there.

    On API v5 an id is one ``PATCH`` by id (err 109 is NOT_FOUND); v5 has no fid
    operations, so an fid alone is FAILED_PRECONDITION ``FID_NEEDS_V4``.
    """

    def matches(self, event: Event, settings: Settings) -> bool:
        return settings.api_version in (4, 5) and bool(event.pardot_id or event.pardot_fid)

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        mapped = prospect_fields(event.traits, path=event.traits_path)
        if event.pardot_id:
            prospect_id = check_prospect_id(event.pardot_id, "pardot.id")
            if event.pardot_fid:
                check_fid(event.pardot_fid, "pardot.fid")
                mapped.warnings.append("pardot.fid ignored: pardot.id names the prospect")
            prospect = await pardot.upsert_by_id(prospect_id, mapped.fields)
        else:
            fid = check_fid(event.pardot_fid, "pardot.fid")
            prospect = await pardot.upsert_by_fid(fid, mapped.fields)
            await pardot.identity.remember(FID, fid, prospect)
        await pardot.identity.remember(EMAIL, event.email, prospect)
        return SyncResult.of(prospect, mapped.warnings)
