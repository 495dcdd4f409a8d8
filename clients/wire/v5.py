"""The API v5 dialect (PARDOT_API.md, "API v5 (prospects)", "External activities"): JSON
bodies, paths under ``/api/v5/``, answers that are bare JSON documents and errors as
``{"code": N, "message": "..."}`` under a real HTTP status.

Prospects: ``upsertLatestByEmail``, create, read by id, PATCH by id, query by email
(paged), delete; list memberships; external activities. Field names are camelCase in
v5: the rest of the service speaks v3/v4's names (``strategies.fields``), so requests
are translated here on the way out (:func:`fields_to_v5`, custom fields as
``<field id>__c``) and answers on the way back (:func:`prospect_from_v5`), by the one
table in ``pardot_facts`` (``V5_FIELD_NAMES``).

Data in, data out: every builder returns a :class:`PardotRequest` the transport sends
unchanged. Nothing here sends, waits or retries, and no answer chooses a host: a next
page is followed on the configured host, by its path and query only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from clients.wire.paths import encode_path_value
from clients.wire.request import PardotRequest
from clients.wire.responses import error_text, json_object, not_pardot, parse_response
from strategies.core import pardot_facts as facts
from strategies.core.errors import PardotError, ProspectSyncError, Reason
from strategies.core.model import Fields, FieldValue

#: v5 name → v3/v4 name, for answers.
_V3V4_NAMES: Final[dict[str, str]] = {v5: v3v4 for v3v4, v5 in facts.V5_FIELD_NAMES.items()}
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


def v5_request(
    method: str,
    path: str,
    body: Mapping[str, Any] | None,
    *,
    idempotent: bool,
    query: Mapping[str, str] | None = None,
) -> PardotRequest:
    """A v5 request: ``body`` travels as JSON, the answer is read by
    :func:`parse_v5_response`. ``path`` is a constant of ``pardot_facts`` (with path
    values encoded by ``clients.wire.paths.encode_path_value``), never request data."""
    return PardotRequest(method, path, idempotent, parse_v5_response, query=query, json_body=body)


# --- field names and values -----------------------------------------------------------


def v5_field_name(name: str) -> str:
    """The v5 name of a v3/v4 field: the table's for a standard field, else the custom
    field's ``<id>__c``."""
    return facts.V5_FIELD_NAMES.get(name) or f"{name}{facts.V5_CUSTOM_FIELD_SUFFIX}"


def fields_to_v5(fields: Fields) -> dict[str, Any]:
    """v3/v4 form values → a v5 ``prospect`` object: camelCase names, ``""`` (clear the
    field) as null, numbers and booleans of the typed standard fields in their JSON type
    (a value that is not one is sent as it is, and Pardot says what is wrong), and a
    multi-value custom field's values as a JSON array of strings, ``()`` as ``[]`` (no
    values: clears them all). The array is issue 15's contract and the fake's v5 rule;
    no public v5 client or recording shows a multi-value write (UNCONFIRMED: a form
    plugin reported Pardot v5 wanting ``a;b`` for a Salesforce multi-picklist,
    solspace/craft-freeform#249)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        v5_name = v5_field_name(name)
        body[v5_name] = _json_value(v5_name, value)
    return body


def prospect_from_v5(document: Mapping[str, Any]) -> dict[str, Any]:
    """A v5 prospect with v3/v4's field names (``firstName`` → ``first_name``,
    ``org_id__c`` → ``org_id``), as the strategies and the identity map read them; a
    multi-value field's array as the tuple of strings a write sends."""
    prospect: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, list):  # a multi-value custom field, as fields carry one
            value = tuple(str(item) for item in value)
        if name in _V3V4_NAMES:
            prospect[_V3V4_NAMES[name]] = value
        elif name.endswith(facts.V5_CUSTOM_FIELD_SUFFIX) and len(name) > 3:
            prospect[name.removesuffix(facts.V5_CUSTOM_FIELD_SUFFIX)] = value
        else:
            prospect[name] = value
    return prospect


