"""Helpers for tests that start processes: stand-in commands, cleanup, free loopback subnets.

No real master runs in these tests: stand-ins (a sleeper, `fakemaster.py`) go through the
same start path (`controlplane.procs`) with an injected command. Every stand-in's argv names
the cluster's data dir, as the real master's does, so the ownership checks stay strict.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FAKE_MASTER = Path(__file__).with_name("fakemaster.py")


def sleeper_argv(marker: Path | str, *, ignore_term: bool = False) -> list[str]:
    """A process that sleeps 60 s (ignoring SIGTERM if asked), its argv naming `marker`."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "time.sleep(60)\n"
    return [sys.executable, "-c", code, "controlplane", str(marker)]


def _start_time(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2 :].split()[19])


def kill_recorded(root: Path) -> int:
    """SIGKILL and reap every process recorded in a pid file under `root` that still has
    its recorded start time (whatever its state). Returns how many were killed."""
    killed = 0
    if not root.exists():
        return 0
    for pid_file in root.rglob("*.pid"):
        try:
            rec = json.loads(pid_file.read_text())
            pid, start = int(rec["pid"]), int(rec["start_time"])
        except (OSError, ValueError, KeyError):
            continue
        if _start_time(pid) != start:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return killed


_USED: set[int] = set()


def free_octet(masters: int = 5) -> int:
    """A C such that 127.C.0.(11..10+masters):2381 can be bound now (tests pick their own C)."""
    rng = random.Random()
    for _ in range(200):
        c = rng.randrange(20, 250)
        if c in _USED or c == 77:
            continue
        if all(_bindable(f"127.{c}.0.{10 + i}", 2381) for i in range(1, masters + 1)):
            _USED.add(c)
            return c
    raise RuntimeError("no free 127.C.0.0/16 found")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def processes_naming(marker: Path | str) -> list[int]:
    """Pids of live processes whose command line names `marker`."""
    needle = str(marker).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def cleanup(root: Path) -> list[int]:
    """End every process a test started under `root`: the recorded ones (expected: tests
    may leave members running), then any other process naming `root` (a leak: returned, so
    the fixture can fail the test after killing it)."""
    kill_recorded(root)
    leaked = processes_naming(root)
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return leaked


def interrupt_at(
    argv: list[str], env: dict[str, str], work: Path, marker: str, timeout: float = 120
) -> tuple[str, int | None, list[int], list[int]]:
    """Run `argv` (a benchmark working under `work`), send it SIGTERM once it prints a line
    containing `marker`, and collect what it printed. Returns (output, exit code, pids still
    naming `work` right after it exited, leaked pids that `cleanup` had to kill)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        assert processes_naming(work), f"no process of {work} was running at {marker!r}"
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        seen.append(rest)
        left = processes_naming(work)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leaked = cleanup(work)
    return "".join(seen), proc.returncode, left, leaked
