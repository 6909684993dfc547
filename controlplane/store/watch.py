"""`WatchHub`: watchers of key ranges, fed by the store's writes and its history.

A watcher asks for the events of [key, range_end) from `start_revision` on (0: from the next
revision). The hub gives it every matching event exactly once, in revision order (and in
sub-revision order within a revision), one revision at a time:

- at `watch()`, the history from `start_revision` to the current revision is replayed from
  the store's change log (`Store.changes`); a start at or below the compaction point raises
  `Compacted` and registers nothing;
- then each new revision is delivered as the store commits it (the hub is a store
  listener). Every revision below a watcher's `next_revision` has been delivered to it (or
  had no matching event), and nothing below it is delivered again: that is what makes
  "exactly once" hold across the replay/live boundary, across `rebind`, and across a new
  watch that resumes a cancelled one from its `next_revision`.

Delivery, per watcher, one of two modes:

- buffer (no callback): events accumulate in the watcher; the consumer calls `drain()`;
- callback: the hub calls `callback(events, revision)` for each revision with matching
  events. The callback runs inside the store write (under whatever lock the owner holds
  around apply), so it must not block and must not call back into the store: the asyncio
  layer hands the events to its loop with `loop.call_soon_threadsafe` and writes them to the
  stream there. The replay is delivered before `watch()` returns, so a gRPC bridge queues
  its "created" response before calling `watch()`. The events are shared between
  watchers: read them, do not modify them.

Flow control (on by default). A watcher may have at most the hub's `max_pending` unread
events: in buffer mode those not yet drained, in callback mode those delivered but not yet
acknowledged with `Watcher.ack(n)`, which the consumer calls (from any thread) once it has
written `n` events to its client. A live revision that would pass the limit cancels the
watcher with `SlowWatcher` instead of being queued; the events before it remain delivered
(or drainable), so a new watch from `next_revision` continues without a gap. The replay is
not limited (it is bounded by the history window) but counts as unread.
`watch(..., flow_control=False)` turns the limit off: then a callback consumer need not ack
and bounds its own queue.

Cancellation by the hub (slow watcher, compaction across a `rebind`, a callback that raised)
calls `on_cancel(error)`; `hub.cancel(watcher)` by the consumer does not. Either way the
watcher receives nothing more and `watcher.error` says why (None for the consumer's own).

Threads. The hub is synchronous and not thread-safe, like the store: the owner serializes
every call with the store's writes (one thread, or the lock it holds around apply), except
`Watcher.ack`, which only the consumer calls and which only increments its own counter.

Matching: watchers of one key are found by dictionary lookup; range watchers are checked one
by one (a control plane has tens of them, not thousands). Events are built once per change
(with and without prev_kv, each only if a watcher wants it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from controlplane.storepb import store_pb2 as pb

from .errors import InvalidRequest, SlowWatcher, StoreError, WatcherFailed
from .mvcc import ALL_KEYS, Change, Store

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_PENDING",
    "CancelCallback",
    "WatchCallback",
    "WatchHub",
    "Watcher",
    "change_to_event",
]

DEFAULT_MAX_PENDING = 10_000

# callback(events, revision): the events of one revision that match the watcher.
WatchCallback = Callable[[list[pb.Event], int], None]
# on_cancel(error): the hub cancelled the watcher.
CancelCallback = Callable[[StoreError], None]


def change_to_event(change: Change, prev_kv: bool) -> pb.Event:
    """The watch event of one store change (etcd's mvccpb.Event)."""
    key, rec, prev = change
    ev = pb.Event()
    kv = ev.kv
    kv.key = key
    kv.mod_revision = rec.main
    if rec.value is None:
        ev.type = pb.Event.DELETE
    else:
        kv.create_revision = rec.create
        kv.version = rec.version
        kv.value = rec.value
    if prev_kv and prev is not None:
        p = ev.prev_kv
        p.key = key
        p.create_revision = prev.create
        p.mod_revision = prev.main
        p.version = prev.version
        if prev.value:
            p.value = prev.value
    return ev


class Watcher:
    """One registered watch. Create with `WatchHub.watch`."""

    __slots__ = (
        "_acked",
        "_callback",
        "_delivered",
        "_end",
        "_on_cancel",
        "_pending",
        "cancelled",
        "error",
        "id",
        "key",
        "limit",
        "next_revision",
        "prev_kv",
        "range_end",
    )

    def __init__(
        self,
        watch_id: int,
        *,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        limit: int | None,
        callback: WatchCallback | None,
        on_cancel: CancelCallback | None,
    ) -> None:
        self.id = watch_id
        self.key = key
        self.range_end = range_end
        self.prev_kv = prev_kv
        self.limit = limit
        # Every revision before it was delivered (or had no matching event): a new watch
        # from here continues this one without a gap or a duplicate.
        self.next_revision = start_revision
        self.cancelled = False
        # Why the hub cancelled the watcher (None while active or if the consumer cancelled).
        self.error: StoreError | None = None
        self._end: bytes | None = None if range_end == ALL_KEYS else range_end
        self._callback = callback
        self._on_cancel = on_cancel
        self._pending: list[pb.Event] = []
        self._delivered = 0  # events handed to the callback (hub side)
        self._acked = 0  # events the consumer acknowledged (consumer side)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        return (
            f"Watcher(id={self.id}, key={self.key!r}, range_end={self.range_end!r}, "
            f"next_revision={self.next_revision}, {state})"
        )

    def matches(self, key: bytes) -> bool:
        """The key is in the watched range."""
        if not self.range_end:
            return key == self.key
        return self.key <= key and (self._end is None or key < self._end)

    def drain(self) -> list[pb.Event]:
        """Buffer mode: the events received since the last drain, oldest first (they stay
        drainable after a cancellation)."""
        events, self._pending = self._pending, []
        return events

    def ack(self, count: int) -> None:
        """Callback mode: the consumer has written `count` more events to its client. Safe
        to call from the consumer's thread while the hub runs on another."""
        self._acked += count

    @property
    def unread(self) -> int:
        """Events received but not yet drained (buffer mode) or acknowledged (callback)."""
        if self._callback is None:
            return len(self._pending)
        return self._delivered - self._acked

    def _deliver(self, events: list[pb.Event], revision: int) -> None:
        if self._callback is None:
            self._pending.extend(events)
        else:
            self._delivered += len(events)
            self._callback(events, revision)
        self.next_revision = revision + 1


