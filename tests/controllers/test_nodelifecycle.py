"""The node lifecycle controller: its decisions as tables (node health by observed lease
changes, conditions, taints, the zone's rate, who is evicted when), the driver with a fake
clock (a restart and a stalled leader give every node a full grace), then the whole
controller in process over the gRPC API on a `LocalBackend` store.

Also the harness the other controller tests share (`running`, `fast_timers`, objects)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.events import EventRecorder
from controlplane.client.informer import SharedInformerFactory
from controlplane.client.resources import ResourceClient
from controlplane.config import PROFILES, TIMER_KEYS, Timers
from controlplane.controllers.base import Context, Controller, Writer
from controlplane.controllers.nodelifecycle import (
    NODE_LEASE_NAMESPACE,
    HealthTracker,
    NodeLifecycleController,
    TokenBucket,
    ZoneState,
    compute_zone_state,
    eviction_deadline,
    eviction_qps,
    mark_node_unknown,
    mark_pod_not_ready,
    no_execute_taints,
    no_schedule_taints_update,
    ready_status,
    swap_taints,
    tolerates,
)
from controlplane.kube.admission import NOT_READY_TAINT, UNREACHABLE_TAINT
from controlplane.kube.errors import APIError
from controlplane.kube.resources import EVENTS, LEASES, NAMESPACES, NODES, PODS
from controlplane.kube.storage import ObjectStore, parse_rfc3339, rfc3339

Obj = dict[str, Any]

NOW = "2025-01-01T00:00:10Z"
EARLIER = "2025-01-01T00:00:00Z"


# -- the shared harness ----------------------------------------------------------------------------


def fast_timers(**overrides: float) -> Timers:
    """The demo profile, faster where a test waits for the controller."""
    values: dict[str, Any] = {k: float(PROFILES["demo"][k]) for k in TIMER_KEYS}
    values.update(node_monitor_period_s=0.05, node_monitor_grace_s=0.6, node_eviction_rate=50.0)
    values.update(overrides)
    return Timers(**values)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(
    client: ResourceClient,
    controllers: Sequence[Controller],
    timers: Timers | None = None,
    *,
    clock: FakeClock | None = None,
    start: bool = True,
) -> AsyncIterator[Context]:
    """`controllers` set up with a hand-built Context (an unfenced Writer), the informers
    synced, and (`start`) their `run` going until the block ends."""
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client, "kube-controller-manager")
    ctx = Context(
        client=client,
        writer=Writer(client, fence=lambda: None),
        informers=informers,
        recorder=recorder,
        timers=timers or fast_timers(),
        identity="master-1",
        **({"clock": clock} if clock is not None else {}),
    )
    for c in controllers:
        c.setup(ctx)
    recorder.start()
    informers.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        assert await informers.wait_for_cache_sync(timeout=20)
        if start:
            tasks = [asyncio.create_task(c.run(ctx)) for c in controllers]
        yield ctx
    finally:
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await informers.stop()
        await recorder.stop()
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r


def node_obj(name: str, ready: str | None = "True", heartbeat: str = EARLIER, **spec: Any) -> Obj:
    status: Obj = {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    if ready is not None:
        status["conditions"] = [
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": EARLIER,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": status,
    }


def pod_obj(
    name: str,
    node: str = "",
    *,
    labels: dict[str, str] | None = None,
    tolerations: list[Obj] | None = None,
    ports: list[Obj] | None = None,
    owners: list[Obj] | None = None,
) -> Obj:
    container: Obj = {"name": "app", "image": "nginx"}
    if ports:
        container["ports"] = ports
    spec: Obj = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    if tolerations is not None:
        spec["tolerations"] = tolerations
    meta: Obj = {"name": name, "namespace": "default", "labels": labels or {"app": "web"}}
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def running_status(ip: str, ready: bool = True) -> Obj:
    return {
        "phase": "Running",
        "podIP": ip,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": EARLIER}
        ],
    }


async def set_pod_status(store: ObjectStore, name: str, status: Obj) -> Obj:
    cur = await store.get(PODS, "default", name)
    return await store.update(
        PODS, "default", name, {**cur, "status": status}, subresource="status"
    )


async def add_node(store: ObjectStore, name: str, ready: str = "True") -> None:
    obj = node_obj(name, ready)
    created = await store.create(NODES, "", obj)
    await store.update(NODES, "", name, {**created, "status": obj["status"]}, subresource="status")
    await renew(store, name)


async def renew(store: ObjectStore, node: str, when: str | None = None) -> None:
    """What a kubelet does every node_lease_renew_s: move its Lease's renewTime."""
    stamp = (
        when or f"2025-01-01T00:00:00.{int(asyncio.get_running_loop().time() * 1e6) % 10**6:06d}Z"
    )
    try:
        lease = await store.get(LEASES, NODE_LEASE_NAMESPACE, node)
    except APIError as e:
        if e.code != 404:
            raise
        await store.create(
            LEASES,
            NODE_LEASE_NAMESPACE,
            {"metadata": {"name": node}, "spec": {"holderIdentity": node, "renewTime": stamp}},
        )
        return
    lease["spec"]["renewTime"] = stamp
    await store.update(LEASES, NODE_LEASE_NAMESPACE, node, lease)


