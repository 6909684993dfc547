"""Reading a running member from outside: Prometheus `/metrics`, `/proc` CPU times.

Everything here only reads. Metrics are flattened to `{"name{labels}": value}` (the sample
line's text before the value), so a counter, a gauge or one histogram series is one key.
"""

from __future__ import annotations

import contextlib
import http.client
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "HistDelta",
    "Samples",
    "counter_delta",
    "hist_delta",
    "http_get",
    "parse_prometheus",
    "proc_cpu_seconds",
    "scrape",
    "series_total",
]

Samples = Mapping[str, float]
_TICKS = os.sysconf("SC_CLK_TCK")


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes] | None:
    """(status, body) of a plain-HTTP GET, or None if the server does not answer in time."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample lines of the Prometheus text format as `{"name{labels}": value}`."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if not key:
            continue
        if key.endswith("}") or " " not in key:
            name = key
        else:  # "name value timestamp": drop the timestamp
            name, _, value = key.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name.strip()] = float(value)
    return out


def scrape(url: str, timeout: float = 1.0) -> dict[str, float] | None:
    """The parsed `/metrics` page at `url`, or None if it does not answer in time."""
    got = http_get(url, timeout)
    if got is None or got[0] != 200:
        return None
    return parse_prometheus(got[1].decode(errors="replace"))


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads), from /proc."""
    if pid is None:
        return None
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def series_total(samples: Samples | None, name: str) -> float | None:
    """The value of sample `name`, summed over all its label sets; None if it is absent."""
    if samples is None:
        return None
    total, found = 0.0, False
    prefix = name + "{"
    for key, value in samples.items():
        if key == name or key.startswith(prefix):
            total += value
            found = True
    return total if found else None


def counter_delta(before: Samples | None, after: Samples | None, name: str) -> float | None:
    """How much counter `name` (all label sets together) grew between two scrapes; a series
    absent before counts from 0. None if `after` does not have it."""
    a = series_total(after, name)
    if a is None:
        return None
    return a - (series_total(before, name) or 0.0)


@dataclass(frozen=True)
class HistDelta:
    """What a histogram recorded between two scrapes: observations and their mean."""

    count: float
    sum_s: float

    @property
    def mean_ms(self) -> float | None:
        return round(self.sum_s / self.count * 1000, 3) if self.count > 0 else None


def hist_delta(before: Samples | None, after: Samples | None, base: str) -> HistDelta | None:
    """The observations of histogram `base` (`base_count`, `base_sum`) between scrapes."""
    count = counter_delta(before, after, f"{base}_count")
    total = counter_delta(before, after, f"{base}_sum")
    if count is None or total is None:
        return None
    return HistDelta(count, total)
