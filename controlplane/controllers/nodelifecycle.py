"""The node lifecycle controller (kube-controller-manager's `pkg/controller/nodelifecycle`
and its NoExecute taint manager).

Node health. Every `node_monitor_period_s` the controller judges each node by its Lease in
`kube-node-lease`, but never by comparing `spec.renewTime` with its own clock: the renew
time is written by the node on the node's clock, and a master that was paused, or just took
over, would see every lease as old. Like client-go and Kubernetes, it keeps for each node
the *local* time at which it last observed the lease's renewTime (or the Ready condition's
lastHeartbeatTime) change: the probe time. A node is stale when no change was observed for
`node_monitor_grace_s`. A controller that starts leading starts with no observations, so
every node gets a full grace period from that moment; a master failover, or a pause of the
leader, never makes a healthy node look dead. (A leader whose own loop stalls for longer
than the grace period starts over the same way: what it did not observe, it cannot judge.)

A stale node gets Ready (and the pressure conditions) Unknown, "Kubelet stopped posting
node status.", a `NodeNotReady` Event, and its pods Ready=False (checked again at every
pass while the node is stale, so a failover in the middle loses nothing), so that Endpoints
drop them. Ready comes back only when the kubelet reports it.

Taints. By condition, at once, on every node change: Ready False -> `not-ready:NoSchedule`,
Unknown -> `unreachable:NoSchedule`, pressure conditions and `spec.unschedulable` -> their
NoSchedule taints (TaintNodesByCondition). NoExecute `not-ready`/`unreachable` follow Ready
too, but are added through a rate-limited queue: a token bucket of `node_eviction_rate` nodes
per second, for the single zone kubelab has, whose rate follows the zone's state as in
Kubernetes (more than 2 nodes and at least 55% of them not Ready: the secondary rate in a
cluster of more than 50 nodes, no tainting in a smaller one; no node Ready: no tainting,
and existing NoExecute taints are removed, as the likelier culprit is the control plane's
own view, not every node at once). A node Ready again loses both at once.

Eviction (the taint manager). A pod on a node with NoExecute taints it does not tolerate is
deleted at once; one whose tolerations carry `tolerationSeconds` is deleted that long after
the taint's `timeAdded` (Kubernetes counts from when its taint manager saw the taint, so
a failover restarts the count; here it does not). The
deletion is an ordinary graceful one: on a dead node the pod stays Terminating until the
node returns or someone force-deletes it, and the ReplicaSet controller, which counts
terminating pods as gone, replaces it meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.admission import NOT_READY_TAINT, UNREACHABLE_TAINT
from controlplane.kube.errors import APIError
from controlplane.kube.resources import LEASES, NODES, PODS
from controlplane.kube.storage import parse_rfc3339, rfc3339

from .base import Context, key_of, run_workers, split_key

__all__ = [
    "NODE_LEASE_NAMESPACE",
    "HealthTracker",
    "NodeHealth",
    "NodeLifecycleController",
    "TokenBucket",
    "ZoneState",
    "compute_zone_state",
    "eviction_deadline",
    "eviction_qps",
    "mark_node_unknown",
    "mark_pod_not_ready",
    "no_execute_taints",
    "no_schedule_taints_update",
    "ready_status",
    "swap_taints",
    "tolerates",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

# Conditions the controller turns Unknown when the kubelet stops posting (nodelifecycle's
# nodeConditionTypes).
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

# nodeConditionToTaintKeyStatusMap: condition type -> {status: NoSchedule taint key}.
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": NOT_READY_TAINT, "Unknown": UNREACHABLE_TAINT},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_CONDITION_TAINT_KEYS = frozenset(k for m in CONDITION_TAINTS.values() for k in m.values())

# kube-controller-manager's defaults for what kubelab has no timer for.
UNHEALTHY_ZONE_THRESHOLD = 0.55  # --unhealthy-zone-threshold
LARGE_CLUSTER_THRESHOLD = 50  # --large-cluster-size-threshold
SECONDARY_EVICTION_RATE = 0.01  # --secondary-node-eviction-rate
TAINTING_PERIOD_S = 0.1  # nodeEvictionPeriod: how often the NoExecute queue is tried

DISRUPTION_TARGET = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}


# -- node health ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeHealth:
    """What the controller last observed of a node, and when (its local clock)."""

    probe_time: float
    renew_time: str | None  # the node Lease's spec.renewTime
    heartbeat: str | None  # the Ready condition's lastHeartbeatTime


class HealthTracker:
    """Probe times of nodes (see the module docstring): a node is stale once nothing
    changed in its lease or heartbeat for `grace` seconds of this tracker's observation.
    A new tracker (a controller that starts leading) gives every node a full grace."""

    def __init__(self, grace: float) -> None:
        if grace <= 0:
            raise ValueError(f"node_monitor_grace_s must be > 0, got {grace}")
        self.grace = grace
        self._health: dict[str, NodeHealth] = {}

    def observe(
        self, node: str, renew_time: str | None, heartbeat: str | None, now: float
    ) -> NodeHealth:
        """Record what is seen of `node` at `now`; the probe time moves only on a change
        (or at the first observation)."""
        prev = self._health.get(node)
        if prev is None or prev.renew_time != renew_time or prev.heartbeat != heartbeat:
            health = NodeHealth(now, renew_time, heartbeat)
            self._health[node] = health
            return health
        return prev

    def stale(self, node: str, now: float) -> bool:
        """True when `node` was observed, and not seen alive for more than the grace."""
        health = self._health.get(node)
        return health is not None and now > health.probe_time + self.grace

    def restart_all(self, now: float) -> None:
        """Give every node a full grace from `now`: what happened before, the controller
        did not observe (its loop stalled, or all nodes came back at once)."""
        self._health = {
            n: NodeHealth(now, h.renew_time, h.heartbeat) for n, h in self._health.items()
        }

    def forget(self, node: str) -> None:
        self._health.pop(node, None)

    def nodes(self) -> list[str]:
        return list(self._health)


def _conditions(obj: Obj) -> list[Obj]:
    status = obj.get("status")
    conds = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in conds if isinstance(c, dict)] if isinstance(conds, list) else []


def get_condition(obj: Obj, type_: str) -> Obj | None:
    for c in _conditions(obj):
        if c.get("type") == type_:
            return c
    return None


def ready_status(obj: Obj) -> str | None:
    """ "True", "False" or "Unknown" of the Ready condition; None when there is none."""
    cond = get_condition(obj, "Ready")
    status = cond.get("status") if cond is not None else None
    return str(status) if status is not None else None


def lease_renew_time(lease: Obj | None) -> str | None:
    spec = lease.get("spec") if isinstance(lease, dict) else None
    renew = spec.get("renewTime") if isinstance(spec, dict) else None
    return str(renew) if renew else None


def heartbeat_time(node: Obj) -> str | None:
    cond = get_condition(node, "Ready")
    beat = cond.get("lastHeartbeatTime") if cond is not None else None
    return str(beat) if beat else None


def mark_node_unknown(node: Obj, now: str) -> Obj | None:
    """The status of a node whose kubelet stopped posting: every monitored condition
    Unknown (added if missing, "Kubelet never posted node status."); None when already so.
    lastHeartbeatTime is kept: it is the kubelet's, and changes of it mean life."""
    raw = node.get("status")
    status: Obj = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    created = (node.get("metadata") or {}).get("creationTimestamp") or now
    changed = False
    for type_ in MONITORED_CONDITIONS:
        cond = next((c for c in conds if c.get("type") == type_), None)
        if cond is None:
            conds.append(
                {
                    "type": type_,
                    "status": "Unknown",
                    "lastHeartbeatTime": created,
                    "lastTransitionTime": now,
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                }
            )
            changed = True
        elif cond.get("status") != "Unknown":
            cond["status"] = "Unknown"
            cond["reason"] = "NodeStatusUnknown"
            cond["message"] = "Kubelet stopped posting node status."
            cond["lastTransitionTime"] = now
            changed = True
    if not changed:
        return None
    status["conditions"] = conds
    return status


