"""Tests of the scenarios the Raft paper describes, after etcd-io/raft's raft_paper_test.go.

Each test checks a few sentences of "In Search of an Understandable Consensus Algorithm"
(Ongaro & Ousterhout, 2014); its docstring states the rule and cites the section. The
tests drive a `Raft` directly: they step messages in and read `msgs` out, so they pin the
exact messages the core sends. Pre-vote and check-quorum are off unless a test says
otherwise: the paper has neither.
"""

from __future__ import annotations

import pytest
from raftfixtures import ents, new_raft, new_storage, read_messages

from controlplane.raft import (
    NONE,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    Raft,
    StateType,
)
from controlplane.raft.rafttest.interaction import InteractionEnv

MT = MessageType


# -- helpers ------------------------------------------------------------------------------


def by_recipient(msgs: list[Message]) -> list[Message]:
    return sorted(msgs, key=lambda m: (m.to, m.type, m.index))


def accept_and_reply(m: Message) -> Message:
    """The follower's answer to an append it accepts."""
    assert m.type == MT.APP
    return Message(
        type=MT.APP_RESP, frm=m.to, to=m.frm, term=m.term, index=m.index + len(m.entries)
    )


def commit_noop_entry(r: Raft, s: MemoryStorage) -> None:
    """Replicate and commit the new leader's empty entry, then persist and apply it."""
    assert r.state == StateType.LEADER
    r.bcast_append()
    for m in read_messages(r):
        assert m.type == MT.APP and len(m.entries) == 1 and m.entries[0].data == b""
        r.step(accept_and_reply(m))
    read_messages(r)  # the appends that carry the new commit index
    s.append(r.raft_log.unstable_entries())
    r.raft_log.applied_to(r.raft_log.committed)
    r.raft_log.stable_to(r.raft_log.last_index(), r.raft_log.last_term())


def make_state(r: Raft, state: StateType) -> None:
    if state == StateType.FOLLOWER:
        r.become_follower(1, 2)
    elif state == StateType.CANDIDATE:
        r.become_candidate()
    elif state == StateType.LEADER:
        r.become_candidate()
        r.become_leader()


# -- §5.1 terms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [StateType.FOLLOWER, StateType.CANDIDATE, StateType.LEADER],
    ids=["follower", "candidate", "leader"],
)
def test_update_term_from_message(state: StateType) -> None:
    """A server seeing a larger term adopts it; a candidate or leader reverts to follower.

    §5.1: "If one server's current term is smaller than the other's, then it updates its
    current term to the larger value. If a candidate or leader discovers that its term is
    out of date, it immediately reverts to follower state."
    """
    r = new_raft()
    make_state(r, state)
    r.step(Message(type=MT.APP, frm=2, to=1, term=2))
    assert r.term == 2
    assert r.state == StateType.FOLLOWER


def test_reject_stale_term_message() -> None:
    """A request with a stale term is ignored: no state change, no answer (§5.1).

    The paper says "rejects"; like etcd, the core ignores it instead.
    """
    r = new_raft(storage=new_storage(hard_state=HardState(term=2)))
    before = (r.term, r.state, r.raft_log.last_index(), r.raft_log.committed)
    r.step(Message(type=MT.APP, frm=2, to=1, term=1, entries=(Entry(1, 1),), commit=1))
    assert (r.term, r.state, r.raft_log.last_index(), r.raft_log.committed) == before
    assert read_messages(r) == []


def test_stale_term_append_answered_with_check_quorum() -> None:
    """With check-quorum, a stale leader's append is answered at our term so it steps down.

    Etcd's extension of §5.1: a leader cut off in an old term never hears our term
    through votes (the lease ignores them), so the answer carries it.
    """
    r = new_raft(storage=new_storage(hard_state=HardState(term=2)), check_quorum=True)
    r.step(Message(type=MT.APP, frm=2, to=1, term=1))
    assert read_messages(r) == [Message(type=MT.APP_RESP, frm=1, to=2, term=2)]
    assert r.term == 2


# -- §5.2 leader election --------------------------------------------------------------------


def test_start_as_follower() -> None:
    """Servers start up as followers (§5.2)."""
    assert new_raft().state == StateType.FOLLOWER


