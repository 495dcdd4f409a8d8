"""The CSV is checked before any Pardot call: a bad header stops the tool and names
the column; a bad row is reported and the others go on."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.backfill.source import BadRow, CsvProblem, CsvRow, read_backfill_csv


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "users.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_rows_carry_their_line_in_the_file(tmp_path: Path) -> None:
    source = read_backfill_csv(
        write(tmp_path, "email,value\na@example.com,o-1\n\nb@example.com, o-2 \n")
    )
    assert source.value_column == "value"
    # The blank line 3 is no row; values are trimmed.
    assert source.rows == (CsvRow(2, "a@example.com", "o-1"), CsvRow(4, "b@example.com", "o-2"))
    assert source.bad_rows == ()
    assert source.total == 2


def test_user_id_column_and_either_order_and_a_spreadsheet_bom(tmp_path: Path) -> None:
    text = "\ufeffUser_ID , Email\r\nu-7,c@example.com\r\n"
    source = read_backfill_csv(write(tmp_path, text.encode("utf-8")))
    assert source.value_column == "user_id"
    assert source.rows == (CsvRow(2, "c@example.com", "u-7"),)


def test_bad_rows_are_reported_with_the_reason_and_the_rest_go_on(tmp_path: Path) -> None:
    text = (
        "email,value\n"
        "not-an-email,o-1\n"
        "a@example.com,\n"
        "b@example.com,o-2,extra\n"
        "c@example.com,o-3\n"
    )
    source = read_backfill_csv(write(tmp_path, text))
    assert source.rows == (CsvRow(5, "c@example.com", "o-3"),)
    lines = {bad.line: bad.reason for bad in source.bad_rows}
    assert set(lines) == {2, 3, 4}
    assert lines[2].startswith("email is not a valid email address")
    assert lines[3] == "value is empty"
    assert lines[4] == "has 3 columns; the header has 2"
    assert isinstance(source.bad_rows[0], BadRow)
    assert source.total == 4


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("email,org_id", "'org_id'"),
        ("mail,value", "'mail'"),
        ("value", "'email' is missing"),
        ("email", "'value' (or 'user_id') is missing"),
        ("email,value,user_id", "'user_id' is one too many"),
    ],
)
def test_a_bad_header_names_the_column(tmp_path: Path, header: str, named: str) -> None:
    with pytest.raises(CsvProblem) as caught:
        read_backfill_csv(write(tmp_path, f"{header}\na@example.com,o-1\n"))
    message = str(caught.value)
    assert named in message
    assert "line 1" in message and "email,value" in message


def test_an_empty_or_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(CsvProblem, match="empty"):
        read_backfill_csv(write(tmp_path, ""))
    with pytest.raises(CsvProblem, match="not UTF-8"):
        read_backfill_csv(write(tmp_path, b"email,value\n\xff\xfe,o\n"))
    with pytest.raises(CsvProblem, match="cannot read"):
        read_backfill_csv(tmp_path / "missing.csv")


def test_the_hash_follows_the_bytes(tmp_path: Path) -> None:
    first = read_backfill_csv(write(tmp_path, "email,value\na@example.com,o-1\n")).sha256
    again = read_backfill_csv(write(tmp_path, "email,value\na@example.com,o-1\n")).sha256
    edited = read_backfill_csv(write(tmp_path, "email,value\na@example.com,o-2\n")).sha256
    assert first == again != edited
