"""Scheduler and controllers on a real 3-master cluster with 3 fake workers (demo timers):
Deployments become ReplicaSets and Pods spread over the nodes, rolling updates stay within
their bounds, rollback reuses the old ReplicaSet, a dead node's pods come back elsewhere,
the controller-manager survives its master's death, and a paused ex-leader's write is
fenced off (and, with fencing switched off, doubles a pod: the test can fail).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubectl import kubectl_binary, run_kubectl
from kubernetes import client

from controlplane.client.rest import APIStatusError, RESTClient
from controlplane.pki import pki_paths

from .cluster import Cluster, running_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

Obj = dict[str, Any]
NS = "default"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
REPLICASETS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
PODS = f"/api/v1/namespaces/{NS}/pods"
EVENTS = f"/api/v1/namespaces/{NS}/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("controllers")
    hold = root / "hold-{name}"
    with running_cluster(
        root,
        preferred_octet=67,
        workers=3,
        env={"KUBELAB_TEST_HOLD_WRITES_FILE": str(hold)},
    ) as c:
        yield c


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> RESTClient:
    return RESTClient.for_cluster(cluster.cfg, timeout=10.0)


def deployment(name: str, replicas: int, image: str = "kubelab/busybox:1", **strategy: Any) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": image,
                        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                    }
                ]
            },
        },
    }
    if strategy:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def pods_of(api: RESTClient, app: str) -> list[Obj]:
    items: list[Obj] = api.get_json(PODS, query={"labelSelector": f"app={app}"})["items"]
    return items


def live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def running(pods: list[Obj]) -> list[Obj]:
    return [p for p in live(pods) if p.get("status", {}).get("phase") == "Running"]


def ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def wait_running(api: RESTClient, app: str, n: int, timeout: float = 60) -> list[Obj]:
    def probe() -> list[Obj] | None:
        pods = running(pods_of(api, app))
        return pods if len(pods) == n and len(live(pods_of(api, app))) == n else None

    return wait_for(
        f"{n} Running pods of {app}",
        probe,
        timeout,
        seen=lambda: [
            (p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"))
            for p in pods_of(api, app)
        ],
    )


def nodes_ready(api: RESTClient) -> dict[str, bool]:
    out = {}
    for node in api.get_json("/api/v1/nodes")["items"]:
        conds = node.get("status", {}).get("conditions") or []
        out[node["metadata"]["name"]] = any(
            c["type"] == "Ready" and c["status"] == "True" for c in conds
        )
    return out


def modify(api: RESTClient, path: str, change: Callable[[Obj], None]) -> Obj:
    """GET, change, PUT with the resourceVersion read; again on a conflict (the
    controllers write the same objects), as kubectl does."""
    for _ in range(10):
        obj: Obj = api.get_json(path)
        change(obj)
        try:
            out: Obj = api.request("PUT", path, body=obj).json()
            return out
        except APIStatusError as e:
            if e.code != 409:
                raise
    raise AssertionError(f"{path}: still conflicting after 10 attempts")


def scale(api: RESTClient, name: str, replicas: int) -> None:
    modify(api, f"{DEPLOYMENTS}/{name}", lambda d: d["spec"].update(replicas=replicas))


def lease_holder(api: RESTClient, name: str) -> str:
    lease = api.get_json(f"{LEASES}/{name}")
    holder: str = lease["spec"]["holderIdentity"]
    return holder


def master_of(identity: str) -> str:
    """Managers' identities are `<master>_<uuid>`."""
    return identity.split("_", 1)[0]


def test_nodes_register_ready(api: RESTClient) -> None:
    states = wait_for(
        "3 Ready nodes",
        lambda: (
            nodes_ready(api)
            if all(nodes_ready(api).values()) and len(nodes_ready(api)) == 3
            else None
        ),
        60,
    )
    assert sorted(states) == ["worker-1", "worker-2", "worker-3"]


