"""Throughput budget of the Raft core alone: 3 nodes, in-memory network, no I/O.

    python scripts/bench_raft.py                     # ~28 s, writes bench-results/raft-core.json
    python scripts/bench_raft.py --quick             # ~7 s smoke run
    python scripts/bench_raft.py --seconds 5 --json out.json

The cluster is `controlplane.raft.rafttest.network.Network`: three `RawNode`s whose disk is a
`MemoryDisk` (a `MemoryStorage`: no encoding, no fsync), messages handed over in memory, each
Ready handled in the order the core requires (persist, send, apply, advance). Whatever the
layers above add (WAL, gRPC, the store) comes on top of these figures: they are the ceiling.

Workloads, each on a fresh cluster with node 1 elected, for every payload size:

- ``sequential``: one proposal per Ready cycle: propose, then stabilize until it is applied on
  all three nodes. Latency-bound; the cost of one full round trip through the core.
- ``pipelined``: single-payload ``propose`` calls, keeping up to ``window`` entries proposed
  but not yet applied everywhere; one Ready round (every node handles a Ready, then every due
  message is delivered) between top-ups. Flow control is on (``max_inflight_msgs``).
- ``batched-B``: one ``propose(*B payloads)`` per Ready round, same window: what a driver
  that batches the client requests queued since its last loop iteration achieves.

An entry counts once it is applied on all three nodes. A workload is one continuous stream,
measured in consecutive slices (the window stays in flight from one slice to the next); at the
end the cluster is drained and every proposal checked as applied everywhere.

Each workload, after a warm-up, is measured three ways:

1. clean slices (``--seconds`` in all) give entries/s (wall clock) and CPU µs per entry
   (``time.process_time``: the three nodes and the harness, which share one process);
2. phase slices wrap the core's entry points and the harness's steps with timers
   (``perf_counter_ns``) and split the time into core propose/step/tick/ready/advance and
   harness persist/apply/send/delivery (the timers' own cost is calibrated and removed);
   each step's share of that time, times the clean CPU µs per entry, is its budget. Clean
   and phase slices alternate (`SLICES` of each), so both sample the same stretch of the
   log: costs that grow with its length would otherwise skew one of them;
3. a cProfile pass records the top functions by cumulative and by self time. Profiling
   inflates call-heavy code, so its µs are for ranking, not budgeting.

Ticks follow the wall clock (``tick_ms``), as in a real driver. The harness snapshots and
compacts like ``controlplane.raftnode`` (by default every 10,000 entries, keeping 5,000), and
every cluster is first filled with that many entries, so each pass runs on a log of 5,000 to
15,000 entries: costs that grow with the log length are measured in that steady state,
whatever the length of the run (``--snapshot-count 0`` lets the log grow instead).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import CodeType
from typing import Any, Literal, ParamSpec, TypeVar

from controlplane.raft import Config, ProposalDropped
from controlplane.raft.rafttest.network import Network, SnapshotPolicy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = Path("bench-results") / "raft-core.json"
IDS = (1, 2, 3)
LEADER = 1
SLICES = 4  # the clean and phase passes alternate in this many slices

Mode = Literal["sequential", "pipelined", "batched"]

P = ParamSpec("P")
R = TypeVar("R")


class BenchError(Exception):
    """The cluster misbehaved (no leader, lost proposals): the figures would be meaningless."""


# -- parameters -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    """Everything a run depends on; written to the JSON as is."""

    seconds: float
    quick: bool = False
    payload_sizes: tuple[int, ...] = (1024, 100)
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    window: int = 1024
    tick_ms: float = 100.0
    snapshot_count: int = 10_000
    catch_up_entries: int = 5_000
    max_inflight_msgs: int = 256
    max_size_per_msg: int = 1 << 20
    election_tick: int = 10
    heartbeat_tick: int = 1
    profile_top: int = 12
    seed: int = 1

    @property
    def warmup_seconds(self) -> float:
        return self.seconds / 10

    @property
    def phase_seconds(self) -> float:
        return self.seconds / 8

    @property
    def profile_seconds(self) -> float:
        return self.seconds / 10

    def validate(self) -> None:
        """Raise `ValueError` naming the first invalid parameter."""
        if self.seconds <= 0:
            raise ValueError(f"seconds: must be positive, got {self.seconds}")
        if self.window <= 0:
            raise ValueError(f"window: must be positive, got {self.window}")
        if self.tick_ms <= 0:
            raise ValueError(f"tick_ms: must be positive, got {self.tick_ms}")
        if self.snapshot_count < 0:
            raise ValueError(f"snapshot_count: must not be negative, got {self.snapshot_count}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["warmup_seconds"] = self.warmup_seconds
        d["phase_seconds"] = self.phase_seconds
        d["profile_seconds"] = self.profile_seconds
        d["nodes"] = len(IDS)
        d["check_quorum"] = True
        d["pre_vote"] = True
        d["disk"] = "MemoryDisk (MemoryStorage, no fsync)"
        return d


@dataclass(frozen=True, slots=True)
class Workload:
    mode: Mode
    batch: int
    payload_bytes: int

    @property
    def name(self) -> str:
        mode = f"batched-{self.batch}" if self.mode == "batched" else self.mode
        return f"{mode}/{_size(self.payload_bytes)}"


def workloads(params: Params) -> list[Workload]:
    out: list[Workload] = []
    for size in params.payload_sizes:
        out.append(Workload("sequential", 1, size))
        out.append(Workload("pipelined", 1, size))
        out.extend(Workload("batched", b, size) for b in params.batch_sizes)
    return out


# -- the cluster and the workload loops ----------------------------------------------------


class Cluster:
    """Three nodes on the in-memory network with `LEADER` elected, ticked by the wall clock.

    Proposals stay in flight across `drive` calls: a pipelined workload is one continuous
    stream, measured in consecutive slices; `verify` drains it at the end.
    """

    def __init__(self, params: Params) -> None:
        self.params = params
        self.net = Network(
            IDS,
            seed=params.seed,
            config=lambda i: Config(
                id=i,
                voters=IDS,
                seed=params.seed * 1000 + i,
                election_tick=params.election_tick,
                heartbeat_tick=params.heartbeat_tick,
                max_inflight_msgs=params.max_inflight_msgs,
                max_size_per_msg=params.max_size_per_msg,
            ),
            policy=SnapshotPolicy(params.snapshot_count, params.catch_up_entries),
        )
        self.net.elect(LEADER)
        if self.net.leader() != LEADER:
            raise BenchError(f"node {LEADER} did not win the election")
        self.base = self.applied()
        self.proposed = 0
        self._tick_s = params.tick_ms / 1000
        self._next_tick = time.perf_counter() + self._tick_s

    def applied(self) -> int:
        """The index applied on every node."""
        return min(sn.app.applied_index for sn in self.net.nodes.values())

    def in_flight(self) -> int:
        """Entries proposed but not yet applied on every node."""
        return self.proposed - (self.applied() - self.base)

    def propose(self, *payloads: bytes) -> None:
        self.net.propose(LEADER, *payloads)
        self.proposed += len(payloads)

    def maybe_tick(self, now: float) -> None:
        if now >= self._next_tick:
            self.net.tick()
            self._next_tick = now + self._tick_s

    def round(self) -> None:
        """One Ready round: every node handles a Ready, then every due message is delivered."""
        self.net.process_ready()
        self.net.deliver()

    def prefill(self, entries: int, payload: bytes) -> None:
        """Commit at least `entries` entries in batches of 64, so that a log that compacts every
        `entries` entries has compacted once and measurements start in its steady state."""
        batch = (payload,) * 64
        while self.applied() - self.base < entries:
            self.propose(*batch)
            self.net.stabilize()

    def verify(self, what: str) -> None:
        """Drain, then check that every proposal was applied on every node under one leader."""
        self.net.stabilize()
        if self.net.leader() != LEADER:
            raise BenchError(f"{what}: node {LEADER} lost leadership")
        if self.in_flight() != 0:
            applied = self.applied() - self.base
            raise BenchError(f"{what}: {self.proposed} entries proposed, {applied} applied")


def drive(c: Cluster, w: Workload, payload: bytes, seconds: float) -> int:
    """Run workload `w` for `seconds` of wall time; returns the entries newly applied on
    every node (pipelined workloads leave their window in flight for the next call)."""
    start = c.applied()
    deadline = time.perf_counter() + seconds
    if w.mode == "sequential":
        stabilize = c.net.stabilize
        while (now := time.perf_counter()) < deadline:
            c.maybe_tick(now)
            c.propose(payload)
            stabilize()
    elif w.mode == "pipelined":
        window = c.params.window
        while (now := time.perf_counter()) < deadline:
            c.maybe_tick(now)
            for _ in range(window - c.in_flight()):
                c.propose(payload)
            c.round()
    else:
        batch = (payload,) * w.batch
        window = c.params.window
        while (now := time.perf_counter()) < deadline:
            c.maybe_tick(now)
            if c.in_flight() < window:
                c.propose(*batch)
            c.round()
    return c.applied() - start


# -- clean pass ----------------------------------------------------------------------------


@dataclass(slots=True)
class CleanPass:
    """Totals of the clean slices: no timers, no profiler."""

    entries: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    messages: int = 0

    @property
    def proposals_per_second(self) -> float:
        return self.entries / self.wall_seconds

    @property
    def cpu_us_per_entry(self) -> float:
        return self.cpu_seconds * 1e6 / self.entries


def clean_slice(c: Cluster, w: Workload, payload: bytes, seconds: float, into: CleanPass) -> None:
    gc.collect()
    delivered = c.net.delivered
    cpu0, wall0 = time.process_time(), time.perf_counter()
    n = drive(c, w, payload, seconds)
    into.wall_seconds += time.perf_counter() - wall0
    into.cpu_seconds += time.process_time() - cpu0
    into.entries += n
    into.messages += c.net.delivered - delivered


# -- phase pass ------------------------------------------------------------------------------


class _Acc:
    __slots__ = ("calls", "ns")

    def __init__(self) -> None:
        self.ns = 0
        self.calls = 0


def _timed(fn: Callable[P, R], acc: _Acc) -> Callable[P, R]:
    clock = time.perf_counter_ns

    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            acc.ns += clock() - t0
            acc.calls += 1

    return timed


# (timer, object kind, method): the instance methods the phase pass wraps.
_PROBES: tuple[tuple[str, str, str], ...] = (
    ("propose", "raw", "propose"),
    ("step", "raw", "step"),
    ("tick", "raw", "tick"),
    ("has_ready", "raw", "has_ready"),
    ("ready", "raw", "ready"),
    ("advance", "raw", "advance"),
    ("persist", "disk", "save"),
    ("persist", "disk", "save_snapshot"),
    ("snapshot", "disk", "maybe_snapshot"),
    ("handle_ready", "sim", "handle_ready"),
    ("send", "net", "send"),
    ("deliver", "net", "deliver"),
)

PHASES: tuple[tuple[str, str, str], ...] = (
    ("propose", "core", "RawNode.propose (leader appends and broadcasts)"),
    ("step", "core", "RawNode.step of every delivered message"),
    ("tick", "core", "RawNode.tick (heartbeats, check-quorum)"),
    ("ready", "core", "RawNode.has_ready + RawNode.ready"),
    ("advance", "core", "RawNode.advance"),
    ("persist", "harness", "SimDisk.save/save_snapshot: MemoryStorage.append, set_hard_state"),
    ("snapshot", "harness", "SimDisk.maybe_snapshot: the check, create_snapshot + compact"),
    ("apply", "harness", "rest of SimNode.handle_ready: apply to the toy state machine"),
    ("send", "harness", "Network.send: queue messages on the wire"),
    ("delivery", "harness", "Network.deliver minus RawNode.step: sort and route"),
    ("driver", "driver", "benchmark loop, Network.process_ready/stabilize/tick"),
)


class _CalibrationTarget:
    def method(self, x: int) -> int:
        return x


def calibrate_timers(calls: int = 100_000) -> tuple[float, float]:
    """The cost of one timed call in ns, as (inside, outside) the interval it measures.

    Measured the way the phase pass calls: a method replaced by a timed wrapper on its
    instance. The inside part inflates the phase itself; the outside part lands in whatever
    encloses the call. Both are subtracted from the phases; the best of three rounds is kept.
    """
    best = (float("inf"), float("inf"))
    clock = time.perf_counter_ns
    for _ in range(3):
        obj = _CalibrationTarget()
        t0 = clock()
        for i in range(calls):
            obj.method(i)
        bare = (clock() - t0) / calls
        acc = _Acc()
        setattr(obj, "method", _timed(obj.method, acc))  # noqa: B010 (as _Instrumented does)
        t0 = clock()
        for i in range(calls):
            obj.method(i)
        total = (clock() - t0) / calls - bare
        inside = max(acc.ns / calls - bare, 0.0)
        best = min(best, (inside, max(total - inside, 0.0)), key=sum)
    return best


class _Instrumented:
    """Timers on the instance methods of one cluster; `remove` restores the class methods."""

    def __init__(self, c: Cluster, accs: dict[str, _Acc]) -> None:
        self._wrapped: list[tuple[object, str]] = []
        net = c.net
        for key, kind, method in _PROBES:
            targets: list[object]
            if kind == "net":
                targets = [net]
            elif kind == "sim":
                targets = list(net.nodes.values())
            elif kind == "raw":
                targets = [sn.raw for sn in net.nodes.values()]
            else:
                targets = [sn.disk for sn in net.nodes.values()]
            for obj in targets:
                setattr(obj, method, _timed(getattr(obj, method), accs[key]))
                self._wrapped.append((obj, method))

    def remove(self) -> None:
        for obj, method in self._wrapped:
            delattr(obj, method)
        self._wrapped = []


@dataclass(slots=True)
class PhaseTotals:
    """Totals of the phase slices, with one accumulator per timer."""

    entries: int = 0
    wall_ns: int = 0
    accs: dict[str, _Acc] = field(default_factory=lambda: {k: _Acc() for k, _, _ in _PROBES})


def phase_slice(c: Cluster, w: Workload, payload: bytes, seconds: float, into: PhaseTotals) -> None:
    gc.collect()
    probes = _Instrumented(c, into.accs)
    try:
        wall0 = time.perf_counter_ns()
        into.entries += drive(c, w, payload, seconds)
        into.wall_ns += time.perf_counter_ns() - wall0
    finally:
        probes.remove()


# Timers whose calls happen inside another timer's (SimNode.handle_ready, Network.deliver).
_NESTED = {
    "has_ready": "handle_ready",
    "ready": "handle_ready",
    "advance": "handle_ready",
    "persist": "handle_ready",
    "snapshot": "handle_ready",
    "step": "deliver",
}


def phase_breakdown(
    t: PhaseTotals, overhead: tuple[float, float], clean_us_per_entry: float
) -> dict[str, Any]:
    """Each phase's share of the timed slices (the timers' own cost removed), and that share
    of the clean CPU µs per entry.

    Shares are ratios of times measured over the same slices, so they do not depend on how
    many entries happened to complete within a short slice (a pipelined slice is a handful of
    Ready rounds, each completing hundreds of entries). Applied to the clean figure, they add
    up to it; the timed slices' own µs per entry are kept as `timed_us_per_entry`.
    """
    n = t.entries
    inside, outside = overhead
    calls = {k: a.calls for k, a in t.accs.items()}
    # Inclusive time of each timer without its own overhead, then without its children's.
    ns = {k: a.ns - a.calls * inside for k, a in t.accs.items()}
    for child, parent in _NESTED.items():
        ns[parent] -= ns[child] + calls[child] * outside
    phase_ns = {
        "propose": ns["propose"],
        "step": ns["step"],
        "tick": ns["tick"],
        "ready": ns["has_ready"] + ns["ready"],
        "advance": ns["advance"],
        "persist": ns["persist"],
        "snapshot": ns["snapshot"],
        "apply": ns["handle_ready"],
        "send": ns["send"],
        "delivery": ns["deliver"],
    }
    overhead_ns = sum(calls.values()) * (inside + outside)
    phase_ns["driver"] = t.wall_ns - overhead_ns - sum(phase_ns.values())
    total_ns = sum(phase_ns.values())
    share = {k: v / total_ns for k, v in phase_ns.items()}
    us = {k: v * clean_us_per_entry for k, v in share.items()}
    group = {key: g for key, g, _ in PHASES}
    return {
        "entries": n,
        "timed_us_per_entry": total_ns / 1000 / n,
        "timer_overhead_us_per_entry": overhead_ns / 1000 / n,
        "share": share,
        "us_per_entry": us,
        "total_us_per_entry": clean_us_per_entry,
        "core_us_per_entry": sum(v for k, v in us.items() if group[k] == "core"),
        "harness_us_per_entry": sum(v for k, v in us.items() if group[k] == "harness"),
        "calls_per_entry": {
            "step": calls["step"] / n,
            "ready": calls["ready"] / n,
            "disk_save": calls["persist"] / n,
            "deliver": calls["deliver"] / n,
        },
    }


# -- profile pass ---------------------------------------------------------------------------


def _generated_inits() -> dict[CodeType, str]:
    """Labels for the `__init__`s that dataclasses generate (cProfile calls them all
    ``<string>:2(__init__)``), for the dataclasses of the project's loaded modules."""
    labels: dict[CodeType, str] = {}
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("controlplane", "kubelet", "kubeproxy"):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, type) and dataclasses.is_dataclass(obj):
                code = getattr(obj.__dict__.get("__init__"), "__code__", None)
                if isinstance(code, CodeType):
                    labels[code] = f"{obj.__module__}:{obj.__qualname__}.__init__ (dataclass)"
    return labels


