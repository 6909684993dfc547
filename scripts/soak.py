"""Soak the Raft core: randomized simulation schedules for as long as asked (outside CI).

    scripts/soak                 # 10 minutes, mixed and Figure 8 profiles, 3 and 5 nodes
    scripts/soak 60 --seed 7     # an hour, seeds from 7
    scripts/soak 5 --bug forget-vote   # watch the checks catch a planted bug

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
    a = p.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
