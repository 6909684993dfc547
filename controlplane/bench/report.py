"""Tables for `kubelab bench quorum`: the headline figures with ratios, and the profiles.

Pure functions of the JSON document (`quorum.run_quorum`): what is printed is exactly what
is saved, and a saved document can be printed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["render", "render_run", "table"]

Row = Sequence[str]


def table(header: Row, rows: Sequence[Row], *, left: int = 1) -> str:
    """An aligned text table: the first `left` columns left-aligned, the others right."""
    widths = [len(h) for h in header]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]

    def line(r: Row) -> str:
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)])


def _get(doc: Any, *path: str) -> Any:
    cur = doc
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.{nd}f}"
    return str(v)


HEADLINE: tuple[tuple[str, str, str, str | None], ...] = (
    # (group, unit, path in a system's document, target key)
    ("sequential -> leader", "p50 ms", "sequential_leader.latency.p50_ms", "sequential_p50"),
    ("", "p90 ms", "sequential_leader.latency.p90_ms", None),
    ("", "p99 ms", "sequential_leader.latency.p99_ms", None),
    ("", "max ms", "sequential_leader.latency.max_ms", None),
    ("sequential -> follower", "p50 ms", "sequential_follower.latency.p50_ms", None),
    ("", "p90 ms", "sequential_follower.latency.p90_ms", None),
    ("", "p99 ms", "sequential_follower.latency.p99_ms", None),
    ("", "max ms", "sequential_follower.latency.max_ms", None),
    (
        "{clients} clients -> leader",
        "writes/s",
        "concurrent.throughput_per_s",
        "concurrent_throughput",
    ),
    ("", "p50 ms", "concurrent.latency.p50_ms", None),
    ("", "p99 ms", "concurrent.latency.p99_ms", None),
    ("pipelined, {window} in flight", "writes/s", "pipelined.throughput_per_s", None),
    ("", "p50 ms", "pipelined.latency.p50_ms", None),
    ("failover ({rounds} leader kills)", "min ms", "failover.summary.min_ms", None),
    ("", "median ms", "failover.summary.median_ms", "failover_median"),
    ("", "max ms", "failover.summary.max_ms", None),
    ("elections without a fault", "count", "elections_without_fault.count", None),
)


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"


def _systems(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, doc)
        for name, doc in run.get("systems", {}).items()
        if isinstance(doc, dict) and "skipped" not in doc and "error" not in doc
    ]


def render_run(run: dict[str, Any], params: dict[str, Any]) -> str:
    systems = _systems(run)
    names = [n for n, _ in systems]
    compared = "kubelab" in names and "etcd" in names
    fill = {
        "clients": params.get("clients"),
        "window": params.get("window"),
        "rounds": params.get("rounds"),
    }
    title = (
        f"quorum benchmark: {run['masters']} members, {run['timers']} timers (heartbeat "
        f"{run['heartbeat_ms']} ms, election timeout {run['election_ms']} ms), "
        f"{_size(params.get('value_size', 1024))} values, fsync on"
    )
    header = ["", "", *names]
    if compared:
        header += ["kubelab/etcd", "target"]
    rows = []
    for group, what, dotted, target_key in HEADLINE:
        path = tuple(dotted.split("."))
        row = [group.format(**fill), what, *(_fmt(_get(d, *path)) for _, d in systems)]
        if compared:
            key = _ratio_key(path)
            row.append(_fmt(_get(run, "comparison", "ratios", key)) if key else "")
            t = _get(run, "comparison", "targets", target_key) if target_key else None
            row.append(f"{t['target']} {'met' if t['met'] else 'missed'}" if t else "")
        rows.append(row)
    out = [title, table(header, rows, left=2)]
    for name, doc in run.get("systems", {}).items():
        if isinstance(doc, dict) and ("skipped" in doc or "error" in doc):
            out.append(f"{name}: {doc.get('skipped') or doc.get('error')}")
    for name, doc in systems:
        busy = doc.get("busy_max") or {}
        if any(busy.values()):
            seen = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in busy.items() if v)
            out.append(f"note: the machine was shared while {name} ran (up to {seen})")
    out.append("")
    out.append(_profile_table(systems))
    out.append("")
    out.append(_load_table(systems, fill))
    return "\n".join(out)


def _ratio_key(path: tuple[str, ...]) -> str | None:
    phase, *rest = path
    if phase in ("sequential_leader", "sequential_follower") and rest[0] == "latency":
        return f"{phase}_{rest[1].removesuffix('_ms')}"
    if phase in ("concurrent", "pipelined") and rest[0] == "throughput_per_s":
        return f"{phase}_throughput"
    if phase == "concurrent" and rest[0] == "latency":
        return f"concurrent_{rest[1].removesuffix('_ms')}"
    if phase == "failover":
        return f"failover_{rest[1].removesuffix('_ms')}"
    return None


def _profile_table(systems: list[tuple[str, dict[str, Any]]]) -> str:
    steps: list[str] = []
    for _, d in systems:
        for path in ("leader", "follower"):
            for s in _get(d, "profile", path) or []:
                if s["step"] not in steps:
                    steps.append(s["step"])
    header = ["per-write profile, sequential writes (ms)"]
    header += [f"{n} -> leader" for n, _ in systems]
    header += [f"{n} -> follower" for n, _ in systems]
    rows = []
    for step in steps:
        row = [step]
        for path in ("leader", "follower"):
            for _, d in systems:
                found = [s for s in _get(d, "profile", path) or [] if s["step"] == step]
                if not found:
                    row.append("")
                elif found[0]["ms"] is not None:
                    row.append(_fmt(found[0]["ms"], 3))
                else:
                    row.append("-" if found[0]["how"].startswith("not applicable") else "n/m")
        rows.append(row)
    note = (
        "n/m: not measurable from outside (the JSON says why for each step); "
        "derived steps are differences of measured ones"
    )
    return table(header, rows) + "\n" + note


def _load_table(systems: list[tuple[str, dict[str, Any]]], fill: dict[str, Any]) -> str:
    def leader(d: dict[str, Any], phase: str) -> dict[str, Any]:
        members = _get(d, phase, "members") or {}
        return next((m for m in members.values() if m.get("role") == "leader"), {})

    def per_fsync(d: dict[str, Any], phase: str) -> float | None:
        pw = _get(leader(d, phase), "fsync", "per_write")
        return round(1 / pw, 2) if pw else None

    lines: list[tuple[str, Any]] = [
        ("writes per leader fsync", per_fsync),
        ("leader fsync mean ms", lambda d, ph: _get(leader(d, ph), "fsync", "mean_ms")),
        ("leader CPU ms/write", lambda d, ph: leader(d, ph).get("cpu_ms_per_write")),
        ("all members CPU ms/write", lambda d, ph: _get(d, ph, "server_cpu_ms_per_write")),
        ("client CPU ms/write", lambda d, ph: _get(d, ph, "client_cpu_ms_per_write")),
    ]
    phases = (
        ("sequential_leader", "seq"),
        ("concurrent", f"{fill['clients']} clients"),
        ("pipelined", "pipelined"),
    )
    header = ["where the time goes"]
    header += [f"{n} {label}" for _, label in phases for n, _ in systems]
    rows = []
    for name, fn in lines:
        rows.append([name, *(_fmt(fn(d, ph), 3) for ph, _ in phases for _, d in systems)])
    return table(header, rows)


def render(doc: dict[str, Any]) -> str:
    params = doc.get("parameters", {})
    parts = [render_run(run, params) for run in doc.get("runs", [])]
    return "\n\n".join(parts)
