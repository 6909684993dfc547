"""kube-scheduler's default profile as pure functions: which nodes fit a pod, which fits best,
and the message that says why none does.

A scheduling attempt (`schedule`) runs the filters on every node, in the default profile's
order, stopping at the first that rejects the node (the framework's `RunFilterPlugins`):

1. NodeUnschedulable: `spec.unschedulable` (a cordon), unless the pod tolerates
   `node.kubernetes.io/unschedulable:NoSchedule`;
2. NodeName: a pod that names a node fits only there;
3. TaintToleration: the first NoSchedule/NoExecute taint the pod does not tolerate. A node
   whose Ready condition is not True carries, for scheduling, the NoSchedule taint the node
   lifecycle controller is about to add (`not-ready` for False or no condition, `unreachable`
   for Unknown) until the real one is there: a node is never chosen in that window;
4. NodeAffinity: `spec.nodeSelector` and the required node affinity terms;
5. NodeResourcesFit: requests against allocatable minus what the node's pods request
   ("Insufficient cpu", "Insufficient memory") and the pod count ("Too many pods").

The nodes that pass are scored; the highest total wins:

- NodeResourcesFit's LeastAllocated strategy, weight `LEAST_ALLOCATED_WEIGHT` (1): per
  resource `(allocatable - requested) * 100 / allocatable` after adding the pod, averaged over
  cpu and memory. Requests here are "non-zero" (a container without a cpu request counts
  100m, without a memory request 200Mi), as in Kubernetes, so best-effort pods spread too.
- Spreading the pods of one owner (the pod's controller ownerReference), weight
  `SPREAD_WEIGHT` (2, PodTopologySpread's weight in the default profile), computed like the
  former SelectorSpread plugin: `100 * (max - count) / max` over the feasible nodes, where
  `count` is how many of the owner's pods a node has. Pods without an owner score 0 everywhere.

Equal totals are broken by `tie_break` (the caller passes a counter): nodes with the same
score take pods in turn instead of one node getting them all. Kubernetes picks at random
among them; a counter keeps runs reproducible.

When no node fits, the message is Kubernetes' `FitError` text: every rejection reason
counted over the nodes, each as "<count> <reason>", sorted as strings (Go's `sort.Strings`
on those strings, so the count comes first in the order), then what DefaultPreemption's
PostFilter says. kubelab has no pod priorities, so preemption never finds a victim: nodes
that failed on resources report "No preemption victims found for incoming pod", the others
(rejected by a plugin whose verdict preemption cannot change) "Preemption is not helpful for
scheduling".

Not modelled: extended resources and ephemeral storage, host ports, volumes, pod
(anti-)affinity, preferred node affinity and PreferNoSchedule taints in scoring, and
percentageOfNodesToScore (every node is considered; clusters here are at most a few hundred
nodes).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.kube.admission import NOT_READY_TAINT, UNREACHABLE_TAINT
from controlplane.kube.quantity import parse_quantity

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "LEAST_ALLOCATED_WEIGHT",
    "MAX_NODE_SCORE",
    "SPREAD_WEIGHT",
    "NodeInfo",
    "NodeSelectorMatcher",
    "PodInfo",
    "Resources",
    "ScheduleResult",
    "Status",
    "build_node_infos",
    "controller_uid",
    "filter_node",
    "fit_error_message",
    "node_scheduling_properties_changed",
    "pod_key",
    "pod_requests",
    "schedule",
    "score_nodes",
    "tolerates",
    "truncate_message",
    "with_unschedulable_condition",
]

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
LEAST_ALLOCATED_WEIGHT = 1
SPREAD_WEIGHT = 2
DEFAULT_MILLI_CPU_REQUEST = 100  # schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
MAX_MESSAGE_LENGTH = 1024  # an Event's note (validation.NoteLengthLimit)

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# Filter plugins, in the default profile's order, and their reasons (Kubernetes' text).
NODE_UNSCHEDULABLE = "NodeUnschedulable"
NODE_NAME = "NodeName"
TAINT_TOLERATION = "TaintToleration"
NODE_AFFINITY = "NodeAffinity"
NODE_RESOURCES_FIT = "NodeResourcesFit"

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_TOO_MANY_PODS = "Too many pods"
ERR_INSUFFICIENT_CPU = "Insufficient cpu"
ERR_INSUFFICIENT_MEMORY = "Insufficient memory"
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_PREEMPTION_VICTIMS = "No preemption victims found for incoming pod"
PREEMPTION_POLICY_NEVER = "not eligible due to preemptionPolicy=Never."

TERMINAL_PHASES = ("Succeeded", "Failed")


def untolerated_taint_reason(taint: Mapping[str, Any]) -> str:
    """TaintToleration's reason: `node(s) had untolerated taint {key: value}`."""
    return f"node(s) had untolerated taint {{{taint.get('key') or ''}: {taint.get('value') or ''}}}"


