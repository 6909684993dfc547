"""`kubelab status`: every master's view, gathered under a per-member deadline.

A paused master still accepts TCP connections (the kernel completes the handshake) but never
answers, so each member's `/status` gets its own short deadline and all are asked at once, on
threads (plain `http.client`, no proxies, nothing to install): `status` answers within a
second whatever the members do. The process state (running, paused, dead) comes from the pid
files, not from the network, so a paused member shows as `paused` with its role unknown.

`leader` is the leader of the highest term reported: a member that reports role "leader" at
that term, else the leader that members at that term name (a leader too busy to answer is
still the leader), unless that process is known dead. `term` is that highest term.

Fake workers live in one process (`fakenodes`): its pid is their `kubelet_pid`, their state
comes from its control socket (asked at the same time as the masters, with the same
deadline), or is the process's own when it is dead or paused. Whether each node is Ready, and
how many pods are in each phase, is read once from the API (gRPC, served from the local state
of a master that answered, leader first) with a short deadline: null and `{}` when no answer
came in time. Workers of the docker and process runtimes have no process yet (the kubelet
issue) and are not listed.
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
from controlplane.config import ClusterConfig, ConfigError, WorkerSpec, admin_token
from controlplane.procs import (
    FAKENODES,
    ProcessError,
    ProcessTable,
    ProcState,
    cluster_table,
    control_call,
    fake_workers,
    fakenodes_socket,
)

from .common import cluster_from_args

PROBE_TIMEOUT_S = 0.3
"""Deadline of one member's answer (connect and read)."""
API_TIMEOUT_S = 0.5
"""Deadline of the API reads (nodes and pods) that `status` makes."""


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


@dataclass(frozen=True)
class APIView:
    """What the API says about nodes and pods: `ready` by node name (True, False, or None
    for Unknown), pod counts by phase; `error` when it could not be read (then both empty)."""

    ready: dict[str, bool | None]
    pods: dict[str, int]
    error: str | None = None


def _ready_of(node: dict[str, Any]) -> bool | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return {"True": True, "False": False}.get(str(c.get("status")))
    return None


