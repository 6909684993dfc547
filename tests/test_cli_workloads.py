"""`kubelab apply|get|delete|scale`: kubectl's layout and messages, and the commands end to end.

The first half checks the pure parts against strings kubectl prints (its tabwriter, Table
printer, YAML/JSON printers, error lines) and the three-way merge of `apply`. The second
half runs the commands through `kubelab`'s `main` against the real REST server
(`controlplane.server.rest`) over an in-process object store, served with the cluster's
TLS certificate on master-2's address while master-1's address refuses connections, so
every command also fails over. The store and the server share a fixed clock: every AGE
reads `5m`.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from procfixtures import free_octet

from controlplane.cli import main, workloads
from controlplane.cli.workloads import (
    LAST_APPLIED,
    TablePrinter,
    _Failed,
    apply_patch,
    cell_text,
    contains,
    merge_patch,
    parse_targets,
    to_json,
    to_yaml,
)
from controlplane.client.rest import JSON, APIStatusError, OutcomeUnknown, Response, RESTClient
from controlplane.config import (
    ClusterConfig,
    admin_token,
    load_config,
    new_tokens,
    write_token_file,
)
from controlplane.kube import errors
from controlplane.kube.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS
from controlplane.kube.storage import LocalBackend, ObjectStore
from controlplane.pki import ensure_pki, pki_paths, server_ssl_context
from controlplane.server.rest import RESTServer

T = TypeVar("T")

# -- kubectl's table layout --------------------------------------------------------------------


def col(name: str, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": "string", "format": fmt, "description": "", "priority": priority}


POD_COLUMNS = [
    col("Name", fmt="name"),
    col("Ready"),
    col("Status"),
    col("Restarts"),
    col("Age"),
    col("IP", 1),
    col("Node", 1),
]


def pod_row(name: str, ns: str, cells: list[Any]) -> dict[str, Any]:
    return {
        "cells": [name, *cells],
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns},
        },
    }


PODS_TABLE = {
    "kind": "Table",
    "apiVersion": "meta.k8s.io/v1",
    "metadata": {"resourceVersion": "10"},
    "columnDefinitions": POD_COLUMNS,
    "rows": [
        pod_row("web-1", "default", ["1/1", "Running", 0, "5s", "127.10.11.2", "worker-1"]),
        pod_row("a-much-longer-name", "kube-system", ["0/1", "Pending", 12, "3h20m", None, None]),
    ],
}


def render(table: dict[str, Any], **kw: Any) -> str:
    p = TablePrinter(**kw)
    p.add(table)
    return p.flush()


def test_table_default_columns_padded_like_kubectls_tabwriter() -> None:
    """Upper-cased names, priority-1 columns hidden, 3 spaces after the widest cell, the
    last column not padded."""
    assert render(PODS_TABLE) == (
        "NAME                 READY   STATUS    RESTARTS   AGE\n"
        "web-1                1/1     Running   0          5s\n"
        "a-much-longer-name   0/1     Pending   12         3h20m\n"
    )


def test_table_wide_shows_priority_1_columns() -> None:
    assert render(PODS_TABLE, wide=True) == (
        "NAME                 READY   STATUS    RESTARTS   AGE     IP            NODE\n"
        "web-1                1/1     Running   0          5s      127.10.11.2   worker-1\n"
        "a-much-longer-name   0/1     Pending   12         3h20m                 \n"
    )


def test_table_all_namespaces_puts_the_namespace_first() -> None:
    assert render(PODS_TABLE, with_namespace=True) == (
        "NAMESPACE     NAME                 READY   STATUS    RESTARTS   AGE\n"
        "default       web-1                1/1     Running   0          5s\n"
        "kube-system   a-much-longer-name   0/1     Pending   12         3h20m\n"
    )


def test_table_kind_prefix_on_the_name_column() -> None:
    """Several kinds listed: the `format: name` column reads `kind.group/name`."""
    assert render(PODS_TABLE, kind="pod").splitlines()[1].startswith("pod/web-1   ")


def test_minimum_column_width_is_6() -> None:
    table = {"columnDefinitions": [col("A"), col("B")], "rows": [{"cells": ["x", "y"]}]}
    assert render(table) == "A     B\nx     y\n"


def test_empty_table_prints_nothing() -> None:
    assert render({**PODS_TABLE, "rows": []}) == ""


def test_watch_rows_keep_the_lists_widths_and_no_second_header() -> None:
    """kubectl's tabwriter remembers widths between flushes: a narrower event row still
    lines up under the header; a Table without columnDefinitions reuses the last ones."""
    p = TablePrinter()
    p.add(PODS_TABLE)
    p.flush()
    p.add({"rows": [pod_row("x", "default", ["0/1", "Pending", 0, "0s", None, None])]})
    assert p.flush() == "x                    0/1     Pending   0          0s\n"


def test_watch_error_event_prints_a_status_table() -> None:
    p = TablePrinter()
    p.add_status({"status": "Failure", "reason": "Expired", "message": "too old resource"})
    assert p.flush() == "STATUS    REASON    MESSAGE\nFailure   Expired   too old resource\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (3, "3"),
        (2.5, "2.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        ("two\nlines", "two..."),
        ("esc\x1b[31m", "esc^[[31m"),
        ({"a": 1}, '{"a": 1}'),
    ],
)
def test_cell_text_is_gos_sprint(value: Any, text: str) -> None:
    assert cell_text(value) == text


# -- -o yaml / json ----------------------------------------------------------------------------


def test_yaml_like_kubectl() -> None:
    """Sorted keys, sequences at their key's indentation, double quotes for strings that
    would read as something else, `|` blocks for multi-line strings."""
    obj = {
        "metadata": {"name": "web", "resourceVersion": "12", "annotations": {"a": "x\ny\n"}},
        "kind": "ConfigMap",
        "data": {"on": "yes", "list": ["1", 2]},
        "apiVersion": "v1",
    }
    assert to_yaml(obj) == (
        "apiVersion: v1\n"
        "data:\n"
        "  list:\n"
        '  - "1"\n'
        "  - 2\n"
        '  "on": "yes"\n'
        "kind: ConfigMap\n"
        "metadata:\n"
        "  annotations:\n"
        "    a: |\n"
        "      x\n"
        "      y\n"
        "  name: web\n"
        '  resourceVersion: "12"\n'
    )


def test_json_like_kubectl() -> None:
    """Go's MarshalIndent: 4 spaces, sorted keys, `<>&` escaped, non-ASCII as is."""
    assert to_json({"b": "<é&>", "a": [], "c": {}}) == (
        '{\n    "a": [],\n    "b": "\\u003cé\\u0026\\u003e",\n    "c": {}\n}\n'
    )


