"""`kubelab bench scale`: many pods on many fake nodes, through the whole control plane.

The benchmark starts its own throwaway cluster (N masters, W fake workers hosted by one
`fakenodes` process) on a free loopback subnet 127.80-89.0.0/16 with its data in a temporary
work directory, and removes it afterwards (`kubelab down --purge`), also on Ctrl-C or SIGTERM.
Then:

1. wait until the W nodes are Ready; read every master's `/status`, `/metrics`, CPU time,
   and the scheduler and controller-manager Leases ("before");
2. watch the benchmark's pods (list + watch, client clock on every event), start a probe
   client that updates one ConfigMap every 50 ms, and create the Deployments
   (`pods / per_deployment` of them, e.g. 30 x 100 replicas of a fake image) through the
   gRPC resource API, one after the other, from t0 = just before the first create;
3. wait until every pod is Running (or the deadline), printing progress;
4. read the masters again ("after") and their peak RSS (`VmHWM` of each master's pid, the
   pids from `kubelab status --json`).

Figures (every one in the JSON, with how it was obtained):
- **time until all pods Running**, from t0;
- **scheduler throughput**: binds per second, from the watch's first sight of each pod with
  `spec.nodeName` (client clock, ms resolution): the average while binding (first to last
  bind) and the peak over any 1 s window; cross-checked with the pods' `PodScheduled`
  `lastTransitionTime` (server clock, 1 s resolution: peak is a per-second count);
- **mutating API calls**: latency of the benchmark's own Deployment creates and of the
  probe's ConfigMap updates (client round trips, p50/p99), and every master's
  `kubelab_proposal_commit_seconds` histogram over the run (every write of every client:
  scheduler binds, controllers, fake kubelets; quantiles interpolated within buckets);
- **peak RSS per master** and CPU seconds during the run;
- **elections without a fault**: Raft term and each member's `leader_changes` (`/status`)
  before and after; the Leases' `leaseTransitions` tell whether the scheduler or the
  controller-manager changed hands.

Targets (issue 6): scheduler >= 100 pods/s (kube-scheduler's reference figure), p99 of
mutating calls <= 1 s (the Kubernetes API SLO), peak RSS <= 200 MB per master, 0 elections.
A miss is printed and saved as a miss, with the per-step profile that explains it.

The pieces shared with `bench reschedule` (the fake-node cluster, list+watch observers, the
pod timeline, /proc readings) live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any

from controlplane.client.resources import ResourceClient
from controlplane.config import admin_token, load_config
from controlplane.kube.errors import APIError
from controlplane.kube.resources import CONFIGMAPS, DEPLOYMENTS, LEASES, NODES, PODS, Resource
from controlplane.kube.storage import parse_rfc3339
from controlplane.procs import FAKENODES, cluster_table

from . import stats
from .machine import machine_info, other_activity
from .probes import Samples, counter_delta, hist_delta, http_get, proc_cpu_seconds, scrape
from .report import table
from .systems import BenchError, KubelabCluster, _bindable, kubelab_toml

__all__ = [
    "BENCH_OCTETS",
    "FakeCluster",
    "NodeTimeline",
    "NodeTimes",
    "Params",
    "PodTimeline",
    "PodTimes",
    "bucket_quantile",
    "claim_octet",
    "deployment_manifest",
    "deployment_sizes",
    "hist_buckets",
    "observe",
    "peak_in_window",
    "per_second_peak",
    "rate_summary",
    "render_scale",
    "run_scale",
    "targets",
    "timeline_svg",
    "vm_status_mb",
]

Say = Callable[[str], None]
Obj = dict[str, Any]

BENCH_OCTETS = range(80, 90)
"""127.C.0.0/16 subnets of the scale and reschedule benchmarks (quorum uses 90-95, tests
60-79)."""

NS = "default"
BENCH_LABEL = "kubelab-bench"
FAKE_IMAGE = "kubelab/busybox:latest"
"""Any image does for fake nodes (nothing runs); the one the examples use."""

COMMIT_HIST = "kubelab_proposal_commit_seconds"
LOOP_LAG_HIST = "kubelab_event_loop_lag_seconds"
TARGET_PODS_PER_S = 100.0
TARGET_P99_MS = 1000.0
TARGET_RSS_MB = 200.0


# -- pure pieces: sizes, manifests, rates, histograms -------------------------------------------


def deployment_sizes(pods: int, per_deployment: int) -> list[int]:
    """Replica counts of the Deployments that make `pods` pods, each at most
    `per_deployment`, as even as possible (3000/100 -> 30 x 100; 250/100 -> 84, 83, 83)."""
    if pods < 1 or per_deployment < 1:
        raise ValueError(f"pods and per_deployment must be >= 1 (got {pods}, {per_deployment})")
    n = -(-pods // per_deployment)
    base, extra = divmod(pods, n)
    return [base + 1 if i < extra else base for i in range(n)]


def deployment_manifest(name: str, replicas: int, bench: str, image: str = FAKE_IMAGE) -> Obj:
    """A Deployment of `replicas` fake pods labelled `kubelab-bench=<bench>`, with small
    requests (so the resources filter runs without limiting 30 pods on a 2-CPU node)."""
    labels = {"app": name, BENCH_LABEL: bench}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
                        }
                    ],
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }


def peak_in_window(times: Iterable[float], width: float = 1.0) -> int:
    """The most events in any half-open window [t, t + width) (a sliding window)."""
    ts = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def rate_summary(times: Sequence[float], t0: float | None = None) -> dict[str, Any]:
    """How fast events (binds, say) came: count, first and last (seconds after `t0` when
    given), the average rate between the first and the last, and the peak 1 s window."""
    if not times:
        return {"count": 0}
    ts = sorted(times)
    span = ts[-1] - ts[0]
    base = t0 if t0 is not None else ts[0]
    out: dict[str, Any] = {
        "count": len(ts),
        "first_s": round(ts[0] - base, 3),
        "last_s": round(ts[-1] - base, 3),
        "span_s": round(span, 3),
        "average_per_s": round((len(ts) - 1) / span, 1) if span > 0 else None,
        "peak_1s_per_s": peak_in_window(ts, 1.0),
    }
    if t0 is not None and ts[-1] > t0:
        out["overall_per_s"] = round(len(ts) / (ts[-1] - t0), 1)
    return out


def per_second_peak(stamps: Sequence[float]) -> dict[str, Any]:
    """Rates from whole-second timestamps (metav1.Time): the busiest second's count, and
    the average over the seconds from the first to the last (both ends counted)."""
    if not stamps:
        return {"count": 0}
    secs = [math.floor(s) for s in stamps]
    counts: dict[int, int] = {}
    for s in secs:
        counts[s] = counts.get(s, 0) + 1
    seconds = max(secs) - min(secs) + 1
    return {
        "count": len(secs),
        "seconds": seconds,
        "average_per_s": round(len(secs) / seconds, 1),
        "peak_second_count": max(counts.values()),
    }


def max_concurrent(intervals: Iterable[tuple[float, float | None]]) -> int:
    """The most intervals open at once (`None` end: still open); [start, end)."""
    edges: list[tuple[float, int]] = []
    for start, end in intervals:
        edges.append((start, 1))
        if end is not None:
            edges.append((end, -1))
    edges.sort(key=lambda e: (e[0], e[1]))  # an end at t closes before a start at t opens
    cur = best = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def hist_buckets(samples: Samples | None, base: str) -> list[tuple[float, float]]:
    """The cumulative buckets `(le, count)` of Prometheus histogram `base`, by `le`."""
    if samples is None:
        return []
    prefix = f'{base}_bucket{{le="'
    out = []
    for key, value in samples.items():
        if key.startswith(prefix) and key.endswith('"}'):
            le = key[len(prefix) : -2]
            out.append((math.inf if le == "+Inf" else float(le), value))
    return sorted(out)


def bucket_delta(
    before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """What each cumulative bucket counted between two scrapes (absent before: from 0)."""
    old = dict(before)
    return [(le, c - old.get(le, 0.0)) for le, c in after]


def bucket_quantile(buckets: Sequence[tuple[float, float]], q: float) -> tuple[float, bool] | None:
    """Prometheus' `histogram_quantile`: quantile `q` (0-1) of cumulative `buckets`,
    interpolated linearly within its bucket. Returns (seconds, above): `above` when the
    quantile falls in the +Inf bucket, and the value is then the highest finite bound (a
    lower bound). None with no observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank and c > prev_c:
            if math.isinf(le):
                return prev_le, True
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c), False
        prev_le, prev_c = (le if not math.isinf(le) else prev_le), c
    return prev_le, True


