"""The codec converts the core's value types to raftpb and back without losing anything."""

from __future__ import annotations

import enum

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from controlplane.raft.types import (
    EMPTY_SNAPSHOT,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from controlplane.raftnode import codec
from controlplane.raftnode.errors import CodecError
from controlplane.raftpb import raft_pb2 as pb

BIG = (1 << 64) - 1  # the largest uint64
SNAP = Snapshot(
    data=b"state\x00machine",
    metadata=SnapshotMetadata(
        conf_state=ConfState(voters=(1, 2, 3), learners=(4,)), index=7, term=3
    ),
)


@pytest.mark.parametrize(
    ("core", "wire"),
    [(EntryType, pb.EntryType), (MessageType, pb.MessageType)],
    ids=["EntryType", "MessageType"],
)
def test_enums_match_the_core(core: type[enum.IntEnum], wire: EnumTypeWrapper) -> None:
    """raft.proto's enums have exactly the core's names and numbers, so conversion is by value."""
    assert dict(wire.items()) == {m.name: m.value for m in core}


@pytest.mark.parametrize(
    "entry",
    [
        Entry(term=0, index=0),
        Entry(term=1, index=1, data=b"put a=1"),
        Entry(term=5, index=9, type=EntryType.CONF_CHANGE, data=b"\x00\x01"),
        Entry(term=BIG, index=BIG, data=bytes(range(256))),
    ],
    ids=["empty", "normal", "conf-change", "max-uint64"],
)
def test_entry_round_trip(entry: Entry) -> None:
    """An entry decodes to an equal entry."""
    assert codec.entry_from_pb(codec.entry_to_pb(entry)) == entry
    assert codec.decode_entry(codec.encode_entry(entry)) == entry


@pytest.mark.parametrize(
    "hs",
    [HardState(), HardState(term=3, vote=2, commit=10), HardState(term=BIG, vote=BIG, commit=BIG)],
    ids=["empty", "typical", "max-uint64"],
)
def test_hard_state_round_trip(hs: HardState) -> None:
    """A hard state decodes to an equal hard state."""
    assert codec.decode_hard_state(codec.encode_hard_state(hs)) == hs


@pytest.mark.parametrize(
    "snap",
    [
        EMPTY_SNAPSHOT,
        SNAP,
        Snapshot(metadata=SnapshotMetadata(index=1, term=1)),
        Snapshot(data=b"x" * 100_000, metadata=SnapshotMetadata(ConfState(voters=(1,)), 9, 9)),
    ],
    ids=["empty", "full", "no-data-no-voters", "large"],
)
def test_snapshot_round_trip(snap: Snapshot) -> None:
    """A snapshot, with its metadata and conf state, decodes to an equal snapshot."""
    assert codec.decode_snapshot(codec.encode_snapshot(snap)) == snap


MESSAGES = {
    "all-defaults": Message(type=MessageType.HUP),
    "app": Message(
        type=MessageType.APP,
        to=2,
        frm=1,
        term=4,
        log_term=3,
        index=10,
        entries=(Entry(term=3, index=11, data=b"a"), Entry(term=4, index=12)),
        commit=9,
    ),
    "app-resp-reject": Message(
        type=MessageType.APP_RESP, to=1, frm=2, term=4, index=10, reject=True, reject_hint=7
    ),
    "snap": Message(type=MessageType.SNAP, to=3, frm=1, term=4, snapshot=SNAP),
    "empty-snapshot-is-not-none": Message(type=MessageType.SNAP, snapshot=EMPTY_SNAPSHOT),
    "read-index-context": Message(
        type=MessageType.READ_INDEX_RESP, to=2, frm=1, term=2, index=5, context=b"req-17"
    ),
    "pre-vote-max": Message(
        type=MessageType.PRE_VOTE, to=BIG, frm=BIG, term=BIG, log_term=BIG, index=BIG
    ),
}
MESSAGES.update({f"type-{t.short}": Message(type=t, to=1, frm=2, term=3) for t in MessageType})


@pytest.mark.parametrize("msg", MESSAGES.values(), ids=MESSAGES.keys())
def test_message_round_trip(msg: Message) -> None:
    """A message decodes to an equal message, including `snapshot=None` versus an empty one."""
    assert codec.message_from_pb(codec.message_to_pb(msg)) == msg
    assert codec.decode_message(codec.encode_message(msg)) == msg


@pytest.mark.parametrize(
    ("decode", "data", "match"),
    [
        (codec.decode_entry, pb.Entry(index=3, type=7).SerializeToString(), "unknown entry type 7"),  # type: ignore[arg-type]
        (codec.decode_message, pb.Message(type=99).SerializeToString(), "unknown message type 99"),  # type: ignore[arg-type]
        (
            codec.decode_message,
            pb.Message(entries=[pb.Entry(type=5)]).SerializeToString(),  # type: ignore[arg-type]
            "unknown entry type 5",
        ),
        (codec.decode_hard_state, b"\xff\xff\xff", "cannot decode HardState"),
        (codec.decode_snapshot, b"\x0a\x05ab", "cannot decode Snapshot"),
    ],
    ids=["entry-type", "message-type", "nested-entry-type", "garbage", "truncated"],
)
def test_decode_rejects_what_the_core_cannot_represent(
    decode: object, data: bytes, match: str
) -> None:
    """Unknown enum values and undecodable bytes raise CodecError, never a protobuf error."""
    assert callable(decode)
    with pytest.raises(CodecError, match=match):
        decode(data)
