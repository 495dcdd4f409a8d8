"""responses.parse_response: only a Pardot envelope with stat="ok" is success — and
parse_batch_response, for which Pardot's stat="fail" WITHOUT err_code is a partial
success (PARDOT_API.md, "Batch", RECORDED) whose entries are read afterwards."""

from __future__ import annotations

import httpx
import pytest
from grpc import StatusCode

from clients.connections import PardotConnections
from clients.wire.batching import entry_errors
from clients.wire.responses import parse_batch_response, parse_response, prospects_in
from fakepardot import FakePardot
from strategies.core.errors import PardotError, PardotUnavailable, ProspectSyncError

from .conftest import oauth_config

JSON = "application/json"
XML = "text/xml; charset=utf-8"


def test_json_success_is_returned_whole() -> None:
    body = (
        b'{"@attributes": {"stat": "ok", "version": 1}, "prospect": {"id": 7, "email": "a@b.co"}}'
    )
    envelope = parse_response(200, JSON, body)
    assert envelope["prospect"] == {"id": 7, "email": "a@b.co"}


def test_json_fail_raises_the_err_code_even_under_http_200() -> None:
    body = b'{"@attributes": {"stat": "fail", "version": 1, "err_code": 4}, '
    body += b'"err": "Invalid prospect email address"}'
    with pytest.raises(PardotError) as caught:
        parse_response(200, JSON, body)
    assert caught.value.err_code == 4
    assert caught.value.text == "Invalid prospect email address"
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.metadata == {"err_code": "4"}


def test_fail_keeps_the_http_status() -> None:
    body = b'{"@attributes": {"stat": "fail", "version": 1, "err_code": "184"}, "err": "x"}'
    with pytest.raises(PardotError) as caught:
        parse_response(401, JSON, body)
    assert (caught.value.err_code, caught.value.http_status) == (184, 401)
    assert caught.value.rule.refresh_credentials


def test_xml_success_has_the_json_shape_with_lists_for_repeats() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<rsp stat="ok" version="1.0">'
        b"<prospect><id>5</id><email>a@b.co</email><notes/></prospect>"
        b"<prospect><id>6</id></prospect></rsp>"
    )
    envelope = parse_response(200, XML, body)
    assert envelope["@attributes"]["stat"] == "ok"
    assert envelope["prospect"] == [{"id": "5", "email": "a@b.co", "notes": None}, {"id": "6"}]


def test_xml_fail_raises_the_err_code() -> None:
    body = b'<rsp stat="fail" version="1.0"><err code="66">limit</err></rsp>'
    with pytest.raises(PardotError) as caught:
        parse_response(200, XML, body)
    assert caught.value.err_code == 66
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (200, JSON, b""),
        (200, "text/html", b"<html>maintenance</html>"),
        (200, JSON, b'{"prospect": {"id": 1}}'),
        (200, JSON, b"[]"),
        (500, JSON, b'{"@attributes": {"stat": "ok", "version": 1}}'),
        (503, "text/plain", b"upstream connect error"),
        (429, "text/plain", b"slow down"),
    ],
)
def test_bodies_that_are_not_pardot_success_are_unavailable(
    status: int, content_type: str, body: bytes
) -> None:
    with pytest.raises(PardotUnavailable) as caught:
        parse_response(status, content_type, body)
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.retryable


def test_a_4xx_page_that_is_not_pardot_is_a_configuration_problem() -> None:
    with pytest.raises(ProspectSyncError) as caught:
        parse_response(404, "text/html", b"<html>Not Found</html>")
    assert not isinstance(caught.value, PardotUnavailable)
    assert caught.value.code is StatusCode.FAILED_PRECONDITION
    assert "pardot_url" in caught.value.message


def test_empty_204_is_a_successful_delete() -> None:
    assert parse_response(204, "", b"") == {}


def test_prospects_in_normalises_one_several_and_none() -> None:
    one = {"prospect": {"id": 1}}
    several = {"prospect": [{"id": 1}, {"id": 2}]}
    query = {"result": {"total_results": 1, "prospect": {"id": 3}}}
    assert prospects_in(one) == [{"id": 1}]
    assert prospects_in(several) == [{"id": 1}, {"id": 2}]
    assert prospects_in(query) == [{"id": 3}]
    assert prospects_in({"result": {"total_results": 0}}) == []
    assert prospects_in({}) == []