def hist_summary(before: Samples | None, after: Samples | None, base: str) -> dict[str, Any] | None:
    """Count, mean and interpolated p50/p99 (ms) of histogram `base` between two scrapes."""
    return merged_hist_summary([(before, after)], base)


def merged_hist_summary(
    scrapes: Sequence[tuple[Samples | None, Samples | None]], base: str
) -> dict[str, Any] | None:
    """`hist_summary` of several processes' histograms `base` taken together (each a pair
    of scrapes, before and after): their observations summed, bucket by bucket."""
    count = sum_s = 0.0
    merged: dict[float, float] = {}
    seen = False
    for before, after in scrapes:
        h = hist_delta(before, after, base)
        if h is None:
            continue
        seen = True
        count += h.count
        sum_s += h.sum_s
        for le, c in bucket_delta(hist_buckets(before, base), hist_buckets(after, base)):
            merged[le] = merged.get(le, 0.0) + c
    if not seen:
        return None
    mean = round(sum_s / count * 1000, 3) if count > 0 else None
    out: dict[str, Any] = {"metric": base, "count": int(count), "mean_ms": mean}
    buckets = sorted(merged.items())
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        got = bucket_quantile(buckets, q)
        out[f"{name}_ms"] = None if got is None else round(got[0] * 1000, 3)
        if got is not None and got[1]:
            out[f"{name}_above_last_bucket"] = True
    return out


def vm_status_mb(pid: int | None) -> dict[str, float] | None:
    """`VmHWM` (peak resident set) and `VmRSS` of process `pid` in MB (1 MB = 2^20 bytes),
    from /proc/<pid>/status; None if the process is gone."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            kb = int(rest.split()[0])
            out["peak_mb" if key == "VmHWM" else "rss_mb"] = round(kb / 1024, 1)
    return out or None


# -- the pod timeline -----------------------------------------------------------------------------


@dataclass
class PodTimes:
    """What was seen of one pod. `*_seen`: the client's clock (`time.time()`) when the
    watch first showed the state; the others are the server's timestamps (whole seconds)."""

    name: str
    uid: str
    app: str
    seen: float
    created: float | None = None
    """metadata.creationTimestamp."""
    node: str | None = None
    bound_seen: float | None = None
    scheduled: float | None = None
    """PodScheduled lastTransitionTime."""
    running_seen: float | None = None
    deleting_seen: float | None = None
    deletion_requested: float | None = None
    """deletionTimestamp minus deletionGracePeriodSeconds: when the DELETE was accepted."""
    gone_seen: float | None = None

    @property
    def live(self) -> bool:
        return self.deleting_seen is None and self.gone_seen is None

    @property
    def running(self) -> bool:
        return self.running_seen is not None and self.live


def _condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


class PodTimeline:
    """Per-pod first sightings, fed with watch events (`on_event(type, pod, at)`)."""

    def __init__(self) -> None:
        self.pods: dict[str, PodTimes] = {}

    def on_event(self, kind: str, pod: Obj, at: float) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name") or "")
        if not uid:
            return
        p = self.pods.get(uid)
        if p is None:
            labels = meta.get("labels") or {}
            p = self.pods[uid] = PodTimes(
                name=str(meta.get("name") or ""),
                uid=uid,
                app=str(labels.get("app") or ""),
                seen=at,
                created=parse_rfc3339(meta.get("creationTimestamp")),
            )
        if kind == "DELETED":
            p.gone_seen = p.gone_seen or at
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node and p.bound_seen is None:
            p.node, p.bound_seen = str(node), at
        if p.scheduled is None:
            cond = _condition(pod, "PodScheduled")
            if cond is not None and cond.get("status") == "True":
                p.scheduled = parse_rfc3339(cond.get("lastTransitionTime"))
        if p.running_seen is None and (pod.get("status") or {}).get("phase") == "Running":
            p.running_seen = at
        if p.deleting_seen is None and meta.get("deletionTimestamp"):
            p.deleting_seen = at
            ts = parse_rfc3339(meta.get("deletionTimestamp"))
            grace = meta.get("deletionGracePeriodSeconds") or 0
            if ts is not None and isinstance(grace, int | float):
                p.deletion_requested = ts - grace

    def count(self, pred: Callable[[PodTimes], bool]) -> int:
        return sum(1 for p in self.pods.values() if pred(p))

    def select(self, pred: Callable[[PodTimes], bool]) -> list[PodTimes]:
        return [p for p in self.pods.values() if pred(p)]


@dataclass
class NodeTimes:
    ready: list[tuple[float, str, float | None]] = field(default_factory=list)
    """[(seen, status, lastTransitionTime)], one entry per change of the Ready status."""
    taints: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    """"key:effect" -> (first seen, timeAdded)."""