def toleration(key: str, seconds: int | None = None, **kw: Any) -> Obj:
    t: Obj = {"key": key, "operator": "Exists", "effect": "NoExecute", **kw}
    if seconds is not None:
        t["tolerationSeconds"] = seconds
    return t


# -- node health -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observations", "at", "stale"),
    [
        pytest.param(
            [(0, "r1", None), (1, "r2", None), (2, "r3", None)], 5.9, False, id="renewing"
        ),
        pytest.param([(0, "r1", None), (1, "r2", None), (3, "r2", None)], 5.1, True, id="stopped"),
        pytest.param(
            [(0, "r1", None), (1, "r2", None), (3, "r2", None)], 5.0, False, id="at-grace"
        ),
        pytest.param([(100, "2000-01-01T00:00:00Z", None)], 103.9, False, id="ancient-at-start"),
        pytest.param([(100, "2000-01-01T00:00:00Z", None)], 104.1, True, id="ancient-after-grace"),
        pytest.param([(0, "r", "h1"), (3, "r", "h2")], 6.9, False, id="heartbeat-is-life"),
        pytest.param([(0, "r9", None), (3, "r1", None)], 6.9, False, id="renew-went-back"),
        pytest.param([(0, None, None)], 4.1, True, id="no-lease-ever"),
        pytest.param([], 100.0, False, id="never-observed"),
    ],
)
def test_health_is_judged_by_observed_changes(
    observations: list[tuple[float, str | None, str | None]], at: float, stale: bool
) -> None:
    """A node is stale when no change of its lease's renewTime (or heartbeat) was observed
    for the grace (4 s) on the controller's clock; the renew time's value never counts,
    so an old one seen first gets a full grace."""
    tracker = HealthTracker(grace=4.0)
    for t, renew_time, heartbeat in observations:
        tracker.observe("w", renew_time, heartbeat, t)
    assert tracker.stale("w", at) is stale


def test_a_restarted_controller_gives_a_full_grace() -> None:
    """The leader that watched a lease stop is gone; the new one (a new tracker) sees the
    same old renewTime and waits a full grace from its own start, as Kubernetes does."""
    old = HealthTracker(grace=4.0)
    old.observe("w", "r1", None, 0.0)
    assert old.stale("w", 10.0)
    new = HealthTracker(grace=4.0)
    new.observe("w", "r1", None, 10.0)
    assert not new.stale("w", 13.9)
    new.observe("w", "r1", None, 14.1)
    assert new.stale("w", 14.1)


