"""Fixtures shared by every test folder: one fakepardot for the whole session, served
over real HTTP on 127.0.0.1:<free port> in its own thread, and a fresh view of it per
test.

- ``fake_server``: the running fake, as it is (session-scoped). Request it only where
  a broader-scoped fixture needs the fake; such a test resets the state itself.
- ``fake``: the same fake, reset to a fresh one (default switches, demo accounts, no
  prospects, tokens, faults or recorded calls) before the test, and again after it so
  that no switch a test flips outlives it.

The folders' conftests keep their own names for these as thin aliases.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakepardot import FakePardot


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakePardot]:
    with FakePardot() as running:
        yield running


@pytest.fixture
def fake(fake_server: FakePardot) -> Iterator[FakePardot]:
    fake_server.state.reset()
    yield fake_server
    fake_server.state.reset()
