"""The WAL gives back exactly what was saved, survives torn writes and refuses corruption."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.raft.types import Entry, HardState
from controlplane.raftnode import codec
from controlplane.raftnode.errors import (
    ConfigError,
    SnapshotNotFound,
    WALClosed,
    WALCorrupted,
    WALExists,
    WALFailed,
    WALLocked,
    WALNotFound,
)
from controlplane.raftnode.wal import (
    HEADER_SIZE,
    WAL,
    RecordType,
    WalSnapshot,
    frame,
    segment_name,
)
from controlplane.raftpb import raft_pb2 as pb


def ents(lo: int, hi: int, term: int = 1, size: int = 8) -> list[Entry]:
    """Entries lo..hi inclusive; data never ends in a zero byte (see the torn-tail rule)."""
    return [
        Entry(term=term, index=i, data=f"{i:0{size}d}".encode()[-size:]) for i in range(lo, hi + 1)
    ]


def index_terms(entries: tuple[Entry, ...] | list[Entry]) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in entries]


def records(data: bytes) -> list[tuple[RecordType, bytes]]:
    """(type, payload) of the records of a well-formed segment."""
    out = []
    for off in record_offsets(data):
        length = int.from_bytes(data[off : off + 4], "little")
        out.append(
            (RecordType(data[off + 4]), data[off + HEADER_SIZE : off + HEADER_SIZE + length])
        )
    return out


def record_offsets(data: bytes) -> list[int]:
    """Offsets of the records of a well-formed segment, read from their length fields."""
    offsets, off = [], 0
    while off < len(data):
        offsets.append(off)
        off += HEADER_SIZE + int.from_bytes(data[off : off + 4], "little")
    return offsets


@pytest.fixture
def wal_dir(tmp_path: Path) -> Path:
    return tmp_path / "wal"


def test_round_trip(wal_dir: Path) -> None:
    """What was saved (metadata, entries, last hard state) is what open returns."""
    with WAL.create(wal_dir, b"member-1", fsync=False) as w:
        w.save(HardState(term=1, vote=1), ents(1, 3))
        w.save(HardState(term=2, vote=1, commit=3), ents(4, 5, term=2))
        w.save(None, ents(6, 6, term=2))
    w, rec = WAL.open(wal_dir, fsync=False)
    w.close()
    assert rec.metadata == b"member-1"
    assert rec.hard_state == HardState(term=2, vote=1, commit=3)
    assert list(rec.entries) == ents(1, 3) + ents(4, 6, term=2)
    assert rec.snapshot == WalSnapshot()


def test_create_refuses_an_existing_wal(wal_dir: Path) -> None:
    """create never overwrites a log: that would let the member forget votes and entries."""
    WAL.create(wal_dir, fsync=False).close()
    with pytest.raises(WALExists):
        WAL.create(wal_dir, fsync=False)


def test_open_without_wal(wal_dir: Path) -> None:
    """open on a directory with no segment raises WALNotFound."""
    with pytest.raises(WALNotFound):
        WAL.open(wal_dir)
    wal_dir.mkdir()
    with pytest.raises(WALNotFound):
        WAL.open(wal_dir)


def test_one_writer_at_a_time(wal_dir: Path) -> None:
    """A second open of a WAL in use raises WALLocked; closing releases the lock."""
    w = WAL.create(wal_dir, fsync=False)
    with pytest.raises(WALLocked):
        WAL.open(wal_dir)
    w.close()
    WAL.open(wal_dir, fsync=False)[0].close()


def test_closed_wal_refuses_writes(wal_dir: Path) -> None:
    """Using a closed WAL raises WALClosed."""
    w = WAL.create(wal_dir, fsync=False)
    w.close()
    w.close()
    with pytest.raises(WALClosed):
        w.save(None, ents(1, 1))


def test_segment_bytes_is_validated(wal_dir: Path) -> None:
    """A segment size too small to hold a segment's opening records is a ConfigError."""
    with pytest.raises(ConfigError, match="segment_bytes must be >= 256, got 10"):
        WAL.create(wal_dir, segment_bytes=10)


