"""The Kubernetes REST API as kubectl and client libraries see it (kubectl-api.md).

Every test runs a real server (aiohttp, 127.0.0.1, port 0) over `ObjectStore(LocalBackend())`
and talks HTTP to it.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlplane.kube import discovery, errors, patch
from controlplane.kube.resources import RESOURCES, Resource
from controlplane.kube.storage import ListOptions, LocalBackend, ObjectStore, WatchEvent
from controlplane.server.http import AddressInUse
from controlplane.server.rest import MAX_BODY_BYTES, RESTServer

from .conftest import (
    API,
    MANIFESTS,
    TABLE_ACCEPT,
    TOKEN,
    Obj,
    configmap,
    deployment,
    new_store,
    next_event,
    pod,
    run,
    serving,
)

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS_PATH = "/api/v1/namespaces/default/pods"
NOT_FOUND = "the server could not find the requested resource"
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def assert_status(reply: Any, code: int, reason: str) -> Obj:
    """The reply is a metav1.Status with this code and reason, as JSON."""
    assert reply.status == code, reply.body
    assert reply.content_type.startswith("application/json")
    status: Obj = reply.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert (status["code"], status["reason"]) == (code, reason)
    return status


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Basic " + TOKEN, "Bearer", "bearer  "],
    ids=["missing", "wrong-token", "not-bearer", "empty", "blank"],
)
def test_requests_without_a_valid_bearer_token_are_401(header: str | None) -> None:
    """Every API path needs `Authorization: Bearer <token>`; kubectl prints `You must be
    logged in to the server (Unauthorized)` for the 401 Status."""

    async def check(api: API) -> None:
        headers = {"Authorization": header} if header else {}
        for path in ("/version", "/api", CMS, "/no/such/path"):
            reply = await api.get(path, token=None, headers=headers)
            assert_status(reply, 401, "Unauthorized")

    run(check)


def test_health_paths_need_no_token() -> None:
    async def check(api: API) -> None:
        for path in ("/healthz", "/livez", "/readyz"):
            reply = await api.get(path, token=None)
            assert (reply.status, reply.body) == (200, b"ok")

    run(check)


def test_tokens_may_be_a_function_read_per_request() -> None:
    """A token file can be reloaded: the server asks for the current set every time."""
    current = {"first"}

    async def check(api: API) -> None:
        assert (await api.get("/version", token="first")).status == 200
        current.clear()
        current.add("second")
        assert (await api.get("/version", token="first")).status == 401
        assert (await api.get("/version", token="second")).status == 200

    run(check, tokens=lambda: current)


# -- version, openapi, unknown paths -------------------------------------------------------------


def test_version_reports_kubernetes_1_33() -> None:
    """DESIGN.md: `v1.33.0-kubelab`, so the image's kubectl dispatcher runs kubectl 1.33."""

    async def check(api: API) -> None:
        reply = await api.get("/version")
        assert reply.status == 200 and reply.content_type == "application/json"
        info = reply.json()
        assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "33", "v1.33.0-kubelab")
        assert (info["platform"], info["compiler"], info["gitTreeState"]) == (
            "linux/amd64",
            "gc",
            "clean",
        )
        assert info["goVersion"].startswith("go") and info["buildDate"].endswith("Z")
        assert len(info["gitCommit"]) == 40

    run(check)


def test_openapi_v2_is_empty_octet_stream_and_v3_is_404() -> None:
    """§8 option 2: an empty v2 document makes every kubectl skip client validation; its
    Content-Type must not echo kubectl's `@` media type. v3 404 sends 1.29+ to v2."""

    async def check(api: API) -> None:
        reply = await api.get(
            "/openapi/v2",
            headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
        )
        assert (reply.status, reply.body) == (200, b"")
        assert reply.content_type == "application/octet-stream"
        for path in ("/openapi/v3", "/openapi/v3/apis/apps/v1"):
            assert_status(await api.get(path), 404, "NotFound")

    run(check)


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api/v2",
        "/apis/apps/v2",
        "/apis/nope.example.com",
        "/apis/nope.example.com/v1",
        "/api/v1/widgets",
        "/api/v1/pods/web",  # a namespaced kind has no cluster-wide object path
        "/api/v1/namespaces/default/pods/web/exec",  # not served: not advertised either
        "/api/v1/namespaces/default/pods/web/status/extra",
        "/api/v1/namespaces//pods",
        "/apis/apps/v1/namespaces/default/configmaps",  # core kind under the apps group
    ],
)
def test_unknown_paths_are_404_status(path: str) -> None:
    async def check(api: API) -> None:
        status = assert_status(await api.get(path), 404, "NotFound")
        assert status["message"] == NOT_FOUND

    run(check)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/version"),
        ("DELETE", "/api"),
        ("PUT", "/api/v1/namespaces/default/configmaps"),
        ("POST", "/api/v1/configmaps"),  # creating needs a namespace in the URL
        ("POST", "/api/v1/namespaces/default/configmaps/x"),
        ("DELETE", "/api/v1/namespaces/default/pods/x/status"),
        ("GET", "/api/v1/namespaces/default/pods/x/eviction"),
    ],
)
def test_wrong_methods_are_405_status(method: str, path: str) -> None:
    async def check(api: API) -> None:
        assert_status(await api.call(method, path, body={}), 405, "MethodNotAllowed")

    run(check)


# -- discovery -----------------------------------------------------------------------------------


def test_legacy_api_lists_v1_and_the_server_address() -> None:
    async def check(api: API) -> None:
        reply = await api.get("/api", headers={"Accept": "application/json, */*"})
        assert reply.content_type == "application/json"
        assert reply.json() == {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.9.8.7:6443"}
            ],
        }

    run(check)


