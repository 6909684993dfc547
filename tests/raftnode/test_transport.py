"""The Raft peer transport: ordered delivery, reconnection, chunked snapshots, backpressure,
deadlines against peers that do not read, fault injection and protocol hygiene.

Every test runs its own event loop (`run`), binds 127.0.0.1 on ephemeral ports, and fails if
a task outlives it. Waits are on events or conditions with generous deadlines, never on
fixed sleeps; the only clocks are the transport's own delays and the Raft ticker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any

import pytest

from controlplane.raft import Config, MemoryStorage, RawNode, StateType
from controlplane.raft.errors import RaftError
from controlplane.raft.types import (
    ConfState,
    Entry,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from controlplane.raftnode.codec import encode_message
from controlplane.raftnode.errors import ConfigError
from controlplane.raftnode.faults import Faults, PeerFaults
from controlplane.raftnode.transport import (
    AddressInUse,
    FrameKind,
    Transport,
    TransportHandler,
    encode_chunk_header,
    encode_frame,
    encode_hello,
    encode_hello_ack,
    read_frame,
)

LOCAL = "127.0.0.1"
DEADLINE = 5.0
CLUSTER_ID = "test-cluster"


# -- harness ----------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, None], timeout: float = 15.0) -> None:
    """Run `coro` in a fresh event loop; fail if it leaves a task behind."""

    async def main() -> None:
        async with asyncio.timeout(timeout):
            await coro
        leaked = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leaked, f"tasks left running: {leaked}"

    asyncio.run(main())


async def until(pred: Callable[[], bool], what: str, signal: asyncio.Event | None = None) -> None:
    """Wait until `pred()` holds: re-checked whenever `signal` fires, or every 10 ms for
    conditions no event announces (counters)."""
    try:
        async with asyncio.timeout(DEADLINE):
            while not pred():
                if signal is None:
                    await asyncio.sleep(0.01)
                else:
                    signal.clear()
                    await signal.wait()
    except TimeoutError:
        raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}") from None


class Recorder:
    """A `TransportHandler` that records everything, with arrival times."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrivals: list[float] = []
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []
        self.changed = asyncio.Event()

    def on_message(self, m: Message) -> None:
        self.messages.append(m)
        self.arrivals.append(asyncio.get_running_loop().time())
        self.changed.set()

    def report_unreachable(self, peer: int) -> None:
        self.unreachable.append(peer)
        self.changed.set()

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.snapshots.append((peer, ok))
        self.changed.set()

    def received_at_least(self, n: int) -> bool:
        return len(self.messages) >= n

    def from_(self, peer: int) -> list[int]:
        return [m.index for m in self.messages if m.frm == peer]

    async def wait(self, pred: Callable[[], bool], what: str) -> None:
        await until(pred, what, self.changed)


def app(frm: int, to: int, index: int, data: bytes = b"x") -> Message:
    return Message(
        type=MessageType.APP,
        frm=frm,
        to=to,
        term=1,
        log_term=1,
        index=index,
        entries=(Entry(term=1, index=index + 1, data=data),),
        commit=index,
    )


def snapshot(frm: int, to: int, size: int) -> Message:
    data = random.Random(size).randbytes(size)
    md = SnapshotMetadata(conf_state=ConfState(voters=(1, 2, 3)), index=500, term=3)
    return Message(
        type=MessageType.SNAP, frm=frm, to=to, term=3, snapshot=Snapshot(data=data, metadata=md)
    )


def new_transport(
    node_id: int,
    handler: TransportHandler,
    peers: dict[int, tuple[str, int]] | None = None,
    listen: tuple[str, int] = (LOCAL, 0),
    **kw: Any,
) -> Transport:
    kw.setdefault("cluster_id", CLUSTER_ID)
    return Transport(
        node_id,
        listen,
        peers or {},
        handler,
        faults=Faults(random.Random(node_id)),
        rng=random.Random(node_id),
        **kw,
    )


