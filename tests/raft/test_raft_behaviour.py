"""Behaviour of the Raft state machine beyond the paper's basics, after etcd-io/raft's
raft_test.go: fast log rejection, flow control, snapshots, leadership transfer, ReadIndex,
pre-vote and check-quorum. Message-level tests drive a `Raft` directly; scenario tests use
the in-memory `Network` harness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from raftfixtures import ents, new_raft, new_storage, read_messages

from controlplane.raft import (
    CAMPAIGN_TRANSFER,
    Config,
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    ProgressState,
    ProposalDropped,
    Raft,
    ReadOnlyOption,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from controlplane.raft.rafttest.network import MemoryDisk, Network

MT = MessageType


def leader(peers: tuple[int, ...] = (1, 2, 3), **kw: Any) -> Raft:
    """Node 1 as leader of `peers` with its empty entry committed by everyone."""
    r = new_raft(peers=peers, **kw)
    r.become_candidate()
    r.become_leader()
    for p in peers[1:]:
        r.step(Message(type=MT.APP_RESP, frm=p, to=1, term=r.term, index=r.raft_log.last_index()))
    read_messages(r)
    return r


def net_of(n: int, **kw: object) -> Network:
    """A network of n nodes; pre-vote and check-quorum off unless given."""
    opts: dict[str, object] = {"pre_vote": False, "check_quorum": False, **kw}
    ids = tuple(range(1, n + 1))
    return Network(ids, config=lambda i: Config(id=i, voters=ids, seed=i, **opts))  # type: ignore[arg-type]


def state_of(net: Network, i: int) -> tuple[StateType, int]:
    r = net.nodes[i].raw.raft
    return r.state, r.term


def snapshot(index: int, term: int, voters: tuple[int, ...] = (1, 2)) -> Snapshot:
    return Snapshot(
        metadata=SnapshotMetadata(conf_state=ConfState(voters=voters), index=index, term=term)
    )


# -- log replication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leader_log", "follower_log", "hint", "next_append"),
    [
        (ents(1, 2, 2, 4, 4, 4, 4), ents(1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), (3, 7), (2, 3)),
        (ents(1, 2, 2, 3, 4, 4, 4, 5), ents(1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), (3, 8), (3, 4)),
        (ents(1, 1, 1, 1), ents(1, 2, 2, 4), (1, 1), (1, 1)),
        (ents(1, 1, 1, 1, 1, 1), ents(1, 2, 2, 4), (1, 1), (1, 1)),
        (ents(1, 1, 1, 1), ents(1, 2, 2, 4, 4, 4), (1, 1), (1, 1)),
        (ents(1, 1, 1, 4, 5), ents(1, 1, 1, 4), (4, 4), (4, 4)),
        (ents(2, 5, 5, 5, 5, 5, 5, 5, 5), ents(2, 4, 4, 4, 4, 4), (4, 6), (2, 1)),
        (ents(2, 2, 2, 2, 2), ents(2, 4, 4, 4, 4, 4, 4, 4), (2, 1), (2, 1)),
    ],
    ids=[
        "leader-skips-follower-term",
        "leader-skips-to-term-3",
        "follower-skips-newer-terms",
        "leader-longer",
        "follower-longer",
        "no-conflict",
        "leader-example",
        "follower-example",
    ],
)
def test_fast_log_rejection(
    leader_log: list[Entry],
    follower_log: list[Entry],
    hint: tuple[int, int],
    next_append: tuple[int, int],
) -> None:
    """A rejection carries (term, index) of the follower's last entry that can match, and
    the leader's next probe skips every entry of a conflicting term at once.
    `hint` and `next_append` are (log term, index)."""
    n1 = new_raft(1, peers=(1, 2), storage=new_storage(leader_log))
    n2 = new_raft(2, peers=(1, 2), storage=new_storage(follower_log))
    n1.become_candidate()
    n1.become_leader()
    n2.step(Message(type=MT.HEARTBEAT, frm=1, to=2, term=n1.term))
    (hb_resp,) = read_messages(n2)
    n1.step(hb_resp)
    (app,) = read_messages(n1)
    assert app.type == MT.APP
    n2.step(app)
    (resp,) = read_messages(n2)
    assert resp.type == MT.APP_RESP and resp.reject
    assert (resp.log_term, resp.reject_hint) == hint
    n1.step(resp)
    nxt = read_messages(n1)[0]
    assert (nxt.log_term, nxt.index) == next_append


def test_leader_increase_next_replicate() -> None:
    """In StateReplicate the leader sends optimistically: next jumps past what it sent."""
    r = leader()
    pr = r.trk.progress[2]
    assert pr.state == ProgressState.REPLICATE
    last = r.raft_log.last_index()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert pr.next == last + 2


def test_leader_increase_next_probe() -> None:
    """In StateProbe the leader sends one append and waits: next does not move."""
    r = new_raft()
    r.become_candidate()
    r.become_leader()
    pr = r.trk.progress[2]
    assert pr.state == ProgressState.PROBE
    nxt = pr.next
    r.bcast_append()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert pr.next == nxt
    assert pr.is_paused()


def test_send_append_probe_paused_until_heartbeat_response() -> None:
    """A probing follower gets one append per heartbeat round-trip, not one per proposal."""
    r = new_raft()
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    r.bcast_append()
    assert [m.to for m in read_messages(r) if m.type == MT.APP] == [2, 3]
    for _ in range(3):
        r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert read_messages(r) == []
    r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term))
    (m,) = read_messages(r)
    assert (m.to, m.type, len(m.entries)) == (2, MT.APP, 4)


def test_send_append_snapshot_state_sends_nothing() -> None:
    """A follower waiting for a snapshot gets no appends."""
    r = leader()
    r.trk.progress[2].become_snapshot(10)
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert [m.to for m in read_messages(r)] == [3]


def test_heartbeat_commit_never_exceeds_match() -> None:
    """Heartbeats carry min(match, commit): a follower is never told to commit entries it
    may not have."""
    r = leader()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=2))
    assert r.raft_log.committed == 2
    read_messages(r)
    r.step(Message(type=MT.BEAT, frm=1, to=1))
    assert {m.to: m.commit for m in read_messages(r)} == {2: 2, 3: 1}


@pytest.mark.parametrize(
    "state", [StateType.FOLLOWER, StateType.CANDIDATE], ids=["follower", "candidate"]
)
def test_only_leader_sends_heartbeats(state: StateType) -> None:
    """MsgBeat makes only a leader broadcast heartbeats."""
    r = new_raft()
    if state == StateType.CANDIDATE:
        r.become_candidate()
    read_messages(r)
    r.step(Message(type=MT.BEAT, frm=1, to=1))
    assert read_messages(r) == []


def test_handle_heartbeat_commit_never_decreases() -> None:
    """A heartbeat advances the commit index but never moves it back."""
    r = new_raft(storage=new_storage(ents(1, 2, 3), HardState(term=2, commit=2)))
    r.become_follower(2, 2)
    r.step(Message(type=MT.HEARTBEAT, frm=2, to=1, term=2, commit=3))
    assert r.raft_log.committed == 3
    r.step(Message(type=MT.HEARTBEAT, frm=2, to=1, term=2, commit=1))
    assert r.raft_log.committed == 3
    assert [m.type for m in read_messages(r)] == [MT.HEARTBEAT_RESP, MT.HEARTBEAT_RESP]


def test_unreachable_moves_replicate_to_probe() -> None:
    """When the transport reports a follower unreachable the leader stops streaming to it."""
    r = leader()
    pr = r.trk.progress[2]
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert pr.state == ProgressState.REPLICATE and pr.next == 3
    r.step(Message(type=MT.UNREACHABLE, frm=2, to=1))
    assert pr.state == ProgressState.PROBE  # type: ignore[comparison-overlap]  # step mutates
    assert pr.next == pr.match + 1


def test_heartbeat_response_recovers_caught_up_probe() -> None:
    """A caught-up follower left in StateProbe (after report_unreachable) returns to
    StateReplicate after the next heartbeat round-trip."""
    r = leader()
    r.step(Message(type=MT.UNREACHABLE, frm=2, to=1))
    r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term))
    (probe,) = read_messages(r)
    assert probe.type == MT.APP
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=probe.index))
    assert r.trk.progress[2].state == ProgressState.REPLICATE


def test_uncommitted_entries_limit() -> None:
    """The leader refuses proposals once its uncommitted tail exceeds the limit; committing
    and applying frees the budget. The limit always lets one proposal through."""
    net = Network(
        (1, 2, 3),
        config=lambda i: Config(id=i, voters=(1, 2, 3), seed=i, max_uncommitted_entries_size=10),
    )
    net.elect(1)
    net.isolate(1)  # nothing commits while isolated
    net.propose(1, b"x" * 6)
    net.propose(1, b"y" * 4)
    with pytest.raises(ProposalDropped, match="uncommitted"):
        net.propose(1, b"z")
    net.recover()
    net.ticks_to_quiet(3)
    net.propose(1, b"z" * 10)
    # A single big proposal is accepted when nothing is uncommitted.
    net.stabilize()
    net.propose(1, b"w" * 50)


def test_max_size_per_msg_splits_appends() -> None:
    """Appends hold at most max_size_per_msg bytes of entries (at least one entry)."""
    r = leader(max_size_per_msg=2 * Entry(0, 0, data=b"x").size())
    r.step(
        Message(type=MT.PROP, frm=1, to=1, entries=tuple(Entry(0, 0, data=b"x") for _ in range(5)))
    )
    msgs = [m for m in read_messages(r) if m.to == 2]
    assert [len(m.entries) for m in msgs] == [2]
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=msgs[0].index + 2))
    assert [len(m.entries) for m in read_messages(r) if m.to == 2] == [2, 1]


# -- elections ----------------------------------------------------------------------------


_VOTE_CASES = [
    # (state, candidate's last index, candidate's last term, our vote, reject)
    (StateType.FOLLOWER, 0, 0, 0, True),
    (StateType.FOLLOWER, 0, 1, 0, True),
    (StateType.FOLLOWER, 0, 2, 0, True),
    (StateType.FOLLOWER, 0, 3, 0, False),
    (StateType.FOLLOWER, 1, 0, 0, True),
    (StateType.FOLLOWER, 1, 1, 0, True),
    (StateType.FOLLOWER, 1, 2, 0, True),
    (StateType.FOLLOWER, 1, 3, 0, False),
    (StateType.FOLLOWER, 2, 0, 0, True),
    (StateType.FOLLOWER, 2, 1, 0, True),
    (StateType.FOLLOWER, 2, 2, 0, False),
    (StateType.FOLLOWER, 2, 3, 0, False),
    (StateType.FOLLOWER, 3, 0, 0, True),
    (StateType.FOLLOWER, 3, 1, 0, True),
    (StateType.FOLLOWER, 3, 2, 0, False),
    (StateType.FOLLOWER, 3, 3, 0, False),
    (StateType.FOLLOWER, 3, 2, 2, False),
    (StateType.FOLLOWER, 3, 2, 1, True),
    (StateType.LEADER, 3, 3, 1, True),
    (StateType.PRE_CANDIDATE, 3, 3, 1, True),
    (StateType.CANDIDATE, 3, 3, 1, True),
]


@pytest.mark.parametrize("msg", [MT.VOTE, MT.PRE_VOTE], ids=["MsgVote", "MsgPreVote"])
@pytest.mark.parametrize(
    ("state", "index", "log_term", "vote", "reject"),
    _VOTE_CASES,
    ids=[f"{c[0]}-{c[1]}/{c[2]}-vote{c[3]}" for c in _VOTE_CASES],
)
def test_recv_vote(  # noqa: PLR0917
    msg: MessageType, state: StateType, index: int, log_term: int, vote: int, reject: bool
) -> None:
    """A (pre-)vote is granted only to a candidate whose log is at least as up to date as
    ours (§5.4.1), and only if we have not voted for someone else in the term (§5.2).
    Our log is 2/1, 2/2; the request is at our term."""
    r = new_raft(storage=new_storage(ents(2, 2)))
    r.state = state
    r.vote = vote
    r.term = max(r.raft_log.last_term(), log_term)
    r.step(Message(type=msg, frm=2, to=1, term=r.term, index=index, log_term=log_term))
    (m,) = read_messages(r)
    want_type = MT.VOTE_RESP if msg == MT.VOTE else MT.PRE_VOTE_RESP
    assert (m.type, m.reject) == (want_type, reject)


@pytest.mark.parametrize(
    ("transition", "ok"),
    [
        ("follower->candidate", True),
        ("follower->pre-candidate", True),
        ("candidate->leader", True),
        ("pre-candidate->leader", True),
        ("follower->leader", False),
        ("leader->candidate", False),
        ("leader->pre-candidate", False),
        ("leader->follower", True),
    ],
)
def test_state_transition(transition: str, ok: bool) -> None:
    """Invalid role transitions are bugs and stop the core."""
    r = new_raft()
    steps: dict[str, Callable[[], None]] = {
        "follower": lambda: r.become_follower(r.term, 0),
        "candidate": r.become_candidate,
        "pre-candidate": r.become_pre_candidate,
        "leader": r.become_leader,
    }
    frm, to = transition.split("->")
    if frm == "leader":
        r.become_candidate()
        r.become_leader()
    elif frm != "follower":
        steps[frm]()
    if ok:
        steps[to]()
    else:
        with pytest.raises(AssertionError, match="invalid transition"):
            steps[to]()


@pytest.mark.parametrize(
    "state",
    [StateType.FOLLOWER, StateType.CANDIDATE, StateType.LEADER],
    ids=["follower", "candidate", "leader"],
)
@pytest.mark.parametrize("msg", [MT.VOTE, MT.APP], ids=["MsgVote", "MsgApp"])
def test_all_server_stepdown(state: StateType, msg: MessageType) -> None:
    """Any server seeing a higher term becomes a follower of that term; the leader is the
    sender only if it is an append (§5.1)."""
    r = new_raft()
    if state == StateType.CANDIDATE:
        r.become_candidate()
    elif state == StateType.LEADER:
        r.become_candidate()
        r.become_leader()
    r.step(Message(type=msg, frm=2, to=1, term=3, log_term=3, index=3))
    assert (r.state, r.term) == (StateType.FOLLOWER, 3)
    assert r.lead == (2 if msg == MT.APP else 0)
    assert r.election_elapsed == 0


def test_candidate_concede() -> None:
    """A candidate with a shorter log gives way to the elected leader and catches up."""
    net = net_of(3)
    net.isolate(1)
    net.elect(1)
    net.elect(3)
    net.recover()
    net.ticks_to_quiet(1)  # heartbeat from 3
    net.propose(3, b"force follower")
    net.stabilize()
    assert state_of(net, 1) == (StateType.FOLLOWER, 1)
    logs = {i: net.nodes[i].storage.entries(1, 3, 1 << 30) for i in (1, 2, 3)}
    assert logs[1] == logs[2] == logs[3]


def test_dueling_candidates() -> None:
    """Two candidates at once: the one with the longer log wins at a later term; the
    other cannot, since its log is behind (§5.4.1)."""
    net = net_of(3)
    net.cut(1, 3)
    net.elect(1)
    net.elect(3)
    assert state_of(net, 1) == (StateType.LEADER, 1)
    assert state_of(net, 3) == (StateType.CANDIDATE, 1)
    net.recover()
    # 3 campaigns again at term 2; 1 and 2 reject (their logs have 1's empty entry).
    net.elect(3)
    assert state_of(net, 3) == (StateType.FOLLOWER, 2)
    assert state_of(net, 1) == (StateType.FOLLOWER, 2)


def test_dueling_pre_candidates() -> None:
    """With pre-vote, a pre-candidate with a stale log does not bump anyone's term."""
    net = net_of(3, pre_vote=True)
    net.cut(1, 3)
    net.elect(1)
    net.elect(3)
    assert state_of(net, 1) == (StateType.LEADER, 1)
    # 2's rejection (at term 1) brings 3 to term 1, but no further.
    assert state_of(net, 3) == (StateType.FOLLOWER, 1)
    net.recover()
    net.elect(3)
    assert state_of(net, 1) == (StateType.LEADER, 1)
    assert state_of(net, 3) == (StateType.FOLLOWER, 1)


