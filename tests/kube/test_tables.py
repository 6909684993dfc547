"""Server-side Tables (controlplane.kube.tables): kube-apiserver's printers as kubectl shows
them (research/kubectl-api.md §5), HumanDuration, Accept negotiation, and junk objects."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    RESOURCES,
    SERVICES,
    Resource,
)
from controlplane.kube.tables import (
    cells,
    column_definitions,
    human_duration,
    row,
    table,
    table_content_type,
    wants_table,
)

NOW_DT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NOW = NOW_DT.timestamp()
MINUTE, HOUR, DAY, YEAR = 60.0, 3600.0, 86400.0, 365 * 86400.0
MS = 0.001


def ago(seconds: float) -> str:
    """An RFC3339 timestamp `seconds` before NOW."""
    return (NOW_DT - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- HumanDuration -----------------------------------------------------------------------------

# The cases of k8s.io/apimachinery/pkg/util/duration/duration_test.go (TestHumanDuration and
# TestHumanDurationBoundaries), in seconds.
HUMAN_DURATIONS = [
    (1, "1s"),
    (70, "70s"),
    (190, "3m10s"),
    (70 * MINUTE, "70m"),
    (47 * HOUR, "47h"),
    (49 * HOUR, "2d1h"),
    ((8 * 24 + 2) * HOUR, "8d"),
    (367 * DAY, "367d"),
    ((365 * 2 * 24 + 25) * HOUR, "2y1d"),
    ((365 * 8 * 24 + 2) * HOUR, "8y"),
    (-2, "<invalid>"),
    (-2 + 1e-9, "0s"),
    (0, "0s"),
    (1 - MS, "0s"),
    (2 * MINUTE - MS, "119s"),
    (2 * MINUTE, "2m"),
    (2 * MINUTE + 1, "2m1s"),
    (10 * MINUTE - MS, "9m59s"),
    (10 * MINUTE, "10m"),
    (10 * MINUTE + 1, "10m"),
    (3 * HOUR - MS, "179m"),
    (3 * HOUR, "3h"),
    (3 * HOUR + MINUTE, "3h1m"),
    (8 * HOUR - MS, "7h59m"),
    (8 * HOUR, "8h"),
    (8 * HOUR + 59 * MINUTE, "8h"),
    (2 * DAY - MS, "47h"),
    (2 * DAY, "2d"),
    (2 * DAY + HOUR, "2d1h"),
    (8 * DAY - MS, "7d23h"),
    (8 * DAY, "8d"),
    (8 * DAY + 23 * HOUR, "8d"),
    (2 * YEAR - MS, "729d"),
    (2 * YEAR, "2y"),
    (2 * YEAR + 23 * HOUR, "2y"),
    (2 * YEAR + 23 * HOUR + 59 * MINUTE, "2y"),
    (2 * YEAR + DAY - MS, "2y"),
    (2 * YEAR + DAY, "2y1d"),
    (3 * YEAR, "3y"),
    (7 * YEAR, "7y"),
    (8 * YEAR - MS, "7y364d"),
    (8 * YEAR, "8y"),
    (8 * YEAR + 364 * DAY, "8y"),
    (9 * YEAR, "9y"),
    # The figures of kubectl-api.md §5.
    (5, "5s"),
    (119, "119s"),
    (125, "2m5s"),
    (12 * MINUTE, "12m"),
    (3 * HOUR + 20 * MINUTE, "3h20m"),
    (3 * DAY, "3d"),
    (float("nan"), "<invalid>"),
]


@pytest.mark.parametrize(("seconds", "text"), HUMAN_DURATIONS, ids=repr)
def test_human_duration_matches_go(seconds: float, text: str) -> None:
    """duration.HumanDuration, boundary by boundary (the AGE column of every table)."""
    assert human_duration(seconds) == text


# -- columns -----------------------------------------------------------------------------------

# What `kubectl get` and `kubectl get -o wide` print as headers.
HEADERS = [
    (PODS, "NAME READY STATUS RESTARTS AGE", "IP|NODE|NOMINATED NODE|READINESS GATES"),
    (DEPLOYMENTS, "NAME READY UP-TO-DATE AVAILABLE AGE", "CONTAINERS|IMAGES|SELECTOR"),
    (REPLICASETS, "NAME DESIRED CURRENT READY AGE", "CONTAINERS|IMAGES|SELECTOR"),
    (SERVICES, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "SELECTOR"),
    (
        NODES,
        "NAME STATUS ROLES AGE VERSION",
        "INTERNAL-IP|EXTERNAL-IP|OS-IMAGE|KERNEL-VERSION|CONTAINER-RUNTIME",
    ),
    (NAMESPACES, "NAME STATUS AGE", ""),
    (CONFIGMAPS, "NAME DATA AGE", ""),
    (ENDPOINTS, "NAME ENDPOINTS AGE", ""),
    (LEASES, "NAME HOLDER AGE", ""),
]


def _header(cols: list[dict[str, Any]], priority: int) -> list[str]:
    return [c["name"].upper() for c in cols if c["priority"] <= priority]


@pytest.mark.parametrize(("res", "plain", "wide"), HEADERS, ids=lambda x: getattr(x, "kind", ""))
def test_columns_are_kubectls_headers(res: Resource, plain: str, wide: str) -> None:
    """Column names upper-cased are kubectl's headers; priority 1 columns are the `-o wide`
    extras, after the plain ones, as kube-apiserver orders them."""
    cols = column_definitions(res)
    assert _header(cols, 0) == plain.split(" ")
    extras = wide.split("|") if wide else []
    assert _header(cols, 1) == plain.split(" ") + extras


def test_event_columns_interleave_wide_ones() -> None:
    """printEvent's order: SUBOBJECT and SOURCE sit before MESSAGE, then FIRST SEEN, COUNT
    and NAME; only the priority 0 ones show without -o wide."""
    cols = column_definitions(EVENTS)
    assert _header(cols, 0) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert _header(cols, 1) == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ]


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_name_column_has_format_name(res: Resource) -> None:
    """`format: name` is what gives `deployment.apps/web` prefixes in multi-type gets."""
    cols = column_definitions(res)
    named = [c for c in cols if c["format"] == "name"]
    assert [c["name"] for c in named] == ["Name"]
    for c in cols:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["type"] in ("string", "integer", "date")
        assert c["description"]


# -- pods --------------------------------------------------------------------------------------


def pod(
    name: str = "web-665d7-4r884",
    *,
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    containers: int = 1,
    conditions: list[dict[str, Any]] | None = None,
    age: float = 5,
    **extra: Any,
) -> dict[str, Any]:
    """A scheduled pod with `containers` containers; `extra` merges into spec/status/metadata."""
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": ago(age),
            "labels": {"app": "web"},
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
        },
        "status": {
            "phase": phase,
            "podIP": "10.244.1.45",
            "podIPs": [{"ip": "10.244.1.45"}],
            "conditions": conditions if conditions is not None else [],
            "containerStatuses": statuses if statuses is not None else [],
        },
    }
    for section, fields in extra.items():
        obj[section].update(fields)
    return obj


def running(ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": "c0",
        "image": "nginx",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(4)}},
        **extra,
    }


def waiting(reason: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": "c0",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code, "finishedAt": ago(30)}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": "c0", "ready": False, "restartCount": 0, "state": {"terminated": state}}


def last_terminated(finished_ago: float) -> dict[str, Any]:
    return {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(finished_ago)}}


READY = [{"type": "Ready", "status": "True"}]

POD_CASES = [
    (
        "running",
        pod(statuses=[running()], conditions=READY),
        [
            "web-665d7-4r884",
            "1/1",
            "Running",
            "0",
            "5s",
            "10.244.1.45",
            "node-1",
            "<none>",
            "<none>",
        ],
    ),
    (
        "crash-loop-back-off",
        pod(
            "crash",
            statuses=[waiting("CrashLoopBackOff", 5, lastState=last_terminated(125))],
            age=10 * MINUTE,
        ),
        ["crash", "0/1", "CrashLoopBackOff", "5 (2m5s ago)", "10m"],
    ),
    (
        "restarted-and-running-again",
        pod(statuses=[running(restarts=2, lastState=last_terminated(5 * MINUTE))]),
        ["web-665d7-4r884", "1/1", "Running", "2 (5m ago)"],
    ),
    (
        "restarts-without-a-finish-time",
        pod(statuses=[running(restarts=2)]),
        ["web-665d7-4r884", "1/1", "Running", "2"],
    ),
    (
        "err-image-pull",
        pod(phase="Pending", statuses=[waiting("ErrImagePull")]),
        ["web-665d7-4r884", "0/1", "ErrImagePull", "0"],
    ),
    (
        "container-creating",
        pod(phase="Pending", statuses=[waiting("ContainerCreating")]),
        ["web-665d7-4r884", "0/1", "ContainerCreating"],
    ),
    (
        "pending-unscheduled",
        pod(phase="Pending", spec={"nodeName": ""}, status={"podIP": "", "podIPs": []}),
        ["web-665d7-4r884", "0/1", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "completed",
        pod(phase="Succeeded", statuses=[terminated("Completed")]),
        ["web-665d7-4r884", "0/1", "Completed"],
    ),
    (
        "error-exit",
        pod(phase="Failed", statuses=[terminated("Error", 1)]),
        ["web-665d7-4r884", "0/1", "Error"],
    ),
    ("exit-code", pod(statuses=[terminated("", 2)]), ["web-665d7-4r884", "0/1", "ExitCode:2"]),
    ("signal", pod(statuses=[terminated("", 137, 9)]), ["web-665d7-4r884", "0/1", "Signal:9"]),
    (
        "terminating",
        pod(statuses=[running()], metadata={"deletionTimestamp": ago(1)}),
        ["web-665d7-4r884", "1/1", "Terminating"],
    ),
    (
        "terminating-but-finished",
        pod(
            phase="Succeeded",
            statuses=[terminated("Completed")],
            metadata={"deletionTimestamp": ago(1)},
        ),
        ["web-665d7-4r884", "0/1", "Completed"],
    ),
    (
        "terminating-but-failed",
        pod(
            phase="Failed",
            statuses=[terminated("Error", 1)],
            metadata={"deletionTimestamp": ago(1)},
        ),
        ["web-665d7-4r884", "0/1", "Error"],
    ),
    (
        "node-lost",
        pod(
            statuses=[running()],
            metadata={"deletionTimestamp": ago(1)},
            status={"reason": "NodeLost"},
        ),
        ["web-665d7-4r884", "1/1", "Unknown"],
    ),
    (
        "evicted",
        pod(phase="Failed", status={"reason": "Evicted"}),
        ["web-665d7-4r884", "0/1", "Evicted"],
    ),
    (
        "scheduling-gated",
        pod(
            phase="Pending",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
        ),
        ["web-665d7-4r884", "0/1", "SchedulingGated"],
    ),
    (
        "one-of-two-ready",
        pod(
            statuses=[running(), running(ready=False, name="c1")],
            containers=2,
        ),
        ["web-665d7-4r884", "1/2", "Running"],
    ),
    (
        "completed-sidecar-with-a-running-container-ready",
        pod(statuses=[running(), terminated("Completed")], containers=2, conditions=READY),
        ["web-665d7-4r884", "1/2", "Running"],
    ),
    (
        "completed-container-with-a-running-one-not-ready",
        pod(statuses=[running(), terminated("Completed")], containers=2),
        ["web-665d7-4r884", "1/2", "NotReady"],
    ),
    (
        "readiness-gates",
        pod(
            statuses=[running()],
            conditions=[
                {"type": "example.com/lb", "status": "True"},
                {"type": "example.com/dns", "status": "False"},
            ],
            spec={
                "readinessGates": [
                    {"conditionType": "example.com/lb"},
                    {"conditionType": "example.com/dns"},
                ]
            },
            status={"nominatedNodeName": "node-2"},
        ),
        [
            "web-665d7-4r884",
            "1/1",
            "Running",
            "0",
            "5s",
            "10.244.1.45",
            "node-1",
            "node-2",
            "1/2",
        ],
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES]
)
def test_pod_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    """printPod: READY ready/total, STATUS from the phase, the pod reason and container
    states, RESTARTS with the time of the last restart, then AGE and the wide columns."""
    got = cells(PODS, obj, NOW)
    assert got[: len(expected)] == expected
    assert len(got) == len(column_definitions(PODS))


def init_pod(init_statuses: list[dict[str, Any]], inits: int = 1, **extra: Any) -> dict[str, Any]:
    obj = pod(phase="Pending", statuses=[waiting("PodInitializing")], **extra)
    obj["spec"]["initContainers"] = [{"name": f"init{i}", "image": "busybox"} for i in range(inits)]
    obj["status"]["initContainerStatuses"] = init_statuses
    return obj


def init_status(i: int, state: dict[str, Any], restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": f"init{i}", "ready": False, "restartCount": restarts, "state": state, **extra}


INIT_CASES = [
    ("running", init_pod([init_status(0, {"running": {}})]), "Init:0/1", "0"),
    (
        "second-of-two",
        init_pod(
            [
                init_status(0, {"terminated": {"exitCode": 0, "reason": "Completed"}}),
                init_status(1, {"waiting": {"reason": "PodInitializing"}}),
            ],
            inits=2,
        ),
        "Init:1/2",
        "0",
    ),
    (
        "crash-loop",
        init_pod(
            [
                init_status(
                    0,
                    {"waiting": {"reason": "CrashLoopBackOff"}},
                    restarts=3,
                    lastState=last_terminated(60),
                )
            ]
        ),
        "Init:CrashLoopBackOff",
        "3 (60s ago)",
    ),
    (
        "failed-with-reason",
        init_pod([init_status(0, {"terminated": {"exitCode": 1, "reason": "Error"}})]),
        "Init:Error",
        "0",
    ),
    (
        "failed-exit-code",
        init_pod([init_status(0, {"terminated": {"exitCode": 3}})]),
        "Init:ExitCode:3",
        "0",
    ),
    (
        "failed-signal",
        init_pod([init_status(0, {"terminated": {"exitCode": 137, "signal": 9}})]),
        "Init:Signal:9",
        "0",
    ),
    (
        "done",
        init_pod(
            [init_status(0, {"terminated": {"exitCode": 0, "reason": "Completed"}})],
            conditions=[{"type": "Initialized", "status": "True"}],
        ),
        "PodInitializing",
        "0",
    ),
]


@pytest.mark.parametrize(
    ("obj", "status", "restarts"), [c[1:] for c in INIT_CASES], ids=[c[0] for c in INIT_CASES]
)
def test_pod_with_init_containers(obj: dict[str, Any], status: str, restarts: str) -> None:
    """While initializing, STATUS is `Init:<i>/<n>` or `Init:<reason>` and RESTARTS counts the
    init containers; once initialized the app containers decide."""
    got = cells(PODS, obj, NOW)
    assert got[2:4] == [status, restarts]


def test_sidecar_counts_as_a_container() -> None:
    """An init container with restartPolicy Always (a sidecar) is counted in READY once
    started, and its restarts stay in RESTARTS after initialization."""
    obj = pod(statuses=[running()], conditions=[{"type": "Initialized", "status": "True"}])
    obj["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    obj["status"]["initContainerStatuses"] = [
        {
            "name": "proxy",
            "ready": True,
            "started": True,
            "restartCount": 1,
            "state": {"running": {}},
            "lastState": last_terminated(3 * MINUTE),
        }
    ]
    assert cells(PODS, obj, NOW)[1:4] == ["2/2", "Running", "1 (3m ago)"]


# -- workloads ---------------------------------------------------------------------------------


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(200 * MINUTE)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25"},
                        {"name": "log", "image": "busybox"},
                    ]
                },
            },
        },
        "status": status,
    }


def test_deployment_cells() -> None:
    """printDeployment: READY is readyReplicas/spec.replicas; UP-TO-DATE and AVAILABLE are
    integers; SELECTOR is the selector's canonical string."""
    obj = deployment(readyReplicas=2, updatedReplicas=3, availableReplicas=2, replicas=3)
    assert cells(DEPLOYMENTS, obj, NOW) == [
        "web",
        "2/3",
        3,
        2,
        "3h20m",
        "nginx,log",
        "nginx:1.25,busybox",
        "app=web",
    ]