def mark_pod_not_ready(pod: Obj, now: str) -> Obj | None:
    """The status of `pod` with its Ready condition False (MarkPodsNotReady: reason and
    message kept, lastTransitionTime now); None when it has no Ready condition or it is
    False already."""
    status = pod.get("status")
    if not isinstance(status, dict):
        return None
    conds = status.get("conditions")
    if not isinstance(conds, list):
        return None
    for i, cond in enumerate(conds):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            if cond.get("status") == "False":
                return None
            new = copy.deepcopy(status)
            new["conditions"][i] = {**cond, "status": "False", "lastTransitionTime": now}
            return new
    return None


def with_condition(status: Obj, condition: Obj, now: str) -> Obj | None:
    """`status` with `condition` set (UpdatePodCondition: lastTransitionTime moves only
    when the status does); None when nothing changes."""
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    for i, cond in enumerate(conds):
        if cond.get("type") != condition["type"]:
            continue
        if all(cond.get(k) == v for k, v in condition.items()):
            return None
        moved = cond.get("status") != condition["status"]
        when = now if moved else cond.get("lastTransitionTime", now)
        conds[i] = {**cond, **condition, "lastTransitionTime": when}
        break
    else:
        conds.append({**condition, "lastTransitionTime": now})
    return {**status, "conditions": conds}


