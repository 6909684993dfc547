"""The Kubernetes REST API of a real 3-master cluster, driven by the real kubectl (1.33
from the machine image, 1.20 from Debian) and the official Python client.

Every kubectl call uses its own `--cache-dir` per version and test module, and passes
`--server` when the test must talk to a given master (the kubeconfig points at master-1
until the front door exists).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubectl import kubectl_binary, run_kubectl
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from controlplane.linearizability.checker import check
from controlplane.linearizability.history import OpKind
from controlplane.linearizability.recorder import Recorder
from controlplane.pki import client_ssl_context, pki_paths

from .cluster import Cluster, running_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

VERSIONS = ["1.33", "1.20"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("kubeapi"), preferred_octet=66) as c:
        yield c


class Kubectl:
    """One kubectl binary against the cluster, with its own discovery cache."""

    def __init__(self, cluster: Cluster, version: str, cache_dir: Path) -> None:
        self.cluster = cluster
        self.version = version
        self.binary = kubectl_binary(version)
        self.cache_dir = cache_dir
        self.kubeconfig = cluster.cfg.kubeconfig

    def server(self, master: str) -> str:
        m = self.cluster.spec(master)
        return f"https://{m.ip}:{m.rest_port}"

    def run(
        self, *args: str, server: str | None = None, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--server", self.server(server)] if server else []
        if stdin is None:
            return run_kubectl(
                self.binary,
                self.kubeconfig,
                *extra,
                *args,
                cache_dir=self.cache_dir,
                timeout=timeout,
            )
        cmd = [
            str(self.binary),
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *extra,
            *args,
        ]
        return subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )

    def ok(self, *args: str, **kw: Any) -> str:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, (
            f"kubectl {self.version} {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        return proc.stdout


@pytest.fixture(params=VERSIONS, ids=[f"kubectl-{v}" for v in VERSIONS])
def kubectl(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Kubectl:
    version: str = request.param
    return Kubectl(cluster, version, tmp_path_factory.mktemp(f"cache-{version}"))


def wait_namespaces(k: Kubectl) -> str:
    def probe() -> str | None:
        proc = k.run("get", "namespaces")
        if proc.returncode == 0 and "kube-node-lease" in proc.stdout:
            return proc.stdout
        return None

    return wait_for("system namespaces", probe, 30)


def manifest(ns: str, name: str, replicas: int = 2, image: str = "kubelab/busybox") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
          namespace: {ns}
          labels: {{app: {name}}}
        spec:
          replicas: {replicas}
          selector:
            matchLabels: {{app: {name}}}
          template:
            metadata:
              labels: {{app: {name}}}
            spec:
              containers:
              - name: web
                image: {image}
                ports: [{{containerPort: 80}}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {name}-config
          namespace: {ns}
          labels: {{app: {name}}}
        data:
          greeting: hello
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          selector: {{app: {name}}}
          ports: [{{port: 80, targetPort: 80}}]
        """
    )


def test_get_namespaces(kubectl: Kubectl) -> None:
    out = wait_namespaces(kubectl)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0] for line in lines[1:]}
    assert {"default", "kube-system", "kube-node-lease"} <= names
    assert all(line.split()[1] == "Active" for line in lines[1:])


