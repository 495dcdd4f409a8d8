"""The service's configuration file (TOML): the server's own settings and the Pardot
connections, checked completely before anything starts.

A bad file stops the service at start with a :class:`ConfigError` whose message names
each offending key and the fix (``connections.default.api_version: must be 3 or 4``);
unknown keys are errors, because a typo that is silently ignored is a setting that is
silently wrong. Secrets may come from the file, an environment variable
(``<name>_env``) or a file (``<name>_file``).

Every setting is declared once, with its default, its rule and its doc line (the
README's tables are rendered from them by a test): ``[server]`` here, on
:class:`ServerConfig`, and a connection's in ``clients.config``. This module reads the
TOML into those dataclasses and lets the schema check them, so one start reports
every problem of the file.

This module never prints, logs or puts in an error message a secret's value: errors
name the key, the variable or the path, never what was (or was not) found there.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import ssl
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clients.config import (
    CONNECTION_SETTINGS,
    SECRET_KEYS,
    ConnectionConfig,
    connection_problems,
)
from clients.config.schema import (
    Problem,
    Setting,
    at_least,
    between,
    http_url,
    more_than,
    not_negative,
    one_of,
    problems,
    setting,
    settings_of,
    type_name,
)
from server.logging import LEVELS


class ConfigError(Exception):
    """The configuration cannot be used; the message names every offending key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TlsConfig:
    """``[server.tls]``: the gRPC port speaks TLS; with a client CA, callers must present a
    certificate it signed (mutual TLS). The PEM files are read once, at load."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    certificate_chain: bytes = field(default=b"", repr=False)
    private_key: bytes = field(default=b"", repr=False)
    client_ca: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CallerAuthConfig:
    """``[server.auth]``: the bearer tokens a caller may send (any one of them works, so
    tokens can be rotated by adding the new one before removing the old)."""

    tokens: tuple[str, ...] = field(default=(), repr=False)


def listen_problem(listen: str) -> str | None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        return 'must be "HOST:PORT", e.g. "127.0.0.1:50051" or "[::]:50051"'
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return "the port must be a number from 0 to 65535"
    return None


@dataclass(frozen=True)
class MetricsConfig:
    """``[server.metrics]``: Prometheus metrics on a side HTTP port (``server.metrics``);
    absent, no port is opened."""

    listen: str = "127.0.0.1:9464"


@dataclass(frozen=True)
class TracingConfig:
    """``[server.tracing]``: OpenTelemetry spans sent to an OTLP/gRPC collector
    (``server.tracing``); absent, no span is recorded."""

    otlp_endpoint: str
    service_name: str = "prospectsync"
    sample_ratio: float = 1.0


#: ``server.state``: where the state every call shares lives.
STATE_BACKENDS = ("sqlite", "redis")
#: What a ``[redis] url`` may start with (redis-py's ``from_url`` schemes).
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_url_problem(url: str) -> str | None:
    """The scheme only: the url may hold a password, so the fix never quotes it, and
    whether the host answers is the running service's business (it starts NOT_SERVING
    and recovers), not the file's."""
    if url == "" or url.startswith(_REDIS_SCHEMES):
        return None
    return "must be a redis://, rediss:// (TLS) or unix:// URL"


def _not_empty(value: str) -> str | None:
    return None if value else "must not be empty"


