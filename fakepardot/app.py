"""The fake's HTTP surface: a Starlette app whose every Pardot-facing request walks one
pipeline, in the order a real request meets real infrastructure:

1. injected faults (a proxy or the network misbehaving: nothing behind it runs);
2. authentication (auth.py) → the account;
3. the account's limits: daily calls (err 122), then requests in flight (err 66);
4. latency (``state.latency_s`` + an injected delay), holding the in-flight slot, and
   while ``state.answers_held`` no answer at all (a test's gate: it decides when);
5. the operation itself, under the state lock;
6. the call log (secrets redacted).

Routes: POST /services/oauth2/token, /api/login/version/<v>, /api/<object>/version/<v>/
do/<op>[/…] (prospects, list memberships, list reads), POST /api/v5/external-activities,
every method on /api/v5/objects/… (v5.py: prospects, list memberships and list reads),
and the control API under /_fake/. Every failure on a
v5 path is rendered by v5_wire.failure_reply (the v5 envelope and its switches).
The lock is never held across an await.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from fakepardot import auth, batch, engagement, prospects, query, v5, v5_wire, wire
from fakepardot import constants as c
from fakepardot.control import control_routes
from fakepardot.model import Account, Fault, PardotFail, RecordedCall, V5Fail
from fakepardot.prospects import ProspectBook
from fakepardot.state import FakeState
from fakepardot.wire import Incoming, Reply

#: Closes the request's connection without a response; False if it could not.
Dropper = Callable[[Scope], bool]
Handler = Callable[[Incoming, Account | None], Reply]

#: How often a held answer looks whether the test has let answers go.
_HELD_POLL_S = 0.005

PROXY_502_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>proxy</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
SERVER_500_PAGE = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
#: Every method reaches v5.py, which answers 405 code 60 itself (as Pardot does).
V5_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def build_app(state: FakeState, dropper: Dropper | None = None) -> Starlette:
    api = _PardotApi(state, dropper or (lambda scope: False))
    return Starlette(
        routes=[
            Route("/services/oauth2/token", api.token, methods=["POST"]),
            Route("/api/login/version/{version}", api.login, methods=["GET", "POST"]),
            Route("/api/v5/external-activities", api.external_activity, methods=["POST"]),
            Route("/api/v5/objects/{rest:path}", api.v5_object, methods=list(V5_METHODS)),
            Route("/api/{rest:path}", api.object_call, methods=["GET", "POST"]),
            Mount("/_fake", routes=control_routes(state)),
        ]
    )


class _Dropped(Response):
    """A 'response' that closes the connection instead of answering."""

    def __init__(self, dropper: Dropper) -> None:
        super().__init__(status_code=500)
        self._dropper = dropper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._dropper(scope):
            # Let the server see the connection go before the app returns, so that it
            # does not try to answer on our behalf.
            for _ in range(3):
                await asyncio.sleep(0)
            return
        await Response(b"drop unsupported by this server", 500)(scope, receive, send)


class _PardotApi:
    def __init__(self, state: FakeState, dropper: Dropper) -> None:
        self.state = state
        self.dropper = dropper

    # --- endpoints -----------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        base_url = str(request.base_url).rstrip("/")
        return await self._serve(
            request, lambda call, _: auth.grant_token(self.state, call, base_url), dialect="oauth"
        )

    async def login(self, request: Request) -> Response:
        return await self._serve(request, self._login, dialect="pardot")

    async def object_call(self, request: Request) -> Response:
        return await self._serve(request, self._object_call, dialect="pardot", account=True)

    async def external_activity(self, request: Request) -> Response:
        return await self._serve(request, self._activity, dialect="v5", account=True)

    async def v5_object(self, request: Request) -> Response:
        base_url = str(request.base_url).rstrip("/")
        return await self._serve(
            request,
            lambda call, who: v5.run(self.state, call, who, base_url),
            dialect="v5",
            account=True,
        )

    # --- the pipeline ----------------------------------------------------------------

    async def _serve(
        self, request: Request, handle: Handler, *, dialect: str, account: bool = False
    ) -> Response:
        started = time.time()
        call = await wire.read(request)
        with self.state.lock:
            generation = self.state._generation
            fault = self.state._take_fault(call.path)
        if fault is not None and fault.kind == "drop":
            self._record(call, wire.Reply(0), None, started, fault, generation)
            return _Dropped(self.dropper)
        who: Account | None = None
        if fault is not None and fault.kind != "delay":
            reply = _fault_reply(fault, call, dialect, self.state)
        else:
            extra = (fault.delay_s or 0.0) if fault is not None else 0.0
            delay = self.state.latency_s + extra
            try:
                if account:
                    with self.state.lock:
                        who = auth.authenticate(self.state, call, allow_legacy=dialect != "v5")
                    reply = await self._in_flight(who, delay, lambda: handle(call, who))
                else:
                    await _sleep(delay)
                    with self.state.lock:
                        reply = handle(call, None)
            except (PardotFail, V5Fail) as failure:
                reply = _failure_reply(failure, call, dialect, self.state)
        self._record(call, reply, who, started, fault, generation)
        headers = {"content-type": reply.content_type} if reply.content_type else {}
        if isinstance(reply, v5_wire.V5Reply):
            headers.update(reply.headers)
        return Response(reply.body, reply.status, headers=headers or None)

    async def _in_flight(self, who: Account, delay: float, answer: Callable[[], Reply]) -> Reply:
        """Pass the account's limits, then hold one in-flight slot for the whole call:
        the latency is what makes the concurrency limit observable."""
        with self.state.lock:
            self.state._admit(who)
        try:
            await _sleep(delay)
            # Set from the test's thread, which cannot wake this loop: poll (no lock needed).
            while self.state.answers_held:  # noqa: ASYNC110
                await asyncio.sleep(_HELD_POLL_S)
            with self.state.lock:
                return answer()
        finally:
            with self.state.lock:
                self.state._release(who)

    def _record(
        self,
        call: Incoming,
        reply: Reply,
        who: Account | None,
        started: float,
        fault: Fault | None,
        generation: int,
    ) -> None:
        recorded = RecordedCall(
            method=call.method,
            path=call.path,
            raw_path=call.raw_path,
            query=call.redacted_query(),
            form=call.redacted_form(),
            http_status=reply.status,
            err_code=reply.err_code,
            account=who.name if who else None,
            ts=started,
            fault=fault.kind if fault else None,
        )
        with self.state.lock:
            self.state._record(recorded, generation)

    # --- handlers (state lock held) ----------------------------------------------------

    def _login(self, call: Incoming, _: Account | None) -> Reply:
        version = call.segments[3] if len(call.segments) > 3 else ""
        _check_version_number(version)
        return wire.ok(auth.login(self.state, call), call.fmt)

    def _object_call(self, call: Incoming, who: Account | None) -> Reply:
        assert who is not None
        segments = call.segments  # api, <object>, version, <v>, do, <op>, ...
        if len(segments) < 6 or segments[2] != "version" or segments[4] != "do":
            raise PardotFail(c.ERR_INVALID_ACTION)
        obj, version, op, rest = segments[1], _version(segments[3], who), segments[5], segments[6:]
        book = ProspectBook(self.state, who)
        payload: dict[str, Any] | None
        if obj == "prospect" and op == "query":
            payload = query.run(book, call.params)
        elif obj == "prospect" and op in batch.BATCH_OPS:
            payload = batch.run(book, version, op, call.params)
        elif obj == "prospect":
            key = (rest[0], rest[1]) if len(rest) >= 2 else None
            payload = prospects.run(book, version, op, key, call.params)
        elif obj == "listMembership":
            payload = engagement.list_membership(book, op, rest, call.params)
        elif obj == "list":
            payload = engagement.read_list(book, op, rest)
        else:
            raise PardotFail(c.ERR_INVALID_ACTION)
        return wire.ok(payload, call.fmt)

    def _activity(self, call: Incoming, who: Account | None) -> Reply:
        assert who is not None
        if call.body_error:
            raise V5Fail(c.V5_ERR_INVALID_JSON)
        if call.json_body is None:
            raise V5Fail(c.V5_ERR_CONTENT_TYPE if call.form else c.V5_ERR_EMPTY_BODY)
        engagement.external_activity(ProspectBook(self.state, who), call.json_body)
        return wire.NO_CONTENT


def _check_version_number(raw: str) -> int:
    if not raw.isdigit():
        raise PardotFail(c.ERR_INVALID_VERSION)
    if int(raw) not in (3, 4):
        raise PardotFail(c.ERR_UNSUPPORTED_VERSION)
    return int(raw)


def _version(raw: str, account: Account) -> int:
    """The path's API version, refused when the account must use the other one."""
    version = _check_version_number(raw)
    if version == 3 and account.version == 4:
        raise PardotFail(c.ERR_MUST_USE_V4)
    if version == 4 and account.version == 3:
        raise PardotFail(c.ERR_CANNOT_USE_V4)
    return version


def _failure_reply(
    failure: PardotFail | V5Fail, call: Incoming, dialect: str, state: FakeState
) -> Reply:
    if dialect == "v5" or isinstance(failure, V5Fail):
        return v5_wire.failure_reply(failure, state)
    return wire.fail(failure, call.fmt)


def _fault_reply(fault: Fault, call: Incoming, dialect: str, state: FakeState) -> Reply:
    if fault.kind == "html_502":
        return Reply(502, PROXY_502_PAGE, "text/html")
    if fault.kind == "http_500":
        return Reply(500, SERVER_500_PAGE, "text/html")
    if fault.kind == "empty_200":
        json_wanted = call.fmt == "json" or dialect != "pardot"
        return Reply(200, b"", c.JSON_CONTENT_TYPE if json_wanted else c.XML_CONTENT_TYPE)
    assert fault.kind == "err" and fault.err_code is not None
    return _failure_reply(PardotFail(fault.err_code), call, dialect, state)


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
