"""Random and mutated requests never break the REST server (issue 5, "Bad input").

Thousands of requests from a seeded `random.Random`, written byte by byte on raw sockets so
that nothing a client library would clean up is cleaned up: random methods, paths built
from real segments and junk (bad percent-encoding, `..`, NULs, non-UTF-8), junk queries,
valid manifests with fields deleted or replaced by values of the wrong type, truncated or
random bodies, every media type kubectl sends and some it does not, junk headers.

Every answer must be a well-formed HTTP response; at 400 and above, a JSON `metav1.Status`
whose `code` is the HTTP status; never a 500 (a 500 is a bug: in the server, or in the
store, and then it is reported to its owner). A few requests are not valid HTTP at all (a
control character in a header, a broken request line): aiohttp's parser answers those with
its own plain-text 400 before our handler runs, as Go's net/http does for kube-apiserver;
for them only the first two rules apply. Afterwards the server still serves, and every
watch the fuzzing opened has been released.

A failure names the seed and the request number; `KUBELAB_FUZZ_SEED=N` replays one seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from controlplane.kube.storage import LocalBackend

from .conftest import API, MANIFESTS, TABLE_ACCEPT, TOKEN, configmap, deployment, pod, serving

REQUESTS_PER_SEED = 3000
SEEDS = [int(os.environ["KUBELAB_FUZZ_SEED"])] if "KUBELAB_FUZZ_SEED" in os.environ else [1, 2]
RESPONSE_DEADLINE = 10.0

_STATUS_LINE = re.compile(rb"^HTTP/(?:1\.[01]|0\.9) ([1-5][0-9][0-9]) [^\r\n]*\r\n$")

SEGMENTS = [
    "api", "apis", "v1", "v2", "apps", "coordination.k8s.io", "policy", "namespaces", "default",
    "other", "kube-system", "pods", "configmaps", "deployments", "replicasets", "services",
    "endpoints", "events", "nodes", "leases", "status", "scale", "eviction", "log", "exec",
    "binding", "version", "openapi", "v3", "healthz", "readyz", "watch", "c1", "p1", "d1",
    "web", "node-1",
]  # fmt: skip
JUNK_SEGMENTS = [
    "%zz", "%", "%f", "%ff%fe", "%2F", "%2f..%2f", "%00", "..", ".", "%2e%2e", "~", "%C3%BC",
    "%E2%82", "%ED%A0%80", "a" * 300, "%20", ";", "%3F", "%23", "Pods", "PODS", "-", "_x_",
    "%25", "*", "a:b", "@", "$", "%5C",
]  # fmt: skip
PATHS = [
    "/", "/version", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/apis/apps",
    "/apis/coordination.k8s.io/v1", "/openapi/v2", "/openapi/v3", "/healthz",
    "/api/v1/namespaces", "/api/v1/namespaces/default", "/api/v1/namespaces/default/status",
    "/api/v1/nodes", "/api/v1/nodes/node-1", "/api/v1/nodes/node-1/status", "/api/v1/pods",
    "/api/v1/configmaps", "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/configmaps/c1", "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/pods/p1", "/api/v1/namespaces/default/pods/p1/status",
    "/api/v1/namespaces/default/pods/p1/eviction", "/api/v1/namespaces/default/pods/p1/log",
    "/api/v1/namespaces/default/services", "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/default/endpoints", "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/deployments/d1",
    "/apis/apps/v1/namespaces/default/deployments/d1/scale",
    "/apis/apps/v1/namespaces/default/deployments/d1/status",
    "/apis/apps/v1/namespaces/default/replicasets",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
]  # fmt: skip
METHODS = ["GET"] * 6 + ["POST"] * 4 + ["PUT"] * 3 + ["DELETE"] * 2 + ["PATCH"] * 3 + [
    "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", "PROPFIND",
]  # fmt: skip
QUERY_KEYS = [
    "labelSelector", "fieldSelector", "resourceVersion", "limit", "continue", "timeoutSeconds",
    "watch", "allowWatchBookmarks", "dryRun", "gracePeriodSeconds", "propagationPolicy",
    "fieldManager", "fieldValidation", "pretty", "resourceVersionMatch", "junk", "", "%zz",
]  # fmt: skip
QUERY_VALUES = [
    "", "true", "1", "false", "0", "-1", "10", "99999999999999999999999", "99999999999999999",
    "All", "Strict",
    "app=web", "app in (web,db)", "app in (", "!app", "a=b,c!=d", "metadata.name=c1",
    "metadata.name==c1", "spec.nodeName=", "status.phase!=Running", "nope=1", "a=\\x",
    "Background", "Orphan", "Foreground", "Sideways", "eyJydiI6MSwic3RhcnQiOiJ4In0=",
    "%zz", "%ff", "%00", "%E2%82", "=", "==", "&&", "a" * 500, "3.5", "1e9", "\u00fc",
]  # fmt: skip
CONTENT_TYPES = [
    None, None, "application/json", "application/json; charset=utf-8",
    "application/vnd.kubernetes.protobuf", "application/merge-patch+json",
    "application/json-patch+json", "application/strategic-merge-patch+json",
    "application/apply-patch+yaml", "text/plain", "garbage", "", "application/json;;;=",
    "*/*", "APPLICATION/JSON", "multipart/form-data; boundary=x",
]  # fmt: skip
ACCEPTS = [
    None, TABLE_ACCEPT, "application/json",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    "application/json;as=Table;v=v9;g=meta.k8s.io", "application/vnd.kubernetes.protobuf",
    "garbage;;;", "*/*;q=abc", "text/html", ",", ";", "application/json;as=Table;q=2",
    'application/json;as="Table";g="meta.k8s.io";v="v1"',
]  # fmt: skip
WRONG_TYPES: list[Any] = [
    None, True, False, 0, -1, 2**70, 3.25, "", "x", "-1", [], [None], {}, {"a": None},
    [[[[[["deep"]]]]]], {"k": {"k": {"k": {"k": {}}}}}, "\u00fc\u4e2d", "a" * 300,
]  # fmt: skip


@dataclass
class Request:
    raw: bytes
    method: str
    watch: bool
    valid_http: bool  # False: deliberately broken framing (the parser's own 400 is fine)
    description: str = ""


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


# -- building requests -------------------------------------------------------------------------


def _path(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(PATHS)
    if r < 0.8:  # a real path with one segment replaced, inserted or removed
        segs = rng.choice(PATHS).strip("/").split("/")
        i = rng.randrange(len(segs) + 1)
        pick = rng.choice(JUNK_SEGMENTS if rng.random() < 0.6 else SEGMENTS)
        op = rng.choice(("replace", "insert", "remove"))
        if op == "replace" and i < len(segs):
            segs[i] = pick
        elif op == "remove" and i < len(segs):
            del segs[i]
        else:
            segs.insert(i, pick)
        return "/" + "/".join(segs) + ("/" if rng.random() < 0.1 else "")
    n = rng.randrange(0, 8)
    pool = SEGMENTS + JUNK_SEGMENTS
    path = "/" + "/".join(rng.choice(pool) for _ in range(n))
    return path.replace("//", "/%2F/") if rng.random() < 0.1 else path


def _query(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return ""
    pairs = []
    for _ in range(rng.randrange(1, 5)):
        key = rng.choice(QUERY_KEYS)
        value = rng.choice(QUERY_VALUES)
        if rng.random() < 0.7:  # mostly properly encoded; otherwise raw junk as it comes
            value = "".join(c if c.isalnum() or c in "-_.~%" else f"%{ord(c):02X}" for c in value)
            value = value.encode("ascii", "backslashreplace").decode()
        else:
            value = value.encode("ascii", "ignore").decode().replace(" ", "+").replace("#", "%23")
        pairs.append(f"{key}={value}" if rng.random() < 0.9 else key)
    return "?" + "&".join(pairs)


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """`value` with one random change somewhere inside: a key deleted, a value replaced by
    one of the wrong type, or a string garbled."""
    if isinstance(value, dict) and value and (depth == 0 or rng.random() < 0.7):
        key = rng.choice(list(value))
        r = rng.random()
        if r < 0.2:
            del value[key]
        elif r < 0.5 or not isinstance(value[key], dict | list):
            value[key] = copy.deepcopy(rng.choice(WRONG_TYPES))
        else:
            value[key] = _mutate(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        value[i] = _mutate(rng, value[i], depth + 1)
        return value
    return copy.deepcopy(rng.choice(WRONG_TYPES))


def _manifest(rng: random.Random) -> Any:
    choices: list[Any] = [m for _, m in MANIFESTS.values()]
    choices += [configmap("c1", {"app": "web"}, a="1"), pod("p1"), deployment("d1")]
    obj = copy.deepcopy(rng.choice(choices))
    if rng.random() < 0.3:
        obj["metadata"]["name"] = rng.choice(
            ["c1", "p1", "d1", "UPPER", "a" * 300, "../x", "", "ü", "x.y", "-x", "web-2"]
        )
    for _ in range(rng.choice((0, 0, 1, 1, 2, 4))):
        obj = _mutate(rng, obj)
    return obj


def _patch_doc(rng: random.Random) -> Any:
    ops = []
    for _ in range(rng.randrange(0, 4)):
        op: dict[str, Any] = {
            "op": rng.choice(["add", "remove", "replace", "move", "copy", "test", "nope", 5]),
            "path": rng.choice(["/metadata/labels/x", "/data/a", "/spec/replicas", "", "/", "x",
                                "/metadata/name", "/a~2b", "/items/-", "/spec/0", "/metadata"]),
        }  # fmt: skip
        if rng.random() < 0.7:
            op["value"] = copy.deepcopy(rng.choice(WRONG_TYPES))
        if rng.random() < 0.3:
            op["from"] = rng.choice(["/data", "/metadata/labels", "", "/nope", 3])
        ops.append(op)
    return rng.choice(
        [ops, {"metadata": {"labels": {"x": rng.choice(WRONG_TYPES)}}}, {"spec": {"replicas": 3}},
         {"metadata": {"resourceVersion": "1"}}, {"metadata": None}, None, "x"]
    )  # fmt: skip


def _body(rng: random.Random, method: str) -> bytes:
    r = rng.random()
    if method in ("GET", "HEAD") and r < 0.85:
        return b""
    if r < 0.1:
        return b""
    if r < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if r < 0.2:
        return b"k8s\x00" + bytes(rng.randrange(256) for _ in range(20))
    doc = _patch_doc(rng) if method == "PATCH" and r < 0.7 else _manifest(rng)
    data = json.dumps(doc).encode()
    if rng.random() < 0.15:
        data = data[: rng.randrange(len(data) + 1)]  # truncated
    elif rng.random() < 0.05:
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    return data


def _junk_header(rng: random.Random) -> tuple[str, str]:
    name = "X-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-0123456789") for _ in range(6))
    value = "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(0, 40)))
    return rng.choice(
        [(name, value), ("Accept", value), ("Content-Type", value), ("Authorization", value),
         ("Authorization", f"Bearer {TOKEN}{value[:3]}"), ("Cookie", value),
         ("Kubectl-Session", value)]
    )  # fmt: skip


def _plausible(rng: random.Random) -> tuple[str, str, bytes, str | None]:
    """A request a client could mean: the right verb on the right URL of a kind, with that
    kind's manifest lightly mutated (method, target, body, Content-Type)."""
    collection, manifest = rng.choice(list(MANIFESTS.values()))
    obj = copy.deepcopy(manifest)
    name = rng.choice([obj["metadata"]["name"], "x1", "x2"])
    obj["metadata"]["name"] = name
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        obj = _mutate(rng, obj)
    query = _query(rng) if rng.random() < 0.3 else ""
    item = f"{collection}/{name}"
    verb = rng.choice(["create", "create", "get", "list", "update", "delete", "patch", "status"])
    if verb == "create":
        return (
            "POST",
            collection + query,
            json.dumps(obj).encode(),
            rng.choice(["application/json", None]),
        )
    if verb == "get":
        return "GET", item + query, b"", None
    if verb == "list":
        return "GET", collection + query, b"", None
    if verb == "update":
        return "PUT", item + query, json.dumps(obj).encode(), rng.choice(["application/json", None])
    if verb == "delete":
        return (
            "DELETE",
            item + query,
            b"" if rng.random() < 0.5 else b'{"propagationPolicy":"Background"}',
            None,
        )
    if verb == "patch":
        kind = rng.choice(["application/merge-patch+json", "application/json-patch+json"])
        return "PATCH", item + query, json.dumps(_patch_doc(rng)).encode(), kind
    return "PUT", item + "/status" + query, json.dumps(obj).encode(), "application/json"


