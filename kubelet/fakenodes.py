"""Fake nodes, like kwok: one process hosts every worker whose runtime is "fake".

`python -m kubelet.fakenodes --config FILE` registers a Node per fake worker, renews its
Lease in `kube-node-lease`, posts its status, and reports every pod bound to it Running
without running anything. It is what a kubelet tells the API, minus the containers.

Decisions:

- **Pure status, thin driver.** What a kubelet writes (the Node object, its status, the
  Lease, a pod's Running status, pod IPs) is computed by pure functions of their inputs and
  the current object, so writing twice gives the same bytes: a resync that finds nothing to
  change writes nothing. Timestamps already present (a condition's lastTransitionTime, a
  pod's startTime, a container's startedAt) are kept while the fact they date still holds.
  The real kubelet (a later issue) reuses these functions.
- **One pod informer, no per-node watch.** All pods are listed and watched once and
  dispatched by `spec.nodeName`; a bounded pool of workers (`POD_WORKERS`) handles pod keys
  from one rate-limited queue, as client-go controllers do. Each write is an
  `update_status` conditioned on the cached pod's resourceVersion: a 409 goes back to the
  queue and the next attempt starts from the (by then newer) cache. 100 nodes with 30 pods
  each are 100 lease loops, 100 status loops and one queue.
- **The lease is the heartbeat.** Each node renews its Lease in its own task, every
  `timers.node_lease_renew_s` (leaseDurationSeconds 40 as Kubernetes), with a deadline per
  call, whatever the pods and the node status are doing, so a slow pod write never makes a
  node look dead. Node status (the Ready heartbeat) is posted every
  `timers.node_monitor_grace_s / 4`, and at once when the node starts or resumes.
- **Pod IPs** come from the node's /24: `.2`-`.254`, the lowest free address, released when
  the pod goes. A node that starts adopts the IPs its pods already report (oldest pod first),
  so a restart of this process or of one node keeps every pod's address.
- **Deletion**: a pod with a deletionTimestamp on a live node is deleted with
  gracePeriodSeconds 0 (precondition: its uid), which is what a kubelet does once the
  containers have stopped. On a dead node it stays Terminating, as in Kubernetes.
- **Chaos per node** (the process hosts many nodes, so it cannot be a signal): a Unix socket
  `<run_dir>/fakenodes.sock` takes one JSON object per line and answers one per line (see
  `FakeNodeHost.control`). `kill` is a node crash: heartbeats, lease renewals and pod
  updates stop and the node forgets its pods (their objects stay as they are); `start` is a
  fresh kubelet (it registers again and reports its pods Running); `pause` stops everything
  but keeps the state (SIGSTOP of one node), `resume` continues.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import enum
import hashlib
import ipaddress
import json
import logging
import os
import platform
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controlplane.client.informer import Informer, object_key
from controlplane.client.resources import ResourceClient
from controlplane.client.workqueue import RateLimitingQueue, ShutDown
from controlplane.config import ClusterConfig, ConfigError, Timers, WorkerSpec, load_config
from controlplane.kube.errors import APIError
from controlplane.kube.resources import LEASES, NODES, PODS
from controlplane.procs import fake_workers, fakenodes_socket, unix_socket_address

__all__ = [
    "CONTAINER_RUNTIME_VERSION",
    "KUBELET_VERSION",
    "NODE_LEASE_DURATION_S",
    "NODE_LEASE_NAMESPACE",
    "RUNTIME_LABEL",
    "FakeNodeHost",
    "NodeInfo",
    "NodeState",
    "PodIPAllocator",
    "container_id",
    "format_micro_time",
    "format_time",
    "go_arch",
    "image_id",
    "lease_object",
    "main",
    "merge_conditions",
    "node_info",
    "node_labels",
    "node_object",
    "node_status",
    "pod_node",
    "registration_update",
    "renewed_lease",
    "running_pod_status",
    "serve_control",
]

logger = logging.getLogger("kubelet.fakenodes")  # also when run as __main__

Obj = dict[str, Any]

KUBELET_VERSION = "v1.33.0-kubelab"
CONTAINER_RUNTIME_VERSION = "fake://1.0"
OS_IMAGE = "kubelab fake node"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_DURATION_S = 40
"""Kubernetes' nodeLeaseDurationSeconds default; what a renewal promises."""
RUNTIME_LABEL = "kubelab.io/runtime"
"""Marks the nodes this process hosts (kwok's `type: kwok`)."""

