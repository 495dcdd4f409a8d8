"""One email, one prospect: the email as every path of a call uses it (issue 15,
"Email case").

Pardot matches emails case-sensitively (v5's ``upsertLatestByEmail``; Segment's Pardot
destination warns that it "will create multiple prospects for casing differences"), so
"Ann@Example.COM" and "Ann@example.com" become two prospects. A domain is
case-insensitive everywhere (RFC 4343), so ``settings.normalize_email`` (the default)
lower-cases it. A local part may be case-sensitive at the person's mail server (RFC 5321
§2.4), so only ``settings.normalize_email_local_part`` folds it too.

Only the ASCII letters A-Z are folded. That is exactly DNS's case rule; for the rest of
Unicode, which characters name the same domain is IDNA's mapping (UTS #46), not
``str.lower`` (which turns "İ" into two code points): an internationalized domain keeps
its other characters as sent, and two spellings of it stay two emails, as they are to
Pardot.

The servicer normalizes once, before the strategy, the identity map, the suppression
check and the writes see the event, so the v3 path (``upsert/email/<email>``), the form
field and the identity key all carry the one value. The identity map's email keys are
case-insensitive already (``clients.state.identity``): normalizing never splits what it
joined. No warning is added when an email changes: it is the documented default, the
response's ``prospect.email`` shows the value written, and a warning on every mixed-case
call would bury the warnings a caller must act on. Nothing here validates: a value that
is not an email is passed on for ``strategies.validation.check_email`` to name.
"""

from __future__ import annotations

from dataclasses import replace

from strategies.core.model import Event, Settings

#: A-Z → a-z and nothing else (see the module docstring).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize_email(email: str, settings: Settings) -> str:
    """``email`` (trimmed) as ``settings`` ask: its domain's ASCII letters lower-cased
    with ``normalize_email``, and its local part's too with
    ``normalize_email_local_part``; as sent (trimmed) with ``normalize_email`` off. A
    value without an ``@`` is returned trimmed, for the email check to refuse."""
    text = email.strip()
    if not settings.normalize_email:
        return text
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    if settings.normalize_email_local_part:
        local = local.translate(_ASCII_LOWER)
    return f"{local}@{domain.translate(_ASCII_LOWER)}"


def normalized(event: Event, settings: Settings) -> Event:
    """``event`` with its email as ``settings`` ask (the identity map, the strategies,
    the writes and the suppression check all see this one). The same event when its
    email needs no change, or is absent or not a string (the strategy says what is
    wrong with it)."""
    email = event.traits.get("email")
    if not isinstance(email, str):
        return event
    wanted = normalize_email(email, settings)
    if wanted == email:
        return event
    return replace(event, traits={**event.traits, "email": wanted})
