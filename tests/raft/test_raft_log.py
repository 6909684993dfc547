"""Unit tests of `RaftLog` and its unstable tail, after etcd-io/raft's log_test.go and
log_unstable_test.go."""

from __future__ import annotations

import pytest
from raftfixtures import ents, new_storage

from controlplane.raft import Compacted, Entry, Unavailable
from controlplane.raft.log import RaftLog
from controlplane.raft.storage import NO_LIMIT
from controlplane.raft.types import Snapshot, SnapshotMetadata

ENTRY_SIZE = Entry(0, 0).size()


def log_with(*terms: int, committed: int = 0) -> RaftLog:
    """A log whose entries 1..n (with these terms) are all unstable."""
    log = RaftLog(new_storage())
    log.append(ents(*terms))
    log.committed = committed
    return log


def snap(index: int, term: int) -> Snapshot:
    return Snapshot(metadata=SnapshotMetadata(index=index, term=term))


# -- find_conflict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "want"),
    [
        ([], 0),
        (ents(1, 2, 3), 0),
        (ents(2, 3, start=2), 0),
        (ents(3, start=3), 0),
        (ents(1, 2, 3, 4, 4), 4),
        (ents(2, 3, 4, 4, start=2), 4),
        (ents(3, 4, 4, start=3), 4),
        (ents(4, 4, start=4), 4),
        (ents(4, 4), 1),
        (ents(1, 4, 4, start=2), 2),
        (ents(1, 2, 4, 4, start=3), 3),
    ],
    ids=[
        "empty",
        "all-match",
        "suffix-match",
        "last-matches",
        "new-after-match",
        "new-after-suffix",
        "new-after-last",
        "only-new",
        "conflict-first",
        "conflict-second",
        "conflict-third",
    ],
)
def test_find_conflict(new: list[Entry], want: int) -> None:
    """The first entry that is new or whose term differs from ours is the conflict; 0 if
    every entry is already in the log."""
    log = log_with(1, 2, 3)
    assert log.find_conflict(tuple(new)) == want


# -- find_conflict_by_term --------------------------------------------------------------

# (snapshot index and term, entries after it, index, term, want index)
_FRESH = ((0, 0), ents(2, 2, 5, 5, 5))
_COMPACTED = ((10, 3), ents(3, 3, 4, 4, 4, start=11))


@pytest.mark.parametrize(
    ("log", "index", "term", "want"),
    [
        (_FRESH, 100, 2, 100),
        (_FRESH, 5, 6, 5),
        (_FRESH, 5, 5, 5),
        (_FRESH, 5, 4, 2),
        (_FRESH, 5, 2, 2),
        (_FRESH, 5, 1, 0),
        (_FRESH, 1, 2, 1),
        (_FRESH, 1, 1, 0),
        (_FRESH, 0, 0, 0),
        (_COMPACTED, 30, 3, 30),
        (_COMPACTED, 14, 9, 14),
        (_COMPACTED, 14, 4, 14),
        (_COMPACTED, 14, 3, 12),
        (_COMPACTED, 14, 2, 9),
        (_COMPACTED, 11, 5, 11),
        (_COMPACTED, 10, 5, 10),
        (_COMPACTED, 10, 3, 10),
        (_COMPACTED, 10, 2, 9),
        (_COMPACTED, 9, 2, 9),
        (_COMPACTED, 4, 2, 4),
        (_COMPACTED, 0, 0, 0),
    ],
    ids=[
        "unavailable",
        "last-lower-term",
        "last-same-term",
        "skip-term-5",
        "skip-to-term-2",
        "all-higher",
        "first-entry",
        "first-entry-higher",
        "zero",
        "compacted-unavailable",
        "compacted-last-lower",
        "compacted-last-same",
        "compacted-skip-term-4",
        "compacted-into-snapshot",
        "compacted-first",
        "compacted-snapshot-entry",
        "compacted-snapshot-same-term",
        "compacted-below-snapshot",
        "compacted-9",
        "compacted-4",
        "compacted-zero",
    ],
)
def test_find_conflict_by_term(
    log: tuple[tuple[int, int], list[Entry]], index: int, term: int, want: int
) -> None:
    """The largest index at or below `index` whose term is at most `term` (fast log
    backtracking). Where the term is unknown (compacted or beyond the log) that index is a
    possible match, returned with term 0."""
    (si, st), entries = log
    raft_log = RaftLog(new_storage(snapshot=(si, st) if si else None))
    raft_log.append(entries)
    got_index, got_term = raft_log.find_conflict_by_term(index, term)
    assert got_index == want
    assert got_term == raft_log.zero_term_on_out_of_bounds(want)


