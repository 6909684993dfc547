"""The gRPC resource API through `ResourceClient`: CRUD, selectors, watch, errors, failover."""

from __future__ import annotations

import json
import socket
from typing import Any

import grpc
import pytest

from controlplane.apipb import resources_pb2 as rpb
from controlplane.apipb import resources_pb2_grpc
from controlplane.client.resources import ResourceClient, WatchEvent
from controlplane.config import ConfigError, Token, load_config, write_token_file
from controlplane.kube import errors
from controlplane.kube.errors import APIError
from controlplane.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    LEASES,
    NAMESPACES,
    PODS,
    Resource,
)
from controlplane.kube.storage import Fence, ObjectStore
from controlplane.server.resources import STATUS_KEY, grpc_code

from . import TOKEN, cluster, cm, free_port, run

Obj = dict[str, Any]


def deployment(name: str, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def raw_stub(channel: grpc.aio.Channel) -> Any:
    """The generated stub, for calls without the client library."""
    return resources_pb2_grpc.ResourcesStub(channel)  # type: ignore[no-untyped-call]


async def api_error(coro: Any) -> APIError:
    with pytest.raises(APIError) as info:
        await coro
    return info.value


# -- CRUD -----------------------------------------------------------------------------------------


def test_create_get_update_delete_round_trip() -> None:
    """Each verb answers the object as the store keeps it, resourceVersion included."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            created = await client.create(CONFIGMAPS, "default", cm("a", x="1"))
            assert created["metadata"]["uid"]
            assert created["data"] == {"x": "1"}
            got = await client.get(CONFIGMAPS, "default", "a")
            assert got == created
            got["data"]["x"] = "2"
            updated = await client.update(CONFIGMAPS, "default", got)
            assert updated["data"] == {"x": "2"}
            assert int(updated["metadata"]["resourceVersion"]) > int(
                created["metadata"]["resourceVersion"]
            )
            assert await c.store.get(CONFIGMAPS, "default", "a") == updated
            await client.delete(CONFIGMAPS, "default", "a")
            err = await api_error(client.get(CONFIGMAPS, "default", "a"))
            assert (err.code, err.reason) == (404, "NotFound")

    run(body())


def test_bind_assigns_a_pending_pod_once() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            await client.create(PODS, "default", pod)
            bound = await client.bind("default", "p", "worker-2")
            assert bound["spec"]["nodeName"] == "worker-2"
            err = await api_error(client.bind("default", "p", "worker-3"))
            assert (err.code, err.reason) == (409, "Conflict")
            assert (await client.get(PODS, "default", "p"))["spec"]["nodeName"] == "worker-2"

    run(body())


def test_update_status_keeps_spec_and_update_keeps_status() -> None:
    """Spec and status are written separately, as through the REST status subresource."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            d = await client.create(DEPLOYMENTS, "default", deployment("web", replicas=2))
            d["status"] = {"replicas": 2, "readyReplicas": 1}
            d["spec"]["replicas"] = 5  # ignored by update_status
            after = await client.update_status(DEPLOYMENTS, "default", d)
            assert after["status"]["readyReplicas"] == 1
            assert after["spec"]["replicas"] == 2
            after["spec"]["replicas"] = 3
            after["status"] = {}
            again = await client.update(DEPLOYMENTS, "default", after)
            assert again["spec"]["replicas"] == 3
            assert again["status"]["readyReplicas"] == 1
            assert again["metadata"]["generation"] == 2

    run(body())


def test_list_with_label_and_field_selectors() -> None:
    """Selectors filter the list; all namespaces when none is given."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await client.create(CONFIGMAPS, "default", cm("a", {"tier": "web"}))
            await client.create(CONFIGMAPS, "default", cm("b", {"tier": "db"}))
            await client.create(CONFIGMAPS, "kube-system", cm("c", {"tier": "web"}))

            def names(lst: Obj) -> list[str]:
                return [o["metadata"]["name"] for o in lst["items"]]

            assert names(await client.list(CONFIGMAPS, "default")) == ["a", "b"]
            assert names(await client.list(CONFIGMAPS)) == ["a", "b", "c"]
            web = await client.list(CONFIGMAPS, label_selector="tier=web")
            assert names(web) == ["a", "c"]
            assert web["kind"] == "ConfigMapList"
            assert web["metadata"]["resourceVersion"]
            one = await client.list(CONFIGMAPS, field_selector="metadata.name=b")
            assert names(one) == ["b"]
            err = await api_error(client.list(CONFIGMAPS, label_selector="tier in (web"))
            assert err.code == 400

    run(body())


def test_list_paginates_with_limit_and_continue() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            for name in "abcde":
                await client.create(CONFIGMAPS, "default", cm(name))
            seen, cont = [], ""
            while True:
                page = await client.list(CONFIGMAPS, "default", limit=2, continue_=cont)
                seen += [o["metadata"]["name"] for o in page["items"]]
                cont = page["metadata"].get("continue", "")
                if not cont:
                    break
            assert seen == list("abcde")

    run(body())


def test_delete_with_precondition() -> None:
    """Delete options travel: a stale resourceVersion precondition is a 409."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            obj = await client.create(CONFIGMAPS, "default", cm("a"))
            err = await api_error(
                client.delete(CONFIGMAPS, "default", "a", precondition_resource_version="1")
            )
            assert (err.code, err.reason) == (409, "Conflict")
            rv = obj["metadata"]["resourceVersion"]
            gone = await client.delete(CONFIGMAPS, "default", "a", precondition_resource_version=rv)
            assert gone["metadata"]["name"] == "a"

    run(body())


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "code", "expected_grpc"),
    [
        ("not-found", 404, grpc.StatusCode.NOT_FOUND),
        ("already-exists", 409, grpc.StatusCode.ALREADY_EXISTS),
        ("conflict", 409, grpc.StatusCode.ABORTED),
        ("invalid", 422, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_errors_round_trip_with_the_same_status(
    case: str, code: int, expected_grpc: grpc.StatusCode
) -> None:
    """The client raises the APIError the store raised (same code, reason, message and
    details), and the gRPC code follows the HTTP code."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            obj = await c.store.create(CONFIGMAPS, "default", cm("a"))
            stale = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
            bad = cm("Not_Valid")
            if case == "not-found":
                want = await api_error(c.store.get(CONFIGMAPS, "default", "nope"))
                got = await api_error(client.get(CONFIGMAPS, "default", "nope"))
            elif case == "already-exists":
                want = await api_error(c.store.create(CONFIGMAPS, "default", cm("a")))
                got = await api_error(client.create(CONFIGMAPS, "default", cm("a")))
            elif case == "conflict":
                want = await api_error(c.store.update(CONFIGMAPS, "default", "a", stale))
                got = await api_error(client.update(CONFIGMAPS, "default", stale))
            else:
                want = await api_error(c.store.create(CONFIGMAPS, "default", bad))
                got = await api_error(client.create(CONFIGMAPS, "default", bad))
            assert got.code == code
            assert got.status() == want.status()
            assert grpc_code(want) == expected_grpc

    run(body())


def test_error_status_rides_in_the_trailer() -> None:
    """A raw gRPC client sees the code and finds the Status JSON in `kube-status-bin`."""

    async def body() -> None:
        async with cluster() as c, grpc.aio.insecure_channel(c.endpoints[0]) as channel:
            stub = raw_stub(channel)
            req = rpb.GetRequest(
                version="v1", resource="configmaps", namespace="default", name="nope"
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Get(req, metadata=(("authorization", f"Bearer {TOKEN}"),))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            trailer = dict(info.value.trailing_metadata() or ())
            status = json.loads(trailer[STATUS_KEY])
            assert status == errors.not_found(CONFIGMAPS, "nope").status()

    run(body())


def test_unknown_resource_is_not_found_listing_known_kinds() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            widgets = Resource("example.com", "v1", "Widget", "widgets", True)
            err = await api_error(client.get(widgets, "default", "w"))
            assert err.code == 404
            assert "widgets" in err.message
            assert "Deployment (apps/v1)" in err.message

    run(body())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "body: required"),
        (b"{not json", "body: not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"\xff\xfe", "body: not valid JSON"),
    ],
    ids=["empty", "malformed", "array", "bad-utf8"],
)
def test_bad_body_is_bad_request(raw: bytes, expected: str) -> None:
    """A malformed body is a 400 naming the problem, never an internal error."""

    async def body() -> None:
        async with cluster() as c, grpc.aio.insecure_channel(c.endpoints[0]) as channel:
            stub = raw_stub(channel)
            req = rpb.WriteRequest(
                version="v1", resource="configmaps", namespace="default", body=raw
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Create(req, metadata=(("authorization", f"Bearer {TOKEN}"),))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert expected in (info.value.details() or "")

    run(body())


def test_namespace_mismatch_is_bad_request() -> None:
    async def body() -> None:
        async with cluster() as c:
            obj = cm("a")
            obj["metadata"]["namespace"] = "kube-system"
            err = await api_error(c.client().create(CONFIGMAPS, "default", obj))
            assert err.code == 400
            assert "does not match" in err.message

    run(body())


@pytest.mark.parametrize("token", ["", "wrong"], ids=["missing", "invalid"])
def test_calls_without_a_valid_token_are_refused(token: str) -> None:
    """Unary calls and watches alike: 401, and nothing written."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client(token=token)
            err = await api_error(client.create(CONFIGMAPS, "default", cm("a")))
            assert err.code == 401
            err = await api_error(client.list(CONFIGMAPS))
            assert err.code == 401
            with pytest.raises(APIError) as info:
                async for _ev in client.watch(CONFIGMAPS, "default"):
                    pass
            assert info.value.code == 401
            assert (await c.store.list(CONFIGMAPS, None))["items"] == []

    run(body())


# -- fencing --------------------------------------------------------------------------------------


def test_fenced_write_needs_the_current_lease_term() -> None:
    """A write fenced by a Lease term applies while that term holds, and is refused with
    409 once the Lease has changed hands (DESIGN.md "Fencing")."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            lease: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "ctl"},
                "spec": {"holderIdentity": "a", "leaseDurationSeconds": 1, "leaseTransitions": 0},
            }
            lease = await client.create(LEASES, "kube-system", lease)
            term_a = Fence("kube-system", "ctl", "a", 0)
            await client.create(CONFIGMAPS, "default", cm("x"), fence=term_a)
            lease["spec"].update(holderIdentity="b", leaseTransitions=1)
            await client.update(LEASES, "kube-system", lease)
            err = await api_error(client.create(CONFIGMAPS, "default", cm("y"), fence=term_a))
            assert (err.code, err.reason) == (409, "Conflict")
            err = await api_error(client.delete(CONFIGMAPS, "default", "x", fence=term_a))
            assert err.code == 409
            term_b = Fence("kube-system", "ctl", "b", 1)
            await client.delete(CONFIGMAPS, "default", "x", fence=term_b)

    run(body())


# -- watch ----------------------------------------------------------------------------------------


async def take(events: Any, n: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async for ev in events:
        out.append(ev)
        if len(out) == n:
            break
    return out


def test_watch_streams_changes_in_order() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            start = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            a = await client.create(CONFIGMAPS, "default", cm("a"))
            a["data"] = {"k": "v"}
            await client.update(CONFIGMAPS, "default", a)
            await client.delete(CONFIGMAPS, "default", "a")
            events = await take(client.watch(CONFIGMAPS, "default", resource_version=start), 3)
            assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
                ("ADDED", "a"),
                ("MODIFIED", "a"),
                ("DELETED", "a"),
            ]
            assert events[1].object["data"] == {"k": "v"}

    run(body())


def test_watch_from_zero_starts_with_synthetic_adds_and_honours_selectors() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await client.create(CONFIGMAPS, "default", cm("a", {"tier": "web"}))
            await client.create(CONFIGMAPS, "default", cm("b", {"tier": "db"}))
            stream = client.watch(
                CONFIGMAPS, "default", resource_version="0", label_selector="tier=web"
            )
            first = await take(stream, 1)
            assert [(e.type, e.object["metadata"]["name"]) for e in first] == [("ADDED", "a")]
            await client.create(CONFIGMAPS, "default", cm("c", {"tier": "web"}))
            nxt = await take(stream, 1)
            assert [(e.type, e.object["metadata"]["name"]) for e in nxt] == [("ADDED", "c")]

    run(body())


def test_watch_from_a_compacted_version_is_one_410_error_event() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            old = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            for name in "abc":
                await client.create(CONFIGMAPS, "default", cm(name))
            now = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            await c.backend.compact(int(now))
            events = [e async for e in client.watch(CONFIGMAPS, "default", resource_version=old)]
            assert [e.type for e in events] == ["ERROR"]
            assert events[0].object["code"] == 410
            assert events[0].object["reason"] == "Expired"

    run(body())


def test_watch_resumes_on_another_master_without_loss_or_repeat() -> None:
    """The master serving a watch stops: the watch goes on from the next master, after
    the last event it delivered."""

    async def body() -> None:
        async with cluster(2) as c:
            client = c.client()
            start = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            stream = client.watch(CONFIGMAPS, "default", resource_version=start)
            await client.create(CONFIGMAPS, "default", cm("a"))
            first = await take(stream, 1)
            await c.servers[0].stop(None)  # the watch was on the first endpoint
            await c.store.create(CONFIGMAPS, "default", cm("b"))
            await c.store.create(CONFIGMAPS, "default", cm("c"))
            rest = await take(stream, 2)
            names = [e.object["metadata"]["name"] for e in first + rest]
            assert names == ["a", "b", "c"]

    run(body())


# -- failover -------------------------------------------------------------------------------------


def test_reads_and_writes_fail_over_from_a_master_that_is_down() -> None:
    """Connection refused: nothing was sent, so writes move on as well as reads."""

    async def body() -> None:
        async with cluster() as c:
            down = f"127.0.0.1:{free_port()}"
            client = c.client([down, *c.endpoints], timeout=2.0)
            await client.create(CONFIGMAPS, "default", cm("a"))
            assert (await client.get(CONFIGMAPS, "default", "a"))["metadata"]["name"] == "a"

    run(body())


class _NoLeaderStore(ObjectStore):
    """A master that finds no leader: every write is a 503, nothing proposed."""

    async def create(self, *args: Any, **kwargs: Any) -> Obj:
        raise errors.unavailable("no leader: none elected within 1.8 s")


class _OutcomeUnknownStore(ObjectStore):
    """A master whose write may have been applied: 504."""

    async def create(self, *args: Any, **kwargs: Any) -> Obj:
        raise errors.outcome_unknown("outcome unknown: the leader changed while in flight")


def test_write_is_retried_on_the_next_master_after_no_leader() -> None:
    async def body() -> None:
        def store_of(i: int, store: ObjectStore) -> ObjectStore:
            return _NoLeaderStore(store.backend) if i == 0 else store

        async with cluster(2, store_of=store_of) as c:
            client = c.client()
            await client.create(CONFIGMAPS, "default", cm("a"))
            assert (await c.store.get(CONFIGMAPS, "default", "a"))["metadata"]["name"] == "a"

    run(body())


def test_write_with_unknown_outcome_is_not_retried() -> None:
    """504 reaches the caller as is; the next call goes to the next master."""

    async def body() -> None:
        def store_of(i: int, store: ObjectStore) -> ObjectStore:
            return _OutcomeUnknownStore(store.backend) if i == 0 else store

        async with cluster(2, store_of=store_of) as c:
            client = c.client()
            err = await api_error(client.create(CONFIGMAPS, "default", cm("a")))
            assert (err.code, err.reason) == (504, "Timeout")
            assert (await c.store.list(CONFIGMAPS, "default"))["items"] == []
            await client.create(CONFIGMAPS, "default", cm("a"))  # served by the second

    run(body())


def test_paused_master_write_is_outcome_unknown_and_read_fails_over() -> None:
    """A master that accepts connections but never answers (SIGSTOP) is found by the
    deadline: a read moves on; a write is reported as outcome unknown, not retried."""

    async def body() -> None:
        with socket.socket() as paused:
            paused.bind(("127.0.0.1", 0))
            paused.listen()
            ep = f"127.0.0.1:{paused.getsockname()[1]}"
            async with cluster() as c:
                await c.store.create(CONFIGMAPS, "default", cm("a"))
                client = c.client([ep, *c.endpoints], timeout=0.5)
                got = await client.get(CONFIGMAPS, "default", "a")
                assert got["metadata"]["name"] == "a"
                client = c.client([ep, *c.endpoints], timeout=0.5)
                err = await api_error(client.create(CONFIGMAPS, "default", cm("b")))
                assert err.code == 504
                await client.create(CONFIGMAPS, "default", cm("b"))  # the next master

    run(body())


def test_no_master_answering_is_503_after_retry_for() -> None:
    async def body() -> None:
        client = ResourceClient([f"127.0.0.1:{free_port()}"], TOKEN, timeout=0.5, retry_for=0.5)
        try:
            err = await api_error(client.get(NAMESPACES, "", "default"))
            assert err.code == 503
        finally:
            await client.close()

    run(body())


# -- construction ---------------------------------------------------------------------------------


def test_for_cluster_uses_the_masters_and_the_users_token(tmp_path: Any) -> None:
    cfg_file = tmp_path / "cluster.toml"
    cfg_file.write_text(f'[cluster]\nname = "t"\ndata_dir = "{tmp_path}"\n')
    cfg = load_config(cfg_file)
    write_token_file(
        cfg.token_file, [Token("admin-tok", "admin", "1"), Token("ctl-tok", "controller", "2")]
    )

    async def body() -> None:
        client = ResourceClient.for_cluster(cfg)
        try:
            assert client.endpoints == [f"{m.ip}:{m.grpc_port}" for m in cfg.masters]
            assert client._metadata == (("authorization", "Bearer ctl-tok"),)
            with pytest.raises(ConfigError, match="no token for user 'kubelet'"):
                ResourceClient.for_cluster(cfg, "kubelet")
            second = ResourceClient.for_cluster(cfg, first=cfg.masters[1].name)
            m = cfg.masters
            assert second.endpoints == [f"{x.ip}:{x.grpc_port}" for x in (m[1], m[0], *m[2:])]
            await second.close()
        finally:
            await client.close()

    run(body())


def test_client_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="at least one endpoint"):
        ResourceClient([], TOKEN)


def test_update_needs_a_name() -> None:
    async def body() -> None:
        async with cluster() as c:
            err = await api_error(c.client().update(CONFIGMAPS, "default", {"metadata": {}}))
            assert err.code == 400
            assert "metadata.name" in err.message

    run(body())