@dataclass(frozen=True)
class RedisConfig:
    """``[redis]``: the shared state of ``server.state = "redis"`` (``clients.state.redis``);
    also where ``prospect-sync state migrate`` copies the embedded state to."""

    url: str = setting(
        "",
        rule=redis_url_problem,
        secret=True,
        doc="required: `redis://HOST:PORT/DB` (`rediss://` for TLS); it may hold a password, "
        "so it is a secret like the others",
    )
    key_prefix: str = setting(
        "prospectsync:",
        rule=_not_empty,
        doc="every key starts with it: deployments that share one Redis (staging and "
        "production, say) each take their own",
    )
    timeout_s: float = setting(
        0.5,
        rule=more_than(0, "seconds"),
        doc="connecting, and each operation (a command, a script, a transaction); a Redis "
        "that does not answer within it fails the call UNAVAILABLE `STATE_UNAVAILABLE` "
        "(before any Pardot write) and health turns NOT_SERVING until it answers again",
    )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The url, and its password alone (a log line may quote one without the other)."""
        password = _url_password(self.url)
        return tuple(s for s in (self.url, password) if s)


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


_METRICS_KEYS = ("listen",)
_TRACING_KEYS = ("otlp_endpoint", "service_name", "sample_ratio")


#: ``server.suppression_key``: 32 bytes (or more) of hex, as ``openssl rand -hex 32``
#: prints and as the generated ``suppression.key`` file holds (so it can be adopted).
_SUPPRESSION_KEY = re.compile(r"(?:[0-9A-Fa-f]{2}){32,}")


def suppression_key_problem(key: str) -> str | None:
    """Never quotes the key: it is a secret."""
    if key == "" or _SUPPRESSION_KEY.fullmatch(key.strip()):
        return None
    return (
        "must be at least 64 hexadecimal digits (32 bytes), e.g. the output of "
        "`openssl rand -hex 32`, or the content of the state's generated suppression.key"
    )


#: 1 KiB is smaller than any useful request; gRPC's own limit is a signed 32-bit int.
_MESSAGE_BYTES_RANGE = (1024, 2**31 - 1)


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where to listen and how to behave; never anything about Pardot."""

    listen: str = setting(
        "127.0.0.1:50051",
        rule=listen_problem,
        doc="the gRPC address, `HOST:PORT` (`[::]:50051` for every interface, port 0 for any "
        "free one); `--listen` overrides it",
    )
    state_dir: Path = setting(
        Path(".prospectsync"),
        doc="local state (the identity map, idempotency records); relative to the config file",
    )
    reflection: bool = setting(
        True, doc="gRPC reflection, so that `grpcurl list` / `describe` need no proto files"
    )
    log_level: str = setting(
        "info",
        rule=one_of(*LEVELS),
        doc="JSON lines on stderr, secrets redacted: `debug`, `info`, `warning` or `error`",
    )
    shutdown_grace_s: float = setting(
        5.0,
        rule=not_negative,
        doc="on SIGTERM: health NOT_SERVING, then in-flight calls get this long to finish "
        "before they are cancelled, then HTTP clients close",
    )
    idempotency_window_s: float = setting(
        24 * 3600.0,
        rule=more_than(0, "seconds"),
        doc="a repeated `message_id` within this window is answered from the first result",
    )
    max_message_bytes: int = setting(
        1024 * 1024,
        rule=between(*_MESSAGE_BYTES_RANGE, "bytes"),
        doc="the largest request gRPC accepts; a larger one is refused before it is decoded",
    )
    # Each event in progress costs ~30 KB: refusing more at once beats holding memory. A
    # BatchSync item holds what a unary call holds, so it counts as one (issue 12).
    max_in_flight: int = setting(
        2000,
        rule=at_least(1),
        doc="events in progress at once (a unary call counts 1, a BatchSync 1 per item); "
        "more get RESOURCE_EXHAUSTED `SERVER_BUSY` at once, and a BatchSync of more items "
        "than this FAILED_PRECONDITION",
    )
    tls: TlsConfig | None = setting(
        None,
        doc="optional table `[server.tls]`: `cert_file` and `key_file` (PEM) serve TLS, "
        "`client_ca_file` asks callers for a certificate it signed (docs/security.md)",
    )
    auth: CallerAuthConfig | None = setting(
        None,
        doc="optional table `[server.auth]`: one of `tokens`, `tokens_env`, `tokens_file`; "
        "callers then send `authorization: Bearer <token>` (health stays open)",
    )
    metrics: MetricsConfig | None = setting(
        None,
        doc="optional table `[server.metrics]`: `listen` (`HOST:PORT`, e.g. "
        '`"127.0.0.1:9464"`) serves Prometheus metrics over HTTP (docs/operations.md)',
    )
    tracing: TracingConfig | None = setting(
        None,
        doc="optional table `[server.tracing]`: `otlp_endpoint` (OTLP/gRPC, "
        '`"http://127.0.0.1:4317"`), `service_name`, `sample_ratio` (0 to 1, default 1); '
        "a span per RPC and per Pardot request (docs/operations.md)",
    )
    state: str = setting(
        "sqlite",
        rule=one_of(*STATE_BACKENDS),
        doc='`"sqlite"`: embedded, one process, files under `state_dir`; `"redis"`: shared by '
        "every process and replica through `[redis]` (README: Several replicas)",
    )
    workers: int = setting(
        1,
        rule=at_least(1),
        doc="processes serving `listen` on this host (SO_REUSEPORT), each with its own event "
        'loop; more than 1 needs `state = "redis"`; `--workers` overrides it',
    )
    suppression_key: str = setting(
        "",
        rule=suppression_key_problem,
        secret=True,
        doc="the HMAC key of Forget's suppressions, 64 hex digits (`openssl rand -hex 32`): "
        "set, it is kept out of the state, so a stolen state dump cannot test guessed "
        "emails; unset, one is generated and kept with the state. A key other than the one "
        "the suppressions were recorded under stops the start (docs/erasure.md)",
    )