def test_apis_lists_every_named_group_and_each_answers() -> None:
    """§15.11: never advertise a group version whose document fails."""

    async def check(api: API) -> None:
        doc = (await api.get("/apis")).json()
        assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
        names = [g["name"] for g in doc["groups"]]
        assert names == ["apps", "coordination.k8s.io"]
        apps = doc["groups"][0]
        assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
        assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
        for group in doc["groups"]:
            one = (await api.get(f"/apis/{group['name']}")).json()
            assert (one["kind"], one["name"]) == ("APIGroup", group["name"])
            for v in group["versions"]:
                listed = await api.get(f"/apis/{v['groupVersion']}")
                assert listed.status == 200
                assert listed.json()["groupVersion"] == v["groupVersion"]

    run(check)


def _entries(doc: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in doc["resources"]}


def test_core_v1_resource_list_matches_kubectl_api_3_1() -> None:
    async def check(api: API) -> None:
        doc = (await api.get("/api/v1")).json()
        assert (doc["kind"], doc["apiVersion"], doc["groupVersion"]) == (
            "APIResourceList",
            "v1",
            "v1",
        )
        entries = _entries(doc)
        assert entries["pods"] == {
            "name": "pods",
            "singularName": "pod",
            "namespaced": True,
            "kind": "Pod",
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            "shortNames": ["po"],
            "categories": ["all"],
        }
        # drain checks exactly this entry's group and version (§15.16)
        assert entries["pods/eviction"] == {
            "name": "pods/eviction",
            "singularName": "",
            "namespaced": True,
            "group": "policy",
            "version": "v1",
            "kind": "Eviction",
            "verbs": ["create"],
        }
        assert entries["pods/log"]["kind"] == "Pod" and entries["pods/log"]["verbs"] == ["get"]
        assert entries["pods/status"]["verbs"] == ["get", "patch", "update"]
        assert entries["namespaces"]["namespaced"] is False
        assert entries["services"]["shortNames"] == ["svc"]
        assert "pods/exec" not in entries and "pods/binding" not in entries
        assert [e["name"] for e in doc["resources"]] == sorted(entries)

    run(check)


