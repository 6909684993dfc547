"""`kubelab bench reschedule`: a node dies; how long until its pods run elsewhere, stage by stage.

For each timer profile asked, the benchmark starts a throwaway cluster (3 masters, 3 fake
workers) on a free subnet 127.80-89.0.0/16, creates a Deployment spread over the nodes,
waits until every pod is Running, then crashes one node with `kubelab kill worker-1` (its
heartbeats, lease renewals and pod updates stop) and watches, with the client's clock on
every event, the Lease, the Node, the pods and the Events until every pod of the node has a
Running replacement on another node. The cluster is removed afterwards (`kubelab down
--purge`), also on Ctrl-C or SIGTERM.

The stages, as Kubernetes goes through them, each with the server's own timestamp where the
object carries one (whole seconds, except the Lease's renewTime) and the time the watch
showed it (client clock, ms):

1. **last heartbeat**: the last `renewTime` of the node's Lease in `kube-node-lease`;
2. **node crash**: `kubelab kill` returned;
3. **NotReady**: the node's Ready condition leaves True (Unknown: "Kubelet stopped posting
   node status"), `lastTransitionTime`; expected `node_monitor_grace_s` after the last
   heartbeat, within one `node_monitor_period_s`;
4. **taint**: the `node.kubernetes.io/unreachable` (or `not-ready`) NoExecute taint,
   `timeAdded`; expected with NotReady (the eviction rate's token bucket lets the first node
   through at once);
5. **eviction**: the node's pods get a `deletionTimestamp` (the taint manager deletes them
   `tolerationSeconds` after the taint's `timeAdded`; the server's time is deletionTimestamp
   minus the grace period), first and last pod, and the first `TaintManagerEviction` Event;
6. **replacements created, scheduled** (`PodScheduled`) **and Running**, the last of each.

Every stage is printed against its expected window (relative to the last heartbeat, from
the cluster's effective timers), with a verdict: a stage later than its window plus
`SLACK_S` is reported late, never hidden. Expect about grace + toleration: 4 + 3 s with the
demo profile, 50 + 300 s (about six minutes) with the kubernetes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from controlplane.kube.admission import NOT_READY_TAINT, UNREACHABLE_TAINT
from controlplane.kube.errors import APIError
from controlplane.kube.resources import DEPLOYMENTS, EVENTS, LEASES, NODES, PODS
from controlplane.kube.storage import parse_rfc3339

from .machine import machine_info, other_activity
from .report import table
from .scale import (
    BENCH_LABEL,
    NS,
    FakeCluster,
    NodeTimeline,
    NodeTimes,
    PodTimeline,
    PodTimes,
    claim_octet,
    deployment_manifest,
    observe,
    wait_nodes_ready,
)
from .systems import BenchError

__all__ = [
    "EventLog",
    "LeaseTimeline",
    "NodeTimeline",
    "Params",
    "expected_windows",
    "extract_stages",
    "render_reschedule",
    "run_reschedule",
    "verdict",
]

Say = Callable[[str], None]
Obj = dict[str, Any]

NODE_LEASE_NS = "kube-node-lease"
SLACK_S = 1.0
"""Processing time allowed past a stage's window (controllers, writes, watch delivery)."""
STAMP_S = 1.0
"""Resolution of the server's metav1.Time stamps: a stage may look up to 1 s early."""
PROFILE_ORDER = ("demo", "kubernetes")


# -- what the watches saw ------------------------------------------------------------------------


class LeaseTimeline:
    """Each node Lease's renewTimes, with the client time the watch showed each."""

    def __init__(self) -> None:
        self.renewals: dict[str, list[tuple[float, float]]] = {}
        """node -> [(seen, renewTime)], one entry per new renewTime."""

    def on_event(self, kind: str, lease: Obj, at: float) -> None:
        if kind == "DELETED":
            return
        name = str((lease.get("metadata") or {}).get("name") or "")
        renew = parse_rfc3339((lease.get("spec") or {}).get("renewTime"))
        if not name or renew is None:
            return
        seen = self.renewals.setdefault(name, [])
        if not seen or seen[-1][1] != renew:
            seen.append((at, renew))


