"""Which BatchSync items must wait for which: items about one person apply in request
order, everything else runs at once.

A replay holds a person's history (an identify, a track, an identify that changes a
trait); run concurrently, its calls would reach Pardot in any order and the last one
to land would win, not the last one sent. Which prospect an item resolves to is only
known inside its strategy, so this module reads what in a request can name a person —
on the same connection: ``pardot.id``, ``pardot.fid``, ``user_id``, ``anonymous_id``,
an email, the value of ``settings.lookup_field`` — and makes an item wait for the
latest earlier item sharing any of them. Over-approximating costs only concurrency;
missing a link would reorder a person's events.

It reads requests and never validates, converts or rejects one: an item it cannot read
a hint from simply waits for nobody, and its own path reports what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf import struct_pb2

from prospectsync.v1 import prospect_sync_pb2 as pb
from server.convert import connection_name

#: (connection, what the value is, the value).
PersonHint = tuple[str, str, str]


def run_after(items: Sequence[pb.BatchSyncItem]) -> list[tuple[int, ...]]:
    """For each item, the indexes of the earlier items it waits for: the latest earlier
    item sharing each of its hints (that one waits for the one before, and so on)."""
    latest: dict[PersonHint, int] = {}
    waits: list[tuple[int, ...]] = []
    for index, item in enumerate(items):
        hints = person_hints(item)
        waits.append(tuple(sorted({latest[hint] for hint in hints if hint in latest})))
        latest.update(dict.fromkeys(hints, index))
    return waits


def person_hints(item: pb.BatchSyncItem) -> set[PersonHint]:
    kind = item.WhichOneof("call")
    if kind == "identify":
        request: pb.IdentifyRequest | pb.TrackRequest = item.identify
        traits: Iterable[struct_pb2.Struct] = (item.identify.traits,)
    elif kind == "track":
        request = item.track
        # Where a track call's identity is read (strategies.track.identity_event).
        traits = (_struct(item.track.context, "traits"), item.track.properties)
    else:
        return set()
    values = [
        ("pardot.id", request.pardot.id),
        ("pardot.fid", request.pardot.fid),
        ("user_id", request.user_id),
        ("anonymous_id", request.anonymous_id),
    ]
    lookup_field = request.settings.lookup_field
    for struct in traits:
        values.append(("email", _text(struct, "email").lower()))
        if lookup_field:
            values.append((f"lookup:{lookup_field}", _text(struct, lookup_field)))
    connection = connection_name(request.settings)
    return {(connection, name, value.strip()) for name, value in values if value.strip()}


def _struct(struct: struct_pb2.Struct, key: str) -> struct_pb2.Struct:
    value = struct.fields.get(key)
    if value is None or value.WhichOneof("kind") != "struct_value":
        return struct_pb2.Struct()
    return value.struct_value


def _text(struct: struct_pb2.Struct, key: str) -> str:
    """A scalar as the text it would be sent as; "" for anything else."""
    value = struct.fields.get(key)
    if value is None:
        return ""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    return ""
