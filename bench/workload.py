"""What the benchmark's load consists of: distinct people, the Identify request each
scenario sends, and BatchSync requests built from the generated descriptors — so the
bench drives BatchSync unchanged once the RPC lands, whatever its fields are called.

It never opens a channel and never decides timing (``bench.loadgen`` does), and it
never guesses: when BatchSync's shape cannot be read from the descriptors it says why
instead of sending something else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from prospectsync.v1 import prospect_sync_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["ProspectSync"]

#: The strategies a scenario can exercise, and the settings that select each one
#: (the connections are the bench's server config: ``bench.processes``).
STRATEGY_SETTINGS: dict[str, dict[str, Any]] = {
    # v3: one upsert by email per identify, whoever the person is.
    "EmailV3": {"connection": "v3"},
    # v4 lookup field: read + create when cold, one update by id when warm.
    "LookupFieldV4": {"connection": "default", "lookup_field": "org_id"},
    # v5: one upsertLatestByEmail per identify; v5 has no batch endpoint.
    "EmailV5": {"connection": "v5"},
}

#: grpc's numeric status codes → names ("OK", "RESOURCE_EXHAUSTED", …).
STATUS_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True)
class People:
    """The people one scenario identifies. Request ``n`` is about person ``n`` (a new
    person every request) or, with a ``pool``, person ``n % pool`` — so a warm phase
    replays exactly the people a seeding phase created."""

    tag: str
    pool: int | None = None

    def person(self, n: int) -> int:
        return n if self.pool is None else n % self.pool

    def email(self, n: int) -> str:
        return f"bench-{self.tag}-{self.person(n)}@example.com"


def identify_request(strategy: str, people: People, n: int) -> pb.IdentifyRequest:
    """Request ``n``: a Segment-style identify with a unique message_id (real callers
    send one, so the idempotency path is part of what is measured) and something new to
    write (``comments``: an identical repeat would cost no call at all, "No call for
    nothing", which ``make bench-calls`` measures; this bench measures the writes)."""
    person = people.person(n)
    traits = struct_pb2.Struct()
    traits.update(
        {
            "email": people.email(n),
            "first_name": f"Bench{person}",
            "org_id": f"{people.tag}-org-{person}",
            "comments": f"event {n}",
        }
    )
    return pb.IdentifyRequest(
        message_id=f"{people.tag}-{n}",
        user_id=f"{people.tag}-user-{person}",
        traits=traits,
        settings=pb.PardotSettings(**STRATEGY_SETTINGS[strategy]),
    )


@dataclass(frozen=True)
class BatchShape:
    """Where BatchSync keeps its items and per-item statuses, read from the descriptors."""

    path: str  # "/prospectsync.v1.ProspectSync/BatchSync"
    request_class: type[Message]
    response_class: type[Message]
    items_field: str  # the repeated field of the request
    identify_field: str | None  # the item's IdentifyRequest field; None: items ARE requests
    results_field: str  # the repeated field of the response
    status_field: str | None  # the result's google.rpc.Status; None: results ARE statuses

    def request(self, strategy: str, people: People, first: int, count: int) -> Message:
        """Items ``first`` … ``first + count - 1``, as identify calls."""
        message = self.request_class()
        items = getattr(message, self.items_field)
        for n in range(first, first + count):
            item = items.add()
            target = item if self.identify_field is None else getattr(item, self.identify_field)
            # By bytes, not CopyFrom: the item's class may come from another descriptor
            # pool than prospect_sync_pb2's (it is found by name, not by identity).
            target.MergeFromString(identify_request(strategy, people, n).SerializeToString())
        return message

    def item_codes(self, response: Message, sent: int) -> Counter[str]:
        """One status name per item. Results missing from an answer count as
        ``MISSING_RESULT``: the contract is one result per item, index-aligned."""
        codes: Counter[str] = Counter()
        results = list(getattr(response, self.results_field))
        for result in results[:sent]:
            status = result if self.status_field is None else _set(result, self.status_field)
            codes[STATUS_NAMES.get(status.code, str(status.code)) if status else "OK"] += 1
        if len(results) < sent:
            codes["MISSING_RESULT"] += sent - len(results)
        return codes


def batch_shape(service: ServiceDescriptor = SERVICE) -> BatchShape | str:
    """BatchSync's shape, or why it cannot be driven (the text the table prints)."""
    method = service.methods_by_name.get("BatchSync")
    if method is None:
        return "not built"
    items = _repeated_holding(method.input_type, pb.IdentifyRequest.DESCRIPTOR.full_name)
    results = _repeated_holding(method.output_type, _STATUS)
    if items is None or results is None:
        return "shape not recognised"
    return BatchShape(
        path=f"/{service.full_name}/{method.name}",
        request_class=GetMessageClass(method.input_type),
        response_class=GetMessageClass(method.output_type),
        items_field=items[0],
        identify_field=items[1],
        results_field=results[0],
        status_field=results[1],
    )


_STATUS = "google.rpc.Status"


def _repeated_holding(message: Descriptor, wanted: str) -> tuple[str, str | None] | None:
    """The first repeated message field whose element is the message named ``wanted``,
    or holds one as a field: (field, inner field or None)."""
    for field in message.fields:
        if not _is_repeated_message(field):
            continue
        element = field.message_type
        if element.full_name == wanted:
            return field.name, None
        for inner in element.fields:
            if inner.message_type is not None and inner.message_type.full_name == wanted:
                return field.name, inner.name
    return None


def _is_repeated_message(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:  # older protobuf runtimes
        repeated = field.label == FieldDescriptor.LABEL_REPEATED
    return bool(repeated) and field.message_type is not None


def _set(message: Message, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None
