"""The control API under /_fake/: the FakeState Python API over JSON, so that another
process (``make run``, a benchmark, a manual session) can flip switches, inject
faults, seed data and read the call log.

    GET    /_fake/state                                switches, counters, pending faults
    POST   /_fake/switches        {"latency_s": 0.1, "max_concurrency": 5, "daily_limit": null,
                                   "unknown_custom_field": "ignore", "legacy_retired": false,
                                   "token_ttl_s": null, "api_key_ttl_s": 3600,
                                   "answers_held": false, "v3_batch_error_keys": "index",
                                   "v5_limit_status": 429, "v5_auth_errors": "json",
                                   "v5_upsert_match": "last_activity",
                                   "v5_upsert_fields_required": false, "v5_page_size": 200,
                                   "upsert_fid_creates": true, "bu_invalid_http_status": 400,
                                   "oauth_grant_types": [...]}
                                   (any subset; the v5 ones: v5_switches.py)
    POST   /_fake/inject          {"kind": "err", "times": 1, "err_code": 66,
                                   "path_contains": null, "delay_s": null,
                                   "match": null, "text": null}
    DELETE /_fake/faults
    POST   /_fake/expire-tokens
    POST   /_fake/reset
    GET    /_fake/calls           DELETE /_fake/calls
    GET    /_fake/accounts/{account}/prospects         POST (JSON fields) seeds one
    GET    /_fake/accounts/{account}/prospects/{id}    DELETE removes it
    GET    /_fake/accounts/{account}/lists/{list_id}   POST {"prospect_id": N} adds a member
                                   ("opted_out": true: one who opted out of the list)
    GET    /_fake/accounts/{account}/activities
    POST   /_fake/accounts/{account}/configure         {"custom_fields": [...], "campaigns": [...],
                                   "lists": [...], "external_activity_types": [[ext, type]]}

Unauthenticated by design: the fake binds loopback and holds no real data. Requests
here are never recorded, limited or faulted. Never expose this on a shared network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakepardot.state import FakeState

Endpoint = Callable[[Request], Awaitable[Response]]


def control_routes(state: FakeState) -> list[Route]:
    def guarded(action: Callable[[Request, Any], Any], *, body: bool = False) -> Endpoint:
        """JSON in, JSON out; a bad value or unknown account is a 400 naming it."""

        async def endpoint(request: Request) -> Response:
            try:
                payload = (await request.json() if await request.body() else {}) if body else None
                result = action(request, payload)
            except (ValueError, KeyError, TypeError) as exc:
                message = exc.args[0] if exc.args else str(exc)
                return JSONResponse({"error": str(message)}, status_code=400)
            if result is None:
                return JSONResponse({"ok": True})
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

    def account(request: Request) -> str:
        return str(request.path_params["account"])

    def overview(_: Request, __: Any) -> dict[str, Any]:
        return {
            "switches": state.switches(),
            "token_grants": state.token_grants,
            "logins": state.logins,
            "faults": state.pending_faults(),
            "calls": len(state.calls),
        }

    def switches(_: Request, payload: dict[str, Any]) -> dict[str, Any]:
        state.set_switches(**payload)
        return state.switches()

    def inject(_: Request, payload: dict[str, Any]) -> None:
        state.inject(**payload)

    def calls(_: Request, __: Any) -> list[dict[str, Any]]:
        return [call.as_dict() for call in state.calls]

    def prospect(request: Request, __: Any) -> Any:
        found = state.get_prospect(account(request), int(request.path_params["prospect_id"]))
        return found if found is not None else JSONResponse({"error": "no such prospect"}, 404)

    def delete_prospect(request: Request, __: Any) -> Any:
        if state.delete_prospect(account(request), int(request.path_params["prospect_id"])):
            return None
        return JSONResponse({"error": "no such prospect"}, 404)

    def add_member(request: Request, payload: dict[str, Any]) -> None:
        list_id = int(request.path_params["list_id"])
        state.add_list_member(
            account(request),
            list_id,
            int(payload["prospect_id"]),
            opted_out=bool(payload.get("opted_out", False)),
        )

    def configure(request: Request, payload: dict[str, Any]) -> None:
        state.configure_account(account(request), **payload)

    prospects_path = "/accounts/{account}/prospects"
    return [
        Route("/state", guarded(overview), methods=["GET"]),
        Route("/switches", guarded(switches, body=True), methods=["POST"]),
        Route("/inject", guarded(inject, body=True), methods=["POST"]),
        Route("/faults", guarded(lambda _, __: state.clear_faults()), methods=["DELETE"]),
        Route("/expire-tokens", guarded(lambda _, __: state.expire_tokens()), methods=["POST"]),
        Route("/reset", guarded(lambda _, __: state.reset()), methods=["POST"]),
        Route("/calls", guarded(calls), methods=["GET"]),
        Route("/calls", guarded(lambda _, __: state.clear_calls()), methods=["DELETE"]),
        Route(
            prospects_path,
            guarded(lambda r, _: state.prospects(account(r))),
            methods=["GET"],
        ),
        Route(
            prospects_path,
            guarded(lambda r, p: state.add_prospect(account(r), **p), body=True),
            methods=["POST"],
        ),
        Route(prospects_path + "/{prospect_id:int}", guarded(prospect), methods=["GET"]),
        Route(prospects_path + "/{prospect_id:int}", guarded(delete_prospect), methods=["DELETE"]),
        Route(
            "/accounts/{account}/lists/{list_id:int}",
            guarded(lambda r, _: state.list_members(account(r), r.path_params["list_id"])),
            methods=["GET"],
        ),
        Route(
            "/accounts/{account}/lists/{list_id:int}",
            guarded(add_member, body=True),
            methods=["POST"],
        ),
        Route(
            "/accounts/{account}/activities",
            guarded(lambda r, _: state.activities(account(r))),
            methods=["GET"],
        ),
        Route("/accounts/{account}/configure", guarded(configure, body=True), methods=["POST"]),
    ]
