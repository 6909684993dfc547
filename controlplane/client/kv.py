"""`KVClient`: the client library of the masters' gRPC API, with failover by deadline.

Every call has a deadline. A paused master still accepts TCP connections, so only deadlines
reveal it; long-lived streams use HTTP/2 keepalive with a ping timeout for the same reason.

Retries follow DESIGN.md's write contract:
- a read (Range, Status, Hash) is retried on the next endpoint after any failure;
- a write is retried on the next endpoint only when nothing was proposed: the server said
  "no leader", or the connection could not be made. After "outcome unknown", or a deadline
  on a write, the client raises `OutcomeUnknown` and never retries: the caller decides
  (a put of the same value is idempotent, an increment is not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from controlplane.apipb import api_pb2, api_pb2_grpc
from controlplane.store.mvcc import prefix_end
from controlplane.storepb import store_pb2

__all__ = ["ClientError", "KVClient", "OutcomeUnknown", "prefix_end"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Without these, gRPC sends at most one ping per 5 minutes on a silent stream, so a
    # watch on a paused master would hang instead of failing over within seconds.
    ("grpc.http2.min_time_between_pings_ms", 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.ping_timeout_ms", 2000),  # newer gRPC: the deadline of a keepalive ping
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
    # Reconnect quickly to a master that comes back (the default backoff reaches 2 min).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class ClientError(Exception):
    """A call failed on every endpoint; `code` is the last gRPC status code."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class OutcomeUnknown(ClientError):
    """A write may or may not have been applied; it was not retried."""