class NodeTimeline:
    """Ready transitions and taints of every node, as the watch showed them."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeTimes] = {}

    def on_event(self, kind: str, node: Obj, at: float) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        if not name or kind == "DELETED":
            return
        n = self.nodes.setdefault(name, NodeTimes())
        for c in (node.get("status") or {}).get("conditions") or []:
            if isinstance(c, dict) and c.get("type") == "Ready":
                status = str(c.get("status"))
                if not n.ready or n.ready[-1][1] != status:
                    n.ready.append((at, status, parse_rfc3339(c.get("lastTransitionTime"))))
        current = set()
        for t in (node.get("spec") or {}).get("taints") or []:
            if not isinstance(t, dict):
                continue
            key = f"{t.get('key')}:{t.get('effect')}"
            current.add(key)
            if key not in n.taints:
                n.taints[key] = (at, parse_rfc3339(t.get("timeAdded")))
        for gone in set(n.taints) - current:  # removed: a later one is a new taint
            del n.taints[gone]


# -- observing a resource: list, then watch (client clock on every event) -------------------------


async def observe(
    client: ResourceClient,
    res: Resource,
    namespace: str | None,
    on_event: Callable[[str, Obj, float], None],
    *,
    label_selector: str = "",
    synced: asyncio.Event | None = None,
) -> None:
    """Call `on_event(type, object, time.time())` for every object listed, then for every
    watch event, until cancelled. A watch that ends is resumed from the last version; an
    ERROR (compaction) or a watch that cannot resume lists again (objects listed again come
    as "ADDED": handlers keep first sightings, so that is harmless)."""
    while True:
        try:
            listed = await client.list(res, namespace, label_selector=label_selector)
        except APIError:
            await asyncio.sleep(0.2)
            continue
        at = time.time()
        for item in listed.get("items") or []:
            on_event("ADDED", item, at)
        rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        if synced is not None:
            synced.set()
        relist = False
        while not relist:
            try:
                async for ev in client.watch(
                    res, namespace, resource_version=rv, label_selector=label_selector
                ):
                    at = time.time()
                    if ev.type == "ERROR":
                        relist = True
                        break
                    version = (ev.object.get("metadata") or {}).get("resourceVersion")
                    if version:
                        rv = str(version)
                    if ev.type != "BOOKMARK":
                        on_event(ev.type, ev.object, at)
                else:
                    await asyncio.sleep(0.05)  # the server ended the stream: watch again
            except APIError:
                relist = True
                await asyncio.sleep(0.2)


# -- the cluster: masters + fake workers, on a subnet of our own ----------------------------------


def claim_octet(masters: int, avoid: Iterable[int] = ()) -> int:
    """A C in `BENCH_OCTETS` whose front door and master addresses can be bound now."""
    skip = set(avoid)
    for c in BENCH_OCTETS:
        if c in skip:
            continue
        addrs = [(f"127.{c}.0.1", 6443)]
        addrs += [(f"127.{c}.0.{10 + i}", p) for i in range(1, masters + 1) for p in (2379, 2380)]
        addrs += [(f"127.{c}.0.{10 + i}", p) for i in range(1, masters + 1) for p in (2381, 6443)]
        if all(_bindable(ip, port) for ip, port in addrs):
            return c
    raise BenchError(
        f"no free subnet 127.C.0.0/16 with C in {BENCH_OCTETS.start}-{BENCH_OCTETS.stop - 1}: "
        "other processes hold their ports (`ss -ltnp | grep ':238[01]'`); is another "
        "benchmark running?"
    )


def fake_cluster_toml(
    name: str, octet: int, data_dir: Path, *, masters: int, timers: str, workers: int
) -> str:
    text = kubelab_toml(name, octet, data_dir, masters, timers)
    return text + "".join(
        f'\n[[workers]]\nname = "worker-{i}"\nruntime = "fake"\n'
        'capacity = { cpu = "2", memory = "4Gi", pods = 110 }\n'
        for i in range(1, workers + 1)
    )


class FakeCluster(KubelabCluster):
    """A kubelab cluster with `workers` fake workers, driven through the `kubelab` command
    like `bench quorum`'s; `stop()` stops everything and purges the data dir."""

    system = "kubelab"

    def __init__(self, workdir: Path, octet: int, masters: int, timers: str, workers: int) -> None:
        super().__init__(workdir, octet, masters, timers)
        self.workers = workers
        self.config_file.write_text(
            fake_cluster_toml(
                f"bench{octet}",
                octet,
                self.data_dir,
                masters=masters,
                timers=timers,
                workers=workers,
            )
        )
        self.cfg = load_config(self.config_file)

    def start(self, say: Say) -> None:
        ips = f"{self.members[0].ip}-{self.members[-1].ip.rsplit('.', 1)[1]}"
        say(
            f"starting kubelab: `kubelab up`, {len(self.members)} masters on {ips}, "
            f"{self.workers} fake workers, {self.timers} timers"
        )
        self._started = True
        self._check(self.cli("up", "--timeout", "120", timeout=600), "up")
        self.cfg = load_config(self.cfg.stored_config)
        self.metadata = (("authorization", f"Bearer {admin_token(self.cfg)}"),)

    def stop(self, keep_logs: Path | None = None) -> None:
        """Stop every process, copy the logs to `keep_logs` (if given), purge the data."""
        if not self._started:
            return
        super().stop()  # `down`, then whatever it could not stop
        if keep_logs is not None and self.data_dir.is_dir():
            keep_logs.mkdir(parents=True, exist_ok=True)
            for log in self.data_dir.rglob("*.log"):
                rel = log.relative_to(self.data_dir)
                with contextlib.suppress(OSError):
                    shutil.copyfile(log, keep_logs / "-".join(rel.parts))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.cli("down", "--purge", timeout=60)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self, *, timeout: float = 10.0) -> ResourceClient:
        endpoints = [m.endpoint for m in self.members]
        return ResourceClient(endpoints, admin_token(self.cfg), timeout=timeout, retry_for=30.0)

    def kill_worker(self, name: str) -> tuple[float, float]:
        """`kubelab kill NAME` (a node crash); the client clock before and after."""
        t0 = time.time()
        self._check(self.cli("kill", name, timeout=60), f"kill {name}")
        return t0, time.time()

    def status_json(self) -> dict[str, Any]:
        proc = self.cli("status", "--json", timeout=30)
        self._check(proc, "status --json")
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise BenchError(
                f"`kubelab status --json` printed no JSON: {proc.stdout[:200]!r}"
            ) from None
        if not isinstance(doc, dict):
            raise BenchError("`kubelab status --json` printed no JSON object")
        return doc

    def master_pids(self) -> dict[str, int | None]:
        """Each master's pid, from `kubelab status --json`."""
        doc = self.status_json()
        out: dict[str, int | None] = {}
        for m in doc.get("masters") or []:
            pid = m.get("pid")
            out[str(m.get("name"))] = pid if isinstance(pid, int) else None
        return out

    def fakenodes_pid(self) -> int | None:
        rec = cluster_table(self.cfg).find(FAKENODES)
        return rec.pid if rec else None


