"""Fixtures for the backfill tests: the session's fakepardot over real HTTP on
loopback (``fake``, reset around each test: tests/conftest.py), the service's
configuration aimed at it with a fresh state_dir, real ``prospect-sync`` processes
(stopped by their own handle), and the process's logging restored after in-process CLI
runs."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from fakepardot import FakePardot
from server.config import ServiceConfig
from support.service import config_for


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def config(fake: FakePardot, state_dir: Path) -> ServiceConfig:
    return config_for(fake, state_dir)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the process's logging (to the stderr of the moment); put
    back what was there so later tests do not write to a closed capture."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


COMMAND = Path(sys.executable).with_name("prospect-sync")
#: Generous: only a broken run ever waits this long.
WAIT_S = 20.0

Spawn = Callable[[list[str]], "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts ``prospect-sync`` with stdout and stderr piped; whatever is still running
    at the end of the test is killed by its own handle."""
    started: list[subprocess.Popen[str]] = []

    def run(args: list[str]) -> subprocess.Popen[str]:
        assert COMMAND.exists(), f"{COMMAND} is missing: run `make venv`"
        process = subprocess.Popen(
            [str(COMMAND), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT_S)
