"""Issue 13, "Done means": three real ``prospect-sync serve`` replicas sharing one real
redis-server (``state = "redis"``), one Pardot account at fakepardot over HTTP
(tests/support/cluster.py). Each test spreads its calls over the replicas round robin
and checks what the account sees: never more than 5 requests in flight (the fake answers
err 66 beyond that), one prospect per person, one token grant, no call after err 122,
a dead replica's slots back within their lease, and a Redis outage that refuses calls
before any Pardot write and heals by itself. Nothing is timed: the fake's
``answers_held`` decides when calls are in flight, and every wait is bounded.

The cluster starts once for the module; each test gets a fresh fake, an empty Redis and
all three replicas running (``Cluster.fresh``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from fakepardot import DEMO
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from support.cluster import Cluster, running_cluster
from support.service import identify
from support.waiting import until

ACCOUNT = DEMO.account_v4
ORG = {"lookup_field": "org_id"}
#: Each call's deadline: generous (a dead replica's leases take up to 10 s to end), so
#: that a failure here is an answer, never a timeout.
CALL_TIMEOUT_S = 40.0
#: The slots' lease (clients/state/redis/slots.py LEASE_S is 10 s), with room to spare.
LEASE_BOUND_S = 30.0
#: The service probes a failed state every 2 s: this bounds the wait for SERVING.
RECOVERY_WITHIN_S = 30.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WRITES = ("/do/create", "/do/update", "/do/upsert", "/do/batch")


@dataclass
class Stubs:
    """A channel to each replica, opened in the test's own event loop."""

    channels: list[grpc.aio.Channel]

    def stub(self, n: int) -> pb_grpc.ProspectSyncStub:
        return pb_grpc.ProspectSyncStub(self.channels[n % len(self.channels)])

    def health(self, n: int) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channels[n % len(self.channels)])

    async def send(self, n: int, request: pb.IdentifyRequest) -> pb.IdentifyResponse | str:
        """Replica ``n``'s answer, or its failure as "CODE REASON"."""
        try:
            answer: pb.IdentifyResponse = await self.stub(n).Identify(
                request, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name} {reason(error)}"
        return answer

    async def spread(self, requests: list[pb.IdentifyRequest]) -> list[Any]:
        """Every request at once, request ``i`` to replica ``i % 3``."""
        return await asyncio.gather(*(self.send(i, r) for i, r in enumerate(requests)))

    async def status(self, n: int) -> int:
        answer = await self.health(n).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(answer.status)


def reason(error: grpc.aio.AioRpcError) -> str:
    info = detail(error, error_details_pb2.ErrorInfo)
    return info.reason if info is not None else "(no ErrorInfo)"


def detail(error: grpc.aio.AioRpcError, kind: type[Any]) -> Any:
    status = rpc_status.from_call(error)
    if status is None:
        return None
    message = kind()
    return message if any(d.Unpack(message) for d in status.details) else None


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(started: Cluster) -> Cluster:
    started.fresh()
    return started


@pytest.fixture
async def stubs(cluster: Cluster) -> AsyncIterator[Stubs]:
    channels = [grpc.aio.insecure_channel(target) for target in cluster.targets]
    yield Stubs(channels)
    for channel in channels:
        await channel.close()


def tag() -> str:
    return uuid.uuid4().hex[:10]


def lookup(name: str, *, message_id: str = "") -> pb.IdentifyRequest:
    """LookupFieldV4 on org_id: a first identify reads, misses and creates."""
    traits = {"email": f"{name}@example.com", "org_id": f"org-{name}"}
    return identify(traits, message_id=message_id, **ORG)


def err_66(cluster: Cluster) -> int:
    return sum(1 for call in list(cluster.fake.state.calls) if call.err_code == 66)


def writes(cluster: Cluster) -> list[str]:
    calls = list(cluster.fake.state.calls)
    return [
        c.path for c in calls if c.path.startswith("/api/") and any(w in c.path for w in WRITES)
    ]