# -- readings of the masters: before and after -----------------------------------------------------


@dataclass
class Reading:
    """Every master's /status and /metrics, CPU time, the leader-election Leases."""

    at: float
    status: dict[str, Obj | None]
    metrics: dict[str, Samples | None]
    cpu: dict[str, float | None]
    leases: dict[str, Obj | None]


LEADER_LEASES = ("kube-scheduler", "kube-controller-manager")


def _status_doc(url: str) -> Obj | None:
    got = http_get(url, 2.0)
    if got is None or got[0] != 200:
        return None
    try:
        doc = json.loads(got[1])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def read_masters(
    cluster: FakeCluster, client: ResourceClient, pids: Mapping[str, int | None]
) -> Reading:
    names = [m.name for m in cluster.members]
    statuses = await asyncio.gather(
        *(
            asyncio.to_thread(_status_doc, f"http://{m.ip}:{m.health_port}/status")
            for m in cluster.members
        )
    )
    pages = await asyncio.gather(
        *(asyncio.to_thread(scrape, m.metrics_url, 2.0) for m in cluster.members)
    )
    leases: dict[str, Obj | None] = {}
    for name in LEADER_LEASES:
        try:
            lease = await client.get(LEASES, "kube-system", name)
        except APIError:
            lease = None
        leases[name] = (lease or {}).get("spec") if lease else None
    return Reading(
        at=time.time(),
        status=dict(zip(names, statuses, strict=True)),
        metrics=dict(zip(names, pages, strict=True)),
        cpu={n: proc_cpu_seconds(pids.get(n)) for n in names},
        leases=leases,
    )


def elections_doc(before: Reading, after: Reading) -> dict[str, Any]:
    """Elections between two readings: the term's growth, each member's leader changes,
    and hand-overs of the scheduler and controller-manager Leases."""

    def terms(r: Reading) -> list[int]:
        return [int(s["term"]) for s in r.status.values() if s and isinstance(s.get("term"), int)]

    first, last = max(terms(before), default=None), max(terms(after), default=None)
    changes: dict[str, int | None] = {}
    for name, s in after.status.items():
        b = before.status.get(name)
        if s and b and isinstance(s.get("leader_changes"), int):
            changes[name] = int(s["leader_changes"]) - int(b.get("leader_changes") or 0)
        else:
            changes[name] = None
    lease_changes: dict[str, Any] = {}
    for name in LEADER_LEASES:
        b, a = before.leases.get(name) or {}, after.leases.get(name) or {}
        lease_changes[name] = {
            "holder_before": b.get("holderIdentity"),
            "holder_after": a.get("holderIdentity"),
            "transitions": (
                int(a["leaseTransitions"]) - int(b.get("leaseTransitions") or 0)
                if isinstance(a.get("leaseTransitions"), int)
                else None
            ),
        }
    term_growth = last - first if first is not None and last is not None else None
    known = [c for c in changes.values() if c is not None]
    count = max([term_growth or 0, *known]) if term_growth is not None or known else None
    return {
        "count": count,
        "term_first": first,
        "term_last": last,
        "leader_changes": changes,
        "leader_leases": lease_changes,
        "how": "Raft term growth (highest term over the masters' /status) and each member's "
        "leader_changes between the readings before the first create and after the last pod "
        "Running; count = the larger. Lease transitions are the scheduler's and "
        "controller-manager's own elections.",
    }


def masters_doc(
    before: Reading,
    after: Reading,
    pids: Mapping[str, int | None],
    rss: Mapping[str, dict[str, float] | None],
) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    seconds = after.at - before.at
    for name in before.status:
        s = after.status.get(name) or before.status.get(name) or {}
        cb, ca = before.cpu.get(name), after.cpu.get(name)
        cpu = round(ca - cb, 2) if ca is not None and cb is not None else None
        b, a = before.metrics.get(name), after.metrics.get(name)
        applied = counter_delta(b, a, 'kubelab_proposals_total{outcome="applied"}')
        if applied is None and a is not None:
            applied = 0.0  # a counter with labels appears with its first observation
        out[name] = {
            "pid": pids.get(name),
            "role": s.get("role"),
            "rss": rss.get(name),
            "cpu_s": cpu,
            "cpu_percent": round(cpu / seconds * 100, 1) if cpu is not None and seconds else None,
            "proposals": None if applied is None else int(applied),
            "commit": hist_summary(b, a, COMMIT_HIST),
            "loop_lag": hist_summary(b, a, LOOP_LAG_HIST),
            "holds": lease_holders(after, name),
        }
    return out


def lease_holders(reading: Reading, master: str) -> list[str]:
    """The leader-election Leases `master` holds (identities are `<master>_<uuid>`)."""
    return [
        lease
        for lease, spec in reading.leases.items()
        if str((spec or {}).get("holderIdentity") or "").split("_", 1)[0] == master
    ]


# -- the probe: one ConfigMap updated every 50 ms --------------------------------------------------


@dataclass
class Probe:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


async def probe_writes(client: ResourceClient, name: str, every: float, probe: Probe) -> None:
    """Update ConfigMap `name` every `every` seconds (or right after a slower update) until
    cancelled, recording each round trip. A 409 (someone else wrote it: nobody should)
    rereads it."""
    cm: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
    cm = await client.create(CONFIGMAPS, NS, cm)
    n = 0
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        next_at += every
        n += 1
        cm["data"] = {"n": str(n)}
        t = time.perf_counter()
        try:
            cm = await client.update(CONFIGMAPS, NS, cm)
            probe.latencies.append(time.perf_counter() - t)
        except APIError as e:
            key = f"{e.code} {e.reason}"
            probe.errors[key] = probe.errors.get(key, 0) + 1
            with contextlib.suppress(APIError):
                cm = await client.get(CONFIGMAPS, NS, name)
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at = max(next_at, loop.time() - every)


# -- parameters, and the run --------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """What to run. `quick` is the CI smoke size: 5 workers, 100 pods."""

    workers: int = 100
    pods: int = 3000
    masters: int = 3
    timers: str = "demo"
    per_deployment: int = 100
    probe_every_s: float = 0.05
    timeout_s: float = 600.0
    """How long to wait for every pod to be Running (from the first create)."""
    quick: bool = False
    workdir: str | None = None
    """Where the cluster keeps its data (kept afterwards); None: a temporary directory."""

    @classmethod
    def quick_run(cls, **kw: Any) -> Params:
        return replace(cls(quick=True, workers=5, pods=100, per_deployment=50, timeout_s=120), **kw)


@dataclass
class Outcome:
    doc: dict[str, Any]
    failed: bool = False
    series: dict[str, list[float]] = field(default_factory=dict)
    """Seconds after t0 of each pod's creation, bind and Running (for the SVG)."""


