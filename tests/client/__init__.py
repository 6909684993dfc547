"""Tests of the gRPC resource API and the client library, with in-process servers.

Helpers shared by the test modules: a `Cluster` of gRPC servers (127.0.0.1, ephemeral
ports, the real `_Auth` interceptor) over one `ObjectStore(LocalBackend())`, as masters
share one replicated store.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import grpc

from controlplane.client.resources import ResourceClient
from controlplane.kube.resources import NAMESPACES
from controlplane.kube.storage import LocalBackend, ObjectStore
from controlplane.server import api
from controlplane.server.resources import add_to_server

T = TypeVar("T")
Obj = dict[str, Any]

TOKEN = "tok"
TEST_DEADLINE = 60.0  # generous: a test that hangs fails instead


def run(coro: Coroutine[Any, Any, T], timeout: float = TEST_DEADLINE) -> T:
    """Run a test body with a deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 20.0
) -> None:
    """Poll `check` until it holds; AssertionError naming `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        ok = await result if not isinstance(result, bool) else result
        if ok:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A port nobody listens on (bound and released: refused connections)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


async def serve(
    store: ObjectStore, port: int = 0, tokens: set[str] | None = None
) -> tuple[grpc.aio.Server, str]:
    """A started gRPC server with the resource API behind the token interceptor."""
    server = grpc.aio.server(
        options=api.SERVER_OPTIONS, interceptors=[api._Auth(tokens or {TOKEN})]
    )
    add_to_server(server, store)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"127.0.0.1:{port} is in use"
    await server.start()
    return server, f"127.0.0.1:{bound}"


class Cluster:
    """One store, `n` servers on it, and helpers to make clients of them."""

    def __init__(self, store: ObjectStore, backend: LocalBackend) -> None:
        self.store = store
        self.backend = backend
        self.servers: list[grpc.aio.Server] = []
        self.endpoints: list[str] = []
        self.clients: list[ResourceClient] = []

    def client(
        self, endpoints: list[str] | None = None, token: str = TOKEN, **kw: Any
    ) -> ResourceClient:
        c = ResourceClient(endpoints or self.endpoints, token, **kw)
        self.clients.append(c)
        return c

    async def stop(self, i: int) -> None:
        """Stop server `i`: its calls fail, connections to it are refused."""
        await self.servers[i].stop(None)

    async def start(self, i: int) -> None:
        """Start a new server `i` on the address of the stopped one (a master restart)."""
        port = int(self.endpoints[i].rsplit(":", 1)[1])
        self.servers[i], _ = await serve(self.store, port)

    async def restart(self, i: int) -> None:
        await self.stop(i)
        await self.start(i)


@asynccontextmanager
async def cluster(
    n: int = 1, *, store_of: Callable[[int, ObjectStore], ObjectStore] | None = None
) -> AsyncIterator[Cluster]:
    """`n` servers on one fresh store with namespaces default and kube-system;
    `store_of(i, store)` may give server `i` another view of the store (fault injection)."""
    backend = LocalBackend()
    store = ObjectStore(backend)
    for ns in ("default", "kube-system"):
        await store.create(NAMESPACES, "", {"metadata": {"name": ns}})
    c = Cluster(store, backend)
    try:
        for i in range(n):
            server, ep = await serve(store_of(i, store) if store_of else store)
            c.servers.append(server)
            c.endpoints.append(ep)
        yield c
    finally:
        for client in c.clients:
            await client.close()
        for server in c.servers:
            await server.stop(None)
