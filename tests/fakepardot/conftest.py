"""Fixtures for the fake's contract tests: the session's fake on 127.0.0.1:0
(tests/conftest.py), reset around every test, and a small helper (``Pardot``) that
calls it over real HTTP (httpx) the way a client does: credentials in headers, path
values URL-encoded.

Test modules get everything through fixtures; they import ``Pardot`` for annotations
only (under TYPE_CHECKING), so nothing depends on how pytest names this module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from fakepardot import DEMO, FakePardot


@pytest.fixture(autouse=True)
def _fresh_state(fake: FakePardot) -> None:
    """Every test starts on a fresh fake: ``fake`` (tests/conftest.py) resets it."""


@pytest.fixture
def http(fake: FakePardot) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        yield client


def oauth_token(http: httpx.Client) -> str:
    response = http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEMO.client_id,
            "client_secret": DEMO.client_secret,
            "refresh_token": DEMO.refresh_token,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def legacy_api_key(http: httpx.Client, email: str) -> str:
    response = http.post(
        "/api/login/version/3",
        data={
            "email": email,
            "password": DEMO.legacy_password,
            "user_key": DEMO.user_key,
            "format": "json",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["api_key"])


class Pardot:
    """Calls the fake as a client would: credentials in headers, values URL-encoded."""

    def __init__(self, http: httpx.Client, headers: dict[str, str], version: int) -> None:
        self.http = http
        self.headers = headers
        self.version = version

    def call(
        self,
        operation: str,
        *keys: str | int,
        obj: str = "prospect",
        version: int | None = None,
        fmt: str = "json",
        method: str = "POST",
        **form: Any,
    ) -> httpx.Response:
        """``operation`` then (id_field, value, …) path pairs, each value URL-encoded."""
        path = f"/api/{obj}/version/{version or self.version}/do/{operation}"
        for key in keys:
            path += "/" + quote(str(key), safe="")
        if fmt == "json":
            form.setdefault("format", "json")
        data = {k: str(v) for k, v in form.items()}
        if method == "GET":
            return self.http.get(path, params=data, headers=self.headers)
        return self.http.post(path, data=data, headers=self.headers)

    def ok(self, operation: str, *keys: str | int, **form: Any) -> dict[str, Any]:
        """A JSON call that must succeed; returns the document."""
        response = self.call(operation, *keys, **form)
        document = response.json()
        assert response.status_code == 200, response.text
        assert document["@attributes"] == {"stat": "ok", "version": 1}, document
        return document

    def fails(
        self, err_code: int, operation: str, *keys: str | int, http_status: int = 200, **form: Any
    ) -> str:
        """A JSON call that must fail with ``err_code``; returns Pardot's text."""
        response = self.call(operation, *keys, **form)
        assert response.status_code == http_status, response.text
        document = response.json()
        assert document["@attributes"] == {"stat": "fail", "version": 1, "err_code": err_code}, (
            document
        )
        return str(document["err"])


def oauth_client(http: httpx.Client, account: str) -> Pardot:
    business_unit = DEMO.business_unit_v4 if account == "v4" else DEMO.business_unit_v3
    headers = {
        "Authorization": f"Bearer {oauth_token(http)}",
        "Pardot-Business-Unit-Id": business_unit,
    }
    return Pardot(http, headers, 4 if account == "v4" else 3)


@pytest.fixture
def v4(http: httpx.Client) -> Pardot:
    """An OAuth client on the v4 account (business unit 0Uv…1CAA)."""
    return oauth_client(http, "v4")


@pytest.fixture
def v3(http: httpx.Client) -> Pardot:
    """An OAuth client on the v3 account (business unit 0Uv…3CAA)."""
    return oauth_client(http, "v3")


@pytest.fixture
def legacy_v3(http: httpx.Client) -> Pardot:
    api_key = legacy_api_key(http, DEMO.legacy_v3_email)
    headers = {"Authorization": f"Pardot api_key={api_key}, user_key={DEMO.user_key}"}
    return Pardot(http, headers, 3)


@pytest.fixture
def legacy_v4(http: httpx.Client) -> Pardot:
    api_key = legacy_api_key(http, DEMO.legacy_v4_email)
    headers = {"Authorization": f"Pardot api_key={api_key}, user_key={DEMO.user_key}"}
    return Pardot(http, headers, 4)


@pytest.fixture
def new_token(http: httpx.Client) -> Callable[[], str]:
    """Fetches a fresh OAuth access token (refresh_token grant) from the fake."""
    return lambda: oauth_token(http)


@pytest.fixture
def client_for(http: httpx.Client) -> Callable[[dict[str, str], int], Pardot]:
    """Builds a Pardot helper with explicit headers and API version."""
    return lambda headers, version: Pardot(http, headers, version)


# --- API v5 (tests/fakepardot/test_fake_v5.py) ------------------------------------------


class V5Client:
    """Calls the fake's API v5 as a client would: Bearer token and business unit
    headers, JSON bodies (``Content-Type: application/json``), paths under
    ``/api/v5/objects/``."""

    def __init__(self, http: httpx.Client, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        return self.http.request(
            method,
            "/api/v5/objects/" + path,
            json=json,
            params=params,
            content=content,
            headers={**self.headers, **(headers or {})},
        )

    def ok(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        """A call that must answer ``status``; returns its JSON (None for no body)."""
        response = self.request(method, path, **options)
        assert response.status_code == status, response.text
        if not response.content:
            return None
        assert response.headers["content-type"] == "application/json", response.headers
        return response.json()

    def fails(self, code: int, http_status: int, method: str, path: str, **options: Any) -> str:
        """A call that must fail with v5's ``{"code", "message"}``; returns the message."""
        response = self.request(method, path, **options)
        assert response.status_code == http_status, response.text
        assert response.headers["content-type"] == "application/json", response.headers
        document = response.json()
        assert set(document) == {"code", "message"} and document["code"] == code, document
        return str(document["message"])


def v5_client(http: httpx.Client, account: str) -> V5Client:
    business_unit = DEMO.business_unit_v4 if account == "v4" else DEMO.business_unit_v3
    headers = {
        "Authorization": f"Bearer {oauth_token(http)}",
        "Pardot-Business-Unit-Id": business_unit,
    }
    return V5Client(http, headers)


@pytest.fixture
def v5(http: httpx.Client) -> V5Client:
    """A v5 client on the v4 account: a business unit that allows several prospects per
    email (AMPSEA)."""
    return v5_client(http, "v4")


@pytest.fixture
def v5_unique(http: httpx.Client) -> V5Client:
    """A v5 client on the v3 account: one prospect per email (no AMPSEA)."""
    return v5_client(http, "v3")
