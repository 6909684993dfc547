"""The `kubelab` command.

Cluster commands (`up`, `status`, `kill`, ...) arrive with the masters issue; for now the
command reports its version and points at what exists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("kubelab")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="kubelab",
        description=(
            "kubelab: a highly available Kubernetes-style control plane on one machine, "
            "on its own Raft. Available now: the Raft core and its simulation "
            "(python -m controlplane.raft.rafttest.sim --help)."
        ),
    )
    p.add_argument("--version", action="version", version=f"kubelab {_version()}")
    p.parse_args(argv)
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
