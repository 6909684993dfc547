"""Snapshot files: the state machine at an index, saved atomically and checked on load.

Layout (as etcd's snapshotter): `<snap_dir>/<term:016x>-<index:016x>.snap`, each holding a
raftpb `SnapshotFile`: the encoded `Snapshot` and the CRC-32 of that encoding. The name
repeats the metadata so the directory can be listed without reading the files; `read` checks
that name and content agree.

Saving is atomic: the file is written as `<name>.tmp`, synced, renamed, and the directory is
synced, so a crash leaves either the previous set of snapshots or the new file complete. A
leftover `.tmp` is removed when the directory is opened. After each save the oldest files
beyond `max_snapshots` are removed.

Loading returns the newest snapshot that passes its checks. A file that fails (torn, bit rot,
name and content disagreeing) is renamed to `<name>.broken`, kept for inspection, and the
next older one is tried, with a warning: an older snapshot plus the WAL entries after it
rebuild the same state, which is why the WAL keeps its segments back to the oldest snapshot
(see `disk.py`). `load(allowed=...)` only considers snapshots the WAL has a marker for, so a
file saved just before a crash, whose marker never reached the WAL, is not used.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from collections.abc import Collection
from pathlib import Path

from controlplane.raft.types import Snapshot
from controlplane.raftpb import raft_pb2 as pb

from .codec import decode_snapshot, encode_snapshot, parse_pb
from .errors import CodecError, ConfigError, SnapshotCorrupted
from .fileutil import fsync_dir, write_file
from .wal import WalSnapshot

__all__ = ["DEFAULT_MAX_SNAPSHOTS", "Snapshotter", "snapshot_name"]

log = logging.getLogger(__name__)

DEFAULT_MAX_SNAPSHOTS = 5
_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
_TMP_SUFFIX = ".tmp"
_BROKEN_SUFFIX = ".broken"


def snapshot_name(term: int, index: int) -> str:
    return f"{term:016x}-{index:016x}.snap"


class Snapshotter:
    """Saves and loads the snapshots of one member. Not thread-safe."""

    def __init__(
        self, snap_dir: Path, *, max_snapshots: int = DEFAULT_MAX_SNAPSHOTS, fsync: bool = True
    ) -> None:
        """Use `snap_dir` (created if missing), removing any unfinished `.tmp` file."""
        if max_snapshots < 1:
            raise ConfigError(f"max_snapshots must be >= 1, got {max_snapshots}")
        self.dir = Path(snap_dir)
        self.max_snapshots = max_snapshots
        self.fsync = fsync
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True)
            if fsync:
                fsync_dir(self.dir.parent)
        for p in self.dir.iterdir():
            if p.name.endswith(".snap" + _TMP_SUFFIX):
                p.unlink()
                log.warning("snap: removed unfinished snapshot path=%s", p)

    def snapshots(self) -> list[WalSnapshot]:
        """(index, term) of every snapshot file, oldest first; files are not read."""
        found = []
        for p in self.dir.iterdir():
            m = _NAME_RE.match(p.name)
            if m:
                found.append(WalSnapshot(index=int(m.group(2), 16), term=int(m.group(1), 16)))
        found.sort(key=lambda s: (s.index, s.term))
        return found

    def path(self, snap: WalSnapshot) -> Path:
        return self.dir / snapshot_name(snap.term, snap.index)

    def save(self, snapshot: Snapshot) -> Path:
        """Write `snapshot` atomically and durably, then prune old files; return its path.

        `ValueError` for an empty snapshot (index 0): there is nothing to restore from it.
        """
        md = snapshot.metadata
        if snapshot.is_empty:
            raise ValueError("cannot save an empty snapshot (index 0)")
        body = encode_snapshot(snapshot)
        data = pb.SnapshotFile(crc=zlib.crc32(body), snapshot=body).SerializeToString()
        path = self.path(WalSnapshot(index=md.index, term=md.term))
        tmp = path.with_name(path.name + _TMP_SUFFIX)
        write_file(tmp, data, self.fsync)
        os.replace(tmp, path)
        self._sync_dir()
        log.info(
            "snap: saved path=%s index=%d term=%d bytes=%d", path, md.index, md.term, len(data)
        )
        self.purge()
        return path

    def read(self, path: Path) -> Snapshot:
        """Read and check one snapshot file; `SnapshotCorrupted` if it fails a check."""
        m = _NAME_RE.match(path.name)
        if not m:
            raise SnapshotCorrupted(f"{path}: not a snapshot file name")
        data = path.read_bytes()
        try:
            f = parse_pb(pb.SnapshotFile, data)
            if not data or zlib.crc32(f.snapshot) != f.crc:
                raise SnapshotCorrupted(f"{path}: checksum mismatch")
            snap = decode_snapshot(f.snapshot)
        except CodecError as e:
            raise SnapshotCorrupted(f"{path}: {e}") from e
        want = (int(m.group(1), 16), int(m.group(2), 16))
        if (snap.metadata.term, snap.metadata.index) != want:
            raise SnapshotCorrupted(
                f"{path}: holds term={snap.metadata.term} index={snap.metadata.index}, "
                "which does not match its name"
            )
        return snap

    def load(self, allowed: Collection[WalSnapshot] | None = None) -> Snapshot | None:
        """The newest snapshot that passes its checks, or None if there is none.

        With `allowed`, only those snapshots are considered (the ones the WAL has a marker
        for). Corrupt files are renamed to `.broken` and skipped, with a warning.
        """
        ok = None if allowed is None else set(allowed)
        for snap in reversed(self.snapshots()):
            if ok is not None and snap not in ok:
                log.info("snap: skipped, no WAL marker index=%d term=%d", snap.index, snap.term)
                continue
            path = self.path(snap)
            try:
                return self.read(path)
            except SnapshotCorrupted as e:
                broken = path.with_name(path.name + _BROKEN_SUFFIX)
                os.replace(path, broken)
                self._sync_dir()
                log.warning("snap: corrupt snapshot moved aside path=%s error=%r", broken, str(e))
        return None

    def purge(self) -> list[Path]:
        """Remove the oldest snapshot files beyond `max_snapshots`; return their paths."""
        snaps = self.snapshots()
        removed = [self.path(s) for s in snaps[: max(0, len(snaps) - self.max_snapshots)]]
        for p in removed:
            p.unlink()
            log.info("snap: removed old snapshot path=%s", p)
        if removed:
            self._sync_dir()
        return removed

    def _sync_dir(self) -> None:
        if self.fsync:
            fsync_dir(self.dir)
