"""Running the Makefile's targets from a test, as a person types them, with the
virtualenv the suite runs in (``make test PY=3.13`` runs them on .venv-3.13).

The venv's stamp is passed with ``-o`` (treated as old, never remade): a target under
test must not start a pip install halfway through the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
IN_A_VENV = sys.prefix != sys.base_prefix


def make_command(*args: str) -> list[str]:
    """``make --no-print-directory -C <repo> VENV=<this venv> -o <stamp> ARGS…``."""
    return [
        "make",
        "--no-print-directory",
        "-C",
        str(REPO),
        f"VENV={VENV}",
        "-o",
        f"{VENV}/.installed",
        *args,
    ]
