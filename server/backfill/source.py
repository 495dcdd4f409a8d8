"""The backfill tool's input: a CSV of (email, lookup value) rows, checked before any
Pardot call.

A header problem stops the tool (nothing sensible can be done with the file); a bad
row is reported and the other rows go on. The file's SHA-256 is the identity of the
work (``server.backfill.journal``), so the same bytes resume the same job and an edited
file starts a new one.

Each email is normalized as the service normalizes a call's
(``strategies.emails.normalize_email`` under the request settings' defaults, or the
backfill's ``--no-normalize-email`` / ``--normalize-email-local-part``): the identity
map and the reads must see the one spelling every identify uses, or a row would seed
an entry no call finds (issue 15, "Email case").

This module never talks to Pardot and never prints: it returns rows and problems.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from strategies.core.errors import InvalidArgument
from strategies.core.model import Settings
from strategies.emails import normalize_email
from strategies.fields import format_value
from strategies.validation import check_email

EMAIL_COLUMN = "email"
#: The lookup value's column. ``user_id`` is the same thing named for the setting
#: ``use_user_id_as_lookup_value`` (UserIdLookupV4): the value goes into the field as is.
VALUE_COLUMNS = ("value", "user_id")


class CsvProblem(Exception):
    """The file cannot be used at all (unreadable, not UTF-8, a bad header)."""


@dataclass(frozen=True)
class CsvRow:
    """A usable row. ``line`` is its line in the file (the header is line 1)."""

    line: int
    email: str
    value: str


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass(frozen=True)
class BackfillFile:
    path: Path
    sha256: str
    value_column: str
    rows: tuple[CsvRow, ...]
    bad_rows: tuple[BadRow, ...]

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.bad_rows)


def read_backfill_csv(path: Path, settings: Settings | None = None) -> BackfillFile:
    """Reads and checks the whole file (its hash needs every byte anyway); emails come
    out normalized as ``settings`` (default: the request settings' defaults) ask."""
    settings = settings or Settings()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CsvProblem(f"--from {path}: cannot read the file ({error.strerror})") from None
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not a column
    except UnicodeDecodeError:
        raise CsvProblem(f"--from {path}: the file is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvProblem(f"--from {path}: the file is empty; {_expected()}")
        value_column, email_at, value_at = _check_header(path, header)
        rows: list[CsvRow] = []
        bad: list[BadRow] = []
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # a blank line is not a row
            row = _row(line, record, value_column, email_at, value_at, settings)
            if isinstance(row, CsvRow):
                rows.append(row)
            else:
                bad.append(row)
    except csv.Error as error:
        problem = f"--from {path}: line {reader.line_num} is not valid CSV ({error})"
        raise CsvProblem(problem) from None
    return BackfillFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        value_column=value_column,
        rows=tuple(rows),
        bad_rows=tuple(bad),
    )


def _expected() -> str:
    value, user_id = VALUE_COLUMNS
    return f"the header must be {EMAIL_COLUMN},{value} (or {EMAIL_COLUMN},{user_id})"


def _check_header(path: Path, header: list[str]) -> tuple[str, int, int]:
    """The value column's name and where the two columns are (either order)."""
    columns = [name.strip().lower() for name in header]
    where = f"--from {path}: line 1"
    unknown = [name for name in columns if name not in (EMAIL_COLUMN, *VALUE_COLUMNS)]
    if unknown:
        raise CsvProblem(f"{where}: unknown column {unknown[0]!r}; {_expected()}")
    if EMAIL_COLUMN not in columns:
        raise CsvProblem(f"{where}: the column {EMAIL_COLUMN!r} is missing; {_expected()}")
    values = [name for name in columns if name in VALUE_COLUMNS]
    if not values:
        raise CsvProblem(
            f"{where}: the column {VALUE_COLUMNS[0]!r} (or {VALUE_COLUMNS[1]!r}) is missing; "
            f"{_expected()}"
        )
    if len(values) > 1 or columns.count(EMAIL_COLUMN) > 1:
        repeated = values[1] if len(values) > 1 else EMAIL_COLUMN
        raise CsvProblem(f"{where}: the column {repeated!r} is one too many; {_expected()}")
    return values[0], columns.index(EMAIL_COLUMN), columns.index(values[0])


def _row(
    line: int,
    record: list[str],
    value_column: str,
    email_at: int,
    value_at: int,
    settings: Settings,
) -> CsvRow | BadRow:
    if len(record) != 2:
        return BadRow(line, f"has {len(record)} columns; the header has 2")
    raw_email, raw_value = record[email_at], record[value_at]
    try:
        email = check_email(normalize_email(raw_email, settings), EMAIL_COLUMN)
    except InvalidArgument as error:
        return BadRow(line, error.message)
    value = raw_value.strip()
    if not value:
        return BadRow(line, f"{value_column} is empty")
    try:
        # The strategies' own rendering of a lookup value, with its checks.
        value = format_value(value, value_column)
    except InvalidArgument as error:
        return BadRow(line, error.message)
    return CsvRow(line, email, value)
