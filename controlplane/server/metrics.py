"""Prometheus metrics of a master (served on the health port's `/metrics`).

Raft gauges are updated from the Raft thread through `observe_status` (prometheus_client is
thread-safe); request latencies from the API loop. The event-loop lag histogram samples how
late a 100 ms sleep wakes up: a loop blocked by heavy work shows here first.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from controlplane.raftnode.node import NodeStatus

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, member: str) -> None:
        self.registry = r = CollectorRegistry()
        self.member = member
        self.term = Gauge("kubelab_raft_term", "Current Raft term", registry=r)
        self.is_leader = Gauge("kubelab_raft_is_leader", "1 if this member leads", registry=r)
        self.has_leader = Gauge("kubelab_raft_has_leader", "1 if a leader is known", registry=r)
        self.commit_index = Gauge("kubelab_raft_commit_index", "Raft commit index", registry=r)
        self.applied_index = Gauge("kubelab_raft_applied_index", "Applied index", registry=r)
        self.elections = Counter(
            "kubelab_raft_elections", "Elections this member started", registry=r
        )
        self.leader_changes = Counter(
            "kubelab_raft_leader_changes", "Leader changes seen by this member", registry=r
        )
        self.proposals = Counter(
            "kubelab_proposals", "Proposals by outcome", ["outcome"], registry=r
        )
        self.commit_latency = Histogram(
            "kubelab_proposal_commit_seconds",
            "From proposing a write to seeing it applied on this member",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fsync_latency = Histogram(
            "kubelab_wal_fsync_seconds",
            "Duration of WAL writes with fsync (one per Ready)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "kubelab_event_loop_lag_seconds",
            "How late the API event loop wakes from a 100 ms sleep",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._elections_seen = 0
        self._leader_changes_seen = 0

    def observe_status(self, st: NodeStatus) -> None:
        self.term.set(st.term)
        self.is_leader.set(1 if st.role == "leader" else 0)
        self.has_leader.set(1 if st.leader else 0)
        self.commit_index.set(st.commit_index)
        self.applied_index.set(st.applied_index)
        if st.elections > self._elections_seen:
            self.elections.inc(st.elections - self._elections_seen)
            self._elections_seen = st.elections
        if st.leader_changes > self._leader_changes_seen:
            self.leader_changes.inc(st.leader_changes - self._leader_changes_seen)
            self._leader_changes_seen = st.leader_changes

    async def watch_loop_lag(self, period: float = 0.1) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(period)
            self.loop_lag.observe(max(0.0, time.monotonic() - t - period))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
