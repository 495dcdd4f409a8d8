"""End-to-end harness: the real gRPC server on 127.0.0.1:0 talking over real HTTP to
fakepardot (in its own thread), and a generated stub — as a caller would see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakepardot import FakePardot
from support.service import Service, close_service, config_for, open_service


@pytest.fixture(autouse=True)
def fresh_fake(fake: FakePardot) -> FakePardot:
    """Every e2e test gets a fresh fake, asked for or not (``fake``: tests/conftest.py)."""
    return fake


@pytest.fixture
async def service(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    opened = await open_service(config_for(fake, tmp_path / "state"))
    yield opened
    await close_service(opened)
