"""Protobuf ↔ plain model values, at the edge of the server.

Strategies and the Pardot client work on ``strategies.core.model`` values and never see
generated code; this module is the only translation. It never decides anything about
Pardot (no defaults beyond the connection's), and it checks what the proto's types cannot
say, before anything else sees the request: every string's length (the limits of
``strategies.validation``, listed in the proto's comments; issue 12, item 6) — so an
oversized ``user_id`` or event name is refused before it is logged, locked on, stored or
sent — NaN and Infinity in a Struct, and a Timestamp outside protobuf's range (year 1 to
9999, nanos 0 to 999,999,999: INVALID_ARGUMENT naming the field, not a crash; item 14).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2

from clients.config import ConnectionConfig
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.snippet import Snippet
from strategies.core.errors import InvalidArgument, quoted
from strategies.core.model import (
    CallRecord,
    Event,
    Outcome,
    Settings,
    SyncMode,
    SyncResult,
    TrackAction,
    TrackMapping,
    TrackResult,
)
from strategies.validation import (
    MAX_EVENT_NAME_LENGTH,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VALUE_BYTES,
    check_length,
    check_message_id,
)

DEFAULT_CONNECTION = "default"

#: Doubles above this are not exact integers, so they stay floats.
_MAX_EXACT_INT = 2**53
#: A string of more characters than this may be over MAX_VALUE_BYTES in UTF-8 (4 bytes a
#: character at most): only those are encoded to be measured.
_MAX_SAFE_CHARS = MAX_VALUE_BYTES // 4
#: protobuf's Timestamp range (timestamp.proto): 0001-01-01T00:00:00Z to
#: 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)
_TIMESTAMP_NANOS = range(1_000_000_000)

_API_VERSIONS = {pb.API_VERSION_3: 3, pb.API_VERSION_4: 4, pb.API_VERSION_5: 5}

#: Our outcomes → the proto's, by name, so that the two enums can never drift apart
#: silently: a name missing from the proto fails at import.
_OUTCOMES = {outcome: pb.Outcome.Value(f"OUTCOME_{outcome.name}") for outcome in Outcome}


def event_from_identify(request: pb.IdentifyRequest) -> Event:
    _check_identifiers(request)
    return Event(
        kind="identify",
        message_id=request.message_id,
        user_id=request.user_id,
        anonymous_id=request.anonymous_id,
        traits=_struct(request, "traits"),
        context=_struct(request, "context"),
        pardot_id=request.pardot.id,
        pardot_fid=request.pardot.fid,
        timestamp=_timestamp(request),
    )


def event_from_track(request: pb.TrackRequest) -> Event:
    """A track call identifies its person by ``context.traits`` (Segment's convention)."""
    _check_identifiers(request)
    check_length(request.event, "event", MAX_EVENT_NAME_LENGTH)
    context = _struct(request, "context")
    traits = context.get("traits")
    return Event(
        kind="track",
        message_id=request.message_id,
        user_id=request.user_id,
        anonymous_id=request.anonymous_id,
        traits=traits if isinstance(traits, dict) else {},
        context=context,
        pardot_id=request.pardot.id,
        pardot_fid=request.pardot.fid,
        name=request.event,
        properties=_struct(request, "properties"),
        timestamp=_timestamp(request),
    )


def connection_name(settings: pb.PardotSettings) -> str:
    """The configured connection a request asks for; "" means "default"."""
    return check_length(settings.connection, "settings.connection", MAX_NAME_LENGTH) or (
        DEFAULT_CONNECTION
    )


def _check_identifiers(request: pb.IdentifyRequest | pb.TrackRequest) -> None:
    """The identifiers' lengths, before any of them is logged, locked on or stored."""
    check_message_id(request.message_id)
    check_length(request.user_id, "user_id", MAX_ID_LENGTH)
    check_length(request.anonymous_id, "anonymous_id", MAX_ID_LENGTH)
    check_length(request.pardot.id, "pardot.id", MAX_ID_LENGTH)
    check_length(request.pardot.fid, "pardot.fid", MAX_ID_LENGTH)


def settings_from_proto(settings: pb.PardotSettings, connection: ConnectionConfig) -> Settings:
    """The request's settings with the connection's defaults filled in."""
    if settings.api_version == pb.API_VERSION_UNSPECIFIED:
        api_version = connection.api_version
    elif settings.api_version in _API_VERSIONS:
        api_version = _API_VERSIONS[settings.api_version]
    else:
        raise InvalidArgument(
            "settings.api_version",
            f"has an unknown value ({settings.api_version}): use API_VERSION_3, API_VERSION_4, "
            f"API_VERSION_5, or leave it unspecified for connection {connection.name!r}'s "
            f"API v{connection.api_version}",
        )
    _check_settings(settings)
    return Settings(
        connection=connection.name,
        api_version=api_version,
        lookup_field=settings.lookup_field,
        use_user_id_as_lookup_value=settings.use_user_id_as_lookup_value,
        campaign_id=settings.campaign_id,
        strategy=settings.strategy,
        dry_run=settings.dry_run,
        create_when_unmatched=settings.create_when_unmatched,
        account_id=settings.account_id,
        track_mappings={
            name: _track_mapping(mapping) for name, mapping in settings.track_mappings.items()
        },
        # proto3 ``optional``: unset means true (Segment's default), false only if sent.
        secondary_deleted_search=(
            settings.secondary_deleted_search
            if settings.HasField("secondary_deleted_search")
            else True
        ),
        sync_mode=_sync_mode(settings.sync_mode),
        list_ids_add=tuple(settings.list_ids_add),
        list_ids_remove=tuple(settings.list_ids_remove),
        skip_unchanged=settings.skip_unchanged if settings.HasField("skip_unchanged") else True,
        normalize_email=(
            settings.normalize_email if settings.HasField("normalize_email") else True
        ),
        normalize_email_local_part=settings.normalize_email_local_part,
        allow_resubscribe=connection.allow_resubscribe,
    )


def _sync_mode(value: pb.SyncMode.ValueType) -> SyncMode:
    """``settings.sync_mode``: UNSPECIFIED is UPSERT; a number this build does not
    know is refused rather than taken for the default."""
    if value == pb.SYNC_MODE_UNSPECIFIED:
        return SyncMode.UPSERT
    try:
        return SyncMode[pb.SyncMode.Name(value).removeprefix("SYNC_MODE_")]
    except (ValueError, KeyError):
        raise InvalidArgument(
            "settings.sync_mode",
            f"has an unknown value ({value}): use SYNC_MODE_UPSERT, SYNC_MODE_UPDATE_ONLY "
            "or SYNC_MODE_CREATE_ONLY",
        ) from None


def _check_settings(settings: pb.PardotSettings) -> None:
    """The lengths of the settings' strings (``connection``: :func:`connection_name`)."""
    for name in ("lookup_field", "campaign_id", "strategy", "account_id"):
        check_length(getattr(settings, name), f"settings.{name}", MAX_NAME_LENGTH)
    for event, mapping in settings.track_mappings.items():
        if len(event) > MAX_EVENT_NAME_LENGTH:
            raise InvalidArgument(
                "settings.track_mappings",
                f"has an event named {quoted(event)}: event names are at most "
                f"{MAX_EVENT_NAME_LENGTH} characters",
            )
        where = f"settings.track_mappings[{quoted(event)}]"
        for prop, pardot_field in mapping.fields.items():
            if len(prop) > MAX_KEY_LENGTH:
                raise InvalidArgument(
                    f"{where}.fields",
                    f"maps a property named {quoted(prop)}: property paths are at most "
                    f"{MAX_KEY_LENGTH} characters",
                )
            check_length(pardot_field, f"{where}.fields[{quoted(prop)}]", MAX_NAME_LENGTH)
        if mapping.HasField("external_activity"):
            for part in ("extension", "type"):
                value = getattr(mapping.external_activity, part)
                check_length(value, f"{where}.external_activity.{part}", MAX_NAME_LENGTH)


def identify_response(
    result: SyncResult,
    strategy_name: str,
    calls: Iterable[CallRecord],
    actions: Iterable[TrackAction] = (),
) -> pb.IdentifyResponse:
    """``actions``: what settings.list_ids_add / list_ids_remove did."""
    return pb.IdentifyResponse(
        **_resolved(result, strategy_name, calls),
        actions=[track_action(action) for action in actions],
    )


def track_response(
    result: TrackResult, strategy_name: str, calls: Iterable[CallRecord]
) -> pb.TrackResponse:
    """What Identify would have said about the prospect, plus the event's actions."""
    return pb.TrackResponse(
        **_resolved(result.sync, strategy_name, calls),
        actions=[track_action(action) for action in result.actions],
    )


def skipped_track_response(warning: str) -> pb.TrackResponse:
    """An event with no mapping: nothing was sent, and the response says why."""
    return pb.TrackResponse(outcome=outcome_to_proto(Outcome.SKIPPED), warnings=[warning])


def track_action(action: TrackAction) -> pb.TrackAction:
    message = pb.TrackAction(
        kind=pb.TrackActionKind.Value(f"TRACK_ACTION_KIND_{action.kind.name}"),
        status=pb.TrackActionStatus.Value(f"TRACK_ACTION_STATUS_{action.status.name}"),
        fields=list(action.fields),
        list_id=action.list_id,
    )
    if action.external_activity is not None:
        extension, activity_type = action.external_activity
        message.external_activity.CopyFrom(
            pb.ExternalActivity(extension=extension, type=activity_type)
        )
    return message


def snippet_response(snippet: Snippet) -> pb.GetTrackingSnippetResponse:
    return pb.GetTrackingSnippetResponse(
        html=snippet.html,
        account_id=snippet.account_id,
        campaign_id=snippet.campaign_id,
        campaign_source=pb.CampaignSource.Value(f"CAMPAIGN_SOURCE_{snippet.campaign_source.name}"),
        tracker_campaign_id=snippet.tracker_campaign_id,
        links_visitor_email=snippet.links_visitor_email,
        warnings=list(snippet.warnings),
    )


def _resolved(
    result: SyncResult, strategy_name: str, calls: Iterable[CallRecord]
) -> dict[str, Any]:
    """The fields IdentifyResponse and TrackResponse share (same names and meaning)."""
    prospect_id = result.prospect.id
    return {
        "prospect_id": "" if prospect_id is None else str(prospect_id),
        "outcome": outcome_to_proto(result.outcome),
        "strategy": strategy_name,
        "pardot_calls": [pardot_call(call) for call in calls],
        "warnings": list(result.warnings),
        "suppressed": [
            pb.Suppression(field=s.field, list_id=s.list_id, reason=s.reason)
            for s in result.suppressed
        ],
    }


def outcome_to_proto(outcome: Outcome) -> pb.Outcome.ValueType:
    return _OUTCOMES[outcome]


def pardot_call(call: CallRecord) -> pb.PardotCall:
    message = pb.PardotCall(
        method=call.method,
        path=call.path,
        http_status=call.http_status,
        err_code=call.err_code,
        planned=call.planned,
        attempt=call.attempt,
        batch_size=call.batch_size,
    )
    message.duration.FromNanoseconds(round(max(call.duration_s, 0.0) * 1e9))
    return message


class OversizedEntry(ValueError):
    """A Struct entry over its limit: ``path`` leads to it from the Struct (filled in on
    the way out, so the walk of a good Struct pays nothing for it), ``description``
    completes "<field> …"."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description
        self.path: list[str] = []


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values. A Struct only has doubles, so whole numbers are
    turned back into ints: ``{"employees": 50}`` must reach Pardot as "50", not "50.0".
    NaN and Infinity are a ValueError, as json_format.MessageToDict makes them (no JSON
    holds them); a name over ``MAX_KEY_LENGTH`` characters or a string over
    ``MAX_VALUE_BYTES`` (UTF-8) is an :class:`OversizedEntry`, at any depth.

    Walked here rather than through ``json_format.MessageToDict`` and a second pass for
    the ints: that generic printer was most of an Identify's conversion cost, and these
    five value kinds are all a Struct can hold.
    """
    fields = struct.fields
    plain: dict[str, Any] = {}
    for key in fields:  # .items() is the slow Mapping mixin
        if len(key) > MAX_KEY_LENGTH:
            raise OversizedEntry(
                f"has an entry named {quoted(key)}: names are at most {MAX_KEY_LENGTH} characters"
            )
        try:
            plain[key] = _plain(fields[key])
        except OversizedEntry as oversized:
            oversized.path.insert(0, key)
            raise
    return plain


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        if len(text) > _MAX_SAFE_CHARS and len(text.encode()) > MAX_VALUE_BYTES:
            raise OversizedEntry(f"is longer than {MAX_VALUE_BYTES} bytes (UTF-8)")
        return text
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError(f"{number} is not a JSON number")
        return int(number) if number.is_integer() and abs(number) <= _MAX_EXACT_INT else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        items = []
        for index, item in enumerate(value.list_value.values):
            try:
                items.append(_plain(item))
            except OversizedEntry as oversized:
                oversized.path.insert(0, f"[{index}]")
                raise
        return items
    return None  # null_value, or a Value with no kind set (JSON null, as json_format says)


def _struct(message: Any, name: str) -> dict[str, Any]:
    if not message.HasField(name):
        return {}
    try:
        return struct_to_dict(getattr(message, name))
    except OversizedEntry as oversized:
        raise InvalidArgument(_entry_path(name, oversized.path), oversized.description) from None
    except ValueError:
        # NaN and Infinity: no JSON (nor Pardot field) holds them.
        raise InvalidArgument(
            name, "holds a number that is NaN or Infinity; send a finite number or a string"
        ) from None


def _entry_path(name: str, path: list[str]) -> str:
    """``context`` + ["page", "url"] → ``context.page.url``; list indexes as ``tags[2]``."""
    return name + "".join(part if part.startswith("[") else f".{part}" for part in path)


def _timestamp(request: pb.IdentifyRequest | pb.TrackRequest) -> datetime | None:
    """The event's time; out of protobuf's range (which Python's datetime cannot hold
    either: a client in another language can send one) is INVALID_ARGUMENT."""
    if not request.HasField("timestamp"):
        return None
    when = request.timestamp
    if when.seconds not in _TIMESTAMP_SECONDS or when.nanos not in _TIMESTAMP_NANOS:
        raise InvalidArgument(
            "timestamp",
            f"is out of range (seconds {when.seconds}, nanos {when.nanos}): a Timestamp runs "
            "from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, nanos from 0 to "
            "999,999,999",
        )
    return when.ToDatetime(tzinfo=UTC)


def _track_mapping(mapping: pb.TrackMapping) -> TrackMapping:
    activity = mapping.external_activity
    return TrackMapping(
        fields=dict(mapping.fields),
        add_to_list_ids=tuple(mapping.add_to_list_ids),
        external_activity=(
            (activity.extension, activity.type) if mapping.HasField("external_activity") else None
        ),
        remove_from_list_ids=tuple(mapping.remove_from_list_ids),
    )
