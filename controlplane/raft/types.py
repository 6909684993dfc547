"""Value types of the Raft core: entries, messages, hard state, snapshots and `Ready`.

These mirror etcd's `raftpb` so that traces read the same, but they are plain frozen
dataclasses: the core never touches protobuf. Conversion to the wire and WAL encodings
lives in `controlplane.raftnode.codec`.

Node ids are positive integers; 0 means "none" (no leader, no vote), as in etcd.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NONE = 0
"""The id that means "no node": no leader known, no vote cast."""


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1  # reserved: membership changes come in a later issue


class MessageType(enum.IntEnum):
    """Message types; the `local` ones never cross the network."""

    HUP = 0  # local: start an election (or pre-election)
    BEAT = 1  # local: the leader should broadcast heartbeats
    PROP = 2  # proposal, local or forwarded by a follower
    APP = 3
    APP_RESP = 4
    VOTE = 5
    VOTE_RESP = 6
    SNAP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    UNREACHABLE = 10  # local: the transport could not reach a peer
    SNAP_STATUS = 11  # local: the transport finished (or failed) sending a snapshot
    CHECK_QUORUM = 12  # local: the leader should check it still hears from a quorum
    TRANSFER_LEADER = 13
    TIMEOUT_NOW = 14
    READ_INDEX = 15
    READ_INDEX_RESP = 16
    PRE_VOTE = 17
    PRE_VOTE_RESP = 18

    @property
    def short(self) -> str:
        """The etcd name of the type, e.g. ``MsgApp``, used in traces."""
        return _SHORT[self]

    @property
    def is_local(self) -> bool:
        return self in _LOCAL

    @property
    def is_response(self) -> bool:
        return self in _RESPONSES


_SHORT = {
    MessageType.HUP: "MsgHup",
    MessageType.BEAT: "MsgBeat",
    MessageType.PROP: "MsgProp",
    MessageType.APP: "MsgApp",
    MessageType.APP_RESP: "MsgAppResp",
    MessageType.VOTE: "MsgVote",
    MessageType.VOTE_RESP: "MsgVoteResp",
    MessageType.SNAP: "MsgSnap",
    MessageType.HEARTBEAT: "MsgHeartbeat",
    MessageType.HEARTBEAT_RESP: "MsgHeartbeatResp",
    MessageType.UNREACHABLE: "MsgUnreachable",
    MessageType.SNAP_STATUS: "MsgSnapStatus",
    MessageType.CHECK_QUORUM: "MsgCheckQuorum",
    MessageType.TRANSFER_LEADER: "MsgTransferLeader",
    MessageType.TIMEOUT_NOW: "MsgTimeoutNow",
    MessageType.READ_INDEX: "MsgReadIndex",
    MessageType.READ_INDEX_RESP: "MsgReadIndexResp",
    MessageType.PRE_VOTE: "MsgPreVote",
    MessageType.PRE_VOTE_RESP: "MsgPreVoteResp",
}
_LOCAL = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    }
)
_RESPONSES = frozenset(
    {
        MessageType.APP_RESP,
        MessageType.VOTE_RESP,
        MessageType.HEARTBEAT_RESP,
        MessageType.UNREACHABLE,
        MessageType.READ_INDEX_RESP,
        MessageType.PRE_VOTE_RESP,
    }
)


def vote_response_type(t: MessageType) -> MessageType:
    """The response type that answers a (pre-)vote request."""
    if t == MessageType.VOTE:
        return MessageType.VOTE_RESP
    if t == MessageType.PRE_VOTE:
        return MessageType.PRE_VOTE_RESP
    raise ValueError(f"not a vote message: {t!r}")


class StateType(enum.IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3

    def __str__(self) -> str:
        return _STATE_NAMES[self]


_STATE_NAMES = {
    StateType.FOLLOWER: "StateFollower",
    StateType.CANDIDATE: "StateCandidate",
    StateType.LEADER: "StateLeader",
    StateType.PRE_CANDIDATE: "StatePreCandidate",
}


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate encoded size, used for byte limits (flow control, batching)."""
        return len(self.data) + 16


@dataclass(frozen=True, slots=True)
class ConfState:
    """The voting configuration. Static for now; kept in snapshots so changes can come later."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    @property
    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before any message that depends on it is sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    @property
    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state, useful for logging and status; never persisted."""

    lead: int = NONE
    raft_state: StateType = StateType.FOLLOWER


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read can be served once the state machine has applied `index`."""

    index: int
    request_ctx: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch of work for the driver, to be handled in this order:

    1. persist `snapshot` (if any), `entries` and `hard_state` (if not None), syncing when
       `must_sync` is true;
    2. send `messages` (only after step 1: they may promise what was just persisted);
    3. apply `snapshot` then `committed_entries` to the state machine and serve `read_states`
       once applied reaches their index;
    4. call `RawNode.advance(ready)`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: tuple[ReadState, ...] = ()
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    must_sync: bool = False

    @property
    def contains_updates(self) -> bool:
        return bool(
            self.soft_state is not None
            or self.hard_state is not None
            or self.read_states
            or self.entries
            or self.snapshot is not None
            or self.committed_entries
            or self.messages
        )
