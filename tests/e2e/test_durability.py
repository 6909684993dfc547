"""No acknowledged write is lost, every replica's store is the same, and a watch survives a
failover: 3 real masters (127.63/16, or another free subnet in 60-79), leaders killed with
SIGKILL under concurrent writers and started again with `kubelab start`.

What counts (DESIGN.md's write contract): an acknowledged put must be on every master
afterwards; a put that ended "outcome unknown" may be there or not; nothing that nobody
wrote may be there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from controlplane.client.kv import ClientError, KVClient, OutcomeUnknown
from controlplane.storepb import store_pb2

from .cluster import (
    Cluster,
    Leader,
    Timeout,
    hashes_at_one_index,
    read_local,
    running_cluster,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WRITERS = 5
KILLS = 3
SHARED_KEYS = 3
ACKS_BETWEEN_KILLS = 200
PREFIX = b"/nolost/"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("durability")
    with running_cluster(root, preferred_octet=63, masters=3) as c:
        yield c


@pytest.fixture(autouse=True)
def leader(cluster: Cluster, summary: Callable[[str, str], None]) -> Leader:
    cluster.log_up_time(summary)
    return cluster.heal()


# -- no acknowledged write lost ------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    key: bytes
    value: bytes
    revision: int
    started: float
    done: float


@dataclass
class Ledger:
    """What the writers were told: acknowledged, unknown, failed (nothing proposed)."""

    acked: list[Ack] = field(default_factory=list)
    unknown: list[tuple[bytes, bytes]] = field(default_factory=list)
    failed: int = 0

    @property
    def attempts(self) -> int:
        return len(self.acked) + len(self.unknown) + self.failed


async def wait_until(what: str, cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise Timeout(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.05)


async def writer(kv: KVClient, i: int, ledger: Ledger, stop: asyncio.Event) -> None:
    """Unique keys, and every fourth put an overwrite of a shared key."""
    n = 0
    while not stop.is_set():
        n += 1
        if n % 4 == 0:
            key = PREFIX + b"shared/%d" % (n // 4 % SHARED_KEYS)
        else:
            key = PREFIX + b"w%d/%06d" % (i, n)
        value = b"w%d-%d" % (i, n)
        started = time.monotonic()
        try:
            resp = await kv.put(key, value)
        except OutcomeUnknown:
            ledger.unknown.append((key, value))
        except ClientError:
            ledger.failed += 1  # nothing was proposed (no leader within the retry window)
            await asyncio.sleep(0.05)
        else:
            ledger.acked.append(Ack(key, value, resp.header.revision, started, time.monotonic()))


async def more_acks(ledger: Ledger, count: int, timeout: float = 60) -> None:
    base = len(ledger.acked)
    await wait_until(
        f"{count} more acknowledged puts", lambda: len(ledger.acked) >= base + count, timeout
    )


async def kill_leaders(cluster: Cluster, ledger: Ledger, rounds: int) -> list[tuple[str, float]]:
    """Kill the leader `rounds` times, each time after fresh acknowledgements, and start it
    again once the others elected a new one; returns (name, time of the kill)."""
    kills: list[tuple[str, float]] = []
    for _ in range(rounds):
        await more_acks(ledger, ACKS_BETWEEN_KILLS)
        old = await asyncio.to_thread(cluster.wait_leader)
        others = [n for n in cluster.names if n != old.name]
        await asyncio.to_thread(cluster.cli, "kill", old.name)
        kills.append((old.name, time.monotonic()))
        await asyncio.to_thread(cluster.wait_leader, others, old.term + 1, 30)
        await asyncio.to_thread(cluster.cli, "start", old.name)
    await more_acks(ledger, ACKS_BETWEEN_KILLS)
    return kills


def test_no_acknowledged_write_is_lost(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    ledger = Ledger()
    names = cluster.names

    async def scenario() -> list[tuple[str, float]]:
        stop = asyncio.Event()
        # Each writer prefers another master, so followers forward proposals too.
        clients = [
            cluster.client(names[i % len(names) :] + names[: i % len(names)])
            for i in range(WRITERS)
        ]
        try:
            tasks = [
                asyncio.create_task(writer(kv, i, ledger, stop)) for i, kv in enumerate(clients)
            ]
            try:
                kills = await kill_leaders(cluster, ledger, KILLS)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        finally:
            for kv in clients:
                await kv.close()
        return kills

    t0 = time.monotonic()
    kills = asyncio.run(scenario())
    took = time.monotonic() - t0

    # How long after each kill a put started after it was acknowledged.
    resumed = []
    for _, killed in kills:
        later = [a.done - killed for a in ledger.acked if a.started >= killed]
        resumed.append(min(later) if later else float("inf"))
    summary(
        "e2e durability",
        f"{WRITERS} writers, {KILLS} leader kills in {took:.1f} s: {len(ledger.acked)} "
        f"acknowledged, {len(ledger.unknown)} outcome unknown, {ledger.failed} failed; "
        f"first acknowledged put started after each kill: "
        + ", ".join(f"{r:.2f} s" for r in resumed),
    )
    assert len(ledger.acked) >= 0.5 * ledger.attempts, (
        f"only {len(ledger.acked)} of {ledger.attempts} puts acknowledged: the run proves little"
    )

    revisions = [a.revision for a in ledger.acked]
    assert len(set(revisions)) == len(revisions), "two acknowledged puts share a revision"

    cluster.wait_converged()
    written: dict[bytes, set[bytes]] = {}
    for a in ledger.acked:
        written.setdefault(a.key, set()).add(a.value)
    for key, value in ledger.unknown:
        written.setdefault(key, set()).add(value)
    newest: dict[bytes, Ack] = {}
    for a in ledger.acked:
        if a.key not in newest or a.revision > newest[a.key].revision:
            newest[a.key] = a

    for name in names:
        store = asyncio.run(read_local(cluster, name, PREFIX))
        lost = []
        for a in ledger.acked:
            kv = store.get(a.key)
            shared = a.key.startswith(PREFIX + b"shared/")
            if kv is None:
                lost.append(f"{a.key!r} (revision {a.revision}) is missing")
            elif not shared and (kv.value, kv.mod_revision) != (a.value, a.revision):
                lost.append(
                    f"{a.key!r}: acknowledged {a.value!r} at revision {a.revision}, "
                    f"holds {kv.value!r} at {kv.mod_revision}"
                )
            elif shared and kv.mod_revision < a.revision:
                lost.append(
                    f"{a.key!r}: acknowledged {a.value!r} at revision {a.revision}, "
                    f"holds the older {kv.value!r} at {kv.mod_revision}"
                )
        assert not lost, f"{name} lost acknowledged writes:\n" + "\n".join(lost[:20])
        for key, kv in store.items():
            assert kv.value in written.get(key, set()), f"{name}: {key!r}={kv.value!r}: never put"
            top = newest.get(key)
            if top is not None and kv.mod_revision == top.revision:
                assert kv.value == top.value, f"{name}: {key!r} at {kv.mod_revision}"


# -- identical replicas ----------------------------------------------------------------------


def test_every_master_hashes_the_same_at_the_same_revision(
    cluster: Cluster, leader: Leader
) -> None:
    async def scenario() -> dict[str, tuple[int, int, int]]:
        async with cluster.client() as kv:
            for i in range(20):
                await kv.put(b"/hash/%d" % i, b"%d" % i)
        got = await hashes_at_one_index(cluster)
        return {n: (h.hash, h.revision, h.applied_index) for n, h in got.items()}

    hashes = asyncio.run(scenario())
    assert len(set(hashes.values())) == 1, f"stores differ: {hashes}"


# -- a watch across a failover -----------------------------------------------------------------


def test_watch_sees_every_event_once_in_order_across_a_failover(
    cluster: Cluster,
    leader: Leader,
    summary: Callable[[str, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="controlplane.client.kv")
    prefix = b"/watch/"
    others = [n for n in cluster.names if n != leader.name]
    events: list[store_pb2.Event] = []
    acked: list[tuple[bytes, bytes, int]] = []

    async def watch(kv: KVClient, start: int) -> None:
        async for resp in kv.watch(prefix, prefix=True, start_revision=start):
            events.extend(resp.events)

    async def write(kv: KVClient, first: int, count: int) -> None:
        for n in range(first, first + count):
            key = prefix + (b"shared" if n % 3 == 0 else b"k%04d" % n)
            try:
                resp = await kv.put(key, b"v%d" % n)
            except OutcomeUnknown:
                continue
            acked.append((key, b"v%d" % n, resp.header.revision))

    async def scenario() -> int:
        # The watch stream starts on the leader, which is then killed under it.
        async with (
            cluster.client([leader.name, *others]) as watch_kv,
            cluster.client(others) as kv,
        ):
            start = (await kv.get(prefix, prefix=True)).header.revision + 1
            watcher = asyncio.create_task(watch(watch_kv, start))
            await write(kv, 0, 40)
            await asyncio.to_thread(cluster.cli, "kill", leader.name)
            await write(kv, 40, 40)
            await asyncio.to_thread(cluster.cli, "start", leader.name)
            await write(kv, 80, 20)
            now = await kv.get(prefix, prefix=True)
            last = max(item.mod_revision for item in now.kvs)

            def caught_up() -> bool:
                if watcher.done():
                    watcher.result()  # raise what ended it
                    raise AssertionError("the watch ended")
                return bool(events) and events[-1].kv.mod_revision >= last

            await wait_until(f"the watcher to see revision {last}", caught_up, 30)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            # The history: each event against a range read at its revision.
            for ev in events:
                past = await kv.get(ev.kv.key, revision=ev.kv.mod_revision)
                assert [(i.value, i.mod_revision) for i in past.kvs] == [
                    (ev.kv.value, ev.kv.mod_revision)
                ], f"event {ev.kv.key!r}@{ev.kv.mod_revision} differs from the store's history"
            for item in now.kvs:  # every put of every key since `start` was seen
                mine = [ev for ev in events if ev.kv.key == item.key]
                assert len(mine) == item.version, f"{item.key!r}: {len(mine)} events"
                assert (mine[-1].kv.value, mine[-1].kv.mod_revision) == (
                    item.value,
                    item.mod_revision,
                )
            return start

    start = asyncio.run(scenario())
    revisions = [ev.kv.mod_revision for ev in events]
    assert revisions == sorted(set(revisions)), "events out of order or repeated"
    assert revisions[0] >= start
    assert all(ev.type == store_pb2.Event.PUT for ev in events)
    seen = {(ev.kv.key, ev.kv.value, ev.kv.mod_revision) for ev in events}
    missing = [a for a in acked if a not in seen]
    assert not missing, f"acknowledged puts the watcher never saw: {missing[:10]}"
    resumes = [r.getMessage() for r in caplog.records if "resuming at revision" in r.getMessage()]
    killed = cluster.endpoint(leader.name)
    assert any(killed in m for m in resumes), f"the watch never lost {killed}: {resumes}"
    summary(
        "e2e watch",
        f"{len(events)} events from revision {start} across a leader kill, "
        f"{len(acked)} acknowledged puts all seen once, in order; {resumes[0]}",
    )
