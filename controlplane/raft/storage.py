"""The `Storage` port the core reads its stable log from, and its in-memory twin.

The core only *reads* storage; the driver writes to it while handling a `Ready` (append the
entries, set the hard state, apply the snapshot) before calling `advance`. Entries handed out
by `entries()` must not be mutated (they are frozen dataclasses anyway).

Like etcd's MemoryStorage, the in-memory log keeps a dummy entry at position 0 that holds the
index and term of the last compacted (or snapshotted) entry, so `term(first_index - 1)` works.
"""

from __future__ import annotations

from typing import Protocol

from .errors import Compacted, SnapOutOfDate, Unavailable
from .types import EMPTY_SNAPSHOT, ConfState, Entry, HardState, Snapshot, SnapshotMetadata

NO_LIMIT = 1 << 62
"""Used as `max_size` to ask for every entry in a range."""


class Storage(Protocol):
    """Read access to the stable log.

    Errors: `Compacted` when an index is below the first available one (the caller falls
    back to a snapshot), `Unavailable` when above the last one.
    """

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi); at least one entry is returned even if it exceeds max_size."""
        ...

    def term(self, i: int) -> int:
        """Term of entry i, which must be in [first_index - 1, last_index]."""
        ...

    def last_index(self) -> int: ...

    def first_index(self) -> int:
        """Index of the first entry still available (older ones are in the snapshot)."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot; may raise `SnapshotTemporarilyUnavailable`."""
        ...


def limit_size(entries: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix of `entries` within `max_size` bytes, but never empty."""
    if len(entries) <= 1 or max_size >= NO_LIMIT:
        return entries
    size = entries[0].size()
    for i in range(1, len(entries)):
        size += entries[i].size()
        if size > max_size:
            return entries[:i]
    return entries


class MemoryStorage:
    """An in-memory `Storage`, also used as the simulated "disk" in tests.

    Not thread-safe: a driver that writes from another thread must lock around it.
    """

    def __init__(self) -> None:
        self.hard_state = HardState()
        self._snapshot = EMPTY_SNAPSHOT
        # ents[0] is a dummy entry holding the snapshot's index and term.
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- Storage ------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries [{lo}, {hi}) beyond last index {self.last_index()}")
        if len(self._ents) == 1:  # only the dummy entry
            raise Unavailable("log is empty")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise Compacted(f"index {i} is compacted (first index {offset + 1})")
        if i - offset >= len(self._ents):
            raise Unavailable(f"index {i} beyond last index {self.last_index()}")
        return self._ents[i - offset].term

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes, done by the driver -------------------------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log with `snap` (a snapshot received from the leader)."""
        if self._snapshot.metadata.index >= snap.metadata.index:
            have = self._snapshot.metadata.index
            raise SnapOutOfDate(f"snapshot at {snap.metadata.index} is not newer than {have}")
        self._snapshot = snap
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, i: int, cs: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine at applied index i (entries stay until
        `compact`)."""
        if i <= self._snapshot.metadata.index:
            raise SnapOutOfDate(
                f"snapshot at {i} is not newer than {self._snapshot.metadata.index}"
            )
        if i > self.last_index():
            raise Unavailable(f"snapshot index {i} beyond last index {self.last_index()}")
        self._snapshot = Snapshot(
            data=data, metadata=SnapshotMetadata(conf_state=cs, index=i, term=self.term(i))
        )
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries up to and including `compact_index`."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise Compacted(f"index {compact_index} is already compacted")
        if compact_index > self.last_index():
            raise Unavailable(
                f"compact index {compact_index} beyond last index {self.last_index()}"
            )
        i = compact_index - offset
        self._ents = [Entry(term=self._ents[i].term, index=compact_index), *self._ents[i + 1 :]]

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append entries, truncating any conflicting suffix (entries must be contiguous)."""
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return  # all already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise Unavailable(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )
        # In place: copying the whole log on every append made it O(log length).
        del self._ents[offset:]
        self._ents.extend(entries)