def _label(code: CodeType | str, generated: dict[CodeType, str]) -> str:
    if isinstance(code, str):
        return code  # a built-in, e.g. "<built-in method builtins.len>"
    if code in generated:
        return generated[code]
    path = Path(code.co_filename)
    try:
        shown = str(path.resolve().relative_to(ROOT))
    except (ValueError, OSError):
        shown = path.name
    return f"{shown}:{code.co_firstlineno}({code.co_qualname})"


MAX_EXTRA_SECONDS = 30.0
"""How long a pass may be extended on a busy machine before it counts as a failure."""


def profile_pass(
    c: Cluster, w: Workload, payload: bytes, seconds: float, top: int
) -> dict[str, Any]:
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    try:
        # A pipelined window can take longer than a short slice to drain on a busy machine:
        # keep driving (bounded) until something was applied, rather than failing.
        n = drive(c, w, payload, seconds)
        waited = seconds
        while n == 0 and waited < MAX_EXTRA_SECONDS:
            n += drive(c, w, payload, seconds)
            waited += seconds
    finally:
        prof.disable()
    if n == 0:
        raise BenchError(f"{w.name}: no entry was applied in {waited:.1f} s of profiling")
    stats = [
        s
        for s in prof.getstats()
        if not (isinstance(s.code, str) and "_lsprof.Profiler" in s.code)  # prof.disable
    ]
    total = sum(s.inlinetime for s in stats) or 1e-9
    generated = _generated_inits()

    def rows(key: Callable[[Any], float]) -> list[dict[str, Any]]:
        return [
            {
                "function": _label(s.code, generated),
                "calls": s.callcount,
                "calls_per_entry": s.callcount / n,
                "cumulative_us_per_entry": s.totaltime * 1e6 / n,
                "self_us_per_entry": s.inlinetime * 1e6 / n,
                "cumulative_share": s.totaltime / total,
                "self_share": s.inlinetime / total,
            }
            for s in sorted(stats, key=key, reverse=True)[:top]
        ]

    return {
        "entries": n,
        "profiled_us_per_entry": total * 1e6 / n,
        "top_cumulative": rows(lambda s: s.totaltime),
        "top_self": rows(lambda s: s.inlinetime),
    }