def test_leader_bcast_beat() -> None:
    """On a heartbeat tick the leader sends empty MsgHeartbeats to every follower (§5.2).

    The heartbeat carries no entries, and a commit index no larger than what the
    follower is known to have (here nothing yet).
    """
    r = new_raft(heartbeat=1)
    r.become_candidate()
    r.become_leader()
    for i in range(10):
        r.append_entry([Entry(term=0, index=i + 1)])
    read_messages(r)
    r.tick()
    assert by_recipient(read_messages(r)) == [
        Message(type=MT.HEARTBEAT, frm=1, to=2, term=1),
        Message(type=MT.HEARTBEAT, frm=1, to=3, term=1),
    ]


@pytest.mark.parametrize(
    "state", [StateType.FOLLOWER, StateType.CANDIDATE], ids=["follower", "candidate"]
)
def test_nonleader_start_election(state: StateType) -> None:
    """Without communication for an election timeout, a server starts an election (§5.2).

    "it increments its current term and transitions to candidate state. It then votes for
    itself and issues RequestVote RPCs in parallel to each of the other servers". A
    candidate that does not win does the same again when its timeout elapses.
    """
    et = 10
    r = new_raft(election=et)
    make_state(r, state)
    read_messages(r)
    for _ in range(1, 2 * et):
        r.tick()
    assert r.term == 2
    assert r.state == StateType.CANDIDATE
    assert r.trk.votes[r.id] is True
    assert r.vote == r.id
    assert by_recipient(read_messages(r)) == [
        Message(type=MT.VOTE, frm=1, to=2, term=2, index=0, log_term=0),
        Message(type=MT.VOTE, frm=1, to=3, term=2, index=0, log_term=0),
    ]


@pytest.mark.parametrize(
    ("size", "votes", "want"),
    [
        (1, {}, StateType.LEADER),
        (3, {2: True, 3: True}, StateType.LEADER),
        (3, {2: True}, StateType.LEADER),
        (5, {2: True, 3: True, 4: True, 5: True}, StateType.LEADER),
        (5, {2: True, 3: True, 4: True}, StateType.LEADER),
        (5, {2: True, 3: True}, StateType.LEADER),
        (3, {2: False, 3: False}, StateType.FOLLOWER),
        (5, {2: False, 3: False, 4: False, 5: False}, StateType.FOLLOWER),
        (5, {2: True, 3: False, 4: False, 5: False}, StateType.FOLLOWER),
        (3, {}, StateType.CANDIDATE),
        (5, {2: True}, StateType.CANDIDATE),
        (5, {2: False, 3: False}, StateType.CANDIDATE),
        (5, {}, StateType.CANDIDATE),
    ],
    ids=[
        "single-node-wins",
        "3-all-grant",
        "3-majority",
        "5-all-grant",
        "5-four",
        "5-majority",
        "3-all-deny",
        "5-all-deny",
        "5-majority-deny",
        "3-no-answer",
        "5-one-grant",
        "5-two-deny",
        "5-no-answer",
    ],
)
def test_leader_election_in_one_round_rpc(
    size: int, votes: dict[int, bool], want: StateType
) -> None:
    """One round of RequestVote ends in a win, a loss, or no decision (§5.2).

    A candidate wins with votes from a majority, returns to follower when a majority
    denies it, and otherwise stays a candidate; the term stays that of the election.
    """
    r = new_raft(peers=tuple(range(1, size + 1)))
    r.step(Message(type=MT.HUP, frm=1, to=1))
    for frm, granted in votes.items():
        r.step(Message(type=MT.VOTE_RESP, frm=frm, to=1, term=r.term, reject=not granted))
    assert r.state == want
    assert r.term == 1


@pytest.mark.parametrize(
    ("vote", "candidate", "reject"),
    [(NONE, 2, False), (NONE, 3, False), (2, 2, False), (3, 3, False), (2, 3, True), (3, 2, True)],
    ids=["none-2", "none-3", "2-again", "3-again", "voted-2-asked-by-3", "voted-3-asked-by-2"],
)
def test_follower_vote(vote: int, candidate: int, reject: bool) -> None:
    """A follower votes for at most one candidate per term, first come first served (§5.2).

    Repeating the vote for the same candidate (a retried request) is allowed.
    """
    r = new_raft(storage=new_storage(hard_state=HardState(term=1, vote=vote)))
    r.step(Message(type=MT.VOTE, frm=candidate, to=1, term=1))
    assert read_messages(r) == [
        Message(type=MT.VOTE_RESP, frm=1, to=candidate, term=1, reject=reject)
    ]


