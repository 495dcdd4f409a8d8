"""The suppressions Forget records (``clients.state.protocols.Suppressions``) and the
message_id records it drops (``ResponseRecords.forget_prospects``), on every backend
through ``support.state``'s fixture: what SQLite does, Redis does too."""

from __future__ import annotations

import stat

from clients.state.local import SUPPRESSION_KEY_FILE, SUPPRESSIONS_FILE
from clients.state.protocols import IdempotencyKey
from clients.state.suppressions import digest
from support.state import BACKENDS, StateUnderTest, state_fixture

state = state_fixture(BACKENDS)

EMAIL = "forgotten.person@example.com"


async def test_a_recorded_digest_is_found_and_others_are_not(state: StateUnderTest) -> None:
    store = state.suppressions()
    key = await store.hash_key()
    mine = digest(key, "default", f"email:{EMAIL}")
    other = digest(key, "default", "email:someone.else@example.com")
    assert not await store.any_of("default", (mine,))
    await store.add("default", (mine, digest(key, "default", "id:42")))
    assert await store.any_of("default", (other, mine))
    assert not await store.any_of("default", (other,))
    assert not await store.any_of("default", ())


async def test_suppressions_are_per_connection(state: StateUnderTest) -> None:
    store = state.suppressions()
    key = await store.hash_key()
    await store.add("default", (digest(key, "default", "id:42"),))
    assert not await store.any_of("v5", (digest(key, "v5", "id:42"),))
    assert not await store.any_of("v5", (digest(key, "default", "id:42"),))


async def test_a_reopened_store_keeps_the_key_and_the_suppressions(state: StateUnderTest) -> None:
    first = state.suppressions()
    key = await first.hash_key()
    await first.add("default", (digest(key, "default", f"email:{EMAIL}"),))
    again = state.suppressions()
    if not state.shared:  # memory: every store is new, under a key of its own
        assert await again.hash_key() != key
        return
    assert await again.hash_key() == key
    assert await again.any_of("default", (digest(key, "default", f"email:{EMAIL}"),))


async def test_the_store_holds_no_plain_identifier(state: StateUnderTest) -> None:
    store = state.suppressions()
    key = await store.hash_key()
    await store.add("default", (digest(key, "default", f"email:{EMAIL}"),))
    if state.backend == "sqlite":
        data = (state.state_dir / SUPPRESSIONS_FILE).read_bytes()
        wal = state.state_dir / f"{SUPPRESSIONS_FILE}-wal"
        data += wal.read_bytes() if wal.exists() else b""
        assert b"forgotten" not in data and b"example.com" not in data
        key_file = state.state_dir / SUPPRESSION_KEY_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    elif state.backend == "redis":
        client = state.redis.context.client
        names = [n async for n in client.scan_iter(match=f"{state.redis.context.prefix}*")]
        values = [await client.smembers(n) for n in names if b"suppressed" in n]
        dump = b" ".join(names) + b" ".join(b" ".join(v) for v in values)
        assert values and b"forgotten" not in dump and b"example.com" not in dump


async def test_forget_prospects_drops_only_the_records_naming_them(state: StateUnderTest) -> None:
    records = state.responses()
    named = IdempotencyKey("/m/Identify", "default", "m-1")
    other = IdempotencyKey("/m/Identify", "default", "m-2")
    elsewhere = IdempotencyKey("/m/Identify", "v5", "m-3")
    await records.save(named, b"one", then=lambda: None, prospect_id=7)
    await records.save(other, b"two", then=lambda: None, prospect_id=8)
    await records.save(elsewhere, b"three", then=lambda: None, prospect_id=7)
    assert await records.forget_prospects("default", (7, 99)) == 1
    assert await records.get(named) is None
    assert await records.get(other) == b"two"
    assert await records.get(elsewhere) == b"three"
    assert await records.forget_prospects("default", (7,)) == 0


async def test_recorded_lists_every_scope_with_its_digests(state: StateUnderTest) -> None:
    """What ``prospect-sync state migrate`` copies; scope names as given, ``:`` and
    ``%`` included (Redis escapes them in its keys)."""
    store = state.suppressions()
    key = await store.hash_key()
    scopes = ("default", "odd:scope%3A")
    wanted = {s: {digest(key, s, f"id:{n}") for n in range(3)} for s in scopes}
    for scope, digests in wanted.items():
        await store.add(scope, tuple(digests))
    listed: dict[str, set[str]] = {}
    async for scope, digests in store.recorded():
        assert not listed.get(scope, set()) & set(digests)  # each digest once
        listed.setdefault(scope, set()).update(digests)
    assert listed == wanted
