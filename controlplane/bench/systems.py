"""The systems under test: a kubelab cluster and, for comparison, an etcd cluster.

Both run as members on their own loopback addresses `127.C.0.(10+i)` (gRPC 2379, peers 2380,
plain-HTTP `/metrics` 2381) with their data in the benchmark's work directory, and both are
driven the way a user drives them:

- **kubelab** through the `kubelab` command (`up`, `start`, `down`) with `KUBELAB_HOME` in the
  work directory, so nothing is registered in the user's `~/.kubelab`. The SIGKILL of a
  failover round goes through the cluster's process table (the same pidfd path as `kubelab
  kill`), because the time of the kill must be known to the millisecond.
- **etcd** as child processes of the benchmark (`etcd` from PATH, never installed here),
  each in its own session.

`stop()` always ends every process the object started, whatever state the cluster is in.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.config import ClusterConfig, admin_token, load_config
from controlplane.procs import ProcRecord, cluster_table

from .probes import http_get

__all__ = [
    "OCTETS",
    "BenchError",
    "Cluster",
    "EtcdCluster",
    "KubelabCluster",
    "Member",
    "OctetPool",
    "etcd_binary",
    "etcd_version",
]

OCTETS = range(90, 96)
"""127.C.0.0/16 subnets this benchmark may use (C in 90-95)."""

KUBELAB_PUT = "/controlplane.apipb.KV/Put"
ETCD_PUT = "/etcdserverpb.KV/Put"
"""etcd's method; storepb's PutRequest/PutResponse are wire-compatible with etcdserverpb's."""

INSTALL_ETCD = "apt-get update && apt-get install -y etcd-server   # Debian/Ubuntu: etcd 3.4"

Say = Callable[[str], None]


class BenchError(Exception):
    """The benchmark cannot go on; the message says why and where to look."""


@dataclass(frozen=True)
class Member:
    name: str
    ip: str
    grpc_port: int = 2379
    health_port: int = 2381

    @property
    def endpoint(self) -> str:
        return f"{self.ip}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.ip}:{self.health_port}/metrics"


def _bindable(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


class OctetPool:
    """Subnets 127.C.0.0/16 for the benchmark's clusters, C in `OCTETS`.

    `claim` returns a C not in use by this run whose member addresses are free now, trying
    the octets after the last one claimed first, so a subnet just released is reused last
    (its ports may still be closing)."""

    def __init__(self) -> None:
        self.in_use: set[int] = set()
        self._next = 0

    def claim(self, members: int) -> int:
        n = len(OCTETS)
        for k in range(n):
            c = OCTETS.start + (self._next + k) % n
            if c in self.in_use:
                continue
            ips = [f"127.{c}.0.{10 + i}" for i in range(1, members + 1)]
            if all(_bindable(ip, p) for ip in ips for p in (2379, 2380, 2381)):
                self.in_use.add(c)
                self._next = (c - OCTETS.start + 1) % n
                return c
        raise BenchError(
            f"no free subnet 127.C.0.0/16 with C in {OCTETS.start}-{OCTETS.stop - 1}: other "
            "processes hold their ports (`ss -ltnp | grep ':238[01]'`); is another benchmark "
            "running?"
        )

    def release(self, c: int) -> None:
        self.in_use.discard(c)


class Cluster(ABC):
    """One system under test. Metric names are None where the system exposes no such thing."""

    system: str
    workdir: Path
    """The cluster's data and logs (under the benchmark's work directory)."""
    octet: int
    """C of the cluster's subnet 127.C.0.0/16."""
    put_method: str
    leader_gauge: str
    has_leader_gauge: str
    fsync_hist: str
    commit_hist: str | None = None
    term_gauge: str | None = None
    """None: the term comes from the `raft_term` of response headers."""
    elections_counter: str | None = None
    leader_changes_counter: str | None = None
    extra_hists: tuple[str, ...] = ()
    """Other histograms worth a mean in the profile (informative, off the write path)."""

    def __init__(self, members: Sequence[Member], heartbeat_ms: int, election_ms: int) -> None:
        self.members = tuple(members)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.metadata: tuple[tuple[str, str], ...] = ()

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    @abstractmethod
    def start(self, say: Say) -> None: ...

    @abstractmethod
    def stop(self) -> None:
        """End every process this object started (idempotent, never raises)."""

    @abstractmethod
    def kill(self, name: str) -> float:
        """SIGKILL member `name`; returns `time.perf_counter()` right after the signal."""

    @abstractmethod
    def restart(self, name: str) -> None:
        """Start a killed member again (returns once its process runs)."""

    @abstractmethod
    def pid(self, name: str) -> int | None: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]: ...


