"""server.logging: JSON lines, per-call context, and no secret in any line, whichever
road it takes (a field, a nested value, a message, a traceback, a stdlib record)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from server.logging import (
    REDACTED,
    configure_logging,
    enabled_for,
    is_sensitive_name,
    register_secret,
)

SECRET = "s3cr3t-Value-9f8e7d"
INNER = "inner-secret"
OUTER = f"prefix-{INNER}-suffix"


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging("info", [SECRET, INNER, OUTER], stream=capture.stream)
    try:
        yield capture
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def test_events_are_json_lines_with_level_time_and_context(captured: Captured) -> None:
    structlog.contextvars.bind_contextvars(message_id="m-1", connection="default")
    structlog.get_logger().info("pardot.call", method="POST", http_status=200)
    structlog.get_logger().debug("too.detailed")  # below the configured level
    [line] = captured.lines()
    assert line["event"] == "pardot.call" and line["level"] == "info"
    assert (line["message_id"], line["connection"], line["http_status"]) == ("m-1", "default", 200)
    assert line["timestamp"].endswith("Z")


class Leaky:
    def __repr__(self) -> str:
        return f"Leaky(key={SECRET})"


def test_configured_secrets_are_removed_wherever_they_are(captured: Captured) -> None:
    structlog.get_logger().info(
        f"event with {SECRET}",
        plain=SECRET,
        inside=f"Bearer {SECRET}!",
        nested={"deeper": [{"value": SECRET}], "tuple": (SECRET, 1)},
        obj=Leaky(),
        number=42,
    )
    [line] = captured.lines()
    text = json.dumps(line)
    assert SECRET not in text
    assert line["event"] == f"event with {REDACTED}"
    assert line["plain"] == REDACTED and line["inside"] == f"Bearer {REDACTED}!"
    assert line["nested"] == {"deeper": [{"value": REDACTED}], "tuple": [REDACTED, 1]}
    assert line["obj"] == f"Leaky(key={REDACTED})" and line["number"] == 42


def test_a_secret_containing_another_is_removed_whole(captured: Captured) -> None:
    structlog.get_logger().info("e", value=f"x {OUTER} y {INNER}")
    assert captured.lines()[0]["value"] == f"x {REDACTED} y {REDACTED}"


def test_a_traceback_is_redacted_too(captured: Captured) -> None:
    try:
        raise ValueError(f"login failed for {SECRET}")
    except ValueError:
        structlog.get_logger().exception("boom")
    [line] = captured.lines()
    assert "Traceback" in line["exception"] and "ValueError" in line["exception"]
    assert SECRET not in line["exception"] and REDACTED in line["exception"]


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "user_key",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "Authorization",
        "x-api-key",
        "accessToken",
        "tokens",
    ],
)
def test_credential_fields_are_redacted_whatever_their_value(captured: Captured, name: str) -> None:
    structlog.get_logger().info("e", **{name: "not-a-known-secret", "nested": {name: "x"}})
    [line] = captured.lines()
    assert line[name] == REDACTED and line["nested"][name] == REDACTED


@pytest.mark.parametrize("name", ["token_url", "password_env", "token_grants", "keys", "user"])
def test_ordinary_fields_stay_readable(name: str) -> None:
    assert not is_sensitive_name(name)


def test_learned_secrets_are_redacted_from_then_on(captured: Captured) -> None:
    learned = "00Dxx!AQ4AQLearnedAccessToken"
    structlog.get_logger().info("before", value=learned)
    register_secret(learned)
    structlog.get_logger().info("after", value=learned)
    before, after = captured.lines()
    assert before["value"] == learned  # nothing is redacted by guesswork
    assert after["value"] == REDACTED


def test_stdlib_records_take_the_same_road(captured: Captured) -> None:
    logging.getLogger("grpc._server").error("handler failed: %s", SECRET)
    logging.getLogger("httpx").info("HTTP Request: POST https://pi.pardot.com %s", SECRET)
    [line] = captured.lines()  # httpx's INFO lines are quieted
    assert line["logger"] == "grpc._server" and line["level"] == "error"
    assert line["event"] == f"handler failed: {REDACTED}"


def test_enabled_for_answers_as_the_configured_level_filters(captured: Captured) -> None:
    assert enabled_for(logging.INFO) and enabled_for(logging.WARNING)
    assert not enabled_for(logging.DEBUG)  # "info" is configured
    structlog.get_logger().debug("dropped")
    assert captured.lines() == []


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud", [], stream=io.StringIO())
