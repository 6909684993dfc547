"""Fake nodes (`kubelet.fakenodes`): what they write, and the host against an in-process API.

The pure functions (IP allocation, the Node, its Lease, a pod's Running status) are checked
table-driven. The host runs against the gRPC resource API over `LocalBackend`
(`tests/client`), with small timers; waits poll for outcomes, and "nothing happens" is
shown against another node's progress (its lease renewed three times), never a sleep.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from client import Cluster, cluster, eventually, run

from controlplane import procs
from controlplane.client.resources import ResourceClient
from controlplane.config import WorkerSpec, parse_config
from controlplane.kube.errors import APIError
from controlplane.kube.resources import LEASES, NAMESPACES, NODES, PODS
from kubelet.fakenodes import (
    FakeNodeHost,
    NodeInfo,
    PodIPAllocator,
    container_id,
    go_arch,
    image_id,
    lease_object,
    merge_conditions,
    node_labels,
    node_object,
    node_status,
    registration_update,
    renewed_lease,
    running_pod_status,
    serve_control,
)

Obj = dict[str, Any]
NOW = "2025-01-02T03:04:05Z"
LATER = "2025-01-02T03:09:00Z"
CONFIG = """
[cluster]
name = "fk"
subnet = "127.42.0.0/16"
[[workers]]
name = "worker-1"
runtime = "fake"
capacity = { cpu = "1500m", memory = "2Gi", pods = 30 }
[[workers]]
name = "worker-2"
runtime = "fake"
[[workers]]
name = "worker-3"
runtime = "docker"
"""


def workers() -> tuple[WorkerSpec, ...]:
    return parse_config(CONFIG).workers


INFO = NodeInfo(machine_id="m" * 32, system_uuid="s", boot_id="b", kernel_version="6.1")


# -- pod IPs -----------------------------------------------------------------------------------


def alloc(ops: list[tuple[str, str, str | None]]) -> list[str | None]:
    """Run `(op, uid, ip)` steps on a fresh allocator of 127.42.11.0/24; each step's result
    (the address, a bool as "yes"/"no" for reserve, None for release)."""
    a = PodIPAllocator(ipaddress.IPv4Network("127.42.11.0/24"))
    out: list[str | None] = []
    for op, uid, ip in ops:
        if op == "alloc":
            out.append(a.allocate(uid, prefer=ip))
        elif op == "reserve":
            out.append("yes" if a.reserve(uid, ip) else "no")
        else:
            a.release(uid)
            out.append(None)
    return out


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        (
            [("alloc", "a", None), ("alloc", "b", None), ("alloc", "a", None)],
            ["127.42.11.2", "127.42.11.3", "127.42.11.2"],
        ),
        (
            [
                ("alloc", "a", None),
                ("alloc", "b", None),
                ("release", "a", None),
                ("alloc", "c", None),
            ],
            ["127.42.11.2", "127.42.11.3", None, "127.42.11.2"],
        ),
        (
            [("alloc", "a", "127.42.11.9"), ("alloc", "b", "127.42.11.9")],
            ["127.42.11.9", "127.42.11.2"],
        ),
        (
            [("alloc", "a", "127.42.12.5"), ("alloc", "b", "127.42.11.1"), ("alloc", "c", "x")],
            ["127.42.11.2", "127.42.11.3", "127.42.11.4"],
        ),
        (
            [
                ("reserve", "a", "127.42.11.7"),
                ("reserve", "b", "127.42.11.7"),
                ("reserve", "a", "127.42.11.7"),
            ],
            ["yes", "no", "yes"],
        ),
        (
            [
                ("reserve", "a", "127.42.11.7"),
                ("reserve", "a", "127.42.11.8"),
                ("alloc", "b", None),
            ],
            ["yes", "no", "127.42.11.2"],
        ),
        (
            [
                ("reserve", "a", "127.42.11.255"),
                ("reserve", "a", "127.42.11.0"),
                ("reserve", "a", None),
            ],
            ["no", "no", "no"],
        ),
    ],
    ids=[
        "lowest-free-and-stable",
        "released-address-reused-first",
        "prefer-when-free",
        "prefer-outside-range-ignored",
        "reserve-conflict",
        "one-address-per-pod",
        "network-broadcast-and-nothing-refused",
    ],
)
def test_pod_ips_lowest_free_of_the_node_range(
    ops: list[tuple[str, str, str | None]], expected: list[str | None]
) -> None:
    """DESIGN.md: pods on worker i get 127.C.(10+i).2-.254; lowest free, deterministic."""
    assert alloc(ops) == expected


def test_pod_ips_run_out_after_253() -> None:
    a = PodIPAllocator(ipaddress.IPv4Network("127.42.11.0/24"))
    got = [a.allocate(f"p{i}") for i in range(253)]
    assert (got[0], got[-1], len(set(got))) == ("127.42.11.2", "127.42.11.254", 253)
    assert a.allocate("one-too-many") is None
    a.release("p100")
    assert a.allocate("one-too-many") == "127.42.11.102"


# -- the Node and its Lease ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("armv7l", "arm"),
        ("s390x", "s390x"),
        ("", "unknown"),
    ],
)
def test_go_arch(machine: str, arch: str) -> None:
    assert go_arch(machine) == arch


def test_node_object_is_what_a_kubelet_registers() -> None:
    w1 = workers()[0]
    node = node_object(w1, INFO, now=NOW)
    assert node["metadata"] == {"name": "worker-1", "labels": node_labels("worker-1", "amd64")}
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "worker-1"
    assert (labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == ("linux", "amd64")
    assert labels["node.kubernetes.io/instance-type"] == "fake"
    assert labels["kubelab.io/runtime"] == "fake"
    assert node["spec"] == {"podCIDR": "127.42.11.0/24", "podCIDRs": ["127.42.11.0/24"]}
    st = node["status"]
    assert st["capacity"] == {"cpu": "1500m", "memory": "2Gi", "pods": "30"}
    assert st["allocatable"] == st["capacity"]
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    assert all(c["lastHeartbeatTime"] == c["lastTransitionTime"] == NOW for c in st["conditions"])
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "127.42.11.1"},
        {"type": "Hostname", "address": "worker-1"},
    ]
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = st["nodeInfo"]
    assert len(info) == 10
    assert info["kubeletVersion"] == "v1.33.0-kubelab"
    assert info["containerRuntimeVersion"] == "fake://1.0"
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")


@pytest.mark.parametrize(
    ("ready_before", "transition"),
    [("True", NOW), ("Unknown", LATER), ("False", LATER), (None, LATER)],
    ids=["still-ready", "was-unknown", "was-not-ready", "no-condition"],
)
def test_node_status_keeps_transition_times_while_nothing_changes(
    ready_before: str | None, transition: str
) -> None:
    """A heartbeat moves lastHeartbeatTime; lastTransitionTime moves only with the status
    (Ready=Unknown written by the node lifecycle controller, then True again)."""
    w1 = workers()[0]
    before = node_status(w1, INFO, now=NOW)
    for c in before["conditions"]:
        if c["type"] == "Ready":
            if ready_before is None:
                before["conditions"].remove(c)
            else:
                c["status"] = ready_before
    after = node_status(w1, INFO, now=LATER, current=before)
    ready = next(c for c in after["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastHeartbeatTime"], ready["lastTransitionTime"]) == (
        "True",
        LATER,
        transition,
    )
    memory = after["conditions"][0]
    assert (memory["lastHeartbeatTime"], memory["lastTransitionTime"]) == (LATER, NOW)


def test_registration_update_fixes_labels_and_keeps_the_rest() -> None:
    """On a Node that exists, a kubelet resets its default labels; taints, other labels
    and an existing pod CIDR stay (they belong to others)."""
    desired = node_object(workers()[0], INFO, now=NOW)
    existing: Obj = {
        "metadata": {"name": "worker-1", "labels": {"team": "a", "kubernetes.io/os": "windows"}},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDR": "10.0.0.0/24"},
    }
    upd = registration_update(existing, desired)
    assert upd is not None
    assert upd["metadata"]["labels"] == {"team": "a", **desired["metadata"]["labels"]}
    assert upd["spec"] == existing["spec"]
    assert existing["metadata"]["labels"]["kubernetes.io/os"] == "windows", "input unchanged"
    assert registration_update(desired, desired) is None


def test_lease_create_and_renew() -> None:
    lease = lease_object("worker-1", now="2025-01-02T03:04:05.000001Z", node_uid="u1")
    assert lease["metadata"] == {
        "name": "worker-1",
        "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "worker-1", "uid": "u1"}],
    }
    assert lease["spec"] == {
        "holderIdentity": "worker-1",
        "leaseDurationSeconds": 40,
        "renewTime": "2025-01-02T03:04:05.000001Z",
    }
    stored = {
        **lease_object("worker-1", now="t0"),
        "metadata": {"name": "worker-1", "resourceVersion": "7"},
    }
    renewed = renewed_lease(stored, "worker-1", now="t1", node_uid="u2")
    assert renewed["spec"]["renewTime"] == "t1"
    assert renewed["metadata"]["resourceVersion"] == "7", "the precondition of the update"
    assert renewed["metadata"]["ownerReferences"][0]["uid"] == "u2"
    assert stored["spec"]["renewTime"] == "t0", "input unchanged"


# -- a pod's Running status ---------------------------------------------------------------------


def pod(
    name: str = "web", *, node: str = "worker-1", status: Obj | None = None, **spec: Any
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "resourceVersion": "5",
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "b", "image": "nginx:1"}, {"name": "a", "image": "busybox"}],
            **spec,
        },
        "status": status
        if status is not None
        else {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": NOW,
                }
            ],
        },
    }


def test_running_pod_status() -> None:
    st = running_pod_status(pod(), host_ip="127.42.11.1", pod_ip="127.42.11.2", now=LATER)
    assert st["phase"] == "Running"
    assert (st["hostIP"], st["hostIPs"]) == ("127.42.11.1", [{"ip": "127.42.11.1"}])
    assert (st["podIP"], st["podIPs"]) == ("127.42.11.2", [{"ip": "127.42.11.2"}])
    assert st["startTime"] == LATER
    assert st["qosClass"] == "BestEffort"
    conditions = {c["type"]: (c["status"], c["lastTransitionTime"]) for c in st["conditions"]}
    assert conditions == {
        "PodReadyToStartContainers": ("True", LATER),
        "Initialized": ("True", LATER),
        "Ready": ("True", LATER),
        "ContainersReady": ("True", LATER),
        "PodScheduled": ("True", NOW),  # set by the binding, unchanged
    }
    assert [c["name"] for c in st["containerStatuses"]] == ["a", "b"]  # sorted, as kubelet
    b = st["containerStatuses"][1]
    assert b == {
        "name": "b",
        "state": {"running": {"startedAt": LATER}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": "nginx:1",
        "imageID": image_id("nginx:1"),
        "containerID": container_id("uid-web", "b"),
        "started": True,
    }
    assert b["imageID"].startswith("fake://sha256:") and len(b["imageID"]) == 14 + 64
    assert b["containerID"] == "fake://uid-web-b"
    assert "initContainerStatuses" not in st


@pytest.mark.parametrize(
    "change",
    ["nothing", "ready-false", "other-condition", "new-container"],
)
def test_running_pod_status_is_stable_and_keeps_what_still_holds(change: str) -> None:
    """Recomputed later, the status is identical (no write) unless something changed; then
    only what changed gets a new time. Conditions of other writers (DisruptionTarget) stay."""
    first = running_pod_status(pod(), host_ip="h", pod_ip="p", now=NOW)
    current = copy.deepcopy(first)
    p = pod(status=current)
    if change == "ready-false":  # the node lifecycle controller marked it NotReady
        next(c for c in current["conditions"] if c["type"] == "Ready")["status"] = "False"
    elif change == "other-condition":
        current["conditions"].append({"type": "DisruptionTarget", "status": "True"})
    elif change == "new-container":
        p["spec"]["containers"].append({"name": "c", "image": "x"})
    again = running_pod_status(p, host_ip="h", pod_ip="p", now=LATER)
    if change == "nothing":
        assert again == first
        return
    ready = next(c for c in again["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == (LATER if change == "ready-false" else NOW)
    assert again["startTime"] == NOW
    started = {c["name"]: c["state"]["running"]["startedAt"] for c in again["containerStatuses"]}
    assert started["a"] == started["b"] == NOW
    if change == "other-condition":
        assert again["conditions"][-1] == {"type": "DisruptionTarget", "status": "True"}
    if change == "new-container":
        assert started["c"] == LATER


def test_running_pod_status_reports_init_containers_completed() -> None:
    p = pod(initContainers=[{"name": "init", "image": "busybox"}])
    st = running_pod_status(p, host_ip="h", pod_ip="p", now=NOW)
    (init,) = st["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert (init["state"]["terminated"]["exitCode"], init["ready"]) == (0, True)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ([], [("A", "True", LATER), ("B", "False", LATER)]),
        (
            [{"type": "A", "status": "True", "lastTransitionTime": NOW}],
            [("A", "True", NOW), ("B", "False", LATER)],
        ),
        (
            [{"type": "A", "status": "False", "lastTransitionTime": NOW}],
            [("A", "True", LATER), ("B", "False", LATER)],
        ),
        ([{"type": "A", "status": "True"}], [("A", "True", LATER), ("B", "False", LATER)]),
        ("garbage", [("A", "True", LATER), ("B", "False", LATER)]),
    ],
    ids=["none", "same-status", "changed-status", "no-time", "not-a-list"],
)
def test_merge_conditions(current: object, expected: list[tuple[str, str, str]]) -> None:
    desired = [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]
    got = merge_conditions(current, desired, now=LATER, keep_others=False)
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in got] == expected


# -- the host against an in-process API ---------------------------------------------------------


def small_timers() -> Any:
    return dataclasses.replace(
        parse_config(CONFIG).timers, node_lease_renew_s=0.05, node_monitor_grace_s=0.4
    )


@asynccontextmanager
async def hosting(c: Cluster, *names: str) -> AsyncIterator[FakeNodeHost]:
    await c.store.create(NAMESPACES, "", {"metadata": {"name": "kube-node-lease"}})
    hosted = [w for w in workers() if w.name in names]
    host = FakeNodeHost(c.client(), hosted, small_timers(), cluster_id="fk", pod_workers=4)
    task = asyncio.ensure_future(host.run())
    try:
        await host.wait_started()
        yield host
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ready(client: ResourceClient, name: str) -> bool:
    try:
        node = await client.get(NODES, "", name)
    except APIError:
        return False
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )


async def all_ready(client: ResourceClient, *names: str) -> None:
    for name in names:
        await eventually(functools.partial(ready, client, name), f"{name} Ready")


async def running(client: ResourceClient, name: str) -> None:
    await eventually(functools.partial(_phase, client, name, "Running"), f"pod {name} Running")


async def renew_time(client: ResourceClient, name: str) -> str:
    try:
        lease = await client.get(LEASES, "kube-node-lease", name)
    except APIError:
        return ""
    return str(lease["spec"]["renewTime"])


async def renewals(client: ResourceClient, name: str, n: int) -> None:
    """Wait until `name`'s lease has been renewed `n` more times: the clock of the tests."""
    seen = [await renew_time(client, name)]

    async def moved() -> bool:
        t = await renew_time(client, name)
        if t and t != seen[-1]:
            seen.append(t)
        return len(seen) > n

    await eventually(moved, f"{n} renewals of {name}'s lease")