# -- kubelab -----------------------------------------------------------------------------------


def kubelab_toml(name: str, octet: int, data_dir: Path, masters: int, timers: str) -> str:
    text = (
        f'[cluster]\nname = "{name}"\nsubnet = "127.{octet}.0.0/16"\n'
        f'data_dir = "{data_dir}"\ntimers = "{timers}"\n'
    )
    return text + "".join(f'\n[[masters]]\nname = "master-{i}"\n' for i in range(1, masters + 1))


def kubelab_command() -> list[str]:
    """The `kubelab` console script of this interpreter's environment (or its equivalent)."""
    script = Path(sys.executable).with_name("kubelab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys\nfrom controlplane.cli import main\nsys.exit(main())"]


class KubelabCluster(Cluster):
    system = "kubelab"
    put_method = KUBELAB_PUT
    leader_gauge = "kubelab_raft_is_leader"
    has_leader_gauge = "kubelab_raft_has_leader"
    fsync_hist = "kubelab_wal_fsync_seconds"
    commit_hist = "kubelab_proposal_commit_seconds"
    term_gauge = "kubelab_raft_term"
    elections_counter = "kubelab_raft_elections_total"
    leader_changes_counter = "kubelab_raft_leader_changes_total"
    extra_hists = ("kubelab_event_loop_lag_seconds",)

    def __init__(self, workdir: Path, octet: int, masters: int, timers: str) -> None:
        self.workdir = workdir
        self.config_file = workdir / "cluster.toml"
        self.data_dir = workdir / "data"
        self.home = workdir / "home"
        workdir.mkdir(parents=True, exist_ok=True)
        self.octet = octet
        self.config_file.write_text(
            kubelab_toml(f"bench{octet}", octet, self.data_dir, masters, timers)
        )
        self.cfg: ClusterConfig = load_config(self.config_file)
        self.timers = timers
        members = [Member(m.name, m.ip, m.grpc_port, m.health_port) for m in self.cfg.masters]
        super().__init__(members, self.cfg.raft.heartbeat_ms, self.cfg.raft.election_ms)
        self.env = {k: v for k, v in os.environ.items() if k != "KUBELAB_CLUSTER"}
        self.env["KUBELAB_HOME"] = str(self.home)
        self._started = False
        self._killed: dict[str, ProcRecord] = {}

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        argv = [*kubelab_command(), "-c", str(self.config_file), *args]
        return subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
            raise BenchError(f"`kubelab {what}` exited {proc.returncode}:\n  " + "\n  ".join(out))

    def start(self, say: Say) -> None:
        ips = f"{self.members[0].ip}-{self.members[-1].ip.rsplit('.', 1)[1]}"
        say(f"starting kubelab: `kubelab up`, {len(self.members)} masters on {ips}")
        self._started = True
        self._check(self.cli("up", "--timeout", "60"), "up")
        self.cfg = load_config(self.cfg.stored_config)
        token = admin_token(self.cfg)
        self.metadata = (("authorization", f"Bearer {token}"),)

    def stop(self) -> None:
        if not self._started:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.cli("down", timeout=60)
        # The safety net: whatever `down` could not stop (it failed, or was interrupted).
        table = cluster_table(self.cfg)
        table.stop(table.names(), grace_s=2.0)

    def kill(self, name: str) -> float:
        table = cluster_table(self.cfg)
        rec = table.find(name)
        if rec is None or not table.send(rec, signal.SIGKILL):
            raise BenchError(f"kubelab {name} is not running: cannot kill it")
        t = time.perf_counter()
        self._killed[name] = rec
        return t

    def restart(self, name: str) -> None:
        rec = self._killed.pop(name, None)
        if rec is not None:
            cluster_table(self.cfg).wait_dead(rec, 5.0)
        self._check(self.cli("start", name), f"start {name}")

    def pid(self, name: str) -> int | None:
        rec = cluster_table(self.cfg).find(name)
        return rec.pid if rec else None

    def describe(self) -> dict[str, Any]:
        return {
            "system": "kubelab",
            "members": [m.name for m in self.members],
            "subnet": str(self.cfg.subnet),
            "data_dir": str(self.data_dir),
            "raft": self.cfg.raft.to_dict(),
            "timers": self.timers,
        }


