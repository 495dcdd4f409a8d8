"""Contract: the fake decodes form bodies, query strings and path segments exactly as
``urllib.parse`` does (fakepardot/urlform.py only makes the common case cheaper)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakepardot.urlform import parse_form
from fakepardot.urlform import unquote_plus as fast_unquote_plus

# Text rich in what decoding cares about: escapes (good, short, bad hex), "+", "&",
# "=", backslashes (the fast path's own escape character) and non-ASCII.
_PIECES = st.sampled_from(
    ["%", "%4", "%41", "%e4", "%C3%A4", "%zz", "%5C", "%5Cx41", "\\", "\\x41", "+", "&", "=",
     "a", "Z", "9", "ä", "€", "%ff", "%FE%FF", "x", " ", "%2B", "%26", "%3D", "%%"]
)  # fmt: skip
_TEXT = st.one_of(st.text(), st.lists(_PIECES, max_size=30).map("".join))


@given(_TEXT)
def test_unquote_plus_matches_urllib(text: str) -> None:
    assert fast_unquote_plus(text) == unquote_plus(text)


@given(_TEXT)
def test_parse_form_matches_urllib(text: str) -> None:
    assert parse_form(text) == dict(parse_qsl(text, keep_blank_values=True))


@pytest.mark.parametrize(
    "text",
    ["", "&", "a", "a=", "=b", "a=1&a=2", "a&b=", "x=%", "x=%4", "x=100%25", "x=a%5Cn%41"],
)
def test_edge_forms_match_urllib(text: str) -> None:
    assert parse_form(text) == dict(parse_qsl(text, keep_blank_values=True))


def test_a_batch_body_round_trips() -> None:
    prospects = {
        f"p{i}+x@example.com": {"first_name": "Änne", "note": 'a "b" \\ c'} for i in range(50)
    }
    document = json.dumps({"prospects": prospects}, ensure_ascii=False)
    body = urlencode({"prospects": document, "format": "json"}, quote_via=quote)
    assert parse_form(body) == {"prospects": document, "format": "json"}