def test_campaign_while_leader_is_ignored() -> None:
    """A leader asked to campaign stays leader in the same term."""
    net = net_of(1)
    net.elect(1)
    net.elect(1)
    assert state_of(net, 1) == (StateType.LEADER, 1)


def test_single_node_pre_candidate_wins() -> None:
    """A single node wins its pre-election and election at once."""
    net = net_of(1, pre_vote=True)
    net.elect(1)
    assert state_of(net, 1) == (StateType.LEADER, 1)


def test_pre_vote_granted_keeps_term() -> None:
    """Granting a pre-vote changes neither the voter's term nor its vote (§thesis 9.6)."""
    r = new_raft(pre_vote=True, storage=new_storage(hard_state=HardState(term=1)))
    r.step(Message(type=MT.PRE_VOTE, frm=2, to=1, term=2, index=0, log_term=0))
    (m,) = read_messages(r)
    assert (m.type, m.term, m.reject) == (MT.PRE_VOTE_RESP, 2, False)
    assert (r.term, r.vote) == (1, 0)


def test_pre_candidate_rejected_by_higher_term_steps_down() -> None:
    """A pre-vote rejection from a higher term makes the pre-candidate adopt that term."""
    r = new_raft(pre_vote=True)
    r.step(Message(type=MT.HUP, frm=1, to=1))
    assert r.state == StateType.PRE_CANDIDATE and r.term == 0
    r.step(Message(type=MT.PRE_VOTE_RESP, frm=2, to=1, term=5, reject=True))
    assert (r.state, r.term) == (StateType.FOLLOWER, 5)