POD_WORKERS = 16
"""Pod writes in flight at once, for all nodes together."""
MIN_CALL_DEADLINE_S = 2.0
RETRY_INITIAL_S = 0.2
LEASE_JITTER = 0.04  # the kubelet's lease controller: wait.JitterUntil(renew, 0.04)


# -- time ---------------------------------------------------------------------------------------


def format_time(t: float) -> str:
    """metav1.Time: RFC3339 in seconds, UTC (`2024-05-01T10:00:00Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def format_micro_time(t: float) -> str:
    """metav1.MicroTime: RFC3339 with microseconds, UTC (a Lease's renewTime)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dict(value: object) -> Obj:
    """`value` if it is a JSON object, else an empty one (shapes are the API's business)."""
    return value if isinstance(value, dict) else {}


# -- the Node -----------------------------------------------------------------------------------

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_arch(machine: str) -> str:
    """The GOARCH name Kubernetes uses (`kubernetes.io/arch`) for `platform.machine()`."""
    return _GO_ARCH.get(machine.lower(), machine.lower() or "unknown")


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """What a node reports about its machine (`status.nodeInfo`, all ten fields)."""

    machine_id: str
    system_uuid: str
    boot_id: str
    kernel_version: str
    os_image: str = OS_IMAGE
    container_runtime_version: str = CONTAINER_RUNTIME_VERSION
    kubelet_version: str = KUBELET_VERSION
    kube_proxy_version: str = ""
    """Empty as Kubernetes 1.33 leaves it (DisableNodeKubeProxyVersion); no proxy here."""
    operating_system: str = "linux"
    architecture: str = "amd64"

    def to_json(self) -> Obj:
        return {
            "machineID": self.machine_id,
            "systemUUID": self.system_uuid,
            "bootID": self.boot_id,
            "kernelVersion": self.kernel_version,
            "osImage": self.os_image,
            "containerRuntimeVersion": self.container_runtime_version,
            "kubeletVersion": self.kubelet_version,
            "kubeProxyVersion": self.kube_proxy_version,
            "operatingSystem": self.operating_system,
            "architecture": self.architecture,
        }


def node_info(cluster_id: str, node: str, *, boot_id: str) -> NodeInfo:
    """A node's identity: machine ID and system UUID stable per (cluster, node), a boot ID
    per start (a `kill` then `start` is a reboot), this host's kernel and architecture."""
    machine = uuid.uuid5(uuid.NAMESPACE_URL, f"kubelab://{cluster_id}/nodes/{node}")
    system = uuid.uuid5(uuid.NAMESPACE_URL, f"kubelab://{cluster_id}/nodes/{node}/system")
    return NodeInfo(
        machine_id=machine.hex,
        system_uuid=str(system),
        boot_id=boot_id,
        kernel_version=platform.release(),
        architecture=go_arch(platform.machine()),
    )


def node_labels(name: str, arch: str) -> dict[str, str]:
    """The labels a kubelet sets on its Node (`updateDefaultLabels`), plus the fake marker."""
    return {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "fake",
        RUNTIME_LABEL: "fake",
    }


def merge_conditions(
    current: object, desired: Sequence[Obj], *, now: str, keep_others: bool
) -> list[Obj]:
    """`desired` conditions (in their order) with `lastTransitionTime` = the current one's
    while a type keeps its status, else `now`; then, if `keep_others`, the current
    conditions of other types (set by someone else: a DisruptionTarget)."""
    by_type: dict[str, Obj] = {}
    others: list[Obj] = []
    wanted = {d["type"] for d in desired}
    for c in current if isinstance(current, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("type"), str):
            continue
        if c["type"] in wanted:
            by_type[c["type"]] = c
        elif keep_others:
            others.append(c)
    out: list[Obj] = []
    for d in desired:
        old = by_type.get(d["type"])
        since = now
        if old is not None and old.get("status") == d["status"] and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
        out.append({**d, "lastTransitionTime": since})
    return out + others


_NODE_CONDITIONS = (
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_status(worker: WorkerSpec, info: NodeInfo, *, now: str, current: object = None) -> Obj:
    """A healthy node's `status`: capacity = allocatable = the worker's (cpu, memory, pods),
    the three pressures False and Ready True (heartbeat `now`), addresses, daemon endpoint,
    nodeInfo. `current` (the stored status) keeps the conditions' transition times."""
    capacity = {"cpu": worker.cpu, "memory": worker.memory, "pods": str(worker.pods)}
    desired = [
        {
            "type": kind,
            "status": status,
            "lastHeartbeatTime": now,
            "reason": reason,
            "message": message,
        }
        for kind, status, reason, message in _NODE_CONDITIONS
    ]
    old = current.get("conditions") if isinstance(current, dict) else None
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": merge_conditions(old, desired, now=now, keep_others=False),
        "addresses": [
            {"type": "InternalIP", "address": worker.node_ip},
            {"type": "Hostname", "address": worker.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": worker.kubelet_port}},
        "nodeInfo": info.to_json(),
    }


def node_object(worker: WorkerSpec, info: NodeInfo, *, now: str) -> Obj:
    """The Node a fake worker registers (created with its status, as a kubelet does)."""
    cidr = str(worker.pod_cidr)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": worker.name, "labels": node_labels(worker.name, info.architecture)},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": node_status(worker, info, now=now),
    }


def registration_update(existing: Obj, desired: Obj) -> Obj | None:
    """What a kubelet changes on a Node that already exists (`tryRegisterWithAPIServer`):
    its default labels, and the pod CIDR if none is set; taints, other labels and
    annotations stay. None when there is nothing to change."""
    out = copy.deepcopy(existing)
    meta = out.setdefault("metadata", {})
    labels = _dict(meta.get("labels"))
    want = desired["metadata"]["labels"]
    meta["labels"] = {**labels, **want}
    spec = _dict(out.get("spec"))
    out["spec"] = spec
    if not spec.get("podCIDR"):
        spec["podCIDR"] = desired["spec"]["podCIDR"]
        spec["podCIDRs"] = list(desired["spec"]["podCIDRs"])
    return None if out == existing else out


# -- the Lease ----------------------------------------------------------------------------------


def _owner(node: str, node_uid: str) -> list[Obj]:
    return [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]


def lease_object(node: str, *, now: str, node_uid: str = "") -> Obj:
    """A new node Lease `kube-node-lease/<node>`, held by the node, owned by its Node (when
    its uid is known), so the garbage collector removes it with the Node."""
    meta: Obj = {"name": node, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = _owner(node, node_uid)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": NODE_LEASE_DURATION_S,
            "renewTime": now,
        },
    }


def renewed_lease(lease: Obj, node: str, *, now: str, node_uid: str = "") -> Obj:
    """`lease` renewed at `now` (a copy; its resourceVersion stays: the precondition)."""
    out = copy.deepcopy(lease)
    spec = _dict(out.get("spec"))
    spec.update(holderIdentity=node, leaseDurationSeconds=NODE_LEASE_DURATION_S, renewTime=now)
    out["spec"] = spec
    meta = out.setdefault("metadata", {})
    if node_uid and not meta.get("ownerReferences"):
        meta["ownerReferences"] = _owner(node, node_uid)
    return out


# -- pods ---------------------------------------------------------------------------------------


class PodIPAllocator:
    """Pod IPs of one node: `.2`-`.254` of its /24, the lowest free one first, by pod uid.

    Deterministic: the same sequence of allocations and releases gives the same addresses."""

    def __init__(self, cidr: ipaddress.IPv4Network) -> None:
        self.cidr = cidr
        base = int(cidr.network_address)
        self._hosts = [base + i for i in range(2, min(255, cidr.num_addresses - 1))]
        self._host_set = frozenset(self._hosts)
        self._by_uid: dict[str, int] = {}
        self._by_ip: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def ip_of(self, uid: str) -> str | None:
        ip = self._by_uid.get(uid)
        return None if ip is None else str(ipaddress.IPv4Address(ip))

    def _usable(self, ip: str | None) -> int | None:
        try:
            addr = int(ipaddress.IPv4Address(ip or ""))
        except ValueError:
            return None
        return addr if addr in self._host_set else None

    def reserve(self, uid: str, ip: str | None) -> bool:
        """Give `uid` the address `ip` if it is one of ours and free (True also when it is
        already `uid`'s); False if it is not ours, taken, or `uid` holds another one."""
        addr = self._usable(ip)
        if addr is None:
            return False
        holder = self._by_ip.get(addr)
        if holder is not None or uid in self._by_uid:
            return holder == uid
        self._by_uid[uid] = addr
        self._by_ip[addr] = uid
        return True

    def allocate(self, uid: str, *, prefer: str | None = None) -> str | None:
        """`uid`'s address: the one it has, else `prefer` if free, else the lowest free;
        None when all 253 are taken."""
        have = self.ip_of(uid)
        if have is not None:
            return have
        if prefer is not None and self.reserve(uid, prefer):
            return self.ip_of(uid)
        for addr in self._hosts:
            if addr not in self._by_ip:
                self._by_uid[uid] = addr
                self._by_ip[addr] = uid
                return str(ipaddress.IPv4Address(addr))
        return None

    def release(self, uid: str) -> None:
        addr = self._by_uid.pop(uid, None)
        if addr is not None:
            self._by_ip.pop(addr, None)


def pod_node(pod: Obj) -> str:
    """The node a pod is bound to ("" when pending)."""
    spec = pod.get("spec")
    node = spec.get("nodeName") if isinstance(spec, dict) else None
    return node if isinstance(node, str) else ""


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def image_id(image: str) -> str:
    """`fake://sha256:<sha256 of the image reference>`: stable per image, like a digest."""
    return "fake://sha256:" + hashlib.sha256(image.encode()).hexdigest()


def container_id(pod_uid: str, name: str) -> str:
    return f"fake://{pod_uid}-{name}"


def _container_status(container: Obj, pod_uid: str, old: Obj | None, now: str) -> Obj:
    name = str(container.get("name") or "")
    image = str(container.get("image") or "")
    cid = container_id(pod_uid, name)
    started = now
    if old is not None and old.get("containerID") == cid:
        running = (old.get("state") or {}).get("running")
        if isinstance(running, dict) and running.get("startedAt"):
            started = str(running["startedAt"])
    return {
        "name": name,
        "state": {"running": {"startedAt": started}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": image,
        "imageID": image_id(image),
        "containerID": cid,
        "started": True,
    }


def _init_status(container: Obj, pod_uid: str, started: str) -> Obj:
    name = str(container.get("name") or "")
    image = str(container.get("image") or "")
    cid = container_id(pod_uid, name)
    return {
        "name": name,
        "state": {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": started,
                "finishedAt": started,
                "containerID": cid,
            }
        },
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": image,
        "imageID": image_id(image),
        "containerID": cid,
        "started": False,
    }


_POD_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def running_pod_status(pod: Obj, *, host_ip: str, pod_ip: str, now: str) -> Obj:
    """The status a kubelet reports for `pod` once all its containers run and are ready:
    phase Running, host and pod IPs, every condition True, one running container status per
    container (sorted by name, as the kubelet does), init containers Completed. The
    current status's startTime, transition times and container start times are kept, so
    the result is the same at any later `now` while nothing changed."""
    spec, current = _dict(pod.get("spec")), _dict(pod.get("status"))
    uid = _uid(pod)
    start = str(current.get("startTime") or now)
    old = {c.get("name"): c for c in current.get("containerStatuses") or [] if isinstance(c, dict)}
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    desired = [{"type": kind, "status": "True", "lastProbeTime": None} for kind in _POD_CONDITIONS]
    status: Obj = {
        "phase": "Running",
        "conditions": merge_conditions(
            current.get("conditions"), desired, now=now, keep_others=True
        ),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
    }
    if inits:
        status["initContainerStatuses"] = [_init_status(c, uid, start) for c in inits]
    status["containerStatuses"] = sorted(
        (_container_status(c, uid, old.get(c.get("name")), now) for c in containers),
        key=lambda c: str(c["name"]),
    )
    if current.get("qosClass"):
        status["qosClass"] = current["qosClass"]
    return status


def _terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


# -- the driver ---------------------------------------------------------------------------------


class NodeState(enum.StrEnum):
    """A fake node as `kubelab status` shows it."""

    RUNNING = "running"
    PAUSED = "paused"
    DEAD = "dead"


@dataclasses.dataclass(eq=False)
class _Node:
    """One hosted node's mutable state; `epoch` changes at every kill and start, so work
    begun before is recognised as stale when it resumes."""

    worker: WorkerSpec
    info: NodeInfo
    ips: PodIPAllocator
    state: NodeState = NodeState.DEAD
    epoch: int = 0
    registered: bool = False
    pods: set[str] = dataclasses.field(default_factory=set)
    """Keys of the pods this node reported (their IPs are in `ips`)."""
    node: Obj | None = None
    """The Node as last written or read (its resourceVersion is the next precondition)."""
    lease: Obj | None = None
    task: asyncio.Task[None] | None = None
    resumed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    """Set while not paused."""
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    """Post the node status now."""

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def active(self) -> bool:
        return self.state is NodeState.RUNNING and self.registered


class FakeNodeHost:
    """Hosts fake nodes on one `ResourceClient` (see the module docstring).

    `run()` registers every node and serves them until cancelled; `control(request)` is
    the chaos protocol (also what the control socket calls). `clock` gives the epoch
    seconds written into objects (tests inject one)."""

    def __init__(
        self,
        client: ResourceClient,
        workers: Sequence[WorkerSpec],
        timers: Timers,
        *,
        cluster_id: str,
        clock: Callable[[], float] = time.time,
        pod_workers: int = POD_WORKERS,
    ) -> None:
        if pod_workers < 1:
            raise ValueError(f"pod_workers must be at least 1, not {pod_workers}")
        self.client = client
        self.timers = timers
        self.cluster_id = cluster_id
        self.clock = clock
        self.pod_workers = pod_workers
        self.lease_period = timers.node_lease_renew_s
        # As the kubelet's nodeStatusReportFrequency: an unchanged status is re-posted rarely
        # (5 min in Kubernetes, 30 lease renewals here: 300 s / 30 s); the Lease is the
        # heartbeat the node lifecycle controller judges by.
        self.status_period = 30 * timers.node_lease_renew_s
        self.call_deadline = max(MIN_CALL_DEADLINE_S, self.lease_period)
        self.nodes: dict[str, _Node] = {}
        for w in workers:
            if w.name in self.nodes:
                raise ValueError(f"two workers named {w.name!r}")
            self.nodes[w.name] = _Node(
                w,
                node_info(cluster_id, w.name, boot_id=str(uuid.uuid4())),
                PodIPAllocator(w.pod_cidr),
            )
        self.pods = Informer(client, PODS)
        self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod)
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="fakenodes-pods")
        self._owner: dict[str, str] = {}
        """Pod key -> the node holding its IP (and uid, in that node's allocator)."""
        self._uids: dict[str, str] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()

    # -- life -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start every node, then serve until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self.pods.run(), name="fakenodes pod informer")
                for node in self.nodes.values():
                    self._start(node)
                for i in range(self.pod_workers):
                    tg.create_task(self._pod_worker(), name=f"fakenodes pod worker {i}")
                self._started.set()
        finally:
            self._tg = None
            self.queue.shut_down()

    async def wait_started(self) -> None:
        await self._started.wait()

    def states(self) -> dict[str, str]:
        return {name: str(node.state) for name, node in self.nodes.items()}

    def _start(self, node: _Node) -> None:
        assert self._tg is not None
        node.epoch += 1
        node.state = NodeState.RUNNING
        node.info = dataclasses.replace(node.info, boot_id=str(uuid.uuid4()))
        node.resumed.set()
        node.task = self._tg.create_task(self._run_node(node), name=f"fake node {node.name}")
        logger.info("node started node=%s", node.name)

    def _kill(self, node: _Node) -> None:
        node.epoch += 1
        node.state = NodeState.DEAD
        if node.task is not None:
            node.task.cancel()
            node.task = None
        node.registered = False
        node.node = None
        node.lease = None
        for key in node.pods:
            self._owner.pop(key, None)
            self._uids.pop(key, None)
        node.pods.clear()
        node.ips = PodIPAllocator(node.worker.pod_cidr)
        node.resumed.set()
        logger.info("node killed node=%s", node.name)

    # -- control --------------------------------------------------------------------------------

    def control(self, request: object) -> Obj:
        """One control request -> its answer (the control socket's protocol):

        - `{"op": "status"}` -> `{"ok": true, "pid": ..., "nodes": {name: state}}`;
        - `{"op": "kill" | "pause" | "resume" | "start", "node": NAME}` ->
          `{"ok": true, "node", "previous", "state"}` (states running|paused|dead), or
          `{"ok": false, "error", "state"}` when the node cannot do that in its state
          (kill, pause or resume of a dead node; start of a live one). Pause of a paused
          node and resume of a running one are no-ops (`previous` says so).
        Anything else -> `{"ok": false, "error": ...}` naming what was expected."""
        if not isinstance(request, dict):
            return _refused('expected a JSON object like {"op": "kill", "node": "worker-1"}')
        op = request.get("op")
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "nodes": self.states()}
        if op not in ("kill", "pause", "resume", "start"):
            return _refused(f"op: expected one of status, kill, pause, resume, start; got {op!r}")
        name = request.get("node")
        node = self.nodes.get(name) if isinstance(name, str) else None
        if node is None:
            hosted = ", ".join(self.nodes) or "none"
            return _refused(f"node: no fake node named {name!r} here; hosted: {hosted}")
        if self._tg is None:
            return _refused("the fake nodes are not running yet; try again")
        previous = node.state
        if op == "start":
            if previous is not NodeState.DEAD:
                return _refused(f"{name} is already {previous}", previous)
            self._start(node)
        elif previous is NodeState.DEAD:
            return _refused(f"{name} is not running", previous)
        elif op == "kill":
            self._kill(node)
        elif op == "pause" and previous is NodeState.RUNNING:
            node.state = NodeState.PAUSED
            node.resumed.clear()
            logger.info("node paused node=%s", name)
        elif op == "resume" and previous is NodeState.PAUSED:
            node.state = NodeState.RUNNING
            node.resumed.set()
            node.changed.set()
            self._enqueue_pods_of(node)
            logger.info("node resumed node=%s", name)
        return {"ok": True, "node": name, "previous": str(previous), "state": str(node.state)}

    # -- one node -------------------------------------------------------------------------------

    async def _run_node(self, node: _Node) -> None:
        """Register, adopt the node's pods, then renew the lease and post status forever.
        A bug that escapes the loops kills this node only (logged), never the others."""
        try:
            await self._retrying(node, "register", lambda: self._register(node))
            await self.pods.wait_synced()
            self._adopt(node)
            node.registered = True
            self._enqueue_pods_of(node)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._lease_loop(node))
                tg.create_task(self._status_loop(node))
        except Exception:
            logger.exception("node crashed node=%s; it is dead until started again", node.name)
            node.task = None  # ending now: nothing to cancel
            self._kill(node)

    async def _retrying(self, node: _Node, what: str, call: Callable[[], Awaitable[None]]) -> None:
        """`call()` until it succeeds (not while the node is paused), each attempt with a
        deadline, backing off up to the lease period."""
        delay = RETRY_INITIAL_S
        while True:
            await node.resumed.wait()
            try:
                async with asyncio.timeout(self.call_deadline):
                    await call()
                return
            except (APIError, TimeoutError) as e:
                logger.warning(
                    "%s failed node=%s retry_in=%.1fs: %s", what, node.name, delay, _why(e)
                )
            except Exception:
                logger.exception("%s crashed node=%s retry_in=%.1fs", what, node.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max(self.lease_period, RETRY_INITIAL_S))

    async def _register(self, node: _Node) -> None:
        desired = node_object(node.worker, node.info, now=format_time(self.clock()))
        try:
            node.node = await self.client.create(NODES, "", desired)
            logger.info("node registered node=%s", node.name)
            return
        except APIError as e:
            if e.code != 409:
                raise
        existing = await self.client.get(NODES, "", node.name)
        update = registration_update(existing, desired)
        if update is not None:
            existing = await self.client.update(NODES, "", update)
        node.node = existing
        await self._post_status(node)
        logger.info("node registered again node=%s", node.name)

    async def _post_status(self, node: _Node) -> None:
        """Write the node's status over the last Node seen; on a conflict, read it again and
        write once more (the node lifecycle controller writes Ready=Unknown meanwhile)."""
        current = node.node
        for attempt in (1, 2):
            if current is None:
                current = await self.client.get(NODES, "", node.name)
            body = dict(current)
            body["status"] = node_status(
                node.worker, node.info, now=format_time(self.clock()), current=current.get("status")
            )
            try:
                node.node = await self.client.update_status(NODES, "", body)
                return
            except APIError as e:
                if e.code != 409 or attempt == 2:
                    raise
                current = None

    async def _renew_lease(self, node: _Node) -> None:
        """Renew (or create) the node's Lease; on a conflict or a vanished lease, read it
        again and try once more."""
        now = format_micro_time(self.clock())
        node_uid = str(((node.node or {}).get("metadata") or {}).get("uid") or "")
        for attempt in (1, 2):
            if node.lease is None:
                try:
                    node.lease = await self.client.get(LEASES, NODE_LEASE_NAMESPACE, node.name)
                except APIError as e:
                    if e.code != 404:
                        raise
                    lease = lease_object(node.name, now=now, node_uid=node_uid)
                    node.lease = await self.client.create(LEASES, NODE_LEASE_NAMESPACE, lease)
                    return
            body = renewed_lease(node.lease, node.name, now=now, node_uid=node_uid)
            try:
                node.lease = await self.client.update(LEASES, NODE_LEASE_NAMESPACE, body)
                return
            except APIError as e:
                node.lease = None
                if e.code not in (404, 409) or attempt == 2:
                    raise

    async def _lease_loop(self, node: _Node) -> None:
        """Renew every lease period (plus the kubelet's 4 % jitter), from the end of the
        last renewal; a failed renewal is retried sooner, with backoff."""
        retry = RETRY_INITIAL_S
        while True:
            await node.resumed.wait()
            try:
                async with asyncio.timeout(self.call_deadline):
                    await self._renew_lease(node)
                retry = RETRY_INITIAL_S
                delay = self.lease_period * (1 + LEASE_JITTER * random.random())
            except Exception as e:  # the heartbeat must go on, whatever happened
                if isinstance(e, (APIError, TimeoutError)):
                    logger.warning("lease renewal failed node=%s: %s", node.name, _why(e))
                else:
                    logger.exception("lease renewal crashed node=%s", node.name)
                delay = min(retry, self.lease_period)
                retry *= 2
            await asyncio.sleep(delay)

    async def _status_loop(self, node: _Node) -> None:
        """Post the node status every status period, or at once when `changed` is set
        (registration has just written it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.status_period):
                    await node.changed.wait()
            node.changed.clear()
            await node.resumed.wait()
            try:
                async with asyncio.timeout(self.call_deadline):
                    await self._post_status(node)
            except (APIError, TimeoutError) as e:
                # 404: the Node was deleted. A kubelet does not re-register until it
                # restarts (`kubelab restart NODE`); neither does this one.
                logger.warning("node status update failed node=%s: %s", node.name, _why(e))
            except Exception:
                logger.exception("node status update crashed node=%s", node.name)

    # -- pods -----------------------------------------------------------------------------------

    def _interested(self, pod: Obj) -> bool:
        return pod_node(pod) in self.nodes or object_key(pod) in self._owner

    def _on_pod(self, pod: Obj) -> None:
        if self._interested(pod):
            self.queue.add(object_key(pod))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if self._interested(new) or self._interested(old):
            self.queue.add(object_key(new))

    def _enqueue_pods_of(self, node: _Node) -> None:
        for pod in self.pods.list():
            if pod_node(pod) == node.name:
                self.queue.add(object_key(pod))

    def _adopt(self, node: _Node) -> None:
        """Keep the IPs the node's pods already report (oldest pod first): a restarted
        process or node hands out no address twice."""
        mine = [p for p in self.pods.list() if pod_node(p) == node.name and not _finished(p)]
        mine.sort(
            key=lambda p: (
                str((p.get("metadata") or {}).get("creationTimestamp") or ""),
                object_key(p),
            )
        )
        for pod in mine:
            key, uid = object_key(pod), _uid(pod)
            if key in self._owner:
                continue
            if node.ips.reserve(uid, (pod.get("status") or {}).get("podIP")):
                self._track(node, key, uid)

    def _track(self, node: _Node, key: str, uid: str) -> None:
        self._owner[key] = node.name
        self._uids[key] = uid
        node.pods.add(key)

    def _forget(self, key: str) -> None:
        name = self._owner.pop(key, None)
        uid = self._uids.pop(key, "")
        node = self.nodes.get(name or "")
        if node is not None:
            node.pods.discard(key)
            node.ips.release(uid)

    async def _pod_worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                async with asyncio.timeout(self.call_deadline):
                    await self.sync_pod(key)
            except (APIError, TimeoutError) as e:
                quiet = isinstance(e, APIError) and e.code in (404, 409)
                logger.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "pod sync failed pod=%s, retrying: %s",
                    key,
                    _why(e),
                )
                self.queue.add_rate_limited(key)
            except Exception:
                logger.exception("pod sync crashed pod=%s, retrying", key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)

    async def sync_pod(self, key: str) -> None:
        """Converge one pod (by its cache entry) to what its node reports: Running with an
        IP, or deleted once it is terminating; forget the IP of a pod that is gone."""
        ns, _, name = key.rpartition("/")
        pod = self.pods.get(ns, name)
        owner = self._owner.get(key)
        if owner is not None and (
            pod is None or _uid(pod) != self._uids.get(key) or pod_node(pod) != owner
        ):
            self._forget(key)
        if pod is None:
            return
        if _finished(pod):
            if key in self._owner:
                self._forget(key)  # its containers are gone, and so is its sandbox's IP
            return
        node = self.nodes.get(pod_node(pod))
        if node is None or not node.active:
            return  # not ours, or a dead or paused node: start and resume enqueue it again
        uid, epoch = _uid(pod), node.epoch
        if _terminating(pod):
            try:
                await self.client.delete(
                    PODS, ns, name, grace_period_seconds=0, precondition_uid=uid
                )
            except APIError as e:
                if e.code not in (404, 409):
                    raise
            if node.epoch == epoch and self._owner.get(key) == node.name:
                self._forget(key)
            logger.info("pod deleted pod=%s node=%s", key, node.name)
            return
        current_ip = (pod.get("status") or {}).get("podIP")
        ip = node.ips.allocate(uid, prefer=current_ip if isinstance(current_ip, str) else None)
        if ip is None:
            logger.warning("no free pod IP node=%s pod=%s", node.name, key)
            return
        self._track(node, key, uid)
        status = running_pod_status(
            pod, host_ip=node.worker.node_ip, pod_ip=ip, now=format_time(self.clock())
        )
        if status == pod.get("status"):
            return
        await self.client.update_status(PODS, ns, {**pod, "status": status})


def _refused(error: str, state: NodeState | None = None) -> Obj:
    out: Obj = {"ok": False, "error": error}
    if state is not None:
        out["state"] = str(state)
    return out


def _why(e: BaseException) -> str:
    if isinstance(e, APIError):
        return f"{e.code} {e.reason}: {e.message}"
    if isinstance(e, TimeoutError):
        return "deadline exceeded"
    return str(e) or type(e).__name__


# -- the control socket -------------------------------------------------------------------------

MAX_REQUEST_BYTES = 64 * 1024


async def serve_control(host: FakeNodeHost, path: Path) -> asyncio.Server:
    """Listen on the Unix socket `path` (mode 0600, replacing a stale one): one JSON request
    per line, one JSON answer per line (`FakeNodeHost.control`)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    answer = host.control(json.loads(line))
                except ValueError as e:
                    answer = _refused(f"expected one JSON object per line: {e}")
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # a client that went away or sent an endless line: drop it
        finally:
            writer.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_socket_address(path) as address:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)
            sock.bind(address)
            os.chmod(address, 0o600)
        return await asyncio.start_unix_server(session, sock=sock, limit=MAX_REQUEST_BYTES)
    except BaseException:
        sock.close()
        raise