GROUP_COMMIT = {
    # id: (WAL fsync, save's sync, entries in the save, fdatasync calls)
    "batch-one-fsync": (True, True, 100, 1),
    "single-one-fsync": (True, True, 1, 1),
    "must-sync-false": (True, False, 100, 0),
    "fsync-off": (False, True, 100, 0),
}


@pytest.mark.parametrize("case", GROUP_COMMIT.values(), ids=GROUP_COMMIT.keys())
def test_group_commit(
    wal_dir: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[bool, bool, int, int]
) -> None:
    """save writes all its records at once and syncs at most once, however many entries."""
    fsync, sync, entries, want = case
    w = WAL.create(wal_dir, fsync=fsync)
    calls: list[int] = []
    writes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(os, "fdatasync", calls.append)
    monkeypatch.setattr(os, "write", write)
    w.save(HardState(term=1, commit=1), ents(1, entries), sync=sync)
    monkeypatch.undo()
    w.close()
    assert (len(calls), len(writes)) == (want, 1)


# -- torn tails -------------------------------------------------------------------------------

PREFIX_HS = HardState(term=1, vote=1, commit=2)
"""Every torn-tail case first saves PREFIX_HS with entries 1..3."""


def _marker_frame(m: WalSnapshot) -> bytes:
    return frame(
        RecordType.SNAPSHOT, pb.WalSnapshot(index=m.index, term=m.term).SerializeToString()
    )


TORN_CASES: dict[str, tuple[Callable[[WAL], None], int, HardState, list[Entry]]] = {
    # id: (last save, length of its last record, expected hard state, expected entries)
    "entry": (
        lambda w: w.save(None, ents(4, 4)),
        len(frame(RecordType.ENTRY, codec.encode_entry(ents(4, 4)[0]))),
        PREFIX_HS,
        ents(1, 3),
    ),
    "entry-over-two-sectors": (
        lambda w: w.save(None, ents(4, 4, size=700)),
        len(frame(RecordType.ENTRY, codec.encode_entry(ents(4, 4, size=700)[0]))),
        PREFIX_HS,
        ents(1, 3),
    ),
    "hard-state-after-batch": (
        lambda w: w.save(HardState(term=2, vote=1, commit=5), ents(4, 6, term=2)),
        len(frame(RecordType.HARD_STATE, codec.encode_hard_state(HardState(2, 1, 5)))),
        PREFIX_HS,
        ents(1, 3) + ents(4, 6, term=2),
    ),
    "overwriting-entry": (
        lambda w: w.save(None, ents(2, 2, term=2)),
        len(frame(RecordType.ENTRY, codec.encode_entry(ents(2, 2, term=2)[0]))),
        PREFIX_HS,
        ents(1, 3),
    ),
    "snapshot-marker": (
        lambda w: w.save_snapshot(WalSnapshot(index=3, term=1)),
        len(_marker_frame(WalSnapshot(index=3, term=1))),
        PREFIX_HS,
        ents(1, 3),
    ),
}


def _torn_fixture(base: Path, last_save: Callable[[WAL], None]) -> tuple[str, bytes]:
    """Build a WAL ending with `last_save`; return its only segment's name and content."""
    with WAL.create(base, b"meta", fsync=False) as w:
        w.save(PREFIX_HS, ents(1, 3))
        last_save(w)
        (seg,) = w.segments
    return seg.name, seg.read_bytes()


def _check_recovers(
    case_dir: Path, *, seg_name: str, content: bytes, start: int, hs: HardState, want: list[Entry]
) -> None:
    """Open a WAL whose only segment is `content`: it must recover (hs, want), truncate at
    `start`, accept an append and give it back after another reopen."""
    case_dir.mkdir()
    (case_dir / seg_name).write_bytes(content)
    w, rec = WAL.open(case_dir, fsync=False)
    with w:
        assert (rec.hard_state, list(rec.entries)) == (hs, want)
        assert (case_dir / seg_name).stat().st_size == start
        nxt = Entry(term=9, index=len(want) + 1, data=b"after-repair")
        w.save(HardState(term=9, commit=1), [nxt])
    w, rec = WAL.open(case_dir, fsync=False)
    w.close()
    assert (rec.hard_state, list(rec.entries)) == (HardState(term=9, commit=1), [*want, nxt])
    shutil.rmtree(case_dir)


