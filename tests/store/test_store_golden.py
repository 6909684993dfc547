"""Golden traces of the store (testdata/*.txt): etcd's MVCC semantics as a client sees them.

Each file runs through a fresh `GoldenEnv` (tests/store/golden.py describes the commands).
Run pytest with `--rewrite` to regenerate the expected outputs, then read the diff: every
trace must show etcd's behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from goldenfiles import check_golden

from .golden import GoldenEnv

TESTDATA = Path(__file__).parent / "testdata"
FILES = sorted(TESTDATA.glob("*.txt"))


def test_testdata_present() -> None:
    """The trace directory is not empty (a glob that matches nothing tests nothing)."""
    assert FILES


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_store_trace(path: Path, rewrite: bool) -> None:
    """Replaying the trace produces exactly the recorded output."""
    check_golden(path, GoldenEnv().handle, rewrite=rewrite)
