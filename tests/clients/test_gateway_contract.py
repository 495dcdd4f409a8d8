"""One contract, two gateways: what every ``strategies.base.Gateway`` does, held against
the in-memory double the strategy tests use (``support.memory_gateway``) and the real
``PardotGateway`` over HTTP against fakepardot.

Only what a strategy can observe through the verbs is asserted: what a write returns,
what a later read finds, what is refused before anything is sent. So a strategy test
that passes against the double means the same against Pardot.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import pytest

from clients.connections import PardotConnection
from clients.wire import v5 as v5_wire
from fakepardot import DEMO, FakePardot
from strategies.core.errors import FailedPrecondition, PardotError
from support.memory_gateway import MemoryGateway

from .conftest import ClientFactory, gateway, oauth_config, v3_config

FID = "00Q000000000001AAA"
UNKNOWN_FID = "00Q000000000009ZZZ"
NOBODY_ID = 999_999


class Backend(Protocol):
    """A Pardot behind gateways: one store per API version, seeded directly."""

    def gateway(self, api_version: int, *, dry_run: bool = False) -> Any:
        """A fresh gateway (its ``calls`` empty) on the version's store."""
        ...

    def seed(self, api_version: int, **fields: str) -> int:
        """A prospect made outside the gateway (as in Pardot's UI); its id."""
        ...

    async def delete(self, api_version: int, prospect_id: int) -> None:
        """Into the recycle bin (v5 ``DELETE``)."""
        ...


class MemoryBackend:
    def __init__(self) -> None:
        self._stores: dict[int, dict[int, dict[str, Any]]] = {3: {}, 4: {}, 5: {}}
        self._ids = itertools.count(1000)
        # What a v5 store remembers beyond its prospects, shared by its gateways.
        self._deleted: set[int] = set()
        self._touched: dict[int, int] = {}
        self._clock = itertools.count(1)

    def gateway(self, api_version: int, *, dry_run: bool = False) -> MemoryGateway:
        return MemoryGateway(
            api_version=api_version,
            dry_run=dry_run,
            prospects=self._stores[api_version],
            _ids=self._ids,
            deleted=self._deleted,
            _touched=self._touched,
            _clock=self._clock,
        )

    def seed(self, api_version: int, **fields: str) -> int:
        return self.gateway(api_version).seed(**fields)

    async def delete(self, api_version: int, prospect_id: int) -> None:
        self.gateway(api_version).delete(prospect_id)


class FakePardotBackend:
    def __init__(self, fake: FakePardot, make_client: ClientFactory) -> None:
        self._fake = fake
        self._connections: dict[int, PardotConnection] = {
            3: make_client(v3_config(fake)),
            4: make_client(oauth_config(fake)),
            # v5 works with every kind of business unit: here the v4 one (several
            # prospects per email), whose prospects it shares.
            5: make_client(oauth_config(fake, "v5", api_version=5)),
        }

    def gateway(self, api_version: int, *, dry_run: bool = False) -> Any:
        return gateway(self._connections[api_version], dry_run=dry_run)

    def seed(self, api_version: int, **fields: str) -> int:
        account = DEMO.account_v4 if api_version == 5 else f"v{api_version}"
        return int(self._fake.state.add_prospect(account, **fields)["id"])

    async def delete(self, api_version: int, prospect_id: int) -> None:
        assert api_version == 5, "the recycle bin is reached through v5's DELETE"
        transport = self._connections[5].transport
        await transport.send(v5_wire.prospect_delete(prospect_id), deadline=None, calls=[])


@pytest.fixture(params=["memory", "fakepardot"])
def pardot(request: pytest.FixtureRequest, fake: FakePardot, make_client: ClientFactory) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    return FakePardotBackend(fake, make_client)


