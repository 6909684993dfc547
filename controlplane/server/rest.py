"""The Kubernetes REST API of a master: what the real kubectl and client libraries speak.

HTTP/1.1 (TLS in production) on aiohttp's low-level server: one handler sees every request
and routes it itself, so every answer, including "no such path" and "wrong method", is a
`metav1.Status` (kubectl-api.md §9.1) and never a framework page. Shapes follow
kubectl-api.md, which is binding: discovery (§3), lists and objects (§4), Tables (§5), watch
(§6), writes (§7), the empty OpenAPI v2 document (§8), errors and media types (§9).

Everything the objects mean lives in `ObjectStore` (admission, preconditions, selectors,
watch); this module only translates HTTP to its calls and its `APIError`s to HTTP. A few
checks are made here, before the store is called, because they are about the request rather
than the object: the body's media type and size, the URL's namespace against the body's,
query parameters (selectors are parsed here so a watch with a bad selector is a 400, not a
stream that starts and fails).

Failure policy: an `APIError` is the answer. Any other exception is a bug: it is logged with
its traceback and answered 500 `InternalError`; the server keeps serving. A watch that has
started cannot change its status code, so a failure after the headers becomes an `ERROR`
event, as in Kubernetes.

Watch streams end when `timeoutSeconds` passes, when the store ends them (410), when the
client goes away (aiohttp cancels the handler: `handler_cancellation=True`, and the store's
iterator is closed so its watcher is released) or when the server stops (`stop()` ends
every stream cleanly before closing connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from controlplane.kube import discovery, errors, patch, tables
from controlplane.kube.errors import APIError
from controlplane.kube.resources import PODS, Resource, by_gvr
from controlplane.kube.selectors import FieldSelector, LabelSelector, escape_field_value
from controlplane.kube.storage import DeleteOptions, ListOptions, ObjectStore, WatchEvent

from .http import bind_socket

logger = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "VERSION_INFO", "RESTServer"]

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's request body limit
_READ_CHUNK = 64 * 1024
MAX_DEPTH = 100  # JSON nesting of a body; Kubernetes objects stay far below it
_SHUTDOWN_SECONDS = 5.0  # how long stop() waits for in-flight requests before cancelling

# DESIGN.md: kubectl is a dispatcher that runs the binary matching the server's minor version.
VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-kubelab",
    "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T13:01:18Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_NOT_FOUND_MESSAGE = "the server could not find the requested resource"
_NOT_ALLOWED_MESSAGE = "the server does not allow this method on the requested resource"
_PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_RESOURCE_VERSION = re.compile(r"^[0-9]{1,20}$")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")

Obj = dict[str, Any]
Tokens = set[str] | Callable[[], set[str]]


# -- JSON in and out ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _check_value(value: Any, *, surrogates: bool) -> str | None:
    """Why a parsed body cannot be stored, or None: nesting deeper than MAX_DEPTH (recursive
    copies and encoders down the line would overflow the stack), or, when `surrogates`,
    a string holding half of a UTF-16 pair, which no UTF-8 encoder (the store's, the
    client's) accepts."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep"
            children = list(v.values()) if isinstance(v, dict) else v
            stack.extend((c, depth + 1) for c in children)
            if surrogates and isinstance(v, dict):
                stack.extend((k, depth) for k in v)
        elif surrogates and isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v):
            return "a string holds an unpaired UTF-16 surrogate"
    return None


