"""Pardot's batch endpoints on the wire (PARDOT_API.md, "Batch"): which prospect writes
have a batch form, the ``prospects`` JSON of a batch in each API version, and what a
batch answer says about each entry.

- v3 keys its entries by id or email (a JSON object), so one batch holds one entry
  per key; v4 takes a list of entries that carry ``id``, ``fid`` or ``email``.
- A multi-value custom field (a tuple) is sent in an entry as the single call sends
  it, ``<field>_0``, ``<field>_1``, … (``clients.wire.v3v4.form_fields``): a client in
  production against v4 batches does so (code-dot-org/code-dot-org,
  lib/cdo/contact_rollups/v2/pardot.rb, ``convert_to_prospect_fields``: "For multi data
  fields (multi-select, etc.), set key names as [field_name]_0, [field_name]_1"), while
  no public client or recording shows a JSON array in a batch entry (UNCONFIRMED; the
  fake's ``batch_list_values`` switch).
- The answer names failed entries by their index, with Pardot's error TEXT and no
  err_code; every other entry was processed. It holds no ids. When an entry failed
  the envelope is ``stat="fail"`` with no err_code (HTTP 200, RECORDED): a partial
  success, which the batch request's parse returns for its entries to be read
  (``clients.wire.responses.parse_batch_response``). Whether v3 names an entry by its
  index or by the key it was sent under is UNCONFIRMED: both are read, and a name that
  could be either is matched to neither.

Data in, data out: this module never sends, waits, or decides about retries. The
write queue (``clients.coalescer``) decides which writes share a call and asks here for
the request that carries them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from clients.wire.request import PardotRequest
from clients.wire.responses import parse_batch_response
from clients.wire.v3v4 import api_request, form_fields, prospect_write
from strategies.core import pardot_facts as facts
from strategies.core.errors import PardotError
from strategies.core.model import Fields

#: (API version, single-call operation, id field) → the batch operation that does the
#: same for many prospects. Not here: v4 upsert by email (it always creates, and the
#: gateway refuses it), reads, deletes.
_BATCH_OPERATION: dict[tuple[int, str, str], str] = {
    (3, "upsert", "email"): facts.BATCH_UPSERT,
    (3, "upsert", "id"): facts.BATCH_UPSERT,
    (3, "update", "id"): facts.BATCH_UPDATE,
    (3, "update", "email"): facts.BATCH_UPDATE,
    (3, "create", "email"): facts.BATCH_CREATE,
    (4, "update", "id"): facts.BATCH_UPDATE,
    (4, "update", "fid"): facts.BATCH_UPDATE,
    (4, "upsert", "id"): facts.BATCH_UPSERT,
    (4, "upsert", "fid"): facts.BATCH_UPSERT,
    (4, "create", "email"): facts.BATCH_CREATE,
}


@dataclass(frozen=True)
class BatchKind:
    """Writes that can share one batch call (of one connection)."""

    api_version: int
    operation: str  # batchCreate, batchUpdate or batchUpsert


def batch_kind(api_version: int, operation: str, id_field: str) -> BatchKind | None:
    """The batch a write can ride in; None when Pardot has no batch form for it."""
    batch_operation = _BATCH_OPERATION.get((api_version, operation, id_field))
    return BatchKind(api_version, batch_operation) if batch_operation else None


@dataclass(frozen=True)
class BatchEntry:
    """One prospect write: what its single call would send (``operation/<id_field>/
    <id_value>`` with ``fields`` as the form), which is also what its batch entry says."""

    operation: str
    id_field: str
    id_value: str
    fields: Fields

    @property
    def key(self) -> str:
        """What two entries of one batch never share: v3 keys its JSON by id or email,
        and two writes of one prospect in one call would leave their order to Pardot.
        Emails are matched without regard to case, as Pardot matches them."""
        value = self.id_value.strip().lower() if self.id_field == "email" else self.id_value
        return f"{self.id_field}:{value}"

    def size(self) -> int:
        """Characters the entry adds to a batch (near enough its bytes in memory)."""
        return len(self.id_value) + sum(
            len(k) + 6 + (len(v) if isinstance(v, str) else sum(len(i) + len(k) + 8 for i in v))
            for k, v in self.fields.items()
        )


def encode(kind: BatchKind, entries: Sequence[BatchEntry]) -> str:
    """The ``prospects`` form value: v3 ``{"prospects": {key: fields}}``, v4
    ``{"prospects": [{id_field: value, ...fields}]}``, each entry's fields as its
    single call's form (multi-values as ``<field>_<n>``). The key wins over a field of
    the same name, as the path wins over the form in a single call."""
    if len(entries) > facts.MAX_BATCH_PROSPECTS:
        raise ValueError(f"a batch holds at most {facts.MAX_BATCH_PROSPECTS} prospects")
    prospects: dict[str, Any] | list[dict[str, str]]
    if kind.api_version == 3:
        prospects = {}
        for entry in entries:
            if entry.id_value in prospects:
                raise ValueError("two entries of a v3 batch share a key")
            prospects[entry.id_value] = form_fields(entry.fields)
    else:
        prospects = [
            {**form_fields(entry.fields), entry.id_field: entry.id_value} for entry in entries
        ]
    return json.dumps({"prospects": prospects}, separators=(",", ":"), ensure_ascii=False)


def batch_request(
    kind: BatchKind, entries: Sequence[BatchEntry], *, idempotent: bool
) -> PardotRequest:
    """The batch call that carries ``entries``: ``idempotent`` only when every one of
    them is (a batch holding a create is not). Its answer is read by
    ``parse_batch_response``: a ``stat="fail"`` without err_code is the entries' news,
    not the call's failure."""
    prospects = encode(kind, entries)
    request = api_request(
        "POST",
        facts.PROSPECT,
        kind.api_version,
        kind.operation,
        {},
        {facts.BATCH_PROSPECTS_PARAM: prospects},
        idempotent=idempotent,
        batch_size=len(entries),
    )
    return replace(request, parse=parse_batch_response)


