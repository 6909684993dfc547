"""Unit tests of follower progress, flow control and quorum arithmetic (after
etcd-io/raft's tracker/progress_test.go, tracker/inflights_test.go and quorum tests)."""

from __future__ import annotations

import pytest

from controlplane.raft.progress import (
    Inflights,
    Progress,
    ProgressState,
    VoteResult,
    committed_index,
    vote_result,
)


def progress(
    state: ProgressState = ProgressState.PROBE,
    match: int = 0,
    next_: int = 1,
    pending_snapshot: int = 0,
    paused: bool = False,
) -> Progress:
    p = Progress(next_=next_, inflights=Inflights(256), match=match)
    p.state = state
    p.pending_snapshot = pending_snapshot
    p.msg_app_flow_paused = paused
    return p


# -- Inflights ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_bytes", "full_at", "free_le", "again_at"),
    [
        (0, 0, 0, 0, 0),
        (1, 0, 1, 1, 2),
        (1, 10, 1, 1, 2),
        (15, 0, 15, 6, 22),
        (8, 400, 4, 2, 7),
        (8, 406, 4, 3, 8),
        (15, 408, 5, 1, 6),
    ],
    ids=[
        "always-full",
        "single-entry",
        "single-entry-overflow",
        "multi-entry",
        "slight-overflow",
        "exact-max-bytes",
        "larger-overflow",
    ],
)
def test_inflights_full(
    size: int, max_bytes: int, full_at: int, free_le: int, again_at: int
) -> None:
    """The window is full at `size` appends or once their bytes reach `max_bytes`; freeing
    acknowledged appends reopens it, and adding to a full window is a bug."""
    inf = Inflights(size, max_bytes)

    def add_until_full(begin: int, end: int) -> None:
        for i in range(begin, end):
            assert not inf.full(), f"full at {i}, want {end}"
            inf.add(i, 100 + i)
        assert inf.full()

    add_until_full(0, full_at)
    inf.free_le(free_le)
    add_until_full(full_at, again_at)
    with pytest.raises(AssertionError):
        inf.add(100, 1024)


def test_inflights_free_le() -> None:
    """free_le forgets every append up to the acknowledged index, and their bytes."""
    inf = Inflights(10)
    for i in range(10):
        inf.add(i, 1)
    inf.free_le(0)
    assert (inf.count, inf.bytes) == (9, 9)
    inf.free_le(4)
    assert (inf.count, inf.bytes) == (5, 5)
    inf.free_le(8)
    assert inf.count == 1
    inf.free_le(3)  # stale: nothing more to free
    assert inf.count == 1
    inf.free_le(9)
    assert (inf.count, inf.bytes, inf.full()) == (0, 0, False)


# -- Progress -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "paused", "want"),
    [
        (ProgressState.PROBE, False, False),
        (ProgressState.PROBE, True, True),
        (ProgressState.REPLICATE, False, False),
        (ProgressState.REPLICATE, True, True),
        (ProgressState.SNAPSHOT, False, True),
        (ProgressState.SNAPSHOT, True, True),
    ],
    ids=["probe", "probe-paused", "replicate", "replicate-paused", "snapshot", "snapshot-paused"],
)
def test_is_paused(state: ProgressState, paused: bool, want: bool) -> None:
    """A follower is paused while its probe is outstanding, its window is full, or it is
    waiting for a snapshot."""
    assert progress(state, paused=paused).is_paused() == want


def test_resume() -> None:
    """A rejection or an acknowledgement lets the leader send again."""
    p = progress(next_=2, paused=True)
    p.maybe_decr_to(1, 1)
    assert not p.msg_app_flow_paused
    p.msg_app_flow_paused = True
    p.maybe_update(2)
    assert not p.msg_app_flow_paused


def test_replicate_pauses_when_window_full() -> None:
    """In StateReplicate, sending pauses the follower exactly when the window fills up."""
    p = Progress(next_=1, inflights=Inflights(2))
    p.become_replicate()
    p.sent_entries(1, 10)
    assert not p.is_paused()
    p.sent_entries(2, 10)
    assert p.is_paused()
    p.maybe_update(1)
    p.inflights.free_le(1)
    assert not p.is_paused()


@pytest.mark.parametrize(
    ("p", "want_next"),
    [
        (progress(ProgressState.REPLICATE, match=1, next_=5), 2),
        (progress(ProgressState.SNAPSHOT, match=1, next_=5, pending_snapshot=10), 11),
        (progress(ProgressState.SNAPSHOT, match=1, next_=5, pending_snapshot=0), 2),
    ],
    ids=["from-replicate", "snapshot-done", "snapshot-failed"],
)
def test_become_probe(p: Progress, want_next: int) -> None:
    """Probing restarts after the match, or after a snapshot that was sent."""
    p.become_probe()
    assert (p.state, p.match, p.next) == (ProgressState.PROBE, 1, want_next)


