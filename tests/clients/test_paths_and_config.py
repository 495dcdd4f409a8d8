"""Paths are built from configuration and encoded values only; bad settings are refused
at startup with the key to fix and never a secret."""

from __future__ import annotations

import httpx
import pytest

from clients.config import ConnectionConfig
from clients.config_checks import check_connection
from clients.transport import api_path, encode_path_value
from strategies.core.errors import FailedPrecondition

SECRET = "s3cr3t-value-never-printed"


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a+b@x.com", "a%2Bb%40x.com"),
        ("a@b.com/../../login", "a%40b.com%2F..%2F..%2Flogin"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        (42, "42"),
    ],
)
def test_path_values_stay_inside_their_segment(value: str | int, segment: str) -> None:
    assert encode_path_value(value) == segment
    path = api_path("prospect", 4, "read", {"email": value})
    assert path == f"/api/prospect/version/4/do/read/email/{segment}"
    # The URL httpx would send keeps the path exactly: no dot-segment traversal.
    url = httpx.URL("http://127.0.0.1:1" + path)
    assert url.raw_path.decode() == path


def test_api_path_refuses_an_empty_value_and_unknown_versions() -> None:
    with pytest.raises(ValueError):
        api_path("prospect", 4, "read", {"email": ""})
    with pytest.raises(ValueError):
        api_path("prospect", 5, "read", {"id": 1})


def oauth(**overrides: object) -> ConnectionConfig:
    values: dict[str, object] = {
        "name": "eu",
        "business_unit_id": "0Uv000000000001CAA",
        "client_id": "cid",
        "client_secret": SECRET,
        "refresh_token": SECRET,
    }
    return ConnectionConfig(**(values | overrides))  # type: ignore[arg-type]


def test_a_valid_oauth_config_passes() -> None:
    check_connection(oauth())


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"business_unit_id": "0Uv00000001"}, "connections.eu.business_unit_id"),
        ({"business_unit_id": "0Ux000000000001CAA"}, "connections.eu.business_unit_id"),
        ({"client_secret": ""}, "connections.eu.client_secret"),
        ({"refresh_token": ""}, "connections.eu.refresh_token"),
        ({"grant_type": "password"}, "connections.eu.username"),
        ({"pardot_url": "ftp://pi.pardot.com"}, "connections.eu.pardot_url"),
        ({"token_url": "https://x/?a=1"}, "connections.eu.token_url"),
        ({"api_version": 5}, "connections.eu.api_version"),
        ({"max_concurrency": 0}, "connections.eu.max_concurrency"),
        ({"auth": "legacy"}, "connections.eu.email"),
        (
            {"auth": "legacy", "email": "u@x.co", "password": SECRET, "user_key": "short"},
            "connections.eu.user_key",
        ),
    ],
)
def test_bad_settings_name_the_key_and_never_the_secret(
    overrides: dict[str, object], key: str
) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_connection(oauth(**overrides))
    assert key in caught.value.message
    assert SECRET not in caught.value.message


def test_business_unit_error_has_its_own_reason() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_connection(oauth(business_unit_id="nope"))
    assert caught.value.reason == "BUSINESS_UNIT_INVALID"
