"""What every `kubelab` subcommand shares: errors, finding the cluster, small output helpers.

Exit codes: 0 done, 1 the operation failed (a process would not start, no leader before the
deadline, the member is not running...), 2 bad usage or configuration. Every error message
says what to do next; no traceback reaches the user for an error of theirs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.config import ClusterConfig, find_cluster
from controlplane.procs import ProcessTable, ProcRecord, ProcState

Handler = Callable[[argparse.Namespace], int]
"""A subcommand: `set_defaults(func=handler)`; returns the exit code."""

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report to the user (message on stderr) with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def cluster_from_args(args: argparse.Namespace) -> ClusterConfig:
    """The cluster the command acts on: `-c FILE`, `--cluster NAME`, KUBELAB_CLUSTER, the
    only running cluster, else the default (`controlplane.config.find_cluster`)."""
    config: Path | None = getattr(args, "config", None)
    cluster: str | None = getattr(args, "cluster", None)
    return find_cluster(config, cluster)


def say(*parts: object, end: str = "\n") -> None:
    """Print progress to stdout, flushed (progress lines end without a newline)."""
    print(*parts, end=end, flush=True)


def tail(path: Path | str, lines: int = 15) -> list[str]:
    """The last `lines` lines of a log file (empty if there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


def print_tail(path: Path | str, lines: int = 15) -> None:
    text = tail(path, lines)
    if text:
        print(f"  last lines of {path}:", file=sys.stderr)
        for line in text:
            print(f"    {line}", file=sys.stderr)


def settle(table: ProcessTable, rec: ProcRecord, seconds: float = 0.25) -> ProcState:
    """Watch a just-started process for `seconds`; its state then (DEAD if it exited)."""
    deadline = time.monotonic() + seconds
    state = table.probe(rec)
    while state is not ProcState.DEAD and time.monotonic() < deadline:
        time.sleep(0.02)
        state = table.probe(rec)
    return state


def exit_note(rec: ProcRecord) -> str:
    code = rec.exit_code
    if code is None:
        return "it exited"
    if code < 0:
        return f"it was killed by signal {-code}"
    return f"it exited with code {code}"
