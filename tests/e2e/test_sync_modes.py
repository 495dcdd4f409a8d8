"""``settings.sync_mode`` end to end: the real server over real sockets against
fakepardot over HTTP, every mode by every strategy, Identify and Track, each on both
sides (a prospect matches / none does). "Nothing was written" is read from the fake's
own store and its request log: no write the fake applied (a write Pardot refused, such
as v3's err 9 to a create of an existing email, wrote nothing), no new prospect, the
matched prospect as it was, no list membership.

Pardot facts (PARDOT_API.md): v3 create answers err 9 for an existing email; v4
upsert/fid with an email and an unknown fid creates (UNCONFIRMED: the fake's
``upsert_fid_creates`` switch; both sides are run here); v5 reads may trail writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify, struct

FID = "00Q1a000003DEnaEAG"
UNKNOWN_FID = "00Q1a000003DEnbEAG"
SIGNED_UP = {"Signed Up": pb.TrackMapping(fields={"plan": "plan"}, add_to_list_ids=[501])}
UPDATE_ONLY, CREATE_ONLY = pb.SYNC_MODE_UPDATE_ONLY, pb.SYNC_MODE_CREATE_ONLY


@dataclass(frozen=True)
class Case:
    """One strategy as a caller reaches it: the connection and settings that pick it,
    and how a request names the person (``who``: the email, its own id or fid)."""

    strategy: str
    connection: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    by: str = "email"  # email | lookup | user_id | pardot_id | pardot_fid

    @property
    def account(self) -> str:
        return DEMO.account_v3 if self.connection == "v3" else DEMO.account_v4


CASES = [
    Case("EmailV3", connection="v3"),
    Case("EmailV5", connection="v5"),
    Case("IdFidV4", by="pardot_id"),
    Case("IdFidV4", by="pardot_fid"),
    Case("LookupFieldV4", settings={"lookup_field": "org_id"}, by="lookup"),
    Case(
        "UserIdLookupV4",
        settings={"lookup_field": "org_id", "use_user_id_as_lookup_value": True},
        by="user_id",
    ),
    Case("CreateV4", settings={"create_when_unmatched": True}),
]
IDS = [f"{c.strategy}-{c.by}" for c in CASES]


@dataclass
class Person:
    """Whom a request names: ``email`` and lookup value ``key``; ``prospect`` is the
    prospect seeded for them (None: nobody matches)."""

    email: str
    key: str
    prospect: dict[str, Any] | None = None

    @property
    def pardot_id(self) -> str:
        return str(self.prospect["id"]) if self.prospect else "987654"


def seeded(fake: FakePardot, case: Case, email: str, key: str) -> Person:
    prospect = fake.state.add_prospect(case.account, email=email, org_id=key, crm_lead_fid=FID)
    return Person(email, key, prospect)


def naming(case: Case, person: Person) -> dict[str, Any]:
    """The request fields that name ``person`` for ``case``'s strategy."""
    fid = FID if person.prospect else UNKNOWN_FID
    return {
        "pardot_id": person.pardot_id if case.by == "pardot_id" else "",
        "pardot_fid": fid if case.by == "pardot_fid" else "",
        "user_id": person.key if case.by == "user_id" else "",
    }


def identify_request(case: Case, person: Person, mode: int, **settings: Any) -> pb.IdentifyRequest:
    traits: dict[str, Any] = {"email": person.email, "first_name": "Kevin"}
    if case.by == "lookup":
        traits["org_id"] = person.key
    named = naming(case, person)
    return identify(
        traits,
        connection=case.connection,
        pardot_id=named["pardot_id"],
        pardot_fid=named["pardot_fid"],
        user_id=named["user_id"],
        sync_mode=mode,
        **case.settings,
        **settings,
    )


def track_request(case: Case, person: Person, mode: int) -> pb.TrackRequest:
    traits: dict[str, Any] = {"email": person.email}
    if case.by == "lookup":
        traits["org_id"] = person.key
    named = naming(case, person)
    return pb.TrackRequest(
        event="Signed Up",
        user_id=named["user_id"],
        context=struct({"traits": traits}),
        properties=struct({"plan": "pro"}),
        pardot=pb.PardotOptions(id=named["pardot_id"], fid=named["pardot_fid"]),
        settings=pb.PardotSettings(
            connection=case.connection, sync_mode=mode, track_mappings=SIGNED_UP, **case.settings
        ),
    )


