"""Checks on caller input that must pass before any Pardot call is made.

Each check raises ``InvalidArgument`` naming the request field and what is wrong, so a
caller can fix the request without reading our logs. Nothing here talks to Pardot.

The size limits below are the service's own (not Pardot's): they bound what one request
can make us store, log or send to Pardot. They live here, in one place; the server's
message size limit (``server.max_message_bytes``) bounds the request as a whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from email_validator import EmailNotValidError, validate_email

from strategies.core import pardot_facts as facts
from strategies.core.errors import InvalidArgument
from strategies.core.model import Event
from strategies.core.pardot_facts import CUSTOM_FIELD_ID_PATTERN, FID_PATTERN

#: Pardot caps email at 255 characters (PARDOT_API.md, "Error codes", err 4).
MAX_EMAIL_LENGTH = facts.MAX_EMAIL_LENGTH
PROSPECT_ID = re.compile(r"[1-9][0-9]{0,18}")
CAMPAIGN_ID = re.compile(r"[0-9]{1,18}")

#: Top-level traits one request may carry (standard fields plus custom fields).
MAX_TRAITS = 200
#: One field value, as sent to Pardot, in UTF-8 bytes (Pardot's largest field, a text
#: area, holds 65,535 characters; one value never needs more than this).
MAX_VALUE_BYTES = 64 * 1024
#: ``message_id`` is an idempotency key, stored for a day: a UUID needs 36 characters.
MAX_MESSAGE_ID_LENGTH = 255


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
    runs without outside network and Pardot does not check it either. The value is sent
    as given, not normalised: Pardot matches emails as it stored them. Every path that
    sends an email to Pardot passes here (the strategies, track, the snippet, the
    backfill).
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
    if not CUSTOM_FIELD_ID_PATTERN.fullmatch(name):
        raise InvalidArgument(
            field,
            f"is not a Pardot field id ({name!r}): use a letter, then letters, digits or _",
        )
    return name


def check_prospect_id(value: str, field: str) -> int:
    if not PROSPECT_ID.fullmatch(value.strip()):
        raise InvalidArgument(
            field, f"must be a Pardot prospect id (a positive integer), not {value!r}"
        )
    return int(value)


def check_fid(value: str, field: str) -> str:
    fid = value.strip()
    if not FID_PATTERN.fullmatch(fid):
        raise InvalidArgument(
            field,
            f"must be a Salesforce Lead (00Q…) or Contact (003…) id of 15 or 18 characters, "
            f"not {value!r}",
        )
    return fid


def check_campaign_id(value: str) -> str:
    """A Pardot campaign id is an integer; "" means the account's default campaign."""
    if value and not CAMPAIGN_ID.fullmatch(value):
        raise InvalidArgument(
            "settings.campaign_id", f"must be a Pardot campaign id, not {value!r}"
        )
    return value


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
