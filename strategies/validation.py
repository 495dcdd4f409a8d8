"""Checks on caller input that must pass before any Pardot call is made.

Each check raises ``InvalidArgument`` naming the request field and what is wrong, so a
caller can fix the request without reading our logs. Nothing here talks to Pardot.

The size limits below bound what one request can make us store, log or send to Pardot
(issue 12, item 6: a 1 MB user_id was written into Pardot and kept in the identity map;
a 1 MB event name was logged whole). Pardot's own limit wherever it has one (email: 255;
a field id: 100; a text-area value: 64 KiB), else the service's own. They live here, in
one place, and the proto's comments and docs/errors.md list them; the server's message
size limit (``server.max_message_bytes``) bounds the request as a whole. A value is
never quoted back whole: messages quote through ``errors.quoted``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from email_validator import EmailNotValidError, validate_email

from strategies.core import pardot_facts as facts
from strategies.core.errors import InvalidArgument, quoted
from strategies.core.model import Event
from strategies.core.pardot_facts import CUSTOM_FIELD_ID_PATTERN, FID_PATTERN, is_pardot_parameter

#: Pardot caps email at 255 characters (PARDOT_API.md, "Error codes", err 4).
MAX_EMAIL_LENGTH = facts.MAX_EMAIL_LENGTH
PROSPECT_ID = re.compile(r"[1-9][0-9]{0,18}")
CAMPAIGN_ID = re.compile(r"[0-9]{1,18}")

#: Top-level traits one request may carry (standard fields plus custom fields).
MAX_TRAITS = 200
#: One field value, as sent to Pardot, in UTF-8 bytes (Pardot's largest field, a text
#: area, holds 65,535 characters; one value never needs more than this).
MAX_VALUE_BYTES = 64 * 1024
#: Values of one multi-value custom field (a trait that is a list): a checkbox or
#: multi-select holds one value per choice it offers, and Pardot's forms offer dozens,
#: not thousands; each value is bounded by :data:`MAX_VALUE_BYTES` too.
MAX_FIELD_VALUES = 100
#: ``message_id`` is an idempotency key, stored for a day: a UUID needs 36 characters.
MAX_MESSAGE_ID_LENGTH = 255
#: ``user_id``, ``anonymous_id`` and a lookup value: identifiers, kept in the identity map
#: and (a lookup value, or the user id under ``use_user_id_as_lookup_value``) written into
#: a Pardot text custom field, which holds 255 characters (Salesforce's text field).
MAX_ID_LENGTH = 255
#: A track event's name: it selects ``settings.track_mappings[event]``, is logged and (with
#: ``message_id``) stored for a day. Segment's own names are short ("Order Completed").
MAX_EVENT_NAME_LENGTH = 255
#: The name of one entry of ``traits``, ``context`` or ``properties`` (at any depth), and
#: a track mapping's property path. A trait that becomes a custom field is also a Pardot
#: field id (``CUSTOM_FIELD_ID_PATTERN``: at most 100 characters).
MAX_KEY_LENGTH = 255
#: A name the settings give (``connection``, ``strategy``, ``account_id``, an external
#: activity's extension or type): configured or registered names, all short.
MAX_NAME_LENGTH = 100
#: ``page_url`` of GetTrackingSnippet: the longest request line common servers accept.
MAX_URL_LENGTH = 8192


def require_email(event: Event, purpose: str) -> str:
    """The event's email trait, checked; ``purpose`` completes "… is required …"."""
    field = f"{event.traits_path}.email"
    if event.traits.get("email") in (None, ""):
        raise InvalidArgument(field, f"is required {purpose}")
    return check_email(event.traits.get("email"), field)


def check_email(value: object, field: str) -> str:
    """Return the email as the caller sent it (trimmed) once Pardot would take it.

    Two checks, both before anything is sent: email-validator for the RFC work (it
    refuses ``a@b.com/../../login``, which Pardot's pattern lets through), then Pardot's
    own rule (``pardot_facts.EMAIL_PATTERN``, at most 255 characters; a write that
    breaks it is err 4), whose failure is named part by part ("its top-level domain is
    longer than Pardot's 13 characters"). Deliverability (DNS) is not checked: the service
    runs without outside network and Pardot does not check it either. The value is
    returned as given (trimmed): the case folding ``settings.normalize_email`` asks for
    happens before, in ``strategies.emails``, on every path. Every path that sends an
    email to Pardot passes here (the strategies, track, the snippet, the backfill).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field, "must be a non-empty email address")
    email = value.strip()
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidArgument(
            field, f"is {len(email)} characters long; Pardot takes at most {MAX_EMAIL_LENGTH}"
        )
    problem = _email_problem(email)
    if problem is not None:
        raise InvalidArgument(field, problem)
    return email


@functools.lru_cache(maxsize=4096)
def _email_problem(email: str) -> str | None:
    """What is wrong with ``email`` (a description completing "<field> …"), or None.
    Remembered for the latest addresses: the checks cost ~18 µs, the answer depends on
    the text alone, a Track call makes it twice (the event's identity, then the
    strategy), and callers identify the same people again and again."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"is not a valid email address: {exc}"
    if not facts.EMAIL_PATTERN.fullmatch(email):
        return f"is not an email address Pardot accepts: {_pardot_rule_broken(email)}"
    return None


