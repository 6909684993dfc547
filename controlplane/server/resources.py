"""The gRPC resource API (controlplane/apipb/resources.proto) over an `ObjectStore`.

An adapter and nothing more: it decodes a request, calls the one `ObjectStore` that also
serves the REST API (so admission, validation and storage are shared), and encodes the
answer as the JSON the REST API would send. Objects stay JSON on the wire for that reason.

Errors. Every failure is a Kubernetes `APIError`; it leaves as a gRPC status chosen by its
HTTP code (`grpc_code`) with the full `Status` JSON in the trailing metadata key
`kube-status-bin`, from which the client rebuilds the same `APIError`. 503 (no leader:
nothing was proposed) and 504 (outcome unknown) are both UNAVAILABLE, as DESIGN.md says;
their details start with "no leader" and "outcome unknown" for clients that only read the
code and the details.

Authentication is not done here: the master registers this servicer behind the server's
bearer-token interceptor (`api._Auth`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from controlplane.apipb import resources_pb2 as rpb
from controlplane.apipb import resources_pb2_grpc
from controlplane.kube import errors
from controlplane.kube.errors import APIError
from controlplane.kube.resources import Resource, by_gvr, known_kinds
from controlplane.kube.storage import DeleteOptions, Fence, ListOptions, ObjectStore, WatchEvent

__all__ = ["STATUS_KEY", "ResourceService", "add_to_server", "encode", "grpc_code"]

logger = logging.getLogger(__name__)

STATUS_KEY = "kube-status-bin"
"""Trailing metadata key of a failed call: the `metav1.Status` JSON of the error."""

_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    406: grpc.StatusCode.INVALID_ARGUMENT,
    409: grpc.StatusCode.ABORTED,  # Conflict; AlreadyExists is handled by reason
    410: grpc.StatusCode.OUT_OF_RANGE,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code(err: APIError) -> grpc.StatusCode:
    """The gRPC status code of a Kubernetes error (see the module docstring)."""
    if err.code == 409 and err.reason == "AlreadyExists":
        return grpc.StatusCode.ALREADY_EXISTS
    return _CODES.get(err.code, grpc.StatusCode.UNKNOWN)


def grpc_details(err: APIError) -> str:
    """The status details: the Status message, prefixed so that code-and-details clients
    (like `KVClient`) tell "nothing was proposed" from "outcome unknown"."""
    if err.code == 504 and not err.message.startswith("outcome unknown"):
        return f"outcome unknown: {err.message}"
    if err.code == 503 and not err.message.startswith("no leader"):
        return f"no leader: {err.message}"
    return err.message


def encode(obj: dict[str, Any]) -> bytes:
    """Compact JSON, as the REST API writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _resource(group: str, version: str, plural: str) -> Resource:
    res = by_gvr(group, version, plural)
    if res is None:
        gv = f"{group}/{version}" if group else version
        raise APIError(
            404,
            "NotFound",
            f'the server could not find the requested resource "{plural}" in {gv or "?"}; '
            f"known kinds: {', '.join(known_kinds())}",
            details={"kind": plural, **({"group": group} if group else {})},
        )
    return res


def _body(raw: bytes) -> dict[str, Any]:
    """The request's object; 400 naming the problem when it is not a JSON object."""
    if not raw:
        raise errors.bad_request("body: required: the object as JSON")
    try:
        obj = json.loads(raw)
    except ValueError as e:  # JSONDecodeError (with line and column) or bad UTF-8
        raise errors.bad_request(f"body: not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request(f"body: expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_namespace(res: Resource, namespace: str, obj: dict[str, Any]) -> None:
    """The object's namespace, when it has one, must be the request's (as the API server's
    handlers check before admission)."""
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if res.namespaced and ns and ns != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the "
            f"request ({ns!r} in the object, {namespace!r} in the request)"
        )


def _fence(req: rpb.WriteRequest | rpb.DeleteRequest) -> Fence | None:
    if not req.HasField("fence"):
        return None
    f = req.fence
    if not f.name or not f.holder:
        raise errors.bad_request("fence: name and holder are required")
    return Fence(f.namespace, f.name, f.holder, f.transitions)


def _list_options(req: rpb.ListRequest) -> ListOptions:
    return ListOptions(
        label_selector=req.label_selector,
        field_selector=req.field_selector,
        resource_version=req.resource_version,
        limit=req.limit,
        continue_=getattr(req, "continue"),
        timeout_seconds=req.timeout_seconds if req.HasField("timeout_seconds") else None,
        allow_bookmarks=req.allow_bookmarks,
    )


def _delete_options(req: rpb.DeleteRequest) -> DeleteOptions:
    return DeleteOptions(
        grace_period_seconds=(
            req.grace_period_seconds if req.HasField("grace_period_seconds") else None
        ),
        propagation_policy=req.propagation_policy or None,
        preconditions_uid=req.precondition_uid or None,
        preconditions_resource_version=req.precondition_resource_version or None,
    )


