"""server.config: the TOML contract, every refusal naming its key, secrets from env/file."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from server.config import ConfigError, ServerConfig, load_config, parse_config

BU = "0Uv000000000001CAA"
USER_KEY = "5ecae7c0ffee5ecae7c0ffee5ecae7c0"
SECRETS = {
    "client_secret": "cs-3f1e9a-very-secret",
    "refresh_token": "rt-77aa01-very-secret",
    "password": "pw-b0b0-very-secret",
    "user_key": USER_KEY,
}

OAUTH = f"""
[connections.default]
pardot_url = "https://pi.pardot.com"
api_version = 4
business_unit_id = "{BU}"
auth = "oauth"
token_url = "https://login.salesforce.com/services/oauth2/token"
grant_type = "refresh_token"
client_id = "client-id"
client_secret = "{SECRETS["client_secret"]}"
refresh_token = "{SECRETS["refresh_token"]}"
"""

LEGACY = f"""
[connections.legacy]
pardot_url = "https://pi.pardot.com"
api_version = 3
auth = "legacy"
email = "legacy@example.com"
password = "{SECRETS["password"]}"
user_key = "{USER_KEY}"
"""


def write(tmp_path: Path, text: str, *, mode: int = 0o600, name: str = "service.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def refusal(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ=environ or {})
    return str(caught.value)


def test_the_documented_shape_loads(tmp_path: Path) -> None:
    text = '[server]\nlisten = "127.0.0.1:6000"\nstate_dir = "state"\n' + OAUTH + LEGACY
    config = load_config(write(tmp_path, text), environ={})

    assert config.server.listen == "127.0.0.1:6000"
    assert config.server.state_dir == tmp_path / "state"  # relative to the config file
    assert config.server.reflection is True
    default, legacy = config.connections["default"], config.connections["legacy"]
    assert default.name == "default" and legacy.name == "legacy"
    assert default.business_unit_id == BU and default.api_version == 4
    assert default.client_secret == SECRETS["client_secret"]
    assert legacy.auth == "legacy" and legacy.api_version == 3 and legacy.user_key == USER_KEY
    assert set(config.secrets) == set(SECRETS.values())
    assert config.warnings == ()


def test_defaults_fill_what_the_file_leaves_out(tmp_path: Path) -> None:
    minimal = f"""
    [connections.default]
    business_unit_id = "{BU}"
    client_id = "id"
    client_secret = "s3cret-value"
    refresh_token = "r3fresh-value"
    """
    config = load_config(write(tmp_path, minimal), environ={})
    assert config.server.listen == ServerConfig().listen == "127.0.0.1:50051"
    assert config.server.state_dir == tmp_path / ".prospectsync"
    connection = config.connections["default"]
    assert (connection.pardot_url, connection.api_version, connection.auth) == (
        "https://pi.pardot.com",
        4,
        "oauth",
    )


def test_transport_settings_are_read(tmp_path: Path) -> None:
    text = (
        OAUTH + 'timeout_s = 2\nmax_concurrency = 3\nmax_retries = 0\ntracker_host = "go.x.com"\n'
    )
    connection = load_config(write(tmp_path, text), environ={}).connections["default"]
    assert connection.timeout_s == 2.0 and isinstance(connection.timeout_s, float)
    assert (connection.max_concurrency, connection.max_retries) == (3, 0)
    assert connection.tracker_host == "go.x.com"


def replace_line(text: str, key: str, new: str | None) -> str:
    """``text`` with the line setting ``key`` replaced by ``new`` (or removed)."""
    lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
    if new is not None:
        lines.append(new)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        (replace_line(OAUTH, "api_version", "api_version = 6"), "default.api_version", "3, 4 or 5"),
        (replace_line(OAUTH, "api_version", 'api_version = "4"'), "default.api_version", "integer"),
        (
            replace_line(OAUTH, "api_version", "api_version = true"),
            "default.api_version",
            "integer",
        ),
        (replace_line(OAUTH, "auth", 'auth = "basic"'), "default.auth", '"oauth" or "legacy"'),
        (replace_line(OAUTH, "grant_type", 'grant_type = "jwt"'), "default.grant_type", "password"),
        (
            replace_line(OAUTH, "pardot_url", 'pardot_url = "ftp://pi.pardot.com"'),
            "default.pardot_url",
            "http",
        ),
        (
            replace_line(OAUTH, "token_url", 'token_url = "https://u:p@login.example.com/t"'),
            "default.token_url",
            "credentials",
        ),
        (replace_line(OAUTH, "business_unit_id", None), "default.business_unit_id", "required"),
        (
            replace_line(OAUTH, "business_unit_id", 'business_unit_id = "0Uv12"'),
            "default.business_unit_id",
            "0Uv",
        ),
        (replace_line(OAUTH, "client_id", None), "default.client_id", "required"),
        (replace_line(OAUTH, "client_secret", None), "default.client_secret", "required"),
        (replace_line(OAUTH, "refresh_token", None), "default.refresh_token", "required"),
        (
            replace_line(OAUTH, "grant_type", 'grant_type = "password"'),
            "default.username",
            'grant_type = "password"',
        ),
        (
            replace_line(OAUTH, "grant_type", 'grant_type = "client_credentials"'),
            "default.refresh_token",
            "not used",
        ),
        (replace_line(LEGACY, "user_key", None), "legacy.user_key", "required"),
        (replace_line(LEGACY, "user_key", 'user_key = "abc"'), "legacy.user_key", "32 hex"),
        (replace_line(LEGACY, "email", None), "legacy.email", "required"),
        (LEGACY + 'client_id = "x"\n', "legacy.client_id", "not used"),
        (OAUTH + "max_concurrency = 6\n", "default.max_concurrency", "err 66"),
        (OAUTH + "timeout_s = 0\n", "default.timeout_s", "more than 0"),
        (OAUTH + 'timeout_s = "fast"\n', "default.timeout_s", "number"),
        (OAUTH + "max_retries = -1\n", "default.max_retries", "0 or more"),
        (OAUTH + 'tracker_host = "https://go.x.com/"\n', "default.tracker_host", "host name"),
        (OAUTH + "backoff_base_s = -1\n", "default.backoff_base_s", "negative"),
        (OAUTH + "api_verison = 4\n", "default.api_verison", "did you mean 'api_version'"),
        (OAUTH + 'client_secret_env = "X"\n', "default.client_secret", "only one of"),
        ('[server]\nlisten = "localhost"\n' + OAUTH, "server.listen", "HOST:PORT"),
        ('[server]\nlisten = "127.0.0.1:99999"\n' + OAUTH, "server.listen", "65535"),
        ('[server]\nlog_level = "loud"\n' + OAUTH, "server.log_level", '"debug"'),
        ('[server]\nreflection = "yes"\n' + OAUTH, "server.reflection", "true or false"),
        ("[server]\nport = 1\n" + OAUTH, "server.port", "unknown key"),
        ("[logging]\nlevel = 1\n" + OAUTH, "logging", "unknown key"),
        ("[server]\n", "connections", "at least one"),
        ('connections = "default"\n', "connections", "must be a table"),
        (OAUTH.replace("connections.default", 'connections."a b"'), "connections.a b", "letters"),
    ],
)
def test_each_refusal_names_its_key(tmp_path: Path, text: str, key: str, says: str) -> None:
    message = refusal(tmp_path, text)
    assert key in message
    assert says in message
    for secret in SECRETS.values():
        assert secret not in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = replace_line(OAUTH, "api_version", "api_version = 7") + "max_retries = -2\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert len(caught.value.problems) == 2
    assert "\n" not in str(caught.value)


THREE_BAD_KEYS = (
    "backoff_base_s = -1\nauth_failure_cooldown_s = -1\nunconfirmed_create_hold_s = -1\n"
)
THREE_PROBLEMS = [
    f"connections.default.{key}: must not be negative (0 or more seconds)"
    for key in ("backoff_base_s", "auth_failure_cooldown_s", "unconfirmed_create_hold_s")
]


def test_three_bad_keys_are_three_problems_of_one_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, OAUTH + THREE_BAD_KEYS), environ={})
    assert caught.value.problems == THREE_PROBLEMS


def test_three_bad_keys_are_three_problems_of_one_parse() -> None:
    connection = {
        "business_unit_id": BU,
        "client_id": "client-id",
        "client_secret": SECRETS["client_secret"],
        "refresh_token": SECRETS["refresh_token"],
        "backoff_base_s": -1,
        "auth_failure_cooldown_s": -1,
        "unconfirmed_create_hold_s": -1,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config({"connections": {"default": connection}}, environ={})
    assert caught.value.problems == THREE_PROBLEMS


def test_problems_of_every_kind_come_together(tmp_path: Path) -> None:
    """A type, a rule of one setting, a file-only bound, a rule across settings, an
    unknown key and a [server] setting: six problems, one refusal."""
    text = (
        "[server]\nmax_in_flight = 0\n"
        + replace_line(OAUTH, "refresh_token", None)
        + 'timeout_s = "fast"\nmax_retries = -1\nmax_concurrency = 9\nretries = 1\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    keys = sorted(problem.split(":")[0] for problem in caught.value.problems)
    assert keys == [
        "connections.default.max_concurrency",
        "connections.default.max_retries",
        "connections.default.refresh_token",
        "connections.default.retries",
        "connections.default.timeout_s",
        "server.max_in_flight",
    ]


def test_a_setting_the_file_could_not_read_is_one_problem_not_two(tmp_path: Path) -> None:
    """``client_id = 5`` is refused for its type; that its default is empty is no news."""
    text = replace_line(OAUTH, "client_id", "client_id = 5")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert caught.value.problems == [
        "connections.default.client_id: must be a string, not an integer"
    ]


def test_backoff_base_may_not_exceed_its_cap(tmp_path: Path) -> None:
    message = refusal(tmp_path, OAUTH + "backoff_base_s = 3\nbackoff_max_s = 2\n")
    assert "connections.default.backoff_base_s: must not be more than backoff_max_s" in message


def test_refusals_never_echo_a_secret_value(tmp_path: Path) -> None:
    bad_key = "this-user-key-is-secret-but-not-hex"
    message = refusal(tmp_path, replace_line(LEGACY, "user_key", f'user_key = "{bad_key}"'))
    assert "legacy.user_key" in message and bad_key not in message


def test_unreadable_or_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.toml")
    broken = write(tmp_path, f'[connections.default]\nclient_secret = "{SECRETS["password"]}')
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(broken)
    assert SECRETS["password"] not in str(caught.value)


# --- secrets from the environment and from files -------------------------------------


def oauth_with(**sources: str) -> str:
    """OAUTH with client_secret/refresh_token given by the ``sources`` lines instead."""
    text = replace_line(replace_line(OAUTH, "client_secret", None), "refresh_token", None)
    return text + "".join(f'{key} = "{value}"\n' for key, value in sources.items())


def test_secrets_come_from_environment_variables(tmp_path: Path) -> None:
    environ = {"PS_CLIENT_SECRET": "from-env-secret", "PS_REFRESH": "from-env-refresh"}
    text = oauth_with(client_secret_env="PS_CLIENT_SECRET", refresh_token_env="PS_REFRESH")
    connection = load_config(write(tmp_path, text), environ=environ).connections["default"]
    assert connection.client_secret == "from-env-secret"
    assert connection.refresh_token == "from-env-refresh"


def test_the_process_environment_is_the_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PS_TEST_CLIENT_SECRET", "process-env-secret")
    text = oauth_with(client_secret_env="PS_TEST_CLIENT_SECRET", refresh_token="r")
    connection = load_config(write(tmp_path, text)).connections["default"]
    assert connection.client_secret == "process-env-secret"


def test_a_missing_or_empty_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    text = oauth_with(client_secret_env="PS_NOPE", refresh_token_env="PS_EMPTY")
    message = refusal(tmp_path, text, environ={"PS_EMPTY": ""})
    assert "connections.default.client_secret_env: environment variable PS_NOPE is not set" in (
        message
    )
    assert "connections.default.refresh_token_env: environment variable PS_EMPTY is empty" in (
        message
    )


def test_secrets_come_from_files_without_their_trailing_newline(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "client_secret").write_text("from-file-secret\n")
    (secrets_dir / "refresh_token").write_text("from-file-refresh\r\n")
    absolute = secrets_dir / "refresh_token"
    text = oauth_with(client_secret_file="secrets/client_secret", refresh_token_file=str(absolute))
    config = load_config(write(tmp_path, text), environ={})
    connection = config.connections["default"]
    assert connection.client_secret == "from-file-secret"  # relative to the config file
    assert connection.refresh_token == "from-file-refresh"


def test_a_missing_or_empty_secret_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    message = refusal(tmp_path, oauth_with(client_secret_file="nope", refresh_token_file="empty"))
    assert "connections.default.client_secret_file: cannot read" in message
    assert "connections.default.refresh_token_file:" in message and "is empty" in message


def test_a_world_readable_secret_file_gets_a_warning(tmp_path: Path) -> None:
    secret = tmp_path / "client_secret"
    secret.write_text("from-file-secret\n")
    secret.chmod(0o644)
    text = oauth_with(client_secret_file="client_secret", refresh_token_env="R")
    config = load_config(write(tmp_path, text), environ={"R": "refresh"})
    [warning] = config.warnings
    assert warning.event == "config.secret_file_world_readable"
    assert warning.fields["key"] == "connections.default.client_secret_file"


# --- the world-readable warning --------------------------------------------------------


def test_a_world_readable_file_with_plain_secrets_gets_a_warning(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, OAUTH + LEGACY, mode=0o644), environ={})
    [warning] = config.warnings
    assert warning.event == "config.world_readable"
    assert set(warning.fields["keys"]) == {
        "connections.default.client_secret",
        "connections.default.refresh_token",
        "connections.legacy.password",
        "connections.legacy.user_key",
    }
    rendered = repr(warning)
    for secret in SECRETS.values():
        assert secret not in rendered


def test_no_warning_when_only_the_owner_can_read(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, OAUTH, mode=0o640), environ={}).warnings == ()


def test_no_warning_when_the_secrets_live_elsewhere(tmp_path: Path) -> None:
    text = oauth_with(client_secret_env="S", refresh_token_env="R")
    config = load_config(write(tmp_path, text, mode=0o644), environ={"S": "s", "R": "r"})
    assert config.warnings == ()


def test_no_default_connection_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, LEGACY), environ={})
    assert [w.event for w in config.warnings] == ["config.no_default_connection"]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_an_unreadable_config_file_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, OAUTH, mode=0o000)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user who can read any file")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


# --- [server]: idempotency, message size, TLS, caller tokens ---------------------------
# (TLS files that load need a real certificate: tests/e2e/test_security.py makes one.)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TOKENS = ("caller-token-aaaaaaaaaaaa", "caller-token-bbbbbbbbbbbb")


def test_the_new_server_settings_default_and_load(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, OAUTH), environ={}).server
    assert defaults.idempotency_window_s == 24 * 3600
    assert defaults.max_message_bytes == 1024 * 1024
    assert (defaults.tls, defaults.auth) == (None, None)

    text = "[server]\nidempotency_window_s = 60\nmax_message_bytes = 65536\n" + OAUTH
    server = load_config(write(tmp_path, text), environ={}).server
    assert (server.idempotency_window_s, server.max_message_bytes) == (60.0, 65536)


def test_caller_tokens_come_from_the_file_a_variable_or_a_token_file(tmp_path: Path) -> None:
    listed = f"[server.auth]\ntokens = {list(TOKENS)!r}\n".replace("'", '"')
    config = load_config(write(tmp_path, listed + OAUTH), environ={})
    assert config.server.auth is not None and config.server.auth.tokens == TOKENS
    assert set(TOKENS) <= set(config.secrets)  # redacted like every other secret
    assert TOKENS[0] not in repr(config)

    from_env = '[server.auth]\ntokens_env = "PS_TOKENS"\n' + OAUTH
    config = load_config(write(tmp_path, from_env), environ={"PS_TOKENS": ", ".join(TOKENS)})
    assert config.server.auth.tokens == TOKENS

    (tmp_path / "tokens").write_text(f"# rotated 2026-11\n{TOKENS[0]}\n\n{TOKENS[1]}  # new\n")
    (tmp_path / "tokens").chmod(0o600)
    from_file = '[server.auth]\ntokens_file = "tokens"\n' + OAUTH
    config = load_config(write(tmp_path, from_file), environ={})
    assert config.server.auth.tokens == TOKENS and config.warnings == ()


def test_plain_caller_tokens_in_a_world_readable_file_get_the_warning(tmp_path: Path) -> None:
    text = f'[server.auth]\ntokens = ["{TOKENS[0]}"]\n' + OAUTH
    config = load_config(write(tmp_path, text, mode=0o644), environ={})
    [warning] = config.warnings
    assert "server.auth.tokens" in warning.fields["keys"]


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("[server]\nidempotency_window_s = 0\n", "server.idempotency_window_s", "more than 0"),
        ('[server]\nidempotency_window_s = "1d"\n', "server.idempotency_window_s", "number"),
        ("[server]\nmax_message_bytes = 10\n", "server.max_message_bytes", "from 1024"),
        ("[server]\nmax_message_bytes = 1.5\n", "server.max_message_bytes", "integer"),
        ('[server.tls]\ncert_file = "c.pem"\n', "server.tls.key_file", "required"),
        ('[server.tls]\ncert_file = "nope.pem"\n', "server.tls.cert_file", "cannot read"),
        ('[server.tls]\ncert_file = "plain.txt"\n', "server.tls.cert_file", "not a PEM"),
        ('[server.tls]\ncertfile = "c.pem"\n', "server.tls.certfile", "did you mean"),
        (
            '[server.tls]\ncert_file = "c.pem"\nkey_file = "c.pem"\n',
            "server.tls",
            "must be a certificate chain and its unencrypted private key",
        ),
        ('[server]\ntls = "on"\n', "server.tls", "must be a table"),
        ("[server.auth]\n", "server.auth", "exactly one of"),
        ('[server.auth]\ntokens = ["short"]\n', "server.auth.tokens[0]", "at least 16"),
        ('[server.auth]\ntokens = "one-token-only-xxxxx"\n', "server.auth.tokens", "array"),
        ("[server.auth]\ntokens = []\n", "server.auth.tokens", "holds no token"),
        ('[server.auth]\ntokens_env = "PS_UNSET"\n', "server.auth.tokens_env", "not set"),
        (
            f'[server.auth]\ntokens = ["{TOKENS[0]}"]\ntokens_env = "X"\n',
            "server.auth",
            "exactly one of",
        ),
    ],
)
def test_each_server_refusal_names_its_key(tmp_path: Path, text: str, key: str, says: str) -> None:
    (tmp_path / "c.pem").write_text(PEM)
    (tmp_path / "plain.txt").write_text("not a certificate")
    message = refusal(tmp_path, text + OAUTH)
    assert key in message and says in message


def test_a_bad_caller_token_is_named_by_position_never_quoted(tmp_path: Path) -> None:
    bad = "has spaces in it, which no bearer token may"
    message = refusal(tmp_path, f'[server.auth]\ntokens = ["{TOKENS[0]}", "{bad}"]\n' + OAUTH)
    assert "server.auth.tokens[1]" in message and "tokens[0]" not in message
    assert bad not in message and TOKENS[0] not in message


# --- [server] state and workers, [redis] (issue 13) ----------------------------------

REDIS_URL = "redis://:redis-pw-0c7f1d-very-secret@10.0.0.7:6379/0"


def test_the_state_backend_defaults_to_embedded_sqlite_one_worker(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, OAUTH), environ={})
    assert (config.server.state, config.server.workers, config.redis) == ("sqlite", 1, None)


def test_the_redis_shape_of_the_issue_loads(tmp_path: Path) -> None:
    text = (
        f"""
