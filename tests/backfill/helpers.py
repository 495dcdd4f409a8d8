"""Helpers for the backfill tests: CSV and TOML files, and what the fake saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakepardot import DEMO, FakePardot
from support.service import FAST

#: The fake's account behind the "default" (v4) connection.
V4 = "v4"


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "email,value") -> Path:
    lines = [header, *(f"{email},{value}" for email, value in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_toml(tmp_path: Path, fake: FakePardot, state_dir: Path, **extra: Any) -> Path:
    """The same v4 connection as ``config_for``, as an operator's TOML file."""
    settings = {**FAST, **extra}
    tuning = "\n".join(f"{key} = {value}" for key, value in settings.items())
    path = tmp_path / "service.toml"
    path.write_text(
        f"""
[server]
state_dir = "{state_dir}"

[connections.default]
pardot_url = "{fake.url}"
api_version = 4
auth = "oauth"
business_unit_id = "{DEMO.business_unit_v4}"
token_url = "{fake.token_url}"
grant_type = "refresh_token"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
refresh_token = "{DEMO.refresh_token}"
{tuning}
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def prospect_reads(fake: FakePardot) -> list[str]:
    """The emails the fake was asked to read, in order."""
    marker = "/do/read/email/"
    return [c.path.split(marker, 1)[1] for c in fake.state.calls if marker in c.path]


def prospect_writes(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if c.path.startswith("/api/") and c.method == "POST"]


def org_ids(fake: FakePardot) -> dict[int, str | None]:
    return {p["id"]: p.get("org_id") for p in fake.state.prospects(V4)}