def test_restart_all_forgives_what_was_not_observed() -> None:
    """After a stall of the controller's own loop every node starts a new grace."""
    tracker = HealthTracker(grace=4.0)
    tracker.observe("a", "r1", None, 0.0)
    tracker.restart_all(20.0)
    assert not tracker.stale("a", 23.0)
    assert tracker.stale("a", 24.5)


@pytest.mark.parametrize("grace", [0.0, -1.0])
def test_tracker_rejects_a_bad_grace(grace: float) -> None:
    with pytest.raises(ValueError, match="node_monitor_grace_s"):
        HealthTracker(grace)


def conditions(status: Obj | None) -> dict[str, tuple[str, str]]:
    assert status is not None
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("ready", "want"),
    [
        pytest.param(
            "True",
            {
                "Ready": ("Unknown", "NodeStatusUnknown"),
                "MemoryPressure": ("Unknown", "NodeStatusNeverUpdated"),
                "DiskPressure": ("Unknown", "NodeStatusNeverUpdated"),
                "PIDPressure": ("Unknown", "NodeStatusNeverUpdated"),
            },
            id="ready",
        ),
        pytest.param(
            "False",
            {
                "Ready": ("Unknown", "NodeStatusUnknown"),
                "MemoryPressure": ("Unknown", "NodeStatusNeverUpdated"),
                "DiskPressure": ("Unknown", "NodeStatusNeverUpdated"),
                "PIDPressure": ("Unknown", "NodeStatusNeverUpdated"),
            },
            id="not-ready",
        ),
        pytest.param(
            None,
            {
                t: ("Unknown", "NodeStatusNeverUpdated")
                for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
            },
            id="never-posted",
        ),
    ],
)
def test_mark_node_unknown(ready: str | None, want: dict[str, tuple[str, str]]) -> None:
    """Kubelet stopped posting node status: every monitored condition Unknown."""
    node = node_obj("w", ready, heartbeat="2025-01-01T00:00:05Z")
    status = mark_node_unknown(node, NOW)
    assert conditions(status) == want
    assert status is not None
    cond = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert cond["lastTransitionTime"] == NOW
    if ready is not None:
        assert cond["message"] == "Kubelet stopped posting node status."
        assert cond["lastHeartbeatTime"] == "2025-01-01T00:00:05Z", "the kubelet's, kept"
    assert mark_node_unknown({**node, "status": status}, NOW) is None, "already Unknown"
    assert node["status"].get("conditions", [{}])[0].get("status") == ready, "not mutated"


@pytest.mark.parametrize(
    ("status", "changed"),
    [
        pytest.param(running_status("10.0.0.1"), True, id="ready"),
        pytest.param(running_status("10.0.0.1", ready=False), False, id="not-ready"),
        pytest.param({"phase": "Pending"}, False, id="no-conditions"),
    ],
)
def test_mark_pod_not_ready(status: Obj, changed: bool) -> None:
    """MarkPodsNotReady: Ready=False with a new transition time, nothing else."""
    pod = {**pod_obj("p", "w"), "status": status}
    new = mark_pod_not_ready(pod, NOW)
    if not changed:
        assert new is None
        return
    assert new is not None
    assert new["conditions"] == [{"type": "Ready", "status": "False", "lastTransitionTime": NOW}]
    assert new["podIP"] == "10.0.0.1"


# -- taints ----------------------------------------------------------------------------------------


