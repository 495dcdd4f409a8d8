"""The prospect ids one connection has already seen Pardot return, for telling an
upsert's create from its update.

Pardot's upsert answer does not say which it did, and its timestamps have one-second
resolution, so "created_at == updated_at" alone calls an update made in the same
second as the creation a create (a repeat identify right after the first one). An id
that this process has already seen cannot be new. Bounded (least recently seen go
first) and in memory only: it is a hint that sharpens a heuristic, never an identity
source (``clients.state.identity`` is that). It never talks to the network.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 100_000


class KnownProspectIds:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, prospect_id: object) -> bool:
        return prospect_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, prospect_id: int) -> None:
        self._ids[prospect_id] = None
        self._ids.move_to_end(prospect_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
