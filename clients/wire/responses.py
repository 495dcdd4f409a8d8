"""Turn one v3/v4 Pardot HTTP response into a dict, or into the error it really is.

Pardot reports failures in the body (``stat="fail"`` with an err_code), sometimes under
HTTP 200, and proxies in front of it answer with HTML pages or empty bodies. So the
body decides: only a Pardot envelope with ``stat="ok"`` is success. This module never
treats a body without ``@attributes``/``<rsp>`` as success, never sends anything and
never decides about retries (the error's rule does).

A batch call is the one exception (:func:`parse_batch_response`): Pardot answers a
batch where some entries failed with ``stat="fail"`` and NO err_code, having applied
every other entry (PARDOT_API.md, "Batch", RECORDED). That answer is a partial success,
returned for its entries to be read (``clients.wire.batching.entry_errors``), never
turned into one error for the whole call; a ``stat="fail"`` WITH an err_code (66, 70,
122, 184, …) is still the whole call's failure.

Format: JSON (we always ask for ``format=json``); XML is tolerated and converted to
the same shape as the JSON (``{"@attributes": {...}, "prospect": {...}}``; a batch's
``<errors><prospect identifier="0">text</prospect></errors>`` becomes ``{"errors":
{"0": "text"}}``). What any dialect's answer means when it is not Pardot's at all
(:func:`not_pardot`) is here too; version 5 reads its own JSON in ``clients.wire.v5``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from grpc import StatusCode

from strategies.core.errors import PardotError, PardotUnavailable, ProspectSyncError, Reason

#: Statuses that mean "try again later" even when no Pardot body came with them.
_TRANSIENT_4XX = frozenset({408, 429})


def parse_response(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """The success envelope as a dict; raises what a failure means.

    - ``stat="fail"`` → :class:`PardotError` (err_code and text), whatever the status;
    - HTTP 204 with an empty body (delete) → ``{}``;
    - no Pardot envelope: 5xx, 408, 429 or 2xx → :class:`PardotUnavailable`; other 3xx/4xx
      (a wrong ``pardot_url``, a gateway refusing us) → FAILED_PRECONDITION, since
      retrying cannot help.
    """
    return _read(status, content_type, body, partial=False)


def parse_batch_response(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """A batch call's answer: as :func:`parse_response`, except that ``stat="fail"``
    without an err_code under a 2xx status is returned, not raised — Pardot's answer to
    a batch where some entries failed and every other entry was applied (PARDOT_API.md,
    "Batch", RECORDED: HTTP 200, the failed entries under ``errors``). Its entries are
    for ``clients.wire.batching.entry_errors`` to read; one that names no entry is
    unreadable there, never success."""
    return _read(status, content_type, body, partial=True)


def _read(status: int, content_type: str, body: bytes, *, partial: bool) -> dict[str, Any]:
    envelope = _decode(content_type, body)
    if envelope is None:
        if status == 204 and not body.strip():
            return {}
        what = "a body that is not Pardot's" if body.strip() else "an empty body"
        raise not_pardot(status, what)
    attributes = envelope["@attributes"]
    stat = attributes.get("stat")
    if stat == "fail":
        if partial and "err_code" not in attributes and 200 <= status < 300:
            return envelope
        raise PardotError(
            _err_code(attributes), error_text(envelope.get("err")), http_status=status
        )
    if stat == "ok" and 200 <= status < 300:
        return envelope
    raise not_pardot(status, f'a Pardot envelope with stat="{stat}"')


def not_pardot(status: int, what: str) -> ProspectSyncError:
    """The error for a response that carries no Pardot answer."""
    if status >= 500 or status in _TRANSIENT_4XX or 200 <= status < 300:
        return PardotUnavailable(f"Pardot is unavailable: HTTP {status} with {what}")
    return ProspectSyncError(
        f"Pardot answered HTTP {status} with {what}; check the connection's pardot_url",
        code=StatusCode.FAILED_PRECONDITION,
        reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
    )


def prospects_in(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every prospect of a read or query answer, as a list.

    Pardot's JSON makes ``prospect`` an object for one prospect and a list for several
    (v4 ``read/email``); a query nests it under ``result``; none at all means none.
    """
    container = envelope.get("result") if "result" in envelope else envelope
    if not isinstance(container, Mapping):
        return []
    found = container.get("prospect")
    if found is None:
        return []
    if isinstance(found, list):
        return [_multi_values(p) for p in found if isinstance(p, dict)]
    return [_multi_values(found)] if isinstance(found, dict) else []


def _multi_values(prospect: dict[str, Any]) -> dict[str, Any]:
    """A multi-value field's ``{"value": [...]}`` (XML: one ``<value>`` each) as the
    tuple of strings a write sends (``strategies.core.model.FieldValue``)."""
    for name, value in prospect.items():
        if isinstance(value, Mapping) and set(value) == {"value"}:
            items = value["value"]
            items = items if isinstance(items, list) else [items]
            prospect[name] = tuple("" if item is None else str(item) for item in items)
    return prospect


def _decode(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The envelope in JSON shape, or None when the body is not one of Pardot's."""
    text = body.strip()
    if not text:
        return None
    if text.startswith(b"{") or "json" in content_type:
        return _decode_json(text)
    if text.startswith(b"<"):
        return _decode_xml(text)
    return None


def _decode_json(text: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("@attributes"), dict):
        return data
    return None


def json_object(text: bytes) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None when it is not one."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _decode_xml(text: bytes) -> dict[str, Any] | None:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag != "rsp" or "stat" not in root.attrib:
        return None
    envelope: dict[str, Any] = {"@attributes": dict(root.attrib)}
    for child in root:
        if child.tag == "err":
            # <err code="4">text</err> → the JSON shape: err_code beside stat.
            envelope["@attributes"]["err_code"] = child.attrib.get("code", "0")
            envelope["err"] = (child.text or "").strip()
        elif child.tag == "errors":
            envelope["errors"] = _xml_errors(child)
        else:
            _add(envelope, child.tag, _xml_value(child))
    return envelope


def _xml_errors(element: ET.Element) -> dict[str, str] | list[str]:
    """A batch answer's ``<errors><prospect identifier="0">text</prospect></errors>`` →
    ``{"0": "text"}``, as in Pardot's JSON. When an entry has no ``identifier`` (or two
    share one) the texts come back as a list, which names no entry."""
    children = list(element)
    named = {
        child.attrib["identifier"]: (child.text or "").strip()
        for child in children
        if "identifier" in child.attrib
    }
    if len(named) == len(children):
        return named
    return [(child.text or "").strip() for child in children]


def _xml_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        text = (element.text or "").strip()
        return text or None
    value: dict[str, Any] = {}
    for child in children:
        _add(value, child.tag, _xml_value(child))
    return value


def _add(into: dict[str, Any], key: str, value: Any) -> None:
    """Repeated XML elements become a list, as in Pardot's JSON."""
    if key not in into:
        into[key] = value
    elif isinstance(into[key], list):
        into[key].append(value)
    else:
        into[key] = [into[key], value]


def _err_code(attributes: Mapping[str, Any]) -> int:
    try:
        return int(attributes.get("err_code", 0))
    except (TypeError, ValueError):
        return 0


def error_text(err: Any) -> str:
    """Pardot's error text as one string (several texts come as a list)."""
    if isinstance(err, list):
        return "; ".join(str(e) for e in err)
    return str(err) if err is not None else ""
