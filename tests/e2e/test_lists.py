"""Issue 15 end to end: list membership both ways and opt-out safety, through the live
server and fakepardot over HTTP. A v3/v4 removal rides on the prospect write as
``list_<id>=0`` (no call of its own); v5 queries the membership and DELETEs it; an
identify carries lists too; removing a non-member is success; a false
``is_do_not_email`` and a re-add of an opted-out membership are refused (and reported
under ``suppressed``) unless the connection sets ``allow_resubscribe``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, close_service, config_for, identify, open_service, struct

ANN = "ann@example.com"
APPLIED, ALREADY = "TRACK_ACTION_STATUS_APPLIED", "TRACK_ACTION_STATUS_ALREADY_APPLIED"
SUPPRESSED = "TRACK_ACTION_STATUS_SUPPRESSED"
ADD, REMOVE = "TRACK_ACTION_KIND_ADD_TO_LIST", "TRACK_ACTION_KIND_REMOVE_FROM_LIST"
#: The connection and Pardot account of each API version (tests/support/service.py).
CONNECTION = {3: "v3", 4: "", 5: "v5"}
ACCOUNT = {3: "v3", 4: "v4", 5: "v4"}


@pytest.fixture
async def resubscribing(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    """A service whose connections set ``allow_resubscribe = true``."""
    allow = {"allow_resubscribe": True}
    config = config_for(fake, tmp_path / "state", default=allow, v3=allow, v5=allow)
    opened = await open_service(config)
    yield opened
    await close_service(opened)


def actions(response: Any) -> list[tuple[str, str, int]]:
    return [
        (pb.TrackActionKind.Name(a.kind), pb.TrackActionStatus.Name(a.status), a.list_id)
        for a in response.actions
    ]


def seed(
    fake: FakePardot,
    version: int,
    *,
    member_of: tuple[int, ...] = (),
    opted_out: bool = False,
    **values: Any,
) -> int:
    account = ACCOUNT[version]
    prospect_id = int(fake.state.add_prospect(account, email=ANN, **values)["id"])
    for list_id in member_of:
        fake.state.add_list_member(account, list_id, prospect_id, opted_out=opted_out)
    return prospect_id


def ann(
    version: int, prospect_id: int, traits: dict[str, Any] | None = None, **settings: Any
) -> pb.IdentifyRequest:
    """An identify of the seeded prospect on ``version``: by email on v3/v5, by id on v4
    (v4 cannot match on email alone)."""
    return identify(
        {"email": ANN, **(traits or {})},
        connection=CONNECTION[version],
        pardot_id=str(prospect_id) if version == 4 else "",
        **settings,
    )


def writes(fake: FakePardot) -> list[Any]:
    return [
        c
        for c in fake.state.calls
        if c.path.startswith("/api/prospect/") and "/do/read" not in c.path
    ]


# --- removal --------------------------------------------------------------------------


async def test_a_v4_track_removal_rides_on_the_one_prospect_write(
    service: Service, fake: FakePardot
) -> None:
    prospect_id = seed(fake, 4, member_of=(501,))
    mapping = pb.TrackMapping(fields={"plan": "plan"}, remove_from_list_ids=[501])
    request = pb.TrackRequest(
        event="Cancelled",
        context=struct({"traits": {"email": ANN}}),
        properties=struct({"plan": "free"}),
        pardot=pb.PardotOptions(id=str(prospect_id)),
        settings=pb.PardotSettings(track_mappings={"Cancelled": mapping}),
    )
    fake.state.clear_calls()
    response = await service.stub.Track(request, timeout=10)
    assert fake.state.list_members("v4", 501) == []
    [write] = writes(fake)
    assert write.form.get("list_501") == "0" and write.form.get("plan") == "free"
    assert not [c for c in fake.state.calls if "listMembership" in c.path], "no call of its own"
    assert (REMOVE, APPLIED, 501) in actions(response)


async def test_a_v5_track_removal_queries_the_membership_then_deletes_it(
    service: Service, fake: FakePardot
) -> None:
    prospect_id = seed(fake, 5, member_of=(501,))
    request = pb.TrackRequest(
        event="Cancelled",
        context=struct({"traits": {"email": ANN}}),
        settings=pb.PardotSettings(
            connection="v5",
            track_mappings={"Cancelled": pb.TrackMapping(remove_from_list_ids=[501])},
        ),
    )
    response = await service.stub.Track(request, timeout=10)
    assert fake.state.list_members("v4", 501) == []
    memberships = [
        (c.method, c.path) for c in response.pardot_calls if "list-memberships" in c.path
    ]
    assert memberships == [
        ("GET", "/api/v5/objects/list-memberships"),
        ("DELETE", f"/api/v5/objects/list-memberships/{501 * 1_000_000 + prospect_id}"),
    ]
    assert actions(response) == [(REMOVE, APPLIED, 501)]


@pytest.mark.parametrize("version", [3, 4, 5])
async def test_an_identify_adds_and_removes_lists(
    service: Service, fake: FakePardot, version: int
) -> None:
    prospect_id = seed(fake, version, member_of=(502,))
    request = ann(
        version, prospect_id, {"first_name": "Ann"}, list_ids_add=[501], list_ids_remove=[502]
    )
    response = await service.stub.Identify(request, timeout=10)
    account = ACCOUNT[version]
    assert fake.state.list_members(account, 501) == [prospect_id]
    assert fake.state.list_members(account, 502) == []
    assert actions(response) == [(REMOVE, APPLIED, 502), (ADD, APPLIED, 501)]
    assert fake.state.get_prospect(account, prospect_id)["first_name"] == "Ann"  # type: ignore[index]


@pytest.mark.parametrize(("version", "status"), [(3, APPLIED), (4, APPLIED), (5, ALREADY)])
async def test_removing_a_non_member_is_success(
    service: Service, fake: FakePardot, version: int, status: str
) -> None:
    prospect_id = seed(fake, version)
    response = await service.stub.Identify(
        ann(version, prospect_id, list_ids_remove=[502]), timeout=10
    )
    assert response.prospect_id == str(prospect_id)
    assert actions(response) == [(REMOVE, status, 502)]


async def test_bad_list_ids_are_invalid_argument_naming_the_field(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(
            identify({"email": ANN}, connection="v3", list_ids_remove=[501, 999]), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "settings.list_ids_remove[1]" in (caught.value.details() or "")
    assert writes(fake) == [], "nothing written"


# --- opt-out safety ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 5])
async def test_a_false_do_not_email_is_left_out_and_reported(
    service: Service, fake: FakePardot, version: int
) -> None:
    prospect_id = seed(fake, version, is_do_not_email=True)
    fake.state.clear_calls()
    response = await service.stub.Identify(
        ann(version, prospect_id, {"is_do_not_email": False, "first_name": "Ann"}), timeout=10
    )
    stored = fake.state.get_prospect(ACCOUNT[version], prospect_id)
    assert stored is not None and stored["is_do_not_email"] == 1 and stored["first_name"] == "Ann"
    assert [(s.field, s.list_id) for s in response.suppressed] == [("is_do_not_email", 0)]
    assert "allow_resubscribe" in response.suppressed[0].reason
    if version == 3:
        [write] = writes(fake)
        assert "is_do_not_email" not in write.form and write.form.get("first_name") == "Ann"


async def test_with_allow_resubscribe_a_false_do_not_email_is_written(
    resubscribing: Service, fake: FakePardot
) -> None:
    prospect_id = seed(fake, 3, is_do_not_email=True)
    response = await resubscribing.stub.Identify(
        ann(3, prospect_id, {"is_do_not_email": False}), timeout=10
    )
    stored = fake.state.get_prospect("v3", prospect_id)
    assert stored is not None and stored["is_do_not_email"] is None
    assert list(response.suppressed) == []


async def test_a_track_property_mapped_to_do_not_email_false_is_suppressed(
    service: Service, fake: FakePardot
) -> None:
    prospect_id = seed(fake, 4, is_do_not_email=True)
    request = pb.TrackRequest(
        event="Resubscribed",
        context=struct({"traits": {"email": ANN}}),
        properties=struct({"dne": False}),
        pardot=pb.PardotOptions(id=str(prospect_id)),
        settings=pb.PardotSettings(
            track_mappings={"Resubscribed": pb.TrackMapping(fields={"dne": "is_do_not_email"})}
        ),
    )
    response = await service.stub.Track(request, timeout=10)
    assert fake.state.get_prospect("v4", prospect_id)["is_do_not_email"] == 1  # type: ignore[index]
    assert [s.field for s in response.suppressed] == ["is_do_not_email"]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("list_field_resubscribes", [False, True])
async def test_re_adding_an_opted_out_membership_is_suppressed(
    service: Service, fake: FakePardot, version: int, list_field_resubscribes: bool
) -> None:
    """Whatever ``list_<id>=1`` would do to an opted-out membership (UNCONFIRMED: the
    fake's switch), the service never sends it, so the answer is the same."""
    fake.state.set_switches(list_field_resubscribes=list_field_resubscribes)
    prospect_id = seed(fake, version, member_of=(501,), opted_out=True)
    response = await service.stub.Identify(
        ann(version, prospect_id, list_ids_add=[501]), timeout=10
    )
    assert actions(response) == [(ADD, SUPPRESSED, 501)]
    assert [(s.field, s.list_id) for s in response.suppressed] == [("", 501)]
    membership = fake.state._account(ACCOUNT[version]).lists[501][prospect_id]
    assert membership["opted_out"] is True
    assert not any(c.form.get("list_501") for c in fake.state.calls)


@pytest.mark.parametrize("version", [4, 5])
async def test_with_allow_resubscribe_an_opted_out_membership_is_resubscribed(
    resubscribing: Service, fake: FakePardot, version: int
) -> None:
    prospect_id = seed(fake, version, member_of=(501,), opted_out=True)
    response = await resubscribing.stub.Identify(
        ann(version, prospect_id, list_ids_add=[501]), timeout=10
    )
    assert actions(response) == [(ADD, APPLIED, 501)]
    assert list(response.suppressed) == []
    assert fake.state._account(ACCOUNT[version]).lists[501][prospect_id]["opted_out"] is False


async def test_an_existing_membership_costs_one_read_only_on_err_58(
    service: Service, fake: FakePardot
) -> None:
    prospect_id = seed(fake, 4, member_of=(501,))
    response = await service.stub.Identify(ann(4, prospect_id, list_ids_add=[501]), timeout=10)
    assert actions(response) == [(ADD, ALREADY, 501)]
    membership_calls = [
        c.path.split("/do/")[1].split("/")[0]
        for c in response.pardot_calls
        if "listMembership" in c.path
    ]
    assert membership_calls == ["create", "read"]
