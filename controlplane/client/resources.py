"""`ResourceClient`: Kubernetes objects over the masters' gRPC resource API, with failover.

The typed face of `controlplane/apipb/resources.proto`: objects are plain dicts (the JSON
the REST API speaks), failures are `controlplane.kube.errors.APIError`s rebuilt from the
`Status` the server sends in the `kube-status-bin` trailer, so callers see exactly the
error a REST client would (`e.code == 409 and e.reason == "Conflict"`).

Deadlines and failover follow `KVClient` (DESIGN.md "Paused processes" and the write
contract): every unary call has a deadline, streams use HTTP/2 keepalive, and a call that
fails on one master moves to the next one when that is safe:
- reads (get, list, watch) after any unavailability: no leader, no connection, a deadline;
- writes only when nothing was proposed: 503 (the server found no leader) or no
  connection. After 504 "outcome unknown", a deadline, or a connection lost mid-call, a
  write is never retried: the caller gets a 504 `APIError` and decides (an update with a
  resourceVersion precondition is safe to redo, a create of a generated name is not).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from controlplane.apipb import resources_pb2 as rpb
from controlplane.apipb import resources_pb2_grpc
from controlplane.client.kv import KEEPALIVE_OPTIONS
from controlplane.config import ClusterConfig, ConfigError, read_token_file
from controlplane.kube import errors
from controlplane.kube.errors import APIError
from controlplane.kube.resources import PODS, Resource
from controlplane.kube.storage import Fence, WatchEvent

__all__ = ["STATUS_KEY", "APIError", "Fence", "ResourceClient", "WatchEvent"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

STATUS_KEY = "kube-status-bin"  # as controlplane.server.resources sends it
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a big list; objects themselves are at most 1.5 MiB

# kv.py's keepalive and reconnect settings (a paused master is found by deadlines), plus
# room for a big list.
CHANNEL_OPTIONS = [*KEEPALIVE_OPTIONS, ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]

# gRPC codes of calls that carry no Status (the server was never reached, or refused the
# call before the resource API saw it) -> the HTTP code of the APIError we raise.
_HTTP_OF_GRPC: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.UNAUTHENTICATED: (401, "Unauthorized"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "NotFound"),
    grpc.StatusCode.UNIMPLEMENTED: (404, "NotFound"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "BadRequest"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (413, "RequestEntityTooLarge"),
}


def status_error(e: grpc.aio.AioRpcError) -> APIError | None:
    """The `APIError` the server sent in the trailer, or None if there is none."""
    for key, value in e.trailing_metadata() or ():
        if key != STATUS_KEY:
            continue
        try:
            st = json.loads(value)
            return APIError(
                int(st["code"]),
                str(st.get("reason", "")),
                str(st.get("message", "")),
                details=st.get("details"),
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable %s trailer: %r", STATUS_KEY, value[:200])
    return None


def _connect_failure(e: grpc.aio.AioRpcError) -> bool:
    """The call never reached a server, so nothing can have been proposed."""
    return e.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (
        (e.details() or "").lower()
    )


def classify(e: grpc.aio.AioRpcError, endpoint: str, *, write: bool) -> tuple[APIError, bool]:
    """The `APIError` of a failed call, and whether another master may be asked (see the
    module docstring)."""
    err = status_error(e)
    if err is not None:  # the resource API answered
        if err.code == 503:  # no leader: nothing was proposed
            return err, True
        return err, err.code == 504 and not write
    detail = f"{endpoint}: {e.details() or e.code().name}"
    if _connect_failure(e):
        return errors.unavailable(detail), True
    if e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
        if write:  # it may have been sent, and proposed
            return errors.outcome_unknown(f"outcome unknown: {detail}"), False
        return errors.unavailable(detail), True
    code, reason = _HTTP_OF_GRPC.get(e.code(), (500, "InternalError"))
    return APIError(code, reason, detail), False


def _write_request(
    res: Resource, namespace: str, name: str, obj: Obj, fence: Fence | None
) -> rpb.WriteRequest:
    req = rpb.WriteRequest(
        group=res.group,
        version=res.version,
        resource=res.plural,
        namespace=namespace,
        name=name,
        body=_encode(obj),
    )
    _set_fence(req, fence)
    return req


def _set_fence(req: rpb.WriteRequest | rpb.DeleteRequest, fence: Fence | None) -> None:
    if fence is not None:
        req.fence.CopyFrom(
            rpb.Fence(
                namespace=fence.namespace,
                name=fence.name,
                holder=fence.holder,
                transitions=fence.transitions,
            )
        )


def _list_request(
    res: Resource,
    namespace: str | None,
    label_selector: str,
    field_selector: str,
    resource_version: str,
) -> rpb.ListRequest:
    return rpb.ListRequest(
        group=res.group,
        version=res.version,
        resource=res.plural,
        namespace=namespace or "",
        label_selector=label_selector,
        field_selector=field_selector,
        resource_version=resource_version,
    )


def _encode(obj: Obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _name_of(obj: Obj) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise errors.bad_request("metadata.name: required to update an object")
    return name


def _resume_version(start: str, seen: str | None) -> str | None:
    """Where a broken watch may resume without losing or repeating events: after the last
    event it delivered. None when it cannot: a watch from "" or "0" begins with synthetic
    ADDED events in name order, not revision order, so their versions are no resume point."""
    if seen is not None:
        return seen if start not in ("", "0") else None
    return start


class ResourceClient:
    """Kubernetes objects on a cluster's masters (see the module docstring).

    `timeout` bounds each attempt of a unary call; `retry_for` bounds the failover of a
    call (and of a watch that lost its master) across the endpoints."""

    def __init__(
        self,
        endpoints: Sequence[str],
        token: str,
        *,
        timeout: float = 5.0,
        retry_for: float = 15.0,
    ) -> None:
        if not endpoints:
            raise ValueError("ResourceClient needs at least one endpoint (host:port)")
        if timeout <= 0 or retry_for < 0:
            raise ValueError(f"timeout must be > 0 and retry_for >= 0 (got {timeout}, {retry_for})")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.retry_for = retry_for
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._channels = {
            ep: grpc.aio.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in self.endpoints
        }
        self._preferred = 0

    @classmethod
    def for_cluster(
        cls,
        cfg: ClusterConfig,
        user: str = "controller",
        *,
        timeout: float = 5.0,
        first: str | None = None,
    ) -> ResourceClient:
        """A client of every master of `cfg` (the one named `first` before the others),
        with the token of `user` in its token file; `ConfigError` naming the file and its
        users when there is none."""
        tokens = read_token_file(cfg.token_file)
        for t in tokens:
            if t.user == user:
                masters = sorted(cfg.masters, key=lambda m: m.name != first)  # stable
                endpoints = [f"{m.ip}:{m.grpc_port}" for m in masters]
                return cls(endpoints, t.token, timeout=timeout)
        users = ", ".join(sorted({t.user for t in tokens})) or "none"
        raise ConfigError(f"{cfg.token_file}: no token for user {user!r} (users: {users})")

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()

    async def __aenter__(self) -> ResourceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads ---------------------------------------------------------------------------------

    async def get(
        self, res: Resource, namespace: str, name: str, *, resource_version: str = ""
    ) -> Obj:
        req = rpb.GetRequest(
            group=res.group,
            version=res.version,
            resource=res.plural,
            namespace=namespace,
            name=name,
            resource_version=resource_version,
        )
        return await self._call(lambda s: s.Get, req, write=False)

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        limit: int = 0,
        continue_: str = "",
    ) -> Obj:
        """A `<Kind>List` (all namespaces when `namespace` is None or "")."""
        req = _list_request(res, namespace, label_selector, field_selector, resource_version)
        req.limit = limit
        setattr(req, "continue", continue_)  # a Python keyword: no attribute syntax
        return await self._call(lambda s: s.List, req, write=False)

    # -- writes --------------------------------------------------------------------------------

    async def create(
        self, res: Resource, namespace: str, obj: Obj, *, fence: Fence | None = None
    ) -> Obj:
        req = _write_request(res, namespace, "", obj, fence)
        return await self._call(lambda s: s.Create, req, write=True)

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, fence: Fence | None = None
    ) -> Obj:
        """Replace the object named by `obj`'s metadata; its `metadata.resourceVersion`, when
        set, is a precondition (409 Conflict when stale)."""
        req = _write_request(res, namespace, _name_of(obj), obj, fence)
        return await self._call(lambda s: s.Update, req, write=True)

    async def update_status(
        self, res: Resource, namespace: str, obj: Obj, *, fence: Fence | None = None
    ) -> Obj:
        """Replace the status of the object named by `obj`'s metadata (its spec is kept)."""
        req = _write_request(res, namespace, _name_of(obj), obj, fence)
        return await self._call(lambda s: s.UpdateStatus, req, write=True)

    async def bind(
        self, namespace: str, name: str, node: str, *, fence: Fence | None = None
    ) -> Obj:
        """`pods/binding`: assign the pending pod `namespace/name` to `node` (409 if bound)."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        req = _write_request(PODS, namespace, name, binding, fence)
        return await self._call(lambda s: s.Bind, req, write=True)

    async def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        precondition_uid: str = "",
        precondition_resource_version: str = "",
        fence: Fence | None = None,
    ) -> Obj:
        """The deleted object's last state, or the object still present (graceful deletion,
        finalizers)."""
        req = rpb.DeleteRequest(
            group=res.group,
            version=res.version,
            resource=res.plural,
            namespace=namespace,
            name=name,
            propagation_policy=propagation_policy,
            precondition_uid=precondition_uid,
            precondition_resource_version=precondition_resource_version,
        )
        _set_fence(req, fence)
        if grace_period_seconds is not None:
            req.grace_period_seconds = grace_period_seconds
        return await self._call(lambda s: s.Delete, req, write=True)

    # -- watch ---------------------------------------------------------------------------------

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version`, as the REST watch sends them (ERROR events
        included: a compacted version is one ERROR event with a 410 Status, then the end).

        The stream ends when the server ends it (`timeout_seconds`, a slow consumer): watch
        again from the last version seen. When its master fails, the watch resumes on
        another one after the last event it delivered, so each event still arrives once
        and in order; when it cannot resume (started from "" or "0" and events were
        delivered, or no master answered for `retry_for`) it raises a 503 `APIError`.
        Refused requests raise their `APIError` (401, 400 for a bad selector...)."""
        loop = asyncio.get_running_loop()
        seen: str | None = None
        failing_since: float | None = None  # start of the current run of failed attempts
        while True:
            ep = self.endpoints[self._preferred]
            start = _resume_version(resource_version, seen)
            if start is None:
                raise errors.unavailable(
                    f"watch on {ep} broke after events from resourceVersion "
                    f"{resource_version!r}: list again and watch from the list's version"
                )
            req = _list_request(res, namespace, label_selector, field_selector, start)
            req.allow_bookmarks = allow_bookmarks
            if timeout_seconds is not None:
                req.timeout_seconds = timeout_seconds
            stub = resources_pb2_grpc.ResourcesStub(self._channels[ep])
            began = loop.time()
            call = stub.Watch(req, metadata=self._metadata)
            try:
                async for msg in call:
                    failing_since = None
                    ev = WatchEvent(msg.type, _decode(msg.body))
                    meta = ev.object.get("metadata")
                    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
                    if ev.type != "ERROR" and rv:
                        seen = str(rv)
                    yield ev
                return
            except grpc.aio.AioRpcError as e:
                err, retry = classify(e, ep, write=False)
                if not retry:
                    raise err from None
                now = loop.time()
                # A stream that stayed open a while before it broke was working: a new
                # run of failures starts (a silent watch delivers no message to prove it).
                if failing_since is None or now - began > self.timeout:
                    failing_since = now
                if now - failing_since > self.retry_for:
                    raise errors.unavailable(
                        f"watch: no master answered for {self.retry_for:.0f} s: {err.message}"
                    ) from None
                logger.info(
                    "watch failed endpoint=%s code=%s resource=%s resume=%s",
                    ep,
                    e.code().name,
                    res.group_resource,
                    seen or resource_version or '""',
                )
            finally:
                call.cancel()  # a no-op once ended; frees the stream when the consumer stops
            self._preferred = (self._preferred + 1) % len(self.endpoints)
            await asyncio.sleep(0.1)

    # -- failover ------------------------------------------------------------------------------

    async def _call(
        self,
        method: Callable[[Any], Callable[..., Awaitable[rpb.ObjectResponse]]],
        req: object,
        *,
        write: bool,
    ) -> Obj:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        attempt = 0
        while True:
            ep = self.endpoints[self._preferred]
            stub = resources_pb2_grpc.ResourcesStub(self._channels[ep])
            try:
                resp = await method(stub)(req, timeout=self.timeout, metadata=self._metadata)
            except asyncio.CancelledError:
                # The caller's own deadline ran out first (an outer timeout): this master
                # did not answer in time, so the next call starts with the next one, as
                # after our own deadline. A paused master must not hold every call.
                if self.endpoints[self._preferred] == ep:
                    self._preferred = (self._preferred + 1) % len(self.endpoints)
                raise
            except grpc.aio.AioRpcError as e:
                err, retry = classify(e, ep, write=write)
                if not retry:
                    if err.code == 504:
                        # Not retried; but the next call goes to the next master, or a
                        # paused one would cost every later call its whole deadline.
                        self._preferred = (self._preferred + 1) % len(self.endpoints)
                    raise err from None
                attempt += 1
                self._preferred = (self._preferred + 1) % len(self.endpoints)
                if loop.time() > deadline:
                    raise errors.unavailable(
                        f"no master could serve the call within {self.retry_for:.0f} s: "
                        f"{err.message}"
                    ) from None
                if attempt % len(self.endpoints) == 0:
                    await asyncio.sleep(min(0.5, 0.05 * attempt))
                continue
            return _decode(resp.body)


def _decode(body: bytes) -> Obj:
    try:
        obj = json.loads(body)
    except ValueError as e:
        raise errors.internal(f"the server sent a body that is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise errors.internal("the server sent a body that is not a JSON object")
    return obj
