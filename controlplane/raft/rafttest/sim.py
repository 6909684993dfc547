"""Randomized, deterministic simulation of a Raft cluster with safety checks at every step.

One *schedule* is a seeded run of a 3- or 5-node cluster on the in-memory `Network` for a
number of ticks, with random crashes (restart from the simulated disk), partitions (isolate,
minority/majority splits, one-way cuts), message loss, delay, reordering and duplication,
proposals, ReadIndex reads and leadership transfers. Everything derives from the seed, so a
failing schedule replays exactly with the command printed in its error.

Safety checks, run on every Ready and after every step:

- election safety: at most one leader per term; every leader was granted votes by a
  quorum *in its own term*; no node grants two candidates a vote in one term;
- log matching: two entries with the same index and term hold the same data and follow the
  same term (checked incrementally: (index, term) determines (data, previous term), which by
  induction makes the logs identical up to there);
- leader completeness: a new leader's log holds every entry applied anywhere;
- state-machine safety: no two nodes apply different entries at one index, and a node's
  state (a checksum chain, also restored from snapshots) matches everyone else's at the
  same index;
- durability: a restarted node's stable log agrees with everything committed;
- ReadIndex: a read index is never below the commit index known before the read began.

Liveness: after the faults stop, the network heals and every node restarts, a leader must be
elected and a new proposal applied on every node within a bounded number of ticks.
"""

from __future__ import annotations

import argparse
import enum
import logging
import random
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

from ..config import Config, PlantedBug
from ..errors import ProposalDropped
from ..types import NONE, MessageType, Ready, StateType
from .network import AppState, Network, SimDisk, SimNode, SnapshotPolicy

MT = MessageType


class SafetyViolation(AssertionError):
    """A Raft safety property failed; the message says which, where, and how to replay."""

    def __init__(self, check: str, detail: str, replay: str) -> None:
        super().__init__(f"{check}: {detail}\nreplay: {replay}")
        self.check = check
        self.detail = detail
        self.replay = replay


class Check(enum.Enum):
    ELECTION_SAFETY = "election safety"
    LEADER_QUORUM = "leader elected without a quorum in its term"
    DOUBLE_VOTE = "vote granted twice in one term"
    LOG_MATCHING = "log matching"
    LEADER_COMPLETENESS = "leader completeness"
    STATE_MACHINE_SAFETY = "state machine safety"
    DURABILITY = "committed entry lost after restart"
    READ_INDEX = "stale read index"
    LIVENESS = "liveness"


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int
    nodes: int = 3
    ticks: int = 300
    election_tick: int = 0  # 0: the profile's (10 mixed, 5 figure8)
    heartbeat_tick: int = 1
    pre_vote: bool | None = None  # None: chosen per schedule from the seed (mostly on)
    check_quorum: bool | None = None
    snapshot_count: int = 12
    catch_up_entries: int = 3
    max_inflight: int = 0  # 0: chosen per schedule from the seed
    max_size_per_msg: int = 0
    bugs: frozenset[PlantedBug] = frozenset()
    liveness_ticks: int = 0  # 0: 30 election timeouts
    profile: str = "mixed"
    """"mixed": faults drawn from the seed. "figure8": the leader crashes every few ticks
    and crashed nodes come back so that a quorum is usually up (after the Figure 8 tests of
    MIT 6.824): many short terms with uncommitted tails, where commit-rule bugs show."""

    def replay_command(self) -> str:
        cmd = (
            f"python -m controlplane.raft.rafttest.sim --seed {self.seed} "
            f"--nodes {self.nodes} --ticks {self.ticks}"
        )
        if self.pre_vote is not None:
            cmd += " --pre-vote" if self.pre_vote else " --no-pre-vote"
        if self.check_quorum is not None:
            cmd += " --check-quorum" if self.check_quorum else " --no-check-quorum"
        if self.profile != "mixed":
            cmd += f" --profile {self.profile}"
        if self.election_tick:
            cmd += f" --election-tick {self.election_tick}"
        if self.max_inflight:
            cmd += f" --max-inflight {self.max_inflight}"
        if self.max_size_per_msg:
            cmd += f" --max-size-per-msg {self.max_size_per_msg}"
        for b in sorted(self.bugs, key=lambda b: b.value):
            cmd += f" --bug {b.value}"
        return cmd


