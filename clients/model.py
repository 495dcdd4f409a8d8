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

    ``created`` is None when nobody can know whether the write created the prospect: an
    upsert sent in a batch, whose answer says neither. ``fields`` are Pardot's answer,
    or, for a planned write or a batch entry (whose answer holds no prospect), the
    fields as sent.
    """

    id: int | None
    email: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    created: bool | None = False
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
    #: How many prospects the call carried when it was a batch call (clients.coalescer);
    #: 0 for a call that is not one. Each caller in a batch lists the same call.
    batch_size: int = 0