# -- resource arguments ------------------------------------------------------------------------


def test_targets_kinds_and_names() -> None:
    assert parse_targets(["deploy,po", "a", "b"], "get") == [
        (DEPLOYMENTS, ["a", "b"]),
        (PODS, ["a", "b"]),
    ]
    assert parse_targets(["deployments.apps/web", "deploy/api", "cm/x"], "get") == [
        (DEPLOYMENTS, ["web", "api"]),
        (CONFIGMAPS, ["x"]),
    ]
    assert [r.plural for r, _ in parse_targets(["all"], "get")] == [
        "pods",
        "services",
        "deployments",
        "replicasets",
    ]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["foo"], 'error: the server doesn\'t have a resource type "foo"'),
        (["deploy,nope"], 'error: the server doesn\'t have a resource type "nope"'),
        (["deploy", "po/x"], "error: there is no need to specify a resource type"),
        ([], "error: you must specify the type of resource to get"),
    ],
)
def test_target_errors(words: list[str], message: str) -> None:
    with pytest.raises(_Failed) as e:
        parse_targets(words, "get")
    assert e.value.lines[0].startswith(message)


# -- apply's three-way merge -------------------------------------------------------------------


LIVE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}, "resourceVersion": "7"},
    "spec": {
        "replicas": 2,
        "strategy": {"type": "RollingUpdate"},  # a server default
        "template": {
            "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "Always"}]}
        },
    },
    "status": {"replicas": 2},
}