def decode_json(data: bytes) -> Any:
    """Parse a request body as strict JSON (UTF-8, finite numbers, at most MAX_DEPTH levels
    of nesting); 400 naming the problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.bad_request(
            f"the request body is not valid UTF-8 ({e.reason} at byte {e.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise errors.bad_request(
            f"the request body is not valid JSON: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except ValueError as e:  # JSONDecodeError, out-of-range numbers, over-long integers
        raise errors.bad_request(f"the request body is not valid JSON: {e}") from None
    problem = _check_value(value, surrogates=bool(_SURROGATE_ESCAPE.search(data)))
    if problem is not None:
        raise errors.bad_request(f"the request body is not valid JSON: {problem}")
    return value


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _json_response(obj: Any, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=_dumps(obj), headers={"Content-Type": content_type})


def error_response(err: APIError) -> web.Response:
    """The Status of `err` with its code; 503 tells the client when to retry (DESIGN.md)."""
    resp = _json_response(err.status(), err.code)
    if err.code == 503:
        resp.headers["Retry-After"] = str(err.retry_after if err.retry_after else 1)
    return resp


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


# -- query parameters --------------------------------------------------------------------------


def _bool_param(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value == "" or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise errors.bad_request(f'invalid value for {name}: "{value}": expected true or false')


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise errors.bad_request(f'invalid value for {name}: "{value}": expected an integer')
    return int(value)


def _resource_version(query: Mapping[str, str]) -> str:
    rv = query.get("resourceVersion", "")
    if rv and not _RESOURCE_VERSION.match(rv):
        raise errors.bad_request(
            f'invalid value for resourceVersion: "{rv}": expected a decimal number'
        )
    return rv


def _dry_run(query: Mapping[str, str], verb: str, supported: bool) -> bool:
    value = query.get("dryRun")
    if value is None or value == "":
        return False
    if value != "All":
        raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    if not supported:
        raise errors.bad_request(f"dryRun=All is not supported on {verb} yet: only on create")
    return True


def list_options(
    res: Resource, query: Mapping[str, str], *, name: str | None = None
) -> ListOptions:
    """ListOptions from a list or watch query; selectors are checked here (400 with the
    parser's message, `field label not supported: x` for a field `res` does not index).
    `name` (a watch on an object's URL) narrows the field selector to that object."""
    label_selector = query.get("labelSelector", "")
    field_selector = query.get("fieldSelector", "")
    if name is not None:
        term = f"metadata.name={escape_field_value(name)}"
        field_selector = f"{field_selector},{term}" if field_selector else term
    try:
        LabelSelector.parse(label_selector)
        FieldSelector.parse(field_selector).check(res)
    except ValueError as e:
        raise errors.bad_request(str(e)) from None
    limit = _int_param(query, "limit") or 0
    if limit < 0:
        raise errors.bad_request(f"invalid value for limit: {limit}: must be 0 or more")
    timeout = _int_param(query, "timeoutSeconds")
    if timeout is not None and timeout < 0:
        raise errors.bad_request(f"invalid value for timeoutSeconds: {timeout}: must be 0 or more")
    return ListOptions(
        label_selector=label_selector,
        field_selector=field_selector,
        resource_version=_resource_version(query),
        limit=limit,
        continue_=query.get("continue", ""),
        timeout_seconds=float(timeout) if timeout else None,
        allow_bookmarks=_bool_param(query, "allowWatchBookmarks"),
    )


def _optional(body: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if value is not None and (
        not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool)
    ):
        raise errors.bad_request(f"{what}: expected {_type_name(kind())}, got {_type_name(value)}")
    return value


def delete_options(query: Mapping[str, str], body: Any) -> DeleteOptions:
    """DeleteOptions from the query, then the body over it (as kube-apiserver decodes them).

    `body` is a parsed JSON value or None; a DELETE body that is not JSON at all (kubectl
    ≥ 1.32 sends protobuf from its typed clients) is passed as None: defaults apply
    (kubectl-api.md §9.3 (a))."""
    opts = DeleteOptions(
        grace_period_seconds=_int_param(query, "gracePeriodSeconds"),
        propagation_policy=query.get("propagationPolicy") or None,
    )
    if body is not None:
        if not isinstance(body, dict):
            raise errors.bad_request(f"DeleteOptions: expected an object, got {_type_name(body)}")
        grace = _optional(body, "gracePeriodSeconds", int, "gracePeriodSeconds")
        if grace is not None:
            opts.grace_period_seconds = grace
        policy = _optional(body, "propagationPolicy", str, "propagationPolicy")
        if policy:
            opts.propagation_policy = policy
        elif _optional(body, "orphanDependents", bool, "orphanDependents") is True:
            opts.propagation_policy = "Orphan"
        pre = _optional(body, "preconditions", dict, "preconditions")
        if pre is not None:
            opts.preconditions_uid = _optional(pre, "uid", str, "preconditions.uid")
            opts.preconditions_resource_version = _optional(
                pre, "resourceVersion", str, "preconditions.resourceVersion"
            )
    if opts.propagation_policy is not None and opts.propagation_policy not in _PROPAGATION_POLICIES:
        raise errors.bad_request(
            f'propagationPolicy: Unsupported value: "{opts.propagation_policy}": supported '
            'values: "Foreground", "Background", "Orphan"'
        )
    if opts.grace_period_seconds is not None and opts.grace_period_seconds < 0:
        opts.grace_period_seconds = 1  # kube-apiserver turns a negative grace into 1
    return opts


# -- paths -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a resource URL names: a collection (`name` None; `namespace` None for a
    cluster-scoped kind or an all-namespaces list), an object, or an object's subresource."""

    res: Resource
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def store_namespace(self) -> str:
        return self.namespace or ""


def split_path(raw_path: str) -> list[str] | None:
    """The decoded segments of a raw path (`%2F` stays inside its segment), or None when a
    segment is empty or does not decode: no resource can have such a name."""
    if not raw_path.startswith("/"):
        return None
    parts = raw_path[1:].split("/")
    if parts and parts[-1] == "":
        parts.pop()  # one trailing slash is the same path
    out = []
    for p in parts:
        if not p:
            return None
        try:
            out.append(unquote(p, errors="strict"))
        except UnicodeDecodeError:
            return None
    return out


def resolve(group: str, version: str, segs: list[str]) -> Target | None:
    """The target of the segments after `/api/v1` or `/apis/{group}/{version}`, or None."""
    if len(segs) >= 3 and segs[0] == "namespaces":
        res = by_gvr(group, version, segs[2])
        if res is not None and res.namespaced:
            rest = segs[3:]
            if len(rest) > 2:
                return None
            return Target(
                res, segs[1], rest[0] if rest else None, rest[1] if len(rest) == 2 else None
            )
    if not segs:
        return None
    res = by_gvr(group, version, segs[0])
    rest = segs[1:]
    if res is None or len(rest) > 2 or (res.namespaced and rest):
        return None
    return Target(res, None, rest[0] if rest else None, rest[1] if len(rest) == 2 else None)


# -- objects the server builds -----------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _success(details: Obj | None = None, code: int | None = None) -> Obj:
    out: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    if code is not None:
        out["code"] = code
    return out


def deleted_status(res: Resource, obj: Mapping[str, Any]) -> Obj:
    """What kube-apiserver answers for an object deleted at once (kubectl-api.md §7.3)."""
    meta = _meta(obj)
    details: Obj = {"name": meta.get("name", "")}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.plural
    if meta.get("uid"):
        details["uid"] = meta["uid"]
    return _success(details)


def scale_of(obj: Mapping[str, Any]) -> Obj:
    """The `autoscaling/v1` Scale of a Deployment or ReplicaSet."""
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    try:
        selector = str(LabelSelector.from_object(spec.get("selector")))
    except ValueError:
        selector = ""
    replicas = status.get("replicas")
    want = spec.get("replicas")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": want if isinstance(want, int) else 1},
        "status": {"replicas": replicas if isinstance(replicas, int) else 0, "selector": selector},
    }


