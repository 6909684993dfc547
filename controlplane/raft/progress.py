"""What the leader knows of each follower, flow control, and quorum arithmetic.

A follower's `Progress` is in one of three states (etcd's `tracker.StateType`):

- PROBE: the leader does not know where the follower's log ends. It sends at most one
  append per heartbeat interval and moves `next` back on each rejection.
- REPLICATE: the follower is known to match up to `match`; the leader streams appends
  optimistically (advancing `next` as it sends), bounded by `Inflights`.
- SNAPSHOT: the entries the follower needs are compacted; the leader sent a snapshot and
  sends nothing else until the follower acknowledges it (or the transport reports failure).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2

    def __str__(self) -> str:
        return ("StateProbe", "StateReplicate", "StateSnapshot")[self]


class VoteResult(enum.Enum):
    PENDING = "pending"
    LOST = "lost"
    WON = "won"


class Inflights:
    """A window of appends sent but not yet acknowledged, bounded in count and bytes."""

    __slots__ = ("_q", "bytes", "max_bytes", "size")

    def __init__(self, size: int, max_bytes: int = 0) -> None:
        self.size = size
        self.max_bytes = max_bytes  # 0: no limit
        self._q: deque[tuple[int, int]] = deque()  # (last index of the append, its bytes)
        self.bytes = 0

    @property
    def count(self) -> int:
        return len(self._q)

    def add(self, index: int, nbytes: int) -> None:
        if self.full():
            raise AssertionError("cannot add into a full inflights window")
        self._q.append((index, nbytes))
        self.bytes += nbytes

    def free_le(self, to: int) -> None:
        """Forget every append whose last index is <= `to` (acknowledged)."""
        q = self._q
        while q and q[0][0] <= to:
            self.bytes -= q.popleft()[1]

    def full(self) -> bool:
        return len(self._q) >= self.size or (self.max_bytes > 0 and self.bytes >= self.max_bytes)

    def reset(self) -> None:
        self._q.clear()
        self.bytes = 0


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "msg_app_flow_paused",
        "next",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(self, next_: int, inflights: Inflights, match: int = 0) -> None:
        self.match = match
        self.next = next_
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.recent_active = False
        # PROBE: an append is outstanding. REPLICATE: the inflights window is full. Either
        # way a heartbeat response clears it, so lost appends cannot stall replication.
        self.msg_app_flow_paused = False
        self.inflights = inflights
        self.is_learner = False

    def __repr__(self) -> str:
        s = f"{self.state} match={self.match} next={self.next}"
        if self.is_learner:
            s += " learner"
        if self.is_paused():
            s += " paused"
        if self.pending_snapshot > 0:
            s += f" pendingSnap={self.pending_snapshot}"
        if not self.recent_active:
            s += " inactive"
        if self.inflights.count:
            s += f" inflight={self.inflights.count}"
            if self.inflights.full():
                s += "[full]"
        return s

    def _reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        """Probe from the entry after the snapshot, or after `match`."""
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def sent_entries(self, last_index: int | None, nbytes: int) -> None:
        """Record that an append ending at `last_index` (None: empty) was sent."""
        if self.state == ProgressState.REPLICATE:
            if last_index is not None:
                self.next = last_index + 1
                self.inflights.add(last_index, nbytes)
            self.msg_app_flow_paused = self.inflights.full()
        elif self.state == ProgressState.PROBE:
            self.msg_app_flow_paused = True

    def maybe_update(self, n: int) -> bool:
        """An acknowledgement up to n arrived; returns False if it is stale."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, n + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The append at `rejected` was refused; `match_hint` is the follower's hint.

        Returns False if the rejection is stale (an older append); otherwise moves `next`
        back so the next probe lands at or below the hint.
        """
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.msg_app_flow_paused
        if self.state == ProgressState.REPLICATE:
            return self.msg_app_flow_paused
        return True


def majority(n: int) -> int:
    return n // 2 + 1


def committed_index(voters: Iterable[int], match: Mapping[int, int]) -> int:
    """The largest index acknowledged by a majority of `voters` (§5.3)."""
    srt = sorted((match.get(v, 0) for v in voters), reverse=True)
    if not srt:
        return 0
    return srt[majority(len(srt)) - 1]


def vote_result(voters: Iterable[int], votes: Mapping[int, bool]) -> VoteResult:
    voters = list(voters)
    granted = sum(1 for v in voters if votes.get(v) is True)
    missing = sum(1 for v in voters if v not in votes)
    q = majority(len(voters))
    if granted >= q:
        return VoteResult.WON
    if granted + missing >= q:
        return VoteResult.PENDING
    return VoteResult.LOST


class ProgressTracker:
    """The voters, each one's `Progress`, and the votes of the current election."""

    def __init__(
        self, voters: Iterable[int], max_inflight: int, max_inflight_bytes: int = 0
    ) -> None:
        self.voters: tuple[int, ...] = tuple(sorted(voters))
        self.learners: tuple[int, ...] = ()
        self.max_inflight = max_inflight
        self.max_inflight_bytes = max_inflight_bytes
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}

    def new_inflights(self) -> Inflights:
        return Inflights(self.max_inflight, self.max_inflight_bytes)

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def committed(self) -> int:
        return committed_index(self.voters, {i: pr.match for i, pr in self.progress.items()})

    def quorum_active(self) -> bool:
        """Have a majority of voters been heard from since the last check (check-quorum)?"""
        active = {i: pr.recent_active for i, pr in self.progress.items() if not pr.is_learner}
        return vote_result(self.voters, active) == VoteResult.WON

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node: int, granted: bool) -> None:
        self.votes.setdefault(node, granted)

    def tally_votes_of(self, acks: set[int]) -> VoteResult:
        """Would these acknowledgements (e.g. of a ReadIndex heartbeat) make a quorum?"""
        return vote_result(self.voters, dict.fromkeys(acks, True))

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = sum(1 for v in self.voters if self.votes.get(v) is True)
        rejected = sum(1 for v in self.voters if self.votes.get(v) is False)
        return granted, rejected, vote_result(self.voters, self.votes)