def ns_taint(key: str) -> Obj:
    return {"key": key, "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("ready", "spec", "want"),
    [
        pytest.param("True", {}, None, id="ready-clean"),
        pytest.param("False", {}, [ns_taint(NOT_READY_TAINT)], id="not-ready"),
        pytest.param("Unknown", {}, [ns_taint(UNREACHABLE_TAINT)], id="unknown"),
        pytest.param(
            "Unknown",
            {"taints": [ns_taint(NOT_READY_TAINT)]},
            [ns_taint(UNREACHABLE_TAINT)],
            id="not-ready-becomes-unreachable",
        ),
        pytest.param("True", {"taints": [ns_taint(NOT_READY_TAINT)]}, [], id="registered-ready"),
        pytest.param(
            "True",
            {"unschedulable": True},
            [ns_taint("node.kubernetes.io/unschedulable")],
            id="cordoned",
        ),
        pytest.param(
            "True",
            {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
            None,
            id="user-taint-left-alone",
        ),
        pytest.param(
            "True",
            {"taints": [{"key": UNREACHABLE_TAINT, "effect": "NoExecute"}]},
            None,
            id="no-execute-is-not-this-pass",
        ),
    ],
)
def test_no_schedule_taints_follow_conditions(
    ready: str, spec: Obj, want: list[Obj] | None
) -> None:
    """TaintNodesByCondition: Ready False/Unknown and unschedulable map to NoSchedule
    taints; other taints are not touched."""
    assert no_schedule_taints_update(node_obj("w", ready, **spec)) == want


def test_pressure_condition_taints() -> None:
    node = node_obj("w")
    node["status"]["conditions"].append({"type": "MemoryPressure", "status": "True"})
    assert no_schedule_taints_update(node) == [ns_taint("node.kubernetes.io/memory-pressure")]


@pytest.mark.parametrize(
    ("ready", "want"),
    [
        ("True", None),
        (None, None),
        ("False", (NOT_READY_TAINT, UNREACHABLE_TAINT)),
        ("Unknown", (UNREACHABLE_TAINT, NOT_READY_TAINT)),
    ],
)
def test_no_execute_taint_mirrors_ready(ready: str | None, want: tuple[str, str] | None) -> None:
    assert no_execute_taints(ready) == want


def test_swap_taints_keeps_time_added_and_reports_no_change() -> None:
    old = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": EARLIER}
    user = {"key": "dedicated", "effect": "NoExecute"}
    new = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": NOW}
    assert swap_taints([user, old], [new], []) is None, "present: keeps its timeAdded"
    nr = {"key": NOT_READY_TAINT, "effect": "NoExecute", "timeAdded": NOW}
    assert swap_taints([user, old], [nr], [old]) == [user, nr]


# -- the zone and the rate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        pytest.param(["True"] * 3, ZoneState.NORMAL, id="all-ready"),
        pytest.param(["True", "True", "Unknown"], ZoneState.NORMAL, id="one-down"),
        pytest.param(["True", "Unknown", "Unknown"], ZoneState.NORMAL, id="two-down-of-three"),
        pytest.param(["True", "True"] + ["Unknown"] * 3, ZoneState.PARTIAL_DISRUPTION, id="3of5"),
        pytest.param(["True"] * 3 + ["Unknown"] * 3, ZoneState.NORMAL, id="3of6-below-55pct"),
        pytest.param(["Unknown", None, "False"], ZoneState.FULL_DISRUPTION, id="none-ready"),
    ],
)
def test_zone_state(statuses: list[str | None], state: ZoneState) -> None:
    """ComputeZoneState with --unhealthy-zone-threshold 0.55."""
    assert compute_zone_state(statuses) is state


@pytest.mark.parametrize(
    ("state", "size", "qps"),
    [
        (ZoneState.NORMAL, 3, 0.1),
        (ZoneState.FULL_DISRUPTION, 3, 0.1),
        (ZoneState.PARTIAL_DISRUPTION, 10, 0.0),
        (ZoneState.PARTIAL_DISRUPTION, 51, 0.01),
    ],
)
def test_eviction_qps(state: ZoneState, size: int, qps: float) -> None:
    """A partially disrupted zone is slowed (large) or stopped (small)."""
    assert eviction_qps(state, size, 0.1) == qps


