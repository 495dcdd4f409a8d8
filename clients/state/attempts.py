"""Which attempt of its message the running call is: the first, or one after an attempt
that began and got no answer (a crash, a failure) and so may have written already.

``server.idempotency`` knows (the message_id records, ``ResponseRecords.begin``) and
sets it around each call; ``clients.gateway`` reads it when it is built for the call
and tells the strategy (``Gateway.earlier_attempt``), which then resolves by reading
what the earlier attempt may have created instead of creating blindly (issue 12,
item 2). A context variable, so that nothing between the two — the servicer, the
batch of a BatchSync — has to carry it: every task a call starts sees its own call's.
It holds a time and nothing else; it never decides anything.
"""

from __future__ import annotations

from contextvars import ContextVar

_EARLIER_ATTEMPT: ContextVar[float | None] = ContextVar("earlier_attempt", default=None)


def earlier_attempt() -> float | None:
    """The wall time (seconds since the epoch) at which an earlier, unanswered attempt
    of the running call's message began; None for a first attempt, or outside a call."""
    return _EARLIER_ATTEMPT.get()


class attempt_of:  # lower case: used like a function, as ``with attempt_of(began):``
    """Within this block (and the tasks started in it), :func:`earlier_attempt` is
    ``began``."""

    def __init__(self, began: float | None) -> None:
        self._began = began

    def __enter__(self) -> None:
        self._token = _EARLIER_ATTEMPT.set(self._began)

    def __exit__(self, *_: object) -> None:
        _EARLIER_ATTEMPT.reset(self._token)