def test_create_get_replace_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    k = kubectl
    wait_namespaces(k)
    ns = f"crud-{k.version.replace('.', '-')}"
    k.ok("create", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    path = tmp_path / "web.yaml"
    path.write_text(manifest(ns, "web"))
    out = k.ok("create", "-f", str(path))
    assert "deployment.apps/web created" in out and "configmap/web-config created" in out
    again = k.run("create", "-f", str(path))
    assert again.returncode != 0 and "AlreadyExists" in again.stderr

    table = k.ok("get", "deployments", "-n", ns, "-o", "wide").splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "CONTAINERS" in table[0] and "SELECTOR" in table[0]
    assert table[1].split()[0] == "web" and "app=web" in table[1]
    doc = json.loads(k.ok("get", "deployment", "web", "-n", ns, "-o", "json"))
    assert doc["spec"]["replicas"] == 2 and doc["metadata"]["generation"] == 1
    assert doc["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    yml = k.ok("get", "configmap", "web-config", "-n", ns, "-o", "yaml")
    assert "greeting: hello" in yml and "resourceVersion:" in yml
    everywhere = k.ok("get", "configmaps", "-A", "-l", "app=web").splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [line.split()[:2] for line in everywhere[1:]] == [[ns, "web-config"]]
    svc = k.ok("get", "svc", "-n", ns).splitlines()
    assert svc[0].split()[:3] == ["NAME", "TYPE", "CLUSTER-IP"] and "80/TCP" in svc[1]

    path.write_text(manifest(ns, "web", replicas=4))
    k.ok("replace", "-f", str(path))
    doc = json.loads(k.ok("get", "deployment", "web", "-n", ns, "-o", "json"))
    assert doc["spec"]["replicas"] == 4 and doc["metadata"]["generation"] == 2

    out = k.ok("delete", "-f", str(path))
    assert 'deployment.apps "web" deleted' in out
    gone = k.run("get", "deployment", "web", "-n", ns)
    assert gone.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "web" not found' in gone.stderr


def test_every_kind_lists(kubectl: Kubectl) -> None:
    wait_namespaces(kubectl)
    for kind in (
        "namespaces",
        "nodes",
        "pods",
        "services",
        "endpoints",
        "events",
        "configmaps",
        "deployments",
        "replicasets",
        "leases",
    ):
        proc = kubectl.run("get", kind, "-A")
        assert proc.returncode == 0, f"get {kind}: {proc.stderr}"
        for fmt in ("wide", "yaml", "json"):
            assert kubectl.run("get", kind, "-A", "-o", fmt).returncode == 0


def test_invalid_manifest_is_explained(kubectl: Kubectl) -> None:
    wait_namespaces(kubectl)
    bad = manifest("default", "bad").split("---")[0]
    template_labels = "    metadata:\n      labels: {app: bad}"
    assert template_labels in bad
    bad = bad.replace(template_labels, "    metadata:\n      labels: {app: other}")
    proc = kubectl.run("create", "-f", "-", stdin=bad)
    assert proc.returncode == 1
    assert 'The Deployment "bad" is invalid' in proc.stderr
    assert "spec.template.metadata.labels" in proc.stderr


def test_requests_without_a_valid_token_are_refused(kubectl: Kubectl, tmp_path: Path) -> None:
    text = kubectl.kubeconfig.read_text()
    token = kubectl.cluster.token
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(text.replace(f"token: {token}", "token: not-a-token"))
    proc = run_kubectl(kubectl.binary, cfg, "get", "namespaces", cache_dir=tmp_path / "c")
    assert proc.returncode == 1
    assert "error: You must be logged in to the server" in proc.stderr, proc.stderr


def test_no_token_is_401(cluster: Cluster) -> None:
    m = cluster.spec(cluster.names[0])
    ctx = client_ssl_context(pki_paths(cluster.cfg).ca_cert)
    conn = http.client.HTTPSConnection(m.ip, m.rest_port, timeout=10, context=ctx)
    try:
        conn.request("GET", "/api/v1/namespaces")
        resp = conn.getresponse()
        status = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 401
    assert status["kind"] == "Status" and status["reason"] == "Unauthorized"


def test_watch_sees_creates_and_deletes(kubectl: Kubectl) -> None:
    k = kubectl
    wait_namespaces(k)
    name = f"watched-{k.version.replace('.', '-')}"
    anchor = f"anchor-{k.version.replace('.', '-')}"
    k.ok("create", "-f", "-", stdin=cm_yaml(anchor))
    cmd = [
        str(k.binary),
        "--kubeconfig",
        str(k.kubeconfig),
        "--cache-dir",
        str(k.cache_dir),
        "get",
        "configmaps",
        "-w",
        "--output-watch-events",
    ]
    watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0)  # the watch's list happens before or after: both are seen below
        k.ok("create", "configmap", name) if k.version == "1.20" else k.ok(
            "create",
            "-f",
            "-",
            stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n",
        )
        k.ok("delete", "configmap", name)
        assert watch.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = watch.stdout.readline()
            if not line:
                break
            seen.append(line)
            if any(name in s and "DELETED" in s for s in seen):
                break
        assert any(name in s and ("ADDED" in s) for s in seen), seen
        assert any(name in s and "DELETED" in s for s in seen), seen
    finally:
        watch.kill()
        watch.wait()


def test_leader_killed_between_commands(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, summary: Callable[[str, str], None]
) -> None:
    k = Kubectl(cluster, "1.33", tmp_path_factory.mktemp("cache-failover"))
    wait_namespaces(k)
    leader = cluster.heal()
    survivors = [n for n in cluster.names if n != leader.name]
    cluster.cli("kill", leader.name)
    t0 = time.monotonic()
    try:
        for i, server in enumerate(survivors * 2):
            name = f"after-kill-{i}"
            k.ok(
                "create",
                "-f",
                "-",
                server=server,
                stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n",
            )
            out = k.ok("get", "configmap", name, "-o", "name", server=server)
            assert out.strip() == f"configmap/{name}"
        summary(
            "kubernetes api",
            f"leader {leader.name} killed: 4 kubectl create+get pairs on the survivors "
            f"took {time.monotonic() - t0:.1f} s, every one succeeded",
        )
    finally:
        cluster.heal()


def cm_yaml(name: str, ns: str = "default") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n"


def python_client(cluster: Cluster, master: str) -> Any:
    m = cluster.spec(master)
    conf = client.Configuration()
    conf.host = f"https://{m.ip}:{m.rest_port}"
    conf.ssl_ca_cert = str(pki_paths(cluster.cfg).ca_cert)
    conf.api_key = {"authorization": f"Bearer {cluster.token}"}
    return client.ApiClient(conf)


def test_official_python_client(cluster: Cluster) -> None:
    leader = cluster.heal()
    with python_client(cluster, leader.name) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        wait_for(
            "system namespaces",
            lambda: (
                {n.metadata.name for n in core.list_namespace().items}
                >= {"default", "kube-system", "kube-node-lease"}
                or None
            ),
            30,
        )
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"a": "1"})
        created = core.create_namespaced_config_map("default", body)
        assert created.metadata.uid and created.metadata.resource_version
        got = core.read_namespaced_config_map("py", "default")
        assert got.data == {"a": "1"}
        got.data = {"a": "2"}
        replaced = core.replace_namespaced_config_map("py", "default", got)
        assert replaced.data == {"a": "2"}
        got.data = {"a": "3"}  # carries the old resourceVersion: a conflict
        with pytest.raises(ApiException) as conflict:
            core.replace_namespaced_config_map("py", "default", got)
        assert conflict.value.status == 409
        listed = core.list_namespaced_config_map("default", label_selector="")
        assert "py" in {c.metadata.name for c in listed.items}
        rv = listed.metadata.resource_version
        dep = apps.create_namespaced_deployment(
            "default",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "py-web"},
                "spec": {
                    "selector": {"matchLabels": {"app": "py"}},
                    "template": {
                        "metadata": {"labels": {"app": "py"}},
                        "spec": {"containers": [{"name": "c", "image": "kubelab/busybox"}]},
                    },
                },
            },
        )
        assert dep.spec.replicas == 1 and dep.spec.strategy.type == "RollingUpdate"
        core.delete_namespaced_config_map("py", "default")
        apps.delete_namespaced_deployment("py-web", "default")
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_config_map("py", "default")
        assert missing.value.status == 404
        events = [
            (e["type"], e["object"].metadata.name)
            for e in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=rv,
                timeout_seconds=2,
            )
        ]
        assert ("MODIFIED", "py") not in events  # the list already had that state
        assert ("DELETED", "py") in events, events