def single_request(kind: BatchKind, entry: BatchEntry, *, idempotent: bool) -> PardotRequest:
    """``entry`` alone, through the single-call endpoint (its answer holds the prospect)."""
    return prospect_write(
        kind.api_version,
        entry.operation,
        entry.id_field,
        entry.id_value,
        entry.fields,
        idempotent=idempotent,
    )


class UnreadableBatchAnswer(ValueError):
    """A batch answer whose ``errors`` cannot be matched to entries: nobody can tell
    which entries failed."""


def entry_errors(
    envelope: Mapping[str, Any], count: int, *, keys: Sequence[str] = ()
) -> dict[int, PardotError]:
    """The failed entries of a batch of ``count``: index → the PardotError its single
    call would have raised (err_code read back from Pardot's text; 0 when the text is
    not one this client knows).

    ``keys`` are the v3 entries' keys in order (their email or id): a v3 answer may name
    an entry by it instead of its index (UNCONFIRMED). A name that is an index of the
    batch and also some entry's key is ambiguous. Raises UnreadableBatchAnswer when
    ``errors`` cannot be read as entry → text, when a name is no entry's or ambiguous,
    or when the answer says ``stat="fail"`` yet names no failed entry."""
    raw = envelope.get("errors")
    if raw is None or raw == [] or raw == {} or raw == "":
        if _stat(envelope) == "fail":
            raise UnreadableBatchAnswer('stat="fail" without an err_code names no failed entry')
        return {}  # PHP renders an empty map as []
    if not isinstance(raw, Mapping):
        raise UnreadableBatchAnswer(f"errors is a {type(raw).__name__}, not a map of indexes")
    by_key = _key_indexes(keys)
    failed: dict[int, PardotError] = {}
    for key, value in raw.items():
        index = _entry_index(key, count, by_key)
        text = _text(value)
        failed[index] = PardotError(err_code_of(text), text)
    return failed


def _stat(envelope: Mapping[str, Any]) -> object:
    attributes = envelope.get("@attributes")
    return attributes.get("stat") if isinstance(attributes, Mapping) else None


def err_code_of(text: str) -> int:
    """The err_code whose text Pardot sent (exact, or the start of it: Pardot adds
    suffixes to some texts); 0 when no known text matches."""
    wanted = _normal(text)
    for code, known in facts.ENTRY_ERROR_TEXTS.items():
        normal = _normal(known)
        if wanted == normal or wanted.startswith(normal + ":"):
            return code
    return 0


def _normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


def _key_indexes(keys: Sequence[str]) -> dict[str, int]:
    """Each entry key (emails without regard to case, as Pardot matches them) → index."""
    return {key.strip().casefold(): index for index, key in enumerate(keys)}


def _entry_index(key: Any, count: int, by_key: Mapping[str, int]) -> int:
    """The entry ``key`` names: its index, or (v3) the entry sent under that key."""
    named = by_key.get(str(key).strip().casefold()) if by_key else None
    index: int | None
    try:
        index = int(key)
    except (TypeError, ValueError):
        index = None
    if index is not None and not (0 <= index < count and str(index) == str(key).strip()):
        index = None
    if index is not None and named is not None and named != index:
        raise UnreadableBatchAnswer(
            f"errors names entry {key!r}, which is both an index and another entry's key"
        )
    if index is not None:
        return index
    if named is not None:
        return named
    raise UnreadableBatchAnswer(f"errors names entry {key!r} of a batch of {count}")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, Mapping):  # an XML-ish {"#text": ...} or similar
        return "; ".join(str(v) for v in value.values())
    return "" if value is None else str(value)
