"""The docs state each guarantee with the test that holds it (docs/failure-modes.md,
docs/security.md, …): a renamed or deleted test must not leave a guarantee pointing at
nothing. Every ``tests/<path>.py::<name>`` the docs and the README mention names a test
function (or class) that exists in that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in ast.walk(tree) if isinstance(node, kinds)}


def test_every_test_the_docs_name_exists() -> None:
    references = {
        (doc.relative_to(ROOT).as_posix(), match.group(1), match.group(2))
        for doc in documents()
        for match in REFERENCE.finditer(doc.read_text(encoding="utf-8"))
    }
    assert len(references) > 40  # the guarantees of failure-modes.md and security.md
    names: dict[str, set[str]] = {}
    dangling = []
    for doc, file, name in sorted(references):
        path = ROOT / file
        if file not in names:
            names[file] = defined_names(path) if path.is_file() else set()
        if name not in names[file]:
            dangling.append(f"{doc}: {file}::{name}")
    assert not dangling, "the docs name tests that do not exist:\n" + "\n".join(dangling)
