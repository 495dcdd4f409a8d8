"""Paths are built from configuration and encoded values only; bad settings are refused
at startup with the key to fix and never a secret."""

from __future__ import annotations

import httpx
import pytest

from clients.config import (
    ConnectionConfig,
    ConnectionMisconfigured,
    check_connection,
    check_legacy,
    check_oauth,
)
from clients.wire.paths import api_path, encode_path_value
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
        ({"api_version": 6}, "connections.eu.api_version"),
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


def test_every_problem_of_a_built_config_is_in_one_refusal() -> None:
    """Code is held to the file's rules, all at once: the operator of a config built in
    code (tests, clients.connections) also fixes it in one go."""
    bad = oauth(backoff_base_s=-1, auth_failure_cooldown_s=-1, unconfirmed_create_hold_s=-1)
    with pytest.raises(ConnectionMisconfigured) as caught:  # a FailedPrecondition
        check_connection(bad)
    assert isinstance(caught.value, FailedPrecondition)
    assert caught.value.reason == "CONNECTION_MISCONFIGURED"
    assert caught.value.problems == [
        f"connections.eu.{key}: must not be negative (0 or more seconds)"
        for key in ("backoff_base_s", "auth_failure_cooldown_s", "unconfirmed_create_hold_s")
    ]
    assert caught.value.message == "; ".join(caught.value.problems)


def test_a_bad_business_unit_among_other_problems_is_a_misconfigured_connection() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_connection(oauth(business_unit_id="nope", timeout_s=0))
    assert caught.value.reason == "CONNECTION_MISCONFIGURED"
    assert "connections.eu.business_unit_id" in caught.value.message
    assert "connections.eu.timeout_s: must be more than 0 seconds" in caught.value.message


def test_code_may_cross_pardots_concurrency_limit_where_a_file_may_not() -> None:
    """A test provokes err 66 with more than 5 in flight on purpose; a file is refused."""
    check_connection(oauth(max_concurrency=8))


def test_an_authenticator_refuses_a_connection_of_the_other_mode() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_legacy(oauth())
    assert 'connections.eu.auth: must be "legacy"' in caught.value.message
    check_oauth(oauth())
