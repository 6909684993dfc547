"""The Raft peer transport: length-prefixed protobuf frames over asyncio TCP streams.

It runs inside the Raft thread's event loop (the driver owns the loop) and never blocks it:
`send()` only enqueues, and every wait on the network has a deadline.

Connections. Each member dials one outbound connection per peer and only writes to it; the
peer's outbound connection to us is our inbound one, which we only read. So there are two
connections per pair of members, each carrying one direction, as with etcd's streams. Dialing
is lazy (the first message to a peer dials it); a failed dial or a broken connection is
retried with exponential backoff and jitter (50 ms doubling to about 1 s).

Frames. Every frame is ``length:u32 | kind:u8 | body``, big-endian, where `length` counts the
body only and must not exceed `max_frame_bytes`. Kinds:

- ``HELLO`` (client -> server, first frame): ``magic "KLRT" | version:u8 | from:u64 | to:u64``
  then the cluster id in UTF-8;
- ``HELLO_ACK`` (server -> client): ``magic | version:u8 | node id:u64``;
- ``REJECT`` (server -> client, then close): a UTF-8 reason;
- ``MESSAGE``: one `raftpb.Message` (controlplane.raftnode.codec);
- ``CHUNK``: ``total:u64 | offset:u64`` then a slice of an encoded `raftpb.Message`.

Handshake. The dialer sends HELLO and waits for HELLO_ACK, both within `dial_timeout`. The
server checks the magic, the protocol version, the cluster id (a member of another cluster
with overlapping addresses is refused with a clear log line on both sides), that it is the
node asked for, and that the dialer is a known member; a connection that sends no HELLO within
`dial_timeout` is closed. Waiting for the ack matters on the dialing side: a paused
(SIGSTOP) peer still completes TCP connects in its kernel, but never acks, so the dial fails
by deadline instead of filling a socket. A new connection from a peer replaces its old one.

Snapshots. A MsgSnap whose encoding is larger than `snapshot_chunk_bytes` is written as CHUNK
frames of that size, draining between chunks, and reassembled by the receiver (chunks must
arrive in order and nothing else may be interleaved) before `on_message`. The handler's
`report_snapshot(peer, True)` follows the drain of the last chunk; any failure reports False.

Backpressure. Each peer has a bounded queue (`queue_size` messages). When it is full, the
oldest message that is not a MsgSnap is dropped and the peer is reported unreachable: Raft
then probes the follower instead of streaming to it. The peer's writer task coalesces every
due message (up to 1 MiB) into one write and drains with `write_timeout`. A peer that accepts
but does not read (paused) makes the drain time out: the connection is aborted, queued
messages are dropped, the peer is reported unreachable and redialed after a backoff. While a
peer is backing off, messages to it are dropped at once (and reported) instead of queued.

Reports. Handler callbacks run in the loop, from the transport's tasks or from `call_soon`,
never from inside `send()`: a driver calls `send()` between `RawNode.ready()` and `advance()`,
where stepping the core is not allowed (a driver that awaits between the two must queue these
events instead of stepping). Several drops in a row give one `report_unreachable`. A handler
that raises is a bug: it stops the transport's tasks, logs an error and sets `failure`.

Faults (controlplane.raftnode.faults) apply per peer: outgoing drops, blocks and delays are
decided in `send()` (a block also discards what is already queued); incoming drops apply to
each received message (a chunked snapshot counts once). Fault losses are not reported as
unreachable, except that a MsgSnap lost to a fault is reported as a failed snapshot.

Bad input (garbage, oversized or out-of-sequence frames, undecodable messages, local message
types, a message whose sender is not the connection's peer) closes that one connection with a
log line; the process and the other connections carry on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import errno
import logging
import random
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from controlplane.raft.types import Message, MessageType

from .codec import decode_message, encode_message
from .errors import CodecError, ConfigError, RaftNodeError
from .faults import Faults

__all__ = [
    "AddressInUse",
    "FrameError",
    "FrameKind",
    "HandshakeRejected",
    "PeerStats",
    "Transport",
    "TransportError",
    "TransportHandler",
    "encode_chunk_header",
    "encode_frame",
    "encode_hello",
    "encode_hello_ack",
    "read_frame",
]

logger = logging.getLogger(__name__)

MAGIC = b"KLRT"
PROTOCOL_VERSION = 1

BACKOFF_BASE = 0.05
"""First reconnection delay, in seconds; it doubles per failure up to `BACKOFF_MAX`."""
BACKOFF_MAX = 1.0
BATCH_BYTES = 1 << 20
"""Coalesce queued messages into writes of about this size (a larger message goes alone)."""
HANDSHAKE_MAX_BYTES = 4096
"""Largest HELLO / HELLO_ACK / REJECT body: anything bigger before the handshake is garbage."""


class FrameKind(enum.IntEnum):
    HELLO = 1
    HELLO_ACK = 2
    REJECT = 3
    MESSAGE = 4
    CHUNK = 5


_HEADER = struct.Struct(">IB")  # body length, kind
_HELLO = struct.Struct(">4sBQQ")  # magic, version, from, to; the cluster id follows
_ACK = struct.Struct(">4sBQ")  # magic, version, node id
_CHUNK = struct.Struct(">QQ")  # total size of the encoded message, offset of this slice
_KINDS = frozenset(k.value for k in FrameKind)


# -- errors ---------------------------------------------------------------------------------


class TransportError(RaftNodeError):
    """The peer transport failed: cannot listen, or a peer broke the protocol."""

    retryable = True


class AddressInUse(TransportError):
    """The listen address is taken (another member, or another cluster, is running there)."""

    retryable = False

    def __init__(self, host: str, port: int, node_id: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"{host}:{port} is already in use: cannot listen for raft peers of node {node_id} "
            "(is this member already running, or another cluster using the same subnet?)"
        )


class FrameError(TransportError):
    """A peer sent bytes that break the frame protocol; its connection is closed."""


class HandshakeRejected(TransportError):
    """The peer refused our HELLO; the message is its reason."""


# -- public types ---------------------------------------------------------------------------


class TransportHandler(Protocol):
    """What the transport calls, in the loop, never from inside `Transport.send()`."""

    def on_message(self, m: Message) -> None:
        """A message from a peer, in the order that peer sent it."""

    def report_unreachable(self, peer: int) -> None:
        """A send to `peer` failed, or messages to it were dropped: probe it, do not stream."""

    def report_snapshot(self, peer: int, ok: bool) -> None:
        """A MsgSnap to `peer` was fully written to the socket (`ok`) or failed."""


@dataclass(slots=True)
class PeerStats:
    """Counters for one peer (cumulative since `start()`, except the first four fields)."""

    address: str = ""
    connected: bool = False
    """An outbound connection is established (handshake done)."""
    inbound: bool = False
    """The peer has a connection to us."""
    queued: int = 0
    sent: int = 0
    """Messages written and drained (a chunked snapshot counts once)."""
    received: int = 0
    """Messages received, including those discarded by `drop_in`/`block_in`."""
    dropped: int = 0
    """Outgoing messages lost: queue full, peer unreachable, write failed, too large."""
    dropped_by_fault: int = 0
    """Outgoing messages discarded by `drop_out`/`block_out`."""
    dropped_in: int = 0
    """Incoming messages discarded by `drop_in`/`block_in`."""
    bytes_sent: int = 0
    bytes_received: int = 0
    snapshots_sent: int = 0
    snapshots_failed: int = 0
    connects: int = 0
    """Successful outbound handshakes."""
    reconnects: int = 0
    """Successful outbound handshakes after the first."""
    dial_failures: int = 0
    last_error: str | None = None


# -- implementation -------------------------------------------------------------------------


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class _Outgoing:
    msg: Message
    due: float  # loop time


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def alive(self) -> bool:
        return not (
            self.writer.is_closing() or self.reader.at_eof() or self.reader.exception() is not None
        )


class _Peer:
    def __init__(self, peer_id: int, address: tuple[str, int]) -> None:
        self.id = peer_id
        self.address = address
        self.queue: collections.deque[_Outgoing] = collections.deque()
        self.wake = asyncio.Event()
        self.conn: _Conn | None = None
        self.inbound: asyncio.StreamWriter | None = None
        self.failures = 0
        self.retry_at = 0.0
        self.unreachable_pending = False
        self.stats = PeerStats(address=_fmt(address))


def _fmt(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


# -- frame helpers (also used by tests to play a misbehaving peer) ---------------------------


def encode_frame(kind: FrameKind, body: bytes) -> bytes:
    return _HEADER.pack(len(body), kind) + body


def encode_hello(frm: int, to: int, cluster_id: str, version: int = PROTOCOL_VERSION) -> bytes:
    """The body of a HELLO frame sent by `frm` to dial `to`."""
    return _HELLO.pack(MAGIC, version, frm, to) + cluster_id.encode()


def encode_hello_ack(node_id: int) -> bytes:
    """The body of the HELLO_ACK frame with which `node_id` accepts a connection."""
    return _ACK.pack(MAGIC, PROTOCOL_VERSION, node_id)


def encode_chunk_header(total: int, offset: int) -> bytes:
    """The start of a CHUNK frame's body; the slice of the encoded message follows."""
    return _CHUNK.pack(total, offset)