class EventLog:
    """The Events of the benchmark's namespace, first sighting of each."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def on_event(self, kind: str, ev: Obj, at: float) -> None:
        name = str((ev.get("metadata") or {}).get("name") or "")
        if kind == "DELETED" or not name or name in self._seen:
            return
        self._seen.add(name)
        self.events.append(
            {
                "seen": at,
                "reason": ev.get("reason"),
                "message": ev.get("message"),
                "object": (ev.get("involvedObject") or {}).get("name"),
                "first": parse_rfc3339(ev.get("firstTimestamp") or ev.get("eventTime")),
            }
        )


# -- expected windows and the stages --------------------------------------------------------------


def expected_windows(timers: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Each stage's expected window in seconds after the last heartbeat, from the timers
    (`Timers.to_dict()`): the node lifecycle checks leases every `node_monitor_period_s`,
    so a node is NotReady between grace and grace + period after its last renewal, and the
    taint manager evicts `toleration_s` after the taint's `timeAdded`, which is in whole
    seconds (metav1.Time, as in Kubernetes): up to one second before grace + toleration."""
    renew = float(timers["node_lease_renew_s"])
    grace = float(timers["node_monitor_grace_s"])
    period = float(timers["node_monitor_period_s"])
    tol = float(timers["toleration_s"])
    return {
        "crash": (0.0, renew),
        "notready": (grace, grace + period),
        "taint": (grace, grace + period),
        "eviction": (grace + tol - STAMP_S, grace + period + tol),
        "replacement": (grace + tol - STAMP_S, grace + period + tol),
    }


def verdict(measured: float | None, lo: float, hi: float, *, stamp: bool = False) -> str:
    """ "as expected", "late by X s" (past hi + SLACK_S), "early by X s" (before lo, less one
    second for whole-second server stamps), or "not seen"."""
    if measured is None:
        return "not seen"
    early_bound = lo - (STAMP_S if stamp else 0.0) - 0.05
    if measured < early_bound:
        return f"early by {lo - measured:.1f} s"
    if measured > hi + SLACK_S:
        return f"late by {measured - hi:.1f} s"
    return "as expected"


