"""Golden interaction traces of the Raft core (after etcd-io/raft's testdata/*.txt).

Each `testdata/*.txt` file is run through a fresh `InteractionEnv`; run pytest with
`--rewrite` to regenerate the expected outputs, then read the diff: every trace must show
correct Raft behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from goldenfiles import check_golden

from controlplane.raft.rafttest.interaction import InteractionEnv

TESTDATA = Path(__file__).parent / "testdata"
FILES = sorted(TESTDATA.glob("*.txt"))


def test_testdata_present() -> None:
    """The trace directory is not empty (a glob that matches nothing tests nothing)."""
    assert FILES


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_trace(path: Path, rewrite: bool) -> None:
    """Replaying the trace produces exactly the recorded output."""
    check_golden(path, InteractionEnv().handle, rewrite=rewrite)