[server]
state = "redis"
workers = 3

[redis]
url = "{REDIS_URL}"
key_prefix = "ps-eu:"
timeout_s = 0.25
"""
        + OAUTH
    )
    config = load_config(write(tmp_path, text), environ={})
    assert (config.server.state, config.server.workers) == ("redis", 3)
    assert config.redis is not None
    assert (config.redis.url, config.redis.key_prefix, config.redis.timeout_s) == (
        REDIS_URL,
        "ps-eu:",
        0.25,
    )
    # The url may hold a password: redacted like every secret, kept out of repr.
    assert REDIS_URL in config.secrets and "redis-pw-0c7f1d-very-secret" in config.secrets
    assert "very-secret" not in repr(config)

    defaults = load_config(
        write(tmp_path, '[server]\nstate = "redis"\n[redis]\nurl = "redis://h/0"\n' + OAUTH),
        environ={},
    )
    assert defaults.redis is not None
    assert (defaults.redis.key_prefix, defaults.redis.timeout_s) == ("prospectsync:", 0.5)


def test_the_redis_url_comes_from_a_variable_or_a_file_like_every_secret(tmp_path: Path) -> None:
    head = '[server]\nstate = "redis"\n[redis]\n'
    config = load_config(
        write(tmp_path, head + 'url_env = "PS_REDIS"\n' + OAUTH), environ={"PS_REDIS": REDIS_URL}
    )
    assert config.redis is not None and config.redis.url == REDIS_URL

    (tmp_path / "redis-url").write_text(REDIS_URL + "\n")
    (tmp_path / "redis-url").chmod(0o600)
    config = load_config(write(tmp_path, head + 'url_file = "redis-url"\n' + OAUTH), environ={})
    assert config.redis is not None and config.redis.url == REDIS_URL
    assert config.warnings == ()


def test_several_workers_need_the_redis_state_and_the_error_names_both_keys(
    tmp_path: Path,
) -> None:
    message = refusal(tmp_path, "[server]\nworkers = 2\n" + OAUTH)
    assert "server.workers" in message and "server.state" in message
    assert '"redis"' in message


def test_the_redis_state_needs_the_redis_table(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[server]\nstate = "redis"\n' + OAUTH)
    assert "server.state" in message and "[redis]" in message


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('[server]\nstate = "postgres"\n', "server.state", '"sqlite" or "redis"'),
        ("[server]\nworkers = 0\n", "server.workers", "at least 1"),
        ('[server]\nworkers = "2"\n', "server.workers", "integer"),
        ('[redis]\nkey_prefix = "p:"\n', "redis.url", "required"),
        ('[redis]\nurl = "http://h:6379"\n', "redis.url", "redis://"),
        ('[redis]\nurl = "redis://h/0"\ntimeout_s = 0\n', "redis.timeout_s", "more than 0"),
        ('[redis]\nurl = "redis://h/0"\nkey_prefix = ""\n', "redis.key_prefix", "empty"),
        ('[redis]\nurl = "redis://h/0"\nurl_env = "X"\n', "redis.url", "only one of"),
        ('[redis]\nurl = "redis://h/0"\nprefix = "p:"\n', "redis.prefix", "did you mean"),
        ('redis = "redis://h/0"\n', "redis", "must be a table"),
    ],
)
def test_each_redis_refusal_names_its_key(tmp_path: Path, text: str, key: str, says: str) -> None:
    message = refusal(tmp_path, text + OAUTH)
    assert key in message and says in message


def test_a_bad_redis_url_is_never_quoted(tmp_path: Path) -> None:
    bad = "rediz://:pw-quoted-nowhere@h:6379/0"
    message = refusal(tmp_path, f'[redis]\nurl = "{bad}"\n' + OAUTH)
    assert "redis.url" in message and "pw-quoted-nowhere" not in message
