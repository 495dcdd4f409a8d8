"""LookupFieldV4: Pardot API v4, matching the prospect whose custom lookup field holds the
value of the trait of the same name (Segment's "Lookup Field")."""

from __future__ import annotations

from strategies.base import Gateway, Strategy
from strategies.core.errors import InvalidArgument, PardotError
from strategies.core.model import EMAIL, Event, Prospect, Settings, SyncResult, field_namespace
from strategies.core.pardot_facts import ERR_PROSPECT_GONE
from strategies.fields import format_value, prospect_fields
from strategies.registry import REGISTRY
from strategies.validation import check_campaign_id, check_field_id, lookup_text, require_email


@REGISTRY.register(name="LookupFieldV4", priority=70)
class LookupFieldV4(Strategy):
    """Resolve by the identity map first, then by reading every prospect with the email
    and picking the one whose field holds the value — never one with another value —
    and create only when none does.

    The map is what makes an email change safe: the lookup value still names the same
    prospect id, so the new email is written to it instead of creating a duplicate
    (Segment's documented weakness). A map entry whose prospect is gone (err 3; v5's
    109) is dropped and the prospect is resolved afresh, once.

    On API v5 the same decisions run through v5's operations (PATCH by id, a query by
    email that returns the lookup field, create). v5 reads may trail writes by up to
    60 s, so a prospect created moments ago is found by the identity map, not a read.

    The lookup value is trimmed of surrounding whitespace before anything (issue 12,
    item 13: " X" and "X" made two prospects): it is matched, remembered and written to
    Pardot trimmed, and a value Pardot holds is compared trimmed too, so a prospect
    written with " X" before is still found by "X". Whitespace inside the value counts;
    a value of only whitespace is missing; at most 255 characters (a text field).
    """

    def matches(self, event: Event, settings: Settings) -> bool:
        return (
            settings.api_version in (4, 5)
            and bool(settings.lookup_field)
            and not settings.use_user_id_as_lookup_value
        )

    def lookup_value(self, event: Event, settings: Settings) -> str:
        """The value to match; raises InvalidArgument naming where it should be."""
        field = f"{event.traits_path}.{settings.lookup_field}"
        raw = event.traits.get(settings.lookup_field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidArgument(
                field, f"is required: settings.lookup_field names it ({self.name})"
            )
        return lookup_text(format_value(raw, field), field)

    def identity_key(self, event: Event, settings: Settings) -> str | None:
        try:
            return f"{settings.lookup_field}={self.lookup_value(event, settings)}"
        except InvalidArgument:
            return None  # sync() reports it

    async def sync(self, event: Event, settings: Settings, pardot: Gateway) -> SyncResult:
        lookup_field = check_field_id(settings.lookup_field, "settings.lookup_field")
        value = self.lookup_value(event, settings)
        campaign_id = check_campaign_id(settings.campaign_id)
        mapped = prospect_fields(event.traits, path=event.traits_path)
        fields = {**mapped.fields, lookup_field: value}
        namespace = field_namespace(lookup_field)

        known = await pardot.identity.lookup(namespace, value)
        if known is not None:
            try:
                prospect = await pardot.update_by_id(known, fields)
            except PardotError as exc:
                if exc.err_code not in ERR_PROSPECT_GONE:
                    raise
                await pardot.identity.forget(known)
                mapped.warnings.append(
                    f"prospect {known} is gone from Pardot (deleted or merged); resolved afresh"
                )
            else:
                return await self._learned(
                    pardot, namespace, value, event, prospect, mapped.warnings
                )

        email = require_email(
            event, f"to find or create a prospect by {lookup_field} ({self.name})"
        )
        same_email = await pardot.read_by_email(email, custom_fields=(lookup_field,))
        match = holding(same_email, lookup_field, value)
        if match is not None:
            prospect = await pardot.update_by_id(match.id, fields)  # type: ignore[arg-type]
        else:
            unset = sum(1 for p in same_email if field_text(p.get(lookup_field)) == "")
            if unset:
                mapped.warnings.append(
                    f"{unset} prospect(s) with this email have no {lookup_field}; created a "
                    f"new one — run `prospect-sync backfill` to set {lookup_field} on "
                    "existing prospects"
                )
            if campaign_id:
                fields["campaign_id"] = campaign_id
            prospect = await pardot.create(email, fields)
        return await self._learned(pardot, namespace, value, event, prospect, mapped.warnings)

    @staticmethod
    async def _learned(
        pardot: Gateway,
        namespace: str,
        value: str,
        event: Event,
        prospect: Prospect,
        warnings: list[str],
    ) -> SyncResult:
        await pardot.identity.remember(namespace, value, prospect)
        await pardot.identity.remember(EMAIL, event.email, prospect)
        return SyncResult.of(prospect, warnings)


def holding(prospects: list[Prospect], lookup_field: str, value: str) -> Prospect | None:
    """The prospect whose lookup field holds ``value`` (compared trimmed, as lookup
    values are); the oldest if several do. The backfill tool decides "holds this value"
    with this same function."""
    wanted = value.strip()
    holders = [
        p
        for p in prospects
        if p.id is not None and field_text(p.get(lookup_field)).strip() == wanted
    ]
    return min(holders, key=lambda p: p.id or 0) if holders else None


def field_text(value: object) -> str:
    """A field's value as the text the lookup value is compared with: Pardot returns
    numbers as JSON numbers and an empty field as null."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return format_value(value, "")
    return str(value)
