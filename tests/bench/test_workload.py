"""The bench reads BatchSync's shape from descriptors, so that it drives the RPC the day
it lands; until then nothing real exercises that code. These tests give it plausible
shapes built on the fly (items as a oneof holding IdentifyRequest; results holding a
google.rpc.Status, or being one) and the shapes it must refuse."""

from __future__ import annotations

from collections import Counter

import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    struct_pb2,
    timestamp_pb2,
)
from google.rpc import status_pb2

from bench.figures import median_figures
from bench.stats import percentile
from bench.workload import BatchShape, People, batch_shape, identify_request
from prospectsync.v1 import prospect_sync_pb2 as pb

F = descriptor_pb2.FieldDescriptorProto


def _message(
    name: str, *fields: tuple[str, int, str, int, int | None]
) -> descriptor_pb2.DescriptorProto:
    """fields: (name, number, type name, label, oneof index)."""
    message = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, type_name, label, oneof in fields:
        field = message.field.add(
            name=field_name, number=number, type=F.TYPE_MESSAGE, type_name=type_name, label=label
        )
        if oneof is not None:
            field.oneof_index = oneof
    return message


def _service(
    request: descriptor_pb2.DescriptorProto,
    response: descriptor_pb2.DescriptorProto,
    *extra: descriptor_pb2.DescriptorProto,
    method: str = "BatchSync",
):
    """A ProspectSync service in package ``benchtest`` whose ``method`` takes ``request``."""
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, struct_pb2, timestamp_pb2, status_pb2, pb):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="benchtest/batch.proto",
        package="benchtest",
        syntax="proto3",
        dependency=["prospectsync/v1/prospect_sync.proto", "google/rpc/status.proto"],
    )
    file.message_type.extend([*extra, request, response])
    service = file.service.add(name="ProspectSync")
    service.method.add(
        name=method,
        input_type=f".benchtest.{request.name}",
        output_type=f".benchtest.{response.name}",
    )
    pool.Add(file)
    return pool.FindServiceByName("benchtest.ProspectSync")


REPEATED, OPTIONAL = F.LABEL_REPEATED, F.LABEL_OPTIONAL


def oneof_shape():
    item = _message(
        "BatchItem",
        ("identify", 1, ".prospectsync.v1.IdentifyRequest", OPTIONAL, 0),
        ("track", 2, ".prospectsync.v1.TrackRequest", OPTIONAL, 0),
    )
    item.oneof_decl.add(name="item")
    result = _message(
        "BatchResult",
        ("identify", 1, ".prospectsync.v1.IdentifyResponse", OPTIONAL, 0),
        ("error", 2, ".google.rpc.Status", OPTIONAL, 0),
    )
    result.oneof_decl.add(name="result")
    request = _message("BatchSyncRequest", ("items", 1, ".benchtest.BatchItem", REPEATED, None))
    response = _message(
        "BatchSyncResponse", ("results", 1, ".benchtest.BatchResult", REPEATED, None)
    )
    return _service(request, response, item, result)


def test_a_oneof_item_shape_is_read_and_driven() -> None:
    shape = batch_shape(oneof_shape())
    assert isinstance(shape, BatchShape)
    assert (shape.path, shape.items_field, shape.identify_field) == (
        "/benchtest.ProspectSync/BatchSync",
        "items",
        "identify",
    )
    assert (shape.results_field, shape.status_field) == ("results", "error")

    request = shape.request("EmailV3", People("t"), first=10, count=3)
    sent = [item.identify for item in request.items]
    assert [r.traits["email"] for r in sent] == [f"bench-t-{n}@example.com" for n in (10, 11, 12)]
    expected = identify_request("EmailV3", People("t"), 10).SerializeToString(deterministic=True)
    assert sent[0].SerializeToString(deterministic=True) == expected

    response = shape.response_class()
    response.results.add().identify.prospect_id = "1"
    response.results.add().error.code = 3  # INVALID_ARGUMENT
    assert shape.item_codes(response, sent=3) == Counter(OK=1, INVALID_ARGUMENT=1, MISSING_RESULT=1)


def test_results_that_are_statuses_are_read() -> None:
    request = _message(
        "BatchSyncRequest", ("items", 1, ".prospectsync.v1.IdentifyRequest", REPEATED, None)
    )
    response = _message("BatchSyncResponse", ("statuses", 1, ".google.rpc.Status", REPEATED, None))
    shape = batch_shape(_service(request, response))
    assert isinstance(shape, BatchShape)
    assert (shape.identify_field, shape.results_field, shape.status_field) == (
        None,
        "statuses",
        None,
    )
    answer = shape.response_class()
    answer.statuses.add().code = 0
    answer.statuses.add().code = 8  # RESOURCE_EXHAUSTED
    assert shape.item_codes(answer, sent=2) == Counter(OK=1, RESOURCE_EXHAUSTED=1)


def test_the_contracts_batchsync_is_one_the_bench_can_drive() -> None:
    if "BatchSync" not in pb.DESCRIPTOR.services_by_name["ProspectSync"].methods_by_name:
        pytest.skip("the contract has no BatchSync yet")
    shape = batch_shape()
    assert isinstance(shape, BatchShape), shape
    request = shape.request("EmailV3", People("c"), first=0, count=2)
    assert request.ByteSize() > 0
    assert shape.item_codes(shape.response_class(), sent=2) == Counter(MISSING_RESULT=2)


def test_a_shape_without_identify_items_is_refused() -> None:
    request = _message(
        "BatchSyncRequest", ("tracks", 1, ".prospectsync.v1.TrackRequest", REPEATED, None)
    )
    response = _message("BatchSyncResponse", ("statuses", 1, ".google.rpc.Status", REPEATED, None))
    assert batch_shape(_service(request, response)) == "shape not recognised"


def test_a_service_without_batchsync_is_not_built() -> None:
    request = _message(
        "ReplayRequest", ("items", 1, ".prospectsync.v1.IdentifyRequest", REPEATED, None)
    )
    response = _message("ReplayResponse", ("statuses", 1, ".google.rpc.Status", REPEATED, None))
    assert batch_shape(_service(request, response, method="Replay")) == "not built"


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([], 0.5, None), ([5.0], 0.99, 5.0), ([1, 2, 3, 4], 0.5, 2), ([*range(1, 101)], 0.99, 99)],
)
def test_percentile_is_an_observed_value(values, fraction, expected) -> None:
    assert percentile(values, fraction) == expected


def test_medians_keep_the_worst_run_and_every_status_seen() -> None:
    runs = [
        {"rows": {"r": {"events_per_s": 10.0, "errors": 0, "error_codes": {}, "steady": True}}},
        {
            "rows": {
                "r": {
                    "events_per_s": 30.0,
                    "errors": 4,
                    "error_codes": {"UNAVAILABLE": 4},
                    "steady": False,
                }
            }
        },
        {"rows": {"r": {"events_per_s": 20.0, "errors": 0, "error_codes": {}, "steady": True}}},
    ]
    row = median_figures(runs)["rows"]["r"]
    assert row["events_per_s"] == 20.0
    assert (row["errors"], row["errors_max"]) == (0, 4)
    assert row["error_codes"] == {"UNAVAILABLE": 0}  # the median; the name is kept
    assert row["steady"] is False
