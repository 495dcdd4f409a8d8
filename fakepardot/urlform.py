"""Decoding ``application/x-www-form-urlencoded`` text (form bodies, query strings and
path segments): the same answers as ``urllib.parse``, at C speed on the common case.

Why: a batch call carries up to 50 prospects as JSON inside one form value, so a
third of its characters are ``%XX`` escapes, and ``urllib.parse.unquote`` walks them in
Python: parsing one 10-prospect body cost the fake more CPU than all of the batch's
prospect writes. Here an escape-rich value is decoded by the ``unicode_escape`` codec
(``%XX`` → ``\\xXX``), which is only sound when the value is ASCII and holds no
backslash of its own; anything else (and any malformed escape) takes ``urllib``'s
path, so every input decodes exactly as ``urllib.parse`` would decode it.
Never raises on malformed input, as ``urllib`` does not.
"""

from __future__ import annotations

from urllib.parse import unquote


def parse_form(text: str) -> dict[str, str]:
    """``dict(urllib.parse.parse_qsl(text, keep_blank_values=True))``: a name without
    ``=`` has the value ""; the last of repeated names wins."""
    form: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            form[unquote_plus(name)] = unquote_plus(value)
    return form


def unquote_plus(text: str) -> str:
    """``urllib.parse.unquote_plus(text)``: ``+`` is a space, ``%XX`` a UTF-8 byte
    (invalid UTF-8 becomes U+FFFD)."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    if text.isascii() and "\\" not in text:
        try:
            raw = text.replace("%", "\\x").encode("ascii").decode("unicode_escape")
        except UnicodeDecodeError:  # a "%" not followed by two hex digits
            return unquote(text)
        return raw.encode("latin-1").decode("utf-8", "replace")
    return unquote(text)