# -- is_up_to_date ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_index", "term", "want"),
    [
        (2, 4, True),
        (3, 4, True),
        (4, 4, True),
        (2, 2, False),
        (3, 2, False),
        (4, 2, False),
        (2, 3, False),
        (3, 3, True),
        (4, 3, True),
    ],
    ids=[
        "higher-term-shorter",
        "higher-term-equal",
        "higher-term-longer",
        "lower-term-shorter",
        "lower-term-equal",
        "lower-term-longer",
        "same-term-shorter",
        "same-term-equal",
        "same-term-longer",
    ],
)
def test_is_up_to_date(last_index: int, term: int, want: bool) -> None:
    """A log is at least as up to date if its last term is higher, or equal with an equal
    or larger last index (§5.4.1)."""
    assert log_with(1, 2, 3).is_up_to_date(last_index, term) == want


# -- append and maybe_append -------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "want_last", "want_log", "want_offset"),
    [
        ([], 2, ents(1, 2), 3),
        (ents(2, start=3), 3, ents(1, 2, 2), 3),
        (ents(2), 1, ents(2), 1),
        (ents(3, 3, start=2), 3, ents(1, 3, 3), 2),
    ],
    ids=["nothing", "after-last", "replace-from-1", "replace-from-2"],
)
def test_append(new: list[Entry], want_last: int, want_log: list[Entry], want_offset: int) -> None:
    """`append` truncates at the first new index and returns the new last index; the
    unstable tail starts where the rewrite started."""
    log = RaftLog(new_storage(ents(1, 2)))
    assert log.append(new) == want_last
    assert log.all_entries() == want_log
    assert log.unstable.offset == want_offset


def test_append_below_commit_is_a_bug() -> None:
    """Appending over committed entries is a broken invariant, not an input error."""
    log = log_with(1, 2, 3, committed=2)
    with pytest.raises(AssertionError):
        log.append(ents(4, start=2))


LAST_INDEX, LAST_TERM, COMMIT = 3, 3, 1


@pytest.mark.parametrize(
    ("log_term", "index", "committed", "new", "want"),
    [
        (LAST_TERM - 1, LAST_INDEX, LAST_INDEX, ents(4, start=4), (None, COMMIT)),
        (LAST_TERM, LAST_INDEX + 1, LAST_INDEX, ents(4, start=5), (None, COMMIT)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX, [], (LAST_INDEX, LAST_INDEX)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX + 1, [], (LAST_INDEX, LAST_INDEX)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX - 1, [], (LAST_INDEX, LAST_INDEX - 1)),
        (LAST_TERM, LAST_INDEX, 0, [], (LAST_INDEX, COMMIT)),
        (0, 0, LAST_INDEX, [], (0, COMMIT)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX, ents(4, start=4), (4, LAST_INDEX)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX + 1, ents(4, start=4), (4, 4)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX + 2, ents(4, start=4), (4, 4)),
        (LAST_TERM, LAST_INDEX, LAST_INDEX + 2, ents(4, 4, start=4), (5, 5)),
        (LAST_TERM - 1, LAST_INDEX - 1, LAST_INDEX, ents(4, start=3), (3, 3)),
        (LAST_TERM - 2, LAST_INDEX - 2, LAST_INDEX, ents(4, start=2), (2, 2)),
        (LAST_TERM - 2, LAST_INDEX - 2, LAST_INDEX, ents(4, 4, start=2), (3, 3)),
    ],
    ids=[
        "term-mismatch",
        "index-beyond-log",
        "match-last",
        "commit-capped-at-last-new",
        "commit-from-message",
        "commit-never-decreases",
        "commit-never-decreases-empty-probe",
        "append-one",
        "append-one-commit-it",
        "append-one-commit-capped",
        "append-two",
        "replace-last",
        "replace-middle",
        "replace-middle-two",
    ],
)
def test_maybe_append(
    log_term: int,
    index: int,
    committed: int,
    new: list[Entry],
    want: tuple[int | None, int],
) -> None:
    """Entries are appended only after a matching (index, term) (§5.3); the commit index
    follows the leader's but never passes the last new entry and never decreases.
    `want` is (last new index or None if rejected, commit index after)."""
    log = log_with(1, 2, 3, committed=COMMIT)
    last_new = log.maybe_append(index, log_term, committed, tuple(new))
    assert (last_new, log.committed) == want
    if last_new is not None and new:
        assert log.slice(log.last_index() - len(new) + 1, log.last_index() + 1, NO_LIMIT) == new