def test_new_deployment_without_status_counts_zero() -> None:
    """Status counters are omitted from JSON when zero; they print as 0."""
    assert cells(DEPLOYMENTS, deployment(), NOW)[:4] == ["web", "0/3", 0, 0]


def test_deployment_with_a_bad_selector_shows_invalid() -> None:
    obj = deployment()
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    assert cells(DEPLOYMENTS, obj, NOW)[-1] == "<invalid>"


def test_replicaset_cells() -> None:
    obj = {
        "metadata": {
            "name": "web-665d7",
            "namespace": "default",
            "creationTimestamp": ago(2 * DAY),
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "665d7"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    assert cells(REPLICASETS, obj, NOW) == [
        "web-665d7",
        3,
        3,
        2,
        "2d",
        "nginx",
        "nginx:1.25",
        "app=web,pod-template-hash=665d7",
    ]


# -- services and endpoints --------------------------------------------------------------------


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(12 * MINUTE)},
        "spec": spec,
        "status": status or {},
    }


SERVICE_CASES = [
    (
        "cluster-ip",
        service(
            {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                "selector": {"app": "web"},
            }
        ),
        ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "12m", "app=web"],
    ),
    (
        "node-port",
        service(
            {
                "type": "NodePort",
                "clusterIP": "10.96.0.11",
                "clusterIPs": ["10.96.0.11"],
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "nodePort": 30053, "protocol": "UDP"},
                ],
                "selector": {"tier": "fe", "app": "web"},
            }
        ),
        [
            "web",
            "NodePort",
            "10.96.0.11",
            "<none>",
            "80:30080/TCP,53:30053/UDP",
            "12m",
            "app=web,tier=fe",
        ],
    ),
    (
        "headless",
        service({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": []}),
        ["web", "ClusterIP", "None", "<none>", "<none>", "12m", "<none>"],
    ),
    (
        "external-ips",
        service(
            {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.12",
                "externalIPs": ["192.0.2.1", "192.0.2.2"],
                "ports": [{"port": 80}],
            }
        ),
        ["web", "ClusterIP", "10.96.0.12", "192.0.2.1,192.0.2.2", "80/TCP", "12m", "<none>"],
    ),
    (
        "load-balancer-pending",
        service({"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": [{"port": 80}]}),
        ["web", "LoadBalancer", "10.96.0.13", "<pending>", "80/TCP"],
    ),
    (
        "load-balancer-ready",
        service(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": [{"port": 80}]},
            {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example"}]}},
        ),
        ["web", "LoadBalancer", "10.96.0.13", "203.0.113.9,lb.example", "80/TCP"],
    ),
    (
        "external-name",
        service({"type": "ExternalName", "externalName": "db.example.com"}),
        ["web", "ExternalName", "<none>", "db.example.com", "<none>"],
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES]
)
def test_service_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    """printService: PORT(S) `port[:nodePort]/protocol`, EXTERNAL-IP by type, CLUSTER-IP
    `None` for a headless service."""
    assert cells(SERVICES, obj, NOW)[: len(expected)] == expected


def endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(90)},
        "subsets": list(subsets),
    }