def _with_type(res: Resource, obj: Obj) -> Obj:
    """`obj` with kind and apiVersion (every single object carries them, §15.2)."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {
        "kind": res.kind,
        "apiVersion": res.api_version,
        **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")},
    }


# -- HTTP errors before the handler -------------------------------------------------------------


class _Protocol(web.RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser rejects (a control
    character in a header, an unknown method, a duplicated Content-Type) with a Status
    rather than a plain-text page, like every other answer of this server."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started: the connection is broken")
        if status >= 500:
            logger.error("request failed before routing", exc_info=exc)
            err = errors.internal("the server failed to handle the request; see its log")
        else:
            logger.debug("malformed HTTP request status=%d error=%s", status, message)
            first = (message or "").strip().splitlines()[0:1] or ["malformed request"]
            reason = {413: "RequestEntityTooLarge", 431: "RequestHeaderFieldsTooLarge"}
            err = APIError(
                status,
                reason.get(status, "BadRequest"),
                f"malformed HTTP request: {first[0].rstrip(':')}",
            )
        resp = error_response(err)
        resp.force_close()
        return resp


class _Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _Protocol(self, loop=self._loop, **self._kwargs)


# -- the server --------------------------------------------------------------------------------


class RESTServer:
    """The Kubernetes REST API on `host:port` over `store`.

    `tokens`: the accepted bearer tokens, or a function returning them (read per request, so
    a token file can be reloaded). `server_address` is what discovery tells clients to use.
    `clock` (Unix seconds) dates Table ages. `start()` returns once listening; `stop()`
    ends watches, waits briefly for in-flight requests and closes every connection."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        host: str,
        port: int,
        ssl: ssl.SSLContext | None,
        tokens: Tokens,
        server_address: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self._ssl = ssl
        self._tokens = tokens
        self.server_address = server_address
        self._clock = clock
        self._runner: web.ServerRunner | None = None
        self._watches: set[asyncio.Timeout] = set()
        self._stopping = False

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def active_watches(self) -> int:
        """Watch streams open now (tests check that a client going away closes its own)."""
        return len(self._watches)

    async def start(self) -> None:
        """Listen; `port` 0 picks a free port, and `self.port` is the one bound. Raises
        `AddressInUse` naming the address when it is taken (never SO_REUSEPORT)."""
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        # No access log: kubectl watches and controllers make it a line per request; errors
        # are logged where they happen.
        server = _Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_SECONDS)
        try:
            await runner.setup()
            await web.SockSite(runner, sock, ssl_context=self._ssl).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("kubernetes api serving url=%s", self.url)

    async def stop(self) -> None:
        self._stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in list(self._watches):
            deadline.reschedule(now)  # ends the stream as its timeoutSeconds would
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- dispatch ------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except APIError as e:
            return error_response(e)
        except (ConnectionError, asyncio.CancelledError):
            raise  # the client went away: nobody to answer
        except Exception:
            logger.exception(
                "request failed method=%s path=%s", request.method, request.rel_url.raw_path[:200]
            )
            return error_response(
                errors.internal("the server failed to handle the request; see its log")
            )

    def _authorized(self, request: web.BaseRequest) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        tokens = self._tokens() if callable(self._tokens) else self._tokens
        return token.strip() in tokens

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        segs = split_path(request.rel_url.raw_path)
        path = "/" + "/".join(segs) if segs is not None else None
        if path in _UNAUTHENTICATED_PATHS:
            if request.method not in ("GET", "HEAD"):
                raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)
            return web.Response(text="ok", content_type="text/plain")
        if not self._authorized(request):
            raise errors.unauthorized()
        if segs is None:
            raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)
        query = request.rel_url.query
        accept = request.headers.get("Accept", "")
        if not segs:
            return self._get_only(request, {"paths": self._root_paths()})
        if segs[0] == "api":
            return await self._api(request, "", segs[1:], query, accept)
        if segs[0] == "apis":
            if len(segs) == 1:
                return self._discovery_root(request, accept, core=False)
            return await self._api(request, segs[1], segs[2:], query, accept)
        if segs == ["version"]:
            return self._get_only(request, VERSION_INFO)
        if segs == ["openapi", "v2"]:
            self._require_get(request)
            # An empty protobuf document: kubectl finds no schema and skips client-side
            # validation (kubectl-api.md §8 option 2). Never echo the `@` media type.
            return web.Response(body=b"", headers={"Content-Type": "application/octet-stream"})
        raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)

    @staticmethod
    def _require_get(request: web.BaseRequest) -> None:
        if request.method != "GET":
            raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)

    def _get_only(
        self, request: web.BaseRequest, doc: Obj, content_type: str = JSON
    ) -> web.Response:
        self._require_get(request)
        return _json_response(doc, content_type=content_type)

    def _root_paths(self) -> list[str]:
        paths = ["/api", "/apis", "/healthz", "/livez", "/openapi/v2", "/readyz", "/version"]
        paths += discovery.served_group_versions()
        paths += sorted(
            {
                p.rsplit("/", 1)[0]
                for p in discovery.served_group_versions()
                if p.startswith("/apis/")
            }
        )
        return sorted(paths)

    def _discovery_root(self, request: web.BaseRequest, accept: str, *, core: bool) -> web.Response:
        version = discovery.negotiate_aggregated(accept)
        if version is not None:
            return self._get_only(
                request,
                discovery.aggregated(version, core=core),
                discovery.aggregated_content_type(version),
            )
        if core:
            return self._get_only(request, discovery.api_versions(self.server_address))
        return self._get_only(request, discovery.api_group_list())

    async def _api(
        self,
        request: web.BaseRequest,
        group: str,
        segs: list[str],
        query: Mapping[str, str],
        accept: str,
    ) -> web.StreamResponse:
        """Everything under `/api` (group "") and `/apis/{group}`."""
        if group == "":
            if not segs:
                return self._discovery_root(request, accept, core=True)
            version, rest = segs[0], segs[1:]
        else:
            if not segs:
                doc = discovery.api_group(group)
                if doc is None:
                    raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)
                return self._get_only(request, doc)
            version, rest = segs[0], segs[1:]
        if not rest:
            doc = discovery.api_resource_list(group, version)
            if doc is None:
                raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)
            return self._get_only(request, doc)
        target = resolve(group, version, rest)
        if target is None:
            raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)
        return await self._resource(request, target, query, accept)

    # -- resources -----------------------------------------------------------------------------

    def _verb(self, target: Target, verb: str) -> None:
        if verb not in target.res.verbs:
            raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)

    async def _resource(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str], accept: str
    ) -> web.StreamResponse:
        method = request.method
        if t.subresource is not None:
            return await self._subresource(request, t, query, accept)
        if t.name is None:
            writable = not t.res.namespaced or t.namespace is not None
            if method == "GET":
                if _bool_param(query, "watch"):
                    self._verb(t, "watch")
                    return await self._watch(request, t, list_options(t.res, query), accept)
                self._verb(t, "list")
                return await self._list(t, query, accept)
            if method == "POST" and writable:
                self._verb(t, "create")
                return await self._create(request, t, query)
            if method == "DELETE" and writable:
                self._verb(t, "deletecollection")
                return await self._delete_collection(request, t, query)
            raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)
        assert t.name is not None
        if method == "GET":
            if _bool_param(query, "watch"):
                self._verb(t, "watch")
                opts = list_options(t.res, query, name=t.name)
                return await self._watch(request, t, opts, accept)
            self._verb(t, "get")
            obj = await self.store.get(
                t.res, t.store_namespace, t.name, resource_version=_resource_version(query)
            )
            return self._object_response(t.res, obj, accept)
        if method == "PUT":
            self._verb(t, "update")
            _dry_run(query, "update", supported=False)
            body = await self._object_body(request, t)
            obj = await self.store.update(t.res, t.store_namespace, t.name, body)
            return _json_response(_with_type(t.res, obj))
        if method == "DELETE":
            self._verb(t, "delete")
            return await self._delete(request, t, query)
        if method == "PATCH":
            self._verb(t, "patch")
            return await self._patch(request, t, query, subresource="")
        raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)

    def _object_response(self, res: Resource, obj: Obj, accept: str) -> web.Response:
        if tables.wants_table(accept):
            rv = _meta(obj).get("resourceVersion")
            doc = tables.table(
                res, [obj], self._clock(), resource_version=rv if isinstance(rv, str) else ""
            )
            return _json_response(doc, content_type=tables.table_content_type())
        return _json_response(_with_type(res, obj))

    async def _list(self, t: Target, query: Mapping[str, str], accept: str) -> web.Response:
        opts = list_options(t.res, query)
        out = await self.store.list(t.res, t.namespace, opts)
        items = out.get("items") or []
        if tables.wants_table(accept):
            meta = _meta(out)
            remaining = meta.get("remainingItemCount")
            doc = tables.table(
                t.res,
                items,
                self._clock(),
                resource_version=str(meta.get("resourceVersion") or ""),
                continue_=str(meta.get("continue") or ""),
                remaining=remaining if isinstance(remaining, int) else None,
            )
            return _json_response(doc, content_type=tables.table_content_type())
        out = {**out, "items": items}
        out.setdefault("kind", t.res.list_kind)
        out.setdefault("apiVersion", t.res.api_version)
        return _json_response(out)

    async def _create(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str]
    ) -> web.Response:
        dry_run = _dry_run(query, "create", supported=True)
        body = await self._object_body(request, t)
        obj = await self.store.create(t.res, t.store_namespace, body, dry_run=dry_run)
        return _json_response(_with_type(t.res, obj), 201)

    async def _delete(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str]
    ) -> web.Response:
        assert t.name is not None
        _dry_run(query, "delete", supported=False)
        opts = delete_options(query, await self._optional_json_body(request))
        obj = await self.store.delete(t.res, t.store_namespace, t.name, opts)
        # Pods answer with their last state, as kube-apiserver's pod registry does; others
        # with a Status when gone at once, with the object while it stays (graceful
        # deletion, finalizers, a namespace turning Terminating).
        if t.res is PODS or _meta(obj).get("deletionTimestamp"):
            return _json_response(_with_type(t.res, obj))
        return _json_response(deleted_status(t.res, obj))

    async def _delete_collection(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str]
    ) -> web.Response:
        """deletecollection: delete what the selectors match, one object at a time; answers
        the list of what was deleted (objects already gone are skipped)."""
        _dry_run(query, "deletecollection", supported=False)
        opts = delete_options(query, await self._optional_json_body(request))
        listed = await self.store.list(t.res, t.namespace, list_options(t.res, query))
        deleted = []
        for item in listed.get("items") or []:
            meta = _meta(item)
            name, namespace = meta.get("name"), meta.get("namespace") or ""
            if not isinstance(name, str) or not isinstance(namespace, str):
                continue
            try:
                deleted.append(await self.store.delete(t.res, namespace, name, opts))
            except APIError as e:
                if e.code != 404:
                    raise
        return _json_response(
            {
                "kind": t.res.list_kind,
                "apiVersion": t.res.api_version,
                "metadata": {"resourceVersion": str(_meta(listed).get("resourceVersion") or "")},
                "items": deleted,
            }
        )

    # -- subresources --------------------------------------------------------------------------

    async def _subresource(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str], accept: str
    ) -> web.StreamResponse:
        assert t.name is not None and t.subresource is not None
        sub = t.res.subresource(t.subresource)
        if sub is None or sub.name not in discovery.SERVED_SUBRESOURCES:
            raise errors.APIError(404, "NotFound", _NOT_FOUND_MESSAGE)
        method = request.method
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create"}.get(method)
        if verb is None or verb not in sub.verbs:
            raise errors.method_not_allowed(_NOT_ALLOWED_MESSAGE)
        ns, name = t.store_namespace, t.name
        if sub.name == "status":
            if verb == "get":
                obj = await self.store.get(
                    t.res, ns, name, resource_version=_resource_version(query)
                )
                return self._object_response(t.res, obj, accept)
            if verb == "update":
                _dry_run(query, "update", supported=False)
                body = await self._object_body(request, t)
                obj = await self.store.update(t.res, ns, name, body, subresource="status")
                return _json_response(_with_type(t.res, obj))
            return await self._patch(request, t, query, subresource="status")
        if sub.name == "scale":
            return await self._scale(request, t, query, verb)
        if sub.name == "eviction":
            return await self._evict(request, t, query)
        # log: the API server would proxy the kubelet's log endpoint; until it can reach
        # kubelets it says so, after checking the pod exists (404 stays a 404).
        await self.store.get(t.res, ns, name)
        raise errors.bad_request(
            f'logs of pod "{name}" are not available: this API server cannot reach kubelets yet'
        )

    async def _scale(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str], verb: str
    ) -> web.Response:
        assert t.name is not None
        ns, name = t.store_namespace, t.name
        if verb == "get":
            return _json_response(scale_of(await self.store.get(t.res, ns, name)))
        _dry_run(query, verb, supported=False)
        if verb == "patch":
            scale = scale_of(await self.store.get(t.res, ns, name))
            # Only a resourceVersion the patch itself sets is a precondition.
            scale["metadata"].pop("resourceVersion", None)
            body = await self._apply_patch(request, t, scale)
        else:
            body = await self._json_object_body(request)
        replicas, rv = _scale_request(t, body)

        def mutate(obj: Obj) -> Obj | None:
            meta = obj.get("metadata")
            if rv and isinstance(meta, dict) and meta.get("resourceVersion") not in (None, rv):
                raise errors.conflict(t.res, name)
            spec = obj.get("spec")
            if not isinstance(spec, dict):
                spec = obj["spec"] = {}
            if spec.get("replicas") == replicas:
                return None
            spec["replicas"] = replicas
            return obj

        if rv:
            # A Scale with a resourceVersion is a precondition: the write must be
            # conditioned on it, so send it as an update carrying that version.
            current = await self.store.get(t.res, ns, name)
            current_rv = _meta(current).get("resourceVersion")
            if current_rv != rv:
                raise errors.conflict(t.res, name)
            obj = mutate(current) or current
            obj = await self.store.update(t.res, ns, name, obj)
        else:
            obj = await self.store.guaranteed_update(t.res, ns, name, mutate)
        return _json_response(scale_of(obj))

    async def _evict(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str]
    ) -> web.Response:
        """POST pods/{name}/eviction (kubectl drain): delete the pod with the Eviction's
        deleteOptions; 201 with a Success Status, as kube-apiserver answers."""
        assert t.name is not None
        _dry_run(query, "eviction", supported=False)
        body = await self._json_object_body(request)
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind not in (None, "", "Eviction") or api_version not in (
            None,
            "",
            "policy/v1",
            "policy/v1beta1",
        ):
            raise errors.bad_request(
                f"the body is a {kind} ({api_version}); expected an Eviction (policy/v1)"
            )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request(f"metadata: expected an object, got {_type_name(meta)}")
        name = (meta or {}).get("name")
        if name not in (None, "", t.name):
            raise errors.bad_request(
                f"name in URL does not match name in Eviction object: {t.name} != {name}"
            )
        opts = delete_options({}, body.get("deleteOptions"))
        await self.store.delete(t.res, t.store_namespace, t.name, opts)
        return _json_response(_success(code=201), 201)

    # -- patch ---------------------------------------------------------------------------------

    async def _patch(
        self, request: web.BaseRequest, t: Target, query: Mapping[str, str], *, subresource: str
    ) -> web.Response:
        assert t.name is not None
        _dry_run(query, "patch", supported=False)
        media = _media_type(request)
        kind = patch.patch_kind(media)
        data = await _read_body(request)
        if kind is None:
            raise _unsupported_patch(media)
        doc = decode_json(data)

        def mutate(obj: Obj) -> Obj | None:
            patched = _check_patched(t, patch.apply(kind, obj, doc))
            # A resourceVersion the patch sets is a precondition (`kubectl diff` sends one).
            want = patched["metadata"].get("resourceVersion")
            if want is not None and want != _meta(obj).get("resourceVersion"):
                raise errors.conflict(t.res, t.name or "")
            return patched

        obj = await self.store.guaranteed_update(
            t.res, t.store_namespace, t.name, mutate, subresource=subresource
        )
        return _json_response(_with_type(t.res, obj))

    async def _apply_patch(self, request: web.BaseRequest, t: Target, current: Obj) -> Obj:
        media = _media_type(request)
        kind = patch.patch_kind(media)
        data = await _read_body(request)
        if kind is None:
            raise _unsupported_patch(media)
        out = patch.apply(kind, current, decode_json(data))
        if not isinstance(out, dict):
            raise errors.bad_request(f"the patched object is {_type_name(out)}, not an object")
        return out

    # -- bodies --------------------------------------------------------------------------------

    async def _json_object_body(self, request: web.BaseRequest) -> Obj:
        """A JSON object body (no Content-Type means JSON, kubectl-api.md §2)."""
        media = _media_type(request)
        if media == PROTOBUF:
            raise errors.unsupported_media_type(
                "protobuf request bodies are not supported; send JSON. kubectl 1.32 and later "
                "send protobuf from imperative commands such as `kubectl create deployment`: "
                "write a manifest and use `kubectl create -f` or `kubectl apply -f` instead"
            )
        if media not in ("", JSON, "*/*"):
            raise errors.unsupported_media_type(
                f'the body of the request was in an unknown format "{media}": the accepted '
                "media type is application/json"
            )
        body = decode_json(await _read_body(request))
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the request body must be a JSON object, got {_type_name(body)}"
            )
        return body

    async def _object_body(self, request: web.BaseRequest, t: Target) -> Obj:
        """The body of a POST or PUT, checked against the URL: kind and apiVersion (when
        given) must be the URL's, the namespace in the URL wins over an empty one in the
        body and must equal a non-empty one, and a PUT's name must be the URL's."""
        body = await self._json_object_body(request)
        res = t.res
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind not in (None, "", res.kind) or api_version not in (None, "", res.api_version):
            raise errors.bad_request(
                f"the body is a {kind} ({api_version}) but the URL is for {res.kind} "
                f"({res.api_version}): send it to its own resource's URL"
            )
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request(f"metadata: expected an object, got {_type_name(meta)}")
        for key in ("name", "namespace", "generateName", "resourceVersion"):
            if meta.get(key) is not None and not isinstance(meta[key], str):
                raise errors.bad_request(
                    f"metadata.{key}: expected a string, got {_type_name(meta[key])}"
                )
        if res.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != t.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = t.namespace
        if t.name is not None:
            name = meta.get("name")
            if name and name != t.name:
                raise errors.bad_request(
                    f"the name of the object ({name}) does not match the name on the URL ({t.name})"
                )
            meta["name"] = t.name
        return body

    async def _optional_json_body(self, request: web.BaseRequest) -> Any:
        """A DELETE body: None when absent or not JSON (protobuf DeleteOptions from kubectl
        ≥ 1.32, kubectl-api.md §9.3 (a)); otherwise the parsed value."""
        data = await _read_body(request)
        if not data.strip() or _media_type(request) == PROTOBUF:
            return None
        try:
            return decode_json(data)
        except APIError:
            return None

    # -- watch ---------------------------------------------------------------------------------

    async def _watch(
        self, request: web.BaseRequest, t: Target, opts: ListOptions, accept: str
    ) -> web.StreamResponse:
        """A chunked stream of `{"type","object"}` lines, one per event, each flushed.

        Ends on `timeoutSeconds`, when the store's stream ends (after an ERROR event), when
        the client goes away (the handler is cancelled; the store iterator is closed) or at
        `stop()`. Without timeoutSeconds the stream stays open: `kubectl get -w` exits
        quietly when a server closes it (kubectl-api.md §6)."""
        if self._stopping:
            raise errors.unavailable("the API server is shutting down")
        as_table = tables.wants_table(accept)
        # Errors the store finds once iterating (a 503 without a leader, 410 for a compacted
        # revision) arrive as ERROR events: the status line is sent before the first event.
        events = self.store.watch(t.res, t.namespace, opts)
        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": tables.table_content_type() if as_table else JSON},
        )
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            async with asyncio.timeout(opts.timeout_seconds) as deadline:
                self._watches.add(deadline)
                if self._stopping:  # stop() ran while this stream was starting
                    deadline.reschedule(asyncio.get_running_loop().time())
                try:
                    await self._stream(resp, t.res, events, as_table)
                finally:
                    self._watches.discard(deadline)
        except TimeoutError:
            pass  # timeoutSeconds passed, or the server is stopping: end cleanly
        except ConnectionError:
            return resp  # the client went away while we wrote
        finally:
            await _aclose(events)
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp

    async def _stream(
        self,
        resp: web.StreamResponse,
        res: Resource,
        events: AsyncIterator[WatchEvent],
        as_table: bool,
    ) -> None:
        try:
            async for ev in events:
                await resp.write(
                    _dumps({"type": ev.type, "object": self._event_object(res, ev, as_table)})
                )
        except APIError as e:
            await resp.write(_dumps({"type": "ERROR", "object": e.status()}))
        except (ConnectionError, asyncio.CancelledError, TimeoutError):
            raise
        except Exception:
            logger.exception("watch failed resource=%s", res.group_resource)
            err = errors.internal("the watch failed; see the server's log")
            await resp.write(_dumps({"type": "ERROR", "object": err.status()}))

    def _event_object(self, res: Resource, ev: WatchEvent, as_table: bool) -> Obj:
        obj = ev.object
        if ev.type == "ERROR":
            return obj
        if not as_table:
            return _with_type(res, obj)
        rv = _meta(obj).get("resourceVersion")
        rv = rv if isinstance(rv, str) else ""
        if ev.type == "BOOKMARK":
            return tables.table(res, [], self._clock(), resource_version=rv)
        return tables.table(res, [obj], self._clock(), resource_version=rv)


