"""A Node.js caller, for real: tests/node/client.test.mjs (@grpc/grpc-js and
@grpc/proto-loader, pinned by tests/node/package-lock.json) runs under ``node --test``
against this live server and fakepardot, so the contract is checked from a second
language, rich error details and the service config included.

``make test`` installs the Node packages first (``make node-deps``: ``npm ci``). Without
them, or without Node.js, this test skips and says how to get them; on CI it must run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from fakepardot import FakePardot
from support.service import Service

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
REPO = NODE_DIR.parents[1]
NODE = shutil.which("node")
INSTALLED = (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()

pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and (NODE is None or not INSTALLED),
    reason="needs Node.js 20+ and tests/node's packages: run `make node-deps` (make test does)",
)


async def test_the_node_client_passes_against_the_live_server(
    service: Service, fake: FakePardot
) -> None:
    assert NODE is not None and INSTALLED, "CI must run the Node client: make node-deps"
    env = {
        **os.environ,
        "PROSPECTSYNC_TARGET": f"127.0.0.1:{service.port}",
        "PROSPECTSYNC_FAKE_URL": fake.url,
        "PROSPECTSYNC_PROTOS": str(REPO / "protos"),
        "PROSPECTSYNC_SERVICE_CONFIG": str(REPO / "grpc_service_config.json"),
        "NODE_OPTIONS": "",
    }
    # Async, so that the server under test keeps serving on this event loop.
    process = await asyncio.create_subprocess_exec(
        NODE,
        "--test",
        "--test-reporter=tap",
        str(NODE_DIR / "client.test.mjs"),
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    report = out.decode()
    assert process.returncode == 0, report
    assert "# fail 0" in report and "# pass 6" in report, report