def _nodes_ready(nodes: Sequence[Obj]) -> int:
    return sum(
        1
        for n in nodes
        if (_condition(n, "Ready") or {}).get("status") == "True"
        and not (n.get("spec") or {}).get("unschedulable")
    )


async def wait_nodes_ready(client: ResourceClient, count: int, timeout: float, say: Say) -> None:
    """Wait until `count` nodes are Ready (`up` should have waited already)."""
    deadline = time.monotonic() + timeout
    ready, told = 0, False
    while time.monotonic() < deadline:
        with contextlib.suppress(APIError):
            ready = _nodes_ready((await client.list(NODES)).get("items") or [])
            if ready >= count:
                return
        if not told:
            say(f"waiting for {count} fake nodes to be Ready ({ready} now)")
            told = True
        await asyncio.sleep(0.5)
    raise BenchError(f"only {ready} of {count} fake nodes Ready after {timeout:g} s")


async def create_all(
    client: ResourceClient, sizes: Sequence[int], bench: str, prefix: str
) -> list[dict[str, Any]]:
    """Create the Deployments one after the other; their names, sizes, ack times, latencies."""
    out = []
    for i, n in enumerate(sizes):
        name = f"{prefix}-{i:03d}"
        t = time.perf_counter()
        await client.create(DEPLOYMENTS, NS, deployment_manifest(name, n, bench))
        lat = time.perf_counter() - t
        out.append({"name": name, "replicas": n, "acked": time.time(), "latency_s": lat})
    return out


class ScaleRun:
    def __init__(self, params: Params, say: Say, root: Path) -> None:
        self.p = params
        self.say = say
        self.root = root
        self.sizes = deployment_sizes(params.pods, params.per_deployment)
        self.doc: dict[str, Any] = {}
        self.timeline = PodTimeline()
        self.nodes = NodeTimeline()
        self.series: dict[str, list[float]] = {}

    def progress(self, n: int, text: str) -> None:
        self.say(f"[scale] step {n}/4: {text}")

    def run(self) -> dict[str, Any]:
        p = self.p
        octet = claim_octet(p.masters)
        cluster = FakeCluster(self.root / "cluster", octet, p.masters, p.timers, p.workers)
        t0 = time.monotonic()
        try:
            self.progress(1, "start the cluster")
            cluster.start(lambda s: self.say(f"[scale]   {s}"))
            self.doc["cluster"] = cluster.describe() | {"workers": p.workers, "runtime": "fake"}
            asyncio.run(self._measure(cluster))
        except (APIError, TimeoutError, OSError) as e:
            raise BenchError(f"the run failed: {type(e).__name__}: {e}") from None
        finally:
            self.say("[scale] stopping the cluster (kubelab down --purge)")
            cluster.stop(keep_logs=self.root / "logs" if self.p.workdir else None)
        self.doc["wall_seconds"] = round(time.monotonic() - t0, 1)
        return self.doc

    async def _measure(self, cluster: FakeCluster) -> None:
        p = self.p
        client = cluster.client()
        probe_client = cluster.client()
        tasks: list[asyncio.Task[None]] = []
        try:
            await wait_nodes_ready(client, p.workers, 120.0, lambda t: self.say(f"[scale]   {t}"))
            pids = await asyncio.to_thread(cluster.master_pids)
            synced = asyncio.Event()
            tasks.append(
                asyncio.create_task(
                    observe(
                        client,
                        PODS,
                        NS,
                        self.timeline.on_event,
                        label_selector=f"{BENCH_LABEL}=scale",
                        synced=synced,
                    )
                )
            )
            await asyncio.wait_for(synced.wait(), 30)
            nodes_synced = asyncio.Event()
            tasks.append(
                asyncio.create_task(
                    observe(client, NODES, None, self.nodes.on_event, synced=nodes_synced)
                )
            )
            await asyncio.wait_for(nodes_synced.wait(), 30)
            before = await read_masters(cluster, client, pids)
            fake_pid = cluster.fakenodes_pid()
            fake_cpu, client_cpu = proc_cpu_seconds(fake_pid), time.process_time()
            probe = Probe()
            tasks.append(
                asyncio.create_task(
                    probe_writes(probe_client, "bench-probe", p.probe_every_s, probe)
                )
            )
            deps = len(self.sizes)
            self.progress(
                2,
                f"create {deps} Deployments ({p.pods} pods) on {p.workers} fake nodes; a probe "
                f"updates a ConfigMap every {p.probe_every_s * 1000:g} ms",
            )
            t0 = time.time()
            created = await create_all(client, self.sizes, "scale", "scale")
            self.say(
                f"[scale]   {deps} creates in {time.time() - t0:.2f} s; "
                f"p99 {stats.summarize_latencies([c['latency_s'] for c in created])['p99_ms']} ms"
            )
            self.progress(3, f"wait until {p.pods} pods are Running (at most {p.timeout_s:g} s)")
            done_at = await self._wait_running(t0)
            probe_task = tasks.pop()
            probe_task.cancel()
            try:
                await probe_task
            except asyncio.CancelledError:
                pass
            except APIError as e:  # the probe could not even create its ConfigMap
                probe.errors[f"{e.code} {e.reason}"] = (
                    probe.errors.get(f"{e.code} {e.reason}", 0) + 1
                )
            self.progress(4, "read the masters (metrics, status, peak RSS)")
            after = await read_masters(cluster, client, pids)
            rss = {name: vm_status_mb(pid) for name, pid in pids.items()}
            fake_after = proc_cpu_seconds(fake_pid)
            fake = {
                "pid": fake_pid,
                "rss": vm_status_mb(fake_pid),
                "cpu_s": round(fake_after - fake_cpu, 2)
                if fake_after is not None and fake_cpu is not None
                else None,
            }
            client_cpu = round(time.process_time() - client_cpu, 2)
            self.doc["result"] = self._result(
                t0,
                done_at,
                created=created,
                probe=probe,
                before=before,
                after=after,
                pids=pids,
                rss=rss,
            )
            self.doc["result"]["fakenodes"] = fake
            self.doc["result"]["client_cpu_s"] = client_cpu
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, APIError):
                    await t
            await client.close()
            await probe_client.close()

    async def _wait_running(self, t0: float) -> float | None:
        """Until every pod is Running (returns when: the client clock) or the deadline."""
        p, tl = self.p, self.timeline
        deadline = t0 + p.timeout_s
        last_print = 0.0
        every = 2.0 if p.quick else 5.0
        while True:
            running = tl.count(lambda x: x.running)
            now = time.time()
            if running >= p.pods:
                done = max(x.running_seen or 0.0 for x in tl.pods.values() if x.running)
                self.say(f"[scale]   all {p.pods} pods Running at t0+{done - t0:.2f} s")
                return done
            if now - last_print >= every:
                last_print = now
                self.say(
                    f"[scale]   t0+{now - t0:5.1f} s: {len(tl.pods)} pods created, "
                    f"{tl.count(lambda x: x.bound_seen is not None)} bound, {running} Running"
                )
            if now > deadline:
                self.say(
                    f"[scale]   deadline: {running} of {p.pods} pods Running after "
                    f"{p.timeout_s:g} s"
                )
                return None
            await asyncio.sleep(0.1)

    def _result(
        self,
        t0: float,
        done_at: float | None,
        *,
        created: list[dict[str, Any]],
        probe: Probe,
        before: Reading,
        after: Reading,
        pids: Mapping[str, int | None],
        rss: Mapping[str, dict[str, float] | None],
    ) -> dict[str, Any]:
        p, tl = self.p, self.timeline
        pods = list(tl.pods.values())
        bound = [x.bound_seen for x in pods if x.bound_seen is not None]
        self.series = {
            "created": sorted(x.seen - t0 for x in pods),
            "bound": sorted(b - t0 for b in bound),
            "Running": sorted(x.running_seen - t0 for x in pods if x.running_seen is not None),
        }
        create_lat = [c["latency_s"] for c in created]
        mutating: dict[str, Any] = {
            "client": stats.summarize_latencies(create_lat + probe.latencies),
            "deployment_creates": stats.summarize_latencies(create_lat),
            "probe_updates": stats.summarize_latencies(probe.latencies),
            "probe_errors": probe.errors,
            "how": "client round trips (time.perf_counter) of the benchmark's Deployment "
            "creates and of the probe's ConfigMap updates (one every "
            f"{p.probe_every_s * 1000:g} ms, each awaited) from the first create to the last "
            "pod Running",
        }
        masters = masters_doc(before, after, pids, rss)
        leader = next((n for n, m in masters.items() if m["role"] == "leader"), None)
        mutating["server_commit"] = merged_hist_summary(
            [(before.metrics.get(n), after.metrics.get(n)) for n in masters], COMMIT_HIST
        )
        mutating["server_how"] = (
            f"{COMMIT_HIST} of every master together (a write is proposed by the master its "
            "client talks to): every write of every client, the scheduler's binds, the "
            "controllers' and fake kubelets' writes included; propose -> applied, so without "
            "the gRPC and admission time; p50/p99 interpolated within histogram buckets"
        )
        scheduler = {
            "watch": rate_summary(bound, t0),
            "server_podscheduled": per_second_peak(
                [x.scheduled for x in pods if x.scheduled is not None]
            ),
            "max_pending": max_concurrent((x.seen, x.bound_seen) for x in pods),
            "how": "watch: the client clock when the watch first showed each pod with "
            "spec.nodeName (average = (binds - 1) / (last - first bind); peak = most binds in "
            "a sliding 1 s window); server_podscheduled: the PodScheduled lastTransitionTime "
            "(whole seconds: the busiest second's count); max_pending: most pods seen created "
            "and not yet bound at once",
        }
        doc: dict[str, Any] = {
            "pods": {
                "target": p.pods,
                "created": len(pods),
                "bound": len(bound),
                "running": tl.count(lambda x: x.running),
                "deleted": tl.count(lambda x: not x.live),
                "all_running": done_at is not None,
                "deleted_examples": [
                    {
                        "name": x.name,
                        "node": x.node,
                        "seen_s": round(x.seen - t0, 3),
                        "deleting_s": round((x.deleting_seen or x.gone_seen or t0) - t0, 3),
                        "was_running": x.running_seen is not None,
                    }
                    for x in sorted(tl.select(lambda x: not x.live), key=lambda x: x.seen)[:20]
                ],
            },
            "deployments": len(created),
            "time_to_all_running_s": round(done_at - t0, 3) if done_at is not None else None,
            "scheduler": scheduler,
            "mutating": mutating,
            "masters": masters,
            "elections_without_fault": elections_doc(before, after),
            "nodes_not_ready": not_ready_during(self.nodes, before.at, after.at),
            "profile": profile(
                t0,
                created=created,
                pods=pods,
                masters=masters,
                leader=leader,
                commit=mutating["server_commit"],
                probe=probe,
            ),
        }
        commits = (mutating["server_commit"] or {}).get("count")
        doc["writes_per_pod"] = round(commits / len(pods), 2) if commits and pods else None
        bind_step = bind_round_trip(scheduler)
        if bind_step is not None:
            doc["profile"].insert(3, bind_step)
        doc["targets"] = targets(doc)
        return doc