def addrs(*ips: str) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips]


@pytest.mark.parametrize(
    ("obj", "shown"),
    [
        (endpoints(), "<none>"),
        (
            endpoints({"addresses": addrs("10.0.0.1", "10.0.0.2"), "ports": [{"port": 80}]}),
            "10.0.0.1:80,10.0.0.2:80",
        ),
        (
            endpoints(
                {
                    "addresses": addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"),
                    "ports": [{"port": 80}],
                }
            ),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
        ),
        (
            endpoints(
                {"addresses": addrs("10.0.0.1", "10.0.0.2"), "ports": [{"port": 80}, {"port": 443}]}
            ),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
        ),
        (
            endpoints(
                {"addresses": addrs("10.0.0.1"), "ports": [{"port": 80}]},
                {"addresses": addrs("10.0.1.1"), "ports": [{"port": 8080}]},
            ),
            "10.0.0.1:80,10.0.1.1:8080",
        ),
        (endpoints({"addresses": addrs("10.0.0.1", "10.0.0.2")}), "10.0.0.1,10.0.0.2"),
        (endpoints({"addresses": addrs("fd00::1"), "ports": [{"port": 80}]}), "[fd00::1]:80"),
        (endpoints({"notReadyAddresses": addrs("10.0.0.9"), "ports": [{"port": 80}]}), ""),
    ],
    ids=["none", "two", "more", "two-ports", "two-subsets", "no-ports", "ipv6", "not-ready"],
)
def test_endpoints_cells(obj: dict[str, Any], shown: str) -> None:
    """formatEndpoints: ready addresses only, at most three, then ` + N more...`."""
    assert cells(ENDPOINTS, obj, NOW) == ["web", shown, "90s"]