def test_maybe_append_conflict_with_committed_is_a_bug() -> None:
    """A leader never asks to overwrite a committed entry; if it does, the core stops."""
    log = log_with(1, 2, 3, committed=COMMIT)
    with pytest.raises(AssertionError, match="conflicts with committed"):
        log.maybe_append(0, 0, LAST_INDEX, tuple(ents(4)))


# -- commit, apply, stable ----------------------------------------------------------------


@pytest.mark.parametrize(("commit", "want"), [(3, 3), (1, 2)], ids=["advance", "never-decrease"])
def test_commit_to(commit: int, want: int) -> None:
    """The commit index only moves forward."""
    log = log_with(1, 2, 3, committed=2)
    log.commit_to(commit)
    assert log.committed == want


def test_commit_beyond_last_index_is_a_bug() -> None:
    """Committing an entry the log does not have is a broken invariant."""
    log = log_with(1, 2, 3)
    with pytest.raises(AssertionError):
        log.commit_to(4)


@pytest.mark.parametrize(
    ("applied", "has_next", "want"),
    [
        (0, True, ents(1, 1, start=4)),
        (3, True, ents(1, 1, start=4)),
        (4, True, ents(1, start=5)),
        (5, False, []),
    ],
    ids=["from-snapshot", "applied-at-snapshot", "one-applied", "all-applied"],
)
def test_next_committed_ents(applied: int, has_next: bool, want: list[Entry]) -> None:
    """Committed entries not yet applied are handed out from the first available index."""
    log = RaftLog(new_storage(snapshot=(3, 1)))
    log.append(ents(1, 1, 1, start=4))
    log.commit_to(5)
    log.applied_to(applied)
    assert log.has_next_committed_ents() == has_next
    assert log.next_committed_ents() == want


def test_no_committed_ents_while_snapshot_pending() -> None:
    """Entries wait until a pending (unstable) snapshot is applied."""
    log = RaftLog(new_storage(snapshot=(3, 1)))
    log.append(ents(1, 1, 1, start=4))
    log.commit_to(5)
    log.restore(snap(10, 2))
    assert not log.has_next_committed_ents()
    assert log.next_committed_ents() == []


def test_next_committed_ents_paginated() -> None:
    """Committed entries come in batches of at most max_next_ents_size bytes (at least one)."""
    log = RaftLog(new_storage(), max_next_ents_size=2 * ENTRY_SIZE)
    log.append(ents(1, 1, 1, 1, 1))
    log.commit_to(5)
    assert [e.index for e in log.next_committed_ents()] == [1, 2]
    log.applied_to(2)
    assert [e.index for e in log.next_committed_ents()] == [3, 4]


@pytest.mark.parametrize(
    ("index", "term", "want_offset"),
    [(1, 1, 2), (2, 2, 3), (2, 1, 1), (3, 1, 1)],
    ids=["first", "all", "wrong-term", "beyond-last"],
)
def test_stable_to(index: int, term: int, want_offset: int) -> None:
    """Persisted entries leave the unstable tail, but only if the entry at that index is
    still the one that was persisted (same term)."""
    log = log_with(1, 2)
    log.stable_to(index, term)
    assert log.unstable.offset == want_offset


SNAP_I, SNAP_T = 5, 2


@pytest.mark.parametrize(
    ("index", "term", "new", "want_offset"),
    [
        (SNAP_I + 1, SNAP_T, [], SNAP_I + 1),
        (SNAP_I, SNAP_T, [], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T, [], SNAP_I + 1),
        (SNAP_I + 1, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I + 1, SNAP_T, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 2),
        (SNAP_I, SNAP_T, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 1),
        (SNAP_I - 1, SNAP_T, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 1),
        (SNAP_I + 1, SNAP_T + 1, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 1),
        (SNAP_I, SNAP_T + 1, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 1),
        (SNAP_I - 1, SNAP_T + 1, ents(SNAP_T, start=SNAP_I + 1), SNAP_I + 1),
    ],
    ids=[
        "empty-after",
        "empty-at-snapshot",
        "empty-before",
        "empty-after-wrong-term",
        "empty-at-wrong-term",
        "empty-before-wrong-term",
        "entry-stable",
        "entry-at-snapshot",
        "entry-before-snapshot",
        "entry-wrong-term",
        "entry-at-snapshot-wrong-term",
        "entry-before-wrong-term",
    ],
)
def test_stable_to_with_snapshot(index: int, term: int, new: list[Entry], want_offset: int) -> None:
    """After a snapshot, only an unstable entry can be marked stable (not the snapshot)."""
    log = RaftLog(new_storage(snapshot=(SNAP_I, SNAP_T)))
    log.append(new)
    log.stable_to(index, term)
    assert log.unstable.offset == want_offset