class WatchHub:
    """The watchers of one store; see the module docstring. Not thread-safe."""

    def __init__(self, store: Store, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.max_pending = max_pending
        self._store = store
        self._next_id = 1
        self._by_key: dict[bytes, dict[int, Watcher]] = {}
        self._ranges: dict[int, Watcher] = {}
        store.add_listener(self._on_revision)

    @property
    def store(self) -> Store:
        return self._store

    def __len__(self) -> int:
        return len(self._ranges) + sum(len(ws) for ws in self._by_key.values())

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        *,
        prev_kv: bool = False,
        callback: WatchCallback | None = None,
        on_cancel: CancelCallback | None = None,
        flow_control: bool = True,
    ) -> Watcher:
        """Watch [key, range_end) (range_end as in `Store.range`) from `start_revision`
        (0: the next revision; a future revision waits for it).

        History from `start_revision` on is delivered before this returns. With
        `flow_control`, the watcher is cancelled with `SlowWatcher` when it has more than
        `max_pending` unread events (see the module docstring). Raises `InvalidRequest` for
        a bad range or a negative revision, and `Compacted` if `start_revision` <= the
        store's compact_revision.
        """
        if not key:
            raise InvalidRequest("watch: key is empty; every key has at least one byte")
        if range_end and range_end != ALL_KEYS and range_end < key:
            raise InvalidRequest(
                f"watch: range_end {range_end!r} sorts before key {key!r}; range_end must be "
                "empty (one key), b'\\x00' (every key from key on) or after key"
            )
        if start_revision < 0:
            raise InvalidRequest(
                f"watch: start_revision must be >= 0 (0: from now), got {start_revision}"
            )
        store = self._store
        start = start_revision or store.revision + 1
        w = Watcher(
            self._next_id,
            key=key,
            range_end=range_end,
            start_revision=start,
            prev_kv=prev_kv,
            limit=self.max_pending if flow_control else None,
            callback=callback,
            on_cancel=on_cancel,
        )
        self._next_id += 1
        if start <= store.revision:
            self._replay(w, store.changes(start), store.revision)
        if not w.cancelled:
            self._add(w)
        return w

    def cancel(self, watcher: Watcher) -> None:
        """Stop the watcher (the consumer's own decision: `on_cancel` is not called).
        Cancelling twice is harmless."""
        self._cancel(watcher, None)

    def rebind(self, store: Store) -> None:
        """Move every watcher to `store`, which replaced the hub's store (a Raft snapshot was
        installed). Each watcher continues from its `next_revision` with the new store's
        history; one whose `next_revision` is compacted there is cancelled with `Compacted`."""
        self._store.remove_listener(self._on_revision)
        self._store = store
        store.add_listener(self._on_revision)
        for w in self._watchers():
            if w.next_revision > store.revision:
                continue
            try:
                history = store.changes(w.next_revision)
            except StoreError as e:
                self._cancel(w, e)
                continue
            self._replay(w, history, store.revision)

    def close(self) -> None:
        """Stop listening to the store and drop every watcher (without `on_cancel`)."""
        self._store.remove_listener(self._on_revision)
        for w in self._watchers():
            self._cancel(w, None)

    # -- internals -----------------------------------------------------------------------

    def _watchers(self) -> list[Watcher]:
        """Every active watcher, by id (a copy: delivery may cancel some)."""
        found = list(self._ranges.values())
        for ws in self._by_key.values():
            found.extend(ws.values())
        found.sort(key=lambda w: w.id)
        return found

    def _add(self, w: Watcher) -> None:
        if w.range_end:
            self._ranges[w.id] = w
        else:
            self._by_key.setdefault(w.key, {})[w.id] = w

    def _cancel(self, w: Watcher, error: StoreError | None) -> None:
        if w.cancelled:
            return
        w.cancelled = True
        w.error = error
        if w.range_end:
            self._ranges.pop(w.id, None)
        else:
            ws = self._by_key.get(w.key)
            if ws is not None:
                ws.pop(w.id, None)
                if not ws:
                    del self._by_key[w.key]
        if error is not None:
            logger.info("watch cancelled id=%d key=%r reason=%s", w.id, w.key, error)
            if w._on_cancel is not None:
                try:
                    w._on_cancel(error)
                except Exception:
                    logger.exception("watch on_cancel callback raised id=%d", w.id)

    def _replay(self, w: Watcher, history: Sequence[Change], upto: int) -> None:
        """Deliver the matching changes of `history` (every change from `w.next_revision`
        to revision `upto`), one revision at a time, without flow control."""
        events: list[pb.Event] = []
        revision = 0
        for change in history:
            main = change.rev.main
            if main != revision:
                if events and not self._send(w, events, revision, limited=False):
                    return
                events = []
                revision = main
            if w.matches(change.key):
                events.append(change_to_event(change, w.prev_kv))
        if events and not self._send(w, events, revision, limited=False):
            return
        w.next_revision = max(w.next_revision, upto + 1)

    def _send(self, w: Watcher, events: list[pb.Event], revision: int, *, limited: bool) -> bool:
        """Deliver one revision's events to `w`; False if `w` was cancelled instead."""
        if limited and w.limit is not None and w.unread + len(events) > w.limit:
            self._cancel(w, SlowWatcher(revision, w.limit))
            return False
        try:
            w._deliver(events, revision)
        except Exception as e:
            logger.exception("watch callback raised id=%d revision=%d", w.id, revision)
            self._cancel(w, WatcherFailed(revision, e))
            return False
        return True

    def _on_revision(self, revision: int, changes: Sequence[Change]) -> None:
        """Store listener: deliver a new revision to the watchers it concerns."""
        matched: dict[int, tuple[Watcher, list[pb.Event]]] = {}
        ranges = list(self._ranges.values())
        for change in changes:
            with_prev: pb.Event | None = None
            without_prev: pb.Event | None = None
            candidates = list(self._by_key.get(change.key, {}).values())
            candidates.extend(w for w in ranges if w.matches(change.key))
            for w in candidates:
                if w.next_revision > revision:
                    continue  # starts in the future
                if w.prev_kv:
                    if with_prev is None:
                        with_prev = change_to_event(change, True)
                    ev = with_prev
                else:
                    if without_prev is None:
                        without_prev = change_to_event(change, False)
                    ev = without_prev
                entry = matched.get(w.id)
                if entry is None:
                    matched[w.id] = (w, [ev])
                else:
                    entry[1].append(ev)
        for w, events in matched.values():
            if not w.cancelled:
                self._send(w, events, revision, limited=True)
        # Watchers without events in this revision have seen it too.
        for w in self._ranges.values():
            if w.next_revision <= revision:
                w.next_revision = revision + 1
        for ws in self._by_key.values():
            for w in ws.values():
                if w.next_revision <= revision:
                    w.next_revision = revision + 1
