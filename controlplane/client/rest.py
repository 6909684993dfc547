"""`RESTClient`: a small synchronous client of the Kubernetes REST API, for the CLI.

The `kubelab` workload commands make a handful of requests each, one after the other, so
this is plain `http.client` + `ssl` (no event loop, no new dependency). Each request opens
its own connection: then "was the request sent?" has a single answer, the connect, which is
what the retry rules below hinge on.

Failover and retries follow DESIGN.md's write contract:

- the connection cannot be made (refused, reset, or a timeout during the TCP or TLS
  handshake: a paused master still accepts TCP connections but never completes TLS): nothing
  was sent, any verb moves on to the next server;
- 503 (no leader: nothing was proposed) and 429: any verb moves on to the next server; after
  a round of servers the client waits as long as `Retry-After` asks, within a total budget of
  about 15 s, and then reports the last answer;
- once a request was sent, a GET is retried on the next server after any failure (no
  answer, a read timeout, a 504); a write that gets 504 or no answer raises `OutcomeUnknown`
  and is never retried: it may or may not have been applied, and only the caller can check.

Errors: `APIStatusError` (the server answered with a `metav1.Status`; `kubectl_message()`
renders kubectl's line for it, research/kubectl-api.md §9.1), `OutcomeUnknown`,
`TransportError` (no server could be reached; nothing was applied), all `RESTError`s.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.config import ClusterConfig, admin_token
from controlplane.pki import client_ssl_context, pki_paths

CONNECT_TIMEOUT_S = 2.0
"""TCP + TLS handshake deadline: a paused master accepts TCP and never completes TLS."""

__all__ = [
    "JSON",
    "TABLE",
    "APIStatusError",
    "OutcomeUnknown",
    "RESTClient",
    "RESTError",
    "Response",
    "TransportError",
]

logger = logging.getLogger(__name__)

JSON = "application/json"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)
"""The Accept header kubectl sends for `get` (every version 1.20-1.33)."""

USER_AGENT = "kubelab/v1.33.0 (linux/amd64) kubelab"

RETRY_BUDGET = 15.0  # seconds a request may spend waiting on 503s before giving up
MAX_RETRY_AFTER = 5.0  # a single wait, whatever Retry-After says
DEFAULT_RETRY_AFTER = 1.0

Query = Mapping[str, str | int | bool | None]

_TIMEOUT_MESSAGE = (
    "the server was unable to return a response in the time allotted, "
    "but may still be processing the request"
)
# What kube-apiserver's clients say when an error answer carries no Status (client-go's
# `NewGenericServerResponse`): reason and message by HTTP code.
_GENERIC: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: (
        "NotAcceptable",
        "the server was unable to respond with a content type that the client supports",
    ),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Gone", "the server has asked for the client to provide a newer resource version"),
    413: ("RequestEntityTooLarge", "the server has rejected the request because it is too large"),
    415: ("UnsupportedMediaType", "the server was unable to handle the media type of the request"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", _TIMEOUT_MESSAGE),
}


class RESTError(Exception):
    """Every failure of a `RESTClient` call."""


class TransportError(RESTError):
    """No server could be reached, or none answered a GET: nothing was applied."""


class OutcomeUnknown(RESTError):
    """A write was sent but its outcome is unknown (504, or no answer): it may or may not
    have been applied. Never retried by the client."""


class APIStatusError(RESTError):
    """The server refused the request with a `metav1.Status` (`status`, always a dict with
    `code`, `reason` and `message`, synthesized when the body was not a Status)."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        super().__init__(self.message)

    @property
    def code(self) -> int:
        code = self.status.get("code")
        return code if isinstance(code, int) else 0

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def details(self) -> dict[str, Any]:
        details = self.status.get("details")
        return details if isinstance(details, dict) else {}

    def with_source(self, verb: str, source: str) -> APIStatusError:
        """The same error with the message prefixed as kubectl's `AddSourceToErr` does for
        an object read from a file: `error when creating "x.yaml": <message>`."""
        status = dict(self.status)
        status["message"] = f"error when {verb} {json.dumps(source)}: {self.message}"
        return APIStatusError(status)

    def kubectl_message(self) -> str:
        """The line(s) kubectl prints on stderr for this error (kubectl's `CheckErr`)."""
        if self.reason == "Invalid" or self.code == 422:
            return _invalid_message(self.status)
        if self.reason == "Unauthorized":
            return f"error: You must be logged in to the server ({self.message})"
        if self.reason:
            return f"Error from server ({self.reason}): {self.message}"
        return f"Error from server: {self.message}"