@pytest.mark.parametrize("term", [1, 2], ids=["same-term", "higher-term"])
def test_candidate_fallback(term: int) -> None:
    """A candidate that hears from a leader of at least its term becomes its follower (§5.2)."""
    r = new_raft()
    r.step(Message(type=MT.HUP, frm=1, to=1))
    assert r.state == StateType.CANDIDATE
    r.step(Message(type=MT.APP, frm=2, to=1, term=term))
    assert r.state == StateType.FOLLOWER  # type: ignore[comparison-overlap]  # step mutates
    assert r.term == term
    assert r.lead == 2


@pytest.mark.parametrize(
    "state", [StateType.FOLLOWER, StateType.CANDIDATE], ids=["follower", "candidate"]
)
def test_election_timeout_randomized(state: StateType) -> None:
    """Election timeouts are chosen at random from [T, 2T) (§5.2), and every value occurs."""
    et = 10
    r = new_raft(election=et)
    timeouts: set[int] = set()
    for _ in range(50 * et):
        if state == StateType.FOLLOWER:
            r.become_follower(r.term + 1, 2)
        else:
            r.become_candidate()
        read_messages(r)
        elapsed = 0
        while not read_messages(r):
            r.tick()
            elapsed += 1
        timeouts.add(elapsed)
    assert timeouts == set(range(et, 2 * et))


@pytest.mark.parametrize(
    "state", [StateType.FOLLOWER, StateType.CANDIDATE], ids=["follower", "candidate"]
)
def test_election_timeouts_rarely_conflict(state: StateType) -> None:
    """Randomized timeouts make it unlikely that several servers time out at once (§5.2)."""
    et, size = 10, 5
    ids = tuple(range(1, size + 1))
    rafts = [new_raft(i, peers=ids, election=et) for i in ids]
    conflicts = 0
    rounds = 1000
    for _ in range(rounds):
        for r in rafts:
            if state == StateType.FOLLOWER:
                r.become_follower(r.term + 1, NONE)
            else:
                r.become_candidate()
            read_messages(r)
        timed_out = 0
        while timed_out == 0:
            for r in rafts:
                r.tick()
                if read_messages(r):
                    timed_out += 1
        conflicts += timed_out > 1
    assert conflicts / rounds <= 0.3


# -- §5.3 log replication ----------------------------------------------------------------------


def test_leader_start_replication() -> None:
    """The leader appends a proposal and sends it to every follower with the preceding
    entry's index and term (§5.3); the entry is also handed over for stable storage."""
    s = new_storage()
    r = new_raft(storage=s)
    r.become_candidate()
    r.become_leader()
    commit_noop_entry(r, s)
    li = r.raft_log.last_index()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some data"),)))
    assert r.raft_log.last_index() == li + 1
    assert r.raft_log.committed == li
    want = (Entry(term=1, index=li + 1, data=b"some data"),)
    assert by_recipient(read_messages(r)) == [
        Message(type=MT.APP, frm=1, to=to, term=1, index=li, log_term=1, entries=want, commit=li)
        for to in (2, 3)
    ]
    assert tuple(r.raft_log.unstable_entries()) == want


def test_leader_commit_entry() -> None:
    """Once an entry is replicated on a majority the leader commits it, hands it over for
    applying, and tells the followers the new commit index in its next appends (§5.3)."""
    s = new_storage()
    r = new_raft(storage=s)
    r.become_candidate()
    r.become_leader()
    commit_noop_entry(r, s)
    li = r.raft_log.last_index()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some data"),)))
    for m in read_messages(r):
        r.step(accept_and_reply(m))
    assert r.raft_log.committed == li + 1
    assert r.raft_log.next_committed_ents() == [Entry(term=1, index=li + 1, data=b"some data")]
    msgs = by_recipient(read_messages(r))
    assert [(m.to, m.type, m.commit) for m in msgs] == [
        (2, MT.APP, li + 1),
        (3, MT.APP, li + 1),
    ]


@pytest.mark.parametrize(
    ("size", "acceptors", "committed"),
    [
        (1, (), True),
        (3, (), False),
        (3, (2,), True),
        (3, (2, 3), True),
        (5, (), False),
        (5, (2,), False),
        (5, (2, 3), True),
        (5, (2, 3, 4), True),
        (5, (2, 3, 4, 5), True),
    ],
    ids=["1-self", "3-none", "3-one", "3-two", "5-none", "5-one", "5-two", "5-three", "5-all"],
)
def test_leader_acknowledge_commit(size: int, acceptors: tuple[int, ...], committed: bool) -> None:
    """An entry is committed once the leader has replicated it on a majority (§5.3)."""
    s = new_storage()
    r = new_raft(peers=tuple(range(1, size + 1)), storage=s)
    r.become_candidate()
    r.become_leader()
    commit_noop_entry(r, s)
    li = r.raft_log.last_index()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some data"),)))
    for m in read_messages(r):
        if m.to in acceptors:
            r.step(accept_and_reply(m))
    assert (r.raft_log.committed > li) == committed


