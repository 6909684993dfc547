"""`python -m controlplane --config FILE --name master-1`: one master process.

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), 2 bad configuration or arguments, 3 refused
to start (empty data dir of an existing cluster, address in use, corrupt data), 1 crashed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m controlplane", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="the cluster's cluster.toml")
    p.add_argument("--name", required=True, help="this master's name, e.g. master-1")
    p.add_argument(
        "--initial-cluster",
        action="store_true",
        help="create this member's data dir for a brand-new cluster (kubelab up does this)",
    )
    a = p.parse_args(argv)
    from controlplane.server.master import run_master  # noqa: PLC0415 (keep --help fast)

    return run_master(a.config, a.name, initial_cluster=a.initial_cluster)


if __name__ == "__main__":
    sys.exit(main())
