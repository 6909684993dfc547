"""`RawNode`: the Ready/advance contract and input validation (after etcd-io/raft's
rawnode_test.go)."""

from __future__ import annotations

import pytest
from raftfixtures import new_storage

from controlplane.raft import (
    Config,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDropped,
    RawNode,
    ReadState,
    Ready,
    SoftState,
    StateType,
    StepLocalMessage,
    StepPeerNotFound,
)

MT = MessageType


def handle(node: RawNode, storage: MemoryStorage) -> Ready:
    """Handle one Ready the way a driver must: persist, (send), apply, advance."""
    rd = node.ready()
    if rd.snapshot is not None:
        storage.apply_snapshot(rd.snapshot)
    storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)
    node.advance(rd)
    return rd


def single_node() -> tuple[RawNode, MemoryStorage]:
    s = MemoryStorage()
    n = RawNode(Config(id=1, voters=(1,)), s)
    n.campaign()
    handle(n, s)
    return n, s


def test_single_node_campaign_and_commit() -> None:
    """A one-node cluster elects itself at once and commits its proposals in one Ready:
    entries to persist and the same entries to apply (the driver persists first)."""
    s = MemoryStorage()
    n = RawNode(Config(id=1, voters=(1,)), s)
    assert not n.has_ready()
    n.campaign()
    rd = handle(n, s)
    assert rd.soft_state == SoftState(lead=1, raft_state=StateType.LEADER)
    assert rd.hard_state == HardState(term=1, vote=1, commit=1)
    assert rd.entries == (Entry(term=1, index=1),)
    assert rd.committed_entries == (Entry(term=1, index=1),)
    assert rd.must_sync
    n.propose(b"foo")
    rd = handle(n, s)
    assert rd.entries == rd.committed_entries == (Entry(term=1, index=2, data=b"foo"),)
    assert rd.hard_state == HardState(term=1, vote=1, commit=2)
    assert not n.has_ready()


def test_propose_batch_is_one_append() -> None:
    """Several payloads proposed together become consecutive entries of one Ready."""
    n, s = single_node()
    n.propose(b"a", b"b", b"c")
    rd = handle(n, s)
    assert [(e.index, e.data) for e in rd.entries] == [(2, b"a"), (3, b"b"), (4, b"c")]


def test_propose_without_payload() -> None:
    """A proposal needs at least one payload."""
    n, _ = single_node()
    with pytest.raises(ValueError):
        n.propose()


def test_propose_without_leader_is_dropped() -> None:
    """With no leader known, a proposal raises ProposalDropped (safe to retry)."""
    n = RawNode(Config(id=1, voters=(1, 2, 3)), MemoryStorage())
    with pytest.raises(ProposalDropped) as exc:
        n.propose(b"x")
    assert exc.value.retryable


@pytest.mark.parametrize(
    "t",
    [MT.HUP, MT.BEAT, MT.UNREACHABLE, MT.SNAP_STATUS, MT.CHECK_QUORUM],
    ids=lambda t: t.short,
)
def test_step_rejects_local_messages(t: MessageType) -> None:
    """Local message types never come from the network."""
    n = RawNode(Config(id=1, voters=(1, 2)), MemoryStorage())
    with pytest.raises(StepLocalMessage):
        n.step(Message(type=t, frm=2, to=1, term=1))


def test_step_rejects_response_from_unknown_peer() -> None:
    """A response from a node outside the configuration is refused."""
    n = RawNode(Config(id=1, voters=(1, 2)), MemoryStorage())
    with pytest.raises(StepPeerNotFound):
        n.step(Message(type=MT.APP_RESP, frm=9, to=1, term=1))


def test_forwarded_proposal_dropped_silently() -> None:
    """A forwarded proposal the leader cannot take is dropped without an error."""
    s = MemoryStorage()
    n = RawNode(Config(id=1, voters=(1, 2, 3)), s)
    n.raft.become_candidate()
    n.step(Message(type=MT.PROP, frm=2, to=1, entries=(Entry(0, 0, data=b"x"),)))


