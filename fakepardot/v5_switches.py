"""The API v5 switches: where PARDOT_API.md (or the evidence behind it) leaves a v5
behaviour UNCONFIRMED, the fake makes it one switch on ``FakeState``, and a test flips
it to check that a client copes with both sides. This module says what each switch
means, which values it takes, and why its default is the default.

    v5_limit_status = 429            HTTP status of v5 err 66 (concurrency) and err 122
                                     (daily limit): 429 | 400. UNCONFIRMED in PARDOT_API.md
                                     ("Rate-limit statuses UNCONFIRMED"); v5 always answers
                                     4xx JSON, and 429 is what the fake's external
                                     activities answered before these switches existed.
                                     A client must read ``code``, never the status alone.
    v5_auth_errors = "json"          token / business-unit failures (err 184, 181, 201) on
                                     v5 paths: "json" (the v5 envelope: 401 code 184,
                                     400 code 181) | "xml" (the v3/v4 XML envelope,
                                     ``text/xml``: 400 for 184 and 181). PARDOT_API.md:
                                     "Some token and business-unit failures have come back
                                     as XML with 400/403 (Segment's code still handles
                                     both)". Err 201 travels in the same envelope with the
                                     status of ``bu_invalid_http_status`` (400 | 403), the
                                     one switch v3/v4 share for it.
    v5_upsert_match = "last_activity"  which prospect upsertLatestByEmail and undelete pick
                                     among those with the email: the latest
                                     ``lastActivityAt`` (Salesforce's v5 prospect guide
                                     names the operation "Upsert (Record with Latest
                                     Activity At by Email)") | "updated" (the latest
                                     ``updatedAt``: "most recently updated", Salesforce's
                                     "Transitioning to V5?" page). Ties: the newest id.
    v5_upsert_fields_required = False  whether upsertLatestByEmail and undelete need
                                     ``fields``: False (Segment's and Let's Encrypt's v5
                                     clients, in production, never send it and succeed) |
                                     True (400 code 13 "One or more required parameters are
                                     missing: fields", as every v5 read). Without
                                     ``fields`` the answer is ``{"id", "email"}``: the shape
                                     Segment's client types the answer as.
    v5_page_size = 200               the page size of the v5 prospect query when the
                                     request gives no ``limit`` (Pardot's default: 200;
                                     ``limit`` may ask for up to 1000). A small value makes
                                     paging testable with a handful of prospects.
    v5_null_clears = True            whether ``null`` in a v5 write's prospect clears the
                                     field: True (JSON's way to say "no value", and what
                                     the service sends to clear one) | False (null leaves
                                     the field as it was; ``""`` clears). UNCONFIRMED:
                                     Salesforce's v5 pages say nothing; v3/v4 clear by an
                                     empty value (pardot/api-docs, api-version-4/
                                     prospects.md, "Updating Field Values": ``phone=``),
                                     and null in v4's batch JSON "just leaves the old value
                                     and does nothing" (grouparoo/grouparoo PR 1391, run
                                     against a Pardot sandbox).
    v5_permanent_delete = False      whether ``DELETE …/prospects/<id>?deleted=true`` on a
                                     prospect in the recycle bin removes it for good
                                     (204): False (404 code 109, as any DELETE of a
                                     prospect in the recycle bin) | True. UNCONFIRMED, and
                                     not in PARDOT_API.md: Salesforce Help ("Permanently
                                     Delete Prospects") documents permanent deletion only
                                     from the recycle bin's page, by an Administrator, and
                                     no public client or v5 guide we found names an API
                                     for it; ``deleted=true`` is how v5 reads address a
                                     prospect in the recycle bin. Off: no account is
                                     known to allow it.

Plain data and validation only: the handlers (v5.py, v5_query.py, v5_wire.py) read the
values from the state, with its lock held.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar, overload

from fakepardot import constants as c

_T = TypeVar("_T")

V5_LIMIT_STATUSES: Final = (429, 400)
V5_AUTH_ERRORS: Final = ("json", "xml")
V5_UPSERT_MATCHES: Final = ("last_activity", "updated")

#: (name, default) of every v5 switch, in the order the control API shows them.
DEFAULTS: Final[tuple[tuple[str, Any], ...]] = (
    ("v5_limit_status", 429),
    ("v5_auth_errors", "json"),
    ("v5_upsert_match", "last_activity"),
    ("v5_upsert_fields_required", False),
    ("v5_page_size", c.V5_DEFAULT_PAGE_SIZE),
    ("v5_null_clears", True),
    ("v5_permanent_delete", False),
)


class Choice(Generic[_T]):
    """A switch attribute that refuses any value outside its choices: a typo in a test
    or a control call would otherwise silently test the default. Values must match in
    type too (``0`` is no ``False``, ``True`` is no ``1``)."""

    def __init__(self, *choices: _T) -> None:
        self.choices = choices
        self.attribute = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.public = name
        self.attribute = "_" + name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Choice[_T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Choice[_T] | _T:
        if obj is None:
            return self
        value: _T = getattr(obj, self.attribute)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        if not any(type(value) is type(c) and value == c for c in self.choices):
            raise ValueError(f"{self.public} must be one of {list(self.choices)}")
        setattr(obj, self.attribute, value)


class PageSize:
    """The ``v5_page_size`` switch: an integer from 1 to 1000 (v5's largest page)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = "_" + name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> PageSize: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> int: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> PageSize | int:
        if obj is None:
            return self
        value: int = getattr(obj, self.attribute)
        return value

    def __set__(self, obj: object, value: int) -> None:
        if type(value) is not int or not 1 <= value <= c.V5_MAX_PAGE_SIZE:
            raise ValueError(f"v5_page_size must be an integer from 1 to {c.V5_MAX_PAGE_SIZE}")
        setattr(obj, self.attribute, value)
