"""The identity map in Redis: ``clients.state.protocols.IdentityStore`` shared by every
replica, so a prospect one replica learned is warm on all of them.

Two kinds of key, both under the backend's prefix:

- ``identity:<connection>:<namespace>:<key>`` → the prospect id (a string), one per
  entry, the key normalised as the embedded map does (emails as Pardot matches them);
- ``identity-of:<connection>:<prospect id>`` → the set of entry keys naming that id:
  the reverse index that makes :meth:`RedisIdentityStore.forget` a few commands, not a
  scan of the keyspace.

Both change in one Lua script, so the index never names an entry that names another id
(an entry learned again for a new id leaves its old id's set). The entries are the map
itself, so they have no TTL (an id Pardot deleted goes by ``forget``): a map of N
entries costs about N * (2 * key length + ~120 bytes) of Redis memory — the entry
string and its member in the reverse set — about 200 bytes for an email under the
default prefix, so a million remembered people take some 200 MB.

Every command goes through ``RedisContext.run``: a Redis that cannot answer reports to
the backend's health and raises StateUnwritable (``clients.state.identity`` says what the
callers do with it).
"""

from __future__ import annotations

from clients.state.identity import WHAT, _normal
from clients.state.redis.context import RedisContext
from clients.state.redis.written import WrittenRides, settle
from strategies.core.errors import StateUnwritable

#: KEYS[1] the entry, KEYS[2] the new id's reverse set, then the memory of writes'
#: hashes that ride along; ARGV[1] the id, ARGV[2] the reverse sets' key without the id
#: (to find the old id's set), then per hash its number of fields and its field, digest
#: pairs (``clients.state.redis.written``).
_REMEMBER = """
local old = redis.call('GET', KEYS[1])
if old and old ~= ARGV[1] then
  redis.call('SREM', ARGV[2] .. ':' .. old, KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], KEYS[1])
local at = 3
for i = 3, #KEYS do
  local n = tonumber(ARGV[at])
  redis.call('HSET', KEYS[i], unpack(ARGV, at + 1, at + 2 * n))
  at = at + 1 + 2 * n
end
return 1
"""

#: KEYS[1] the id's reverse set; ARGV[1] the id. Deletes only entries that still name
#: the id (the set is kept exact by _REMEMBER; the check costs nothing and guards it).
_FORGET = """
local entries = redis.call('SMEMBERS', KEYS[1])
local dropped = 0
for _, entry in ipairs(entries) do
  if redis.call('GET', entry) == ARGV[1] then
    redis.call('DEL', entry)
    dropped = dropped + 1
  end
end
redis.call('DEL', KEYS[1])
return dropped
"""


class RedisIdentityStore:
    """The identity map of the Redis backend ``ctx``. Entry and reverse keys of one
    connection are computed here, in Python, and the old id's set inside the script
    (single Redis instance; a Redis Cluster would need the connection as a hash tag)."""

    def __init__(self, ctx: RedisContext, rides: WrittenRides | None = None) -> None:
        self._ctx = ctx
        #: The memory of writes' HSETs waiting for a script (one per backend).
        self._rides = rides
        self._remember = ctx.client.register_script(_REMEMBER)
        self._forget = ctx.client.register_script(_FORGET)

    def _entry(self, connection: str, namespace: str, key: str) -> str:
        return self._ctx.key("identity", connection, namespace, _normal(namespace, key))

    def _index(self, connection: str) -> str:
        return self._ctx.key("identity-of", connection)

    async def lookup(self, connection: str, namespace: str, key: str) -> int | None:
        found = await self._ctx.run(
            WHAT, self._ctx.client.get(self._entry(connection, namespace, key))
        )
        return int(found) if found is not None else None

    async def remember(self, connection: str, namespace: str, key: str, prospect_id: int) -> None:
        index = self._index(connection)
        keys: list[str] = [self._entry(connection, namespace, key), f"{index}:{prospect_id}"]
        args: list[str | int] = [prospect_id, index]
        riding = self._rides.take() if self._rides is not None else []
        for written in riding:
            keys.append(written.key)
            args.append(len(written.digests))
            args += [part for pair in written.digests.items() for part in pair]
        try:
            await self._ctx.run(WHAT, self._remember(keys=keys, args=args))
        except StateUnwritable as error:
            settle(riding, error)
            raise
        except BaseException:  # cancelled: the memory's writes go alone
            if self._rides is not None:
                self._rides.put_back(riding)
            raise
        settle(riding, None)

    async def forget(self, connection: str, prospect_id: int) -> int:
        index = f"{self._index(connection)}:{prospect_id}"
        dropped = await self._ctx.run(WHAT, self._forget(keys=[index], args=[prospect_id]))
        return int(dropped)

    def close(self) -> None:
        """Nothing of its own to close: the client is the backend's (``RedisState``)."""