@pytest.mark.parametrize("api_version", [3, 4])
async def test_a_created_prospect_reads_back_by_email_and_by_id(
    pardot: Backend, api_version: int
) -> None:
    g = pardot.gateway(api_version)

    created = await g.create("ann@example.com", {"first_name": "Ann"})
    by_email = await g.read_by_email("ann@example.com")
    by_id = await g.read_by_id(created.id)

    assert created.created is True and not created.planned
    assert isinstance(created.id, int) and created.email == "ann@example.com"
    assert [p.id for p in by_email] == [created.id]
    assert by_id is not None and by_id.id == created.id
    assert (by_id.email, by_id.get("first_name")) == ("ann@example.com", "Ann")


async def test_v4_create_always_creates_and_v3_refuses_a_taken_email(pardot: Backend) -> None:
    v4 = pardot.gateway(4)
    first = await v4.create("twin@example.com", {})
    second = await v4.create("twin@example.com", {})
    assert first.created and second.created and first.id != second.id
    assert {p.id for p in await v4.read_by_email("twin@example.com")} == {first.id, second.id}

    v3 = pardot.gateway(3)
    await v3.create("once@example.com", {})
    with pytest.raises(PardotError) as caught:
        await v3.create("once@example.com", {})
    assert caught.value.err_code == 9
    assert len(await v3.read_by_email("once@example.com")) == 1


async def test_v3_upsert_by_email_creates_then_updates(pardot: Backend) -> None:
    g = pardot.gateway(3)

    first = await g.upsert_by_email("up@example.com", {"first_name": "A"})
    second = await g.upsert_by_email("up@example.com", {"first_name": "B"})
    [stored] = await g.read_by_email("up@example.com")

    assert first.created is True and second.created is False
    assert isinstance(first.id, int) and first.id == second.id == stored.id
    assert stored.get("first_name") == "B"


async def test_v4_updates_and_upserts_by_id_and_fid_change_the_one_prospect(
    pardot: Backend,
) -> None:
    seeded = pardot.seed(4, email="fid@example.com", crm_lead_fid=FID)
    g = pardot.gateway(4)

    written = [
        await g.update_by_id(seeded, {"company": "Initech"}),
        await g.update_by_fid(FID, {"job_title": "VP"}),
        await g.upsert_by_id(seeded, {"city": "Austin"}),
        await g.upsert_by_fid(FID, {"state": "TX"}),
    ]
    read = await g.read_by_fid(FID)

    assert [p.id for p in written] == [seeded] * 4
    assert [p.created for p in written] == [False] * 4
    assert read is not None and read.id == seeded
    assert [read.get(f) for f in ("company", "job_title", "city", "state")] == [
        "Initech",
        "VP",
        "Austin",
        "TX",
    ]
    assert [p.id for p in await g.read_by_email("fid@example.com")] == [seeded]


async def test_reads_of_nobody_are_empty(pardot: Backend) -> None:
    v3, v4 = pardot.gateway(3), pardot.gateway(4)
    assert await v3.read_by_email("nobody@example.com") == []
    assert await v4.read_by_email("nobody@example.com") == []
    assert await v3.read_by_id(NOBODY_ID) is None
    assert await v4.read_by_id(NOBODY_ID) is None
    assert await v4.read_by_fid(UNKNOWN_FID) is None


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("read_by_fid", (FID,)),
        ("update_by_fid", (FID, {"city": "X"})),
        ("upsert_by_fid", (FID, {"city": "X"})),
    ],
)
async def test_fids_need_v4_and_nothing_is_sent(
    pardot: Backend, verb: str, args: tuple[Any, ...]
) -> None:
    g = pardot.gateway(3)
    with pytest.raises(FailedPrecondition) as caught:
        await getattr(g, verb)(*args)
    assert caught.value.reason == "FID_NEEDS_V4"
    assert g.calls == []


async def test_upsert_by_email_is_refused_on_v4_and_nothing_is_sent(pardot: Backend) -> None:
    g = pardot.gateway(4)
    with pytest.raises(FailedPrecondition) as caught:
        await g.upsert_by_email("refused@example.com", {})
    assert caught.value.reason == "UPSERT_BY_EMAIL_NEEDS_V3"
    assert g.calls == []
    assert await pardot.gateway(4).read_by_email("refused@example.com") == []


