"""Issue 12, items 4, 5, 6, 13 and 14 end to end: hostile or out-of-range input through
the live server and fakepardot over HTTP. Every refusal is INVALID_ARGUMENT naming the
field, before any Pardot call, and its status stays small enough for every gRPC client
to read; lookup values are trimmed; a null trait clears its Pardot field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify, struct

TOM = {"email": "tom@example.com"}
ORG = {"lookup_field": "org_id"}
BY_USER = {"lookup_field": "org_id", "use_user_id_as_lookup_value": True}
#: When a prospect that was in Pardot before the test was created.
LONG_AGO = "2020-01-21 18:21:46"
#: gRPC's soft limit on metadata (headers and trailers) in C-core and grpcio.
METADATA_SOFT_LIMIT = 8 * 1024
#: Protobuf's Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799


def api_calls(fake: FakePardot) -> list[str]:
    return [c.path for c in fake.state.calls if c.path.startswith("/api/")]


async def refused(call: Any, request: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, timeout=10)
    return caught.value


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    status = rpc_status.from_call(error)  # raises if the details did not arrive whole
    assert status is not None
    assert any(d.Unpack(bad) for d in status.details)
    return [v.field for v in bad.field_violations]


def status_bytes(error: grpc.aio.AioRpcError) -> int:
    """What the status costs in metadata: the message (grpc-message) and the trailers."""
    trailers = sum(len(k) + len(v) for k, v in error.trailing_metadata() or ())
    return len(error.details().encode()) + trailers


def track_request(event: str = "Signed Up", **fields: Any) -> pb.TrackRequest:
    mapping = pb.TrackMapping(fields={"plan": "plan"})
    return pb.TrackRequest(
        event=event,
        context=struct({"traits": TOM}),
        properties=struct({"plan": "pro"}),
        settings=pb.PardotSettings(connection="v3", track_mappings={"Signed Up": mapping}),
        **fields,
    )


# --- item 4: Pardot's own parameter names ----------------------------------------------

#: Names Pardot reads from a request's form or query rather than as a prospect field.
PARAMETER_NAMES = [
    "api_key",
    "user_key",
    "access_token",
    "format",
    "output",
    "prospects",
    "fid",
    "user_id",
    "list_55",
    "profile_criteria_8",
    "API_KEY",
    "Format",
]


@pytest.mark.parametrize(
    "options",
    [
        {"connection": "v3"},  # EmailV3
        {**ORG},  # LookupFieldV4
        {"pardot_id": "1001"},  # IdFidV4
        {"connection": "v5"},  # EmailV5
    ],
    ids=["v3", "v4-lookup", "v4-id", "v5"],
)
async def test_a_trait_named_like_a_pardot_parameter_is_refused_before_any_call(
    service: Service, fake: FakePardot, options: dict[str, Any]
) -> None:
    for name in PARAMETER_NAMES:
        traits = {**TOM, "org_id": "o-1", name: "xml"}
        error = await refused(service.stub.Identify, identify(traits, **options))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert field_violations(error) == [f"traits.{name}"]
        assert "Pardot reads" in error.details()
    assert api_calls(fake) == []


async def test_a_parameter_name_is_refused_in_a_batch_item_and_a_track_mapping(
    service: Service, fake: FakePardot
) -> None:
    reply = await service.stub.BatchSync(
        pb.BatchSyncRequest(
            items=[pb.BatchSyncItem(identify=identify({**TOM, "format": "xml"}, connection="v3"))]
        ),
        timeout=10,
    )
    [result] = reply.results
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in result.error.details)
    assert [v.field for v in bad.field_violations] == ["items[0].identify.traits.format"]

    mapped = pb.TrackMapping(fields={"plan": "output"})
    request = track_request()
    request.settings.track_mappings["Signed Up"].CopyFrom(mapped)
    error = await refused(service.stub.Track, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ['settings.track_mappings["Signed Up"].fields["plan"]']
    assert api_calls(fake) == []


# --- item 5: what a status quotes is bounded ---------------------------------------------

HUGE = 100_000


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (identify(TOM, pardot_id="1" * HUGE), "pardot.id"),
        (identify(TOM, pardot_id="😀" * HUGE), "pardot.id"),
        (identify(TOM, pardot_fid="00Q" + "x" * HUGE), "pardot.fid"),
        (identify({**TOM, "k" * HUGE: "v"}, connection="v3"), "traits"),
        (identify({**TOM, "é" * HUGE: "v"}, connection="v3"), "traits"),
        (identify(TOM, lookup_field="f" * HUGE), "settings.lookup_field"),
        (identify(TOM, connection="v3", campaign_id="9" * HUGE), "settings.campaign_id"),
        (identify(TOM, connection="v3", strategy="S" * HUGE), "settings.strategy"),
        (identify(TOM, connection="c" * HUGE), "settings.connection"),
        (identify({"email": "a" * HUGE + "@example.com"}, connection="v3"), "traits.email"),
    ],
    ids=[
        "pardot.id",
        "pardot.id-emoji",
        "pardot.fid",
        "trait-name",
        "trait-name-accented",
        "lookup_field",
        "campaign_id",
        "strategy",
        "connection",
        "email",
    ],
)
async def test_a_huge_value_gets_its_real_error_in_a_small_status(
    service: Service, fake: FakePardot, request_: pb.IdentifyRequest, field: str
) -> None:
    error = await refused(service.stub.Identify, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED
    assert field_violations(error) == [field]  # the field's name whole
    assert error.details().startswith(field)
    assert status_bytes(error) < METADATA_SOFT_LIMIT // 2
    assert len(error.details()) < 1000
    assert api_calls(fake) == []


async def test_a_quoted_value_is_cut_with_an_ellipsis_and_its_length(
    service: Service,
) -> None:
    # A trait name within the 255 characters of a name, but no Pardot field id (≤ 100).
    name = "k" * 250
    error = await refused(service.stub.Identify, identify({**TOM, name: 1}, connection="v3"))
    assert field_violations(error) == [f"traits.{name}"]  # the field's name whole
    message = error.details().removeprefix(f"traits.{name}")
    assert "k" * 200 in message and "k" * 201 not in message
    assert "… (250 characters)" in message


# --- item 6: every string of the contract has a limit --------------------------------------

MEGABYTE = 1_000_000


async def test_a_megabyte_user_id_never_reaches_pardot_or_the_identity_map(
    service: Service, fake: FakePardot
) -> None:
    request = identify(TOM, user_id="u" * MEGABYTE, **BY_USER)
    error = await refused(service.stub.Identify, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ["user_id"]
    assert "at most 255" in error.details()
    assert api_calls(fake) == []
    # The same person with a sane id is created afresh: nothing was remembered.
    reply = await service.stub.Identify(identify(TOM, user_id="u-1", **BY_USER), timeout=10)
    assert reply.outcome == pb.OUTCOME_CREATED


async def test_a_megabyte_event_name_is_refused(service: Service, fake: FakePardot) -> None:
    error = await refused(service.stub.Track, track_request(event="e" * MEGABYTE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ["event"]
    assert api_calls(fake) == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (identify(TOM, connection="v3", message_id="m" * 256), "message_id"),
        (identify(TOM, connection="v3", user_id="u" * 256), "user_id"),
        (pb.IdentifyRequest(anonymous_id="a" * 256, traits=struct(TOM)), "anonymous_id"),
        (identify({**TOM, "org_id": "o" * 256}, **ORG), "traits.org_id"),
        (identify({**TOM, "notes": "n" * (64 * 1024 + 1)}, connection="v3"), "traits.notes"),
        (
            pb.IdentifyRequest(
                traits=struct(TOM),
                context=struct({"page": {"url": "u" * (64 * 1024 + 1)}}),
                settings=pb.PardotSettings(connection="v3"),
            ),
            "context.page.url",
        ),
        (
            pb.IdentifyRequest(
                traits=struct(TOM),
                context=struct({"k" * 256: 1}),
                settings=pb.PardotSettings(connection="v3"),
            ),
            "context",
        ),
        (identify(TOM, connection="v3", account_id="1" * 256), "settings.account_id"),
    ],
    ids=[
        "message_id",
        "user_id",
        "anonymous_id",
        "lookup-value",
        "trait-value",
        "context-value",
        "context-key",
        "account_id",
    ],
)
async def test_a_string_over_its_limit_is_refused_naming_the_field(
    service: Service, fake: FakePardot, request_: pb.IdentifyRequest, field: str
) -> None:
    error = await refused(service.stub.Identify, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [field]
    assert api_calls(fake) == []


async def test_strings_at_their_limits_pass(service: Service, fake: FakePardot) -> None:
    traits = {**TOM, "org_id": "o" * 255, "notes": "n" * (64 * 1024)}
    request = identify(traits, user_id="u" * 255, message_id="m" * 255, **ORG)
    request.anonymous_id = "a" * 255
    reply = await service.stub.Identify(request, timeout=10)
    assert reply.outcome == pb.OUTCOME_CREATED


# --- item 13: lookup values are trimmed --------------------------------------------------


async def test_a_lookup_value_with_surrounding_spaces_is_the_same_prospect(
    service: Service, fake: FakePardot
) -> None:
    first = await service.stub.Identify(identify({**TOM, "org_id": " X "}, **ORG), timeout=10)
    again = await service.stub.Identify(identify({**TOM, "org_id": "X"}, **ORG), timeout=10)
    assert first.outcome == pb.OUTCOME_CREATED
    assert again.prospect_id == first.prospect_id
    [prospect] = fake.state.prospects("v4")
    assert prospect["org_id"] == "X"


async def test_a_user_id_with_surrounding_spaces_is_the_same_prospect(
    service: Service, fake: FakePardot
) -> None:
    first = await service.stub.Identify(identify(TOM, user_id="\tu-1 ", **BY_USER), timeout=10)
    again = await service.stub.Identify(identify(TOM, user_id="u-1", **BY_USER), timeout=10)
    assert again.prospect_id == first.prospect_id
    [prospect] = fake.state.prospects("v4")
    assert prospect["org_id"] == "u-1"


async def test_a_lookup_value_pardot_holds_with_spaces_is_matched(
    service: Service, fake: FakePardot
) -> None:
    seeded = fake.state.add_prospect("v4", email=TOM["email"], org_id=" X")
    reply = await service.stub.Identify(identify({**TOM, "org_id": "X"}, **ORG), timeout=10)
    assert reply.prospect_id == str(seeded["id"])
    assert len(fake.state.prospects("v4")) == 1


# --- item 14: timestamps out of range; null clears ------------------------------------------


def timestamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


OUT_OF_RANGE = [
    timestamp(LAST_SECOND + 1),
    timestamp(FIRST_SECOND - 1),
    timestamp(0, -1),
    timestamp(0, 1_000_000_000),
]


async def test_a_timestamp_out_of_range_is_invalid_argument_everywhere(
    service: Service, fake: FakePardot
) -> None:
    for when in OUT_OF_RANGE:
        request = identify(TOM, connection="v3")
        request.timestamp.CopyFrom(when)
        error = await refused(service.stub.Identify, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, when
        assert field_violations(error) == ["timestamp"]

        tracked = track_request(timestamp=when)
        error = await refused(service.stub.Track, tracked)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, when
        assert field_violations(error) == ["timestamp"]

        reply = await service.stub.BatchSync(
            pb.BatchSyncRequest(
                items=[pb.BatchSyncItem(identify=request), pb.BatchSyncItem(track=tracked)]
            ),
            timeout=10,
        )
        for index, (kind, result) in enumerate(
            zip(("identify", "track"), reply.results, strict=True)
        ):
            assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            bad = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad) for d in result.error.details)
            assert [v.field for v in bad.field_violations] == [f"items[{index}].{kind}.timestamp"]
    assert api_calls(fake) == []


async def test_the_edges_of_the_timestamp_range_pass(service: Service) -> None:
    for when in (timestamp(LAST_SECOND, 999_999_999), timestamp(FIRST_SECOND)):
        request = identify(TOM, connection="v3")
        request.timestamp.CopyFrom(when)
        reply = await service.stub.Identify(request, timeout=10)
        # The second is identical but for its timestamp, which Pardot is not sent.
        assert reply.outcome in (pb.OUTCOME_CREATED, pb.OUTCOME_UNCHANGED)


@pytest.mark.parametrize(
    ("account", "options"),
    [
        ("v3", {"connection": "v3"}),
        ("v4", {**ORG}),
        ("v4", {"connection": "v5"}),
    ],
    ids=["v3", "v4-lookup", "v5"],
)
async def test_a_null_trait_clears_the_standard_field(
    service: Service, fake: FakePardot, account: str, options: dict[str, Any]
) -> None:
    seeded = fake.state.add_prospect(
        account,
        email=TOM["email"],
        org_id="o-1",
        phone="555-0100",
        city="Austin",
        plan="pro",
        created_at=LONG_AGO,
    )
    traits = {**TOM, "org_id": "o-1", "phone": None, "address": {"city": None}, "plan": None}
    await service.stub.Identify(identify(traits, **options), timeout=10)
    prospect = fake.state.get_prospect(account, seeded["id"])
    assert prospect is not None
    assert prospect["phone"] is None
    assert prospect["city"] is None
    assert "plan" not in prospect  # a custom field is shown only when it holds a value
    assert prospect["email"] == TOM["email"]  # the email is never cleared by a null


async def test_a_null_alias_does_not_clear_what_another_source_sets(
    service: Service, fake: FakePardot
) -> None:
    traits = {**TOM, "first_name": None, "firstName": "Tom"}
    await service.stub.Identify(identify(traits, connection="v3"), timeout=10)
    [prospect] = fake.state.prospects("v3")
    assert prospect["first_name"] == "Tom"


async def test_an_overlong_page_url_is_refused(service: Service) -> None:
    request = pb.GetTrackingSnippetRequest(
        page_url="https://example.com/?" + "q" * 8192,
        settings=pb.PardotSettings(account_id="1234"),
    )
    error = await refused(service.stub.GetTrackingSnippet, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ["page_url"]