@contextlib.asynccontextmanager
async def cluster(
    n: int = 3, **kw: Any
) -> AsyncIterator[tuple[dict[int, Transport], dict[int, Recorder]]]:
    """`n` started transports that know each other, with a `Recorder` each."""
    hs = {i: Recorder() for i in range(1, n + 1)}
    ts = {i: new_transport(i, hs[i], **kw) for i in hs}
    try:
        for t in ts.values():
            await t.start()
        for t in ts.values():
            for u in ts.values():
                if u is not t:
                    t.add_peer(u.node_id, u.address)
        yield ts, hs
    finally:
        for t in ts.values():
            await t.stop()


async def send_until(t: Transport, make: Callable[[int], Message], pred: Callable[[], bool]) -> int:
    """Send a fresh message every 20 ms until `pred()` holds (the peer may be backing off,
    when messages are dropped by design); returns how many were sent."""
    sent = 0
    async with asyncio.timeout(DEADLINE):
        while not pred():
            t.send([make(sent)])
            sent += 1
            await asyncio.sleep(0.02)
    return sent


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


class SilentPeer:
    """A TCP server that accepts connections, optionally answers the handshake as `node_id`,
    and then never reads: what a paused (SIGSTOP) member looks like from the sender."""

    def __init__(self, node_id: int, *, ack: bool) -> None:
        self.node_id = node_id
        self.ack = ack
        self.conns: list[asyncio.StreamWriter] = []
        self.changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SilentPeer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited when accepted
        sock.bind((LOCAL, 0))
        self._server = await asyncio.start_server(self._accept, sock=sock, limit=1024)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self.conns:
            w.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0)

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return LOCAL, int(self._server.sockets[0].getsockname()[1])

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.append(writer)
        self.changed.set()
        if self.ack:
            task = asyncio.create_task(self._handshake(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, _ = await read_frame(reader, 4096)
        assert kind == FrameKind.HELLO
        writer.write(encode_frame(FrameKind.HELLO_ACK, encode_hello_ack(self.node_id)))


async def lag_monitor(stop: asyncio.Event, worst: list[float]) -> None:
    """Record the worst event-loop lag (how late a 5 ms sleep wakes up) until `stop`."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.005)
        worst[0] = max(worst[0], loop.time() - t0 - 0.005)


async def raw_dial(
    t: Transport, frm: int, *, to: int | None = None, cluster_id: str = CLUSTER_ID, version: int = 1
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, FrameKind, bytes]:
    """Dial `t` by hand and send a HELLO; returns the connection and the answer frame."""
    reader, writer = await asyncio.open_connection(*t.address)
    hello = encode_hello(frm, t.node_id if to is None else to, cluster_id, version)
    writer.write(encode_frame(FrameKind.HELLO, hello))
    kind, body = await read_frame(reader, 4096)
    return reader, writer, kind, body


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the other side closes the connection (EOF or reset)."""
    try:
        async with asyncio.timeout(DEADLINE):
            return await reader.read() == b""
    except ConnectionError:
        return True


# -- delivery ---------------------------------------------------------------------------------


def test_messages_delivered_in_order_between_three_transports() -> None:
    """Every message sent is delivered once, and in send order per (sender, receiver)."""

    async def main() -> None:
        async with cluster(3) as (ts, hs):
            n = 300
            for start in range(0, n, 25):  # several sends, interleaved between senders
                for i, t in ts.items():
                    t.send([app(i, j, k) for k in range(start, start + 25) for j in ts if j != i])
                await asyncio.sleep(0)
            for j, h in hs.items():
                await h.wait(partial(h.received_at_least, 2 * n), f"{2 * n} messages at {j}")
            for j, h in hs.items():
                assert len(h.messages) == 2 * n
                for i in ts:
                    if i != j:
                        assert h.from_(i) == list(range(n)), f"order {i}->{j}"
            for i, t in ts.items():
                for j, s in t.stats().items():
                    assert (s.sent, s.received, s.dropped, s.connects) == (n, n, 0, 1), (i, j)
                    assert s.connected and s.inbound and s.bytes_sent > 0

    run(main())


def test_send_to_unknown_peer_is_dropped_without_raising() -> None:
    """`send()` never raises for a peer it does not know; before `start()` it is a bug."""

    async def main() -> None:
        h = Recorder()
        t = new_transport(1, h)
        with pytest.raises(RuntimeError, match="before start"):
            t.send([app(1, 2, 0)])
        await t.start()
        try:
            t.send([app(1, 9, 0)])
            assert t.stats() == {}
        finally:
            await t.stop()
        t.send([app(1, 9, 0)])  # after stop: dropped silently

    run(main())


def test_reconnects_after_the_peer_restarts() -> None:
    """A peer that goes away is reported unreachable; once it is back on the same address the
    sender redials it and delivery resumes."""

    async def main() -> None:
        async with cluster(2) as (ts, hs):
            ts[1].send([app(1, 2, 0)])
            await hs[2].wait(lambda: len(hs[2].messages) == 1, "first message")
            address = ts[2].address
            await ts[2].stop()

            await send_until(ts[1], lambda k: app(1, 2, 100 + k), lambda: 2 in hs[1].unreachable)
            assert not ts[1].stats()[2].connected

            h2 = Recorder()
            t2 = new_transport(2, h2, {1: ts[1].address}, listen=address)
            await t2.start()
            try:
                await send_until(ts[1], lambda k: app(1, 2, 1000 + k), lambda: bool(h2.messages))
                s = ts[1].stats()[2]
                assert s.connected and s.reconnects >= 1 and s.connects == s.reconnects + 1
                # and the other direction dials the old sender's listener
                t2.send([app(2, 1, 7)])
                await hs[1].wait(lambda: hs[1].from_(2) == [7], "message from restarted peer")
            finally:
                await t2.stop()

    run(main())


def test_large_snapshot_is_chunked_and_reassembled() -> None:
    """A MsgSnap bigger than `snapshot_chunk_bytes` travels as chunks no larger than the
    receiver's frame limit, arrives whole and in order with the other messages, and is
    reported sent once its last chunk is written."""

    async def main() -> None:
        # 1 MiB of snapshot through 128 KiB frames: only chunking gets it through.
        async with cluster(2, snapshot_chunk_bytes=64 << 10, max_frame_bytes=128 << 10) as (
            ts,
            hs,
        ):
            snap = snapshot(1, 2, 1 << 20)
            ts[1].send([app(1, 2, 1), snap, app(1, 2, 2)])
            await hs[2].wait(lambda: len(hs[2].messages) == 3, "three messages")
            assert hs[2].messages == [app(1, 2, 1), snap, app(1, 2, 2)]
            await hs[1].wait(lambda: hs[1].snapshots == [(2, True)], "snapshot report")
            out, inn = ts[1].stats()[2], ts[2].stats()[1]
            assert (out.sent, out.snapshots_sent, out.snapshots_failed) == (3, 1, 0)
            assert inn.received == 3 and inn.bytes_received > 1 << 20
            assert hs[1].unreachable == []

    run(main())


def test_small_snapshot_goes_in_one_frame_and_is_reported() -> None:
    """A MsgSnap within one chunk is a plain message frame, still reported as sent."""

    async def main() -> None:
        async with cluster(2) as (ts, hs):
            snap = snapshot(1, 2, 1000)
            ts[1].send([snap])
            await hs[2].wait(lambda: hs[2].messages == [snap], "snapshot")
            await hs[1].wait(lambda: hs[1].snapshots == [(2, True)], "snapshot report")

    run(main())


# -- unreachable and slow peers ---------------------------------------------------------------


def test_unreachable_peer_is_reported_without_blocking() -> None:
    """A refused dial drops what was queued and reports the peer unreachable; while the
    sender backs off, messages are dropped at once and a snapshot is reported failed."""

    async def main() -> None:
        h = Recorder()
        t = new_transport(1, h, {2: (LOCAL, free_port())})
        await t.start()
        try:
            t0 = time.perf_counter()
            t.send([app(1, 2, k) for k in range(100)])
            assert time.perf_counter() - t0 < 0.1
            await h.wait(lambda: h.unreachable == [2], "unreachable report")
            s = t.stats()[2]
            assert s.dropped == 100 and s.dial_failures == 1 and not s.connected
            assert s.last_error is not None and "dial" in s.last_error

            t.send([snapshot(1, 2, 100)])  # backing off: dropped at once
            await h.wait(lambda: h.snapshots == [(2, False)], "failed snapshot report")
            assert t.stats()[2].snapshots_failed == 1
        finally:
            await t.stop()

    run(main())


def test_peer_that_never_answers_the_handshake_times_out() -> None:
    """A peer that accepts TCP but never answers (paused) fails the dial by `dial_timeout`."""

    async def main() -> None:
        async with SilentPeer(2, ack=False) as peer:
            h = Recorder()
            t = new_transport(1, h, {2: peer.address}, dial_timeout=0.2)
            await t.start()
            try:
                t.send([app(1, 2, 0)])
                await h.wait(lambda: h.unreachable == [2], "unreachable report")
                s = t.stats()[2]
                assert s.last_error is not None and "no handshake" in s.last_error
                assert len(peer.conns) == 1 and s.dropped == 1
            finally:
                await t.stop()

    run(main())


def test_peer_that_stops_reading_does_not_block_the_loop() -> None:
    """Writes to a peer that accepted the connection but never reads time out after
    `write_timeout`: the connection is dropped, the peer reported unreachable and redialed
    later, and the event loop keeps running meanwhile."""

    async def main() -> None:
        async with SilentPeer(2, ack=True) as peer:
            h = Recorder()
            t = new_transport(1, h, {2: peer.address}, write_timeout=0.2)
            await t.start()
            stop, worst = asyncio.Event(), [0.0]
            monitor = asyncio.create_task(lag_monitor(stop, worst))
            try:
                payload = bytes(512 << 10)
                t0 = time.perf_counter()
                t.send([app(1, 2, k, payload) for k in range(32)])  # 16 MiB: more than buffers
                assert time.perf_counter() - t0 < 0.1
                await h.wait(lambda: h.unreachable == [2], "unreachable report")
                s = t.stats()[2]
                assert s.last_error is not None and "write timed out" in s.last_error
                assert not s.connected and s.dropped > 0 and s.sent + s.dropped == 32

                # Reconnect later: after the backoff, the next message redials.
                await send_until(t, lambda k: app(1, 2, 100 + k), lambda: len(peer.conns) >= 2)
            finally:
                stop.set()
                await monitor
                await t.stop()
            assert worst[0] < 0.25, f"event loop stalled for {worst[0]:.3f}s"

    run(main())


def test_full_queue_drops_the_oldest_messages_but_keeps_snapshots() -> None:
    """With `queue_size` messages queued, each new one evicts the oldest non-snapshot message,
    and the peer is reported unreachable (once for the burst)."""

    async def main() -> None:
        async with cluster(2, queue_size=4) as (ts, hs):
            ts[1].faults.set(2, delay_ms=100)  # keep them queued
            snap = snapshot(1, 2, 100)
            ts[1].send([snap, *(app(1, 2, k) for k in range(1, 10))])
            assert ts[1].stats()[2].queued == 4
            await hs[2].wait(lambda: len(hs[2].messages) == 4, "four messages")
            assert hs[2].messages == [snap, app(1, 2, 7), app(1, 2, 8), app(1, 2, 9)]
            assert hs[1].unreachable == [2]
            assert ts[1].stats()[2].dropped == 6

    run(main())


# -- faults -----------------------------------------------------------------------------------


def test_drop_out_loses_outgoing_messages_until_healed() -> None:
    """`drop_out=1` loses everything sent to that peer (counted, not reported); a random
    rate loses about that share; healing restores delivery."""

    async def main() -> None:
        async with cluster(2) as (ts, hs):
            ts[1].faults.set(2, drop_out=1.0)
            ts[1].send([app(1, 2, k) for k in range(10)])
            ts[1].faults.set(2, drop_out=0.5)
            ts[1].send([app(1, 2, k) for k in range(10, 210)])
            ts[1].faults.heal()
            ts[1].send([app(1, 2, 999)])
            await hs[2].wait(lambda: 999 in hs[2].from_(1), "message after heal")
            got = hs[2].from_(1)
            s = ts[1].stats()[2]
            assert len(got) == 211 - s.dropped_by_fault
            assert all(k >= 10 for k in got) and got == sorted(got)
            assert 50 < len(got) - 1 < 150
            assert hs[1].unreachable == [] and s.dropped == 0

    run(main())


def test_delay_holds_messages_and_keeps_order() -> None:
    """`delay_ms` holds outgoing messages at least that long, other peers are not held, and a
    message never overtakes an earlier, more delayed one to the same peer."""

    async def main() -> None:
        async with cluster(3) as (ts, hs):
            loop = asyncio.get_running_loop()
            ts[1].faults.set(2, delay_ms=200)
            sent_at = loop.time()
            ts[1].send([m for k in range(10) for m in (app(1, 2, k), app(1, 3, k))])
            ts[1].faults.set(2, delay_ms=0)
            ts[1].send([app(1, 2, k) for k in range(10, 20)])
            await hs[2].wait(lambda: len(hs[2].messages) == 20, "twenty messages")
            assert hs[2].from_(1) == list(range(20))
            assert hs[2].arrivals[0] - sent_at >= 0.2
            assert len(hs[3].messages) == 10 and hs[3].arrivals[-1] < hs[2].arrivals[0]

    run(main())


def test_oneway_partition_blocks_only_outgoing() -> None:
    """`partition([2], oneway=True)` on node 1: 1 -> 2 is cut, 2 -> 1 still flows."""

    async def main() -> None:
        async with cluster(2) as (ts, hs):
            ts[1].faults.partition([2], oneway=True)
            ts[1].send([app(1, 2, 1)])
            ts[2].send([app(2, 1, 1)])
            await hs[1].wait(lambda: hs[1].from_(2) == [1], "2 -> 1 across the partition")
            ts[1].faults.heal()
            ts[1].send([app(1, 2, 2)])
            await hs[2].wait(lambda: bool(hs[2].messages), "1 -> 2 after heal")
            assert hs[2].from_(1) == [2]
            assert ts[1].stats()[2].dropped_by_fault == 1 and hs[1].unreachable == []

    run(main())


def test_block_in_discards_received_messages() -> None:
    """`block_in` discards what a peer sends (the sender sees it sent), until healed; a
    two-way `partition` does the same."""

    async def main() -> None:
        async with cluster(2) as (ts, hs):
            ts[2].faults.set(1, block_in=True)
            ts[1].send([app(1, 2, 1), snapshot(1, 2, 100)])
            await until(lambda: ts[2].stats()[1].dropped_in == 2, "two discarded messages")
            ts[2].faults.clear(1)
            ts[2].faults.partition([1])
            ts[1].send([app(1, 2, 2)])
            await until(lambda: ts[2].stats()[1].dropped_in == 3, "discarded by partition")
            ts[2].faults.heal()
            ts[1].send([app(1, 2, 3)])
            await hs[2].wait(lambda: bool(hs[2].messages), "message after heal")
            assert hs[2].from_(1) == [3]
            assert ts[1].stats()[2].sent == 4 and hs[1].snapshots == [(2, True)]

    run(main())


def test_drop_in_with_seeded_rng_is_reproducible() -> None:
    """Random losses come from the seeded `Faults.rng`: same seed, same losses."""

    def losses(seed: int) -> list[bool]:
        f = Faults(random.Random(seed))
        f.set(2, drop_in=0.3)
        return [f.drop_incoming(2) for _ in range(100)]

    assert losses(5) == losses(5)
    assert losses(5) != losses(6)
    assert 10 < sum(losses(5)) < 50


def test_faults_describe_and_heal() -> None:
    """`describe()` is JSON-friendly and lists only peers with faults; heal clears all."""
    f = Faults(random.Random(1))
    f.set(2, drop_out=0.25, delay_ms=50)
    f.partition([3], oneway=True)
    f.set(4, block_in=True)
    f.set(4, block_in=False)  # back to no fault: not listed
    want = {
        "2": PeerFaults(drop_out=0.25, delay_ms=50).as_dict(),
        "3": PeerFaults(block_out=True).as_dict(),
    }
    assert json.loads(json.dumps(f.describe())) == want
    f.partition([2])
    assert f.get(2) == PeerFaults(drop_out=0.25, delay_ms=50, block_out=True, block_in=True)
    f.clear(3)
    assert list(f.describe()) == ["2"]
    f.heal()
    assert f.describe() == {}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"drop_out": 1.5}, "drop_out"),
        ({"drop_in": -0.1}, "drop_in"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"delay_ms": 1.5}, "delay_ms"),
        ({"block_out": 1}, "block_out"),
    ],
    ids=["drop-out-above-1", "drop-in-negative", "delay-negative", "delay-float", "block-int"],
)
def test_invalid_fault_values_are_rejected(change: dict[str, Any], key: str) -> None:
    """A bad value raises `ConfigError` naming the key and changes nothing."""
    f = Faults()
    with pytest.raises(ConfigError, match=f"^{key}:"):
        f.set(2, **change)
    assert f.describe() == {}


