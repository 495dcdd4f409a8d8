"""``--commit REV``: the bench can run the service as committed at another revision, so
before/after figures come from exact commits, not from a checkout being edited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.processes import ROOT, ChildFailed, export_tree


def test_an_exported_commit_is_imported_ahead_of_this_checkout(tmp_path: Path) -> None:
    source = export_tree("HEAD", tmp_path / "tree")
    assert (source.root / "protos/prospectsync/v1/prospect_sync_pb2.py").is_file()
    where = subprocess.run(
        [sys.executable, "-c", "import server.cli, prospectsync.v1.prospect_sync_pb2 as pb; "
         "print(server.cli.__file__); print(pb.__file__)"],
        cwd=source.root,
        env=source.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    paths = [Path(line) for line in where.stdout.split()]
    assert all(path.is_relative_to(source.root) for path in paths), paths
    assert not any(path.is_relative_to(ROOT) for path in paths)


def test_an_unknown_revision_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(ChildFailed, match="no-such-revision-anywhere"):
        export_tree("no-such-revision-anywhere", tmp_path / "tree")