def test_become_replicate() -> None:
    """Replication starts right after the match."""
    p = progress(match=1, next_=5)
    p.become_replicate()
    assert (p.state, p.match, p.next) == (ProgressState.REPLICATE, 1, 2)


def test_become_snapshot() -> None:
    """A snapshot in flight is remembered; match is unchanged."""
    p = progress(match=1, next_=5)
    p.become_snapshot(10)
    assert (p.state, p.match, p.pending_snapshot) == (ProgressState.SNAPSHOT, 1, 10)


@pytest.mark.parametrize(
    ("update", "want_match", "want_next", "want_ok"),
    [(2, 3, 5, False), (3, 3, 5, False), (4, 4, 5, True), (5, 5, 6, True)],
    ids=["older", "same", "newer-match", "newer-match-and-next"],
)
def test_maybe_update(update: int, want_match: int, want_next: int, want_ok: bool) -> None:
    """Acknowledgements never move match or next backwards."""
    p = progress(match=3, next_=5)
    assert p.maybe_update(update) == want_ok
    assert (p.match, p.next) == (want_match, want_next)


@pytest.mark.parametrize(
    ("state", "match", "next_", "rejected", "hint", "want"),
    [
        (ProgressState.REPLICATE, 5, 10, 5, 5, (False, 10)),
        (ProgressState.REPLICATE, 5, 10, 4, 4, (False, 10)),
        (ProgressState.REPLICATE, 5, 10, 9, 9, (True, 6)),
        (ProgressState.PROBE, 0, 0, 0, 0, (False, 0)),
        (ProgressState.PROBE, 0, 10, 5, 5, (False, 10)),
        (ProgressState.PROBE, 0, 10, 9, 9, (True, 9)),
        (ProgressState.PROBE, 0, 2, 1, 1, (True, 1)),
        (ProgressState.PROBE, 0, 1, 0, 0, (True, 1)),
        (ProgressState.PROBE, 0, 10, 9, 2, (True, 3)),
        (ProgressState.PROBE, 0, 10, 9, 0, (True, 1)),
    ],
    ids=[
        "replicate-stale-at-match",
        "replicate-stale-below-match",
        "replicate-back-to-match",
        "probe-stale-zero",
        "probe-stale",
        "probe-decrement",
        "probe-decrement-to-1",
        "probe-floor-1",
        "probe-to-hint",
        "probe-hint-zero",
    ],
)
def test_maybe_decr_to(  # noqa: PLR0917
    state: ProgressState, match: int, next_: int, rejected: int, hint: int, want: tuple[bool, int]
) -> None:
    """A rejection moves next back: to match+1 when replicating, else to just after the
    follower's hint (never below match+1); a rejection of an older append is stale.
    `want` is (changed, next after)."""
    p = progress(state, match=match, next_=next_)
    assert (p.maybe_decr_to(rejected, hint), p.next) == want


# -- quorum -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voters", "match", "want"),
    [
        ((1,), {1: 5}, 5),
        ((1, 2, 3), {1: 5, 2: 4, 3: 1}, 4),
        ((1, 2, 3), {1: 5}, 0),
        ((1, 2, 3, 4), {1: 5, 2: 4, 3: 3, 4: 1}, 3),
        ((1, 2, 3, 4, 5), {1: 9, 2: 8, 3: 7, 4: 1, 5: 0}, 7),
        ((1, 2, 3), {1: 5, 2: 5, 9: 9}, 5),
    ],
    ids=["single", "three", "three-missing", "four-needs-three", "five", "non-voter-ignored"],
)
def test_committed_index(voters: tuple[int, ...], match: dict[int, int], want: int) -> None:
    """The commit index is the largest index a majority of voters has (§5.3)."""
    assert committed_index(voters, match) == want


@pytest.mark.parametrize(
    ("voters", "votes", "want"),
    [
        ((1,), {1: True}, VoteResult.WON),
        ((1, 2, 3), {1: True}, VoteResult.PENDING),
        ((1, 2, 3), {1: True, 2: True}, VoteResult.WON),
        ((1, 2, 3), {1: True, 2: False, 3: False}, VoteResult.LOST),
        ((1, 2, 3, 4), {1: True, 2: True, 3: False}, VoteResult.PENDING),
        ((1, 2, 3, 4), {1: True, 2: True, 3: False, 4: False}, VoteResult.LOST),
        ((1, 2, 3), {1: True, 9: True}, VoteResult.PENDING),
    ],
    ids=["single", "pending", "won", "lost", "four-pending", "four-split", "non-voter-ignored"],
)
def test_vote_result(voters: tuple[int, ...], votes: dict[int, bool], want: VoteResult) -> None:
    """An election is won with a majority of grants, lost once a majority is impossible."""
    assert vote_result(voters, votes) == want
