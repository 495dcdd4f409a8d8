"""The wire layer as data: each dialect builds one PardotRequest that says everything an
attempt sends, and reads its own answers. No network, no event loop."""

from __future__ import annotations

import dataclasses

import pytest

from clients.wire import v5
from clients.wire.batching import BatchEntry, BatchKind, batch_request, single_request
from clients.wire.responses import parse_batch_response, parse_response
from clients.wire.v3v4 import api_request, prospect_read, prospect_write
from strategies.core.errors import PardotError, PardotUnavailable


def test_a_v3v4_read_carries_its_data_and_format_in_the_query() -> None:
    request = prospect_read(4, "email", "a+b@example.com")
    assert (request.method, request.path) == (
        "GET",
        "/api/prospect/version/4/do/read/email/a%2Bb%40example.com",
    )
    assert dict(request.query or {}) == {"format": "json"}
    assert request.form is None and request.json_body is None
    assert request.idempotent and request.parse is parse_response


def test_a_v3v4_write_carries_its_fields_in_the_form() -> None:
    request = prospect_write(3, "create", "email", "a@example.com", {"x": "1"}, idempotent=False)
    assert request.path == "/api/prospect/version/3/do/create/email/a%40example.com"
    assert (dict(request.query or {}), request.form) == ({"format": "json"}, {"x": "1"})
    assert not request.idempotent and request.batch_size == 0


def test_parameters_the_client_sets_itself_are_refused() -> None:
    with pytest.raises(ValueError, match="set by the client itself"):
        api_request("POST", "prospect", 4, "update", {"id": 1}, {"api_key": "x"}, idempotent=True)


def test_a_request_is_one_frozen_value() -> None:
    request = prospect_read(4, "id", 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.path = "/elsewhere"  # type: ignore[misc]


def test_a_batch_and_its_lone_write_are_requests_of_one_shape() -> None:
    kind = BatchKind(4, "batchUpdate")
    entries = [BatchEntry("update", "id", "7", {"city": "A"}), BatchEntry("update", "id", "8", {})]
    batch = batch_request(kind, entries, idempotent=True)
    alone = single_request(kind, entries[0], idempotent=True)
    assert batch.path == "/api/prospect/version/4/do/batchUpdate" and batch.batch_size == 2
    assert set(batch.form or {}) == {"prospects"}
    assert alone.path == "/api/prospect/version/4/do/update/id/7" and alone.batch_size == 0
    assert alone.form == {"city": "A"}
    # A batch's stat="fail" without err_code is its entries' news (PARDOT_API.md, Batch).
    assert batch.parse is parse_batch_response and alone.parse is parse_response


def test_v5_sends_json_and_reads_its_own_errors() -> None:
    request = v5.external_activity("Ext", "Signed Up", "Signed Up", "a@example.com")
    assert (request.method, request.path) == ("POST", "/api/v5/external-activities")
    assert request.json_body == {
        "extension": "Ext",
        "type": "Signed Up",
        "value": "Signed Up",
        "email": "a@example.com",
    }
    assert request.query is None and request.form is None and not request.idempotent
    assert request.parse(204, "", b"") == {}
    with pytest.raises(PardotError) as caught:
        request.parse(401, "application/json", b'{"code": 184, "message": "Invalid token"}')
    assert caught.value.err_code == 184 and caught.value.http_status == 401
    with pytest.raises(PardotUnavailable):
        request.parse(502, "text/html", b"<html>Bad Gateway</html>")


# --- multi-value custom fields (issue 15) ---------------------------------------------
# Pardot's "Updating Fields with Multiple Values" (pardot/api-docs,
# docs/kb/api-version-3/using-prospects.md): ``<field_name>_<count>=<value>``, counts
# from 0 by 1; ``<field_name>_0=`` clears every value.


def test_a_multi_value_field_is_sent_as_numbered_form_parameters() -> None:
    request = prospect_write(
        4, "update", "id", 7, {"city": "Paris", "tags": ("pro", "team")}, idempotent=True
    )
    assert dict(request.form or {}) == {"city": "Paris", "tags_0": "pro", "tags_1": "team"}


def test_an_empty_multi_value_is_sent_as_field_0_empty_which_clears_it() -> None:
    request = prospect_write(3, "upsert", "email", "a@example.com", {"tags": ()}, idempotent=True)
    assert dict(request.form or {}) == {"tags_0": ""}


def test_a_v4_batch_entry_carries_a_multi_value_as_its_single_call_does() -> None:
    """code-dot-org/code-dot-org, lib/cdo/contact_rollups/v2/pardot.rb (v4 batchCreate /
    batchUpdate in production): "For multi data fields (multi-select, etc.), set key
    names as [field_name]_0, [field_name]_1"."""
    import json

    kind = BatchKind(4, "batchUpdate")
    entries = [BatchEntry("update", "id", "7", {"tags": ("a", "b"), "city": "X"})]
    batch = batch_request(kind, entries, idempotent=True)
    sent = json.loads((batch.form or {})["prospects"])
    assert sent == {"prospects": [{"tags_0": "a", "tags_1": "b", "city": "X", "id": "7"}]}
    lone = single_request(kind, entries[0], idempotent=True)
    assert dict(lone.form or {}) == {"tags_0": "a", "tags_1": "b", "city": "X"}


def test_a_v3_batch_entry_carries_a_multi_value_as_numbered_keys_too() -> None:
    import json

    kind = BatchKind(3, "batchUpsert")
    entries = [BatchEntry("upsert", "email", "a@example.com", {"tags": ()})]
    sent = json.loads((batch_request(kind, entries, idempotent=True).form or {})["prospects"])
    assert sent == {"prospects": {"a@example.com": {"tags_0": ""}}}


def test_a_batch_entry_with_a_multi_value_measures_what_it_sends() -> None:
    small = BatchEntry("update", "id", "7", {"tags": ("a",)})
    big = BatchEntry("update", "id", "7", {"tags": tuple("x" * 100 for _ in range(10))})
    assert big.size() > 1000 > small.size()


def test_a_v3v4_multi_value_reads_back_as_the_tuple_a_write_sends() -> None:
    """Pardot shows several values as ``<f><value>a</value><value>b</value></f>``
    (code-dot-org/code-dot-org PR 35472), ``{"f": {"value": [...]}}`` in JSON; one value
    is plain, and stays a string (nothing says the field is multi-value then)."""
    from clients.wire.responses import prospects_in

    envelope = {"prospect": {"id": 7, "tags": {"value": ["a", "b"]}, "plan": "pro"}}
    assert prospects_in(envelope) == [{"id": 7, "tags": ("a", "b"), "plan": "pro"}]
    xml = b'<rsp stat="ok" version="1.0"><prospect><id>7</id><tags><value>a</value>'
    xml += b"<value>b</value></tags></prospect></rsp>"
    parsed = parse_response(200, "text/xml", xml)
    assert prospects_in(parsed)[0]["tags"] == ("a", "b")
