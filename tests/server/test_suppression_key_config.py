"""``server.suppression_key`` (docs/erasure.md, "The suppression and its key"): a secret
like the others (plain, ``_env`` or ``_file``), checked at load without ever being
quoted, and handed to the log redactor with every other configured secret."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog

from server.config import ConfigError, parse_config
from server.logging import REDACTED, configure_logging

from .conftest import offline_config

if TYPE_CHECKING:
    from .conftest import LogCapture

KEY = "c3" * 32


def test_unset_the_key_is_generated_and_kept_with_the_state(tmp_path: Path) -> None:
    assert parse_config(offline_config(), base_dir=tmp_path).server.suppression_key == ""


def test_the_key_comes_from_the_file_a_variable_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "suppression.key").write_text(KEY.upper() + "\n")
    (tmp_path / "suppression.key").chmod(0o600)
    for server, environ in (
        ({"suppression_key": KEY}, {}),
        ({"suppression_key_env": "PS_SUPPRESSION_KEY"}, {"PS_SUPPRESSION_KEY": KEY}),
        ({"suppression_key_file": "suppression.key"}, {}),
    ):
        config = parse_config(offline_config(**server), base_dir=tmp_path, environ=environ)
        assert config.server.suppression_key.lower() == KEY
        assert config.server.suppression_key in config.secrets
        assert KEY not in repr(config.server)


@pytest.mark.parametrize("bad", ["too-short", "ab" * 31, "zz" * 32, "ab" * 32 + "a"])
def test_a_key_that_is_not_32_bytes_of_hex_is_refused_without_being_quoted(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(offline_config(suppression_key=bad), base_dir=tmp_path)
    [problem] = refused.value.problems
    assert problem.startswith("server.suppression_key: ")
    assert "openssl rand -hex 32" in problem
    assert bad not in problem


def test_two_sources_are_one_too_many(tmp_path: Path) -> None:
    data = offline_config(suppression_key=KEY, suppression_key_env="PS_SUPPRESSION_KEY")
    with pytest.raises(ConfigError) as refused:
        parse_config(data, base_dir=tmp_path, environ={"PS_SUPPRESSION_KEY": KEY})
    assert any(p.startswith("server.suppression_key: set only one") for p in refused.value.problems)
    assert KEY not in str(refused.value)


def test_the_key_never_reaches_a_log_line(tmp_path: Path, logs: LogCapture) -> None:
    config = parse_config(
        offline_config(suppression_key_env="PS_SUPPRESSION_KEY"),
        base_dir=tmp_path,
        environ={"PS_SUPPRESSION_KEY": KEY},
    )
    configure_logging("debug", config.secrets, stream=logs.stream)  # as `serve` does
    structlog.get_logger("test").warning("leak", detail=f"key={KEY}", also=KEY)
    assert KEY not in logs.text
    assert REDACTED in logs.text