def applied_writes(fake: FakePardot) -> list[str]:
    """The prospect and list writes the fake applied: everything but reads, queries,
    token grants and the writes Pardot refused (they change nothing)."""
    return [
        f"{c.method} {c.path}"
        for c in fake.state.calls
        if c.path.startswith("/api/")
        and not (c.method == "GET" or "/do/read/" in c.path or "/do/query" in c.path)
        and c.err_code == 0
        and 200 <= c.http_status < 300
    ]


def with_email(fake: FakePardot, case: Case, email: str) -> list[dict[str, Any]]:
    return [p for p in fake.state.prospects(case.account) if p.get("email") == email]


def expected(case: Case, mode: int, match: bool) -> str:
    """What the mode makes of the call: UPDATE_ONLY never creates, CREATE_ONLY never
    touches an existing prospect."""
    if case.strategy == "CreateV4":  # it always creates: a twin is not a touch
        return "skipped" if mode == UPDATE_ONLY else "created"
    if case.by in ("pardot_id", "pardot_fid") and mode == CREATE_ONLY:
        return "skipped"  # a prospect named by id or fid is updated, never created
    if match:
        return "updated" if mode == UPDATE_ONLY else "skipped"
    if case.by == "pardot_id":
        return "not_found"  # an id names one prospect: absent is NOT_FOUND in every mode
    return "skipped" if mode == UPDATE_ONLY else "created"


OUTCOMES = {
    "updated": pb.OUTCOME_UPDATED,
    "created": pb.OUTCOME_CREATED,
    "skipped": pb.OUTCOME_SKIPPED,
}
MODE_NAMES = {UPDATE_ONLY: "SYNC_MODE_UPDATE_ONLY", CREATE_ONLY: "SYNC_MODE_CREATE_ONLY"}


async def call(service: Service, kind: str, case: Case, person: Person, mode: int) -> Any:
    if kind == "identify":
        return await service.stub.Identify(identify_request(case, person, mode), timeout=20)
    return await service.stub.Track(track_request(case, person, mode), timeout=20)


