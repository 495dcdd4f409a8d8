"""Everything shared between calls, behind one seam (DESIGN.md, "State, and running as
several processes").

- ``protocols`` — one protocol per kind: the identity map (``IdentityStore``), the
  per-person locks (``PersonLocks``), the message_id records (``ResponseRecords``). The
  rest of the service depends on these only.
- ``local`` — the embedded backend, ``LocalState``: SQLite files under
  ``server.state_dir`` and locks in this process. ``server.app.open_state`` is where
  the service chooses its backend and builds it.
- ``identity``, ``locks``, ``responses`` — today's implementations (SQLite and memory
  identity maps and the per-connection ``IdentityView``; in-process ``KeyedLocks``; the
  SQLite ``ResponseStore`` with grouped commits); ``local_db`` opens their files.

Not behind the seam yet (still per process, in their owners): the "a create may still
land" holds (``clients.unconfirmed``), the daily budget and its exhausted-until mark
(``clients.budget``), the per-account concurrency slots (the limiter of
``clients.connections`` / ``clients.transport``) and the OAuth token and its single
refresh (``clients.auth``).

Nothing here talks to Pardot or decides what to store.
"""