def test_deployment_of_5_runs_spread_over_3_nodes(
    api: RESTClient, summary: Callable[[str, str], None]
) -> None:
    t0 = time.monotonic()
    api.request("POST", DEPLOYMENTS, body=deployment("spread", 5))
    pods = wait_running(api, "spread", 5)
    took = time.monotonic() - t0
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
    assert sorted(per_node.values()) == [1, 2, 2], per_node
    assert all(p["status"].get("podIP") for p in pods)
    rss = api.get_json(REPLICASETS, query={"labelSelector": "app=spread"})["items"]
    assert len(rss) == 1 and rss[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    summary(
        "controllers",
        f"Deployment of 5 on 3 fake nodes: all Running in {took:.1f} s, "
        f"spread {sorted(per_node.values())}",
    )


def test_rolling_update_stays_within_bounds(api: RESTClient) -> None:
    name, replicas = "rolling", 6
    api.request("POST", DEPLOYMENTS, body=deployment(name, replicas, maxSurge=1, maxUnavailable=1))
    wait_running(api, name, replicas)
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pods = live(pods_of(api, name))
            samples.append((len(pods), sum(1 for p in pods if ready(p))))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        modify(
            api,
            f"{DEPLOYMENTS}/{name}",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
                image="kubelab/busybox:2"
            ),
        )

        def done() -> bool | None:
            d = api.get_json(f"{DEPLOYMENTS}/{name}")
            st = d.get("status", {})
            pods = running(pods_of(api, name))
            images = {p["spec"]["containers"][0]["image"] for p in pods}
            ok = (
                st.get("observedGeneration") == d["metadata"]["generation"]
                and st.get("updatedReplicas") == replicas
                and st.get("availableReplicas") == replicas
                and len(pods) == replicas
                and images == {"kubelab/busybox:2"}
            )
            return True if ok else None

        wait_for("the rollout to finish", done, 90)
    finally:
        stop.set()
        sampler.join()
    assert samples
    assert max(total for total, _ in samples) <= replicas + 1, samples
    assert min(avail for _, avail in samples) >= replicas - 1, samples


def test_rollback_reuses_the_old_replicaset(
    cluster: Cluster, api: RESTClient, tmp_path: Path
) -> None:
    name = "rolling"  # rolled from busybox:1 to busybox:2 above
    before = {
        rs["metadata"]["name"]
        for rs in api.get_json(REPLICASETS, query={"labelSelector": f"app={name}"})["items"]
    }
    assert len(before) == 2
    kubectl = kubectl_binary("1.33")
    proc = run_kubectl(
        kubectl, cluster.cfg.kubeconfig, "rollout", "undo", f"deployment/{name}", cache_dir=tmp_path
    )
    assert proc.returncode == 0, proc.stderr

    def rolled_back() -> list[Obj] | None:
        pods = running(pods_of(api, name))
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        return pods if images == {"kubelab/busybox:1"} and len(pods) == 6 else None

    wait_for("the rollback to finish", rolled_back, 90)
    rss = api.get_json(REPLICASETS, query={"labelSelector": f"app={name}"})["items"]
    assert {rs["metadata"]["name"] for rs in rss} == before  # no new ReplicaSet
    by_revision = sorted(
        rss, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    )
    newest = by_revision[-1]
    assert newest["spec"]["template"]["spec"]["containers"][0]["image"] == "kubelab/busybox:1"
    assert newest["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    status = run_kubectl(
        kubectl,
        cluster.cfg.kubeconfig,
        "rollout",
        "status",
        f"deployment/{name}",
        "--timeout=60s",
        cache_dir=tmp_path,
    )
    assert f'deployment "{name}" successfully rolled out' in status.stdout, status.stderr


def set_taints(api: RESTClient, taints: list[Obj]) -> None:
    for listed in api.get_json("/api/v1/nodes")["items"]:
        path = f"/api/v1/nodes/{listed['metadata']['name']}"
        modify(api, path, lambda node: node["spec"].update(taints=taints))


def failed_scheduling_message(api: RESTClient, pod: Obj) -> str:
    name = pod["metadata"]["name"]
    api.request("POST", PODS, body=pod)
    try:

        def message() -> str | None:
            events = api.get_json(
                EVENTS,
                query={"fieldSelector": f"involvedObject.name={name},reason=FailedScheduling"},
            )["items"]
            return str(events[0]["message"]) if events else None

        return wait_for(f"a FailedScheduling event for {name}", message, 30)
    finally:
        api.request("DELETE", f"{PODS}/{name}")


def small_pod(name: str, cpu: str = "100m") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": "c", "image": "kubelab/busybox", "resources": {"requests": {"cpu": cpu}}}
            ]
        },
    }


