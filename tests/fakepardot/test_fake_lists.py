"""The fake's list memberships beyond create: removal by ``list_<id>=0`` on a prospect
write, v4 membership update (``opted_out``), the v5 list-membership query / PATCH /
DELETE, an opted-out member, and the ``list_field_resubscribes`` switch (both sides).

Evidence: PARDOT_API.md "List membership" (``list_<id>=0`` removes; err 58; the
membership's ``opted_out`` is a JSON boolean, RECORDED); Salesforce's v4 and v5 "List
Membership Object" pages (v4: create, read, update, delete, query by list and prospect
id; v5: Create POST, Read GET, Update PATCH, Query GET, Delete DELETE on
``/api/v5/objects/list-memberships[/<id>]``); micahlmartin/pardot
``lib/list-membership.js`` (``do/update/list_id/<l>/prospect_id/<p>`` with the fields as
parameters). UNCONFIRMED, so the fake's choice: ``opted_out=false`` on a v4 update
re-subscribes; v5 query filters ``listId`` / ``prospectId``; what ``list_<id>=1`` does to
an opted-out membership (the switch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from fakepardot import FakePardot

if TYPE_CHECKING:
    from conftest import Pardot, V5Client


def member(fake: FakePardot, email: str, *, opted_out: bool = False) -> int:
    prospect = fake.state.add_prospect("v4", email=email)
    fake.state.add_list_member("v4", 501, prospect["id"], opted_out=opted_out)
    return int(prospect["id"])


def test_list_field_zero_removes_and_a_non_member_is_no_error(v4: Pardot, fake: FakePardot) -> None:
    ann = member(fake, "ann@example.com")
    v4.ok("update", "id", ann, list_501="0")
    assert fake.state.list_members("v4", 501) == []
    v4.ok("update", "id", ann, list_501="0")  # not a member any more: still ok


def test_a_seeded_opt_out_reads_back_as_a_json_true(v4: Pardot, fake: FakePardot) -> None:
    ann = member(fake, "ann@example.com", opted_out=True)
    document = v4.ok("read", "list_id", 501, "prospect_id", ann, obj="listMembership")
    assert document["list_membership"]["opted_out"] is True
    v4.fails(58, "create", "list_id", 501, "prospect_id", ann, obj="listMembership")


def test_v4_membership_update_sets_opted_out(v4: Pardot, fake: FakePardot) -> None:
    ann = member(fake, "ann@example.com", opted_out=True)
    keys = ("list_id", 501, "prospect_id", ann)
    document = v4.ok("update", *keys, obj="listMembership", opted_out="false")
    assert document["list_membership"]["opted_out"] is False
    v4.ok("update", *keys, obj="listMembership", opted_out="true")
    assert v4.ok("read", *keys, obj="listMembership")["list_membership"]["opted_out"] is True
    v4.fails(3, "update", "list_id", 502, "prospect_id", ann, obj="listMembership")


@pytest.mark.parametrize("resubscribes", [False, True])
def test_list_field_one_on_an_opted_out_membership_follows_the_switch(
    v4: Pardot, fake: FakePardot, resubscribes: bool
) -> None:
    fake.state.set_switches(list_field_resubscribes=resubscribes)
    ann = member(fake, "ann@example.com", opted_out=True)
    v4.ok("update", "id", ann, list_501="1")
    document = v4.ok("read", "list_id", 501, "prospect_id", ann, obj="listMembership")
    assert document["list_membership"]["opted_out"] is (not resubscribes)


def test_the_switch_is_a_switch(fake: FakePardot) -> None:
    assert fake.state.switches()["list_field_resubscribes"] is False
    with pytest.raises(ValueError):
        fake.state.set_switches(list_field_resubscribes="yes")
    fake.state.set_switches(list_field_resubscribes=True)
    fake.state.reset()
    assert fake.state.list_field_resubscribes is False


def test_v5_query_patch_and_delete_a_membership(v5: V5Client, fake: FakePardot) -> None:
    ann = member(fake, "ann@example.com", opted_out=True)
    params = {"fields": "id,listId,prospectId,optedOut", "listId": 501, "prospectId": ann}
    page = v5.ok("GET", "list-memberships", params=params)
    assert page["nextPageToken"] is None
    [found] = page["values"]
    assert (found["listId"], found["prospectId"], found["optedOut"]) == (501, ann, True)
    path = f"list-memberships/{found['id']}"
    patched = v5.ok("PATCH", path, json={"optedOut": False}, params={"fields": "optedOut"})
    assert patched == {"optedOut": False}
    assert v5.ok("GET", path, params={"fields": "optedOut"}) == {"optedOut": False}
    assert v5.ok("DELETE", path, 204) is None
    assert fake.state.list_members("v4", 501) == []
    assert v5.ok("GET", "list-memberships", params=params)["values"] == []
    v5.fails(109, 404, "DELETE", path)


def test_v5_membership_query_needs_fields_and_integer_filters(v5: V5Client) -> None:
    v5.fails(13, 400, "GET", "list-memberships", params={"listId": 501})
    v5.fails(5, 400, "GET", "list-memberships", params={"fields": "id", "listId": "x"})
    v5.fails(180, 400, "GET", "list-memberships", params={"fields": "nope"})
