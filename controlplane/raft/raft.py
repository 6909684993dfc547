"""The Raft state machine (after etcd-io/raft's raft.go).

`Raft` is deterministic: its only inputs are `step(message)` and `tick()`, its outputs are
the messages it queues in `msgs`, the read states in `read_states` and the changes to its log
(unstable entries, commit index). `RawNode` packages those outputs as a `Ready`.

Roles swap two handlers: `_step_role` (what a message does in this role) and `_tick_role`
(election timer for followers and candidates, heartbeat timer for the leader). Section
numbers in comments refer to the Raft paper (Ongaro & Ousterhout, 2014) and "§thesis" to
Ongaro's dissertation.

Choices shared with etcd:
- pre-vote (§thesis 9.6) and check-quorum (§thesis 6.2) are on by default;
- a leader appends an empty entry when elected and commits only entries of its own term by
  counting replicas (§5.4.2); reads wait until that empty entry is committed;
- a node that heard from a leader within the election timeout ignores vote requests
  (§thesis 4.2.3, "disruptive servers") unless they come from a leadership transfer;
- rejections carry a hint (index and term) so the leader skips a whole conflicting term at a
  time instead of one entry per round trip.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from .config import Config, PlantedBug
from .errors import (
    Compacted,
    ConfigError,
    ProposalDropped,
    SnapshotTemporarilyUnavailable,
    Unavailable,
)
from .log import RaftLog
from .progress import Progress, ProgressState, ProgressTracker, VoteResult
from .readonly import ReadOnly, ReadOnlyOption
from .storage import Storage
from .types import (
    NONE,
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    vote_response_type,
)

logger = logging.getLogger(__name__)

MT = MessageType

_VOTE_TYPES = frozenset({MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP})

CAMPAIGN_TRANSFER = b"CampaignTransfer"
"""Context of vote requests sent because of a leadership transfer: they bypass the lease."""


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of one node's state, for status pages and tests."""

    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    last_index: int
    lead_transferee: int
    progress: dict[int, tuple[int, int, str]]  # id -> (match, next, state), leader only


