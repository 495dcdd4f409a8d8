"""API v5's dialect as data (clients.wire.v5): each builder returns the one PardotRequest
an attempt sends, field names are translated both ways by one table, pages are followed
on the configured host only, and every error reads through the one err_code table. No
network, no event loop."""

from __future__ import annotations

import json

import pytest

from clients.wire import v5
from strategies.core import pardot_facts as facts
from strategies.core.errors import PardotError, PardotUnavailable, ProspectSyncError


def test_upsert_latest_by_email_is_one_json_post_safe_to_repeat() -> None:
    request = v5.upsert_latest_by_email(
        "kevin@example.com",
        {"first_name": "Kevin", "org_id": "o-1", "is_do_not_email": "true", "notes": ""},
        secondary_deleted_search=True,
        custom_fields=("org_id",),
    )
    assert (request.method, request.path) == (
        "POST",
        "/api/v5/objects/prospects/do/upsertLatestByEmail",
    )
    body = dict(request.json_body or {})
    assert body["matchEmail"] == "kevin@example.com"
    assert body["prospect"] == {
        "firstName": "Kevin",
        "org_id__c": "o-1",
        "isDoNotEmail": True,
        "notes": None,
        "email": "kevin@example.com",
    }
    assert body["secondaryDeletedSearch"] is True
    assert body["fields"][:2] == ["id", "email"] and "org_id__c" in body["fields"]
    assert "createdAt" in body["fields"] and "updatedAt" in body["fields"]
    assert request.query is None and request.form is None and request.idempotent


def test_secondary_deleted_search_is_sent_as_asked() -> None:
    request = v5.upsert_latest_by_email("a@example.com", {}, secondary_deleted_search=False)
    assert (request.json_body or {})["secondaryDeletedSearch"] is False


def test_create_is_a_post_that_is_never_resent_in_doubt() -> None:
    request = v5.prospect_create("a+b@example.com", {"campaign_id": "1002", "score": "7"})
    assert (request.method, request.path) == ("POST", "/api/v5/objects/prospects")
    assert request.json_body == {"campaignId": 1002, "score": 7, "email": "a+b@example.com"}
    assert "fields" in (request.query or {}) and not request.idempotent


def test_read_update_and_delete_name_the_id_in_the_path() -> None:
    read = v5.prospect_read(42, custom_fields=("org_id",))
    update = v5.prospect_update(42, {"company": "Initech"})
    delete = v5.prospect_delete(42)
    assert (read.method, read.path, read.json_body) == ("GET", "/api/v5/objects/prospects/42", None)
    assert (read.query or {})["fields"].split(",")[-1] == "org_id__c"
    assert (update.method, update.path) == ("PATCH", "/api/v5/objects/prospects/42")
    assert update.json_body == {"company": "Initech"} and update.idempotent
    assert (delete.method, delete.path, delete.idempotent) == (
        "DELETE",
        "/api/v5/objects/prospects/42",
        True,
    )


@pytest.mark.parametrize("bad", [0, -3, True, "42"])
def test_a_prospect_id_is_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        v5.prospect_read(bad)  # type: ignore[arg-type]


def test_query_by_email_carries_the_email_and_fields_in_the_query() -> None:
    request = v5.prospect_query_by_email("a+b@example.com", custom_fields=("org_id",))
    assert (request.method, request.path) == ("GET", "/api/v5/objects/prospects")
    assert (request.query or {})["email"] == "a+b@example.com"
    assert "org_id__c" in (request.query or {})["fields"].split(",")
    assert request.idempotent and request.json_body is None


def test_every_standard_field_has_a_v5_name_and_reads_back_as_itself() -> None:
    standard = (*facts.WRITABLE_FIELDS, *facts.READ_ONLY_FIELDS)
    assert set(standard) <= set(facts.V5_FIELD_NAMES)
    assert len(set(facts.V5_FIELD_NAMES.values())) == len(facts.V5_FIELD_NAMES)
    assert facts.V5_FIELD_NAMES["salesforce_fid"] == "salesforceId"
    for name in standard:
        v5_name = v5.v5_field_name(name)
        assert v5.prospect_from_v5({v5_name: "x"}) == {name: "x"}
    assert set(facts.V5_RETURNED_FIELDS) <= set(facts.V5_FIELD_NAMES.values())


def test_answers_come_back_with_v3v4_names_custom_fields_without_their_suffix() -> None:
    answer = {
        "id": 55434583,
        "email": "kevin@example.com",
        "firstName": "Kevin",
        "org_id__c": "o-1",
        "createdAt": "2026-12-01T22:00:00+00:00",
        "somethingNew": 1,
    }
    assert v5.prospect_from_v5(answer) == {
        "id": 55434583,
        "email": "kevin@example.com",
        "first_name": "Kevin",
        "org_id": "o-1",
        "created_at": "2026-12-01T22:00:00+00:00",
        "somethingNew": 1,
    }


def test_values_keep_their_text_unless_the_field_is_typed() -> None:
    assert v5.fields_to_v5(
        {"employees": "50", "score": "x", "is_do_not_call": "false", "zip": "02134"}
    ) == {"employees": "50", "score": "x", "isDoNotCall": False, "zip": "02134"}


# --- pages ---------------------------------------------------------------------------


def test_a_next_page_url_is_followed_by_path_and_query_on_our_host_only() -> None:
    first = v5.prospect_query_by_email("a@example.com")
    page = {
        "values": [{"id": 1, "email": "a@example.com"}],
        "nextPageToken": "t-2",
        "nextPageUrl": "https://evil.example/api/v5/objects/prospects?nextPageToken=t-2&fields=id",
    }
    following = v5.next_page(page, first)
    assert following is not None
    assert following.path == "/api/v5/objects/prospects"  # no host: the transport adds ours
    assert dict(following.query or {}) == {"nextPageToken": "t-2", "fields": "id"}
    assert v5.page_values(page) == [{"id": 1, "email": "a@example.com"}]