@pytest.mark.parametrize(
    ("qps", "times", "accepted"),
    [
        pytest.param(
            1.0, [0.0, 0.1, 0.9, 1.0, 1.5, 3.0], [True, False, False, True, False, True], id="1/s"
        ),
        pytest.param(0.1, [0.0, 5.0, 10.0, 10.5], [True, False, True, False], id="kubernetes"),
        pytest.param(0.0, [0.0, 100.0], [False, False], id="stopped"),
        pytest.param(2.0, [0.0, 0.0, 0.5], [True, False, True], id="burst-1"),
    ],
)
def test_token_bucket(qps: float, times: list[float], accepted: list[bool]) -> None:
    """--node-eviction-rate nodes per second, burst 1, starting full."""
    bucket = TokenBucket(qps, 1, now=0.0)
    assert [bucket.try_accept(t) for t in times] == accepted


def test_token_bucket_swap_starts_full() -> None:
    bucket = TokenBucket(0.0, 1, now=0.0)
    assert not bucket.try_accept(1.0)
    bucket.swap(1.0, now=2.0)
    assert bucket.try_accept(2.0)
    with pytest.raises(ValueError, match="qps"):
        TokenBucket(-1.0, 1, now=0.0)


# -- who is evicted when ---------------------------------------------------------------------------

UNREACH = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": NOW}
NOTREADY = {"key": NOT_READY_TAINT, "effect": "NoExecute", "timeAdded": EARLIER}
T_NOW = parse_rfc3339(NOW) or 0.0
T_EARLIER = parse_rfc3339(EARLIER) or 0.0


@pytest.mark.parametrize(
    ("toleration_", "taint", "ok"),
    [
        ({"key": UNREACHABLE_TAINT, "operator": "Exists"}, UNREACH, True),
        ({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}, UNREACH, False),
        ({"operator": "Exists"}, UNREACH, True),
        ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
        ({"key": "k", "value": "w", "operator": "Equal"}, {"key": "k", "value": "v"}, False),
        ({"key": "other", "operator": "Exists"}, UNREACH, False),
        ({"key": "k", "operator": "Gt"}, {"key": "k"}, False),
    ],
)
def test_tolerates(toleration_: Obj, taint: Obj, ok: bool) -> None:
    """Toleration.ToleratesTaint."""
    assert tolerates(toleration_, taint) is ok


@pytest.mark.parametrize(
    ("tolerations", "taints", "deadline"),
    [
        pytest.param([], [UNREACH], -math.inf, id="intolerant-now"),
        pytest.param([toleration(UNREACHABLE_TAINT, 300)], [UNREACH], T_NOW + 300, id="300s"),
        pytest.param([toleration(UNREACHABLE_TAINT)], [UNREACH], None, id="forever"),
        pytest.param([toleration(UNREACHABLE_TAINT, 0)], [UNREACH], T_NOW, id="zero"),
        pytest.param([toleration(UNREACHABLE_TAINT, -5)], [UNREACH], T_NOW, id="negative"),
        pytest.param(
            [toleration(UNREACHABLE_TAINT, 300), toleration(NOT_READY_TAINT, 300)],
            [UNREACH, NOTREADY],
            T_EARLIER + 300,
            id="earliest-taint",
        ),
        pytest.param(
            [toleration(UNREACHABLE_TAINT, 300)],
            [UNREACH, NOTREADY],
            -math.inf,
            id="one-untolerated",
        ),
        pytest.param(
            [toleration(UNREACHABLE_TAINT), toleration(UNREACHABLE_TAINT, 5)],
            [UNREACH],
            None,
            id="first-match-wins",
        ),
        pytest.param([], [{"key": "x", "effect": "NoSchedule"}], None, id="noschedule-ignored"),
        pytest.param([], [], None, id="no-taints"),
    ],
)
def test_eviction_deadline(
    tolerations: list[Obj], taints: list[Obj], deadline: float | None
) -> None:
    """The taint manager: evict at once when a NoExecute taint is not tolerated, else at
    timeAdded + tolerationSeconds of the first matching toleration, or never."""
    got = eviction_deadline(tolerations, taints, lambda t: parse_rfc3339(t["timeAdded"]) or 0.0)
    assert got == deadline


# -- the driver with a fake clock ------------------------------------------------------------------


