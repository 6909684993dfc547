"""Processes of a cluster: start them detached, find them again, signal them, only our own.

A cluster's processes outlive the `kubelab` command that started them, so each is found
again through its pid file `<run_dir>/<name>.pid` (JSON: pid, start time, argv, log file).

Decisions:

- **Identity is (pid, start time).** The start time (field 22 of `/proc/<pid>/stat`, in clock
  ticks since boot) of a pid never repeats within a boot, so a recycled pid is never taken
  for ours. A process is *ours* only if, in addition, its command line is exactly the argv we
  started it with and names the cluster's data dir (the table's `marker`). For a master that
  means `-m controlplane --config <data_dir>/cluster.toml`, so the rule covers "cmdline
  contains controlplane and the data dir" and also works for the kubelet and the front door to
  come. Consequence: our processes must not rewrite their argv (no setproctitle).
- **Signals go through a pidfd** opened *before* the identity check (`os.pidfd_open`, Linux
  5.3+), so a pid recycled between the check and the signal cannot receive it. Without pidfd
  support, `os.kill` right after the check.
- **Start is `os.posix_spawnp` with `setsid`**: a new session, so Ctrl-C in the user's
  terminal does not reach the cluster and closing the terminal does not hang it up; stdin from
  /dev/null; stdout and stderr appended to the log file, after a header line naming the argv.
  No `Popen` object, hence no ResourceWarning for a child that is meant to outlive us.
- **State** comes from the state letter in `/proc/<pid>/stat`: `T`/`t` paused (SIGSTOP),
  `Z`/`X` or no such process dead, anything else running. A zombie that is our own child (in
  tests, or `kubelab restart` within one command) is reaped and its exit status kept. While a
  process execs (`posix_spawn` returns before the kernel shows the new argv) or exits (memory
  gone, files not yet closed), its command line reads empty: `probe` waits for it to settle,
  so "dead" always means the process is gone or a zombie, with its ports released.
- Starting takes an flock on the run dir, so two concurrent `kubelab start` cannot both
  launch a member.
- Errors are `NotRunning` and `AlreadyRunning` (both `ProcessError`); the CLI words them.
- **Fake workers live in one process**, `fakenodes` (`python -m kubelet.fakenodes`), which
  hosts every worker whose runtime is "fake". Chaos on one fake node cannot be a signal, so
  that process listens on `<run_dir>/fakenodes.sock` for one JSON object per line
  (`{"op": "kill", "node": "worker-2"}`) and answers one per line (`{"ok": true, ...}`);
  `control_call` is the client, with a deadline (a paused process accepts, never answers).
  A Unix socket path is limited to 107 bytes: a longer one is reached through
  `/proc/self/fd/<dir fd>/<name>` (`unix_socket_address`).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config imports this module (to find running clusters)
    from controlplane.config import ClusterConfig, MasterSpec, WorkerSpec

__all__ = [
    "FAKENODES",
    "AlreadyRunning",
    "ControlError",
    "NotRunning",
    "ProcRecord",
    "ProcState",
    "ProcessError",
    "ProcessTable",
    "cluster_alive",
    "cluster_table",
    "control_call",
    "fake_workers",
    "fakenodes_argv",
    "fakenodes_log",
    "fakenodes_socket",
    "master_argv",
    "master_has_state",
    "start_fakenodes",
    "start_master",
    "unix_socket_address",
]

_POLL_S = 0.02
_SETTLE_S = 0.5
"""How long `probe` waits for an empty command line (exec or exit in progress) to settle."""


class ProcState(enum.StrEnum):
    """What `kubelab status` shows for a process."""

    RUNNING = "running"
    PAUSED = "paused"
    DEAD = "dead"

    @property
    def alive(self) -> bool:
        """DESIGN.md: `alive` = the process exists and is not stopped."""
        return self is ProcState.RUNNING


@dataclass(frozen=True)
class ProcRecord:
    """What a pid file says about a process we started."""

    name: str
    pid: int
    start_time: int
    argv: tuple[str, ...]
    log_file: str = ""

    @property
    def exit_code(self) -> int | None:
        """Exit code (negative: killed by that signal), if this process reaped it."""
        return _EXIT_CODES.get((self.pid, self.start_time))


class ProcessError(Exception):
    """A process operation cannot be done; the message says why."""


class NotRunning(ProcessError):
    """The named process is not running (dead, never started, or not ours)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not running")
        self.name = name


class AlreadyRunning(ProcessError):
    """The named process is already running or paused."""

    def __init__(self, record: ProcRecord, state: ProcState) -> None:
        super().__init__(f"{record.name} is already {state} (pid {record.pid})")
        self.record = record
        self.state = state


