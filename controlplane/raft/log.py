"""The Raft log as the core sees it: stable entries in `Storage` plus an unstable tail.

    storage:  [first_index ........ storage.last_index]
    unstable:                    [offset ............... last_index]   (+ maybe a snapshot)

Entries in the unstable tail have been appended by the core but not yet persisted by the
driver; `stable_to` moves the boundary once a `Ready` is handled. An unstable entry may
overlap (and then overrides) storage: a follower that truncates a conflicting suffix writes
the replacement entries, and the driver's append truncates storage accordingly.

`committed` and `applied` satisfy  applied <= committed <= last_index  at all times.
"""

from __future__ import annotations

import logging

from .errors import Compacted, Unavailable
from .storage import NO_LIMIT, Storage, limit_size
from .types import Entry, Snapshot

logger = logging.getLogger(__name__)


class Unstable:
    """Entries and an incoming snapshot not yet written to stable storage."""

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset  # index of entries[0]

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == i:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, i: int, t: int) -> None:
        gt = self.maybe_term(i)
        if gt is None:
            return
        # Only if the entry is still the one that was persisted (not replaced meanwhile).
        if gt == t and i >= self.offset:
            del self.entries[: i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, s: Snapshot) -> None:
        self.offset = s.metadata.index + 1
        self.entries = []
        self.snapshot = s

    def truncate_and_append(self, ents: list[Entry] | tuple[Entry, ...]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replace everything unstable; storage is truncated by the driver's append.
            logger.debug("replace the unstable entries from index=%d", after)
            self.offset = after
            self.entries = list(ents)
        else:
            logger.debug("truncate the unstable entries before index=%d", after)
            del self.entries[after - self.offset :]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    def __init__(self, storage: Storage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (
            f"committed={self.committed} applied={self.applied} "
            f"unstable.offset={self.unstable.offset} len(unstable)={len(self.unstable.entries)}"
        )

    # -- indexes and terms ----------------------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, i: int) -> int:
        """Term of entry i; raises `Compacted` or `Unavailable` outside the known range."""
        # The valid range is [first_index - 1, last_index]: the dummy entry's term is known.
        if i < self.first_index() - 1:
            raise Compacted(f"index {i} is compacted")
        if i > self.last_index():
            raise Unavailable(f"index {i} is beyond the last index {self.last_index()}")
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        return self.storage.term(i)

    def zero_term_on_out_of_bounds(self, i: int) -> int:
        try:
            return self.term(i)
        except (Compacted, Unavailable):
            return 0

    def match_term(self, i: int, t: int) -> bool:
        try:
            return self.term(i) == t
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Raft §5.4.1: is a candidate's log (last index, last term) at least as current?"""
        last_term = self.last_term()
        return term > last_term or (term == last_term and lasti >= self.last_index())

    # -- appending --------------------------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: tuple[Entry, ...]
    ) -> int | None:
        """Append `ents` after (index, log_term) if that entry matches (§5.3).

        Returns the index of the last new entry, or None if the log does not match.
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci != 0:
            if ci <= self.committed:
                raise AssertionError(
                    f"entry {ci} conflicts with committed entry (committed={self.committed})"
                )
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry] | tuple[Entry, ...]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise AssertionError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: tuple[Entry, ...]) -> int:
        """Index of the first entry that is new or conflicts with an existing one, else 0."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                if e.index <= self.last_index():
                    logger.debug(
                        "found conflict index=%d existing_term=%d conflicting_term=%d",
                        e.index,
                        self.zero_term_on_out_of_bounds(e.index),
                        e.term,
                    )
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest (index, term) at or below `index` whose term is <= `term`.

        Used for fast log backtracking: a rejection hints the leader at the last entry that
        can possibly match, skipping all entries of a conflicting term at once.
        """
        while index > 0:
            try:
                our_term = self.term(index)
            except (Compacted, Unavailable):
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    # -- reading -----------------------------------------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def has_next_committed_ents(self) -> bool:
        if self.unstable.snapshot is not None:
            return False
        return self.committed > self.applied

    def next_committed_ents(self) -> list[Entry]:
        """Committed entries not yet applied, up to `max_next_ents_size` bytes."""
        if not self.has_next_committed_ents():
            return []
        lo = max(self.applied + 1, self.first_index())
        return self.slice(lo, self.committed + 1, self.max_next_ents_size)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry still in the log (for tests and debugging)."""
        try:
            return self.entries(self.first_index(), NO_LIMIT)
        except Compacted:  # racing with compaction: retry once from the new first index
            return self.entries(self.first_index(), NO_LIMIT)

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi) limited to max_size bytes (at least one entry)."""
        self._must_check_out_of_bounds(lo, hi)
        if lo == hi:
            return []
        ents: list[Entry] = []
        if lo < self.unstable.offset:
            stored = self.storage.entries(lo, min(hi, self.unstable.offset), max_size)
            if len(stored) < min(hi, self.unstable.offset) - lo:
                return stored  # hit the size limit
            ents = stored
        if hi > self.unstable.offset:
            ents = ents + self.unstable.slice(max(lo, self.unstable.offset), hi)
        return limit_size(ents, max_size)

    def _must_check_out_of_bounds(self, lo: int, hi: int) -> None:
        if lo > hi:
            raise AssertionError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise Compacted(f"index {lo} is compacted (first index {fi})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"slice [{lo},{hi}) out of bound [{fi},{self.last_index()}]")

    # -- commit, apply, persist ---------------------------------------------------------------

    def commit_to(self, to_commit: int) -> None:
        if self.committed < to_commit:
            if self.last_index() < to_commit:
                raise AssertionError(
                    f"to_commit({to_commit}) is out of range [last_index({self.last_index()})]"
                )
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to max_index only if that entry is of `term` (§5.4.2)."""
        if max_index > self.committed and self.zero_term_on_out_of_bounds(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise AssertionError(
                f"applied({i}) is out of range [prev_applied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    def restore(self, s: Snapshot) -> None:
        logger.info(
            "log starts to restore snapshot index=%d term=%d", s.metadata.index, s.metadata.term
        )
        self.committed = s.metadata.index
        self.unstable.restore(s)