# -- etcd --------------------------------------------------------------------------------------


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def etcd_version(binary: str) -> str | None:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"etcd Version:\s*(\S+)", out)
    return m.group(1) if m else None


class EtcdCluster(Cluster):
    system = "etcd"
    put_method = ETCD_PUT
    leader_gauge = "etcd_server_is_leader"
    has_leader_gauge = "etcd_server_has_leader"
    fsync_hist = "etcd_disk_wal_fsync_duration_seconds"
    leader_changes_counter = "etcd_server_leader_changes_seen_total"
    extra_hists = ("etcd_disk_backend_commit_duration_seconds",)

    def __init__(
        self,
        workdir: Path,
        octet: int,
        members: int,
        *,
        binary: str,
        heartbeat_ms: int,
        election_ms: int,
        snapshot_count: int = 10_000,
    ) -> None:
        self.workdir = workdir
        self.binary = binary
        self.octet = octet
        self.snapshot_count = snapshot_count
        ms = [Member(f"etcd-{i}", f"127.{octet}.0.{10 + i}") for i in range(1, members + 1)]
        super().__init__(ms, heartbeat_ms, election_ms)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def argv(self, m: Member) -> list[str]:
        initial = ",".join(f"{o.name}=http://{o.ip}:2380" for o in self.members)
        return [
            self.binary,
            "--name", m.name,
            "--data-dir", str(self.workdir / m.name),
            "--listen-client-urls", f"http://{m.ip}:{m.grpc_port}",
            "--advertise-client-urls", f"http://{m.ip}:{m.grpc_port}",
            "--listen-peer-urls", f"http://{m.ip}:2380",
            "--initial-advertise-peer-urls", f"http://{m.ip}:2380",
            "--listen-metrics-urls", f"http://{m.ip}:{m.health_port}",
            "--initial-cluster", initial,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"kubelab-bench-{self.octet}",
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--pre-vote",
            "--snapshot-count", str(self.snapshot_count),
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip

    def _spawn(self, m: Member) -> None:
        log = open(self.workdir / f"{m.name}.log", "ab")  # noqa: SIM115 (the child owns it)
        try:
            self.procs[m.name] = subprocess.Popen(
                self.argv(m),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C is ours to handle; we stop it ourselves
            )
        finally:
            log.close()

    def start(self, say: Say) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        say(
            f"starting etcd: {len(self.members)} members on {self.members[0].ip}-"
            f"{self.members[-1].ip.rsplit('.', 1)[1]} (heartbeat {self.heartbeat_ms} ms, "
            f"election timeout {self.election_ms} ms, pre-vote)"
        )
        for m in self.members:
            self._spawn(m)
        deadline = time.monotonic() + 30
        for m in self.members:
            while True:
                proc = self.procs[m.name]
                if proc.poll() is not None:
                    raise BenchError(
                        f"etcd {m.name} exited with code {proc.returncode}; its log is "
                        f"{self.workdir / (m.name + '.log')}"
                    )
                got = http_get(f"http://{m.ip}:{m.grpc_port}/health", 0.5)
                if got is not None and got[0] == 200 and b"true" in got[1]:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"etcd {m.name} not healthy within 30 s; see its log")
                time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def kill(self, name: str) -> float:
        self.procs[name].send_signal(signal.SIGKILL)
        return time.perf_counter()

    def restart(self, name: str) -> None:
        self.procs[name].wait()
        self._spawn(self.member(name))

    def pid(self, name: str) -> int | None:
        p = self.procs.get(name)
        return p.pid if p is not None and p.poll() is None else None

    def describe(self) -> dict[str, Any]:
        return {
            "system": "etcd",
            "version": etcd_version(self.binary),
            "binary": self.binary,
            "members": [m.name for m in self.members],
            "subnet": f"127.{self.octet}.0.0/16",
            "data_dir": str(self.workdir),
            "argv_member_1": self.argv(self.members[0]),
        }