def not_ready_during(nodes: NodeTimeline, start: float, end: float) -> list[dict[str, Any]]:
    """Every time a node's Ready condition left True between `start` and `end` (a node
    that looked dead under load: its pods get evicted after the toleration)."""
    out = []
    for name, n in sorted(nodes.nodes.items()):
        for seen, status, _ in n.ready:
            if start <= seen <= end and status != "True":
                out.append({"node": name, "status": status, "seen_s": round(seen - start, 3)})
    return out


def bind_round_trip(scheduler: Mapping[str, Any]) -> dict[str, Any] | None:
    """The scheduler's mean bind round trip by Little's law: it keeps `BIND_CONCURRENCY`
    binds in flight while pods are pending, so each takes concurrency / throughput. Only
    when more pods than that were pending at once (otherwise the binds were not the limit)."""
    from controlplane.scheduler.scheduler import BIND_CONCURRENCY  # noqa: PLC0415

    rate = _get(scheduler, "watch", "average_per_s")
    if not rate or (scheduler.get("max_pending") or 0) <= BIND_CONCURRENCY:
        return None
    return {
        "step": f"scheduler: one bind, {BIND_CONCURRENCY} in flight (Little's law)",
        "count": None,
        "mean_ms": round(BIND_CONCURRENCY / rate * 1000, 1),
        "p50_ms": None,
        "p99_ms": None,
        "max_ms": None,
        "how": f"derived: {BIND_CONCURRENCY} binds in flight (the scheduler's "
        "BIND_CONCURRENCY) / the average bind rate; valid while pods were pending, an upper "
        "bound on the bind write's round trip if the scheduler itself was ever the limit",
    }


def _ms_summary(values_s: Sequence[float]) -> dict[str, Any]:
    s = stats.summarize_latencies(values_s)
    return {k: s.get(k) for k in ("count", "mean_ms", "p50_ms", "p99_ms", "max_ms")}


