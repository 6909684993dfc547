"""Conversion between the Raft core's value types and their protobuf encodings (`raftpb`).

The core (`controlplane.raft`) is protobuf-free, as STYLE.md asks; the transport and the WAL
convert at the edge with these functions. Each type has a `*_to_pb`/`*_from_pb` pair, and the
types that travel alone as bytes (messages, entries, hard states, snapshots) have
`encode_*`/`decode_*` too.

Enum numbers are identical on both sides (raft.proto says so and a test checks it), so
conversion is by value. Decoding checks what protobuf cannot: an enum value the core does not
know (a peer running a newer version, or a corrupt record) raises `CodecError`, as do bytes
that are not a valid message. Encoding trusts its input: the core only produces non-negative
integers and known enum members.

`Message.snapshot` is `None` when absent; the wire keeps that distinction with proto3
`optional`, so an empty snapshot and no snapshot both survive a round trip.
"""

from __future__ import annotations

from typing import TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from controlplane.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from controlplane.raftpb import raft_pb2 as pb

from .errors import CodecError

__all__ = [
    "conf_state_from_pb",
    "conf_state_to_pb",
    "decode_entry",
    "decode_hard_state",
    "decode_message",
    "decode_snapshot",
    "encode_entry",
    "encode_hard_state",
    "encode_message",
    "encode_snapshot",
    "entry_from_pb",
    "entry_to_pb",
    "hard_state_from_pb",
    "hard_state_to_pb",
    "message_from_pb",
    "message_to_pb",
    "parse_pb",
    "snapshot_from_pb",
    "snapshot_to_pb",
]

_ENTRY_TYPES = {t.value: t for t in EntryType}
_MESSAGE_TYPES = {t.value: t for t in MessageType}

_Pb = TypeVar("_Pb", bound=PbMessage)


def parse_pb(cls: type[_Pb], data: bytes | memoryview) -> _Pb:
    """Parse `data` as a `cls` message; `CodecError` if it is not one."""
    msg = cls()
    try:
        msg.ParseFromString(bytes(data))
    except DecodeError as e:
        raise CodecError(f"cannot decode {cls.__name__}: {e}") from e
    return msg


def entry_to_pb(e: Entry) -> pb.Entry:
    return pb.Entry(term=e.term, index=e.index, type=cast(pb.EntryType, e.type.value), data=e.data)


def entry_from_pb(m: pb.Entry) -> Entry:
    t = _ENTRY_TYPES.get(m.type)
    if t is None:
        raise CodecError(f"unknown entry type {m.type} at index {m.index}")
    return Entry(term=m.term, index=m.index, type=t, data=m.data)


def hard_state_to_pb(hs: HardState) -> pb.HardState:
    return pb.HardState(term=hs.term, vote=hs.vote, commit=hs.commit)


def hard_state_from_pb(m: pb.HardState) -> HardState:
    return HardState(term=m.term, vote=m.vote, commit=m.commit)


def conf_state_to_pb(cs: ConfState) -> pb.ConfState:
    return pb.ConfState(voters=cs.voters, learners=cs.learners)


def conf_state_from_pb(m: pb.ConfState) -> ConfState:
    return ConfState(voters=tuple(m.voters), learners=tuple(m.learners))


def snapshot_to_pb(s: Snapshot) -> pb.Snapshot:
    md = s.metadata
    return pb.Snapshot(
        data=s.data,
        metadata=pb.SnapshotMetadata(
            conf_state=conf_state_to_pb(md.conf_state), index=md.index, term=md.term
        ),
    )


def snapshot_from_pb(m: pb.Snapshot) -> Snapshot:
    md = m.metadata
    return Snapshot(
        data=m.data,
        metadata=SnapshotMetadata(
            conf_state=conf_state_from_pb(md.conf_state), index=md.index, term=md.term
        ),
    )


def message_to_pb(m: Message) -> pb.Message:
    out = pb.Message(
        type=cast(pb.MessageType, m.type.value),
        to=m.to,
        frm=m.frm,
        term=m.term,
        log_term=m.log_term,
        index=m.index,
        entries=[entry_to_pb(e) for e in m.entries],
        commit=m.commit,
        reject=m.reject,
        reject_hint=m.reject_hint,
        context=m.context,
    )
    if m.snapshot is not None:
        out.snapshot.CopyFrom(snapshot_to_pb(m.snapshot))
    return out


def message_from_pb(m: pb.Message) -> Message:
    t = _MESSAGE_TYPES.get(m.type)
    if t is None:
        raise CodecError(f"unknown message type {m.type} from {m.frm}")
    return Message(
        type=t,
        to=m.to,
        frm=m.frm,
        term=m.term,
        log_term=m.log_term,
        index=m.index,
        entries=tuple(entry_from_pb(e) for e in m.entries),
        commit=m.commit,
        reject=m.reject,
        reject_hint=m.reject_hint,
        snapshot=snapshot_from_pb(m.snapshot) if m.HasField("snapshot") else None,
        context=m.context,
    )


def encode_entry(e: Entry) -> bytes:
    return entry_to_pb(e).SerializeToString()


def decode_entry(data: bytes) -> Entry:
    return entry_from_pb(parse_pb(pb.Entry, data))


def encode_hard_state(hs: HardState) -> bytes:
    return hard_state_to_pb(hs).SerializeToString()


def decode_hard_state(data: bytes) -> HardState:
    return hard_state_from_pb(parse_pb(pb.HardState, data))


def encode_snapshot(s: Snapshot) -> bytes:
    return snapshot_to_pb(s).SerializeToString()


def decode_snapshot(data: bytes) -> Snapshot:
    return snapshot_from_pb(parse_pb(pb.Snapshot, data))


def encode_message(m: Message) -> bytes:
    return message_to_pb(m).SerializeToString()


def decode_message(data: bytes) -> Message:
    return message_from_pb(parse_pb(pb.Message, data))
