"""Soak the Raft core: randomized simulation schedules for as long as asked (outside CI).

    scripts/soak                 # 10 minutes, mixed and Figure 8 profiles, 3 and 5 nodes
    scripts/soak 60 --seed 7     # an hour, seeds from 7
    scripts/soak 5 --bug forget-vote   # watch the checks catch a planted bug
    scripts/soak 30 --chaos            # chaos runs against real masters (127.98.0.0/16)

Prints progress every few seconds and the coverage at the end; the first violation stops
the run and prints the command that replays it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

from controlplane.raft import PlantedBug
from controlplane.raft.rafttest.sim import Coverage, SafetyViolation, SimConfig, Simulation


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    p.add_argument("minutes", nargs="?", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--bug", action="append", default=[], choices=[b.value for b in PlantedBug])
    p.add_argument("--json", type=Path, default=None, help="write the coverage as JSON")
    p.add_argument(
        "--chaos",
        action="store_true",
        help="instead of the simulation: chaos runs with a linearizability verdict against a "
        "real cluster of --masters processes on 127.98.0.0/16",
    )
    p.add_argument("--masters", type=int, default=3, choices=(3, 5))
    a = p.parse_args(argv)
    if a.chaos:
        return soak_chaos(a.minutes, a.masters, a.seed or 1)
    logging.disable(logging.WARNING)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    bugs = frozenset(PlantedBug(b) for b in a.bug)
    deadline = time.monotonic() + a.minutes * 60
    total = Coverage(schedules=0)
    last_report = time.monotonic()
    print(f"soak: {a.minutes:g} min from seed {seed}", flush=True)
    k = 0
    while time.monotonic() < deadline:
        cfg = SimConfig(
            seed=seed + k,
            nodes=(3, 5)[k % 2],
            ticks=a.ticks,
            bugs=bugs,
            profile="figure8" if k % 4 == 3 else "mixed",
        )
        k += 1
        try:
            total.add(Simulation(cfg).run())
        except SafetyViolation as e:
            print(f"\nVIOLATION after {total.schedules} schedules: {e}", file=sys.stderr)
            return 1
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            left = max(0.0, deadline - last_report) / 60
            print(
                f"  {total.schedules} schedules, {total.leader_changes} leader changes, "
                f"{total.crash_restarts} crash-restarts, {left:.1f} min left",
                flush=True,
            )
    print(f"ok: {total}")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"first_seed": seed, **total.as_dict()}, indent=2))
    return 0


def soak_chaos(minutes: float, masters: int, seed: int) -> int:
    """Chaos runs of 60 s each until time is up; stops at the first failed verdict and keeps
    the cluster's data dir and the history for inspection."""
    import asyncio  # noqa: PLC0415 (only this mode needs them)
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from controlplane.chaos.run import ChaosPlan, run_chaos  # noqa: PLC0415

    root = Path(tempfile.mkdtemp(prefix="kubelab-soak-"))
    cfg = root / "cluster.toml"
    cfg.write_text(
        f'[cluster]\nname = "soak"\nsubnet = "127.98.0.0/16"\ndata_dir = "{root / "data"}"\n'
        + "".join(f'[[masters]]\nname = "master-{i}"\n' for i in range(1, masters + 1))
    )
    kubelab = [sys.executable, "-m", "controlplane.cli", "-c", str(cfg)]
    subprocess.run([*kubelab, "up"], check=True)
    deadline = time.monotonic() + minutes * 60
    rounds = 0
    try:
        while time.monotonic() < deadline:
            rounds += 1
            plan = ChaosPlan(cfg, duration_s=60.0, seed=seed + rounds)
            report = asyncio.run(run_chaos(plan))
            print(f"round {rounds} (seed {plan.seed}):\n{report.render()}\n", flush=True)
            if not report.passed:
                print(f"FAILED; data and logs kept in {root}", file=sys.stderr)
                return 1
    finally:
        subprocess.run([*kubelab, "down"], check=False)
    subprocess.run([*kubelab, "down", "--purge"], check=False)
    print(f"ok: {rounds} chaos rounds passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