def _as_api_error(e: Exception) -> APIError:
    if isinstance(e, APIError):
        return e
    logger.exception("internal error in the resource API")
    return errors.internal(repr(e))


async def _abort(ctx: grpc.aio.ServicerContext, err: APIError) -> None:
    await ctx.abort(
        grpc_code(err),
        grpc_details(err),
        trailing_metadata=((STATUS_KEY, encode(err.status())),),
    )


async def _answer(
    ctx: grpc.aio.ServicerContext, fn: Callable[[], Awaitable[dict[str, Any]]]
) -> rpb.ObjectResponse:
    try:
        return rpb.ObjectResponse(body=encode(await fn()))
    except grpc.aio.AbortError:
        raise
    except Exception as e:
        await _abort(ctx, _as_api_error(e))
        raise  # unreachable: abort raises


class ResourceService(resources_pb2_grpc.ResourcesServicer):
    """The `Resources` servicer: each method is one `ObjectStore` call."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def Get(self, req: rpb.GetRequest, ctx: grpc.aio.ServicerContext) -> rpb.ObjectResponse:
        async def go() -> dict[str, Any]:
            res = _resource(req.group, req.version, req.resource)
            return await self.store.get(
                res, req.namespace, req.name, resource_version=req.resource_version
            )

        return await _answer(ctx, go)

    async def List(self, req: rpb.ListRequest, ctx: grpc.aio.ServicerContext) -> rpb.ObjectResponse:
        async def go() -> dict[str, Any]:
            res = _resource(req.group, req.version, req.resource)
            return await self.store.list(res, req.namespace or None, _list_options(req))

        return await _answer(ctx, go)

    async def Create(
        self, req: rpb.WriteRequest, ctx: grpc.aio.ServicerContext
    ) -> rpb.ObjectResponse:
        async def go() -> dict[str, Any]:
            res = _resource(req.group, req.version, req.resource)
            obj = _body(req.body)
            _check_namespace(res, req.namespace, obj)
            return await self.store.create(res, req.namespace, obj, fence=_fence(req))

        return await _answer(ctx, go)

    async def Update(
        self, req: rpb.WriteRequest, ctx: grpc.aio.ServicerContext
    ) -> rpb.ObjectResponse:
        return await self._update(req, ctx, "")

    async def UpdateStatus(
        self, req: rpb.WriteRequest, ctx: grpc.aio.ServicerContext
    ) -> rpb.ObjectResponse:
        return await self._update(req, ctx, "status")

    async def Bind(
        self, req: rpb.WriteRequest, ctx: grpc.aio.ServicerContext
    ) -> rpb.ObjectResponse:
        return await self._update(req, ctx, "binding")

    async def _update(
        self, req: rpb.WriteRequest, ctx: grpc.aio.ServicerContext, subresource: str
    ) -> rpb.ObjectResponse:
        async def go() -> dict[str, Any]:
            res = _resource(req.group, req.version, req.resource)
            if subresource and res.subresource(subresource) is None:
                raise errors.method_not_allowed(
                    f"{res.group_resource} have no {subresource} subresource: "
                    "update the object itself"
                )
            if not req.name:
                raise errors.bad_request("name: required for an update")
            obj = _body(req.body)
            _check_namespace(res, req.namespace, obj)
            return await self.store.update(
                res, req.namespace, req.name, obj, subresource=subresource, fence=_fence(req)
            )

        return await _answer(ctx, go)

    async def Delete(
        self, req: rpb.DeleteRequest, ctx: grpc.aio.ServicerContext
    ) -> rpb.ObjectResponse:
        async def go() -> dict[str, Any]:
            res = _resource(req.group, req.version, req.resource)
            if not req.name:
                raise errors.bad_request("name: required for a delete")
            return await self.store.delete(
                res, req.namespace, req.name, _delete_options(req), fence=_fence(req)
            )

        return await _answer(ctx, go)

    async def Watch(
        self, req: rpb.ListRequest, ctx: grpc.aio.ServicerContext
    ) -> AsyncIterator[rpb.WatchEvent]:
        """The store's watch, event by event. An error before or during the stream ends the
        call with its Status; a compacted start revision is an ERROR event, not an error,
        exactly as over REST."""
        events: AsyncIterator[WatchEvent] | None = None
        try:
            res = _resource(req.group, req.version, req.resource)
            events = self.store.watch(res, req.namespace or None, _list_options(req))
            async for ev in events:
                yield rpb.WatchEvent(type=ev.type, body=encode(ev.object))
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await _abort(ctx, _as_api_error(e))
        finally:
            # A client that goes away cancels us at `yield`: close the store's watch now
            # rather than whenever the generator is collected.
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()


def add_to_server(server: grpc.aio.Server, store: ObjectStore) -> None:
    """Register the `Resources` service on `server` (behind whatever interceptors it has)."""
    resources_pb2_grpc.add_ResourcesServicer_to_server(ResourceService(store), server)