class Raft:
    def __init__(self, config: Config, storage: Storage) -> None:
        config.validate()
        self.id = config.id
        self.config = config
        self._bugs = config.planted_bugs
        self._rng = random.Random(config.seed)
        self.raft_log = RaftLog(storage, config.max_committed_size_per_ready)
        hs, cs = storage.initial_state()
        voters = cs.voters if cs.voters else config.voters
        if not voters:
            raise ConfigError("voters: neither the storage nor Config.voters names any")
        self.trk = ProgressTracker(voters, config.max_inflight_msgs, config.max_inflight_bytes)
        self.max_msg_size = config.max_size_per_msg
        self.max_uncommitted_size = config.max_uncommitted_entries_size
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.heartbeat_timeout = config.heartbeat_tick
        self.election_timeout = config.election_tick
        self.disable_proposal_forwarding = config.disable_proposal_forwarding

        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.lead_transferee = NONE
        self.uncommitted_size = 0
        self.read_only = ReadOnly(config.read_only_option)
        self.pending_read_index_messages: list[Message] = []
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout
        self._step_role: Callable[[Message], None] = self._step_follower
        self._tick_role: Callable[[], None] = self._tick_election

        if not hs.is_empty:
            self._load_state(hs)
        if config.applied > 0:
            self.raft_log.applied_to(config.applied)
        self.become_follower(self.term, NONE)
        logger.info(
            "newRaft id=%d peers=%s term=%d commit=%d applied=%d last_index=%d last_term=%d",
            self.id,
            list(self.trk.voters),
            self.term,
            self.raft_log.committed,
            self.raft_log.applied,
            self.raft_log.last_index(),
            self.raft_log.last_term(),
        )

    # -- state -------------------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, raft_state=self.state)

    def hard_state(self) -> HardState:
        vote = NONE if PlantedBug.FORGET_VOTE in self._bugs else self.vote
        return HardState(term=self.term, vote=vote, commit=self.raft_log.committed)

    def conf_state(self) -> ConfState:
        return ConfState(voters=self.trk.voters, learners=self.trk.learners)

    def status(self) -> Status:
        progress: dict[int, tuple[int, int, str]] = {}
        if self.state == StateType.LEADER:
            progress = {i: (p.match, p.next, str(p.state)) for i, p in self.trk.progress.items()}
        return Status(
            id=self.id,
            hard_state=HardState(self.term, self.vote, self.raft_log.committed),
            soft_state=self.soft_state(),
            applied=self.raft_log.applied,
            last_index=self.raft_log.last_index(),
            lead_transferee=self.lead_transferee,
            progress=progress,
        )

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.raft_log.committed or hs.commit > self.raft_log.last_index():
            raise ValueError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.raft_log.committed}, {self.raft_log.last_index()}]"
            )
        self.raft_log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        return self.id in self.trk.progress and not self.trk.progress[self.id].is_learner

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def reset_randomized_election_timeout(self) -> None:
        # Randomized in [election_timeout, 2 * election_timeout) (§5.2).
        self.randomized_election_timeout = self.election_timeout + self._rng.randrange(
            self.election_timeout
        )

    # -- sending -----------------------------------------------------------------------------

    def _forward_to_leader(self, m: Message) -> None:
        """Pass a local request (proposal, read, transfer) on to the leader, unchanged but
        for its addressee and, if unset, its sender. Proposals and reads travel without a
        term (they are valid in any term); a transfer request carries ours."""
        term = m.term
        if m.type not in (MT.PROP, MT.READ_INDEX):
            term = self.term
        self.msgs.append(_replace(m, {"to": self.lead, "frm": m.frm or self.id, "term": term}))

    def _send(
        self,
        *,
        type: MessageType,
        to: int,
        term: int = 0,
        log_term: int = 0,
        index: int = 0,
        entries: tuple[Entry, ...] = (),
        commit: int = 0,
        reject: bool = False,
        reject_hint: int = 0,
        snapshot: Snapshot | None = None,
        context: bytes = b"",
    ) -> None:
        """Queue a new message from this node, built once with the sender and term set.

        Vote messages carry the term of the election (which may differ from ours: a pre-vote
        asks for term + 1); every other message carries our term.
        """
        if type in _VOTE_TYPES:
            if term == 0:
                raise AssertionError(f"term should be set when sending {type.short}")
        else:
            if term != 0:
                raise AssertionError(f"term should not be set when sending {type.short}")
            term = self.term
        self.msgs.append(
            Message(
                type=type,
                to=to,
                frm=self.id,
                term=term,
                log_term=log_term,
                index=index,
                entries=entries,
                commit=commit,
                reject=reject,
                reject_hint=reject_hint,
                snapshot=snapshot,
                context=context,
            )
        )

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, send_if_empty=True)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send the entries `to` is missing (or a snapshot if they are compacted).

        Returns True if a message was sent. Honors flow control: nothing is sent to a paused
        follower, and appends are cut at `max_msg_size` bytes.
        """
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        prev_index = pr.next - 1
        try:
            prev_term = self.raft_log.term(prev_index)
            # With a full inflights window send only an empty append: if every append in
            # the window was lost, its answer (ack or reject) still clears the window.
            ents = (
                []
                if pr.state == ProgressState.REPLICATE and pr.inflights.full()
                else self.raft_log.entries(pr.next, self.max_msg_size)
            )
        except (Compacted, Unavailable):
            return self._maybe_send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self._send(
            type=MT.APP,
            to=to,
            index=prev_index,
            log_term=prev_term,
            entries=tuple(ents),
            commit=self.raft_log.committed,
        )
        if ents:
            pr.sent_entries(ents[-1].index, sum(e.size() for e in ents))
        else:
            pr.sent_entries(None, 0)
        return True

    def _maybe_send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            logger.debug("ignore sending snapshot to inactive node=%d", to)
            return False
        try:
            snapshot = self.raft_log.snapshot()
        except SnapshotTemporarilyUnavailable:
            logger.debug("failed to send snapshot to node=%d: temporarily unavailable", to)
            return False
        if snapshot.is_empty:
            raise AssertionError("need a non-empty snapshot")
        logger.debug(
            "sent snapshot index=%d term=%d to node=%d [%r]",
            snapshot.metadata.index,
            snapshot.metadata.term,
            to,
            pr,
        )
        pr.become_snapshot(snapshot.metadata.index)
        self._send(type=MT.SNAP, to=to, snapshot=snapshot)
        return True

    def send_heartbeat(self, to: int, ctx: bytes) -> None:
        # A follower may not have the leader's committed entries yet: never tell it to
        # commit past what it is known to match.
        commit = min(self.trk.progress[to].match, self.raft_log.committed)
        self._send(type=MT.HEARTBEAT, to=to, commit=commit, context=ctx)

    def bcast_append(self) -> None:
        for i in self.trk.progress:
            if i != self.id:
                self.send_append(i)

    def bcast_heartbeat(self) -> None:
        self._bcast_heartbeat_with_ctx(self.read_only.last_pending_request_ctx())

    def _bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for i in self.trk.progress:
            if i != self.id:
                self.send_heartbeat(i, ctx)

    # -- commit and append -----------------------------------------------------------------

    def maybe_commit(self) -> bool:
        mci = self.trk.committed()
        if PlantedBug.COMMIT_PREVIOUS_TERM in self._bugs:
            if mci > self.raft_log.committed:
                self.raft_log.commit_to(mci)
                return True
            return False
        return self.raft_log.maybe_commit(mci, self.term)

    def append_entry(self, entries: list[Entry]) -> bool:
        li = self.raft_log.last_index()
        ents = [
            Entry(term=self.term, index=li + 1 + i, type=e.type, data=e.data)
            for i, e in enumerate(entries)
        ]
        if not self.increase_uncommitted_size(ents):
            logger.debug(
                "appending new entries to log would exceed uncommitted entry size limit; "
                "dropping proposal node=%d",
                self.id,
            )
            return False
        li = self.raft_log.append(ents)
        # The leader's own write happens in the same Ready, before its messages are sent.
        self.trk.progress[self.id].maybe_update(li)
        self.maybe_commit()
        return True

    def increase_uncommitted_size(self, ents: list[Entry]) -> bool:
        s = sum(len(e.data) for e in ents)
        if (
            self.uncommitted_size > 0
            and s > 0
            and self.max_uncommitted_size > 0
            and self.uncommitted_size + s > self.max_uncommitted_size
        ):
            return False
        self.uncommitted_size += s
        return True

    def reduce_uncommitted_size(self, ents: list[Entry] | tuple[Entry, ...]) -> None:
        if self.uncommitted_size == 0:
            return  # fast path for followers, which do not track it
        s = sum(len(e.data) for e in ents)
        self.uncommitted_size = max(0, self.uncommitted_size - s)

    # -- role changes -----------------------------------------------------------------------

    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.trk.reset_votes()
        last = self.raft_log.last_index()
        progress = {}
        for i in self.trk.voters:
            pr = Progress(next_=last + 1, inflights=self.trk.new_inflights())
            if i == self.id:
                pr.match = last
            progress[i] = pr
        self.trk.progress = progress
        self.uncommitted_size = 0
        self.read_only = ReadOnly(self.read_only.option)
        self.pending_read_index_messages = []

    def become_follower(self, term: int, lead: int) -> None:
        self._step_role = self._step_follower
        self.reset(term)
        self._tick_role = self._tick_election
        self.lead = lead
        self.state = StateType.FOLLOWER
        logger.info("became follower term=%d node=%d lead=%d", self.term, self.id, lead)

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> candidate]")
        self._step_role = self._step_candidate
        self.reset(self.term + 1)
        self._tick_role = self._tick_election
        self.vote = self.id
        self.state = StateType.CANDIDATE
        logger.info("became candidate term=%d node=%d", self.term, self.id)

    def become_pre_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        # A pre-candidate changes neither its term nor its vote (§thesis 9.6).
        self._step_role = self._step_candidate
        self.trk.reset_votes()
        self._tick_role = self._tick_election
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE
        logger.info("became pre-candidate term=%d node=%d", self.term, self.id)

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise AssertionError("invalid transition [follower -> leader]")
        self._step_role = self._step_leader
        self.reset(self.term)
        self._tick_role = self._tick_heartbeat
        self.lead = self.id
        self.state = StateType.LEADER
        pr = self.trk.progress[self.id]
        pr.become_replicate()
        pr.recent_active = True
        # An empty entry of the new term: committing it commits every earlier entry (§5.4.2,
        # §8) and lets ReadIndex serve reads.
        if not self.append_entry([Entry(term=0, index=0)]):
            raise AssertionError("empty entry was dropped")
        self.uncommitted_size = 0  # the empty entry does not count against the limit
        logger.info("became leader term=%d node=%d", self.term, self.id)

    # -- elections ---------------------------------------------------------------------------

    def hup(self, t: CampaignType) -> None:
        if self.state == StateType.LEADER:
            logger.debug("ignoring MsgHup because already leader node=%d", self.id)
            return
        if not self.promotable():
            logger.warning("node=%d is unpromotable and can not campaign", self.id)
            return
        logger.info("starting a new election term=%d node=%d", self.term, self.id)
        self.campaign(t)

    def campaign(self, t: CampaignType) -> None:
        if t == CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.PRE_VOTE
            # Pre-vote RPCs are sent for the next term before we have incremented it.
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.VOTE
            term = self.term
        if self.poll(self.id, vote_response_type(vote_msg), True) == VoteResult.WON:
            # A single-node cluster wins at once.
            if t == CampaignType.PRE_ELECTION:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if t == CampaignType.TRANSFER else b""
        for i in self.trk.voters:
            if i == self.id:
                continue
            logger.info(
                "sent vote request type=%s term=%d from=%d to=%d last_index=%d last_term=%d",
                vote_msg.short,
                term,
                self.id,
                i,
                self.raft_log.last_index(),
                self.raft_log.last_term(),
            )
            self._send(
                type=vote_msg,
                to=i,
                term=term,
                index=self.raft_log.last_index(),
                log_term=self.raft_log.last_term(),
                context=ctx,
            )

    def poll(self, node: int, t: MessageType, granted: bool) -> VoteResult:
        self.trk.record_vote(node, granted)
        return self.trk.tally_votes()[2]

    # -- step --------------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """Handle one message (local or from a peer). Never raises for peer input."""
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.election_timeout
                )
                if not force and in_lease:
                    # We heard from a leader within the minimum election timeout: do not
                    # let a disruptive server depose it (§thesis 4.2.3).
                    logger.info(
                        "ignored vote request type=%s from=%d term=%d: lease not expired "
                        "node=%d term=%d",
                        m.type.short,
                        m.frm,
                        m.term,
                        self.id,
                        self.term,
                    )
                    return
            if m.type == MT.PRE_VOTE:
                pass  # never change our term in response to a pre-vote
            elif m.type == MT.PRE_VOTE_RESP and not m.reject:
                # The term in a granted pre-vote response is the term we will campaign in;
                # it is bumped when we win the pre-election.
                pass
            else:
                logger.info(
                    "received higher-term message type=%s from=%d term=%d node=%d term=%d",
                    m.type.short,
                    m.frm,
                    m.term,
                    self.id,
                    self.term,
                )
                if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                    self.become_follower(m.term, m.frm)
                else:
                    self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
                # A stale leader (e.g. healed from a partition) would otherwise never learn
                # of the new term: with check-quorum or pre-vote our own higher term does
                # not reach it through votes. This response makes it step down.
                self._send(type=MT.APP_RESP, to=m.frm)
            elif m.type == MT.PRE_VOTE:
                # Reject, with our term, so the pre-candidate learns it is behind.
                self._send(type=MT.PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True)
            elif m.type == MT.VOTE_RESP and PlantedBug.COUNT_STALE_VOTES in self._bugs:
                self._step_role(m)  # planted bug: a vote from an older term counts
            return

        if m.type == MT.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.pre_vote else CampaignType.ELECTION)
        elif m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            self._step_role(m)

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            # Repeat a vote already cast for this candidate (a retried request).
            self.vote == m.frm
            # Vote for a new candidate only if we have not voted and know no leader.
            or (self.vote == NONE and self.lead == NONE)
            # A pre-vote for a future term is always judged on the log alone.
            or (m.type == MT.PRE_VOTE and m.term > self.term)
        )
        resp = vote_response_type(m.type)
        if can_vote and self.raft_log.is_up_to_date(m.index, m.log_term):
            logger.info(
                "cast vote type=%s for=%d term=%d node=%d term=%d",
                m.type.short,
                m.frm,
                m.term,
                self.id,
                self.term,
            )
            # The response carries the term of the request, not ours: a granted pre-vote
            # must be recognised by the pre-candidate, whose term is still lower.
            self._send(type=resp, to=m.frm, term=m.term)
            if m.type == MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            logger.info(
                "rejected vote type=%s from=%d term=%d node=%d term=%d vote=%d",
                m.type.short,
                m.frm,
                m.term,
                self.id,
                self.term,
                self.vote,
            )
            if self.term == 0:
                # A node started from a snapshot has a log but no term yet: a rejection
                # would carry term 0, which marks local messages. Silence rejects too.
                return
            self._send(type=resp, to=m.frm, term=self.term, reject=True)

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MT.BEAT:
            self.bcast_heartbeat()
            return
        if t == MT.CHECK_QUORUM:
            if not self.trk.quorum_active():
                logger.warning(
                    "stepped down to follower since quorum is not active node=%d term=%d",
                    self.id,
                    self.term,
                )
                self.become_follower(self.term, NONE)
            # Mark everyone but ourselves inactive for the next round.
            for i, other in self.trk.progress.items():
                if i != self.id:
                    other.recent_active = False
            return
        if t == MT.PROP:
            if not m.entries:
                raise AssertionError(f"node {self.id} stepped an empty MsgProp")
            if self.id not in self.trk.progress:
                raise ProposalDropped("this node was removed from the configuration")
            if self.lead_transferee != NONE:
                logger.debug(
                    "node=%d transfer leadership to %d is in progress; dropping proposal",
                    self.id,
                    self.lead_transferee,
                )
                raise ProposalDropped("leadership transfer in progress")
            if not self.append_entry(list(m.entries)):
                raise ProposalDropped("too many uncommitted entries")
            self.bcast_append()
            return
        if t == MT.READ_INDEX:
            if self.trk.is_singleton():
                self._respond_read_index(m, self.raft_log.committed)
                return
            # Until an entry of this term is committed we do not know the commit index of
            # the cluster (§thesis 6.4): hold the request.
            if not self._committed_entry_in_current_term():
                self.pending_read_index_messages.append(m)
                return
            self._send_read_index_response(m)
            return

        pr = self.trk.progress.get(m.frm)
        if pr is None:
            logger.debug("no progress available for node=%d", m.frm)
            return
        if t == MT.APP_RESP:
            self._handle_append_response(m, pr)
        elif t == MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.msg_app_flow_paused = False
            # Also probe a caught-up follower in PROBE (e.g. after report_unreachable) so
            # that its answer moves it back to REPLICATE.
            if pr.match < self.raft_log.last_index() or pr.state == ProgressState.PROBE:
                self.send_append(m.frm)
            if self.read_only.option != ReadOnlyOption.SAFE or not m.context:
                return
            acks = self.read_only.recv_ack(m.frm, m.context)
            if acks is None:
                return
            if self.trk.tally_votes_of(acks) != VoteResult.WON:
                return
            for rs in self.read_only.advance(m.context):
                self._respond_read_index(rs.req, rs.index)
        elif t == MT.SNAP_STATUS:
            if pr.state != ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for a heartbeat response before probing: the snapshot may still be in
            # flight or being applied.
            pr.msg_app_flow_paused = True
        elif t == MT.UNREACHABLE:
            # The transport dropped a message: go back to probing so we do not stream
            # appends into a void.
            if pr.state == ProgressState.REPLICATE:
                pr.become_probe()
        elif t == MT.TRANSFER_LEADER:
            self._handle_transfer_leader(m, pr)

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe_idx = m.reject_hint
            if m.log_term > 0:
                # Fast backtracking: the follower told us its last (index, term) at or below
                # the probe; skip every entry of ours with a larger term at once.
                next_probe_idx, _ = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe_idx):
                logger.debug(
                    "decreased progress of node=%d to [%r] after rejection of index=%d",
                    m.frm,
                    pr,
                    m.index,
                )
                if pr.state == ProgressState.REPLICATE:
                    pr.become_probe()
                self.send_append(m.frm)
            return
        old_paused = pr.is_paused()
        # An ack of exactly `match` is not stale for a probing follower: it answers the
        # probe a heartbeat response sends to a caught-up follower, and moves it back to
        # StateReplicate (etcd's heartbeat_resp_recovers_from_probing).
        if not pr.maybe_update(m.index) and not (
            pr.match == m.index and pr.state == ProgressState.PROBE
        ):
            return
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state == ProgressState.SNAPSHOT and pr.match + 1 >= self.raft_log.first_index():
            # The follower caught up past the snapshot: resume normal replication.
            logger.debug("recovered from needing snapshot node=%d [%r]", m.frm, pr)
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)

        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        elif old_paused:
            # The follower was paused by flow control; more may be sendable now.
            self.send_append(m.frm)
        # Keep sending while flow control allows: one append per call.
        while self.maybe_send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.raft_log.last_index():
            logger.info(
                "sent MsgTimeoutNow to=%d after it caught up its log node=%d", m.frm, self.id
            )
            self.send_timeout_now(m.frm)

    def _handle_transfer_leader(self, m: Message, pr: Progress) -> None:
        if pr.is_learner:
            logger.debug("ignored transferring leadership to learner node=%d", m.frm)
            return
        transferee = m.frm
        last = self.lead_transferee
        if last != NONE:
            if last == transferee:
                logger.info("leadership transfer to %d is already in progress", transferee)
                return
            self.abort_leader_transfer()
            logger.info("aborted leadership transfer to %d", last)
        if transferee == self.id:
            logger.debug("node=%d is already leader; ignored transfer to itself", self.id)
            return
        logger.info(
            "starting leadership transfer from=%d to=%d term=%d", self.id, transferee, self.term
        )
        # The transfer must finish within an election timeout, then it is aborted.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.raft_log.last_index():
            self.send_timeout_now(transferee)
        else:
            self.send_append(transferee)

    def _step_candidate(self, m: Message) -> None:
        my_vote_resp = MT.PRE_VOTE_RESP if self.state == StateType.PRE_CANDIDATE else MT.VOTE_RESP
        t = m.type
        if t == MT.PROP:
            raise ProposalDropped("no leader: an election is in progress")
        if t == MT.APP:
            self.become_follower(m.term, m.frm)  # always m.term == self.term
            self._handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif t == MT.SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif t == my_vote_resp:
            gr, rj, res = self._poll_and_tally(m)
            logger.info(
                "vote tally node=%d granted=%d rejected=%d type=%s term=%d",
                self.id,
                gr,
                rj,
                t.short,
                self.term,
            )
            if res == VoteResult.WON:
                if self.state == StateType.PRE_CANDIDATE:
                    self.campaign(CampaignType.ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == VoteResult.LOST:
                # Stay in this term: a pre-candidate's term was never bumped, and a
                # candidate's vote for itself must not be forgotten.
                self.become_follower(self.term, NONE)
        elif t == MT.TIMEOUT_NOW:
            logger.debug("ignored MsgTimeoutNow from=%d while candidate node=%d", m.frm, self.id)

    def _poll_and_tally(self, m: Message) -> tuple[int, int, VoteResult]:
        self.trk.record_vote(m.frm, not m.reject)
        return self.trk.tally_votes()

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.PROP:
            if self.lead == NONE:
                raise ProposalDropped("no leader")
            if self.disable_proposal_forwarding:
                raise ProposalDropped("not the leader and proposal forwarding is disabled")
            self._forward_to_leader(m)
        elif t == MT.APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif t == MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif t == MT.TRANSFER_LEADER:
            if self.lead == NONE:
                logger.info("no leader; dropping leader transfer msg node=%d", self.id)
                return
            self._forward_to_leader(m)
        elif t == MT.TIMEOUT_NOW:
            logger.info(
                "received MsgTimeoutNow from=%d; starting election term=%d node=%d",
                m.frm,
                self.term + 1,
                self.id,
            )
            # Leadership transfers never use pre-vote: the leader asked for this election.
            self.hup(CampaignType.TRANSFER)
        elif t == MT.READ_INDEX:
            if self.lead == NONE:
                logger.info("no leader; dropping index reading msg node=%d", self.id)
                return
            self._forward_to_leader(m)
        elif t == MT.READ_INDEX_RESP:
            if len(m.entries) != 1:
                logger.error("invalid MsgReadIndexResp from=%d entries=%d", m.frm, len(m.entries))
                return
            self.read_states.append(ReadState(index=m.index, request_ctx=m.entries[0].data))

    # -- follower handlers -------------------------------------------------------------------

    def _handle_append_entries(self, m: Message) -> None:
        if m.index < self.raft_log.committed:
            self._send(type=MT.APP_RESP, to=m.frm, index=self.raft_log.committed)
            return
        last_new = self.raft_log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(type=MT.APP_RESP, to=m.frm, index=last_new)
            return
        # Reject with a hint: our last (index, term) at or below the probe whose term is not
        # larger than the leader's term there. The leader then skips a whole term at once.
        hint_index = min(m.index, self.raft_log.last_index())
        hint_index, hint_term = self.raft_log.find_conflict_by_term(hint_index, m.log_term)
        logger.debug(
            "rejected MsgApp log_term=%d index=%d from=%d node=%d hint=%d/%d",
            m.log_term,
            m.index,
            m.frm,
            self.id,
            hint_index,
            hint_term,
        )
        self._send(
            type=MT.APP_RESP,
            to=m.frm,
            index=m.index,
            reject=True,
            reject_hint=hint_index,
            log_term=hint_term,
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self._send(type=MT.HEARTBEAT_RESP, to=m.frm, context=m.context)

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        s = m.snapshot
        if self.restore(s):
            logger.info(
                "restored snapshot index=%d term=%d node=%d commit=%d",
                s.metadata.index,
                s.metadata.term,
                self.id,
                self.raft_log.committed,
            )
            self._send(type=MT.APP_RESP, to=m.frm, index=self.raft_log.last_index())
        else:
            logger.info(
                "ignored snapshot index=%d term=%d node=%d commit=%d",
                s.metadata.index,
                s.metadata.term,
                self.id,
                self.raft_log.committed,
            )
            self._send(type=MT.APP_RESP, to=m.frm, index=self.raft_log.committed)

    def restore(self, s: Snapshot) -> bool:
        """Replace the log with snapshot `s` unless it adds nothing new (§7)."""
        if s.metadata.index <= self.raft_log.committed:
            return False
        if self.state != StateType.FOLLOWER:
            # Defensive: only a follower should get here. Step down so a leader never
            # restores a snapshot over its own log.
            logger.warning("node=%d attempted to restore snapshot as %s", self.id, self.state)
            self.become_follower(self.term + 1, NONE)
            return False
        if self.id not in s.metadata.conf_state.voters:
            logger.warning("node=%d attempted to restore a snapshot that excludes it", self.id)
            return False
        if self.raft_log.match_term(s.metadata.index, s.metadata.term):
            # We already have the snapshot's last entry: fast-forward the commit index.
            self.raft_log.commit_to(s.metadata.index)
            return False
        self.raft_log.restore(s)
        # Static membership for now: the snapshot carries the same voters. A follower keeps
        # no per-peer progress, so nothing else needs resetting.
        self.trk.voters = tuple(sorted(s.metadata.conf_state.voters))
        return True

    # -- ReadIndex ---------------------------------------------------------------------------

    def _committed_entry_in_current_term(self) -> bool:
        return self.raft_log.zero_term_on_out_of_bounds(self.raft_log.committed) == self.term

    def _send_read_index_response(self, m: Message) -> None:
        if self.read_only.option == ReadOnlyOption.SAFE:
            self.read_only.add_request(self.raft_log.committed, m)
            # The local node acknowledges automatically.
            self.read_only.recv_ack(self.id, m.entries[0].data)
            self._bcast_heartbeat_with_ctx(m.entries[0].data)
        else:
            self._respond_read_index(m, self.raft_log.committed)

    def _respond_read_index(self, req: Message, read_index: int) -> None:
        if req.frm in (NONE, self.id):
            self.read_states.append(ReadState(index=read_index, request_ctx=req.entries[0].data))
            return
        self._send(type=MT.READ_INDEX_RESP, to=req.frm, index=read_index, entries=req.entries)

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages:
            return
        if not self._committed_entry_in_current_term():
            return
        msgs, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in msgs:
            self._send_read_index_response(m)

    # -- leadership transfer ----------------------------------------------------------------

    def send_timeout_now(self, to: int) -> None:
        self._send(type=MT.TIMEOUT_NOW, to=to)

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- ticks -------------------------------------------------------------------------------

    def tick(self) -> None:
        self._tick_role()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MT.CHECK_QUORUM, frm=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.BEAT, frm=self.id))


def _replace(m: Message, kw: dict[str, object]) -> Message:
    """A copy of `m` with some fields changed (faster than dataclasses.replace)."""
    return Message(
        type=m.type,
        to=kw.get("to", m.to),  # type: ignore[arg-type]
        frm=kw.get("frm", m.frm),  # type: ignore[arg-type]
        term=kw.get("term", m.term),  # type: ignore[arg-type]
        log_term=m.log_term,
        index=m.index,
        entries=m.entries,
        commit=m.commit,
        reject=m.reject,
        reject_hint=m.reject_hint,
        snapshot=m.snapshot,
        context=m.context,
    )