def read_api(
    cfg: ClusterConfig, endpoints: Sequence[str], timeout_s: float, *, pods: bool = True
) -> APIView:
    """Nodes' Ready condition and (unless not `pods`) pods per phase, over the gRPC API at
    `endpoints` (in order) with the admin token, from the masters' local state
    (resourceVersion "0"), all within about `timeout_s`. Never raises: a failure is in
    `error`."""
    if not endpoints:
        return APIView({}, {}, "no master answered")
    try:
        token = admin_token(cfg)
    except ConfigError as e:
        return APIView({}, {}, str(e))
    # Imported here: only a cluster that answers pays for grpc.
    import asyncio  # noqa: PLC0415

    from controlplane.client.resources import ResourceClient  # noqa: PLC0415
    from controlplane.kube.errors import APIError  # noqa: PLC0415
    from controlplane.kube.resources import NODES, PODS  # noqa: PLC0415

    async def read() -> APIView:
        client = ResourceClient(endpoints, token, timeout=timeout_s, retry_for=timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                lists = [client.list(NODES, resource_version="0")]
                if pods:
                    lists.append(client.list(PODS, resource_version="0"))
                nodes, *rest = await asyncio.gather(*lists)
        except TimeoutError:
            return APIView({}, {}, f"the API did not answer within {timeout_s:g} s")
        except APIError as e:
            return APIView({}, {}, f"the API answered {e.code}: {e.message}")
        finally:
            await client.close()
        ready = {
            str(n["metadata"]["name"]): _ready_of(n)
            for n in nodes.get("items") or []
            if isinstance(n, dict) and isinstance(n.get("metadata"), dict)
        }
        phases: dict[str, int] = {}
        for p in (rest[0].get("items") or []) if rest else []:
            phase = str((p.get("status") or {}).get("phase") or "Unknown")
            phases[phase] = phases.get(phase, 0) + 1
        order = {"Running": 0, "Pending": 1}
        return APIView(
            ready, dict(sorted(phases.items(), key=lambda kv: (order.get(kv[0], 2), kv[0])))
        )

    return asyncio.run(read())


def _fakenodes_states(
    cfg: ClusterConfig, table: ProcessTable, timeout_s: float
) -> tuple[int | None, dict[str, str], str | None]:
    """(pid of fakenodes or None, state by fake node, error): the states come from its
    control socket when it runs, else are the process's own (dead or paused)."""
    workers = fake_workers(cfg)
    if not workers:
        return None, {}, None
    state, rec = table.lookup(FAKENODES)
    pid = rec.pid if rec else None
    if state is not ProcState.RUNNING:
        return pid, {w.name: str(state) for w in workers}, None
    try:
        answer = control_call(fakenodes_socket(cfg), {"op": "status"}, timeout_s=timeout_s)
    except ProcessError as e:
        return pid, {w.name: str(state) for w in workers}, f"fakenodes: {e}"
    nodes = answer.get("nodes")
    if not isinstance(nodes, dict):
        return pid, {w.name: str(state) for w in workers}, f"fakenodes: unexpected answer {answer}"
    return pid, {w.name: str(nodes.get(w.name, ProcState.DEAD)) for w in workers}, None


def _worker_doc(
    w: WorkerSpec, pid: int | None, state: str, api: APIView, error: str | None
) -> dict[str, Any]:
    return {
        "name": w.name,
        "kubelet_pid": pid,
        "proxy_pid": None,  # fake workers have no kube-proxy (DESIGN.md)
        "state": state,
        "alive": state == ProcState.RUNNING,
        "ready": api.ready.get(w.name),
        # extras
        "runtime": w.runtime,
        "node_ip": w.node_ip,
        "error": error,
    }


def collect_status(cfg: ClusterConfig, *, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """The `status --json` document (DESIGN.md shape, plus a few extra keys)."""
    table = cluster_table(cfg)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        fake = pool.submit(_fakenodes_states, cfg, table, timeout_s)
        probes = probe_all([(m.ip, m.health_port, "/status") for m in cfg.masters], timeout_s)
        fake_pid, fake_states, fake_error = fake.result()
    finally:
        pool.shutdown(wait=False)
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
    answering = sorted(
        (m for m in masters if m["role"] is not None), key=lambda m: m["name"] != leader
    )
    specs = [cfg.master(m["name"]) for m in answering]
    endpoints = [f"{spec.ip}:{spec.grpc_port}" for spec in specs]
    api = read_api(cfg, endpoints, API_TIMEOUT_S)
    workers = [
        _worker_doc(w, fake_pid, fake_states[w.name], api, fake_error)
        for w in cfg.workers
        if w.name in fake_states
    ]
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
        "workers": workers,
        "pods": api.pods,
        "api_error": api.error,
        "other_workers": [w.name for w in cfg.workers if w.runtime != "fake"],
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
    lines += _render_workers(doc)
    raft = doc["raft"]
    timers = doc["timers"]
    raft_pairs = " ".join(f"{k}={_toml(v)}" for k, v in raft.items())
    timer_pairs = " ".join(f"{k}={v:g}" for k, v in timers.items() if k != "profile")
    for text in (f"raft: {raft_pairs}", f"timers (profile {timers['profile']}): {timer_pairs}"):
        lines.append(textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


def _render_workers(doc: dict[str, Any]) -> list[str]:
    """The workers' table (fake workers), the pods per phase, and what is not run yet."""
    lines: list[str] = []
    workers = doc.get("workers") or []
    if workers:
        header = ("WORKER", "KUBELET", "PROXY", "STATE", "READY", "NOTE")
        rows = [header]
        lines.append("")
        for w in workers:
            note = f"fake, {w['node_ip']}"
            if w.get("error"):
                note = w["error"]
            rows.append(
                (
                    w["name"],
                    _cell(w["kubelet_pid"]),
                    _cell(w["proxy_pid"]),
                    w["state"],
                    _cell(w["ready"]),
                    note,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        lines.append("")
    pods = doc.get("pods") or {}
    if pods:
        lines.append("pods: " + ", ".join(f"{phase} {n}" for phase, n in pods.items()))
    elif workers:
        error = doc.get("api_error")
        lines.append(f"pods: unknown ({error})" if error else "pods: none")
    others = doc.get("other_workers") or []
    if others and not workers:
        lines.append("workers: none running yet (coming with the kubelet issue)")
    elif others:
        lines.append(
            f"workers {', '.join(others)}: not running yet (the docker and process runtimes "
            "come with the kubelet issue)"
        )
    return lines


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
