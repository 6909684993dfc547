"""The scheduling algorithm, table-driven: filters and their reasons, the FailedScheduling
text, requests, tolerations, scores and tie-breaking (kube-scheduler's default profile)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.algorithm import (
    DEFAULT_MEMORY_REQUEST,
    NodeInfo,
    PodInfo,
    Resources,
    build_node_infos,
    fit_error_message,
    least_allocated_score,
    node_scheduling_properties_changed,
    pod_requests,
    schedule,
    spread_scores,
    tolerates,
    truncate_message,
    with_unschedulable_condition,
)

Obj = dict[str, Any]

Mi = 1024 * 1024
Gi = 1024 * Mi


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str | None = "110",
    ready: str | None = "True",
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
    allocatable: bool = True,
) -> Obj:
    resources: Obj = {"cpu": cpu, "memory": memory}
    if pods is not None:
        resources["pods"] = pods
    status: Obj = {"capacity": dict(resources)}
    if allocatable:
        status["allocatable"] = dict(resources)
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": status,
    }


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> Obj:
    requests: Obj = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    return {"name": "c", "image": "nginx", "resources": {"requests": requests}, **extra}


def pod(
    name: str = "web",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    node_name: str | None = None,
    tolerations: list[Obj] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity_terms: list[Obj] | None = None,
    owner: str | None = None,
    phase: str = "Pending",
    deleting: bool = False,
    **spec_extra: Any,
) -> Obj:
    spec: Obj = {"containers": [container(cpu, memory)], **spec_extra}
    if node_name:
        spec["nodeName"] = node_name
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity_terms is not None:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": affinity_terms
                }
            }
        }
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": owner,
                "controller": True,
            }
        ]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": phase},
    }


def infos(*nodes: Obj, pods: list[Obj] | None = None) -> dict[str, NodeInfo]:
    return build_node_infos(nodes, pods or [])


def message_for(p: Obj, *nodes: Obj, pods: list[Obj] | None = None) -> str:
    result = schedule(p, infos(*nodes, pods=pods))
    assert result.node is None, f"unexpectedly scheduled on {result.node}"
    return result.message


def preempt(n: int, *parts: str) -> str:
    return f" preemption: 0/{n} nodes are available: {', '.join(parts)}."


NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


# -- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"containers": []}, Resources(0, 0), id="no-containers"),
        pytest.param({"containers": [container()]}, Resources(0, 0), id="no-requests-is-zero"),
        pytest.param(
            {"containers": [container("250m", "64Mi"), container("0.5", "1Gi")]},
            Resources(750, 64 * Mi + Gi),
            id="containers-sum",
        ),
        pytest.param({"containers": [container("1m")]}, Resources(1, 0), id="millicores"),
        pytest.param(
            {"containers": [container("100m")], "initContainers": [container("2", "10Mi")]},
            Resources(2000, 10 * Mi),
            id="init-larger-wins",
        ),
        pytest.param(
            {
                "containers": [container("1", "1Gi")],
                "initContainers": [container("200m"), container("300m")],
            },
            Resources(1000, Gi),
            id="init-max-not-sum",
        ),
        pytest.param(
            {
                "containers": [container("1")],
                "initContainers": [
                    container("500m", restartPolicy="Always"),
                    container("800m"),
                ],
            },
            Resources(1500, 0),
            id="sidecar-adds-to-containers-and-later-inits",
        ),
        pytest.param(
            {"containers": [container("1")], "overhead": {"cpu": "250m", "memory": "120Mi"}},
            Resources(1250, 120 * Mi),
            id="overhead",
        ),
    ],
)
def test_pod_requests(spec: Obj, expected: Resources) -> None:
    """Sum of containers, at least the largest init container, plus overhead."""
    assert pod_requests({"spec": spec}) == expected


def test_pod_requests_non_zero_defaults() -> None:
    """Scoring counts 100m and 200Mi for a container without requests."""
    p = {"spec": {"containers": [container(), container("50m")]}}
    assert pod_requests(p, non_zero=True) == Resources(150, 2 * DEFAULT_MEMORY_REQUEST)
    assert pod_requests(p) == Resources(50, 0)


# -- tolerations -----------------------------------------------------------------------------

TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "ok"),
    [
        pytest.param({"key": "dedicated", "operator": "Equal", "value": "gpu"}, True, id="equal"),
        pytest.param({"key": "dedicated", "value": "gpu"}, True, id="no-operator-is-equal"),
        pytest.param({"key": "dedicated", "operator": "Equal", "value": "x"}, False, id="value"),
        pytest.param({"key": "dedicated", "operator": "Exists"}, True, id="exists-any-value"),
        pytest.param({"key": "other", "operator": "Exists"}, False, id="other-key"),
        pytest.param({"operator": "Exists"}, True, id="empty-key-exists-tolerates-all"),
        pytest.param(
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False, id="effect"
        ),
        pytest.param(
            {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
            True,
            id="same-effect",
        ),
        pytest.param({"key": "dedicated", "operator": "Lt"}, False, id="unknown-operator"),
    ],
)
def test_toleration_matching(toleration: Obj, ok: bool) -> None:
    """Toleration.ToleratesTaint: key, operator, value and effect."""
    assert tolerates([toleration], TAINT) is ok


def test_no_tolerations_tolerate_nothing() -> None:
    assert not tolerates(None, TAINT)
    assert not tolerates([], TAINT)


# -- filters: one node, the exact message ------------------------------------------------------

BIG = pod(cpu="8")


@pytest.mark.parametrize(
    ("p", "n", "expected"),
    [
        pytest.param(
            pod(),
            node("w", unschedulable=True),
            "0/1 nodes are available: 1 node(s) were unschedulable."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="cordoned",
        ),
        pytest.param(
            pod(node_name="other"),
            node("w"),
            "0/1 nodes are available: 1 node(s) didn't match the requested node name."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="node-name",
        ),
        pytest.param(
            pod(node_selector={"disk": "ssd"}),
            node("w", labels={"disk": "hdd"}),
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="node-selector",
        ),
        pytest.param(
            pod(),
            node("w", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="taint-with-value",
        ),
        pytest.param(
            pod(),
            node("w", taints=[CONTROL_PLANE_TAINT]),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }." + preempt(1, f"1 {NOT_HELPFUL}"),
            id="taint-without-value",
        ),
        pytest.param(
            pod(),
            node("w", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
            "0/1 nodes are available: 1 node(s) had untolerated taint {k: v}."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="no-execute-taint",
        ),
        pytest.param(
            pod(),
            node("w", ready="False"),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }." + preempt(1, f"1 {NOT_HELPFUL}"),
            id="not-ready-before-its-taint",
        ),
        pytest.param(
            pod(),
            node("w", ready=None),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }." + preempt(1, f"1 {NOT_HELPFUL}"),
            id="no-ready-condition",
        ),
        pytest.param(
            pod(),
            node("w", ready="Unknown"),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/unreachable: }." + preempt(1, f"1 {NOT_HELPFUL}"),
            id="unknown-before-its-taint",
        ),
        pytest.param(
            pod(),
            node(
                "w",
                ready="Unknown",
                taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}],
            ),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/unreachable: }." + preempt(1, f"1 {NOT_HELPFUL}"),
            id="unreachable-taint",
        ),
        pytest.param(
            BIG,
            node("w"),
            "0/1 nodes are available: 1 Insufficient cpu." + preempt(1, f"1 {NO_VICTIMS}"),
            id="insufficient-cpu",
        ),
        pytest.param(
            pod(memory="9Gi"),
            node("w"),
            "0/1 nodes are available: 1 Insufficient memory." + preempt(1, f"1 {NO_VICTIMS}"),
            id="insufficient-memory",
        ),
        pytest.param(
            pod(cpu="5", memory="9Gi"),
            node("w"),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
            + preempt(1, f"1 {NO_VICTIMS}"),
            id="cpu-and-memory-both-counted",
        ),
        pytest.param(
            pod(),
            node("w", pods="0"),
            "0/1 nodes are available: 1 Too many pods." + preempt(1, f"1 {NO_VICTIMS}"),
            id="pods-limit",
        ),
        pytest.param(
            pod(),
            node("w", pods=None),
            "0/1 nodes are available: 1 Too many pods." + preempt(1, f"1 {NO_VICTIMS}"),
            id="no-pod-count-takes-no-pods",
        ),
        pytest.param(
            pod(cpu="1", preemptionPolicy="Never"),
            node("w", cpu="500m"),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never.",
            id="preemption-policy-never",
        ),
        pytest.param(
            pod(),
            node("w", unschedulable=True, taints=[CONTROL_PLANE_TAINT], cpu="0"),
            "0/1 nodes are available: 1 node(s) were unschedulable."
            + preempt(1, f"1 {NOT_HELPFUL}"),
            id="first-failing-filter-only",
        ),
    ],
)
def test_filter_reasons(p: Obj, n: Obj, expected: str) -> None:
    """Each filter's reason, in Kubernetes' words, with the preemption verdict."""
    assert message_for(p, n) == expected


@pytest.mark.parametrize(
    ("p", "n"),
    [
        pytest.param(
            pod(
                tolerations=[
                    {
                        "key": "node.kubernetes.io/unschedulable",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ]
            ),
            node("w", unschedulable=True),
            id="cordon-tolerated",
        ),
        pytest.param(pod(node_name="w"), node("w"), id="node-name-matches"),
        pytest.param(
            pod(node_selector={"disk": "ssd"}), node("w", labels={"disk": "ssd"}), id="selector"
        ),
        pytest.param(
            pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}]),
            node("w", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            id="taint-tolerated",
        ),
        pytest.param(
            pod(),
            node("w", taints=[{"key": "soft", "effect": "PreferNoSchedule"}]),
            id="prefer-no-schedule-is-no-filter",
        ),
        pytest.param(
            pod(
                tolerations=[
                    {
                        "key": "node.kubernetes.io/not-ready",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ]
            ),
            node("w", ready="False"),
            id="not-ready-tolerated",
        ),
        pytest.param(pod(cpu="4", memory="8Gi"), node("w"), id="exactly-allocatable"),
        pytest.param(
            pod(cpu="3"),
            {
                **node("w", cpu="1", allocatable=False),
                "status": {
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            id="capacity-when-no-allocatable",
        ),
    ],
)
def test_fits(p: Obj, n: Obj) -> None:
    """Pods that pass every filter are scheduled on the node."""
    assert schedule(p, infos(n)).node == "w"


@pytest.mark.parametrize(
    ("terms", "fits"),
    [
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}],
            True,
            id="in",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}],
            False,
            id="in-miss",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}],
            True,
            id="notin",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}],
            True,
            id="notin-absent",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}], True, id="exists"
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}],
            False,
            id="doesnotexist",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}],
            True,
            id="gt",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["8"]}]}],
            False,
            id="lt",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["x"]}]}],
            False,
            id="gt-bad-value",
        ),
        pytest.param(
            [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w"]}]}],
            True,
            id="field-name",
        ),
        pytest.param(
            [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["w"]}]}],
            False,
            id="field-notin",
        ),
        pytest.param([{}], False, id="empty-term-matches-nothing"),
        pytest.param(
            [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            ],
            True,
            id="terms-are-ored",
        ),
        pytest.param(
            [
                {
                    "matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["a"]},
                        {"key": "cores", "operator": "Lt", "values": ["4"]},
                    ]
                }
            ],
            False,
            id="expressions-are-anded",
        ),
    ],
)
def test_node_affinity(terms: list[Obj], fits: bool) -> None:
    """Required node affinity: terms ORed, expressions ANDed, Kubernetes' operators."""
    n = node("w", labels={"zone": "a", "cores": "16"})
    result = schedule(pod(affinity_terms=terms), infos(n))
    assert (result.node == "w") is fits
    if not fits:
        assert "1 node(s) didn't match Pod's node affinity/selector." in result.message