@pytest.mark.parametrize(
    "log",
    [ents(), ents(2), ents(1, 2), ents(1)],
    ids=["empty", "term-2", "terms-1-2", "term-1"],
)
def test_leader_commit_preceding_entries(log: list[Entry]) -> None:
    """Committing an entry commits every preceding one, including entries of earlier
    leaders, and they are applied in log order (§5.3)."""
    s = new_storage(log, HardState(term=2))
    r = new_raft(storage=s)
    r.become_candidate()
    r.become_leader()
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some data"),)))
    for m in read_messages(r):
        r.step(accept_and_reply(m))
    li = len(log)
    assert r.raft_log.next_committed_ents() == [
        *log,
        Entry(term=3, index=li + 1),
        Entry(term=3, index=li + 2, data=b"some data"),
    ]


@pytest.mark.parametrize(
    ("entries", "commit"),
    [
        ((Entry(1, 1, data=b"some data"),), 1),
        ((Entry(1, 1, data=b"some data"), Entry(1, 2, data=b"some data2")), 2),
        ((Entry(1, 1, data=b"some data2"), Entry(1, 2, data=b"some data")), 2),
        ((Entry(1, 1, data=b"some data"), Entry(1, 2, data=b"some data2")), 1),
    ],
    ids=["one", "two", "two-other-order", "two-commit-one"],
)
def test_follower_commit_entry(entries: tuple[Entry, ...], commit: int) -> None:
    """A follower that learns an entry is committed applies it, in log order (§5.3)."""
    r = new_raft()
    r.become_follower(1, 2)
    r.step(Message(type=MT.APP, frm=2, to=1, term=1, entries=entries, commit=commit))
    assert r.raft_log.committed == commit
    assert r.raft_log.next_committed_ents() == list(entries[:commit])


@pytest.mark.parametrize(
    ("log_term", "index", "want"),
    [
        (0, 0, (1, False, 0, 0)),
        (1, 1, (1, False, 0, 0)),
        (2, 2, (2, False, 0, 0)),
        (1, 2, (2, True, 1, 1)),
        (3, 3, (3, True, 2, 2)),
    ],
    ids=[
        "match-before-committed",
        "match-committed",
        "match-uncommitted",
        "term-mismatch",
        "missing-entry",
    ],
)
def test_follower_check_msg_app(
    log_term: int, index: int, want: tuple[int, bool, int, int]
) -> None:
    """A follower refuses an append whose preceding (index, term) it does not have, and
    accepts it otherwise (§5.3, the consistency check).

    A rejection hints at the follower's last entry that can match (index and term), so
    the leader can skip a whole term at a time; an accepted append is answered with the
    index of the last entry known to match (the commit index if the probe is older).
    `want` is (index, reject, reject_hint, log_term) of the answer.
    """
    s = new_storage(ents(1, 2), HardState(commit=1))
    r = new_raft(storage=s)
    r.become_follower(2, 2)
    r.step(Message(type=MT.APP, frm=2, to=1, term=2, log_term=log_term, index=index))
    want_index, reject, hint, hint_term = want
    assert read_messages(r) == [
        Message(
            type=MT.APP_RESP,
            frm=1,
            to=2,
            term=2,
            index=want_index,
            reject=reject,
            reject_hint=hint,
            log_term=hint_term,
        )
    ]


@pytest.mark.parametrize(
    ("index", "term", "new", "want_log", "want_unstable"),
    [
        (2, 2, ents(3, start=3), ents(1, 2, 3), ents(3, start=3)),
        (1, 1, ents(3, 4, start=2), ents(1, 3, 4), ents(3, 4, start=2)),
        (0, 0, ents(1), ents(1, 2), []),
        (0, 0, ents(3), ents(3), ents(3)),
    ],
    ids=["append", "truncate-conflict", "already-present", "replace-all"],
)
def test_follower_append_entries(
    index: int, term: int, new: list[Entry], want_log: list[Entry], want_unstable: list[Entry]
) -> None:
    """A valid append deletes the first conflicting entry and all that follow it, and
    appends any new entries not already in the log; new entries go to stable storage
    (§5.3)."""
    r = new_raft(storage=new_storage(ents(1, 2)))
    r.become_follower(2, 2)
    r.step(
        Message(type=MT.APP, frm=2, to=1, term=2, log_term=term, index=index, entries=tuple(new))
    )
    assert r.raft_log.all_entries() == want_log
    assert r.raft_log.unstable_entries() == want_unstable


