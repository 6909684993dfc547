"""`RESTClient`: requests, Status errors in kubectl's words, failover and the retry rules of
DESIGN.md's write contract (a write whose outcome is unknown is never retried), streams.

Servers here are scripted fakes (`http.server` on threads, TLS from the cluster PKI), so
each rule can be driven exactly: a refused port, a port that accepts TCP but never answers
(a paused master), 503 with Retry-After, 504, a stream cut in the middle.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controlplane.client.rest import (
    JSON,
    TABLE,
    APIStatusError,
    OutcomeUnknown,
    RESTClient,
    TransportError,
)
from controlplane.config import ClusterConfig, new_tokens, parse_config, write_token_file
from controlplane.kube import errors
from controlplane.kube.resources import DEPLOYMENTS
from controlplane.pki import ensure_pki, pki_paths, server_ssl_context

# -- scripted servers --------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded; bytes as is; an iterable of bytes is sent chunked
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[Seen], Reply]


class FakeAPI:
    """An HTTP(S) server answering every request with `script(request)`."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                outer.seen.append(req)
                reply = outer.script(req)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if isinstance(reply.body, Iterable) and not isinstance(
                    reply.body, bytes | dict | list | str
                ):
                    self.send_header("Content-Type", JSON)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    self.close_connection = True  # a cut stream ends here
                    return
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                self.send_header("Content-Type", JSON)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


