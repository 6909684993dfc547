"""Kubernetes validation: the rules and exact messages of k8s.io/kubernetes' validation
packages, as `kubectl` prints them from a 422's `details.causes`."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from controlplane.kube import resources as r
from controlplane.kube.defaults import apply_defaults
from controlplane.kube.errors import Cause, invalid
from controlplane.kube.resources import Resource
from controlplane.kube.validation import (
    DNS1123_LABEL_MAX,
    validate,
    validate_name,
    validate_update,
)

Obj = dict[str, Any]
DELETE = object()

# Kubernetes' messages, written out here rather than imported: the tests pin the text.
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
ENV_NAME = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  "
    "or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
PERCENT = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
    "or '93%', regex used for validation is '[0-9]+%')"
)
QUANTITY = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
PORT_RANGE = "must be between 1 and 65535, inclusive"
IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"


# -- valid objects of every kind ---------------------------------------------------------------


def container(**extra: Any) -> Obj:
    return {
        "name": "web",
        "image": "nginx:1.25",
        "ports": [{"containerPort": 80, "name": "http"}],
        "env": [{"name": "MODE", "value": "prod"}],
        "resources": {
            "limits": {"cpu": "1", "memory": "128Mi"},
            "requests": {"cpu": "500m", "memory": "64Mi"},
        },
        "livenessProbe": {"httpGet": {"port": "http"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        **extra,
    }


def pod_spec() -> Obj:
    return {
        "containers": [container()],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
    }


def pod() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": pod_spec(),
    }


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
        },
    }


def replica_set() -> Obj:
    obj = deployment()
    obj["kind"] = "ReplicaSet"
    return obj


def service() -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def namespace() -> Obj:
    return {"metadata": {"name": "team"}}


def config_map() -> Obj:
    return {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.conf": "x=1"}}


def node() -> Obj:
    return {
        "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}},
    }


def event() -> Obj:
    return {
        "metadata": {"name": "web.17a8", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Started",
        "message": "Started container web",
        "type": "Normal",
        "count": 1,
    }


def lease() -> Obj:
    return {
        "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
        "spec": {"holderIdentity": "master-1", "leaseDurationSeconds": 15, "leaseTransitions": 0},
    }


def endpoints() -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 80}]}],
    }


VALID: dict[str, tuple[Resource, Callable[[], Obj]]] = {
    "Pod": (r.PODS, pod),
    "Deployment": (r.DEPLOYMENTS, deployment),
    "ReplicaSet": (r.REPLICASETS, replica_set),
    "Service": (r.SERVICES, service),
    "Namespace": (r.NAMESPACES, namespace),
    "ConfigMap": (r.CONFIGMAPS, config_map),
    "Node": (r.NODES, node),
    "Event": (r.EVENTS, event),
    "Lease": (r.LEASES, lease),
    "Endpoints": (r.ENDPOINTS, endpoints),
}


def tokens(path: str) -> list[str | int]:
    return [
        int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"[^.\[\]]+|\[\d+\]", path)
    ]


def setp(obj: Any, path: str, value: Any) -> None:
    """Set (or, with DELETE, remove) `a.b[0].c` in `obj`, creating objects on the way."""
    *parents, last = tokens(path)
    for token in parents:
        if isinstance(token, str) and token not in obj:
            obj[token] = {}
        obj = obj[token]
    if value is DELETE:
        del obj[last]
    elif isinstance(last, int) and last == len(obj):
        obj.append(value)
    else:
        obj[last] = value


def admitted(res: Resource, obj: Obj) -> list[Cause]:
    """What the admission path does: default, then validate."""
    apply_defaults(res, obj)
    return validate(res, obj)


def with_changes(kind: str, changes: dict[str, Any]) -> tuple[Resource, Obj]:
    res, factory = VALID[kind]
    obj = factory()
    for path, value in changes.items():
        setp(obj, path, value)
    return res, obj


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_objects_have_no_causes(kind: str) -> None:
    """The reference object of every kind is valid once defaulted."""
    res, factory = VALID[kind]
    assert admitted(res, factory()) == []


def test_every_served_kind_has_a_validator_case() -> None:
    assert {res.kind for res in r.RESOURCES} == set(VALID)


# -- one rule per case: (id, kind, changes, field, message, reason) ----------------------------

C0 = "spec.containers[0]"
T0 = "spec.template.spec.containers[0]"
LONG = "a" * 64

CASES: list[tuple[str, str, dict[str, Any], str, str, str]] = [
    # metadata
    (
        "name-required",
        "Pod",
        {"metadata.name": DELETE},
        "metadata.name",
        "Required value: name or generateName is required",
        REQUIRED,
    ),
    (
        "name-subdomain",
        "Pod",
        {"metadata.name": "Web_1"},
        "metadata.name",
        f'Invalid value: "Web_1": {SUBDOMAIN}',
        INVALID,
    ),
    (
        "name-too-long",
        "ConfigMap",
        {"metadata.name": "a" * 254},
        "metadata.name",
        f'Invalid value: "{"a" * 254}": must be no more than 253 characters',
        INVALID,
    ),
    (
        "generateName",
        "Pod",
        {"metadata.generateName": "Web-"},
        "metadata.generateName",
        f'Invalid value: "Web-": {SUBDOMAIN}',
        INVALID,
    ),
    (
        "namespace-required",
        "Pod",
        {"metadata.namespace": DELETE},
        "metadata.namespace",
        "Required value",
        REQUIRED,
    ),
    (
        "namespace-label",
        "Pod",
        {"metadata.namespace": "Team_A"},
        "metadata.namespace",
        f'Invalid value: "Team_A": {LABEL}',
        INVALID,
    ),
    (
        "namespace-on-cluster-scoped",
        "Node",
        {"metadata.namespace": "default"},
        "metadata.namespace",
        "Forbidden: not allowed on this type",
        FORBIDDEN,
    ),
    (
        "label-value-too-long",
        "Pod",
        {"metadata.labels": {"app": LONG}},
        "metadata.labels",
        f'Invalid value: "{LONG}": must be no more than 63 characters',
        INVALID,
    ),
    (
        "label-value-charset",
        "Pod",
        {"metadata.labels": {"app": "a b"}},
        "metadata.labels",
        f'Invalid value: "a b": {LABEL_VALUE}',
        INVALID,
    ),
    (
        "label-key-name",
        "Pod",
        {"metadata.labels": {"-app": "x"}},
        "metadata.labels",
        f'Invalid value: "-app": name part {QUALIFIED}',
        INVALID,
    ),
    (
        "label-key-name-too-long",
        "Pod",
        {"metadata.labels": {LONG: "x"}},
        "metadata.labels",
        f'Invalid value: "{LONG}": name part must be no more than 63 characters',
        INVALID,
    ),
    (
        "label-key-prefix",
        "Pod",
        {"metadata.labels": {"Example.com/app": "x"}},
        "metadata.labels",
        f'Invalid value: "Example.com/app": prefix part {SUBDOMAIN}',
        INVALID,
    ),
    (
        "label-key-empty-prefix",
        "Pod",
        {"metadata.labels": {"/app": "x"}},
        "metadata.labels",
        'Invalid value: "/app": prefix part must be non-empty',
        INVALID,
    ),
    (
        "label-key-two-slashes",
        "Pod",
        {"metadata.labels": {"a/b/c": "x"}},
        "metadata.labels",
        f'Invalid value: "a/b/c": a qualified name {QUALIFIED} with an optional DNS subdomain '
        "prefix and '/' (e.g. 'example.com/MyName')",
        INVALID,
    ),
    (
        "label-value-type",
        "Pod",
        {"metadata.labels": {"app": 5}},
        "metadata.labels[app]",
        "Invalid value: 5: expected string",
        TYPE_INVALID,
    ),
    (
        "annotation-key",
        "Pod",
        {"metadata.annotations": {"a b": "x"}},
        "metadata.annotations",
        f'Invalid value: "a b": name part {QUALIFIED}',
        INVALID,
    ),
    (
        "annotations-too-long",
        "Pod",
        {"metadata.annotations": {"big": "x" * (256 * 1024)}},
        "metadata.annotations",
        "Too long: may not be more than 262144 bytes",
        TOO_LONG,
    ),
    (
        "finalizer-not-qualified",
        "Pod",
        {"metadata.finalizers": ["cleanup"]},
        "metadata.finalizers",
        'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully '
        "qualified",
        INVALID,
    ),
    (
        "owner-reference-uid",
        "Pod",
        {
            "metadata.ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"}
            ]
        },
        "metadata.ownerReferences.uid",
        'Invalid value: "": must not be empty',
        INVALID,
    ),
    (
        "metadata-type",
        "Pod",
        {"metadata": "x"},
        "metadata",
        'Invalid value: "x": expected object',
        TYPE_INVALID,
    ),
    # pod spec
    (
        "containers-required",
        "Pod",
        {"spec.containers": []},
        "spec.containers",
        "Required value",
        REQUIRED,
    ),
    (
        "containers-type",
        "Pod",
        {"spec.containers": "x"},
        "spec.containers",
        'Invalid value: "x": expected array',
        TYPE_INVALID,
    ),
    (
        "container-type",
        "Pod",
        {"spec.containers": ["x"]},
        C0,
        'Invalid value: "x": expected object',
        TYPE_INVALID,
    ),
    (
        "spec-type",
        "Pod",
        {"spec": "x"},
        "spec",
        'Invalid value: "x": expected object',
        TYPE_INVALID,
    ),
    (
        "container-name",
        "Pod",
        {f"{C0}.name": "Web_1"},
        f"{C0}.name",
        f'Invalid value: "Web_1": {LABEL}',
        INVALID,
    ),
    (
        "container-name-dots",
        "Pod",
        {f"{C0}.name": "web.1"},
        f"{C0}.name",
        'Invalid value: "web.1": must not contain dots',
        INVALID,
    ),
    (
        "container-name-required",
        "Pod",
        {f"{C0}.name": ""},
        f"{C0}.name",
        "Required value",
        REQUIRED,
    ),
    (
        "container-name-duplicate",
        "Pod",
        {"spec.containers": [container(), container()]},
        "spec.containers[1].name",
        'Duplicate value: "web"',
        DUPLICATE,
    ),
    (
        "container-name-duplicate-init",
        "Pod",
        {"spec.initContainers": [container(ports=[], livenessProbe=None)]},
        "spec.containers[0].name",
        'Duplicate value: "web"',
        DUPLICATE,
    ),
    ("image-required", "Pod", {f"{C0}.image": DELETE}, f"{C0}.image", "Required value", REQUIRED),
    (
        "image-whitespace",
        "Pod",
        {f"{C0}.image": " nginx"},
        f"{C0}.image",
        'Invalid value: " nginx": must not have leading or trailing whitespace',
        INVALID,
    ),
    (
        "containerPort-required",
        "Pod",
        {f"{C0}.ports[0].containerPort": 0},
        f"{C0}.ports[0].containerPort",
        "Required value",
        REQUIRED,
    ),
    (
        "containerPort-range",
        "Pod",
        {f"{C0}.ports[0].containerPort": 70000},
        f"{C0}.ports[0].containerPort",
        f"Invalid value: 70000: {PORT_RANGE}",
        INVALID,
    ),
    (
        "containerPort-type",
        "Pod",
        {f"{C0}.ports[0].containerPort": "80"},
        f"{C0}.ports[0].containerPort",
        'Invalid value: "80": expected int32',
        TYPE_INVALID,
    ),
    (
        "hostPort-range",
        "Pod",
        {f"{C0}.ports[0].hostPort": -1},
        f"{C0}.ports[0].hostPort",
        f"Invalid value: -1: {PORT_RANGE}",
        INVALID,
    ),
    (
        "port-protocol",
        "Pod",
        {f"{C0}.ports[0].protocol": "HTTP"},
        f"{C0}.ports[0].protocol",
        'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        NOT_SUPPORTED,
    ),
    (
        "port-name-charset",
        "Pod",
        {f"{C0}.ports[0].name": "Web"},
        f"{C0}.ports[0].name",
        'Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and '
        "hyphens (-)",
        INVALID,
    ),
    (
        "port-name-letter",
        "Pod",
        {f"{C0}.ports[0].name": "8080"},
        f"{C0}.ports[0].name",
        'Invalid value: "8080": must contain at least one letter (a-z)',
        INVALID,
    ),
    (
        "port-name-length",
        "Pod",
        {f"{C0}.ports[0].name": "a-very-long-port-name"},
        f"{C0}.ports[0].name",
        'Invalid value: "a-very-long-port-name": must be no more than 15 characters',
        INVALID,
    ),
    (
        "port-name-hyphens",
        "Pod",
        {f"{C0}.ports[0].name": "a--b"},
        f"{C0}.ports[0].name",
        'Invalid value: "a--b": must not contain consecutive hyphens',
        INVALID,
    ),
    (
        "port-name-duplicate",
        "Pod",
        {
            f"{C0}.ports": [
                {"containerPort": 80, "name": "web"},
                {"containerPort": 81, "name": "web"},
            ]
        },
        f"{C0}.ports[1].name",
        'Duplicate value: "web"',
        DUPLICATE,
    ),
    (
        "restartPolicy",
        "Pod",
        {"spec.restartPolicy": "Sometimes"},
        "spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        NOT_SUPPORTED,
    ),
    (
        "dnsPolicy",
        "Pod",
        {"spec.dnsPolicy": "Google"},
        "spec.dnsPolicy",
        'Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
        '"ClusterFirst", "Default", "None"',
        NOT_SUPPORTED,
    ),
    (
        "imagePullPolicy",
        "Pod",
        {f"{C0}.imagePullPolicy": "Sometimes"},
        f"{C0}.imagePullPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
        NOT_SUPPORTED,
    ),
    (
        "quantity-format",
        "Pod",
        {f"{C0}.resources.limits.cpu": "one"},
        f"{C0}.resources.limits[cpu]",
        f'Invalid value: "one": {QUANTITY}',
        INVALID,
    ),
    (
        "quantity-type",
        "Pod",
        {f"{C0}.resources.limits.cpu": True},
        f"{C0}.resources.limits[cpu]",
        "Invalid value: true: expected a quantity (a string such as '100m' or '128Mi', "
        "or a number)",
        TYPE_INVALID,
    ),
    (
        "quantity-negative",
        "Pod",
        {f"{C0}.resources.requests.memory": "-1Mi"},
        f"{C0}.resources.requests[memory]",
        'Invalid value: "-1Mi": must be greater than or equal to 0',
        INVALID,
    ),
    (
        "request-over-cpu-limit",
        "Pod",
        {f"{C0}.resources.requests.cpu": "2"},
        f"{C0}.resources.requests",
        'Invalid value: "2": must be less than or equal to cpu limit of 1',
        INVALID,
    ),
    (
        "request-over-memory-limit",
        "Pod",
        {f"{C0}.resources.requests.memory": "0.25Gi"},
        f"{C0}.resources.requests",
        'Invalid value: "256Mi": must be less than or equal to memory limit of 128Mi',
        INVALID,
    ),
    (
        "request-numeric-over-limit",
        "Pod",
        {f"{C0}.resources.requests.cpu": 1.5},
        f"{C0}.resources.requests",
        'Invalid value: "1500m": must be less than or equal to cpu limit of 1',
        INVALID,
    ),
    (
        "resource-name",
        "Pod",
        {f"{C0}.resources.limits.gpu": "1"},
        f"{C0}.resources.limits[gpu]",
        'Invalid value: "gpu": must be a standard resource for containers',
        INVALID,
    ),
    (
        "env-name",
        "Pod",
        {f"{C0}.env[0].name": "1MODE"},
        f"{C0}.env[0].name",
        f'Invalid value: "1MODE": {ENV_NAME}',
        INVALID,
    ),
    (
        "env-name-required",
        "Pod",
        {f"{C0}.env[0].name": ""},
        f"{C0}.env[0].name",
        "Required value",
        REQUIRED,
    ),
    (
        "env-value-and-valueFrom",
        "Pod",
        {f"{C0}.env[0].valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        f"{C0}.env[0].valueFrom",
        'Invalid value: "": may not be specified when `value` is not empty',
        INVALID,
    ),
    (
        "probe-two-handlers",
        "Pod",
        {f"{C0}.livenessProbe.tcpSocket": {"port": 80}},
        f"{C0}.livenessProbe.tcpSocket",
        "Forbidden: may not specify more than 1 handler type",
        FORBIDDEN,
    ),
    (
        "probe-no-handler",
        "Pod",
        {f"{C0}.livenessProbe": {"periodSeconds": 5}},
        f"{C0}.livenessProbe",
        "Required value: must specify a handler type",
        REQUIRED,
    ),
    (
        "probe-negative",
        "Pod",
        {f"{C0}.livenessProbe.initialDelaySeconds": -1},
        f"{C0}.livenessProbe.initialDelaySeconds",
        "Invalid value: -1: must be greater than or equal to 0",
        INVALID,
    ),
    (
        "liveness-success-threshold",
        "Pod",
        {f"{C0}.livenessProbe.successThreshold": 2},
        f"{C0}.livenessProbe.successThreshold",
        "Invalid value: 2: must be 1",
        INVALID,
    ),
    (
        "probe-http-scheme",
        "Pod",
        {f"{C0}.livenessProbe.httpGet.scheme": "FTP"},
        f"{C0}.livenessProbe.httpGet.scheme",
        'Unsupported value: "FTP": supported values: "HTTP", "HTTPS"',
        NOT_SUPPORTED,
    ),
    (
        "probe-port-name",
        "Pod",
        {f"{C0}.livenessProbe.httpGet.port": "HTTP"},
        f"{C0}.livenessProbe.httpGet.port",
        'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and '
        "hyphens (-)",
        INVALID,
    ),
    (
        "probe-exec-command",
        "Pod",
        {f"{C0}.readinessProbe": {"exec": {}}},
        f"{C0}.readinessProbe.exec.command",
        "Required value",
        REQUIRED,
    ),
    (
        "volume-mount-unknown",
        "Pod",
        {f"{C0}.volumeMounts[0].name": "cache"},
        f"{C0}.volumeMounts[0].name",
        'Not found: "cache"',
        NOT_FOUND,
    ),
    (
        "volume-two-sources",
        "Pod",
        {"spec.volumes[0].hostPath": {"path": "/tmp"}},
        "spec.volumes[0].hostPath",
        "Forbidden: may not specify more than 1 volume type",
        FORBIDDEN,
    ),
    (
        "grace-negative",
        "Pod",
        {"spec.terminationGracePeriodSeconds": -1},
        "spec.terminationGracePeriodSeconds",
        "Invalid value: -1: must be greater than or equal to 0",
        INVALID,
    ),
    (
        "activeDeadline",
        "Pod",
        {"spec.activeDeadlineSeconds": 0},
        "spec.activeDeadlineSeconds",
        "Invalid value: 0: must be between 1 and 2147483647, inclusive",
        INVALID,
    ),
    (
        "nodeSelector",
        "Pod",
        {"spec.nodeSelector": {"disk": "fast ssd"}},
        "spec.nodeSelector",
        f'Invalid value: "fast ssd": {LABEL_VALUE}',
        INVALID,
    ),
    (
        "toleration-operator",
        "Pod",
        {"spec.tolerations[0].operator": "Maybe"},
        "spec.tolerations[0].operator",
        'Unsupported value: "Maybe": supported values: "Equal", "Exists"',
        NOT_SUPPORTED,
    ),
    (
        "toleration-effect",
        "Pod",
        {"spec.tolerations[0].effect": "NoRun"},
        "spec.tolerations[0].effect",
        'Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", '
        '"NoExecute"',
        NOT_SUPPORTED,
    ),
    (
        "toleration-seconds-needs-NoExecute",
        "Pod",
        {"spec.tolerations[0].effect": "NoSchedule"},
        "spec.tolerations[0].effect",
        "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
        INVALID,
    ),
    (
        "toleration-empty-key-needs-Exists",
        "Pod",
        {"spec.tolerations": [{"operator": "Equal", "value": "x"}]},
        "spec.tolerations[0].operator",
        'Invalid value: "Equal": operator must be Exists when `key` is empty, which means '
        '"match all values and all keys"',
        INVALID,
    ),
    # Deployment and ReplicaSet
    (
        "selector-required",
        "Deployment",
        {"spec.selector": DELETE},
        "spec.selector",
        "Required value",
        REQUIRED,
    ),
    (
        "selector-empty",
        "Deployment",
        {"spec.selector": {}},
        "spec.selector",
        "Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
        "deployment",
        INVALID,
    ),
    (
        "selector-mismatch",
        "Deployment",
        {"spec.template.metadata.labels": {"app": "x"}},
        "spec.template.metadata.labels",
        'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`',
        INVALID,
    ),
    (
        "selector-mismatch-no-labels",
        "ReplicaSet",
        {"spec.template.metadata": {}},
        "spec.template.metadata.labels",
        "Invalid value: map[string]string(nil): `selector` does not match template `labels`",
        INVALID,
    ),
    (
        "selector-operator",
        "Deployment",
        {"spec.selector.matchExpressions": [{"key": "tier", "operator": "Like"}]},
        "spec.selector.matchExpressions[0].operator",
        'Invalid value: "Like": not a valid selector operator',
        INVALID,
    ),
    (
        "selector-in-needs-values",
        "Deployment",
        {"spec.selector.matchExpressions": [{"key": "tier", "operator": "In"}]},
        "spec.selector.matchExpressions[0].values",
        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        REQUIRED,
    ),
    (
        "selector-expression-mismatch",
        "Deployment",
        {"spec.selector.matchExpressions": [{"key": "tier", "operator": "Exists"}]},
        "spec.template.metadata.labels",
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template '
        "`labels`",
        INVALID,
    ),
    (
        "replicas-negative",
        "Deployment",
        {"spec.replicas": -1},
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
        INVALID,
    ),
    (
        "replicas-type",
        "ReplicaSet",
        {"spec.replicas": "3"},
        "spec.replicas",
        'Invalid value: "3": expected int32',
        TYPE_INVALID,
    ),
    (
        "replicas-overflow",
        "Deployment",
        {"spec.replicas": 2**31},
        "spec.replicas",
        "Invalid value: 2147483648: expected int32",
        TYPE_INVALID,
    ),
    (
        "both-zero",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
        "spec.strategy.rollingUpdate.maxUnavailable",
        'Invalid value: "0%": may not be 0 when `maxSurge` is 0',
        INVALID,
    ),
    (
        "maxSurge-percent",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxSurge": "25"}}},
        "spec.strategy.rollingUpdate.maxSurge",
        f'Invalid value: "25": {PERCENT}',
        INVALID,
    ),
    (
        "maxUnavailable-over-100",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}},
        "spec.strategy.rollingUpdate.maxUnavailable",
        'Invalid value: "150%": must not be greater than 100%',
        INVALID,
    ),
    (
        "maxSurge-negative",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxSurge": -1}}},
        "spec.strategy.rollingUpdate.maxSurge",
        "Invalid value: -1: must be greater than or equal to 0",
        INVALID,
    ),
    (
        "maxSurge-type",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxSurge": 1.5}}},
        "spec.strategy.rollingUpdate.maxSurge",
        "Invalid value: 1.5: expected an integer or percentage (e.g '5%')",
        TYPE_INVALID,
    ),
    (
        "strategy-type",
        "Deployment",
        {"spec.strategy": {"type": "BlueGreen"}},
        "spec.strategy.type",
        'Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"',
        NOT_SUPPORTED,
    ),
    (
        "recreate-with-rollingUpdate",
        "Deployment",
        {"spec.strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
        "spec.strategy.rollingUpdate",
        "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        FORBIDDEN,
    ),
    (
        "template-restartPolicy",
        "Deployment",
        {"spec.template.spec.restartPolicy": "Never"},
        "spec.template.spec.restartPolicy",
        'Unsupported value: "Never": supported values: "Always"',
        NOT_SUPPORTED,
    ),
    (
        "rs-template-restartPolicy",
        "ReplicaSet",
        {"spec.template.spec.restartPolicy": "OnFailure"},
        "spec.template.spec.restartPolicy",
        'Unsupported value: "OnFailure": supported values: "Always"',
        NOT_SUPPORTED,
    ),
    (
        "template-activeDeadline",
        "ReplicaSet",
        {"spec.template.spec.activeDeadlineSeconds": 10},
        "spec.template.spec.activeDeadlineSeconds",
        "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
        FORBIDDEN,
    ),
    (
        "template-image",
        "Deployment",
        {f"{T0}.image": ""},
        f"{T0}.image",
        "Required value",
        REQUIRED,
    ),
    (
        "template-label",
        "Deployment",
        {"spec.template.metadata.labels": {"app": "web", "bad key": "x"}},
        "spec.template.metadata.labels",
        f'Invalid value: "bad key": name part {QUALIFIED}',
        INVALID,
    ),
    (
        "revisionHistoryLimit",
        "Deployment",
        {"spec.revisionHistoryLimit": -1},
        "spec.revisionHistoryLimit",
        "Invalid value: -1: must be greater than or equal to 0",
        INVALID,
    ),
    (
        "progressDeadline",
        "Deployment",
        {"spec.progressDeadlineSeconds": 5, "spec.minReadySeconds": 10},
        "spec.progressDeadlineSeconds",
        "Invalid value: 5: must be greater than minReadySeconds",
        INVALID,
    ),
    (
        "template-type",
        "Deployment",
        {"spec.template": []},
        "spec.template",
        "Invalid value: []: expected object",
        TYPE_INVALID,
    ),
    # Service
    ("svc-ports-required", "Service", {"spec.ports": []}, "spec.ports", "Required value", REQUIRED),
    (
        "svc-name-dns1035",
        "Service",
        {"metadata.name": "1web"},
        "metadata.name",
        f'Invalid value: "1web": {DNS1035}',
        INVALID,
    ),
    (
        "svc-type",
        "Service",
        {"spec.type": "Ingress"},
        "spec.type",
        'Unsupported value: "Ingress": supported values: "ClusterIP", "ExternalName", '
        '"LoadBalancer", "NodePort"',
        NOT_SUPPORTED,
    ),
    (
        "svc-port-range",
        "Service",
        {"spec.ports[0].port": 0},
        "spec.ports[0].port",
        f"Invalid value: 0: {PORT_RANGE}",
        INVALID,
    ),
    (
        "svc-port-names-required",
        "Service",
        {"spec.ports": [{"port": 80}, {"port": 443}]},
        "spec.ports[1].name",
        "Required value",
        REQUIRED,
    ),
    (
        "svc-port-name-duplicate",
        "Service",
        {"spec.ports": [{"name": "web", "port": 80}, {"name": "web", "port": 443}]},
        "spec.ports[1].name",
        'Duplicate value: "web"',
        DUPLICATE,
    ),
    (
        "svc-port-name-label",
        "Service",
        {"spec.ports[0].name": "HTTP"},
        "spec.ports[0].name",
        f'Invalid value: "HTTP": {LABEL}',
        INVALID,
    ),
    (
        "svc-port-duplicate",
        "Service",
        {"spec.ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
        "spec.ports[1]",
        'Duplicate value: core.ServicePort{Protocol:"TCP", Port:80}',
        DUPLICATE,
    ),
    (
        "svc-targetPort-range",
        "Service",
        {"spec.ports[0].targetPort": 70000},
        "spec.ports[0].targetPort",
        f"Invalid value: 70000: {PORT_RANGE}",
        INVALID,
    ),
    (
        "svc-targetPort-name",
        "Service",
        {"spec.ports[0].targetPort": "web_port"},
        "spec.ports[0].targetPort",
        'Invalid value: "web_port": must contain only alpha-numeric characters (a-z, 0-9), '
        "and hyphens (-)",
        INVALID,
    ),
    (
        "svc-nodePort-range",
        "Service",
        {"spec.type": "NodePort", "spec.ports[0].nodePort": 80},
        "spec.ports[0].nodePort",
        "Invalid value: 80: provided port is not in the valid range. The range of valid ports "
        "is 30000-32767",
        INVALID,
    ),
    (
        "svc-loadbalancer-nodePort-range",
        "Service",
        {"spec.type": "LoadBalancer", "spec.ports[0].nodePort": 40000},
        "spec.ports[0].nodePort",
        "Invalid value: 40000: provided port is not in the valid range. The range of valid "
        "ports is 30000-32767",
        INVALID,
    ),
    (
        "svc-nodePort-on-clusterIP",
        "Service",
        {"spec.ports[0].nodePort": 30080},
        "spec.ports[0].nodePort",
        "Forbidden: may not be used when `type` is 'ClusterIP'",
        FORBIDDEN,
    ),
    (
        "svc-clusterIP",
        "Service",
        {"spec.clusterIP": "10.96.0.300"},
        "spec.clusterIP",
        f'Invalid value: "10.96.0.300": {IP}',
        INVALID,
    ),
    (
        "svc-protocol",
        "Service",
        {"spec.ports[0].protocol": "ICMP"},
        "spec.ports[0].protocol",
        'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        NOT_SUPPORTED,
    ),
    (
        "svc-selector",
        "Service",
        {"spec.selector": {"app": "web app"}},
        "spec.selector",
        f'Invalid value: "web app": {LABEL_VALUE}',
        INVALID,
    ),
    (
        "svc-sessionAffinity",
        "Service",
        {"spec.sessionAffinity": "Cookie"},
        "spec.sessionAffinity",
        'Unsupported value: "Cookie": supported values: "ClientIP", "None"',
        NOT_SUPPORTED,
    ),
    (
        "svc-externalName-required",
        "Service",
        {"spec.type": "ExternalName"},
        "spec.externalName",
        "Required value",
        REQUIRED,
    ),
    (
        "svc-externalTrafficPolicy-clusterIP",
        "Service",
        {"spec.externalTrafficPolicy": "Local"},
        "spec.externalTrafficPolicy",
        'Invalid value: "Local": may only be set for externally-accessible services',
        INVALID,
    ),
    # Namespace
    (
        "ns-name-label",
        "Namespace",
        {"metadata.name": "Team"},
        "metadata.name",
        f'Invalid value: "Team": {LABEL}',
        INVALID,
    ),
    (
        "ns-name-dots",
        "Namespace",
        {"metadata.name": "team.a"},
        "metadata.name",
        'Invalid value: "team.a": must not contain dots',
        INVALID,
    ),
    (
        "ns-finalizer",
        "Namespace",
        {"spec.finalizers": ["bogus"]},
        "spec.finalizers",
        'Invalid value: "bogus": name is neither a standard finalizer name nor is it fully '
        "qualified",
        INVALID,
    ),
    # ConfigMap
    (
        "cm-key",
        "ConfigMap",
        {"data": {"bad key": "x"}},
        "data[bad key]",
        f'Invalid value: "bad key": {CONFIG_KEY}',
        INVALID,
    ),
    (
        "cm-key-dotdot",
        "ConfigMap",
        {"data": {"..": "x"}},
        "data[..]",
        "Invalid value: \"..\": must not be '..'",
        INVALID,
    ),
    (
        "cm-value-type",
        "ConfigMap",
        {"data": {"port": 80}},
        "data[port]",
        "Invalid value: 80: expected string",
        TYPE_INVALID,
    ),
    (
        "cm-too-large",
        "ConfigMap",
        {"data": {"a": "x" * (1024 * 1024)}},
        "",
        "Too long: may not be more than 1048576 bytes",
        TOO_LONG,
    ),
    (
        "cm-binary-duplicate",
        "ConfigMap",
        {"binaryData": {"app.conf": "eA=="}},
        "binaryData[app.conf]",
        'Invalid value: "app.conf": duplicate of key present in data',
        INVALID,
    ),
    # Node
    (
        "node-taint-effect",
        "Node",
        {"spec.taints[0].effect": "NoRun"},
        "spec.taints[0].effect",
        'Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", '
        '"NoExecute"',
        NOT_SUPPORTED,
    ),
    (
        "node-taint-effect-required",
        "Node",
        {"spec.taints[0].effect": ""},
        "spec.taints[0].effect",
        "Required value",
        REQUIRED,
    ),
    (
        "node-capacity",
        "Node",
        {"status.capacity.cpu": "two"},
        "status.capacity.cpu",
        f'Invalid value: "two": {QUANTITY}',
        INVALID,
    ),
    (
        "node-allocatable-negative",
        "Node",
        {"status.allocatable": {"memory": "-1Gi"}},
        "status.allocatable.memory",
        'Invalid value: "-1Gi": must be greater than or equal to 0',
        INVALID,
    ),
    # Event, Lease, Endpoints
    (
        "event-involved-required",
        "Event",
        {"involvedObject": DELETE},
        "involvedObject",
        "Required value",
        REQUIRED,
    ),
    (
        "event-reason-length",
        "Event",
        {"reason": "r" * 129},
        "reason",
        f'Invalid value: "{"r" * 129}": can have at most 128 characters',
        INVALID,
    ),
    (
        "event-namespace",
        "Event",
        {"involvedObject.namespace": "other"},
        "involvedObject.namespace",
        'Invalid value: "other": does not match event.namespace',
        INVALID,
    ),
    (
        "lease-duration",
        "Lease",
        {"spec.leaseDurationSeconds": 0},
        "spec.leaseDurationSeconds",
        "Invalid value: 0: must be greater than 0",
        INVALID,
    ),
    (
        "lease-holder-type",
        "Lease",
        {"spec.holderIdentity": 7},
        "spec.holderIdentity",
        "Invalid value: 7: expected string",
        TYPE_INVALID,
    ),
    (
        "endpoints-ip",
        "Endpoints",
        {"subsets[0].addresses[0].ip": "10.0.0"},
        "subsets[0].addresses[0].ip",
        f'Invalid value: "10.0.0": {IP}',
        INVALID,
    ),
    (
        "endpoints-port",
        "Endpoints",
        {"subsets[0].ports[0].port": 0},
        "subsets[0].ports[0].port",
        f"Invalid value: 0: {PORT_RANGE}",
        INVALID,
    ),
    (
        "endpoints-addresses-required",
        "Endpoints",
        {"subsets[0].addresses": []},
        "subsets[0]",
        "Required value: must specify `addresses` or `notReadyAddresses`",
        REQUIRED,
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes", "field", "message", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_rule(kind: str, changes: dict[str, Any], field: str, message: str, reason: str) -> None:
    """Each rule: Kubernetes' field path, message and cause reason."""
    res, obj = with_changes(kind, changes)
    causes = admitted(res, obj)
    assert {"field": field, "message": message, "reason": reason} in causes, causes


