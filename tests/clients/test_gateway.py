"""PardotGateway against fakepardot: each question becomes the right prospect operation,
answers become Prospects, "not found" is empty, and a dry run sends no write."""

from __future__ import annotations

import pytest

from fakepardot import FakePardot
from strategies.core.errors import FailedPrecondition, PardotError
from strategies.track import ListChange

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config

LONG_AGO = {"created_at": "2020-01-01 00:00:00", "updated_at": "2020-01-01 00:00:00"}
LEAD_FID = "00Q000000000001AAA"


async def test_v3_upsert_by_email_reports_create_then_update(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(v3_config(fake)))
    existing = fake.state.add_prospect("v3", email="old@example.com", **LONG_AGO)

    created = await pardot.upsert_by_email("new@example.com", {"first_name": "New"})
    updated = await pardot.upsert_by_email("old@example.com", {"first_name": "Old"})

    assert created.created and isinstance(created.id, int)
    assert created.email == "new@example.com" and created.get("first_name") == "New"
    assert not updated.created and updated.id == existing["id"]
    assert fake.state.get_prospect("v3", existing["id"])["first_name"] == "Old"
    assert len(fake.state.prospects("v3")) == 2


async def test_an_upsert_right_after_the_create_is_an_update(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Same second, so the timestamps cannot tell; the id seen at creation does."""
    client = make_client(v3_config(fake))
    first = await gateway(client).upsert_by_email("twice@example.com", {"first_name": "A"})
    second = await gateway(client).upsert_by_email("twice@example.com", {"first_name": "B"})
    assert first.created and not second.created
    assert first.id == second.id
    stored = fake.state.get_prospect("v3", first.id)
    assert stored["created_at"] == stored["updated_at"]  # what made the timestamps useless


async def test_v4_upsert_by_email_is_refused_before_any_call(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    with pytest.raises(FailedPrecondition):
        await pardot.upsert_by_email("a@example.com", {})
    assert pardot.calls == [] and fake.state.calls == []


async def test_v4_create_always_creates(fake: FakePardot, make_client: ClientFactory) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    first = await pardot.create("twin@example.com", {"first_name": "One"})
    second = await pardot.create("twin@example.com", {"first_name": "Two"})
    assert first.created and second.created and first.id != second.id


async def test_v3_create_of_an_existing_email_is_err_9(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    fake.state.add_prospect("v3", email="taken@example.com")
    with pytest.raises(PardotError) as caught:
        await gateway(make_client(v3_config(fake))).create("taken@example.com", {})
    assert caught.value.err_code == 9


async def test_v4_read_by_email_returns_every_prospect(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    one = fake.state.add_prospect("v4", email="shared@example.com", org_id="o-1")
    two = fake.state.add_prospect("v4", email="shared@example.com", org_id="o-2")
    single = fake.state.add_prospect("v4", email="single@example.com")
    pardot = gateway(make_client(oauth_config(fake)))

    several = await pardot.read_by_email("shared@example.com")
    alone = await pardot.read_by_email("single@example.com")

    assert sorted(p.id for p in several) == sorted([one["id"], two["id"]])
    assert {p.get("org_id") for p in several} == {"o-1", "o-2"}
    assert [p.id for p in alone] == [single["id"]]


async def test_reads_that_find_nothing_are_empty(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    assert await pardot.read_by_email("nobody@example.com") == []
    assert await pardot.read_by_id(987654321) is None
    assert await pardot.read_by_fid("00Q000000000099AAA") is None


async def test_update_and_upsert_by_id_and_fid(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    seeded = fake.state.add_prospect(
        "v4", email="fid@example.com", crm_lead_fid=LEAD_FID, **LONG_AGO
    )
    pardot = gateway(make_client(oauth_config(fake)))

    by_id = await pardot.update_by_id(seeded["id"], {"company": "Initech"})
    by_fid = await pardot.update_by_fid(LEAD_FID, {"job_title": "VP"})
    upserted = await pardot.upsert_by_id(seeded["id"], {"city": "Austin"})
    read = await pardot.read_by_fid(LEAD_FID)

    assert by_id.id == by_fid.id == upserted.id == seeded["id"]
    assert not (by_id.created or by_fid.created or upserted.created)
    assert read is not None
    assert (read.get("company"), read.get("job_title"), read.get("city")) == (
        "Initech",
        "VP",
        "Austin",
    )


async def test_fid_operations_need_v4(fake: FakePardot, make_client: ClientFactory) -> None:
    pardot = gateway(make_client(v3_config(fake)))
    with pytest.raises(FailedPrecondition):
        await pardot.read_by_fid(LEAD_FID)
    assert pardot.calls == []


async def test_dry_run_reads_but_sends_no_write(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    seeded = fake.state.add_prospect("v3", email="dry@example.com", first_name="Before")
    pardot = gateway(make_client(v3_config(fake)), dry_run=True)

    found = await pardot.read_by_email("dry@example.com")
    upsert = await pardot.upsert_by_email("dry@example.com", {"first_name": "After"})
    update = await pardot.update_by_id(seeded["id"], {"first_name": "After"})
    create = await pardot.create("fresh@example.com", {"first_name": "New"})

    assert [p.id for p in found] == [seeded["id"]]
    assert (upsert.planned, upsert.id, upsert.email) == (True, None, "dry@example.com")
    assert (update.planned, update.id) == (True, seeded["id"])
    assert (create.planned, create.id, create.get("first_name")) == (True, None, "New")
    assert [c.method for c in api_calls(fake)] == ["GET"]
    assert fake.state.get_prospect("v3", seeded["id"])["first_name"] == "Before"
    assert len(fake.state.prospects("v3")) == 1
    planned = [(c.method, c.path) for c in pardot.calls if c.planned]
    assert planned == [
        ("POST", "/api/prospect/version/3/do/upsert/email/dry%40example.com"),
        ("POST", f"/api/prospect/version/3/do/update/id/{seeded['id']}"),
        ("POST", "/api/prospect/version/3/do/create/email/fresh%40example.com"),
    ]
    assert all(c.http_status == 0 for c in pardot.calls if c.planned)


async def test_add_to_list_is_idempotent(fake: FakePardot, make_client: ClientFactory) -> None:
    seeded = fake.state.add_prospect("v4", email="list@example.com")
    pardot = gateway(make_client(oauth_config(fake)))
    added = await pardot.add_to_list(seeded["id"], 501, resubscribe=False)
    again = await pardot.add_to_list(seeded["id"], 501, resubscribe=False)
    assert (added, again) == (ListChange.ADDED, ListChange.ALREADY_MEMBER)
    assert fake.state.list_members("v4", 501) == [seeded["id"]]
