"""The Endpoints controller: the computation as tables (ready and not-ready addresses,
named ports, terminating pods, services without a selector), then the controller in
process over the gRPC API on a `LocalBackend` store."""

from __future__ import annotations

from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.resources import ResourceClient
from controlplane.controllers.endpoints import (
    HEADLESS_LABEL,
    EndpointsController,
    desired_endpoints,
    endpoint_subsets,
    endpoints_changed,
    find_port,
    pod_changed,
    pod_in_endpoints,
    service_selector,
)
from controlplane.kube.errors import APIError
from controlplane.kube.resources import ENDPOINTS, PODS, SERVICES

from .test_nodelifecycle import pod_obj, running, running_status, set_pod_status

Obj = dict[str, Any]


def service(
    name: str = "web",
    selector: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
    **spec: Any,
) -> Obj:
    s: Obj = {"ports": ports if ports is not None else [{"port": 80, "targetPort": 8080}], **spec}
    if selector is not None:
        s["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"tier": "front"}},
        "spec": s,
    }


def pod(
    name: str,
    ip: str = "",
    ready: bool = True,
    *,
    node: str = "worker-1",
    ports: list[Obj] | None = None,
    deleting: bool = False,
    **spec: Any,
) -> Obj:
    p = pod_obj(name, node, ports=ports)
    p["metadata"]["uid"] = f"uid-{name}"
    p["spec"].update(spec)
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    p["status"] = running_status(ip, ready) if ip else {"phase": "Pending"}
    return p


def addr(name: str, ip: str, node: str = "worker-1") -> Obj:
    return {
        "ip": ip,
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"},
    }


HTTP = [{"name": "http", "containerPort": 8080}]
ALT = [{"name": "http", "containerPort": 9090}]


# -- decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_selector", "want"),
    [(None, None), ({}, None), ({"app": "web"}, {"app": "web"})],
    ids=["absent", "empty", "set"],
)
def test_service_selector(spec_selector: dict[str, str] | None, want: Any) -> None:
    """No selector (or an empty one): the Endpoints are someone else's."""
    assert service_selector(service(selector=spec_selector)) == want


@pytest.mark.parametrize(
    ("port", "container_ports", "want"),
    [
        pytest.param({"port": 80, "targetPort": 8080}, None, 8080, id="number"),
        pytest.param({"port": 80}, None, 80, id="defaults-to-port"),
        pytest.param({"port": 80, "targetPort": "8081"}, None, 8081, id="digits"),
        pytest.param({"port": 80, "targetPort": "http"}, HTTP, 8080, id="named"),
        pytest.param({"port": 80, "targetPort": "http"}, ALT, 9090, id="named-per-pod"),
        pytest.param({"port": 80, "targetPort": "http"}, None, None, id="named-missing"),
        pytest.param(
            {"port": 80, "targetPort": "http", "protocol": "UDP"}, HTTP, None, id="other-protocol"
        ),
    ],
)
def test_find_port(port: Obj, container_ports: list[Obj] | None, want: int | None) -> None:
    """podutil.FindPort: a number as is, a name among the pod's container ports."""
    assert find_port(pod("p", "10.0.0.1", ports=container_ports), port) == want


@pytest.mark.parametrize(
    ("p", "include_terminating", "want"),
    [
        pytest.param(pod("p", "10.0.0.1"), False, True, id="running"),
        pytest.param(pod("p", "10.0.0.1", ready=False), False, True, id="not-ready"),
        pytest.param(pod("p"), False, False, id="no-ip"),
        pytest.param(pod("p", "10.0.0.1", deleting=True), False, False, id="terminating"),
        pytest.param(pod("p", "10.0.0.1", deleting=True), True, True, id="terminating-published"),
        pytest.param(
            {
                **pod("p", "10.0.0.1", restartPolicy="Never"),
                "status": {"phase": "Succeeded", "podIP": "10.0.0.1"},
            },
            False,
            False,
            id="never-succeeded",
        ),
        pytest.param(
            {
                **pod("p", "10.0.0.1", restartPolicy="OnFailure"),
                "status": {"phase": "Failed", "podIP": "10.0.0.1"},
            },
            False,
            True,
            id="onfailure-failed-restarts",
        ),
    ],
)
def test_pod_in_endpoints(p: Obj, include_terminating: bool, want: bool) -> None:
    """ShouldPodBeInEndpoints."""
    assert pod_in_endpoints(p, include_terminating) is want


