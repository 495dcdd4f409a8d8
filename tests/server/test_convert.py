"""server.convert: protobuf in, plain model values out, and back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from clients.config import ConnectionConfig
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.convert import (
    connection_name,
    event_from_identify,
    event_from_track,
    identify_response,
    outcome_to_proto,
    settings_from_proto,
    struct_to_dict,
)
from strategies.core.errors import InvalidArgument
from strategies.core.model import CallRecord, Outcome, Prospect, SyncResult, TrackMapping

V3 = ConnectionConfig(name="legacy", api_version=3)


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def test_identify_becomes_an_event_with_plain_values() -> None:
    when = timestamp_pb2.Timestamp()
    when.FromDatetime(datetime(2024, 5, 1, 12, 30, tzinfo=UTC))
    request = pb.IdentifyRequest(
        message_id="m-1",
        user_id="u-1",
        anonymous_id="a-1",
        traits=struct({"email": "a@b.com", "employees": 50, "ratio": 0.5, "tags": [1, "x"]}),
        context=struct({"ip": "127.0.0.1"}),
        pardot=pb.PardotOptions(id="42", fid="00Q000000000001"),
        timestamp=when,
    )
    event = event_from_identify(request)
    assert (event.kind, event.message_id, event.user_id, event.anonymous_id) == (
        "identify",
        "m-1",
        "u-1",
        "a-1",
    )
    # A Struct holds doubles only; whole numbers come back as ints ("50", not "50.0").
    assert event.traits == {"email": "a@b.com", "employees": 50, "ratio": 0.5, "tags": [1, "x"]}
    assert isinstance(event.traits["employees"], int)
    assert event.context == {"ip": "127.0.0.1"}
    assert (event.pardot_id, event.pardot_fid) == ("42", "00Q000000000001")
    assert event.timestamp == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def test_every_kind_of_struct_value_becomes_its_plain_twin() -> None:
    values = struct(
        {
            "whole": 50,
            "huge": 2.0**60,  # past 2**53 a double is no exact integer: it stays a float
            "ratio": -0.25,
            "text": "x",
            "flag": False,
            "nothing": None,
            "list": [1, "a", None, True, {"k": 2.0}, [3.5]],
            "object": {"deep": {"x": 3}},
        }
    )
    values.fields["unset"].Clear()  # a Value with no kind at all reads as null
    assert struct_to_dict(values) == {
        "whole": 50,
        "huge": 2.0**60,
        "ratio": -0.25,
        "text": "x",
        "flag": False,
        "nothing": None,
        "list": [1, "a", None, True, {"k": 2}, [3.5]],
        "object": {"deep": {"x": 3}},
        "unset": None,
    }
    assert isinstance(struct_to_dict(values)["huge"], float)
    assert isinstance(struct_to_dict(values)["flag"], bool)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_hold_is_invalid_argument_wherever_it_is(number: float) -> None:
    traits = struct({"list": [{"score": 1}]})
    traits["list"][0]["score"] = number
    with pytest.raises(InvalidArgument) as caught:
        event_from_identify(pb.IdentifyRequest(traits=traits))
    assert caught.value.field == "traits"


def test_absent_structs_and_timestamp_are_empty() -> None:
    event = event_from_identify(pb.IdentifyRequest())
    assert (event.traits, event.context, event.timestamp) == ({}, {}, None)


def test_a_track_call_is_identified_by_its_context_traits() -> None:
    request = pb.TrackRequest(
        event="Signed Up",
        properties=struct({"plan": "pro"}),
        context=struct({"traits": {"email": "a@b.com"}, "ip": "127.0.0.1"}),
    )
    event = event_from_track(request)
    assert (event.kind, event.name, event.traits_path) == ("track", "Signed Up", "context.traits")
    assert event.traits == {"email": "a@b.com"}
    assert event.properties == {"plan": "pro"}
    assert event_from_track(pb.TrackRequest(context=struct({"traits": "odd"}))).traits == {}


def test_unspecified_settings_take_the_connections_defaults() -> None:
    assert connection_name(pb.PardotSettings()) == "default"
    assert connection_name(pb.PardotSettings(connection="legacy")) == "legacy"
    settings = settings_from_proto(pb.PardotSettings(), V3)
    assert (settings.connection, settings.api_version) == ("legacy", 3)
    forced = settings_from_proto(pb.PardotSettings(api_version=pb.API_VERSION_4), V3)
    assert forced.api_version == 4


def test_settings_are_copied_field_by_field() -> None:
    proto = pb.PardotSettings(
        lookup_field="org_id",
        use_user_id_as_lookup_value=True,
        campaign_id="1001",
        strategy="LookupFieldV4",
        dry_run=True,
        create_when_unmatched=True,
        account_id="123",
        track_mappings={
            "Signed Up": pb.TrackMapping(
                fields={"plan": "plan"},
                add_to_list_ids=[501, 502],
                external_activity=pb.ExternalActivity(extension="ext", type="signup"),
            ),
            "Viewed": pb.TrackMapping(),
        },
    )
    settings = settings_from_proto(proto, V3)
    assert (settings.lookup_field, settings.use_user_id_as_lookup_value) == ("org_id", True)
    assert (settings.campaign_id, settings.strategy, settings.account_id) == (
        "1001",
        "LookupFieldV4",
        "123",
    )
    assert settings.dry_run and settings.create_when_unmatched
    assert settings.track_mappings == {
        "Signed Up": TrackMapping({"plan": "plan"}, (501, 502), ("ext", "signup")),
        "Viewed": TrackMapping(),
    }


def test_an_unknown_api_version_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        settings_from_proto(pb.PardotSettings(api_version=6), V3)
    assert caught.value.field == "settings.api_version"
    assert "API v3" in caught.value.message  # says what "unspecified" would mean


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_its_proto_twin(outcome: Outcome) -> None:
    assert pb.Outcome.Name(outcome_to_proto(outcome)) == f"OUTCOME_{outcome.name}"


def test_the_response_reports_prospect_outcome_and_calls() -> None:
    calls = [
        CallRecord("POST", "/api/prospect/version/3/do/upsert/email/a%40b.com", 200, 0, 0.0125),
        CallRecord("POST", "/api/prospect/version/3/do/update/id/7", 0, 0, 0.0, planned=True),
        CallRecord("POST", "/api/prospect/version/3/do/read/id/7", 200, 66, 0.5, attempt=2),
    ]
    result = SyncResult(Prospect(7, "a@b.com", created=True), Outcome.CREATED, ["note"])
    response = identify_response(result, "EmailV3", calls)
    assert (response.prospect_id, response.outcome, response.strategy) == (
        "7",
        pb.OUTCOME_CREATED,
        "EmailV3",
    )
    assert list(response.warnings) == ["note"]
    first, planned, retried = response.pardot_calls
    assert (first.method, first.path, first.http_status) == ("POST", calls[0].path, 200)
    assert first.duration.ToNanoseconds() == 12_500_000
    assert planned.planned and planned.http_status == 0
    assert (retried.err_code, retried.attempt) == (66, 2)


def test_an_unknown_prospect_id_is_empty() -> None:
    result = SyncResult(Prospect(None, planned=True), Outcome.PLANNED)
    response = identify_response(result, "LookupFieldV4", [])
    assert (response.prospect_id, response.outcome) == ("", pb.OUTCOME_PLANNED)


# --- issue 12: what the proto's types cannot say ------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (0, -1), (0, 1_000_000_000)],
)
def test_a_timestamp_out_of_protobufs_range_is_invalid_argument(seconds: int, nanos: int) -> None:
    when = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    for request in (pb.IdentifyRequest(timestamp=when), pb.TrackRequest(event="e", timestamp=when)):
        convert = (
            event_from_identify if isinstance(request, pb.IdentifyRequest) else event_from_track
        )
        with pytest.raises(InvalidArgument) as caught:
            convert(request)  # type: ignore[arg-type]
        assert caught.value.field == "timestamp"


def test_the_edges_of_the_timestamp_range_convert() -> None:
    last = timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=999_999_999)
    first = timestamp_pb2.Timestamp(seconds=-62_135_596_800)
    assert event_from_identify(pb.IdentifyRequest(timestamp=last)).timestamp is not None
    assert event_from_identify(pb.IdentifyRequest(timestamp=first)).timestamp is not None


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.IdentifyRequest(user_id="u" * 256), "user_id"),
        (pb.IdentifyRequest(anonymous_id="a" * 256), "anonymous_id"),
        (pb.IdentifyRequest(message_id="m" * 256), "message_id"),
        (pb.IdentifyRequest(pardot=pb.PardotOptions(id="1" * 256)), "pardot.id"),
        (pb.TrackRequest(event="e" * 256), "event"),
        (pb.IdentifyRequest(traits=struct({"notes": "n" * (64 * 1024 + 1)})), "traits.notes"),
        (pb.IdentifyRequest(traits=struct({"tags": ["ok", "é" * 40_000]})), "traits.tags[1]"),
        (pb.IdentifyRequest(context=struct({"page": {"k" * 256: 1}})), "context.page"),
        (pb.TrackRequest(event="e", properties=struct({"p" * 256: 1})), "properties"),
    ],
    ids=[
        "user_id",
        "anonymous_id",
        "message_id",
        "pardot.id",
        "event",
        "trait-value",
        "list-item",
        "nested-key",
        "property-key",
    ],
)
def test_a_string_over_its_limit_is_refused_naming_where_it_is(request_, field: str) -> None:
    convert = event_from_identify if isinstance(request_, pb.IdentifyRequest) else event_from_track
    with pytest.raises(InvalidArgument) as caught:
        convert(request_)
    assert caught.value.field == field
    assert len(caught.value.message) < 600


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (pb.PardotSettings(lookup_field="f" * 101), "settings.lookup_field"),
        (pb.PardotSettings(strategy="s" * 101), "settings.strategy"),
        (pb.PardotSettings(campaign_id="1" * 101), "settings.campaign_id"),
        (pb.PardotSettings(account_id="1" * 101), "settings.account_id"),
        (
            pb.PardotSettings(track_mappings={"e" * 256: pb.TrackMapping()}),
            "settings.track_mappings",
        ),
        (
            pb.PardotSettings(track_mappings={"e": pb.TrackMapping(fields={"p": "f" * 101})}),
            "settings.track_mappings['e'].fields['p']",
        ),
    ],
    ids=["lookup_field", "strategy", "campaign_id", "account_id", "event-key", "mapped-field"],
)
def test_a_setting_over_its_limit_is_refused(settings: pb.PardotSettings, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        settings_from_proto(settings, V3)
    assert caught.value.field == field


def test_an_overlong_connection_name_is_refused_before_it_is_looked_up() -> None:
    with pytest.raises(InvalidArgument) as caught:
        connection_name(pb.PardotSettings(connection="c" * 101))
    assert caught.value.field == "settings.connection"