# -- taints ----------------------------------------------------------------------------------------


def _taints(node: Obj) -> list[Obj]:
    spec = node.get("spec")
    taints = spec.get("taints") if isinstance(spec, dict) else None
    return [t for t in taints if isinstance(t, dict)] if isinstance(taints, list) else []


def _same_taint(a: Obj, b: Obj) -> bool:
    """Taints are identified by key and effect (Taint.MatchTaint)."""
    return bool(a.get("key") == b.get("key") and a.get("effect") == b.get("effect"))


def has_taint(taints: Iterable[Obj], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


def swap_taints(taints: list[Obj], add: Iterable[Obj], remove: Iterable[Obj]) -> list[Obj] | None:
    """`taints` with `add` added (unless present: an existing taint keeps its timeAdded)
    and `remove` removed (SwapNodeControllerTaint); None when that changes nothing."""
    out = [t for t in taints if not any(_same_taint(t, r) for r in remove)]
    for taint in add:
        if not any(_same_taint(t, taint) for t in out):
            out.append(taint)
    return None if out == taints else out


def no_schedule_taints_update(node: Obj) -> list[Obj] | None:
    """The node's taints with the NoSchedule taints of its conditions and of
    `spec.unschedulable` made current (doNoScheduleTaintingPass); None when they are."""
    wanted: list[Obj] = []
    for cond in _conditions(node):
        key = CONDITION_TAINTS.get(str(cond.get("type")), {}).get(str(cond.get("status")))
        if key is not None:
            wanted.append({"key": key, "effect": NO_SCHEDULE})
    spec = node.get("spec")
    if isinstance(spec, dict) and spec.get("unschedulable") is True:
        wanted.append({"key": UNSCHEDULABLE_TAINT, "effect": NO_SCHEDULE})
    taints = _taints(node)
    managed = [
        t
        for t in taints
        if t.get("effect") == NO_SCHEDULE
        and (t.get("key") == UNSCHEDULABLE_TAINT or t.get("key") in _CONDITION_TAINT_KEYS)
    ]
    add = [w for w in wanted if not any(_same_taint(w, t) for t in managed)]
    remove = [t for t in managed if not any(_same_taint(w, t) for w in wanted)]
    return swap_taints(taints, add, remove) if add or remove else None


def no_execute_taints(ready: str | None) -> tuple[str, str] | None:
    """(taint to add, its opposite to remove) for a node's Ready status: the not-ready and
    unreachable NoExecute taints mirror Ready and are mutually exclusive; None for a
    Ready node (or one with no Ready condition)."""
    if ready == "False":
        return NOT_READY_TAINT, UNREACHABLE_TAINT
    if ready == "Unknown":
        return UNREACHABLE_TAINT, NOT_READY_TAINT
    return None


def no_execute_taint(key: str, now: str | None = None) -> Obj:
    taint: Obj = {"key": key, "effect": NO_EXECUTE}
    if now is not None:
        taint["timeAdded"] = now
    return taint


# -- the zone's state and the tainting rate ------------------------------------------------------


class ZoneState(StrEnum):
    NORMAL = "Normal"
    PARTIAL_DISRUPTION = "PartialDisruption"
    FULL_DISRUPTION = "FullDisruption"


def compute_zone_state(
    ready: Iterable[str | None], threshold: float = UNHEALTHY_ZONE_THRESHOLD
) -> ZoneState:
    """ComputeZoneState: no Ready node -> full disruption; more than 2 not Ready and at
    least `threshold` of the zone -> partial disruption."""
    statuses = list(ready)
    ready_n = sum(1 for s in statuses if s == "True")
    not_ready = len(statuses) - ready_n
    if ready_n == 0 and not_ready > 0:
        return ZoneState.FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(statuses) >= threshold:
        return ZoneState.PARTIAL_DISRUPTION
    return ZoneState.NORMAL


def eviction_qps(
    state: ZoneState,
    zone_size: int,
    rate: float,
    *,
    secondary_rate: float = SECONDARY_EVICTION_RATE,
    large_cluster: int = LARGE_CLUSTER_THRESHOLD,
) -> float:
    """Nodes per second that may be tainted NoExecute in a zone (setLimiterInZone):
    partial disruption slows a large zone to `secondary_rate` and stops a small one."""
    if state is ZoneState.PARTIAL_DISRUPTION:
        return secondary_rate if zone_size > large_cluster else 0.0
    return rate


class TokenBucket:
    """client-go's token bucket rate limiter (`qps` tokens a second, at most `burst`),
    starting full; `qps` 0 accepts nothing."""

    def __init__(self, qps: float, burst: int, now: float) -> None:
        if qps < 0 or burst < 1:
            raise ValueError(f"need qps >= 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.burst = burst
        self._reset(qps, now)

    def _reset(self, qps: float, now: float) -> None:
        self.qps = qps
        self._tokens = float(self.burst)
        self._last = now

    def try_accept(self, now: float) -> bool:
        if self.qps <= 0:
            return False
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.qps)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def swap(self, qps: float, now: float) -> None:
        """A new limiter at `qps`, full (the zone queue's SwapLimiter)."""
        if qps < 0:
            raise ValueError(f"need qps >= 0, got {qps}")
        if qps != self.qps:
            self._reset(qps, now)


# -- the taint manager's decision ------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Toleration.ToleratesTaint: an empty effect or key matches any; `Exists` any value,
    `Equal` (or no operator) the same value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool((toleration.get("value") or "") == (taint.get("value") or ""))
    return False


def _tolerations(pod: Obj) -> list[Obj]:
    spec = pod.get("spec")
    tols = spec.get("tolerations") if isinstance(spec, dict) else None
    return [t for t in tols if isinstance(t, dict)] if isinstance(tols, list) else []


def eviction_deadline(
    tolerations: list[Obj], taints: list[Obj], added_at: Callable[[Obj], float]
) -> float | None:
    """When a pod with `tolerations` must leave a node with NoExecute `taints`: -inf (now)
    if one taint is not tolerated; else the earliest `added_at(taint) + tolerationSeconds`
    of the first toleration matching each taint (GetMatchingTolerations); None when it
    may stay for ever."""
    deadline: float | None = None
    for taint in taints:
        if taint.get("effect") != NO_EXECUTE:
            continue
        used = next((t for t in tolerations if tolerates(t, taint)), None)
        if used is None:
            return -math.inf
        seconds = used.get("tolerationSeconds")
        if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, int | float):
            continue
        at = added_at(taint) + max(0.0, float(seconds))
        deadline = at if deadline is None else min(deadline, at)
    return deadline


