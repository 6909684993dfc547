"""The plain-HTTP side port of a master (2381): `/healthz`, `/readyz`, `/status`, `/metrics`.

A deliberately tiny HTTP/1.1 server on asyncio streams (GET only, one request per
connection): it must answer while the process is healthy and must cost nothing. `kubelab
status` and the front door rely on short deadlines against it: a paused master accepts the
TCP connection but never answers, which is exactly how they tell it is paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        return cls(status, json.dumps(obj).encode() + b"\n", "application/json")


Handler = Callable[[], Response]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class AddressInUse(OSError):
    """The address is taken by another process: names it and says what to do."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket without SO_REUSEPORT (two servers must never share a port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise AddressInUse(
            f"{host}:{port} is in use ({e.strerror}): another kubelab cluster or process "
            "holds it; stop it, or give this cluster another subnet in cluster.toml"
        ) from e
    sock.listen(128)
    sock.setblocking(False)
    return sock


class HealthServer:
    """Serves fixed paths with handler functions evaluated per request."""

    def __init__(self, host: str, port: int, routes: dict[str, Handler]) -> None:
        self.host, self.port = host, port
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        sock = bind_socket(self.host, self.port)
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while True:  # skip headers
                h = await asyncio.wait_for(reader.readline(), 5)
                if h in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0], parts[1].split("?", 1)[0]
            handler = self.routes.get(target)
            if method != "GET":
                resp = Response(405, b"only GET\n")
            elif handler is None:
                resp = Response(404, f"no such path; try {', '.join(self.routes)}\n".encode())
            else:
                try:
                    resp = handler()
                except Exception:
                    logger.exception("health handler failed path=%s", target)
                    resp = Response(503, b"internal error\n")
            head = (
                f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, '')}\r\n"
                f"Content-Type: {resp.content_type}\r\n"
                f"Content-Length: {len(resp.body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + resp.body)
            await asyncio.wait_for(writer.drain(), 5)
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