# -- several nodes: counts and order -----------------------------------------------------------


def test_multi_reason_message() -> None:
    """Reasons are counted over nodes and sorted as "<count> <reason>" strings; preemption
    cannot help on the tainted node and finds no victim on the others."""
    nodes = [node("cp", taints=[CONTROL_PLANE_TAINT]), node("w1", cpu="1"), node("w2", cpu="1")]
    assert message_for(BIG, *nodes) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes "
        "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims "
        "found for incoming pod."
    )


def test_all_insufficient_cpu_message() -> None:
    nodes = [node(f"w{i}", cpu="2") for i in range(3)]
    assert message_for(BIG, *nodes) == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )


def test_reasons_sort_as_strings_with_their_counts() -> None:
    """Go sorts the "<count> <reason>" strings: "1 node(s)..." before "2 Insufficient...",
    and "10 ..." before "2 ..."."""
    nodes = [node("cordoned", unschedulable=True)] + [node(f"w{i}", cpu="1") for i in range(2)]
    assert message_for(BIG, *nodes).startswith(
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
    )
    many = [node(f"t{i:02}", taints=[CONTROL_PLANE_TAINT]) for i in range(10)]
    many += [node(f"w{i}", cpu="1") for i in range(2)]
    assert message_for(BIG, *many) == (
        "0/12 nodes are available: 10 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/12 nodes "
        "are available: 10 Preemption is not helpful for scheduling, 2 No preemption victims "
        "found for incoming pod."
    )