async def pod_status(client: ResourceClient, name: str) -> Obj:
    try:
        return dict((await client.get(PODS, "default", name)).get("status") or {})
    except APIError:
        return {"gone": True}


def bound_pod(name: str, node: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1"}]},
    }


def test_nodes_register_renew_and_run_pods() -> None:
    """Both nodes register Ready with their Lease; leases advance; a bound pod becomes
    Running with the node's first IP; a deleted pod is removed and its IP reused; a pod of
    a node that is not hosted here is left alone."""

    async def body() -> None:
        async with cluster() as c, hosting(c, "worker-1", "worker-2") as host:
            client = c.client()
            await all_ready(client, "worker-1", "worker-2")
            node = await client.get(NODES, "", "worker-1")
            assert node["metadata"]["labels"]["kubelab.io/runtime"] == "fake"
            lease = await client.get(LEASES, "kube-node-lease", "worker-1")
            assert lease["spec"]["holderIdentity"] == "worker-1"
            assert lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
            await renewals(client, "worker-1", 2)

            await client.create(PODS, "default", bound_pod("a", "worker-1"))
            await client.create(PODS, "default", bound_pod("b", "worker-1"))
            await client.create(PODS, "default", bound_pod("elsewhere", "worker-3"))
            await client.create(PODS, "default", bound_pod("c", "worker-2"))
            for name in ("a", "b", "c"):
                await running(client, name)
            ips = {n: (await pod_status(client, n))["podIP"] for n in ("a", "b", "c")}
            assert ips == {"a": "127.42.11.2", "b": "127.42.11.3", "c": "127.42.12.2"}
            a = await pod_status(client, "a")
            assert a["hostIP"] == "127.42.11.1"
            assert [s["containerID"] for s in a["containerStatuses"]] == [
                container_id((await client.get(PODS, "default", "a"))["metadata"]["uid"], "app")
            ]
            assert (await pod_status(client, "elsewhere"))["phase"] == "Pending"

            deleted = await client.delete(PODS, "default", "a")  # graceful: 30 s
            assert deleted["metadata"]["deletionTimestamp"]
            await eventually(lambda: _gone(client, "a"), "pod a removed by its node")
            await client.create(PODS, "default", bound_pod("d", "worker-1"))
            await running(client, "d")
            assert (await pod_status(client, "d"))["podIP"] == "127.42.11.2", "a's IP, reused"
            assert host.states() == {"worker-1": "running", "worker-2": "running"}

    run(body())