def build_request(rng: random.Random) -> Request:
    if rng.random() < 0.5:
        method, target, body, content_type = _plausible(rng)
    else:
        method = rng.choice(METHODS)
        target = _path(rng) + _query(rng)
        body = _body(rng, method)
        content_type = rng.choice(CONTENT_TYPES)
    headers: list[tuple[str, str]] = [("Host", "127.0.0.1"), ("Connection", "close")]
    if rng.random() < 0.95:
        headers.append(("Authorization", f"Bearer {TOKEN}"))
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    accept = rng.choice(ACCEPTS)
    if accept is not None:
        headers.append(("Accept", accept))
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        headers.append(_junk_header(rng))
    chunked = bool(body) and rng.random() < 0.15
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        payload = b""
        rest = body
        while rest:
            n = rng.randrange(1, len(rest) + 1)
            payload += f"{n:x}\r\n".encode() + rest[:n] + b"\r\n"
            rest = rest[n:]
        payload += b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        payload = body
    valid_http = True
    line = f"{method} {target} HTTP/1.1"
    r = rng.random()
    if r < 0.02:  # broken framing on purpose
        valid_http = False
        headers.append(rng.choice([("X-Ctl", "a\x01b"), ("Bad Name", "x"), ("X-Nul", "\x00")]))
    elif r < 0.03:
        valid_http = False
        line = rng.choice(
            [f"{method} {target}", f"{method}  {target} HTTP/9.9", "\x16\x03\x01", "GET"]
        )
    head = line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    watch = "watch=" in target
    desc = f"{line[:300]!r} headers={[h for h in headers if h[0] != 'Host']!r} body={body[:200]!r}"
    return Request(
        head.encode("utf-8", "surrogateescape") + payload, method, watch, valid_http, desc
    )


