"""The service's real logging setup (``server.logging.configure_logging``), writing into
a buffer a test reads, and put back as it was afterwards: for tests about what the
service logs (never a secret, never a forgotten person's email)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from server.logging import configure_logging


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


@contextmanager
def captured_logs(secrets: Iterable[str] = ()) -> Iterator[LogCapture]:
    """Logging at debug into a :class:`LogCapture`, ``secrets`` registered with the
    redactor; the process's logging restored on the way out."""
    capture = LogCapture()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging("debug", list(secrets), stream=capture.stream)
    try:
        yield capture
    finally:
        structlog.reset_defaults()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
