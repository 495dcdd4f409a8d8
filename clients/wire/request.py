"""One request to Pardot, as a value: everything a single attempt sends, whether it is
safe to send twice, and how its answer is read.

It is the one shape the layers pass down: the gateway and the write queue build it
through a dialect module (``clients.wire.v3v4``, ``clients.wire.v5``), the transport
sends it, and a retry resends the very same value (hence frozen). It never holds a
host (configuration chooses that) or a credential (the transport adds the headers),
so it can be logged and recorded as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Reads one HTTP answer (status, content type, body) in a dialect: the success
#: document, or raises the ProspectSyncError the answer really is.
Parse = Callable[[int, str, bytes], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PardotRequest:
    """``path`` never carries a query string or a secret; ``query`` goes in the URL,
    ``form`` (v3/v4 writes) or ``json_body`` (v5) in the body. ``idempotent`` says
    whether sending it twice is harmless: the retry policy resends one that is not only
    when Pardot provably did not process it. ``batch_size`` is the number of prospects
    a batch call carries (0: not a batch call), for its call records."""

    method: str
    path: str
    idempotent: bool
    parse: Parse
    query: Mapping[str, str] | None = None
    form: Mapping[str, str] | None = None
    json_body: Mapping[str, Any] | None = None
    batch_size: int = 0