@pytest.mark.parametrize(
    ("original", "modified", "patch"),
    [
        pytest.param(
            None,
            {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web"}]}}}},
            {},
            id="already-holds-it",
        ),
        pytest.param(
            None, {"spec": {"replicas": 3}}, {"spec": {"replicas": 3}}, id="changed-field"
        ),
        pytest.param(
            None,
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "httpd"}]}}}},
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "httpd"}]}}}},
            id="list-replaced-whole",
        ),
        pytest.param(
            {"metadata": {"labels": {"app": "web", "team": "a"}}},
            {"metadata": {"labels": {"app": "web"}}},
            {"metadata": {"labels": {"team": None}}},
            id="dropped-since-last-apply",
        ),
        pytest.param(
            None,
            {"metadata": {"labels": {"app": "web"}}},
            {},
            id="others-labels-kept",
        ),
        pytest.param(None, {"spec": {"paused": None}}, {}, id="null-for-absent"),
        pytest.param(None, {"spec": {"replicas": True}}, {"spec": {"replicas": True}}, id="bool"),
    ],
)
def test_apply_patch(
    original: dict[str, Any] | None, modified: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert apply_patch(original, modified, LIVE) == patch


def test_merge_patch_deletes_sets_and_keeps_the_rest() -> None:
    merged = merge_patch(LIVE, {"metadata": {"labels": {"team": None}}, "spec": {"replicas": 5}})
    assert merged["metadata"]["labels"] == {"app": "web"}
    assert merged["spec"]["replicas"] == 5
    assert merged["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert merged["status"] == {"replicas": 2}
    assert LIVE["spec"]["replicas"] == 2  # type: ignore[index]  # the input is untouched


def test_contains_needs_equal_list_lengths() -> None:
    assert contains([{"a": 1, "b": 2}], [{"a": 1}])
    assert not contains([{"a": 1}, {"a": 2}], [{"a": 1}])
    assert not contains(1, True)


# -- end to end: the commands against the real REST server --------------------------------------


FIXED_NOW = 1_714_557_600.0  # 2024-05-01T10:00:00Z: every object is created then


@dataclass
class API:
    cfg: ClusterConfig
    file: Path
    store: ObjectStore
    server: RESTServer
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def get(self, res: Any, ns: str, name: str) -> dict[str, Any]:
        return self.run(self.store.get(res, ns, name))

    def create(self, res: Any, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.run(self.store.create(res, ns, obj))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    t = threading.Thread(target=lp.run_forever, daemon=True)
    t.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    t.join()
    lp.close()


@pytest.fixture
def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop
) -> Iterator[API]:
    monkeypatch.setenv("KUBELAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBELAB_CLUSTER", raising=False)
    c = free_octet(masters=2)
    file = tmp_path / "w.toml"
    file.write_text(
        f'[cluster]\nname = "w{c}"\nsubnet = "127.{c}.0.0/16"\ndata_dir = "data"\n'
        '[[masters]]\nname = "master-1"\n[[masters]]\nname = "master-2"\n'
    )
    cfg = load_config(file)
    ensure_pki(cfg)
    write_token_file(cfg.token_file, new_tokens())
    store = ObjectStore(LocalBackend(), clock=lambda: FIXED_NOW)
    m2 = cfg.masters[1]  # master-1's address refuses: every command fails over
    server = RESTServer(
        store,
        host=m2.ip,
        port=m2.rest_port,
        ssl=server_ssl_context(pki_paths(cfg)),
        tokens={admin_token(cfg)},
        server_address=f"{m2.ip}:{m2.rest_port}",
        clock=lambda: FIXED_NOW + 300,
    )
    a = API(cfg, file, store, server, loop)
    for ns in ("default", "kube-system"):
        a.create(
            NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    a.run(server.start())
    yield a
    a.run(server.stop())


def kubelab(
    api: API, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.stdin", io.StringIO(stdin))
            rc = main(["-c", str(api.file), *argv])
    else:
        rc = main(["-c", str(api.file), *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def deployment(name: str, *, replicas: int = 2, image: str = "nginx", **labels: str) -> str:
    labels = labels or {"app": name}
    selector = {"app": name}
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }
    return yaml.safe_dump(doc)


def configmap(name: str, ns: str | None = None, **data: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})


def write(path: Path, *docs: str) -> Path:
    path.write_text("---\n".join(docs))
    return path


def test_apply_creates_then_is_unchanged_then_configures(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = tmp_path / "manifests"
    d.mkdir()
    write(d / "a-web.yaml", deployment("web"))
    write(d / "b-cm.yml", configmap("settings", mode="fast"))
    assert kubelab(api, capsys, "apply", "-f", str(d)) == (
        0,
        "deployment.apps/web created\nconfigmap/settings created\n",
        "",
    )
    live = api.get(DEPLOYMENTS, "default", "web")
    assert live["spec"]["replicas"] == 2
    assert json.loads(live["metadata"]["annotations"][LAST_APPLIED])["metadata"]["name"] == "web"

    assert kubelab(api, capsys, "apply", "-f", str(d)) == (
        0,
        "deployment.apps/web unchanged\nconfigmap/settings unchanged\n",
        "",
    )

    write(d / "a-web.yaml", deployment("web", replicas=3, app="web", tier="front"))
    rc, out, _ = kubelab(api, capsys, "apply", "-f", str(d / "a-web.yaml"))
    assert (rc, out) == (0, "deployment.apps/web configured\n")
    live = api.get(DEPLOYMENTS, "default", "web")
    assert live["spec"]["replicas"] == 3
    assert live["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"  # the server's default stays

    write(d / "a-web.yaml", deployment("web", replicas=3, app="web"))
    assert kubelab(api, capsys, "apply", "-f", str(d / "a-web.yaml"))[1] == (
        "deployment.apps/web configured\n"
    )
    assert api.get(DEPLOYMENTS, "default", "web")["metadata"]["labels"] == {"app": "web"}


def test_apply_from_stdin_into_a_namespace(api: API, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = kubelab(api, capsys, "apply", "-n", "kube-system", "-f", "-", stdin=configmap("c"))
    assert (rc, out) == (0, "configmap/c created\n")
    assert api.get(CONFIGMAPS, "kube-system", "c")["metadata"]["namespace"] == "kube-system"


def test_apply_goes_on_past_a_failing_document(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An invalid object gets kubectl's 422 line; the others are applied; exit 1."""
    bad = yaml.safe_load(deployment("bad"))
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    f = write(tmp_path / "x.yaml", yaml.safe_dump(bad), configmap("fine"), configmap("n", "nope"))
    rc, out, err = kubelab(api, capsys, "apply", "-f", str(f))
    assert rc == 1
    assert out == "configmap/fine created\n"
    lines = err.splitlines()
    assert lines[0].startswith('The Deployment "bad" is invalid: spec.template.metadata.labels: ')
    assert lines[1] == (
        'Error from server (NotFound): error when creating "' + str(f) + '": namespaces "nope" '
        "not found"
    )


def test_apply_refuses_bad_yaml_before_sending_anything(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = write(tmp_path / "x.yaml", configmap("first"), "kind: ConfigMap\nmetadata: {name: x\n")
    rc, out, err = kubelab(api, capsys, "apply", "-f", str(f))
    assert (rc, out) == (1, "")
    assert err == (
        f"error: {f}:9:1: expected ',' or '}}', but got '<stream end>' "
        "(while parsing a flow mapping at line 8)\n"
    )
    rc, _, err = kubelab(api, capsys, "get", "cm", "first")
    assert rc == 1
    assert err == 'Error from server (NotFound): configmaps "first" not found\n'


def test_apply_namespace_mismatch_and_unknown_kind(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = write(tmp_path / "x.yaml", configmap("c", "kube-system"))
    rc, _, err = kubelab(api, capsys, "apply", "-n", "default", "-f", str(f))
    assert rc == 1
    assert err == (
        'error: the namespace from the provided object "kube-system" does not match the '
        "namespace \"default\". You must pass '--namespace=kube-system' to perform this "
        "operation.\n"
    )
    f = write(tmp_path / "y.yaml", "apiVersion: v9\nkind: Foo\nmetadata:\n  name: x\n")
    rc, _, err = kubelab(api, capsys, "apply", "-f", str(f))
    assert rc == 1
    assert err.startswith(
        f'error: {f} (document 1): the server doesn\'t have a resource type "Foo"'
    )


def apply(api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path, *docs: str) -> None:
    f = write(tmp_path / "setup.yaml", *docs)
    rc, _, err = kubelab(api, capsys, "apply", "-f", str(f))
    assert (rc, err) == (0, "")


def test_get_renders_the_servers_table(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apply(api, capsys, tmp_path, deployment("web"), deployment("api-server", replicas=1))
    assert kubelab(api, capsys, "get", "deploy") == (
        0,
        "NAME         READY   UP-TO-DATE   AVAILABLE   AGE\n"
        "api-server   0/1     0            0           5m\n"
        "web          0/2     0            0           5m\n",
        "",
    )
    _, out, _ = kubelab(api, capsys, "get", "deployments.apps", "web", "-o", "wide")
    assert out == (
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES   SELECTOR\n"
        "web    0/2     0            0           5m    main         nginx    app=web\n"
    )


def test_get_all_namespaces_and_several_kinds(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apply(api, capsys, tmp_path, configmap("a"), configmap("b", "kube-system"), deployment("web"))
    _, out, _ = kubelab(api, capsys, "get", "cm", "-A")
    assert out == (
        "NAMESPACE     NAME   DATA   AGE\n"
        "default       a      0      5m\n"
        "kube-system   b      0      5m\n"
    )
    _, out, _ = kubelab(api, capsys, "get", "deploy,cm")
    assert out == (
        "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\n"
        "deployment.apps/web   0/2     0            0           5m\n"
        "\n"
        "NAME          DATA   AGE\n"
        "configmap/a   0      5m\n"
    )


def test_get_selectors(api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    apply(api, capsys, tmp_path, deployment("web"), deployment("db", app="db"))
    assert kubelab(api, capsys, "get", "deploy", "-l", "app=db", "-o", "name")[1] == (
        "deployment.apps/db\n"
    )
    assert (
        kubelab(
            api, capsys, "get", "deploy", "--field-selector", "metadata.name=web", "-o", "name"
        )[1]
        == "deployment.apps/web\n"
    )


def test_get_nothing_and_missing(api: API, capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelab(api, capsys, "get", "pods") == (
        0,
        "",
        "No resources found in default namespace.\n",
    )
    assert kubelab(api, capsys, "get", "pods", "-A") == (0, "", "No resources found.\n")
    assert kubelab(api, capsys, "get", "nodes") == (0, "", "No resources found.\n")
    assert kubelab(api, capsys, "get", "deploy", "web") == (
        1,
        "",
        'Error from server (NotFound): deployments.apps "web" not found\n',
    )
    assert kubelab(api, capsys, "get", "deploy", "web", "--ignore-not-found") == (0, "", "")
    assert kubelab(api, capsys, "get", "widgets") == (
        1,
        "",
        'error: the server doesn\'t have a resource type "widgets"\n',
    )


def test_get_yaml_json_and_list(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apply(api, capsys, tmp_path, configmap("a", x="1"), configmap("b"))
    _, out, _ = kubelab(api, capsys, "get", "cm", "a", "-o", "yaml")
    obj = yaml.safe_load(out)
    assert (obj["kind"], obj["apiVersion"], obj["data"]) == ("ConfigMap", "v1", {"x": "1"})
    _, out, _ = kubelab(api, capsys, "get", "configmaps", "-o", "json")
    doc = json.loads(out)
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == (
        "List",
        "v1",
        {"resourceVersion": ""},
    )
    assert [(i["kind"], i["apiVersion"], i["metadata"]["name"]) for i in doc["items"]] == [
        ("ConfigMap", "v1", "a"),
        ("ConfigMap", "v1", "b"),
    ]
    assert out.startswith('{\n    "apiVersion": "v1",\n    "items": [\n')


def test_delete_by_name_and_from_a_file(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apply(api, capsys, tmp_path, deployment("web"), configmap("a"), configmap("b"))
    assert kubelab(api, capsys, "delete", "deployment", "web") == (
        0,
        'deployment.apps "web" deleted\n',
        "",
    )
    assert kubelab(api, capsys, "delete", "deploy/web") == (
        1,
        "",
        'Error from server (NotFound): deployments.apps "web" not found\n',
    )
    assert kubelab(api, capsys, "delete", "deploy", "web", "--ignore-not-found") == (0, "", "")
    f = write(tmp_path / "cms.yaml", configmap("a"), configmap("b"))
    assert kubelab(api, capsys, "delete", "-f", str(f)) == (
        0,
        'configmap "a" deleted\nconfigmap "b" deleted\n',
        "",
    )
    assert kubelab(api, capsys, "get", "cm") == (
        0,
        "",
        "No resources found in default namespace.\n",
    )


def test_scale(api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    apply(api, capsys, tmp_path, deployment("web"))
    before = api.get(DEPLOYMENTS, "default", "web")
    assert kubelab(api, capsys, "scale", "deployment", "web", "--replicas", "5") == (
        0,
        "deployment.apps/web scaled\n",
        "",
    )
    after = api.get(DEPLOYMENTS, "default", "web")
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    rc, _, err = kubelab(api, capsys, "scale", "pods", "x", "--replicas", "1")
    assert (rc, err) == (1, "error: pods cannot be scaled (only deployments, replicasets)\n")
    rc, _, err = kubelab(api, capsys, "scale", "rs", "nope", "--replicas", "1")
    assert (rc, err) == (1, 'Error from server (NotFound): replicasets.apps "nope" not found\n')


def test_watch_prints_the_list_then_each_change(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`get -w` lists, then prints each event's row under the same columns, and exits 0
    when the server ends the stream."""
    apply(api, capsys, tmp_path, configmap("first"))
    printed: list[str] = []

    def output() -> str:
        printed.append(capsys.readouterr().out)
        return "".join(printed)

    result: list[int] = []
    argv = ["-c", str(api.file), "get", "cm", "-w"]
    t = threading.Thread(target=lambda: result.append(main(argv)))
    t.start()
    try:
        wait_for(lambda: api.server.active_watches == 1, "the watch to start")
        second = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}}
        api.create(CONFIGMAPS, "default", {**second, "data": {"k": "v"}})
        wait_for(lambda: "second" in output(), "the new row")
    finally:
        api.run(api.server.stop())
        t.join(10)
    assert result == [0]
    assert output() == ("NAME    DATA   AGE\nfirst   0      5m\nsecond   1      5m\n")


def test_watch_one_object_by_name(
    api: API, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`get cm first -w -o name`: the object, then its own changes only (a field selector
    on its name), deletion included."""
    apply(api, capsys, tmp_path, configmap("first"))
    printed: list[str] = []

    def output() -> str:
        printed.append(capsys.readouterr().out)
        return "".join(printed)

    result: list[int] = []
    argv = ["-c", str(api.file), "get", "cm", "first", "-w", "-o", "name"]
    t = threading.Thread(target=lambda: result.append(main(argv)))
    t.start()
    try:
        wait_for(lambda: api.server.active_watches == 1, "the watch to start")
        other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}
        api.create(CONFIGMAPS, "default", other)
        api.run(api.store.delete(CONFIGMAPS, "default", "first"))
        wait_for(lambda: output().count("configmap/first") == 2, "the deletion")
    finally:
        api.run(api.server.stop())
        t.join(10)
    assert result == [0]
    assert output() == "configmap/first\nconfigmap/first\n"


def test_get_argument_errors(api: API, capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelab(api, capsys, "get", "deploy", "web", "-A") == (
        1,
        "",
        "error: a resource cannot be retrieved by name across all namespaces\n",
    )
    assert kubelab(api, capsys, "get", "deploy", "web", "-l", "app=web") == (
        1,
        "",
        "error: name cannot be provided when a selector is specified\n",
    )
    assert kubelab(api, capsys, "get", "deploy,cm", "-w") == (
        1,
        "",
        "error: watch is only supported on individual resources and resource collections - "
        "more than 1 resource was found\n",
    )


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_unauthorized_token(api: API, capsys: pytest.CaptureFixture[str]) -> None:
    write_token_file(api.cfg.token_file, new_tokens())  # no longer the server's token
    assert kubelab(api, capsys, "get", "pods") == (
        1,
        "",
        "error: You must be logged in to the server (Unauthorized)\n",
    )


def test_no_server_reachable(api: API, capsys: pytest.CaptureFixture[str]) -> None:
    api.run(api.server.stop())
    rc, _, err = kubelab(api, capsys, "get", "pods")
    assert rc == 1
    assert err.startswith("kubelab: error: no API server answered: https://")
    assert err.endswith("Is the cluster up? (`kubelab status`)\n")


def test_cluster_never_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_HOME", str(tmp_path / "home"))
    f = tmp_path / "n.toml"
    f.write_text('[cluster]\nname = "never"\nsubnet = "127.45.0.0/16"\ndata_dir = "d"\n')
    rc = main(["-c", str(f), "get", "pods"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cannot read the token file" in err
    assert err.endswith("is the cluster up? (`kubelab up`)\n")


# -- retries and unknown outcomes, with a scripted client --------------------------------------


class ScriptedClient(RESTClient):
    """A RESTClient whose answers come from `answers` (a Response or an exception to raise,
    in order); every call is recorded as (method, path)."""

    def __init__(self, answers: list[Response | Exception]) -> None:
        super().__init__(["https://127.0.0.1:1"], "t", None)
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Any = None,
        body: Any = None,
        accept: str = JSON,
    ) -> Response:
        self.calls.append((method, path))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def answer(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(status, {}, json.dumps(obj).encode(), "https://127.0.0.1:1")


def conflict() -> APIStatusError:
    return APIStatusError(errors.conflict(DEPLOYMENTS, "web").status())


LIVE_WEB = {
    **yaml.safe_load(deployment("web")),
    "metadata": {"name": "web", "resourceVersion": "5"},
}


def scripted(
    monkeypatch: pytest.MonkeyPatch, answers: list[Response | Exception]
) -> ScriptedClient:
    c = ScriptedClient(answers)
    monkeypatch.setattr(workloads, "_client", lambda args: c)
    return c


def test_apply_rereads_and_retries_on_conflict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 409 Conflict on the PUT (someone wrote in between) re-reads and tries again."""
    c = scripted(
        monkeypatch,
        [answer(LIVE_WEB), conflict(), answer(LIVE_WEB), answer(LIVE_WEB)],
    )
    f = write(tmp_path / "web.yaml", deployment("web", replicas=4))
    assert main(["apply", "-f", str(f)]) == 0
    assert capsys.readouterr().out == "deployment.apps/web configured\n"
    url = DEPLOYMENTS.url("default", "web")
    assert c.calls == [("GET", url), ("PUT", url), ("GET", url), ("PUT", url)]


def test_apply_gives_up_after_5_conflicts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scripted(monkeypatch, [answer(LIVE_WEB), conflict()] * 6)
    f = write(tmp_path / "web.yaml", deployment("web", replicas=4))
    assert main(["apply", "-f", str(f)]) == 1
    assert capsys.readouterr().err == (
        f'Error from server (Conflict): error when applying "{f}": Operation cannot be '
        'fulfilled on deployments.apps "web": the object has been modified; please apply '
        "your changes to the latest version and try again\n"
    )


def test_scale_retries_on_conflict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    c = scripted(monkeypatch, [answer(LIVE_WEB), conflict(), answer(LIVE_WEB), answer(LIVE_WEB)])
    assert main(["scale", "deploy/web", "--replicas", "0"]) == 0
    assert capsys.readouterr().out == "deployment.apps/web scaled\n"
    assert [m for m, _ in c.calls] == ["GET", "PUT", "GET", "PUT"]


def test_unknown_outcome_exits_3_and_apply_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A write sent without an answer may have happened: exit 3, and say how to check."""
    not_found = APIStatusError(errors.not_found(CONFIGMAPS, "a").status())
    scripted(
        monkeypatch,
        [
            not_found,
            OutcomeUnknown("POST /api/v1/namespaces/default/configmaps: no answer"),
            APIStatusError(errors.not_found(CONFIGMAPS, "b").status()),
            answer({"kind": "ConfigMap"}, 201),
        ],
    )
    f = write(tmp_path / "cms.yaml", configmap("a"), configmap("b"))
    assert main(["apply", "-f", str(f)]) == 3
    out, err = capsys.readouterr()
    assert out == "configmap/b created\n"
    assert err == (
        "error: POST /api/v1/namespaces/default/configmaps: no answer; check with `kubelab get`\n"
    )
