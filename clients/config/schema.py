"""The configuration schema: a setting is declared once, on its dataclass field, with
its default, its rule and its doc line, and every check of a configuration reads it.

``ConnectionConfig`` (``clients.config``) and ``ServerConfig`` (``server.config``) stay
plain frozen dataclasses; their fields are declared with :func:`setting`. The TOML
reader, the checks of a configuration built in code and the README's settings tables
(a test renders them from here) all read those declarations, so a setting's type, its
rule and its meaning cannot drift apart.

A problem is ``(setting name, the fix)``: "must be more than 0 seconds"; whoever
reports it adds the key's place (``connections.default.``). A rule may be handed a
secret, so the rules here never quote the value they check. This module knows nothing
of TOML, files or the network.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
C = TypeVar("C", bound="DataclassInstance")

#: What is wrong with a value, phrased as its fix ("must be at least 1"); None when the
#: value is fine. A rule of a secret setting never quotes the value it was given.
Rule: TypeAlias = Callable[[T], "str | None"]
#: One problem: the setting's name and the fix.
Problem: TypeAlias = tuple[str, str]
#: A rule across settings of one configuration. ``given`` holds the names a file set
#: (None for a configuration built in code, where a setting left out and one set to its
#: default look the same, so rules about what a file names do not apply).
CrossRule: TypeAlias = Callable[[C, "frozenset[str] | None"], Iterable[Problem]]

_METADATA_KEY = "prospectsync.setting"

#: How a message names each type a setting can have (None: a table read on its own).
_TYPE_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    Path: "a string (a path)",
}


@dataclass(frozen=True)
class Setting:
    """One setting's declaration, as :func:`setting` left it on its field."""

    default: Any
    #: The one-line meaning (the README table's "meaning" column).
    doc: str
    rule: Rule[Any] | None = None
    #: A bound only a configuration file is held to (see :func:`setting`).
    file_rule: Rule[Any] | None = None
    #: Kept out of ``repr``; a file may give it as ``<name>_env`` or ``<name>_file``.
    secret: bool = False

    @property
    def kind(self) -> type | None:
        """The type a value must have: the default's; None for a sub-table (default None)."""
        if isinstance(self.default, Path):
            return Path  # not PosixPath: a path is a path on every system
        return None if self.default is None else type(self.default)

    def type_name(self) -> str:
        return type_name(self.kind)

    def shape_problem(self, value: object) -> str | None:
        """Whether ``value`` has the setting's type: a file's reader checks this itself
        (naming the TOML type); a configuration built in code may still hold anything."""
        kind = self.kind
        if kind is None:
            return None
        # bool is an int in Python; TOML keeps them apart, and so do we.
        if isinstance(value, bool) and kind is not bool:
            return f"must be {self.type_name()}"
        allowed: tuple[type, ...] = (int, float) if kind is float else (kind,)
        return None if isinstance(value, allowed) else f"must be {self.type_name()}"


def type_name(kind: type | None) -> str:
    """How a message names a type (None: a table read on its own)."""
    return "a table" if kind is None else _TYPE_NAMES.get(kind, kind.__name__)


def setting(
    default: T,
    *,
    doc: str,
    rule: Rule[T] | None = None,
    file_rule: Rule[T] | None = None,
    secret: bool = False,
) -> T:
    """Declares a dataclass field as a setting, so that its rule and doc line live
    beside its default instead of in each checker and each document.

    ``file_rule`` holds a bound that only a configuration file is checked against: an
    operator's file must stay inside Pardot's limits, while code (a test provoking
    err 66 on purpose) may cross them. ``secret`` keeps the value out of ``repr``.
    """
    declared = Setting(default=default, doc=doc, rule=rule, file_rule=file_rule, secret=secret)
    return dataclasses.field(default=default, repr=not secret, metadata={_METADATA_KEY: declared})


def settings_of(cls: type[DataclassInstance]) -> dict[str, Setting]:
    """The settings of a configuration class, by name, in declaration order (fields
    declared without :func:`setting`, such as a connection's name, are not settings)."""
    return {
        f.name: f.metadata[_METADATA_KEY]
        for f in dataclasses.fields(cls)
        if _METADATA_KEY in f.metadata
    }


def problems(
    config: C,
    cross_rules: Iterable[CrossRule[C]] = (),
    *,
    given: frozenset[str] | None = None,
) -> list[Problem]:
    """Every problem of ``config`` at once: each setting's own rule, then the rules
    across settings; ``given`` (a file's setting names) also applies the file rules."""
    found: list[Problem] = []
    for name, declared in settings_of(type(config)).items():
        value = getattr(config, name)
        if (shape := declared.shape_problem(value)) is not None:
            found.append((name, shape))
            continue
        for rule in (declared.rule, declared.file_rule if given is not None else None):
            if rule is not None and (text := rule(value)) is not None:
                found.append((name, text))
    broken = {name for name, _ in found}
    for cross in cross_rules:
        # A setting already refused has told its fix; what follows from its value is noise.
        found.extend(p for p in cross(config, given) if p[0] not in broken)
    return found


# --- rules ---------------------------------------------------------------------------


def more_than(low: float, unit: str = "") -> Rule[float]:
    fix = _phrase(f"must be more than {low}", unit)
    return lambda value: None if value > low else fix


def at_least(low: float, why: str = "") -> Rule[float]:
    fix = _phrase("must be 0 or more" if low == 0 else f"must be at least {low}", "", why)
    return lambda value: None if value >= low else fix


def at_most(high: float, why: str = "") -> Rule[float]:
    fix = _phrase(f"must be at most {high}", "", why)
    return lambda value: None if value <= high else fix


def between(low: float, high: float, unit: str = "", why: str = "") -> Rule[float]:
    fix = _phrase(f"must be from {low} to {high}", unit, why)
    return lambda value: None if low <= value <= high else fix


def not_negative(value: float) -> str | None:
    """For durations, where 0 means "not at all" and a negative one means nothing."""
    return None if value >= 0 else "must not be negative (0 or more seconds)"


def one_of(*choices: object, why: str = "") -> Rule[object]:
    fix = _phrase(f"must be {choice_list(choices)}", "", why)
    return lambda value: None if value in choices else fix


def full_match(pattern: re.Pattern[str], fix: str) -> Rule[str]:
    """``pattern`` over the whole value; an empty value passes, since whether a setting
    is needed at all is a rule across settings (the auth mode decides)."""
    return lambda value: None if value == "" or pattern.fullmatch(value) else fix


def http_url(value: str) -> str | None:
    """A base URL the client may send credentials to: http(s), a host, nothing else."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials; use the secret keys"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    return None


def choice_list(choices: Iterable[object], last: str = "or") -> str:
    """``"a", "b" or "c"``: strings quoted as TOML writes them, numbers bare."""
    quoted = [f'"{c}"' if isinstance(c, str) else str(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def _phrase(fix: str, unit: str = "", why: str = "") -> str:
    return fix + (f" {unit}" if unit else "") + (f" ({why})" if why else "")