def test_a_page_token_alone_is_sent_with_the_first_requests_fields() -> None:
    first = v5.prospect_query_by_email("a@example.com")
    following = v5.next_page({"values": [], "nextPageToken": "t-2"}, first)
    assert following is not None and following.path == first.path
    assert dict(following.query or {}) == {
        "nextPageToken": "t-2",
        "fields": (first.query or {})["fields"],
    }


def test_the_last_page_has_no_next() -> None:
    first = v5.prospect_query_by_email("a@example.com")
    assert v5.next_page({"values": [], "nextPageToken": None, "nextPageUrl": None}, first) is None


@pytest.mark.parametrize(
    "page",
    [
        {"values": [], "nextPageUrl": "https://pi.pardot.com/api/v5/objects/visitors?x=1"},
        {"values": [], "nextPageUrl": "https://pi.pardot.com/api/v5/objects/prospects"},
    ],
)
def test_a_next_page_off_the_collection_is_not_followed(page: dict[str, object]) -> None:
    with pytest.raises(ProspectSyncError) as caught:
        v5.next_page(page, v5.prospect_query_by_email("a@example.com"))
    assert caught.value.reason == "PARDOT_UNEXPECTED_RESPONSE"


def test_a_collection_without_values_is_not_an_empty_answer() -> None:
    with pytest.raises(ProspectSyncError) as caught:
        v5.page_values({"nextPageToken": None})
    assert caught.value.reason == "PARDOT_UNEXPECTED_RESPONSE"


# --- answers and errors: the one err_code table ---------------------------------------


def _error(status: int, code: int, message: str) -> PardotError:
    body = json.dumps({"code": code, "message": message}).encode()
    with pytest.raises(PardotError) as caught:
        v5.parse_v5_response(status, "application/json", body)
    assert caught.value.http_status == status
    return caught.value


@pytest.mark.parametrize(
    ("status", "code", "reason", "grpc_code"),
    [
        (404, 109, "PROSPECT_NOT_FOUND", "NOT_FOUND"),
        (400, 13, "PARDOT_PARAMETER_MISSING", "INVALID_ARGUMENT"),
        (400, 181, "BUSINESS_UNIT_MISSING", "FAILED_PRECONDITION"),
        (401, 184, "PARDOT_AUTH_FAILED", "FAILED_PRECONDITION"),
        (405, 60, "PARDOT_REQUEST_REJECTED", "INTERNAL"),
        (400, 58, "ALREADY_LIST_MEMBER", "ALREADY_EXISTS"),
        (400, 66, "PARDOT_CONCURRENCY_LIMIT", "UNAVAILABLE"),
    ],
)
def test_v5_errors_read_through_the_one_table(
    status: int, code: int, reason: str, grpc_code: str
) -> None:
    error = _error(status, code, "text")
    assert (error.err_code, error.reason, error.code.name) == (code, reason, grpc_code)
    assert error.metadata["err_code"] == str(code)


def test_a_token_refused_in_v5_asks_for_a_refresh() -> None:
    assert _error(
        401, 184, "access_token is invalid, unknown, or malformed"
    ).rule.refresh_credentials


def test_an_xml_failure_under_v5_is_still_pardots_error() -> None:
    body = b'<rsp stat="fail" version="1.0"><err code="201">Business Unit not found</err></rsp>'
    with pytest.raises(PardotError) as caught:
        v5.parse_v5_response(403, "text/xml", body)
    assert (caught.value.err_code, caught.value.reason) == (201, "BUSINESS_UNIT_INVALID")


def test_a_bare_object_is_the_answer_and_a_proxy_page_is_not() -> None:
    assert v5.parse_v5_response(200, "application/json", b'{"id": 7, "email": "a@b.co"}') == {
        "id": 7,
        "email": "a@b.co",
    }
    assert v5.parse_v5_response(204, "", b"") == {}
    with pytest.raises(PardotUnavailable):
        v5.parse_v5_response(502, "text/html", b"<html>Bad Gateway</html>")
    with pytest.raises(PardotUnavailable):
        v5.parse_v5_response(200, "application/json", b"")


# --- multi-value custom fields (issue 15) ---------------------------------------------


def test_a_multi_value_field_is_a_json_array_of_strings() -> None:
    body = v5.fields_to_v5({"tags": ("pro", "team"), "first_name": "Kevin"})
    assert body == {"tags__c": ["pro", "team"], "firstName": "Kevin"}


def test_an_empty_multi_value_is_an_empty_array_which_clears_it() -> None:
    # Not null: with null "leaving the field as it was" (the fake's v5_null_clears off,
    # UNCONFIRMED), [] still says "no values".
    assert v5.fields_to_v5({"tags": ()}) == {"tags__c": []}


def test_every_v5_write_carries_the_array() -> None:
    upsert = v5.upsert_latest_by_email(
        "a@example.com", {"tags": ("a",)}, secondary_deleted_search=True
    )
    assert (upsert.json_body or {})["prospect"]["tags__c"] == ["a"]
    assert (v5.prospect_create("a@example.com", {"tags": ("a",)}).json_body or {})["tags__c"] == [
        "a"
    ]
    assert (v5.prospect_update(7, {"tags": ()}).json_body or {}) == {"tags__c": []}


def test_a_multi_value_reads_back_as_the_tuple_a_write_sends() -> None:
    read = v5.prospect_from_v5({"id": 7, "tags__c": ["pro", "team"], "firstName": "K"})
    assert read == {"id": 7, "tags": ("pro", "team"), "first_name": "K"}
