"""docs/errors.md lists every reason of the catalogue (``strategies.core.errors.Reason``)
and no other, each row as the catalogue says it: a reason added without its row, a row
left behind by a removed reason, or a row whose code, err codes or text drifted from the
catalogue fails here. The code can only report catalogued reasons (``reason=`` takes a
``Reason``, and mypy --strict holds every caller to it), so the page covers everything a
caller can see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategies.core.errors import PARDOT_ERRORS, Reason

ROOT = Path(__file__).resolve().parents[2]
ERRORS_DOC = ROOT / "docs" / "errors.md"

#: A row of the reason table: | `X` | code | err | text |
_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|.*\|$", re.MULTILINE)


def doc_rows() -> dict[str, str]:
    text = ERRORS_DOC.read_text(encoding="utf-8")
    rows = [(m.group(1), m.group(0)) for m in _ROW.finditer(text)]
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a reason has two rows in docs/errors.md"
    return dict(rows)


def err_codes(reason: Reason) -> str:
    """The err column: the err_codes the table maps to this reason, else the reason's own."""
    codes = sorted(code for code, rule in PARDOT_ERRORS.items() if rule.reason is reason)
    return ", ".join(map(str, codes)) or reason.err


def rendered_row(reason: Reason) -> str:
    codes = ", ".join(code.name for code in reason.codes)
    err = err_codes(reason)
    return f"| `{reason.name}` | {codes} | {err} | {reason.doc} |".replace("|  |", "| |")


def test_every_reason_has_a_row_and_every_row_a_reason() -> None:
    documented = set(doc_rows())
    catalogued = {reason.name for reason in Reason}
    missing = catalogued - documented
    stale = documented - catalogued
    assert not missing, f"add rows to docs/errors.md for: {sorted(missing)}"
    assert not stale, f"docs/errors.md lists reasons the catalogue lacks: {sorted(stale)}"


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.name)
def test_each_row_says_what_the_catalogue_says(reason: Reason) -> None:
    row = doc_rows().get(reason.name)
    if row is None:
        pytest.skip("no row: the set-difference test names it")
    assert row == rendered_row(reason)