@dataclass(slots=True)
class Coverage:
    """What a set of schedules exercised; CI prints it and checks the minimums."""

    schedules: int = 0
    ticks: int = 0
    crash_restarts: int = 0
    leader_changes: int = 0
    snapshot_installs: int = 0
    partitions_healed: int = 0
    proposals: int = 0
    entries_applied: int = 0
    reads_served: int = 0
    transfers: int = 0
    messages_delivered: int = 0
    messages_dropped: int = 0

    def add(self, other: Coverage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.as_dict().items())


@dataclass(slots=True)
class _Partition:
    until: int


@dataclass(slots=True)
class _World:
    """What the checker knows of the whole run (the ground truth every node must agree on)."""

    leaders: dict[int, int] = field(default_factory=dict)  # term -> leader
    votes: dict[tuple[int, int], int] = field(default_factory=dict)  # (term, voter) -> cand
    # (index, term) -> (crc of data, term of the previous entry)
    entries: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    applied: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (term, crc)
    checksum_at: dict[int, int] = field(default_factory=dict)  # index -> app checksum
    max_applied: int = 0
    max_commit: int = 0


class Simulation:
    """One schedule. `disk` makes each node's disk (default: `MemoryDisk` with the config's
    snapshot policy); the raftnode tests pass the real WAL-backed storage."""

    def __init__(self, cfg: SimConfig, disk: Callable[[int], SimDisk] | None = None) -> None:
        self.cfg = cfg
        ids = list(range(1, cfg.nodes + 1))
        self.replay = cfg.replay_command()
        self.restarts: dict[int, int] = {}
        # Options left open are drawn from the seed (its own stream, so that fixing them on
        # the command line replays the same schedule).
        opts = random.Random(cfg.seed ^ 0x5EED)
        pre_vote = cfg.pre_vote if cfg.pre_vote is not None else opts.random() < 0.75
        check_quorum = cfg.check_quorum if cfg.check_quorum is not None else opts.random() < 0.75
        self.pre_vote, self.check_quorum = pre_vote, check_quorum
        # Flow control: from one entry per append and one append in flight, up to plenty.
        # Figure 8 needs a follower to acknowledge old entries before the new leader's
        # empty entry: one entry per append, one append in flight.
        fig8 = cfg.profile == "figure8"
        self.max_size_per_msg = cfg.max_size_per_msg or (
            1 if fig8 else opts.choice((1, 64, 1 << 20))
        )
        self.max_inflight = cfg.max_inflight or (1 if fig8 else opts.choice((1, 4, 256)))
        self.election_tick = cfg.election_tick or (5 if fig8 else 10)

        def config(i: int) -> Config:
            return Config(
                id=i,
                voters=tuple(ids),
                election_tick=self.election_tick,
                heartbeat_tick=cfg.heartbeat_tick,
                seed=cfg.seed * 7919 + i * 104729 + self.restarts.get(i, 0),
                pre_vote=pre_vote,
                check_quorum=check_quorum,
                max_inflight_msgs=self.max_inflight,
                max_size_per_msg=self.max_size_per_msg,
                planted_bugs=cfg.bugs,
            )

        self._config = config
        self.net = Network(
            ids,
            seed=cfg.seed,
            config=config,
            policy=SnapshotPolicy(count=cfg.snapshot_count, catch_up=cfg.catch_up_entries),
            disk=disk,
        )
        self.net.observer = self._observe
        self.rng = self.net.rng
        self.world = _World()
        self.cov = Coverage(schedules=1)
        self.step_no = 0
        self.down_until: dict[int, int] = {}
        self.partition: _Partition | None = None
        self.last_leader: tuple[int, int] | None = None  # (term, id)
        self.pending_reads: dict[tuple[int, bytes], int] = {}  # (node, ctx) -> min index
        self._read_seq = 0
        self._payload_seq = 0
        # Per-schedule fault intensities: some schedules are calm, some are rough.
        r = self.rng
        self.p_crash = r.choice((0.0, 0.01, 0.02, 0.04))
        self.p_partition = r.choice((0.0, 0.01, 0.02, 0.04))
        self.p_propose = r.choice((0.2, 0.5, 0.9))
        self.p_read = r.choice((0.0, 0.05, 0.2))
        self.p_transfer = r.choice((0.0, 0.005, 0.02))
        self.p_slow = r.choice((0.0, 0.0, 0.01, 0.03))
        self.slow_links: dict[tuple[int, int], int] = {}  # link -> until tick
        self.p_crash_mid = r.choice((0.0, 0.0, 0.002, 0.01))  # per delivery round
        self.base_faults = (
            r.choice((0.0, 0.0, 0.05, 0.2)),  # loss
            r.choice((0.0, 0.1, 0.3)),  # reorder
            r.choice((0.0, 0.05, 0.2)),  # duplication
            r.choice((0, 0, 1, 2)),  # latency in ticks
        )
        if cfg.profile == "figure8":
            self.p_partition = 0.0
            self.p_crash = self.p_slow = 0.05
            self.p_propose = 0.9
            self.base_faults = (0.0, 0.2, 0.0, 1)
        elif cfg.profile != "mixed":
            raise ValueError(f"profile: expected 'mixed' or 'figure8', got {cfg.profile!r}")
        self.p_leader_crash = 0.2
        self._set_base_faults()

    # -- violations --------------------------------------------------------------------

    def _fail(self, check: Check, detail: str) -> SafetyViolation:
        return SafetyViolation(
            check.value, f"{detail} (tick {self.step_no}, seed {self.cfg.seed})", self.replay
        )

    # -- per-Ready checks --------------------------------------------------------------

    def _observe(self, sn: SimNode, rd: Ready) -> None:
        w = self.world
        raft = sn.raw.raft
        # A vote is given by a grant message or, for a candidate, to itself.
        if raft.vote != NONE:
            self._record_vote(raft.term, sn.id, raft.vote)
        for m in rd.messages:
            if m.type == MT.VOTE_RESP and not m.reject:
                self._record_vote(m.term, m.frm, m.to)
        if rd.soft_state is not None and rd.soft_state.raft_state == StateType.LEADER:
            self._check_new_leader(sn)
        if rd.entries:
            for e in rd.entries:
                prev_term = raft.raft_log.term(e.index - 1)
                key = (e.index, e.term)
                val = (zlib.crc32(e.data), prev_term)
                known = w.entries.setdefault(key, val)
                if known != val:
                    raise self._fail(
                        Check.LOG_MATCHING,
                        f"node {sn.id} has entry {e.term}/{e.index} with (crc, prev term) "
                        f"{val}, another log has {known}",
                    )
        if rd.hard_state is not None:
            w.max_commit = max(w.max_commit, rd.hard_state.commit)
        if rd.snapshot is not None:
            self.cov.snapshot_installs += 1
            meta = rd.snapshot.metadata
            known_sum = w.checksum_at.get(meta.index)
            state = AppState.decode(rd.snapshot.data)
            if known_sum is not None and known_sum != state.checksum:
                raise self._fail(
                    Check.STATE_MACHINE_SAFETY,
                    f"node {sn.id} installed a snapshot at {meta.index} whose state differs",
                )
        # Apply happens after this observer: replay it on a copy to check each entry.
        checksum = sn.app.checksum
        if rd.snapshot is not None:
            checksum = AppState.decode(rd.snapshot.data).checksum
        for e in rd.committed_entries:
            crc = zlib.crc32(e.data)
            got = w.applied.setdefault(e.index, (e.term, crc))
            if got != (e.term, crc):
                raise self._fail(
                    Check.STATE_MACHINE_SAFETY,
                    f"node {sn.id} applies {e.term}/{e.index} but another node applied "
                    f"term {got[0]} there",
                )
            checksum = zlib.crc32(e.data, zlib.crc32(e.index.to_bytes(8, "big"), checksum))
            want = w.checksum_at.setdefault(e.index, checksum)
            if want != checksum:
                raise self._fail(
                    Check.STATE_MACHINE_SAFETY,
                    f"node {sn.id} state after applying index {e.index} differs from others",
                )
            w.max_applied = max(w.max_applied, e.index)
            self.cov.entries_applied += 1
        for rs in rd.read_states:
            self._check_read(sn.id, rs.index, rs.request_ctx)

    def _record_vote(self, term: int, voter: int, candidate: int) -> None:
        prev = self.world.votes.setdefault((term, voter), candidate)
        if prev != candidate:
            raise self._fail(
                Check.DOUBLE_VOTE,
                f"node {voter} gave its term-{term} vote to {prev} and to {candidate}",
            )

    def _check_new_leader(self, sn: SimNode) -> None:
        w = self.world
        raft = sn.raw.raft
        term = raft.term
        prev = w.leaders.setdefault(term, sn.id)
        if prev != sn.id:
            raise self._fail(
                Check.ELECTION_SAFETY, f"nodes {prev} and {sn.id} are both leaders of term {term}"
            )
        granted = 1 + sum(1 for v in self.net.ids if v != sn.id and w.votes.get((term, v)) == sn.id)
        if granted < len(self.net.ids) // 2 + 1:
            raise self._fail(
                Check.LEADER_QUORUM,
                f"node {sn.id} leads term {term} with only {granted} vote(s) granted in that term",
            )
        if self.last_leader != (term, sn.id):
            self.last_leader = (term, sn.id)
            self.cov.leader_changes += 1
        # Leader completeness (§5.4): every applied entry is in the new leader's log.
        log = raft.raft_log
        first = log.first_index()
        for i in range(first, w.max_applied + 1):
            t = w.applied[i][0] if i in w.applied else None
            if t is not None and not log.match_term(i, t):
                raise self._fail(
                    Check.LEADER_COMPLETENESS,
                    f"leader {sn.id} of term {term} lacks applied entry {t}/{i}",
                )
        snap_index = first - 1
        if snap_index in w.applied and log.term(snap_index) != w.applied[snap_index][0]:
            raise self._fail(
                Check.LEADER_COMPLETENESS,
                f"leader {sn.id} snapshot at {snap_index} has the wrong term",
            )

    def _check_read(self, node: int, index: int, ctx: bytes) -> None:
        floor = self.pending_reads.pop((node, ctx), None)
        if floor is None:
            return  # a duplicate or a read from before a crash
        self.cov.reads_served += 1
        if index < floor:
            raise self._fail(
                Check.READ_INDEX,
                f"node {node} got read index {index} but {floor} was committed before the read",
            )

    # -- per-step checks ---------------------------------------------------------------

    def _check_restart(self, sn: SimNode) -> None:
        """After a restart the node's stable log must agree with everything applied."""
        w = self.world
        log = sn.raw.raft.raft_log
        hs = sn.storage.hard_state
        if hs.commit > log.last_index():
            raise self._fail(
                Check.DURABILITY,
                f"node {sn.id} restarted with commit {hs.commit} beyond its log {log.last_index()}",
            )
        for i in range(log.first_index(), min(log.last_index(), w.max_applied) + 1):
            if i in w.applied and log.term(i) != w.applied[i][0] and i <= hs.commit:
                raise self._fail(
                    Check.DURABILITY,
                    f"node {sn.id} restarted with entry {log.term(i)}/{i}, but "
                    f"{w.applied[i][0]}/{i} was applied",
                )

    # -- the schedule ------------------------------------------------------------------

    def run(self) -> Coverage:
        for _ in range(self.cfg.ticks):
            self.step_no += 1
            self._faults()
            self._client_ops()
            self.net.tick([i for i in self.net.ids if self.net.nodes[i].alive])
            self._settle()
            self.cov.ticks += 1
        self._check_liveness()
        self.cov.messages_delivered = self.net.delivered
        self.cov.messages_dropped = self.net.dropped
        return self.cov

    def _settle(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            ready = self.net.process_ready()
            delivered = self.net.deliver()
            if not ready and not delivered:
                return
            if self.p_crash_mid and self.rng.random() < self.p_crash_mid:
                self._crash()  # in the middle of an exchange, not only between ticks

    def _faults(self) -> None:
        now = self.step_no
        rng = self.rng
        net = self.net
        # restarts due
        for i, until in list(self.down_until.items()):
            if now >= until:
                del self.down_until[i]
                self._restart(i)
        # heal a partition
        if self.partition is not None and now >= self.partition.until:
            self._heal()
        if rng.random() < self.p_crash:
            self._crash()
        if self.cfg.profile == "figure8":
            self._figure8()
        # partition
        if self.partition is None and rng.random() < self.p_partition:
            self._partition()
        # slow links: messages held up to a few election timeouts, so stale requests and
        # responses arrive in later terms
        for link, until in list(self.slow_links.items()):
            if now >= until:
                del self.slow_links[link]
                self.net.faults.delay.pop(link, None)
        if rng.random() < self.p_slow:
            a, b = rng.sample(list(net.ids), 2)
            self.net.delay(a, b, rng.randint(1, 3 * self.election_tick))
            self.slow_links[(a, b)] = now + rng.randint(5, 6 * self.election_tick)

    def _crash(self) -> None:
        rng = self.rng
        net = self.net
        alive = [i for i in net.ids if net.nodes[i].alive]
        if not alive:
            return
        # Crash the leader half of the time: that is where the bugs are.
        leader = net.leader()
        victim = leader if leader is not None and rng.random() < 0.5 else rng.choice(alive)
        net.crash(victim)
        self.down_until[victim] = self.step_no + rng.randint(1, 4 * self.election_tick)

    def _figure8(self) -> None:
        rng = self.rng
        net = self.net
        leader = net.leader()
        if leader is not None and rng.random() < self.p_leader_crash:
            net.crash(leader)
            self.down_until[leader] = self.step_no + rng.randint(1, 3 * self.election_tick)
        up = sum(1 for sn in net.nodes.values() if sn.alive)
        if up < len(net.ids) // 2 + 1 and self.down_until:
            i = rng.choice(sorted(self.down_until))
            del self.down_until[i]
            self._restart(i)

    def _partition(self) -> None:
        rng = self.rng
        net = self.net
        ids = list(net.ids)
        kind = rng.choice(("isolate-leader", "isolate", "split", "oneway"))
        if kind == "isolate-leader":
            leader = net.leader()
            net.isolate(leader if leader is not None else rng.choice(ids))
        elif kind == "isolate":
            net.isolate(rng.choice(ids))
        elif kind == "split":
            rng.shuffle(ids)
            k = rng.randint(1, len(ids) // 2)
            net.partition(ids[:k], ids[k:])
        else:
            a, b = rng.sample(ids, 2)
            net.cut_oneway(a, b)
        self.partition = _Partition(until=self.step_no + rng.randint(5, 8 * self.election_tick))

    def _set_base_faults(self) -> None:
        drop, reorder, dup, latency = self.base_faults
        for a in self.net.ids:
            for b in self.net.ids:
                if a != b:
                    if drop:
                        self.net.drop(a, b, drop)
                    if latency:
                        self.net.delay(a, b, latency)
        self.net.set_reorder(reorder)
        self.net.set_duplicate(dup)

    def _heal(self) -> None:
        self.net.recover()
        self._set_base_faults()
        self.slow_links.clear()
        self.partition = None
        self.cov.partitions_healed += 1

    def _restart(self, i: int) -> None:
        self.restarts[i] = self.restarts.get(i, 0) + 1
        self.net.restart(i, self._config(i))
        self.cov.crash_restarts += 1
        self._check_restart(self.net.nodes[i])

    def _client_ops(self) -> None:
        rng = self.rng
        net = self.net
        alive = [i for i in net.ids if net.nodes[i].alive]
        if not alive:
            return
        if rng.random() < self.p_propose:
            self._payload_seq += 1
            target = rng.choice(alive)
            n = rng.choice((1, 1, 1, 3))
            payloads = [b"s%d-p%d-%d" % (self.cfg.seed, self._payload_seq, k) for k in range(n)]
            try:
                net.nodes[target].raw.propose(*payloads)
                self.cov.proposals += n
            except ProposalDropped:
                pass
        if rng.random() < self.p_read:
            target = rng.choice(alive)
            self._read_seq += 1
            ctx = b"r%d" % self._read_seq
            # Anything committed anywhere before the read starts must be visible to it.
            self.pending_reads[(target, ctx)] = self.world.max_commit
            net.nodes[target].raw.read_index(ctx)
        if rng.random() < self.p_transfer:
            leader = net.leader()
            if leader is not None:
                to = rng.choice([i for i in net.ids if i != leader])
                net.nodes[leader].raw.transfer_leader(to)
                self.cov.transfers += 1

    def _check_liveness(self) -> None:
        """Heal everything; a leader must emerge and a new entry commit everywhere."""
        net = self.net
        self.p_crash_mid = 0.0
        if self.partition is not None:
            self._heal()
        net.recover()  # no loss either: liveness needs a reliable-enough network
        for i in list(self.down_until):
            del self.down_until[i]
            self._restart(i)
        budget = self.cfg.liveness_ticks or 30 * self.election_tick
        marker = b"liveness-%d" % self.cfg.seed
        proposed_at: int | None = None
        for t in range(budget):
            self.step_no += 1
            net.tick()
            self._settle()
            leader = net.leader()
            if leader is None:
                continue
            if proposed_at is None or t - proposed_at > 2 * self.election_tick:
                try:
                    net.nodes[leader].raw.propose(marker)
                    proposed_at = t
                except ProposalDropped:
                    continue
            if self._applied_everywhere(marker):
                self._check_converged()
                return
        terms = {i: sn.raw.raft.term for i, sn in net.nodes.items() if sn.alive}
        raise self._fail(
            Check.LIVENESS,
            f"no leader committed a proposal on every node within {budget} ticks after healing "
            f"(leader={net.leader()}, terms={terms})",
        )

    def _applied_everywhere(self, marker: bytes) -> bool:
        w = self.world
        idx = [i for i, (_, crc) in w.applied.items() if crc == zlib.crc32(marker)]
        if not idx:
            return False
        first = min(idx)
        return all(sn.app.applied_index >= first for sn in self.net.nodes.values())

    def _check_converged(self) -> None:
        w = self.world
        for sn in self.net.nodes.values():
            want = w.checksum_at.get(sn.app.applied_index)
            if want is not None and want != sn.app.checksum:
                raise self._fail(
                    Check.STATE_MACHINE_SAFETY,
                    f"node {sn.id} state at {sn.app.applied_index} differs after healing",
                )


def run_schedules(
    seeds: Iterable[int],
    nodes: Sequence[int] = (3, 5),
    ticks: int = 300,
    bugs: frozenset[PlantedBug] = frozenset(),
    profile: str = "mixed",
) -> Coverage:
    """Run one schedule per seed, alternating cluster sizes; raises on the first violation."""
    total = Coverage(schedules=0)
    for k, seed in enumerate(seeds):
        cfg = SimConfig(
            seed=seed, nodes=nodes[k % len(nodes)], ticks=ticks, bugs=bugs, profile=profile
        )
        total.add(Simulation(cfg).run())
    return total


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m controlplane.raft.rafttest.sim",
        description="Run (or replay) randomized Raft simulation schedules.",
    )
    p.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--count", type=int, default=1, help="number of schedules (default 1)")
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--profile", choices=("mixed", "figure8"), default="mixed")
    p.add_argument("--election-tick", type=int, default=0)
    p.add_argument("--max-inflight", type=int, default=0)
    p.add_argument("--max-size-per-msg", type=int, default=0)
    p.add_argument("--pre-vote", dest="pre_vote", action="store_true", default=None)
    p.add_argument("--no-pre-vote", dest="pre_vote", action="store_false")
    p.add_argument("--check-quorum", dest="check_quorum", action="store_true", default=None)
    p.add_argument("--no-check-quorum", dest="check_quorum", action="store_false")
    p.add_argument(
        "--bug",
        action="append",
        default=[],
        choices=[b.value for b in PlantedBug],
        help="plant a known bug (to see the checks fail)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    bugs = frozenset(PlantedBug(b) for b in a.bug)
    total = Coverage(schedules=0)
    for seed in range(a.seed, a.seed + a.count):
        cfg = SimConfig(
            seed=seed,
            nodes=a.nodes,
            ticks=a.ticks,
            pre_vote=a.pre_vote,
            check_quorum=a.check_quorum,
            bugs=bugs,
            profile=a.profile,
            election_tick=a.election_tick,
            max_inflight=a.max_inflight,
            max_size_per_msg=a.max_size_per_msg,
        )
        try:
            total.add(Simulation(cfg).run())
        except SafetyViolation as e:
            print(f"VIOLATION {e}", file=sys.stderr)
            return 1
    print(f"ok: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