def _invalid_message(status: Mapping[str, Any]) -> str:
    """kubectl rebuilds a 422 from `details`: `The <Kind> "<name>" is invalid: <field>:
    <message>`, one `* ` line per cause when there are several; the top-level message is
    used only when there are no details."""
    details = status.get("details")
    if not isinstance(details, dict):
        message = status.get("message") or ""
        return f"The request is invalid: {message}" if message else "The request is invalid"
    kind, name = details.get("kind") or "", details.get("name") or ""
    head = f"The {kind} {json.dumps(name)} is invalid" if kind or name else "The request is invalid"
    causes: list[str] = []
    for c in details.get("causes") or ():
        if not isinstance(c, dict):
            continue
        line = f"{c.get('field') or ''}: {c.get('message') or ''}"
        if line not in causes:
            causes.append(line)
    if not causes:
        return head
    if len(causes) == 1:
        return f"{head}: {causes[0]}"
    return "\n".join([f"{head}: ", *(f"* {c}" for c in causes)])


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    server: str  # the base URL that answered

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise RESTError(f"{self.server} answered with invalid JSON: {e}") from None


@dataclass(frozen=True)
class _Open:
    """A streamed answer still being read."""

    conn: http.client.HTTPConnection
    resp: http.client.HTTPResponse


class _NotSent(Exception):
    """The request never reached the server: any verb may go elsewhere."""


class _NoAnswer(Exception):
    """The request was sent but no (complete) answer came back."""


@dataclass(frozen=True)
class _Server:
    url: str
    scheme: str
    host: str
    port: int


def _parse_server(url: str) -> _Server:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server {url!r}: expected https://HOST:PORT (or http://)")
    default = 443 if parts.scheme == "https" else 80
    return _Server(url.rstrip("/"), parts.scheme, parts.hostname, parts.port or default)