def test_apps_v1_resource_list_has_scale_in_autoscaling_v1() -> None:
    async def check(api: API) -> None:
        entries = _entries((await api.get("/apis/apps/v1")).json())
        assert entries["deployments"]["shortNames"] == ["deploy"]
        assert entries["deployments"]["categories"] == ["all"]
        assert entries["deployments/scale"] == {
            "name": "deployments/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }
        assert entries["deployments/status"]["kind"] == "Deployment"
        assert "replicasets/scale" in entries

    run(check)


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        (f"{AGGREGATED_V2},{AGGREGATED_V2BETA1},application/json", "v2"),  # kubectl 1.30+
        (f"{AGGREGATED_V2BETA1},application/json", "v2beta1"),  # kubectl 1.27-1.29
    ],
    ids=["v2", "v2beta1"],
)
def test_aggregated_discovery_echoes_its_content_type(accept: str, version: str) -> None:
    """§3.2: the client decides by the response Content-Type, which must echo g, v, as."""

    async def check(api: API) -> None:
        reply = await api.get("/apis", headers={"Accept": accept})
        assert reply.content_type == discovery.aggregated_content_type(version)
        doc = reply.json()
        assert (doc["kind"], doc["apiVersion"]) == (
            "APIGroupDiscoveryList",
            f"apidiscovery.k8s.io/{version}",
        )
        groups = {item["metadata"]["name"]: item for item in doc["items"]}
        assert sorted(groups) == ["apps", "coordination.k8s.io"]
        apps_v1 = groups["apps"]["versions"][0]
        assert (apps_v1["version"], apps_v1["freshness"]) == ("v1", "Current")
        deploy = {r["resource"]: r for r in apps_v1["resources"]}["deployments"]
        assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
        assert (deploy["scope"], deploy["singularResource"]) == ("Namespaced", "deployment")
        assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
        subs = {s["subresource"]: s for s in deploy["subresources"]}
        assert subs["scale"]["responseKind"] == {
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
        }
        assert subs["status"]["verbs"] == ["get", "patch", "update"]

        core = await api.get("/api", headers={"Accept": accept})
        assert core.content_type == discovery.aggregated_content_type(version)
        items = core.json()["items"]
        assert [i["metadata"]["name"] for i in items] == [""]
        pods = {r["resource"]: r for r in items[0]["versions"][0]["resources"]}["pods"]
        eviction = {s["subresource"]: s for s in pods["subresources"]}["eviction"]
        assert eviction["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
        nodes = {r["resource"]: r for r in items[0]["versions"][0]["resources"]}["nodes"]
        assert nodes["scope"] == "Cluster"

    run(check)


def test_plain_json_accept_gets_legacy_discovery() -> None:
    async def check(api: API) -> None:
        for accept in (
            "application/json, */*",
            "",
            "application/vnd.kubernetes.protobuf,application/json",
        ):
            reply = await api.get("/apis", headers={"Accept": accept} if accept else {})
            assert reply.content_type == "application/json"
            assert reply.json()["kind"] == "APIGroupList"

    run(check)


def test_every_advertised_subresource_is_routed() -> None:
    """Only advertise what is served: no subresource in discovery answers "the server could
    not find the requested resource" (the pod may be gone by then: eviction deletes it)."""

    async def check(api: API) -> None:
        assert (await api.post(PODS_PATH, pod("p"))).status == 201
        assert (await api.post(DEPLOYS, deployment("d"))).status == 201
        rs = MANIFESTS["ReplicaSet"]
        assert (await api.post(rs[0], rs[1])).status == 201
        assert (await api.post("/api/v1/nodes", {"metadata": {"name": "n"}})).status == 201
        svc = MANIFESTS["Service"]
        assert (await api.post(svc[0], svc[1])).status == 201
        names = {
            "pods": "p",
            "deployments": "d",
            "replicasets": "web-abc",
            "nodes": "n",
            "services": "web",
            "namespaces": "default",
        }
        for gv in discovery.served_group_versions():
            for entry in (await api.get(gv)).json()["resources"]:
                plural, _, sub = entry["name"].partition("/")
                if not sub:
                    continue
                res = next(r for r in RESOURCES if r.plural == plural)
                url = res.url("default", names[plural]) + "/" + sub
                method = "POST" if entry["verbs"] == ["create"] else "GET"
                reply = await api.call(method, url, body={})
                assert reply.status < 400 or reply.json()["message"] != NOT_FOUND, url

    run(check)


# -- CRUD ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_crud_of_every_kind(kind: str) -> None:
    """POST 201, GET 200, POST again 409 AlreadyExists, PUT 200, stale PUT 409 Conflict,
    DELETE 200, then 404; every single object carries kind and apiVersion (§15.2)."""
    collection, manifest = MANIFESTS[kind]
    name = manifest["metadata"]["name"]
    url = f"{collection}/{name}"

    async def check(api: API) -> None:
        created = await api.post(collection, manifest)
        assert created.status == 201, created.body
        obj = created.json()
        assert (obj["kind"], obj["apiVersion"]) == (manifest["kind"], manifest["apiVersion"])
        assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"]

        got = await api.get(url)
        assert got.status == 200 and got.json()["metadata"]["uid"] == obj["metadata"]["uid"]
        assert (got.json()["kind"], got.json()["apiVersion"]) == (
            manifest["kind"],
            manifest["apiVersion"],
        )

        again = assert_status(await api.post(collection, manifest), 409, "AlreadyExists")
        assert again["details"]["name"] == name

        changed = dict(got.json())
        changed["metadata"] = {**changed["metadata"], "labels": {"changed": "yes"}}
        put = await api.put(url, changed)
        assert put.status == 200, put.body
        assert put.json()["metadata"]["labels"]["changed"] == "yes"
        assert put.json()["kind"] == manifest["kind"]
        assert int(put.json()["metadata"]["resourceVersion"]) > int(
            obj["metadata"]["resourceVersion"]
        )

        assert_status(await api.put(url, changed), 409, "Conflict")  # changed's RV is stale now

        deleted = await api.delete(url)
        assert deleted.status == 200, deleted.body
        assert deleted.json()["kind"] in ("Status", manifest["kind"])
        if kind != "Namespace":  # a namespace only turns Terminating
            assert_status(await api.get(url), 404, "NotFound")

    run(check)


def test_delete_answers_a_success_status_or_the_pod() -> None:
    """kube-apiserver answers a Status for an object gone at once and the object for pods
    (kubectl accepts both, §7.3)."""

    async def check(api: API) -> None:
        await api.post(CMS, configmap("c"))
        status = (await api.delete(f"{CMS}/c")).json()
        assert status["kind"] == "Status" and status["status"] == "Success"
        assert status["details"] == {
            "name": "c",
            "kind": "configmaps",
            "uid": status["details"]["uid"],
        }
        await api.post(DEPLOYS, deployment("d"))
        details = (await api.delete(f"{DEPLOYS}/d")).json()["details"]
        assert (details["group"], details["kind"]) == ("apps", "deployments")
        await api.post(PODS_PATH, pod("p"))
        gone = await api.delete(f"{PODS_PATH}/p")
        assert (gone.json()["kind"], gone.json()["metadata"]["name"]) == ("Pod", "p")

    run(check)


def test_invalid_objects_are_422_with_causes() -> None:
    async def check(api: API) -> None:
        bad = deployment("bad")
        bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        status = assert_status(await api.post(DEPLOYS, bad), 422, "Invalid")
        assert (status["details"]["kind"], status["details"]["name"]) == ("Deployment", "bad")
        assert status["details"]["causes"] and all(
            "field" in c for c in status["details"]["causes"]
        )

    run(check)


def test_post_takes_the_namespace_of_the_url() -> None:
    async def check(api: API) -> None:
        created = await api.post("/api/v1/namespaces/other/configmaps", configmap("c"))
        assert created.json()["metadata"]["namespace"] == "other"
        body = configmap("d")
        body["metadata"]["namespace"] = "default"
        status = assert_status(
            await api.post("/api/v1/namespaces/other/configmaps", body), 400, "BadRequest"
        )
        assert status["message"] == (
            "the namespace of the provided object does not match the namespace sent on the request"
        )
        missing = assert_status(
            await api.post("/api/v1/namespaces/nope/configmaps", configmap("e")), 404, "NotFound"
        )
        assert "nope" in missing["message"]

    run(check)


def test_put_name_must_match_the_url() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("c"))
        status = assert_status(await api.put(f"{CMS}/c", configmap("other")), 400, "BadRequest")
        assert "does not match the name on the URL" in status["message"]

    run(check)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"kind": "ConfigMap", "metadata": {"name": ', "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object, got array"),
        (b'"text"', None, "must be a JSON object, got string"),
        (b'{"a": NaN}', "application/json", "not valid JSON"),
        (b'{"a": 1e999}', "application/json", "out of range"),
        (b"\xff\xfe{}", "application/json", "not valid UTF-8"),
        (b'{"a": "\\ud800"}', "application/json", "unpaired UTF-16 surrogate"),
        (b"[" * 150 + b"]" * 150, "application/json", "nested more than"),
        (
            b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}}',
            None,
            "but the URL is for ConfigMap",
        ),
        (
            b'{"kind": "ConfigMap", "apiVersion": "apps/v1", "metadata": {"name": "x"}}',
            None,
            "but the URL is for",
        ),
        (b'{"metadata": "x"}', None, "metadata: expected an object, got string"),
        (b'{"metadata": {"name": 5}}', None, "metadata.name: expected a string, got number"),
    ],
    ids=[
        "truncated",
        "array",
        "string-no-content-type",
        "nan",
        "infinite",
        "not-utf8",
        "lone-surrogate",
        "too-deep",
        "other-kind",
        "other-group",
        "metadata-string",
        "name-number",
    ],
)
def test_bad_bodies_are_400_naming_the_problem(
    body: bytes, content_type: str | None, message: str
) -> None:
    async def check(api: API) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        status = assert_status(
            await api.call("POST", CMS, data=body, headers=headers), 400, "BadRequest"
        )
        assert message in status["message"]

    run(check)