def returned_fields(custom_fields: Iterable[str] = ()) -> str:
    """The ``fields`` a read or write asks back: the standard ones, then each custom
    field named (once), in v5 names."""
    names = list(facts.V5_RETURNED_FIELDS)
    for name in custom_fields:
        v5_name = v5_field_name(name)
        if v5_name not in names:
            names.append(v5_name)
    return ",".join(names)


def _json_value(v5_name: str, value: FieldValue) -> Any:
    if not isinstance(value, str):
        return list(value)
    if value == "":
        return None
    if v5_name in facts.V5_INTEGER_FIELDS and value.isdigit():
        return int(value)
    if v5_name in facts.V5_BOOLEAN_FIELDS:
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return value


# --- prospects --------------------------------------------------------------------------


def upsert_latest_by_email(
    email: str,
    fields: Fields,
    *,
    secondary_deleted_search: bool,
    custom_fields: Iterable[str] = (),
) -> PardotRequest:
    """``do/upsertLatestByEmail``: update the prospect with ``email`` that had the latest
    activity, or create one; with ``secondary_deleted_search``, undelete the latest when
    all are in the recycle bin. Safe to repeat: a second send finds what the first
    created or updated (the match is made on write, not from the read cache), and sets
    the same values."""
    body = {
        "matchEmail": email,
        "prospect": {**fields_to_v5(fields), "email": email},
        "fields": returned_fields(custom_fields).split(","),
        "secondaryDeletedSearch": secondary_deleted_search,
    }
    return v5_request("POST", facts.V5_UPSERT_LATEST_BY_EMAIL_PATH, body, idempotent=True)


def prospect_create(
    email: str, fields: Fields, *, custom_fields: Iterable[str] = ()
) -> PardotRequest:
    """``POST objects/prospects``: always a new prospect (where the business unit
    allows several per email), so never resent once Pardot may have it."""
    body = {**fields_to_v5(fields), "email": email}
    return v5_request(
        "POST",
        facts.V5_PROSPECTS_PATH,
        body,
        idempotent=False,
        query={facts.V5_FIELDS_PARAM: returned_fields(custom_fields)},
    )


def prospect_update(
    prospect_id: int, fields: Fields, *, custom_fields: Iterable[str] = ()
) -> PardotRequest:
    """``PATCH objects/prospects/<id>``: sets values on that prospect, never creates
    (an id nobody has is err 109); safe to repeat."""
    return v5_request(
        "PATCH",
        _prospect_path(prospect_id),
        fields_to_v5(fields),
        idempotent=True,
        query={facts.V5_FIELDS_PARAM: returned_fields(custom_fields)},
    )


def prospect_read(prospect_id: int, *, custom_fields: Iterable[str] = ()) -> PardotRequest:
    """``GET objects/prospects/<id>``; err 109 when nobody has the id."""
    return v5_request(
        "GET",
        _prospect_path(prospect_id),
        None,
        idempotent=True,
        query={facts.V5_FIELDS_PARAM: returned_fields(custom_fields)},
    )


def prospect_query_by_email(email: str, *, custom_fields: Iterable[str] = ()) -> PardotRequest:
    """``GET objects/prospects?email=…``: the first page of the prospects with the email
    (:func:`next_page` follows the rest)."""
    query = {facts.V5_FIELDS_PARAM: returned_fields(custom_fields), facts.V5_EMAIL_PARAM: email}
    return v5_request("GET", facts.V5_PROSPECTS_PATH, None, idempotent=True, query=query)


def prospect_delete(prospect_id: int, *, from_recycle_bin: bool = False) -> PardotRequest:
    """``DELETE objects/prospects/<id>`` (to the recycle bin; HTTP 204). With
    ``from_recycle_bin``, ``?deleted=true`` names the prospect in the recycle bin, as
    v5's reads do: deleting it from there for good is not documented by Salesforce
    (``clients.erasure`` sends it only where a connection asks)."""
    query = {"deleted": "true"} if from_recycle_bin else None
    return v5_request("DELETE", _prospect_path(prospect_id), None, idempotent=True, query=query)