# -- the process --------------------------------------------------------------------------------


async def serve(cfg: ClusterConfig, workers: Sequence[WorkerSpec]) -> None:
    """Host `workers` for `cfg` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = ResourceClient.for_cluster(
        cfg, user="kubelet", timeout=max(MIN_CALL_DEADLINE_S, cfg.timers.node_lease_renew_s)
    )
    host = FakeNodeHost(client, workers, cfg.timers, cluster_id=cfg.uid or cfg.name)
    path = fakenodes_socket(cfg)
    task = asyncio.create_task(host.run(), name="fakenodes")
    server: asyncio.Server | None = None
    try:
        started = asyncio.create_task(host.wait_started())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if task.done():
            task.result()  # it crashed at once: raise that
        server = await serve_control(host, path)
        logger.info(
            "fakenodes serving nodes=%s control=%s", ",".join(w.name for w in workers), path
        )
        done, _ = await asyncio.wait(
            [task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # a crash of the host: raise it
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(OSError), unix_socket_address(path) as address:
                os.unlink(address)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


def _names(workers: Iterable[WorkerSpec]) -> str:
    return ", ".join(w.name for w in workers)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kubelet.fakenodes --config FILE`; exit 0 on SIGTERM, 2 on a bad config."""
    p = argparse.ArgumentParser(
        prog="python -m kubelet.fakenodes",
        description="Host every fake worker of a cluster (kubelab up starts this).",
    )
    p.add_argument("--config", type=Path, required=True, help="the cluster's cluster.toml")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load_config(a.config)
        workers = fake_workers(cfg)
        if not workers:
            raise ConfigError(
                f'{a.config}: no worker has runtime "fake" (workers: '
                f"{_names(cfg.workers) or 'none'}); nothing to host"
            )
        logger.info("fakenodes starting pid=%d nodes=%s", os.getpid(), _names(workers))
        asyncio.run(serve(cfg, workers))
    except ConfigError as e:
        print(f"fakenodes: error: {e}", file=sys.stderr)
        return 2
    logger.info("fakenodes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