# -- sending and checking ----------------------------------------------------------------------


async def _read_response(
    reader: asyncio.StreamReader, req: Request
) -> tuple[int, dict[str, str], bytes]:
    line = await reader.readline()
    m = _STATUS_LINE.match(line)
    if m is None:
        raise AssertionError(f"malformed status line {line!r}")
    status = int(m.group(1))
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b""):
            break
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep:
            raise AssertionError(f"malformed header line {h!r}")
        headers[name.strip().lower()] = value.strip()
    if req.method == "HEAD" or status in (204, 304):
        return status, headers, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        if status == 200 and req.watch:
            return status, headers, b""  # a watch stream: leaving it exercises disconnects
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, body
            body += chunk[:-2]
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()


async def send(port: int, req: Request) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(req.raw)
        await writer.drain()
        return await asyncio.wait_for(_read_response(reader, req), RESPONSE_DEADLINE)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def check_response(req: Request, status: int, headers: dict[str, str], body: bytes) -> str | None:
    """Why the answer breaks the rules, or None."""
    if status >= 500:
        return f"status {status}: {body[:500]!r}"
    if status < 400 or req.method == "HEAD":
        return None
    content_type = headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return f"status {status} with Content-Type {content_type!r}: {body[:300]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"status {status} body is not JSON: {body[:300]!r}"
    if not isinstance(doc, dict) or doc.get("kind") != "Status" or doc.get("code") != status:
        return f"status {status} body is not its Status: {body[:300]!r}"
    if not isinstance(doc.get("message"), str) or not doc.get("reason"):
        return f"Status without message or reason: {body[:300]!r}"
    return None