# -- helpers used by the handlers --------------------------------------------------------------


def _media_type(request: web.BaseRequest) -> str:
    """The request body's media type, lower-cased, without parameters ("" when absent)."""
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


async def _read_body(request: web.BaseRequest) -> bytes:
    """The whole body, refused with 413 past MAX_BODY_BYTES (checked before reading when
    Content-Length says so, and while reading a chunked body)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)


def _too_large() -> APIError:
    return errors.too_large(f"the request body is larger than {MAX_BODY_BYTES} bytes (3 MiB)")


def _unsupported_patch(media: str) -> APIError:
    what = f'"{media}"' if media else "without a Content-Type"
    return errors.unsupported_media_type(
        f"the patch type {what} is not supported: this server applies "
        f"{MERGE_PATCH} and {JSON_PATCH}; strategic merge patch "
        "(application/strategic-merge-patch+json, what `kubectl apply` and `kubectl patch` "
        "send by default) and apply patches are not supported yet: use `kubectl replace -f`, "
        "or `kubectl patch --type merge` / `--type json`"
    )


def _check_patched(t: Target, obj: Any) -> Obj:
    """`obj`, once sure the patch did not turn it into something else (kind, name,
    namespace)."""
    if not isinstance(obj, dict):
        raise errors.bad_request(f"the patched object is {_type_name(obj)}, not an object")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise errors.bad_request("the patch removed or replaced metadata")
    if meta.get("name") != t.name:
        raise errors.bad_request(
            f"the patch changes metadata.name from {t.name!r} to {meta.get('name')!r}"
        )
    if t.res.namespaced and meta.get("namespace") != t.namespace:
        raise errors.bad_request(
            f"the patch changes metadata.namespace from {t.namespace!r} to "
            f"{meta.get('namespace')!r}"
        )
    if obj.get("kind") not in (None, t.res.kind) or obj.get("apiVersion") not in (
        None,
        t.res.api_version,
    ):
        raise errors.bad_request("the patch changes kind or apiVersion")
    return obj


def _scale_request(t: Target, body: Mapping[str, Any]) -> tuple[int, str]:
    """spec.replicas and the optional resourceVersion precondition of a Scale body."""
    assert t.name is not None
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, "", "Scale") or api_version not in (None, "", "autoscaling/v1"):
        raise errors.bad_request(
            f"the body is a {kind} ({api_version}); expected a Scale (autoscaling/v1)"
        )
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    if name not in (None, "", t.name):
        raise errors.bad_request(
            f"the name of the object ({name}) does not match the name on the URL ({t.name})"
        )
    rv = meta.get("resourceVersion") or ""
    if not isinstance(rv, str):
        raise errors.bad_request(
            f"metadata.resourceVersion: expected a string, got {_type_name(rv)}"
        )
    spec = body.get("spec")
    replicas = spec.get("replicas", 0) if isinstance(spec, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas < 2**31:
        raise errors.invalid(
            t.res,
            t.name,
            [
                errors.cause(
                    "spec.replicas",
                    f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
                )
            ],
        )
    return replicas, rv


async def _aclose(events: AsyncIterator[WatchEvent]) -> None:
    """Close the store's iterator so its watcher is released (async generators run their
    `finally` here; other iterators may offer `aclose` too)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
