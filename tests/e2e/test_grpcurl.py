"""The README's grpcurl session, run for real: reflection lets an engineer list,
describe and call the service with no proto files at hand."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from fakepardot import FakePardot
from support.service import Service

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))

pytestmark = pytest.mark.skipif(GRPCURL is None, reason="grpcurl is installed by make test")

TOM = {
    "user_id": "u-tom",
    "traits": {
        "email": "tom@example.com",
        "name": "Tom Smykowski",
        "company": "Initech, Inc",
        "title": "VP of Engineering",
    },
    "settings": {"connection": "v3"},
}


async def grpcurl(service: Service, *args: str, data: object = None) -> tuple[int, str, str]:
    """Runs ``grpcurl -plaintext [-d DATA] ADDRESS ARGS…``; returns (exit code, out, err)."""
    flags = ["-d", json.dumps(data)] if data is not None else []
    process = await asyncio.create_subprocess_exec(
        GRPCURL,  # type: ignore[arg-type]
        "-plaintext",
        *flags,
        f"127.0.0.1:{service.port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    return process.returncode or 0, out.decode(), err.decode()


async def test_list_shows_the_service_health_and_reflection(service: Service) -> None:
    code, out, _ = await grpcurl(service, "list")
    assert code == 0
    assert out.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "prospectsync.v1.ProspectSync",
    ]


async def test_describe_shows_the_contract(service: Service) -> None:
    code, out, _ = await grpcurl(service, "describe", "prospectsync.v1.IdentifyRequest")
    assert code == 0
    for field in ("message_id", "traits", "pardot", "settings"):
        assert field in out


async def test_identify_with_the_documentation_example(service: Service, fake: FakePardot) -> None:
    code, out, err = await grpcurl(service, "prospectsync.v1.ProspectSync/Identify", data=TOM)
    assert code == 0, err
    response = json.loads(out)
    assert response["outcome"] == "OUTCOME_CREATED"
    assert response["strategy"] == "EmailV3"
    [prospect] = fake.state.prospects("v3")
    assert response["prospect_id"] == str(prospect["id"])


async def test_an_invalid_request_shows_the_field_to_fix(service: Service) -> None:
    request = {"traits": {"name": "No Email"}, "settings": {"connection": "v3"}}
    code, _, err = await grpcurl(service, "prospectsync.v1.ProspectSync/Identify", data=request)
    assert code != 0
    assert "InvalidArgument" in err and "traits.email is required" in err
