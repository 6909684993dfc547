"""`RawNode`: the driver-facing API of the core (after etcd-io/raft's rawnode.go).

The driver owns time and I/O. Its loop is:

    node.tick()                      # every tick interval
    node.step(message)               # for each message from a peer
    node.propose(data, ...)          # client writes (several payloads batch into one append)
    node.read_index(ctx)             # linearizable reads
    if node.has_ready():
        rd = node.ready()
        persist rd.snapshot, rd.entries, rd.hard_state   (fsync if rd.must_sync)
        send rd.messages
        apply rd.snapshot, rd.committed_entries; serve rd.read_states
        node.advance(rd)

Nothing may be stepped between `ready()` and `advance()`: the Ready describes a state that a
step could change.
"""

from __future__ import annotations

import contextlib

from .config import Config, PlantedBug
from .errors import ProposalDropped, StepLocalMessage, StepPeerNotFound
from .raft import Raft, Status
from .storage import Storage
from .types import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    Ready,
    SoftState,
)


class RawNode:
    def __init__(self, config: Config, storage: Storage) -> None:
        self.raft = Raft(config, storage)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()

    @property
    def id(self) -> int:
        return self.raft.id

    # -- inputs --------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick (election and heartbeat timers)."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (with a pre-vote round if pre-vote is on)."""
        self.raft.step(Message(type=MessageType.HUP, frm=self.raft.id))

    def propose(self, *payloads: bytes) -> None:
        """Propose entries; several payloads go into one append (proposal batching).

        Raises `ProposalDropped` when nothing was appended or forwarded (no leader known,
        leadership transfer in progress, uncommitted log full): safe to retry.
        A proposal that was accepted may still be lost (a leader change truncates it): the
        caller learns its fate only by seeing it committed, or by a timeout.
        """
        if not payloads:
            raise ValueError("propose needs at least one payload")
        self.raft.step(
            Message(
                type=MessageType.PROP,
                frm=self.raft.id,
                entries=tuple(Entry(term=0, index=0, data=p) for p in payloads),
            )
        )

    def step(self, m: Message) -> None:
        """Handle a message from a peer. Bad or stale input is ignored, never fatal."""
        if m.type.is_local:
            raise StepLocalMessage(f"{m.type.short} is a local message type")
        if m.type.is_response and m.frm not in self.raft.trk.progress:
            raise StepPeerNotFound(f"response from node {m.frm}, which is not a voter")
        # A forwarded proposal the leader cannot take is dropped: the proposer times out.
        with contextlib.suppress(ProposalDropped):
            self.raft.step(m)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read; a `ReadState` with `ctx` appears in a later Ready.

        Dropped silently when no leader is known: the caller retries after a timeout.
        `ctx` must be non-empty and unique among the reads in flight.
        """
        if not ctx:
            raise ValueError("read_index needs a non-empty request context")
        self.raft.step(
            Message(
                type=MessageType.READ_INDEX,
                frm=self.raft.id,
                entries=(Entry(term=0, index=0, data=ctx),),
            )
        )

    def transfer_leader(self, transferee: int) -> None:
        """Ask the leader to hand leadership to `transferee` (§thesis 3.10)."""
        self.raft.step(Message(type=MessageType.TRANSFER_LEADER, frm=transferee))

    def report_unreachable(self, node: int) -> None:
        """The transport failed to send to `node`: the leader goes back to probing it."""
        self.raft.step(Message(type=MessageType.UNREACHABLE, frm=node))

    def report_snapshot(self, node: int, ok: bool) -> None:
        """The transport finished sending a snapshot to `node` (or failed to)."""
        self.raft.step(Message(type=MessageType.SNAP_STATUS, frm=node, reject=not ok))

    # -- outputs -------------------------------------------------------------------------

    def has_ready(self) -> bool:
        # Called after every input, so it compares fields instead of building states.
        r = self.raft
        ps, ph = self._prev_soft, self._prev_hard
        if r.lead != ps.lead or r.state != ps.raft_state:
            return True
        if (
            r.term != ph.term
            or r.raft_log.committed != ph.commit
            or (r.vote != ph.vote and PlantedBug.FORGET_VOTE not in r.config.planted_bugs)
        ):
            return True
        if r.raft_log.unstable.snapshot is not None:
            return True
        return bool(
            r.msgs
            or r.raft_log.unstable.entries
            or r.raft_log.has_next_committed_ents()
            or r.read_states
        )

    def ready(self) -> Ready:
        """The pending work; messages and read states are handed over (not repeated)."""
        r = self.raft
        soft = r.soft_state()
        hard = r.hard_state()
        entries = tuple(r.raft_log.unstable_entries())
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if (hard != self._prev_hard and not hard.is_empty) else None,
            read_states=tuple(r.read_states),
            entries=entries,
            snapshot=r.raft_log.unstable.snapshot,
            committed_entries=tuple(r.raft_log.next_committed_ents()),
            messages=tuple(r.msgs),
            must_sync=_must_sync(hard, self._prev_hard, len(entries)),
        )
        r.msgs = []
        r.read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that `rd` was persisted, sent and applied."""
        r = self.raft
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.entries:
            last = rd.entries[-1]
            r.raft_log.stable_to(last.index, last.term)
        if rd.snapshot is not None:
            r.raft_log.stable_snap_to(rd.snapshot.metadata.index)
            r.raft_log.applied_to(rd.snapshot.metadata.index)
        if rd.committed_entries:
            r.raft_log.applied_to(rd.committed_entries[-1].index)
            r.reduce_uncommitted_size(rd.committed_entries)

    # -- inspection ----------------------------------------------------------------------

    def status(self) -> Status:
        return self.raft.status()

    def soft_state(self) -> SoftState:
        return self.raft.soft_state()

    def hard_state(self) -> HardState:
        return self.raft.hard_state()

    def conf_state(self) -> ConfState:
        return self.raft.conf_state()


def _must_sync(st: HardState, prev: HardState, n_entries: int) -> bool:
    # Persistent state on all servers (§5, Figure 2): current term, voted for, log entries.
    # The commit index may be lost and relearned, so it alone does not need an fsync.
    return n_entries != 0 or st.vote != prev.vote or st.term != prev.term
