"""The client side of the quorum benchmark: the same gRPC client pattern for every system.

A `Writer` is one gRPC channel to one member calling `KV/Put` with storepb messages (which
etcd's `etcdserverpb.KV/Put` accepts as they are: same field numbers). Each writer owns its
own TCP connection (a local subchannel pool), as separate client processes would.

Workloads return latencies in seconds (`time.perf_counter`), and the highest Raft term seen
in response headers, which tells whether an election happened while they ran.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from controlplane.storepb import store_pb2

__all__ = ["FailoverAck", "LoadResult", "Writer", "closed_loop", "first_ack", "pipelined"]

CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),  # one connection per writer
    ("grpc.enable_retries", 0),
    # No keepalive pings: every call has a deadline, and etcd answers pings more often than
    # every 5 s (its --grpc-keepalive-min-time) with GOAWAY "too_many_pings".
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class Writer:
    """Puts through one member over one connection."""

    def __init__(
        self, endpoint: str, method: str, metadata: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.endpoint = endpoint
        self.metadata = metadata
        self.channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self._put = self.channel.unary_unary(
            method,
            request_serializer=store_pb2.PutRequest.SerializeToString,
            response_deserializer=store_pb2.PutResponse.FromString,
        )

    async def put(self, key: bytes, value: bytes, timeout: float = 10.0) -> store_pb2.PutResponse:
        resp: store_pb2.PutResponse = await self._put(
            store_pb2.PutRequest(key=key, value=value),
            timeout=timeout,
            metadata=self.metadata or None,
        )
        return resp

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class LoadResult:
    """What a workload did: latencies (s), how many writes, the wall time they took."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    min_term: int = 0
    max_term: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Failed writes by gRPC status (none expected without faults); the load goes on."""

    @property
    def writes(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.writes / self.seconds if self.seconds > 0 else 0.0

    def term(self, t: int) -> None:
        self.min_term = t if not self.min_term else min(self.min_term, t)
        self.max_term = max(self.max_term, t)

    async def put(self, w: Writer, key: bytes, value: bytes) -> None:
        """One timed put; a failure is counted (then a short pause), not raised."""
        t = time.perf_counter()
        try:
            resp = await w.put(key, value)
        except grpc.aio.AioRpcError as e:
            name = e.code().name
            self.errors[name] = self.errors.get(name, 0) + 1
            await asyncio.sleep(0.01)
            return
        self.latencies.append(time.perf_counter() - t)
        self.term(resp.header.raft_term)


KeyFn = Callable[[int], bytes]


async def closed_loop(
    writers: Sequence[Writer],
    key: Callable[[int, int], bytes],
    value: bytes,
    *,
    max_writes: int,
    max_seconds: float,
) -> LoadResult:
    """Each writer puts one key at a time, the next as soon as the previous is acknowledged
    (a closed loop), until `max_writes` in all or `max_seconds` have passed."""
    res = LoadResult()
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    issued = 0

    async def one(w: Writer, wi: int) -> None:
        nonlocal issued
        while issued < max_writes and time.perf_counter() < deadline:
            issued += 1
            await res.put(w, key(wi, issued), value)

    await asyncio.gather(*(one(w, i) for i, w in enumerate(writers)))
    res.seconds = time.perf_counter() - t0
    return res


async def pipelined(
    writer: Writer, key: KeyFn, value: bytes, *, window: int, max_seconds: float
) -> LoadResult:
    """Up to `window` puts in flight at once on one connection (HTTP/2 streams), a new one
    sent as each completes, for `max_seconds`."""
    res = LoadResult()
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    n = 0

    async def lane() -> None:
        nonlocal n
        while time.perf_counter() < deadline:
            n += 1
            await res.put(writer, key(n), value)

    await asyncio.gather(*(lane() for _ in range(window)))
    res.seconds = time.perf_counter() - t0
    return res


@dataclass(frozen=True)
class FailoverAck:
    at: float
    """`time.perf_counter()` when the first write was acknowledged."""
    endpoint: str
    term: int
    attempts: int


async def first_ack(
    writers: Sequence[Writer],
    key: KeyFn,
    value: bytes,
    *,
    every: float = 0.02,
    attempt_timeout: float = 5.0,
    give_up: float = 30.0,
) -> FailoverAck:
    """Send a new put every `every` seconds, round-robin over `writers`, without waiting for
    the earlier ones (hedged requests, each a distinct key), and return at the first one
    acknowledged. The answer is thus the first moment the cluster accepts a write, not an
    artefact of one request's timeout. `TimeoutError` after `give_up` seconds."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[FailoverAck] = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()
    attempts = 0

    async def attempt(w: Writer, n: int) -> None:
        try:
            resp = await w.put(key(n), value, timeout=attempt_timeout)
        except grpc.aio.AioRpcError:
            return
        if not done.done():
            done.set_result(FailoverAck(time.perf_counter(), w.endpoint, resp.header.raft_term, n))

    end = time.perf_counter() + give_up
    try:
        while not done.done():
            if time.perf_counter() > end:
                raise TimeoutError(f"no write acknowledged within {give_up:g} s")
            attempts += 1
            task = asyncio.create_task(attempt(writers[attempts % len(writers)], attempts))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.wait({done}, timeout=every)
        return done.result()
    finally:
        for t in list(tasks):
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