def test_body_without_content_type_is_json() -> None:
    """The Python client and kubectl's scale PUT send no Content-Type (§15.5)."""

    async def check(api: API) -> None:
        reply = await api.call("POST", CMS, data=json.dumps(configmap("c")).encode())
        assert reply.status == 201, reply.body

    run(check)


def test_protobuf_bodies_are_415_saying_what_to_do() -> None:
    """kubectl ≥ 1.32's imperative `create` sends protobuf (§9.3): say to use `-f`."""

    async def check(api: API) -> None:
        headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
        for method, path in (("POST", CMS), ("PUT", f"{CMS}/x")):
            reply = await api.call(method, path, data=b"k8s\x00\n\x0f\n\x02v1", headers=headers)
            status = assert_status(reply, 415, "UnsupportedMediaType")
            assert "kubectl create -f" in status["message"] and "protobuf" in status["message"]
        yaml = await api.call(
            "POST", CMS, data=b"kind: ConfigMap", headers={"Content-Type": "application/yaml"}
        )
        assert "application/json" in assert_status(yaml, 415, "UnsupportedMediaType")["message"]

    run(check)


def test_bodies_over_3_mib_are_413() -> None:
    async def check(api: API) -> None:
        big = b'{"data": {"a": "' + b"x" * MAX_BODY_BYTES + b'"}}'
        assert_status(await api.call("POST", CMS, data=big), 413, "RequestEntityTooLarge")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(4):
                yield b" " * (1024 * 1024)

        async with api.session.post(
            api.server.url + CMS,
            data=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        ) as resp:
            assert "Content-Length" not in resp.request_info.headers
            assert resp.status == 413
        assert (await api.get("/version")).status == 200

    run(check)


def test_dry_run_create_writes_nothing() -> None:
    async def check(api: API) -> None:
        reply = await api.post(CMS, configmap("c"), params={"dryRun": "All"})
        assert reply.status == 201 and reply.json()["metadata"]["name"] == "c"
        assert_status(await api.get(f"{CMS}/c"), 404, "NotFound")
        assert_status(
            await api.post(CMS, configmap("c"), params={"dryRun": "Some"}), 400, "BadRequest"
        )

    run(check)


def test_delete_options_from_body_and_query() -> None:
    """A JSON DeleteOptions body is read; a protobuf or unparseable one means the defaults
    (kubectl ≥ 1.32's drain fallback, §9.3 (a)); bad values are 400."""

    async def check(api: API) -> None:
        for name in ("a", "b", "c", "d"):
            await api.post(CMS, configmap(name))
        json_body = await api.call("DELETE", f"{CMS}/a", data=b'{"propagationPolicy":"Background"}')
        assert json_body.status == 200
        proto = await api.call(
            "DELETE",
            f"{CMS}/b",
            data=b"k8s\x00\x0a\x12",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        assert proto.status == 200
        junk = await api.call("DELETE", f"{CMS}/c", data=b"\x00\x01not json")
        assert junk.status == 200
        bad = await api.call("DELETE", f"{CMS}/d", params={"propagationPolicy": "Sideways"})
        assert "propagationPolicy" in assert_status(bad, 400, "BadRequest")["message"]
        bad = await api.call("DELETE", f"{CMS}/d", data=b'{"gracePeriodSeconds": "soon"}')
        assert "gracePeriodSeconds" in assert_status(bad, 400, "BadRequest")["message"]
        stale = await api.call(
            "DELETE", f"{CMS}/d", body={"preconditions": {"resourceVersion": "1"}}
        )
        assert_status(stale, 409, "Conflict")
        assert (
            await api.call("DELETE", f"{CMS}/d", params={"gracePeriodSeconds": "0"})
        ).status == 200

    run(check)


def test_delete_collection_deletes_what_the_selector_matches() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("a", {"app": "x"}))
        await api.post(CMS, configmap("b", {"app": "x"}))
        await api.post(CMS, configmap("c", {"app": "y"}))
        reply = await api.delete(CMS, params={"labelSelector": "app=x"})
        assert reply.status == 200
        assert [o["metadata"]["name"] for o in reply.json()["items"]] == ["a", "b"]
        left = (await api.get(CMS)).json()["items"]
        assert [o["metadata"]["name"] for o in left] == ["c"]

    run(check)


# -- lists and selectors -------------------------------------------------------------------------


