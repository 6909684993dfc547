"""Masters that come back: a killed follower catches up, one that lags beyond the leader's
compacted log catches up by snapshot, the whole cluster killed and started keeps its data,
and a master whose data dir was emptied refuses to start.

3 real masters (127.64/16, or another free subnet in 60-79) with `snapshot_count = 200`,
so that 500 writes make the leader snapshot and compact its log.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .cluster import (
    RESTORED_RE,
    Cluster,
    Leader,
    hashes_at_one_index,
    read_local,
    running_cluster,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SNAPSHOT_COUNT = 200
MASTER = [sys.executable, "-m", "controlplane"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("recovery")
    with running_cluster(
        root, preferred_octet=64, masters=3, raft={"snapshot_count": SNAPSHOT_COUNT}
    ) as c:
        yield c


@pytest.fixture(autouse=True)
def leader(cluster: Cluster, summary: Callable[[str, str], None]) -> Leader:
    cluster.log_up_time(summary)
    return cluster.heal()


async def put_many(cluster: Cluster, names: list[str], prefix: bytes, count: int) -> None:
    """`count` puts under `prefix` (20 at a time), every one acknowledged."""
    async with cluster.client(names) as kv:
        for first in range(0, count, 20):
            await asyncio.gather(
                *(
                    kv.put(prefix + b"%05d" % i, b"v%d" % i)
                    for i in range(first, min(count, first + 20))
                )
            )


def assert_everywhere(cluster: Cluster, prefix: bytes, count: int) -> None:
    """Every master holds exactly the `count` keys `put_many` wrote, and the stores of all
    hash the same at the same applied index."""
    cluster.wait_converged()
    expected = {prefix + b"%05d" % i: b"v%d" % i for i in range(count)}
    for name in cluster.names:
        store = asyncio.run(read_local(cluster, name, prefix))
        assert {k: kv.value for k, kv in store.items()} == expected, f"{name} differs"
    hashes = asyncio.run(hashes_at_one_index(cluster))
    assert len({(h.hash, h.revision) for h in hashes.values()}) == 1, f"stores differ: {hashes}"


def follower_of(cluster: Cluster, leader: Leader) -> str:
    return next(n for n in reversed(cluster.names) if n != leader.name)


def test_killed_master_restarts_and_catches_up(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    follower = follower_of(cluster, leader)
    others = [n for n in cluster.names if n != follower]
    cluster.cli("kill", follower)
    asyncio.run(put_many(cluster, others, b"/restart/", 50))
    t0 = time.monotonic()
    cluster.cli("start", follower)
    cluster.wait_converged()
    summary(
        "e2e recovery",
        f"killed follower: `kubelab start` + catching up 50 writes: {time.monotonic() - t0:.2f} s",
    )
    assert_everywhere(cluster, b"/restart/", 50)


def test_master_lagging_beyond_compaction_catches_up_by_snapshot(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    follower = follower_of(cluster, leader)
    others = [n for n in cluster.names if n != follower]
    before = cluster.member_status(follower)
    assert before is not None
    cluster.cli("kill", follower)
    asyncio.run(put_many(cluster, others, b"/lagging/", 2 * SNAPSHOT_COUNT + 100))
    leader_doc = cluster.member_status(leader.name)
    assert leader_doc is not None
    assert leader_doc["snapshot_index"] > before["applied_index"] + SNAPSHOT_COUNT, leader_doc

    t0 = time.monotonic()
    cluster.cli("start", follower)

    def installed() -> int | None:
        doc = cluster.member_status(follower)
        if doc is None or doc["snapshot_index"] <= before["applied_index"]:
            return None
        return int(doc["snapshot_index"])

    snapshot_index = wait_for(f"{follower} to install a snapshot", installed, 30)
    cluster.wait_converged()
    took = time.monotonic() - t0
    # Its log says so: a snapshot newer than anything it had was restored after the start.
    restored = [
        int(m.group(2)) for m in RESTORED_RE.finditer(cluster.log_after_last_start(follower))
    ]
    assert any(i > before["applied_index"] for i in restored), (
        f"no 'restored store from snapshot' past applied index {before['applied_index']} "
        f"in {follower}'s log since its start: {restored}"
    )
    summary(
        "e2e recovery",
        f"follower {2 * SNAPSHOT_COUNT + 100} entries behind (snapshot_count "
        f"{SNAPSHOT_COUNT}): `kubelab start` + catching up by snapshot (index "
        f"{snapshot_index}): {took:.2f} s",
    )
    assert_everywhere(cluster, b"/lagging/", 2 * SNAPSHOT_COUNT + 100)


def test_all_masters_killed_and_started_keep_their_data(
    cluster: Cluster, leader: Leader, summary: Callable[[str, str], None]
) -> None:
    asyncio.run(put_many(cluster, cluster.names, b"/allkilled/", 60))
    for name in cluster.names:
        cluster.cli("kill", name)
    doc = cluster.status_json()
    assert [m["state"] for m in doc["masters"]] == ["dead"] * len(cluster.names)
    t0 = time.monotonic()
    for name in cluster.names:
        cluster.cli("start", name)
    new = cluster.wait_leader()
    took = time.monotonic() - t0
    assert new.term > leader.term
    summary("e2e recovery", f"all masters killed, started: a leader after {took:.2f} s")
    assert_everywhere(cluster, b"/allkilled/", 60)

    async def linearizable() -> dict[bytes, bytes]:
        async with cluster.client() as kv:
            resp = await kv.get(b"/allkilled/", prefix=True)
        return {item.key: item.value for item in resp.kvs}

    assert len(asyncio.run(linearizable())) == 60


def test_master_with_an_emptied_data_dir_refuses_to_start(
    cluster: Cluster, leader: Leader, tmp_path: Path
) -> None:
    follower = follower_of(cluster, leader)
    spec = cluster.spec(follower)
    cluster.cli("kill", follower)
    aside = tmp_path / "aside"
    aside.mkdir()
    for sub in ("wal", "snap"):
        shutil.move(spec.data_dir / sub, aside / sub)
    try:
        res = cluster.cli("start", follower, check=False)
        assert res.returncode != 0
        assert "holds no Raft log" in res.stderr and "must not vote" in res.stderr, res.stderr
        doc = cluster.status_json()
        assert {m["name"]: m["state"] for m in doc["masters"]}[follower] == "dead"

        # The master process itself refuses too (the CLI checks first, so run it by hand).
        proc = subprocess.run(
            [*MASTER, "--config", str(cluster.cfg.stored_config), "--name", follower],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 3, (proc.returncode, proc.stderr)
        assert "refused to start" in proc.stderr and "holds no Raft log" in proc.stderr
        assert not (spec.data_dir / "wal").exists(), "the refused master created a log"
    finally:
        for sub in ("wal", "snap"):
            if (aside / sub).exists():
                shutil.rmtree(spec.data_dir / sub, ignore_errors=True)
                shutil.move(aside / sub, spec.data_dir / sub)
    cluster.cli("start", follower)
    cluster.wait_converged()
