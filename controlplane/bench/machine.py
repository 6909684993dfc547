"""The machine a benchmark runs on: hardware, load, the work directory's fsync latency.

Recorded with every result, because a figure means little without the machine behind it,
and this machine is shared: `other_activity` counts the masters, test runs and etcd
processes that are not the benchmark's own.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from . import stats

__all__ = ["fsync_probe", "machine_info", "other_activity"]


def machine_info(workdir: Path) -> dict[str, Any]:
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "memory_mb": _mem_total_mb(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "workdir": str(workdir),
        "workdir_filesystem": _filesystem(workdir),
        "workdir_fsync_ms": fsync_probe(workdir),
        "kubelab_git": _git_revision(),
        "busy_at_start": other_activity(workdir),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _mem_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _filesystem(path: Path) -> str | None:
    best, fstype = "", None
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, fstype = parts[1], f"{parts[2]} on {parts[1]}"
    return fstype


def fsync_probe(workdir: Path, n: int = 50) -> dict[str, float | int]:
    """Latency of a 1 KiB append + fdatasync in the work directory: the floor under both
    systems' sequential writes."""
    path = workdir / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        block = b"x" * 1024
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            samples.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return stats.summarize_latencies(samples)


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def other_activity(workdir: Path) -> dict[str, int]:
    """Other masters and test runs on the machine (their load skews the figures)."""
    masters = tests = etcds = 0
    mine = str(workdir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if mine in cmd:
            continue
        if b"controlplane\0--config" in cmd:
            masters += 1
        elif b"pytest" in cmd:
            tests += 1
        elif cmd.split(b"\0", 1)[0].endswith(b"etcd"):
            etcds += 1
    return {"other_masters": masters, "pytest_processes": tests, "other_etcd": etcds}