# -- pods ------------------------------------------------------------------------------------


def pod_key(pod: Mapping[str, Any]) -> str:
    """`namespace/name`, the key informers and queues use."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def is_terminal(pod: Mapping[str, Any]) -> bool:
    """Succeeded or Failed: the pod holds nothing on its node any more."""
    return _status(pod).get("phase") in TERMINAL_PHASES


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (its ownerReference with `controller: true`)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if isinstance(refs, list):
        for ref in refs:
            if isinstance(ref, Mapping) and ref.get("controller") is True and ref.get("uid"):
                return str(ref["uid"])
    return None


@dataclass(frozen=True)
class Resources:
    """What a pod requests or a node offers: cpu in millicores, memory in bytes."""

    milli_cpu: int = 0
    memory: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu + other.milli_cpu, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu - other.milli_cpu, self.memory - other.memory)

    def max(self, other: Resources) -> Resources:
        return Resources(max(self.milli_cpu, other.milli_cpu), max(self.memory, other.memory))


def _amount(value: object, scale: int) -> int:
    """A quantity in units of 1/`scale`, rounded up as `Quantity.MilliValue()`/`Value()` do;
    0 for a value admission should have refused."""
    try:
        return math.ceil(parse_quantity(value) * scale)
    except (ValueError, ZeroDivisionError):
        return 0


def _container_requests(container: Mapping[str, Any], non_zero: bool) -> Resources:
    resources = container.get("resources")
    requests = resources.get("requests") if isinstance(resources, Mapping) else None
    requests = requests if isinstance(requests, Mapping) else {}
    if "cpu" in requests:
        cpu = _amount(requests["cpu"], 1000)
    else:
        cpu = DEFAULT_MILLI_CPU_REQUEST if non_zero else 0
    if "memory" in requests:
        memory = _amount(requests["memory"], 1)
    else:
        memory = DEFAULT_MEMORY_REQUEST if non_zero else 0
    return Resources(cpu, memory)


def _containers(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = spec.get(key)
    return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []


def pod_requests(pod: Mapping[str, Any], *, non_zero: bool = False) -> Resources:
    """What the pod needs on a node (`resource.PodRequests`): the sum over its containers,
    at least the largest init container (init containers run one at a time, before them),
    plus `spec.overhead`. Sidecars (init containers with `restartPolicy: Always`) keep
    running, so they add to the sum and to every init container after them.

    `non_zero`: count a missing cpu request as 100m and a missing memory request as 200Mi
    per container (what scoring uses, so pods without requests still spread)."""
    spec = _spec(pod)
    total = Resources()
    for c in _containers(spec, "containers"):
        total += _container_requests(c, non_zero)
    sidecars = Resources()
    init_max = Resources()
    for c in _containers(spec, "initContainers"):
        req = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":
            total += req
            sidecars += req
            init_max = init_max.max(sidecars)
        else:
            init_max = init_max.max(req + sidecars)
    total = total.max(init_max)
    overhead = spec.get("overhead")
    if isinstance(overhead, Mapping):
        total += Resources(
            _amount(overhead.get("cpu", 0), 1000), _amount(overhead.get("memory", 0), 1)
        )
    return total


# -- node affinity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "In":
            return present and value in self.values
        if self.operator == "NotIn":
            return not present or value not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        # Gt / Lt: both sides integers (validated when the requirement was built).
        if not present:
            return False
        mine = _int64(value)
        if mine is None:
            return False
        bound = int(self.values[0])
        return mine > bound if self.operator == "Gt" else mine < bound


def _int64(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(value, 10)
    except ValueError:
        return None


def _requirement(expr: object) -> _Requirement | None:
    """A node selector requirement, or None when it is malformed (Kubernetes ignores the
    whole term then: it matches no node)."""
    if not isinstance(expr, Mapping):
        return None
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str) or not key or not isinstance(values, list):
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    vals = tuple(values)
    if op in ("In", "NotIn"):
        ok = len(vals) > 0
    elif op in ("Exists", "DoesNotExist"):
        ok = len(vals) == 0
    elif op in ("Gt", "Lt"):
        ok = len(vals) == 1 and _int64(vals[0]) is not None
    else:
        ok = False
    return _Requirement(key, str(op), vals) if ok else None


@dataclass(frozen=True)
class _Term:
    expressions: tuple[_Requirement, ...]
    fields: tuple[_Requirement, ...]  # only metadata.name, In/NotIn with one value

    def matches(self, name: str, labels: Mapping[str, Any]) -> bool:
        return all(r.matches(labels) for r in self.expressions) and all(
            r.matches({"metadata.name": name}) for r in self.fields
        )


def _term(term: object) -> _Term | None:
    """A node selector term; None when it can match nothing (empty or malformed)."""
    if not isinstance(term, Mapping):
        return None
    raw_exprs, raw_fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not isinstance(raw_exprs, list) or not isinstance(raw_fields, list):
        return None
    if not raw_exprs and not raw_fields:
        return None
    exprs = [_requirement(e) for e in raw_exprs]
    fields = [_requirement(f) for f in raw_fields]
    if any(r is None for r in exprs) or any(
        r is None
        or r.key != "metadata.name"
        or r.operator not in ("In", "NotIn")
        or len(r.values) != 1
        for r in fields
    ):
        return None
    return _Term(tuple(r for r in exprs if r), tuple(r for r in fields if r))


@dataclass(frozen=True)
class NodeSelectorMatcher:
    """The pod's `nodeSelector` AND its required node affinity (terms ORed), compiled once
    per attempt (NodeAffinity's `RequiredNodeAffinity`)."""

    node_selector: tuple[tuple[str, str], ...] = ()
    terms: tuple[_Term, ...] | None = None  # None: no required affinity

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> NodeSelectorMatcher:
        spec = _spec(pod)
        raw_selector = spec.get("nodeSelector")
        selector = (
            tuple((str(k), str(v)) for k, v in raw_selector.items())
            if isinstance(raw_selector, Mapping)
            else ()
        )
        terms: tuple[_Term, ...] | None = None
        affinity = spec.get("affinity")
        node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, Mapping) else None
        required = (
            node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
            if isinstance(node_affinity, Mapping)
            else None
        )
        if isinstance(required, Mapping):
            raw_terms = required.get("nodeSelectorTerms")
            compiled = [_term(t) for t in raw_terms] if isinstance(raw_terms, list) else []
            terms = tuple(t for t in compiled if t is not None)
        return cls(selector, terms)

    def matches(self, name: str, labels: Mapping[str, Any]) -> bool:
        if any(labels.get(k) != v for k, v in self.node_selector):
            return False
        if self.terms is None:
            return True
        return any(t.matches(name, labels) for t in self.terms)


