"""The snapshotter saves atomically and loads the newest snapshot that passes its checks."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.raft.types import ConfState, Snapshot, SnapshotMetadata
from controlplane.raftnode.errors import ConfigError, SnapshotCorrupted
from controlplane.raftnode.snap import Snapshotter, snapshot_name
from controlplane.raftnode.wal import WalSnapshot


def snapshot(index: int, term: int = 1, data: bytes | None = None) -> Snapshot:
    return Snapshot(
        data=data if data is not None else f"state@{index}".encode(),
        metadata=SnapshotMetadata(conf_state=ConfState(voters=(1, 2, 3)), index=index, term=term),
    )


def test_save_then_load(tmp_path: Path) -> None:
    """load returns the newest saved snapshot, equal to what was saved, named term-index."""
    s = Snapshotter(tmp_path / "snap")
    s.save(snapshot(10, term=2))
    path = s.save(snapshot(20, term=3))
    assert path.name == "0000000000000003-0000000000000014.snap" == snapshot_name(3, 20)
    assert s.load() == snapshot(20, term=3)
    assert Snapshotter(tmp_path / "snap").load() == snapshot(20, term=3)
    assert s.snapshots() == [WalSnapshot(10, 2), WalSnapshot(20, 3)]
    assert sorted(p.suffix for p in s.dir.iterdir()) == [".snap", ".snap"]


def test_empty_directory_loads_nothing(tmp_path: Path) -> None:
    """Without snapshot files, load returns None."""
    assert Snapshotter(tmp_path / "snap").load() is None


def test_empty_snapshot_is_refused(tmp_path: Path) -> None:
    """An empty snapshot (index 0) restores nothing: saving one is a programming error."""
    with pytest.raises(ValueError, match="empty snapshot"):
        Snapshotter(tmp_path).save(Snapshot())


def test_max_snapshots_is_validated(tmp_path: Path) -> None:
    """max_snapshots below 1 is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match="max_snapshots must be >= 1, got 0"):
        Snapshotter(tmp_path, max_snapshots=0)


DAMAGE: dict[str, Callable[[Path, Path], object]] = {
    # id: damage(newest, older) applied to the newest file
    "truncated": lambda p, _: p.write_bytes(p.read_bytes()[:-5]),
    "empty": lambda p, _: p.write_bytes(b""),
    "flipped-bit-in-data": lambda p, _: p.write_bytes(_flip(p.read_bytes(), -3)),
    "flipped-bit-in-checksum": lambda p, _: p.write_bytes(_flip(p.read_bytes(), 1)),
    "garbage": lambda p, _: p.write_bytes(b"\xff" * 64),
    "name-disagrees-with-content": lambda p, older: p.write_bytes(older.read_bytes()),
}


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0x04
    return bytes(b)


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_corrupt_newest_falls_back_to_older(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path, Path], object]
) -> None:
    """A newest file that fails its checks is renamed .broken, with a warning, and the next
    older snapshot is returned."""
    s = Snapshotter(tmp_path)
    older = s.save(snapshot(10))
    newest = s.save(snapshot(20))
    damage(newest, older)
    with pytest.raises(SnapshotCorrupted):
        s.read(newest)
    with caplog.at_level(logging.WARNING, logger="controlplane.raftnode.snap"):
        assert s.load() == snapshot(10)
    assert not newest.exists()
    assert newest.with_name(newest.name + ".broken").exists()
    assert "corrupt snapshot moved aside" in caplog.text
    assert s.snapshots() == [WalSnapshot(10, 1)]


def test_all_corrupt_loads_nothing(tmp_path: Path) -> None:
    """When every file is corrupt, load returns None and keeps them all as .broken."""
    s = Snapshotter(tmp_path)
    for i in (1, 2):
        s.save(snapshot(i)).write_bytes(b"junk")
    assert s.load() is None
    assert sorted(p.name[-7:] for p in tmp_path.iterdir()) == [".broken", ".broken"]


def test_load_only_allowed(tmp_path: Path) -> None:
    """With `allowed`, snapshots without a WAL marker are skipped (and left alone)."""
    s = Snapshotter(tmp_path)
    s.save(snapshot(10))
    s.save(snapshot(20))
    assert s.load(allowed=[WalSnapshot(10, 1)]) == snapshot(10)
    assert s.load(allowed=[WalSnapshot(20, 2)]) is None
    assert s.load(allowed=[]) is None
    assert len(s.snapshots()) == 2


def test_keeps_at_most_max_snapshots(tmp_path: Path) -> None:
    """After a save, only the newest max_snapshots files remain."""
    s = Snapshotter(tmp_path, max_snapshots=3)
    for i in range(1, 7):
        s.save(snapshot(i * 10))
    assert [x.index for x in s.snapshots()] == [40, 50, 60]


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash before the rename leaves the previous snapshots intact and no partial file; the
    unfinished temp file is removed when the directory is opened again."""
    s = Snapshotter(tmp_path)
    s.save(snapshot(10))

    def crash(src: object, dst: object) -> None:
        raise OSError("crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="crash"):
        s.save(snapshot(20, data=b"x" * 10_000))
    monkeypatch.undo()
    assert [p.name.endswith(".tmp") for p in sorted(tmp_path.iterdir())] == [False, True]
    s = Snapshotter(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [snapshot_name(1, 10)]
    assert s.load() == snapshot(10)


def test_save_syncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fsync on, save syncs the file and then the directory (after the rename)."""
    s = Snapshotter(tmp_path)
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    s.save(snapshot(10))
    assert synced == [False, True]
