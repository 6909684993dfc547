"""Chaos with a verdict: 5 clients on 8 keys against a real 3- and 5-master cluster while
masters are killed, paused, partitioned (minority, the leader's side, one-way,
majority/minority) and slowed, checked for linearizability and lost acknowledged writes.

And the checker checked: with the deliberately broken read path (reads served from local
state without ReadIndex) and a follower cut off, the same run must be found not
linearizable. `scripts/soak --chaos MINUTES` repeats these runs outside CI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from controlplane.chaos.run import ChaosPlan, run_chaos

from .cluster import Cluster, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PREFERRED_OCTET = {3: 71, 5: 72}


@pytest.fixture(scope="module", params=[3, 5], ids=["3-masters", "5-masters"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    n: int = request.param
    root = tmp_path_factory.mktemp(f"chaos{n}")
    with running_cluster(root, preferred_octet=PREFERRED_OCTET[n], masters=n) as c:
        yield c


def test_chaos_run_is_linearizable_and_loses_nothing(
    cluster: Cluster, summary: Callable[[str, str], None]
) -> None:
    """Under kills, pauses, partitions and delays every key stays linearizable (a register
    workload, as Jepsen's) and no acknowledged write is lost."""
    cluster.heal()
    plan = ChaosPlan(cluster.config_file, clients=5, keys=8, duration_s=30.0, seed=7)
    report = asyncio.run(run_chaos(plan))
    n = len(cluster.names)
    summary(
        "chaos", f"{n} masters, {report.elapsed_s:.0f} s: " + report.render().replace("\n", "; ")
    )
    assert len(report.faults) >= 4, report.render()
    assert report.success_ratio >= 0.5, (
        f"too few operations succeeded to prove anything:\n{report.render()}"
    )
    per_key = report.ok / plan.keys
    assert per_key >= 200, f"only {per_key:.0f} successful operations per key:\n{report.render()}"
    assert report.lost_writes == 0, report.render()
    assert report.result is not None and report.result.passed, report.render()


def test_checker_catches_a_broken_read_path(
    cluster: Cluster, summary: Callable[[str, str], None]
) -> None:
    """Reads that skip ReadIndex on a partitioned follower are caught as not linearizable."""
    cluster.heal()
    plan = ChaosPlan(
        cluster.config_file,
        clients=5,
        keys=8,
        duration_s=12.0,
        faults=("partition-follower",),
        fault_interval_s=(3.0, 3.0),  # long cuts: the follower falls well behind
        unsafe_local_reads=True,
        pin_clients=True,  # a client stays on the cut-off follower and reads from it
        seed=3,
    )
    report = asyncio.run(run_chaos(plan))
    summary("chaos", f"broken read path ({len(cluster.names)} masters): verdict {report.verdict}")
    assert report.result is not None
    assert report.result.ok is False, f"stale reads went unnoticed:\n{report.render()}"