# -- running ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    workload: Workload
    clean: CleanPass
    phases: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        w, c = self.workload, self.clean
        return {
            "workload": w.name,
            "mode": w.mode,
            "batch": w.batch,
            "payload_bytes": w.payload_bytes,
            "entries": c.entries,
            "wall_seconds": c.wall_seconds,
            "cpu_seconds": c.cpu_seconds,
            "proposals_per_second": c.proposals_per_second,
            "cpu_us_per_entry": c.cpu_us_per_entry,
            "messages_per_entry": c.messages / c.entries,
            "phases": self.phases,
            "profile": self.profile,
        }


def run_workload(params: Params, w: Workload, timer_overhead: tuple[float, float]) -> Result:
    payload = random.Random(params.seed).randbytes(w.payload_bytes)
    try:
        c = Cluster(params)
        c.prefill(params.snapshot_count, payload)
        drive(c, w, payload, params.warmup_seconds)
        clean, phases = CleanPass(), PhaseTotals()
        for _ in range(SLICES):
            clean_slice(c, w, payload, params.seconds / SLICES, clean)
            phase_slice(c, w, payload, params.phase_seconds / SLICES, phases)
        extra = 0.0
        while (clean.entries == 0 or phases.entries == 0) and extra < MAX_EXTRA_SECONDS:
            clean_slice(c, w, payload, params.seconds / SLICES, clean)
            phase_slice(c, w, payload, params.phase_seconds / SLICES, phases)
            extra += (params.seconds + params.phase_seconds) / SLICES
        profile = profile_pass(c, w, payload, params.profile_seconds, params.profile_top)
        c.verify(w.name)
    except ProposalDropped as e:
        raise BenchError(f"{w.name}: proposal dropped: {e}") from e
    if clean.entries == 0 or phases.entries == 0:
        raise BenchError(f"{w.name}: no entry was applied; is --seconds too short?")
    breakdown = phase_breakdown(phases, timer_overhead, clean.cpu_us_per_entry)
    return Result(w, clean, breakdown, profile)


