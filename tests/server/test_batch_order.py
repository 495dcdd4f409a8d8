"""server.batch_order: which BatchSync items wait for which. Items naming one person
wait for the latest earlier one; items about different people wait for nobody."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from prospectsync.v1 import prospect_sync_pb2 as pb
from server.batch_order import person_hints, run_after


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def identify(traits: dict[str, Any] | None = None, **fields: Any) -> pb.BatchSyncItem:
    settings = pb.PardotSettings(
        connection=fields.pop("connection", ""), lookup_field=fields.pop("lookup_field", "")
    )
    pardot = pb.PardotOptions(id=fields.pop("pardot_id", ""), fid=fields.pop("pardot_fid", ""))
    request = pb.IdentifyRequest(
        traits=struct(traits or {}), pardot=pardot, settings=settings, **fields
    )
    return pb.BatchSyncItem(identify=request)


def track(
    context_traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    **fields: Any,
) -> pb.BatchSyncItem:
    settings = pb.PardotSettings(lookup_field=fields.pop("lookup_field", ""))
    request = pb.TrackRequest(
        event="Signed Up",
        context=struct({"traits": context_traits} if context_traits is not None else {}),
        properties=struct(properties or {}),
        settings=settings,
        **fields,
    )
    return pb.BatchSyncItem(track=request)


def test_different_people_wait_for_nobody() -> None:
    items = [identify({"email": f"p{n}@example.com"}, user_id=f"u{n}") for n in range(4)]
    assert run_after(items) == [(), (), (), ()]


def test_one_persons_items_form_a_chain_in_request_order() -> None:
    ann = {"email": "ann@example.com"}
    items = [identify(ann), identify({"email": "bob@example.com"}), identify(ann), track(ann)]
    assert run_after(items) == [(), (), (0,), (2,)]


def test_any_shared_identifier_links_items() -> None:
    items = [
        identify({"email": "ann@example.com"}, user_id="u-ann"),
        identify({"email": "ann.new@example.com"}, user_id="u-ann"),  # same user_id
        track(properties={"email": "ANN.NEW@example.com "}),  # same email, case and space
        identify(pardot_id="42"),
        identify({"email": "x@example.com"}, pardot_id="42"),  # same Pardot id
        identify(pardot_fid="00Q000000000001"),
        identify(pardot_fid="00Q000000000001", anonymous_id="a-1"),
        identify(anonymous_id="a-1"),
    ]
    assert run_after(items) == [(), (0,), (1,), (), (3,), (), (5,), (6,)]


def test_an_item_waits_for_the_latest_of_each_person_it_names() -> None:
    """Item 2 is both Ann (by email) and Bob (by user id): it waits for both."""
    items = [
        identify({"email": "ann@example.com"}),
        identify({"email": "bob@example.com"}, user_id="u-bob"),
        identify({"email": "ann@example.com"}, user_id="u-bob"),
    ]
    assert run_after(items) == [(), (), (0, 1)]


def test_the_lookup_fields_value_links_items_read_where_the_strategy_reads_it() -> None:
    items = [
        identify({"org_id": 42}, lookup_field="org_id"),
        track({"org_id": "42"}, lookup_field="org_id"),  # context.traits
        track(properties={"org_id": 42.0}, lookup_field="org_id"),  # properties
        identify({"org_id": 43}, lookup_field="org_id"),
    ]
    assert run_after(items) == [(), (0,), (1,), ()]


def test_the_same_identifier_on_two_connections_is_two_people() -> None:
    ann = {"email": "ann@example.com"}
    items = [identify(ann, connection="v3"), identify(ann), identify(ann, connection="default")]
    # "" and "default" are one connection.
    assert run_after(items) == [(), (), (1,)]


def test_what_names_nobody_links_nothing() -> None:
    items = [
        pb.BatchSyncItem(),
        identify({"email": ""}),
        identify({"email": {"nested": "ann@example.com"}}),
        identify({"email": "   "}),
        track(),
    ]
    assert [person_hints(i) for i in items] == [set()] * 5
    assert run_after(items) == [()] * 5