def page_values(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prospects of one page of a collection (``values``), in v3/v4 names."""
    values = document.get("values")
    if not isinstance(values, list):
        raise _unexpected("a v5 collection page has no `values` list")
    return [prospect_from_v5(v) for v in values if isinstance(v, Mapping)]


def next_page(document: Mapping[str, Any], previous: PardotRequest) -> PardotRequest | None:
    """The request for the page after ``document``, or None on the last page.

    ``nextPageUrl`` is followed by its path and query only, on the configured host (an
    answer never chooses where credentials go), and only on the collection's own path;
    without it, ``nextPageToken`` is sent with the ``fields`` of the first request."""
    url = document.get(facts.V5_NEXT_PAGE_URL)
    token = document.get(facts.V5_NEXT_PAGE_TOKEN)
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        if parts.path != previous.path:
            raise _unexpected(f"a v5 nextPageUrl leads off the collection ({parts.path!r})")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not query:
            raise _unexpected("a v5 nextPageUrl carries no query to continue with")
        return v5_request("GET", previous.path, None, idempotent=True, query=query)
    if isinstance(token, str) and token:
        fields = (previous.query or {}).get(facts.V5_FIELDS_PARAM, "")
        query = {facts.V5_NEXT_PAGE_TOKEN: token}
        if fields:
            query[facts.V5_FIELDS_PARAM] = fields
        return v5_request("GET", previous.path, None, idempotent=True, query=query)
    return None


def _prospect_path(prospect_id: int) -> str:
    if isinstance(prospect_id, bool) or not isinstance(prospect_id, int) or prospect_id <= 0:
        raise ValueError(f"a v5 prospect id is a positive integer, not {prospect_id!r}")
    return facts.V5_PROSPECT_PATH.format(id=encode_path_value(prospect_id))


# --- list memberships and external activities ---------------------------------------


def list_membership(list_id: int, prospect_id: int) -> PardotRequest:
    """Add the prospect to the list. A second add answers err 58 (already a member,
    read as success), so it is safe to repeat."""
    body = {"listId": list_id, "prospectId": prospect_id}
    return v5_request(
        "POST",
        facts.V5_LIST_MEMBERSHIPS_PATH,
        body,
        idempotent=True,
        query={facts.V5_FIELDS_PARAM: "id,listId,prospectId"},
    )


def external_activity(extension: str, activity_type: str, value: str, email: str) -> PardotRequest:
    """Record one external activity for the prospect with ``email``. Pardot records an
    activity once per request, so a resend could record it twice: not idempotent."""
    body = {"extension": extension, "type": activity_type, "value": value, "email": email}
    return v5_request("POST", facts.EXTERNAL_ACTIVITIES_PATH, body, idempotent=False)


# --- answers ----------------------------------------------------------------------------


def parse_v5_response(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """A version 5 answer: the success document, or what a failure means.

    - 204 with an empty body (an external activity recorded, a delete) → ``{}``;
    - a JSON object with an integer ``code`` → :class:`PardotError` of that code,
      whatever the status, so the one err_code table decides (184 refreshes the
      token, 66 is retried, 109 is not found, 122 is the daily limit);
    - another JSON object under a 2xx status → that object;
    - Pardot's XML ``<rsp stat="fail"><err code=…>`` (some token and business-unit
      failures come back so, with 400/403) → that PardotError too;
    - anything else (a proxy's page, an empty 200) is not Pardot's: as
      :func:`~clients.wire.responses.not_pardot` says.
    """
    text = body.strip()
    if status == 204 and not text:
        return {}
    document = json_object(text)
    if document is not None:
        code = document.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            raise PardotError(code, error_text(document.get("message")), http_status=status)
        if 200 <= status < 300:
            return document
    elif text.startswith(b"<"):
        try:
            parse_response(status, content_type, text)  # raises the XML err it holds
        except PardotError:
            raise
        except ProspectSyncError:
            pass  # not a Pardot envelope either: said below
    what = "a body that is not Pardot's" if text else "an empty body"
    raise not_pardot(status, what)


def _unexpected(message: str) -> ProspectSyncError:
    return ProspectSyncError(message, reason=Reason.PARDOT_UNEXPECTED_RESPONSE)
