"""The randomized Raft simulation on the real WAL-backed storage.

Each node's disk is a `DiskStorage` in its own directory: a crash closes it (the process
dies; what was saved stays on disk) and a restart recovers the node from the WAL and
snapshot files. The simulation's safety checks (durability of committed entries included)
must hold exactly as with the in-memory twin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controlplane.raft.rafttest.network import SimDisk
from controlplane.raft.rafttest.sim import SimConfig, Simulation
from controlplane.raftnode.disk import DiskStorage, DiskStorageConfig


class ReopeningDisk(DiskStorage):
    """A `DiskStorage` that a crash closes and a restart opens again from its directory."""

    data_dir: Path
    disk_config: DiskStorageConfig

    def reopen(self) -> ReopeningDisk:
        self.close()
        disk = ReopeningDisk.open(self.data_dir, self.disk_config)
        assert isinstance(disk, ReopeningDisk)
        disk.data_dir, disk.disk_config = self.data_dir, self.disk_config
        disk.reopens = self.reopens + 1
        return disk

    reopens = 0


def _factory(root: Path, opened: list[ReopeningDisk]) -> Callable[[int], SimDisk]:
    # Small numbers so that snapshots, compaction, segment cuts and purges all happen.
    config = DiskStorageConfig(
        snapshot_count=12, catch_up_entries=3, segment_bytes=16 * 1024, fsync=False
    )

    def make(node: int) -> SimDisk:
        d = root / f"node-{node}"
        disk = ReopeningDisk.create(d, config)
        assert isinstance(disk, ReopeningDisk)
        disk.data_dir, disk.disk_config = d, config
        opened.append(disk)
        return disk

    return make


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize(
    ("seed", "nodes", "profile"),
    [(s, 3 + 2 * (s % 2), "mixed") for s in range(1, 9)] + [(s, 3, "figure8") for s in range(1, 5)],
    ids=str,
)
def test_simulation_on_disk_storage(tmp_path: Path, seed: int, nodes: int, profile: str) -> None:
    """Safety and liveness hold with WAL + snapshot files under crash-restarts."""
    opened: list[ReopeningDisk] = []
    sim = Simulation(
        SimConfig(seed=seed, nodes=nodes, ticks=200, profile=profile), _factory(tmp_path, opened)
    )
    cov = sim.run()
    assert cov.crash_restarts > 0
    # Every restart recovered from files, and the files hold snapshots and WAL segments.
    reopens = 0
    for sn in sim.net.nodes.values():
        disk = sn.disk
        assert isinstance(disk, ReopeningDisk)
        reopens += disk.reopens
        assert list((disk.data_dir / "wal").glob("*.wal"))
        disk.close()
    assert reopens == cov.crash_restarts
    assert cov.snapshot_installs == 0 or list(tmp_path.glob("node-*/snap/*.snap"))
    assert list(tmp_path.glob("node-*/snap/*.snap")), "no snapshot was ever written"