def test_ready_hands_over_messages_once() -> None:
    """Messages and read states are handed over once; the rest stays until advance."""
    s = MemoryStorage()
    n = RawNode(Config(id=1, voters=(1, 2), pre_vote=False), s)
    n.campaign()
    rd = n.ready()
    assert [m.type for m in rd.messages] == [MT.VOTE]
    assert n.raft.msgs == []
    assert n.has_ready()  # the hard state is not acknowledged yet
    n.advance(rd)
    assert not n.has_ready()


def test_must_sync() -> None:
    """Term, vote and entries need an fsync before messages go out; the commit index
    alone does not (it can be learned again)."""
    n, s = single_node()
    n.propose(b"x")
    rd = handle(n, s)
    assert rd.must_sync
    # Commit only: a follower learning a new commit index.
    f_storage = new_storage()
    f = RawNode(Config(id=2, voters=(1, 2)), f_storage)
    f.step(Message(type=MT.APP, frm=1, to=2, term=1, entries=(Entry(1, 1),)))
    assert handle(f, f_storage).must_sync
    f.step(Message(type=MT.APP, frm=1, to=2, term=1, index=1, log_term=1, commit=1))
    rd = handle(f, f_storage)
    assert rd.hard_state == HardState(term=1, vote=0, commit=1)
    assert not rd.must_sync


def test_restart_from_storage() -> None:
    """A restarted node recovers term, vote and log from storage and re-delivers the
    committed entries not yet applied."""
    s = new_storage([Entry(1, 1), Entry(1, 2, data=b"foo")], HardState(term=1, vote=1, commit=1))
    n = RawNode(Config(id=1, voters=(1, 2)), s)
    assert n.hard_state() == HardState(term=1, vote=1, commit=1)
    rd = n.ready()
    assert rd.hard_state is None  # unchanged since the restart
    assert rd.committed_entries == (Entry(1, 1),)
    assert not rd.must_sync
    n.advance(rd)
    assert not n.has_ready()


def test_restart_with_applied() -> None:
    """Entries up to Config.applied are not re-delivered."""
    s = new_storage([Entry(1, 1), Entry(1, 2, data=b"foo")], HardState(term=1, vote=1, commit=2))
    n = RawNode(Config(id=1, voters=(1, 2), applied=1), s)
    assert n.ready().committed_entries == (Entry(1, 2, data=b"foo"),)


def test_read_index_single_node() -> None:
    """A one-node cluster answers a read at once with its commit index."""
    n, s = single_node()
    n.read_index(b"ctx")
    rd = handle(n, s)
    assert rd.read_states == (ReadState(index=1, request_ctx=b"ctx"),)


def test_read_index_without_leader_is_dropped() -> None:
    """A read with no leader known is dropped silently; the caller retries."""
    n = RawNode(Config(id=1, voters=(1, 2, 3)), MemoryStorage())
    n.read_index(b"ctx")
    assert not n.has_ready()


def test_committed_entries_paginated() -> None:
    """max_committed_size_per_ready bounds each Ready's committed entries (at least one)."""
    s = new_storage(
        [Entry(1, i, data=b"x" * 10) for i in range(1, 6)], HardState(term=1, vote=1, commit=5)
    )
    n = RawNode(Config(id=1, voters=(1,), max_committed_size_per_ready=60), s)
    sizes = []
    while n.has_ready():
        rd = handle(n, s)
        sizes.append(len(rd.committed_entries))
    assert sizes == [2, 2, 1]


def test_read_index_refuses_an_empty_context() -> None:
    """A ReadIndex request needs a context: an empty one could never be acknowledged."""
    node = RawNode(Config(id=1, voters=(1,)), MemoryStorage())
    with pytest.raises(ValueError, match="non-empty request context"):
        node.read_index(b"")
