"""Running a data-driven golden file (see controlplane/raft/rafttest/datadriven.py) in a test:
compare with the recorded output, or rewrite it in place with `pytest --rewrite`."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.raft.rafttest import datadriven


def check_golden(path: Path, handle: datadriven.Handler, *, rewrite: bool) -> None:
    """Replay `path` through `handle`; fail on the first block whose output differs."""
    text = path.read_text()
    new_text, mismatch = datadriven.run(text, handle, name=path.name, rewrite=rewrite)
    if rewrite:
        if new_text != text:
            path.write_text(new_text)
        return
    if mismatch is not None:
        pytest.fail(str(mismatch), pytrace=False)
