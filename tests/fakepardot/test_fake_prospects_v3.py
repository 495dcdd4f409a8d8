"""Contract: prospect operations of API version 3, where the email is unique
(PARDOT_API.md, "Prospect operations, version 3")."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def test_create_by_email_returns_the_new_prospect(v3: Pardot, fake: FakePardot) -> None:
    prospect = v3.ok("create", "email", "new@example.com", first_name="Ann")["prospect"]
    assert isinstance(prospect["id"], int)
    assert prospect["email"] == "new@example.com"
    assert prospect["first_name"] == "Ann"
    assert prospect["campaign_id"] == 1001  # the account's oldest campaign
    assert prospect["score"] == 0
    assert TIMESTAMP.match(prospect["created_at"])
    assert TIMESTAMP.match(prospect["updated_at"])
    assert fake.state.get_prospect("v3", prospect["id"]) == prospect


def test_create_with_campaign_id_keeps_it(v3: Pardot) -> None:
    prospect = v3.ok("create", "email", "c@example.com", campaign_id=1002)["prospect"]
    assert prospect["campaign_id"] == 1002


def test_create_with_unknown_campaign_is_err_38(v3: Pardot) -> None:
    v3.fails(38, "create", "email", "c@example.com", campaign_id=999)


def test_create_existing_email_is_err_9(v3: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v3", email="Taken@Example.com")
    text = v3.fails(9, "create", "email", "taken@example.com")
    assert text == "A prospect with the specified email address already exists"
    assert len(fake.state.prospects("v3")) == 1


def test_create_invalid_email_is_err_4(v3: Pardot, fake: FakePardot) -> None:
    assert v3.fails(4, "create", "email", "not-an-email") == "Invalid prospect email address"
    assert fake.state.prospects("v3") == []


def test_read_by_email_and_by_id(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="r@example.com", last_name="Reader")
    assert v3.ok("read", "email", "r@example.com")["prospect"] == seeded
    assert v3.ok("read", "id", seeded["id"])["prospect"] == seeded


def test_read_absent_email_is_err_4_and_absent_id_is_err_3(v3: Pardot) -> None:
    v3.fails(4, "read", "email", "ghost@example.com")
    assert v3.fails(3, "read", "id", 999999) == "Invalid prospect ID"


def test_read_with_get_works_too(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="g@example.com")
    response = v3.call("read", "id", seeded["id"], method="GET")
    assert response.json()["prospect"]["id"] == seeded["id"]


def test_update_by_email_cannot_change_the_email(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="keep@example.com")
    updated = v3.ok("update", "email", "keep@example.com", email="other@example.com", city="Oslo")
    assert updated["prospect"]["email"] == "keep@example.com"
    assert updated["prospect"]["city"] == "Oslo"
    assert fake.state.get_prospect("v3", seeded["id"])["email"] == "keep@example.com"  # type: ignore[index]


def test_update_by_id_can_change_the_email(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="old@example.com")
    updated = v3.ok("update", "id", seeded["id"], email="new@example.com")
    assert updated["prospect"]["email"] == "new@example.com"
    v3.fails(4, "read", "email", "old@example.com")


def test_update_by_id_to_an_email_in_use_is_err_9(v3: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v3", email="a@example.com")
    second = fake.state.add_prospect("v3", email="b@example.com")
    v3.fails(9, "update", "id", second["id"], email="a@example.com")


def test_update_absent_prospect_is_err_4_or_3(v3: Pardot) -> None:
    v3.fails(4, "update", "email", "ghost@example.com", city="x")
    v3.fails(3, "update", "id", 424242, city="x")


def test_upsert_by_email_updates_when_it_exists(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="u@example.com")
    prospect = v3.ok("upsert", "email", "u@example.com", company="Initech")["prospect"]
    assert prospect["id"] == seeded["id"]
    assert prospect["company"] == "Initech"
    assert len(fake.state.prospects("v3")) == 1


def test_upsert_by_email_creates_when_absent(v3: Pardot, fake: FakePardot) -> None:
    prospect = v3.ok("upsert", "email", "fresh@example.com")["prospect"]
    assert [p["id"] for p in fake.state.prospects("v3")] == [prospect["id"]]


def test_upsert_by_id_updates_and_may_change_the_email(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="before@example.com")
    prospect = v3.ok("upsert", "id", seeded["id"], email="after@example.com")["prospect"]
    assert (prospect["id"], prospect["email"]) == (seeded["id"], "after@example.com")


def test_upsert_by_unknown_id_falls_back_to_the_email(v3: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v3", email="fallback@example.com")
    prospect = v3.ok("upsert", "id", 777777, email="fallback@example.com", city="Rome")["prospect"]
    assert prospect["id"] == seeded["id"]
    assert prospect["city"] == "Rome"


def test_upsert_by_unknown_id_and_unknown_email_creates(v3: Pardot, fake: FakePardot) -> None:
    prospect = v3.ok("upsert", "id", 777777, email="brand-new@example.com")["prospect"]
    assert prospect["id"] != 777777
    assert [p["email"] for p in fake.state.prospects("v3")] == ["brand-new@example.com"]


def test_upsert_by_unknown_id_without_email_is_err_14(v3: Pardot, fake: FakePardot) -> None:
    text = v3.fails(14, "upsert", "id", 777777, city="Nowhere")
    assert text == "Non-existent prospect ID; No email address provided"
    assert fake.state.prospects("v3") == []


def test_delete_by_email_and_id_answer_204_with_empty_body(v3: Pardot, fake: FakePardot) -> None:
    first = fake.state.add_prospect("v3", email="d1@example.com")
    second = fake.state.add_prospect("v3", email="d2@example.com")
    for response in (
        v3.call("delete", "email", "d1@example.com"),
        v3.call("delete", "id", second["id"]),
    ):
        assert response.status_code == 204
        assert response.content == b""
    assert fake.state.get_prospect("v3", first["id"]) is None
    assert fake.state.prospects("v3") == []
    v3.fails(3, "delete", "id", second["id"])


def test_archived_prospect_cannot_be_read_but_upsert_unarchives_it(
    v3: Pardot, fake: FakePardot
) -> None:
    seeded = fake.state.add_prospect("v3", email="arch@example.com", is_archived=True)
    assert v3.fails(132, "read", "id", seeded["id"]) == "Prospect is archived"
    v3.fails(9, "create", "email", "arch@example.com")
    prospect = v3.ok("upsert", "email", "arch@example.com")["prospect"]
    assert prospect["id"] == seeded["id"]
    assert "is_archived" not in prospect  # never on the wire (PARDOT_API.md, "Responses")
    assert v3.ok("read", "id", seeded["id"])["prospect"]["id"] == seeded["id"]  # unarchived


def test_fid_is_not_a_v3_key(v3: Pardot) -> None:
    assert v3.fails(2, "read", "fid", "00Q000000000001AAA") == "Invalid action"


def test_email_with_plus_round_trips_when_url_encoded(v3: Pardot, fake: FakePardot) -> None:
    created = v3.ok("create", "email", "a+b@example.com")["prospect"]
    assert created["email"] == "a+b@example.com"
    assert v3.ok("read", "email", "a+b@example.com")["prospect"]["id"] == created["id"]
    call = fake.state.calls[-1]
    assert call.raw_path.endswith("/read/email/a%2Bb%40example.com")
    assert call.path.endswith("/read/email/a+b@example.com")


def test_email_with_unencoded_plus_breaks_as_in_pardot(
    v3: Pardot, http: httpx.Client, fake: FakePardot
) -> None:
    fake.state.add_prospect("v3", email="a+b@example.com")
    response = http.post(
        "/api/prospect/version/3/do/read/email/a+b@example.com",
        data={"format": "json"},
        headers=v3.headers,
    )
    assert response.json()["@attributes"]["err_code"] == 4
    assert fake.state.calls[-1].path.endswith("/read/email/a b@example.com")
