"""Kubernetes defaulting (`SetDefaults_*` of `pkg/apis/*/v1`), on JSON objects in place.

The API server defaults every object it decodes, before validation, so what is stored and
read back carries the defaults (`kubectl get -o yaml` shows `restartPolicy: Always`). Go
treats a zero value as "unset": an empty string, a zero integer for non-pointer fields and a
nil pointer; JSON `null` and an absent key are both nil here.

Defaulting runs on untrusted input, before validation has looked at it, so it never raises:
a field of the wrong JSON type is left as it is for `validation` to report. What Kubernetes
does elsewhere than in defaulting is noted where kubelab does it here instead
(`spec.finalizers` of a Namespace comes from its registry strategy).

Pod-only defaults (requests from limits, `enableServiceLinks`, host-network host ports) are
not applied to pod templates, as in Kubernetes: a Deployment's stored template, and the hash
of it that names ReplicaSets, must not depend on them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .resources import Resource

JSONObject = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
DEFAULT_VOLUME_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _default(obj: JSONObject, key: str, value: Any, *, zero_is_unset: bool = False) -> None:
    """Set `obj[key]` when it is absent, null, "" or (for Go non-pointer ints) 0."""
    current = obj.get(key)
    if _unset(current) or (
        zero_is_unset
        and current == 0
        and isinstance(current, int)
        and not isinstance(current, bool)
    ):
        obj[key] = value


def _object(obj: JSONObject, key: str) -> JSONObject | None:
    """`obj[key]` when it is an object, else None (absent, or a type validation reports)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _ensure(obj: JSONObject, key: str) -> JSONObject | None:
    """`obj[key]`, created empty when absent or null (a Go struct that always serialises)."""
    if obj.get(key) is None:
        obj[key] = {}
    return _object(obj, key)


def _objects(obj: JSONObject, key: str) -> list[JSONObject]:
    """The object items of the list `obj[key]` (nothing when it is not a list)."""
    value = obj.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


# -- containers ------------------------------------------------------------------------------