# -- taints and tolerations ------------------------------------------------------------------


def toleration_tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """`Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key every
    key (with `Exists`); `Equal` (or no operator) also compares the values."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    op = toleration.get("operator") or ""
    if op in ("", "Equal"):
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return op == "Exists"


def tolerates(tolerations: Iterable[Mapping[str, Any]] | None, taint: Mapping[str, Any]) -> bool:
    """Whether any of `tolerations` tolerates `taint` (`TolerationsTolerateTaint`)."""
    return any(isinstance(t, Mapping) and toleration_tolerates(t, taint) for t in tolerations or ())


def _ready_status(node: Mapping[str, Any]) -> str | None:
    conditions = _status(node).get("conditions")
    if isinstance(conditions, list):
        for c in conditions:
            if isinstance(c, Mapping) and c.get("type") == "Ready":
                return str(c.get("status") or "")
    return None


def _effective_taints(node: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The node's NoSchedule/NoExecute taints, plus the NoSchedule taint the node lifecycle
    controller adds to a node that is not Ready, when it has not added it yet."""
    raw = _spec(node).get("taints")
    taints = tuple(
        t
        for t in (raw if isinstance(raw, list) else ())
        if isinstance(t, Mapping) and t.get("effect") in ("NoSchedule", "NoExecute")
    )
    ready = _ready_status(node)
    if ready == "True":
        return taints
    key = UNREACHABLE_TAINT if ready == "Unknown" else NOT_READY_TAINT
    if any(
        t.get("key") in (NOT_READY_TAINT, UNREACHABLE_TAINT) and t.get("effect") == "NoSchedule"
        for t in taints
    ):
        return taints
    return (*taints, {"key": key, "effect": "NoSchedule"})


# -- nodes -----------------------------------------------------------------------------------


