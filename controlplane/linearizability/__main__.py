"""`python -m controlplane.linearizability`: re-check a saved history, or measure the checker.

    python -m controlplane.linearizability check FILE.json [--timeout S] [--max-states N]
    python -m controlplane.linearizability bench [--clients 5] [--ops 300] [--unknown 0.05]

`check` exit codes: 0 linearizable, 1 not linearizable, 3 gave up (a failure too: the check
proved nothing), 2 unreadable file or bad arguments.

`bench` checks seeded random histories of a correct register (`simulate.random_history`),
then the same with one read corrupted in three ways, and prints CPU times per check.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from controlplane.linearizability.checker import DEFAULT_MAX_STATES, DEFAULT_TIMEOUT_S, check
from controlplane.linearizability.history import HistoryError, Operation, load_history
from controlplane.linearizability.simulate import (
    Workload,
    corrupt_lost_write,
    corrupt_never_written,
    corrupt_stale_read,
    random_history,
)

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_GAVE_UP = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m controlplane.linearizability", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check a history saved as JSON")
    c.add_argument("file", type=Path)
    c.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds, in all")
    c.add_argument("--max-states", type=int, default=DEFAULT_MAX_STATES, help="per key")
    c.add_argument("--max-prefix", type=int, default=20, help="prefix operations to show")
    b = sub.add_parser("bench", help="time the checker on seeded random histories")
    b.add_argument("--clients", type=int, default=5)
    b.add_argument("--ops", type=int, default=300, help="operations in all (not per client)")
    b.add_argument("--keys", type=int, default=1)
    b.add_argument("--unknown", type=float, default=0.05, help="rate of unknown outcomes")
    b.add_argument("--seeds", type=int, default=10, help="histories to check")
    b.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    a = p.parse_args(argv)
    if a.command == "check":
        return _check(a.file, a.timeout, a.max_states, a.max_prefix)
    w = Workload(clients=a.clients, operations=a.ops, keys=a.keys, unknown_rate=a.unknown)
    try:
        w.validate()
    except ValueError as e:
        p.error(str(e))
    return _bench(w, a.seeds, a.timeout)


def _check(path: Path, timeout: float, max_states: int, max_prefix: int) -> int:
    try:
        history = load_history(path)
    except (OSError, HistoryError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return EXIT_USAGE
    result = check(history, timeout_s=timeout, max_states=max_states)
    print(result.render(max_prefix=max_prefix))
    return {True: EXIT_OK, False: EXIT_VIOLATION, None: EXIT_GAVE_UP}[result.ok]


Corruption = Callable[[list[Operation]], tuple[int, list[Operation]] | None]


def _bench(w: Workload, seeds: int, timeout: float) -> int:
    print(
        f"{w.clients} clients, {w.operations} operations on {w.keys} key(s), "
        f"{w.unknown_rate:.0%} unknown outcomes, {seeds} seeds (CPU time per check)"
    )
    no_deletes = replace(w, delete_rate=0.0)
    cases: list[tuple[str, Workload, Corruption | None, bool]] = [
        ("linearizable", w, None, True),
        ("read of a value never written", w, corrupt_never_written, False),
        ("stale read", w, corrupt_stale_read, False),
        ("lost write (no deletes)", no_deletes, corrupt_lost_write, False),
    ]
    wrong = 0
    for name, workload, corrupt, expected in cases:
        times: list[float] = []
        states: list[int] = []
        verdicts: list[bool | None] = []
        for seed in range(seeds):
            history = random_history(seed, workload)
            if corrupt is not None:
                found = corrupt(history)
                if found is None:
                    continue
                history = found[1]
            t0 = time.process_time()
            result = check(history, timeout_s=timeout)
            times.append(time.process_time() - t0)
            states.append(sum(k.states for k in result.keys))
            verdicts.append(result.ok)
        if not times:
            print(f"  {name:<32} no history to corrupt that way")
            continue
        wrong += sum(v is not expected for v in verdicts)
        gave_up = sum(v is None for v in verdicts)
        print(
            f"  {name:<32} median {statistics.median(times) * 1000:8.1f} ms  "
            f"max {max(times) * 1000:8.1f} ms  states median {statistics.median(states):>8.0f} "
            f"max {max(states):>8}  gave up {gave_up}/{len(verdicts)}"
        )
    return EXIT_OK if wrong == 0 else EXIT_VIOLATION


if __name__ == "__main__":
    sys.exit(main())