# -- nodes, events and the rest ----------------------------------------------------------------


def node(
    *,
    ready: str | None = "True",
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    spec: dict[str, Any] = {"unschedulable": True} if unschedulable else {}
    return {
        "metadata": {
            "name": "node-1",
            "labels": labels if labels is not None else {"kubernetes.io/hostname": "node-1"},
            "creationTimestamp": ago(3 * DAY),
        },
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "172.18.0.2"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.30.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "kubelab://0.1.0",
            },
        },
    }


def test_node_cells() -> None:
    assert cells(NODES, node(), NOW) == [
        "node-1",
        "Ready",
        "<none>",
        "3d",
        "v1.30.0",
        "172.18.0.2",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-18-amd64",
        "kubelab://0.1.0",
    ]


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        (node(unschedulable=True), "Ready,SchedulingDisabled"),
        (node(ready="False"), "NotReady"),
        (node(ready="Unknown"), "NotReady"),
        (node(ready=None), "Unknown"),
        (node(ready=None, unschedulable=True), "Unknown,SchedulingDisabled"),
    ],
    ids=["cordoned", "not-ready", "ready-unknown", "no-ready-condition", "cordoned-unknown"],
)
def test_node_status(obj: dict[str, Any], status: str) -> None:
    """printNode: the Ready condition gives Ready/NotReady (Unknown without one); a cordoned
    node adds SchedulingDisabled."""
    assert cells(NODES, obj, NOW)[1] == status