async def test_a_dry_run_reads_and_plans_writes_but_changes_nothing(pardot: Backend) -> None:
    seeded = pardot.seed(4, email="dry@example.com", first_name="Before", crm_lead_fid=FID)
    dry_v4, dry_v3 = pardot.gateway(4, dry_run=True), pardot.gateway(3, dry_run=True)

    found = await dry_v4.read_by_email("dry@example.com")
    planned = [
        await dry_v4.create("new@example.com", {"first_name": "New"}),
        await dry_v4.update_by_id(seeded, {"first_name": "After"}),
        await dry_v4.upsert_by_id(seeded, {"first_name": "After"}),
        await dry_v4.update_by_fid(FID, {"first_name": "After"}),
        await dry_v4.upsert_by_fid(FID, {"first_name": "After"}),
        await dry_v3.upsert_by_email("new3@example.com", {"first_name": "New"}),
        await dry_v3.create("other3@example.com", {}),
    ]

    assert [p.id for p in found] == [seeded]
    assert all(p.planned for p in planned)
    live_v4, live_v3 = pardot.gateway(4), pardot.gateway(3)
    assert await live_v4.read_by_email("new@example.com") == []
    stored = await live_v4.read_by_id(seeded)
    assert stored is not None and stored.get("first_name") == "Before"
    assert await live_v3.read_by_email("new3@example.com") == []
    assert await live_v3.read_by_email("other3@example.com") == []


# --- API v5 --------------------------------------------------------------------------


async def test_v5_upsert_latest_by_email_creates_then_updates_in_one_call_each(
    pardot: Backend,
) -> None:
    g = pardot.gateway(5)

    first = await g.upsert_latest_by_email("kevin@example.com", {"first_name": "A"})
    second = await g.upsert_latest_by_email("kevin@example.com", {"first_name": "B"})
    [stored] = await g.read_by_email("kevin@example.com")

    assert first.created is True and second.created is False
    assert isinstance(first.id, int) and first.id == second.id == stored.id
    assert stored.get("first_name") == "B"
    assert len(g.calls) == 3  # two writes, one read: no batch, no second call per write


async def test_v5_upsert_latest_by_email_updates_the_latest_of_several(pardot: Backend) -> None:
    # Created long ago: the answer's created_at differs from its updated_at.
    older = pardot.seed(5, email="twins@example.com", created_at="2020-01-01 00:00:00")
    latest = pardot.seed(5, email="twins@example.com", created_at="2020-01-01 00:00:00")
    g = pardot.gateway(5)

    written = await g.upsert_latest_by_email("twins@example.com", {"city": "Austin"})
    first = await g.read_by_id(older)

    assert written.id == latest and written.created is False
    assert first is not None and first.get("city") in (None, "")


async def test_v5_upsert_latest_by_email_matches_the_email_exactly(pardot: Backend) -> None:
    seeded = pardot.seed(5, email="Case@Example.com")
    written = await pardot.gateway(5).upsert_latest_by_email("case@example.com", {})
    assert written.created is True and written.id != seeded


async def test_v5_recycle_bin_is_searched_only_when_asked(pardot: Backend) -> None:
    gone = pardot.seed(5, email="bin@example.com", created_at="2020-01-01 00:00:00")
    await pardot.delete(5, gone)
    g = pardot.gateway(5)

    assert await g.read_by_email("bin@example.com") == []
    fresh = await g.upsert_latest_by_email("bin@example.com", {}, undelete=False)
    assert fresh.created is True and fresh.id != gone

    other = pardot.seed(5, email="bin2@example.com", created_at="2020-01-01 00:00:00")
    await pardot.delete(5, other)
    back = await g.upsert_latest_by_email("bin2@example.com", {"first_name": "Back"})
    assert back.id == other and back.created is False
    assert [p.id for p in await g.read_by_email("bin2@example.com")] == [other]