def profile(
    t0: float,
    *,
    created: Sequence[Mapping[str, Any]],
    pods: Sequence[PodTimes],
    masters: Mapping[str, Obj],
    leader: str | None,
    commit: Mapping[str, Any] | None,
    probe: Probe,
) -> list[dict[str, Any]]:
    """Where a pod's time goes, step by step (ms: count, mean, p50, p99, max), each with how
    it was measured. Watch sightings are all on the client clock, so differences between
    them cancel the watch's own delay (up to the spread of that delay)."""
    acked = {c["name"]: c["acked"] for c in created}
    first_pod: dict[str, float] = {}
    for x in pods:
        if x.app in acked:
            first_pod[x.app] = min(first_pod.get(x.app, math.inf), x.seen)
    steps = [
        (
            "API: create a Deployment (client round trip)",
            [c["latency_s"] for c in created],
            "measured: the benchmark's creates, one after the other",
        ),
        (
            "Deployment acknowledged -> its first pod seen",
            [first_pod[a] - acked[a] for a in first_pod],
            "derived: watch sighting minus the create's acknowledgement (Deployment and "
            "ReplicaSet controllers, pod create, watch delivery)",
        ),
        (
            "pod seen -> bound (scheduling queue, filter, score, bind)",
            [x.bound_seen - x.seen for x in pods if x.bound_seen is not None],
            "derived: both watch sightings",
        ),
        (
            "pod bound -> Running (fake kubelet: watch, status update)",
            [x.running_seen - x.bound_seen for x in pods if x.running_seen and x.bound_seen],
            "derived: both watch sightings",
        ),
        (
            "first create -> pod Running (end to end)",
            [x.running_seen - t0 for x in pods if x.running_seen is not None],
            "measured: client clock from just before the first create",
        ),
        (
            "API: update a ConfigMap (probe round trip)",
            probe.latencies,
            "measured: the probe client, during the whole run",
        ),
    ]
    out = [{"step": s, **_ms_summary(v), "how": how} for s, v, how in steps]
    hists = [("server: propose -> applied, every write (all masters)", commit, "every master")]
    if leader is not None:
        hists.append(
            ("server: event-loop lag on the leader", masters[leader].get("loop_lag"), leader)
        )
    for label, found, where in hists:
        h = found or {}
        out.append(
            {
                "step": label,
                "count": h.get("count"),
                "mean_ms": h.get("mean_ms"),
                "p50_ms": h.get("p50_ms"),
                "p99_ms": h.get("p99_ms"),
                "max_ms": None,
                "how": f"measured: {h.get('metric')} on {where}, p50/p99 interpolated within "
                "histogram buckets",
            }
        )
    return out


def _get(doc: Any, *path: str) -> Any:
    cur = doc
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against the figures; `met` None when a figure is missing."""

    def row(figure: str, value: float | None, op: str, bound: float, unit: str) -> Obj:
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        target = f"{op} {bound:g} {unit}".rstrip()
        return {"figure": figure, "value": value, "target": target, "met": met}

    rss = [_get(m, "rss", "peak_mb") for m in (result.get("masters") or {}).values()]
    known = [r for r in rss if r is not None]
    p99 = [
        _get(result, "mutating", "client", "p99_ms"),
        _get(result, "mutating", "server_commit", "p99_ms"),
    ]
    p99_known = [v for v in p99 if v is not None]
    out = [
        row(
            "scheduler throughput (average while binding)",
            _get(result, "scheduler", "watch", "average_per_s"),
            ">=",
            TARGET_PODS_PER_S,
            "pods/s",
        ),
        row(
            "p99 of mutating API calls (worst of client and server)",
            max(p99_known) if p99_known else None,
            "<=",
            TARGET_P99_MS,
            "ms",
        ),
        row(
            "peak RSS per master (largest)",
            max(known) if known and len(known) == len(rss) else None,
            "<=",
            TARGET_RSS_MB,
            "MB",
        ),
        row(
            "elections without a fault",
            _get(result, "elections_without_fault", "count"),
            "<=",
            0,
            "",
        ),
    ]
    running = _get(result, "pods", "all_running")
    out.append(
        {
            "figure": "every pod Running before the deadline",
            "value": running,
            "target": "yes",
            "met": running if isinstance(running, bool) else None,
        }
    )
    return out


def run_scale(params: Params, say: Say) -> Outcome:
    """The whole benchmark (see the module docstring); the cluster is gone when it returns."""
    if params.workers < 1 or params.pods < 1 or params.masters < 1:
        raise BenchError("workers, pods and masters must be at least 1")
    own_tmp = params.workdir is None
    root = (
        Path(params.workdir)
        if params.workdir
        else Path(tempfile.mkdtemp(prefix="kubelab-bench-scale-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    doc: dict[str, Any] = {
        "benchmark": "scale",
        "format": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": asdict(params),
        "machine": machine_info(root),
    }
    busy = doc["machine"]["busy_at_start"]
    if any(busy.values()):
        say(
            f"note: the machine is shared right now ({busy['other_masters']} other masters, "
            f"{busy['pytest_processes']} pytest processes): figures will be noisier"
        )
    out = Outcome(doc)
    run = ScaleRun(params, say, root)
    try:
        doc.update(run.run())
        out.series = run.series
        out.failed = not _get(doc, "result", "pods", "all_running")
    finally:
        doc["busy_at_end"] = other_activity(root)
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)
    return out


# -- output ----------------------------------------------------------------------------------------


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.{nd}f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def render_scale(doc: Mapping[str, Any]) -> str:
    """The headline table, the targets, the per-step profile and the masters' resources."""
    p = doc.get("parameters") or {}
    r = doc.get("result") or {}
    title = (
        f"scale benchmark: {p.get('pods')} pods in {r.get('deployments')} Deployments on "
        f"{p.get('workers')} fake nodes, {p.get('masters')} masters, {p.get('timers')} timers"
    )
    if not r:
        return title + "\nno result: " + str(doc.get("error") or "the run did not finish")
    pods = r.get("pods") or {}
    sw = _get(r, "scheduler", "watch") or {}
    ss = _get(r, "scheduler", "server_podscheduled") or {}
    mut = r.get("mutating") or {}
    el = r.get("elections_without_fault") or {}
    rows = [
        [
            "pods",
            "created / bound / Running",
            f"{pods.get('created')} / {pods.get('bound')} / "
            f"{pods.get('running')} of {pods.get('target')}"
            + (f" ({pods['deleted']} deleted)" if pods.get("deleted") else ""),
        ],
        [
            "time until all Running",
            "s from the first create",
            _fmt(r.get("time_to_all_running_s"), 2),
        ],
        ["scheduler (watch)", "average pods/s while binding", _fmt(sw.get("average_per_s"))],
        ["", "peak pods in 1 s", _fmt(sw.get("peak_1s_per_s"))],
        ["", "binding span s", _fmt(sw.get("span_s"), 2)],
        ["scheduler (PodScheduled)", "average pods/s", _fmt(ss.get("average_per_s"))],
        ["", "busiest second", _fmt(ss.get("peak_second_count"))],
        ["", "most pods pending at once", _fmt(_get(r, "scheduler", "max_pending"))],
        ["mutating calls (client)", "count", _fmt(_get(mut, "client", "count"))],
        ["", "p50 ms", _fmt(_get(mut, "client", "p50_ms"), 2)],
        ["", "p99 ms", _fmt(_get(mut, "client", "p99_ms"), 2)],
        ["", "max ms", _fmt(_get(mut, "client", "max_ms"), 2)],
        ["writes, server side", "count", _fmt(_get(mut, "server_commit", "count"))],
        ["(propose -> applied)", "p50 ms (buckets)", _fmt(_get(mut, "server_commit", "p50_ms"), 2)],
        ["", "p99 ms (buckets)", _fmt(_get(mut, "server_commit", "p99_ms"), 2)],
        ["", "writes per pod", _fmt(r.get("writes_per_pod"), 2)],
        ["elections without a fault", "count", _fmt(el.get("count"))],
        ["nodes NotReady during the run", "count", _fmt(len(r.get("nodes_not_ready") or []))],
    ]
    out = [title, table(["", "", "measured"], rows, left=2), ""]
    out.append(
        table(
            ["target", "measured", "target", ""],
            [
                [t["figure"], _fmt(t["value"]), t["target"], _verdict(t["met"])]
                for t in r.get("targets") or []
            ],
            left=1,
        )
    )
    out.append("")
    prof = [
        [
            s["step"],
            _fmt(s.get("count")),
            _fmt(s.get("mean_ms"), 2),
            _fmt(s.get("p50_ms"), 2),
            _fmt(s.get("p99_ms"), 2),
            _fmt(s.get("max_ms"), 2),
        ]
        for s in r.get("profile") or []
    ]
    out.append(table(["per-step profile (ms)", "count", "mean", "p50", "p99", "max"], prof))
    out.append("")
    res = []
    for name, m in (r.get("masters") or {}).items():
        res.append(
            [
                name,
                ", ".join(
                    [str(m.get("role") or "-"), *(SHORT.get(h, h) for h in m.get("holds") or [])]
                ),
                _fmt(_get(m, "rss", "peak_mb")),
                _fmt(_get(m, "rss", "rss_mb")),
                _fmt(m.get("cpu_s"), 2),
                _fmt(m.get("cpu_percent")),
                _fmt(m.get("proposals")),
                _fmt(_get(m, "commit", "p50_ms"), 2),
                _fmt(_get(m, "loop_lag", "p99_ms"), 2),
            ]
        )
    fake = r.get("fakenodes") or {}
    res.append(
        [
            "fakenodes",
            f"{p.get('workers')} nodes",
            _fmt(_get(fake, "rss", "peak_mb")),
            _fmt(_get(fake, "rss", "rss_mb")),
            _fmt(fake.get("cpu_s"), 2),
            *["-"] * 4,
        ]
    )
    res.append(["benchmark", "client", "-", "-", _fmt(r.get("client_cpu_s"), 2), *["-"] * 4])
    header = [
        "process",
        "role, leases held",
        "peak RSS MB",
        "RSS MB",
        "CPU s",
        "CPU %",
        "writes proposed",
        "their p50 ms",
        "loop lag p99 ms",
    ]
    out.append(table(header, res, left=2))
    leases = el.get("leader_leases") or {}
    moved = [f"{n} {v.get('transitions')}" for n, v in leases.items()]
    changes = el.get("leader_changes") or {}
    out.append(
        "Raft leader changes seen: "
        + ", ".join(f"{n} {_fmt(v)}" for n, v in changes.items())
        + ("; lease transitions: " + ", ".join(moved) if moved else "")
        + "; writes proposed: through that master (followers forward to the leader), with "
        "their propose -> applied p50"
    )
    busy = doc.get("busy_at_end") or {}
    if any(busy.values()):
        seen = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in busy.items() if v)
        out.append(f"note: the machine was shared (at the end: {seen})")
    return "\n".join(out)