def test_unstable_stable_to_keeps_rewritten_entry() -> None:
    """An entry rewritten (new term) after it was handed out stays unstable."""
    log = log_with(1, 1)
    log.append(ents(2, start=2))  # replaces 1/2 before the Ready with it is acknowledged
    log.stable_to(2, 1)
    assert log.unstable_entries() == [Entry(1, 1), Entry(2, 2)]


# -- restore, term, slice ------------------------------------------------------------------


def test_log_restore_from_storage_snapshot() -> None:
    """A log over a storage that starts at a snapshot begins right after it."""
    log = RaftLog(new_storage(snapshot=(1000, 1000)))
    assert log.all_entries() == []
    assert log.first_index() == 1001
    assert log.committed == 1000
    assert log.unstable.offset == 1001
    assert log.term(1000) == 1000


def test_restore_unstable_snapshot() -> None:
    """Restoring a snapshot replaces the whole log and commits up to the snapshot."""
    log = log_with(1, 1, 1)
    log.restore(snap(10, 2))
    assert log.first_index() == 11
    assert log.last_index() == 10
    assert log.committed == 10
    assert log.term(10) == 2
    assert log.snapshot() == snap(10, 2)
    log.append(ents(3, start=11))
    assert log.last_term() == 3


@pytest.mark.parametrize(
    ("index", "want"),
    [(99, Compacted), (100, 100), (150, 150), (199, 199), (200, Unavailable)],
    ids=["compacted", "snapshot-entry", "middle", "last", "beyond-last"],
)
def test_term(index: int, want: int | type[Exception]) -> None:
    """Terms are known from the snapshot's entry to the last index; before it the index is
    compacted, after it unavailable."""
    log = RaftLog(new_storage(snapshot=(100, 100)))
    log.append([Entry(term=i, index=i) for i in range(101, 200)])
    if isinstance(want, int):
        assert log.term(index) == want
    else:
        with pytest.raises(want):
            log.term(index)


def test_term_with_unstable_snapshot() -> None:
    """A pending snapshot answers for its own index; older indexes are compacted."""
    log = RaftLog(new_storage(snapshot=(100, 1)))
    log.restore(snap(105, 5))
    assert log.term(105) == 5
    with pytest.raises(Compacted):
        log.term(100)
    with pytest.raises(Unavailable):
        log.term(106)


OFFSET, NUM = 100, 100
LAST = OFFSET + NUM
HALF = OFFSET + NUM // 2


def sliced_log() -> RaftLog:
    """Snapshot at 100; entries 101..149 stable, 150..199 unstable; entry i has term i."""
    storage = new_storage(snapshot=(OFFSET, 0))
    storage.append([Entry(term=i, index=i) for i in range(OFFSET + 1, HALF)])
    log = RaftLog(storage)
    log.append([Entry(term=i, index=i) for i in range(HALF, LAST)])
    return log


def span(lo: int, hi: int) -> list[Entry]:
    return [Entry(term=i, index=i) for i in range(lo, hi)]


