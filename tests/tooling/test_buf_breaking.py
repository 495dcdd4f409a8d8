"""`make breaking` (the last step of `make lint`): the protos/ being linted against every
committed version since the per-language options were set. Each case is a throwaway git
repository holding a copy of protos/, never the repository under test: a renumbered
field fails whether it is uncommitted, in the newest commit, or under later commits, as
CI's fresh clone of main sees a change made of several commits; an added field passes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.make import IN_A_VENV, REPO, VENV

pytestmark = pytest.mark.skipif(
    not IN_A_VENV or shutil.which("git") is None, reason="needs git and the suite's venv (buf)"
)

PROTO = Path("protos/prospectsync/v1/prospect_sync.proto")
FIELD = "  string user_id = 2;\n"
BUF = f"BUF={VENV / 'bin' / 'buf'}"  # IdentifyRequest.user_id, and TrackRequest's too


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=60,
    )


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def breaking(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "breaking", BUF],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / PROTO
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose one commit is today's protos/ (the generated stubs left out)."""
    shutil.copytree(
        REPO / "protos",
        tmp_path / "protos",
        ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"),
    )
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "the contract")
    return tmp_path


def test_a_clean_tree_passes(repo: Path) -> None:
    done = breaking(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compatible with 1 committed version(s)" in done.stdout


def test_an_uncommitted_renumbered_field_fails(repo: Path) -> None:
    edit(repo, FIELD, "  string user_id = 20;\n")
    done = breaking(repo)
    assert done.returncode != 0
    assert '"user_id"' in done.stdout and "the contract" in done.stdout, done.stdout


def test_a_renumbered_field_in_an_earlier_commit_still_fails_on_a_clean_tree(repo: Path) -> None:
    edit(repo, FIELD, "  string user_id = 20;\n")
    commit(repo, "renumber user_id")
    edit(repo, "message TrackResponse {\n", "message TrackResponse {\n  string added = 99;\n")
    commit(repo, "an added field, after the break")
    (repo / "NOTES").write_text("not a proto change\n")
    commit(repo, "something else again")

    done = breaking(repo)

    assert done.returncode != 0
    assert "as of" in done.stdout and "the contract" in done.stdout, done.stdout


def test_an_added_field_passes(repo: Path) -> None:
    edit(repo, "message TrackResponse {\n", "message TrackResponse {\n  string added = 99;\n")
    commit(repo, "add a field")
    done = breaking(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compatible with 2 committed version(s)" in done.stdout
