"""Leader failover of 3 and of 5 real masters: SIGKILL, SIGSTOP/SIGCONT, status and clients
while a master is paused.

One cluster per size (3 masters on 127.61/16, 5 on 127.62/16, or other free subnets in
60-79), shared by the tests of that size; each test starts from a healed cluster (every
master running, one leader, every log applied) and leaves it to the next one to heal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from .cluster import Cluster, Leader, put_until_acknowledged, running_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PREFERRED_OCTET = {3: 61, 5: 62}


@pytest.fixture(scope="module", params=[3, 5], ids=["3-masters", "5-masters"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    n: int = request.param
    root = tmp_path_factory.mktemp(f"failover{n}")
    with running_cluster(root, preferred_octet=PREFERRED_OCTET[n], masters=n) as c:
        yield c


@pytest.fixture(autouse=True)
def leader(cluster: Cluster, summary: Callable[[str, str], None]) -> Leader:
    """The leader of the healed cluster the test starts from."""
    cluster.log_up_time(summary)
    return cluster.heal()


def test_killed_leader_is_replaced_and_writes_resume(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    others = [n for n in cluster.names if n != leader.name]

    async def scenario() -> tuple[float, int]:
        async with cluster.client(others) as kv:
            await kv.put(b"/failover/kill/before", b"1")  # connected, a leader serving
            await asyncio.to_thread(cluster.cli, "kill", leader.name)
            killed = time.monotonic()  # `kill` returns once the process is dead
            acked = await put_until_acknowledged(kv, b"/failover/kill/after", b"2", timeout=30)
            took = time.monotonic() - killed
            got = await kv.get(b"/failover/kill/after")
            assert [kv_.value for kv_ in got.kvs] == [b"2"]
            return took, acked.attempts

    took, attempts = asyncio.run(scenario())
    new = cluster.wait_leader(among=others, min_term=leader.term + 1)
    assert new.name != leader.name
    summary(
        "e2e failover",
        f"{len(cluster.names)} masters: SIGKILL leader -> first acknowledged write through "
        f"another master: {took:.2f} s ({attempts} attempts; term {leader.term} -> {new.term})",
    )
    assert took < 15, f"writes resumed only {took:.1f} s after the leader was killed"


def test_paused_leader_is_deposed_and_rejoins_without_raising_the_term(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    others = [n for n in cluster.names if n != leader.name]
    cluster.cli("pause", leader.name)
    paused = time.monotonic()
    try:
        new = cluster.wait_leader(among=others, min_term=leader.term + 1)
        deposed = time.monotonic() - paused
    finally:
        cluster.cli("resume", leader.name)
    assert new.name != leader.name and new.term > leader.term

    def rejoined() -> bool | None:
        doc = cluster.member_status(leader.name)
        ok = doc is not None and (doc["role"], doc["term"], doc["leader"]) == (
            "follower",
            new.term,
            new.name,
        )
        return True if ok else None

    wait_for(f"{leader.name} to rejoin as a follower of {new.name}", rejoined, 15)

    # Pre-vote and check-quorum: the member that was away must not start elections that
    # raise the term. Watch for several election timeouts (each drawn in [T, 2T)).
    watch_s = 3 * 2 * cluster.cfg.raft.election_ms / 1000
    seen: dict[str, int] = dict.fromkeys(cluster.names, 0)
    end = time.monotonic() + watch_s
    while time.monotonic() < end:
        for name, doc in cluster.statuses().items():
            if doc is None:
                continue
            seen[name] += 1
            assert (doc["term"], doc["leader"]) == (new.term, new.name), (
                f"{name} reports term {doc['term']} leader {doc['leader']} after "
                f"{leader.name} rejoined; expected term {new.term} leader {new.name}"
            )
        time.sleep(0.2)
    assert all(seen.values()), f"some master never answered /status: {seen}"
    summary(
        "e2e failover",
        f"{len(cluster.names)} masters: SIGSTOP leader -> new leader elected: {deposed:.2f} s; "
        f"after SIGCONT term stayed {new.term} for {watch_s:.1f} s",
    )


def test_status_answers_fast_with_a_paused_master(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    follower = next(n for n in cluster.names if n != leader.name)
    cluster.cli("pause", follower)
    try:
        t0 = time.monotonic()
        doc = cluster.status_json()
        took = time.monotonic() - t0
    finally:
        cluster.cli("resume", follower)
    summary(
        "e2e status",
        f"{len(cluster.names)} masters: `kubelab status --json` with a paused master: "
        f"{took:.2f} s (command included)",
    )
    assert took < 3
    masters = {m["name"]: m for m in doc["masters"]}
    assert (masters[follower]["state"], masters[follower]["alive"]) == ("paused", False)
    for name in cluster.names:
        if name != follower:
            assert (masters[name]["state"], masters[name]["alive"]) == ("running", True)
            assert masters[name]["role"] in ("leader", "follower")
    assert doc["leader"] == leader.name


def test_client_preferring_a_paused_master_fails_over_by_deadline(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    # The leader is paused: its connections stay open, only deadlines reveal it.
    order = [leader.name] + [n for n in cluster.names if n != leader.name]

    async def scenario() -> tuple[tuple[float, int], float]:
        connected = [asyncio.Event(), asyncio.Event()]
        paused = asyncio.Event()

        async def timed_put() -> tuple[float, int]:
            async with cluster.client(order) as kv:
                await kv.put(b"/failover/paused/put", b"0")  # connected to the leader
                connected[0].set()
                await paused.wait()
                t0 = time.monotonic()
                acked = await put_until_acknowledged(kv, b"/failover/paused/put", b"1", 60)
                return time.monotonic() - t0, acked.attempts

        async def timed_get() -> float:
            async with cluster.client(order) as kv:
                await kv.get(b"/failover/paused/put")
                connected[1].set()
                await paused.wait()
                t0 = time.monotonic()
                await kv.get(b"/failover/paused/put")
                return time.monotonic() - t0

        put_task = asyncio.create_task(timed_put())
        get_task = asyncio.create_task(timed_get())
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 30)
        await asyncio.to_thread(cluster.cli, "pause", leader.name)
        paused.set()
        return await put_task, await get_task

    try:
        (put_s, attempts), get_s = asyncio.run(scenario())
    finally:
        cluster.cli("resume", leader.name)
    n = len(cluster.names)
    summary(
        "e2e failover",
        f"{n} masters: client preferring the paused leader: put acknowledged after "
        f"{put_s:.2f} s ({attempts} attempts), linearizable get after {get_s:.2f} s",
    )
    assert put_s < 10, f"the put took {put_s:.1f} s ({attempts} attempts)"
    assert get_s < 10, f"the get took {get_s:.1f} s"
