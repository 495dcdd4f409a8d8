"""The pieces of the browser test: loopback HTTP servers (the stub tracker and a
customer's server-rendered page), and headless Chromium loading one page.

Everything listens on 127.0.0.1 only; Chromium runs with networking extras off and a
fresh profile per page, and is stopped if a page takes longer than a minute.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc

ACCOUNT_ID = "12345"
DEFAULT_CAMPAIGN = "1001"
#: The cookie our stub pd.js sets on the tracker host, as Pardot's sets its visitor id.
VISITOR_COOKIE = f"visitor_id{ACCOUNT_ID}=v-42"

#: Flags that keep headless Chromium to the page: no sandbox (root in a container), no
#: GPU, no QUIC, and none of its own traffic (updates, sync, field trials).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Virtual time runs until the page is idle (pd.js loaded after the load event
    # included), without waiting that long in real time.
    "--virtual-time-budget=10000",
)
BROWSER_TIMEOUT_S = 60.0

#: Our stand-in for Pardot's pd.js: shows the globals the snippet set, in the DOM.
STUB_PD_JS = b"""(function () {
  var out = document.getElementById("pardot-globals");
  out.textContent = JSON.stringify({
    piAId: window.piAId,
    piCId: window.piCId,
    piHostname: window.piHostname,
    readyState: document.readyState  // "complete": loaded after the page's load event
  });
})();
"""
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@dataclass(frozen=True)
class Seen:
    """One request a loopback server answered."""

    target: str  # as the browser sent it: path and query, still percent-encoded
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Loopback:
    """An HTTP server on 127.0.0.1:<free port> in a daemon thread, answering with
    ``respond`` and recording every request."""

    def __init__(self, respond: Callable[[Seen], Answer]) -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = dict(self.headers.items())
                seen = Seen(self.path, parts.path, parse_qs(parts.query), headers)
                outer.seen.append(seen)
                answer = respond(seen)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the recorded requests say it all

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def tracker_answer(seen: Seen) -> Answer:
    """The stub tracker: pd.js (which sets the visitor cookie) and the /analytics pixel."""
    if seen.path == "/pd.js":
        cookie = {"Set-Cookie": f"{VISITOR_COOKIE}; Path=/"}
        return Answer(200, "text/javascript", STUB_PD_JS, cookie)
    if seen.path == "/analytics":
        return Answer(200, "image/gif", PIXEL_GIF)
    return Answer(404, "text/plain", b"not here")


@dataclass
class Site:
    """A customer's server-rendered page: for each request it asks ProspectSync for
    the snippet of the URL being served, and embeds it."""

    service_port: int
    origin: str = ""
    #: The logged-in visitor, if any.
    visitor_email: str = ""
    #: Whether the site passes the browser's DNT header on as do_not_track.
    honours_dnt_header: bool = True
    errors: list[str] = field(default_factory=list)

    def answer(self, seen: Seen) -> Answer:
        if seen.path != "/landing":
            return Answer(404, "text/plain", b"not here")
        request = pb.GetTrackingSnippetRequest(
            page_url=self.origin + seen.target,
            settings=pb.PardotSettings(account_id=ACCOUNT_ID, campaign_id=DEFAULT_CAMPAIGN),
            visitor_email=self.visitor_email,
            do_not_track=self.honours_dnt_header and seen.headers.get("DNT") == "1",
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{self.service_port}") as channel:
                snippet = pb_grpc.ProspectSyncStub(channel).GetTrackingSnippet(request, timeout=10)
        except grpc.RpcError as error:
            self.errors.append(str(error))
            return Answer(500, "text/plain", b"snippet failed")
        page = (
            "<!doctype html>\n<html><head><title>Pricing</title></head><body>\n"
            "<h1>Pricing</h1>\n"
            '<pre id="pardot-globals">pd.js did not run</pre>\n'
            f"{snippet.html}</body></html>\n"
        )
        return Answer(200, "text/html; charset=utf-8", page.encode())


@dataclass
class Browser:
    """Loads one page in a fresh headless Chromium and returns the DOM after it is
    idle (the load event, pd.js and what pd.js did included)."""

    executable: str
    profiles: Path

    async def dom(self, url: str, *, do_not_track: bool = False) -> str:
        profile = self.profiles / f"profile-{len(list(self.profiles.iterdir()))}"
        (profile / "Default").mkdir(parents=True)
        if do_not_track:  # Chromium's own "Send a Do Not Track request" setting
            preferences = {"enable_do_not_track": True}
            (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
        process = await asyncio.create_subprocess_exec(
            self.executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: its helpers go with it
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=BROWSER_TIMEOUT_S)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)  # the group this call started
            await process.wait()
            raise
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()


def pardot_globals(dom: str) -> dict[str, str] | None:
    """What our stub pd.js saw (None when it did not run)."""
    match = re.search(r'<pre id="pardot-globals">(.*?)</pre>', dom, re.DOTALL)
    assert match, "the page is not in the DOM"
    text = html.unescape(match[1])
    return None if text == "pd.js did not run" else json.loads(text)
