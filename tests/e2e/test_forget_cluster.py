"""Forget across replicas (issue 15, "Erasure"; docs/erasure.md): two real
``prospect-sync serve`` processes sharing one real redis-server (``state = "redis"``,
tests/support/cluster.py) and one Pardot account at fakepardot over HTTP. A person
forgotten through replica 0 is refused by replica 1, which had already hashed calls
under the shared key before the Forget, and nothing is re-created in Pardot.

Two replicas, started once for the module (``Cluster.fresh`` cleans between tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from fakepardot import DEMO
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from support.cluster import Cluster, running_cluster
from support.service import identify

from .test_forget import forget, reason_of

ACCOUNT = DEMO.account_v4
ORG = {"lookup_field": "org_id"}
EMAIL = "forget.me.everywhere@example.com"
CALL_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("forget-cluster"), count=2) as cluster:
        yield cluster


@pytest.fixture
async def replicas(started: Cluster) -> AsyncIterator[list[pb_grpc.ProspectSyncStub]]:
    started.fresh()
    channels = [grpc.aio.insecure_channel(target) for target in started.targets]
    yield [pb_grpc.ProspectSyncStub(channel) for channel in channels]
    for channel in channels:
        await channel.close()


def person(email: str = EMAIL) -> pb.IdentifyRequest:
    return identify({"email": email, "org_id": "org-everywhere"}, **ORG)


async def test_a_person_forgotten_through_one_replica_is_refused_by_the_other(
    started: Cluster, replicas: list[pb_grpc.ProspectSyncStub]
) -> None:
    fake = started.fake
    first, second = replicas
    created = await second.Identify(person(), timeout=CALL_TIMEOUT_S)  # replica 1's key now set
    assert created.prospect_id

    answer = await first.Forget(forget("default", email=EMAIL), timeout=CALL_TIMEOUT_S)
    assert [p.prospect_id for p in answer.prospects] == [created.prospect_id]
    assert answer.suppression_recorded and answer.identity_entries_dropped >= 1
    remaining = list(fake.state.prospects(ACCOUNT))

    fake.state.clear_calls()
    for variant in (EMAIL, EMAIL.upper()):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second.Identify(person(variant), timeout=CALL_TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(caught.value) == "PERSON_FORGOTTEN"
    assert [c.path for c in fake.state.calls if c.path.startswith("/api/")] == []
    assert list(fake.state.prospects(ACCOUNT)) == remaining  # nothing re-created
    live = [p for p in remaining if not fake.state.in_recycle_bin(ACCOUNT, p["id"])]
    assert [p for p in live if p.get("email") == EMAIL] == []
