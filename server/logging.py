"""Structured logging for the service: JSON lines on stderr, per-RPC fields from
contextvars, and a redaction net for secrets.

Every event (ours through structlog, and the stdlib ones from grpc, httpx, uvicorn)
passes :class:`Redactor` last before rendering: it replaces every known secret value
wherever it appears (any field, nested, inside strings, inside a traceback) and the
whole value of any field whose name says it is a credential. Known secrets are the
configured ones (``configure_logging``) plus those learned at run time (access tokens,
api keys) that the Pardot client hands to :func:`register_secret`.

This module must never be the reason a secret is safe to log: code still never puts
one in an event. It is the net under that rule, and it must never be skipped.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"

#: A field named like a credential is redacted whatever its value. Matched on the last
#: word of the name (``access_token``, ``client_secret``, ``Authorization``,
#: ``x-api-key``), so that ``token_url`` or ``password_env`` (not secrets) stay readable.
_SENSITIVE_NAME = re.compile(
    r"(?:^|[^a-z0-9])(?:password|passwd|secret|token|api_?key|user_?key|authorization|cookie)s?$"
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

#: Learned secrets (tokens) are replaced on refresh; the newest are kept, not all forever.
_MAX_LEARNED_SECRETS = 256

#: The levels ``server.log_level`` accepts.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: Libraries whose INFO lines repeat what our own events say (httpx logs every request
#: line, which ``pardot.call`` already records with the fields that matter).
_QUIET_LIBRARIES = ("httpx", "httpcore", "hpack")


#: The level :func:`configure_logging` set last; until it is called, every level (as
#: structlog's defaults write every event).
_level = logging.DEBUG


def enabled_for(level: int) -> bool:
    """Whether an event at ``level`` is written. For the per-call "rpc.done": structlog
    drops a filtered event cheaply, but a module-level logger first assembles a bound
    logger (~2 µs) on every call; asking here first makes a filtered level free."""
    return level >= _level


@functools.lru_cache(maxsize=1024)
def is_sensitive_name(name: str) -> bool:
    """True for a field name that holds a credential (``accessToken`` counts too).
    Remembered per name: every event asks it of every field, and field names repeat
    (three regular-expression passes per field were most of "rpc.done"'s cost)."""
    words = _CAMEL_BOUNDARY.sub("_", name).lower().replace("-", "_")
    return bool(_SENSITIVE_NAME.search(words))


class Redactor:
    """A structlog processor that removes secret values from an event dict.

    Thread-safe: tokens are learned on the event loop while the stdlib handler may
    format records from other threads; the compiled pattern is swapped atomically.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configured: frozenset[str] = frozenset()
        self._learned: deque[str] = deque(maxlen=_MAX_LEARNED_SECRETS)
        self._pattern: re.Pattern[str] | None = None

    def set_configured(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._configured = frozenset(s for s in secrets if s)
            self._learned.clear()
            self._recompile()

    def register(self, value: str) -> None:
        if not value:
            return
        with self._lock:
            if value in self._configured or value in self._learned:
                return
            self._learned.append(value)
            self._recompile()

    def _recompile(self) -> None:
        secrets = self._configured.union(self._learned)
        if not secrets:
            self._pattern = None
            return
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact_text(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret replaced; containers are rebuilt, never mutated."""
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                key: (
                    REDACTED
                    if isinstance(key, str) and is_sensitive_name(key) and item not in (None, "")
                    else self.scrub(item)
                )
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(item) for item in value]
        # Anything else would reach the renderer as its repr: redact that text instead.
        return self.redact_text(repr(value))

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        return self.scrub(event_dict)


_REDACTOR = Redactor()


class _ProcessFields:
    """A structlog processor adding the same fields to every event of this process."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        return {**self.fields, **event_dict}


def register_secret(value: str) -> None:
    """Adds a secret learned at run time (an OAuth access token, a Pardot api key) to
    the redactor. The Pardot client calls this each time it receives one."""
    _REDACTOR.register(value)


def redact(text: str) -> str:
    """``text`` with every known secret replaced: for strings that leave the process
    by another road than logs (error details sent to callers)."""
    return _REDACTOR.redact_text(text)


def configure_logging(
    level: str = "info",
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
    process: Mapping[str, Any] | None = None,
) -> None:
    """Sets up structlog and the stdlib root logger to write redacted JSON lines.

    ``secrets`` are the configured secret values (``ServiceConfig.secrets``); calling
    again replaces them and forgets learned ones. ``stream`` defaults to stderr.
    ``process`` holds fields every line of this process carries (a worker's index and
    pid, ``server.workers``): context variables would not reach gRPC's handler tasks.
    """
    global _level
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    levelno = _level = LEVELS[level]
    out = stream if stream is not None else sys.stderr
    _REDACTOR.set_configured(secrets)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        *((_ProcessFields(process),) if process else ()),
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        timestamper,
    ]
    rendering: list[Any] = [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _REDACTOR,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )

    # The same pipeline for stdlib records (grpc's own errors, uvicorn, httpx).
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(levelno, logging.WARNING))