async def ready_of(client: ResourceClient, node: str) -> str | None:
    return ready_status(await client.get(NODES, "", node))


def seen_renewal(ctl: NodeLifecycleController, node: str, prefix: str) -> bool:
    """The controller's lease informer has a renewTime of `node` starting with `prefix`."""
    lease = ctl.leases.get(NODE_LEASE_NAMESPACE, node) or {}
    return str(lease.get("spec", {}).get("renewTime", "")).startswith(prefix)


def test_monitor_never_judges_by_timestamps() -> None:
    """Driving `monitor_node_health` with a fake clock: a new leader with ancient leases
    marks nothing before a full grace; a renewed lease keeps a node Ready; a stall of the
    leader's loop (a pause) forgives everyone; only a lease not seen to change for a grace
    turns the node Unknown."""

    async def body() -> None:
        async with cluster() as c:
            await c.store.create(NAMESPACES, "", {"metadata": {"name": NODE_LEASE_NAMESPACE}})
            for n in ("alive", "dead"):
                await add_node(c.store, n)
                await renew(c.store, n, "2000-01-01T00:00:00.000000Z")  # an ancient renewTime
            client = c.client()
            clock = FakeClock(1000.0)
            ctl = NodeLifecycleController()
            async with running(
                client, [ctl], fast_timers(node_monitor_grace_s=4.0), clock=clock, start=False
            ):
                await ctl.monitor_node_health()
                clock.now += 3.0
                await ctl.monitor_node_health()
                assert await ready_of(client, "dead") == "True", "a full grace from the start"

                await renew(c.store, "alive", "2000-01-01T00:00:01.000000Z")
                await eventually(
                    lambda: seen_renewal(ctl, "alive", "2000-01-01T00:00:01"),
                    "the informer sees the renewal",
                )
                clock.now += 2.0  # t=1005: the renewal is observed now
                await ctl.monitor_node_health()
                assert await ready_of(client, "dead") == "Unknown"
                assert await ready_of(client, "alive") == "True"

                clock.now += 60.0  # the leader's loop stalled (SIGSTOP): nothing was observed
                await renew(c.store, "dead", "2000-01-01T00:00:02.000000Z")  # came back meanwhile
                await eventually(
                    lambda: seen_renewal(ctl, "dead", "2000-01-01T00:00:02"),
                    "the informer sees the renewal",
                )
                await ctl.monitor_node_health()
                assert await ready_of(client, "alive") == "True", "a stall forgives"
                clock.now += 1.0
                await ctl.monitor_node_health()
                assert await ready_of(client, "alive") == "True"

    run(body())


def test_tainting_is_rate_limited_per_node() -> None:
    """Two nodes go Unknown; at 1 node/s the NoExecute pass taints one, then nothing until
    the bucket refills, then the other (the zone limiter, one zone of 4 nodes)."""

    async def body() -> None:
        async with cluster() as c:
            await c.store.create(NAMESPACES, "", {"metadata": {"name": NODE_LEASE_NAMESPACE}})
            for n in ("a", "b", "c", "d"):
                await add_node(c.store, n)
            client = c.client()
            clock = FakeClock(1000.0)
            ctl = NodeLifecycleController()
            timers = fast_timers(node_monitor_grace_s=4.0, node_eviction_rate=1.0)
            async with running(client, [ctl], timers, clock=clock, start=False):
                await ctl.monitor_node_health()
                clock.now += 3.0
                await ctl.monitor_node_health()
                clock.now += 2.0  # a and b: 5 s without a change
                for n in ("c", "d"):
                    await renew(c.store, n, f"2025-01-01T00:00:0{ord(n) - 96}Z")
                await eventually(
                    lambda: all(seen_renewal(ctl, n, "2025") for n in ("c", "d")),
                    "the informer sees the renewals",
                )
                await ctl.monitor_node_health()  # a and b: Unknown, queued for NoExecute
                assert list(ctl.tainting) == ["a", "b"]
                await eventually(
                    lambda: all(
                        ready_status(ctl.nodes.get(None, n) or {}) == "Unknown" for n in "ab"
                    ),
                    "the informer sees a and b Unknown",
                )

                async def tainted() -> list[str]:
                    out = []
                    for n in ("a", "b", "c", "d"):
                        node = await client.get(NODES, "", n)
                        taints = node["spec"].get("taints") or []
                        if any(
                            t["key"] == UNREACHABLE_TAINT and t["effect"] == "NoExecute"
                            for t in taints
                        ):
                            out.append(n)
                    return out

                await ctl.no_execute_tainting_pass()
                assert await tainted() == ["a"]
                clock.now += 0.5
                await ctl.no_execute_tainting_pass()
                assert await tainted() == ["a"], "no token yet"
                clock.now += 0.5
                await ctl.no_execute_tainting_pass()
                assert await tainted() == ["a", "b"]

    run(body())


