"""Bytes in and out: reading a request the way Pardot does, and rendering answers in
Pardot's JSON and XML shapes (PARDOT_API.md, "Requests" and "Responses").

Reading: path values are percent-decoded per segment with ``+`` meaning a space, which
is why an email with an unencoded ``+`` breaks (``a+b@x.com`` → ``a b@x.com`` → err 4)
while ``a%2Bb%40x.com`` round-trips intact. Form bodies are parsed here (Starlette's
form parser needs python-multipart, which the project does not pin), by urlform.py.

Rendering: JSON ``{"@attributes": {"stat", "version"[, "err_code"]}, ...}``; XML
``<rsp stat=... version="1.0">``. A batch's answer (:class:`BatchAnswer`) has its own
envelope (PARDOT_API.md, "Batch", RECORDED): ``stat="fail"`` without an err_code and
HTTP 200 when an entry failed, else ``stat="ok"`` with HTTP 201 if it created and 200
if not. Never decides what to answer, only how it looks.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from fakepardot import constants as c
from fakepardot.model import PardotFail, V5Fail
from fakepardot.urlform import parse_form, unquote_plus

#: Parameter names whose values are secrets: recorded as "[REDACTED]".
SECRET_PARAMS = frozenset(
    {
        "password",
        "user_key",
        "api_key",
        "client_secret",
        "refresh_token",
        "access_token",
        "assertion",
        "code",
    }
)
REDACTED = "[REDACTED]"


@dataclass
class Incoming:
    """One request, decoded once."""

    method: str
    raw_path: str
    segments: list[str]
    query: dict[str, str]
    form: dict[str, str]
    json_body: Any
    headers: Mapping[str, str]
    fmt: str  # "json" or "xml"
    body_error: bool = False

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    @property
    def params(self) -> dict[str, str]:
        """Query and form together; the form wins (Pardot reads both)."""
        return {**self.query, **self.form}

    def redacted_query(self) -> dict[str, str]:
        return _redact(self.query)

    def redacted_form(self) -> dict[str, Any]:
        """The form, or a JSON object body (v5), for the call log: every secret-named
        key redacted, at any depth of a JSON body (``prospect.password``)."""
        if self.json_body is not None:
            return _redact_json(self.json_body) if isinstance(self.json_body, dict) else {}
        return _redact(self.form)


def _redact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in values.items()}


def _redact_json(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_PARAMS else _redact_json(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_redact_json(item) for item in body]
    return body


async def read(request: Request) -> Incoming:
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    segments = [unquote_plus(s) for s in raw_path.split("/") if s]
    query_string = request.scope.get("query_string", b"").decode("latin-1")
    query = parse_form(query_string)
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    json_body: Any = None
    body_error = False
    if body and content_type == "application/json":
        try:
            json_body = json.loads(body)
        except ValueError:
            body_error = True
    elif body:
        form = parse_form(body.decode("utf-8", "replace"))
    fmt = "json" if {**query, **form}.get("format", "").lower() == "json" else "xml"
    return Incoming(
        method=request.method,
        raw_path=raw_path,
        segments=segments,
        query=query,
        form=form,
        json_body=json_body,
        headers=request.headers,
        fmt=fmt,
        body_error=body_error,
    )


@dataclass(frozen=True)
class Reply:
    """What goes back: status, body, content type, and the err_code for the call log."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    err_code: int = 0


NO_CONTENT = Reply(204)


class BatchAnswer(dict[str, Any]):
    """A batch call's payload, ``{"errors": {entry key: Pardot's text}}``, and whether
    any entry created a prospect: what its envelope and HTTP status follow from. A dict,
    so that it travels wherever an operation's payload does."""

    def __init__(self, errors: Mapping[str, str], *, created: bool) -> None:
        super().__init__(errors=dict(errors))
        self.created = created

    @property
    def errors(self) -> dict[str, str]:
        errors: dict[str, str] = self["errors"]
        return errors


def ok(payload: Mapping[str, Any] | None, fmt: str) -> Reply:
    if payload is None:
        return NO_CONTENT
    if isinstance(payload, BatchAnswer):
        return batch_answer(payload, fmt)
    if fmt == "json":
        document = {"@attributes": {"stat": "ok", "version": 1}, **payload}
        return Reply(200, _json(document), c.JSON_CONTENT_TYPE)
    root = ET.Element("rsp", stat="ok", version="1.0")
    for key, value in payload.items():
        _xml_child(root, key, value)
    return Reply(200, _xml(root), c.XML_CONTENT_TYPE)


def batch_answer(answer: BatchAnswer, fmt: str) -> Reply:
    """RECORDED (PARDOT_API.md, "Batch"): a failed entry makes the whole answer
    ``stat="fail"``, with no err_code, HTTP 200, and every failed entry under
    ``errors`` (a JSON object even for index "0"; in XML ``<errors><prospect
    identifier="0">text</prospect></errors>``); a clean batch is ``stat="ok"`` with
    ``"errors": {}`` (XML: an empty ``<errors/>``, UNCONFIRMED), HTTP 201 when it
    created a prospect, else 200."""
    errors = answer.errors
    stat = "fail" if errors else "ok"
    status = 200 if errors or not answer.created else 201
    if fmt == "json":
        document = {"@attributes": {"stat": stat, "version": 1}, "errors": errors}
        return Reply(status, _json(document), c.JSON_CONTENT_TYPE)
    root = ET.Element("rsp", stat=stat, version="1.0")
    element = ET.SubElement(root, "errors")
    for identifier, text in errors.items():
        ET.SubElement(element, "prospect", identifier=identifier).text = text
    return Reply(status, _xml(root), c.XML_CONTENT_TYPE)


def fail(failure: PardotFail, fmt: str) -> Reply:
    if fmt == "json":
        document = {
            "@attributes": {"stat": "fail", "version": 1, "err_code": failure.err_code},
            "err": failure.text,
        }
        body, content_type = _json(document), c.JSON_CONTENT_TYPE
    else:
        root = ET.Element("rsp", stat="fail", version="1.0")
        ET.SubElement(root, "err", code=str(failure.err_code)).text = failure.text
        body, content_type = _xml(root), c.XML_CONTENT_TYPE
    return Reply(failure.http_status, body, content_type, failure.err_code)


def v5_fail(failure: V5Fail | PardotFail) -> Reply:
    if isinstance(failure, PardotFail):
        failure = V5Fail(
            failure.err_code,
            failure.text,
            c.V5_ERROR_HTTP_STATUS.get(failure.err_code, 400),
        )
    body = _json({"code": failure.code, "message": failure.message})
    return Reply(failure.http_status, body, c.JSON_CONTENT_TYPE, failure.code)


def plain_json(status: int, document: Mapping[str, Any]) -> Reply:
    return Reply(status, _json(document), c.JSON_CONTENT_TYPE)


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _xml(root: ET.Element) -> bytes:
    # typeshed types tostring as Any for an encoding other than "unicode": bytes here.
    body: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _xml_child(parent: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _xml_child(parent, tag, item)
    elif isinstance(value, Mapping):
        element = ET.SubElement(parent, tag)
        for key, item in value.items():
            _xml_child(element, key, item)
    else:
        element = ET.SubElement(parent, tag)
        if value is not None:
            element.text = str(value)
