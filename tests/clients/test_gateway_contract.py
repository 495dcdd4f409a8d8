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
from fakepardot import FakePardot
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


class MemoryBackend:
    def __init__(self) -> None:
        self._stores: dict[int, dict[int, dict[str, Any]]] = {3: {}, 4: {}}
        self._ids = itertools.count(1000)

    def gateway(self, api_version: int, *, dry_run: bool = False) -> MemoryGateway:
        return MemoryGateway(
            api_version=api_version,
            dry_run=dry_run,
            prospects=self._stores[api_version],
            _ids=self._ids,
        )

    def seed(self, api_version: int, **fields: str) -> int:
        return self.gateway(api_version).seed(**fields)


class FakePardotBackend:
    def __init__(self, fake: FakePardot, make_client: ClientFactory) -> None:
        self._fake = fake
        self._connections: dict[int, PardotConnection] = {
            3: make_client(v3_config(fake)),
            4: make_client(oauth_config(fake)),
        }

    def gateway(self, api_version: int, *, dry_run: bool = False) -> Any:
        return gateway(self._connections[api_version], dry_run=dry_run)

    def seed(self, api_version: int, **fields: str) -> int:
        return int(self._fake.state.add_prospect(f"v{api_version}", **fields)["id"])


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