def image_tag(image: str) -> str:
    """The tag of an image reference, `latest` when it has neither tag nor digest.

    `registry:5000/app` has no tag: a colon only separates a tag in the last path part."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return "" if digest else "latest"


def _http_get(action: JSONObject) -> None:
    _default(action, "path", "/")
    _default(action, "scheme", "HTTP")


def _handler(handler: JSONObject) -> None:
    http_get = _object(handler, "httpGet")
    if http_get is not None:
        _http_get(http_get)


def _probe(probe: JSONObject) -> None:
    _handler(probe)
    _default(probe, "timeoutSeconds", 1, zero_is_unset=True)
    _default(probe, "periodSeconds", 10, zero_is_unset=True)
    _default(probe, "successThreshold", 1, zero_is_unset=True)
    _default(probe, "failureThreshold", 3, zero_is_unset=True)


def _container(container: JSONObject) -> None:
    image = container.get("image")
    if _unset(container.get("imagePullPolicy")) and (image is None or isinstance(image, str)):
        # An empty or missing image has no tag (Kubernetes' parser fails on it): IfNotPresent.
        latest = bool(image) and image_tag(str(image)) == "latest"
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    _default(container, "terminationMessagePath", "/dev/termination-log")
    _default(container, "terminationMessagePolicy", "File")
    _ensure(container, "resources")
    for port in _objects(container, "ports"):
        _default(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _object(container, probe_key)
        if probe is not None:
            _probe(probe)
    lifecycle = _object(container, "lifecycle")
    if lifecycle is not None:
        for hook_key in ("postStart", "preStop"):
            hook = _object(lifecycle, hook_key)
            if hook is not None:
                _handler(hook)
    for env in _objects(container, "env"):
        value_from = _object(env, "valueFrom")
        field_ref = _object(value_from, "fieldRef") if value_from is not None else None
        if field_ref is not None:
            _default(field_ref, "apiVersion", "v1")


_MODE_VOLUMES = ("secret", "configMap", "downwardAPI", "projected")


def _volume(volume: JSONObject) -> None:
    if not any(key != "name" and value is not None for key, value in volume.items()):
        volume["emptyDir"] = {}  # SetDefaults_Volume: a volume with no source is an emptyDir
    for key in _MODE_VOLUMES:
        source = _object(volume, key)
        if source is not None:
            _default(source, "defaultMode", DEFAULT_VOLUME_MODE)
    host_path = _object(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""


def _all_containers(spec: JSONObject) -> list[JSONObject]:
    return _objects(spec, "initContainers") + _objects(spec, "containers")


def default_pod_spec(spec: JSONObject) -> None:
    """SetDefaults_PodSpec and the defaults of everything a PodSpec holds."""
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "restartPolicy", "Always")
    _ensure(spec, "securityContext")
    _default(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS)
    _default(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for container in _all_containers(spec):
        _container(container)
    for volume in _objects(spec, "volumes"):
        _volume(volume)


def default_pod_template(template: JSONObject) -> None:
    """Defaults of a PodTemplateSpec (Deployment and ReplicaSet `spec.template`), in place."""
    if not isinstance(template, dict):
        return
    spec = _ensure(template, "spec")
    if spec is not None:
        default_pod_spec(spec)


def normalize_template(template: JSONObject) -> JSONObject:
    """A deep copy of a pod template in the form the server stores, for hashing.

    `kubectl rollout undo` sends back a template carrying `metadata.creationTimestamp: null`
    and the server's defaults (kubectl-api.md §7.3, gotcha 13); without this normalisation
    a rollback would hash differently from the ReplicaSet it restores."""
    if not isinstance(template, dict):
        raise ValueError(f"a pod template must be an object, not {type(template).__name__}")
    out = copy.deepcopy(template)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        if "creationTimestamp" in metadata and metadata["creationTimestamp"] is None:
            del metadata["creationTimestamp"]
        if not metadata:
            del out["metadata"]
    elif metadata is None:
        out.pop("metadata", None)
    default_pod_template(out)
    return out


# -- kinds -----------------------------------------------------------------------------------


def _pod(obj: JSONObject) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    for container in _all_containers(spec):
        resources = _object(container, "resources")
        limits = _object(resources, "limits") if resources is not None else None
        if resources is None or limits is None:
            continue
        requests = _ensure(resources, "requests")
        if requests is not None:
            for name, value in limits.items():
                requests.setdefault(name, copy.deepcopy(value))
    _default(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for container in _all_containers(spec):
            for port in _objects(container, "ports"):
                if port.get("hostPort") in (None, 0):
                    port["hostPort"] = port.get("containerPort")


def _replicated(obj: JSONObject) -> JSONObject | None:
    """Defaults shared by Deployment and ReplicaSet; returns the spec."""
    spec = _ensure(obj, "spec")
    if spec is None:
        return None
    _default(spec, "replicas", 1)
    template = _ensure(spec, "template")
    if template is not None:
        default_pod_template(template)
    return spec


def _deployment(obj: JSONObject) -> None:
    spec = _replicated(obj)
    if spec is None:
        return
    strategy = _ensure(spec, "strategy")
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _ensure(strategy, "rollingUpdate")
            if rolling is not None:
                _default(rolling, "maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
                _default(rolling, "maxSurge", DEFAULT_MAX_SURGE)
    _default(spec, "revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _default(spec, "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS)


def _replica_set(obj: JSONObject) -> None:
    _replicated(obj)


def _service(obj: JSONObject) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    _default(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    _default(spec, "type", "ClusterIP")
    for port in _objects(spec, "ports"):
        _default(port, "protocol", "TCP")
        target = port.get("targetPort")
        number = port.get("port")
        if target in (None, 0, "") and isinstance(number, int) and not isinstance(number, bool):
            port["targetPort"] = number
    kind = spec.get("type")
    externally_accessible = kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        _default(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        _default(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _default(spec, "allocateLoadBalancerNodePorts", True)


def _namespace(obj: JSONObject) -> None:
    metadata = _object(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if metadata is not None and isinstance(name, str) and name:
        labels = _ensure(metadata, "labels")
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    spec = _ensure(obj, "spec")
    if spec is not None and spec.get("finalizers") is None:
        spec["finalizers"] = ["kubernetes"]
    status = _ensure(obj, "status")
    if status is not None:
        _default(status, "phase", "Active")


def _node(obj: JSONObject) -> None:
    status = _object(obj, "status")
    if status is None:
        return
    capacity = _object(status, "capacity")
    if capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = copy.deepcopy(capacity)


def _endpoints(obj: JSONObject) -> None:
    for subset in _objects(obj, "subsets"):
        for port in _objects(subset, "ports"):
            _default(port, "protocol", "TCP")


def _nothing(obj: JSONObject) -> None:
    """Event, ConfigMap and Lease have no defaults in Kubernetes."""


_DEFAULTERS: dict[str, Callable[[JSONObject], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "Service": _service,
    "Namespace": _namespace,
    "Node": _node,
    "Endpoints": _endpoints,
    "Event": _nothing,
    "ConfigMap": _nothing,
    "Lease": _nothing,
}


def apply_defaults(res: Resource, obj: dict[str, Any]) -> None:
    """Apply Kubernetes' defaults for `res` to `obj` in place; never raises on bad shapes."""
    if not isinstance(obj, dict):
        return
    defaulter = _DEFAULTERS.get(res.kind)
    if defaulter is not None:
        defaulter(obj)