class Silent:
    """A port that accepts TCP connections (the kernel's backlog) and never answers: what
    a paused master looks like."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


def refused_url(scheme: str = "http") -> str:
    """An address where nothing listens (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


@pytest.fixture
def servers() -> Iterator[Callable[..., FakeAPI]]:
    made: list[FakeAPI] = []

    def make(script: Script, tls: ssl.SSLContext | None = None) -> FakeAPI:
        api = FakeAPI(script, tls)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    yield s
    s.close()


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterConfig:
    """A cluster on disk with a CA, serving certificate (SAN 127.0.0.1) and token file."""
    text = '[cluster]\nname = "rc"\nsubnet = "127.43.0.0/16"\ndata_dir = "data"\n'
    text += "".join(f'[[masters]]\nname = "master-{i}"\n' for i in (1, 2, 3))
    cfg = parse_config(text, source=tmp_path / "rc.toml")
    ensure_pki(cfg)
    write_token_file(cfg.token_file, new_tokens())
    return cfg


class FakeTime:
    """`sleep` and `clock` for the client: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def ok(body: Any = None) -> Script:
    return lambda req: Reply(200, body if body is not None else {"kind": "Status", "ok": 1})


def status(err: errors.APIError, headers: dict[str, str] | None = None) -> Script:
    return lambda req: Reply(err.code, err.status(), headers or {})


def client(*urls: str, ft: FakeTime | None = None, timeout: float = 5.0) -> RESTClient:
    ft = ft or FakeTime()
    return RESTClient(list(urls), "s3cret", None, timeout=timeout, sleep=ft.sleep, clock=ft.clock)


# -- requests ----------------------------------------------------------------------------------


def test_request_sends_token_accept_query_and_json_body(servers: Any) -> None:
    api = servers(ok({"kind": "Deployment", "metadata": {"name": "web"}}))
    c = client(api.url)
    resp = c.request(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        query={"watch": True, "labelSelector": "app=web", "fieldSelector": None},
        body={"kind": "Deployment"},
        accept=TABLE,
    )
    assert resp.status == 200
    assert resp.json()["metadata"]["name"] == "web"
    assert resp.server == api.url
    (req,) = api.seen
    assert req.method == "POST"
    assert (
        req.path
        == "/apis/apps/v1/namespaces/default/deployments?watch=true&labelSelector=app%3Dweb"
    )
    assert req.headers["authorization"] == "Bearer s3cret"
    assert req.headers["accept"] == TABLE
    assert req.headers["content-type"] == JSON
    assert json.loads(req.body) == {"kind": "Deployment"}


def test_https_with_the_cluster_ca(servers: Any, cluster: ClusterConfig) -> None:
    """The serving certificate is checked against the cluster CA, by IP SAN."""
    api = servers(ok({"kind": "APIVersions"}), tls=server_ssl_context(pki_paths(cluster)))
    c = RESTClient([api.url], "t", pki_paths(cluster).ca_cert)
    assert c.get_json("/api") == {"kind": "APIVersions"}


def test_untrusted_certificate_is_a_transport_error(
    servers: Any, cluster: ClusterConfig, tmp_path: Path
) -> None:
    """Another cluster's CA does not vouch for this server: nothing is sent."""
    api = servers(ok(), tls=server_ssl_context(pki_paths(cluster)))
    other = parse_config(
        '[cluster]\nname = "other"\nsubnet = "127.44.0.0/16"\ndata_dir = "other"\n'
        '[[masters]]\nname = "master-1"\n',
        source=tmp_path / "other.toml",
    )
    ensure_pki(other)
    c = RESTClient([api.url], "t", pki_paths(other).ca_cert)
    with pytest.raises(TransportError, match="TLS certificate not trusted"):
        c.request("POST", "/api/v1/namespaces", body={})
    assert api.seen == []


def test_for_cluster_uses_every_master_the_ca_and_the_admin_token(
    cluster: ClusterConfig,
) -> None:
    c = RESTClient.for_cluster(cluster)
    assert c.servers == [f"https://127.43.0.{10 + i}:6443" for i in (1, 2, 3)]


# -- Status errors -----------------------------------------------------------------------------


def test_status_error_carries_the_status(servers: Any) -> None:
    err = errors.not_found(DEPLOYMENTS, "web")
    api = servers(status(err))
    with pytest.raises(APIStatusError) as e:
        client(api.url).get_json("/apis/apps/v1/namespaces/default/deployments/web")
    assert e.value.status == err.status()
    assert (e.value.code, e.value.reason) == (404, "NotFound")
    assert e.value.kubectl_message() == (
        'Error from server (NotFound): deployments.apps "web" not found'
    )


def test_error_without_a_status_body_gets_client_gos_generic_status(servers: Any) -> None:
    api = servers(lambda req: Reply(404, b"404 page not found\n"))
    with pytest.raises(APIStatusError) as e:
        client(api.url).get_json("/nope")
    assert e.value.kubectl_message() == (
        "Error from server (NotFound): the server could not find the requested resource"
    )


CONFLICT_TAIL = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


@pytest.mark.parametrize(
    ("err", "source", "expected"),
    [
        pytest.param(
            errors.not_found(DEPLOYMENTS, "web"),
            None,
            'Error from server (NotFound): deployments.apps "web" not found',
            id="404",
        ),
        pytest.param(
            errors.already_exists(DEPLOYMENTS, "web"),
            "manifests/deploy.yaml",
            "Error from server (AlreadyExists): error when creating "
            '"manifests/deploy.yaml": deployments.apps "web" already exists',
            id="409-exists-from-file",
        ),
        pytest.param(
            errors.conflict(DEPLOYMENTS, "web"),
            None,
            "Error from server (Conflict): Operation cannot be fulfilled on deployments.apps "
            f'"web": {CONFLICT_TAIL}',
            id="409-conflict",
        ),
        pytest.param(
            errors.invalid(
                DEPLOYMENTS,
                "bad",
                [
                    errors.cause(
                        "spec.template.metadata.labels",
                        'Invalid value: map[string]string{"app":"other"}: `selector` does '
                        "not match template `labels`",
                    )
                ],
            ),
            "bad.yaml",
            'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: '
            'map[string]string{"app":"other"}: `selector` does not match template `labels`',
            id="422-one-cause",
        ),
        pytest.param(
            errors.invalid(
                DEPLOYMENTS,
                "bad",
                [
                    errors.cause("metadata.name", "Required value", "FieldValueRequired"),
                    errors.cause("spec.replicas", "Invalid value: -1: must be >= 0"),
                ],
            ),
            None,
            'The Deployment "bad" is invalid: \n* metadata.name: Required value\n'
            "* spec.replicas: Invalid value: -1: must be >= 0",
            id="422-causes",
        ),
        pytest.param(
            errors.APIError(422, "Invalid", "the body is wrong"),
            None,
            "The request is invalid: the body is wrong",
            id="422-no-details",
        ),
        pytest.param(
            errors.unauthorized(),
            None,
            "error: You must be logged in to the server (Unauthorized)",
            id="401",
        ),
        pytest.param(
            errors.forbidden('pods is forbidden: User "x" cannot list'),
            None,
            'Error from server (Forbidden): pods is forbidden: User "x" cannot list',
            id="403",
        ),
        pytest.param(
            errors.APIError(500, "", "boom"), None, "Error from server: boom", id="no-reason"
        ),
    ],
)
def test_kubectl_message(err: errors.APIError, source: str | None, expected: str) -> None:
    """kubectl's stderr line for each Status (research/kubectl-api.md §9.1)."""
    e = APIStatusError(err.status())
    if source is not None:
        e = e.with_source("creating", source)
    assert e.kubectl_message() == expected


# -- failover and retries ----------------------------------------------------------------------


def test_refused_server_fails_over_and_the_next_request_starts_where_it_worked(
    servers: Any,
) -> None:
    api = servers(ok())
    c = client(refused_url(), api.url)
    c.request("POST", "/api/v1/namespaces/default/configmaps", body={})
    c.request("GET", "/api/v1/namespaces")
    assert [r.method for r in api.seen] == ["POST", "GET"]
    assert c.servers[0] != api.url  # the order is kept; the starting point moved


def test_every_server_refused_is_a_transport_error_naming_each() -> None:
    a, b = refused_url(), refused_url()
    with pytest.raises(TransportError) as e:
        client(a, b).request("DELETE", "/api/v1/namespaces/default/pods/x")
    assert f"{a}: connection refused" in str(e.value)
    assert f"{b}: connection refused" in str(e.value)


def test_503_is_retried_for_writes_after_retry_after(servers: Any) -> None:
    """503 means nothing was proposed: a POST may go to the next server, and after a round
    of 503s the client waits as long as Retry-After asks."""
    answers = iter([503, 503, 201])

    def script(req: Seen) -> Reply:
        code = next(answers)
        if code == 503:
            return Reply(503, errors.unavailable("no leader", 2).status(), {"Retry-After": "2"})
        return Reply(201, {"kind": "ConfigMap"})

    a, b = servers(script), servers(script)
    ft = FakeTime()
    resp = client(a.url, b.url, ft=ft).request("POST", "/api/v1/configmaps", body={})
    assert resp.status == 201
    assert ft.slept == [2.0]
    assert [len(a.seen), len(b.seen)] == [2, 1]


def test_503_until_the_budget_is_spent_reports_the_503(servers: Any) -> None:
    api = servers(status(errors.unavailable("no leader", 1), {"Retry-After": "1"}))
    ft = FakeTime()
    with pytest.raises(APIStatusError) as e:
        client(api.url, ft=ft).request("PUT", "/api/v1/namespaces/x", body={})
    assert e.value.code == 503
    assert e.value.kubectl_message() == "Error from server (ServiceUnavailable): no leader"
    assert 14 <= sum(ft.slept) <= 15
    assert len(api.seen) == len(ft.slept) + 1


def test_504_on_a_write_is_outcome_unknown_and_not_retried(servers: Any) -> None:
    a = servers(status(errors.outcome_unknown("leader lost")))
    b = servers(ok())
    with pytest.raises(OutcomeUnknown, match="may or may not have happened"):
        client(a.url, b.url).request("POST", "/api/v1/namespaces", body={})
    assert b.seen == []


def test_504_on_a_get_goes_to_the_next_server(servers: Any) -> None:
    a = servers(status(errors.outcome_unknown("slow")))
    b = servers(ok({"kind": "NamespaceList"}))
    assert client(a.url, b.url).get_json("/api/v1/namespaces") == {"kind": "NamespaceList"}


def test_no_answer_to_a_write_is_outcome_unknown(servers: Any, silent: Silent) -> None:
    """Plain HTTP to a silent port: the request reaches the kernel's buffer, no answer
    comes. The POST may have been applied: it is never sent elsewhere."""
    b = servers(ok())
    with pytest.raises(OutcomeUnknown, match="no answer came back"):
        client(silent.url("http"), b.url, timeout=0.3).request("POST", "/x", body={})
    assert b.seen == []


def test_no_answer_to_a_get_goes_to_the_next_server(servers: Any, silent: Silent) -> None:
    b = servers(ok({"kind": "PodList"}))
    assert client(silent.url("http"), b.url, timeout=0.3).get_json("/x") == {"kind": "PodList"}


def test_tls_handshake_timeout_means_not_sent(
    servers: Any, silent: Silent, cluster: ClusterConfig
) -> None:
    """A paused master completes TCP but never TLS: the write was not sent and goes to the
    next server."""
    b = servers(ok({"kind": "ConfigMap"}), tls=server_ssl_context(pki_paths(cluster)))
    c = RESTClient([silent.url("https"), b.url], "t", pki_paths(cluster).ca_cert, timeout=0.3)
    assert c.request("POST", "/x", body={}).json() == {"kind": "ConfigMap"}
    assert [r.method for r in b.seen] == ["POST"]


# -- streams -----------------------------------------------------------------------------------


def events(*objs: dict[str, Any], cut: bool = False) -> Iterator[bytes]:
    """Chunked watch events, one JSON line each; `cut` ends with half a chunk."""
    for o in objs:
        line = json.dumps(o).encode() + b"\n"
        yield b"%x\r\n%s\r\n" % (len(line), line)
        yield b"%x\r\n\n\r\n" % 1  # a blank keep-alive line between events
    if cut:
        yield b'40\r\n{"type":'
    else:
        yield b"0\r\n\r\n"


def test_stream_yields_each_event_until_the_server_ends_it(servers: Any) -> None:
    evs = [
        {"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {"name": "a"}}},
        {"type": "DELETED", "object": {"kind": "ConfigMap", "metadata": {"name": "a"}}},
    ]
    api = servers(lambda req: Reply(200, events(*evs)))
    got = list(client(api.url).stream("/api/v1/configmaps", {"watch": True}))
    assert got == evs
    assert api.seen[0].path == "/api/v1/configmaps?watch=true"


def test_stream_cut_in_the_middle_is_a_transport_error(servers: Any) -> None:
    ev = {"type": "ADDED", "object": {"kind": "Pod"}}
    api = servers(lambda req: Reply(200, events(ev, cut=True)))
    got = []
    with pytest.raises(TransportError, match="the stream broke"):
        for e in client(api.url).stream("/api/v1/pods", {"watch": True}):
            got.append(e)
    assert got == [ev]


def test_stream_refused_with_a_status(servers: Any) -> None:
    api = servers(status(errors.gone("too old resource version: 5 (9)")))
    with pytest.raises(APIStatusError) as e:
        next(client(api.url).stream("/api/v1/pods", {"watch": True}))
    assert (e.value.code, e.value.reason) == (410, "Expired")
