"""`SortedKeys`: the ordered set of keys that ranges walk.

A plain sorted list costs O(n) per insertion (the tail moves), which adds up to seconds when
100k keys arrive in random order. This is the chunked list of `sortedcontainers`: sorted chunks
of at most `2 * load` keys plus the maximum of each, so an insertion or removal bisects the
maxima and then moves at most one chunk, and a range bisects twice and walks chunks in order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

DEFAULT_LOAD = 512


class SortedKeys:
    """An ordered set of byte strings. Not thread-safe."""

    __slots__ = ("_len", "_lists", "_load", "_maxes")

    def __init__(self, keys: Iterable[bytes] = (), *, load: int = DEFAULT_LOAD) -> None:
        if load < 1:
            raise ValueError(f"load must be at least 1, got {load}")
        self._load = load
        ordered = sorted(set(keys))
        self._lists: list[list[bytes]] = [
            ordered[i : i + load] for i in range(0, len(ordered), load)
        ]
        self._maxes: list[bytes] = [chunk[-1] for chunk in self._lists]
        self._len = len(ordered)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._lists:
            yield from chunk

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return False
        chunk = self._lists[i]
        j = bisect_left(chunk, key)
        return chunk[j] == key

    def add(self, key: bytes) -> None:
        """Insert `key`; a key already present is left as it is."""
        maxes = self._maxes
        if not maxes:
            self._lists.append([key])
            maxes.append(key)
            self._len = 1
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):
            i -= 1
            chunk = self._lists[i]
            chunk.append(key)
            maxes[i] = key
        else:
            chunk = self._lists[i]
            j = bisect_left(chunk, key)
            if chunk[j] == key:
                return
            chunk.insert(j, key)
        self._len += 1
        if len(chunk) > 2 * self._load:
            half = chunk[self._load :]
            del chunk[self._load :]
            self._lists.insert(i + 1, half)
            maxes[i] = chunk[-1]
            maxes.insert(i + 1, half[-1])

    def discard(self, key: bytes) -> None:
        """Remove `key` if present."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return
        chunk = self._lists[i]
        j = bisect_left(chunk, key)
        if chunk[j] != key:
            return
        del chunk[j]
        self._len -= 1
        if not chunk:
            del self._lists[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]

    def irange(self, start: bytes, end: bytes | None) -> Iterator[bytes]:
        """The keys k with start <= k < end, in order (`end` None: no upper bound)."""
        maxes = self._maxes
        i = bisect_left(maxes, start)
        if i == len(maxes):
            return
        lists = self._lists
        j = bisect_left(lists[i], start)
        while i < len(lists):
            chunk = lists[i]
            if end is not None and maxes[i] >= end:
                yield from chunk[j : bisect_left(chunk, end, j)]
                return
            yield from chunk[j:] if j else chunk
            i += 1
            j = 0
