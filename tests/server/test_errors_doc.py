"""docs/errors.md lists every ErrorInfo reason the code can report, and no other: a
reason added without its row (or a row left behind by a removed reason) fails here."""

from __future__ import annotations

import re
from pathlib import Path

from clients.errors import PARDOT_ERRORS, UNKNOWN_PARDOT_ERROR

ROOT = Path(__file__).resolve().parents[2]
ERRORS_DOC = ROOT / "docs" / "errors.md"
#: Where the service's errors are raised (the fake and the tests report none of ours).
SOURCES = ("server", "clients", "strategies")

#: ``reason="X"`` arguments and ``reason = "X"`` class attributes.
_REASON_IN_CODE = re.compile(r'\breason\s*=\s*"([A-Z][A-Z0-9_]*)"')
#: The first cell of a row of the reason table: | `X` | …
_REASON_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)


def reasons_in_code() -> set[str]:
    found = {rule.reason for rule in (*PARDOT_ERRORS.values(), UNKNOWN_PARDOT_ERROR)}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            found.update(_REASON_IN_CODE.findall(path.read_text(encoding="utf-8")))
    return found


def reasons_in_doc() -> list[str]:
    return _REASON_ROW.findall(ERRORS_DOC.read_text(encoding="utf-8"))


def test_the_scan_finds_reasons_of_every_kind() -> None:
    found = reasons_in_code()
    # From the err_code table, from class attributes and from keyword arguments.
    assert {"PARDOT_DAILY_LIMIT", "PARDOT_UNAVAILABLE", "UNKNOWN_CONNECTION"} <= found


def test_every_reason_in_the_code_has_a_row() -> None:
    missing = reasons_in_code() - set(reasons_in_doc())
    assert not missing, f"add rows to docs/errors.md for: {sorted(missing)}"


def test_every_row_is_a_reason_the_code_reports_once() -> None:
    rows = reasons_in_doc()
    assert len(rows) == len(set(rows)), "a reason has two rows"
    stale = set(rows) - reasons_in_code()
    assert not stale, f"docs/errors.md lists reasons no code reports: {sorted(stale)}"