def test_plain_http_is_not_served(cluster: Cluster) -> None:
    """The REST port speaks only TLS: a plaintext request gets no API answer."""
    m = cluster.spec(cluster.names[0])
    with socket.create_connection((m.ip, m.rest_port), timeout=5) as sock:
        sock.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
    assert b"APIVersions" not in data


# -- linearizability through REST ----------------------------------------------------------

LIN_KEYS = 3
LIN_CLIENTS = 4


async def _rest_register_workload(
    cluster: Cluster, recorder: Recorder, stop: asyncio.Event, seed: int
) -> None:
    """Clients read ConfigMaps (GET) and compare-and-swap them (PUT carrying the
    resourceVersion of the value they read). Every written value is unique, so "the
    resourceVersion still matches" is "the value is still the one read": a register's cas."""
    ssl_ctx = client_ssl_context(pki_paths(cluster.cfg).ca_cert)
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    servers = [f"https://{cluster.spec(n).ip}:{cluster.spec(n).rest_port}" for n in cluster.names]
    timeout = aiohttp.ClientTimeout(total=5)

    async def one(client_id: int) -> None:
        rnd = random.Random(seed * 100 + client_id)
        at = client_id % len(servers)
        counter = 0
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
            while not stop.is_set():
                key = f"lin-{rnd.randrange(LIN_KEYS)}"
                url = f"{servers[at]}/api/v1/namespaces/default/configmaps/{key}"
                with recorder.call(client_id, OpKind.READ, key) as read:
                    try:
                        async with http.get(url, ssl=ssl_ctx) as resp:
                            doc = await resp.json()
                            status = resp.status
                    except (aiohttp.ClientError, TimeoutError):
                        read.fail()  # a read that got no answer changed nothing
                        at = (at + 1) % len(servers)
                        continue
                    if status != 200:
                        read.fail()
                        at = (at + 1) % len(servers)
                        continue
                    value = doc["data"]["v"]
                    read.ok(value=value)
                if rnd.random() < 0.5:
                    continue
                counter += 1
                new = f"c{client_id}-{counter}"
                doc["data"] = {"v": new}
                with recorder.call(client_id, OpKind.CAS, key, value=new, expected=value) as cas:
                    try:
                        async with http.put(url, data=json.dumps(doc), ssl=ssl_ctx) as resp:
                            status = resp.status
                    except (aiohttp.ClientError, TimeoutError):
                        cas.unknown()  # sent: it may or may not have been applied
                        at = (at + 1) % len(servers)
                        continue
                    if status == 200:
                        cas.ok(succeeded=True)
                    elif status == 409:
                        cas.ok(succeeded=False)
                    elif status == 503:
                        cas.fail()  # nothing was proposed (DESIGN.md)
                        at = (at + 1) % len(servers)
                    else:
                        cas.unknown()  # 504: outcome unknown
                        at = (at + 1) % len(servers)

    await asyncio.gather(*(one(i) for i in range(LIN_CLIENTS)))