def _first(values: Sequence[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return min(vs) if vs else None


def _last(values: Sequence[float | None], n: int) -> float | None:
    """The last of `n` expected values; None unless all `n` were seen."""
    vs = [v for v in values if v is not None]
    return max(vs) if n and len(vs) >= n else None


def extract_stages(
    *,
    victim: str,
    kill: tuple[float, float],
    victim_pods: Sequence[str],
    leases: LeaseTimeline,
    nodes: NodeTimeline,
    pods: PodTimeline,
    events: EventLog,
    timers: Mapping[str, Any],
) -> dict[str, Any]:
    """The stages of one node loss (see the module docstring), in seconds after the last
    heartbeat, both as the watch saw them and by the server's timestamps, with the expected
    window and a verdict. `kill` is the client clock before and after `kubelab kill`;
    `victim_pods` the uids of the pods on `victim` when it was killed."""
    sent, done = kill
    renewals = [r for r in leases.renewals.get(victim, []) if r[1] <= done + 0.5]
    last_hb = renewals[-1] if renewals else None
    ref = last_hb[1] if last_hb else sent
    win = expected_windows(timers)
    node = nodes.nodes.get(victim, NodeTimes())
    notready = next((r for r in node.ready if r[0] >= sent and r[1] != "True"), None)
    taint_keys = (f"{UNREACHABLE_TAINT}:NoExecute", f"{NOT_READY_TAINT}:NoExecute")
    taints = [node.taints[k] for k in taint_keys if k in node.taints and node.taints[k][0] >= sent]
    taint = min(taints) if taints else None
    victims = [pods.pods[u] for u in victim_pods if u in pods.pods]
    n = len(victim_pods)
    evict_seen = [p.deleting_seen for p in victims]
    evict_server = [p.deletion_requested for p in victims]
    eviction_events = [
        e for e in events.events if e["reason"] == "TaintManagerEviction" and e["seen"] >= sent
    ]
    repl: list[PodTimes] = [
        p for p in pods.pods.values() if p.seen >= sent and p.uid not in set(victim_pods)
    ]
    repl.sort(key=lambda p: p.seen)
    repl = repl[:n]

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - ref, 3)

    def stage(
        key: str,
        label: str,
        seen: float | None,
        server: float | None,
        *,
        window: str | None,
        how: str,
    ) -> dict[str, Any]:
        lo, hi = win[window] if window else (0.0, 0.0)
        s, v = rel(seen), rel(server)
        return {
            "stage": key,
            "label": label,
            "seen_s": s,
            "server_s": v,
            "expected_s": [lo, hi] if window else None,
            "verdict": verdict(s if s is not None else v, lo, hi, stamp=s is None)
            if window
            else ("reference" if key == "last_heartbeat" else ""),
            "how": how,
        }

    stages = [
        stage(
            "last_heartbeat",
            "last heartbeat (Lease renewTime)",
            last_hb[0] if last_hb else None,
            last_hb[1] if last_hb else None,
            window=None,
            how=f"the last renewTime of Lease {NODE_LEASE_NS}/{victim} before the crash (the "
            "reference: every time is seconds after it)",
        ),
        stage(
            "crash",
            "node crash (kubelab kill returned)",
            done,
            None,
            window="crash",
            how="client clock when `kubelab kill` returned; the last renewal is at most one "
            "renew interval earlier",
        ),
        stage(
            "notready",
            "node Ready -> " + (notready[1] if notready else "Unknown"),
            notready[0] if notready else None,
            notready[2] if notready else None,
            window="notready",
            how="the Ready condition leaving True; server: its lastTransitionTime",
        ),
        stage(
            "taint",
            "NoExecute taint added",
            taint[0] if taint else None,
            taint[1] if taint else None,
            window="taint",
            how="the unreachable/not-ready NoExecute taint; server: its timeAdded",
        ),
        stage(
            "eviction_first",
            "eviction: first pod deleted",
            _first(evict_seen),
            _first(evict_server),
            window="eviction",
            how="a pod of the node with a deletionTimestamp; server: deletionTimestamp minus "
            "deletionGracePeriodSeconds",
        ),
        stage(
            "eviction_event",
            "TaintManagerEviction Event",
            eviction_events[0]["seen"] if eviction_events else None,
            eviction_events[0]["first"] if eviction_events else None,
            window="eviction",
            how="the first TaintManagerEviction Event; server: its firstTimestamp",
        ),
        stage(
            "eviction_all",
            "eviction: the pod deleted" if n == 1 else f"eviction: all {n} pods deleted",
            _last(evict_seen, n),
            _last(evict_server, n),
            window="eviction",
            how="the last of the node's pods to get a deletionTimestamp",
        ),
        stage(
            "replacements_created",
            f"replacements created ({len(repl)}/{n})",
            _last([p.seen for p in repl], n),
            _last([p.created for p in repl], n),
            window="replacement",
            how="the last replacement pod created; server: its creationTimestamp",
        ),
        stage(
            "replacements_scheduled",
            "replacements scheduled",
            _last([p.bound_seen for p in repl], n),
            _last([p.scheduled for p in repl], n),
            window="replacement",
            how="the last replacement with spec.nodeName; server: PodScheduled lastTransitionTime",
        ),
        stage(
            "replacements_running",
            "replacements Running",
            _last([p.running_seen for p in repl], n),
            None,
            window="replacement",
            how="the last replacement Running (watch only: the pod status carries no such stamp)",
        ),
    ]
    running = stages[-1]["seen_s"]
    lo, hi = win["replacement"]
    return {
        "victim": victim,
        "victim_pods": n,
        "replacement_nodes": sorted({p.node for p in repl if p.node}),
        "replacements_on_victim": sum(1 for p in repl if p.node == victim),
        "reference": "last heartbeat" if last_hb else "kill sent (no lease renewal was seen)",
        "last_heartbeat_epoch": ref,
        "kill_sent_s": round(sent - ref, 3),
        "stages": stages,
        "crash_to_running_s": None if running is None else round(running + ref - done, 3),
        "expected_crash_to_running_s": [round(lo - win["crash"][1], 3), hi],
        "verdict": stages[-1]["verdict"],
    }


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    timers: tuple[str, ...] = ("demo",)
    workers: int = 3
    replicas: int = 6
    masters: int = 3
    victim: str = "worker-1"
    quick: bool = False
    workdir: str | None = None

    @classmethod
    def quick_run(cls, **kw: Any) -> Params:
        return replace(cls(quick=True, replicas=3), **kw)


class RescheduleRun:
    def __init__(self, params: Params, profile: str, say: Say, root: Path) -> None:
        self.p = params
        self.profile = profile
        self.say = say
        self.root = root
        self.doc: dict[str, Any] = {"timers": profile}
        self.pods = PodTimeline()
        self.nodes = NodeTimeline()
        self.leases = LeaseTimeline()
        self.events = EventLog()

    def log(self, text: str) -> None:
        self.say(f"[reschedule {self.profile}] {text}")

    def run(self) -> dict[str, Any]:
        p = self.p
        octet = claim_octet(p.masters)
        cluster = FakeCluster(self.root / self.profile, octet, p.masters, self.profile, p.workers)
        t0 = time.monotonic()
        try:
            cluster.start(self.log)
            self.doc["cluster"] = cluster.describe() | {"workers": p.workers, "runtime": "fake"}
            self.doc["timers_effective"] = cluster.cfg.timers.to_dict()
            asyncio.run(self._measure(cluster))
        except (APIError, TimeoutError, OSError) as e:
            raise BenchError(f"the run failed: {type(e).__name__}: {e}") from None
        finally:
            self.log("stopping the cluster (kubelab down --purge)")
            cluster.stop(keep_logs=self.root / f"logs-{self.profile}" if self.p.workdir else None)
        self.doc["wall_seconds"] = round(time.monotonic() - t0, 1)
        return self.doc

    async def _measure(self, cluster: FakeCluster) -> None:
        p = self.p
        client = cluster.client()
        tasks: list[asyncio.Task[None]] = []
        try:
            await wait_nodes_ready(client, p.workers, 120.0, self.log)
            watches = [
                (PODS, NS, self.pods.on_event, f"{BENCH_LABEL}=reschedule"),
                (NODES, None, self.nodes.on_event, ""),
                (LEASES, NODE_LEASE_NS, self.leases.on_event, ""),
                (EVENTS, NS, self.events.on_event, ""),
            ]
            for res, ns, handler, sel in watches:
                synced = asyncio.Event()
                tasks.append(
                    asyncio.create_task(
                        observe(client, res, ns, handler, label_selector=sel, synced=synced)
                    )
                )
                await asyncio.wait_for(synced.wait(), 30)
            self.log(f"create a Deployment of {p.replicas} pods over {p.workers} fake nodes")
            await client.create(
                DEPLOYMENTS, NS, deployment_manifest("resched", p.replicas, "reschedule")
            )
            await self._wait(
                lambda: self.pods.count(lambda x: x.running) >= p.replicas,
                60.0,
                f"{p.replicas} pods Running",
            )
            victim = self._victim()
            on_victim = [x.uid for x in self.pods.pods.values() if x.live and x.node == victim]
            spread = dict(sorted(self._per_node().items()))
            self.doc["spread_before"] = spread
            win = expected_windows(self.doc["timers_effective"])
            total = win["replacement"]
            self.log(
                f"pods per node: {spread}; kill {victim} ({_pods(len(on_victim))}); expect the "
                f"replacements Running {total[0]:g}-{total[1]:g} s after its last heartbeat"
            )
            kill = await asyncio.to_thread(cluster.kill_worker, victim)
            await self._follow(victim, on_victim, kill, total[1] + 60.0)
            self.doc.update(
                extract_stages(
                    victim=victim,
                    kill=kill,
                    victim_pods=on_victim,
                    leases=self.leases,
                    nodes=self.nodes,
                    pods=self.pods,
                    events=self.events,
                    timers=self.doc["timers_effective"],
                )
            )
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, APIError):
                    await t
            await client.close()

    def _per_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for x in self.pods.pods.values():
            if x.live and x.node:
                counts[x.node] = counts.get(x.node, 0) + 1
        return counts

    def _victim(self) -> str:
        """`params.victim`, or the node with the most pods if it has none (said so)."""
        counts = self._per_node()
        if counts.get(self.p.victim):
            return self.p.victim
        if not counts:
            raise BenchError("no pod is bound to a node: nothing to reschedule")
        other = max(counts, key=lambda n: counts[n])
        self.log(f"note: {self.p.victim} runs none of the pods; killing {other} instead")
        return other

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise BenchError(f"not {what} within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def _follow(
        self, victim: str, on_victim: Sequence[str], kill: tuple[float, float], timeout: float
    ) -> None:
        """Until the victim's pods all have Running replacements elsewhere (or the
        deadline), printing each stage when it is first seen and a line every 15 s."""
        sent, done = kill
        n = len(on_victim)
        self.log(f"killed {victim} at t=0 (kubelab kill took {done - sent:.2f} s); following")
        announced: set[str] = set()
        last_line = time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            st = extract_stages(
                victim=victim,
                kill=kill,
                victim_pods=on_victim,
                leases=self.leases,
                nodes=self.nodes,
                pods=self.pods,
                events=self.events,
                timers=self.doc["timers_effective"],
            )
            for s in st["stages"]:
                if s["seen_s"] is not None and s["stage"] not in announced:
                    announced.add(s["stage"])
                    exp = s["expected_s"]
                    expect = f" (expected {exp[0]:g}-{exp[1]:g} s)" if exp else ""
                    if s["stage"] == "last_heartbeat":
                        self.log(f"{s['label']}: the reference (seen {s['seen_s']:.2f} s later)")
                    else:
                        self.log(
                            f"{s['label']}: {s['seen_s']:.2f} s after the last heartbeat{expect}"
                        )
            if st["stages"][-1]["seen_s"] is not None:
                return
            now = time.monotonic()
            if now > deadline:
                missing = [s["label"] for s in st["stages"] if s["seen_s"] is None]
                self.log(f"deadline: not seen after {timeout:g} s: {', '.join(missing)}")
                return
            if now - last_line >= 15.0:
                last_line = now
                nxt = next(s for s in st["stages"] if s["seen_s"] is None)
                running = self.pods.count(lambda x: x.running and x.seen >= sent)
                exp = nxt["expected_s"]
                eta = f" (expected {exp[0]:g}-{exp[1]:g} s after the last heartbeat)" if exp else ""
                self.log(
                    f"{time.time() - done:.0f} s after the crash: waiting for {nxt['label']}"
                    f"{eta}; {running}/{n} replacements Running"
                )
            await asyncio.sleep(0.1)