def test_pre_vote_with_split_vote() -> None:
    """After a split vote, pre-vote still lets the candidates converge on one leader."""
    net = net_of(3, pre_vote=True)
    net.elect(1)
    net.isolate(1)  # leader gone; 2 and 3 both campaign at once
    net.nodes[2].raw.campaign()
    net.nodes[3].raw.campaign()
    net.stabilize()
    # Both pass the pre-vote (neither has a lease to protect), then split the real vote.
    assert state_of(net, 2) == state_of(net, 3) == (StateType.CANDIDATE, 2)
    net.elect(2)  # 2 times out first
    assert state_of(net, 2) == (StateType.LEADER, 3)
    assert state_of(net, 3) == (StateType.FOLLOWER, 3)


def test_node_with_smaller_term_can_complete_election() -> None:
    """With pre-vote, a node with a smaller term but an up-to-date log can still win
    (etcd TestNodeWithSmallerTermCanCompleteElection)."""
    net = net_of(3, pre_vote=True)
    net.elect(1)
    net.isolate(1)
    net.elect(3)  # 3 wins term 2 with 2
    assert state_of(net, 3) == (StateType.LEADER, 2)
    net.recover()
    net.isolate(3)
    net.ticks_to_quiet(1)
    # 1 (term 1, stale leader) and 2 (term 2): 1 steps down once it hears of term 2; 2
    # can win without 3.
    net.elect(2)
    assert state_of(net, 2) == (StateType.LEADER, 3)