def test_rest_reads_and_conditional_writes_are_linearizable_across_a_leader_kill(
    cluster: Cluster, summary: Callable[[str, str], None]
) -> None:
    k = Kubectl(cluster, "1.33", cluster.home / "cache-lin")
    wait_namespaces(k)
    cluster.heal()
    recorder = Recorder()
    for i in range(LIN_KEYS):
        doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lin-{i}\ndata:\n  v: init\n"
        k.ok("create", "-f", "-", stdin=doc)
        with recorder.call(99, OpKind.WRITE, f"lin-{i}", value="init") as w:
            w.ok()

    async def scenario() -> None:
        stop = asyncio.Event()
        work = asyncio.create_task(_rest_register_workload(cluster, recorder, stop, seed=5))
        await asyncio.sleep(3)
        leader = cluster.leader_now()
        assert leader is not None
        await asyncio.to_thread(cluster.cli, "kill", leader.name)
        await asyncio.sleep(5)
        await asyncio.to_thread(cluster.cli, "start", leader.name)
        await asyncio.sleep(3)
        stop.set()
        await work

    try:
        asyncio.run(scenario())
    finally:
        cluster.heal()
    history = recorder.history()
    result = check(history)
    oks = sum(1 for op in history if not op.unknown)
    summary(
        "kubernetes api",
        f"REST GET + conditional PUT on {LIN_KEYS} ConfigMaps, {LIN_CLIENTS} clients, leader "
        f"killed and restarted: {len(history)} operations ({oks} determinate, "
        f"{recorder.failed} failed), linearizable={result.ok}",
    )
    assert oks >= 100, f"too few operations to prove anything: {oks}"
    assert result.passed, result.render()


def test_without_a_quorum_writes_and_reads_get_503_with_retry_after(cluster: Cluster) -> None:
    """Two of three masters down: nothing can be proposed or confirmed, so the survivor
    waits a few election timeouts, then answers 503 with Retry-After (safe to retry)."""
    leader = cluster.heal()
    survivor = next(n for n in cluster.names if n != leader.name)
    others = [n for n in cluster.names if n != survivor]
    m = cluster.spec(survivor)
    ctx = client_ssl_context(pki_paths(cluster.cfg).ca_cert)
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nq"}})
    try:
        for name in others:
            cluster.cli("kill", name)
        for method, path, data in (
            ("POST", "/api/v1/namespaces/default/configmaps", body),
            ("GET", "/api/v1/namespaces/default/configmaps/nq", None),
        ):
            conn = http.client.HTTPSConnection(m.ip, m.rest_port, timeout=30, context=ctx)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                status = json.loads(resp.read())
            finally:
                conn.close()
            assert resp.status == 503, (method, status)
            assert resp.getheader("Retry-After"), method
            assert status["reason"] == "ServiceUnavailable"
    finally:
        cluster.heal()
