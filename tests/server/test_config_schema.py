"""The configuration schema's promises: each setting is declared once (default, rule,
doc line), README.md's settings tables say what the declarations say, and one start
reports every problem of a file, down to the operator's own command.

The README rows are rendered here from the declarations and compared, so a setting
added without its row, a row left behind by a removed setting, or a default or meaning
that drifted fails with the row to paste."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clients.config import CONNECTION_SETTINGS, ConnectionConfig
from clients.config.schema import Setting, problems
from server.config import REDIS_SETTINGS, SERVER_SETTINGS, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMMAND = Path(sys.executable).with_name("prospect-sync")

#: Each README table: its header's first cell, and the settings it lists.
TABLES: dict[str, dict[str, Setting]] = {
    "`[server]` key": SERVER_SETTINGS,
    "`[connections.<name>]` key": CONNECTION_SETTINGS,
    "`[redis]` key": REDIS_SETTINGS,
}


def default_cell(default: object) -> str:
    """A default as TOML writes it; "—" where there is none to write."""
    if default is None or default == "":
        return "—"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    if isinstance(default, str | Path):
        return f'`"{default}"`'
    return f"`{default}`"


def rendered_row(name: str, declared: Setting) -> str:
    keys = [name, *((f"{name}_env", f"{name}_file") if declared.secret else ())]
    key_cell = ", ".join(f"`{key}`" for key in keys)
    return f"| {key_cell} | {default_cell(declared.default)} | {declared.doc} |"


def readme_tables() -> dict[str, dict[str, str]]:
    """The rows of each table in README.md's ``## Configuration``, by header and by the
    setting each row names first."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, dict[str, str]] = {}
    rows: dict[str, str] | None = None
    for line in section.splitlines():
        if not line.startswith("|"):
            rows = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if rows is None:
            rows = tables.setdefault(cells[0], {})
        elif not line.startswith("| ---"):
            name = cells[0].split("`")[1]
            assert name not in rows, f"README.md names {name!r} twice in one table"
            rows[name] = line
    return tables


@pytest.mark.parametrize("header", list(TABLES))
def test_every_setting_has_its_row_and_every_row_a_setting(header: str) -> None:
    documented = readme_tables().get(header)
    assert documented is not None, f"README.md's ## Configuration lacks the table {header}"
    declared = TABLES[header]
    missing = [rendered_row(n, s) for n, s in declared.items() if n not in documented]
    stale = sorted(set(documented) - set(declared))
    assert not missing, f"add to README.md's {header} table:\n" + "\n".join(missing)
    assert not stale, f"README.md's {header} table names settings the schema lacks: {stale}"


@pytest.mark.parametrize(
    ("header", "name"),
    [(header, name) for header, declared in TABLES.items() for name in declared],
)
def test_each_row_says_what_the_declaration_says(header: str, name: str) -> None:
    row = readme_tables().get(header, {}).get(name)
    if row is None:
        pytest.skip("no row: the set-difference test names it")
    expected = rendered_row(name, TABLES[header][name])
    assert row == expected, f"in README.md's {header} table, replace\n{row}\nwith\n{expected}"


@pytest.mark.parametrize(
    ("name", "declared"),
    [*SERVER_SETTINGS.items(), *CONNECTION_SETTINGS.items()],
    ids=[*(f"server.{n}" for n in SERVER_SETTINGS), *CONNECTION_SETTINGS],
)
def test_each_declaration_has_a_one_line_doc(name: str, declared: Setting) -> None:
    assert declared.doc.strip(), f"{name} has no doc line"
    assert "|" not in declared.doc and "\n" not in declared.doc  # it is a table cell


def test_the_defaults_pass_their_own_rules() -> None:
    # Rules across settings aside: a connection's default credentials are missing.
    assert problems(ServerConfig(), given=frozenset()) == []
    assert problems(ConnectionConfig(name="default"), given=frozenset()) == []


def test_secrets_are_declared_as_such_and_kept_out_of_repr() -> None:
    secrets = {n for n, s in CONNECTION_SETTINGS.items() if s.secret}
    assert secrets == {"client_secret", "refresh_token", "password", "user_key"}
    values = {name: f"value-of-{name}" for name in secrets}
    config = ConnectionConfig(name="default", **values)
    assert set(config.secrets) == set(values.values())
    for value in values.values():
        assert value not in repr(config)


# --- one start, every problem --------------------------------------------------------

#: Three settings only a rule of the schema refuses (they are the right type), each in
#: a different part of the connection.
THREE_BAD = """
[connections.default]
business_unit_id = "0Uv000000000001CAA"
client_id = "client-id"
client_secret = "cs-3f1e9a-very-secret"
refresh_token = "rt-77aa01-very-secret"
backoff_base_s = -1
auth_failure_cooldown_s = -1
unconfirmed_create_hold_s = -1
"""
THREE_PROBLEMS = [
    f"connections.default.{key}: must not be negative (0 or more seconds)"
    for key in ("backoff_base_s", "auth_failure_cooldown_s", "unconfirmed_create_hold_s")
]


def test_the_command_reports_all_three_bad_keys_in_one_start(tmp_path: Path) -> None:
    assert COMMAND.exists(), f"{COMMAND} is missing: run `make venv`"
    config = tmp_path / "service.toml"
    config.write_text(textwrap.dedent(THREE_BAD))
    config.chmod(0o600)
    done = subprocess.run(
        [str(COMMAND), "serve", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("prospect-sync: ")
    for problem in THREE_PROBLEMS:
        assert problem in done.stderr
    assert "very-secret" not in done.stderr and "Traceback" not in done.stderr
