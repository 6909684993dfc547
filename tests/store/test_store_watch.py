"""The watch hub (controlplane.store.watch): replay, live events, exactly once, in order;
compaction, slow watchers, failing callbacks and snapshot rebinding."""

from __future__ import annotations

import random

import pytest

from controlplane.store import (
    ALL_KEYS,
    Compacted,
    InvalidRequest,
    SlowWatcher,
    Store,
    StoreError,
    Watcher,
    WatcherFailed,
    WatchHub,
    prefix_end,
)
from controlplane.storepb import store_pb2 as pb

from .storefixtures import Model, ModelEvent, in_range, put, random_range, random_request, txn

Seen = tuple[int, bytes, int, bytes | None]  # revision, key, type, prev value


def seen(ev: pb.Event) -> Seen:
    prev = ev.prev_kv.value if ev.HasField("prev_kv") else None
    return ev.kv.mod_revision, ev.kv.key, ev.type, prev


def expected(
    events: list[ModelEvent], start: int, key: bytes, end: bytes, prev_kv: bool
) -> list[Seen]:
    return [
        (
            e.revision,
            e.key,
            pb.Event.PUT if e.kv else pb.Event.DELETE,
            e.prev[3] if prev_kv and e.prev else None,
        )
        for e in events
        if e.revision >= start and in_range(e.key, key, end)
    ]