async def test_v5_create_update_and_read_by_id_with_a_custom_field(pardot: Backend) -> None:
    g = pardot.gateway(5)

    created = await g.create("ann5@example.com", {"first_name": "Ann", "org_id": "o-5"})
    updated = await g.update_by_id(created.id, {"company": "Initech"})
    upserted = await g.upsert_by_id(created.id, {"city": "Austin"})
    read = await g.read_by_id(created.id, custom_fields=("org_id",))
    [by_email] = await g.read_by_email("ann5@example.com", custom_fields=("org_id",))

    assert created.created is True and isinstance(created.id, int)
    assert created.get("org_id") == "o-5"
    assert (updated.id, updated.created, upserted.id, upserted.created) == (
        created.id,
        False,
        created.id,
        False,
    )
    assert read is not None and by_email.id == read.id == created.id
    assert [read.get(f) for f in ("first_name", "company", "city", "org_id")] == [
        "Ann",
        "Initech",
        "Austin",
        "o-5",
    ]
    assert by_email.get("org_id") == "o-5"


async def test_v5_reads_of_nobody_are_empty_and_writes_to_nobody_are_109(
    pardot: Backend,
) -> None:
    g = pardot.gateway(5)
    assert await g.read_by_email("nobody5@example.com") == []
    assert await g.read_by_id(NOBODY_ID) is None
    with pytest.raises(PardotError) as caught:
        await g.update_by_id(NOBODY_ID, {"city": "X"})
    assert (caught.value.err_code, caught.value.reason) == (109, "PROSPECT_NOT_FOUND")


async def test_v5_a_patch_cannot_reach_the_recycle_bin(pardot: Backend) -> None:
    gone = pardot.seed(5, email="patch-bin@example.com")
    await pardot.delete(5, gone)
    with pytest.raises(PardotError) as caught:
        await pardot.gateway(5).update_by_id(gone, {"city": "X"})
    assert (caught.value.err_code, caught.value.reason) == (219, "PROSPECT_ARCHIVED")


@pytest.mark.parametrize(
    ("verb", "args", "reason"),
    [
        ("read_by_fid", (FID,), "FID_NEEDS_V4"),
        ("update_by_fid", (FID, {"city": "X"}), "FID_NEEDS_V4"),
        ("upsert_by_fid", (FID, {"city": "X"}), "FID_NEEDS_V4"),
        ("upsert_by_email", ("a@example.com", {}), "UPSERT_BY_EMAIL_NEEDS_V3"),
    ],
)
async def test_v5_refuses_v3_and_v4_keys_and_nothing_is_sent(
    pardot: Backend, verb: str, args: tuple[Any, ...], reason: str
) -> None:
    g = pardot.gateway(5)
    with pytest.raises(FailedPrecondition) as caught:
        await getattr(g, verb)(*args)
    assert caught.value.reason == reason
    assert g.calls == []


@pytest.mark.parametrize("api_version", [3, 4])
async def test_upsert_latest_by_email_is_v5s_and_nothing_is_sent(
    pardot: Backend, api_version: int
) -> None:
    g = pardot.gateway(api_version)
    with pytest.raises(FailedPrecondition) as caught:
        await g.upsert_latest_by_email("latest@example.com", {})
    assert caught.value.reason == "PARDOT_UNSUPPORTED_IN_VERSION"
    assert g.calls == []


async def test_v5_dry_run_reads_and_plans_writes_but_changes_nothing(pardot: Backend) -> None:
    seeded = pardot.seed(5, email="dry5@example.com", first_name="Before")
    dry = pardot.gateway(5, dry_run=True)

    found = await dry.read_by_email("dry5@example.com")
    planned = [
        await dry.upsert_latest_by_email("new5@example.com", {"first_name": "New"}),
        await dry.create("other5@example.com", {}),
        await dry.update_by_id(seeded, {"first_name": "After"}),
    ]

    assert [p.id for p in found] == [seeded]
    assert all(p.planned for p in planned)
    live = pardot.gateway(5)
    assert await live.read_by_email("new5@example.com") == []
    assert await live.read_by_email("other5@example.com") == []
    stored = await live.read_by_id(seeded)
    assert stored is not None and stored.get("first_name") == "Before"
