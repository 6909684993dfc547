"""A hand-written SVG of latency CDFs, one panel per configuration (no plotting library).

Each panel: x = latency in ms on a log scale, y = fraction of writes at or below it; one
line per system and phase, colour by system, dash pattern by phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from . import stats

__all__ = ["cdf_svg"]

COLORS = {"kubelab": "#1f77b4", "etcd": "#d62728"}
EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b")
DASHES = {
    "sequential_leader": "",
    "sequential_follower": "7,4",
    "concurrent": "2,3",
    "pipelined": "10,3,2,3",
}
LABELS = {
    "sequential_leader": "sequential -> leader",
    "sequential_follower": "sequential -> follower",
    "concurrent": "concurrent clients",
    "pipelined": "pipelined",
}

W, PANEL_H = 860, 330
LEFT, RIGHT, TOP, BOTTOM = 60, 250, 34, 44


def _ticks(lo: float, hi: float) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if lo <= v <= hi:
                out.append(v)
    return out


def _nice(x: float, *, down: bool) -> float:
    """The nearest 1, 2 or 5 x 10^k below (`down`) or above `x`."""
    e = math.floor(math.log10(x))
    steps = [m * 10.0**k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return max(v for v in steps if v <= x) if down else min(v for v in steps if v >= x)


def cdf_svg(panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]) -> str:
    """`panels[title][system][phase]` = latencies in seconds; returns the SVG document."""
    height = PANEL_H * max(1, len(panels))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
    ]
    for k, (title, systems) in enumerate(panels.items()):
        parts.append(_panel(title, systems, k * PANEL_H))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(title: str, systems: Mapping[str, Mapping[str, Sequence[float]]], y0: float) -> str:
    pw, ph = W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM
    curves = {
        (sysname, phase): stats.cdf_points(lat, 300)
        for sysname, phases in systems.items()
        for phase, lat in phases.items()
        if lat
    }
    xs = [x for pts in curves.values() for x, _ in pts if x > 0]
    out = [
        f'<text x="{LEFT}" y="{y0 + 20}" font-size="13" font-weight="bold">'
        f"write latency CDF: {escape(title)}</text>"
    ]
    if not xs:
        out.append(f'<text x="{LEFT}" y="{y0 + 60}">no latencies</text>')
        return "\n".join(out)
    lo, hi = _nice(min(xs), down=True), _nice(max(xs), down=False)
    if hi <= lo:
        hi = lo * 10
    llo, lhi = math.log10(lo), math.log10(hi)

    def px(x: float) -> float:
        return LEFT + (math.log10(max(x, lo)) - llo) / (lhi - llo) * pw

    def py(f: float) -> float:
        return y0 + TOP + (1 - f) * ph

    out.append(
        f'<rect x="{LEFT}" y="{y0 + TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>'
    )
    for t in _ticks(lo, hi):
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{y0 + TOP}" x2="{x:.1f}" y2="{y0 + TOP + ph}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{y0 + TOP + ph + 14}" text-anchor="middle">{t:g}</text>')
    for f in (0, 0.25, 0.5, 0.75, 0.9, 1):
        y = py(f)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{f:g}</text>')
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{y0 + PANEL_H - 10}" text-anchor="middle">'
        "latency (ms, log scale)</text>"
    )
    out.append(
        f'<text x="14" y="{y0 + TOP + ph / 2}" transform="rotate(-90 14 {y0 + TOP + ph / 2})" '
        'text-anchor="middle">fraction of writes</text>'
    )
    extra = iter(EXTRA_COLORS)
    colors = {s: COLORS.get(s) or next(extra, "#333") for s in systems}
    legend_y = y0 + TOP + 4
    for (sysname, phase), pts in curves.items():
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(f):.1f}" for i, (x, f) in enumerate(pts)
        )
        dash = DASHES.get(phase, "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        color = colors[sysname]
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"{dash_attr}/>')
        lx = LEFT + pw + 12
        out.append(
            f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 26}" y2="{legend_y}" stroke="{color}" '
            f'stroke-width="1.6"{dash_attr}/>'
        )
        label = f"{sysname}: {LABELS.get(phase, phase)}"
        out.append(f'<text x="{lx + 32}" y="{legend_y + 4}">{escape(label)}</text>')
        legend_y += 16
    return "\n".join(out)