class Collector:
    """A callback consumer that records (revision, events) and acknowledges at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[pb.Event]]] = []
        self.watcher: Watcher | None = None
        self.cancelled: list[StoreError] = []

    def __call__(self, events: list[pb.Event], revision: int) -> None:
        self.calls.append((revision, events))

    def on_cancel(self, error: StoreError) -> None:
        self.cancelled.append(error)

    def events(self) -> list[pb.Event]:
        return [ev for _, evs in self.calls for ev in evs]


@pytest.mark.parametrize("seed", range(8))
def test_exactly_once_in_order_random(seed: int) -> None:
    """Watchers created at random times from random revisions over random ranges get exactly
    the model's matching events, once each, in order, across compactions and a snapshot
    restore; buffer and callback modes alike."""
    rng = random.Random(seed)
    store, model = Store(), Model()
    hub = WatchHub(store, max_pending=1_000_000)
    watches: list[tuple[Watcher, Collector | None, int, bytes, bytes, bool]] = []
    got: dict[int, list[Seen]] = {}
    for i in range(1, 200):
        req = random_request(rng, i, model)
        store.apply(i, req)
        model.apply(req)
        if rng.random() < 0.1:
            key, end = random_range(rng)
            start = (
                rng.choice([0, store.revision + 1, store.revision + 3])
                if rng.random() < 0.3
                else (rng.randrange(store.compact_revision + 1, store.revision + 1))
            )
            prev_kv = rng.random() < 0.5
            col = Collector() if rng.random() < 0.5 else None
            w = hub.watch(key, end, start, prev_kv=prev_kv, callback=col)
            watches.append((w, col, w.next_revision if start == 0 else start, key, end, prev_kv))
            got[w.id] = []
        if rng.random() < 0.05 and store.revision - 10 > store.compact_revision:
            store.compact(store.revision - 10)
        if i == 120:
            store = Store.restore(store.snapshot())
            hub.rebind(store)
        for w, col, *_ in watches:
            if col is None:
                got[w.id].extend(seen(ev) for ev in w.drain())
    assert watches
    for w, col, start, key, end, prev_kv in watches:
        if col is not None:
            got[w.id] = [seen(ev) for ev in col.events()]
            assert [r for r, _ in col.calls] == sorted({r for r, _ in col.calls})
        assert not w.cancelled
        assert got[w.id] == expected(model.events, start, key, end, prev_kv), w
        assert w.next_revision == store.revision + 1 or w.next_revision == start


def test_callback_gets_one_call_per_revision_with_replay_first() -> None:
    """The callback receives (events, revision) per revision: the replay before watch()
    returns, then live revisions as they commit."""
    s = Store()
    s.put(b"a", b"1")
    s.txn(txn(success=[put(b"a", b"2"), put(b"b", b"1")]))
    col = Collector()
    hub = WatchHub(s)
    w = hub.watch(b"a", ALL_KEYS, 2, callback=col)
    assert [(r, [e.kv.key for e in evs]) for r, evs in col.calls] == [
        (2, [b"a"]),
        (3, [b"a", b"b"]),
    ]
    assert w.next_revision == 4
    s.put(b"c", b"1")
    s.put(b"0", b"1")  # outside the range: no call, but the watcher has seen revision 5
    assert [r for r, _ in col.calls] == [2, 3, 4]
    assert w.next_revision == 6


def test_start_zero_means_from_the_next_revision() -> None:
    """start_revision 0 replays nothing and delivers from the next revision on."""
    s = Store()
    s.put(b"a", b"1")
    hub = WatchHub(s)
    w = hub.watch(b"a")
    assert w.next_revision == 3 and w.drain() == []
    s.put(b"a", b"2")
    assert [e.kv.mod_revision for e in w.drain()] == [3]


def test_watch_from_revision_1_replays_everything() -> None:
    """On a never-compacted store a watch from revision 1 sees the whole history."""
    s = Store()
    hub = WatchHub(s)
    w = hub.watch(b"a", start_revision=1)
    s.put(b"a", b"1")
    s.delete_range(b"a")
    w2 = hub.watch(b"a", start_revision=1)
    assert [seen(e) for e in w.drain()] == [seen(e) for e in w2.drain()]
    assert [e.type for e in w2.drain()] == []


@pytest.mark.parametrize(
    ("start", "ok"),
    [(4, False), (5, False), (6, True), (8, True)],
    ids=["below", "at-point", "after-point", "current"],
)
def test_watch_from_compacted_revision(start: int, ok: bool) -> None:
    """A watch must start after the compaction point; otherwise Compacted says where the
    point is, and nothing is registered."""
    s = Store()
    for v in range(7):
        s.put(b"a", b"%d" % v)
    s.compact(5)
    hub = WatchHub(s)
    if ok:
        w = hub.watch(b"a", start_revision=start)
        assert [e.kv.mod_revision for e in w.drain()] == list(range(start, 9))
        return
    with pytest.raises(Compacted) as info:
        hub.watch(b"a", start_revision=start)
    assert (info.value.revision, info.value.compact_revision, info.value.op) == (start, 5, "watch")
    assert len(hub) == 0


def test_slow_buffer_watcher_cancelled_and_resumable() -> None:
    """A buffer watcher over the limit is cancelled at the revision that would overflow;
    what it got stays drainable, and a new watch from next_revision continues without a gap
    or a duplicate."""
    s = Store()
    hub = WatchHub(s, max_pending=5)
    col = Collector()
    w = hub.watch(b"k", prefix_end(b"k"), on_cancel=col.on_cancel)
    for i in range(8):
        s.put(b"k%d" % i, b"v")
    assert w.cancelled
    assert isinstance(w.error, SlowWatcher) and w.error.retryable
    assert "fell behind" in str(w.error)
    assert col.cancelled == [w.error]
    first = w.drain()
    assert [e.kv.mod_revision for e in first] == [2, 3, 4, 5, 6]
    assert w.next_revision == 7
    w2 = hub.watch(b"k", prefix_end(b"k"), w.next_revision)
    assert [e.kv.mod_revision for e in w2.drain()] == [7, 8, 9]


def test_callback_flow_control_needs_acks() -> None:
    """In callback mode unacknowledged events count against the limit; acking keeps the
    watcher alive; flow_control=False never cancels."""
    s = Store()
    hub = WatchHub(s, max_pending=3)
    lazy, acking, free = Collector(), Collector(), Collector()
    w_lazy = hub.watch(b"k", callback=lazy, on_cancel=lazy.on_cancel)
    w_ack = hub.watch(b"k", callback=acking)
    w_free = hub.watch(b"k", callback=free, flow_control=False)
    for i in range(10):
        s.put(b"k", b"%d" % i)
        w_ack.ack(1)
    assert w_lazy.cancelled and isinstance(lazy.cancelled[0], SlowWatcher)
    assert len(lazy.calls) == 3 and w_lazy.next_revision == 5
    assert not w_ack.cancelled and len(acking.calls) == 10 and w_ack.unread == 0
    assert not w_free.cancelled and len(free.calls) == 10


def test_failing_callback_is_isolated() -> None:
    """A callback that raises cancels only its watcher (WatcherFailed); the write and the
    other watchers proceed."""
    s = Store()
    hub = WatchHub(s)

    def boom(events: list[pb.Event], revision: int) -> None:
        raise RuntimeError("consumer bug")

    good = Collector()
    w_bad = hub.watch(b"k", callback=boom)
    w_good = hub.watch(b"k", callback=good)
    s.put(b"k", b"1")
    s.put(b"k", b"2")
    assert isinstance(w_bad.error, WatcherFailed) and "consumer bug" in str(w_bad.error)
    assert w_bad.error.next_revision == 2
    assert [r for r, _ in good.calls] == [2, 3]
    assert not w_good.cancelled
    assert s.revision == 3


def test_cancel_inside_callback() -> None:
    """A callback may cancel watchers (itself or another) during delivery."""
    s = Store()
    hub = WatchHub(s)
    other_calls: list[int] = []
    holder: dict[str, Watcher] = {}

    def first(events: list[pb.Event], revision: int) -> None:
        hub.cancel(holder["first"])
        hub.cancel(holder["other"])

    holder["first"] = hub.watch(b"k", callback=first)
    holder["other"] = hub.watch(b"k", callback=lambda evs, rev: other_calls.append(rev))
    s.put(b"k", b"1")
    s.put(b"k", b"2")
    assert other_calls == []
    assert len(hub) == 0
    assert holder["first"].error is None  # the consumer's own cancel has no error


def test_rebind_cancels_watchers_compacted_in_the_new_store() -> None:
    """After a snapshot install, a watcher continues from next_revision on the new store,
    or is cancelled with Compacted if the new store compacted past it."""
    old = Store()
    old.put(b"a", b"1")  # 2
    hub = WatchHub(old)
    col = Collector()
    behind = hub.watch(b"a", callback=col, on_cancel=col.on_cancel)
    quiet = hub.watch(b"zzz")  # nothing to deliver, but it has seen every revision
    newer = Store.restore(old.snapshot())
    for v in range(5):
        newer.put(b"a", b"%d" % v)  # 3..7
    newer.compact(5)
    hub.rebind(newer)
    assert behind.cancelled and isinstance(col.cancelled[0], Compacted)
    assert col.cancelled[0].compact_revision == 5
    assert quiet.cancelled  # next_revision 3 is compacted in the new store too
    caught_up = Store.restore(old.snapshot())
    hub2 = WatchHub(caught_up)
    w = hub2.watch(b"a")
    ahead = Store.restore(old.snapshot())
    ahead.put(b"a", b"x")  # 3
    hub2.rebind(ahead)
    assert [e.kv.mod_revision for e in w.drain()] == [3]
    ahead.put(b"a", b"y")
    assert [e.kv.mod_revision for e in w.drain()] == [4]
    caught_up.put(b"a", b"ignored")  # the old store no longer feeds the hub
    assert w.drain() == []


def test_close_drops_watchers_and_stops_listening() -> None:
    """close() cancels every watcher without on_cancel and detaches from the store."""
    s = Store()
    hub = WatchHub(s)
    col = Collector()
    w = hub.watch(b"a", callback=col, on_cancel=col.on_cancel)
    hub.close()
    s.put(b"a", b"1")
    assert w.cancelled and col.calls == [] and col.cancelled == []
    assert len(hub) == 0


@pytest.mark.parametrize(
    ("key", "end", "start", "match"),
    [
        (b"", b"", 0, "key is empty"),
        (b"b", b"a", 0, "sorts before key"),
        (b"a", b"", -1, "start_revision"),
    ],
    ids=["empty-key", "end-before-key", "negative-start"],
)
def test_watch_bad_input(key: bytes, end: bytes, start: int, match: str) -> None:
    """A malformed watch raises InvalidRequest and registers nothing."""
    hub = WatchHub(Store())
    with pytest.raises(InvalidRequest, match=match):
        hub.watch(key, end, start)
    assert len(hub) == 0


def test_events_are_shared_not_copied_per_watcher() -> None:
    """Watchers with the same prev_kv choice receive the same event objects (built once)."""
    s = Store()
    hub = WatchHub(s)
    a = hub.watch(b"k")
    b = hub.watch(b"k", prefix_end(b"k"))
    c = hub.watch(b"k", prev_kv=True)
    s.put(b"k", b"1")
    s.put(b"k", b"2")
    ea, eb, ec = a.drain(), b.drain(), c.drain()
    assert all(x is y for x, y in zip(ea, eb, strict=True))
    assert ec[1] is not ea[1]
    assert ec[1].prev_kv.value == b"1" and not ea[1].HasField("prev_kv")
