"""DiskStorage is a Storage whose state survives a restart: what was saved is what open gives."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.raft.config import Config
from controlplane.raft.errors import SnapOutOfDate, Unavailable
from controlplane.raft.rawnode import RawNode
from controlplane.raft.storage import NO_LIMIT, MemoryStorage, Storage
from controlplane.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from controlplane.raftnode.disk import DiskStorage, DiskStorageConfig
from controlplane.raftnode.errors import (
    ConfigError,
    StorageError,
    WALExists,
    WALLocked,
    WALNotFound,
)

CS = ConfState(voters=(1, 2, 3))
SMALL = DiskStorageConfig(
    snapshot_count=20, catch_up_entries=5, segment_bytes=512, fsync=False, max_snapshots=2
)


def ents(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(term=term, index=i, data=b"e%d" % i) for i in range(lo, hi + 1)]


def state_at(index: int) -> bytes:
    return b"state@%d" % index


def fill(s: DiskStorage, hi: int, *, snapshots: bool = True) -> None:
    """Save entries up to `hi` one Ready at a time, applying and snapshotting as a driver does."""
    for i in range(s.last_index() + 1, hi + 1):
        s.save(HardState(term=1, vote=1, commit=i), ents(i, i))
        if snapshots:
            s.maybe_snapshot(i, CS, lambda i=i: state_at(i))  # type: ignore[misc]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "member"


def test_defaults_follow_the_design() -> None:
    """Defaults: snapshot_count 10,000 (DESIGN.md), catch_up_entries 5,000 and 64 MiB segments
    (etcd), fsync on, 5 snapshot files."""
    c = DiskStorageConfig()
    c.validate()
    assert (c.snapshot_count, c.catch_up_entries, c.segment_bytes, c.fsync, c.max_snapshots) == (
        10_000,
        5_000,
        64 << 20,
        True,
        5,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"snapshot_count": 0}, "snapshot_count must be >= 1, got 0"),
        ({"catch_up_entries": -1}, "catch_up_entries must be >= 0, got -1"),
        ({"segment_bytes": 100}, "segment_bytes must be >= 256, got 100"),
        ({"max_snapshots": 0}, "max_snapshots must be >= 1, got 0"),
        ({"snapshot_count": "10"}, "snapshot_count must be an integer, got '10'"),
        ({"max_snapshots": True}, "max_snapshots must be an integer, got True"),
        ({"fsync": "yes"}, "fsync must be true or false, got 'yes'"),
    ],
    ids=[
        "snapshot_count",
        "catch_up_entries",
        "segment_bytes",
        "max_snapshots",
        "str",
        "bool",
        "fsync",
    ],
)
def test_config_validate_names_the_key(change: dict[str, object], message: str) -> None:
    """validate raises ConfigError naming the key and its constraint."""
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(DiskStorageConfig(), **change).validate()  # type: ignore[arg-type]


def test_round_trip(data_dir: Path) -> None:
    """A reopened storage has the hard state, entries and metadata that were saved."""
    with DiskStorage.create(data_dir, SMALL, metadata=b"member-2") as s:
        s.save(HardState(term=1, vote=2), ents(1, 3))
        s.save(HardState(term=2, vote=3, commit=3), ents(3, 6, term=2))
        s.save(None, [])
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.metadata == b"member-2"
        assert s.initial_state() == (HardState(term=2, vote=3, commit=3), ConfState())
        assert (s.first_index(), s.last_index()) == (1, 6)
        assert s.entries(1, 7, NO_LIMIT) == ents(1, 2) + ents(3, 6, term=2)
        assert s.snapshot().is_empty


def test_create_and_open_guard_the_data_dir(data_dir: Path) -> None:
    """open refuses an empty data dir (a member must never restart with nothing, DESIGN.md),
    and create refuses one that already holds a member."""
    assert not DiskStorage.exists(data_dir)
    with pytest.raises(WALNotFound, match="restore it from a healthy peer"):
        DiskStorage.open(data_dir, SMALL)
    DiskStorage.create(data_dir, SMALL).close()
    assert DiskStorage.exists(data_dir)
    with pytest.raises(WALExists):
        DiskStorage.create(data_dir, SMALL)


def test_one_process_per_data_dir(data_dir: Path) -> None:
    """A second open of a data dir in use raises WALLocked before touching any file (an
    unfinished snapshot of the running member stays); close releases it."""
    s = DiskStorage.create(data_dir, SMALL)
    unfinished = data_dir / "snap" / "0000000000000001-0000000000000009.snap.tmp"
    unfinished.write_bytes(b"being written")
    with pytest.raises(WALLocked):
        DiskStorage.open(data_dir, SMALL)
    with pytest.raises(WALLocked):
        DiskStorage.create(data_dir, SMALL)
    assert unfinished.exists()
    s.close()
    s.close()
    DiskStorage.open(data_dir, SMALL).close()
    assert not unfinished.exists()


def test_snapshot_from_leader_survives_restart(data_dir: Path) -> None:
    """save_snapshot replaces the log; after a restart the snapshot and the entries saved after
    it are back, and the conf state comes from the snapshot."""
    snap = Snapshot(data=b"leader-state", metadata=SnapshotMetadata(CS, index=50, term=3))
    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(HardState(term=1, vote=1, commit=3), ents(1, 5))
        s.save_snapshot(snap)
        assert (s.first_index(), s.last_index()) == (51, 50)
        s.save(HardState(term=3, vote=0, commit=52), ents(51, 52, term=3))
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.snapshot() == snap
        assert s.initial_state() == (HardState(term=3, vote=0, commit=52), CS)
        assert (s.first_index(), s.last_index(), s.term(50)) == (51, 52, 3)
        assert s.entries(51, 53, NO_LIMIT) == ents(51, 52, term=3)


def test_crash_between_snapshot_and_hard_state(data_dir: Path) -> None:
    """A hard state older than the restored snapshot is raised to it: commit to the snapshot's
    index, term to its term with no vote (a vote in that term was never persisted)."""
    snap = Snapshot(data=b"s", metadata=SnapshotMetadata(CS, index=50, term=3))
    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(HardState(term=1, vote=1, commit=3), ents(1, 5))
        s.save_snapshot(snap)
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.hard_state == HardState(term=3, vote=0, commit=50)


def test_commit_beyond_the_log_is_refused(data_dir: Path) -> None:
    """A hard state that commits entries the log does not have means lost entries: StorageError."""
    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(HardState(term=1, commit=9), ents(1, 5))
    with pytest.raises(StorageError, match="commit=9 is beyond the last index 5"):
        DiskStorage.open(data_dir, SMALL)


def test_writes_are_checked_before_the_wal(data_dir: Path) -> None:
    """Entries that leave a gap raise Unavailable, and a snapshot not newer than the current
    one raises SnapOutOfDate, before anything reaches the disk."""
    snap = Snapshot(metadata=SnapshotMetadata(CS, index=5, term=1))
    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(None, ents(1, 2))
        with pytest.raises(Unavailable):
            s.save(None, ents(4, 4))
        s.save_snapshot(snap)
        with pytest.raises(SnapOutOfDate):
            s.save_snapshot(snap)
        s.save(None, ents(6, 6))
    with DiskStorage.open(data_dir, SMALL) as s:
        assert (s.snapshot(), s.first_index(), s.last_index()) == (snap, 6, 6)


def test_snapshot_every_snapshot_count(data_dir: Path) -> None:
    """maybe_snapshot takes a snapshot once applied is snapshot_count past the last one, keeps
    catch_up_entries entries behind it in memory, and asks for the data only then."""
    calls: list[int] = []

    def data_fn(i: int) -> Callable[[], bytes]:
        return lambda: calls.append(i) or state_at(i)  # type: ignore[func-returns-value]

    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(HardState(term=1, commit=45), ents(1, 45))
        assert s.maybe_snapshot(19, CS, data_fn(19)) is None
        snap = s.maybe_snapshot(20, CS, data_fn(20))
        assert snap == Snapshot(data=state_at(20), metadata=SnapshotMetadata(CS, 20, 1))
        assert s.snapshot() == snap
        assert s.first_index() == 20 - 5 + 1
        assert s.maybe_snapshot(39, CS, data_fn(39)) is None
        assert s.maybe_snapshot(45, CS, data_fn(45)) is not None
        assert calls == [20, 45]
        assert s.first_index() == 45 - 5 + 1
        assert [x.index for x in s.snapshotter.snapshots()] == [20, 45]
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.snapshot().metadata.index == 45
        assert (s.first_index(), s.last_index()) == (46, 45)


def test_compaction_purges_wal_and_snapshots(data_dir: Path) -> None:
    """Old WAL segments and snapshot files go away; the WAL still reaches back to the oldest
    kept snapshot, and a restart recovers the same state."""
    with DiskStorage.create(data_dir, SMALL) as s:
        fill(s, 300)
        segments = s.wal.segments
        snaps = s.snapshotter.snapshots()
        hs = s.hard_state
    assert [x.index for x in snaps] == [280, 300]
    assert int(segments[0].name[:16], 16) > 0, "no segment was purged"
    assert int(segments[0].name[17:33], 16) <= 280
    assert len(list((data_dir / "wal").iterdir())) == len(segments)
    with DiskStorage.open(data_dir, SMALL) as s:
        assert (s.snapshot().metadata.index, s.last_index(), s.hard_state) == (300, 300, hs)
        fill(s, 330)
    with DiskStorage.open(data_dir, SMALL) as s:
        assert (s.snapshot().metadata.index, s.last_index()) == (320, 330)
        assert s.entries(321, 331, NO_LIMIT) == ents(321, 330)


def test_corrupt_newest_snapshot_falls_back(data_dir: Path) -> None:
    """If the newest snapshot file is corrupt, recovery uses the older one plus the WAL entries
    after it (kept because the WAL is purged only up to the oldest snapshot)."""
    with DiskStorage.create(data_dir, SMALL) as s:
        fill(s, 310)
        hs = s.hard_state
    newest = sorted((data_dir / "snap").iterdir())[-1]
    newest.write_bytes(newest.read_bytes()[:-1])
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.snapshot().metadata.index == 280
        assert s.snapshot().data == state_at(280)
        assert (s.first_index(), s.last_index(), s.hard_state) == (281, 310, hs)
        assert s.entries(281, 311, NO_LIMIT) == ents(281, 310)
    assert newest.with_name(newest.name + ".broken").exists()


def test_snapshot_without_marker_is_ignored(data_dir: Path) -> None:
    """A snapshot file whose WAL marker was never written (crash in between) is not used."""
    with DiskStorage.create(data_dir, SMALL) as s:
        s.save(HardState(term=1, commit=30), ents(1, 30))
        s.snapshotter.save(Snapshot(data=b"orphan", metadata=SnapshotMetadata(CS, 30, 1)))
    with DiskStorage.open(data_dir, SMALL) as s:
        assert s.snapshot().is_empty
        assert (s.first_index(), s.last_index()) == (1, 30)


# -- the Storage contract ---------------------------------------------------------------------


def _outcome(read: Callable[[], object]) -> object:
    try:
        return read()
    except Exception as e:
        return type(e)


def _reads(s: Storage) -> dict[str, object]:
    """Every read of the Storage contract over a grid of indexes, errors included."""
    out: dict[str, object] = {
        "first_index": s.first_index(),
        "last_index": s.last_index(),
        "initial_state": s.initial_state(),
        "snapshot": s.snapshot(),
    }
    for i in range(0, 75):
        out[f"term({i})"] = _outcome(lambda i=i: s.term(i))  # type: ignore[misc]
    for lo, hi, size in [(1, 2, NO_LIMIT), (55, 56, NO_LIMIT), (56, 57, NO_LIMIT), (56, 61, 0),
                         (56, 61, 20), (56, 61, NO_LIMIT), (60, 61, NO_LIMIT), (60, 62, NO_LIMIT),
                         (61, 61, NO_LIMIT), (61, 62, NO_LIMIT), (57, 57, NO_LIMIT)]:  # fmt: skip
        out[f"entries({lo},{hi},{size})"] = _outcome(
            lambda lo=lo, hi=hi, size=size: s.entries(lo, hi, size)  # type: ignore[misc]
        )
    return out


def test_reads_match_memory_storage(data_dir: Path) -> None:
    """DiskStorage answers every read, Compacted and Unavailable included, as a MemoryStorage
    given the same writes does, before and after a restart."""
    mem = MemoryStorage()
    disk = DiskStorage.create(data_dir, dataclasses.replace(SMALL, catch_up_entries=5))
    for i in range(1, 61):
        hs = HardState(term=1 + i // 30, vote=1, commit=i)
        batch = [Entry(term=hs.term, index=i, data=b"e%d" % i)]
        disk.save(hs, batch)
        mem.append(batch)
        mem.set_hard_state(hs)
        if disk.maybe_snapshot(i, CS, lambda i=i: state_at(i)):  # type: ignore[misc]
            mem.create_snapshot(i, CS, state_at(i))
            mem.compact(i - 5)
    assert disk.first_index() == 56
    assert _reads(disk) == _reads(mem)
    disk.close()

    reopened = DiskStorage.open(data_dir, SMALL)
    restarted = MemoryStorage()
    restarted.apply_snapshot(mem.snapshot())
    restarted.append(mem.entries(mem.snapshot().metadata.index + 1, 61, NO_LIMIT))
    restarted.set_hard_state(mem.hard_state)
    assert _reads(reopened) == _reads(restarted)
    reopened.close()


# -- with the Raft core -----------------------------------------------------------------------


def _drive(node: RawNode, s: DiskStorage, applied: list[bytes]) -> None:
    """Handle Readys as the driver does: persist, (no peers to send to), apply, advance."""
    while node.has_ready():
        rd = node.ready()
        if rd.snapshot is not None:
            s.save_snapshot(rd.snapshot)
        s.save(rd.hard_state, rd.entries, rd.must_sync)
        for e in rd.committed_entries:
            if e.data:
                applied.append(e.data)
            s.maybe_snapshot(e.index, node.conf_state(), lambda: b"\n".join(applied))
        node.advance(rd)


def _start(data_dir: Path) -> tuple[RawNode, DiskStorage, list[bytes]]:
    s = DiskStorage.open(data_dir, SMALL) if DiskStorage.exists(data_dir) else None
    if s is None:
        s = DiskStorage.create(data_dir, SMALL)
    snap = s.snapshot()
    applied = snap.data.split(b"\n") if snap.data else []
    node = RawNode(Config(id=1, voters=(1,), applied=snap.metadata.index), s)
    return node, s, applied


def test_single_node_raft_restarts_from_disk(data_dir: Path) -> None:
    """A one-member cluster on DiskStorage commits proposals, snapshots, and after restarts
    (snapshot + WAL replay + re-applying committed entries) has applied every proposal once."""
    proposed: list[bytes] = []
    for run in range(3):
        node, s, applied = _start(data_dir)
        _drive(node, s, applied)
        node.campaign()
        _drive(node, s, applied)
        for i in range(45):
            payload = b"run%d-put%d" % (run, i)
            proposed.append(payload)
            node.propose(payload)
            _drive(node, s, applied)
        assert applied == proposed
        s.close()
    node, s, applied = _start(data_dir)
    _drive(node, s, applied)
    s.close()
    assert applied == proposed
    assert s.snapshot().metadata.index > 0