async def read_frame(reader: asyncio.StreamReader, max_body: int) -> tuple[FrameKind, bytes]:
    """Read one frame; `FrameError` if it is malformed, `EOFError` at end of stream."""
    length, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if kind not in _KINDS:
        raise FrameError(f"unknown frame kind {kind}")
    if length > max_body:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_body} bytes")
    body = await reader.readexactly(length) if length else b""
    return FrameKind(kind), body


class Transport:
    """Raft peer transport of one member; see the module docstring for the protocol.

    Lifecycle: `await start()` (returns when listening), `send()` from the loop, then
    `await stop()`. Must be started and used in one event loop; owns no threads. Extra
    keyword settings: `queue_size` (messages queued per peer), `write_timeout` (seconds a
    drain may take before the connection is dropped), `faults` (default: unseeded) and `rng`
    (backoff jitter).
    """

    def __init__(
        self,
        node_id: int,
        listen: tuple[str, int],
        peers: Mapping[int, tuple[str, int]],
        handler: TransportHandler,
        *,
        dial_timeout: float = 1.0,
        max_frame_bytes: int = 64 << 20,
        snapshot_chunk_bytes: int = 1 << 20,
        cluster_id: str = "",
        queue_size: int = 4096,
        write_timeout: float = 0.5,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        on_unsent: Callable[[Message], None] | None = None,
    ) -> None:
        if node_id <= 0:
            raise ConfigError(f"node_id: must be a positive integer, got {node_id}")
        if dial_timeout <= 0:
            raise ConfigError(f"dial_timeout: must be positive, got {dial_timeout}")
        if write_timeout <= 0:
            raise ConfigError(f"write_timeout: must be positive, got {write_timeout}")
        if queue_size <= 0:
            raise ConfigError(f"queue_size: must be positive, got {queue_size}")
        if snapshot_chunk_bytes <= 0:
            raise ConfigError(f"snapshot_chunk_bytes: must be positive, got {snapshot_chunk_bytes}")
        if max_frame_bytes < snapshot_chunk_bytes + _CHUNK.size:
            raise ConfigError(
                f"max_frame_bytes: must hold a snapshot chunk (snapshot_chunk_bytes + "
                f"{_CHUNK.size} = {snapshot_chunk_bytes + _CHUNK.size}), got {max_frame_bytes}"
            )
        if len(cluster_id.encode()) > HANDSHAKE_MAX_BYTES - _HELLO.size:
            raise ConfigError(
                f"cluster_id: must be at most {HANDSHAKE_MAX_BYTES - _HELLO.size} bytes in "
                f"UTF-8, got {len(cluster_id.encode())}"
            )
        self.node_id = node_id
        self.listen = listen
        self.cluster_id = cluster_id
        self.faults = faults if faults is not None else Faults()
        self._handler = handler
        # Told of every MsgProp dropped before any byte of it was written: a proposal that
        # certainly never left this process may be proposed again.
        self._on_unsent = on_unsent
        self._dial_timeout = dial_timeout
        self._write_timeout = write_timeout
        self._max_frame_bytes = max_frame_bytes
        self._chunk_bytes = snapshot_chunk_bytes
        self._queue_size = queue_size
        self._rng = rng if rng is not None else random.Random()
        self._peers: dict[int, _Peer] = {}
        for peer_id, address in peers.items():
            self._check_peer(peer_id)
            self._peers[peer_id] = _Peer(peer_id, address)
        self._state = _State.NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._unknown_warned: set[int] = set()
        self._failure: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on `listen` and start the peer writers; returns once listening.

        Raises `AddressInUse` naming ``host:port`` if the address is taken, `TransportError`
        for any other listen failure. SO_REUSEADDR is set (restarts do not wait for
        TIME_WAIT); SO_REUSEPORT is not, so two members never share an address.
        """
        if self._state is not _State.NEW:
            raise RuntimeError(f"transport of node {self.node_id} is {self._state.value}")
        host, port = self.listen
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_server(
                self._on_accept, host, port, reuse_address=True
            )
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise AddressInUse(host, port, self.node_id) from e
            raise TransportError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        self._stopping = asyncio.Event()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._main = asyncio.create_task(self._supervise(ready), name=f"transport-{self.node_id}")
        self._main.add_done_callback(self._on_main_done)
        await ready
        self._state = _State.RUNNING
        logger.info("raft transport listening node=%d addr=%s", self.node_id, _fmt(self.address))

    async def stop(self) -> None:
        """Close the listener and every connection, cancel and await every task.

        Idempotent. Messages still queued are dropped without reports.
        """
        if self._state in (_State.NEW, _State.STOPPED):
            self._state = _State.STOPPED
            return
        self._state = _State.STOPPING
        assert self._server is not None and self._stopping is not None and self._main is not None
        self._server.close()
        self._stopping.set()
        await asyncio.wait([self._main])
        for w in list(self._writers):
            self._abort(w)
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the aborted transports run connection_lost
        for p in self._peers.values():
            p.queue.clear()
            p.conn = p.inbound = None
        self._state = _State.STOPPED
        logger.info("raft transport stopped node=%d", self.node_id)

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (the real port when `listen` asked for port 0); `listen` before
        `start()`."""
        if self._server is None or not self._server.sockets:
            return self.listen
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def failure(self) -> BaseException | None:
        """The bug that stopped the transport's tasks, if any (it was logged)."""
        return self._failure

    def add_peer(self, peer: int, address: tuple[str, int]) -> None:
        """Add a peer, or change a known peer's address (its connection is redialed)."""
        self._check_peer(peer)
        p = self._peers.get(peer)
        if p is not None:
            p.address = address
            p.stats.address = _fmt(address)
            self._drop_conn(p)
            return
        p = self._peers[peer] = _Peer(peer, address)
        if self._state is _State.RUNNING and self._tg is not None:
            self._tg.create_task(self._run_peer(p), name=f"transport-{self.node_id}-to-{peer}")

    def _check_peer(self, peer: int) -> None:
        if peer <= 0 or peer == self.node_id:
            raise ConfigError(f"peers: ids must be positive and not {self.node_id}, got {peer}")

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        assert self._stopping is not None
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for p in self._peers.values():
                    tg.create_task(self._run_peer(p), name=f"transport-{self.node_id}-to-{p.id}")
                ready.set_result(None)
                await self._stopping.wait()
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            self._tg = None

    def _on_main_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._failure = task.exception()
        logger.error(
            "raft transport failed node=%d: peers are unreachable until restart",
            self.node_id,
            exc_info=self._failure,
        )
        if self._server is not None:
            self._server.close()

    # -- sending ----------------------------------------------------------------------------

    def send(self, msgs: Sequence[Message]) -> None:
        """Queue `msgs` for their peers (`Message.to`) and return at once.

        Never raises for a dead, unknown or partitioned peer: the message is dropped and
        counted (and reported later, see the module docstring). After `stop()` messages are
        dropped silently. Raises `RuntimeError` before `start()`.
        """
        if self._state is not _State.RUNNING:
            if self._state is _State.NEW:
                raise RuntimeError("Transport.send() called before start()")
            return
        assert self._loop is not None
        now = self._loop.time()
        for m in msgs:
            p = self._peers.get(m.to)
            if p is None:
                if m.to not in self._unknown_warned:
                    self._unknown_warned.add(m.to)
                    logger.warning(
                        "dropping messages to unknown peer node=%d to=%d type=%s",
                        self.node_id,
                        m.to,
                        m.type.short,
                    )
                continue
            self._enqueue(p, m, now)

    def _enqueue(self, p: _Peer, m: Message, now: float) -> None:
        if self.faults.drop_outgoing(p.id):
            self._drop_by_fault(p, m)
            return
        if p.conn is None and now < p.retry_at:
            self._drop(p, (m,))  # backing off: the peer is known to be unreachable
            return
        if len(p.queue) >= self._queue_size:
            self._drop_oldest(p)
        p.queue.append(_Outgoing(m, now + self.faults.delay(p.id)))
        p.wake.set()

    def _drop_oldest(self, p: _Peer) -> None:
        victim = next((i for i, o in enumerate(p.queue) if o.msg.type != MessageType.SNAP), 0)
        m = p.queue[victim].msg
        del p.queue[victim]
        if p.stats.dropped == 0 or p.stats.dropped % 1000 == 0:
            logger.warning(
                "send queue full, dropping oldest message node=%d peer=%d type=%s queued=%d",
                self.node_id,
                p.id,
                m.type.short,
                len(p.queue),
            )
        self._drop(p, (m,))

    def _drop(self, p: _Peer, msgs: Sequence[Message], *, maybe_sent: bool = False) -> None:
        """Count `msgs` as lost and report the peer unreachable (and failed snapshots).
        `maybe_sent`: some bytes may have reached the peer (a write failed midway)."""
        if not msgs:
            return
        p.stats.dropped += len(msgs)
        for m in msgs:
            if m.type == MessageType.SNAP:
                self._report_snapshot_soon(p, ok=False)
            elif m.type == MessageType.PROP and not maybe_sent:
                self._report_unsent_soon(m)
        if not p.unreachable_pending:
            p.unreachable_pending = True
            assert self._loop is not None
            self._loop.call_soon(self._fire_unreachable, p)

    def _drop_by_fault(self, p: _Peer, m: Message) -> None:
        p.stats.dropped_by_fault += 1
        if m.type == MessageType.SNAP:
            self._report_snapshot_soon(p, ok=False)
        elif m.type == MessageType.PROP:
            self._report_unsent_soon(m)

    def _report_unsent_soon(self, m: Message) -> None:
        if self._on_unsent is not None:
            assert self._loop is not None
            self._loop.call_soon(self._on_unsent, m)

    def _drop_queue(self, p: _Peer) -> None:
        msgs = [o.msg for o in p.queue]
        p.queue.clear()
        self._drop(p, msgs)

    def _report_snapshot_soon(self, p: _Peer, ok: bool) -> None:
        if ok:
            p.stats.snapshots_sent += 1
        else:
            p.stats.snapshots_failed += 1
        assert self._loop is not None
        self._loop.call_soon(self._fire_snapshot, p.id, ok)

    def _fire_unreachable(self, p: _Peer) -> None:
        p.unreachable_pending = False
        if self._state is _State.RUNNING:
            self._handler.report_unreachable(p.id)

    def _fire_snapshot(self, peer: int, ok: bool) -> None:
        if self._state is _State.RUNNING:
            self._handler.report_snapshot(peer, ok)

    async def _run_peer(self, p: _Peer) -> None:
        """The writer of one peer: dial when there is something to send, write due messages."""
        assert self._loop is not None
        while True:
            await p.wake.wait()
            p.wake.clear()
            while p.queue:
                wait = p.queue[0].due - self._loop.time()
                if wait > 0:  # delay fault: later messages are due later (FIFO)
                    await asyncio.sleep(wait)
                    continue
                if self.faults.blocked_out(p.id):  # partitioned after it was queued
                    self._drop_by_fault(p, p.queue.popleft().msg)
                    continue
                if not await self._ensure_connected(p):
                    self._drop_queue(p)
                    break
                assert p.conn is not None
                try:
                    await self._write_due(p, p.conn)
                except (OSError, TimeoutError) as e:
                    self._connection_failed(p, e)

    async def _write_due(self, p: _Peer, conn: _Conn) -> None:
        """Write the due messages at the head of the queue: one coalesced write, or one
        snapshot. Raises `OSError`/`TimeoutError` if the connection failed."""
        assert self._loop is not None
        now = self._loop.time()
        buf = bytearray()
        batch: list[Message] = []
        while p.queue and p.queue[0].due <= now and len(buf) < BATCH_BYTES:
            m = p.queue[0].msg
            if m.type == MessageType.SNAP:
                if batch:
                    break  # write what is batched first
                p.queue.popleft()
                await self._write_snapshot(p, conn, m)
                return
            p.queue.popleft()
            if self.faults.blocked_out(p.id):
                self._drop_by_fault(p, m)
                continue
            data = encode_message(m)
            if len(data) > self._max_frame_bytes:
                logger.error(
                    "message too large for a frame, dropped node=%d peer=%d type=%s size=%d "
                    "max_frame_bytes=%d",
                    self.node_id,
                    p.id,
                    m.type.short,
                    len(data),
                    self._max_frame_bytes,
                )
                self._drop(p, (m,))
                continue
            buf += _HEADER.pack(len(data), FrameKind.MESSAGE)
            buf += data
            batch.append(m)
        if not batch:
            return
        conn.writer.write(buf)
        try:
            await self._drain(conn)
        except BaseException:
            # Delivery unknown: the peer may have seen some of them.
            self._drop(p, batch, maybe_sent=True)
            raise
        p.stats.sent += len(batch)
        p.stats.bytes_sent += len(buf)

    async def _write_snapshot(self, p: _Peer, conn: _Conn, m: Message) -> None:
        data = encode_message(m)
        written = 0
        try:
            if len(data) <= self._chunk_bytes:
                conn.writer.write(encode_frame(FrameKind.MESSAGE, data))
                written = _HEADER.size + len(data)
                await self._drain(conn)
            else:
                view = memoryview(data)
                total = len(data)
                for offset in range(0, total, self._chunk_bytes):
                    piece = view[offset : offset + self._chunk_bytes]
                    conn.writer.write(
                        _HEADER.pack(_CHUNK.size + len(piece), FrameKind.CHUNK)
                        + encode_chunk_header(total, offset)
                    )
                    conn.writer.write(piece)
                    written += _HEADER.size + _CHUNK.size + len(piece)
                    await self._drain(conn)
        except (OSError, TimeoutError):
            self._drop(p, (m,))  # reports the snapshot as failed
            raise
        p.stats.sent += 1
        p.stats.bytes_sent += written
        self._report_snapshot_soon(p, ok=True)
        logger.info(
            "sent snapshot node=%d peer=%d index=%d bytes=%d chunks=%d",
            self.node_id,
            p.id,
            m.snapshot.metadata.index if m.snapshot is not None else 0,
            len(data),
            -(-len(data) // self._chunk_bytes),
        )

    async def _drain(self, conn: _Conn) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await conn.writer.drain()
        except TimeoutError:
            raise TimeoutError(
                f"write timed out after {self._write_timeout:.3f}s (peer not reading: paused?)"
            ) from None

    def _connection_failed(self, p: _Peer, e: BaseException) -> None:
        assert self._loop is not None
        err = str(e) or type(e).__name__
        logger.warning(
            "lost connection to peer node=%d peer=%d addr=%s error=%s",
            self.node_id,
            p.id,
            _fmt(p.address),
            err,
        )
        p.stats.last_error = err
        self._drop_conn(p)
        self._drop_queue(p)
        p.failures += 1
        p.retry_at = self._loop.time() + self._backoff(p.failures)

    def _drop_conn(self, p: _Peer) -> None:
        if p.conn is not None:
            self._abort(p.conn.writer)
            p.conn = None

    def _backoff(self, failures: int) -> float:
        base = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** min(failures - 1, 16))
        return base * (0.5 + 0.5 * self._rng.random())

    async def _ensure_connected(self, p: _Peer) -> bool:
        """Make `p.conn` usable, dialing if needed; False if the peer is unreachable now."""
        assert self._loop is not None
        if p.conn is not None:
            if p.conn.alive():
                return True
            logger.info(
                "connection closed by peer node=%d peer=%d addr=%s",
                self.node_id,
                p.id,
                _fmt(p.address),
            )
            self._drop_conn(p)
        if self._loop.time() < p.retry_at:
            return False
        try:
            p.conn = await self._dial(p)
        except (OSError, TimeoutError, EOFError, TransportError) as e:
            err = f"dial {_fmt(p.address)}: {str(e) or type(e).__name__}"
            p.failures += 1
            backoff = self._backoff(p.failures)
            p.retry_at = self._loop.time() + backoff
            p.stats.dial_failures += 1
            # A persistent error (wrong cluster id, peer down) is logged once, not per retry.
            level = logging.DEBUG if err == p.stats.last_error else logging.WARNING
            logger.log(
                level,
                "cannot reach peer node=%d peer=%d error=%s retry_in=%.3fs",
                self.node_id,
                p.id,
                err,
                backoff,
            )
            p.stats.last_error = err
            return False
        p.failures = 0
        p.retry_at = 0.0
        p.stats.connects += 1
        if p.stats.connects > 1:
            p.stats.reconnects += 1
        logger.info(
            "connected to peer node=%d peer=%d addr=%s", self.node_id, p.id, _fmt(p.address)
        )
        return True

    async def _dial(self, p: _Peer) -> _Conn:
        host, port = p.address
        hello = encode_hello(self.node_id, p.id, self.cluster_id)
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self._dial_timeout):
                reader, writer = await asyncio.open_connection(host, port)
                self._writers.add(writer)
                writer.write(encode_frame(FrameKind.HELLO, hello))
                kind, body = await read_frame(reader, HANDSHAKE_MAX_BYTES)
        except TimeoutError:
            if writer is not None:
                self._abort(writer)
            raise TimeoutError(f"no handshake within {self._dial_timeout:.3f}s") from None
        except BaseException:
            if writer is not None:
                self._abort(writer)
            raise
        try:
            if kind == FrameKind.REJECT:
                raise HandshakeRejected(f"rejected by peer: {body.decode(errors='replace')}")
            if kind != FrameKind.HELLO_ACK or len(body) != _ACK.size:
                raise FrameError(f"expected a handshake ack, got a {kind.name} frame")
            magic, version, node = _ACK.unpack(body)
            if magic != MAGIC or version != PROTOCOL_VERSION:
                raise FrameError("not a kubelab raft peer (bad handshake ack)")
            if node != p.id:
                raise FrameError(f"node {node} answers at this address, expected node {p.id}")
        except TransportError:
            self._abort(writer)
            raise
        return _Conn(reader, writer)

    def _abort(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.transport.abort()

    # -- receiving --------------------------------------------------------------------------

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._state is not _State.RUNNING or self._tg is None:
            writer.transport.abort()
            return
        self._writers.add(writer)
        self._tg.create_task(self._serve(reader, writer), name=f"transport-{self.node_id}-in")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One inbound connection: handshake, then read messages until EOF or bad input."""
        addr = writer.get_extra_info("peername")
        where = _fmt(addr) if isinstance(addr, tuple) else str(addr)
        p: _Peer | None = None
        try:
            try:
                async with asyncio.timeout(self._dial_timeout):
                    kind, body = await read_frame(reader, HANDSHAKE_MAX_BYTES)
            except TimeoutError:
                logger.warning(
                    "no handshake from peer connection, closing node=%d addr=%s",
                    self.node_id,
                    where,
                )
                return
            p = await self._accept_hello(kind, body, writer, where)
            if p is None:
                return
            if p.inbound is not None:
                self._abort(p.inbound)  # the peer redialed: its old connection is dead
            p.inbound = writer
            await self._read_messages(p, reader)
        except EOFError:
            logger.debug("peer closed its connection node=%d addr=%s", self.node_id, where)
        except (FrameError, CodecError) as e:
            logger.warning(
                "bad frame, closing peer connection node=%d peer=%s addr=%s error=%s",
                self.node_id,
                p.id if p is not None else "?",
                where,
                e,
            )
            if p is not None:
                p.stats.last_error = f"from peer: {e}"
        except OSError as e:
            logger.info("peer connection failed node=%d addr=%s error=%s", self.node_id, where, e)
        finally:
            self._abort(writer)
            if p is not None and p.inbound is writer:
                p.inbound = None

    async def _accept_hello(
        self, kind: FrameKind, body: bytes, writer: asyncio.StreamWriter, where: str
    ) -> _Peer | None:
        """Check a HELLO; answer HELLO_ACK and return the peer, or REJECT and return None."""
        if kind != FrameKind.HELLO or len(body) < _HELLO.size:
            raise FrameError(f"expected a handshake, got a {kind.name} frame")
        magic, version, frm, to = _HELLO.unpack_from(body)
        if magic != MAGIC:
            raise FrameError("not a kubelab raft peer (bad magic)")
        cluster_id = body[_HELLO.size :].decode(errors="replace")
        reason = None
        if version != PROTOCOL_VERSION:
            reason = f"protocol version {version} is not supported (want {PROTOCOL_VERSION})"
        elif cluster_id != self.cluster_id:
            reason = f"cluster id mismatch: ours={self.cluster_id!r} theirs={cluster_id!r}"
        elif to != self.node_id:
            reason = f"this is node {self.node_id}, not node {to}"
        elif frm not in self._peers:
            reason = f"node {frm} is not a member (peers: {sorted(self._peers)})"
        if reason is not None:
            logger.warning(
                "rejected peer connection node=%d from=%d addr=%s reason=%s",
                self.node_id,
                frm,
                where,
                reason,
            )
            writer.write(encode_frame(FrameKind.REJECT, reason.encode()))
            try:
                async with asyncio.timeout(self._write_timeout):
                    await writer.drain()
            except (OSError, TimeoutError):
                pass  # the reason is best effort; the close says enough
            return None
        writer.write(encode_frame(FrameKind.HELLO_ACK, encode_hello_ack(self.node_id)))
        logger.info("peer connected node=%d peer=%d addr=%s", self.node_id, frm, where)
        return self._peers[frm]

    async def _read_messages(self, p: _Peer, reader: asyncio.StreamReader) -> None:
        assembly: bytearray | None = None
        total = 0
        while True:
            kind, body = await read_frame(reader, self._max_frame_bytes)
            p.stats.bytes_received += _HEADER.size + len(body)
            if kind == FrameKind.MESSAGE:
                if assembly is not None:
                    raise FrameError("message frame inside a chunked snapshot")
                self._deliver(p, body)
            elif kind == FrameKind.CHUNK:
                if len(body) < _CHUNK.size:
                    raise FrameError(f"chunk frame of {len(body)} bytes has no header")
                chunk_total, offset = _CHUNK.unpack_from(body)
                if assembly is None and offset == 0:
                    assembly, total = bytearray(), chunk_total
                piece = memoryview(body)[_CHUNK.size :]
                if (
                    assembly is None
                    or chunk_total != total
                    or offset != len(assembly)
                    or offset + len(piece) > total
                ):
                    have = len(assembly) if assembly is not None else "none"
                    raise FrameError(
                        f"chunk out of sequence: total={chunk_total} offset={offset} have={have}"
                    )
                assembly += piece
                if len(assembly) == total:
                    data, assembly = bytes(assembly), None
                    self._deliver(p, data)
            else:
                raise FrameError(f"unexpected {kind.name} frame after the handshake")

    def _deliver(self, p: _Peer, data: bytes) -> None:
        m = decode_message(data)
        if m.type.is_local:
            raise FrameError(f"{m.type.short} is a local message and never crosses the network")
        if m.frm != p.id or m.to != self.node_id:
            raise FrameError(
                f"message from={m.frm} to={m.to} on the connection from {p.id} to {self.node_id}"
            )
        p.stats.received += 1
        if self.faults.drop_incoming(p.id):
            p.stats.dropped_in += 1
            return
        self._handler.on_message(m)

    # -- status -----------------------------------------------------------------------------

    def stats(self) -> dict[int, PeerStats]:
        """A copy of each peer's counters."""
        out = {}
        for peer, p in sorted(self._peers.items()):
            s = dataclasses.replace(p.stats)
            s.connected = p.conn is not None and p.conn.alive()
            s.inbound = p.inbound is not None
            s.queued = len(p.queue)
            out[peer] = s
        return out


class _Stopped(Exception):
    """Raised inside the task group to make it cancel its tasks."""
