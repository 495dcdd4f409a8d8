"""``prospect-sync backfill`` as an operator runs it: the summary, the exit codes, a
bad header, Ctrl-C and the resume — in-process through ``main`` and as a real
process (every wait bounded)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakepardot import DEMO, FakePardot
from server.cli import main

from .conftest import WAIT_S, Spawn
from .helpers import V4, org_ids, prospect_reads, write_csv, write_toml


def test_the_summary_says_what_happened_and_conflicts_exit_1(
    fake: FakePardot, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.state.add_prospect(V4, email="bill@segment.com")
    fake.state.add_prospect(V4, email="carol@example.com", org_id="o-other")
    source = write_csv(
        tmp_path / "users.csv",
        [("bill@segment.com", "1sf324fd53"), ("carol@example.com", "o-carol"), ("x", "o-x")],
    )
    config = write_toml(tmp_path, fake, state_dir)
    args = ["backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source)]
    assert main(args) == 1

    out = capsys.readouterr().out
    assert "Backfill of org_id on connection 'default'" in out
    assert summary_line(out, "set") == 1
    assert summary_line(out, "conflicts") == 1
    assert summary_line(out, "invalid") == 1
    assert summary_line(out, "not found") == 0
    assert "line 3: carol@example.com 'o-carol': prospect" in out and "holds 'o-other'" in out
    assert "line 4: email is not a valid email address" in out

    # Run again: the set row comes from the journal; the conflict is checked again,
    # and once settled in Pardot it is set.
    [carol] = [p["id"] for p in fake.state.prospects(V4) if p["email"] == "carol@example.com"]
    fake.state.delete_prospect(V4, carol)
    fake.state.add_prospect(V4, email="carol@example.com")
    fake.state.calls.clear()
    assert main(args) == 1  # the invalid row is still in the file
    again = capsys.readouterr().out
    assert "1 row was finished by an earlier run and skipped" in again
    assert summary_line(again, "set") == 2 and summary_line(again, "conflicts") == 0
    assert prospect_reads(fake) == ["carol@example.com"]


def test_everything_settled_exits_0_and_a_dry_run_says_would(
    fake: FakePardot, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.state.add_prospect(V4, email="bill@segment.com")
    source = write_csv(tmp_path / "users.csv", [("bill@segment.com", "1sf324fd53")])
    config = write_toml(tmp_path, fake, state_dir)
    args = ["backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source)]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert summary_line(out, "would set") == 1
    assert "Nothing was written" in out
    assert list(org_ids(fake).values()) == [None]

    assert main(args) == 0
    assert summary_line(capsys.readouterr().out, "set") == 1
    assert list(org_ids(fake).values()) == ["1sf324fd53"]


def test_a_bad_header_is_exit_2_naming_the_column(
    fake: FakePardot, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "users.csv"
    source.write_text("email,org_id\nbill@segment.com,1sf324fd53\n")
    config = write_toml(tmp_path, fake, state_dir)
    code = main(
        ["backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("prospect-sync: --from ") and err.count("\n") == 1
    assert "unknown column 'org_id'" in err and "email,value" in err
    assert [c for c in fake.state.calls if c.path.startswith("/api/")] == []


def test_a_bad_config_is_exit_2_without_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[connections.default]\napi_version = 6\nclient_secret = "hunter2-secret"\n')
    source = write_csv(tmp_path / "users.csv", [("a@example.com", "o-a")])
    code = main(
        ["backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "connections.default.api_version: must be 3, 4 or 5" in err
    assert "hunter2-secret" not in err


def test_the_real_command_runs_and_resumes_after_ctrl_c(
    fake: FakePardot, state_dir: Path, tmp_path: Path, spawn: Spawn
) -> None:
    rows = [(f"u{n}@example.com", f"o-{n}") for n in range(40)]
    for email, _ in rows:
        fake.state.add_prospect(V4, email=email)
    source = write_csv(tmp_path / "users.csv", rows)
    config = write_toml(tmp_path, fake, state_dir)
    args = [
        "backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source),
        "--concurrency", "1",
    ]  # fmt: skip
    fake.state.latency_s = 0.05  # slow enough to be stopped midway

    first = spawn(args)
    wait_until(lambda: len(prospect_reads(fake)) >= 2, first)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=WAIT_S)
    assert first.returncode == 3, err
    assert "Stopped: interrupted" in out and "run the same command again" in out.lower()
    finished = {p["email"] for p in fake.state.prospects(V4) if p.get("org_id")}
    assert 0 < len(finished) < len(rows)

    fake.state.latency_s = 0.0
    fake.state.calls.clear()
    second = spawn(args)
    out, err = second.communicate(timeout=WAIT_S)
    assert second.returncode == 0, err
    read_again = set(prospect_reads(fake))
    assert read_again.isdisjoint(finished)
    assert read_again | finished == {email for email, _ in rows}
    assert f"{len(finished)} rows were finished by an earlier run" in out
    for secret in (DEMO.client_secret, DEMO.refresh_token):
        assert secret not in out + err


def test_the_real_command_rejects_a_bad_header(
    fake: FakePardot, state_dir: Path, tmp_path: Path, spawn: Spawn
) -> None:
    source = tmp_path / "users.csv"
    source.write_text("mail,value\na@example.com,o-a\n")
    config = write_toml(tmp_path, fake, state_dir)
    done = spawn(
        ["backfill", "--config", str(config), "--lookup-field", "org_id", "--from", str(source)]
    )
    out, err = done.communicate(timeout=WAIT_S)
    assert done.returncode == 2
    assert "unknown column 'mail'" in err and "Traceback" not in err
    assert out == ""


def summary_line(out: str, label: str) -> int:
    """The count on the summary line that starts with ``label``."""
    for line in out.splitlines():
        words = line.strip()
        if words.startswith(label + " ") and words[len(label) :].split()[0].isdigit():
            return int(words[len(label) :].split()[0])
    raise AssertionError(f"no {label!r} line in:\n{out}")


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"exited early ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {WAIT_S}s")
        time.sleep(0.01)