def test_failed_scheduling_says_why(api: RESTClient) -> None:
    text = failed_scheduling_message(api, small_pod("too-big", cpu="64"))
    assert text.startswith("0/3 nodes are available: 3 Insufficient cpu."), text
    set_taints(api, [{"key": "dedicated", "value": "lab", "effect": "NoSchedule"}])
    try:
        text = failed_scheduling_message(api, small_pod("intolerant"))
    finally:
        set_taints(api, [])
    assert text.startswith(
        "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: lab}."
    ), text


def test_pausing_the_leader_master_leaves_nodes_ready(cluster: Cluster, api: RESTClient) -> None:
    leader = cluster.heal()
    cluster.cli("pause", leader.name)
    try:
        deadline = time.monotonic() + 2.5 * cluster.cfg.timers.node_monitor_grace_s
        while time.monotonic() < deadline:
            states = nodes_ready(api)
            assert all(states.values()), (
                f"a node went NotReady while {leader.name} was paused: {states}"
            )
            time.sleep(0.5)
    finally:
        cluster.cli("resume", leader.name)


def test_controller_manager_survives_its_master(cluster: Cluster, api: RESTClient) -> None:
    cluster.heal()
    holder = master_of(lease_holder(api, "kube-controller-manager"))
    cluster.cli("kill", holder)
    try:
        scale(api, "spread", 7)
        wait_running(api, "spread", 7, timeout=60)
        assert master_of(lease_holder(api, "kube-controller-manager")) != holder
    finally:
        cluster.heal()


def test_a_dead_nodes_pods_come_back_elsewhere(
    cluster: Cluster, api: RESTClient, summary: Callable[[str, str], None]
) -> None:
    wait_running(api, "spread", 7)
    victims = [
        p["metadata"]["name"]
        for p in running(pods_of(api, "spread"))
        if p["spec"]["nodeName"] == "worker-1"
    ]
    assert victims
    t0 = time.monotonic()
    cluster.cli("kill", "worker-1")
    try:

        def replaced() -> list[Obj] | None:
            pods = running(pods_of(api, "spread"))
            elsewhere = [p for p in pods if p["spec"]["nodeName"] != "worker-1"]
            return elsewhere if len(elsewhere) == 7 else None

        wait_for("7 Running pods off worker-1", replaced, 90)
        took = time.monotonic() - t0
        timers = cluster.cfg.timers
        summary(
            "controllers",
            f"worker-1 killed: its {len(victims)} pods Running elsewhere after {took:.1f} s "
            f"(grace {timers.node_monitor_grace_s:g} s + toleration {timers.toleration_s:g} s)",
        )
        assert not nodes_ready(api)["worker-1"]
    finally:
        cluster.cli("start", "worker-1")
    wait_for("worker-1 Ready again", lambda: True if nodes_ready(api).get("worker-1") else None, 60)
    # The pods that were Terminating on the dead node are finished by it when it returns.
    wait_for(
        "the old pods gone",
        lambda: (
            True
            if not ({p["metadata"]["name"] for p in pods_of(api, "spread")} & set(victims))
            else None
        ),
        60,
    )


def created_pods(api: RESTClient, rs_prefix: str, since_rv: str, timeout: float) -> set[str]:
    """Names of pods created (ADDED) from revision `since_rv` on, for `timeout` seconds."""
    names: set[str] = set()
    deadline = time.monotonic() + timeout
    for ev in api.stream(
        PODS,
        {"watch": "true", "resourceVersion": since_rv, "timeoutSeconds": str(int(timeout))},
        read_timeout=timeout + 5,
    ):
        if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"].startswith(rs_prefix):
            names.add(ev["object"]["metadata"]["name"])
        if time.monotonic() > deadline:
            break
    return names


def test_a_paused_ex_leader_cannot_write(
    cluster: Cluster, api: RESTClient, tmp_path: Path, summary: Callable[[str, str], None]
) -> None:
    """The holder of the controller Lease has a pod create pending (held by a test hook)
    when it is paused; another master takes over and creates the pod; when the old holder
    resumes, its stale write is refused by the fence: one pod, not two."""
    doubled = paused_ex_leader_run(cluster, api, "fenced")
    summary(
        "controllers",
        f"paused ex-leader with a pending create: {doubled} extra pod(s) with fencing",
    )
    assert doubled == 0


def replicaset(name: str, replicas: int) -> Obj:
    d = deployment(name, replicas)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": d["spec"],
    }