async def _phase(client: ResourceClient, name: str, phase: str) -> bool:
    return (await pod_status(client, name)).get("phase") == phase


async def _gone(client: ResourceClient, name: str) -> bool:
    return "gone" in await pod_status(client, name)


def test_kill_stops_the_node_and_start_brings_it_back() -> None:
    """kill: no more lease renewals and no pod updates (a pod bound meanwhile stays
    Pending, a deleted one stays Terminating), while the other node goes on; start: it
    registers again, renews, and reports its pods Running with their IPs."""

    async def body() -> None:
        async with cluster() as c, hosting(c, "worker-1", "worker-2") as host:
            client = c.client()
            await all_ready(client, "worker-1", "worker-2")
            await client.create(PODS, "default", bound_pod("old", "worker-1"))
            await running(client, "old")

            assert host.control({"op": "kill", "node": "worker-1"}) == {
                "ok": True,
                "node": "worker-1",
                "previous": "running",
                "state": "dead",
            }
            frozen = await renew_time(client, "worker-1")
            await client.create(PODS, "default", bound_pod("new", "worker-1"))
            await client.delete(PODS, "default", "old")
            await client.create(PODS, "default", bound_pod("other", "worker-2"))
            await running(client, "other")
            await renewals(client, "worker-2", 3)
            assert await renew_time(client, "worker-1") == frozen
            assert (await pod_status(client, "new"))["phase"] == "Pending"
            old = await client.get(PODS, "default", "old")
            assert old["metadata"]["deletionTimestamp"] and old["status"]["phase"] == "Running"
            assert host.control({"op": "kill", "node": "worker-1"}) == {
                "ok": False,
                "error": "worker-1 is not running",
                "state": "dead",
            }

            assert host.control({"op": "start", "node": "worker-1"})["state"] == "running"
            await renewals(client, "worker-1", 2)
            await running(client, "new")
            await eventually(lambda: _gone(client, "old"), "terminating pod removed")
            assert (await pod_status(client, "new"))["podIP"] == "127.42.11.3", (
                "old kept .2 until it went"
            )
            assert host.control({"op": "start", "node": "worker-1"}) == {
                "ok": False,
                "error": "worker-1 is already running",
                "state": "running",
            }

    run(body())


