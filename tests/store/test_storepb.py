"""storepb keeps etcd's shapes and field numbers (the public gRPC API serves these messages,
so a renumbering would break every client built against an earlier version)."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from controlplane.storepb import store_pb2 as pb

# (message, field, number) as in etcd's mvccpb/kv.proto and etcdserverpb/rpc.proto
ETCD_NUMBERS: list[tuple[type[Message], str, int]] = [
    (pb.KeyValue, "key", 1),
    (pb.KeyValue, "create_revision", 2),
    (pb.KeyValue, "mod_revision", 3),
    (pb.KeyValue, "version", 4),
    (pb.KeyValue, "value", 5),
    (pb.Event, "type", 1),
    (pb.Event, "kv", 2),
    (pb.Event, "prev_kv", 3),
    (pb.ResponseHeader, "revision", 3),
    (pb.RangeRequest, "limit", 3),
    (pb.RangeRequest, "revision", 4),
    (pb.RangeRequest, "serializable", 7),
    (pb.RangeRequest, "keys_only", 8),
    (pb.RangeRequest, "count_only", 9),
    (pb.RangeResponse, "kvs", 2),
    (pb.RangeResponse, "more", 3),
    (pb.RangeResponse, "count", 4),
    (pb.PutRequest, "prev_kv", 4),
    (pb.PutResponse, "prev_kv", 2),
    (pb.DeleteRangeRequest, "prev_kv", 3),
    (pb.DeleteRangeResponse, "deleted", 2),
    (pb.DeleteRangeResponse, "prev_kvs", 3),
    (pb.Compare, "result", 1),
    (pb.Compare, "target", 2),
    (pb.Compare, "key", 3),
    (pb.Compare, "mod_revision", 6),
    (pb.Compare, "value", 7),
    (pb.Compare, "range_end", 64),
    (pb.RequestOp, "request_txn", 4),
    (pb.ResponseOp, "response_txn", 4),
    (pb.TxnRequest, "failure", 3),
    (pb.TxnResponse, "responses", 3),
    (pb.CompactionRequest, "physical", 2),
]


@pytest.mark.parametrize(
    ("message", "field", "number"),
    ETCD_NUMBERS,
    ids=[f"{m.DESCRIPTOR.name}.{f}" for m, f, _ in ETCD_NUMBERS],
)
def test_field_numbers_match_etcd(message: type[Message], field: str, number: int) -> None:
    """Each field keeps etcd's number."""
    assert message.DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (pb.Compare.CompareResult, {"EQUAL": 0, "GREATER": 1, "LESS": 2, "NOT_EQUAL": 3}),
        (pb.Compare.CompareTarget, {"VERSION": 0, "CREATE": 1, "MOD": 2, "VALUE": 3}),
        (pb.Event.EventType, {"PUT": 0, "DELETE": 1}),
    ],
    ids=["compare-result", "compare-target", "event-type"],
)
def test_enum_values_match_etcd(enum: object, values: dict[str, int]) -> None:
    """Enum values are etcd's (LEASE, unsupported, is absent)."""
    assert dict(enum.items()) == values  # type: ignore[attr-defined]


def test_request_and_response_ops_correspond() -> None:
    """Request and Response have the same op cases, so a result names what it answers."""
    ops = [f.name for f in pb.Request.DESCRIPTOR.oneofs_by_name["op"].fields]
    assert ops == [f.name for f in pb.Response.DESCRIPTOR.oneofs_by_name["op"].fields]
    assert ops == ["put", "delete_range", "txn", "compaction"]