def test_lists_carry_resource_version_and_empty_items() -> None:
    """§15.8: `get -w` watches from the list's resourceVersion; `items` is never null."""

    async def check(api: API) -> None:
        empty = (await api.get(CMS)).json()
        assert (empty["kind"], empty["apiVersion"]) == ("ConfigMapList", "v1")
        assert empty["items"] == [] and empty["metadata"]["resourceVersion"]
        await api.post(CMS, configmap("b"))
        await api.post("/api/v1/namespaces/other/configmaps", configmap("a"))
        listed = (await api.get("/api/v1/configmaps")).json()  # kubectl get -A
        assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in listed["items"]] == [
            ("default", "b"),
            ("other", "a"),
        ]
        assert int(listed["metadata"]["resourceVersion"]) > int(
            empty["metadata"]["resourceVersion"]
        )

    run(check)


def test_limit_and_continue_paginate() -> None:
    async def check(api: API) -> None:
        for name in ("a", "b", "c"):
            await api.post(CMS, configmap(name))
        first = (await api.get(CMS, params={"limit": "2"})).json()
        assert [o["metadata"]["name"] for o in first["items"]] == ["a", "b"]
        token = first["metadata"]["continue"]
        rest = (await api.get(CMS, params={"limit": "2", "continue": token})).json()
        assert [o["metadata"]["name"] for o in rest["items"]] == ["c"]
        assert "continue" not in rest["metadata"]
        assert_status(await api.get(CMS, params={"limit": "lots"}), 400, "BadRequest")

    run(check)


def test_label_and_field_selectors_filter() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("web-1", {"app": "web", "tier": "front"}))
        await api.post(CMS, configmap("web-2", {"app": "web"}))
        await api.post(CMS, configmap("db", {"app": "db"}))

        async def names(**params: str) -> list[str]:
            reply = await api.get(CMS, params=params)
            assert reply.status == 200, reply.body
            return [o["metadata"]["name"] for o in reply.json()["items"]]

        assert await names(labelSelector="app=web") == ["web-1", "web-2"]
        assert await names(labelSelector="app!=web") == ["db"]
        assert await names(labelSelector="app in (db,web),tier") == ["web-1"]
        assert await names(labelSelector="!tier") == ["db", "web-2"]
        assert await names(fieldSelector="metadata.name=db") == ["db"]
        assert await names(fieldSelector="metadata.name!=db", labelSelector="app notin (x)") == [
            "web-1",
            "web-2",
        ]

    run(check)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"labelSelector": "app in (web"}, "found '', expected"),
        ({"labelSelector": "app=" + "x" * 70}, "must be no more than 63 characters"),
        ({"fieldSelector": "spec.foo=bar"}, "field label not supported: spec.foo"),
        ({"fieldSelector": "nonsense"}, "invalid selector"),
        ({"resourceVersion": "abc"}, "resourceVersion"),
        ({"watch": "maybe"}, "watch"),
        ({"timeoutSeconds": "soon", "watch": "true"}, "timeoutSeconds"),
    ],
)
def test_bad_query_parameters_are_400(params: dict[str, str], message: str) -> None:
    """Also for a watch: the status is decided before the stream starts."""

    async def check(api: API) -> None:
        for extra in ({}, {} if "watch" in params else {"watch": "true"}):
            status = assert_status(
                await api.get(CMS, params={**params, **extra}), 400, "BadRequest"
            )
            assert message in status["message"]

    run(check)


# -- Tables --------------------------------------------------------------------------------------