_EXIT_CODES: dict[tuple[int, int], int] = {}
"""Exit codes of children this process reaped, by (pid, start time)."""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of `pid`, or None if there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) is in parentheses and may itself contain spaces or parentheses.
    rest = data[data.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        data = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(a.decode(errors="replace") for a in data.split(b"\0")[:-1])


def _reap(rec: ProcRecord) -> None:
    """Collect the exit status if `rec` is a zombie child of this process."""
    try:
        pid, status = os.waitpid(rec.pid, os.WNOHANG)
    except ChildProcessError:
        return
    if pid == rec.pid:
        _EXIT_CODES[(rec.pid, rec.start_time)] = os.waitstatus_to_exitcode(status)


class ProcessTable:
    """The processes recorded in one run dir, acting only on those that are provably ours.

    `marker` (the cluster's data dir) must appear in the argv of every process started here.
    """

    def __init__(self, run_dir: Path, marker: str) -> None:
        self.run_dir = Path(run_dir)
        self.marker = marker

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def names(self) -> list[str]:
        """Names with a pid file, sorted."""
        if not self.run_dir.is_dir():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def record(self, name: str) -> ProcRecord | None:
        """The pid file's content (None if absent or unreadable); says nothing about liveness."""
        try:
            d = json.loads(self.pid_file(name).read_text())
            return ProcRecord(
                name=name,
                pid=int(d["pid"]),
                start_time=int(d["start_time"]),
                argv=tuple(str(a) for a in d["argv"]),
                log_file=str(d.get("log_file", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def probe(self, rec: ProcRecord) -> ProcState:
        """The state of `rec`'s process; DEAD if it is gone or is not ours any more."""
        deadline = time.monotonic() + _SETTLE_S
        while True:
            st = _stat(rec.pid)
            if st is None or st[1] != rec.start_time:
                return ProcState.DEAD
            letter = st[0]
            if letter in ("Z", "X"):
                _reap(rec)
                return ProcState.DEAD
            cmdline = _cmdline(rec.pid)
            # An empty command line means the kernel is between states: finishing an exec
            # (posix_spawn returns before the new argv is visible) or tearing down an exiting
            # process whose memory is gone but whose files are not closed yet. Look again.
            if cmdline or time.monotonic() >= deadline:
                break
            time.sleep(0.002)
        if cmdline != rec.argv or not any(self.marker in a for a in cmdline or ()):
            return ProcState.DEAD
        return ProcState.PAUSED if letter in ("T", "t") else ProcState.RUNNING

    def lookup(self, name: str) -> tuple[ProcState, ProcRecord | None]:
        """(state, record); the record is None unless the process is ours and not dead."""
        rec = self.record(name)
        if rec is None:
            return ProcState.DEAD, None
        state = self.probe(rec)
        return state, (rec if state is not ProcState.DEAD else None)

    def state(self, name: str) -> ProcState:
        return self.lookup(name)[0]

    def find(self, name: str) -> ProcRecord | None:
        """Our live (running or paused) process called `name`, if any."""
        return self.lookup(name)[1]

    # -- start ---------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> ProcRecord:
        """Start `argv` detached (new session), output appended to `log_file`; record it.

        `AlreadyRunning` if our process `name` is running or paused. `OSError` if the
        program cannot be executed. The returned process may still exit at once: callers
        that care check `probe` a moment later (and `exit_code`).
        """
        if not argv or not any(self.marker in a for a in argv):
            raise ValueError(f"argv of {name} must name {self.marker!r}: {list(argv)}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state, current = self.lookup(name)
            if current is not None:
                raise AlreadyRunning(current, state)
            child_env = dict(os.environ if env is None else env)
            child_env.setdefault("PYTHONUNBUFFERED", "1")
            out = _open_high(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            devnull = _open_high(Path(os.devnull), os.O_RDONLY)
            try:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                os.write(
                    out, f"--- {stamp} kubelab: starting {name}: {shlex.join(argv)}\n".encode()
                )
                pid = os.posix_spawnp(
                    argv[0],
                    list(argv),
                    child_env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, devnull, 0),
                        (os.POSIX_SPAWN_DUP2, out, 1),
                        (os.POSIX_SPAWN_DUP2, out, 2),
                    ],
                    setsid=True,
                )
            finally:
                os.close(out)
                os.close(devnull)
            st = _stat(pid)
            if st is None:  # cannot happen for our unreaped child; be safe
                raise ProcessError(f"{name} (pid {pid}) vanished right after start")
            rec = ProcRecord(name, pid, st[1], tuple(argv), str(log_file))
            body = {
                "name": name,
                "pid": pid,
                "start_time": rec.start_time,
                "argv": list(argv),
                "log_file": str(log_file),
                "started_at": stamp,
            }
            tmp = self.pid_file(name).with_suffix(".tmp")
            tmp.write_text(json.dumps(body) + "\n")
            tmp.replace(self.pid_file(name))
            return rec

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- signals -------------------------------------------------------------------------

    def send(self, rec: ProcRecord, sig: int) -> bool:
        """Send `sig` to `rec`'s process if it is still ours; False if it is not."""
        fd: int | None = None
        try:
            fd = os.pidfd_open(rec.pid)
        except ProcessLookupError:
            return False
        except OSError:  # kernel without pidfd: check, then os.kill
            fd = None
        try:
            if self.probe(rec) is ProcState.DEAD:
                return False
            if fd is not None:
                signal.pidfd_send_signal(fd, sig)
            else:
                os.kill(rec.pid, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            if fd is not None:
                os.close(fd)

    def wait_dead(self, rec: ProcRecord, timeout_s: float) -> bool:
        """Wait until `rec`'s process is dead; False if it still lives after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.probe(rec) is not ProcState.DEAD:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def _live(self, name: str) -> ProcRecord:
        rec = self.find(name)
        if rec is None:
            raise NotRunning(name)
        return rec

    def kill(self, name: str, *, wait_s: float = 2.0) -> ProcRecord:
        """SIGKILL (works on a paused process too) and wait up to `wait_s` for the death."""
        rec = self._live(name)
        if self.send(rec, signal.SIGKILL):
            self.wait_dead(rec, wait_s)
        return rec

    def pause(self, name: str) -> ProcRecord:
        """SIGSTOP. `NotRunning` if dead; a no-op on a paused process."""
        rec = self._live(name)
        self.send(rec, signal.SIGSTOP)
        deadline = time.monotonic() + 1.0  # the state letter changes asynchronously
        while self.probe(rec) is ProcState.RUNNING and time.monotonic() < deadline:
            time.sleep(_POLL_S / 4)
        return rec

    def resume(self, name: str) -> ProcRecord:
        """SIGCONT. `NotRunning` if dead; a no-op on a running process."""
        rec = self._live(name)
        self.send(rec, signal.SIGCONT)
        deadline = time.monotonic() + 1.0
        while self.probe(rec) is ProcState.PAUSED and time.monotonic() < deadline:
            time.sleep(_POLL_S / 4)
        return rec

    def stop(self, names: Sequence[str], *, grace_s: float = 5.0) -> list[tuple[ProcRecord, str]]:
        """Terminate the named processes together and remove their pid files.

        SIGTERM then SIGCONT (a paused process must run to handle it), up to `grace_s` for
        all to exit, then SIGKILL for the rest. Returns (record, "terminated" | "killed")
        for each process that was alive; pid files of dead ones are just removed.
        """
        live = [rec for rec in (self.find(n) for n in names) if rec is not None]
        for rec in live:
            if self.send(rec, signal.SIGTERM):
                self.send(rec, signal.SIGCONT)
        deadline = time.monotonic() + grace_s
        how: dict[str, str] = {}
        for rec in live:
            if self.wait_dead(rec, max(0.0, deadline - time.monotonic())):
                how[rec.name] = "terminated"
            else:
                self.send(rec, signal.SIGKILL)
                how[rec.name] = "killed"
        for rec in live:
            if how[rec.name] == "killed":
                self.wait_dead(rec, 2.0)
        for name in names:
            self.forget(name)
        return [(rec, how[rec.name]) for rec in live]

    def forget(self, name: str) -> None:
        """Remove `name`'s pid file (no signal is sent)."""
        self.pid_file(name).unlink(missing_ok=True)


def _open_high(path: Path, flags: int) -> int:
    """Open `path` close-on-exec at fd >= 3, so that dup2 onto 0-2 never is a no-op."""
    fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    if fd >= 3:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


# -- a cluster's processes ---------------------------------------------------------------------


def cluster_table(cfg: ClusterConfig) -> ProcessTable:
    """The process table of `cfg`'s cluster (pid files in `cfg.run_dir`)."""
    return ProcessTable(cfg.run_dir, marker=str(cfg.data_dir))


def cluster_alive(cfg: ClusterConfig) -> bool:
    """Whether any recorded process of the cluster is ours and running or paused."""
    table = cluster_table(cfg)
    return any(table.state(n) is not ProcState.DEAD for n in table.names())


def master_argv(cfg: ClusterConfig, spec: MasterSpec, *, initial_cluster: bool) -> list[str]:
    """The master's command line: `python -m controlplane --config FILE --name NAME`.

    `--initial-cluster` lets a master with an empty data dir bootstrap; `kubelab up` passes
    it only when no master of the cluster has any state yet.
    """
    argv = [sys.executable, "-m", "controlplane", "--config", str(cfg.stored_config)]
    argv += ["--name", spec.name]
    if initial_cluster:
        argv.append("--initial-cluster")
    return argv


def start_master(
    cfg: ClusterConfig,
    spec: MasterSpec,
    *,
    initial_cluster: bool,
    argv: Sequence[str] | None = None,
) -> ProcRecord:
    """Start master `spec` (output to `spec.log_file`); `argv` replaces the command (tests)."""
    command = (
        list(argv) if argv is not None else master_argv(cfg, spec, initial_cluster=initial_cluster)
    )
    return cluster_table(cfg).start(spec.name, command, log_file=spec.log_file)


def master_has_state(spec: MasterSpec) -> bool:
    """Whether the master's data dir holds a Raft log (the master's own test for "empty")."""
    # DiskStorage decides what a member's state is; imported only here so that commands
    # which never start a master (status, kill, ...) do not pay for protobuf.
    from controlplane.raftnode.disk import DiskStorage  # noqa: PLC0415

    return DiskStorage.exists(spec.data_dir)


# -- fake workers: the `fakenodes` process and its control socket -------------------------------

FAKENODES = "fakenodes"
"""Process name (pid file `<run_dir>/fakenodes.pid`) of the host of every fake worker."""

CONTROL_TIMEOUT_S = 1.0
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with the NUL; keep a margin


class ControlError(ProcessError):
    """The fakenodes control socket could not be used (absent, refused, no answer in time,
    an answer that is not JSON); the message says which."""


def fake_workers(cfg: ClusterConfig) -> tuple[WorkerSpec, ...]:
    """The workers whose runtime is "fake", in file order (all hosted by `fakenodes`)."""
    return tuple(w for w in cfg.workers if w.runtime == "fake")


def fakenodes_argv(cfg: ClusterConfig) -> list[str]:
    """`python -m kubelet.fakenodes --config <data_dir>/cluster.toml` (names the data dir,
    so the process table recognises it as the cluster's own)."""
    return [sys.executable, "-m", "kubelet.fakenodes", "--config", str(cfg.stored_config)]


def fakenodes_log(cfg: ClusterConfig) -> Path:
    return cfg.data_dir / "fakenodes.log"


def fakenodes_socket(cfg: ClusterConfig) -> Path:
    """The control socket of the `fakenodes` process."""
    return cfg.run_dir / "fakenodes.sock"


def start_fakenodes(cfg: ClusterConfig, *, argv: Sequence[str] | None = None) -> ProcRecord:
    """Start the host of the fake workers (output to `fakenodes_log`); `argv` replaces the
    command (tests). `AlreadyRunning` if it runs."""
    command = list(argv) if argv is not None else fakenodes_argv(cfg)
    return cluster_table(cfg).start(FAKENODES, command, log_file=fakenodes_log(cfg))


@contextlib.contextmanager
def unix_socket_address(path: Path) -> Iterator[str]:
    """An address for `bind`/`connect` of the Unix socket `path`, valid inside the block:
    the path itself, or `/proc/self/fd/<fd of its directory>/<name>` when it is too long
    for `sun_path` (deep temporary directories)."""
    text = str(path)
    if len(os.fsencode(text)) <= _MAX_SOCKET_PATH:
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def control_call(
    path: Path, request: Mapping[str, object], *, timeout_s: float = CONTROL_TIMEOUT_S
) -> dict[str, Any]:
    """Send one JSON request line to the control socket at `path`, return the answer's
    JSON object; `ControlError` when there is no answer within `timeout_s` (connect, send
    and read together) or it is not a JSON object."""
    deadline = time.monotonic() + timeout_s
    line = json.dumps(dict(request)).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(timeout_s)
            with unix_socket_address(path) as address:
                sock.connect(address)
            sock.sendall(line)
            data = b""
            while not data.endswith(b"\n"):
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except FileNotFoundError:
            raise ControlError(f"{path} does not exist") from None
        except TimeoutError:
            raise ControlError(f"{path}: no answer within {timeout_s:g} s") from None
        except OSError as e:
            raise ControlError(f"{path}: {e.strerror or e}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError(f"{path}: the answer is not JSON: {data[:200]!r}") from None
    if not isinstance(answer, dict):
        raise ControlError(f"{path}: the answer is not a JSON object: {data[:200]!r}")
    return answer
