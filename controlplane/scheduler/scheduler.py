"""The scheduler: kube-scheduler's scheduling queue, cache and binding cycle around the pure
algorithm of `algorithm`.

Pods reach it through the pods informer: a pending pod (no `spec.nodeName`, this scheduler's
`schedulerName` or none, not being deleted) goes to the `SchedulingQueue`; an assigned pod
goes to the `SchedulerCache`, which keeps one `NodeInfo` per node current with every event,
so an attempt costs O(nodes) and never lists anything.

One loop takes pods off the queue one at a time (decisions are sequential, as in
kube-scheduler, so each one sees the previous ones) and either:

- assumes the pod on the chosen node in the cache (so the next decisions count it before the
  informer has seen the binding) and starts the binding in the background; at most
  `bind_concurrency` writes are in flight, which is what lets a few hundred pods a second
  through a store whose writes take milliseconds. A successful binding records the
  `Scheduled` Event; a failed one forgets the assumption and puts the pod back with backoff
  (the next attempt sees the informer's state and skips a pod that got bound meanwhile);
- or records `FailedScheduling` with Kubernetes' message, sets the pod's PodScheduled
  condition to False/Unschedulable (only when that changes) and parks the pod among the
  unschedulable ones until a cluster event may help it: a node added, a node whose
  scheduling properties changed, an assigned pod deleted or finished. Then it goes back to
  the active queue, or to the backoff queue while its backoff (1 s doubling to 10 s,
  podInitialBackoff / podMaxBackoff) runs. A pod that waited 5 minutes is retried anyway.

Every write goes through `ctx.writer`, fenced by the `kube-scheduler` Lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.client.informer import Informer
from controlplane.controllers.base import Context, split_key
from controlplane.kube.defaults import DEFAULT_SCHEDULER_NAME
from controlplane.kube.errors import APIError
from controlplane.kube.resources import NODES, PODS
from controlplane.kube.storage import rfc3339

from .algorithm import (
    NodeInfo,
    is_terminal,
    node_name_of,
    node_scheduling_properties_changed,
    pod_key,
    schedule,
    truncate_message,
    with_unschedulable_condition,
)

__all__ = ["QueuedPod", "Scheduler", "SchedulerCache", "SchedulingQueue"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Write = Callable[[], Awaitable[None]]

POD_INITIAL_BACKOFF_S = 1.0  # kube-scheduler --pod-initial-backoff-seconds
POD_MAX_BACKOFF_S = 10.0  # kube-scheduler --pod-max-backoff-seconds
MAX_UNSCHEDULABLE_S = 300.0  # podMaxInUnschedulablePodsDuration
UNSCHEDULABLE_FLUSH_S = 30.0  # how often the unschedulable pods are checked for that age
# Binds in flight: each is a write through Raft (a bind takes ~130-430 ms under load on 2
# cores), so by Little's law 16 capped the scheduler near 50-120 pods/s; 64 reached 150+.
BIND_CONCURRENCY = 64
STATUS_ATTEMPTS = 3


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _priority(pod: Obj) -> int:
    value = (pod.get("spec") or {}).get("priority")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _without_status(pod: Obj) -> Obj:
    """The pod minus what changes without changing its scheduling (kube-scheduler's
    `isPodUpdated` strips the same)."""
    meta = {
        k: v
        for k, v in (pod.get("metadata") or {}).items()
        if k not in ("resourceVersion", "generation", "managedFields")
    }
    return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}


def backoff_duration(attempts: int, initial: float, maximum: float) -> float:
    """`initial` doubled for every attempt after the first, at most `maximum`."""
    duration = initial
    for _ in range(1, attempts):
        if duration >= maximum - duration:
            return maximum
        duration += duration
    return min(duration, maximum)


# -- the queue -------------------------------------------------------------------------------


@dataclass
class QueuedPod:
    """A pod the queue knows, with its scheduling history (`framework.QueuedPodInfo`)."""

    key: str
    pod: Obj
    timestamp: float  # when it last entered a queue: orders pods of equal priority
    attempts: int = 0
    cycle: int = 0  # the scheduling cycle of its last pop
    backoff_until: float = 0.0
    where: str = ""  # "active", "backoff", "unschedulable" or "in-flight"
    seq: int = 0  # identifies its current heap entry (older ones are stale)


@dataclass
class SchedulingQueue:
    """kube-scheduler's `PriorityQueue`, single-threaded: an active queue (higher priority
    first, then earlier), a backoff queue (ordered by backoff expiry) and the unschedulable
    pods (see the module docstring). `clock` is monotonic seconds.

    A pod handed out by `pop` is "in flight" until `done` (scheduled), `add_unschedulable`
    or `add_backoff` (failed), or `delete`. `move_all_to_active` during its attempt sends a
    pod that then fails to the backoff queue rather than the unschedulable pods, so the
    event that could have helped it is not lost (`moveRequestCycle`)."""

    clock: Callable[[], float] = time.monotonic
    initial_backoff: float = POD_INITIAL_BACKOFF_S
    max_backoff: float = POD_MAX_BACKOFF_S
    max_unschedulable: float = MAX_UNSCHEDULABLE_S
    pods: dict[str, QueuedPod] = field(default_factory=dict)
    _active: list[tuple[int, float, int, str]] = field(default_factory=list)
    _backoff: list[tuple[float, int, str]] = field(default_factory=list)
    _unschedulable: dict[str, QueuedPod] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    scheduling_cycle: int = 0
    move_request_cycle: int = -1
    _last_leftover_flush: float = 0.0
    wakeup: asyncio.Event | None = None  # set when a pod becomes active or backs off

    # -- placing pods --------------------------------------------------------------------------

    def _wake(self) -> None:
        """Tell the waiting loop that `pop` or `next_wakeup` may answer differently."""
        if self.wakeup is not None:
            self.wakeup.set()

    def _to_active(self, qp: QueuedPod) -> None:
        qp.where, qp.seq = "active", next(self._seq)
        qp.timestamp = self.clock()
        heapq.heappush(self._active, (-_priority(qp.pod), qp.timestamp, qp.seq, qp.key))
        self._wake()

    def _to_backoff(self, qp: QueuedPod) -> None:
        qp.where, qp.seq = "backoff", next(self._seq)
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.key))
        self._wake()

    def _to_unschedulable(self, qp: QueuedPod) -> None:
        qp.where, qp.seq = "unschedulable", next(self._seq)
        qp.timestamp = self.clock()
        self._unschedulable[qp.key] = qp

    def _requeue(self, qp: QueuedPod) -> None:
        """Active, or backoff while its backoff runs."""
        self._unschedulable.pop(qp.key, None)
        if qp.backoff_until > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    # -- informer events -----------------------------------------------------------------------

    def add(self, pod: Obj) -> None:
        """A pending pod appeared (or was seen again): queue it if it is new."""
        key = pod_key(pod)
        qp = self.pods.get(key)
        if qp is not None and _uid(qp.pod) == _uid(pod):
            qp.pod = pod
            return
        if qp is not None:
            self.delete(key)
        qp = self.pods[key] = QueuedPod(key, pod, self.clock())
        self._to_active(qp)

    def update(self, old: Obj, new: Obj) -> None:
        """A pending pod changed: an unschedulable pod whose spec or metadata changed may fit
        now and is requeued; a status-only change just refreshes the stored object."""
        key = pod_key(new)
        qp = self.pods.get(key)
        if qp is None or _uid(qp.pod) != _uid(new):
            self.add(new)
            return
        qp.pod = new
        if qp.where == "unschedulable" and _without_status(old) != _without_status(new):
            self._requeue(qp)

    def delete(self, key: str) -> None:
        """Forget the pod (deleted, bound, or no longer this scheduler's)."""
        qp = self.pods.pop(key, None)
        if qp is not None:
            self._unschedulable.pop(key, None)
            qp.where = ""  # its heap entries are stale now

    def move_all_to_active(self, event: str) -> None:
        """A cluster event may make unschedulable pods fit: requeue them all."""
        moved = len(self._unschedulable)
        for qp in list(self._unschedulable.values()):
            self._requeue(qp)
        self.move_request_cycle = self.scheduling_cycle
        if moved:
            logger.debug("moved unschedulable pods event=%s count=%d", event, moved)

    # -- the scheduling loop -------------------------------------------------------------------

    def flush(self) -> None:
        """Pods whose backoff ended become active; pods unschedulable for
        `max_unschedulable` are requeued (checked every 30 s, as kube-scheduler does)."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.where == "backoff" and qp.seq == seq:
                self._to_active(qp)
        if now - self._last_leftover_flush >= UNSCHEDULABLE_FLUSH_S:
            self._last_leftover_flush = now
            for qp in list(self._unschedulable.values()):
                if now - qp.timestamp >= self.max_unschedulable:
                    self._requeue(qp)

    def pop(self) -> QueuedPod | None:
        """The next pod to schedule, now in flight; None when no pod is active."""
        self.flush()
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is None or qp.where != "active" or qp.seq != seq:
                continue  # deleted or moved since it was pushed
            qp.where = "in-flight"
            qp.attempts += 1
            self.scheduling_cycle += 1
            qp.cycle = self.scheduling_cycle
            return qp
        return None

    def next_wakeup(self) -> float | None:
        """Seconds until `pop` may have something without an event (a backoff ending, the
        unschedulable pods' periodic check); None when only an event can help."""
        now = self.clock()
        times: list[float] = []
        if self._backoff:
            times.append(self._backoff[0][0])
        if self._unschedulable:
            times.append(self._last_leftover_flush + UNSCHEDULABLE_FLUSH_S)
        return max(0.0, min(times) - now) if times else None

    def done(self, key: str) -> None:
        """The pod in flight was scheduled: forget it."""
        qp = self.pods.get(key)
        if qp is not None and qp.where == "in-flight":
            del self.pods[key]

    def _failed(self, qp: QueuedPod, pod: Obj | None) -> QueuedPod | None:
        current = self.pods.get(qp.key)
        if current is not qp or qp.where != "in-flight":
            return None  # deleted or replaced during the attempt
        if pod is not None:
            qp.pod = pod
        qp.backoff_until = self.clock() + backoff_duration(
            qp.attempts, self.initial_backoff, self.max_backoff
        )
        return qp

    def add_unschedulable(self, qp: QueuedPod, pod: Obj | None = None) -> None:
        """The pod in flight fits no node: park it until a cluster event (see the class)."""
        if self._failed(qp, pod) is None:
            return
        if self.move_request_cycle >= qp.cycle:
            self._to_backoff(qp)
        else:
            self._to_unschedulable(qp)

    def add_backoff(self, qp: QueuedPod, pod: Obj | None = None) -> None:
        """The attempt of the pod in flight failed for another reason (a binding error):
        retry after its backoff."""
        if self._failed(qp, pod) is not None:
            self._to_backoff(qp)

    # -- introspection -------------------------------------------------------------------------

    def pending(self) -> dict[str, int]:
        """How many pods are in each queue (for logs and tests)."""
        counts = {"active": 0, "backoff": 0, "unschedulable": 0, "in-flight": 0}
        for qp in self.pods.values():
            counts[qp.where] = counts.get(qp.where, 0) + 1
        return counts


# -- the cache -------------------------------------------------------------------------------


class SchedulerCache:
    """Node infos kept current by informer events, plus the pods assumed on a node while
    their binding is in flight (kube-scheduler's cache).

    An assumed pod counts on its node at once; the informer's add of the bound pod confirms
    it (on whichever node the pod really is); `forget` undoes it when the binding fails."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}
        self._assumed: set[str] = set()

    def _info(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        return info

    def _drop_if_empty(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is not None and info.node is None and not info.pods:
            del self.nodes[name]

    # -- nodes ---------------------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        self._info(node_name_of(node)).set_node(node)

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is not None:
            info.set_node(None)  # its pods stay counted until they are deleted
            self._drop_if_empty(name)

    # -- pods ----------------------------------------------------------------------------------

    def add_pod(self, pod: Obj) -> None:
        """An assigned pod as the informer shows it (add or update)."""
        key = pod_key(pod)
        self.remove_pod(key)
        node = str(pod["spec"]["nodeName"])
        self._info(node).add_pod(pod)
        self._pod_node[key] = node

    def remove_pod(self, key: str) -> bool:
        """Forget the pod wherever it counts (assumed or not); False if it counted nowhere."""
        node = self._pod_node.pop(key, None)
        self._assumed.discard(key)
        if node is None:
            return False
        info = self.nodes.get(node)
        removed = info is not None and info.remove_pod(key)
        self._drop_if_empty(node)
        return removed

    def assume(self, pod: Obj, node: str) -> None:
        """Count `pod` on `node` before the informer shows it there."""
        assumed = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
        self.add_pod(assumed)
        self._assumed.add(pod_key(pod))

    def forget(self, key: str) -> None:
        """Undo `assume` (the binding failed); nothing if the informer confirmed it."""
        if key in self._assumed:
            self.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed


# -- the controller --------------------------------------------------------------------------


class Scheduler:
    """The scheduler as a `Controller` (see the module docstring); run it under the
    `kube-scheduler` Lease. State is rebuilt from the informers on every `setup`, so a
    scheduler that lost and regained its Lease starts from what the API says."""

    name = "scheduler"

    def __init__(
        self,
        *,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        bind_concurrency: int = BIND_CONCURRENCY,
        initial_backoff: float = POD_INITIAL_BACKOFF_S,
        max_backoff: float = POD_MAX_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if bind_concurrency < 1:
            raise ValueError(f"bind_concurrency must be at least 1, not {bind_concurrency}")
        if not 0 < initial_backoff <= max_backoff:
            raise ValueError(
                "backoffs must satisfy 0 < initial_backoff <= max_backoff "
                f"(got {initial_backoff}, {max_backoff})"
            )
        self.scheduler_name = scheduler_name
        self.bind_concurrency = bind_concurrency
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.cache = SchedulerCache()
        self.queue = self._new_queue()
        self.scheduled = 0  # bindings that succeeded (for benchmarks and logs)
        self._tie_break = 0
        self._pods: Informer | None = None

    def _new_queue(self) -> SchedulingQueue:
        return SchedulingQueue(
            clock=self.clock, initial_backoff=self.initial_backoff, max_backoff=self.max_backoff
        )

    # -- setup: informer handlers --------------------------------------------------------------

    def setup(self, ctx: Context) -> None:
        self.cache = SchedulerCache()
        self.queue = self._new_queue()
        nodes = ctx.informers.informer_for(NODES)
        pods = ctx.informers.informer_for(PODS)
        self._pods = pods
        nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    def responsible_for(self, pod: Obj) -> bool:
        """A pending pod this scheduler should place."""
        name = (pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME
        return (
            name == self.scheduler_name
            and not _assigned(pod)
            and not _terminating(pod)
            and not is_terminal(pod)
        )

    def _on_node_add(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active("NodeAdd")

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.set_node(new)
        if node_scheduling_properties_changed(old, new):
            self.queue.move_all_to_active("NodeUpdate")

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node_name_of(node))

    def _on_pod_add(self, pod: Obj) -> None:
        if _assigned(pod):
            if not is_terminal(pod):
                self.cache.add_pod(pod)
        elif self.responsible_for(pod):
            self.queue.add(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        key = pod_key(new)
        if _assigned(new):
            self.queue.delete(key)
            if not is_terminal(new):
                self.cache.add_pod(new)
            elif self.cache.remove_pod(key):
                self.queue.move_all_to_active("AssignedPodTerminated")
        elif self.responsible_for(new):
            self.queue.update(old, new)
        else:
            self.queue.delete(key)

    def _on_pod_delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self.cache.remove_pod(key):
            self.queue.move_all_to_active("AssignedPodDelete")

    # -- run: the scheduling loop --------------------------------------------------------------

    async def run(self, ctx: Context) -> None:
        """Schedule pods until cancelled; bindings and status writes run alongside, at most
        `bind_concurrency` at a time."""
        wakeup = asyncio.Event()
        self.queue.wakeup = wakeup
        writes = asyncio.Semaphore(self.bind_concurrency)
        async with asyncio.TaskGroup() as tg:
            while True:
                await writes.acquire()  # before the decision: it sees every event until now
                qp = self.queue.pop()
                if qp is None:
                    writes.release()
                    wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), self.queue.next_wakeup())
                    continue
                try:
                    write = self.schedule_one(ctx, qp)
                except Exception:
                    writes.release()
                    logger.exception("scheduling pod=%s crashed; retrying it", qp.key)
                    self.queue.add_backoff(qp)
                    continue
                if write is None:
                    writes.release()
                else:
                    tg.create_task(self._write(write, writes))
                await asyncio.sleep(0)  # let informer events in between two decisions

    @staticmethod
    async def _write(write: Write, writes: asyncio.Semaphore) -> None:
        try:
            await write()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("scheduler write crashed")
        finally:
            writes.release()

    def schedule_one(self, ctx: Context, qp: QueuedPod) -> Write | None:
        """Decide for the pod in flight `qp` (synchronously: the cache cannot change
        meanwhile) and return the write to make, if any (a binding or a status update)."""
        pod = self._current(qp)
        if pod is None or self.cache.is_assumed(qp.key):
            self.queue.delete(qp.key)  # gone, bound, or being bound
            return None
        self._tie_break += 1
        result = schedule(pod, self.cache.nodes, tie_break=self._tie_break)
        if result.node is None:
            logger.debug("unschedulable pod=%s: %s", qp.key, result.message)
            self.queue.add_unschedulable(qp, pod)
            ctx.recorder.event(
                _with_kind(pod), "Warning", "FailedScheduling", truncate_message(result.message)
            )
            uid, message = _uid(pod), result.message
            return lambda: self._mark_unschedulable(ctx, qp.key, uid, message)
        node = result.node
        self.cache.assume(pod, node)
        return lambda: self._bind(ctx, qp, pod, node)

    def _current(self, qp: QueuedPod) -> Obj | None:
        """The informer's latest copy of the pod, if it still needs scheduling."""
        if self._pods is None:
            return qp.pod
        ns, name = split_key(qp.key)
        pod = self._pods.get(ns, name)
        if pod is None or _uid(pod) != _uid(qp.pod) or not self.responsible_for(pod):
            return None
        return pod

    async def _bind(self, ctx: Context, qp: QueuedPod, pod: Obj, node: str) -> None:
        ns, name = split_key(qp.key)
        try:
            await ctx.writer.bind(ns, name, node)
        except APIError as e:
            self.cache.forget(qp.key)
            if e.code == 404:
                self.queue.delete(qp.key)
                return
            logger.info(
                "binding pod=%s node=%s failed code=%d: %s", qp.key, node, e.code, e.message
            )
            if e.code != 409:  # 409: bound elsewhere, being deleted, or fenced: no news
                ctx.recorder.event(
                    _with_kind(pod),
                    "Warning",
                    "FailedScheduling",
                    truncate_message(f"Binding rejected: {e.message}"),
                )
            self.queue.add_backoff(qp)
            return
        except Exception:
            self.cache.forget(qp.key)
            self.queue.add_backoff(qp)
            raise
        self.queue.done(qp.key)
        self.scheduled += 1
        ctx.recorder.event(
            _with_kind(pod), "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}"
        )

    async def _mark_unschedulable(self, ctx: Context, key: str, uid: str, message: str) -> None:
        """PodScheduled=False/Unschedulable with `message`, written only when it changes;
        a conflict re-reads the pod (it may have been bound meanwhile)."""
        ns, name = split_key(key)
        pod = self._pods.get(ns, name) if self._pods is not None else None
        for _attempt in range(STATUS_ATTEMPTS):
            if pod is None or _uid(pod) != uid or _assigned(pod):
                return
            updated = with_unschedulable_condition(pod, message, rfc3339(ctx.clock()))
            if updated is None:
                return
            try:
                await ctx.writer.update_status(PODS, ns, updated)
                return
            except APIError as e:
                if e.code != 409:
                    if e.code != 404:
                        logger.info("pod=%s status not updated code=%d: %s", key, e.code, e.message)
                    return
            try:
                pod = await ctx.client.get(PODS, ns, name)
            except APIError:
                return


def _with_kind(pod: Obj) -> Obj:
    """Informer objects of a list may lack kind and apiVersion; Events need them."""
    if pod.get("kind") and pod.get("apiVersion"):
        return pod
    return {**pod, "kind": "Pod", "apiVersion": "v1"}
