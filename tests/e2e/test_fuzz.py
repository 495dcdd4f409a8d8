"""Issue 4, hostile input: generated requests thrown at the live server (fakepardot
behind it). Every answer is OK, INVALID_ARGUMENT, FAILED_PRECONDITION or NOT_FOUND —
never INTERNAL or UNKNOWN — every failure carries our ErrorInfo, and the server keeps
serving.

Hypothesis drives a blocking stub from a worker thread while the server runs on the
test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from support.service import Service

ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
}
EXAMPLES = 150


def _either(known: list[Any], generated: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values the service knows (so the deep paths run), sometimes anything."""
    return st.one_of(st.sampled_from(known), st.sampled_from(known), generated)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(),  # NaN and Infinity too: not JSON, so INVALID_ARGUMENT
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
trait_names = _either(
    ["email", "first_name", "name", "company", "address", "org_id", "external_id", "id", "score"],
    st.text(max_size=20),
)
emails = _either(["ann@example.com", "bo+x@example.com", ""], st.emails() | st.text(max_size=30))
traits = st.builds(
    lambda email, rest: {**rest, **({"email": email} if email is not None else {})},
    st.none() | emails,
    st.dictionaries(trait_names, json_values, max_size=5),
)
ids = _either(["", "1", "42", "0", "-1", "1" * 25], st.text(max_size=20))
fids = _either(["", "00Q000000000001AAA", "003390000033ZUR"], st.text(max_size=20))
track_mappings = st.dictionaries(
    _either(["Signed Up", "Order Completed"], st.text(max_size=12)),
    st.builds(
        pb.TrackMapping,
        fields=st.dictionaries(
            _either(["plan", "value"], st.text(max_size=8)),
            _either(["plan", "org_id", "first_name"], st.text(max_size=8)),
            max_size=2,
        ),
        add_to_list_ids=st.lists(_either([501, 502], st.integers(-(2**63), 2**63 - 1)), max_size=2),
    ),
    max_size=2,
)
random_settings = st.builds(
    pb.PardotSettings,
    connection=_either(["", "default", "v3", "legacy", "nope"], st.text(max_size=12)),
    api_version=_either([0, 3, 4], st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    lookup_field=_either(["", "org_id", "external_id", "email", "id"], st.text(max_size=12)),
    use_user_id_as_lookup_value=st.booleans(),
    campaign_id=_either(["", "1001", "x"], st.text(max_size=8)),
    strategy=_either(["", "EmailV3", "IdFidV4", "LookupFieldV4", "CreateV4"], st.text(max_size=12)),
    dry_run=st.booleans(),
    create_when_unmatched=st.booleans(),
    track_mappings=track_mappings,
)
#: Settings that a strategy can serve, so that generated traits reach Pardot too.
servable_settings = st.builds(
    lambda base, mappings, dry_run: pb.PardotSettings(
        **base, track_mappings=mappings, dry_run=dry_run
    ),
    st.sampled_from(
        [
            {"connection": "v3"},
            {"connection": "legacy"},
            {"lookup_field": "org_id"},
            {"lookup_field": "org_id", "use_user_id_as_lookup_value": True},
            {"create_when_unmatched": True},
        ]
    ),
    track_mappings,
    st.booleans(),
)
servable_traits = st.builds(
    lambda email, org_id, rest: {**rest, "email": email, "org_id": org_id},
    st.emails(),
    st.text(min_size=1, max_size=12),
    st.dictionaries(
        _either(["first_name", "plan", "company"], st.text(max_size=8)), scalars, max_size=4
    ),
)
common = {
    "message_id": _either(["", "m-1", "m-2"], st.text(max_size=40)),
    "user_id": _either(["", "u-1"], st.text(max_size=20)),
    "anonymous_id": st.text(max_size=20),
    "pardot": st.builds(pb.PardotOptions, id=ids, fid=fids),
    "settings": random_settings | servable_settings,
}


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


any_traits = traits | servable_traits
identify_requests = st.builds(
    lambda t, **kw: pb.IdentifyRequest(traits=_struct(t), **kw), any_traits, **common
)
track_requests = st.builds(
    lambda t, props, **kw: pb.TrackRequest(
        context=_struct({"traits": t}), properties=_struct(props), **kw
    ),
    any_traits,
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    event=_either(["Signed Up", "Order Completed", ""], st.text(max_size=12)),
    **common,
)


def answer_of(call: Callable[..., Any], request: Any) -> grpc.StatusCode:
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        code = error.code()
        assert code in ANSWERS, f"{code.name}: {error.details()} for {request}"
        status = rpc_status.from_call(error)
        info = error_details_pb2.ErrorInfo()
        assert status is not None and any(d.Unpack(info) for d in status.details), request
        assert info.domain == "prospectsync.pardot" and info.reason
        return code
    return grpc.StatusCode.OK


def fuzz(target: str) -> set[tuple[str, grpc.StatusCode]]:
    """(request type, answer) pairs seen."""
    seen: set[tuple[str, grpc.StatusCode]] = set()
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.ProspectSyncStub(channel)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.one_of(identify_requests, track_requests))
        def one_request(request: pb.IdentifyRequest | pb.TrackRequest) -> None:
            call = stub.Identify if isinstance(request, pb.IdentifyRequest) else stub.Track
            seen.add((type(request).__name__, answer_of(call, request)))

        one_request()
    return seen


async def test_generated_requests_get_only_expected_answers(service: Service) -> None:
    target = f"127.0.0.1:{service.port}"
    seen = await asyncio.wait_for(asyncio.to_thread(fuzz, target), 120)
    # The generator reached both sides of both RPCs: some calls served, some refused.
    for kind in ("IdentifyRequest", "TrackRequest"):
        assert {(kind, grpc.StatusCode.OK), (kind, grpc.StatusCode.INVALID_ARGUMENT)} <= seen
    health = health_pb2_grpc.HealthStub(service.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
