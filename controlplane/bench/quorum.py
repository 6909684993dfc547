"""`kubelab bench quorum`: write latency, throughput and failover of the replicated store.

For each configuration asked (masters x timer profile) the benchmark starts a throwaway
kubelab cluster on its own loopback subnet (127.90-95.0.0/16) with its data in a temporary
work directory, runs six phases, and stops it; with `--compare etcd` it then does the same
with an etcd cluster of as many members, with the same heartbeat and election timeout, the
same 1 KiB values and the same client code (etcd's gRPC KV speaks storepb's Put as is):

1. start the cluster and wait for a leader that every member can reach;
2. sequential writes to the leader: one client, one write at a time (latency percentiles);
3. the same through a follower (which forwards to the leader);
4. `clients` concurrent clients (own connections) writing to the leader (throughput);
5. pipelined writes: one connection with `window` writes in flight (throughput);
6. failover: `rounds` times, SIGKILL the leader and time until the first write is
   acknowledged through another member (hedged writes every 20 ms), then restart it.

Around phases 2-5 every member's `/metrics` and CPU time (`/proc`) are read before and after,
which gives a per-write profile: fsync time on leader and followers, the proposal's time in
the server, CPU per write. What cannot be measured from outside is reported as such (null,
with the reason), never estimated silently. The terms in the response headers and the
members' election counters across phases 2-5 count elections that no fault caused.

The result is a JSON document (parameters, machine, every figure), an aligned table and, next
to the JSON, an SVG with the latency CDFs side by side.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from . import stats
from .machine import machine_info, other_activity
from .probes import counter_delta, scrape
from .profile import Snapshot, phase_doc, profile_steps, snapshot
from .systems import (
    INSTALL_ETCD,
    BenchError,
    Cluster,
    EtcdCluster,
    KubelabCluster,
    OctetPool,
    etcd_binary,
    etcd_version,
)
from .workload import LoadResult, Writer, closed_loop, first_ack, pipelined

__all__ = ["Params", "run_quorum"]

Say = Callable[[str], None]

PHASES = 6


@dataclass(frozen=True)
class Params:
    """What to run. `quick` shrinks every phase (for tests): about 20 s per system."""

    masters: tuple[int, ...] = (3,)
    timers: tuple[str, ...] = ("demo",)
    compare: tuple[str, ...] = ()
    quick: bool = False
    value_size: int = 1024
    seq_writes: int = 1000
    seq_seconds: float = 8.0
    clients: int = 16
    load_seconds: float = 6.0
    window: int = 64
    rounds: int = 10
    warmup_writes: int = 100
    hedge_ms: float = 20.0
    seed: int = 1
    workdir: str | None = None
    """Where clusters keep their data (kept afterwards); None: a temporary directory."""

    @classmethod
    def quick_run(cls, **kw: Any) -> Params:
        base = cls(
            quick=True,
            seq_writes=200,
            seq_seconds=2.0,
            load_seconds=2.0,
            rounds=2,
            warmup_writes=20,
        )
        return replace(base, **kw)


# -- one system ------------------------------------------------------------------------------------


class SystemRun:
    """Phases 1-6 on one cluster; `doc` collects the figures."""

    def __init__(self, cluster: Cluster, params: Params, label: str, say: Say) -> None:
        self.c = cluster
        self.p = params
        self.label = label
        self.say = say
        rng = random.Random(params.seed)
        self.value = rng.randbytes(params.value_size)
        self.doc: dict[str, Any] = {"system": cluster.system, "cluster": cluster.describe()}
        self.writers: dict[str, Writer] = {}

    def note_busy(self) -> None:
        """Keep the most foreign processes seen at each phase boundary (`busy_max`)."""
        seen = other_activity(self.c.workdir.parent)
        busy = self.doc.setdefault("busy_max", dict.fromkeys(seen, 0))
        for k, v in seen.items():
            busy[k] = max(busy.get(k, 0), v)

    def progress(self, n: int, text: str) -> None:
        self.say(f"[{self.label}] phase {n}/{PHASES}: {text}")

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.note_busy()
        try:
            self.progress(1, "start")
            self.c.start(lambda s: self.say(f"[{self.label}]   {s}"))
            self.doc["cluster"] = self.c.describe()
            asyncio.run(self._phases())
        finally:
            self.c.stop()
        self.note_busy()
        self.doc["wall_seconds"] = round(time.monotonic() - t0, 1)
        return self.doc

    async def _phases(self) -> None:
        c, p = self.c, self.p
        self.writers = {m.name: Writer(m.endpoint, c.put_method, c.metadata) for m in c.members}
        try:
            leader = await self.wait_stable(60.0)
            self.say(f"[{self.label}]   leader: {leader}; warming up")
            for w in self.writers.values():
                await closed_loop(
                    [w],
                    lambda _i, n: b"bench/warmup/%d" % n,
                    self.value,
                    max_writes=p.warmup_writes,
                    max_seconds=10,
                )
            base = await snapshot(c)
            terms: list[int] = []

            self.progress(2, f"sequential writes to the leader ({leader}) ...")
            seq_l = await self.measure(
                leader,
                leader,
                lambda: closed_loop(
                    [self.writers[leader]],
                    lambda _i, n: b"bench/seq-leader/%08d" % n,
                    self.value,
                    max_writes=p.seq_writes,
                    max_seconds=p.seq_seconds,
                ),
                terms,
            )
            self.report(seq_l)

            follower = next(m.name for m in c.members if m.name != leader)
            self.progress(3, f"sequential writes through a follower ({follower}) ...")
            seq_f = await self.measure(
                leader,
                follower,
                lambda: closed_loop(
                    [self.writers[follower]],
                    lambda _i, n: b"bench/seq-follower/%08d" % n,
                    self.value,
                    max_writes=p.seq_writes,
                    max_seconds=p.seq_seconds,
                ),
                terms,
            )
            self.report(seq_f)

            self.progress(4, f"{p.clients} clients writing to the leader for {p.load_seconds:g} s")
            ep = c.member(leader).endpoint
            clients = [Writer(ep, c.put_method, c.metadata) for _ in range(p.clients)]
            try:
                await asyncio.gather(
                    *(
                        w.put(b"bench/warmup/client/%d" % i, self.value)
                        for i, w in enumerate(clients)
                    )
                )
                conc = await self.measure(
                    leader,
                    leader,
                    lambda: closed_loop(
                        clients,
                        lambda i, n: b"bench/clients/%02d/%08d" % (i, n),
                        self.value,
                        max_writes=10**9,
                        max_seconds=p.load_seconds,
                    ),
                    terms,
                    clients=p.clients,
                )
            finally:
                await asyncio.gather(*(w.close() for w in clients))
            self.report(conc)

            self.progress(
                5, f"pipelined: {p.window} writes in flight on one connection, {p.load_seconds:g} s"
            )
            pipe = await self.measure(
                leader,
                leader,
                lambda: pipelined(
                    self.writers[leader],
                    lambda n: b"bench/pipelined/%08d" % n,
                    self.value,
                    window=p.window,
                    max_seconds=p.load_seconds,
                ),
                terms,
                window=p.window,
            )
            self.report(pipe)
            end = await snapshot(c)
            self.doc["sequential_leader"] = seq_l
            self.doc["sequential_follower"] = seq_f
            self.doc["concurrent"] = conc
            self.doc["pipelined"] = pipe
            self.doc["profile"] = profile_steps(c, seq_l, seq_f)
            self.doc["elections_without_fault"] = self.elections(base, end, terms)
            e = self.doc["elections_without_fault"]
            self.say(
                f"[{self.label}]   elections without a fault during phases 2-5: "
                f"{e['count']} (terms {e['term_first']} -> {e['term_last']})"
            )

            self.doc["failover"] = await self.failover()
        finally:
            await asyncio.gather(*(w.close() for w in self.writers.values()))

    def report(self, ph: dict[str, Any]) -> None:
        lat = ph["latency"]
        errors = sum(ph["errors"].values())
        self.say(
            f"[{self.label}]   {ph['writes']} writes in {ph['seconds']:.1f} s: "
            f"{ph['throughput_per_s']:.0f}/s, p50 {lat.get('p50_ms')} ms, "
            f"p99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms"
            + (f"; {errors} FAILED writes {ph['errors']}" if errors else "")
        )

    async def measure(
        self,
        leader: str,
        target: str,
        run: Callable[[], Awaitable[LoadResult]],
        terms: list[int],
        **extra: Any,
    ) -> dict[str, Any]:
        self.note_busy()
        before = await snapshot(self.c)
        res = await run()
        after = await snapshot(self.c)
        self.note_busy()
        terms += [res.min_term, res.max_term]
        doc = phase_doc(self.c, leader, target, res, before=before, after=after, **extra)
        doc["_latencies"] = res.latencies  # dropped from the JSON, kept for the CDF plot
        return doc

    def term(self, snap: Snapshot) -> int | None:
        """The highest term in the members' term gauge (None: the system has none)."""
        gauge = self.c.term_gauge
        if gauge is None:
            return None
        terms = [int(pg[gauge]) for pg in snap.metrics.values() if pg and gauge in pg]
        return max(terms) if terms else None

    def elections(self, base: Snapshot, end: Snapshot, terms: list[int]) -> dict[str, Any]:
        first, last = self.term(base), self.term(end)
        if first is not None and last is not None:
            source = f"{self.c.term_gauge} (highest over the members) before and after"
        else:
            first, last = min(terms), max(terms)
            source = "raft_term of the response headers"
        counters: dict[str, float | None] = {}
        name = self.c.elections_counter or self.c.leader_changes_counter
        for m in self.c.members:
            b, a = base.metrics.get(m.name), end.metrics.get(m.name)
            counters[m.name] = counter_delta(b, a, name) if name else None
        known = [v for v in counters.values() if v is not None]
        counted = int(sum(known)) if self.c.elections_counter and known else None
        how = f"term changes during phases 2-5 ({source})"
        if self.c.elections_counter:
            how += f", or the sum of {self.c.elections_counter} over the members if higher"
        else:
            how += (
                f"; {self.c.system} exposes no election counter, "
                f"{self.c.leader_changes_counter} is given per member"
            )
        return {
            "count": max(last - first, counted or 0),
            "term_first": first,
            "term_last": last,
            "counter": name,
            "counter_deltas": counters,
            "how": how,
        }

    # -- leader, readiness, failover ------------------------------------------------------------

    async def leader_now(self) -> str | None:
        """The one member whose leader gauge is 1, if every member knows a leader."""
        pages = await asyncio.gather(
            *(asyncio.to_thread(scrape, m.metrics_url, 0.5) for m in self.c.members)
        )
        if any(pg is None for pg in pages):
            return None
        leaders = [
            m.name
            for m, pg in zip(self.c.members, pages, strict=True)
            if pg and pg.get(self.c.leader_gauge) == 1
        ]
        if len(leaders) != 1 or not all(
            pg and pg.get(self.c.has_leader_gauge) == 1 for pg in pages
        ):
            return None
        return leaders[0]

    async def wait_stable(self, timeout: float) -> str:
        """Wait until there is one leader and a write through every member is acknowledged."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            leader = await self.leader_now()
            if leader is None:
                last = "no single leader known by every member"
            else:
                try:
                    await asyncio.gather(
                        *(
                            w.put(b"bench/ready/%s" % n.encode(), self.value, timeout=2.0)
                            for n, w in self.writers.items()
                        )
                    )
                    if await self.leader_now() == leader:
                        return leader
                except grpc.aio.AioRpcError as e:  # members still starting: try again
                    last = f"a write failed: {e.code().name} {e.details()}"
            await asyncio.sleep(0.05)
        raise BenchError(f"{self.c.system}: no stable leader within {timeout:g} s ({last})")

    async def failover(self) -> dict[str, Any]:
        c, p = self.c, self.p
        rounds: list[dict[str, Any]] = []
        settle = c.election_ms / 1000
        for r in range(1, p.rounds + 1):
            leader = await self.wait_stable(60.0)
            await asyncio.sleep(settle)  # let heartbeats flow before the next crash
            leader = await self.wait_stable(60.0)
            term_before = (
                await self.writers[leader].put(b"bench/failover/before", self.value)
            ).header.raft_term
            term_before = self.term(await snapshot(c)) or term_before
            survivors = [w for n, w in self.writers.items() if n != leader]
            self.progress(6, f"failover {r}/{p.rounds}: SIGKILL {leader} (term {term_before})")
            t_kill = c.kill(leader)

            def key(n: int, prefix: bytes = b"bench/failover/%02d/" % r) -> bytes:
                return prefix + b"%06d" % n

            ack = await first_ack(
                survivors,
                key,
                self.value,
                every=p.hedge_ms / 1000,
            )
            ms = (ack.at - t_kill) * 1000
            after = await snapshot(c)
            term_after = self.term(after) or ack.term
            new_leader = next(
                (n for n, pg in after.metrics.items() if pg and pg.get(c.leader_gauge) == 1), None
            )
            self.say(
                f"[{self.label}]   first write acknowledged after {ms:.0f} ms "
                f"(via {ack.endpoint}, term {term_after}); restarting {leader}"
            )
            rounds.append(
                {
                    "round": r,
                    "killed": leader,
                    "failover_ms": round(ms, 1),
                    "acknowledged_via": ack.endpoint,
                    "new_leader": new_leader,
                    "term_before": term_before,
                    "term_after": term_after,
                    "attempts": ack.attempts,
                }
            )
            await asyncio.to_thread(c.restart, leader)
        await self.wait_stable(60.0)
        return {
            "rounds": rounds,
            "summary": stats.summarize_values([x["failover_ms"] for x in rounds]),
            "hedge_ms": p.hedge_ms,
            "how": "SIGKILL of the leader to the first write acknowledged through another "
            f"member; a new write is sent every {p.hedge_ms:g} ms (round-robin over the "
            "survivors) without waiting for the earlier ones",
        }


# -- the whole run ---------------------------------------------------------------------------------


def compare(kube: dict[str, Any], etcd: dict[str, Any]) -> dict[str, Any]:
    """Ratios kubelab / etcd of every headline figure, and the targets of the issue."""

    def get(doc: dict[str, Any], *path: str) -> float | None:
        cur: Any = doc
        for k in path:
            if not isinstance(cur, dict) or k not in cur:
                return None
            cur = cur[k]
        return cur if isinstance(cur, int | float) else None

    figures: dict[str, tuple[str, ...]] = {
        f"sequential_leader_{q}": ("sequential_leader", "latency", f"{q}_ms")
        for q in ("p50", "p90", "p99", "max")
    }
    figures |= {
        f"sequential_follower_{q}": ("sequential_follower", "latency", f"{q}_ms")
        for q in ("p50", "p90", "p99", "max")
    }
    figures |= {
        "concurrent_throughput": ("concurrent", "throughput_per_s"),
        "concurrent_p50": ("concurrent", "latency", "p50_ms"),
        "concurrent_p99": ("concurrent", "latency", "p99_ms"),
        "pipelined_throughput": ("pipelined", "throughput_per_s"),
        "failover_min": ("failover", "summary", "min_ms"),
        "failover_median": ("failover", "summary", "median_ms"),
        "failover_max": ("failover", "summary", "max_ms"),
    }
    ratios = {k: stats.ratio(get(kube, *path), get(etcd, *path)) for k, path in figures.items()}

    def target(key: str, op: str, bound: float) -> dict[str, Any]:
        v = ratios[key]
        met = None if v is None else (v <= bound if op == "<=" else v >= bound)
        return {"ratio": key, "value": v, "target": f"{op} {bound:g}", "met": met}

    return {
        "ratios": ratios,
        "targets": {
            "sequential_p50": target("sequential_leader_p50", "<=", 1.5),
            "concurrent_throughput": target("concurrent_throughput", ">=", 0.7),
            "failover_median": target("failover_median", "<=", 1.0),
        },
    }


def _strip_private(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_strip_private(v) for v in obj]
    return obj


@dataclass
class Outcome:
    """The JSON document and, by configuration and system, latencies for the plot."""

    doc: dict[str, Any]
    latencies: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    failed: bool = False
    """A system could not be measured (its entry in the document says why)."""


def run_quorum(params: Params, say: Say) -> Outcome:
    """Run every configuration of `params`; returns the document (see the module docstring)."""
    own_tmp = params.workdir is None
    root = (
        Path(params.workdir) if params.workdir else Path(tempfile.mkdtemp(prefix="kubelab-bench-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    etcd_bin = etcd_binary() if "etcd" in params.compare else None
    doc: dict[str, Any] = {
        "benchmark": "quorum",
        "format": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": asdict(params),
        "machine": machine_info(root),
        "runs": [],
    }
    if etcd_bin:
        doc["machine"]["etcd_version"] = etcd_version(etcd_bin)
    busy = doc["machine"]["busy_at_start"]
    if any(busy.values()):
        say(
            f"note: the machine is shared right now ({busy['other_masters']} other masters, "
            f"{busy['pytest_processes']} pytest processes, {busy['other_etcd']} other etcd): "
            "figures will be noisier"
        )
    etcd_missing = (
        "etcd is not installed (no `etcd` on PATH): skipping the comparison. Install it "
        f"with: {INSTALL_ETCD}"
    )
    if "etcd" in params.compare and etcd_bin is None:
        say(etcd_missing)
    out = Outcome(doc)
    pool = OctetPool()
    try:
        for n in params.masters:
            for timers in params.timers:
                name = f"{n} members, {timers} timers"
                wd = root / f"{n}-{timers}"
                kube = KubelabCluster(wd / "kubelab", pool.claim(n), n, timers)
                run: dict[str, Any] = {
                    "masters": n,
                    "timers": timers,
                    "heartbeat_ms": kube.heartbeat_ms,
                    "election_ms": kube.election_ms,
                    "systems": {},
                }
                doc["runs"].append(run)
                lats: dict[str, dict[str, list[float]]] = {}
                out.latencies[name] = lats
                systems: list[Cluster] = [kube]
                if "etcd" in params.compare and etcd_bin is not None:
                    systems.append(
                        EtcdCluster(
                            wd / "etcd",
                            pool.claim(n),
                            n,
                            binary=etcd_bin,
                            heartbeat_ms=kube.heartbeat_ms,
                            election_ms=kube.election_ms,
                            snapshot_count=kube.cfg.raft.snapshot_count,
                        )
                    )
                elif "etcd" in params.compare:
                    run["systems"]["etcd"] = {"skipped": etcd_missing}
                for cluster in systems:
                    label = f"{cluster.system} {name}"
                    try:
                        result = SystemRun(cluster, params, label, say).run()
                    except (BenchError, TimeoutError, OSError, grpc.RpcError) as e:
                        say(f"[{label}] failed: {e}")
                        run["systems"][cluster.system] = {"error": f"{type(e).__name__}: {e}"}
                        out.failed = True
                        continue
                    finally:
                        pool.release(cluster.octet)
                    run["systems"][cluster.system] = result
                    lats[cluster.system] = _take_latencies(result)
                k, et = run["systems"].get("kubelab"), run["systems"].get("etcd")
                if k and et and not ({"error", "skipped"} & (k.keys() | et.keys())):
                    run["comparison"] = compare(k, et)
    finally:
        doc["busy_at_end"] = other_activity(root)
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)
    out.doc = _strip_private(doc)
    return out


def _take_latencies(sysdoc: dict[str, Any]) -> dict[str, list[float]]:
    return {
        ph: list(sysdoc[ph].get("_latencies", []))
        for ph in ("sequential_leader", "sequential_follower", "concurrent", "pipelined")
        if ph in sysdoc
    }