SHORT = {"kube-scheduler": "scheduler", "kube-controller-manager": "controllers"}


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "MISSED")


# -- the SVG: pods created, bound and Running over time --------------------------------------------

SERIES_COLORS = {"created": "#7f7f7f", "bound": "#1f77b4", "Running": "#2ca02c"}


def timeline_svg(series: Mapping[str, Sequence[float]], title: str) -> str:
    """Cumulative counts over time (seconds after the first create), one line per series;
    the style of `svg.cdf_svg`."""
    w, h = 860, 360
    left, right, top, bottom = 60, 150, 34, 44
    pw, ph = w - left - right, h - top - bottom
    xs = [x for s in series.values() for x in s]
    n_max = max((len(s) for s in series.values()), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    if not xs or n_max == 0:
        parts.append(f'<text x="{left}" y="60">no pods</text></svg>')
        return "\n".join(parts) + "\n"
    x_hi = max(*xs, 1e-3) * 1.02

    def px(x: float) -> float:
        return left + max(0.0, x) / x_hi * pw

    def py(n: float) -> float:
        return top + (1 - n / n_max) * ph

    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>'
    )
    step = _tick_step(x_hi)
    t = 0.0
    while t <= x_hi:
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle">{t:g}</text>')
        t += step
    for f in (0, 0.25, 0.5, 0.75, 1):
        y = py(f * n_max)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{f * n_max:.0f}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">'
        "seconds after the first create</text>"
    )
    parts.append(
        f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
        'text-anchor="middle">pods</text>'
    )
    legend_y = top + 4
    for label, values in series.items():
        color = SERIES_COLORS.get(label, "#333")
        pts = sorted(values)
        stride = max(1, len(pts) // 400)
        keep = list(range(0, len(pts), stride))
        if pts and keep[-1] != len(pts) - 1:
            keep.append(len(pts) - 1)
        path = " ".join(
            f"{'M' if k == 0 else 'L'}{px(pts[i]):.1f},{py(i + 1):.1f}" for k, i in enumerate(keep)
        )
        if path:
            parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        lx = left + pw + 12
        parts.append(
            f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 26}" y2="{legend_y}" stroke="{color}" '
            'stroke-width="1.6"/>'
        )
        parts.append(f'<text x="{lx + 32}" y="{legend_y + 4}">{escape(label)} ({len(pts)})</text>')
        legend_y += 16
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _tick_step(span: float) -> float:
    raw = span / 8
    e = math.floor(math.log10(raw)) if raw > 0 else 0
    for m in (1, 2, 5, 10):
        if m * 10.0**e >= raw:
            return m * 10.0**e
    return 10.0 ** (e + 1)


def write_outputs(
    doc: dict[str, Any], series: Mapping[str, Sequence[float]], path: Path, title: str
) -> Path:
    """The JSON at `path` and the SVG next to it (`doc["plot"]` names it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    svg = path.with_suffix(".svg")
    svg.write_text(timeline_svg(series, title))
    doc["plot"] = str(svg)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return svg
