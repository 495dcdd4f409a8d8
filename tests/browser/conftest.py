"""The snippet in a real browser: headless Chromium (Debian's ``chromium`` package) loads
a page served on loopback, the way a customer's web server would render it — it asks
the live ProspectSync server for the snippet of the very URL being served and embeds
it — with the connection's tracker host pointed at a loopback stub that serves a
``pd.js`` of our own and records every request (``loopback.py``).

``make test`` installs Chromium on CI and for root (``make browser-deps``); elsewhere
these tests skip, saying how to get it. On CI (``CI=true``) a missing Chromium is a
failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fakepardot import FakePardot
from support.service import Service, close_service, config_for, open_service

from .loopback import Browser, Loopback, Site, tracker_answer


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is not None:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing on CI: `make test` installs it (make browser-deps)")
    pytest.skip(
        "headless Chromium is not installed: run `make browser-deps` as root "
        "(Debian's chromium package) to run the browser tests"
    )


@pytest.fixture
def tracker() -> Iterator[Loopback]:
    stub = Loopback(tracker_answer)
    yield stub
    stub.close()


@pytest.fixture
async def service(fake: FakePardot, tracker: Loopback, tmp_path: Path) -> AsyncIterator[Service]:
    """The live server, its default connection's tracker pointed at the stub."""
    loopback_tracker = {"tracker_host": f"127.0.0.1:{tracker.port}", "tracker_scheme": "http"}
    opened = await open_service(config_for(fake, tmp_path / "state", default=loopback_tracker))
    yield opened
    await close_service(opened)


@pytest.fixture
def site(service: Service) -> Iterator[tuple[Site, Loopback]]:
    page = Site(service_port=service.port)
    server = Loopback(page.answer)
    page.origin = server.origin
    yield page, server
    server.close()


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Browser:
    profiles = tmp_path / "chromium"
    profiles.mkdir()
    return Browser(chromium, profiles)
