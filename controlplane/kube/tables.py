"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get` (kubectl-api.md §5, §6).

kubectl has no printers of its own for built-in kinds: it asks for a Table and prints the
cells as they come, upper-casing column names and showing `priority: 1` columns only with
`-o wide`. So the columns and cells here reproduce kube-apiserver's printers
(`pkg/printers/internalversion/printers.go`), which the server always runs in wide mode:
the same column names, types and order, the same cell logic (a pod's STATUS, `2 (5m ago)`
restarts, a node's `Ready,SchedulingDisabled`), and ages in `duration.HumanDuration` form.

Objects come from the store and from clients, so every accessor tolerates junk: a field of
the wrong type reads as unset, and a cell shows what kube-apiserver shows for an unset field
(`<none>`, `<unknown>`, `0`, `""`). Printing never raises. Time is an argument (`now`, Unix
seconds), so everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .resources import Resource
from .selectors import LabelSelector, selector_string

TABLE_API_VERSION = "meta.k8s.io/v1"
_TABLE_GROUP = "meta.k8s.io"
_TABLE_VERSIONS = ("v1", "v1beta1")

# -- HumanDuration -----------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """`k8s.io/apimachinery/pkg/util/duration.HumanDuration`: ~2-3 significant figures.

    `0s`..`119s`, `2m5s`..`9m59s`, `10m`..`179m`, `3h`..`7h59m`, `8h`..`47h`, `2d`..`7d23h`,
    `8d`..`729d`, `2y`..`7y364d`, then `8y`. Up to one second in the future still reads `0s`
    (clock skew between machines); further is `<invalid>`."""
    if not math.isfinite(seconds):
        return "<invalid>"
    whole = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        s = whole % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


# -- tolerant accessors ------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _maps(value: Any) -> list[Mapping[str, Any]]:
    """The mapping elements of a list field (junk elements read as empty objects)."""
    return [_map(v) for v in _list(value)]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _time(value: Any) -> datetime | None:
    """An RFC3339 timestamp, or None when unset or unreadable (Go's zero time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if t.year == 1 and t.month == 1 and t.day == 1 and t.hour == 0 and t.minute == 0:
        return None  # "0001-01-01T00:00:00Z" is how Go writes an unset time
    return t


def _since(t: datetime | None, now: float) -> str:
    """translateTimestampSince: the age of `t`, `<unknown>` when unset."""
    return "<unknown>" if t is None else human_duration(now - t.timestamp())


def _age(obj: Mapping[str, Any], now: float) -> str:
    return _since(_time(_map(obj.get("metadata")).get("creationTimestamp")), now)


def _name(obj: Mapping[str, Any]) -> str:
    return _str(_map(obj.get("metadata")).get("name"))


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: `k=v` sorted by key, `<none>` when empty."""
    pairs = sorted((k, _str(v)) for k, v in _map(labels).items() if isinstance(k, str))
    return ",".join(f"{k}={v}" for k, v in pairs) or "<none>"


def _containers(template_spec: Mapping[str, Any]) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma-joined."""
    containers = _maps(template_spec.get("containers"))
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


def _template_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(_map(obj.get("spec")).get("template")).get("spec"))


# -- columns -----------------------------------------------------------------------------------

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC."
)
_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."

Column = tuple[str, str, int, str]  # name, type, priority, description


