"""Running the real service for tests: a config aimed at fakepardot, the server on
127.0.0.1:0, a stub, and request builders."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import RunningServer, start_server
from server.config import RedisConfig, ServiceConfig, parse_config

#: Retries and backoffs small enough for tests; the behaviour is the same.
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2.0}


def config_for(fake: FakePardot, state_dir: Path, **overrides: Any) -> ServiceConfig:
    oauth = {
        "pardot_url": fake.url,
        "auth": "oauth",
        "token_url": fake.token_url,
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
        **FAST,
    }
    connections = {
        "default": {
            **oauth,
            "api_version": 4,
            "business_unit_id": DEMO.business_unit_v4,
            "grant_type": "refresh_token",
            "refresh_token": DEMO.refresh_token,
        },
        "v3": {
            **oauth,
            "api_version": 3,
            "business_unit_id": DEMO.business_unit_v3,
            "grant_type": "password",
            "username": DEMO.username,
            "password": DEMO.password,
        },
        # API v5 works with every kind of business unit: the v4 one here (its prospects
        # are the default connection's), through a grant of its own.
        "v5": {
            **oauth,
            "api_version": 5,
            "business_unit_id": DEMO.business_unit_v4,
            "grant_type": "client_credentials",
        },
        "legacy": {
            "pardot_url": fake.url,
            "api_version": 3,
            "auth": "legacy",
            "email": DEMO.legacy_v3_email,
            "password": DEMO.legacy_password,
            "user_key": DEMO.user_key,
            **FAST,
        },
    }
    for name, values in overrides.items():
        connections[name] = {**connections[name], **values}
    return parse_config(
        {
            "server": {"listen": "127.0.0.1:0", "state_dir": str(state_dir)},
            "connections": connections,
        }
    )


def on_redis(config: ServiceConfig, url: str, key_prefix: str, **server: Any) -> ServiceConfig:
    """``config`` with ``server.state = "redis"`` on ``url`` under ``key_prefix`` (two
    services on one prefix are two replicas); ``server`` overrides other keys."""
    return dataclasses.replace(
        config,
        server=dataclasses.replace(config.server, state="redis", **server),
        redis=RedisConfig(url=url, key_prefix=key_prefix),
    )


@dataclass
class Service:
    """A running server and a stub connected to it."""

    running: RunningServer
    channel: grpc.aio.Channel
    stub: pb_grpc.ProspectSyncStub

    @property
    def port(self) -> int:
        return self.running.port


async def open_service(config: ServiceConfig) -> Service:
    running = await start_server(config, listen="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    return Service(running, channel, pb_grpc.ProspectSyncStub(channel))


async def close_service(service: Service) -> None:
    await service.channel.close()
    await service.running.stop(grace=1.0)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def identify(
    traits: dict[str, Any] | None = None,
    *,
    connection: str = "",
    pardot_id: str = "",
    pardot_fid: str = "",
    **settings: Any,
) -> pb.IdentifyRequest:
    return pb.IdentifyRequest(
        user_id=settings.pop("user_id", ""),
        message_id=settings.pop("message_id", ""),
        traits=struct(traits or {}),
        pardot=pb.PardotOptions(id=pardot_id, fid=pardot_fid),
        settings=pb.PardotSettings(connection=connection, **settings),
    )