@pytest.mark.parametrize("mode", ["truncated", "zero-filled"])
@pytest.mark.parametrize("case", TORN_CASES.values(), ids=TORN_CASES.keys())
def test_torn_last_record_is_dropped_at_every_offset(
    tmp_path: Path, case: tuple[Callable[[WAL], None], int, HardState, list[Entry]], mode: str
) -> None:
    """A crash at any byte of the last record recovers the records before it (it was never
    acknowledged: save returns after the fsync); the tail is cut so appends stay clean."""
    last_save, length, hs, want = case
    seg_name, content = _torn_fixture(tmp_path / "base", last_save)
    start = len(content) - length
    assert record_offsets(content)[-1] == start
    for k in range(length):
        if mode == "truncated":
            torn = content[: start + k]
        else:
            torn = content[: start + k] + bytes(length - k)
        try:
            _check_recovers(
                tmp_path / f"k{k}", seg_name=seg_name, content=torn, start=start, hs=hs, want=want
            )
        except Exception as e:
            raise AssertionError(f"{mode} at byte {k} of the last record: {e!r}") from e


@pytest.mark.parametrize("zeros", [1, HEADER_SIZE - 1, HEADER_SIZE, 4096])
def test_zeros_after_the_last_record_are_cut(tmp_path: Path, zeros: int) -> None:
    """Zeros after a complete last record (a file extended but not written) are a torn tail."""
    seg_name, content = _torn_fixture(tmp_path / "base", lambda w: w.save(None, ents(4, 4)))
    _check_recovers(
        tmp_path / "case",
        seg_name=seg_name,
        content=content + bytes(zeros),
        start=len(content),
        hs=PREFIX_HS,
        want=ents(1, 4),
    )


def test_fsynced_wal_repairs_too(wal_dir: Path) -> None:
    """With fsync on, a torn tail is repaired the same way (and the repair is synced)."""
    with WAL.create(wal_dir, fsync=True) as w:
        w.save(PREFIX_HS, ents(1, 3))
        (seg,) = w.segments
    with open(seg, "ab") as f:
        f.write(frame(RecordType.ENTRY, codec.encode_entry(ents(4, 4)[0]))[:20])
    w, rec = WAL.open(wal_dir)
    w.close()
    assert list(rec.entries) == ents(1, 3)


# -- corruption -------------------------------------------------------------------------------

FLIPS = {
    "length": 0,
    "type": 4,
    "reserved": 6,
    "header-crc": 9,
    "payload-crc": 14,
    "payload-first-byte": HEADER_SIZE,
    "payload-last-byte": -1,
}


def _multi_segment_wal(wal_dir: Path) -> list[Path]:
    """A WAL of several segments; its last segment holds several records."""
    with WAL.create(wal_dir, b"meta", segment_bytes=256, fsync=False) as w:
        for i in range(1, 30):
            w.save(HardState(term=1, commit=i - 1), ents(i, i))
        segs = w.segments
    assert len(segs) >= 3
    assert len(record_offsets(segs[-1].read_bytes())) >= 4
    return segs