async def test_the_fakes_xml_answers_parse_like_its_json(fake_server: FakePardot) -> None:
    """Pardot answers XML unless asked for JSON: the parser must read its real shape."""
    fake_server.state.reset()
    one = fake_server.state.add_prospect("v4", email="xml@example.com", org_id="o-x")
    fake_server.state.add_prospect("v4", email="xml@example.com")
    connections = PardotConnections({"default": oauth_config(fake_server)})
    client = connections.get("default").transport
    try:
        token = await client.auth.token(request_timeout_s=2.0)
        headers = client.auth.headers(token)
        async with httpx.AsyncClient(base_url=fake_server.url, headers=headers) as http:
            several = await http.get("/api/prospect/version/4/do/read/email/xml%40example.com")
            by_id = await http.get(f"/api/prospect/version/4/do/read/id/{one['id']}")
            missing = await http.get("/api/prospect/version/4/do/read/id/1")
    finally:
        await connections.aclose()

    assert several.headers["content-type"].startswith("text/xml")
    assert len(prospects_in(parse_response(200, XML, several.content))) == 2
    [prospect] = prospects_in(parse_response(200, XML, by_id.content))
    assert (prospect["id"], prospect["email"]) == (str(one["id"]), "xml@example.com")
    assert prospect["org_id"] == "o-x"
    with pytest.raises(PardotError) as caught:
        parse_response(missing.status_code, XML, missing.content)
    assert caught.value.err_code == 3


# --- batch answers (PARDOT_API.md, "Batch", RECORDED) ----------------------------------

PARTIAL_JSON = (
    b'{"@attributes":{"stat":"fail","version":1},"errors":{"1":"Invalid prospect email address"}}'
)
PARTIAL_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<rsp stat="fail" version="1.0"><errors>'
    b'<prospect identifier="0">Invalid prospect email address</prospect></errors></rsp>'
)


def test_a_partial_batch_answer_is_returned_for_its_entries_in_json() -> None:
    envelope = parse_batch_response(200, JSON, PARTIAL_JSON)
    assert envelope["errors"] == {"1": "Invalid prospect email address"}
    failed = entry_errors(envelope, 2)
    assert list(failed) == [1] and failed[1].err_code == 4
    with pytest.raises(PardotError) as caught:  # a single call never reads it so
        parse_response(200, JSON, PARTIAL_JSON)
    assert caught.value.err_code == 0


def test_a_partial_batch_answer_is_returned_for_its_entries_in_xml() -> None:
    envelope = parse_batch_response(200, XML, PARTIAL_XML)
    assert envelope["@attributes"] == {"stat": "fail", "version": "1.0"}
    assert envelope["errors"] == {"0": "Invalid prospect email address"}
    assert entry_errors(envelope, 3)[0].reason == "INVALID_EMAIL"


def test_xml_batch_errors_without_identifiers_name_no_entry() -> None:
    body = b'<rsp stat="fail" version="1.0"><errors><prospect>x</prospect></errors></rsp>'
    assert parse_batch_response(200, XML, body)["errors"] == ["x"]
    ok = b'<rsp stat="ok" version="1.0"><errors/></rsp>'
    assert entry_errors(parse_batch_response(201, XML, ok), 2) == {}


def test_a_clean_batch_answer_is_success_with_201_or_200() -> None:
    clean = b'{"@attributes":{"stat":"ok","version":1},"errors":{}}'
    for status in (200, 201):
        assert parse_batch_response(status, JSON, clean)["errors"] == {}


@pytest.mark.parametrize(
    ("status", "body", "err_code"),
    [
        (200, b'{"@attributes":{"stat":"fail","version":1,"err_code":66},"err":"limit"}', 66),
        (200, b'{"@attributes":{"stat":"fail","version":1,"err_code":122},"err":"day"}', 122),
        (401, b'{"@attributes":{"stat":"fail","version":1,"err_code":184},"err":"tok"}', 184),
        (400, b'<rsp stat="fail" version="1.0"><err code="71">Input</err></rsp>', 71),
        # stat=fail without err_code, but not a 2xx: not Pardot's partial answer.
        (500, b'{"@attributes":{"stat":"fail","version":1},"errors":{"0":"x"}}', 0),
    ],
)
def test_a_batch_answer_with_an_err_code_is_still_the_whole_calls_failure(
    status: int, body: bytes, err_code: int
) -> None:
    with pytest.raises(PardotError) as caught:
        parse_batch_response(status, JSON if body.startswith(b"{") else XML, body)
    assert caught.value.err_code == err_code


def test_a_batch_answer_that_is_not_pardots_is_still_unavailable() -> None:
    with pytest.raises(PardotUnavailable):
        parse_batch_response(502, "text/html", b"<html>502</html>")