FIGURE_7_LEADER = ents(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)


@pytest.mark.parametrize(
    "follower",
    [
        ents(1, 1, 1, 4, 4, 5, 5, 6, 6),
        ents(1, 1, 1, 4),
        ents(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),
        ents(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7),
        ents(1, 1, 1, 4, 4, 4, 4),
        ents(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),
    ],
    ids=["a-missing-one", "b-missing-many", "c-extra-uncommitted", "d-extra-newer-term",
         "e-conflict-short", "f-conflict-long"],
)  # fmt: skip
def test_leader_sync_follower_log(follower: list[Entry]) -> None:
    """The leader brings any follower's log into consistency with its own (§5.3, Figure 7).

    Cases (a)-(f) of Figure 7: missing entries, extra uncommitted entries, and conflicting
    entries from other terms. The leader (term 8, log of Figure 7 top) is elected with a
    third node's vote even when the follower's log is more up to date (case d).
    """
    lead_s = new_storage(FIGURE_7_LEADER, HardState(term=8, commit=len(FIGURE_7_LEADER)))
    lead = new_raft(1, storage=lead_s)
    follower_r = new_raft(2, storage=new_storage(follower, HardState(term=7)))
    nodes = {1: lead, 2: follower_r}  # 3 is a black hole

    def deliver() -> None:
        for _ in range(100):
            msgs = [m for r in nodes.values() for m in read_messages(r)]
            if not msgs:
                return
            for m in msgs:
                if m.to in nodes:
                    nodes[m.to].step(m)
        raise AssertionError("no quiescence")

    lead.step(Message(type=MT.HUP, frm=1, to=1))
    deliver()
    lead.step(Message(type=MT.VOTE_RESP, frm=3, to=1, term=9))
    deliver()
    assert lead.state == StateType.LEADER
    lead.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0),)))
    deliver()
    assert follower_r.raft_log.all_entries() == lead.raft_log.all_entries()
    assert follower_r.raft_log.committed == lead.raft_log.committed


# -- §5.4 safety ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log", "term"), [(ents(1), 2), (ents(1, 2), 3)], ids=["one-entry", "two-terms"]
)
def test_vote_request(log: list[Entry], term: int) -> None:
    """A vote request carries the candidate's last log index and term and goes to every
    other server (§5.4.1)."""
    r = new_raft()
    r.step(Message(type=MT.APP, frm=2, to=1, term=term - 1, entries=tuple(log)))
    read_messages(r)
    for _ in range(1, r.election_timeout * 2):
        r.tick()
    msgs = by_recipient(read_messages(r))
    assert [(m.type, m.to, m.term, m.index, m.log_term) for m in msgs] == [
        (MT.VOTE, to, term, log[-1].index, log[-1].term) for to in (2, 3)
    ]


@pytest.mark.parametrize(
    ("log", "log_term", "index", "reject"),
    [
        (ents(1), 1, 1, False),
        (ents(1), 1, 2, False),
        (ents(1, 1), 1, 1, True),
        (ents(1), 2, 1, False),
        (ents(1), 2, 2, False),
        (ents(1, 1), 2, 1, False),
        (ents(2), 1, 1, True),
        (ents(2), 1, 2, True),
        (ents(2, 2), 1, 1, True),
        (ents(1, 1), 1, 1, True),
    ],
    ids=[
        "same-term-same-index",
        "same-term-longer",
        "same-term-shorter",
        "higher-term-same-index",
        "higher-term-longer",
        "higher-term-shorter",
        "lower-term-same-index",
        "lower-term-longer",
        "lower-term-shorter",
        "same-term-shorter-again",
    ],
)
def test_voter(log: list[Entry], log_term: int, index: int, reject: bool) -> None:
    """A voter denies its vote if its own log is more up to date than the candidate's
    (§5.4.1): the later last term wins, and with equal last terms the longer log."""
    r = new_raft(peers=(1, 2), storage=new_storage(log))
    r.step(Message(type=MT.VOTE, frm=2, to=1, term=3, log_term=log_term, index=index))
    msgs = read_messages(r)
    assert [(m.type, m.reject) for m in msgs] == [(MT.VOTE_RESP, reject)]