def test_table_list_has_columns_rows_and_row_objects() -> None:
    """§5 and §15.1: column names, `format: name`, row `object` PartialObjectMetadata."""

    async def check(api: API) -> None:
        await api.post(PODS_PATH, pod("web-1"))
        reply = await api.get("/api/v1/pods", headers={"Accept": TABLE_ACCEPT})
        assert reply.status == 200
        assert reply.content_type == "application/json;as=Table;v=v1;g=meta.k8s.io"
        table = reply.json()
        assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
        assert table["metadata"]["resourceVersion"]
        columns = table["columnDefinitions"]
        assert [c["name"] for c in columns] == [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates",
        ]
        assert columns[0]["format"] == "name"
        assert [c["priority"] for c in columns] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
        [row] = table["rows"]
        assert row["cells"][:3] == ["web-1", "0/1", "Pending"]
        assert row["cells"][4] == "90s"  # the server's clock is 90 s after creation
        obj = row["object"]
        assert (obj["kind"], obj["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
        assert obj["metadata"]["namespace"] == "default" and obj["metadata"]["labels"] == {
            "app": "web"
        }

    run(check)


def test_table_of_one_object_and_errors_stay_status() -> None:
    async def check(api: API) -> None:
        await api.post(DEPLOYS, deployment("web", 3))
        table = (await api.get(f"{DEPLOYS}/web", headers={"Accept": TABLE_ACCEPT})).json()
        assert [c["name"] for c in table["columnDefinitions"]][:5] == [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
        ]
        assert len(table["rows"]) == 1 and table["rows"][0]["cells"][:2] == ["web", "0/3"]
        assert_status(
            await api.get(f"{DEPLOYS}/nope", headers={"Accept": TABLE_ACCEPT}), 404, "NotFound"
        )
        # kubectl -o yaml asks for plain JSON: objects, not Tables
        plain = await api.get(f"{DEPLOYS}/web", headers={"Accept": "application/json"})
        assert plain.json()["kind"] == "Deployment"

    run(check)


# -- subresources --------------------------------------------------------------------------------


def test_status_subresource_writes_only_status() -> None:
    async def check(api: API) -> None:
        created = (await api.post(DEPLOYS, deployment("web", 2))).json()
        body = dict(created)
        body["status"] = {"replicas": 2, "observedGeneration": 1}
        body["spec"] = {**created["spec"], "replicas": 9}
        reply = await api.put(f"{DEPLOYS}/web/status", body)
        assert reply.status == 200, reply.body
        got = (await api.get(f"{DEPLOYS}/web/status")).json()
        assert got["status"]["replicas"] == 2 and got["spec"]["replicas"] == 2

    run(check)


def test_scale_subresource_reads_and_writes_replicas() -> None:
    """`kubectl scale` (§7.1): GET/PUT a Scale, or merge-PATCH it."""

    async def check(api: API) -> None:
        await api.post(DEPLOYS, deployment("web", 2))
        scale = (await api.get(f"{DEPLOYS}/web/scale")).json()
        assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
        assert scale["spec"] == {"replicas": 2}
        assert scale["status"] == {"replicas": 0, "selector": "app=web"}
        scale["spec"]["replicas"] = 5
        put = await api.call(
            "PUT", f"{DEPLOYS}/web/scale", data=json.dumps(scale).encode()
        )  # no CT
        assert put.status == 200 and put.json()["spec"]["replicas"] == 5
        assert_status(await api.put(f"{DEPLOYS}/web/scale", scale), 409, "Conflict")  # stale RV
        patched = await api.patch(
            f"{DEPLOYS}/web/scale", {"spec": {"replicas": 1}}, "application/merge-patch+json"
        )
        assert patched.status == 200 and patched.json()["spec"]["replicas"] == 1
        assert (await api.get(f"{DEPLOYS}/web")).json()["spec"]["replicas"] == 1
        negative = await api.put(f"{DEPLOYS}/web/scale", {"spec": {"replicas": -1}})
        assert "spec.replicas" in assert_status(negative, 422, "Invalid")["message"]
        assert_status(await api.get(f"{DEPLOYS}/nope/scale"), 404, "NotFound")

    run(check)


def test_eviction_deletes_the_pod_with_201() -> None:
    """kubectl drain POSTs a policy/v1 Eviction and accepts a 201 Status (§10 drain)."""

    async def check(api: API) -> None:
        await api.post(PODS_PATH, pod("p"))
        eviction = {
            "kind": "Eviction",
            "apiVersion": "policy/v1",
            "metadata": {"name": "p", "namespace": "default"},
            "deleteOptions": {},
        }
        reply = await api.post(f"{PODS_PATH}/p/eviction", eviction)
        assert reply.status == 201 and reply.json()["status"] == "Success"
        assert_status(await api.get(f"{PODS_PATH}/p"), 404, "NotFound")
        assert_status(await api.post(f"{PODS_PATH}/p/eviction", eviction), 404, "NotFound")

    run(check)


def test_pod_log_says_logs_are_not_served_yet() -> None:
    async def check(api: API) -> None:
        assert_status(await api.get(f"{PODS_PATH}/p/log"), 404, "NotFound")
        await api.post(PODS_PATH, pod("p"))
        status = assert_status(await api.get(f"{PODS_PATH}/p/log"), 400, "BadRequest")
        assert "kubelet" in status["message"]

    run(check)


# -- patch ---------------------------------------------------------------------------------------


def test_merge_patch_adds_and_removes_labels() -> None:
    """`kubectl label` sends a merge patch; null deletes (RFC 7386)."""

    async def check(api: API) -> None:
        await api.post(CMS, configmap("c", {"a": "1", "b": "2"}))
        patch = {"metadata": {"labels": {"a": None, "c": "3"}}}
        reply = await api.patch(f"{CMS}/c", patch, "application/merge-patch+json")
        assert reply.status == 200
        assert reply.json()["metadata"]["labels"] == {"b": "2", "c": "3"}
        stale = {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}}
        assert_status(
            await api.patch(f"{CMS}/c", stale, "application/merge-patch+json"), 409, "Conflict"
        )
        rename = {"metadata": {"name": "d"}}
        assert_status(
            await api.patch(f"{CMS}/c", rename, "application/merge-patch+json"), 400, "BadRequest"
        )

    run(check)


def test_json_patch_applies_in_order_or_not_at_all() -> None:
    """`kubectl rollout undo` sends a JSON patch (RFC 6902)."""

    async def check(api: API) -> None:
        await api.post(CMS, configmap("c", a="1"))
        ops = [{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]
        reply = await api.patch(f"{CMS}/c", ops, "application/json-patch+json")
        assert reply.status == 200 and reply.json()["data"] == {"b": "2"}
        failing = [
            {"op": "add", "path": "/data/c", "value": "3"},
            {"op": "test", "path": "/data/b", "value": "9"},
        ]
        assert_status(
            await api.patch(f"{CMS}/c", failing, "application/json-patch+json"), 422, "Invalid"
        )
        assert (await api.get(f"{CMS}/c")).json()["data"] == {"b": "2"}
        assert_status(
            await api.patch(f"{CMS}/c", {"op": "add"}, "application/json-patch+json"),
            400,
            "BadRequest",
        )

    run(check)


def test_strategic_merge_patch_is_415_saying_what_to_use() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("c"))
        for ct in ("application/strategic-merge-patch+json", "application/apply-patch+yaml", None):
            headers = {"Content-Type": ct} if ct else {}
            reply = await api.call("PATCH", f"{CMS}/c", data=b"{}", headers=headers)
            status = assert_status(reply, 415, "UnsupportedMediaType")
            assert (
                "strategic merge patch" in status["message"]
                and "kubectl replace -f" in status["message"]
            )

    run(check)


# -- watch ---------------------------------------------------------------------------------------


def test_watch_streams_added_modified_deleted_from_the_list_rv() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("before"))
        rv = (await api.get(CMS)).json()["metadata"]["resourceVersion"]
        async with api.stream(CMS, {"watch": "true", "resourceVersion": rv}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            created = (await api.post(CMS, configmap("c", a="1"))).json()
            updated = dict(created, data={"a": "2"})
            await api.put(f"{CMS}/c", updated)
            await api.delete(f"{CMS}/c")
            events = [await next_event(resp) for _ in range(3)]
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        for e in events:
            assert (e["object"]["kind"], e["object"]["apiVersion"]) == ("ConfigMap", "v1")
            assert e["object"]["metadata"]["name"] == "c"
        assert events[1]["object"]["data"] == {"a": "2"}

    run(check)


def test_watch_without_resource_version_starts_with_what_exists() -> None:
    async def check(api: API) -> None:
        await api.post(CMS, configmap("a"))
        async with api.stream(CMS, {"watch": "1"}) as resp:
            event = await next_event(resp)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "a")

    run(check)