def test_node_roles_from_labels() -> None:
    labels = {
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/etcd": "true",
        "node-role.kubernetes.io/": "",
        "kubernetes.io/role": "worker",
    }
    assert cells(NODES, node(labels=labels), NOW)[2] == "control-plane,etcd,worker"


def test_node_without_node_info_shows_unknown_in_wide_columns() -> None:
    obj = node()
    del obj["status"]["nodeInfo"]
    del obj["status"]["addresses"]
    assert cells(NODES, obj, NOW)[4:] == [
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]


def event(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "web-665d7-4r884.17c8f",
            "namespace": "default",
            "creationTimestamp": ago(5 * MINUTE),
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": "web-665d7-4r884",
            "fieldPath": "spec.containers{nginx}",
        },
        "reason": "Pulled",
        "message": 'Successfully pulled image "nginx"\n',
        "source": {"component": "kubelet", "host": "node-1"},
        "type": "Normal",
    }
    obj.update(fields)
    return obj


def test_event_cells() -> None:
    """printEvent: LAST SEEN from lastTimestamp, OBJECT `pod/name` (lower-case kind), SOURCE
    `component, host`, MESSAGE trimmed, FIRST SEEN, COUNT, NAME."""
    obj = event(firstTimestamp=ago(5 * MINUTE), lastTimestamp=ago(30), count=3)
    assert cells(EVENTS, obj, NOW) == [
        "30s",
        "Normal",
        "Pulled",
        "pod/web-665d7-4r884",
        "spec.containers{nginx}",
        "kubelet, node-1",
        'Successfully pulled image "nginx"',
        "5m",
        3,
        "web-665d7-4r884.17c8f",
    ]


