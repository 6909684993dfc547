"""The write-ahead log: Raft's entries, hard state and snapshot markers, durable before use.

Layout (as etcd's WAL): a directory of segment files named `<seq:016x>-<first_index:016x>.wal`.
`seq` counts segments from 0 without gaps; `first_index` is the log's last index + 1 when the
segment was cut, so a file name bounds the entries of the segment before it. A new segment is
cut once the current one reaches `segment_bytes`; it is written as `<name>.tmp`, synced and
renamed, so a segment either exists with its opening records or not at all.

Record frame (little endian), 16 bytes then the payload:

    0: length u32 | 4: type u8 | 5: reserved, zero (3 bytes) | 8: header CRC-32 of bytes 0..8
    12: payload CRC-32 | 16: payload (a raftpb message chosen by the type)

Types: METADATA (`WalMetadata`, the first record of every segment), ENTRY (`Entry`),
HARD_STATE (`HardState`), SNAPSHOT (`WalSnapshot`, a marker). Each segment starts with its
metadata and the current hard state, so the newest hard state survives when older segments
are released.

Why the header has its own checksum: the length decides where the next record starts. Without
a check on it, one flipped bit in a length would be read as "the record runs past the end of
the file", i.e. as a torn write, and recovery would silently drop every record after it. With
it, a bad header is told apart from a short one, and only the true tail is ever discarded.

Recovery rules:

- A torn tail is the last record of the last segment cut short (the file ends inside it) or
  zero-filled (its bytes from some point to the end of the file are zero, which is what a
  file system shows for a write that extended a file but did not reach the disk). It was never
  acknowledged, because `save` returns only after the fsync. `open` truncates it, logs a
  warning and appends after the last good record. A zero-filled gap after the last record
  is cut the same way.
- Any other failed check is corruption and raises `WALCorrupted` naming the file and the
  offset: a header or payload checksum that fails before the tail, a damaged last record that
  is not zero-filled (bit rot in an acknowledged record, not a torn write), an unexpected end
  of file in a segment that is not the last one (segments are synced before the next is cut),
  a missing segment, an unknown record type. The torn-tail rule cannot tell bit rot in the
  last record from a torn write when the damaged record's own last bytes happen to be zero;
  it then reads it as torn, like etcd does for zeroed sectors.
- Replay keeps the log the member had: an entry at index i discards every entry >= i
  recorded before it (a follower truncating a conflicting suffix). A snapshot marker
  (i, t) keeps the entries recorded before it when the entry at i has term t (the member took
  the snapshot itself); otherwise the snapshot replaced the log (installed from the leader)
  and those entries are discarded.

Group commit: `save` encodes every record of a call into one buffer, issues one write and one
fdatasync, so the cost of durability is paid once per Raft `Ready`, not once per entry.
With `fsync=False` (DESIGN.md `[raft] fsync`) nothing is synced: a process crash loses
nothing, a machine crash may lose acknowledged writes.

A WAL is used by one thread; `open` takes an exclusive flock on the directory, so a second
process (or a second `WAL` object) on the same directory gets `WALLocked`.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from google.protobuf.message import Message as PbMessage

from controlplane.raft.types import EMPTY_HARD_STATE, Entry, HardState
from controlplane.raftpb import raft_pb2 as pb

from .codec import encode_entry, encode_hard_state, entry_from_pb, hard_state_from_pb, parse_pb
from .errors import (
    CodecError,
    ConfigError,
    SnapshotNotFound,
    WALClosed,
    WALCorrupted,
    WALExists,
    WALFailed,
    WALNotFound,
)
from .fileutil import fsync_dir, lock_dir, write_file

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "HEADER_SIZE",
    "MIN_SEGMENT_BYTES",
    "WAL",
    "RecordType",
    "Recovered",
    "WALFailed",
    "WalSnapshot",
    "segment_name",
]

log = logging.getLogger(__name__)

WAL_VERSION = 1
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
MIN_SEGMENT_BYTES = 256
HEADER_SIZE = 16

_HEAD = struct.Struct("<IB3s")
_CRCS = struct.Struct("<II")
_FRAME = struct.Struct("<IB3sII")
_NO_FLAGS = b"\0\0\0"
_SEGMENT_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")
_TMP_SUFFIX = ".tmp"
_M = TypeVar("_M", bound=PbMessage)


class RecordType(enum.IntEnum):
    METADATA = 1
    ENTRY = 2
    HARD_STATE = 3
    SNAPSHOT = 4


@dataclass(frozen=True, slots=True)
class WalSnapshot:
    """A snapshot marker: the snapshot at `index` (whose entry has `term`) was saved to disk
    before this point of the log. (0, 0) stands for "no snapshot": replay from the start."""

    index: int = 0
    term: int = 0


@dataclass(frozen=True, slots=True)
class Recovered:
    """What `WAL.open` replayed.

    `entries` are contiguous from `snapshot.index + 1`; `hard_state` is the last one saved
    (empty if none was); `metadata` is what `WAL.create` was given.
    """

    metadata: bytes
    hard_state: HardState
    snapshot: WalSnapshot
    entries: tuple[Entry, ...]


def segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


def frame(rtype: RecordType, payload: bytes) -> bytes:
    """One record as written to a segment."""
    head = _HEAD.pack(len(payload), rtype, _NO_FLAGS)
    return head + _CRCS.pack(zlib.crc32(head), zlib.crc32(payload)) + payload


@dataclass(frozen=True, slots=True)
class _Segment:
    seq: int
    first_index: int
    path: Path


@dataclass(frozen=True, slots=True)
class _Record:
    type: RecordType
    offset: int
    payload: memoryview


@dataclass(slots=True)
class _Tail:
    """Where the valid records of a segment end; `reason` is set when a torn tail follows."""

    end: int = 0
    reason: str = ""


def _nonzero_end(data: bytes, start: int) -> int:
    """Offset just after the last non-zero byte of `data[start:]`, or `start` if all zero."""
    return start + len(data[start:].rstrip(b"\0"))


def _records(seg: _Segment, data: bytes, last: bool, tail: _Tail) -> Iterator[_Record]:
    """Yield the records of one segment, checking each frame.

    In the last segment a torn final record ends the iteration (with `tail.reason` set);
    anything else that fails a check raises `WALCorrupted`.
    """
    view = memoryview(data)
    off, size = 0, len(data)
    while off < size:
        tail.end = off
        torn = False
        if size - off < HEADER_SIZE:
            reason, torn = "record header cut short by the end of the file", True
        else:
            length, rtype, flags, hcrc, pcrc = _FRAME.unpack_from(data, off)
            end = off + HEADER_SIZE + length
            if zlib.crc32(view[off : off + 8]) != hcrc:
                reason = "record header checksum mismatch"
                torn = _nonzero_end(data, off) < off + HEADER_SIZE
            elif end > size:
                reason, torn = f"record of {length} bytes cut short by the end of the file", True
            elif zlib.crc32(view[off + HEADER_SIZE : end]) != pcrc:
                reason = "record payload checksum mismatch"
                torn = _nonzero_end(data, off) < end
            elif flags != _NO_FLAGS or rtype not in RecordType._value2member_map_:
                raise WALCorrupted(seg.path, off, f"unknown record type {rtype} flags {flags!r}")
            else:
                yield _Record(RecordType(rtype), off, view[off + HEADER_SIZE : end])
                off = end
                continue
        if not last:
            raise WALCorrupted(seg.path, off, f"{reason} in a segment that is not the last")
        if not torn:
            raise WALCorrupted(seg.path, off, reason)
        tail.reason = reason
        return
    tail.end = off


def _list_segments(wal_dir: Path) -> list[_Segment]:
    """Segments sorted by seq; `WALCorrupted` if one is missing in the sequence."""
    segs = []
    for p in wal_dir.iterdir():
        m = _SEGMENT_RE.match(p.name)
        if m:
            segs.append(_Segment(int(m.group(1), 16), int(m.group(2), 16), p))
    segs.sort(key=lambda s: s.seq)
    for prev, seg in itertools.pairwise(segs):
        if seg.seq != prev.seq + 1:
            raise WALCorrupted(seg.path, 0, f"segment seq {prev.seq + 1} is missing before it")
    return segs


def _parse(seg: _Segment, rec: _Record, cls: type[_M]) -> _M:
    try:
        return parse_pb(cls, rec.payload)
    except CodecError as e:
        raise WALCorrupted(seg.path, rec.offset, str(e)) from e


class _Replay:
    """Replays records into the log the member had, given the snapshot it restarts from."""

    def __init__(self, snapshot: WalSnapshot) -> None:
        self.snapshot = snapshot
        self.metadata: bytes | None = None
        self.hard_state = EMPTY_HARD_STATE
        self.entries: list[Entry] = []
        # Term of the entry at snapshot.index as last recorded; None once discarded.
        self.snapshot_entry_term: int | None = None
        self.found_snapshot = snapshot.index == 0
        self.last_index = 0

    def segment_start(self, seg: _Segment, rec: _Record | None) -> None:
        if rec is None or rec.type != RecordType.METADATA:
            offset = 0 if rec is None else rec.offset
            raise WALCorrupted(seg.path, offset, "segment does not start with a metadata record")
        md = _parse(seg, rec, pb.WalMetadata)
        if md.version != WAL_VERSION:
            raise WALCorrupted(seg.path, rec.offset, f"unsupported WAL version {md.version}")
        if (md.seq, md.first_index) != (seg.seq, seg.first_index):
            raise WALCorrupted(
                seg.path,
                rec.offset,
                f"metadata says seq={md.seq} first_index={md.first_index}, "
                "which does not match the file name",
            )
        if self.metadata is None:
            self.metadata = md.metadata
        elif md.metadata != self.metadata:
            raise WALCorrupted(seg.path, rec.offset, "metadata differs from the first segment's")

    def record(self, seg: _Segment, rec: _Record) -> None:
        if rec.type == RecordType.ENTRY:
            try:
                e = entry_from_pb(_parse(seg, rec, pb.Entry))
            except CodecError as err:
                raise WALCorrupted(seg.path, rec.offset, str(err)) from err
            self.entry(seg, rec, e)
        elif rec.type == RecordType.HARD_STATE:
            self.hard_state = hard_state_from_pb(_parse(seg, rec, pb.HardState))
        elif rec.type == RecordType.SNAPSHOT:
            m = _parse(seg, rec, pb.WalSnapshot)
            self.marker(seg, rec, WalSnapshot(index=m.index, term=m.term))
        else:
            raise WALCorrupted(seg.path, rec.offset, "metadata record inside a segment")

    def entry(self, seg: _Segment, rec: _Record, e: Entry) -> None:
        self.last_index = e.index
        snap = self.snapshot.index
        if e.index <= snap:
            self.entries.clear()
            self.snapshot_entry_term = e.term if e.index == snap else None
            return
        off = e.index - snap - 1
        if off > len(self.entries):
            raise WALCorrupted(
                seg.path,
                rec.offset,
                f"entry index={e.index} does not follow the log "
                f"(last index {snap + len(self.entries)}): entries are missing",
            )
        del self.entries[off:]
        self.entries.append(e)

    def marker(self, seg: _Segment, rec: _Record, m: WalSnapshot) -> None:
        self.last_index = max(self.last_index, m.index)
        snap = self.snapshot
        if m.index < snap.index:
            return
        if m.index == snap.index:
            if m.term != snap.term:
                raise SnapshotNotFound(
                    f"the WAL records the snapshot at index={m.index} with term={m.term}, "
                    f"not term={snap.term} (file {seg.path}, offset {rec.offset})"
                )
            self.found_snapshot = True
            if self.snapshot_entry_term != m.term:
                self.entries.clear()
            return
        off = m.index - snap.index - 1
        if off < len(self.entries) and self.entries[off].term == m.term:
            return
        raise SnapshotNotFound(
            f"the snapshot at index={m.index} term={m.term} replaced the log (file {seg.path}, "
            f"offset {rec.offset}), but recovery starts from index={snap.index}: its snapshot "
            "file is missing or corrupt; restore this member from a healthy peer"
        )


class WAL:
    """An open write-ahead log, positioned to append. Create with `create`, reopen with `open`.

    Not thread-safe. After `WALFailed` or `close()` every method raises.
    """

    def __init__(
        self,
        *,
        wal_dir: Path,
        dir_fd: int,
        segments: list[_Segment],
        offset: int,
        metadata: bytes,
        hard_state: HardState,
        last_index: int,
        segment_bytes: int,
        fsync: bool,
    ) -> None:
        """Private: use `create` or `open`."""
        self.dir = wal_dir
        self.metadata = metadata
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._dir_fd: int | None = dir_fd
        self._segments = segments
        self._fd: int | None = os.open(segments[-1].path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._offset = offset
        self._hard_state = hard_state
        self._last_index = last_index

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def exists(wal_dir: Path) -> bool:
        """Whether `wal_dir` holds at least one segment."""
        return wal_dir.is_dir() and any(_SEGMENT_RE.match(p.name) for p in wal_dir.iterdir())

    @classmethod
    def create(
        cls,
        wal_dir: Path,
        metadata: bytes = b"",
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> WAL:
        """Create an empty WAL in `wal_dir` (which must not exist or be empty) and open it.

        The first segment is written in a temporary directory that is renamed into place, so a
        crash leaves either no WAL or a complete one. `WALExists` if one is already there.
        """
        _check_segment_bytes(segment_bytes)
        wal_dir = Path(wal_dir)
        if wal_dir.exists() and any(wal_dir.iterdir()):
            raise WALExists(f"{wal_dir} already exists and is not empty; refusing to create a WAL")
        tmp = wal_dir.with_name(wal_dir.name + _TMP_SUFFIX)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        payload = pb.WalMetadata(version=WAL_VERSION, seq=0, first_index=0, metadata=metadata)
        write_file(
            tmp / segment_name(0, 0),
            frame(RecordType.METADATA, payload.SerializeToString()),
            fsync,
        )
        if fsync:
            fsync_dir(tmp)
        os.replace(tmp, wal_dir)
        if fsync:
            fsync_dir(wal_dir.parent)
        log.info("wal: created dir=%s", wal_dir)
        wal, _ = cls.open(wal_dir, segment_bytes=segment_bytes, fsync=fsync)
        return wal

    @classmethod
    def open(
        cls,
        wal_dir: Path,
        snapshot: WalSnapshot = WalSnapshot(),
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> tuple[WAL, Recovered]:
        """Open the WAL in `wal_dir`, replay it from `snapshot` and repair a torn tail.

        `snapshot` is the snapshot the member restarts from; its marker must be in the WAL
        (`SnapshotNotFound` otherwise). Returns the WAL, positioned after the last good
        record, and what it recovered. Raises `WALNotFound`, `WALLocked`, `WALCorrupted`.
        """
        _check_segment_bytes(segment_bytes)
        wal_dir = Path(wal_dir)
        if not cls.exists(wal_dir):
            raise WALNotFound(f"no WAL in {wal_dir}")
        dir_fd = lock_dir(wal_dir)
        try:
            _remove_temp_files(wal_dir, dir_fd, fsync)
            segments = _list_segments(wal_dir)
            replay = _Replay(snapshot)
            tail = _replay(segments, replay)
            last = segments[-1]
            size = last.path.stat().st_size
            if tail.end < size:
                with open(last.path, "r+b") as f:
                    f.truncate(tail.end)
                    if fsync:
                        os.fdatasync(f.fileno())
                log.warning(
                    "wal: truncated torn tail path=%s offset=%d dropped_bytes=%d reason=%r",
                    last.path,
                    tail.end,
                    size - tail.end,
                    tail.reason,
                )
            if not replay.found_snapshot:
                raise SnapshotNotFound(
                    f"the WAL in {wal_dir} has no marker for the snapshot at "
                    f"index={snapshot.index} term={snapshot.term}"
                )
            assert replay.metadata is not None  # every segment starts with one
            recovered = Recovered(
                metadata=replay.metadata,
                hard_state=replay.hard_state,
                snapshot=snapshot,
                entries=tuple(replay.entries),
            )
            wal = cls(
                wal_dir=wal_dir,
                dir_fd=dir_fd,
                segments=segments,
                offset=tail.end,
                metadata=replay.metadata,
                hard_state=replay.hard_state,
                last_index=replay.last_index,
                segment_bytes=segment_bytes,
                fsync=fsync,
            )
        except BaseException:
            os.close(dir_fd)
            raise
        log.info(
            "wal: opened dir=%s segments=%d snapshot_index=%d entries=%d last_index=%d",
            wal_dir,
            len(segments),
            snapshot.index,
            len(recovered.entries),
            replay.last_index,
        )
        return wal, recovered

    @staticmethod
    def snapshot_markers(wal_dir: Path) -> list[WalSnapshot]:
        """The snapshot markers recorded in the WAL, oldest first, without changing any file.

        Used to pick the snapshot to restart from (only snapshots with a marker are
        trusted). Raises `WALNotFound` and `WALCorrupted` like `open`.
        """
        wal_dir = Path(wal_dir)
        if not WAL.exists(wal_dir):
            raise WALNotFound(f"no WAL in {wal_dir}")
        markers = []
        segments = _list_segments(wal_dir)
        for i, seg in enumerate(segments):
            data = seg.path.read_bytes()
            for rec in _records(seg, data, i == len(segments) - 1, _Tail()):
                if rec.type == RecordType.SNAPSHOT:
                    m = _parse(seg, rec, pb.WalSnapshot)
                    markers.append(WalSnapshot(index=m.index, term=m.term))
        return markers

    # -- writing ---------------------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        """The last hard state saved (or recovered)."""
        return self._hard_state

    @property
    def last_index(self) -> int:
        """The index of the last entry written, or of a newer snapshot marker."""
        return self._last_index

    @property
    def segments(self) -> list[Path]:
        """Paths of the segment files, oldest first."""
        return [s.path for s in self._segments]

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool = True
    ) -> None:
        """Append `entries` then `hard_state` (None or empty: unchanged) as one write.

        When `sync` (Raft's `must_sync`) and the WAL syncs, the data is on disk when this
        returns: one fdatasync for the whole call. Entries may start at or below the last
        index: they replace the entries from their index on. Cuts a new segment when the
        current one reaches `segment_bytes`. `WALFailed` if the disk fails.
        """
        buf = bytearray()
        for e in entries:
            buf += frame(RecordType.ENTRY, encode_entry(e))
        hs = hard_state if hard_state is not None and not hard_state.is_empty else None
        if hs is not None:
            buf += frame(RecordType.HARD_STATE, encode_hard_state(hs))
        if not buf:
            return
        self._append(bytes(buf), sync)
        if entries:
            self._last_index = entries[-1].index
        if hs is not None:
            self._hard_state = hs
        if self._offset >= self.segment_bytes:
            self._cut()

    def save_snapshot(self, snapshot: WalSnapshot, sync: bool = True) -> None:
        """Record that the snapshot at `snapshot.index` is saved in the snapshot directory.

        Call it after the snapshot file is durable, and before any entry that follows a
        snapshot received from the leader.
        """
        data = pb.WalSnapshot(index=snapshot.index, term=snapshot.term).SerializeToString()
        self._append(frame(RecordType.SNAPSHOT, data), sync)
        self._last_index = max(self._last_index, snapshot.index)
        if self._offset >= self.segment_bytes:
            self._cut()

    def sync(self) -> None:
        """Sync the current segment (no-op when the WAL does not sync)."""
        fd = self._require_fd()
        if self.fsync:
            self._guard(lambda: os.fdatasync(fd))

    def release_to(self, index: int) -> list[Path]:
        """Remove the segments that hold only entries below `index`; return their paths.

        Segments are removed oldest first and the current one is always kept, so what is
        needed to replay from a snapshot at `index` or later (its marker, the entries after
        it, the newest hard state) stays. Callers pass the index of the oldest snapshot they
        may restart from.
        """
        self._require_fd()
        n = 0
        while n < len(self._segments) - 1 and self._segments[n + 1].first_index <= index:
            n += 1
        removed = [s.path for s in self._segments[:n]]
        if not removed:
            return []

        def remove() -> None:
            for p in removed:
                p.unlink()
            self._sync_dir()

        self._guard(remove)
        del self._segments[:n]
        log.info(
            "wal: released segments count=%d index=%d first_kept=%s",
            n,
            index,
            self._segments[0].path.name,
        )
        return removed

    def close(self) -> None:
        """Close the files and release the lock; idempotent. Does not sync."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> WAL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _require_fd(self) -> int:
        if self._fd is None:
            raise WALClosed(f"the WAL in {self.dir} is closed")
        return self._fd

    def _guard(self, op: Callable[[], None]) -> None:
        """Run a disk operation; on OSError close the WAL and raise `WALFailed`."""
        try:
            op()
        except OSError as e:
            self.close()
            raise WALFailed(f"WAL I/O failed in {self.dir}: {e}; restart the member") from e

    def _append(self, data: bytes, sync: bool) -> None:
        fd = self._require_fd()

        def write() -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync and self.fsync:
                os.fdatasync(fd)

        self._guard(write)
        self._offset += len(data)

    def _sync_dir(self) -> None:
        if self.fsync and self._dir_fd is not None:
            os.fsync(self._dir_fd)

    def _cut(self) -> None:
        """Close the current segment (synced) and continue in a new one."""
        fd = self._require_fd()
        seq = self._segments[-1].seq + 1
        first_index = self._last_index + 1
        seg = _Segment(seq, first_index, self.dir / segment_name(seq, first_index))
        md = pb.WalMetadata(
            version=WAL_VERSION, seq=seq, first_index=first_index, metadata=self.metadata
        )
        data = frame(RecordType.METADATA, md.SerializeToString())
        if not self._hard_state.is_empty:
            data += frame(RecordType.HARD_STATE, encode_hard_state(self._hard_state))

        def cut() -> None:
            if self.fsync:
                os.fdatasync(fd)
            tmp = seg.path.with_name(seg.path.name + _TMP_SUFFIX)
            write_file(tmp, data, self.fsync)
            os.rename(tmp, seg.path)
            self._sync_dir()
            new_fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            os.close(fd)
            self._fd = new_fd

        self._guard(cut)
        self._segments.append(seg)
        self._offset = len(data)
        log.info("wal: cut segment path=%s seq=%d first_index=%d", seg.path, seq, first_index)


def _replay(segments: list[_Segment], replay: _Replay) -> _Tail:
    """Feed every record to `replay`; return where the last segment's good records end."""
    tail = _Tail()
    for i, seg in enumerate(segments):
        tail = _Tail()
        records = _records(seg, seg.path.read_bytes(), i == len(segments) - 1, tail)
        replay.segment_start(seg, next(records, None))
        for rec in records:
            replay.record(seg, rec)
    return tail


def _check_segment_bytes(segment_bytes: int) -> None:
    if segment_bytes < MIN_SEGMENT_BYTES:
        raise ConfigError(f"segment_bytes must be >= {MIN_SEGMENT_BYTES}, got {segment_bytes}")


def _remove_temp_files(wal_dir: Path, dir_fd: int, fsync: bool) -> None:
    """Remove segments left half-cut by a crash (`*.wal.tmp`: never renamed, never used)."""
    stray = [p for p in wal_dir.iterdir() if p.name.endswith(".wal" + _TMP_SUFFIX)]
    for p in stray:
        p.unlink()
        log.warning("wal: removed unfinished segment path=%s", p)
    if stray and fsync:
        os.fsync(dir_fd)