@pytest.mark.parametrize("where", FLIPS.values(), ids=FLIPS.keys())
@pytest.mark.parametrize(
    ("segment", "record"),
    [(0, 0), (0, -1), (1, 1), (-1, 0), (-1, 1), (-1, -2)],
    ids=[
        "first-segment-metadata",
        "first-segment-last-record",
        "middle-segment",
        "last-segment-metadata",
        "last-segment-second-record",
        "last-segment-before-tail",
    ],
)
def test_flipped_bit_is_corruption(wal_dir: Path, segment: int, record: int, where: int) -> None:
    """One flipped bit in any record but the torn tail raises WALCorrupted naming the file and
    the record's offset, and saying what to do; nothing is truncated."""
    seg = _multi_segment_wal(wal_dir)[segment]
    data = bytearray(seg.read_bytes())
    offsets = record_offsets(bytes(data))
    off = offsets[record]
    end = offsets[offsets.index(off) + 1] if off != offsets[-1] else len(data)
    pos = off + where if where >= 0 else end + where
    data[pos] ^= 0x10
    seg.write_bytes(bytes(data))
    for op in (lambda: WAL.open(wal_dir), lambda: WAL.snapshot_markers(wal_dir)):
        with pytest.raises(WALCorrupted) as info:
            op()
        assert (info.value.path, info.value.offset) == (seg, off)
        assert f"file {seg}, offset {off}" in str(info.value)
        assert "restore the member from a healthy peer" in str(info.value)
    assert seg.read_bytes() == data


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[:-3], "cut short by the end of the file in a segment that is not the last"),
        (lambda d: d + b"\x00" * 20, "checksum mismatch in a segment that is not the last"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "payload checksum mismatch"),
    ],
    ids=["truncated", "zero-tail", "flipped-last-byte"],
)
def test_damaged_tail_of_a_closed_segment_is_corruption(
    wal_dir: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    """Segments are synced before the next is cut, so only the last one may have a torn tail."""
    seg = _multi_segment_wal(wal_dir)[0]
    seg.write_bytes(damage(seg.read_bytes()))
    with pytest.raises(WALCorrupted, match=reason) as info:
        WAL.open(wal_dir)
    assert info.value.path == seg


def test_flipped_bit_in_the_final_record_is_not_a_torn_write(wal_dir: Path) -> None:
    """A complete last record with a bad checksum and no zero-filled end is bit rot in an
    acknowledged record: WALCorrupted, not silently dropped."""
    seg = _multi_segment_wal(wal_dir)[-1]
    data = bytearray(seg.read_bytes())
    off = record_offsets(bytes(data))[-1]
    data[off + HEADER_SIZE + 1] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(WALCorrupted, match="payload checksum mismatch") as info:
        WAL.open(wal_dir)
    assert info.value.offset == off


def test_missing_segment_is_corruption(wal_dir: Path) -> None:
    """A gap in the segment sequence raises WALCorrupted naming the segment after it."""
    segs = _multi_segment_wal(wal_dir)
    segs[1].unlink()
    with pytest.raises(WALCorrupted, match="segment seq 1 is missing") as info:
        WAL.open(wal_dir)
    assert info.value.path == segs[2]


def test_renamed_segment_is_corruption(wal_dir: Path) -> None:
    """A segment whose name disagrees with its metadata record raises WALCorrupted."""
    segs = _multi_segment_wal(wal_dir)
    segs[-1].rename(wal_dir / segment_name(len(segs) - 1, 12345))
    with pytest.raises(WALCorrupted, match="does not match the file name"):
        WAL.open(wal_dir)


# -- segments ---------------------------------------------------------------------------------


def test_segments_are_cut_at_segment_bytes(wal_dir: Path) -> None:
    """A new segment starts once the current one reaches segment_bytes; its name holds the next
    index; each starts with the metadata and the current hard state."""
    with WAL.create(wal_dir, b"meta", segment_bytes=512, fsync=False) as w:
        for i in range(1, 101):
            w.save(HardState(term=1, commit=i - 1), ents(i, i))
        segs = w.segments
    names = [p.name for p in segs]
    assert len(segs) > 5
    assert [int(n[:16], 16) for n in names] == list(range(len(segs)))
    assert all(p.stat().st_size < 512 + 200 for p in segs)
    w, rec = WAL.open(wal_dir, fsync=False)
    w.close()
    assert list(rec.entries) == ents(1, 100)
    assert rec.hard_state == HardState(term=1, commit=99)
    last_index = 0
    for p in segs:
        assert int(p.name[17:33], 16) == (last_index + 1 if p != segs[0] else 0)
        recs = records(p.read_bytes())
        assert [t for t, _ in recs[:2]] == [
            RecordType.METADATA,
            RecordType.HARD_STATE,
        ] or p == segs[0]
        indexes = [codec.decode_entry(b).index for t, b in recs if t == RecordType.ENTRY]
        last_index = indexes[-1] if indexes else last_index


def test_release_to_removes_segments_below_the_index(wal_dir: Path) -> None:
    """release_to(i) removes the segments holding only entries below i; the WAL still replays
    from a snapshot at i, with the newest hard state, and no longer from the start."""
    with WAL.create(wal_dir, b"meta", segment_bytes=512, fsync=False) as w:
        for i in range(1, 201):
            w.save(HardState(term=1, vote=1, commit=i - 1), ents(i, i))
            if i == 150:
                w.save_snapshot(WalSnapshot(index=150, term=1))
        before = w.segments
        removed = w.release_to(150)
        assert w.release_to(150) == []
        after = w.segments
    assert removed == before[: len(removed)]
    assert after == before[len(removed) :]
    assert removed and not any(p.exists() for p in removed)
    assert int(after[0].name[17:33], 16) <= 150 < int(after[1].name[17:33], 16)
    w, rec = WAL.open(wal_dir, WalSnapshot(index=150, term=1), fsync=False)
    w.close()
    assert list(rec.entries) == ents(151, 200)
    assert rec.hard_state == HardState(term=1, vote=1, commit=199)
    with pytest.raises(WALCorrupted, match="entries are missing"):
        WAL.open(wal_dir, fsync=False)


def test_release_to_keeps_the_last_segment(wal_dir: Path) -> None:
    """The segment being written is never released, whatever the index."""
    with WAL.create(wal_dir, segment_bytes=512, fsync=False) as w:
        w.save(None, ents(1, 40))
        w.save(None, ents(41, 41))
        w.release_to(10**9)
        assert len(w.segments) == 1
        w.save(None, ents(42, 42))


def test_unfinished_segment_is_removed(wal_dir: Path) -> None:
    """A `.wal.tmp` left by a crash during a cut is removed by open and never replayed."""
    with WAL.create(wal_dir, fsync=False) as w:
        w.save(None, ents(1, 2))
    (wal_dir / (segment_name(1, 3) + ".tmp")).write_bytes(b"half a segment")
    w, rec = WAL.open(wal_dir, fsync=False)
    w.close()
    assert list(rec.entries) == ents(1, 2)
    assert sorted(p.name for p in wal_dir.iterdir()) == [segment_name(0, 0)]


# -- replay semantics -------------------------------------------------------------------------

Write = tuple[str, object]
REPLAYS: dict[str, tuple[list[Write], WalSnapshot, list[tuple[int, int]]]] = {
    # id: (writes, snapshot to replay from, expected (index, term) of the entries)
    "suffix-replaced": (
        [("ents", ents(1, 10)), ("ents", ents(6, 8, term=2))],
        WalSnapshot(),
        [(i, 1) for i in range(1, 6)] + [(i, 2) for i in range(6, 9)],
    ),
    "replaced-from-the-first": (
        [("ents", ents(1, 5)), ("ents", ents(1, 2, term=2))],
        WalSnapshot(),
        [(1, 2), (2, 2)],
    ),
    "append-after-overwrite": (
        [("ents", ents(1, 10)), ("ents", ents(4, 5, term=2)), ("ents", ents(6, 7, term=2))],
        WalSnapshot(),
        [(1, 1), (2, 1), (3, 1)] + [(i, 2) for i in range(4, 8)],
    ),
    "own-snapshot-keeps-the-log": (
        [("ents", ents(1, 10)), ("snap", WalSnapshot(index=5, term=1))],
        WalSnapshot(index=5, term=1),
        [(i, 1) for i in range(6, 11)],
    ),
    "leader-snapshot-replaces-the-log": (
        [("ents", ents(1, 10)), ("snap", WalSnapshot(index=20, term=3)), ("ents", ents(21, 22, 3))],
        WalSnapshot(index=20, term=3),
        [(21, 3), (22, 3)],
    ),
    "leader-snapshot-drops-stale-suffix": (
        [("ents", ents(1, 10)), ("snap", WalSnapshot(index=8, term=2))],
        WalSnapshot(index=8, term=2),
        [],
    ),
    "overwrite-below-snapshot-drops-later-entries": (
        [("ents", ents(1, 10)), ("ents", ents(3, 6, term=2)), ("snap", WalSnapshot(6, 2))],
        WalSnapshot(index=6, term=2),
        [],
    ),
    "overwrite-below-snapshot-then-new-entries": (
        [
            ("ents", ents(1, 10)),
            ("ents", ents(3, 6, term=2)),
            ("snap", WalSnapshot(5, 2)),
            ("ents", ents(7, 8, term=2)),
        ],
        WalSnapshot(index=5, term=2),
        [(6, 2), (7, 2), (8, 2)],
    ),
    "older-marker-ignored": (
        [("ents", ents(1, 10)), ("snap", WalSnapshot(3, 1)), ("snap", WalSnapshot(7, 1))],
        WalSnapshot(index=3, term=1),
        [(i, 1) for i in range(4, 11)],
    ),
}


@pytest.mark.parametrize("segment_bytes", [1 << 20, 256], ids=["one-segment", "many-segments"])
@pytest.mark.parametrize("case", REPLAYS.values(), ids=REPLAYS.keys())
def test_replay_rebuilds_the_log(
    wal_dir: Path,
    case: tuple[list[Write], WalSnapshot, list[tuple[int, int]]],
    segment_bytes: int,
) -> None:
    """An entry at index i discards the entries >= i recorded before it; a snapshot marker keeps
    the log when its entry matches, else replaces it (as installing a snapshot does)."""
    writes, snap, want = case
    with WAL.create(wal_dir, segment_bytes=segment_bytes, fsync=False) as w:
        for kind, arg in writes:
            if kind == "ents":
                assert isinstance(arg, list)
                for e in arg:  # one save per entry, so segments are cut between them
                    w.save(None, [e])
            else:
                assert isinstance(arg, WalSnapshot)
                w.save_snapshot(arg)
    w, rec = WAL.open(wal_dir, snap, fsync=False)
    w.close()
    assert index_terms(rec.entries) == want


@pytest.mark.parametrize(
    ("snap", "match"),
    [
        (WalSnapshot(index=4, term=1), "no marker for the snapshot at index=4 term=1"),
        (WalSnapshot(index=5, term=2), "snapshot at index=5 with term=1, not term=2"),
    ],
    ids=["no-marker", "term-mismatch"],
)
def test_open_needs_the_snapshot_marker(wal_dir: Path, snap: WalSnapshot, match: str) -> None:
    """open refuses to replay from a snapshot the WAL does not record."""
    with WAL.create(wal_dir, fsync=False) as w:
        w.save(None, ents(1, 10))
        w.save_snapshot(WalSnapshot(index=5, term=1))
    with pytest.raises(SnapshotNotFound, match=match):
        WAL.open(wal_dir, snap, fsync=False)


def test_newer_snapshot_that_replaced_the_log_is_required(wal_dir: Path) -> None:
    """Replaying from an older snapshot across a leader's snapshot that replaced the log cannot
    rebuild the entries in between: SnapshotNotFound says so."""
    with WAL.create(wal_dir, fsync=False) as w:
        w.save(None, ents(1, 10))
        w.save_snapshot(WalSnapshot(index=5, term=1))
        w.save_snapshot(WalSnapshot(index=50, term=4))
        w.save(None, ents(51, 52, term=4))
    with pytest.raises(SnapshotNotFound, match="snapshot at index=50 term=4 replaced the log"):
        WAL.open(wal_dir, WalSnapshot(index=5, term=1), fsync=False)
    assert WAL.snapshot_markers(wal_dir) == [WalSnapshot(5, 1), WalSnapshot(50, 4)]


def test_failed_write_closes_the_wal(wal_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error in save raises WALFailed and closes the WAL; reopening recovers what was
    saved before (the failed write was never acknowledged)."""
    w = WAL.create(wal_dir, fsync=False)
    w.save(HardState(term=1), ents(1, 2))

    def fail(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(WALFailed, match="No space left on device"):
        w.save(None, ents(3, 3))
    monkeypatch.undo()
    with pytest.raises(WALClosed):
        w.save(None, ents(3, 3))
    w, rec = WAL.open(wal_dir, fsync=False)
    w.close()
    assert list(rec.entries) == ents(1, 2)