def prospects_with(cluster: Cluster, field: str, value: str) -> int:
    return sum(1 for p in cluster.fake.state.prospects(ACCOUNT) if str(p.get(field)) == value)


def outcomes(answers: list[Any]) -> list[str]:
    return [a if isinstance(a, str) else "OK" for a in answers]


async def test_60_identifies_over_3_replicas_keep_5_in_flight_at_the_account(
    cluster: Cluster, stubs: Stubs
) -> None:
    cluster.fake.state.latency_s = 0.05  # so that the calls overlap at the fake
    run = tag()
    answers = await stubs.spread([lookup(f"{run}-{n}") for n in range(60)])
    assert outcomes(answers) == ["OK"] * 60
    assert err_66(cluster) == 0  # never more than 5 in flight
    assert len(cluster.fake.state.prospects(ACCOUNT)) == 60


async def test_a_20_way_first_identify_race_over_3_replicas_makes_one_prospect(
    cluster: Cluster, stubs: Stubs
) -> None:
    cluster.fake.state.latency_s = 0.05
    person = f"race-{tag()}"
    answers = await stubs.spread([lookup(person) for _ in range(20)])
    assert outcomes(answers) == ["OK"] * 20
    assert prospects_with(cluster, "org_id", f"org-{person}") == 1
    assert len({a.prospect_id for a in answers}) == 1


async def test_a_message_id_replayed_on_another_replica_answers_from_the_first(
    cluster: Cluster, stubs: Stubs
) -> None:
    request = lookup(f"replay-{tag()}", message_id=f"m-{tag()}")
    first = await stubs.send(0, request)
    assert isinstance(first, pb.IdentifyResponse), first
    calls = len(cluster.fake.state.calls)
    for replica in (1, 2):
        replayed = await stubs.send(replica, request)
        assert isinstance(replayed, pb.IdentifyResponse), replayed
        assert replayed.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
        assert replayed.prospect_id == first.prospect_id
    assert len(cluster.fake.state.calls) == calls  # 0 Pardot calls


async def test_a_token_expiry_under_load_makes_one_token_grant_across_replicas(
    cluster: Cluster, stubs: Stubs
) -> None:
    warm = await stubs.spread([lookup(f"warm-{tag()}") for _ in range(3)])
    assert outcomes(warm) == ["OK"] * 3
    grants = cluster.fake.state.token_grants
    # Grants that overlap in flight are refused as Salesforce does ("token request is
    # already being processed"): a second refresh would show up as a failed call too.
    cluster.fake.state.latency_s = 0.05
    cluster.fake.state.expire_tokens()
    run = tag()
    answers = await stubs.spread([lookup(f"{run}-{n}") for n in range(30)])
    assert outcomes(answers) == ["OK"] * 30
    assert cluster.fake.state.token_grants - grants == 1


