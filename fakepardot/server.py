"""Running the fake: uvicorn on loopback, either in a daemon thread with its own event
loop (tests: ``FakePardot().start()``) or blocking in the foreground (the CLI).

The socket is bound before the thread starts, so ``start()`` knows its port
without polling, and port 0 never races another test. The HTTP protocol is uvicorn's
h11 one, subclassed only to remember each connection's transport by peer address so
that the "drop" fault can close a connection without answering. Never binds a
non-loopback address unless the CLI's caller asks for one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import Scope
from uvicorn.protocols.http.h11_impl import H11Protocol

from fakepardot.app import build_app
from fakepardot.state import FakeState

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def _protocol_remembering_transports(
    transports: dict[tuple[str, int], asyncio.Transport],
) -> type[H11Protocol]:
    class RememberingH11Protocol(H11Protocol):
        # H11Protocol narrows BaseProtocol's BaseTransport to a Transport (uvicorn has
        # the same ignore on its own method): this override matches H11Protocol's.
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if self.client:
                transports[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client:
                transports.pop(self.client, None)
            super().connection_lost(exc)

    return RememberingH11Protocol


class FakePardot:
    """A faithful Pardot API emulator. ``with FakePardot() as fake: fake.url``."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state if state is not None else FakeState()
        self._transports: dict[tuple[str, int], asyncio.Transport] = {}
        self.app = build_app(self.state, self._drop)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakePardot is not running: call start() first")
        return self._url

    @property
    def token_url(self) -> str:
        return self.url + "/services/oauth2/token"

    def start(self) -> str:
        """Serve on 127.0.0.1:<free port> in a daemon thread; return the base URL."""
        if self._thread is not None:
            raise RuntimeError("FakePardot is already running")
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets
        # whose proto says TCP, and without it every answer waits ~40 ms for an ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        host, port = sock.getsockname()[:2]
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fakepardot", daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        for _ in range(int(START_TIMEOUT_S / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            ready.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError("FakePardot did not start")
        self._url = f"http://{host}:{port}"
        return self._url

    def stop(self) -> None:
        """Stop serving (bounded: in-flight requests get a second to finish)."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        self._server, self._thread, self._url = None, None, None

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8750) -> None:
        """Serve in the foreground until SIGINT/SIGTERM (``prospect-sync fake-pardot``)."""
        self._url = f"http://{host}:{port}"
        server = uvicorn.Server(self._config(host=host, port=port, log_level="info"))
        try:
            server.run()
        finally:
            self._url = None

    def __enter__(self) -> FakePardot:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _config(self, **overrides: Any) -> uvicorn.Config:
        settings: dict[str, Any] = {
            "http": _protocol_remembering_transports(self._transports),
            "lifespan": "off",
            "log_level": "warning",
            "access_log": False,
            "timeout_graceful_shutdown": 1,
            "ws": "none",
        }
        settings.update(overrides)
        return uvicorn.Config(self.app, **settings)

    def _drop(self, scope: Scope) -> bool:
        client = scope.get("client")
        transport = self._transports.get(tuple(client)) if client else None
        if transport is None:
            return False
        transport.abort()
        return True