# -- check-quorum ------------------------------------------------------------------------------


def test_leader_stepdown_when_quorum_lost() -> None:
    """Check-quorum: a leader that does not hear from a quorum for an election timeout
    steps down (§thesis 6.2)."""
    r = leader(check_quorum=True, election=5)
    # The first check finds the followers active (they acknowledged the empty entry) and
    # resets them; the second finds nobody.
    for _ in range(2 * r.election_timeout - 1):
        r.tick()
    assert r.state == StateType.LEADER
    r.tick()
    assert r.state == StateType.FOLLOWER  # type: ignore[comparison-overlap]  # tick mutates
    assert r.term == 1


def test_leader_stays_when_quorum_active() -> None:
    """A leader that keeps hearing from a quorum stays leader."""
    r = leader(check_quorum=True, election=5)
    for _ in range(3 * r.election_timeout):
        r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term))
        r.tick()
    assert r.state == StateType.LEADER


def test_lease_ignores_vote_then_stale_heartbeat_answered() -> None:
    """Within its lease a follower ignores a vote at a higher term; the candidate answers
    the leader's next heartbeat at its higher term, and the leader steps down
    (etcd TestFreeStuckCandidateWithCheckQuorum)."""
    net = net_of(3, check_quorum=True)
    net.elect(1)
    net.isolate(1)
    net.elect(3)  # 3: candidate at term 2, heard by 2 which ignores it (lease)
    assert state_of(net, 3) == (StateType.CANDIDATE, 2)
    assert state_of(net, 2) == (StateType.FOLLOWER, 1)
    net.recover()
    net.nodes[1].raw.tick()  # heartbeat
    net.stabilize()
    assert state_of(net, 1) == (StateType.FOLLOWER, 2)