def paused_ex_leader_run(cluster: Cluster, api: RESTClient, name: str) -> int:
    """A bare ReplicaSet scaled from 1 to 2 while the controller-manager holding the Lease
    has its writes held (the pod create: a write with no resourceVersion to protect it),
    then paused until another master leads and creates the pod; returns how many pods
    more than the one needed were created."""
    cluster.heal()
    api.request("POST", REPLICASETS, body=replicaset(name, 1))
    wait_running(api, name, 1)
    holder = master_of(lease_holder(api, "kube-controller-manager"))
    hold = Path(cluster.env["KUBELAB_TEST_HOLD_WRITES_FILE"].format(name=holder))
    held = hold.with_name(hold.name + ".held")
    held.unlink(missing_ok=True)
    hold.touch()
    rv = api.get_json(PODS)["metadata"]["resourceVersion"]
    try:
        modify(api, f"{REPLICASETS}/{name}", lambda rs: rs["spec"].update(replicas=2))
        wait_for(
            "the holder's pod create to be held",
            lambda: True if held.exists() and "create pods" in held.read_text() else None,
            30,
        )
        cluster.cli("pause", holder)
        wait_for(
            "another controller-manager",
            lambda: (
                True if master_of(lease_holder(api, "kube-controller-manager")) != holder else None
            ),
            30,
        )
        wait_running(api, name, 2, timeout=30)
        hold.unlink()  # released while paused: the held create goes out on SIGCONT
    finally:
        hold.unlink(missing_ok=True)
        cluster.cli("resume", holder)
    created = created_pods(api, f"{name}-", rv, timeout=6.0)
    wait_running(api, name, 2, timeout=30)
    return len(created) - 1


@pytest.mark.parametrize("unused", [None])
def test_without_fencing_the_same_run_doubles(
    unused: None, tmp_path_factory: pytest.TempPathFactory, summary: Callable[[str, str], None]
) -> None:
    root = tmp_path_factory.mktemp("nofence")
    env = {
        "KUBELAB_TEST_HOLD_WRITES_FILE": str(root / "hold-{name}"),
        "KUBELAB_UNSAFE_NO_FENCING": "1",
    }
    with running_cluster(root, preferred_octet=68, workers=1, env=env) as c:
        api = RESTClient.for_cluster(c.cfg, timeout=10.0)
        wait_for(
            "1 Ready node",
            lambda: True if all(nodes_ready(api).values()) and nodes_ready(api) else None,
            60,
        )
        doubled = paused_ex_leader_run(c, api, "unfenced")
    summary(
        "controllers",
        f"the same run with fencing off: {doubled} extra pod(s) (the double fencing prevents)",
    )
    assert doubled >= 1


def test_official_python_client_reads_nodes_and_running_pods(
    cluster: Cluster, api: RESTClient
) -> None:
    """The Python client's models require many fields (nodeInfo's ten, containerStatuses'
    imageID...): one missing field breaks a whole list call."""
    api.request("POST", DEPLOYMENTS, body=deployment("pyclient", 2))
    wait_running(api, "pyclient", 2)
    conf = client.Configuration()
    m = cluster.spec(cluster.names[0])
    conf.host = f"https://{m.ip}:{m.rest_port}"
    conf.ssl_ca_cert = str(pki_paths(cluster.cfg).ca_cert)
    conf.api_key = {"authorization": f"Bearer {cluster.token}"}
    with client.ApiClient(conf) as api_client:
        core = client.CoreV1Api(api_client)
        nodes = core.list_node().items
        assert sorted(n.metadata.name for n in nodes) == ["worker-1", "worker-2", "worker-3"]
        assert all(n.status.node_info.kubelet_version for n in nodes)
        pods = core.list_pod_for_all_namespaces(label_selector="app=pyclient").items
        running_pods = [p for p in pods if p.status.phase == "Running"]
        assert len(running_pods) == 2
        assert all(p.status.container_statuses[0].ready for p in running_pods)
        events = core.list_namespaced_event(NS).items
        sources = {(e.reason, e.source.component) for e in events if e.source}
        assert ("Scheduled", "default-scheduler") in sources, sources
        assert ("SuccessfulCreate", "replicaset-controller") in sources, sources
        assert ("ScalingReplicaSet", "deployment-controller") in sources, sources
