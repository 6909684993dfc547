"""`kubelab bench quorum`: the replicated store's write latency, throughput and failover.

The benchmark starts its own throwaway clusters (subnets 127.90-95.0.0/16, data in a
temporary directory unless `--workdir`), never the user's, and stops everything it started,
also on Ctrl-C or SIGTERM. `-c`/`--cluster` are accepted (as by every command) and ignored.
See `controlplane.bench.quorum` for the phases and what each figure means.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from controlplane.config import MAX_MASTERS, PROFILES

from .common import EXIT_FAILED, EXIT_USAGE, CliError, say

__all__ = ["add_parsers", "cmd_quorum"]

COMPARABLE = ("etcd",)


def _masters(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected counts like 3,5, got {text!r}") from None
        if not 1 <= n <= MAX_MASTERS:
            raise argparse.ArgumentTypeError(f"a member count is 1 to {MAX_MASTERS}, got {n}")
        out.append(n)
    return tuple(dict.fromkeys(out))


def _choices(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        bad = [i for i in items if i not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(allowed)}; got {text!r}"
            )
        return items

    return parse


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {n}")
    return n


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so the clean-up that Ctrl-C runs runs too."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_quorum(args: argparse.Namespace) -> int:
    # Imported here: grpc and the benchmark must not slow down every other command.
    from controlplane.bench.quorum import Params, run_quorum  # noqa: PLC0415
    from controlplane.bench.report import render  # noqa: PLC0415
    from controlplane.bench.svg import cdf_svg  # noqa: PLC0415
    from controlplane.bench.systems import BenchError  # noqa: PLC0415

    overrides: dict[str, object] = {
        "masters": args.masters,
        "timers": args.timers,
        "compare": args.compare or (),
        "workdir": str(args.workdir.resolve()) if args.workdir else None,
    }
    for key in ("rounds", "clients", "window"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    params = Params.quick_run(**overrides) if args.quick else Params(**overrides)  # type: ignore[arg-type]
    if args.json is not None and args.json.is_dir():
        raise CliError(f"--json {args.json}: is a directory; give a file name", EXIT_USAGE)
    if not args.quick and params.rounds < 5:
        say(f"note: {params.rounds} failover rounds; 5 or more give a meaningful median")
    try:
        with _sigterm_interrupts():
            outcome = run_quorum(params, say)
    except KeyboardInterrupt:
        say("\ninterrupted: every cluster the benchmark started has been stopped")
        raise
    except BenchError as e:
        raise CliError(str(e)) from None
    doc = outcome.doc
    print()
    print(render(doc))
    if args.json is not None:
        path = args.json
        path.parent.mkdir(parents=True, exist_ok=True)
        svg = path.with_suffix(".svg")
        svg.write_text(cdf_svg(outcome.latencies))
        doc["plot"] = str(svg)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {path} and {svg}")
    if outcome.failed:
        print("some systems could not be measured: see the messages above", file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks on throwaway clusters (quorum)",
        description="Benchmarks. Each starts its own throwaway clusters and stops them.",
    )
    bench = p.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    q = bench.add_parser(
        "quorum",
        help="write latency, throughput and failover of the replicated store",
        description=(
            "Start a throwaway kubelab cluster (and with --compare etcd an etcd cluster of as "
            "many members, same heartbeat and election timeout) on 127.90-95.0.0/16, then "
            "measure: sequential 1 KiB writes to the leader and through a follower (p50, p90, "
            "p99, max), throughput of concurrent clients and of pipelined writes, failover "
            "after leader SIGKILLs, and elections that no fault caused; with a per-step "
            "profile from the members' /metrics. About 60 s per system (--quick: 15 s)."
        ),
    )
    q.add_argument(
        "--masters",
        type=_masters,
        default=(3,),
        metavar="N[,N]",
        help="member counts to run, e.g. 3,5 (default 3)",
    )
    q.add_argument(
        "--timers",
        type=_choices(tuple(PROFILES)),
        default=("demo",),
        metavar="P[,P]",
        help=f"timer profiles to run: {', '.join(PROFILES)} (default demo)",
    )
    q.add_argument(
        "--compare",
        type=_choices(COMPARABLE),
        metavar="SYSTEM",
        help="also run etcd (from PATH; never installed by the benchmark) and print ratios",
    )
    q.add_argument("--json", type=Path, metavar="PATH", help="write every figure (and an SVG)")
    q.add_argument("--quick", action="store_true", help="short phases, 2 failovers (tests)")
    q.add_argument(
        "--rounds", type=_positive, metavar="N", help="leader kills (default 10; --quick: 2)"
    )
    q.add_argument("--clients", type=_positive, metavar="N", help="concurrent clients (16)")
    q.add_argument("--window", type=_positive, metavar="N", help="pipelined writes in flight (64)")
    q.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the clusters' data and logs in DIR (default: a temporary dir, removed)",
    )
    q.set_defaults(func=cmd_quorum)
