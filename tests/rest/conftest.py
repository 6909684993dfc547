"""An in-process REST server over `ObjectStore(LocalBackend())`, and a small client for it.

Each test runs its own event loop (`run(check)`), its own store and a server on 127.0.0.1
port 0, so tests share nothing. The clock is fixed, so Table ages are deterministic.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from controlplane.kube.resources import NAMESPACES
from controlplane.kube.storage import LocalBackend, ObjectStore
from controlplane.server.rest import RESTServer

TOKEN = "rest-test-token"
NOW = 1_700_000_000.0
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)

Obj = dict[str, Any]
_NO_BODY = object()


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


class API:
    """A client of the server under test; every call carries the token unless told."""

    def __init__(
        self,
        server: RESTServer,
        store: ObjectStore,
        backend: LocalBackend,
        session: aiohttp.ClientSession,
    ) -> None:
        self.server = server
        self.store = store
        self.backend = backend
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = _NO_BODY,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = TOKEN,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not _NO_BODY:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method,
            self.server.url + path,
            data=data,
            headers=hdrs,
            params=params,
            skip_auto_headers=() if "Content-Type" in hdrs else ("Content-Type",),
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = _NO_BODY, **kw: Any) -> Reply:
        return await self.call("POST", path, body=body, **kw)

    async def put(self, path: str, body: Any = _NO_BODY, **kw: Any) -> Reply:
        return await self.call("PUT", path, body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)

    async def patch(self, path: str, body: Any, content_type: str, **kw: Any) -> Reply:
        return await self.call(
            "PATCH", path, body=body, headers={"Content-Type": content_type}, **kw
        )

    @asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        hdrs = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
        async with self.session.get(self.server.url + path, params=params, headers=hdrs) as resp:
            yield resp


async def next_event(resp: aiohttp.ClientResponse) -> Obj:
    """The next watch event line (fails the test if the stream ends first)."""
    line = await asyncio.wait_for(resp.content.readline(), 10)
    assert line, "the watch stream ended"
    event: Obj = json.loads(line)
    return event


def new_store(backend: LocalBackend) -> ObjectStore:
    uids = iter(f"uid-{i}" for i in range(1, 1_000_000))
    return ObjectStore(
        backend, clock=lambda: NOW, new_uid=lambda: next(uids), rand=random.Random(1)
    )


@asynccontextmanager
async def serving(
    store: ObjectStore | None = None,
    *,
    backend: LocalBackend | None = None,
    tokens: set[str] | Callable[[], set[str]] | None = None,
) -> AsyncIterator[API]:
    """A started server over a fresh store with namespaces `default` and `other`."""
    backend = backend or LocalBackend()
    if store is None:
        store = new_store(backend)
        for ns in ("default", "other"):
            await store.create(NAMESPACES, "", {"metadata": {"name": ns}})
    server = RESTServer(
        store,
        host="127.0.0.1",
        port=0,
        ssl=None,
        tokens=tokens if tokens is not None else {TOKEN},
        server_address="10.9.8.7:6443",
        clock=lambda: NOW + 90,
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield API(server, store, backend, session)
    finally:
        await server.stop()


def run(check: Callable[[API], Awaitable[None]], **kw: Any) -> None:
    """Run `check` against a fresh server in its own event loop."""

    async def main() -> None:
        async with serving(**kw) as api:
            await check(api)

    asyncio.run(main())


# -- manifests ---------------------------------------------------------------------------------


def configmap(name: str, labels: Mapping[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def pod(name: str, node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": spec,
    }


def deployment(name: str, replicas: int = 1, *, app: str | None = None) -> Obj:
    app = app or name
    template = {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": template,
        },
    }


def replicaset(name: str) -> Obj:
    obj = deployment(name)
    obj["kind"] = "ReplicaSet"
    return obj


# One valid manifest per served kind: (path of the collection, manifest).
MANIFESTS: dict[str, tuple[str, Obj]] = {
    "Namespace": (
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
    ),
    "Node": ("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
    "Pod": ("/api/v1/namespaces/default/pods", pod("web-1")),
    "Service": (
        "/api/v1/namespaces/default/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    ),
    "Endpoints": (
        "/api/v1/namespaces/default/endpoints",
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"}, "subsets": []},
    ),
    "Event": (
        "/api/v1/namespaces/default/events",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17a"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
            "reason": "Scheduled",
            "message": "assigned",
            "type": "Normal",
            "source": {"component": "default-scheduler"},
        },
    ),
    "ConfigMap": ("/api/v1/namespaces/default/configmaps", configmap("settings", a="1")),
    "Deployment": ("/apis/apps/v1/namespaces/default/deployments", deployment("web")),
    "ReplicaSet": ("/apis/apps/v1/namespaces/default/replicasets", replicaset("web-abc")),
    "Lease": (
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "lock"},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
        },
    ),
}