@pytest.mark.parametrize(
    ("fields", "last_seen", "first_seen", "count"),
    [
        ({"firstTimestamp": ago(90)}, "90s", "90s", 1),
        ({"eventTime": "2024-05-01T11:59:00.123456Z"}, "59s", "59s", 1),
        (
            {"eventTime": ago(10 * MINUTE), "series": {"count": 7, "lastObservedTime": ago(10)}},
            "10s",
            "10m",
            7,
        ),
        ({}, "<unknown>", "<unknown>", 1),
        ({"lastTimestamp": "yesterday", "firstTimestamp": ago(3)}, "3s", "3s", 1),
    ],
    ids=["first-only", "event-time", "series", "no-times", "bad-last"],
)
def test_event_times_fall_back(
    fields: dict[str, Any], last_seen: str, first_seen: str, count: int
) -> None:
    """LAST SEEN falls back to firstTimestamp, then eventTime (events.k8s.io events), and a
    series overrides it and COUNT; a singleton without count counts 1."""
    got = cells(EVENTS, event(**fields), NOW)
    assert (got[0], got[7], got[8]) == (last_seen, first_seen, count)


def test_event_about_a_node_and_from_the_new_api() -> None:
    obj = event(
        involvedObject={"kind": "Node", "name": "node-1"},
        source={},
        reportingComponent="kubelab-node-lifecycle",
        reportingInstance="master-1",
        lastTimestamp=ago(2),
    )
    got = cells(EVENTS, obj, NOW)
    assert got[3] == "node/node-1"
    assert got[5] == "kubelab-node-lifecycle, master-1"
    unnamed = cells(EVENTS, event(involvedObject={"kind": "Node"}), NOW)
    assert unnamed[3] == "node"


