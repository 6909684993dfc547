"""Turning before/after readings of the members into per-phase figures and the profile.

`Snapshot` is every member's `/metrics` page and CPU time (from `/proc`) plus the client's
CPU time at one moment; a phase is measured between two snapshots. `profile_steps` breaks a
sequential write into steps, each measured, derived (a difference of measured figures,
labelled so), or explicitly not measurable from outside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import stats
from .probes import Samples, counter_delta, hist_delta, proc_cpu_seconds, scrape
from .systems import Cluster
from .workload import LoadResult

__all__ = ["Snapshot", "phase_doc", "profile_steps", "snapshot"]


@dataclass
class Snapshot:
    """Every member's metrics and CPU time, and the client's CPU time, at one moment."""

    metrics: dict[str, Samples | None]
    cpu: dict[str, float | None]
    client_cpu: float


async def snapshot(cluster: Cluster) -> Snapshot:
    names = [m.name for m in cluster.members]
    pages = await asyncio.gather(
        *(asyncio.to_thread(scrape, m.metrics_url, 2.0) for m in cluster.members)
    )
    cpu = {n: proc_cpu_seconds(cluster.pid(n)) for n in names}
    return Snapshot(dict(zip(names, pages, strict=True)), cpu, time.process_time())


def _ms(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def member_deltas(
    cluster: Cluster, leader: str, before: Snapshot, after: Snapshot, writes: int
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in cluster.members:
        b, a = before.metrics.get(m.name), after.metrics.get(m.name)
        d: dict[str, Any] = {"role": "leader" if m.name == leader else "follower"}
        cb, ca = before.cpu.get(m.name), after.cpu.get(m.name)
        cpu = ca - cb if ca is not None and cb is not None else None
        d["cpu_s"] = _ms(cpu)
        d["cpu_ms_per_write"] = _ms(cpu * 1000 / writes if cpu is not None and writes else None)
        hists = [("fsync", cluster.fsync_hist)]
        if cluster.commit_hist:
            hists.append(("commit", cluster.commit_hist))
        hists += [(h, h) for h in cluster.extra_hists]
        for label, name in hists:
            h = hist_delta(b, a, name)
            d[label] = (
                None
                if h is None
                else {
                    "metric": name,
                    "count": int(h.count),
                    "mean_ms": h.mean_ms,
                    "per_write": round(h.count / writes, 3) if writes else None,
                }
            )
        for label, counter in (
            ("elections", cluster.elections_counter),
            ("leader_changes", cluster.leader_changes_counter),
        ):
            d[label] = None if counter is None else counter_delta(b, a, counter)
        out[m.name] = d
    return out


def phase_doc(
    cluster: Cluster,
    leader: str,
    target: str,
    res: LoadResult,
    *,
    before: Snapshot,
    after: Snapshot,
    **extra: Any,
) -> dict[str, Any]:
    members = member_deltas(cluster, leader, before, after, res.writes)
    cpu = [d["cpu_s"] for d in members.values()]
    server_cpu = sum(c for c in cpu if c is not None) if all(c is not None for c in cpu) else None
    client_cpu = after.client_cpu - before.client_cpu
    return {
        "target": target,
        **extra,
        "writes": res.writes,
        "errors": res.errors,
        "seconds": round(res.seconds, 3),
        "throughput_per_s": round(res.throughput, 1),
        "latency": stats.summarize_latencies(res.latencies),
        "server_cpu_ms_per_write": _ms(
            server_cpu * 1000 / res.writes if server_cpu is not None and res.writes else None
        ),
        "client_cpu_ms_per_write": _ms(client_cpu * 1000 / res.writes if res.writes else None),
        "members": members,
    }


# -- the per-step profile --------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return round(sum(vs) / len(vs), 3) if vs else None


def _sub(a: float | None, *bs: float | None) -> float | None:
    if a is None or any(b is None for b in bs):
        return None
    return round(a - sum(b for b in bs if b is not None), 3)


def _step(step: str, ms: float | None, how: str) -> dict[str, Any]:
    return {"step": step, "ms": ms, "how": how}


NOT_EXPOSED = "not measurable from outside: "
NOT_APPLICABLE = "not applicable: "


def profile_steps(
    cluster: Cluster, seq_leader: dict[str, Any], seq_follower: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Per-write time of each step of a sequential write, by path ("leader", "follower").

    Every system gets the same steps in the same order; a step it does not expose has
    `ms: null` and says why."""
    out: dict[str, list[dict[str, Any]]] = {}
    client_leader = seq_leader["latency"].get("mean_ms")
    fsync_metric = cluster.fsync_hist
    for path, ph in (("leader", seq_leader), ("follower", seq_follower)):
        members = ph["members"]
        leader = next(n for n, d in members.items() if d["role"] == "leader")
        served = ph["target"]
        lead = members[leader]["fsync"] or {}
        lead_fsync = lead.get("mean_ms")
        foll_fsync = _mean(
            [(d["fsync"] or {}).get("mean_ms") for d in members.values() if d["role"] != "leader"]
        )
        client = ph["latency"].get("mean_ms")
        steps = [_step("client round trip (mean)", client, "measured: the client's clock")]
        if path == "follower":
            steps.append(
                _step(
                    "forward follower -> leader (and back)",
                    _sub(client, client_leader),
                    "derived: mean client latency through the follower minus through the leader",
                )
            )
        else:
            steps.append(
                _step(
                    "forward follower -> leader (and back)",
                    None,
                    NOT_APPLICABLE + "written to the leader",
                )
            )
        steps.append(
            _step(
                "append + fsync on the leader",
                lead_fsync,
                f"measured: {fsync_metric} on {leader} (mean per fsync; "
                f"{lead.get('per_write')} fsyncs per write)",
            )
        )
        steps.append(
            _step(
                "replicate: append + fsync on a follower",
                foll_fsync,
                f"measured: {fsync_metric} on the followers (mean per fsync)",
            )
        )
        if cluster.commit_hist:
            commit = (members[served]["commit"] or {}).get("mean_ms")
            steps += [
                _step(
                    "replicate: network + Raft processing, commit, apply",
                    _sub(commit, lead_fsync, foll_fsync),
                    f"derived: {cluster.commit_hist} on {served} minus the two fsyncs above "
                    "(the leader fsyncs before it sends, so they add up); commit and apply are "
                    "not exposed separately on /metrics",
                ),
                _step(
                    "propose -> applied, on the member written to",
                    commit,
                    f"measured: {cluster.commit_hist} on {served} (mean)",
                ),
                _step(
                    "gRPC + API + client outside the proposal",
                    _sub(client, commit),
                    f"derived: client round trip minus {cluster.commit_hist}",
                ),
            ]
        else:
            why = NOT_EXPOSED + f"{cluster.system}'s /metrics has no per-proposal histogram"
            steps += [
                _step("replicate: network + Raft processing, commit, apply", None, why),
                _step("propose -> applied, on the member written to", None, why),
                _step("gRPC + API + client outside the proposal", None, why),
            ]
        steps.append(
            _step(
                "commit, apply (each on its own)",
                None,
                NOT_EXPOSED + "no separate histograms on /metrics",
            )
        )
        steps.append(
            _step(
                "server CPU per write (all members)",
                ph["server_cpu_ms_per_write"],
                "measured: utime+stime from /proc/<pid>/stat",
            )
        )
        steps.append(
            _step(
                "client CPU per write",
                ph["client_cpu_ms_per_write"],
                "measured: the benchmark process's CPU time",
            )
        )
        for h in cluster.extra_hists:
            v = (members[leader].get(h) or {}).get("mean_ms")
            steps.append(
                _step(
                    f"info: {h} (leader, mean)",
                    v,
                    "measured: off the write path (for context)"
                    if v is not None
                    else "no observations during the phase",
                )
            )
        out[path] = steps
    return out
