"""`kubelab status`: every master's view, gathered under a per-member deadline.

A paused master still accepts TCP connections (the kernel completes the handshake) but never
answers, so each member's `/status` gets its own short deadline and all are asked at once, on
threads (plain `http.client`, no proxies, nothing to install): `status` answers within a
second whatever the members do. The process state (running, paused, dead) comes from the pid
files, not from the network, so a paused member shows as `paused` with its role unknown.

`leader` is the leader of the highest term reported: a member that reports role "leader" at
that term, else the leader that members at that term name (a leader too busy to answer is
still the leader), unless that process is known dead. `term` is that highest term.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.cli.faults import describe_faults
from controlplane.config import ClusterConfig
from controlplane.procs import ProcState, cluster_table

from .common import cluster_from_args

PROBE_TIMEOUT_S = 0.3
"""Deadline of one member's answer (connect and read)."""


@dataclass(frozen=True)
class Probe:
    """One HTTP GET: `status` is None when no answer came; `error` says why."""

    status: int | None
    body: bytes = b""
    error: str | None = None

    def json(self) -> dict[str, Any] | None:
        """The body as a JSON object if the answer was 200 and one."""
        if self.status != 200:
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def http_get(host: str, port: int, path: str, timeout_s: float) -> Probe:
    """GET http://host:port/path with `timeout_s` for the connect and for each read."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return Probe(resp.status, resp.read(1 << 20))
    except TimeoutError:
        return Probe(None, error=f"no answer within {timeout_s:g} s")
    except ConnectionRefusedError:
        return Probe(None, error="connection refused")
    except (OSError, http.client.HTTPException) as e:
        return Probe(None, error=str(e) or type(e).__name__)
    finally:
        conn.close()


def probe_all(
    targets: Sequence[tuple[str, int, str]], timeout_s: float = PROBE_TIMEOUT_S
) -> list[Probe]:
    """GET every (host, port, path) at once; returns within about `timeout_s` + 0.2 s."""
    if not targets:
        return []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(targets))
    try:
        futures = [pool.submit(http_get, h, p, path, timeout_s) for h, p, path in targets]
        concurrent.futures.wait(futures, timeout=timeout_s + 0.2)
        return [
            f.result() if f.done() else Probe(None, error=f"no answer within {timeout_s:g} s")
            for f in futures
        ]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def leader_of(masters: Sequence[dict[str, Any]]) -> tuple[str | None, int | None]:
    """(leader, term) from the members' reports; see the module docstring."""
    terms = [m["term"] for m in masters if isinstance(m.get("term"), int)]
    if not terms:
        return None, None
    top = max(terms)
    for m in masters:
        if m.get("role") == "leader" and m.get("term") == top:
            return str(m["name"]), top
    dead = {m["name"] for m in masters if m.get("state") == ProcState.DEAD}
    for m in masters:
        seen = m.get("reported_leader")
        if m.get("term") == top and isinstance(seen, str) and seen not in dead:
            return seen, top
    return None, top