def test_namespace_configmap_lease_cells() -> None:
    ns = {
        "metadata": {"name": "default", "creationTimestamp": ago(400 * DAY)},
        "status": {"phase": "Active"},
    }
    assert cells(NAMESPACES, ns, NOW) == ["default", "Active", "400d"]
    cm = {
        "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": ago(61)},
        "data": {"a": "1", "b": "2"},
        "binaryData": {"c": "AA=="},
    }
    assert cells(CONFIGMAPS, cm, NOW) == ["cfg", 3, "61s"]
    lease = {
        "metadata": {
            "name": "kube-controller-manager",
            "namespace": "kube-system",
            "creationTimestamp": ago(3),
        },
        "spec": {"holderIdentity": "master-1_5c2f", "leaseDurationSeconds": 15},
    }
    assert cells(LEASES, lease, NOW) == ["kube-controller-manager", "master-1_5c2f", "3s"]
    assert cells(LEASES, {"metadata": {"name": "free"}, "spec": {}}, NOW) == [
        "free",
        "",
        "<unknown>",
    ]


def test_age_in_the_future_and_unset() -> None:
    """Clock skew of up to a second reads 0s; more is <invalid>; no timestamp is <unknown>."""
    ns: dict[str, dict[str, Any]] = {"metadata": {"name": "a", "creationTimestamp": ago(-1)}}
    assert cells(NAMESPACES, ns, NOW)[2] == "0s"
    ns["metadata"]["creationTimestamp"] = ago(-30)
    assert cells(NAMESPACES, ns, NOW)[2] == "<invalid>"
    for unset in (None, "", "0001-01-01T00:00:00Z", "not a time", 12):
        ns["metadata"]["creationTimestamp"] = unset
        assert cells(NAMESPACES, ns, NOW)[2] == "<unknown>"


def test_timestamps_with_offsets_and_fractions() -> None:
    ns = {"metadata": {"name": "a", "creationTimestamp": "2024-05-01T13:59:00+02:00"}}
    assert cells(NAMESPACES, ns, NOW)[2] == "60s"
    ns["metadata"]["creationTimestamp"] = "2024-05-01T11:58:00.999999Z"
    assert cells(NAMESPACES, ns, NOW)[2] == "119s"


# -- rows and tables ---------------------------------------------------------------------------


def test_row_carries_partial_object_metadata_without_managed_fields() -> None:
    """kubectl reads row.object.metadata for -A, --show-labels and -L; managedFields are
    dropped as kube-apiserver drops them, without touching the stored object."""
    obj = pod(statuses=[running()])
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update"}]
    before = copy.deepcopy(obj)
    r = row(PODS, obj, NOW)
    assert r["cells"] == cells(PODS, obj, NOW)
    assert r["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {
            "name": "web-665d7-4r884",
            "namespace": "default",
            "creationTimestamp": ago(5),
            "labels": {"app": "web"},
        },
    }
    assert obj == before


def test_table_of_a_list() -> None:
    objs = [deployment(readyReplicas=3), deployment()]
    t = table(DEPLOYMENTS, objs, NOW, resource_version="1979", continue_="eyJ9", remaining=4)
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "1979", "continue": "eyJ9", "remainingItemCount": 4}
    assert t["columnDefinitions"] == column_definitions(DEPLOYMENTS)
    assert [r["cells"][1] for r in t["rows"]] == ["3/3", "0/3"]
    json.dumps(t)  # the REST server writes it as JSON


def test_table_metadata_leaves_unset_fields_out() -> None:
    """ListMeta fields are omitempty; remainingItemCount 0 is still written when given."""
    assert table(PODS, [], NOW)["metadata"] == {}
    assert table(PODS, [], NOW, remaining=0)["metadata"] == {"remainingItemCount": 0}
    assert table(PODS, [], NOW)["rows"] == []


