"""Issue 15, "Email case", end to end: the real server over real sockets against
fakepardot. Case variants of one email resolve to one prospect, stored under one email,
on every strategy that matches by email or writes one; with ``normalize_email`` off,
Pardot's own behaviour shows (v5 matches case-sensitively: two prospects; a v4 create
always creates)."""

from __future__ import annotations

from typing import Any

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify, struct

ORG = {"lookup_field": "org_id"}


def prospects(fake: FakePardot, account: str = DEMO.account_v4) -> list[dict[str, Any]]:
    return list(fake.state.prospects(account))


def emails(fake: FakePardot, account: str = DEMO.account_v4) -> list[str]:
    return sorted(p["email"] for p in prospects(fake, account))


async def test_email_v3_case_variants_are_one_prospect_under_one_email(
    service: Service, fake: FakePardot
) -> None:
    for email in ("Ann@Example.COM", "Ann@example.com"):
        response = await service.stub.Identify(identify({"email": email}, connection="v3"))
        assert response.strategy == "EmailV3"
        assert emails(fake, DEMO.account_v3) == ["Ann@example.com"]
    paths = [c.path for c in fake.state.calls if "/api/prospect/" in c.path]
    assert paths and all("Example.COM" not in p for p in paths)  # the v3 path too


async def test_email_v5_case_variants_are_one_prospect(service: Service, fake: FakePardot) -> None:
    first = await service.stub.Identify(identify({"email": "Ann@Example.COM"}, connection="v5"))
    second = await service.stub.Identify(identify({"email": "Ann@example.com"}, connection="v5"))
    assert first.strategy == second.strategy == "EmailV5"
    assert first.prospect_id == second.prospect_id
    assert emails(fake) == ["Ann@example.com"]


async def test_email_v5_with_normalize_email_off_is_pardots_own_two_prospects(
    service: Service, fake: FakePardot
) -> None:
    for email in ("Ann@Example.COM", "Ann@example.com"):
        await service.stub.Identify(
            identify({"email": email}, connection="v5", normalize_email=False)
        )
    assert emails(fake) == ["Ann@Example.COM", "Ann@example.com"]


async def test_the_local_part_setting_folds_the_whole_address_on_v5(
    service: Service, fake: FakePardot
) -> None:
    for email in ("ANN@example.com", "ann@example.com"):
        await service.stub.Identify(
            identify({"email": email}, connection="v5", normalize_email_local_part=True)
        )
    assert emails(fake) == ["ann@example.com"]


async def test_without_the_local_part_setting_a_local_part_case_is_two_people_on_v5(
    service: Service, fake: FakePardot
) -> None:
    for email in ("ANN@example.com", "ann@example.com"):
        await service.stub.Identify(identify({"email": email}, connection="v5"))
    assert emails(fake) == ["ANN@example.com", "ann@example.com"]


async def test_lookup_field_v4_case_variants_are_one_prospect_under_one_email(
    service: Service, fake: FakePardot
) -> None:
    ids = set()
    for email in ("Ann@Example.COM", "Ann@example.com"):
        response = await service.stub.Identify(identify({"email": email, "org_id": "O-1"}, **ORG))
        assert response.strategy == "LookupFieldV4"
        ids.add(response.prospect_id)
        assert emails(fake) == ["Ann@example.com"]
    assert len(ids) == 1


async def test_lookup_field_v4_finds_a_case_variant_by_its_email_when_the_map_is_cold(
    service: Service, fake: FakePardot
) -> None:
    """The prospect was made elsewhere with the normalized email: a first call that
    sends a case variant reads by the one email and updates that prospect."""
    seeded = fake.state.add_prospect(DEMO.account_v4, email="Ann@example.com", org_id="O-1")
    response = await service.stub.Identify(
        identify({"email": "Ann@EXAMPLE.com", "org_id": "O-1"}, **ORG)
    )
    assert response.prospect_id == str(seeded["id"])
    assert emails(fake) == ["Ann@example.com"]


async def test_create_v4_with_its_identity_memory_makes_case_variants_one_prospect(
    service: Service, fake: FakePardot
) -> None:
    """CreateV4 creates whenever it must write: the identity map and the memory of what
    was written (``skip_unchanged``) are what stop a repeat. Both are keyed by the
    normalized email, so a case variant is the repeat it is: one prospect."""
    ids = set()
    for email in ("Ann@Example.COM", "Ann@example.com"):
        response = await service.stub.Identify(
            identify({"email": email}, create_when_unmatched=True)
        )
        assert response.strategy == "CreateV4"
        ids.add(response.prospect_id)
    assert len(ids) == 1
    assert emails(fake) == ["Ann@example.com"]


async def test_create_v4_with_normalize_email_off_creates_as_sent(
    service: Service, fake: FakePardot
) -> None:
    for email in ("Ann@Example.COM", "Ann@example.com"):
        await service.stub.Identify(
            identify({"email": email}, create_when_unmatched=True, normalize_email=False)
        )
    assert emails(fake) == ["Ann@Example.COM", "Ann@example.com"]


async def test_id_fid_v4_writes_the_normalized_email(service: Service, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect(
        DEMO.account_v4, email="old@example.com", created_at="2020-01-21 18:21:46"
    )
    for email in ("Ann@Example.COM", "Ann@example.com"):
        response = await service.stub.Identify(
            identify({"email": email}, pardot_id=str(seeded["id"]))
        )
        assert response.strategy == "IdFidV4"
        assert response.prospect_id == str(seeded["id"])
        assert emails(fake) == ["Ann@example.com"]


async def test_a_track_call_resolves_case_variants_to_the_identified_prospect(
    service: Service, fake: FakePardot
) -> None:
    identified = await service.stub.Identify(
        identify({"email": "Ann@example.com"}, connection="v5")
    )
    tracked = await service.stub.Track(
        pb.TrackRequest(
            event="Signed Up",
            context=struct({"traits": {"email": "Ann@EXAMPLE.COM"}}),
            properties=struct({"plan": "pro"}),
            settings=pb.PardotSettings(
                connection="v5",
                track_mappings={"Signed Up": pb.TrackMapping(fields={"plan": "plan"})},
            ),
        )
    )
    assert tracked.prospect_id == identified.prospect_id
    assert emails(fake) == ["Ann@example.com"]
    assert prospects(fake)[0]["plan"] == "pro"


async def test_batch_sync_items_are_normalized_as_their_unary_calls(
    service: Service, fake: FakePardot
) -> None:
    items = [
        pb.BatchSyncItem(identify=identify({"email": email}, connection="v5"))
        for email in ("Ann@Example.COM", "Ann@EXAMPLE.com")
    ]
    response = await service.stub.BatchSync(pb.BatchSyncRequest(items=items))
    assert all(result.WhichOneof("result") == "identify" for result in response.results)
    assert emails(fake) == ["Ann@example.com"]