def test_ready_and_not_ready_sorted_by_ip() -> None:
    """Ready pods in addresses, the others in notReadyAddresses, each sorted by IP
    (numerically); terminating pods and pods without an IP are out."""
    pods = [
        pod("c", "10.0.0.10"),
        pod("a", "10.0.0.9"),
        pod("b", "10.0.0.3", ready=False),
        pod("gone", "10.0.0.4", deleting=True),
        pod("pending"),
    ]
    assert endpoint_subsets(service(selector={"app": "web"}), pods) == [
        {
            "addresses": [addr("a", "10.0.0.9"), addr("c", "10.0.0.10")],
            "notReadyAddresses": [addr("b", "10.0.0.3")],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]


def test_named_ports_resolve_per_pod() -> None:
    """A named targetPort is looked up in each pod: pods numbering it differently land in
    different subsets; a pod without it is left out."""
    svc = service(
        selector={"app": "web"}, ports=[{"name": "web", "port": 80, "targetPort": "http"}]
    )
    pods = [pod("a", "10.0.0.1", ports=HTTP), pod("b", "10.0.0.2", ports=ALT), pod("c", "10.0.0.3")]
    assert endpoint_subsets(svc, pods) == [
        {
            "addresses": [addr("a", "10.0.0.1")],
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
        },
        {
            "addresses": [addr("b", "10.0.0.2")],
            "ports": [{"name": "web", "port": 9090, "protocol": "TCP"}],
        },
    ]


def test_ports_with_the_same_addresses_share_a_subset() -> None:
    """RepackSubsets: one subset per set of addresses, its ports sorted."""
    svc = service(
        selector={"app": "web"},
        ports=[
            {"name": "metrics", "port": 9100, "targetPort": 9100},
            {"name": "http", "port": 80, "targetPort": 8080},
        ],
    )
    pods = [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")]
    assert endpoint_subsets(svc, pods) == [
        {
            "addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")],
            "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "metrics", "port": 9100, "protocol": "TCP"},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("cluster_ip", "want"),
    [("None", [{"addresses": [addr("a", "10.0.0.1")]}]), ("10.96.0.10", [])],
    ids=["headless", "portless-clusterip"],
)
def test_services_without_ports(cluster_ip: str, want: list[Obj]) -> None:
    """Only a headless Service may list addresses without ports."""
    svc = service(selector={"app": "web"}, ports=[], clusterIP=cluster_ip)
    assert endpoint_subsets(svc, [pod("a", "10.0.0.1")]) == want


def test_publish_not_ready_addresses() -> None:
    """publishNotReadyAddresses: every pod with an IP is an address, terminating ones too."""
    svc = service(selector={"app": "web"}, publishNotReadyAddresses=True)
    pods = [pod("a", "10.0.0.1", ready=False), pod("b", "10.0.0.2", deleting=True)]
    assert endpoint_subsets(svc, pods)[0]["addresses"] == [
        addr("a", "10.0.0.1"),
        addr("b", "10.0.0.2"),
    ]


def test_hostname_for_the_pods_subdomain() -> None:
    svc = service(selector={"app": "web"})
    p = pod("a", "10.0.0.1", hostname="a-0", subdomain="web")
    assert endpoint_subsets(svc, [p])[0]["addresses"][0]["hostname"] == "a-0"


def test_desired_endpoints_labels() -> None:
    """The Endpoints carry the Service's labels, plus the headless label when headless."""
    assert desired_endpoints(service(selector={"a": "b"}), [])["metadata"] == {
        "name": "web",
        "namespace": "default",
        "labels": {"tier": "front"},
    }
    headless = desired_endpoints(service(selector={"a": "b"}, clusterIP="None"), [])
    assert headless["metadata"]["labels"] == {"tier": "front", HEADLESS_LABEL: ""}


@pytest.mark.parametrize(
    ("current", "changed"),
    [
        ({"metadata": {"labels": {"tier": "front"}}, "subsets": []}, False),
        ({"metadata": {"labels": {"tier": "front"}}}, False),
        ({"metadata": {}, "subsets": []}, True),
        ({"metadata": {"labels": {"tier": "front"}}, "subsets": [{"addresses": []}]}, True),
    ],
    ids=["same", "no-subsets-key", "labels", "subsets"],
)
def test_endpoints_changed(current: Obj, changed: bool) -> None:
    """Only a change is written."""
    assert (
        endpoints_changed(current, desired_endpoints(service(selector={"a": "b"}), [])) is changed
    )


@pytest.mark.parametrize(
    ("new", "changed"),
    [
        (pod("a", "10.0.0.1"), False),
        (pod("a", "10.0.0.2"), True),
        (pod("a", "10.0.0.1", ready=False), True),
        (pod("a", "10.0.0.1", deleting=True), True),
        (
            {**pod("a", "10.0.0.1"), "metadata": {**pod("a")["metadata"], "labels": {"x": "y"}}},
            True,
        ),
    ],
    ids=["same", "ip", "readiness", "deleting", "labels"],
)
def test_pod_changed(new: Obj, changed: bool) -> None:
    """Pod updates that cannot change Endpoints are not queued."""
    assert pod_changed(pod("a", "10.0.0.1"), new) is changed


# -- in process ------------------------------------------------------------------------------------


async def endpoints_of(client: ResourceClient, name: str) -> Obj | None:
    try:
        return await client.get(ENDPOINTS, "default", name)
    except APIError as e:
        if e.code == 404:
            return None
        raise


def ips(ep: Obj | None, field: str = "addresses") -> list[str]:
    if ep is None:
        return []
    return [a["ip"] for s in ep.get("subsets") or [] for a in s.get(field) or []]


def test_endpoints_follow_pod_readiness() -> None:
    """A Service's Endpoints list its ready pods and, apart, the not-ready ones; a pod
    turning ready moves over, a terminating one leaves; a Service without a selector
    keeps its hand-made Endpoints; deleting a Service deletes its Endpoints."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            svc = service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": "http"}])
            await store.create(SERVICES, "default", svc)
            await store.create(SERVICES, "default", service("manual"))
            manual = {
                "metadata": {"name": "manual"},
                "subsets": [{"addresses": [{"ip": "192.168.1.1"}], "ports": [{"port": 5432}]}],
            }
            await store.create(ENDPOINTS, "default", manual)
            for name, ip, ready in (("web-1", "10.0.0.2", True), ("web-2", "10.0.0.1", False)):
                await store.create(PODS, "default", pod_obj(name, "worker-1", ports=HTTP))
                await set_pod_status(store, name, running_status(ip, ready))
            await store.create(
                PODS, "default", pod_obj("db", "worker-1", labels={"app": "db"}, ports=HTTP)
            )
            await set_pod_status(store, "db", running_status("10.0.0.9"))
            client = c.client()
            async with running(client, [EndpointsController()]):

                async def shows(ready: list[str], not_ready: list[str]) -> bool:
                    ep = await endpoints_of(client, "web")
                    return ips(ep) == ready and ips(ep, "notReadyAddresses") == not_ready

                await eventually(
                    lambda: shows(["10.0.0.2"], ["10.0.0.1"]), "web-1 ready, web-2 not"
                )
                ep = await endpoints_of(client, "web")
                assert ep is not None
                assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
                assert ep["subsets"][0]["addresses"][0]["targetRef"]["name"] == "web-1"

                await set_pod_status(store, "web-2", running_status("10.0.0.1", True))
                await eventually(lambda: shows(["10.0.0.1", "10.0.0.2"], []), "web-2 ready")

                await store.delete(PODS, "default", "web-1")  # bound: it stays, Terminating
                await eventually(lambda: shows(["10.0.0.1"], []), "web-1 terminating, dropped")

                assert ips(await endpoints_of(client, "manual")) == ["192.168.1.1"]

                await store.delete(SERVICES, "default", "web")

                async def gone() -> bool:
                    return await endpoints_of(client, "web") is None

                await eventually(gone, "the Endpoints deleted with the Service")
                assert ips(await endpoints_of(client, "manual")) == ["192.168.1.1"]

    run(body())