# -- the same object shapes, valid ------------------------------------------------------------

ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    ("headless-no-ports", "Service", {"spec.clusterIP": "None", "spec.ports": []}),
    (
        "externalName-no-ports",
        "Service",
        {"spec.type": "ExternalName", "spec.externalName": "db.example.com.", "spec.ports": []},
    ),
    ("clusterIP", "Service", {"spec.clusterIP": "10.96.0.10"}),
    ("nodePort", "Service", {"spec.type": "NodePort", "spec.ports[0].nodePort": 30080}),
    ("single-port-no-name", "Service", {"spec.ports": [{"port": 80}]}),
    ("targetPort-number", "Service", {"spec.ports[0].targetPort": 8080}),
    ("recreate", "Deployment", {"spec.strategy": {"type": "Recreate"}}),
    ("replicas-zero", "Deployment", {"spec.replicas": 0}),
    (
        "maxSurge-int",
        "Deployment",
        {"spec.strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
    ),
    (
        "expression-selector",
        "Deployment",
        {"spec.selector.matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
    ),
    ("label-prefixed", "Pod", {"metadata.labels": {"app.kubernetes.io/name": "web", "e": ""}}),
    (
        "generateName-trailing-dash",
        "Pod",
        {"metadata.name": "web-x7k2p", "metadata.generateName": "web-"},
    ),
    ("quantity-number", "Pod", {f"{C0}.resources.limits.cpu": 2}),
    ("request-equal-limit", "Pod", {f"{C0}.resources.requests.cpu": "1000m"}),
    ("env-dotted", "Pod", {f"{C0}.env[0].name": "my.env-name"}),
    ("grpc-probe", "Pod", {f"{C0}.livenessProbe": {"grpc": {"port": 9090}}}),
    ("ns-kube-system", "Namespace", {"metadata.name": "kube-system"}),
    ("cm-binary", "ConfigMap", {"binaryData": {"logo.png": "iVBORw0KGgo="}}),
    ("node-event-in-default", "Event", {"involvedObject": {"kind": "Node", "name": "node-1"}}),
    ("endpoints-loopback", "Endpoints", {"subsets[0].addresses[0].ip": "127.10.1.5"}),
    (
        "endpoints-not-ready-only",
        "Endpoints",
        {"subsets[0].addresses": [], "subsets[0].notReadyAddresses": [{"ip": "10.0.0.2"}]},
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepted(kind: str, changes: dict[str, Any]) -> None:
    """Variations Kubernetes accepts are accepted."""
    res, obj = with_changes(kind, changes)
    assert admitted(res, obj) == []


def test_kubectl_line_for_selector_mismatch() -> None:
    """The 422 kubectl turns into `The Deployment "bad" is invalid: ...` (kubectl-api.md §9.1)."""
    res, obj = with_changes("Deployment", {"spec.template.metadata.labels": {"app": "other"}})
    err = invalid(res, "bad", admitted(res, obj))
    assert err.code == 422
    assert err.message == (
        'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`'
    )


@pytest.mark.parametrize(
    ("res", "name", "expected"),
    [
        (r.PODS, "web-1", []),
        (r.PODS, "web.example", []),
        (r.NAMESPACES, "web.example", ['Invalid value: "web.example": must not contain dots']),
        (r.SERVICES, "web-1", []),
        (r.SERVICES, "1web", [f'Invalid value: "1web": {DNS1035}']),
        (r.PODS, "", ["Required value: name or generateName is required"]),
        (
            r.NAMESPACES,
            "a" * 64,
            [f'Invalid value: "{"a" * 64}": must be no more than 63 characters'],
        ),
    ],
)
def test_validate_name(res: Resource, name: str, expected: list[str]) -> None:
    """validate_name applies the kind's name rule (label, DNS-1035 label or subdomain)."""
    assert [c["message"] for c in validate_name(res, name)] == expected
    assert all(c["field"] == "metadata.name" for c in validate_name(res, name))
    assert DNS1123_LABEL_MAX == 63


def test_validate_name_type() -> None:
    assert validate_name(r.PODS, 5) == [
        {
            "field": "metadata.name",
            "message": "Invalid value: 5: expected string",
            "reason": TYPE_INVALID,
        }
    ]


def test_validation_does_not_mutate() -> None:
    """Validation reads only: the object stored is the object admitted."""
    for res, factory in VALID.values():
        obj = factory()
        apply_defaults(res, obj)
        before = copy.deepcopy(obj)
        validate(res, obj)
        assert obj == before


# -- updates ----------------------------------------------------------------------------------


def stored(kind: str, **changes: Any) -> tuple[Resource, Obj]:
    res, obj = with_changes(kind, changes)
    obj["metadata"]["uid"] = "6b1f7c2e-0000-4000-8000-000000000001"
    apply_defaults(res, obj)
    assert validate(res, obj) == []
    return res, obj


def updated(old: Obj, changes: dict[str, Any]) -> Obj:
    new = copy.deepcopy(old)
    for path, value in changes.items():
        setp(new, path, value)
    return new


UPDATE_CASES: list[tuple[str, str, dict[str, Any], str, str, str]] = [
    (
        "name",
        "ConfigMap",
        {"metadata.name": "other"},
        "metadata.name",
        'Invalid value: "other": field is immutable',
        INVALID,
    ),
    (
        "namespace",
        "Pod",
        {"metadata.namespace": "kube-system"},
        "metadata.namespace",
        'Invalid value: "kube-system": field is immutable',
        INVALID,
    ),
    (
        "uid",
        "Service",
        {"metadata.uid": "another"},
        "metadata.uid",
        'Invalid value: "another": field is immutable',
        INVALID,
    ),
    (
        "deployment-selector",
        "Deployment",
        {
            "spec.selector": {"matchLabels": {"app": "x"}},
            "spec.template.metadata.labels": {"app": "x"},
        },
        "spec.selector",
        'Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        INVALID,
    ),
    (
        "replicaset-selector",
        "ReplicaSet",
        {"spec.selector.matchLabels.tier": "web"},
        "spec.selector",
        'Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"app":"web", '
        '"tier":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
        INVALID,
    ),
    (
        "pod-containers-added",
        "Pod",
        {"spec.containers[1]": container(name="sidecar", ports=[], volumeMounts=[])},
        "spec.containers",
        "Forbidden: pod updates may not add or remove containers",
        FORBIDDEN,
    ),
    (
        "pod-deadline-raised",
        "Pod",
        {"spec.activeDeadlineSeconds": 100},
        "spec.activeDeadlineSeconds",
        "Invalid value: 100: must be less than or equal to previous value",
        INVALID,
    ),
    (
        "pod-toleration-removed",
        "Pod",
        {"spec.tolerations": []},
        "spec.tolerations",
        "Forbidden: existing toleration can not be modified except its tolerationSeconds",
        FORBIDDEN,
    ),
    (
        "service-clusterIP",
        "Service",
        {"spec.clusterIP": "10.96.0.11"},
        "spec.clusterIP",
        'Invalid value: "10.96.0.11": field is immutable',
        INVALID,
    ),
    (
        "configmap-immutable",
        "ConfigMap",
        {"data": {"app.conf": "x=2"}},
        "data",
        "Forbidden: field is immutable when `immutable` is set",
        FORBIDDEN,
    ),
]

_STORED_CHANGES: dict[str, dict[str, Any]] = {
    "pod-deadline-raised": {"spec.activeDeadlineSeconds": 50},
    "service-clusterIP": {"spec.clusterIP": "10.96.0.10"},
    "configmap-immutable": {"immutable": True},
}


@pytest.mark.parametrize("case", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_update_rule(case: tuple[str, str, dict[str, Any], str, str, str]) -> None:
    """Immutable fields: Kubernetes' field path and message."""
    name, kind, changes, field, message, reason = case
    res, old = stored(kind, **_STORED_CHANGES.get(name, {}))
    causes = validate_update(res, old, updated(old, changes))
    assert {"field": field, "message": message, "reason": reason} in causes, causes


def test_pod_spec_change_is_forbidden_with_kubernetes_message() -> None:
    """Changing anything but the mutable fields names them, as ValidatePodUpdate does."""
    res, old = stored("Pod")
    new = updated(old, {"spec.restartPolicy": "Never", f"{C0}.ports[0].containerPort": 81})
    [err] = validate_update(res, old, new)
    assert err["field"] == "spec"
    assert err["reason"] == FORBIDDEN
    assert err["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
        "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
        "be set to 1 if it was previously negative)"
    )
    assert "spec.restartPolicy" in err["message"]
    assert "spec.containers[0].ports[0].containerPort" in err["message"]


UPDATES_ALLOWED: list[tuple[str, str, dict[str, Any]]] = [
    ("pod-image", "Pod", {f"{C0}.image": "nginx:1.26"}),
    ("pod-labels", "Pod", {"metadata.labels": {"app": "web", "v": "2"}}),
    ("pod-deadline-set", "Pod", {"spec.activeDeadlineSeconds": 30}),
    (
        "pod-toleration-added",
        "Pod",
        {"spec.tolerations[1]": {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}},
    ),
    ("pod-toleration-seconds", "Pod", {"spec.tolerations[0].tolerationSeconds": 60}),
    ("pod-status", "Pod", {"status": {"phase": "Running"}}),
    ("uid-empty-kept", "Pod", {"metadata.uid": ""}),
    ("deployment-replicas", "Deployment", {"spec.replicas": 5}),
    ("deployment-template", "Deployment", {f"{T0}.image": "nginx:1.26"}),
    ("service-ports", "Service", {"spec.ports[0].port": 8080}),
    ("service-same-ip", "Service", {"spec.selector": {"app": "web2"}}),
    ("namespace-labels", "Namespace", {"metadata.labels.team": "a"}),
    ("configmap-data", "ConfigMap", {"data": {"app.conf": "x=2"}}),
    ("lease-renew", "Lease", {"spec.renewTime": "2025-01-01T00:00:00.000000Z"}),
]


@pytest.mark.parametrize(
    ("kind", "changes"), [c[1:] for c in UPDATES_ALLOWED], ids=[c[0] for c in UPDATES_ALLOWED]
)
def test_update_allowed(kind: str, changes: dict[str, Any]) -> None:
    res, old = stored(kind, **({"spec.clusterIP": "10.96.0.10"} if kind == "Service" else {}))
    assert validate_update(res, old, updated(old, changes)) == []


def test_service_cluster_ip_may_change_to_external_name() -> None:
    res, old = stored("Service", **{"spec.clusterIP": "10.96.0.10"})
    new = updated(
        old,
        {"spec.type": "ExternalName", "spec.externalName": "db.example.com", "spec.clusterIP": ""},
    )
    assert validate_update(res, old, new) == []


def test_update_includes_validate() -> None:
    """validate_update reports what validate reports on the new object."""
    res, old = stored("Deployment")
    new = updated(old, {"spec.replicas": -2})
    assert {
        "field": "spec.replicas",
        "message": "Invalid value: -2: must be greater than or equal to 0",
        "reason": INVALID,
    } in validate_update(res, old, new)


# -- hostile input ----------------------------------------------------------------------------

_KEYS = [
    "metadata", "name", "namespace", "labels", "annotations", "generateName", "finalizers",
    "ownerReferences", "spec", "status", "containers", "initContainers", "image", "ports",
    "containerPort", "hostPort", "protocol", "env", "value", "valueFrom", "fieldRef",
    "resources", "limits", "requests", "cpu", "memory", "livenessProbe", "readinessProbe",
    "httpGet", "tcpSocket", "exec", "command", "port", "targetPort", "nodePort", "selector",
    "matchLabels", "matchExpressions", "key", "operator", "values", "template", "replicas",
    "strategy", "type", "rollingUpdate", "maxSurge", "maxUnavailable", "restartPolicy",
    "tolerations", "effect", "volumes", "volumeMounts", "data", "binaryData", "taints",
    "capacity", "allocatable", "involvedObject", "reason", "subsets", "addresses", "ip",
    "clusterIP", "externalName", "leaseDurationSeconds", "holderIdentity", "uid", "controller",
]  # fmt: skip
_STRINGS = [
    "", "x", "None", "Always", "TCP", "In", "Exists", "RollingUpdate", "Recreate", "NodePort",
    "ExternalName", "25%", "100m", "128Mi", "-1", "1e999999", "web", "Web_1", "..", "a/b/c",
    "10.0.0.1", "\x00", "\u2603", "é" * 70,
]  # fmt: skip


def junk(rng: random.Random, depth: int) -> Any:
    """A random JSON value whose keys are the field names validation looks at."""
    choice = rng.randrange(10 if depth > 0 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, 1, -1, 80, 70000, 2**31, -(2**63) - 1, 2**70])
    if choice == 3:
        return rng.choice([0.5, -1.5, 1e300, float("inf")])
    if choice in (4, 5):
        return rng.choice(_STRINGS)
    if choice in (6, 7):
        return [junk(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): junk(rng, depth - 1) for _ in range(rng.randrange(5))}


def mutate(rng: random.Random, obj: Any, depth: int = 0) -> None:
    """Replace one random subtree of a valid object with junk."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(list(obj))
        if rng.random() < 0.3 or not isinstance(obj[key], (dict, list)) or depth > 8:
            obj[key] = junk(rng, 4)
        else:
            mutate(rng, obj[key], depth + 1)
    elif isinstance(obj, list) and obj:
        index = rng.randrange(len(obj))
        if rng.random() < 0.3 or not isinstance(obj[index], (dict, list)):
            obj[index] = junk(rng, 4)
        else:
            mutate(rng, obj[index], depth + 1)


def well_formed(causes: object) -> bool:
    return isinstance(causes, list) and all(
        isinstance(c, dict)
        and set(c) == {"field", "message", "reason"}
        and all(isinstance(v, str) for v in c.values())
        for c in causes
    )


@pytest.mark.parametrize("kind", list(VALID))
def test_fuzz_never_raises(kind: str) -> None:
    """Random junk and randomly broken valid objects: defaulting and validation (create and
    update) return causes and never raise."""
    res, factory = VALID[kind]
    rng = random.Random(f"kube-validation-{kind}")
    old = factory()
    apply_defaults(res, old)
    for i in range(400):
        if i % 2:
            obj = factory()
            for _ in range(rng.randrange(1, 4)):
                mutate(rng, obj)
        else:
            obj = junk(rng, 6)
            if isinstance(obj, dict) and rng.random() < 0.5:
                obj.setdefault("metadata", {"name": "x", "namespace": "default"})
        if isinstance(obj, dict):
            apply_defaults(res, obj)
        assert well_formed(validate(res, obj))
        assert well_formed(validate_update(res, old, obj))
        assert well_formed(validate_update(res, obj, old) if isinstance(obj, dict) else [])


def test_deeply_nested_input_is_a_cause() -> None:
    """Nesting deeper than the interpreter can recurse is reported, not raised."""
    deep: Any = "x"
    for _ in range(5000):
        deep = {"x": deep}
    res, old = stored("Pod")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["securityContext"] = deep
    apply_defaults(res, new)
    assert well_formed(validate(res, new))
    causes = validate_update(res, old, new)
    assert well_formed(causes)
    assert [c["message"] for c in causes] == [
        "Invalid value: the object is nested too deeply to be validated"
    ]