async def test_err_122_on_one_replica_stops_every_replica_calling(
    cluster: Cluster, stubs: Stubs
) -> None:
    warm = await stubs.spread([lookup(f"warm-{tag()}") for _ in range(3)])
    assert outcomes(warm) == ["OK"] * 3
    cluster.fake.state.daily_limit = cluster.fake.state.daily_calls(ACCOUNT)  # spent
    refused = await stubs.send(0, lookup(f"spent-{tag()}"))
    assert refused == "RESOURCE_EXHAUSTED PARDOT_DAILY_LIMIT"
    # Pardot would answer again now: any call a replica still made would go through.
    cluster.fake.state.daily_limit = None
    calls = len(cluster.fake.state.calls)
    for replica in (0, 1, 2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.stub(replica).Identify(lookup(f"after-{tag()}"), timeout=CALL_TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(caught.value) == "PARDOT_DAILY_LIMIT"
        retry = detail(caught.value, error_details_pb2.RetryInfo)
        assert retry is not None and retry.retry_delay.ToNanoseconds() > 0
    assert len(cluster.fake.state.calls) == calls  # 0 further Pardot calls, from all


async def test_a_redis_outage_refuses_before_any_write_and_heals_without_duplicates(
    cluster: Cluster, stubs: Stubs
) -> None:
    run = tag()
    answered = lookup(f"{run}-before", message_id=f"{run}-before")
    first = await stubs.send(0, answered)
    assert isinstance(first, pb.IdentifyResponse), first
    # Concurrent calls first: each replica's pool then holds several connections, all of
    # which the outage kills (each must heal, not fail a call after the recovery).
    warm = await stubs.spread([lookup(f"{run}-warm-{n}") for n in range(15)])
    assert outcomes(warm) == ["OK"] * 15
    refused = [
        identify(
            {"email": f"{run}-{n}@example.com"}, create_when_unmatched=True, message_id=f"{run}-{n}"
        )
        for n in range(6)
    ]

    cluster.redis.stop()
    written, calls = writes(cluster), len(cluster.fake.state.calls)
    answers = await stubs.spread(refused)
    assert outcomes(answers) == ["UNAVAILABLE STATE_UNAVAILABLE"] * 6
    assert writes(cluster) == written  # refused before any Pardot write
    assert len(cluster.fake.state.calls) == calls  # nor any read
    for replica in range(3):
        assert await stubs.status(replica) == NOT_SERVING

    cluster.redis.start()  # the same port; AOF brings the records back
    for replica in range(3):
        await until_status(stubs, replica, SERVING)
    replayed = await stubs.spread(refused)
    assert outcomes(replayed) == ["OK"] * 6
    again = await stubs.send(2, answered)  # answered before the outage, on another replica
    assert isinstance(again, pb.IdentifyResponse), again
    assert again.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert again.prospect_id == first.prospect_id
    for n in range(6):
        assert prospects_with(cluster, "email", f"{run}-{n}@example.com") == 1
    assert prospects_with(cluster, "org_id", f"org-{run}-before") == 1


async def until_status(stubs: Stubs, replica: int, wanted: int) -> None:
    async with asyncio.timeout(RECOVERY_WITHIN_S):
        while await stubs.status(replica) != wanted:  # noqa: ASYNC110 - another process's
            await asyncio.sleep(0.1)


async def test_a_replica_killed_with_calls_in_flight_gives_its_slots_back(
    cluster: Cluster, stubs: Stubs
) -> None:
    warm = await stubs.send(0, lookup(f"warm-{tag()}"))  # the token, before answers are held
    assert isinstance(warm, pb.IdentifyResponse), warm
    cluster.fake.state.answers_held = True
    run = tag()
    doomed = [asyncio.ensure_future(stubs.send(0, lookup(f"{run}-dead-{n}"))) for n in range(5)]
    await until(lambda: cluster.fake.state.in_flight(ACCOUNT) == 5, within_s=20)
    # The other replicas' calls queue for the 5 slots the doomed replica holds.
    others = [asyncio.ensure_future(stubs.send(1 + n % 2, lookup(f"{run}-{n}"))) for n in range(6)]
    await asyncio.sleep(0.3)  # not a pass criterion: gives them time to reach the queue
    assert not any(call.done() for call in others)
    assert cluster.fake.state.in_flight(ACCOUNT) == 5

    cluster.replicas[0].kill()
    cluster.fake.state.answers_held = False  # its requests end at the fake; its leases live on
    await until(lambda: cluster.fake.state.in_flight(ACCOUNT) == 0, within_s=10)
    async with asyncio.timeout(LEASE_BOUND_S):
        answers = await asyncio.gather(*others)
    assert outcomes(answers) == ["OK"] * 6
    assert all(isinstance(a, str) for a in await asyncio.gather(*doomed))  # the dead one's
    assert err_66(cluster) == 0
    # The others go on.
    for replica in (1, 2):
        assert await stubs.status(replica) == SERVING
        after = await stubs.send(replica, lookup(f"{run}-after-{replica}"))
        assert isinstance(after, pb.IdentifyResponse), after