def test_no_nodes() -> None:
    assert schedule(pod(), {}).message == "no nodes available to schedule pods"
    ghost = infos(pods=[pod("p", node_name="gone")])  # pods of an unknown node: no candidate
    assert schedule(pod(), ghost).message == "no nodes available to schedule pods"


def test_fit_error_message_is_deterministic() -> None:
    """The same statuses in another order give the same text."""
    n = [node("a", cpu="1"), node("b", unschedulable=True)]
    statuses = list(schedule(BIG, infos(*n)).statuses.values())
    assert fit_error_message(2, statuses) == fit_error_message(2, reversed(statuses))


# -- what counts on a node ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "fits"),
    [
        pytest.param(pod("old", cpu="3", node_name="w"), False, id="running-pod-counts"),
        pytest.param(
            pod("old", cpu="3", node_name="w", deleting=True), False, id="terminating-counts"
        ),
        pytest.param(
            pod("old", cpu="3", node_name="w", phase="Succeeded"), True, id="succeeded-frees"
        ),
        pytest.param(pod("old", cpu="3", node_name="w", phase="Failed"), True, id="failed-frees"),
        pytest.param(pod("old", cpu="3", node_name="other"), True, id="other-node"),
        pytest.param(pod("old", cpu="3"), True, id="pending-pod-counts-nowhere"),
    ],
)
def test_assigned_pods_count(existing: Obj, fits: bool) -> None:
    """Assigned pods that have not finished hold their requests, terminating ones too."""
    result = schedule(pod(cpu="2"), infos(node("w"), pods=[existing]))
    assert (result.node == "w") is fits


