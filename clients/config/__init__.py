"""A Pardot connection's settings and the configuration schema they are declared with.

``clients.config.connection`` declares every connection setting once (default, rule,
doc line) and checks a connection against them; ``clients.config.schema`` is the
declaration machinery, which ``server.config`` uses for the server's own settings.
Nothing here reads a file, talks to the network or puts a setting's value in a message.
"""

from clients.config.connection import (
    AUTH_MODES,
    CONNECTION_RULES,
    CONNECTION_SETTINGS,
    GRANT_KEYS,
    GRANT_TYPES,
    LEGACY_KEYS,
    SECRET_KEYS,
    AuthMode,
    ConnectionConfig,
    ConnectionMisconfigured,
    GrantType,
    check_connection,
    check_legacy,
    check_oauth,
    connection_problems,
)

__all__ = [
    "AUTH_MODES",
    "CONNECTION_RULES",
    "CONNECTION_SETTINGS",
    "GRANT_KEYS",
    "GRANT_TYPES",
    "LEGACY_KEYS",
    "SECRET_KEYS",
    "AuthMode",
    "ConnectionConfig",
    "ConnectionMisconfigured",
    "GrantType",
    "check_connection",
    "check_legacy",
    "check_oauth",
    "connection_problems",
]
