"""Unit tests of `MemoryStorage`, the in-memory `Storage` twin (after etcd-io/raft's
storage_test.go). Storage (3, 3) below means a snapshot at index 3, term 3."""

from __future__ import annotations

import pytest
from raftfixtures import ents, new_storage

from controlplane.raft import (
    Compacted,
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    SnapOutOfDate,
    Unavailable,
)
from controlplane.raft.types import Snapshot, SnapshotMetadata

SIZE = Entry(0, 0).size()


def storage_3_5() -> MemoryStorage:
    """Snapshot at 3/3 and entries 4/4, 5/5."""
    return new_storage(ents(4, 5, start=4), snapshot=(3, 3))


def dump(s: MemoryStorage) -> list[tuple[int, int]]:
    """(index, term) of the dummy entry and every stored entry."""
    first, last = s.first_index(), s.last_index()
    out = [(first - 1, s.term(first - 1))]
    if last >= first:
        out += [(e.index, e.term) for e in s.entries(first, last + 1, 1 << 62)]
    return out


@pytest.mark.parametrize(
    ("index", "want"),
    [(2, Compacted), (3, 3), (4, 4), (5, 5), (6, Unavailable)],
    ids=["compacted", "snapshot-entry", "first", "last", "beyond-last"],
)
def test_term(index: int, want: int | type[Exception]) -> None:
    """The term is known from the snapshot's index to the last entry."""
    s = storage_3_5()
    if isinstance(want, int):
        assert s.term(index) == want
    else:
        with pytest.raises(want):
            s.term(index)


@pytest.mark.parametrize(
    ("lo", "hi", "limit", "want"),
    [
        (2, 6, 1 << 62, Compacted),
        (3, 4, 1 << 62, Compacted),
        (4, 5, 1 << 62, ents(4, start=4)),
        (4, 6, 1 << 62, ents(4, 5, start=4)),
        (4, 7, 1 << 62, ents(4, 5, 6, start=4)),
        (4, 7, 0, ents(4, start=4)),
        (4, 7, 2 * SIZE, ents(4, 5, start=4)),
        (4, 7, 2 * SIZE + SIZE // 2, ents(4, 5, start=4)),
        (4, 7, 3 * SIZE - 1, ents(4, 5, start=4)),
        (4, 7, 3 * SIZE, ents(4, 5, 6, start=4)),
        (4, 8, 1 << 62, Unavailable),
    ],
    ids=[
        "compacted",
        "snapshot-entry",
        "one",
        "two",
        "all",
        "limit-0-gives-one",
        "limit-two",
        "limit-two-and-a-half",
        "limit-under-three",
        "limit-three",
        "beyond-last",
    ],
)
def test_entries(lo: int, hi: int, limit: int, want: list[Entry] | type[Exception]) -> None:
    """Entries in [lo, hi) up to a byte limit, at least one; compacted bounds are errors."""
    s = new_storage(ents(4, 5, 6, start=4), snapshot=(3, 3))
    if isinstance(want, list):
        assert s.entries(lo, hi, limit) == want
    else:
        with pytest.raises(want):
            s.entries(lo, hi, limit)


def test_entries_of_empty_log() -> None:
    """An empty log has nothing to give, even for an empty range past the snapshot."""
    with pytest.raises(Unavailable):
        MemoryStorage().entries(1, 1, 1 << 62)


def test_first_and_last_index() -> None:
    """The first index follows the snapshot; the last is that of the last entry."""
    s = storage_3_5()
    assert (s.first_index(), s.last_index()) == (4, 5)
    s.append(ents(5, start=6))
    assert s.last_index() == 6
    s.compact(4)
    assert s.first_index() == 5


@pytest.mark.parametrize(
    ("index", "want"),
    [(2, Compacted), (3, Compacted), (4, [(4, 4), (5, 5)]), (5, [(5, 5)]), (6, Unavailable)],
    ids=["older", "already", "one", "all", "beyond-last"],
)
def test_compact(index: int, want: list[tuple[int, int]] | type[Exception]) -> None:
    """Compaction keeps the compacted entry's index and term as the new dummy entry."""
    s = storage_3_5()
    if isinstance(want, list):
        s.compact(index)
        assert dump(s) == want
    else:
        with pytest.raises(want):
            s.compact(index)


@pytest.mark.parametrize(("index", "want_term"), [(4, 4), (5, 5)], ids=["middle", "last"])
def test_create_snapshot(index: int, want_term: int) -> None:
    """A snapshot records the index, its term, the configuration and the data."""
    s = storage_3_5()
    cs = ConfState(voters=(1, 2, 3))
    got = s.create_snapshot(index, cs, b"data")
    assert got == Snapshot(
        data=b"data", metadata=SnapshotMetadata(conf_state=cs, index=index, term=want_term)
    )
    assert s.snapshot() == got
    assert s.initial_state()[1] == cs
    # The entries stay until compacted.
    assert s.first_index() == 4


@pytest.mark.parametrize(
    ("index", "want"), [(3, SnapOutOfDate), (6, Unavailable)], ids=["not-newer", "beyond-last"]
)
def test_create_snapshot_errors(index: int, want: type[Exception]) -> None:
    """A snapshot must be newer than the current one and within the log."""
    with pytest.raises(want):
        storage_3_5().create_snapshot(index, ConfState(), b"")


@pytest.mark.parametrize(
    ("new", "want"),
    [
        (ents(1, 2), [(3, 3), (4, 4), (5, 5)]),
        (ents(3, 4, 5, start=3), [(3, 3), (4, 4), (5, 5)]),
        (ents(3, 6, 6, start=3), [(3, 3), (4, 6), (5, 6)]),
        (ents(3, 4, 5, 5, start=3), [(3, 3), (4, 4), (5, 5), (6, 5)]),
        (ents(3, 3, 5, start=2), [(3, 3), (4, 5)]),
        (ents(5, start=4), [(3, 3), (4, 5)]),
        (ents(5, start=6), [(3, 3), (4, 4), (5, 5), (6, 5)]),
    ],
    ids=[
        "all-compacted",
        "same",
        "overwrite",
        "extend",
        "truncate-incoming-and-existing",
        "truncate-existing",
        "direct-append",
    ],
)
def test_append(new: list[Entry], want: list[tuple[int, int]]) -> None:
    """Appending drops entries already compacted and truncates a conflicting suffix."""
    s = storage_3_5()
    s.append(new)
    assert dump(s) == want


def test_append_with_gap() -> None:
    """Entries must continue the log: a gap is an error."""
    with pytest.raises(Unavailable):
        storage_3_5().append(ents(5, start=7))


def test_apply_snapshot() -> None:
    """Applying a snapshot replaces the log; an older one is refused."""
    s = storage_3_5()
    newer = Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2)), index=10, term=4))
    s.apply_snapshot(newer)
    assert dump(s) == [(10, 4)]
    assert s.snapshot() == newer
    with pytest.raises(SnapOutOfDate):
        s.apply_snapshot(Snapshot(metadata=SnapshotMetadata(index=8, term=4)))


def test_initial_state() -> None:
    """The initial state is the persisted HardState and the snapshot's configuration."""
    s = MemoryStorage()
    assert s.initial_state() == (HardState(), ConfState())
    s.set_hard_state(HardState(term=2, vote=1, commit=0))
    assert s.initial_state()[0] == HardState(term=2, vote=1, commit=0)