def test_pause_keeps_state_and_resume_continues() -> None:
    async def body() -> None:
        async with cluster() as c, hosting(c, "worker-1", "worker-2") as host:
            client = c.client()
            await all_ready(client, "worker-1", "worker-2")
            await client.create(PODS, "default", bound_pod("p1", "worker-2"))
            await running(client, "p1")

            assert host.control({"op": "pause", "node": "worker-2"})["state"] == "paused"
            assert host.control({"op": "pause", "node": "worker-2"})["previous"] == "paused"
            frozen = await renew_time(client, "worker-2")
            await client.create(PODS, "default", bound_pod("p2", "worker-2"))
            await renewals(client, "worker-1", 3)
            assert await renew_time(client, "worker-2") == frozen
            assert (await pod_status(client, "p2"))["phase"] == "Pending"

            assert host.control({"op": "resume", "node": "worker-2"}) == {
                "ok": True,
                "node": "worker-2",
                "previous": "paused",
                "state": "running",
            }
            await renewals(client, "worker-2", 1)
            await running(client, "p2")
            assert (await pod_status(client, "p2"))["podIP"] == "127.42.12.3", "state was kept"
            assert host.control({"op": "resume", "node": "worker-2"})["previous"] == "running"

    run(body())


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ([1, 2], "expected a JSON object"),
        (
            {"op": "explode"},
            "op: expected one of status, kill, pause, resume, start; got 'explode'",
        ),
        ({"op": "kill"}, "node: no fake node named None here; hosted: worker-1"),
        ({"op": "kill", "node": "worker-3"}, "no fake node named 'worker-3' here"),
    ],
    ids=["not-an-object", "unknown-op", "no-node", "not-hosted"],
)
def test_control_refuses_bad_requests(request_: object, error: str) -> None:
    async def body() -> None:
        client = ResourceClient(["127.0.0.1:1"], "t")
        host = FakeNodeHost(client, workers()[:1], small_timers(), cluster_id="fk")
        answer = host.control(request_)
        assert answer["ok"] is False and error in answer["error"]
        await client.close()

    run(body())