@pytest.mark.parametrize("kind", ["identify", "track"])
@pytest.mark.parametrize("mode", [UPDATE_ONLY, CREATE_ONLY], ids=["update_only", "create_only"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_every_mode_and_strategy_on_both_sides(
    service: Service, fake: FakePardot, case: Case, mode: int, kind: str
) -> None:
    for match in (True, False):
        email = f"{'match' if match else 'nobody'}-{kind}@example.com"
        key = "match" if match else "nobody"
        person = seeded(fake, case, email, key) if match else Person(email, key)
        before = fake.state.prospects(case.account)
        members = fake.state.list_members(case.account, 501)
        fake.state.clear_calls()
        want = expected(case, mode, match)

        if want == "not_found":
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(service, kind, case, person, mode)
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
            assert applied_writes(fake) == [] and fake.state.prospects(case.account) == before
            continue

        response = await call(service, kind, case, person, mode)
        assert (response.strategy, response.outcome) == (case.strategy, OUTCOMES[want]), (
            match,
            list(response.warnings),
        )
        if want == "skipped":
            assert response.prospect_id == "" and list(response.actions) == []
            assert any(MODE_NAMES[mode] in w for w in response.warnings), response.warnings
            assert applied_writes(fake) == []
            assert fake.state.prospects(case.account) == before
            assert fake.state.list_members(case.account, 501) == members
            continue
        [prospect_id] = {response.prospect_id}
        stored = fake.state.get_prospect(case.account, int(prospect_id))
        assert stored is not None
        if want == "updated":
            assert person.prospect is not None and int(prospect_id) == person.prospect["id"]
            assert len(fake.state.prospects(case.account)) == len(before)
        else:
            assert len(fake.state.prospects(case.account)) == len(before) + 1
        if kind == "identify":
            assert stored["first_name"] == "Kevin"
        else:
            assert stored.get("plan") == "pro"
            assert int(prospect_id) in fake.state.list_members(case.account, 501)


@pytest.mark.parametrize("creates", [True, False], ids=["fid_upsert_creates", "fid_upsert_77"])
async def test_update_only_by_an_unknown_fid_creates_nothing_either_way_pardot_behaves(
    service: Service, fake: FakePardot, creates: bool
) -> None:
    """v4 upsert/fid with an email and an fid nobody has creates, say Pardot's docs
    (UNCONFIRMED in traffic): UPDATE_ONLY must create nothing on either side."""
    fake.state.set_switches(upsert_fid_creates=creates)
    response = await service.stub.Identify(
        identify({"email": "new@example.com"}, pardot_fid=FID, sync_mode=UPDATE_ONLY)
    )
    assert response.outcome == pb.OUTCOME_SKIPPED and response.prospect_id == ""
    assert applied_writes(fake) == [] and fake.state.prospects(DEMO.account_v4) == []


async def test_create_only_email_v5_with_a_campaign_sets_it_on_the_new_prospect(
    service: Service, fake: FakePardot
) -> None:
    response = await service.stub.Identify(
        identify(
            {"email": "new@example.com"}, connection="v5", campaign_id="1002", sync_mode=CREATE_ONLY
        )
    )
    assert (response.strategy, response.outcome) == ("EmailV5", pb.OUTCOME_CREATED)
    stored = fake.state.get_prospect(DEMO.account_v4, int(response.prospect_id))
    assert stored is not None and stored["campaign_id"] == 1002
    assert [c.split(" ")[0] for c in applied_writes(fake)] == ["POST", "PATCH"]


async def test_a_dry_run_skips_what_the_mode_forbids_instead_of_planning_it(
    service: Service, fake: FakePardot
) -> None:
    existing = fake.state.add_prospect(DEMO.account_v3, email="ann@example.com")
    skipped = await service.stub.Identify(
        identify({"email": "ann@example.com"}, connection="v3", dry_run=True, sync_mode=CREATE_ONLY)
    )
    nobody = await service.stub.Identify(
        identify({"email": "bob@example.com"}, connection="v3", dry_run=True, sync_mode=UPDATE_ONLY)
    )
    planned = await service.stub.Identify(
        identify({"email": "ann@example.com"}, connection="v3", dry_run=True, sync_mode=UPDATE_ONLY)
    )
    assert skipped.outcome == nobody.outcome == pb.OUTCOME_SKIPPED
    assert (planned.outcome, planned.prospect_id) == (pb.OUTCOME_PLANNED, str(existing["id"]))
    assert applied_writes(fake) == [] and fake.state.prospects(DEMO.account_v3) == [existing]


async def test_a_batch_applies_each_items_own_mode(service: Service, fake: FakePardot) -> None:
    org = {"lookup_field": "org_id"}
    known = fake.state.add_prospect(DEMO.account_v4, email="ann@example.com", org_id="o-ann")

    def item(email: str, key: str, mode: int) -> pb.BatchSyncItem:
        traits = {"email": email, "org_id": key, "first_name": "Batch"}
        return pb.BatchSyncItem(identify=identify(traits, sync_mode=mode, **org))

    tracked = pb.TrackRequest(
        event="Signed Up",
        context=struct({"traits": {"email": "cid@example.com", "org_id": "o-cid"}}),
        properties=struct({"plan": "pro"}),
        settings=pb.PardotSettings(sync_mode=UPDATE_ONLY, track_mappings=SIGNED_UP, **org),
    )
    reply = await service.stub.BatchSync(
        pb.BatchSyncRequest(
            items=[
                item("ann@example.com", "o-ann", UPDATE_ONLY),  # matches: updated
                item("bob@example.com", "o-bob", UPDATE_ONLY),  # nobody: skipped
                item("ann@example.com", "o-ann", CREATE_ONLY),  # matches: skipped
                item("dan@example.com", "o-dan", CREATE_ONLY),  # nobody: created
                item("eve@example.com", "o-eve", pb.SYNC_MODE_UPSERT),  # created
                pb.BatchSyncItem(track=tracked),  # nobody, update-only: skipped, no action
            ]
        ),
        timeout=30,
    )
    results = [getattr(r, r.WhichOneof("result")) for r in reply.results]
    assert [r.outcome for r in results] == [
        pb.OUTCOME_UPDATED,
        pb.OUTCOME_SKIPPED,
        pb.OUTCOME_SKIPPED,
        pb.OUTCOME_CREATED,
        pb.OUTCOME_CREATED,
        pb.OUTCOME_SKIPPED,
    ]
    assert results[0].prospect_id == str(known["id"]) and list(results[5].actions) == []
    stored = {p["email"]: p for p in fake.state.prospects(DEMO.account_v4)}
    assert sorted(stored) == ["ann@example.com", "dan@example.com", "eve@example.com"]
    assert stored["ann@example.com"]["first_name"] == "Batch"
    assert fake.state.list_members(DEMO.account_v4, 501) == []


async def test_an_unknown_sync_mode_is_invalid_argument_naming_the_setting(
    service: Service, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify({"email": "ann@example.com"}, sync_mode=99))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in status.details)
    assert [v.field for v in bad.field_violations] == ["settings.sync_mode"]
    assert [c for c in fake.state.calls if c.path.startswith("/api/")] == []