async def _seed_objects(api: API) -> None:
    """Objects the generated paths name, so reads, writes and subresources find something."""
    await api.post("/api/v1/namespaces/default/configmaps", configmap("c1", {"app": "web"}, a="1"))
    await api.post("/api/v1/namespaces/default/pods", pod("p1", node="node-1"))
    await api.post("/apis/apps/v1/namespaces/default/deployments", deployment("d1"))
    await api.post("/api/v1/nodes", {"metadata": {"name": "node-1"}})


async def fuzz(seed: int) -> Outcome:
    rng = random.Random(seed)
    outcome = Outcome()
    backend = LocalBackend()
    async with serving(backend=backend) as api:
        await _seed_objects(api)
        port = api.server.port
        for i in range(REQUESTS_PER_SEED):
            req = build_request(rng)
            try:
                status, headers, body = await send(port, req)
            except (
                AssertionError,
                TimeoutError,
                ConnectionError,
                asyncio.IncompleteReadError,
                ValueError,
            ) as e:
                outcome.failures.append(
                    f"seed={seed} request={i}: {type(e).__name__} {e}\n  {req.description}"
                )
                continue
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            problem = check_response(req, status, headers, body)
            if problem is not None:
                outcome.failures.append(f"seed={seed} request={i}: {problem}\n  {req.description}")
        # still serving, and every watch the fuzzing left behind is released
        assert (await api.get("/version")).status == 200
        listed = await api.get("/api/v1/namespaces/default/configmaps")
        assert listed.status == 200 and listed.json()["kind"] == "ConfigMapList"
        deadline = asyncio.get_running_loop().time() + 10
        while (
            len(backend.hub) or api.server.active_watches
        ) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert len(backend.hub) == 0, f"{len(backend.hub)} store watchers leaked"
        assert api.server.active_watches == 0
    return outcome


@pytest.mark.parametrize("seed", SEEDS)
def test_random_and_mutated_requests_never_break_the_server(seed: int) -> None:
    outcome = asyncio.run(fuzz(seed))
    assert not outcome.failures, f"{len(outcome.failures)} bad answers:\n" + "\n".join(
        outcome.failures[:15]
    )
    # the mix reached deep into the API, not only its 404s
    assert outcome.statuses.get(200, 0) > 200 and outcome.statuses.get(201, 0) > 10
    assert {400, 401, 404, 405, 409, 415, 422} <= outcome.statuses.keys()