def test_leader_superseding_with_check_quorum() -> None:
    """Once its lease has expired, a follower grants a vote and a new leader is elected."""
    net = net_of(3, check_quorum=True)
    net.elect(1)
    net.isolate(1)
    net.elect(3)
    assert state_of(net, 3) == (StateType.CANDIDATE, 2)
    r2 = net.nodes[2].raw.raft
    r2.election_elapsed = r2.election_timeout  # lease expired
    net.elect(3)
    assert state_of(net, 3) == (StateType.LEADER, 3)


def test_transfer_vote_bypasses_lease() -> None:
    """A vote request from a leadership transfer is not stopped by the lease."""
    r = new_raft(check_quorum=True)
    r.become_follower(1, 2)
    r.step(Message(type=MT.VOTE, frm=3, to=1, term=2, context=CAMPAIGN_TRANSFER))
    (m,) = read_messages(r)
    assert (m.type, m.reject, r.term) == (MT.VOTE_RESP, False, 2)


# -- snapshots ------------------------------------------------------------------------------


def test_restore() -> None:
    """Restoring a snapshot replaces the log and commits up to it (§7)."""
    r = new_raft(peers=(1, 2))
    assert r.restore(snapshot(11, 11))
    assert (r.raft_log.last_index(), r.raft_log.term(11), r.raft_log.committed) == (11, 11, 11)
    assert r.trk.voters == (1, 2)
    assert not r.restore(snapshot(11, 11))  # already have it


def test_restore_ignores_snapshot_already_in_log() -> None:
    """A snapshot whose last entry we have only fast-forwards the commit index."""
    r = new_raft(peers=(1, 2), storage=new_storage(ents(1, 1, 1)))
    r.raft_log.commit_to(1)
    assert not r.restore(snapshot(2, 1))
    assert r.raft_log.committed == 2
    assert r.raft_log.last_index() == 3


def test_restore_ignores_older_snapshot() -> None:
    """A snapshot at or below the commit index adds nothing and is ignored."""
    r = new_raft(peers=(1, 2), storage=new_storage(ents(1, 1, 1)))
    r.raft_log.commit_to(3)
    assert not r.restore(snapshot(2, 1))
    assert r.raft_log.committed == 3


def test_restore_excluding_self_is_ignored() -> None:
    """A snapshot whose configuration does not include us is refused."""
    r = new_raft(peers=(1, 2))
    assert not r.restore(snapshot(11, 11, voters=(2, 3)))


def test_restore_from_snap_message() -> None:
    """MsgSnap makes the follower restore and answer with its new last index."""
    r = new_raft(peers=(1, 2))
    r.step(Message(type=MT.SNAP, frm=2, to=1, term=2, snapshot=snapshot(11, 11)))
    assert r.lead == 2
    (m,) = read_messages(r)
    assert (m.type, m.index, m.reject) == (MT.APP_RESP, 11, False)


def _leader_with_compacted_log() -> tuple[Raft, int]:
    s = new_storage(ents(1, 1, 1, 1, 1), HardState(term=1, commit=5), snapshot=None)
    s.create_snapshot(5, ConfState(voters=(1, 2)), b"")
    s.compact(5)
    r = new_raft(peers=(1, 2), storage=s)
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    return r, 5


def test_provide_snapshot() -> None:
    """A follower that needs compacted entries gets MsgSnap, and the leader waits in
    StateSnapshot."""
    r, snap_index = _leader_with_compacted_log()
    pr = r.trk.progress[2]
    pr.recent_active = True
    pr.next = 1  # behind the compacted part
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=0, reject=True))
    (m,) = read_messages(r)
    assert m.type == MT.SNAP and m.snapshot is not None
    assert m.snapshot.metadata.index == snap_index
    assert (pr.state, pr.pending_snapshot) == (ProgressState.SNAPSHOT, snap_index)


def test_ignore_providing_snapshot_to_inactive() -> None:
    """No snapshot is sent to a follower not recently active."""
    r, _ = _leader_with_compacted_log()
    pr = r.trk.progress[2]
    pr.recent_active = False
    pr.next = 1
    r.send_append(2)
    assert read_messages(r) == []


