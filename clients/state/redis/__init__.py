"""The shared state backend: every kind of ``clients.state.protocols`` in Redis, so that
several replicas and worker processes behave as one service towards each Pardot account
(DESIGN.md, "State, and running as several processes"; issue 13).

One module per kind, as in ``clients.state``; :mod:`.context` holds what they share
(the client, the key prefix, the mapping of Redis failures to ``StateUnwritable``) and
:mod:`.state` assembles them (``RedisState``, chosen by ``server.app.open_state`` when
``server.state = "redis"``). What must be atomic runs in Lua scripts registered once per
client (``redis.asyncio.Redis.register_script``: EVALSHA, reloaded after a Redis
restart). Nothing here ever falls back to per-process state: a Redis that cannot answer
fails the call (UNAVAILABLE) before any Pardot write.
"""