@dataclass
class Outcome:
    doc: dict[str, Any]
    failed: bool = False


def run_reschedule(params: Params, say: Say) -> Outcome:
    """Every profile of `params`, one cluster each, one after the other."""
    own_tmp = params.workdir is None
    root = (
        Path(params.workdir)
        if params.workdir
        else Path(tempfile.mkdtemp(prefix="kubelab-bench-reschedule-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    doc: dict[str, Any] = {
        "benchmark": "reschedule",
        "format": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": asdict(params),
        "machine": machine_info(root),
        "runs": [],
    }
    out = Outcome(doc)
    try:
        for profile in params.timers:
            try:
                run = RescheduleRun(params, profile, say, root).run()
            except BenchError as e:
                say(f"[reschedule {profile}] failed: {e}")
                doc["runs"].append({"timers": profile, "error": str(e)})
                out.failed = True
                continue
            doc["runs"].append(run)
            if run.get("crash_to_running_s") is None:
                out.failed = True
    finally:
        doc["busy_at_end"] = other_activity(root)
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)
    return out


# -- output ----------------------------------------------------------------------------------------


def _pods(n: object) -> str:
    return f"{n} pod" if n == 1 else f"{n} pods"


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def render_run(run: Mapping[str, Any]) -> str:
    t = run.get("timers_effective") or {}
    title = (
        f"reschedule benchmark, {run.get('timers')} timers (lease renew "
        f"{t.get('node_lease_renew_s')} s, node-monitor period {t.get('node_monitor_period_s')} "
        f"s, grace {t.get('node_monitor_grace_s')} s, toleration {t.get('toleration_s')} s, "
        f"eviction rate {t.get('node_eviction_rate')} node/s)"
    )
    if "error" in run:
        return f"{title}\nfailed: {run['error']}"
    spread = run.get("spread_before") or {}
    sub = (
        f"{sum(spread.values())} pods on {len(spread)} fake nodes {spread}; crash of "
        f"{run.get('victim')} ({_pods(run.get('victim_pods'))}); seconds after its last heartbeat"
    )
    rows = []
    for s in run.get("stages") or []:
        exp = s.get("expected_s")
        rows.append(
            [
                s["label"],
                "-"
                if not exp
                else (f"{exp[0]:g}" if exp[0] == exp[1] else f"{exp[0]:g}-{exp[1]:g}"),
                _s(s.get("seen_s")),
                _s(s.get("server_s")),
                s.get("verdict") or "",
            ]
        )
    out = [title, sub, table(["stage", "expected", "watch", "server", "verdict"], rows)]
    lo, hi = run.get("expected_crash_to_running_s") or (None, None)
    total = run.get("crash_to_running_s")
    out.append(
        f"node crash -> all replacements Running: {_s(total)} s (expected about "
        f"{lo:g}-{hi:g} s); replacements on {', '.join(run.get('replacement_nodes') or []) or '-'}"
        if lo is not None and hi is not None
        else f"node crash -> all replacements Running: {_s(total)} s"
    )
    out.append(
        "watch: client clock when the watch showed the change (ms); server: the object's own "
        "timestamp (whole seconds, except the Lease's renewTime)"
    )
    return "\n".join(out)


def render_reschedule(doc: Mapping[str, Any]) -> str:
    return "\n\n".join(render_run(r) for r in doc.get("runs") or [])