def machine_info() -> dict[str, Any]:
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "git": _git_revision(),
    }


def _git_revision() -> dict[str, Any] | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


# -- output ----------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n // 1024}KiB" if n % 1024 == 0 else f"{n}B"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` columns flush left, the others flush right."""
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(wd) if i < left else c.rjust(wd)
            for i, (c, wd) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * wd for wd in widths), *(line(r) for r in rows)]


def report(params: Params, machine: dict[str, Any], results: Sequence[Result]) -> str:
    out = [
        "Raft core throughput: 3 nodes, in-memory network, MemoryDisk (MemoryStorage: no I/O)",
        f"python {machine['python']} ({machine['implementation']}), {machine['platform']}, "
        f"{machine['cpu_count']} CPUs",
        f"per workload: {params.seconds:g} s clean, {params.phase_seconds:g} s with timers, "
        f"{params.profile_seconds:g} s under cProfile; window {params.window} entries, "
        f"max_inflight_msgs {params.max_inflight_msgs}, tick {params.tick_ms:g} ms, "
        f"snapshot every {params.snapshot_count} (catch-up {params.catch_up_entries})",
        "",
    ]
    out += table(
        ["workload", "entries", "entries/s", "CPU µs/entry", "msgs/entry", "readies/entry"],
        [
            [
                r.workload.name,
                f"{r.clean.entries:,}",
                f"{r.clean.proposals_per_second:,.0f}",
                f"{r.clean.cpu_us_per_entry:.1f}",
                f"{r.clean.messages / r.clean.entries:.2f}",
                f"{r.phases['calls_per_entry']['ready']:.2f}",
            ]
            for r in results
        ],
    )
    inside, outside = machine["timer_overhead_ns"].values()
    out += [
        "",
        "Per-step breakdown, CPU µs per entry: each step's share of the timed slices (timer "
        f"cost, {inside:.0f} + {outside:.0f} ns a call, removed) times the CPU µs/entry above",
        "",
    ]
    keys = [k for k, _, _ in PHASES]
    out += table(
        ["workload", *keys, "core", "harness", "total"],
        [
            [
                r.workload.name,
                *(f"{r.phases['us_per_entry'][k]:.1f}" for k in keys),
                f"{r.phases['core_us_per_entry']:.1f}",
                f"{r.phases['harness_us_per_entry']:.1f}",
                f"{r.phases['total_us_per_entry']:.1f}",
            ]
            for r in results
        ],
    )
    out += ["", *(f"  {k:9} {g:8} {d}" for k, g, d in PHASES)]
    out += ["", "Top functions by self time (cProfile; µs per entry, share of profiled time)"]
    for r in results:
        if r.workload.payload_bytes != params.payload_sizes[0]:
            continue
        out += ["", f"{r.workload.name}:"]
        out += [
            f"  {row['self_us_per_entry']:7.1f} µs {row['self_share']:6.1%}  {row['function']}"
            for row in r.profile["top_self"][:6]
        ]
    return "\n".join(out)