def _node_name(pod: Obj) -> str:
    spec = pod.get("spec")
    name = spec.get("nodeName") if isinstance(spec, dict) else None
    return str(name) if name else ""


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# -- the controller --------------------------------------------------------------------------------


class NodeLifecycleController:
    """Node health, condition taints, NoExecute tainting and taint-based eviction (see the
    module docstring). State lives for one leadership: `setup` starts it afresh."""

    name = "nodelifecycle"

    def __init__(self, *, tainting_period: float = TAINTING_PERIOD_S, workers: int = 4) -> None:
        self.tainting_period = tainting_period
        self.workers = workers

    # -- setup and handlers ----------------------------------------------------------------------

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.informer_for(NODES)
        self.leases = ctx.informers.informer_for(LEASES)
        self.pods = ctx.informers.informer_for(PODS)
        now = ctx.clock()
        self.health = HealthTracker(ctx.timers.node_monitor_grace_s)
        self.limiter = TokenBucket(ctx.timers.node_eviction_rate, 1, now)
        self.zone_state: ZoneState | None = None  # None: not computed yet this leadership
        self.tainting: dict[str, None] = {}  # nodes waiting for a NoExecute taint, in order
        self.pods_by_node: dict[str, set[str]] = {}
        self.scheduled: dict[str, float] = {}  # pod key -> eviction deadline
        self.evicted: set[str] = set()  # uids deleted here, until the cache shows it
        self.taint_seen: dict[tuple[str, str], float] = {}  # (node, key) -> first seen
        self.last_pass: float | None = None
        self.node_queue: RateLimitingQueue[str] = RateLimitingQueue(name="nodelifecycle-node")
        self.pod_queue: RateLimitingQueue[str] = RateLimitingQueue(name="taint-eviction")
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    def _node_added(self, node: Obj) -> None:
        self.node_queue.add(_name(node))
        self._enqueue_pods_of(_name(node))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.node_queue.add(_name(new))
        if _no_execute(_taints(old)) != _no_execute(_taints(new)):
            self._enqueue_pods_of(_name(new))

    def _node_deleted(self, node: Obj) -> None:
        name = _name(node)
        self.health.forget(name)
        self.tainting.pop(name, None)
        self.taint_seen = {k: t for k, t in self.taint_seen.items() if k[0] != name}

    def _enqueue_pods_of(self, node: str) -> None:
        for key in self.pods_by_node.get(node, ()):
            self.pod_queue.add(key)

    def _index(self, pod: Obj, key: str, add: bool) -> None:
        node = _node_name(pod)
        if not node:
            return
        keys = self.pods_by_node.setdefault(node, set())
        if add:
            keys.add(key)
        else:
            keys.discard(key)
            if not keys:
                del self.pods_by_node[node]

    def _pod_added(self, pod: Obj) -> None:
        key = key_of(pod)
        self._index(pod, key, True)
        self._maybe_enqueue_pod(pod, key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = key_of(new)
        if _node_name(old) != _node_name(new):
            self._index(old, key, False)
        self._index(new, key, True)
        self._maybe_enqueue_pod(new, key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = key_of(pod)
        self._index(pod, key, False)
        self.scheduled.pop(key, None)
        self.evicted.discard(str((pod.get("metadata") or {}).get("uid") or ""))

    def _maybe_enqueue_pod(self, pod: Obj, key: str) -> None:
        node = self.nodes.get(None, _node_name(pod)) if _node_name(pod) else None
        if key in self.scheduled or (node is not None and _no_execute(_taints(node))):
            self.pod_queue.add(key)

    # -- running ---------------------------------------------------------------------------------

    async def run(self, ctx: Context) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._every(ctx.timers.node_monitor_period_s, self.monitor_node_health))
            tg.create_task(self._every(self.tainting_period, self.no_execute_tainting_pass))
            tg.create_task(run_workers("nodelifecycle", self.node_queue, self.sync_node))
            tg.create_task(
                run_workers("taint-eviction", self.pod_queue, self.sync_pod, workers=self.workers)
            )

    async def _every(self, period: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Run a pass every `period` seconds; a failed pass is logged, the next one retries."""
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except APIError as e:
                logger.info("%s: pass failed: %s", self.name, e.message)
            except Exception:
                logger.exception("%s: pass crashed", self.name)
            await asyncio.sleep(period)

    # -- node health -----------------------------------------------------------------------------

    async def monitor_node_health(self) -> None:
        """One pass of monitorNodeHealth over the cached nodes."""
        now = self.ctx.clock()
        grace = self.health.grace
        if self.last_pass is not None and now - self.last_pass > grace:
            logger.warning(
                "node monitor stalled for %.1fs (> grace %.1fs): every node gets a new grace",
                now - self.last_pass,
                grace,
            )
            self.health.restart_all(now)
        try:
            await self._monitor(now)
        finally:
            self.last_pass = self.ctx.clock()  # the stall is measured between passes

    async def _monitor(self, now: float) -> None:
        nodes = self.nodes.list()
        names = {_name(n) for n in nodes}
        for gone in set(self.health.nodes()) - names:
            self.health.forget(gone)
            self.tainting.pop(gone, None)
        zone: list[str | None] = []
        to_taint: list[str] = []
        for node in nodes:
            try:
                current = await self._judge(node, now, to_taint)
            except APIError as e:
                logger.info("node health update failed node=%s: %s", _name(node), e.message)
                current = ready_status(node)
            labels = (node.get("metadata") or {}).get("labels") or {}
            if EXCLUDE_DISRUPTION_LABEL not in labels:
                zone.append(current)
        await self._handle_disruption(zone, nodes, now)
        if self.zone_state is not ZoneState.FULL_DISRUPTION:
            # Queued only now: a pass that finds every node down must taint none of them.
            for name in to_taint:
                self.tainting.setdefault(name, None)

    async def _judge(self, node: Obj, now: float, to_taint: list[str]) -> str | None:
        """Observe `node`, mark it Unknown when stale; returns its Ready status. Its
        NoExecute taints are swapped or removed at once, or it is added to `to_taint`."""
        name = _name(node)
        lease = self.leases.get(NODE_LEASE_NAMESPACE, name)
        self.health.observe(name, lease_renew_time(lease), heartbeat_time(node), now)
        observed = ready_status(node)
        current = observed
        if self.health.stale(name, now):
            status = mark_node_unknown(node, rfc3339(now))
            if status is not None:
                node = await self.ctx.writer.update_status(NODES, "", {**node, "status": status})
                logger.info("node %s: kubelet stopped posting node status: Ready=Unknown", name)
            current = ready_status(node)
            if observed == "True" and current != "True":
                self.ctx.recorder.event(
                    node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"
                )
            if current != "True":
                await self._mark_pods_not_ready(name, now)
        if await self._taint_by_ready(node, current):
            to_taint.append(name)
        return current

    async def _mark_pods_not_ready(self, node: str, now: float) -> None:
        """Ready=False on every pod of a stale node still Ready (MarkPodsNotReady, redone
        each pass while the node is stale, so a failover in between loses nothing)."""
        for key in sorted(self.pods_by_node.get(node, ())):
            ns, name = split_key(key)
            pod = self.pods.get(ns, name)
            if pod is None or _node_name(pod) != node:
                continue
            status = mark_pod_not_ready(pod, rfc3339(now))
            if status is None:
                continue
            try:
                written = await self.ctx.writer.update_status(PODS, ns, {**pod, "status": status})
            except APIError as e:
                if e.code != 404:
                    logger.info("marking pod %s NotReady failed: %s", key, e.message)
                continue
            logger.info("pod %s on node %s marked NotReady", key, node)
            self.ctx.recorder.event(written, "Warning", "NodeNotReady", "Node is not ready")

    async def _taint_by_ready(self, node: Obj, ready: str | None) -> bool:
        """processTaintBaseEviction: swap an opposite NoExecute taint at once, remove both
        from a Ready node; True when the node needs a new one (the rate-limited pass)."""
        name = _name(node)
        taints = _taints(node)
        pair = no_execute_taints(ready)
        if pair is None:
            self.tainting.pop(name, None)
            if ready == "True" and (
                has_taint(taints, NOT_READY_TAINT, NO_EXECUTE)
                or has_taint(taints, UNREACHABLE_TAINT, NO_EXECUTE)
            ):
                await self._mark_reachable(name)
            return False
        add, opposite = pair
        if has_taint(taints, add, NO_EXECUTE):
            self.tainting.pop(name, None)
            return False
        if has_taint(taints, opposite, NO_EXECUTE):
            await self._swap_node_taints(name, add, opposite)
            return False
        return True

    async def _mark_reachable(self, name: str) -> None:
        remove = [no_execute_taint(NOT_READY_TAINT), no_execute_taint(UNREACHABLE_TAINT)]
        if await self._update_node(name, lambda n: swap_taints(_taints(n), [], remove)):
            logger.info("node %s: NoExecute taints removed", name)

    async def _swap_node_taints(self, name: str, add: str, remove: str) -> None:
        now = rfc3339(self.ctx.clock())
        adds, removes = [no_execute_taint(add, now)], [no_execute_taint(remove)]
        if await self._update_node(name, lambda n: swap_taints(_taints(n), adds, removes)):
            logger.info("node %s: tainted %s:NoExecute", name, add)

    async def _update_node(
        self, name: str, taints: Callable[[Obj], list[Obj] | None], attempts: int = 5
    ) -> bool:
        """Replace the node's taints by `taints(node)` (None: keep them), retrying a
        conflict over a fresh read (SwapNodeControllerTaint); True if written."""
        node = self.nodes.get(None, name)
        for _ in range(attempts):
            if node is None:
                return False
            new_taints = taints(node)
            if new_taints is None:
                return False
            spec = dict(node.get("spec") or {})
            spec["taints"] = new_taints
            try:
                await self.ctx.writer.update(NODES, "", {**node, "spec": spec})
                return True
            except APIError as e:
                if e.code == 404:
                    return False
                if e.code != 409 or e.message.startswith("fenced"):
                    raise
            try:
                node = await self.ctx.client.get(NODES, "", name)
            except APIError as e:
                if e.code == 404:
                    return False
                raise
        raise APIError(409, "Conflict", f"node {name}: too many concurrent writers")

    async def _handle_disruption(
        self, zone: list[str | None], nodes: list[Obj], now: float
    ) -> None:
        """handleDisruption for kubelab's single zone (see the module docstring)."""
        state = compute_zone_state(zone) if zone else ZoneState.NORMAL
        was_full = self.zone_state is ZoneState.FULL_DISRUPTION  # None: the first pass
        is_full = state is ZoneState.FULL_DISRUPTION
        prev, self.zone_state = self.zone_state, state
        if is_full and was_full:
            return
        if is_full:
            logger.warning("every node is not Ready: stopping NoExecute tainting (disruption)")
            self.limiter.swap(0.0, now)
            self.tainting.clear()
            for node in nodes:
                await self._mark_reachable(_name(node))
            return
        if was_full:
            logger.info("nodes are Ready again: leaving full disruption; fresh grace for all")
            self.health.restart_all(now)
        if state != prev:
            self.limiter.swap(
                eviction_qps(state, len(zone), self.ctx.timers.node_eviction_rate), now
            )

    async def no_execute_tainting_pass(self) -> None:
        """doNoExecuteTaintingPass: taint queued nodes while the token bucket allows."""
        for name in list(self.tainting):
            if not self.limiter.try_accept(self.ctx.clock()):
                return
            self.tainting.pop(name, None)
            node = self.nodes.get(None, name)
            if node is None:
                continue
            pair = no_execute_taints(ready_status(node))
            if pair is None:
                continue
            try:
                await self._swap_node_taints(name, *pair)
            except APIError as e:
                logger.info("tainting node %s failed, queued again: %s", name, e.message)
                self.tainting.setdefault(name, None)

    # -- NoSchedule taints -----------------------------------------------------------------------

    async def sync_node(self, name: str) -> None:
        """Make the node's condition and unschedulable NoSchedule taints current."""
        if await self._update_node(name, no_schedule_taints_update):
            logger.info("node %s: NoSchedule taints follow its conditions", name)

    # -- the taint manager -----------------------------------------------------------------------

    def _added_at(self, node: str) -> Callable[[Obj], float]:
        def added_at(taint: Obj) -> float:
            at = parse_rfc3339(taint.get("timeAdded"))
            if at is not None:
                return at
            return self.taint_seen.setdefault((node, str(taint.get("key"))), self.ctx.clock())

        return added_at

    async def sync_pod(self, key: str) -> None:
        """Delete the pod when its node's NoExecute taints say so, or come back then."""
        ns, name = split_key(key)
        pod = self.pods.get(ns, name)
        if pod is None or _deleting(pod):
            self.scheduled.pop(key, None)
            if pod is not None:
                self.evicted.discard(str((pod.get("metadata") or {}).get("uid") or ""))
            return
        if str((pod.get("metadata") or {}).get("uid") or "") in self.evicted:
            return  # deleted already; the cache has not seen it yet
        node = self.nodes.get(None, _node_name(pod)) if _node_name(pod) else None
        deadline = None
        if node is not None:
            taints = _no_execute(_taints(node))
            deadline = eviction_deadline(_tolerations(pod), taints, self._added_at(_name(node)))
        if deadline is None:
            if self.scheduled.pop(key, None) is not None:
                self.ctx.recorder.event(
                    pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {key}"
                )
            return
        now = self.ctx.clock()
        if deadline > now:
            self.scheduled[key] = deadline
            self.pod_queue.add_after(key, deadline - now)
            return
        self.scheduled.pop(key, None)
        await self._evict(pod, key, now)

    async def _evict(self, pod: Obj, key: str, now: float) -> None:
        """addConditionAndDeletePod: DisruptionTarget, then an ordinary (graceful) delete."""
        ns, name = split_key(key)
        self.ctx.recorder.event(
            pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}"
        )
        raw = pod.get("status")
        status: Obj = raw if isinstance(raw, dict) else {}
        new_status = with_condition(status, DISRUPTION_TARGET, rfc3339(now))
        try:
            if new_status is not None:
                await self.ctx.writer.update_status(PODS, ns, {**pod, "status": new_status})
            uid = str((pod.get("metadata") or {}).get("uid") or "")
            await self.ctx.writer.delete(PODS, ns, name, precondition_uid=uid)
            self.evicted.add(uid)
            logger.info("evicted pod %s from node %s (NoExecute taint)", key, _node_name(pod))
        except APIError as e:
            if e.code != 404:
                raise


def _no_execute(taints: list[Obj]) -> list[Obj]:
    return [t for t in taints if t.get("effect") == NO_EXECUTE]