def collect_status(cfg: ClusterConfig, *, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """The `status --json` document (DESIGN.md shape, plus a few extra keys)."""
    table = cluster_table(cfg)
    probes = probe_all([(m.ip, m.health_port, "/status") for m in cfg.masters], timeout_s)
    masters: list[dict[str, Any]] = []
    for spec, probe in zip(cfg.masters, probes, strict=True):
        state, rec = table.lookup(spec.name)
        info = probe.json() or {}
        pid: int | None = rec.pid if rec else None
        if info and state is ProcState.DEAD:
            # It answers but has no pid file of ours (started by hand, or the file was lost).
            state = ProcState.RUNNING
            pid = info.get("pid") if isinstance(info.get("pid"), int) else None
        error = probe.error
        if error is None and not info:
            error = f"HTTP {probe.status} without a status document"
        masters.append(
            {
                "name": spec.name,
                "pid": pid,
                "state": str(state),
                "alive": state.alive,
                "role": info.get("role"),
                "term": info.get("term"),
                "commit_index": info.get("commit_index"),
                "applied_index": info.get("applied_index"),
                # extras
                "id": spec.id,
                "ip": spec.ip,
                "reported_leader": info.get("leader"),
                "revision": info.get("revision"),
                "faults": info.get("faults"),
                "error": None if info else error,
            }
        )
    leader, term = leader_of(masters)
    host, port = cfg.frontdoor
    return {
        "cluster": cfg.name,
        "uid": cfg.uid or None,
        "subnet": str(cfg.subnet),
        "data_dir": str(cfg.data_dir),
        "frontdoor": f"{host}:{port}",
        "timers": cfg.timers.to_dict(),
        "raft": cfg.raft.to_dict(),
        "leader": leader,
        "term": term,
        "quorum": cfg.quorum,
        "masters": masters,
        "workers": [],
        "pods": {},
    }


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def render_status(doc: dict[str, Any]) -> str:
    """The human form of `collect_status`: a header, an aligned table, the timers."""
    leader = doc["leader"]
    lines = [f"cluster {doc['cluster']} ({doc['subnet']}, data dir {doc['data_dir']})"]
    if leader:
        lines.append(f"leader {leader}, term {doc['term']}")
    elif doc["term"] is not None:
        lines.append(f"no leader known (highest term reported: {doc['term']})")
    else:
        lines.append("no member answered")
    header = ("NAME", "PID", "STATE", "ROLE", "TERM", "COMMIT", "APPLIED", "NOTE")
    rows = [header]
    for m in doc["masters"]:
        name = f"{m['name']} *" if m["name"] == leader else m["name"]
        note = describe_faults(m.get("faults"))
        if m["error"] and m["state"] != ProcState.DEAD:
            note = "paused: cannot answer" if m["state"] == ProcState.PAUSED else m["error"]
        rows.append(
            (
                name,
                _cell(m["pid"]),
                m["state"],
                _cell(m["role"]),
                _cell(m["term"]),
                _cell(m["commit_index"]),
                _cell(m["applied_index"]),
                note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines.append("")
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    lines.append("")
    if leader:
        lines.append("* leader")
    if all(m["state"] == ProcState.DEAD for m in doc["masters"]):
        lines.append("the cluster is not running: start it with `kubelab up`")
    lines.append("workers: none running yet (coming with the kubelet issue)")
    raft = doc["raft"]
    timers = doc["timers"]
    raft_pairs = " ".join(f"{k}={_toml(v)}" for k, v in raft.items())
    timer_pairs = " ".join(f"{k}={v:g}" for k, v in timers.items() if k != "profile")
    for text in (f"raft: {raft_pairs}", f"timers (profile {timers['profile']}): {timer_pairs}"):
        lines.append(textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


def _toml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def cmd_status(args: argparse.Namespace) -> int:
    """`kubelab status [--json] [--watch]`."""
    cfg = cluster_from_args(args)
    if not args.watch:
        _show(cfg, as_json=args.json)
        return 0
    clear = sys.stdout.isatty() and not args.json
    try:
        while True:
            t0 = time.monotonic()
            if clear:
                print("\x1b[H\x1b[2J", end="")
            _show(cfg, as_json=args.json, compact=True)
            if not args.json:
                print(f"\n(every {args.interval:g} s; Ctrl-C to stop)", flush=True)
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0)))
    except KeyboardInterrupt:
        return 0


def _show(cfg: ClusterConfig, *, as_json: bool, compact: bool = False) -> None:
    doc = collect_status(cfg)
    if as_json:
        print(json.dumps(doc) if compact else json.dumps(doc, indent=2), flush=True)
    else:
        print(render_status(doc), flush=True)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="masters' roles, terms and indexes (answers within a second)",
        description="Show every member: process state, Raft role, term, commit and applied "
        "indexes, the leader, and the effective timers. Each member gets "
        f"{PROBE_TIMEOUT_S:g} s to answer, so paused members do not slow it down.",
    )
    p.add_argument("--json", action="store_true", help="one JSON document (see DESIGN.md)")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="--watch period (default 1)"
    )
    p.set_defaults(func=cmd_status)