@pytest.mark.parametrize(
    ("lo", "hi", "limit", "want"),
    [
        (OFFSET - 1, OFFSET + 1, NO_LIMIT, Compacted),
        (OFFSET, OFFSET + 1, NO_LIMIT, Compacted),
        (LAST, LAST + 1, NO_LIMIT, Unavailable),
        (HALF, HALF - 1, NO_LIMIT, AssertionError),
        (OFFSET + 1, OFFSET + 1, NO_LIMIT, []),
        (OFFSET + 1, HALF - 1, NO_LIMIT, span(OFFSET + 1, HALF - 1)),
        (OFFSET + 1, HALF, NO_LIMIT, span(OFFSET + 1, HALF)),
        (OFFSET + 1, HALF + 1, NO_LIMIT, span(OFFSET + 1, HALF + 1)),
        (OFFSET + 1, LAST, NO_LIMIT, span(OFFSET + 1, LAST)),
        (HALF - 1, HALF, NO_LIMIT, span(HALF - 1, HALF)),
        (HALF - 1, HALF + 1, NO_LIMIT, span(HALF - 1, HALF + 1)),
        (HALF - 1, LAST, NO_LIMIT, span(HALF - 1, LAST)),
        (HALF, HALF + 1, NO_LIMIT, span(HALF, HALF + 1)),
        (HALF, LAST, NO_LIMIT, span(HALF, LAST)),
        (LAST - 1, LAST, NO_LIMIT, span(LAST - 1, LAST)),
        (OFFSET + 1, LAST, 0, span(OFFSET + 1, OFFSET + 2)),
        (HALF - 1, HALF + 1, 0, span(HALF - 1, HALF)),
        (HALF, LAST, 0, span(HALF, HALF + 1)),
        (HALF + 1, LAST, 0, span(HALF + 1, HALF + 2)),
        (OFFSET + 1, LAST, ENTRY_SIZE - 1, span(OFFSET + 1, OFFSET + 2)),
        (HALF - 1, HALF + 1, ENTRY_SIZE - 1, span(HALF - 1, HALF)),
        (HALF, LAST, ENTRY_SIZE - 1, span(HALF, HALF + 1)),
        (OFFSET + 1, LAST, ENTRY_SIZE, span(OFFSET + 1, OFFSET + 2)),
        (HALF - 1, HALF + 1, ENTRY_SIZE, span(HALF - 1, HALF)),
        (HALF, LAST, ENTRY_SIZE, span(HALF, HALF + 1)),
        (OFFSET + 1, LAST, ENTRY_SIZE + 1, span(OFFSET + 1, OFFSET + 2)),
        (HALF - 1, HALF + 1, ENTRY_SIZE + 1, span(HALF - 1, HALF)),
        (HALF, LAST, ENTRY_SIZE + 1, span(HALF, HALF + 1)),
        (OFFSET + 1, LAST, ENTRY_SIZE * 2, span(OFFSET + 1, OFFSET + 3)),
        (HALF - 2, HALF + 1, ENTRY_SIZE * 2, span(HALF - 2, HALF)),
        (HALF - 1, HALF + 1, ENTRY_SIZE * 2, span(HALF - 1, HALF + 1)),
        (HALF, LAST, ENTRY_SIZE * 2, span(HALF, HALF + 2)),
        (HALF - 2, HALF + 1, ENTRY_SIZE * 3 - 1, span(HALF - 2, HALF)),
        (HALF - 1, HALF + 2, ENTRY_SIZE * 3, span(HALF - 1, HALF + 2)),
    ],
    ids=[
        "compacted-before-snapshot",
        "compacted-snapshot-entry",
        "beyond-last",
        "inverted",
        "empty",
        "stable-part",
        "all-stable",
        "stable-and-one-unstable",
        "everything",
        "last-stable",
        "across-boundary",
        "boundary-to-end",
        "first-unstable",
        "all-unstable",
        "last-entry",
        "limit-0-from-stable",
        "limit-0-across",
        "limit-0-unstable",
        "limit-0-inside-unstable",
        "limit-below-one-stable",
        "limit-below-one-across",
        "limit-below-one-unstable",
        "limit-one-stable",
        "limit-one-across",
        "limit-one-unstable",
        "limit-one-plus-stable",
        "limit-one-plus-across",
        "limit-one-plus-unstable",
        "limit-two-stable",
        "limit-two-ending-at-boundary",
        "limit-two-across",
        "limit-two-unstable",
        "limit-under-three",
        "limit-three",
    ],
)
def test_slice(lo: int, hi: int, limit: int, want: list[Entry] | type[Exception]) -> None:
    """Slices span stable storage and the unstable tail, cut at a byte limit but never
    empty; compacted or out-of-range bounds are errors."""
    log = sliced_log()
    if isinstance(want, list):
        assert log.slice(lo, hi, limit) == want
    else:
        with pytest.raises(want):
            log.slice(lo, hi, limit)


def test_entries_beyond_last_is_empty() -> None:
    """Asking for entries after the last index returns nothing (a caught-up follower)."""
    log = log_with(1, 1)
    assert log.entries(3, NO_LIMIT) == []
