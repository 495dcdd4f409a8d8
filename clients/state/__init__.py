"""Everything shared between calls, behind one seam (DESIGN.md, "State, and running as
several processes").

- ``protocols`` — one protocol per kind: the identity map (``IdentityStore``), the
  per-person locks (``PersonLocks``), the message_id records (``ResponseRecords``), the
  "a create may still land" holds (``CreateHolds``), an account's daily call count and
  exhausted-until mark (``BudgetMark``), an account's concurrency slots
  (``ConcurrencySlots``) and a connection's token with its single refresh and
  rejection cooldown (``TokenStore``); and what ``clients.connections`` asks a backend
  for (``ClientState``). The rest of the service depends on these only.
- ``local`` — the embedded backends: ``LocalState`` (SQLite files under
  ``server.state_dir``, the rest in this process; ``server.app.open_state`` is where
  the service chooses its backend and builds it) and ``MemoryState`` (all in memory:
  connections built without a backend).
- ``identity``, ``locks``, ``responses``, ``holds``, ``budget``, ``slots``, ``tokens`` —
  today's implementations (SQLite and memory identity maps and the per-connection
  ``IdentityView``; in-process ``KeyedLocks``; the SQLite ``ResponseStore`` with grouped
  commits and messages in progress; SQLite and in-process create holds; in-process
  budget marks, two-entrance slots — calls under way first — and token stores);
  ``local_db`` opens their files, ``clock`` is the time durable state is kept in (no
  step of the wall clock moves it), ``attempts`` carries "an earlier attempt of this
  message may have written" from the records to the gateway.

Nothing here talks to Pardot or decides what to store: what a hold, a spent budget or a
refused token means, and how a token is fetched, are their owners' (``clients.gateway``,
``clients.budget``, ``clients.auth``).
"""