class KVClient:
    def __init__(
        self,
        endpoints: Sequence[str],
        token: str,
        *,
        timeout: float = 5.0,
        retry_for: float = 15.0,
    ) -> None:
        if not endpoints:
            raise ValueError("KVClient needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.retry_for = retry_for
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._channels = {
            ep: grpc.aio.insecure_channel(ep, options=KEEPALIVE_OPTIONS) for ep in self.endpoints
        }
        self._preferred = 0

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()

    async def __aenter__(self) -> KVClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- calls -------------------------------------------------------------------------------

    async def put(self, key: bytes, value: bytes, prev_kv: bool = False) -> store_pb2.PutResponse:
        req = store_pb2.PutRequest(key=key, value=value, prev_kv=prev_kv)
        return await self._call(lambda ch: api_pb2_grpc.KVStub(ch).Put, req, write=True)

    async def get(
        self,
        key: bytes,
        *,
        prefix: bool = False,
        revision: int = 0,
        serializable: bool = False,
        limit: int = 0,
    ) -> store_pb2.RangeResponse:
        req = store_pb2.RangeRequest(
            key=key,
            range_end=prefix_end(key) if prefix else b"",
            revision=revision,
            serializable=serializable,
            limit=limit,
        )
        return await self._call(lambda ch: api_pb2_grpc.KVStub(ch).Range, req, write=False)

    async def delete(self, key: bytes, *, prefix: bool = False) -> store_pb2.DeleteRangeResponse:
        req = store_pb2.DeleteRangeRequest(key=key, range_end=prefix_end(key) if prefix else b"")
        return await self._call(lambda ch: api_pb2_grpc.KVStub(ch).DeleteRange, req, write=True)

    async def txn(self, req: store_pb2.TxnRequest) -> store_pb2.TxnResponse:
        return await self._call(lambda ch: api_pb2_grpc.KVStub(ch).Txn, req, write=True)

    async def status(self, endpoint: str, timeout: float = 1.0) -> api_pb2.StatusResponse:
        """The status of one member (no failover: it is about that member)."""
        stub = api_pb2_grpc.ClusterStub(self._channels[endpoint])
        return await stub.Status(api_pb2.StatusRequest(), timeout=timeout, metadata=self._metadata)

    async def hash(self, endpoint: str, timeout: float = 2.0) -> api_pb2.HashResponse:
        stub = api_pb2_grpc.MaintenanceStub(self._channels[endpoint])
        return await stub.Hash(api_pb2.HashRequest(), timeout=timeout, metadata=self._metadata)

    async def set_faults(
        self, endpoint: str, req: api_pb2.SetFaultsRequest, timeout: float = 2.0
    ) -> api_pb2.SetFaultsResponse:
        stub = api_pb2_grpc.MaintenanceStub(self._channels[endpoint])
        return await stub.SetFaults(req, timeout=timeout, metadata=self._metadata)

    async def transfer_leadership(self, target: int) -> api_pb2.TransferLeadershipResponse:
        req = api_pb2.TransferLeadershipRequest(target=target)
        return await self._call(
            lambda ch: api_pb2_grpc.MaintenanceStub(ch).TransferLeadership, req, write=False
        )

    async def compact(self, revision: int) -> api_pb2.CompactResponse:
        req = api_pb2.CompactRequest(revision=revision)
        return await self._call(
            lambda ch: api_pb2_grpc.MaintenanceStub(ch).Compact, req, write=False
        )

    async def watch(
        self,
        key: bytes,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> AsyncIterator[api_pb2.WatchResponse]:
        """Events from `start_revision`, surviving member failures: after an error the watch
        resumes on another endpoint from the revision after the last event it delivered, so
        every event arrives once and in order. Ends with `ClientError` on a compacted start
        or a refused request (a missing or wrong token: UNAUTHENTICATED).
        """
        next_rev = start_revision
        deadline = asyncio.get_running_loop().time() + self.retry_for
        while True:
            ep = self.endpoints[self._preferred]
            stub = api_pb2_grpc.WatchStub(self._channels[ep])
            req = api_pb2.WatchRequest(
                key=key,
                range_end=prefix_end(key) if prefix else b"",
                start_revision=next_rev,
                prev_kv=prev_kv,
                progress_notify=True,
            )
            try:
                async for resp in stub.Watch(req, metadata=self._metadata):
                    deadline = asyncio.get_running_loop().time() + self.retry_for
                    if resp.canceled:
                        raise ClientError(
                            f"watch canceled: {resp.cancel_reason}"
                            + (
                                f" (compacted at revision {resp.compact_revision})"
                                if resp.compact_revision
                                else ""
                            )
                        )
                    if resp.events:
                        next_rev = resp.events[-1].kv.mod_revision + 1
                    elif next_rev == 0 and resp.header.revision:
                        next_rev = resp.header.revision + 1
                    yield resp
            except grpc.aio.AioRpcError as e:
                if e.code() in _REFUSED:  # every master would answer the same
                    raise ClientError(f"watch on {ep}: {e.details()}", e.code()) from None
                logger.info(
                    "watch on %s failed: %s; resuming at revision %d", ep, e.code(), next_rev
                )
            if asyncio.get_running_loop().time() > deadline:
                raise ClientError(f"watch: no master answered for {self.retry_for:.0f} s")
            self._preferred = (self._preferred + 1) % len(self.endpoints)
            await asyncio.sleep(0.1)

    # -- failover ------------------------------------------------------------------------------

    async def _call(
        self,
        method: Callable[[grpc.aio.Channel], Callable[..., Awaitable[T]]],
        req: object,
        *,
        write: bool,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        last: grpc.aio.AioRpcError | None = None
        attempt = 0
        while True:
            ep = self.endpoints[self._preferred]
            try:
                return await method(self._channels[ep])(
                    req, timeout=self.timeout, metadata=self._metadata
                )
            except grpc.aio.AioRpcError as e:
                last = e
                if not self._retryable(e, write):
                    if write and _maybe_sent(e):
                        # Not retried; but the next call goes to the next master, or a
                        # paused one would cost every later call its whole deadline.
                        self._preferred = (self._preferred + 1) % len(self.endpoints)
                        raise OutcomeUnknown(
                            f"{ep}: {e.details() or e.code().name}", e.code()
                        ) from None
                    raise ClientError(f"{ep}: {e.details() or e.code().name}", e.code()) from None
            attempt += 1
            self._preferred = (self._preferred + 1) % len(self.endpoints)
            if loop.time() > deadline:
                code = last.code() if last else None
                detail = last.details() if last else "no answer"
                raise ClientError(f"no master could serve the call: {detail}", code)
            if attempt % len(self.endpoints) == 0:
                await asyncio.sleep(min(0.5, 0.05 * attempt))

    @staticmethod
    def _retryable(e: grpc.aio.AioRpcError, write: bool) -> bool:
        code, details = e.code(), (e.details() or "")
        if code == grpc.StatusCode.UNAVAILABLE:
            if details.startswith("no leader") or "failed to connect" in details.lower():
                return True  # nothing was proposed
            # "outcome unknown", or the connection broke during the call: maybe sent.
            return not write
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return not write
        return False


_REFUSED = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED,
)
"""Codes that say the request itself is refused: retrying on another master cannot help."""


def _maybe_sent(e: grpc.aio.AioRpcError) -> bool:
    return e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