def _allocatable(node: Mapping[str, Any]) -> tuple[Resources, int]:
    """(cpu and memory, pod count) a node offers: `status.allocatable`, each resource
    falling back to `status.capacity`. A node that states no pod count takes none, as in
    Kubernetes (`AllowedPodNumber` 0)."""
    status = _status(node)
    allocatable = status.get("allocatable")
    capacity = status.get("capacity")
    alloc: Mapping[str, Any] = allocatable if isinstance(allocatable, Mapping) else {}
    cap: Mapping[str, Any] = capacity if isinstance(capacity, Mapping) else {}

    def get(name: str) -> object:
        return alloc[name] if name in alloc else cap.get(name, 0)

    return Resources(_amount(get("cpu"), 1000), _amount(get("memory"), 1)), _amount(get("pods"), 1)


@dataclass
class _PodEntry:
    requests: Resources
    non_zero: Resources
    owner: str | None


@dataclass
class NodeInfo:
    """A node and the pods assigned to it (`framework.NodeInfo`), updated incrementally.

    `node` is None while pods name a node the cache has not seen (or no longer sees): such
    an entry is never a candidate. Pods are counted once per key; adding a pod again
    replaces it."""

    name: str
    node: Obj | None = None
    pods: dict[str, Obj] = field(default_factory=dict)
    requested: Resources = Resources()
    non_zero_requested: Resources = Resources()
    allocatable: Resources = Resources()
    allowed_pods: int = 0
    owner_pods: Counter[str] = field(default_factory=Counter)
    unschedulable: bool = False
    labels: Mapping[str, Any] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()
    _entries: dict[str, _PodEntry] = field(default_factory=dict, repr=False)

    def set_node(self, node: Obj | None) -> None:
        """Replace the node object (None: the node is gone) and what is derived from it."""
        self.node = node
        if node is None:
            self.allocatable, self.allowed_pods = Resources(), 0
            self.unschedulable, self.labels, self.taints = False, {}, ()
            return
        self.allocatable, self.allowed_pods = _allocatable(node)
        self.unschedulable = _spec(node).get("unschedulable") is True
        labels = (node.get("metadata") or {}).get("labels")
        self.labels = labels if isinstance(labels, Mapping) else {}
        self.taints = _effective_taints(node)

    def add_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.remove_pod(key)
        entry = _PodEntry(pod_requests(pod), pod_requests(pod, non_zero=True), controller_uid(pod))
        self.pods[key] = pod
        self._entries[key] = entry
        self.requested += entry.requests
        self.non_zero_requested += entry.non_zero
        if entry.owner is not None:
            self.owner_pods[entry.owner] += 1

    def remove_pod(self, key: str) -> bool:
        """Forget the pod `key`; False if it was not here."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        del self.pods[key]
        self.requested -= entry.requests
        self.non_zero_requested -= entry.non_zero
        if entry.owner is not None:
            self.owner_pods[entry.owner] -= 1
            if self.owner_pods[entry.owner] <= 0:
                del self.owner_pods[entry.owner]
        return True


def node_name_of(node: Mapping[str, Any]) -> str:
    return str((node.get("metadata") or {}).get("name") or "")


def build_node_infos(nodes: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, NodeInfo]:
    """Node infos from lists: every assigned pod (`spec.nodeName`) that has not finished
    counts on its node, terminating ones too (they hold their resources until they are
    gone). Pods naming an unknown node get an entry without a node object."""
    infos: dict[str, NodeInfo] = {}
    for node in nodes:
        name = node_name_of(node)
        infos[name] = NodeInfo(name)
        infos[name].set_node(node)
    for pod in pods:
        node_name = str(_spec(pod).get("nodeName") or "")
        if node_name and not is_terminal(pod):
            if node_name not in infos:
                infos[node_name] = NodeInfo(node_name)
            infos[node_name].add_pod(pod)
    return infos


def node_scheduling_properties_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a node update can make a pod fit where it did not (kube-scheduler's
    `nodeSchedulingPropertiesChange`): cordon, allocatable or capacity, labels, taints, or a
    condition's status. Heartbeat-only updates return False."""

    def conditions(node: Mapping[str, Any]) -> dict[str, str]:
        raw = _status(node).get("conditions")
        return {
            str(c.get("type")): str(c.get("status"))
            for c in (raw if isinstance(raw, list) else ())
            if isinstance(c, Mapping)
        }

    old_spec, new_spec = _spec(old), _spec(new)
    old_status, new_status = _status(old), _status(new)
    return (
        bool(old_spec.get("unschedulable")) != bool(new_spec.get("unschedulable"))
        or old_spec.get("taints") != new_spec.get("taints")
        or (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
        or old_status.get("allocatable") != new_status.get("allocatable")
        or old_status.get("capacity") != new_status.get("capacity")
        or conditions(old) != conditions(new)
    )


# -- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Why a filter plugin rejected a node. `resolvable`: whether evicting pods could change
    the verdict (`Unschedulable`), or not (`UnschedulableAndUnresolvable`)."""

    plugin: str
    reasons: tuple[str, ...]
    resolvable: bool = False


@dataclass(frozen=True)
class PodInfo:
    """What the filters and scores need from a pod, computed once per attempt."""

    pod: Obj
    requests: Resources
    non_zero: Resources
    tolerations: tuple[Mapping[str, Any], ...]
    node_name: str
    selector: NodeSelectorMatcher
    owner: str | None
    preemption_never: bool

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        spec = _spec(pod)
        raw = spec.get("tolerations")
        tolerations = (
            tuple(t for t in raw if isinstance(t, Mapping)) if isinstance(raw, list) else ()
        )
        return cls(
            pod=pod,
            requests=pod_requests(pod),
            non_zero=pod_requests(pod, non_zero=True),
            tolerations=tolerations,
            node_name=str(spec.get("nodeName") or ""),
            selector=NodeSelectorMatcher.of(pod),
            owner=controller_uid(pod),
            preemption_never=spec.get("preemptionPolicy") == "Never",
        )


_UNSCHEDULABLE_NO_SCHEDULE = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}


def filter_node_unschedulable(pod: PodInfo, info: NodeInfo) -> Status | None:
    if info.unschedulable and not tolerates(pod.tolerations, _UNSCHEDULABLE_NO_SCHEDULE):
        return Status(NODE_UNSCHEDULABLE, (ERR_UNSCHEDULABLE,))
    return None


def filter_node_name(pod: PodInfo, info: NodeInfo) -> Status | None:
    if pod.node_name and pod.node_name != info.name:
        return Status(NODE_NAME, (ERR_NODE_NAME,))
    return None


def filter_taint_toleration(pod: PodInfo, info: NodeInfo) -> Status | None:
    for taint in info.taints:
        if not tolerates(pod.tolerations, taint):
            return Status(TAINT_TOLERATION, (untolerated_taint_reason(taint),))
    return None


def filter_node_affinity(pod: PodInfo, info: NodeInfo) -> Status | None:
    if not pod.selector.matches(info.name, info.labels):
        return Status(NODE_AFFINITY, (ERR_NODE_AFFINITY,))
    return None


def filter_node_resources_fit(pod: PodInfo, info: NodeInfo) -> Status | None:
    reasons: list[str] = []
    if len(info.pods) + 1 > info.allowed_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    free = info.allocatable - info.requested
    if pod.requests.milli_cpu > 0 and pod.requests.milli_cpu > free.milli_cpu:
        reasons.append(ERR_INSUFFICIENT_CPU)
    if pod.requests.memory > 0 and pod.requests.memory > free.memory:
        reasons.append(ERR_INSUFFICIENT_MEMORY)
    if reasons:
        return Status(NODE_RESOURCES_FIT, tuple(reasons), resolvable=True)
    return None


FILTERS = (
    filter_node_unschedulable,
    filter_node_name,
    filter_taint_toleration,
    filter_node_affinity,
    filter_node_resources_fit,
)


def filter_node(pod: PodInfo, info: NodeInfo) -> Status | None:
    """The first filter that rejects the node, or None when the pod fits there."""
    for f in FILTERS:
        status = f(pod, info)
        if status is not None:
            return status
    return None


# -- scores ----------------------------------------------------------------------------------


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def least_allocated_score(pod: PodInfo, info: NodeInfo) -> int:
    """NodeResourcesFit's LeastAllocated score (0-100): the free share of cpu and memory
    once the pod is there (non-zero requests), cpu and memory weighted equally."""
    requested = info.non_zero_requested + pod.non_zero
    total, weights = 0, 0
    for req, cap in (
        (requested.milli_cpu, info.allocatable.milli_cpu),
        (requested.memory, info.allocatable.memory),
    ):
        if cap == 0:
            continue
        total += _least_requested(req, cap)
        weights += 1
    return total // weights if weights else 0


def spread_scores(pod: PodInfo, infos: list[NodeInfo]) -> list[int]:
    """0-100 per node: fewer of the pod's owner's pods on a node scores higher."""
    if pod.owner is None:
        return [0] * len(infos)
    counts = [info.owner_pods.get(pod.owner, 0) for info in infos]
    most = max(counts, default=0)
    if most == 0:
        return [MAX_NODE_SCORE] * len(infos)
    return [MAX_NODE_SCORE * (most - c) // most for c in counts]


def score_nodes(pod: PodInfo, infos: list[NodeInfo]) -> list[int]:
    """The weighted total of every score plugin, per node of `infos` (in order)."""
    spread = spread_scores(pod, infos)
    return [
        LEAST_ALLOCATED_WEIGHT * least_allocated_score(pod, info) + SPREAD_WEIGHT * s
        for info, s in zip(infos, spread, strict=True)
    ]


# -- the attempt -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleResult:
    """The chosen node, or None and Kubernetes' message saying why no node fits."""

    node: str | None
    message: str = ""
    statuses: Mapping[str, Status] = field(default_factory=dict)


def _histogram(reasons: Iterable[str]) -> str:
    counts = Counter(reasons)
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(
    num_nodes: int, statuses: Iterable[Status], *, preemption_never: bool = False
) -> str:
    """`FitError.Error()` with DefaultPreemption's PostFilter message appended, e.g.
    `0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:
    3 No preemption victims found for incoming pod.`"""
    statuses = list(statuses)
    message = f"0/{num_nodes} nodes are available"
    message += f": {_histogram(r for s in statuses for r in s.reasons)}."
    if preemption_never:
        return f"{message} preemption: {PREEMPTION_POLICY_NEVER}"
    preemption = _histogram(
        NO_PREEMPTION_VICTIMS if s.resolvable else PREEMPTION_NOT_HELPFUL for s in statuses
    )
    return f"{message} preemption: 0/{num_nodes} nodes are available: {preemption}."


def schedule(pod: Obj, infos: Mapping[str, NodeInfo], *, tie_break: int = 0) -> ScheduleResult:
    """One scheduling attempt of `pod` over `infos` (see the module docstring). O(nodes).

    Among the nodes with the best total, the `tie_break`-th (modulo their number, in name
    order) is chosen."""
    pi = PodInfo.of(pod)
    feasible: list[NodeInfo] = []
    statuses: dict[str, Status] = {}
    for info in infos.values():
        if info.node is None:
            continue
        status = filter_node(pi, info)
        if status is None:
            feasible.append(info)
        else:
            statuses[info.name] = status
    num_nodes = len(feasible) + len(statuses)
    if num_nodes == 0:
        return ScheduleResult(None, NO_NODES_AVAILABLE)
    if not feasible:
        message = fit_error_message(
            num_nodes, statuses.values(), preemption_never=pi.preemption_never
        )
        return ScheduleResult(None, message, statuses)
    if len(feasible) == 1:  # as Kubernetes: no scoring when there is no choice
        return ScheduleResult(feasible[0].name, statuses=statuses)
    scores = score_nodes(pi, feasible)
    best = max(scores)
    winners = sorted(info.name for info, s in zip(feasible, scores, strict=True) if s == best)
    return ScheduleResult(winners[tie_break % len(winners)], statuses=statuses)


# -- results ---------------------------------------------------------------------------------


def truncate_message(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """An Event note fits in 1024 characters: longer messages end with " ..."
    (kube-scheduler's `truncateMessage`)."""
    if len(message) <= limit:
        return message
    suffix = " ..."
    return message[: limit - len(suffix)] + suffix


def with_unschedulable_condition(pod: Obj, message: str, now: str) -> Obj | None:
    """A copy of `pod` whose PodScheduled condition is False/Unschedulable with `message`
    (`podutil.UpdatePodCondition`), or None when it says so already. The transition time
    moves only when the condition's status changes."""
    status = _status(pod)
    conditions = status.get("conditions")
    conditions = (
        [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []
    )
    condition: Obj = {
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
        "reason": "Unschedulable",
        "message": message,
    }
    new_conditions: list[Any] = []
    found = False
    for c in conditions:
        if c.get("type") != "PodScheduled":
            new_conditions.append(c)
            continue
        found = True
        if c.get("status") == "False":
            if c.get("reason") == "Unschedulable" and c.get("message") == message:
                return None
            condition["lastTransitionTime"] = c.get("lastTransitionTime") or now
        new_conditions.append(condition)
    if not found:
        new_conditions.append(condition)
    out = dict(pod)
    out["status"] = {**status, "conditions": new_conditions}
    return out
