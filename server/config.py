"""The service's configuration file (TOML): the server's own settings and the Pardot
connections, checked completely before anything starts.

A bad file stops the service at start with a :class:`ConfigError` whose message names
each offending key and the fix (``connections.default.api_version: must be 3 or 4``);
unknown keys are errors, because a typo that is silently ignored is a setting that is
silently wrong. Secrets may come from the file, an environment variable
(``<name>_env``) or a file (``<name>_file``).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clients.config import ConnectionConfig
from clients.config_checks import check_connection
from server.logging import LEVELS
from strategies.core.errors import ProspectSyncError
from strategies.core.pardot_facts import (
    API_VERSIONS,
    BUSINESS_UNIT_ID_PATTERN,
    MAX_CONCURRENT_REQUESTS,
    USER_KEY_PATTERN,
)


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


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where to listen and how to behave; never anything about Pardot."""

    listen: str = "127.0.0.1:50051"
    #: Local state (the identity map, idempotency records). Relative paths are relative
    #: to the config file.
    state_dir: Path = Path(".prospectsync")
    reflection: bool = True
    log_level: str = "info"
    #: How long in-flight calls may finish after SIGTERM before they are cancelled.
    shutdown_grace_s: float = 5.0
    #: How long a message_id's first result is replayed to a repeat of the call.
    idempotency_window_s: float = 24 * 3600.0
    #: The largest request gRPC accepts; a larger one is refused before it is decoded.
    max_message_bytes: int = 1024 * 1024
    #: ProspectSync calls in progress at once; more are refused with RESOURCE_EXHAUSTED
    #: (SERVER_BUSY) at once instead of holding memory (each costs ~30 KB in gRPC).
    max_in_flight: int = 2000
    tls: TlsConfig | None = None
    auth: CallerAuthConfig | None = None


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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for the log redactor."""
        callers = self.server.auth.tokens if self.server.auth is not None else ()
        return (*(s for c in self.connections.values() for s in c.secrets), *callers)


AUTH_MODES = ("oauth", "legacy")
GRANT_TYPES = ("refresh_token", "password", "client_credentials")

_SERVER_KEYS = tuple(f.name for f in dataclasses.fields(ServerConfig))
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file")
_CALLER_TOKEN_KEYS = ("tokens", "tokens_env", "tokens_file")
#: A caller token travels in gRPC metadata (``authorization: Bearer <token>``): RFC 6750's
#: token68 characters, and long enough not to be guessed.
_CALLER_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,}")
#: 1 KiB is smaller than any useful request; gRPC's own limit is a signed 32-bit int.
_MESSAGE_BYTES_RANGE = (1024, 2**31 - 1)
_CONNECTION_FIELDS = {f.name: f for f in dataclasses.fields(ConnectionConfig) if f.name != "name"}
#: Secret fields are the ones ConnectionConfig keeps out of its repr.
_SECRET_KEYS = tuple(name for name, f in _CONNECTION_FIELDS.items() if not f.repr)
_SECRET_SOURCES = ("_env", "_file")
_CONNECTION_KEYS = (
    *_CONNECTION_FIELDS,
    *(f"{name}{suffix}" for name in _SECRET_KEYS for suffix in _SECRET_SOURCES),
)
_CONNECTION_NAME = re.compile(r"[A-Za-z0-9_-]+")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")

#: The credential keys each mode needs; the other credential keys must be absent.
_OAUTH_KEYS = ("business_unit_id", "token_url", "grant_type", "client_id", "client_secret")
_GRANT_KEYS = {
    "refresh_token": ("refresh_token",),
    "password": ("username", "password"),
    "client_credentials": (),
}
_LEGACY_KEYS = ("email", "password", "user_key")
_CREDENTIAL_KEYS = frozenset(
    (*_OAUTH_KEYS, *(k for keys in _GRANT_KEYS.values() for k in keys), *_LEGACY_KEYS)
)


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
        self._unknown_keys("", data, ("server", "connections"))
        server = self._server(self._table(data, "server", "server"))
        connections = self._connections(self._table(data, "connections", "connections"))
        if self.problems:
            raise ConfigError(self.problems)
        return ServiceConfig(server=server, connections=connections, warnings=tuple(self.warnings))

    # --- [server] -------------------------------------------------------------------

    def _server(self, table: Mapping[str, Any]) -> ServerConfig:
        self._unknown_keys("server", table, _SERVER_KEYS)
        defaults = ServerConfig()
        values: dict[str, Any] = {}
        if "listen" in table:
            listen = self._typed(table, "listen", str, "server.listen")
            problem = None if listen is None else listen_problem(listen)
            if problem:
                self.problem("server.listen", problem)
            values["listen"] = listen
        if "state_dir" in table:
            state_dir = self._typed(table, "state_dir", str, "server.state_dir")
            if state_dir == "":
                self.problem("server.state_dir", "must not be empty")
            values["state_dir"] = Path(state_dir or defaults.state_dir)
        if "reflection" in table:
            values["reflection"] = self._typed(table, "reflection", bool, "server.reflection")
        if "log_level" in table:
            level = self._typed(table, "log_level", str, "server.log_level")
            if level is not None and level not in LEVELS:
                self.problem("server.log_level", f"must be one of {_choices(LEVELS)}")
            values["log_level"] = level
        if "shutdown_grace_s" in table:
            grace = self._number(table, "shutdown_grace_s", "server.shutdown_grace_s")
            if grace is not None and grace < 0:
                self.problem("server.shutdown_grace_s", "must be zero or more seconds")
            values["shutdown_grace_s"] = grace
        if "idempotency_window_s" in table:
            window = self._number(table, "idempotency_window_s", "server.idempotency_window_s")
            if window is not None and window <= 0:
                self.problem("server.idempotency_window_s", "must be more than 0 seconds")
            values["idempotency_window_s"] = window
        if "max_message_bytes" in table:
            size = self._typed(table, "max_message_bytes", int, "server.max_message_bytes")
            low, high = _MESSAGE_BYTES_RANGE
            if size is not None and not low <= size <= high:
                self.problem("server.max_message_bytes", f"must be from {low} to {high} bytes")
            values["max_message_bytes"] = size
        if "max_in_flight" in table:
            cap = self._typed(table, "max_in_flight", int, "server.max_in_flight")
            if cap is not None and cap < 1:
                self.problem("server.max_in_flight", "must be at least 1")
            values["max_in_flight"] = cap
        if "tls" in table:
            values["tls"] = self._tls(self._table(table, "tls", "server.tls"))
        if "auth" in table:
            values["auth"] = self._caller_auth(self._table(table, "auth", "server.auth"))
        values = {k: v for k, v in values.items() if v is not None}
        state_dir = values.get("state_dir", defaults.state_dir)
        values["state_dir"] = state_dir if state_dir.is_absolute() else self.base_dir / state_dir
        return ServerConfig(**values)

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
        self._unknown_keys(prefix, table, _CONNECTION_KEYS)
        values: dict[str, Any] = {}
        for key, spec in _CONNECTION_FIELDS.items():
            if key in _SECRET_KEYS:
                value = self._secret(table, key, prefix)
            elif key in table:
                value = self._field(table, key, spec.default, f"{prefix}.{key}")
            else:
                continue
            if value is not None:
                values[key] = value
        present = {
            key.removesuffix("_env").removesuffix("_file")
            for key in table
            if key in _CONNECTION_KEYS
        }
        self._check_values(prefix, values)
        self._check_credentials(prefix, values, present)
        if len(self.problems) > problems_before:
            return None
        connection = ConnectionConfig(name=name, **values)
        # The client's own checks (they know settings this module has no rule for).
        try:
            check_connection(connection)
        except ProspectSyncError as error:
            self.problems.append(error.message)
            return None
        return connection

    def _field(self, table: Mapping[str, Any], key: str, default: Any, path: str) -> Any:
        if isinstance(default, float):
            return self._number(table, key, path)
        return self._typed(table, key, type(default), path)

    def _check_values(self, prefix: str, values: dict[str, Any]) -> None:
        if "pardot_url" in values:
            url = values["pardot_url"]
            if self._url_ok(f"{prefix}.pardot_url", url):
                values["pardot_url"] = url.rstrip("/")
        if "token_url" in values:
            self._url_ok(f"{prefix}.token_url", values["token_url"])
        if "api_version" in values and values["api_version"] not in API_VERSIONS:
            self.problem(f"{prefix}.api_version", "must be 3 or 4")
        if "auth" in values and values["auth"] not in AUTH_MODES:
            self.problem(f"{prefix}.auth", f"must be {_choices(AUTH_MODES, 'or')}")
        if "grant_type" in values and values["grant_type"] not in GRANT_TYPES:
            self.problem(f"{prefix}.grant_type", f"must be {_choices(GRANT_TYPES, 'or')}")
        if "timeout_s" in values and values["timeout_s"] <= 0:
            self.problem(f"{prefix}.timeout_s", "must be more than 0 seconds")
        concurrency = values.get("max_concurrency")
        if concurrency is not None and not 1 <= concurrency <= MAX_CONCURRENT_REQUESTS:
            self.problem(
                f"{prefix}.max_concurrency",
                f"must be from 1 to {MAX_CONCURRENT_REQUESTS} "
                f"(Pardot refuses more concurrent requests per account with err 66)",
            )
        if "max_retries" in values and values["max_retries"] < 0:
            self.problem(f"{prefix}.max_retries", "must be 0 or more")
        if "tracker_host" in values and not _HOST.fullmatch(values["tracker_host"]):
            self.problem(
                f"{prefix}.tracker_host", 'must be a host name such as "pi.pardot.com" (no scheme)'
            )
        unit = values.get("business_unit_id")
        if unit and not BUSINESS_UNIT_ID_PATTERN.fullmatch(unit):
            self.problem(
                f"{prefix}.business_unit_id",
                "must be an 18-character Pardot business unit id starting with 0Uv",
            )
        user_key = values.get("user_key")
        if user_key and not USER_KEY_PATTERN.fullmatch(user_key):
            self.problem(f"{prefix}.user_key", "must be 32 hexadecimal characters")

    def _check_credentials(self, prefix: str, values: dict[str, Any], present: set[str]) -> None:
        auth = values.get("auth", "oauth")
        if auth == "oauth":
            grant = values.get("grant_type", "refresh_token")
            needed = ("business_unit_id", "client_id", "client_secret", *_GRANT_KEYS.get(grant, ()))
            allowed = {*_OAUTH_KEYS, *_GRANT_KEYS.get(grant, ())}
            mode = f'auth = "oauth", grant_type = "{grant}"'
        elif auth == "legacy":
            needed = allowed = _LEGACY_KEYS
            mode = 'auth = "legacy"'
        else:
            return
        for key in needed:
            if key not in present:
                self.problem(f"{prefix}.{key}", f"is required with {mode}")
            elif key not in _SECRET_KEYS and values.get(key) == "":
                self.problem(f"{prefix}.{key}", f"must not be empty with {mode}")
        for key in sorted((present & _CREDENTIAL_KEYS) - set(allowed)):
            self.problem(f"{prefix}.{key}", f"is not used with {mode}; remove it")

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
        raw = self._typed(table, source, str, path)
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
        self.problem(path, f"must be {_TYPE_NAMES[kind]}, not {_toml_type(value)}")
        return None

    def _number(self, table: Mapping[str, Any], key: str, path: str) -> float | None:
        value = table[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        self.problem(path, f"must be a number, not {_toml_type(value)}")
        return None

    def _url_ok(self, path: str, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(path, "must be an http:// or https:// URL")
        elif parts.username or parts.password:
            self.problem(path, "must not contain credentials; use the secret keys")
        elif parts.query or parts.fragment:
            self.problem(path, "must not have a query string or fragment")
        else:
            return True
        return False


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
}


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


def _choices(values: Any, last: str = "or") -> str:
    quoted = [f'"{v}"' for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def _ssl_detail(error: OSError) -> str:
    """OpenSSL's short reason ("KEY_VALUES_MISMATCH"), never file content."""
    detail = getattr(error, "reason", None) or error.strerror
    return f" ({detail})" if detail else ""


def _no_passphrase() -> bytes:
    # gRPC cannot use an encrypted key; never let OpenSSL prompt on a terminal for one.
    return b""


def listen_problem(listen: str) -> str | None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        return 'must be "HOST:PORT", e.g. "127.0.0.1:50051" or "[::]:50051"'
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return "the port must be a number from 0 to 65535"
    return None
