"""Bounded waiting for what fakepardot does in its own thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait, bounded, for something the fake does in its own thread (a request it is
    holding, a delayed answer it recorded). That thread cannot set an asyncio.Event of
    this loop, so poll."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.005)