def test_pod_count_limit_counts_assigned_pods() -> None:
    n = node("w", pods="2")
    one = [pod("a", node_name="w")]
    two = [*one, pod("b", node_name="w")]
    assert schedule(pod(), infos(n, pods=one)).node == "w"
    assert "1 Too many pods" in schedule(pod(), infos(n, pods=two)).message


def test_node_info_add_remove() -> None:
    """Incremental updates match a rebuild; re-adding a pod replaces it."""
    info = infos(node("w"))["w"]
    a, b = pod("a", cpu="1", memory="1Gi", owner="rs"), pod("b", cpu="500m", owner="rs")
    info.add_pod(a)
    info.add_pod(b)
    info.add_pod(a)
    assert info.requested == Resources(1500, Gi)
    assert info.owner_pods == {"rs": 2}
    assert len(info.pods) == 2
    assert info.remove_pod("default/a")
    assert not info.remove_pod("default/a")
    assert info.requested == Resources(500, 0)
    assert info.owner_pods == {"rs": 1}


# -- scores ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "memory", "existing_cpu", "expected"),
    [
        pytest.param("1", "1Gi", None, (75 + 87) // 2, id="empty-node"),
        pytest.param("1", "1Gi", "1", (50 + 85) // 2, id="with-a-pod"),
        pytest.param("4", "8Gi", None, 0, id="full"),
    ],
)
def test_least_allocated(cpu: str, memory: str, existing_cpu: str | None, expected: int) -> None:
    """(allocatable - requested) * 100 / allocatable per resource, averaged; a pod without
    a memory request counts 200Mi."""
    pods = [pod("old", cpu=existing_cpu, node_name="w")] if existing_cpu else []
    info = infos(node("w", cpu="4", memory="8Gi"), pods=pods)["w"]
    assert least_allocated_score(PodInfo.of(pod(cpu=cpu, memory=memory)), info) == expected


def test_spread_scores() -> None:
    """Fewer pods of the same owner score higher; other owners do not count."""
    pods = [
        pod("a", node_name="n1", owner="rs"),
        pod("b", node_name="n1", owner="rs"),
        pod("c", node_name="n2", owner="rs"),
        pod("d", node_name="n3", owner="other"),
    ]
    ni = infos(node("n1"), node("n2"), node("n3"), pods=pods)
    ordered = [ni["n1"], ni["n2"], ni["n3"]]
    assert spread_scores(PodInfo.of(pod(owner="rs")), ordered) == [0, 50, 100]
    assert spread_scores(PodInfo.of(pod(owner="new")), ordered) == [100, 100, 100]
    assert spread_scores(PodInfo.of(pod()), ordered) == [0, 0, 0]


def test_least_allocated_node_wins() -> None:
    pods = [pod("old", cpu="2", node_name="busy")]
    assert schedule(pod(cpu="1"), infos(node("busy"), node("idle"), pods=pods)).node == "idle"


def test_owner_spreading_outweighs_small_imbalance() -> None:
    """A node with none of the owner's pods wins over a slightly emptier one that has one."""
    pods = [
        pod("mine", cpu="100m", node_name="a", owner="rs"),
        pod("other", cpu="500m", node_name="b"),
    ]
    ni = infos(node("a"), node("b"), pods=pods)
    assert schedule(pod(cpu="100m", owner="rs"), ni).node == "b"


def test_ties_rotate() -> None:
    """Equal nodes take pods in turn as the tie-break counter advances."""
    ni = infos(node("a"), node("b"), node("c"))
    chosen = [schedule(pod(), ni, tie_break=i).node for i in range(6)]
    assert chosen == ["a", "b", "c", "a", "b", "c"]


def test_sequential_decisions_spread_evenly() -> None:
    """Placing pods one after the other (each counted where it went) spreads them 2/2/2."""
    ni = infos(node("a"), node("b"), node("c"))
    for i in range(6):
        p = pod(f"p{i}", cpu="100m")
        chosen = schedule(p, ni, tie_break=i).node
        assert chosen is not None
        ni[chosen].add_pod({**p, "spec": {**p["spec"], "nodeName": chosen}})
    assert sorted(len(i.pods) for i in ni.values()) == [2, 2, 2]


# -- node changes, conditions, messages --------------------------------------------------------


def _heartbeat(n: Obj) -> Obj:
    out = {**n, "status": {**n["status"]}}
    out["status"]["conditions"] = [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:10Z"}
    ]
    return out


@pytest.mark.parametrize(
    ("new", "changed"),
    [
        pytest.param(node("w"), False, id="same"),
        pytest.param(_heartbeat(node("w")), False, id="heartbeat-only"),
        pytest.param(node("w", unschedulable=True), True, id="cordon"),
        pytest.param(node("w", cpu="8"), True, id="allocatable"),
        pytest.param(node("w", labels={"disk": "ssd"}), True, id="labels"),
        pytest.param(node("w", taints=[CONTROL_PLANE_TAINT]), True, id="taints"),
        pytest.param(node("w", ready="False"), True, id="ready-condition"),
    ],
)
def test_node_scheduling_properties_changed(new: Obj, changed: bool) -> None:
    assert node_scheduling_properties_changed(node("w"), new) is changed


def test_unschedulable_condition() -> None:
    """PodScheduled=False/Unschedulable is written once per message; the transition time
    moves only when the status changes."""
    p = pod()
    first = with_unschedulable_condition(p, "m1", "2024-01-01T00:00:00Z")
    assert first is not None
    assert p["status"] == {"phase": "Pending"}, "the input is not mutated"
    assert first["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": "2024-01-01T00:00:00Z",
            "reason": "Unschedulable",
            "message": "m1",
        }
    ]
    assert with_unschedulable_condition(first, "m1", "2024-01-01T00:01:00Z") is None
    second = with_unschedulable_condition(first, "m2", "2024-01-01T00:01:00Z")
    assert second is not None
    cond = second["status"]["conditions"][0]
    assert (cond["message"], cond["lastTransitionTime"]) == ("m2", "2024-01-01T00:00:00Z")
    was_true = {
        **p,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastTransitionTime": "2023-01-01T00:00:00Z",
                },
            ]
        },
    }
    third = with_unschedulable_condition(was_true, "m", "2024-01-01T00:02:00Z")
    assert third is not None
    assert third["status"]["conditions"][0] == {"type": "Ready", "status": "False"}
    assert third["status"]["conditions"][1]["lastTransitionTime"] == "2024-01-01T00:02:00Z"


def test_truncate_message() -> None:
    assert truncate_message("short") == "short"
    long = "x" * 2000
    out = truncate_message(long)
    assert len(out) == 1024
    assert out.endswith(" ...")