@pytest.mark.parametrize(("ok", "want_next"), [(True, 6), (False, 1)], ids=["succeeded", "failed"])
def test_snapshot_status(ok: bool, want_next: int) -> None:
    """The transport's report ends StateSnapshot: the leader probes after the snapshot if
    it was sent, from the match otherwise; either way it waits for a heartbeat response."""
    r, snap_index = _leader_with_compacted_log()
    pr = r.trk.progress[2]
    pr.become_snapshot(snap_index)
    r.step(Message(type=MT.SNAP_STATUS, frm=2, to=1, reject=not ok))
    assert (pr.state, pr.next, pr.pending_snapshot, pr.is_paused()) == (
        ProgressState.PROBE,
        want_next,
        0,
        True,
    )


def test_snapshot_acknowledged_resumes_replication() -> None:
    """A follower's answer after restoring moves it back to replication, even if the
    snapshot it applied is newer than the one sent."""
    r, snap_index = _leader_with_compacted_log()
    pr = r.trk.progress[2]
    pr.become_snapshot(snap_index - 1)
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=snap_index))
    assert (pr.state, pr.match, pr.next) == (ProgressState.REPLICATE, snap_index, snap_index + 2)


def test_slow_node_restores_from_snapshot() -> None:
    """A node cut off while the others compact catches up through a snapshot and then
    through appends (etcd TestSlowNodeRestore)."""
    net = net_of(3)
    net.elect(1)
    net.isolate(3)
    for i in range(10):
        net.propose(1, b"%d" % i)
        net.stabilize()
    n1 = net.nodes[1]
    applied = n1.app.applied_index
    assert isinstance(n1.storage, MemoryDisk)
    n1.storage.create_snapshot(applied, n1.raw.conf_state(), n1.app.encode())
    n1.storage.compact(applied)
    net.recover()
    net.ticks_to_quiet(3)
    net.propose(1, b"after")
    net.stabilize()
    n3 = net.nodes[3]
    assert n3.snapshots_applied == 1
    assert n3.app == n1.app
    assert n3.raw.raft.raft_log.committed == n1.raw.raft.raft_log.committed


# -- leadership transfer ------------------------------------------------------------------------


def test_transfer_to_up_to_date_node() -> None:
    """A caught-up transferee gets MsgTimeoutNow and wins at once."""
    net = net_of(3)
    net.elect(1)
    net.nodes[1].raw.transfer_leader(2)
    net.stabilize()
    assert state_of(net, 2) == (StateType.LEADER, 2)
    assert net.nodes[1].raw.raft.lead_transferee == 0


def test_transfer_from_follower_is_forwarded() -> None:
    """A transfer request made on a follower reaches the leader."""
    net = net_of(3)
    net.elect(1)
    net.nodes[2].raw.transfer_leader(2)
    net.stabilize()
    assert state_of(net, 2) == (StateType.LEADER, 2)


def test_transfer_to_lagging_node_waits_for_catch_up() -> None:
    """The leader first catches up a lagging transferee, then sends MsgTimeoutNow;
    proposals are refused meanwhile."""
    net = net_of(3)
    net.elect(1)
    net.isolate(3)
    net.propose(1, b"x")
    net.stabilize()
    net.recover()
    net.nodes[1].raw.transfer_leader(3)
    assert net.nodes[1].raw.raft.lead_transferee == 3
    with pytest.raises(ProposalDropped, match="transfer"):
        net.propose(1, b"refused")
    net.stabilize()
    assert state_of(net, 3) == (StateType.LEADER, 2)


def test_transfer_times_out() -> None:
    """A transfer that does not finish within an election timeout is abandoned."""
    net = net_of(3)
    net.elect(1)
    net.isolate(3)
    r1 = net.nodes[1].raw.raft
    net.nodes[1].raw.transfer_leader(3)
    for _ in range(r1.election_timeout - 1):
        net.tick([1])
    assert r1.lead_transferee == 3
    net.tick([1])
    assert r1.lead_transferee == 0
    net.propose(1, b"accepted")


@pytest.mark.parametrize(
    ("second", "want"), [(3, 3), (2, 2), (1, 0)], ids=["same", "other", "back-to-leader"]
)
def test_second_transfer(second: int, want: int) -> None:
    """A repeated request keeps the transfer; another transferee replaces it; a request
    back to the leader itself cancels it."""
    net = net_of(3)
    net.elect(1)
    net.isolate(3)
    net.nodes[1].raw.transfer_leader(3)
    net.nodes[1].raw.transfer_leader(second)
    assert net.nodes[1].raw.raft.lead_transferee == want


def test_transfer_to_self_ignored() -> None:
    """Transferring leadership to the current leader does nothing."""
    net = net_of(3)
    net.elect(1)
    net.nodes[1].raw.transfer_leader(1)
    assert net.nodes[1].raw.raft.lead_transferee == 0
    net.propose(1, b"accepted")