# -- Accept negotiation ------------------------------------------------------------------------

KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)

ACCEPT_CASES = [
    (KUBECTL_GET, True),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", True),
    ("application/json; as=Table; v=v1; g=meta.k8s.io", True),
    ('application/json;as="Table";v="v1";g="meta.k8s.io"', True),
    ("Application/JSON;as=Table;v=v1;g=meta.k8s.io", True),
    ("application/json", False),
    ("application/json, */*", False),
    ("*/*", False),
    ("", False),
    ("application/vnd.kubernetes.protobuf,application/json", False),
    ("application/yaml", False),
    ("garbage;;,", False),
    ("application/json,application/json;as=Table;v=v1;g=meta.k8s.io", False),
    ("application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io", True),
    ("*/*,application/json;as=Table;v=v1;g=meta.k8s.io", True),
    ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json", False),
    ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json", False),
    ("application/json;as=Table;v=v1;g=example.com,application/json", False),
    ("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json", False),
    (
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        True,
    ),
    (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        False,
    ),
]


@pytest.mark.parametrize(("accept", "expected"), ACCEPT_CASES, ids=repr)
def test_wants_table(accept: str, expected: bool) -> None:
    """`kubectl get` offers Table v1, then v1beta1, then JSON; a Table goes back when a JSON
    Table we serve comes before any plain JSON choice in preference order."""
    assert wants_table(accept) is expected


def test_table_content_type_echoes_the_table_parameters() -> None:
    assert table_content_type() == "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert wants_table(table_content_type())


# -- junk objects ------------------------------------------------------------------------------

JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    float("inf"),
    "",
    "x",
    "None",
    "2024-13-45T99:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    [],
    [None],
    ["a", 1],
    {},
    {"": None},
]


def realistic_objects() -> dict[str, list[dict[str, Any]]]:
    pods = [c[1] for c in POD_CASES] + [c[1] for c in INIT_CASES]
    return {
        "Pod": pods,
        "Deployment": [deployment(readyReplicas=2, updatedReplicas=3)],
        "ReplicaSet": [
            {
                "metadata": {"name": "rs", "creationTimestamp": ago(1)},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}},
                "status": {"replicas": 1},
            }
        ],
        "Service": [c[1] for c in SERVICE_CASES],
        "Endpoints": [
            endpoints(
                {"addresses": addrs("10.0.0.1", "10.0.0.2"), "ports": [{"port": 80}]},
                {"addresses": addrs("10.0.0.3")},
            )
        ],
        "Node": [node(unschedulable=True, labels={"node-role.kubernetes.io/worker": ""})],
        "Event": [
            event(firstTimestamp=ago(9), lastTimestamp=ago(3), count=2),
            event(series={"count": 2, "lastObservedTime": ago(1)}),
        ],
        "Namespace": [{"metadata": {"name": "ns"}, "status": {"phase": "Active"}}],
        "ConfigMap": [{"metadata": {"name": "cm"}, "data": {"a": "b"}}],
        "Lease": [{"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}],
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(obj: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return obj


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    if depth > 2 or rng.random() < 0.6:
        return copy.deepcopy(rng.choice(JUNK))
    if rng.random() < 0.5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["metadata", "spec", "status", "name", "state", "type", "ports", "subsets"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_junk_objects_never_break_printing(res: Resource) -> None:
    """Fuzz: realistic objects with random parts replaced by junk of any type, and random
    objects, print a full row of JSON-encodable cells; printing never raises."""
    rng = random.Random(f"tables-{res.kind}")
    bases = realistic_objects().get(res.kind, [{}])
    width = len(column_definitions(res))
    for i in range(400):
        if i % 4 == 0:
            obj = _random_value(rng, 0)
        else:
            obj = copy.deepcopy(rng.choice(bases))
            for _ in range(rng.randint(1, 4)):
                path = rng.choice(_paths(obj))
                obj = _replace(obj, path, _random_value(rng, 1))
        r = row(res, obj, NOW)
        assert len(r["cells"]) == width, obj
        json.dumps(r["cells"], allow_nan=False)
        json.dumps(r)
        t = table(res, [obj], NOW, resource_version="1")
        assert len(t["rows"]) == 1
