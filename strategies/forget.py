"""Whom a Forget names, and which identifiers of a person a suppression covers (issue
15, "Erasure"; docs/erasure.md). Decision logic only: no I/O, no hashing key.

An identifier is a kind and a value — ``email:<email>``, ``id:<pardot id>``,
``field:<lookup field>:<value>``, ``user:<user id>`` — which ``server.forget`` turns
into a keyed digest. Emails are compared as the settings normalize them and then
lower-cased entirely: the suppression must refuse a case variant of a forgotten
address too (Pardot would make a twin of it), even where the writes keep the case.
A user_id is recorded both under the lookup field and as ``user:``, so the person is
refused whichever strategy a later call picks.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.core.errors import InvalidArgument, Reason
from strategies.core.model import Event, Settings
from strategies.emails import normalized
from strategies.validation import (
    MAX_ID_LENGTH,
    check_email,
    check_field_id,
    check_length,
    check_prospect_id,
    lookup_text,
)

#: The request's keys, as the error names them.
KEY_FIELDS = ("email", "user_id", "lookup_value", "pardot_id")


@dataclass(frozen=True)
class ForgetTarget:
    """The keys of one Forget, checked and normalized."""

    email: str = ""
    pardot_id: int | None = None
    #: (lookup field, value) pairs: user_id's and lookup_value's.
    lookup_values: tuple[tuple[str, str], ...] = ()
    user_id: str = ""

    def identifiers(self) -> tuple[str, ...]:
        """What the suppression records for this person (before the deleted ids)."""
        found: list[str] = []
        if self.email:
            found.append(email_identifier(self.email))
        if self.pardot_id is not None:
            found.append(id_identifier(self.pardot_id))
        found.extend(field_identifier(f, v) for f, v in self.lookup_values)
        if self.user_id:
            found.append(f"user:{self.user_id}")
        return tuple(dict.fromkeys(found))


def email_identifier(email: str) -> str:
    return f"email:{email.lower()}"


def id_identifier(prospect_id: int) -> str:
    return f"id:{prospect_id}"


def field_identifier(lookup_field: str, value: str) -> str:
    return f"field:{lookup_field}:{value}"


def forget_target(
    *, email: str, user_id: str, lookup_value: str, pardot_id: str, settings: Settings
) -> ForgetTarget:
    """The request's keys, each checked as Identify checks it; at least one is needed
    (FORGET_NEEDS_A_KEY), and user_id / lookup_value need ``settings.lookup_field``."""
    if not any(v.strip() for v in (email, user_id, lookup_value, pardot_id)):
        raise InvalidArgument(
            "email",
            "(or user_id, lookup_value, pardot_id) is required: Forget must name the "
            "person to erase",
            reason=Reason.FORGET_NEEDS_A_KEY,
        )
    checked_email = ""
    if email.strip():
        checked_email = check_email(email, "email")
        checked_email = normalized(Event(traits={"email": checked_email}), settings).email
    prospect_id = check_prospect_id(pardot_id, "pardot_id") if pardot_id.strip() else None
    uid = check_length(user_id.strip(), "user_id", MAX_ID_LENGTH) if user_id.strip() else ""
    value = lookup_text(lookup_value, "lookup_value") if lookup_value.strip() else ""
    pairs: list[tuple[str, str]] = []
    if uid or value:
        if not settings.lookup_field:
            which = "user_id" if uid else "lookup_value"
            raise InvalidArgument(
                "settings.lookup_field",
                f"is required with {which}: it names the field the value is held in",
            )
        field = check_field_id(settings.lookup_field, "settings.lookup_field")
        pairs = [(field, v) for v in dict.fromkeys(x for x in (uid, value) if x)]
    return ForgetTarget(checked_email, prospect_id, tuple(pairs), uid)


def event_identifiers(event: Event, settings: Settings) -> tuple[str, ...]:
    """What an identify or track call carries that a suppression may name: its email,
    pardot.id, user_id, and the lookup field's value."""
    found: list[str] = []
    if event.email:
        found.append(email_identifier(event.email))
    if event.pardot_id.strip().isdigit():
        found.append(id_identifier(int(event.pardot_id.strip())))
    user_id = event.user_id.strip()
    if user_id:
        found.append(f"user:{user_id}")
    if settings.lookup_field:
        raw = (
            user_id
            if settings.use_user_id_as_lookup_value
            else event.traits.get(settings.lookup_field)
        )
        if isinstance(raw, (str, int)) and not isinstance(raw, bool) and str(raw).strip():
            found.append(field_identifier(settings.lookup_field, str(raw).strip()))
    return tuple(dict.fromkeys(found))
