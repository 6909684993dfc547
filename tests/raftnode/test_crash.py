"""A member killed with SIGKILL restarts with every write it acknowledged (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controlplane.raft.storage import NO_LIMIT
from controlplane.raft.types import HardState
from controlplane.raftnode.disk import DiskStorage, DiskStorageConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG = DiskStorageConfig(snapshot_count=50, catch_up_entries=10, segment_bytes=4096)

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from controlplane.raft.types import ConfState, Entry, HardState
    from controlplane.raftnode.disk import DiskStorage, DiskStorageConfig

    data_dir = Path(sys.argv[1])
    config = DiskStorageConfig(snapshot_count=50, catch_up_entries=10, segment_bytes=4096)
    if DiskStorage.exists(data_dir):
        s = DiskStorage.open(data_dir, config)
    else:
        s = DiskStorage.create(data_dir, config)
    term = s.hard_state.term + 1
    while True:
        i = s.last_index() + 1
        batch = [Entry(term=term, index=j, data=b"%d" % j) for j in range(i, i + 3)]
        s.save(HardState(term=term, vote=1, commit=i + 2), batch)
        s.maybe_snapshot(i + 2, ConfState(voters=(1,)), lambda: b"%d" % (i + 2))
        print(i + 2, term, flush=True)
    """
)


def _run_until_killed(data_dir: Path, acks: int) -> tuple[int, int]:
    """Start the writer, SIGKILL it after `acks` acknowledged saves; return the last one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    last = (0, 0)
    try:
        for _ in range(acks):
            line = proc.stdout.readline()
            assert line, f"writer exited early with {proc.wait()}"
            index, term = map(int, line.split())
            last = (index, term)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return last


@pytest.mark.parametrize("acks", [1, 37, 120])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, acks: int) -> None:
    """After SIGKILL, open recovers at least every acknowledged entry and hard state, the log is
    contiguous, and the member keeps going; three kill-restart rounds in a row."""
    data_dir = tmp_path / "member"
    for _ in range(3):
        acked_index, acked_term = _run_until_killed(data_dir, acks)
        with DiskStorage.open(data_dir, CONFIG) as s:
            hs = s.hard_state
            assert s.last_index() >= acked_index
            assert hs.term >= acked_term and hs.commit >= acked_index
            assert hs == HardState(term=hs.term, vote=1, commit=hs.commit)
            first = s.first_index()
            got = s.entries(first, s.last_index() + 1, NO_LIMIT) if s.last_index() >= first else []
            assert [e.index for e in got] == list(range(first, s.last_index() + 1))
            assert all(e.data == b"%d" % e.index for e in got)