def workers_need_shared_state(server: ServerConfig, given: frozenset[str] | None) -> list[Problem]:
    """Embedded state is one process's: a second worker would keep its own limiter,
    locks and records, which is what the Redis backend exists to avoid."""
    del given
    if server.workers > 1 and server.state != "redis":
        return [
            (
                "workers",
                f'more than 1 worker needs server.state = "redis" (server.state is '
                f'"{server.state}": embedded state belongs to one process)',
            )
        ]
    return []


@dataclass(frozen=True)
class ConfigWarning:
    """Something that works but should be fixed; logged at start (fields hold no secret)."""

    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    connections: dict[str, ConnectionConfig] = field(default_factory=dict)
    path: Path | None = None
    warnings: tuple[ConfigWarning, ...] = ()
    redis: RedisConfig | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for the log redactor."""
        callers = self.server.auth.tokens if self.server.auth is not None else ()
        redis = self.redis.secrets if self.redis is not None else ()
        key = self.server.suppression_key
        # As configured, and as its bytes print (``bytes.hex()``: lower case, trimmed).
        suppression = tuple(dict.fromkeys(k for k in (key, key.strip().lower()) if k))
        return (
            *(s for c in self.connections.values() for s in c.secrets),
            *callers,
            *redis,
            *suppression,
        )


SERVER_SETTINGS = settings_of(ServerConfig)
#: Each key ``[server]`` may hold: its settings, and a secret's ``_env`` / ``_file``.
_SERVER_KEYS = tuple(
    key
    for name, declared in SERVER_SETTINGS.items()
    for key in ((name, f"{name}_env", f"{name}_file") if declared.secret else (name,))
)
REDIS_SETTINGS = settings_of(RedisConfig)
#: Each key ``[redis]`` may hold (the url, a secret, also as url_env / url_file).
_REDIS_KEYS = ("url", "url_env", "url_file", "key_prefix", "timeout_s")
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file")
_CALLER_TOKEN_KEYS = ("tokens", "tokens_env", "tokens_file")
#: A caller token travels in gRPC metadata (``authorization: Bearer <token>``): RFC 6750's
#: token68 characters, and long enough not to be guessed.
_CALLER_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,}")
#: A secret may also be named by where to find it: ``<name>_env`` or ``<name>_file``.
_SECRET_SOURCES = ("_env", "_file")
#: Each key a connection table may hold, and the setting it gives.
_CONNECTION_KEYS: dict[str, str] = {
    **{name: name for name in CONNECTION_SETTINGS},
    **{f"{name}{suffix}": name for name in SECRET_KEYS for suffix in _SECRET_SOURCES},
}
_CONNECTION_NAME = re.compile(r"[A-Za-z0-9_-]+")


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Reads and checks the file at ``path``; ``environ`` (default ``os.environ``) is
    where ``<name>_env`` secrets are looked up."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the config file ({error.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the config file is not UTF-8 text"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's messages give a position, never the offending text.
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    parser = _Parser(base_dir=path.parent, environ=os.environ if environ is None else environ)
    config = parser.parse(data)
    warnings = list(config.warnings)
    if parser.plain_secret_keys and _world_readable(path):
        warnings.insert(
            0,
            ConfigWarning(
                "config.world_readable",
                {
                    "path": str(path),
                    "keys": list(parser.plain_secret_keys),
                    "fix": "chmod o-r the file, or move the secrets to <name>_env / <name>_file",
                },
            ),
        )
    return dataclasses.replace(config, path=path, warnings=tuple(warnings))


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path = Path(),
    environ: Mapping[str, str] | None = None,
) -> ServiceConfig:
    """Checks an already-parsed TOML document (relative paths resolve from ``base_dir``)."""
    return _Parser(base_dir, os.environ if environ is None else environ).parse(data)


def _world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


class _Parser:
    """Collects every problem in one pass, so an operator fixes the file once."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[str] = []
        self.warnings: list[ConfigWarning] = []
        self.plain_secret_keys: list[str] = []

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{key}: {text}")

    def parse(self, data: Mapping[str, Any]) -> ServiceConfig:
        self._unknown_keys("", data, ("server", "connections", "redis"))
        server = self._server(self._table(data, "server", "server"))
        redis = self._redis(data)
        if server.state == "redis" and redis is None and "redis" not in data:
            self.problem(
                "server.state",
                '"redis" needs a [redis] table with its url (url, url_env or url_file)',
            )
        connections = self._connections(self._table(data, "connections", "connections"))
        if self.problems:
            raise ConfigError(self.problems)
        return ServiceConfig(
            server=server,
            connections=connections,
            warnings=tuple(self.warnings),
            redis=redis,
        )

    # --- [server] -------------------------------------------------------------------

    def _server(self, table: Mapping[str, Any]) -> ServerConfig:
        self._unknown_keys("server", table, _SERVER_KEYS)
        # The settings whose value is a table of its own, each with its reader.
        subtables = {
            "tls": self._tls,
            "auth": self._caller_auth,
            "metrics": self._metrics,
            "tracing": self._tracing,
        }
        values: dict[str, Any] = {}
        unread: set[str] = set()
        for name, declared in SERVER_SETTINGS.items():
            key = f"server.{name}"
            if declared.secret:
                if any(k in table for k in (name, f"{name}_env", f"{name}_file")):
                    if (secret := self._secret(table, name, "server")) is None:
                        unread.add(name)
                    else:
                        values[name] = secret
                continue
            if name not in table:
                continue
            if declared.kind is None:
                value = subtables[name](self._table(table, name, key))
            elif (value := self._value(table, name, declared, key)) is None:
                unread.add(name)
            if value is not None:
                values[name] = value
        state_dir = values.get("state_dir", SERVER_SETTINGS["state_dir"].default)
        values["state_dir"] = state_dir if state_dir.is_absolute() else self.base_dir / state_dir
        server = ServerConfig(**values)
        found = problems(server, (workers_need_shared_state,), given=frozenset(table))
        self._report("server", found, unread)
        return server

    # --- [redis] --------------------------------------------------------------------

    def _redis(self, data: Mapping[str, Any]) -> RedisConfig | None:
        """``[redis]``, when the file has it (whether it must is the caller's rule)."""
        if "redis" not in data:
            return None
        table = self._table(data, "redis", "redis")
        self._unknown_keys("redis", table, _REDIS_KEYS)
        problems_before = len(self.problems)
        values: dict[str, Any] = {}
        unread: set[str] = set()
        for name, declared in REDIS_SETTINGS.items():
            if declared.secret:
                if not any(k in table for k in (name, f"{name}_env", f"{name}_file")):
                    self.problem(
                        f"redis.{name}", f"is required ({name}, {name}_env or {name}_file)"
                    )
                    unread.add(name)
                    continue
                value = self._secret(table, name, "redis")
                if name in table and value and not _url_password(value):
                    # No password in it: nothing secret for the world-readable warning.
                    self.plain_secret_keys.remove(f"redis.{name}")
            elif name in table:
                value = self._value(table, name, declared, f"redis.{name}")
            else:
                continue
            if value is None:
                unread.add(name)
            else:
                values[name] = value
        redis = RedisConfig(**values)
        self._report("redis", problems(redis, given=frozenset(table)), unread)
        return redis if len(self.problems) == problems_before else None

    def _tls(self, table: Mapping[str, Any]) -> TlsConfig | None:
        self._unknown_keys("server.tls", table, _TLS_KEYS)
        files: dict[str, tuple[Path, bytes]] = {}
        for key in _TLS_KEYS:
            if key not in table:
                if key != "client_ca_file":
                    self.problem(f"server.tls.{key}", "is required to serve TLS")
                continue
            loaded = self._pem_file(table, key)
            if loaded is not None:
                files[key] = loaded
        if "cert_file" not in files or "key_file" not in files:
            return None
        if not self._tls_usable(files):
            return None
        key_path = files["key_file"][0]
        if _world_readable(key_path):
            self.warnings.append(
                ConfigWarning(
                    "config.secret_file_world_readable",
                    {"key": "server.tls.key_file", "path": str(key_path), "fix": "chmod o-r"},
                )
            )
        client_ca = files.get("client_ca_file")
        return TlsConfig(
            cert_file=files["cert_file"][0],
            key_file=key_path,
            client_ca_file=client_ca[0] if client_ca else None,
            certificate_chain=files["cert_file"][1],
            private_key=files["key_file"][1],
            client_ca=client_ca[1] if client_ca else None,
        )

    def _tls_usable(self, files: Mapping[str, tuple[Path, bytes]]) -> bool:
        """gRPC only says "failed to bind" for a bad certificate or key: check them here,
        with OpenSSL through the standard library, so the problem names the setting."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(
                files["cert_file"][0], files["key_file"][0], password=_no_passphrase
            )
        except (ssl.SSLError, OSError) as error:
            self.problem(
                "server.tls",
                "cert_file and key_file must be a certificate chain and its unencrypted "
                f"private key{_ssl_detail(error)}",
            )
            return False
        if "client_ca_file" in files:
            try:
                context.load_verify_locations(cafile=files["client_ca_file"][0])
            except (ssl.SSLError, OSError) as error:
                self.problem(
                    "server.tls.client_ca_file", f"holds no CA certificate{_ssl_detail(error)}"
                )
                return False
        return True

    def _pem_file(self, table: Mapping[str, Any], key: str) -> tuple[Path, bytes] | None:
        setting = f"server.tls.{key}"
        name = self._typed(table, key, str, setting)
        if not name:
            if name == "":
                self.problem(setting, "must name a PEM file")
            return None
        path = self._path(name)
        try:
            content = path.read_bytes()
        except OSError as error:
            self.problem(setting, f"cannot read {path} ({error.strerror})")
            return None
        if b"-----BEGIN " not in content:
            self.problem(setting, f"{path} is not a PEM file (no -----BEGIN line)")
            return None
        return path, content

    def _caller_auth(self, table: Mapping[str, Any]) -> CallerAuthConfig | None:
        self._unknown_keys("server.auth", table, _CALLER_TOKEN_KEYS)
        sources = [key for key in _CALLER_TOKEN_KEYS if key in table]
        if len(sources) != 1:
            self.problem(
                "server.auth",
                f"set exactly one of {', '.join(_CALLER_TOKEN_KEYS)}"
                + (f" (found {', '.join(sources)})" if sources else ""),
            )
            return None
        source = sources[0]
        setting = f"server.auth.{source}"
        if source == "tokens":
            listed = table["tokens"]
            if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
                self.problem(setting, "must be an array of strings")
                return None
            self.plain_secret_keys.append(setting)
            tokens = listed
        else:
            raw = self._typed(table, source, str, setting)
            if raw is None:
                return None
            text = (
                self._secret_from_env(setting, raw)
                if source == "tokens_env"
                else self._secret_from_file(setting, raw)
            )
            if text is None:
                return None
            # A file holds one token a line (# starts a comment); a variable, a comma-
            # or space-separated list.
            lines = (line.split("#", 1)[0] for line in text.splitlines())
            tokens = " ".join(lines).replace(",", " ").split()
        if not tokens:
            self.problem(setting, "holds no token")
            return None
        for index, token in enumerate(tokens):
            if not _CALLER_TOKEN.fullmatch(token):
                # Never quote a token: name its position instead.
                self.problem(
                    f"{setting}[{index}]",
                    "must be at least 16 characters of letters, digits and -._~+/= "
                    "(e.g. the output of `openssl rand -hex 32`)",
                )
        return CallerAuthConfig(tokens=tuple(dict.fromkeys(tokens)))

    def _metrics(self, table: Mapping[str, Any]) -> MetricsConfig | None:
        self._unknown_keys("server.metrics", table, _METRICS_KEYS)
        if "listen" not in table:
            self.problem("server.metrics.listen", 'is required, e.g. "127.0.0.1:9464"')
            return None
        listen = self._typed(table, "listen", str, "server.metrics.listen")
        if listen is None:
            return None
        if problem := listen_problem(listen):
            self.problem("server.metrics.listen", problem)
            return None
        return MetricsConfig(listen=listen)

    def _tracing(self, table: Mapping[str, Any]) -> TracingConfig | None:
        self._unknown_keys("server.tracing", table, _TRACING_KEYS)
        if "otlp_endpoint" not in table:
            self.problem(
                "server.tracing.otlp_endpoint", 'is required, e.g. "http://127.0.0.1:4317"'
            )
            return None
        endpoint = self._typed(table, "otlp_endpoint", str, "server.tracing.otlp_endpoint")
        if endpoint is not None and (problem := http_url(endpoint)):
            self.problem("server.tracing.otlp_endpoint", problem)
            endpoint = None
        values: dict[str, Any] = {}
        if "service_name" in table:
            name = self._typed(table, "service_name", str, "server.tracing.service_name")
            if name == "":
                self.problem("server.tracing.service_name", "must not be empty")
            elif name is not None:
                values["service_name"] = name
        if "sample_ratio" in table:
            ratio = self._number(table, "sample_ratio", "server.tracing.sample_ratio")
            if ratio is not None and not 0 <= ratio <= 1:
                self.problem("server.tracing.sample_ratio", "must be from 0 to 1")
            elif ratio is not None:
                values["sample_ratio"] = ratio
        return None if endpoint is None else TracingConfig(otlp_endpoint=endpoint, **values)

    # --- [connections.<name>] -------------------------------------------------------

    def _connections(self, tables: Mapping[str, Any]) -> dict[str, ConnectionConfig]:
        if not tables:
            self.problem(
                "connections", "at least one Pardot connection is required ([connections.default])"
            )
        connections: dict[str, ConnectionConfig] = {}
        for name in tables:
            prefix = f"connections.{name}"
            if not _CONNECTION_NAME.fullmatch(name):
                self.problem(prefix, "a connection name uses only letters, digits, '_' and '-'")
                continue
            table = self._table(tables, name, prefix)
            connection = self._connection(name, prefix, table)
            if connection is not None:
                connections[name] = connection
        if tables and "default" not in tables:
            self.warnings.append(
                ConfigWarning(
                    "config.no_default_connection",
                    {
                        "connections": sorted(tables),
                        "effect": 'requests must name settings.connection; "" means "default"',
                    },
                )
            )
        return connections

    def _connection(
        self, name: str, prefix: str, table: Mapping[str, Any]
    ) -> ConnectionConfig | None:
        problems_before = len(self.problems)
        self._unknown_keys(prefix, table, tuple(_CONNECTION_KEYS))
        values: dict[str, Any] = {}
        unread: set[str] = set()
        given = frozenset(_CONNECTION_KEYS[key] for key in table if key in _CONNECTION_KEYS)
        for key, declared in CONNECTION_SETTINGS.items():
            if key not in given:
                continue
            if declared.secret:
                value = self._secret(table, key, prefix)
            else:
                value = self._value(table, key, declared, f"{prefix}.{key}")
            if value is None:
                unread.add(key)
            else:
                values[key] = value
        if "pardot_url" in values:
            values["pardot_url"] = values["pardot_url"].rstrip("/")
        connection = ConnectionConfig(name=name, **values)
        self._report(prefix, connection_problems(connection, given=given), unread)
        return connection if len(self.problems) == problems_before else None

    def _value(self, table: Mapping[str, Any], key: str, declared: Setting, path: str) -> Any:
        """A plain setting's value from the file, of the type its default has (None, with
        the problem noted, when it has another)."""
        kind = declared.kind
        if kind is None:
            raise TypeError(f"{path} is a table: it has a reader of its own")
        if kind is float:
            return self._number(table, key, path)
        if kind is Path:
            name = self._typed(table, key, str, path)
            if name == "":
                self.problem(path, "must not be empty")
            return Path(name) if name else None
        return self._typed(table, key, kind, path)

    def _report(self, prefix: str, found: Iterable[Problem], unread: set[str]) -> None:
        """The schema's problems, except for settings the file gave in a form that could
        not be read: their problem is noted already, and their default proves nothing."""
        for name, fix in found:
            if name not in unread:
                self.problem(f"{prefix}.{name}", fix)

    # --- secrets --------------------------------------------------------------------

    def _secret(self, table: Mapping[str, Any], key: str, prefix: str) -> str | None:
        sources = [k for k in (key, f"{key}_env", f"{key}_file") if k in table]
        if not sources:
            return None
        if len(sources) > 1:
            self.problem(f"{prefix}.{key}", f"set only one of {', '.join(sources)}")
            return None
        source = sources[0]
        path = f"{prefix}.{source}"
        raw: str | None = self._typed(table, source, str, path)
        if raw is None:
            return None
        if source == key:
            if raw == "":
                self.problem(path, "must not be empty")
                return None
            self.plain_secret_keys.append(path)
            return raw
        if source.endswith("_env"):
            return self._secret_from_env(path, raw)
        return self._secret_from_file(path, raw)

    def _secret_from_env(self, path: str, variable: str) -> str | None:
        if not variable:
            self.problem(path, "must name an environment variable")
            return None
        value = self.environ.get(variable)
        if value is None:
            self.problem(path, f"environment variable {variable} is not set")
            return None
        if value == "":
            self.problem(path, f"environment variable {variable} is empty")
            return None
        return value

    def _secret_from_file(self, path: str, name: str) -> str | None:
        if not name:
            self.problem(path, "must name a file")
            return None
        file = self._path(name)
        try:
            value = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            self.problem(path, f"cannot read {file} ({error.strerror})")
            return None
        except UnicodeDecodeError:
            self.problem(path, f"{file} is not UTF-8 text")
            return None
        if value == "":
            self.problem(path, f"{file} is empty")
            return None
        if _world_readable(file):
            self.warnings.append(
                ConfigWarning(
                    "config.secret_file_world_readable",
                    {"key": path, "path": str(file), "fix": "chmod o-r the file"},
                )
            )
        return value

    # --- shapes ---------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        """A path from the file; relative ones are relative to the config file."""
        return Path(name) if Path(name).is_absolute() else self.base_dir / name

    def _unknown_keys(self, prefix: str, table: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            self.problem(f"{prefix}.{key}" if prefix else key, f"unknown key; {hint}")

    def _table(self, data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(path, f"must be a table ([{path}])")
            return {}
        return value

    def _typed(self, table: Mapping[str, Any], key: str, kind: type, path: str) -> Any:
        value = table[key]
        # bool is an int in Python; TOML keeps them apart, and so do we.
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.problem(path, f"must be {type_name(kind)}, not {_toml_type(value)}")
        return None

    def _number(self, table: Mapping[str, Any], key: str, path: str) -> float | None:
        value = table[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        self.problem(path, f"must be a number, not {_toml_type(value)}")
        return None


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _ssl_detail(error: OSError) -> str:
    """OpenSSL's short reason ("KEY_VALUES_MISMATCH"), never file content."""
    detail = getattr(error, "reason", None) or error.strerror
    return f" ({detail})" if detail else ""


def _no_passphrase() -> bytes:
    # gRPC cannot use an encrypted key; never let OpenSSL prompt on a terminal for one.
    return b""