def _status_from(resp: Response) -> dict[str, Any]:
    """The Status of an error answer; synthesized (as client-go does) when the body is not
    one, so every error carries code, reason and message."""
    try:
        doc = json.loads(resp.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        status = dict(doc)
        status.setdefault("code", resp.status)
        return status
    reason, message = _GENERIC.get(resp.status, ("", f"unknown (HTTP {resp.status})"))
    text = resp.body.decode(errors="replace").strip()
    if text and resp.status >= 500:
        message = f"{message} ({text[:200]})"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": resp.status,
    }


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        value = float(headers.get("retry-after", ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def _with_query(path: str, query: Query | None) -> str:
    if not query:
        return path
    items = []
    for k, v in query.items():
        if v is None:
            continue
        items.append((k, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return f"{path}?{urllib.parse.urlencode(items)}" if items else path


class RESTClient:
    """A client of one cluster's Kubernetes API (see the module docstring for failover).

    `servers` are base URLs (`https://127.10.0.11:6443`), tried in order from the last one
    that answered; `ca_file` is the cluster CA (None: the system's trust store; `ConfigError`
    if it cannot be loaded); `timeout` bounds the connect (TCP and TLS) and each read.
    """

    def __init__(
        self,
        servers: Sequence[str],
        token: str,
        ca_file: Path | None,
        *,
        timeout: float = 10.0,
        retry_budget: float = RETRY_BUDGET,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not servers:
            raise ValueError("RESTClient needs at least one server")
        self._servers = [_parse_server(s) for s in servers]
        self._token = token
        self._timeout = timeout
        self._connect_timeout = min(timeout, CONNECT_TIMEOUT_S)
        self._retry_budget = retry_budget
        self._sleep = sleep
        self._clock = clock
        self._current = 0
        self._ssl = client_ssl_context(ca_file) if ca_file else ssl.create_default_context()

    @classmethod
    def for_cluster(cls, cfg: ClusterConfig, *, timeout: float = 10.0) -> RESTClient:
        """Every master's REST address, the cluster CA and the admin token. `ConfigError`
        if the cluster has no token file or CA (it was never started). When the front door
        exists (the Services issue) its address goes first."""
        servers = [f"https://{m.ip}:{m.rest_port}" for m in cfg.masters]
        return cls(servers, admin_token(cfg), pki_paths(cfg).ca_cert, timeout=timeout)

    @property
    def servers(self) -> list[str]:
        return [s.url for s in self._servers]

    # -- public calls ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        accept: str = JSON,
    ) -> Response:
        """One API call with failover; a 2xx `Response`, else `APIStatusError`,
        `OutcomeUnknown` (writes only) or `TransportError`."""
        resp, _ = self._call(method, _with_query(path, query), body, accept, stream=False)
        return resp

    def get_json(self, path: str, *, query: Query | None = None, accept: str = JSON) -> Any:
        return self.request("GET", path, query=query, accept=accept).json()

    def stream(
        self,
        path: str,
        query: Query | None = None,
        accept: str = JSON,
        *,
        read_timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects of a streamed answer, one per line (`watch=true`), until the
        server ends the stream (the iterator returns) or the caller stops iterating.
        Establishing the stream fails over like a GET; once events flow, a broken
        connection raises `TransportError`. `read_timeout=None` waits for events forever."""
        first, opened = self._call("GET", _with_query(path, query), None, accept, stream=True)
        if opened is None:  # a 2xx other than 200: nothing to stream
            return
        try:
            if opened.conn.sock is not None:
                opened.conn.sock.settimeout(read_timeout)
            while True:
                try:
                    line = opened.resp.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise TransportError(f"{first.server}: the stream broke: {_why(e)}") from None
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise RESTError(
                        f"{first.server}: invalid JSON in the stream: {line[:200]!r}"
                    ) from None
                if isinstance(event, dict):
                    yield event
        finally:
            opened.conn.close()

    # -- the retry loop --------------------------------------------------------------------

    def _call(
        self, method: str, target: str, body: Any, accept: str, *, stream: bool
    ) -> tuple[Response, _Open | None]:
        data = None if body is None else json.dumps(body).encode()
        write = method != "GET"
        deadline = self._clock() + self._retry_budget
        while True:
            failures: list[str] = []
            busy: APIStatusError | None = None  # the last 503/429 (or a GET's 504)
            wait = MAX_RETRY_AFTER
            n = len(self._servers)
            start = self._current
            for i in range(n):
                server = self._servers[(start + i) % n]
                try:
                    resp, opened = self._attempt(
                        server, method, target, data, accept=accept, stream=stream
                    )
                except _NotSent as e:
                    failures.append(f"{server.url}: {e}")
                    continue
                except _NoAnswer as e:
                    if write:
                        raise OutcomeUnknown(
                            f"{method} {target} was sent to {server.url} but no answer came "
                            f"back ({e}): the write may or may not have happened"
                        ) from None
                    failures.append(f"{server.url}: {e}")
                    continue
                if resp.status in (429, 503) or (resp.status == 504 and not write):
                    busy = APIStatusError(_status_from(resp))
                    wait = min(wait, _retry_after(resp.headers))
                    failures.append(f"{server.url}: {resp.status} {busy.message}")
                    continue
                if resp.status == 504:
                    message = APIStatusError(_status_from(resp)).message
                    raise OutcomeUnknown(
                        f"{method} {target}: {server.url} answered 504 ({message}): "
                        "the write may or may not have happened"
                    )
                self._current = (start + i) % n
                if resp.status >= 400:
                    raise APIStatusError(_status_from(resp))
                return resp, opened
            if busy is None:
                raise TransportError("no API server answered: " + "; ".join(failures))
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise busy
            logger.info("retrying after 503 wait=%.1fs failures=%s", wait, failures)
            self._sleep(min(wait, remaining))

    def _attempt(
        self,
        server: _Server,
        method: str,
        target: str,
        data: bytes | None,
        *,
        accept: str,
        stream: bool,
    ) -> tuple[Response, _Open | None]:
        """One try on one server. For a stream answered 200 the connection stays open
        (returned) and the Response has an empty body; otherwise the body is read and the
        connection closed."""
        conn: http.client.HTTPConnection
        if server.scheme == "https":
            conn = http.client.HTTPSConnection(
                server.host, server.port, timeout=self._connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(
                server.host, server.port, timeout=self._connect_timeout
            )
        headers = {
            "Accept": accept,
            "Authorization": f"Bearer {self._token}",
            "User-Agent": USER_AGENT,
        }
        if data is not None:
            headers["Content-Type"] = JSON
        try:
            try:
                conn.connect()
                # A paused master accepts TCP but never finishes TLS: the handshake has its
                # own short deadline; the answer may then take as long as the request needs.
                if conn.sock is not None:
                    conn.sock.settimeout(self._timeout)
                # A failed send never delivers a complete request: the server cannot act.
                conn.request(method, target, body=data, headers=headers)
            except (OSError, http.client.HTTPException) as e:
                raise _NotSent(_why(e)) from None
            try:
                resp = conn.getresponse()
                got = {k.lower(): v for k, v in resp.getheaders()}
                if stream and resp.status == 200:
                    return Response(resp.status, got, b"", server.url), _Open(conn, resp)
                payload = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise _NoAnswer(_why(e)) from None
        except BaseException:
            conn.close()
            raise
        conn.close()
        return Response(resp.status, got, payload, server.url), None


def _why(e: BaseException) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({e.verify_message})"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection"
    text = str(e) or type(e).__name__
    return text