def _pardot_rule_broken(email: str) -> str:
    """Which part of Pardot's rule ``email`` breaks (it does not match the pattern)."""
    if " " in email:
        return "it contains a space"
    if email.count("@") != 1:
        return "it must hold exactly one @" if "@" in email else "it has no @"
    local, _, domain = email.partition("@")
    if not local:
        return "it has nothing before the @"
    if len(local) > facts.EMAIL_LOCAL_MAX:
        return (
            f"its part before the @ has {len(local)} characters, more than Pardot's "
            f"{facts.EMAIL_LOCAL_MAX}"
        )
    host, dot, tld = domain.rpartition(".")
    if not dot:
        return "its domain has no dot (Pardot needs a top-level domain such as .com)"
    if not host:
        return "it has nothing between the @ and the domain's dot"
    if len(host) > facts.EMAIL_DOMAIN_MAX:
        return f"its domain is longer than Pardot's {facts.EMAIL_DOMAIN_MAX} characters"
    if len(tld) < facts.EMAIL_TLD_MIN:
        return f"its top-level domain is shorter than Pardot's {facts.EMAIL_TLD_MIN} characters"
    if len(tld) > facts.EMAIL_TLD_MAX:
        return f"its top-level domain is longer than Pardot's {facts.EMAIL_TLD_MAX} characters"
    return "it does not match Pardot's email rule"


def check_field_id(name: str, field: str) -> str:
    """``name`` once it can only be a prospect field: a Pardot field id, and none of the
    parameters Pardot reads from a request (``format``, credentials, ``prospects``, …:
    ``pardot_facts.is_pardot_parameter``), which a write would send next to them. Every
    name that becomes a field passes here: custom traits on every path and version,
    ``settings.lookup_field`` and track mappings' fields."""
    if not CUSTOM_FIELD_ID_PATTERN.fullmatch(name):
        raise InvalidArgument(
            field,
            f"is not a Pardot field id ({quoted(name)}): use a letter, then letters, digits "
            "or _, at most 100 characters",
        )
    if is_pardot_parameter(name):
        raise InvalidArgument(
            field,
            f"is a parameter Pardot reads from the request ({quoted(name)}), not a prospect "
            "field: rename it",
        )
    return name


def check_prospect_id(value: str, field: str) -> int:
    if not PROSPECT_ID.fullmatch(value.strip()):
        raise InvalidArgument(
            field, f"must be a Pardot prospect id (a positive integer), not {quoted(value)}"
        )
    return int(value)


def check_fid(value: str, field: str) -> str:
    fid = value.strip()
    if not FID_PATTERN.fullmatch(fid):
        raise InvalidArgument(
            field,
            f"must be a Salesforce Lead (00Q…) or Contact (003…) id of 15 or 18 characters, "
            f"not {quoted(value)}",
        )
    return fid


def check_campaign_id(value: str) -> str:
    """A Pardot campaign id is an integer; "" means the account's default campaign."""
    if value and not CAMPAIGN_ID.fullmatch(value):
        raise InvalidArgument(
            "settings.campaign_id", f"must be a Pardot campaign id, not {quoted(value)}"
        )
    return value


def check_length(value: str, field: str, limit: int) -> str:
    """``value`` once it holds at most ``limit`` characters (never quoted back)."""
    if len(value) > limit:
        raise InvalidArgument(
            field, f"is {len(value):,} characters long; at most {limit:,} are accepted"
        )
    return value


def lookup_text(value: str, field: str) -> str:
    """A lookup value as it is matched and stored: trimmed of surrounding whitespace
    (issue 12, item 13: " X" and "X" made two prospects, though a person means one),
    never empty, at most :data:`MAX_ID_LENGTH` characters. Whitespace inside is kept."""
    text = value.strip()
    if not text:
        raise InvalidArgument(field, "is required: it is the lookup value (not only spaces)")
    return check_length(text, field, MAX_ID_LENGTH)


def check_trait_count(traits: Mapping[str, object], path: str) -> None:
    if len(traits) > MAX_TRAITS:
        raise InvalidArgument(
            path, f"has {len(traits)} entries; at most {MAX_TRAITS} traits are accepted per call"
        )


def check_value_size(text: str, field: str) -> str:
    """``text`` once it fits in :data:`MAX_VALUE_BYTES` (never quoted back: it is big)."""
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise InvalidArgument(field, f"is longer than {MAX_VALUE_BYTES} bytes (UTF-8)")
    return text


def check_message_id(value: str) -> str:
    if len(value) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidArgument("message_id", f"is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    return value