def test_control_socket_speaks_json_lines(tmp_path: Path) -> None:
    """The socket answers one JSON line per request, through `procs.control_call` (which
    also reaches a path longer than a Unix socket address allows)."""

    async def body() -> None:
        async with cluster() as c, hosting(c, "worker-1") as host:
            path = tmp_path / ("d" * 120) / "fakenodes.sock"
            server = await serve_control(host, path)
            try:
                status = await asyncio.to_thread(procs.control_call, path, {"op": "status"})
                assert status["ok"] is True and status["nodes"] == {"worker-1": "running"}
                paused = await asyncio.to_thread(
                    procs.control_call, path, {"op": "pause", "node": "worker-1"}
                )
                assert paused["state"] == "paused"
                bad = await asyncio.to_thread(procs.control_call, path, {"op": 3})
                assert bad["ok"] is False
                reader, writer = await asyncio.open_unix_connection(sock=_connect(path))
                writer.write(b"not json\n")
                answer = json.loads(await reader.readline())
                assert answer["ok"] is False and "JSON" in answer["error"]
                writer.close()
            finally:
                server.close()
                await server.wait_closed()

    run(body())


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with procs.unix_socket_address(path) as address:
        s.connect(address)
    return s


def test_control_call_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(procs.ControlError, match="does not exist"):
        procs.control_call(tmp_path / "nope.sock", {"op": "status"})