def test_watch_of_one_object_by_field_selector_or_url() -> None:
    """rollout status, wait and delete watch one object (§15.10)."""

    async def check(api: API) -> None:
        rv = (await api.get(CMS)).json()["metadata"]["resourceVersion"]
        async with (
            api.stream(
                CMS, {"watch": "true", "resourceVersion": rv, "fieldSelector": "metadata.name=b"}
            ) as by_field,
            api.stream(f"{CMS}/b", {"watch": "true", "resourceVersion": rv}) as by_url,
        ):
            await api.post(CMS, configmap("a"))
            await api.post(CMS, configmap("b"))
            for resp in (by_field, by_url):
                event = await next_event(resp)
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")

    run(check)


def test_table_watch_sends_one_row_tables() -> None:
    """§6: with the Table Accept each event's object is a Table with exactly one row."""

    async def check(api: API) -> None:
        rv = (await api.get(PODS_PATH)).json()["metadata"]["resourceVersion"]
        async with api.stream(
            PODS_PATH, {"watch": "true", "resourceVersion": rv}, {"Accept": TABLE_ACCEPT}
        ) as resp:
            assert resp.headers["Content-Type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
            await api.post(PODS_PATH, pod("web-1"))
            await api.delete(f"{PODS_PATH}/web-1")
            events = [await next_event(resp) for _ in range(2)]
        assert [e["type"] for e in events] == ["ADDED", "DELETED"]
        for e in events:
            table = e["object"]
            assert table["kind"] == "Table" and len(table["rows"]) == 1
            assert table["rows"][0]["cells"][0] == "web-1"
            assert table["rows"][0]["object"]["metadata"]["namespace"] == "default"
            assert table["columnDefinitions"][0]["name"] == "Name"

    run(check)


def test_watch_honours_timeout_seconds_and_ends_cleanly() -> None:
    """Informers send timeoutSeconds and re-watch; the chunked stream must end with its
    terminator (a clean EOF, not a reset)."""

    async def check(api: API) -> None:
        rv = (await api.get(CMS)).json()["metadata"]["resourceVersion"]
        async with api.stream(
            CMS, {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}
        ) as resp:
            rest = await asyncio.wait_for(resp.read(), 30)  # raises on an unclean end
        assert rest == b""
        assert api.server.active_watches == 0

    run(check)


def test_watch_from_a_compacted_revision_is_one_410_error_event() -> None:
    async def check(api: API) -> None:
        for name in ("a", "b", "c"):
            await api.post(CMS, configmap(name))
        rv = int((await api.get(CMS)).json()["metadata"]["resourceVersion"])
        await api.backend.compact(rv)
        async with api.stream(CMS, {"watch": "true", "resourceVersion": str(rv - 2)}) as resp:
            event = await next_event(resp)
            rest = await asyncio.wait_for(resp.read(), 30)
        assert event["type"] == "ERROR"
        status = event["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        assert rest == b""

    run(check)


class _WatchClosed(LocalBackend):
    """A LocalBackend that says when a watcher is released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    def cancel_watch(self, watcher: Any) -> None:
        super().cancel_watch(watcher)
        self.released.set()


def test_client_going_away_releases_the_store_watch() -> None:
    """No leaks: a disconnect cancels the handler, which closes the store's watch."""

    async def main() -> None:
        backend = _WatchClosed()
        async with serving(backend=backend) as api:
            await api.post(CMS, configmap("a"))
            async with api.stream(CMS, {"watch": "true"}) as resp:
                assert (await next_event(resp))["type"] == "ADDED"
                assert len(backend.hub) == 1 and api.server.active_watches == 1
                resp.connection.transport.close()  # type: ignore[union-attr]
            await asyncio.wait_for(backend.released.wait(), 10)
            assert len(backend.hub) == 0

            async def handler_done() -> None:  # its finally runs right after the release
                while api.server.active_watches:
                    await asyncio.sleep(0)

            await asyncio.wait_for(handler_done(), 10)
            assert (await api.get(CMS)).status == 200

    asyncio.run(main())


def test_stop_ends_open_watches_cleanly() -> None:
    async def main() -> None:
        backend = LocalBackend()
        async with serving(backend=backend) as api:
            await api.post(CMS, configmap("a"))
            async with api.stream(CMS, {"watch": "true"}) as resp:
                await next_event(resp)
                stopping = asyncio.create_task(api.server.stop())
                assert await asyncio.wait_for(resp.read(), 30) == b""
                await stopping
            assert len(backend.hub) == 0

    asyncio.run(main())


# -- store failures ------------------------------------------------------------------------------


class _FailingStore(ObjectStore):
    """Raises `error` from every read."""

    def __init__(self, error: Exception) -> None:
        super().__init__(LocalBackend())
        self.error = error

    async def get(
        self, res: Resource, namespace: str, name: str, *, resource_version: str = ""
    ) -> Obj:
        raise self.error

    async def list(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> Obj:
        raise self.error

    async def watch(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        yield WatchEvent("ADDED", {"metadata": {"name": "x", "resourceVersion": "5"}})
        raise self.error


def test_no_leader_is_503_with_retry_after() -> None:
    """DESIGN.md: nothing was proposed, so clients may retry any verb after Retry-After."""

    async def check(api: API) -> None:
        reply = await api.get(f"{CMS}/x")
        assert_status(reply, 503, "ServiceUnavailable")
        assert reply.headers["Retry-After"] == "2"

    run(check, store=_FailingStore(errors.unavailable("no leader", retry_after=2)))


def test_outcome_unknown_is_504_without_retry_after() -> None:
    async def check(api: API) -> None:
        reply = await api.get(CMS)
        assert_status(reply, 504, "Timeout")
        assert "Retry-After" not in reply.headers

    run(check, store=_FailingStore(errors.outcome_unknown("leader changed")))


def test_an_unexpected_exception_is_500_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def check(api: API) -> None:
        status = assert_status(await api.get(f"{CMS}/x"), 500, "InternalError")
        assert "boom" not in status["message"]  # no internals for the client, in the log
        async with api.stream(CMS, {"watch": "true"}) as resp:
            assert (await next_event(resp))["type"] == "ADDED"
            error = await next_event(resp)
            assert (error["type"], error["object"]["code"]) == ("ERROR", 500)
        assert (await api.get("/version")).status == 200

    run(check, store=_FailingStore(RuntimeError("boom")))
    assert "boom" in caplog.text and "Traceback" in caplog.text


# -- serving -------------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelab-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        backend = LocalBackend()
        server = RESTServer(
            new_store(backend),
            host="127.0.0.1",
            port=0,
            ssl=server_ctx,
            tokens={TOKEN},
            server_address="127.0.0.1:6443",
        )
        await server.start()
        try:
            assert server.url.startswith("https://")
            async with aiohttp.ClientSession() as session:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with session.get(
                    server.url + "/version", headers=headers, ssl=client_ctx
                ) as resp:
                    assert resp.status == 200 and (await resp.json())["minor"] == "33"
                async with session.get(server.url + "/api", ssl=client_ctx) as resp:
                    assert resp.status == 401
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_taken_port_is_address_in_use_naming_it() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            server = RESTServer(
                new_store(LocalBackend()),
                host="127.0.0.1",
                port=port,
                ssl=None,
                tokens=set(),
                server_address="",
            )
            with pytest.raises(AddressInUse, match=f"127.0.0.1:{port}"):
                await server.start()
            await server.stop()

    asyncio.run(main())


# -- patch documents (RFC 7386 and RFC 6902 appendix examples) ----------------------------------

MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "doc", "want"), MERGE_CASES)
def test_merge_patch_follows_rfc_7386_appendix_a(target: Any, doc: Any, want: Any) -> None:
    before = json.dumps(target)
    assert patch.merge_patch(target, doc) == want
    assert json.dumps(target) == before  # the input is not modified (the store may retry)


JSON_PATCH_CASES = [
    ("A.1 add member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2 add element", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3 remove member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("A.4 remove element", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5 replace", {"baz": "qux", "foo": "bar"},
     [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ("A.6 move member", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 move element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 test ok", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 add nested", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.14 escapes", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16 append", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ("copy", {"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}],
     {"a": {"b": 1}, "c": {"b": 1}}),
    ("replace root", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
]  # fmt: skip


@pytest.mark.parametrize(("target", "ops", "want"), [c[1:] for c in JSON_PATCH_CASES],
                         ids=[c[0] for c in JSON_PATCH_CASES])  # fmt: skip
def test_json_patch_follows_rfc_6902_appendix_a(target: Any, ops: Any, want: Any) -> None:
    before = json.dumps(target)
    assert patch.json_patch(target, ops) == want
    assert json.dumps(target) == before


JSON_PATCH_ERRORS = [
    ("A.9 test fails", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 422),
    ("A.12 missing parent", {"foo": "bar"},
     [{"op": "add", "path": "/baz/bat", "value": "qux"}], 422),
    ("A.15 string is not number", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": "10"}], 422),
    ("true is not 1", {"a": 1}, [{"op": "test", "path": "/a", "value": True}], 422),
    ("index past the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 0}], 422),
    ("leading zero", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], 422),
    ("remove missing", {"a": 1}, [{"op": "remove", "path": "/b"}], 422),
    ("move into child", {"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 422),
    ("unknown op", {}, [{"op": "frobnicate", "path": "/a"}], 400),
    ("no value", {}, [{"op": "add", "path": "/a"}], 400),
    ("bad pointer", {}, [{"op": "add", "path": "a", "value": 1}], 400),
    ("bad escape", {}, [{"op": "add", "path": "/~2", "value": 1}], 400),
    ("not a list", {}, {"op": "add"}, 400),
]  # fmt: skip


@pytest.mark.parametrize(("target", "ops", "code"), [c[1:] for c in JSON_PATCH_ERRORS],
                         ids=[c[0] for c in JSON_PATCH_ERRORS])  # fmt: skip
def test_json_patch_errors_are_400_or_422(target: Any, ops: Any, code: int) -> None:
    """A malformed document is 400; a well-formed one that does not apply is 422."""
    with pytest.raises(errors.APIError) as e:
        patch.json_patch(target, ops)
    assert e.value.code == code