# -- protocol hygiene ------------------------------------------------------------------------


def _msg_frame(m: Message) -> bytes:
    return encode_frame(FrameKind.MESSAGE, encode_message(m))


BAD_INPUT = {
    # name: (handshake first?, bytes sent)
    "garbage-before-handshake": (False, b"GET / HTTP/1.1\r\nHost: master-1\r\n\r\n"),
    "oversized-frame": (True, (1 << 20).to_bytes(4, "big") + bytes([FrameKind.MESSAGE])),
    "unknown-frame-kind": (True, b"\x00\x00\x00\x01\x63x"),
    "undecodable-message": (True, encode_frame(FrameKind.MESSAGE, b"\xff\xff\xff\xff")),
    "local-message-type": (True, _msg_frame(Message(type=MessageType.HUP, frm=3, to=2))),
    "wrong-sender": (True, _msg_frame(app(1, 2, 0))),
    "chunk-out-of-sequence": (
        True,
        encode_frame(FrameKind.CHUNK, encode_chunk_header(100, 10) + b"y" * 10),
    ),
    "second-hello": (True, encode_frame(FrameKind.HELLO, encode_hello(3, 2, CLUSTER_ID))),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_closes_only_that_connection(case: str, caplog: pytest.LogCaptureFixture) -> None:
    """Garbage, oversized or out-of-protocol frames close the offending connection with a
    log line; the transport keeps serving its other peers."""
    handshake, data = BAD_INPUT[case]

    async def main() -> None:
        async with cluster(3, max_frame_bytes=(1 << 20) - 1, snapshot_chunk_bytes=1 << 19) as (
            ts,
            hs,
        ):
            if handshake:
                reader, writer, kind, _ = await raw_dial(ts[2], 3)
                assert kind == FrameKind.HELLO_ACK
            else:
                reader, writer = await asyncio.open_connection(*ts[2].address)
            try:
                writer.write(data)
                assert await closed_by_peer(reader)
            finally:
                writer.transport.abort()
            ts[1].send([app(1, 2, 5)])
            await hs[2].wait(lambda: hs[2].from_(1) == [5], "message from a healthy peer")
            assert hs[2].messages == [app(1, 2, 5)]

    with caplog.at_level(logging.WARNING, logger="controlplane.raftnode.transport"):
        run(main())
    assert "closing peer connection" in caplog.text


@pytest.mark.parametrize(
    ("hello", "reason"),
    [
        ({"cluster_id": "other-cluster"}, "cluster id mismatch: ours='test-cluster'"),
        ({"to": 3}, "this is node 2, not node 3"),
        ({"frm": 9}, "node 9 is not a member"),
        ({"version": 9}, "protocol version 9 is not supported"),
    ],
    ids=["cluster-id", "wrong-node", "unknown-member", "version"],
)
def test_handshake_rejections_say_why(
    hello: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A HELLO from the wrong cluster, for another node, from a non-member or of another
    protocol version gets a REJECT frame with the reason, a log line, and a close."""

    fields = dict(hello)
    frm = fields.pop("frm", 1)

    async def main() -> None:
        async with cluster(3) as (ts, _):
            reader, writer, kind, body = await raw_dial(ts[2], frm, **fields)
            try:
                assert kind == FrameKind.REJECT
                assert reason in body.decode()
                assert await closed_by_peer(reader)
            finally:
                writer.transport.abort()

    with caplog.at_level(logging.WARNING, logger="controlplane.raftnode.transport"):
        run(main())
    assert f"rejected peer connection node=2 from={frm}" in caplog.text
    assert reason in caplog.text


def test_cluster_id_mismatch_makes_the_peer_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    """A member configured with another cluster id never connects; the dialer says why."""

    async def main() -> None:
        async with cluster(2) as (ts, _):
            h = Recorder()
            stranger = new_transport(1, h, {2: ts[2].address}, cluster_id="other-cluster")
            await stranger.start()
            try:
                stranger.send([app(1, 2, 0)])
                await h.wait(lambda: h.unreachable == [2], "unreachable report")
                err = stranger.stats()[2].last_error
                assert err is not None and "cluster id mismatch" in err
            finally:
                await stranger.stop()

    with caplog.at_level(logging.WARNING, logger="controlplane.raftnode.transport"):
        run(main())
    assert "cannot reach peer node=1 peer=2" in caplog.text
    assert "reason=cluster id mismatch" in caplog.text


def test_address_in_use_names_the_address() -> None:
    """A second listener on a taken address fails with `AddressInUse` naming host:port."""

    async def main() -> None:
        a = new_transport(1, Recorder())
        await a.start()
        try:
            host, port = a.address
            b = new_transport(2, Recorder(), listen=(host, port))
            with pytest.raises(AddressInUse, match=f"^{host}:{port} is already in use"):
                await b.start()
            await b.stop()
        finally:
            await a.stop()

    run(main())


def test_stop_cancels_and_awaits_every_task() -> None:
    """`stop()` leaves no task behind, even with connections open, a dial in progress and a
    write blocked on a peer that does not read; it is idempotent."""

    async def main() -> None:
        async with (
            SilentPeer(4, ack=True) as reading_never,
            SilentPeer(5, ack=False) as mute,
            cluster(3) as (ts, hs),
        ):
            ts[1].add_peer(4, reading_never.address)
            ts[1].add_peer(5, mute.address)
            ts[1].send([app(1, j, 0) for j in (2, 3)])
            ts[1].send([app(1, 4, k, bytes(1 << 20)) for k in range(8)])
            ts[1].send([app(1, 5, 0)])
            await hs[2].wait(lambda: bool(hs[2].messages), "a delivery")
            await until(lambda: len(mute.conns) == 1, "a dial in progress", mute.changed)
            await until(lambda: ts[1].stats()[4].connects == 1, "writing to a non-reader")
            for t in ts.values():
                await t.stop()
            assert asyncio.all_tasks() == {asyncio.current_task()}
            await ts[1].stop()
            assert all(not s.connected for s in ts[1].stats().values())

    run(main())


class Broken(Recorder):
    def on_message(self, m: Message) -> None:
        raise ValueError("driver bug")


def test_a_handler_that_raises_stops_the_transport_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler exception is a driver bug: it is logged, kept in `failure`, and `stop()`
    still cleans up."""

    async def main() -> None:
        async with cluster(2) as (ts, _):
            broken = new_transport(3, Broken(), {1: ts[1].address})
            await broken.start()
            ts[1].add_peer(3, broken.address)
            try:
                ts[1].send([app(1, 3, 0)])
                await until(lambda: broken.failure is not None, "the transport to fail")
            finally:
                await broken.stop()
            assert "driver bug" in repr(broken.failure)

    with caplog.at_level(logging.ERROR, logger="controlplane.raftnode.transport"):
        run(main())
    assert "raft transport failed node=3" in caplog.text


def test_constructor_validates_its_settings() -> None:
    """Settings are checked up front, naming the key."""
    with pytest.raises(ConfigError, match=r"^max_frame_bytes:"):
        Transport(1, (LOCAL, 0), {}, Recorder(), max_frame_bytes=1024, snapshot_chunk_bytes=1024)
    with pytest.raises(ConfigError, match=r"^peers:"):
        Transport(1, (LOCAL, 0), {1: (LOCAL, 1)}, Recorder())
    with pytest.raises(ConfigError, match=r"^dial_timeout:"):
        Transport(1, (LOCAL, 0), {}, Recorder(), dial_timeout=0)


# -- end to end -------------------------------------------------------------------------------


class MiniDriver:
    """The least a driver does: tick, step, and handle each Ready in order (persist to
    memory, send, apply, advance)."""

    def __init__(self, node_id: int, progress: asyncio.Event) -> None:
        self.storage = MemoryStorage()
        self.node = RawNode(
            Config(id=node_id, voters=(1, 2, 3), election_tick=10, heartbeat_tick=1, seed=node_id),
            self.storage,
        )
        self.applied: list[bytes] = []
        self.progress = progress
        self.wake = asyncio.Event()
        self.transport: Transport | None = None

    def on_message(self, m: Message) -> None:
        with contextlib.suppress(RaftError):
            self.node.step(m)
        self.wake.set()

    def report_unreachable(self, peer: int) -> None:
        self.node.report_unreachable(peer)
        self.wake.set()

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.node.report_snapshot(peer, ok)
        self.wake.set()

    @property
    def is_leader(self) -> bool:
        return self.node.soft_state().raft_state == StateType.LEADER

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.node.tick()
            self.wake.set()

    async def run(self) -> None:
        assert self.transport is not None
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.node.has_ready():
                rd = self.node.ready()
                self.storage.append(rd.entries)
                if rd.hard_state is not None:
                    self.storage.set_hard_state(rd.hard_state)
                self.transport.send(rd.messages)
                self.applied.extend(e.data for e in rd.committed_entries if e.data)
                self.node.advance(rd)
            self.progress.set()


def test_three_raw_nodes_elect_a_leader_and_commit_over_real_transports(
    summary: Callable[[str, str], None],
) -> None:
    """Three RawNodes over TCP elect one leader and replicate a proposal to every member."""

    async def main() -> None:
        progress = asyncio.Event()
        drivers = {i: MiniDriver(i, progress) for i in (1, 2, 3)}
        ts = {i: new_transport(i, d) for i, d in drivers.items()}
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, t in ts.items():
                await t.start()
                drivers[i].transport = t
            for t in ts.values():
                for u in ts.values():
                    if u is not t:
                        t.add_peer(u.node_id, u.address)
            for d in drivers.values():
                tasks += [asyncio.create_task(d.ticker()), asyncio.create_task(d.run())]
            t0 = time.monotonic()
            await until(lambda: any(d.is_leader for d in drivers.values()), "a leader", progress)
            leader = next(d for d in drivers.values() if d.is_leader)
            leader.node.propose(b"hello")
            leader.wake.set()
            await until(
                lambda: all(d.applied == [b"hello"] for d in drivers.values()),
                "the proposal applied everywhere",
                progress,
            )
            summary(
                "raft transport",
                f"3 RawNodes over TCP: leader elected and proposal applied everywhere "
                f"in {time.monotonic() - t0:.3f}s",
            )
            assert sum(d.is_leader for d in drivers.values()) == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for t in ts.values():
                await t.stop()

    run(main())