def test_transfer_receives_higher_term_vote() -> None:
    """A leader in the middle of a transfer steps down for a higher-term candidate."""
    net = net_of(3)
    net.elect(1)
    net.isolate(3)
    net.nodes[1].raw.transfer_leader(3)
    net.recover()
    net.isolate(1)
    net.elect(2)
    net.recover()
    net.ticks_to_quiet(1)
    assert state_of(net, 1) == (StateType.FOLLOWER, 2)
    assert net.nodes[1].raw.raft.lead_transferee == 0


def test_timeout_now_ignored_by_candidate() -> None:
    """A candidate does not start a new election on MsgTimeoutNow."""
    r = new_raft()
    r.become_candidate()
    r.step(Message(type=MT.TIMEOUT_NOW, frm=2, to=1, term=1))
    assert (r.state, r.term) == (StateType.CANDIDATE, 1)


# -- ReadIndex -------------------------------------------------------------------------------


def _read_net(**kw: object) -> Network:
    net = net_of(3, **kw)
    net.elect(1)
    return net


@pytest.mark.parametrize("reader", [1, 2, 3], ids=["leader", "follower-2", "follower-3"])
def test_read_index_safe(reader: int) -> None:
    """A read is answered with the leader's commit index after a heartbeat quorum
    (§thesis 6.4), wherever it is asked."""
    net = _read_net()
    net.propose(1, b"x")
    net.stabilize()
    net.nodes[reader].raw.read_index(b"ctx-%d" % reader)
    net.stabilize()
    commit = net.nodes[1].raw.raft.raft_log.committed
    assert net.nodes[reader].read_states == [
        ReadState(index=commit, request_ctx=b"ctx-%d" % reader)
    ]


def test_read_index_needs_quorum() -> None:
    """Without a quorum of heartbeat acknowledgements the read is not answered."""
    net = _read_net()
    net.isolate(1)
    net.nodes[1].raw.read_index(b"ctx")
    net.stabilize()
    assert net.nodes[1].read_states == []


def test_read_index_batches_earlier_requests() -> None:
    """Acknowledging a later read's heartbeat also confirms every earlier pending read."""
    r = leader()
    for ctx in (b"a", b"b", b"c"):
        r.step(Message(type=MT.READ_INDEX, frm=1, to=1, entries=(Entry(0, 0, data=ctx),)))
    read_messages(r)
    r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term, context=b"c"))
    assert [rs.request_ctx for rs in r.read_states] == [b"a", b"b", b"c"]