def _column(name: str, type_: str, priority: int, description: str) -> dict[str, Any]:
    fmt = "name" if name == "Name" else ""
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        ("Name", "string", 0, _NAME_DOC),
        ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
        ("Status", "string", 0, "The aggregate status of the containers in this pod."),
        (
            "Restarts",
            "string",
            0,
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        ("Age", "string", 0, _AGE_DOC),
        ("IP", "string", 1, "podIP address allocated to the pod."),
        ("Node", "string", 1, "NodeName indicates in which node this pod is scheduled."),
        (
            "Nominated Node",
            "string",
            1,
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
        ),
        (
            "Readiness Gates",
            "string",
            1,
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ),
    "Deployment": (
        ("Name", "string", 0, _NAME_DOC),
        ("Ready", "string", 0, "Number of the pod with ready state"),
        (
            "Up-to-date",
            "string",
            0,
            "Total number of non-terminated pods targeted by this deployment that have the "
            "desired template spec.",
        ),
        (
            "Available",
            "string",
            0,
            "Total number of available pods (ready for at least minReadySeconds) targeted by "
            "this deployment.",
        ),
        ("Age", "string", 0, _AGE_DOC),
        ("Containers", "string", 1, _CONTAINERS_DOC),
        ("Images", "string", 1, _IMAGES_DOC),
        ("Selector", "string", 1, "Label selector for pods."),
    ),
    "ReplicaSet": (
        ("Name", "string", 0, _NAME_DOC),
        ("Desired", "integer", 0, "Replicas is the number of desired replicas."),
        ("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
        ("Ready", "integer", 0, "The number of ready replicas for this replica set."),
        ("Age", "string", 0, _AGE_DOC),
        ("Containers", "string", 1, _CONTAINERS_DOC),
        ("Images", "string", 1, _IMAGES_DOC),
        (
            "Selector",
            "string",
            1,
            "Selector is a label query over pods that should match the replica count.",
        ),
    ),
    "Service": (
        ("Name", "string", 0, _NAME_DOC),
        ("Type", "string", 0, "type determines how the Service is exposed."),
        (
            "Cluster-IP",
            "string",
            0,
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        (
            "External-IP",
            "string",
            0,
            "externalIPs is a list of IP addresses for which nodes in the cluster will also "
            "accept traffic for this service.",
        ),
        ("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
        ("Age", "string", 0, _AGE_DOC),
        (
            "Selector",
            "string",
            1,
            "Route service traffic to pods with label keys and values matching this selector.",
        ),
    ),
    "Node": (
        ("Name", "string", 0, _NAME_DOC),
        ("Status", "string", 0, "The status of the node"),
        ("Roles", "string", 0, "The roles of the node"),
        ("Age", "string", 0, _AGE_DOC),
        ("Version", "string", 0, "Kubelet Version reported by the node."),
        ("Internal-IP", "string", 1, "List of addresses reachable to the node."),
        ("External-IP", "string", 1, "List of addresses reachable to the node."),
        ("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release."),
        ("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r'."),
        (
            "Container-Runtime",
            "string",
            1,
            "ContainerRuntime Version reported by the node through runtime remote API.",
        ),
    ),
    "Event": (
        (
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        ("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added."),
        ("Reason", "string", 0, "This should be a short, machine understandable string."),
        ("Object", "string", 0, "The object that this event is about."),
        ("Subobject", "string", 1, "The part of the object this event is about."),
        ("Source", "string", 1, "The component reporting this event."),
        ("Message", "string", 0, "A human-readable description of the status of this operation."),
        (
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded. (Time of server receipt is in "
            "TypeMeta.)",
        ),
        ("Count", "string", 1, "The number of times this event has occurred."),
        ("Name", "string", 1, _NAME_DOC),
    ),
    "Namespace": (
        ("Name", "string", 0, _NAME_DOC),
        ("Status", "string", 0, "The status of the namespace"),
        ("Age", "string", 0, _AGE_DOC),
    ),
    "ConfigMap": (
        ("Name", "string", 0, _NAME_DOC),
        ("Data", "string", 0, "Data contains the configuration data."),
        ("Age", "string", 0, _AGE_DOC),
    ),
    "Endpoints": (
        ("Name", "string", 0, _NAME_DOC),
        (
            "Endpoints",
            "string",
            0,
            "The set of all endpoints is the union of all subsets.",
        ),
        ("Age", "string", 0, _AGE_DOC),
    ),
    "Lease": (
        ("Name", "string", 0, _NAME_DOC),
        ("Holder", "string", 0, "holderIdentity contains the identity of the holder of a lease."),
        ("Age", "string", 0, _AGE_DOC),
    ),
}

# kube-apiserver's default table for kinds without a printer.
_DEFAULT_COLUMNS: tuple[Column, ...] = (
    ("Name", "string", 0, _NAME_DOC),
    ("Created At", "date", 0, _AGE_DOC),
)


def column_definitions(res: Resource) -> list[dict[str, Any]]:
    """The Table's `columnDefinitions` for `res` (wide columns have priority 1)."""
    return [_column(*c) for c in _COLUMNS.get(res.kind, _DEFAULT_COLUMNS)]


# -- pods --------------------------------------------------------------------------------------


def _state(status: Mapping[str, Any], which: str) -> Mapping[str, Any] | None:
    """`state.<which>` of a container status, None when absent (Go's nil pointer)."""
    value = _map(status.get("state")).get(which)
    return value if isinstance(value, Mapping) else None


def _last_terminated(status: Mapping[str, Any]) -> datetime | None:
    terminated = _map(status.get("lastState")).get("terminated")
    return _time(terminated.get("finishedAt")) if isinstance(terminated, Mapping) else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _has_condition(conditions: list[Mapping[str, Any]], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _terminated_reason(terminated: Mapping[str, Any], prefix: str) -> str:
    reason = _str(terminated.get("reason"))
    if reason:
        return prefix + reason
    signal = _int(terminated.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(terminated.get('exitCode'))}"


def _pod_cells(pod: Mapping[str, Any], now: float) -> list[Any]:
    """printPod: READY, STATUS, RESTARTS as `kubectl get pods` shows them."""
    meta, spec, status = _map(pod.get("metadata")), _map(pod.get("spec")), _map(pod.get("status"))
    conditions = _maps(status.get("conditions"))
    init_specs = _maps(spec.get("initContainers"))
    # Sidecars (init containers with restartPolicy Always) count as containers.
    sidecars = [c for c in init_specs if c.get("restartPolicy") == "Always"]
    restartable = {_str(c.get("name")) for c in sidecars}
    total = len(_list(spec.get("containers"))) + len(sidecars)
    ready = 0
    restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions
    ):
        reason = "SchedulingGated"

    initializing = False
    init_statuses = _maps(status.get("initContainerStatuses"))
    for i, c in enumerate(init_statuses):
        count = _int(c.get("restartCount"))
        finished = _last_terminated(c)
        restarts += count
        last_restart = _later(last_restart, finished)
        is_sidecar = _str(c.get("name")) in restartable
        if is_sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated, waiting = _state(c, "terminated"), _state(c, "waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and c.get("started") is True:
            if c.get("ready") is True:
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and _str(waiting.get("reason")) not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for c in reversed(_maps(status.get("containerStatuses"))):
            restarts += _int(c.get("restartCount"))
            last_restart = _later(last_restart, _last_terminated(c))
            terminated, waiting = _state(c, "terminated"), _state(c, "waiting")
            if waiting is not None and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif terminated is not None:
                reason = _terminated_reason(terminated, "")
            elif c.get("ready") is True and _state(c, "running") is not None:
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not Completed.
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") is not None:
        if _str(status.get("reason")) == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({_since(last_restart, now)} ago)"

    pod_ips = _maps(status.get("podIPs"))
    pod_ip = (_str(pod_ips[0].get("ip")) if pod_ips else "") or _str(status.get("podIP"))
    gates = _maps(spec.get("readinessGates"))
    readiness_gates = "<none>"
    if gates:
        passed = 0
        for gate in gates:
            match = next(
                (c for c in conditions if c.get("type") == gate.get("conditionType")), None
            )
            if match is not None and match.get("status") == "True":
                passed += 1
        readiness_gates = f"{passed}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        readiness_gates,
    ]


# -- workloads ---------------------------------------------------------------------------------


def _deployment_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    selector = spec.get("selector")
    try:
        # printDeployment prints selector.String() as is ("" for a missing selector).
        selector_cell = str(
            LabelSelector.from_object(selector if isinstance(selector, Mapping) else None)
        )
    except ValueError:
        selector_cell = "<invalid>"
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        selector_cell,
    ]


def _replicaset_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    selector = spec.get("selector")
    return [
        _name(obj),
        _int(spec.get("replicas"), 1),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        selector_string(selector if isinstance(selector, Mapping) else None),
    ]


# -- services and endpoints --------------------------------------------------------------------


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """getServiceExternalIP, in wide mode (load-balancer addresses are not clipped)."""
    external = [_str(ip) for ip in _list(spec.get("externalIPs"))]
    svc_type = _str(spec.get("type")) or "ClusterIP"
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        ingress = _maps(_map(status.get("loadBalancer")).get("ingress"))
        lb = sorted({_str(i.get("ip")) or _str(i.get("hostname")) for i in ingress} - {""})
        if external:
            return ",".join(lb + external)
        return ",".join(lb) or "<pending>"
    if svc_type == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _port_string(ports: list[Mapping[str, Any]]) -> str:
    """makePortString: `80/TCP`, `80:30080/TCP` with a node port, comma-joined."""
    pieces = []
    for p in ports:
        port, node_port = _int(p.get("port")), _int(p.get("nodePort"))
        protocol = _str(p.get("protocol")) or "TCP"
        pieces.append(f"{port}:{node_port}/{protocol}" if node_port > 0 else f"{port}/{protocol}")
    return ",".join(pieces)


def _service_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = (_str(cluster_ips[0]) if cluster_ips else "") or _str(spec.get("clusterIP"))
    return [
        _name(obj),
        _str(spec.get("type")) or "ClusterIP",
        cluster_ip or "<none>",  # a headless service shows its clusterIP "None"
        _service_external_ip(spec, status),
        _port_string(_maps(spec.get("ports"))) or "<none>",
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


def _host_port(ip: str, port: int) -> str:
    """net.JoinHostPort: IPv6 addresses get brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(obj: Mapping[str, Any]) -> str:
    """formatEndpoints: up to three `ip:port`, then ` + N more...`; `<none>` without subsets."""
    subsets = _maps(obj.get("subsets"))
    if not subsets:
        return "<none>"
    limit, count, more = 3, 0, False
    shown: list[str] = []
    for subset in subsets:
        addresses = [_str(a.get("ip")) for a in _maps(subset.get("addresses"))]
        ports = _maps(subset.get("ports"))
        targets: list[list[str]]
        if not ports:  # a headless service may have no ports
            targets = [addresses]
        else:
            targets = [[_host_port(ip, _int(p.get("port"))) for ip in addresses] for p in ports]
        for entries in targets:
            count += len(entries)
            for entry in entries:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(entry)
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _endpoints_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    return [_name(obj), format_endpoints(obj), _age(obj, now)]


# -- nodes, events, namespaces, configmaps, leases ---------------------------------------------

_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_NODE_ROLE_LABEL = "kubernetes.io/role"


def _node_roles(labels: Mapping[str, Any]) -> list[str]:
    """findNodeRoles: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values."""
    roles = set()
    for key, value in labels.items():
        if not isinstance(key, str):
            continue
        if key.startswith(_NODE_ROLE_PREFIX) and len(key) > len(_NODE_ROLE_PREFIX):
            roles.add(key[len(_NODE_ROLE_PREFIX) :])
        elif key == _NODE_ROLE_LABEL and _str(value):
            roles.add(_str(value))
    return sorted(roles)


def _node_address(status: Mapping[str, Any], type_: str) -> str:
    for a in _maps(status.get("addresses")):
        if a.get("type") == type_:
            return _str(a.get("address"))
    return "<none>"


def _node_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    ready = None
    for c in _maps(status.get("conditions")):
        if c.get("type") == "Ready":
            ready = c  # the last Ready condition wins, as in printNode's map
    states = (
        ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    )
    if spec.get("unschedulable") is True:
        states.append("SchedulingDisabled")
    info = _map(status.get("nodeInfo"))
    return [
        _name(obj),
        ",".join(states),
        ",".join(_node_roles(_map(_map(obj.get("metadata")).get("labels")))) or "<none>",
        _age(obj, now),
        _str(info.get("kubeletVersion")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info.get("osImage")) or "<unknown>",
        _str(info.get("kernelVersion")) or "<unknown>",
        _str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


def _event_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    """printEvent: LAST SEEN from lastTimestamp, else firstTimestamp, else eventTime; a
    series overrides it and the count; OBJECT is `kind/name` with the kind lower-cased."""
    first = _time(obj.get("firstTimestamp")) or _time(obj.get("eventTime"))
    first_seen = _since(first, now)
    last = _time(obj.get("lastTimestamp"))
    last_seen = _since(last, now) if last is not None else first_seen
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, Mapping):
        last_seen = _since(_time(series.get("lastObservedTime")), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the events.k8s.io API carry no count
    involved = _map(obj.get("involvedObject"))
    kind, name = _str(involved.get("kind")).lower(), _str(involved.get("name"))
    source = _map(obj.get("source"))
    component = _str(source.get("component")) or _str(obj.get("reportingComponent"))
    instance = _str(source.get("host")) or _str(obj.get("reportingInstance"))
    return [
        last_seen,
        _str(obj.get("type")),
        _str(obj.get("reason")),
        f"{kind}/{name}" if name else kind,
        _str(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        _str(obj.get("message")).strip(),
        first_seen,
        count,
        _name(obj),
    ]


def _namespace_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    return [_name(obj), _str(_map(obj.get("status")).get("phase")), _age(obj, now)]


def _configmap_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    size = len(_map(obj.get("data"))) + len(_map(obj.get("binaryData")))
    return [_name(obj), size, _age(obj, now)]


def _lease_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    holder = _str(_map(obj.get("spec")).get("holderIdentity"))
    return [_name(obj), holder, _age(obj, now)]


def _default_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    created = _map(obj.get("metadata")).get("creationTimestamp")
    return [_name(obj), created if _time(created) is not None else None]


_PRINTERS: dict[str, Callable[[Mapping[str, Any], float], list[Any]]] = {
    "Pod": _pod_cells,
    "Deployment": _deployment_cells,
    "ReplicaSet": _replicaset_cells,
    "Service": _service_cells,
    "Endpoints": _endpoints_cells,
    "Node": _node_cells,
    "Event": _event_cells,
    "Namespace": _namespace_cells,
    "ConfigMap": _configmap_cells,
    "Lease": _lease_cells,
}


def cells(res: Resource, obj: Mapping[str, Any], now: float) -> list[Any]:
    """One row's cells, in `column_definitions(res)` order; `now` is Unix seconds."""
    printer = _PRINTERS.get(res.kind, _default_cells)
    return printer(_map(obj), now)


# -- rows and tables ---------------------------------------------------------------------------


def row(res: Resource, obj: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A Table row: the cells and the object's metadata as a PartialObjectMetadata, which
    kubectl reads for `-A` (namespace), `--show-labels` and `-L`."""
    metadata = {k: v for k, v in _map(_map(obj).get("metadata")).items() if k != "managedFields"}
    return {
        "cells": cells(res, obj, now),
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": TABLE_API_VERSION,
            "metadata": metadata,
        },
    }


def table(
    res: Resource,
    objs: Iterable[Mapping[str, Any]],
    now: float,
    *,
    resource_version: str = "",
    continue_: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    """The `meta.k8s.io/v1` Table of `objs`, in the order given.

    Used for lists (pass the list's resourceVersion: `get -w` watches from it), single
    objects (one row) and watch events (one row per event)."""
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_:
        metadata["continue"] = continue_
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": column_definitions(res),
        "rows": [row(res, o, now) for o in objs],
    }


# -- content negotiation -----------------------------------------------------------------------


def _split_unquoted(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double-quoted strings (RFC 9110 quoted-string, with `\\`)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


def _media_range(text: str) -> tuple[str, str, dict[str, str]] | None:
    """(type, subtype, params) of one Accept element, None when malformed."""
    pieces = _split_unquoted(text, ";")
    type_, slash, subtype = pieces[0].strip().lower().partition("/")
    if not slash or not type_ or not subtype:
        return None
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        if not eq:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.strip().lower()] = value
    return type_, subtype, params


def _quality(params: Mapping[str, str]) -> float:
    try:
        q = float(params.get("q", "1"))
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def wants_table(accept: str) -> bool:
    """True when `accept` prefers a JSON `meta.k8s.io` Table (v1 or v1beta1) to plain JSON.

    Media ranges are taken in order of preference (q, then wildcards last, then as
    written). The first one we can serve decides: a JSON Table request means Table; plain
    JSON (or a wildcard) means objects. Ranges we cannot serve (protobuf, a Table of an
    unknown version, `as=PartialObjectMetadata`) are skipped."""
    ranges = []
    for position, element in enumerate(_split_unquoted(accept or "", ",")):
        parsed = _media_range(element)
        if parsed is None:
            continue
        type_, subtype, params = parsed
        q = _quality(params)
        if q > 0:
            ranges.append((-q, type_ == "*", subtype == "*", position, type_, subtype, params))
    for *_, type_, subtype, params in sorted(ranges, key=lambda r: r[:4]):
        if (type_, subtype) not in (("application", "json"), ("application", "*"), ("*", "*")):
            continue
        kind = params.get("as")
        if kind is None:
            return False
        if (
            kind == "Table"
            and params.get("g") == _TABLE_GROUP
            and params.get("v") in _TABLE_VERSIONS
        ):
            return True
    return False


def table_content_type() -> str:
    """The Content-Type of a Table response, echoing what kubectl asked for."""
    return f"application/json;as=Table;v=v1;g={_TABLE_GROUP}"
