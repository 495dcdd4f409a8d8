"""A configured suppression key (``server.suppression_key``, docs/erasure.md, "The
suppression and its key"), on every backend through ``support.state``'s fixture: when
configured it is the key, and it is never written into the state; a store refuses a key
other than the one its suppressions were recorded under (they would stop matching, and
a person forgotten must stay forgotten); the generated key can be adopted as the
configured one without losing a suppression."""

from __future__ import annotations

import pytest

from clients.state.local import SUPPRESSION_KEY_FILE, SUPPRESSIONS_FILE
from clients.state.suppressions import SuppressionKeyChanged, digest
from support.state import BACKENDS, StateUnderTest, state_fixture

state = state_fixture(BACKENDS)

KEY = bytes.fromhex("a1" * 32)
OTHER_KEY = bytes.fromhex("b2" * 32)
PERSON = "email:forgotten.person@example.com"


def shared_only(state: StateUnderTest) -> None:
    if not state.shared:
        pytest.skip("the memory backend keeps nothing between stores: no key to change")


async def state_dump(state: StateUnderTest) -> bytes:
    """Every byte the backend holds for the suppressions: what a stolen copy holds."""
    if state.backend == "sqlite":
        files = [f for f in state.state_dir.iterdir() if f.is_file()]
        return b"".join(f.read_bytes() for f in files)
    if state.backend == "redis":
        client = state.redis.context.client
        names = [n async for n in client.scan_iter(match=f"{state.redis.context.prefix}*")]
        values = []
        for name in names:
            kind = await client.type(name)
            if kind == b"string":
                values.append(await client.get(name) or b"")
            elif kind == b"set":
                values.extend(await client.smembers(name))
        return b" ".join([*names, *values])
    return b""


async def test_a_configured_key_is_the_key_and_is_never_kept_in_the_state(
    state: StateUnderTest,
) -> None:
    store = state.suppressions(KEY)
    assert await store.hash_key() == KEY
    await store.add("default", (digest(KEY, "default", PERSON),))
    assert await store.any_of("default", (digest(KEY, "default", PERSON),))
    assert not (state.state_dir / SUPPRESSION_KEY_FILE).exists()
    dump = await state_dump(state)
    assert KEY.hex().encode() not in dump and KEY not in dump
    if state.backend == "redis":
        assert not await state.redis.context.client.exists(
            state.redis.context.key("suppression-key")
        )


async def test_every_store_under_the_configured_key_finds_the_suppressions(
    state: StateUnderTest,
) -> None:
    shared_only(state)
    await state.suppressions(KEY).add("default", (digest(KEY, "default", PERSON),))
    again = state.suppressions(KEY)
    assert await again.hash_key() == KEY
    assert await again.any_of("default", (digest(KEY, "default", PERSON),))


async def test_another_key_is_refused_once_suppressions_were_recorded_under_one(
    state: StateUnderTest,
) -> None:
    shared_only(state)
    first = state.suppressions(KEY)
    await first.hash_key()
    await first.add("default", (digest(KEY, "default", PERSON),))
    for changed in (OTHER_KEY, None):  # another key, or the setting removed
        with pytest.raises(SuppressionKeyChanged) as refused:
            await state.suppressions(changed).hash_key()
        assert "server.suppression_key" in refused.value.message
        assert KEY.hex() not in refused.value.message
        assert OTHER_KEY.hex() not in refused.value.message
    assert await state.suppressions(KEY).any_of("default", (digest(KEY, "default", PERSON),))


async def test_the_generated_key_adopted_as_the_configured_one_keeps_every_suppression(
    state: StateUnderTest,
) -> None:
    shared_only(state)
    generated = state.suppressions()
    key = await generated.hash_key()
    await generated.add("default", (digest(key, "default", PERSON),))
    if state.backend == "sqlite":  # what an operator copies into the secret
        assert (state.state_dir / SUPPRESSION_KEY_FILE).read_text().strip() == key.hex()
    adopted = state.suppressions(key)
    assert await adopted.hash_key() == key
    assert await adopted.any_of("default", (digest(key, "default", PERSON),))
    with pytest.raises(SuppressionKeyChanged):
        await state.suppressions(OTHER_KEY).hash_key()


async def test_the_key_check_kept_in_the_state_is_not_the_key(state: StateUnderTest) -> None:
    shared_only(state)
    store = state.suppressions(KEY)
    await store.hash_key()
    dump = await state_dump(state)
    assert KEY.hex().encode() not in dump and KEY not in dump
    if state.backend == "sqlite":
        assert (state.state_dir / SUPPRESSIONS_FILE).exists()
