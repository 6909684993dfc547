"""Partitions from the command line (`kubelab partition`, `heal`): an isolated leader's
minority cannot commit, the majority elects a new leader, and on heal the rejoining member
does not depose it (pre-vote: its term never climbed). Both are visible in `status`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from controlplane.client.kv import ClientError

from .cluster import Cluster, running_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("partition"), preferred_octet=73) as c:
        yield c


def test_isolated_leader_cannot_commit_and_rejoins_without_disruption(
    cluster: Cluster, summary: Callable[[str, str], None]
) -> None:
    """Partitioned minority cannot commit; on heal it rejoins without raising the term."""
    old = cluster.heal()
    t0 = time.monotonic()
    cluster.cli("partition", old.name)
    others = [n for n in cluster.names if n != old.name]
    new = cluster.wait_leader(among=others, min_term=old.term + 1)
    elected = time.monotonic() - t0
    notes = {m["name"]: m for m in cluster.status_json()["masters"]}
    assert notes[old.name]["faults"], "status shows no fault on the isolated master"

    async def writes() -> None:
        # Through the isolated master only: it must not acknowledge anything.
        async with cluster.client([old.name], timeout=1.0, retry_for=2.0) as kv:
            with pytest.raises(ClientError):
                await kv.put(b"partition/minority", b"x")
        async with cluster.client(others) as kv:
            await kv.put(b"partition/majority", b"y")

    asyncio.run(writes())
    isolated = cluster.member_status(old.name)
    assert isolated is not None
    assert isolated["term"] == old.term, "pre-vote: the isolated member's term must not climb"
    cluster.cli("heal")
    wait_for(
        f"{old.name} rejoins as a follower of {new.name}",
        lambda: (
            True if (d := cluster.member_status(old.name)) and d["leader"] == new.name else None
        ),
        timeout=20,
        seen=cluster.brief,
    )
    time.sleep(3 * cluster.cfg.raft.election_ms / 1000)  # three election timeouts of calm
    after = cluster.leader_now()
    assert after is not None and (after.name, after.term) == (new.name, new.term), (
        f"the rejoining member disrupted the leader: {cluster.brief()}"
    )
    summary(
        "e2e partition",
        f"leader {old.name} isolated: {new.name} elected in term {new.term} after "
        f"{elected:.2f} s; minority write refused; after heal leader and term unchanged",
    )
