"""`kubelab bench quorum|scale|reschedule`: benchmarks on throwaway clusters.

- `quorum`: the replicated store's write latency, throughput and failover (subnets
  127.90-95.0.0/16; `controlplane.bench.quorum`);
- `scale`: thousands of pods on many fake nodes: time until Running, scheduler throughput,
  mutating-call latency, peak RSS, elections (127.80-89; `controlplane.bench.scale`);
- `reschedule`: a fake node crashes; each stage until its pods run elsewhere, against the
  timers (127.80-89; `controlplane.bench.reschedule`).

Each benchmark starts its own clusters (data in a temporary directory unless `--workdir`),
never the user's, and stops everything it started, also on Ctrl-C or SIGTERM. `-c`/`--cluster`
are accepted (as by every command) and ignored.
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

__all__ = ["add_parsers", "cmd_quorum", "cmd_reschedule", "cmd_scale"]

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


def _one_count(text: str) -> int:
    n = _positive(text)
    if n > MAX_MASTERS:
        raise argparse.ArgumentTypeError(f"a member count is 1 to {MAX_MASTERS}, got {n}")
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


def _json_path(args: argparse.Namespace) -> Path | None:
    path: Path | None = args.json
    if path is not None and path.is_dir():
        raise CliError(f"--json {path}: is a directory; give a file name", EXIT_USAGE)
    return path


def cmd_scale(args: argparse.Namespace) -> int:
    from controlplane.bench.scale import (  # noqa: PLC0415
        Params,
        render_scale,
        run_scale,
        write_outputs,
    )
    from controlplane.bench.systems import BenchError  # noqa: PLC0415

    overrides: dict[str, object] = {
        "masters": args.masters,
        "timers": args.timers,
        "workdir": str(args.workdir.resolve()) if args.workdir else None,
    }
    for key in ("workers", "pods", "per_deployment", "timeout"):
        if getattr(args, key) is not None:
            overrides["timeout_s" if key == "timeout" else key] = getattr(args, key)
    params = Params.quick_run(**overrides) if args.quick else Params(**overrides)  # type: ignore[arg-type]
    path = _json_path(args)
    try:
        with _sigterm_interrupts():
            outcome = run_scale(params, say)
    except KeyboardInterrupt:
        say("\ninterrupted: the benchmark's cluster has been stopped and removed")
        raise
    except BenchError as e:
        raise CliError(str(e)) from None
    doc = outcome.doc
    print()
    print(render_scale(doc))
    if path is not None:
        title = (
            f"pods over time: {params.pods} pods, {params.workers} fake nodes, "
            f"{params.masters} masters, {params.timers} timers"
        )
        svg = write_outputs(doc, outcome.series, path, title)
        print(f"\nwrote {path} and {svg}")
    if outcome.failed:
        print("not every pod reached Running before the deadline", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_reschedule(args: argparse.Namespace) -> int:
    from controlplane.bench.reschedule import (  # noqa: PLC0415
        PROFILE_ORDER,
        Params,
        render_reschedule,
        run_reschedule,
    )
    from controlplane.bench.systems import BenchError  # noqa: PLC0415

    profiles = PROFILE_ORDER if args.timers == "both" else (args.timers,)
    overrides: dict[str, object] = {
        "timers": profiles,
        "workdir": str(args.workdir.resolve()) if args.workdir else None,
    }
    if args.replicas is not None:
        overrides["replicas"] = args.replicas
    params = Params.quick_run(**overrides) if args.quick else Params(**overrides)  # type: ignore[arg-type]
    path = _json_path(args)
    if "kubernetes" in profiles:
        say("note: the kubernetes profile waits 50 s + 300 s for the eviction: about 7 minutes")
    try:
        with _sigterm_interrupts():
            outcome = run_reschedule(params, say)
    except KeyboardInterrupt:
        say("\ninterrupted: every cluster the benchmark started has been stopped and removed")
        raise
    except BenchError as e:
        raise CliError(str(e)) from None
    print()
    print(render_reschedule(outcome.doc))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(outcome.doc, indent=2) + "\n")
        print(f"\nwrote {path}")
    if outcome.failed:
        print("a run did not see every stage: see the messages above", file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks on throwaway clusters (quorum, scale, reschedule)",
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

    s = bench.add_parser(
        "scale",
        help="many pods on many fake nodes: time to Running, scheduler throughput, RSS",
        description=(
            "Start a throwaway cluster with fake workers on 127.80-89.0.0/16, create "
            "Deployments of fake pods through the API and measure: time until every pod is "
            "Running, scheduler throughput (average and peak 1 s), p50/p99 of mutating API "
            "calls (the benchmark's creates, a probe's ConfigMap updates every 50 ms, the "
            "masters' commit histogram), peak RSS and CPU per master, elections without a "
            "fault; compared with the targets (>= 100 pods/s, p99 <= 1 s, <= 200 MB per "
            "master, 0 elections). The cluster is removed afterwards."
        ),
    )
    s.add_argument(
        "--runtime", choices=("fake",), default="fake", help="worker runtime (only fake)"
    )
    s.add_argument("--workers", type=_positive, metavar="N", help="fake workers (100; --quick: 5)")
    s.add_argument("--pods", type=_positive, metavar="N", help="pods in all (3000; --quick: 100)")
    s.add_argument(
        "--per-deployment",
        type=_positive,
        metavar="N",
        help="replicas per Deployment (100; --quick: 50)",
    )
    s.add_argument("--masters", type=_one_count, default=3, metavar="N", help="masters (3)")
    s.add_argument("--timers", choices=tuple(PROFILES), default="demo", help="timer profile")
    s.add_argument(
        "--timeout",
        type=_positive,
        metavar="S",
        help="seconds to wait for every pod Running (600; --quick: 120)",
    )
    s.add_argument("--json", type=Path, metavar="PATH", help="write every figure (and an SVG)")
    s.add_argument("--quick", action="store_true", help="5 workers, 100 pods (tests)")
    s.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep the cluster's logs there (default: a temporary dir)",
    )
    s.set_defaults(func=cmd_scale)

    r = bench.add_parser(
        "reschedule",
        help="a fake node crashes: each stage until its pods run elsewhere",
        description=(
            "Start a throwaway cluster with 3 fake workers on 127.80-89.0.0/16, spread a "
            "Deployment over them, `kubelab kill worker-1`, and timestamp each stage: last "
            "heartbeat, NotReady, taint, eviction, replacements scheduled and Running, "
            "against the timers. The kubernetes profile takes about 7 minutes (50 s grace + "
            "300 s toleration)."
        ),
    )
    r.add_argument(
        "--runtime", choices=("fake",), default="fake", help="worker runtime (only fake)"
    )
    r.add_argument(
        "--timers",
        choices=(*PROFILES, "both"),
        default="demo",
        help="timer profile, or both (demo, then kubernetes)",
    )
    r.add_argument(
        "--replicas", type=_positive, metavar="N", help="pods of the Deployment (6; --quick: 3)"
    )
    r.add_argument("--json", type=Path, metavar="PATH", help="write every figure")
    r.add_argument("--quick", action="store_true", help="3 pods (tests)")
    r.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep the clusters' logs there (default: a temporary dir)",
    )
    r.set_defaults(func=cmd_reschedule)
