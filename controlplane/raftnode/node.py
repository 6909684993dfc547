"""`RaftNode`: the driver that runs the pure core against disk, network and state machine.

Isolation. The Raft path (tick, step, persist, send, apply) runs in a thread of its own
with its own asyncio event loop, which also owns the peer `Transport`. The API server runs
in the process's main loop: however busy it gets (TLS, JSON, watch fan-out), heartbeats and
fsyncs are not queued behind it. The two loops talk only through:

- `propose`, `read_index`, `transfer_leader`, `campaign`, `set_faults` — called from any
  thread; they hand work to the Raft loop with `call_soon_threadsafe` and return
  `concurrent.futures.Future`s (wrap them with `asyncio.wrap_future`);
- the state machine's `apply`, called on the Raft thread (the state machine must lock what
  API readers share with it, and bridge its own notifications to the API loop);
- `status()`, an immutable `NodeStatus` replaced after every Ready (reading it is atomic).

Ready handling follows the core's contract, in order: persist (snapshot file, then WAL
entries and hard state with one fsync), send, apply, advance. Proposals queued between two
Readies are batched into one `RawNode.propose(*payloads)`, which the benchmark shows is what
makes the core cheap per entry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from controlplane.raft import (
    Config,
    Message,
    ProposalDropped,
    RawNode,
    Ready,
    StateType,
)
from controlplane.raft.errors import RaftError

from .disk import DiskStorage
from .transport import Transport

logger = logging.getLogger(__name__)

ROLE_NAMES = {
    StateType.FOLLOWER: "follower",
    StateType.CANDIDATE: "candidate",
    StateType.PRE_CANDIDATE: "pre-candidate",
    StateType.LEADER: "leader",
}


class StateMachine(Protocol):
    """What the log is applied to. Called on the Raft thread only."""

    def apply(self, index: int, data: bytes) -> None:
        """Apply committed entry `index` (empty `data`: the leader's term-start entry).

        Must be idempotent by index: after a restart entries after the last snapshot are
        applied again."""
        ...

    def snapshot(self) -> bytes:
        """The whole state at the last applied index (for a Raft snapshot)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's data."""
        ...


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Timing and options of one member. A tick is `tick_ms`; timeouts are in ticks."""

    id: int
    peers: Mapping[int, tuple[str, int]]  # every member but this one
    listen: tuple[str, int]
    tick_ms: int = 10
    heartbeat_tick: int = 10
    election_tick: int = 60
    pre_vote: bool = True
    check_quorum: bool = True
    cluster_id: str = ""
    max_batch: int = 256  # proposals per append


@dataclass(frozen=True, slots=True)
class PeerProgress:
    match: int
    next: int
    state: str


@dataclass(frozen=True, slots=True)
class NodeStatus:
    id: int
    role: str = "follower"
    term: int = 0
    leader: int = 0
    commit_index: int = 0
    applied_index: int = 0
    last_index: int = 0
    snapshot_index: int = 0
    progress: Mapping[int, PeerProgress] = field(default_factory=dict)
    elections: int = 0  # elections this member started (campaigns)
    leader_changes: int = 0
    updated: float = 0.0  # time.monotonic() of the last update


class NodeStopped(RaftError):
    """The node is stopped or stopping: nothing was proposed."""

    retryable = True


class RaftNode:
    """One Raft member running in its own thread; see the module docstring."""

    def __init__(
        self,
        config: NodeConfig,
        storage: DiskStorage,
        sm: StateMachine,
        *,
        on_status: Callable[[NodeStatus], None] | None = None,
        on_persist: Callable[[float], None] | None = None,
        on_unsent: Callable[[bytes], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.sm = sm
        self._on_status = on_status
        self._on_persist = on_persist
        snap = storage.snapshot()
        if not snap.is_empty:
            sm.restore(snap.data)
        voters = tuple(sorted((config.id, *config.peers)))
        self.raw = RawNode(
            Config(
                id=config.id,
                voters=voters,
                election_tick=config.election_tick,
                heartbeat_tick=config.heartbeat_tick,
                applied=snap.metadata.index,
                seed=seed if seed is not None else time.monotonic_ns() ^ config.id,
                pre_vote=config.pre_vote,
                check_quorum=config.check_quorum,
            ),
            storage,
        )
        self._on_unsent = on_unsent
        self.transport = Transport(
            config.id,
            config.listen,
            config.peers,
            self,
            cluster_id=config.cluster_id,
            on_unsent=self._unsent_proposal,
        )
        self._status = NodeStatus(id=config.id)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._proposals: list[tuple[bytes, concurrent.futures.Future[None]]] = []
        self._reads: dict[bytes, concurrent.futures.Future[int]] = {}
        self._read_seq = itertools.count(1)
        self._applied_waiters: list[tuple[int, concurrent.futures.Future[None]]] = []
        self._leader_contact = 0.0  # time.monotonic() of the last message from the leader
        self._elections = 0
        self._leader_changes = 0
        self._last_lead = 0
        self.fatal: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start the Raft thread; returns once the transport listens (or raises its error)."""
        self._thread = threading.Thread(target=self._thread_main, name="raft", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("raft thread did not start")
        if self._start_error is not None:
            raise self._start_error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and the transport; pending futures fail with `NodeStopped`."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # surfaced through start() or self.fatal
            if not self._started.is_set():
                self._start_error = e
                self._started.set()
            else:
                self.fatal = e
                logger.exception("raft loop failed; this member stops replicating")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        await self.transport.start()
        self._started.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._ticker())
                tg.create_task(self._run())
                await self._stopping.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
            await self.transport.stop()
            self._fail_pending(NodeStopped("raft node stopped"))

    async def _ticker(self) -> None:
        period = self.config.tick_ms / 1000
        next_at = time.monotonic()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > 5 * period:
                next_at = time.monotonic()  # we were stopped (SIGSTOP): do not catch up
            self.raw.tick()
            self._kick()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._flush_proposals()
            while self.raw.has_ready():
                self._handle_ready(self.raw.ready())
            self._publish_status()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- Ready -----------------------------------------------------------------------------

    def _handle_ready(self, rd: Ready) -> None:
        # 1. persist: snapshot file first, then entries and hard state (one fsync).
        if rd.snapshot is not None:
            self.storage.save_snapshot(rd.snapshot)
        if rd.entries or rd.hard_state is not None:
            t0 = time.perf_counter()
            self.storage.save(rd.hard_state, rd.entries, sync=rd.must_sync)
            if rd.must_sync and self._on_persist is not None:
                self._on_persist(time.perf_counter() - t0)
        # 2. send: only now may messages promise what was just persisted.
        if rd.messages:
            self.transport.send(rd.messages)
        # 3. apply
        if rd.snapshot is not None:
            self.sm.restore(rd.snapshot.data)
        for e in rd.committed_entries:
            self.sm.apply(e.index, e.data)
        for rs in rd.read_states:
            fut = self._reads.pop(rs.request_ctx, None)
            if fut is not None and not fut.done():
                fut.set_result(rs.index)
        if rd.soft_state is not None:
            self._observe(rd)
        # 4. advance
        self.raw.advance(rd)
        applied = self.raw.raft.raft_log.applied
        if rd.committed_entries or rd.snapshot is not None:
            self._release_applied(applied)
            self.storage.maybe_snapshot(applied, self.raw.conf_state(), self.sm.snapshot)

    def _observe(self, rd: Ready) -> None:
        ss = rd.soft_state
        assert ss is not None
        if ss.raft_state == StateType.CANDIDATE:
            self._elections += 1
        if ss.lead != self._last_lead:
            if ss.lead != 0:
                self._leader_changes += 1
                logger.info(
                    "leader changed node=%d leader=%d term=%d",
                    self.config.id,
                    ss.lead,
                    self.raw.raft.term,
                )
            else:
                # Lost the leader: reads waiting for it will time out; fail them now.
                for fut in self._reads.values():
                    if not fut.done():
                        fut.set_exception(ProposalDropped("leader lost"))
                self._reads.clear()
            self._last_lead = ss.lead

    def _publish_status(self) -> None:
        r = self.raw.raft
        progress: dict[int, PeerProgress] = {}
        if r.state == StateType.LEADER:
            progress = {
                i: PeerProgress(p.match, p.next, str(p.state)) for i, p in r.trk.progress.items()
            }
        st = NodeStatus(
            id=self.config.id,
            role=ROLE_NAMES[r.state],
            term=r.term,
            leader=r.lead,
            commit_index=r.raft_log.committed,
            applied_index=r.raft_log.applied,
            last_index=r.raft_log.last_index(),
            snapshot_index=self.storage.snapshot().metadata.index,
            progress=progress,
            elections=self._elections,
            leader_changes=self._leader_changes,
            updated=time.monotonic(),
        )
        if st != self._status:
            self._status = st
            if self._on_status is not None:
                self._on_status(st)

    # -- TransportHandler ---------------------------------------------------------------------

    def on_message(self, m: Message) -> None:
        if m.frm == self.raw.raft.lead:
            self._leader_contact = time.monotonic()
        try:
            self.raw.step(m)
        except RaftError as e:
            logger.debug("dropped message type=%s from=%d: %s", m.type.short, m.frm, e)
        self._kick()

    def _unsent_proposal(self, m: Message) -> None:
        # A proposal forwarded to the leader never left this process (e.g. the leader just
        # died): whoever proposed it may propose it again.
        if self._on_unsent is not None:
            for e in m.entries:
                self._on_unsent(e.data)

    def report_unreachable(self, peer: int) -> None:
        self.raw.report_unreachable(peer)
        self._kick()

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.raw.report_snapshot(peer, ok)
        self._kick()

    # -- thread-safe API ----------------------------------------------------------------------

    def status(self) -> NodeStatus:
        return self._status

    def leader_is_fresh(self, max_age: float) -> bool:
        """Is a leader known that this member leads, or heard from within `max_age` s?

        A follower keeps its leader for a whole election timeout after the leader dies;
        forwarding a proposal into that void makes its outcome unknown. Callers wait for a
        fresh leader before proposing instead (nothing is proposed while they wait)."""
        st = self._status
        if st.leader == 0:
            return False
        if st.leader == self.config.id:
            return st.role == "leader"
        return time.monotonic() - self._leader_contact <= max_age

    def propose(self, data: bytes) -> concurrent.futures.Future[None]:
        """Queue `data` for the log. The future completes when it was handed to the core
        (then its fate is known only by seeing it applied) or fails with `ProposalDropped`
        (nothing was proposed: safe to retry) or `NodeStopped`."""
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._call(lambda: self._queue_proposal(data, fut), fut)
        return fut

    def read_index(self) -> concurrent.futures.Future[int]:
        """A linearizable read point: serve the read once `applied >= ` the result."""
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()

        def go() -> None:
            ctx = b"%d" % next(self._read_seq)
            self._reads[ctx] = fut
            self.raw.read_index(ctx)
            self._kick()

        self._call(go, fut)
        return fut

    def wait_applied(self, index: int) -> concurrent.futures.Future[None]:
        """Completes once the state machine has applied `index`."""
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()

        def go() -> None:
            if self.raw.raft.raft_log.applied >= index:
                fut.set_result(None)
            else:
                self._applied_waiters.append((index, fut))

        self._call(go, fut)
        return fut

    def transfer_leader(self, target: int) -> concurrent.futures.Future[None]:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()

        def go() -> None:
            self.raw.transfer_leader(target)
            self._kick()
            fut.set_result(None)

        self._call(go, fut)
        return fut

    def call(self, fn: Callable[[], object]) -> concurrent.futures.Future[object]:
        """Run `fn` on the Raft loop (e.g. to change transport faults)."""
        fut: concurrent.futures.Future[object] = concurrent.futures.Future()

        def go() -> None:
            fut.set_result(fn())

        self._call(go, fut)
        return fut

    def _call(self, fn: Callable[[], None], fut: concurrent.futures.Future[Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or self.fatal is not None:
            fut.set_exception(NodeStopped("raft node is not running"))
            return

        def run() -> None:
            try:
                fn()
            except BaseException as e:
                if not fut.done():
                    fut.set_exception(e)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:
            fut.set_exception(NodeStopped("raft node is stopping"))

    # -- on the Raft loop ---------------------------------------------------------------------

    def _queue_proposal(self, data: bytes, fut: concurrent.futures.Future[None]) -> None:
        self._proposals.append((data, fut))
        self._kick()

    def _flush_proposals(self) -> None:
        while self._proposals:
            batch = self._proposals[: self.config.max_batch]
            del self._proposals[: self.config.max_batch]
            try:
                self.raw.propose(*(d for d, _ in batch))
            except ProposalDropped as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ProposalDropped(str(e)))
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _release_applied(self, applied: int) -> None:
        if not self._applied_waiters:
            return
        keep = []
        for index, fut in self._applied_waiters:
            if index <= applied:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((index, fut))
        self._applied_waiters = keep

    def _fail_pending(self, err: Exception) -> None:
        for _, fut in self._proposals:
            if not fut.done():
                fut.set_exception(err)
        self._proposals.clear()
        for rfut in self._reads.values():
            if not rfut.done():
                rfut.set_exception(err)
        self._reads.clear()
        for _, afut in self._applied_waiters:
            if not afut.done():
                afut.set_exception(err)
        self._applied_waiters.clear()


class _Stop(Exception):
    """Internal: ends the Raft loop's task group."""
