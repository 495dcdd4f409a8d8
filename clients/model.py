"""Plain values that cross the gateway boundary: what a strategy gets back from Pardot,
and the record of each call (which becomes ``PardotCall`` in every response)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Field values as Pardot takes them on the wire (form-encoded strings).
Fields = Mapping[str, str]


@dataclass(frozen=True)
class Prospect:
    """One prospect as Pardot returned it, or as a dry run would have written it.

    ``id`` is None only when nobody can know it: a planned create in a dry run, or an
    entry of a batch whose response carries no ids. Never a guess.
    """

    id: int | None
    email: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    created: bool = False
    planned: bool = False

    def get(self, name: str) -> Any:
        return self.fields.get(name)


@dataclass
class CallRecord:
    """One HTTP call to Pardot, made or (dry run) planned. ``path`` never holds secrets:
    credentials travel in headers only."""

    method: str
    path: str
    http_status: int = 0
    err_code: int = 0
    duration_s: float = 0.0
    planned: bool = False
    attempt: int = 1
