"""Batch endpoints: do/batchCreate, do/batchUpdate, do/batchUpsert (PARDOT_API.md,
"Batch").

``prospects`` (form or query) holds JSON or XML. v3 JSON is keyed by id or email
(``{"prospects": {"12": {...}, "a@b.com": {...}}}``); v4 JSON is a list of entries that
carry ``email``, ``id`` or ``fid``. XML is ``<prospects><prospect>…</prospect></prospects>``
(v3 keys an entry by its ``identifier`` attribute, else its ``id``, else its ``email``).
More than 50 entries → err 70; a missing or unreadable ``prospects`` (a raw JSON body
has none) → err 71, HTTP 400 (RECORDED). Each entry runs the single-prospect rules of
its version, and a "refuse" fault may fail the entry it names (state.py ``inject``).

The answer (``BatchAnswer``, rendered by wire.py) is RECORDED: every entry is processed
on its own; any failed entry makes it ``stat="fail"`` without an err_code, HTTP 200,
with the failed entries under ``errors`` keyed by their index as a string; a clean
batch is ``stat="ok"`` with ``errors: {}``, HTTP 201 when an entry created a prospect
and 200 otherwise. It holds no ids. v3 error keys: the ``v3_batch_error_keys`` switch
(UNCONFIRMED: indexes, or the identifiers the entries were sent under).

A multi-value custom field in a JSON entry: ``<field>_0``, ``<field>_1`` keys, as a
single write's form takes them (a v4 client in production sends them so:
code-dot-org/code-dot-org, lib/cdo/contact_rollups/v2/pardot.rb). A JSON array in an
entry is the ``batch_list_values`` switch (UNCONFIRMED: no client or recording sends
one): "expand" (default) takes it as those keys; "refuse" fails the entry as a nested
object fails it (err 90's text), the batch's other entries applied.

Runs with the state lock held; never awaits, never renders.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from fakepardot import constants as c
from fakepardot import prospects as ops
from fakepardot.model import PardotFail
from fakepardot.prospects import ProspectBook
from fakepardot.wire import BatchAnswer

BATCH_OPS = ("batchCreate", "batchUpdate", "batchUpsert")

#: (v3 key, the entry's fields, or why the entry itself cannot be read).
Entry = tuple[str | None, dict[str, str] | PardotFail]


def run(book: ProspectBook, version: int, op: str, params: Mapping[str, str]) -> BatchAnswer:
    raw = params.get("prospects")
    if raw is None or not raw.strip():
        raise PardotFail(c.ERR_BATCH_INVALID)
    entries = _parse(raw, version, lists=book.state.batch_list_values == "expand")
    if len(entries) > c.MAX_BATCH_PROSPECTS:
        raise PardotFail(c.ERR_BATCH_TOO_BIG)
    path = f"/api/prospect/version/{version}/do/{op}"
    by_identifier = version == 3 and book.state.v3_batch_error_keys == "identifier"
    before = len(book.account.prospects)
    errors: dict[str, str] = {}
    for index, entry in enumerate(entries):
        key, fields = entry
        name = key if by_identifier and key is not None else str(index)
        try:
            if isinstance(fields, PardotFail):
                raise fields
            names = (
                key or "",
                fields.get("email", ""),
                fields.get("id", ""),
                fields.get("fid", ""),
            )
            refusal = book.state._take_refusal(path, names)
            if refusal is not None:
                raise refusal
            if version == 3:
                _v3_entry(book, op, key or "", fields)
            else:
                _v4_entry(book, op, fields)
        except PardotFail as failure:
            errors[name] = failure.text
    return BatchAnswer(errors, created=len(book.account.prospects) > before)


def _v3_entry(book: ProspectBook, op: str, key: str, fields: dict[str, str]) -> None:
    by_id = key.isdigit()
    if op == "batchCreate":
        if by_id:
            raise PardotFail(c.ERR_INVALID_EMAIL)
        ops.apply(book, 3, "create", ("email", key), fields)
    elif op == "batchUpdate":
        ops.apply(book, 3, "update", ("id" if by_id else "email", key), fields)
    else:
        ops.apply(book, 3, "upsert", ("id" if by_id else "email", key), fields)


def _v4_entry(book: ProspectBook, op: str, fields: dict[str, str]) -> None:
    raw_id, fid, email = fields.get("id", ""), fields.get("fid", ""), fields.get("email", "")
    if op == "batchCreate" or (op == "batchUpsert" and not raw_id and not fid):
        if not email:
            raise PardotFail(c.ERR_INVALID_EMAIL)
        ops.apply(book, 4, "create", ("email", email), _without(fields, "id", "fid"))
        return
    verb = "update" if op == "batchUpdate" else "upsert"
    if raw_id:
        ops.apply(book, 4, verb, ("id", raw_id), _without(fields, "id"))
    elif fid:
        ops.apply(book, 4, verb, ("fid", fid), _without(fields, "fid"))
    else:
        raise PardotFail(c.ERR_INVALID_PROSPECT_ID)


def _without(fields: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in names}


# --- parsing ---------------------------------------------------------------------------


def _parse(raw: str, version: int, *, lists: bool = True) -> list[Entry]:
    text = raw.strip()
    if text.startswith("<"):
        return _parse_xml(text, version)
    try:
        document = json.loads(text)
    except ValueError:
        raise PardotFail(c.ERR_BATCH_INVALID) from None
    if not isinstance(document, dict) or "prospects" not in document:
        raise PardotFail(c.ERR_BATCH_INVALID)
    items = document["prospects"]
    if version == 3 and isinstance(items, dict):
        pairs: list[tuple[str | None, Any]] = [(str(k), v) for k, v in items.items()]
    elif version == 4 and isinstance(items, list):
        pairs = [(None, v) for v in items]
    else:
        raise PardotFail(c.ERR_BATCH_INVALID)
    return [_entry(key, value, lists=lists) for key, value in pairs]


def _entry(key: str | None, value: Any, *, lists: bool = True) -> Entry:
    """One entry's fields as form strings; a nested value is that entry's own error
    (an array too, unless ``lists``: the ``batch_list_values`` switch)."""
    if not isinstance(value, dict):
        return key, PardotFail(c.ERR_NOT_FLAT)
    fields: dict[str, str] = {}
    for name, item in value.items():
        if type(item) is str:  # the usual case, tested first: 50 entries of many fields
            fields[str(name)] = item
        elif item is None:
            # A JSON null leaves the stored value as it was; an empty string clears it
            # (grouparoo/grouparoo#1391, review of exportProfiles.ts: "does null work
            # here?" — "Nope, it just leaves the old value and does nothing").
            continue
        elif isinstance(item, dict) or (isinstance(item, list) and not lists):
            return key, PardotFail(c.ERR_NOT_FLAT)
        elif isinstance(item, list):  # multi-value custom field
            fields.update({f"{name}_{i}": _text(v) for i, v in enumerate(item)})
        else:
            fields[str(name)] = _text(item)
    return key, fields


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _parse_xml(text: str, version: int) -> list[Entry]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise PardotFail(c.ERR_BATCH_INVALID) from None
    if root.tag != "prospects":
        raise PardotFail(c.ERR_BATCH_INVALID)
    entries: list[Entry] = []
    for element in root:
        if element.tag != "prospect":
            raise PardotFail(c.ERR_BATCH_INVALID)
        fields = {child.tag: (child.text or "").strip() for child in element}
        identifier = element.attrib.get("identifier", "").strip()
        key = (identifier or fields.get("id") or fields.get("email")) if version == 3 else None
        if version == 3:
            fields.pop("id", None)
        entries.append((key, fields))
    return entries