# -- in process ------------------------------------------------------------------------------------


def test_dead_node_goes_unknown_its_pods_not_ready_then_evicted() -> None:
    """worker-1 stops renewing its Lease: after the grace it is Unknown (NodeNotReady
    Event), tainted unreachable NoExecute and NoSchedule, its pods Ready=False; a pod that
    does not tolerate the taint is deleted at once, one tolerating it for 2 s no earlier
    than 2 s after the taint's timeAdded, one tolerating it for ever stays. Deleted pods
    stay Terminating (the kubelet is gone). Pods elsewhere are untouched. When worker-1
    renews and reports Ready again, its taints go."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            await store.create(NAMESPACES, "", {"metadata": {"name": NODE_LEASE_NAMESPACE}})
            for n in ("worker-1", "worker-2", "worker-3"):
                await add_node(store, n)
            pods = {
                "intolerant": pod_obj("intolerant", "worker-1", tolerations=[]),
                "tolerant": pod_obj(
                    "tolerant", "worker-1", tolerations=[toleration(UNREACHABLE_TAINT, 2)]
                ),
                "forever": pod_obj(
                    "forever", "worker-1", tolerations=[toleration(UNREACHABLE_TAINT)]
                ),
                "elsewhere": pod_obj("elsewhere", "worker-2", tolerations=[]),
            }
            for i, (name, p) in enumerate(pods.items()):
                await store.create(PODS, "default", p)
                await set_pod_status(store, name, running_status(f"10.0.0.{i + 1}"))

            stop = asyncio.Event()
            alive = {"worker-2", "worker-3"}

            async def kubelets() -> None:  # the kubelets of the live nodes
                while not stop.is_set():
                    for n in sorted(alive):
                        await renew(store, n)
                    await asyncio.sleep(0.05)

            client = c.client()
            beat = asyncio.create_task(kubelets())
            try:
                async with running(
                    client, [NodeLifecycleController()], fast_timers(node_monitor_grace_s=1.5)
                ):

                    async def pod_ready(name: str) -> str | None:
                        return ready_status(await client.get(PODS, "default", name))

                    async def terminating(name: str) -> bool:
                        p = await client.get(PODS, "default", name)
                        return bool(p["metadata"].get("deletionTimestamp"))

                    async def unknown_and_tainted() -> bool:
                        node = await client.get(NODES, "", "worker-1")
                        keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
                        return await ready_of(client, "worker-1") == "Unknown" and keys == {
                            (UNREACHABLE_TAINT, "NoExecute"),
                            (UNREACHABLE_TAINT, "NoSchedule"),
                        }

                    await eventually(unknown_and_tainted, "worker-1 Unknown and tainted")
                    node = await client.get(NODES, "", "worker-1")
                    cond = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
                    assert cond["reason"] == "NodeStatusUnknown"
                    assert cond["message"] == "Kubelet stopped posting node status."
                    for name in ("tolerant", "forever"):

                        async def not_ready(n: str = name) -> bool:
                            return await pod_ready(n) == "False"

                        await eventually(not_ready, f"{name} NotReady")
                    await eventually(
                        lambda: terminating("intolerant"), "the intolerant pod evicted"
                    )
                    await eventually(lambda: terminating("tolerant"), "the tolerant pod evicted")

                    taint = next(t for t in node["spec"]["taints"] if t["effect"] == "NoExecute")
                    added = parse_rfc3339(taint["timeAdded"]) or 0.0
                    gone = await client.get(PODS, "default", "tolerant")
                    deleted_at = (parse_rfc3339(gone["metadata"]["deletionTimestamp"]) or 0.0) - 30
                    assert deleted_at >= added + 2, "evicted only after tolerationSeconds"
                    reasons = {x["type"]: x.get("reason") for x in gone["status"]["conditions"]}
                    assert reasons["DisruptionTarget"] == "DeletionByTaintManager"

                    assert not await terminating("forever")
                    assert not await terminating("elsewhere")
                    assert await pod_ready("elsewhere") == "True"
                    assert await ready_of(client, "worker-2") == "True"

                    async def events() -> set[tuple[str, str, str]]:
                        items = (await client.list(EVENTS, None))["items"]
                        return {
                            (e["involvedObject"]["name"], e["reason"], e["message"]) for e in items
                        }

                    await eventually(
                        lambda: _contains(
                            events(),
                            {
                                (
                                    "worker-1",
                                    "NodeNotReady",
                                    "Node worker-1 status is now: NodeNotReady",
                                ),
                                (
                                    "intolerant",
                                    "TaintManagerEviction",
                                    "Marking for deletion Pod default/intolerant",
                                ),
                                ("tolerant", "NodeNotReady", "Node is not ready"),
                            },
                        ),
                        "the Events",
                    )

                    # The node comes back: lease renewed, the kubelet reports Ready.
                    alive.add("worker-1")
                    cur = await store.get(NODES, "", "worker-1")
                    back = node_obj("worker-1", "True", heartbeat=rfc3339(1.8e9))["status"]
                    await store.update(
                        NODES, "", "worker-1", {**cur, "status": back}, subresource="status"
                    )

                    async def untainted() -> bool:
                        n = await client.get(NODES, "", "worker-1")
                        return not n["spec"].get("taints")

                    await eventually(untainted, "worker-1 untainted once Ready")
                    assert await terminating("tolerant"), (
                        "stays Terminating: only the kubelet ends it"
                    )
            finally:
                stop.set()
                await beat

    run(body())


async def _contains(value: Awaitable[set[Any]], want: set[Any]) -> bool:
    return want <= await value


def test_every_node_down_stops_eviction() -> None:
    """Full disruption (no node Ready, e.g. the network of the controller itself): nodes go
    Unknown but no NoExecute taint is added and no pod is evicted."""

    async def body() -> None:
        async with cluster() as c:
            await c.store.create(NAMESPACES, "", {"metadata": {"name": NODE_LEASE_NAMESPACE}})
            names = ["w0", "w1", "w2"]
            for n in names:
                await add_node(c.store, n)
            await c.store.create(PODS, "default", pod_obj("p", "w0", tolerations=[]))
            await set_pod_status(c.store, "p", running_status("10.0.0.1"))
            client = c.client()
            ctl = NodeLifecycleController()
            async with running(client, [ctl]):

                async def all_unknown() -> bool:
                    return all([await ready_of(client, n) == "Unknown" for n in names])

                await eventually(all_unknown, "every node Unknown")
                await eventually(
                    lambda: ctl.zone_state is ZoneState.FULL_DISRUPTION, "full disruption"
                )
                for _ in range(3):  # a few more passes: still nothing evicted
                    await ctl.no_execute_tainting_pass()
                for n in names:
                    node = await client.get(NODES, "", n)
                    assert not [
                        t for t in node["spec"].get("taints") or [] if t["effect"] == "NoExecute"
                    ]
                pod = await client.get(PODS, "default", "p")
                assert not pod["metadata"].get("deletionTimestamp")

    run(body())