@pytest.mark.parametrize(
    ("acked", "commit"),
    [(1, 0), (2, 0), (3, 3)],
    ids=["previous-term-1", "previous-term-2", "current-term"],
)
def test_leader_only_commits_log_from_current_term(acked: int, commit: int) -> None:
    """Only entries of the leader's current term are committed by counting replicas;
    earlier ones are committed indirectly, with them (§5.4.2)."""
    r = new_raft(peers=(1, 2), storage=new_storage(ents(1, 2), HardState(term=2)))
    r.become_candidate()
    r.become_leader()  # term 3, empty entry at index 3
    read_messages(r)
    r.step(Message(type=MT.PROP, frm=1, to=1, entries=(Entry(0, 0),)))
    r.step(Message(type=MT.APP_RESP, frm=2, to=1, term=r.term, index=acked))
    assert r.raft_log.committed == commit


# -- Figure 8 ------------------------------------------------------------------------------

# The scenario of Figure 8 (§5.4.2), scripted on the interaction environment with one
# entry per append. Five nodes; (a) S1 leads term 1 and replicates index 2 ("x") to S2
# only. (b) S1 crashes; S5 is elected at term 2 with S3 and S4 and writes indexes 2 and 3
# that nobody else receives; S5 crashes. (c) S1 restarts and is elected at term 3 (its
# first attempt, at term 2, fails: S3 and S4 voted for S5 in that term); it replicates
# index 2 to S3 and S4, so "x" is on a majority (S1, S2, S3, S4) but the term-3 entry at
# index 3 is not. (d) S1 crashes; S5 restarts and is elected at term 4 (its last term, 2,
# beats the others' 1; its attempt at term 3 fails) and overwrites index 2 everywhere.
FIGURE_8 = """
log-level none
add-nodes 5 prevote=false checkquorum=false max-size=1 {bugs}
campaign 1
stabilize
propose 1 x
process-ready 1
deliver-msgs 2 drop=(3 4 5)
process-ready 2
deliver-msgs 1
process-ready 1
deliver-msgs drop=(2 3 4 5)
crash 1
campaign 5
process-ready 5
deliver-msgs 2 3 4
process-ready 2 3 4
deliver-msgs 5
propose 5 y
process-ready 5
deliver-msgs drop=(1 2 3 4)
crash 5
restart 1
campaign 1
stabilize 1 2 3 4
campaign 1
process-ready 1
deliver-msgs 2 3 4
process-ready 2 3 4
deliver-msgs 1
process-ready 1
deliver-msgs 3 4 drop=(2 5)
process-ready 3 4
deliver-msgs 1
process-ready 1
deliver-msgs 3 4 drop=(2 5)
process-ready 3 4
deliver-msgs 1
process-ready 1
deliver-msgs drop=(2 3 4 5)
"""
# Then (d): S5 takes over.
FIGURE_8_D = """
log-level none
crash 1
restart 5
campaign 5
stabilize 2 3 4 5
campaign 5
stabilize 2 3 4 5
"""


@pytest.mark.parametrize("bug", [False, True], ids=["correct", "planted-commit-previous-term"])
def test_figure_8(bug: bool) -> None:
    """A leader must not commit an entry of an earlier term because it is stored on a
    majority (§5.4.2, Figure 8): a later leader may still overwrite it.

    With the check, S1 leaves "x" uncommitted in (c) and S5's overwrite in (d) is safe.
    With the planted bug (commit by counting replicas of any term) S1 commits and applies
    "x", and (d) replaces it with another entry: a committed entry is lost.
    """
    env = InteractionEnv()
    env.run(FIGURE_8.format(bugs="bugs=(commit-previous-term)" if bug else ""))
    s1 = env.net.nodes[1].raw.raft
    assert s1.state == StateType.LEADER and s1.term == 3
    x = Entry(term=1, index=2, data=b"x")
    on_majority = [
        i for i in (1, 2, 3, 4, 5) if x in env.net.nodes[i].storage.entries(2, 3, 1 << 30)
    ]
    assert on_majority == [1, 2, 3, 4]
    assert s1.raft_log.committed == (2 if bug else 1)

    env.run(FIGURE_8_D)
    s5 = env.net.nodes[5].raw.raft
    assert s5.state == StateType.LEADER and s5.term == 4
    overwritten = env.net.nodes[3].storage.entries(2, 3, 1 << 30)
    assert overwritten == [Entry(term=2, index=2)]
    # Safe only if S1 never committed (and applied) "x".
    assert (env.net.nodes[1].app.applied_index >= 2) == bug
