"""The gRPC API refuses callers without the cluster's token, and the `kubelab` command
answers bad input with what to do: 3 real masters (127.65/16, or another free subnet in
60-79)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import grpc
import pytest

from controlplane.apipb import api_pb2
from controlplane.client.kv import ClientError, KVClient
from controlplane.storepb import store_pb2

from .cluster import Cluster, Leader, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("access")
    with running_cluster(root, preferred_octet=65, masters=3) as c:
        yield c


@pytest.fixture(autouse=True)
def leader(cluster: Cluster, summary: Callable[[str, str], None]) -> Leader:
    cluster.log_up_time(summary)
    return cluster.heal()


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "not-the-token"], ids=["empty", "wrong"])
def test_client_without_the_token_is_unauthenticated(cluster: Cluster, token: str) -> None:
    async def calls() -> list[tuple[str, grpc.StatusCode | None, float]]:
        outcomes = []
        async with KVClient(cluster.endpoints(), token) as kv:
            for what, call in (
                ("put", lambda: kv.put(b"/access/x", b"1")),
                ("get", lambda: kv.get(b"/access/x")),
            ):
                t0 = time.monotonic()
                with pytest.raises(ClientError) as err:
                    await call()
                outcomes.append((what, err.value.code, time.monotonic() - t0))
        return outcomes

    for what, code, took in asyncio.run(calls()):
        assert code == grpc.StatusCode.UNAUTHENTICATED, what
        assert took < 5, f"{what}: {took:.1f} s: an authentication error is not retried"


def test_calls_without_metadata_are_unauthenticated(cluster: Cluster) -> None:
    """Each service, unary and streaming, with no `authorization` metadata at all."""

    async def calls() -> dict[str, tuple[grpc.StatusCode, str]]:
        found: dict[str, tuple[grpc.StatusCode, str]] = {}
        async with grpc.aio.insecure_channel(cluster.endpoint(cluster.names[0])) as ch:
            unary = {
                "KV/Range": (store_pb2.RangeRequest(key=b"/access/x"), store_pb2.RangeResponse),
                "KV/Put": (store_pb2.PutRequest(key=b"/access/x", value=b"1"), None),
                "Cluster/Status": (api_pb2.StatusRequest(), api_pb2.StatusResponse),
                "Maintenance/Hash": (api_pb2.HashRequest(), api_pb2.HashResponse),
            }
            for method, (req, resp_type) in unary.items():
                call = ch.unary_unary(
                    f"/controlplane.apipb.{method}",
                    request_serializer=type(req).SerializeToString,
                    response_deserializer=(resp_type or store_pb2.PutResponse).FromString,
                )
                try:
                    await call(req, timeout=5)
                except grpc.aio.AioRpcError as e:
                    found[method] = (e.code(), e.details() or "")
            watch = ch.unary_stream(
                "/controlplane.apipb.Watch/Watch",
                request_serializer=api_pb2.WatchRequest.SerializeToString,
                response_deserializer=api_pb2.WatchResponse.FromString,
            )
            try:
                async for _ in watch(api_pb2.WatchRequest(key=b"/access/"), timeout=5):
                    pass
            except grpc.aio.AioRpcError as e:
                found["Watch/Watch"] = (e.code(), e.details() or "")
        return found

    found = asyncio.run(calls())
    assert set(found) == {"KV/Range", "KV/Put", "Cluster/Status", "Maintenance/Hash", "Watch/Watch"}
    for method, (code, details) in found.items():
        assert code == grpc.StatusCode.UNAUTHENTICATED, (method, code, details)
        assert "bearer token" in details, (method, details)

    async def nothing_written() -> int:
        async with cluster.client() as kv:
            return len((await kv.get(b"/access/", prefix=True)).kvs)

    assert asyncio.run(nothing_written()) == 0


def test_watch_with_a_wrong_token_fails_at_once(cluster: Cluster) -> None:
    async def watch() -> tuple[grpc.StatusCode | None, float]:
        async with KVClient(cluster.endpoints(), "not-the-token") as kv:
            t0 = time.monotonic()
            with pytest.raises(ClientError) as err:
                async for _ in kv.watch(b"/access/", prefix=True):
                    pass
            return err.value.code, time.monotonic() - t0

    code, took = asyncio.run(watch())
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert took < 5, f"{took:.1f} s: an authentication error is not retried"


# -- bad input to the command line ------------------------------------------------------------


def test_kill_of_an_unknown_member_lists_the_members(cluster: Cluster) -> None:
    res = cluster.cli("kill", "nosuch", check=False)
    assert res.returncode == 2, res
    assert "nosuch" in res.stderr
    assert ", ".join(cluster.names) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    doc = cluster.status_json()
    assert all(m["state"] == "running" for m in doc["masters"])


def test_up_when_already_up_says_so(cluster: Cluster, leader: Leader) -> None:
    pids = {m["name"]: m["pid"] for m in cluster.status_json()["masters"]}
    res = cluster.cli("up", check=False)
    assert res.returncode == 0, res
    assert "already up" in res.stdout, res.stdout
    assert {m["name"]: m["pid"] for m in cluster.status_json()["masters"]} == pids


def test_start_of_a_running_master_says_so(cluster: Cluster, leader: Leader) -> None:
    res = cluster.cli("start", leader.name, check=False)
    assert res.returncode == 1, res
    assert f"{leader.name} is already running" in res.stderr, res.stderr
