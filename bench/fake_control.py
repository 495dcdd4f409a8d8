"""The benchmark's hand on fakepardot running in another process: its HTTP control API
under /_fake/ (fakepardot/control.py) — reset, switches, and the call log that the
"Pardot calls/event" and "err 66" columns are counted from.

Loopback only, and never through a proxy from the environment: the fake is a local
process this benchmark started.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

_TIMEOUT_S = 30.0


class FakeControl:
    """Synchronous on purpose: the orchestrator is a plain script, and the load
    generator calls it only between measurements (through ``asyncio.to_thread``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=f"{url}/_fake", timeout=_TIMEOUT_S, trust_env=False)

    def wait_ready(self, timeout_s: float) -> None:
        """Until the control API answers, or TimeoutError after ``timeout_s``."""
        give_up = time.monotonic() + timeout_s
        while True:
            try:
                self._http.get("/state").raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > give_up:
                    raise TimeoutError(f"fakepardot at {self.url} did not answer") from None
                time.sleep(0.05)

    def reset(self, **switches: Any) -> None:
        """A fresh fake (no prospects, tokens or calls), then ``switches``."""
        self._http.post("/reset").raise_for_status()
        if switches:
            self._http.post("/switches", json=switches).raise_for_status()

    def set_switches(self, **switches: Any) -> dict[str, Any]:
        response = self._http.post("/switches", json=switches)
        response.raise_for_status()
        return dict(response.json())

    def clear_calls(self) -> None:
        self._http.delete("/calls").raise_for_status()

    def call_count(self) -> int:
        """How many calls are recorded now: cheap, for bracketing a window."""
        response = self._http.get("/state")
        response.raise_for_status()
        return int(response.json()["calls"])

    def calls(self) -> list[dict[str, Any]]:
        """Every call recorded since the last clear (token grants included: they are
        calls too)."""
        response = self._http.get("/calls")
        response.raise_for_status()
        return list(response.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FakeControl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
