"""`DiskStorage`: the core's `Storage` port backed by a WAL and snapshot files.

Like etcd's raftStorage, reads are served from an in-memory `MemoryStorage` (the cache) and
writes go to disk first: a crash can lose what the cache holds, never what the core was told
is stable. Layout: `<data_dir>/wal/` (see `wal.py`) and `<data_dir>/snap/` (see `snap.py`).

Writes, in the order the driver handles a `Ready` (`controlplane.raft.types.Ready`):

1. `save_snapshot(snap)`, for a snapshot received from the leader: the snapshot file (synced),
   then its WAL marker (synced), then the cache. The file comes first so that a marker never
   points at a snapshot that is not on disk.
2. `save(hard_state, entries, sync)`: one WAL write (and one fdatasync when `sync`), then the
   cache. Only then may the driver send the Ready's messages.

Recovery (`open`): the newest snapshot file that passes its checks *and* has a WAL marker,
then the WAL replayed from that snapshot, then the last hard state. A crash between a
snapshot's marker and the hard state saved after it leaves a hard state older than the
snapshot; the snapshot is committed by definition, so `commit` is raised to its index (and a
lower `term` to the snapshot's, with no vote: a vote in that term was never persisted, so
never sent).

Compaction (`maybe_snapshot`): once `applied` is `snapshot_count` entries past the last
snapshot, the state machine's data becomes a snapshot file and a WAL marker; the cache then
keeps `catch_up_entries` entries behind `applied` so slow followers can catch up from the log
instead of a snapshot; WAL segments that lie entirely before the *oldest* kept snapshot are
removed, and at most `max_snapshots` files are kept. Keeping the WAL back to the oldest
snapshot is what makes falling back to an older snapshot (when the newest file is corrupt)
always possible.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from controlplane.raft.errors import SnapOutOfDate, Unavailable
from controlplane.raft.storage import MemoryStorage
from controlplane.raft.types import (
    NONE,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

from .errors import ConfigError, StorageError, WALExists, WALNotFound
from .fileutil import fsync_dir, lock_dir
from .snap import DEFAULT_MAX_SNAPSHOTS, Snapshotter
from .wal import DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES, WAL, WalSnapshot

__all__ = ["DiskStorage", "DiskStorageConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DiskStorageConfig:
    """Durability and compaction settings (`snapshot_count` and `fsync` are `[raft]` keys)."""

    snapshot_count: int = 10_000
    """Entries applied since the last snapshot that trigger a new one."""
    catch_up_entries: int = 5_000
    """Entries kept in memory behind a new snapshot, for followers that lag a little."""
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    """Size at which the WAL cuts a new segment file."""
    fsync: bool = True
    """Sync the WAL and snapshot files; off trades machine-crash durability for speed."""
    max_snapshots: int = DEFAULT_MAX_SNAPSHOTS
    """Snapshot files kept; the WAL is kept back to the oldest of them."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first key that breaks its constraint."""
        for key, minimum in (
            ("snapshot_count", 1),
            ("catch_up_entries", 0),
            ("segment_bytes", MIN_SEGMENT_BYTES),
            ("max_snapshots", 1),
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{key} must be an integer, got {value!r}")
            if value < minimum:
                raise ConfigError(f"{key} must be >= {minimum}, got {value}")
        if not isinstance(self.fsync, bool):
            raise ConfigError(f"fsync must be true or false, got {self.fsync!r}")


class DiskStorage:
    """A durable `controlplane.raft.storage.Storage`. Create with `create`, reopen with `open`.

    Reads never touch the disk. Not thread-safe: the thread that handles `Ready`s owns it.
    The data directory is locked (flock) while open: a second process gets `WALLocked`
    before it touches any file.
    Errors from writes (`StorageError`, `WALFailed`) are fatal for the member.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        config: DiskStorageConfig,
        wal: WAL,
        snapshotter: Snapshotter,
        cache: MemoryStorage,
        metadata: bytes,
        lock_fd: int,
    ) -> None:
        """Private: use `create` or `open`."""
        self.data_dir = data_dir
        self.config = config
        self.metadata = metadata
        self._lock_fd: int | None = lock_fd
        self._wal = wal
        self._snapshotter = snapshotter
        self._cache = cache

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def exists(data_dir: Path) -> bool:
        """Whether `data_dir` holds a member's log (then `open` it, never `create`)."""
        return WAL.exists(Path(data_dir) / "wal")

    @classmethod
    def create(
        cls, data_dir: Path, config: DiskStorageConfig | None = None, metadata: bytes = b""
    ) -> DiskStorage:
        """Initialize an empty member in `data_dir`; `metadata` is kept for `open` to return.

        `WALExists` if `data_dir` already holds a log or snapshots.
        """
        config = config or DiskStorageConfig()
        config.validate()
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            data_dir.mkdir(parents=True)
            if config.fsync:
                fsync_dir(data_dir.parent)
        lock_fd = lock_dir(data_dir)
        try:
            snapshotter = Snapshotter(
                data_dir / "snap", max_snapshots=config.max_snapshots, fsync=config.fsync
            )
            if snapshotter.snapshots():
                raise WALExists(f"{data_dir / 'snap'} holds snapshots; refusing to create a member")
            wal = WAL.create(
                data_dir / "wal", metadata, segment_bytes=config.segment_bytes, fsync=config.fsync
            )
        except BaseException:
            os.close(lock_fd)
            raise
        log.info("disk storage: created data_dir=%s", data_dir)
        return cls(
            data_dir=data_dir,
            config=config,
            wal=wal,
            snapshotter=snapshotter,
            cache=MemoryStorage(),
            metadata=metadata,
            lock_fd=lock_fd,
        )

    @classmethod
    def open(cls, data_dir: Path, config: DiskStorageConfig | None = None) -> DiskStorage:
        """Recover the member in `data_dir`: snapshot, WAL entries after it, hard state.

        `WALNotFound` if there is none (an empty data dir must not be treated as a member
        that lost nothing); `WALCorrupted`, `SnapshotNotFound` or `StorageError` if what is
        on disk cannot be trusted.
        """
        config = config or DiskStorageConfig()
        config.validate()
        data_dir = Path(data_dir)
        wal_dir = data_dir / "wal"
        if not WAL.exists(wal_dir):
            raise WALNotFound(
                f"{data_dir} holds no WAL: this member has no data; if it belongs to an existing "
                "cluster, restore it from a healthy peer instead of starting it empty"
            )
        lock_fd = lock_dir(data_dir)
        try:
            return cls._recover(data_dir, config, lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _recover(cls, data_dir: Path, config: DiskStorageConfig, lock_fd: int) -> DiskStorage:
        wal_dir = data_dir / "wal"
        markers = WAL.snapshot_markers(wal_dir)
        snapshotter = Snapshotter(
            data_dir / "snap", max_snapshots=config.max_snapshots, fsync=config.fsync
        )
        snap = snapshotter.load(allowed=markers)
        start = WalSnapshot()
        if snap is not None:
            start = WalSnapshot(index=snap.metadata.index, term=snap.metadata.term)
        wal, recovered = WAL.open(
            wal_dir, start, segment_bytes=config.segment_bytes, fsync=config.fsync
        )
        try:
            cache = MemoryStorage()
            if snap is not None:
                cache.apply_snapshot(snap)
            cache.append(list(recovered.entries))
            hs = _fit_hard_state(recovered.hard_state, start)
            if hs.commit > cache.last_index():
                raise StorageError(
                    f"{data_dir}: hard state commit={hs.commit} is beyond the last index "
                    f"{cache.last_index()} of the recovered log; the log lost committed entries"
                )
            cache.set_hard_state(hs)
        except BaseException:
            wal.close()
            raise
        log.info(
            "disk storage: recovered data_dir=%s snapshot_index=%d first_index=%d "
            "last_index=%d term=%d commit=%d",
            data_dir,
            start.index,
            cache.first_index(),
            cache.last_index(),
            hs.term,
            hs.commit,
        )
        return cls(
            data_dir=data_dir,
            config=config,
            wal=wal,
            snapshotter=snapshotter,
            cache=cache,
            metadata=recovered.metadata,
            lock_fd=lock_fd,
        )

    # -- Storage ---------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._cache.initial_state()

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi), at least one even beyond `max_size`; `Compacted` below
        `first_index`, `Unavailable` past `last_index`."""
        return self._cache.entries(lo, hi, max_size)

    def term(self, i: int) -> int:
        return self._cache.term(i)

    def last_index(self) -> int:
        return self._cache.last_index()

    def first_index(self) -> int:
        return self._cache.first_index()

    def snapshot(self) -> Snapshot:
        return self._cache.snapshot()

    # -- writes, in Ready order ------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._cache.hard_state

    def save_snapshot(self, snap: Snapshot) -> None:
        """Persist a snapshot received from the leader and replace the log with it.

        No-op for an empty snapshot; `SnapOutOfDate` if not newer than the current one.
        """
        if snap.is_empty:
            return
        current = self._cache.snapshot().metadata.index
        if snap.metadata.index <= current:
            raise SnapOutOfDate(f"snapshot at {snap.metadata.index} is not newer than {current}")
        self._snapshotter.save(snap)
        self._wal.save_snapshot(WalSnapshot(index=snap.metadata.index, term=snap.metadata.term))
        self._cache.apply_snapshot(snap)
        self._release()

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool = True
    ) -> None:
        """Persist `entries` (replacing any conflicting suffix) and `hard_state` (None:
        unchanged), then make them readable. Durable on return when `sync` and `fsync`.

        `Unavailable` (before anything is written) if the entries leave a gap after the
        last index.
        """
        if entries and entries[0].index > self._cache.last_index() + 1:
            raise Unavailable(
                f"missing log entry [last: {self._cache.last_index()}, "
                f"append at: {entries[0].index}]"
            )
        self._wal.save(hard_state, entries, sync)
        self._cache.append(list(entries))
        if hard_state is not None and not hard_state.is_empty:
            self._cache.set_hard_state(hard_state)

    def maybe_snapshot(
        self, applied: int, conf_state: ConfState, data_fn: Callable[[], bytes]
    ) -> Snapshot | None:
        """Snapshot and compact if `applied` is `snapshot_count` entries past the last snapshot.

        `applied` must be applied to the state machine, and `data_fn()` must return the state
        machine's data at exactly `applied`; it is called only when a snapshot is taken.
        Returns the new snapshot, or None.
        """
        last = self._cache.snapshot().metadata.index
        if applied - last < self.config.snapshot_count:
            return None
        md = SnapshotMetadata(conf_state=conf_state, index=applied, term=self._cache.term(applied))
        snap = Snapshot(data=data_fn(), metadata=md)
        self._snapshotter.save(snap)
        self._wal.save_snapshot(WalSnapshot(index=md.index, term=md.term))
        self._cache.create_snapshot(applied, conf_state, snap.data)
        compact_to = applied - self.config.catch_up_entries
        if compact_to >= self._cache.first_index():
            self._cache.compact(compact_to)
        self._release()
        log.info(
            "disk storage: snapshot index=%d term=%d first_index=%d",
            md.index,
            md.term,
            self._cache.first_index(),
        )
        return snap

    def close(self) -> None:
        """Close the WAL and release the data directory; idempotent. Reads keep working."""
        self._wal.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> DiskStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    @property
    def wal(self) -> WAL:
        """The underlying WAL (for inspection and tests)."""
        return self._wal

    @property
    def snapshotter(self) -> Snapshotter:
        return self._snapshotter

    def _release(self) -> None:
        """Drop WAL segments no kept snapshot needs (the snapshotter already pruned files)."""
        kept = self._snapshotter.snapshots()
        if kept:
            self._wal.release_to(kept[0].index)


def _fit_hard_state(hs: HardState, snap: WalSnapshot) -> HardState:
    """The hard state to restart with, given the snapshot restored (see the module docs)."""
    if hs.term < snap.term:
        hs = HardState(term=snap.term, vote=NONE, commit=hs.commit)
    if hs.commit < snap.index:
        hs = replace(hs, commit=snap.index)
    return hs
