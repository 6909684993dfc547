"""Kubernetes defaulting (SetDefaults_* of pkg/apis/core/v1 and apps/v1)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from controlplane.kube import resources as r
from controlplane.kube.defaults import (
    apply_defaults,
    default_pod_template,
    image_tag,
    normalize_template,
)
from controlplane.kube.resources import Resource

Obj = dict[str, Any]
ABSENT = object()


def get(obj: Any, path: str) -> Any:
    """`obj` at `a.b[0].c`, or ABSENT."""
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if token.startswith("["):
            index = int(token[1:-1])
            if not isinstance(obj, list) or index >= len(obj):
                return ABSENT
            obj = obj[index]
        else:
            if not isinstance(obj, dict) or token not in obj:
                return ABSENT
            obj = obj[token]
    return obj


def container(**extra: Any) -> Obj:
    return {"name": "web", "image": "nginx:1.25", **extra}


def pod(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [container()], **spec},
    }


def deployment(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [container()]},
            },
            **spec,
        },
    }


def service(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}], **spec},
    }


def defaulted(res: Resource, obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    apply_defaults(res, out)
    return out


CASES: list[tuple[str, Resource, Obj, str, Any]] = [
    # Pod: SetDefaults_PodSpec, SetDefaults_Pod, SetDefaults_Container, probes, ports.
    ("pod-restartPolicy", r.PODS, pod(), "spec.restartPolicy", "Always"),
    ("pod-grace", r.PODS, pod(), "spec.terminationGracePeriodSeconds", 30),
    ("pod-dnsPolicy", r.PODS, pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("pod-scheduler", r.PODS, pod(), "spec.schedulerName", "default-scheduler"),
    ("pod-securityContext", r.PODS, pod(), "spec.securityContext", {}),
    ("pod-serviceLinks", r.PODS, pod(), "spec.enableServiceLinks", True),
    ("pod-no-status", r.PODS, pod(), "status", ABSENT),
    ("pod-no-preemption", r.PODS, pod(), "spec.preemptionPolicy", ABSENT),
    (
        "pod-termination-path",
        r.PODS,
        pod(),
        "spec.containers[0].terminationMessagePath",
        "/dev/termination-log",
    ),
    (
        "pod-termination-policy",
        r.PODS,
        pod(),
        "spec.containers[0].terminationMessagePolicy",
        "File",
    ),
    ("pod-resources", r.PODS, pod(), "spec.containers[0].resources", {}),
    (
        "pod-port-protocol",
        r.PODS,
        pod(containers=[container(ports=[{"containerPort": 80}])]),
        "spec.containers[0].ports[0].protocol",
        "TCP",
    ),
    (
        "pod-init-container",
        r.PODS,
        pod(initContainers=[container(name="init", image="busybox")]),
        "spec.initContainers[0].imagePullPolicy",
        "Always",
    ),
    (
        "pod-requests-from-limits",
        r.PODS,
        pod(containers=[container(resources={"limits": {"cpu": "1", "memory": "128Mi"}})]),
        "spec.containers[0].resources.requests",
        {"cpu": "1", "memory": "128Mi"},
    ),
    (
        "pod-requests-kept",
        r.PODS,
        pod(
            containers=[container(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}})]
        ),
        "spec.containers[0].resources.requests",
        {"cpu": "500m"},
    ),
    (
        "pod-no-requests-without-limits",
        r.PODS,
        pod(containers=[container(resources={"requests": {"cpu": "1"}})]),
        "spec.containers[0].resources.limits",
        ABSENT,
    ),
    *[
        (
            f"probe-{key}",
            r.PODS,
            pod(containers=[container(livenessProbe={"tcpSocket": {"port": 80}})]),
            f"spec.containers[0].livenessProbe.{key}",
            value,
        )
        for key, value in (
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("successThreshold", 1),
            ("failureThreshold", 3),
        )
    ],
    (
        "probe-zero-is-unset",
        r.PODS,
        pod(
            containers=[container(readinessProbe={"exec": {"command": ["t"]}, "periodSeconds": 0})]
        ),
        "spec.containers[0].readinessProbe.periodSeconds",
        10,
    ),
    (
        "probe-httpGet-scheme",
        r.PODS,
        pod(containers=[container(readinessProbe={"httpGet": {"port": 80}})]),
        "spec.containers[0].readinessProbe.httpGet.scheme",
        "HTTP",
    ),
    (
        "probe-httpGet-path",
        r.PODS,
        pod(containers=[container(startupProbe={"httpGet": {"port": "http"}})]),
        "spec.containers[0].startupProbe.httpGet.path",
        "/",
    ),
    (
        "lifecycle-httpGet",
        r.PODS,
        pod(containers=[container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]),
        "spec.containers[0].lifecycle.preStop.httpGet.path",
        "/",
    ),
    (
        "volume-emptyDir",
        r.PODS,
        pod(volumes=[{"name": "scratch"}]),
        "spec.volumes[0].emptyDir",
        {},
    ),
    (
        "volume-configMap-mode",
        r.PODS,
        pod(volumes=[{"name": "cfg", "configMap": {"name": "c"}}]),
        "spec.volumes[0].configMap.defaultMode",
        420,
    ),
    (
        "env-fieldRef-apiVersion",
        r.PODS,
        pod(
            containers=[
                container(env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}])
            ]
        ),
        "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion",
        "v1",
    ),
    (
        "pod-hostNetwork-hostPort",
        r.PODS,
        pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 8080}])]),
        "spec.containers[0].ports[0].hostPort",
        8080,
    ),
    (
        "pod-no-image-no-tag",
        r.PODS,
        {"spec": {"containers": [{"name": "web"}]}},
        "spec.containers[0].imagePullPolicy",
        "IfNotPresent",
    ),
    # explicit values are never overwritten
    ("keep-restartPolicy", r.PODS, pod(restartPolicy="Never"), "spec.restartPolicy", "Never"),
    (
        "keep-grace-zero",
        r.PODS,
        pod(terminationGracePeriodSeconds=0),
        "spec.terminationGracePeriodSeconds",
        0,
    ),
    (
        "keep-pullPolicy",
        r.PODS,
        pod(containers=[container(image="nginx", imagePullPolicy="Never")]),
        "spec.containers[0].imagePullPolicy",
        "Never",
    ),
    (
        "keep-probe-timeout",
        r.PODS,
        pod(containers=[container(livenessProbe={"tcpSocket": {"port": 80}, "timeoutSeconds": 5})]),
        "spec.containers[0].livenessProbe.timeoutSeconds",
        5,
    ),
    # Deployment: SetDefaults_Deployment and the template's pod defaults.
    ("deploy-replicas", r.DEPLOYMENTS, deployment(), "spec.replicas", 1),
    ("deploy-replicas-zero-kept", r.DEPLOYMENTS, deployment(replicas=0), "spec.replicas", 0),
    ("deploy-strategy", r.DEPLOYMENTS, deployment(), "spec.strategy.type", "RollingUpdate"),
    (
        "deploy-maxSurge",
        r.DEPLOYMENTS,
        deployment(),
        "spec.strategy.rollingUpdate.maxSurge",
        "25%",
    ),
    (
        "deploy-maxUnavailable",
        r.DEPLOYMENTS,
        deployment(),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "25%",
    ),
    (
        "deploy-maxUnavailable-zero-kept",
        r.DEPLOYMENTS,
        deployment(strategy={"rollingUpdate": {"maxUnavailable": 0}}),
        "spec.strategy.rollingUpdate",
        {"maxUnavailable": 0, "maxSurge": "25%"},
    ),
    (
        "deploy-recreate-no-rollingUpdate",
        r.DEPLOYMENTS,
        deployment(strategy={"type": "Recreate"}),
        "spec.strategy",
        {"type": "Recreate"},
    ),
    ("deploy-history", r.DEPLOYMENTS, deployment(), "spec.revisionHistoryLimit", 10),
    ("deploy-deadline", r.DEPLOYMENTS, deployment(), "spec.progressDeadlineSeconds", 600),
    (
        "deploy-template-restartPolicy",
        r.DEPLOYMENTS,
        deployment(),
        "spec.template.spec.restartPolicy",
        "Always",
    ),
    (
        "deploy-template-pullPolicy",
        r.DEPLOYMENTS,
        deployment(),
        "spec.template.spec.containers[0].imagePullPolicy",
        "IfNotPresent",
    ),
    (
        "deploy-template-no-serviceLinks",
        r.DEPLOYMENTS,
        deployment(),
        "spec.template.spec.enableServiceLinks",
        ABSENT,
    ),
    ("deploy-no-minReady", r.DEPLOYMENTS, deployment(), "spec.minReadySeconds", ABSENT),
    # ReplicaSet
    ("rs-replicas", r.REPLICASETS, deployment(), "spec.replicas", 1),
    ("rs-no-strategy", r.REPLICASETS, deployment(), "spec.strategy", ABSENT),
    (
        "rs-template-grace",
        r.REPLICASETS,
        deployment(),
        "spec.template.spec.terminationGracePeriodSeconds",
        30,
    ),
    # Service: SetDefaults_Service
    ("svc-type", r.SERVICES, service(), "spec.type", "ClusterIP"),
    ("svc-affinity", r.SERVICES, service(), "spec.sessionAffinity", "None"),
    ("svc-protocol", r.SERVICES, service(), "spec.ports[0].protocol", "TCP"),
    ("svc-targetPort", r.SERVICES, service(), "spec.ports[0].targetPort", 80),
    (
        "svc-targetPort-kept",
        r.SERVICES,
        service(ports=[{"port": 80, "targetPort": "http"}]),
        "spec.ports[0].targetPort",
        "http",
    ),
    ("svc-internal", r.SERVICES, service(), "spec.internalTrafficPolicy", "Cluster"),
    ("svc-clusterip-no-external", r.SERVICES, service(), "spec.externalTrafficPolicy", ABSENT),
    (
        "svc-nodeport-external",
        r.SERVICES,
        service(type="NodePort"),
        "spec.externalTrafficPolicy",
        "Cluster",
    ),
    (
        "svc-externalname-no-internal",
        r.SERVICES,
        service(type="ExternalName", externalName="example.com"),
        "spec.internalTrafficPolicy",
        ABSENT,
    ),
    # Namespace, Node, Endpoints
    (
        "ns-finalizers",
        r.NAMESPACES,
        {"metadata": {"name": "team"}},
        "spec.finalizers",
        ["kubernetes"],
    ),
    ("ns-phase", r.NAMESPACES, {"metadata": {"name": "team"}}, "status.phase", "Active"),
    (
        "ns-name-label",
        r.NAMESPACES,
        {"metadata": {"name": "team"}},
        "metadata.labels",
        {"kubernetes.io/metadata.name": "team"},
    ),
    (
        "node-allocatable",
        r.NODES,
        {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2", "pods": "110"}}},
        "status.allocatable",
        {"cpu": "2", "pods": "110"},
    ),
    (
        "endpoints-protocol",
        r.ENDPOINTS,
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
        "subsets[0].ports[0].protocol",
        "TCP",
    ),
]


@pytest.mark.parametrize(
    ("res", "obj", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_default(res: Resource, obj: Obj, path: str, expected: Any) -> None:
    """Each default Kubernetes applies, and only where the field is unset."""
    assert get(defaulted(res, obj), path) == expected


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("registry:5000/team/app", "latest", "Always"),
        ("registry:5000/team/app:v2", "v2", "IfNotPresent"),
        ("nginx@sha256:0123abcd", "", "IfNotPresent"),
        ("nginx:1.25@sha256:0123abcd", "1.25", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, tag: str, policy: str) -> None:
    """imagePullPolicy is Always for a `latest` (or missing) tag, else IfNotPresent."""
    assert image_tag(image) == tag
    obj = defaulted(r.PODS, pod(containers=[container(image=image)]))
    assert get(obj, "spec.containers[0].imagePullPolicy") == policy


def test_template_gets_no_pod_only_defaults() -> None:
    """Requests-from-limits and enableServiceLinks are SetDefaults_Pod, not PodTemplate."""
    template: Obj = {"spec": {"containers": [container(resources={"limits": {"cpu": "1"}})]}}
    default_pod_template(template)
    assert template["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    assert "enableServiceLinks" not in template["spec"]
    assert template["spec"]["restartPolicy"] == "Always"


def test_defaults_are_idempotent() -> None:
    """Defaulting a defaulted object changes nothing (updates re-default stored objects)."""
    for res, obj in (
        (r.PODS, pod()),
        (r.DEPLOYMENTS, deployment()),
        (r.SERVICES, service()),
        (r.NAMESPACES, {"metadata": {"name": "team"}}),
    ):
        once = defaulted(res, obj)
        assert defaulted(res, once) == once


def test_normalize_template_matches_stored() -> None:
    """The template `rollout undo` sends (creationTimestamp null, defaults or not) hashes as
    the stored one: kubectl-api.md §7.3 gotcha 13."""
    stored = defaulted(r.DEPLOYMENTS, deployment())["spec"]["template"]
    sent_back = copy.deepcopy(stored)
    sent_back["metadata"]["creationTimestamp"] = None
    raw = copy.deepcopy(deployment()["spec"]["template"])
    raw["metadata"]["creationTimestamp"] = None
    assert normalize_template(sent_back) == normalize_template(stored) == stored
    assert normalize_template(raw) == stored
    assert sent_back["metadata"]["creationTimestamp"] is None  # a copy: input untouched


def test_normalize_template_drops_empty_metadata() -> None:
    """`metadata: {creationTimestamp: null}` alone normalises to no metadata at all."""
    out = normalize_template({"metadata": {"creationTimestamp": None}, "spec": {"containers": []}})
    assert "metadata" not in out


def test_normalize_template_rejects_non_object() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        normalize_template("x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "junk",
    [
        {"spec": "x"},
        {"spec": {"containers": "x", "template": 5}},
        {"spec": {"containers": [1, None, {"ports": "x", "resources": []}]}},
        {"spec": {"template": {"spec": {"containers": [{"livenessProbe": "x"}]}}}},
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": "x"}}},
        {"spec": {"ports": [{"port": "80"}, "x"]}, "metadata": []},
        {"status": {"capacity": "x"}, "subsets": [{"ports": [7]}]},
        {"metadata": {"name": 5, "labels": "x"}},
    ],
)
def test_defaults_never_raise_on_wrong_types(junk: Obj) -> None:
    """Defaulting runs before validation and leaves wrong types for it to report."""
    for res in r.RESOURCES:
        obj = copy.deepcopy(junk)
        apply_defaults(res, obj)
    apply_defaults(r.PODS, "x")  # type: ignore[arg-type]
