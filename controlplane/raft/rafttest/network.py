"""A deterministic in-memory network of Raft nodes, shipped for tests of every layer.

`Network` owns the nodes and the messages in flight. A `SimNode` is a `RawNode` over a
`SimDisk` (`MemoryDisk` here, or the real WAL-backed `DiskStorage` in the raftnode tests)
plus a toy state machine. Faults are per directed link: `cut` and `isolate` drop
everything, `drop` loses a fraction, `delay` holds messages for some ticks, and
`reorder`/`duplicate` perturb delivery. `recover` heals everything. All randomness comes
from the network's seeded RNG, so a seed replays a run exactly.

A node's Ready is handled in the order the core requires: persist (snapshot, entries, hard
state) to its storage, queue its messages, apply committed entries, advance. `crash`
discards the in-memory node and the messages addressed to it, and reopens its disk;
`restart` rebuilds the node from the disk, as a process restarting from its WAL would.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..config import Config
from ..rawnode import RawNode
from ..storage import MemoryStorage, Storage
from ..types import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    StateType,
)

Link = tuple[int, int]


@dataclass(slots=True)
class AppState:
    """A toy state machine: the number of entries applied and a checksum chain over them."""

    applied_index: int = 0
    applied_term: int = 0
    checksum: int = 0

    def apply(self, e: Entry) -> None:
        self.applied_index = e.index
        self.applied_term = e.term
        self.checksum = zlib.crc32(e.data, zlib.crc32(e.index.to_bytes(8, "big"), self.checksum))

    def encode(self) -> bytes:
        return b"%d/%d/%d" % (self.applied_index, self.applied_term, self.checksum)

    @classmethod
    def decode(cls, b: bytes) -> AppState:
        if not b:
            return cls()
        i, t, c = (int(x) for x in b.split(b"/"))
        return cls(i, t, c)


@dataclass(slots=True)
class SnapshotPolicy:
    """Snapshot every `count` applied entries, keeping `catch_up` entries behind (etcd's
    snapshot_count and catch-up entries, scaled down for tests). count=0 disables."""

    count: int = 0
    catch_up: int = 0


class SimDisk(Storage, Protocol):
    """What a node keeps across crashes: the `Storage` the core reads, plus the writes a
    driver makes while handling a Ready. `DiskStorage` (WAL + snapshot files) has the same
    write methods; `MemoryDisk` is its in-memory twin."""

    @property
    def hard_state(self) -> HardState: ...

    def save_snapshot(self, snap: Snapshot) -> None: ...

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool = True
    ) -> None: ...

    def maybe_snapshot(
        self, applied: int, conf_state: ConfState, data_fn: Callable[[], bytes]
    ) -> Snapshot | None: ...

    def reopen(self) -> SimDisk:
        """What a restarted process finds: everything saved, nothing else."""
        ...


class MemoryDisk(MemoryStorage):
    """A `SimDisk` in memory: saved data survives a crash of the node that owns it."""

    def __init__(self, policy: SnapshotPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy or SnapshotPolicy()

    def save_snapshot(self, snap: Snapshot) -> None:
        self.apply_snapshot(snap)

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool = True
    ) -> None:
        self.append(list(entries))
        if hard_state is not None:
            self.set_hard_state(hard_state)

    def maybe_snapshot(
        self, applied: int, conf_state: ConfState, data_fn: Callable[[], bytes]
    ) -> Snapshot | None:
        p = self.policy
        if p.count <= 0 or applied - self.snapshot().metadata.index < p.count:
            return None
        snap = self.create_snapshot(applied, conf_state, data_fn())
        compact_to = applied - p.catch_up
        if compact_to >= self.first_index():
            self.compact(compact_to)
        return snap

    def reopen(self) -> MemoryDisk:
        return self


Observer = Callable[["SimNode", Ready], None]


class SimNode:
    """One node: core, disk and state machine. Survives crashes through `disk`."""

    def __init__(self, config: Config, disk: SimDisk) -> None:
        self.config = config
        self.disk = disk
        self.node: RawNode | None = None
        self.app = AppState()
        self.read_states: list[ReadState] = []
        self.snapshots_applied = 0  # snapshots received from a leader and applied
        self.start()

    @property
    def id(self) -> int:
        return self.config.id

    @property
    def alive(self) -> bool:
        return self.node is not None

    @property
    def raw(self) -> RawNode:
        if self.node is None:
            raise RuntimeError(f"node {self.id} is down")
        return self.node

    @property
    def storage(self) -> SimDisk:
        return self.disk

    def start(self) -> None:
        snap = self.disk.snapshot()
        self.app = AppState.decode(snap.data)
        # Like etcd's server: the state machine already holds everything up to the snapshot.
        self.node = RawNode(replace(self.config, applied=snap.metadata.index), self.disk)

    def crash(self) -> None:
        self.node = None
        self.read_states = []
        self.disk = self.disk.reopen()

    def handle_ready(self, outbox: list[Message], observer: Observer | None = None) -> bool:
        """Handle one Ready if there is one; returns whether there was."""
        n = self.node
        if n is None or not n.has_ready():
            return False
        rd = n.ready()
        if observer is not None:
            observer(self, rd)
        # 1. persist
        if rd.snapshot is not None:
            self.disk.save_snapshot(rd.snapshot)
        if rd.entries or rd.hard_state is not None:
            self.disk.save(rd.hard_state, rd.entries, rd.must_sync)
        # 2. send
        outbox.extend(rd.messages)
        # 3. apply
        if rd.snapshot is not None:
            self.app = AppState.decode(rd.snapshot.data)
            self.snapshots_applied += 1
        for e in rd.committed_entries:
            self.app.apply(e)
        self.read_states.extend(rd.read_states)
        # 4. advance
        n.advance(rd)
        self.disk.maybe_snapshot(self.app.applied_index, n.conf_state(), self.app.encode)
        return True


@dataclass(slots=True)
class _InFlight:
    deliver_at: int  # network tick at which it may be delivered
    seq: int
    msg: Message


@dataclass(slots=True)
class Faults:
    cut: set[Link] = field(default_factory=set)
    drop: dict[Link, float] = field(default_factory=dict)
    delay: dict[Link, int] = field(default_factory=dict)
    reorder: float = 0.0
    duplicate: float = 0.0
    ignore: set[MessageType] = field(default_factory=set)

    def any(self) -> bool:
        return bool(
            self.cut or self.drop or self.delay or self.reorder or self.duplicate or self.ignore
        )


class Network:
    """Nodes plus the messages between them; everything is driven by explicit calls."""

    def __init__(
        self,
        ids: Iterable[int],
        *,
        seed: int = 0,
        config: Callable[[int], Config] | None = None,
        policy: SnapshotPolicy | None = None,
        disk: Callable[[int], SimDisk] | None = None,
    ) -> None:
        self.ids = tuple(sorted(ids))
        self.rng = random.Random(seed)
        self.policy = policy or SnapshotPolicy()
        self._config = config or (lambda i: Config(id=i, voters=self.ids, seed=seed * 1000 + i))
        make_disk = disk or (lambda i: MemoryDisk(self.policy))
        self.nodes: dict[int, SimNode] = {
            i: SimNode(self._config(i), make_disk(i)) for i in self.ids
        }
        self.faults = Faults()
        self.in_flight: list[_InFlight] = []
        self.now = 0  # network ticks
        self._seq = 0
        self.observer: Observer | None = None
        self.delivered = 0
        self.dropped = 0
        self._snap_reports: list[tuple[int, int, bool]] = []  # (leader, follower, ok)

    # -- faults --------------------------------------------------------------------------

    def cut(self, a: int, b: int) -> None:
        """Drop every message between a and b, both ways."""
        self.faults.cut |= {(a, b), (b, a)}

    def cut_oneway(self, frm: int, to: int) -> None:
        self.faults.cut.add((frm, to))

    def isolate(self, node: int) -> None:
        for other in self.ids:
            if other != node:
                self.cut(node, other)

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups (nodes in no group are isolated)."""
        where = {i: g for g, members in enumerate(groups) for i in members}
        for a in self.ids:
            for b in self.ids:
                if a != b and where.get(a, -1 - a) != where.get(b, -1 - b):
                    self.faults.cut.add((a, b))

    def drop(self, frm: int, to: int, rate: float) -> None:
        self.faults.drop[(frm, to)] = rate

    def delay(self, frm: int, to: int, ticks: int) -> None:
        self.faults.delay[(frm, to)] = ticks

    def set_reorder(self, p: float) -> None:
        self.faults.reorder = p

    def set_duplicate(self, p: float) -> None:
        self.faults.duplicate = p

    def ignore(self, t: MessageType) -> None:
        self.faults.ignore.add(t)

    def recover(self) -> None:
        """Heal every fault (messages already in flight stay in flight)."""
        self.faults = Faults()

    # -- nodes ---------------------------------------------------------------------------

    def crash(self, node: int) -> None:
        self.nodes[node].crash()
        # Messages to a dead process are lost; those it already sent may still arrive.
        for f in self.in_flight:
            if f.msg.to == node:
                self._lost(f.msg)
        self.in_flight = [f for f in self.in_flight if f.msg.to != node]

    def restart(self, node: int, config: Config | None = None) -> None:
        sn = self.nodes[node]
        if config is not None:
            sn.config = config
        sn.start()

    def add_node(self, config: Config, disk: SimDisk | None = None) -> SimNode:
        """Start one more node, e.g. one that joins later with an empty (or given) disk."""
        if config.id in self.nodes:
            raise ValueError(f"node {config.id} already exists")
        sn = SimNode(config, disk if disk is not None else MemoryDisk(self.policy))
        self.nodes[config.id] = sn
        self.ids = tuple(sorted((*self.ids, config.id)))
        return sn

    def leader(self) -> int | None:
        """The leader with the highest term among live nodes, if any."""
        best: tuple[int, int] | None = None
        for i, sn in self.nodes.items():
            if sn.node is not None and sn.node.raft.state == StateType.LEADER:
                t = sn.node.raft.term
                if best is None or t > best[0]:
                    best = (t, i)
        return None if best is None else best[1]

    # -- driving -------------------------------------------------------------------------

    def send(self, msgs: Iterable[Message]) -> None:
        """Put messages on the wire, applying the current faults."""
        f = self.faults
        has_faults = f.any()
        for m in msgs:
            link = (m.frm, m.to)
            if has_faults:
                if link in f.cut or m.type in f.ignore:
                    self._lost(m)
                    continue
                rate = f.drop.get(link)
                if rate and self.rng.random() < rate:
                    self._lost(m)
                    continue
                copies = 2 if f.duplicate and self.rng.random() < f.duplicate else 1
                at = self.now + f.delay.get(link, 0)
                if f.reorder and self.rng.random() < f.reorder:
                    at += self.rng.randint(1, 3)
            else:
                copies, at = 1, self.now
            for _ in range(copies):
                self._seq += 1
                self.in_flight.append(_InFlight(at, self._seq, m))

    def _lost(self, m: Message) -> None:
        self.dropped += 1
        if m.type == MessageType.SNAP:
            # A real transport knows when a snapshot stream fails and says so.
            self._snap_reports.append((m.frm, m.to, False))

    def _report_snapshots(self) -> None:
        reports, self._snap_reports = self._snap_reports, []
        for frm, to, ok in reports:
            n = self.nodes[frm].node
            if n is not None:
                n.report_snapshot(to, ok)

    def process_ready(self, ids: Iterable[int] | None = None) -> bool:
        """Handle one Ready on each given live node; returns whether any had one."""
        outbox: list[Message] = []
        any_ready = False
        for i in self.ids if ids is None else ids:
            if self.nodes[i].handle_ready(outbox, self.observer):
                any_ready = True
        self.send(outbox)
        return any_ready

    def deliver(self, limit: int | None = None) -> int:
        """Deliver the messages that are due now, in order; returns how many."""
        due: list[_InFlight] = []
        later: list[_InFlight] = []
        for f in self.in_flight:
            (due if f.deliver_at <= self.now else later).append(f)
        if limit is not None and len(due) > limit:
            due.sort(key=lambda f: (f.deliver_at, f.seq))
            later.extend(due[limit:])
            due = due[:limit]
        self.in_flight = later
        due.sort(key=lambda f: (f.deliver_at, f.seq))
        for f in due:
            sn = self.nodes[f.msg.to]
            if sn.node is None:
                self._lost(f.msg)
                continue
            sn.node.step(f.msg)
            self.delivered += 1
            if f.msg.type == MessageType.SNAP:
                self._snap_reports.append((f.msg.frm, f.msg.to, True))
        n = len(due) + len(self._snap_reports)
        self._report_snapshots()
        return n

    def take(self, to: int, types: frozenset[MessageType] | None = None) -> list[Message]:
        """Remove and return the due messages to `to` (of `types`, if given) in delivery
        order, for tests that deliver step by step; faults applied when they were sent."""
        due = sorted(
            (
                f
                for f in self.in_flight
                if f.msg.to == to
                and f.deliver_at <= self.now
                and (types is None or f.msg.type in types)
            ),
            key=lambda f: (f.deliver_at, f.seq),
        )
        taken = {id(f) for f in due}
        self.in_flight = [f for f in self.in_flight if id(f) not in taken]
        return [f.msg for f in due]

    def stabilize(self, max_rounds: int = 10_000) -> None:
        """Process Readies and deliver due messages until nothing happens."""
        for _ in range(max_rounds):
            ready = self.process_ready()
            delivered = self.deliver()
            if not ready and not delivered:
                return
        raise RuntimeError(f"network did not stabilize within {max_rounds} rounds")

    def tick(self, ids: Iterable[int] | None = None) -> None:
        """One tick of the network clock and of each given live node."""
        self.now += 1
        for i in self.ids if ids is None else ids:
            n = self.nodes[i].node
            if n is not None:
                n.tick()

    def ticks_to_quiet(self, ticks: int) -> None:
        """Tick `ticks` times, stabilizing after each tick."""
        for _ in range(ticks):
            self.tick()
            self.stabilize()

    def elect(self, node: int) -> None:
        """Make `node` campaign and deliver until quiet (healthy network assumed)."""
        self.nodes[node].raw.campaign()
        self.stabilize()

    def propose(self, node: int, *payloads: bytes) -> None:
        self.nodes[node].raw.propose(*payloads)

    def snapshot_of(self, node: int) -> Snapshot:
        return self.nodes[node].storage.snapshot()