def to_json(params: Params, machine: dict[str, Any], results: Sequence[Result]) -> dict[str, Any]:
    return {
        "benchmark": "raft-core",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": params.to_json(),
        "phases": {k: {"group": g, "description": d} for k, g, d in PHASES},
        "results": [r.to_json() for r in results],
    }


def parse_args(argv: Sequence[str] | None) -> tuple[Params, Path]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measuring time of each workload (default 2.0, or 0.5 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="a short smoke run (0.5 s per workload)")
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the results (default {DEFAULT_JSON})",
    )
    p.add_argument(
        "--window",
        type=int,
        default=1024,
        help="entries in flight in the pipelined and batched workloads (default 1024)",
    )
    p.add_argument(
        "--snapshot-count",
        type=int,
        default=10_000,
        help="snapshot and compact every N applied entries, keeping N/2; 0 never (default 10000)",
    )
    args = p.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 2.0)
    params = Params(
        seconds=seconds,
        quick=args.quick,
        window=args.window,
        snapshot_count=args.snapshot_count,
        catch_up_entries=args.snapshot_count // 2,
    )
    params.validate()
    return params, args.json


def main(argv: Sequence[str] | None = None) -> int:
    try:
        params, json_path = parse_args(argv)
    except ValueError as e:
        print(f"bench_raft: {e}", file=sys.stderr)
        return 2
    machine = machine_info()
    timer_overhead = calibrate_timers()
    machine["timer_overhead_ns"] = dict(zip(("inside", "outside"), timer_overhead, strict=True))
    results: list[Result] = []
    try:
        for w in workloads(params):
            print(f"running {w.name} ...", file=sys.stderr, flush=True)
            results.append(run_workload(params, w, timer_overhead))
    except BenchError as e:
        print(f"bench_raft: {e}", file=sys.stderr)
        return 1
    print(report(params, machine, results))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(params, machine, results), indent=2) + "\n")
    print(f"\nwrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