def test_read_index_lease_based() -> None:
    """With lease-based reads the leader answers at once, without a heartbeat round."""
    r = leader(check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    r.step(Message(type=MT.READ_INDEX, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert r.read_states == [ReadState(index=1, request_ctx=b"x")]
    assert read_messages(r) == []


def test_read_index_for_new_leader() -> None:
    """A new leader holds reads until an entry of its term is committed."""
    r = new_raft(storage=new_storage(ents(1, 1), HardState(term=1, commit=2)))
    r.become_candidate()
    r.become_leader()  # term 2, empty entry 3 not committed
    read_messages(r)
    r.step(Message(type=MT.READ_INDEX, frm=2, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert read_messages(r) == []
    assert len(r.pending_read_index_messages) == 1
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=2, index=3))
    hb = [m for m in read_messages(r) if m.type == MT.HEARTBEAT]
    assert {m.context for m in hb} == {b"x"}
    r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=2, context=b"x"))
    (resp,) = read_messages(r)
    assert (resp.type, resp.to, resp.index) == (MT.READ_INDEX_RESP, 2, 3)


def test_read_index_dropped_on_step_down() -> None:
    """Pending reads are dropped when the leader steps down (the client retries)."""
    r = leader()
    r.step(Message(type=MT.READ_INDEX, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    r.step(Message(type=MT.APP, frm=2, to=1, term=r.term + 1))
    r.step(Message(type=MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term, context=b"x"))
    assert r.read_states == []


# -- crash and restart ----------------------------------------------------------------------------


def test_vote_survives_restart() -> None:
    """A node that voted and restarts does not vote again in the same term (Figure 2:
    votedFor is persistent state)."""
    net = net_of(3)
    net.nodes[1].raw.campaign()
    net.process_ready([1])
    net.deliver()  # 2 and 3 receive the vote request
    net.process_ready([2])  # 2 persists its vote for 1
    net.crash(2)
    net.restart(2)
    assert net.nodes[2].raw.raft.vote == 1
    r2 = net.nodes[2].raw.raft
    r2.step(Message(type=MT.VOTE, frm=3, to=2, term=1))
    (m,) = [m for m in read_messages(r2) if m.type == MT.VOTE_RESP]
    assert m.reject


def test_restart_reapplies_after_snapshot() -> None:
    """A restarted node rebuilds its state machine from the snapshot and the log."""
    net = net_of(3)
    net.elect(1)
    for i in range(5):
        net.propose(1, b"%d" % i)
        net.stabilize()
    before = net.nodes[2].app
    net.crash(2)
    net.restart(2)
    net.stabilize()
    assert net.nodes[2].app == before


# -- more of etcd's raft_test.go ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "reject", "want"),
    [
        (3, True, (0, 3, [])),
        (2, True, (0, 2, [(1, 0)])),
        (2, False, (2, 4, [(2, 2), (2, 2)])),
        (0, False, (0, 4, [(0, 0)])),
    ],
    ids=["stale-rejection", "rejection-probes-back", "ack-commits", "ack-at-match-replicates"],
)
def test_leader_app_resp(
    index: int, reject: bool, want: tuple[int, int, list[tuple[int, int]]]
) -> None:
    """How the leader's view of follower 2 (match, next) and its messages (index, commit)
    react to an append response; the log is 0/1, 1/2 and the new leader's 1/3."""
    r = new_raft(storage=new_storage([Entry(term=0, index=1), Entry(term=1, index=2)]))
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    r.step(
        Message(
            type=MT.APP_RESP,
            frm=2,
            to=1,
            term=r.term,
            index=index,
            reject=reject,
            reject_hint=index,
        )
    )
    pr = r.trk.progress[2]
    assert (pr.match, pr.next, [(m.index, m.commit) for m in read_messages(r)]) == want


@pytest.mark.parametrize(
    ("matches", "terms", "term", "want"),
    [
        ((1,), (1,), 1, 1),
        ((1,), (1,), 2, 0),
        ((2,), (1, 2), 2, 2),
        ((1,), (2,), 2, 1),
        ((2, 1, 1), (1, 2), 1, 1),
        ((2, 1, 1), (1, 1), 2, 0),
        ((2, 1, 2), (1, 2), 2, 2),
        ((2, 1, 2), (1, 1), 2, 0),
        ((2, 1, 1, 1), (1, 2), 1, 1),
        ((2, 1, 1, 1), (1, 1), 2, 0),
        ((2, 1, 1, 2), (1, 2), 1, 1),
        ((2, 1, 1, 2), (1, 1), 2, 0),
        ((2, 1, 2, 2), (1, 2), 2, 2),
        ((2, 1, 2, 2), (1, 1), 2, 0),
    ],
    ids=[
        "single-current-term",
        "single-old-term",
        "single-two",
        "single-entry-of-term",
        "odd-majority-1",
        "odd-old-term",
        "odd-majority-2",
        "odd-majority-2-old-term",
        "even-majority-1",
        "even-old-term",
        "even-half-at-2",
        "even-half-at-2-old-term",
        "even-majority-2",
        "even-majority-2-old-term",
    ],
)
def test_commit(matches: tuple[int, ...], terms: tuple[int, ...], term: int, want: int) -> None:
    """The leader commits the largest index replicated on a majority, if it is of its
    own term (§5.3, §5.4.2)."""
    peers = tuple(range(1, len(matches) + 1))
    r = new_raft(peers=peers, storage=new_storage(ents(*terms), HardState(term=term)))
    for i, m in zip(peers, matches, strict=True):
        r.trk.progress[i].match = m
        r.trk.progress[i].next = m + 1
    r.maybe_commit()
    assert r.raft_log.committed == want


def test_pre_vote_with_check_quorum() -> None:
    """A pre-candidate has no leader, so it grants another pre-candidate's pre-vote even
    with check-quorum on; a follower within its lease ignores it (etcd
    TestPreVoteWithCheckQuorum)."""
    net = net_of(3, pre_vote=True, check_quorum=True)
    net.elect(1)
    net.isolate(1)
    net.elect(3)  # 2 ignores 3's pre-vote: its lease of leader 1 has not expired
    assert state_of(net, 3) == (StateType.PRE_CANDIDATE, 1)
    net.elect(2)  # 3 (no leader) grants 2's pre-vote and then its vote
    assert state_of(net, 2) == (StateType.LEADER, 2)


def test_read_index_lease_based_on_follower() -> None:
    """A lease-based read asked on a follower is answered by the leader without a
    heartbeat round."""
    net = net_of(3, check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    net.elect(1)
    net.nodes[2].raw.read_index(b"x")
    net.process_ready([2])
    net.deliver()  # the forwarded request reaches the leader
    net.process_ready([1])
    heartbeats = [f for f in net.in_flight if f.msg.type == MT.HEARTBEAT]
    assert heartbeats == []
    net.stabilize()
    assert net.nodes[2].read_states == [ReadState(index=1, request_ctx=b"x")]


def test_pre_vote_rejection_without_a_term_is_silent() -> None:
    """A node started from a snapshot has a log but term 0; refusing a pre-vote must not
    crash it (a peer's message is never fatal). It cannot send a rejection (term 0 marks
    local messages), so it stays silent: the pre-candidate gets no vote and times out."""
    r = new_raft(pre_vote=True, storage=new_storage(snapshot=(10, 1)))
    assert r.term == 0
    r.step(Message(type=MT.PRE_VOTE, frm=3, to=1, term=1, index=0, log_term=0))
    assert read_messages(r) == []
    assert (r.term, r.vote) == (0, 0)
    # A pre-vote it can grant is still answered (with the request's term).
    r.step(Message(type=MT.PRE_VOTE, frm=2, to=1, term=1, index=10, log_term=1))
    assert [(m.type, m.term, m.reject) for m in read_messages(r)] == [(MT.PRE_VOTE_RESP, 1, False)]
