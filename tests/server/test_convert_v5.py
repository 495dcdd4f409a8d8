"""API v5 in the contract: the enum value, and ``secondary_deleted_search``, whose unset
means true (proto3 ``optional``), as the server hands them to the strategies."""

from __future__ import annotations

import pytest

from clients.config import ConnectionConfig
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.convert import settings_from_proto

V4 = ConnectionConfig(name="default", api_version=4)
V5 = ConnectionConfig(name="v5", api_version=5)


def test_api_version_5_is_a_version_and_a_v5_connection_is_its_default() -> None:
    assert settings_from_proto(pb.PardotSettings(api_version=pb.API_VERSION_5), V4).api_version == 5
    assert settings_from_proto(pb.PardotSettings(), V5).api_version == 5
    assert pb.ApiVersion.Value("API_VERSION_5") == 5


@pytest.mark.parametrize(
    ("sent", "resolved"),
    [
        ({}, True),
        ({"secondary_deleted_search": True}, True),
        ({"secondary_deleted_search": False}, False),
    ],
)
def test_secondary_deleted_search_unset_means_true(sent: dict[str, bool], resolved: bool) -> None:
    settings = settings_from_proto(pb.PardotSettings(**sent), V5)
    assert settings.secondary_deleted_search is resolved
