"""A real cluster of master processes for end-to-end tests, driven as a user drives it.

`running_cluster` writes a `cluster.toml` (own name, own subnet 127.C.0.0/16, own data dir
under a temporary directory, no workers), runs `kubelab up`, and always ends with `kubelab
down`, a SIGKILL of anything still recorded, and a check that no process of the cluster is
left. Actions go through the `kubelab` command (subprocesses, with `KUBELAB_HOME` in the
temporary directory); observations through each master's `/status` on its health port, and
the store through `KVClient`.

Every wait polls a condition against a deadline; a timeout says what it saw last.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from procfixtures import cleanup, processes_naming

from controlplane.apipb import api_pb2
from controlplane.client.kv import ClientError, KVClient, OutcomeUnknown
from controlplane.config import ClusterConfig, MasterSpec, admin_token, load_config
from controlplane.storepb import store_pb2

OCTETS = range(60, 80)
"""127.C.0.0/16 subnets reserved for these tests (the demo's is 10)."""

_CLAIMED: set[int] = set()

_KUBELAB = Path(sys.executable).with_name("kubelab")
KUBELAB: list[str] = (
    [str(_KUBELAB)]
    if _KUBELAB.exists()
    else [sys.executable, "-c", "import sys\nfrom controlplane.cli import main\nsys.exit(main())"]
)
"""The `kubelab` console script of this interpreter's environment."""

PROBE_TIMEOUT_S = 0.5

T = TypeVar("T")


def _subnet_free(octet: int) -> bool:
    """Whether every master port of 127.C.0.(11..15) can be bound now (as the masters bind
    them: with SO_REUSEADDR, so connections left in TIME_WAIT do not count)."""
    for i in range(1, 6):
        for port in (2379, 2380, 2381):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((f"127.{octet}.0.{10 + i}", port))
                except OSError as e:
                    if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                        return False
                    raise
    return True


def claim_octet(preferred: int) -> int:
    """`preferred` if its subnet is free, else another free C in 60-79 unused by this run."""
    candidates: list[int] = [preferred, *OCTETS]
    for c in candidates:
        if c in OCTETS and c not in _CLAIMED and _subnet_free(c):
            _CLAIMED.add(c)
            return c
    raise RuntimeError(
        f"no free 127.C.0.0/16 with C in {OCTETS.start}-{OCTETS.stop - 1}: another cluster "
        "holds them (`ss -ltnp | grep :2379`)"
    )


class Timeout(AssertionError):
    """A condition did not hold before its deadline."""


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.1,
    seen: Callable[[], object] | None = None,
) -> T:
    """Poll `probe` until it returns something else than None; `Timeout` after `timeout`,
    saying what `seen()` shows then."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            last = f"; seen: {seen()}" if seen is not None else ""
            raise Timeout(f"{what}: not within {timeout:g} s{last}")
        time.sleep(interval)


@dataclass(frozen=True)
class Leader:
    name: str
    term: int


class Cluster:
    """One running test cluster; see the module docstring."""

    def __init__(self, config_file: Path, home: Path) -> None:
        self.config_file = config_file
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k != "KUBELAB_CLUSTER"}
        self.env["KUBELAB_HOME"] = str(home)
        self.cfg: ClusterConfig = load_config(config_file)
        self.up_seconds: float | None = None
        """How long `kubelab up` took (for the run's figures)."""

    # -- the command line ----------------------------------------------------------------

    def cli(
        self, *args: str, check: bool = True, timeout: float = 90.0
    ) -> subprocess.CompletedProcess[str]:
        """`kubelab -c FILE ARGS...`; with `check`, a nonzero exit fails with its output."""
        argv = [*KUBELAB, "-c", str(self.config_file), *args]
        proc = subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`kubelab {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def status_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.cli("status", "--json").stdout)
        return doc

    def up(self) -> None:
        self.cli("up", "--timeout", "60")
        self.cfg = load_config(self.cfg.stored_config)  # the effective file, with its uid

    # -- members ---------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.cfg.masters]

    def spec(self, name: str) -> MasterSpec:
        return self.cfg.master(name)

    def endpoint(self, name: str) -> str:
        m = self.spec(name)
        return f"{m.ip}:{m.grpc_port}"

    def endpoints(self, names: Sequence[str] | None = None) -> list[str]:
        return [self.endpoint(n) for n in (self.names if names is None else names)]

    @property
    def token(self) -> str:
        """The admin token from the cluster's tokens.csv."""
        return admin_token(self.cfg)

    def client(self, names: Sequence[str] | None = None, **kw: float) -> KVClient:
        """A `KVClient` on the named masters (all by default), preferring the first."""
        return KVClient(self.endpoints(names), self.token, **kw)

    def member_status(self, name: str) -> dict[str, Any] | None:
        """The master's `/status` document, or None if it does not answer in time."""
        m = self.spec(name)
        conn = http.client.HTTPConnection(m.ip, m.health_port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("GET", "/status")
            resp = conn.getresponse()
            if resp.status != 200:
                return None
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()

    def statuses(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any] | None]:
        return {n: self.member_status(n) for n in (self.names if names is None else names)}

    def brief(self) -> dict[str, object]:
        """(role, term, leader, commit, applied) per master, for timeout messages."""
        keys = ("role", "term", "leader", "commit_index", "applied_index")
        return {
            n: tuple(d[k] for k in keys) if d is not None else "no answer"
            for n, d in self.statuses().items()
        }

    def leader_now(self, among: Sequence[str] | None = None, min_term: int = 0) -> Leader | None:
        """The leader that it and a majority of the cluster agree on (term >= `min_term`),
        asking only the masters in `among`; None if there is none yet."""
        st = self.statuses(among)
        for name, doc in st.items():
            if doc is None or doc["role"] != "leader" or doc["term"] < min_term:
                continue
            agree = sum(
                1
                for d in st.values()
                if d is not None and d["term"] == doc["term"] and d["leader"] == name
            )
            if agree >= self.cfg.quorum:
                return Leader(name, doc["term"])
        return None

    def wait_leader(
        self, among: Sequence[str] | None = None, min_term: int = 0, timeout: float = 20.0
    ) -> Leader:
        return wait_for(
            f"a leader of term >= {min_term} among {among or 'all'}",
            lambda: self.leader_now(among, min_term),
            timeout,
            seen=self.brief,
        )

    def wait_converged(self, names: Sequence[str] | None = None, timeout: float = 30.0) -> int:
        """Wait until the named masters (all by default) agree on leader and term and have
        applied the same index, which is their commit index; returns that index."""

        def probe() -> int | None:
            st = self.statuses(names)
            docs = [d for d in st.values() if d is not None]
            if len(docs) != len(st):
                return None
            keys = {(d["term"], d["leader"], d["commit_index"], d["applied_index"]) for d in docs}
            if len(keys) != 1:
                return None
            _, leader, commit, applied = keys.pop()
            return applied if leader is not None and commit == applied else None

        return wait_for(f"{names or 'all masters'} converged", probe, timeout, seen=self.brief)

    def heal(self) -> Leader:
        """Resume paused and start dead masters, then wait for a converged cluster."""
        for m in self.status_json()["masters"]:
            if m["state"] == "paused":
                self.cli("resume", m["name"])
            elif m["state"] == "dead":
                self.cli("start", m["name"])
        self.wait_converged()
        return self.wait_leader()

    def log_up_time(self, summary: Callable[[str, str], None]) -> None:
        """Add how long `kubelab up` took to the run's figures, once."""
        if self.up_seconds is not None:
            n = len(self.cfg.masters)
            line = f"{n} masters on {self.cfg.subnet}: `kubelab up` took {self.up_seconds:.1f} s"
            summary("e2e cluster start-up", line)
            self.up_seconds = None

    def log_after_last_start(self, name: str) -> str:
        """The master's log since `kubelab` last started it."""
        text = self.spec(name).log_file.read_text(errors="replace")
        marker = f"kubelab: starting {name}:"
        at = text.rfind(marker)
        return text[at:] if at >= 0 else text


RESTORED_RE = re.compile(r"restored store from snapshot revision=(\d+) applied_index=(\d+)")


def cluster_toml(
    name: str,
    octet: int,
    data_dir: Path,
    masters: int,
    raft: dict[str, int] | None = None,
    *,
    workers: int = 0,
    runtime: str = "fake",
) -> str:
    text = f'[cluster]\nname = "{name}"\nsubnet = "127.{octet}.0.0/16"\n'
    text += f'data_dir = "{data_dir}"\n'
    if raft:
        text += "[raft]\n" + "".join(f"{k} = {v}\n" for k, v in raft.items())
    text += "".join(f'[[masters]]\nname = "master-{i}"\n' for i in range(1, masters + 1))
    text += "".join(
        f'[[workers]]\nname = "worker-{i}"\nruntime = "{runtime}"\n'
        'capacity = { cpu = "2", memory = "4Gi", pods = 110 }\n'
        for i in range(1, workers + 1)
    )
    return text


@contextlib.contextmanager
def running_cluster(
    root: Path,
    *,
    preferred_octet: int,
    masters: int = 3,
    raft: dict[str, int] | None = None,
    workers: int = 0,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A cluster up for the duration of the block; see the module docstring. `workers`
    fake workers; `env` is added to the environment of every `kubelab` command (and so of
    the processes it starts: test-only switches)."""
    octet = claim_octet(preferred_octet)
    data_dir = root / "data"
    config_file = root / "cluster.toml"
    config_file.write_text(
        cluster_toml(f"e2e{octet}", octet, data_dir, masters, raft, workers=workers)
    )
    cluster = Cluster(config_file, root / "home")
    cluster.env.update(env or {})
    try:
        t0 = time.monotonic()
        cluster.up()
        cluster.up_seconds = time.monotonic() - t0
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.cli("down", check=False, timeout=60)
        left = processes_naming(data_dir)
        cleanup(data_dir)  # the safety net: whatever `down` missed dies now
    assert not left, f"processes of {data_dir} still running after `kubelab down`: {left}"


RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class Acked:
    """A put until acknowledged: the response and how many attempts it took."""

    response: store_pb2.PutResponse
    attempts: int


async def put_until_acknowledged(
    kv: KVClient, key: bytes, value: bytes, timeout: float = 30.0
) -> Acked:
    """Put `key`=`value` again after every unknown or unavailable outcome (a put of the
    same value is idempotent) until one is acknowledged; `Timeout` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            return Acked(await kv.put(key, value), attempts)
        except OutcomeUnknown:
            pass
        except ClientError as e:
            if e.code not in RETRY_CODES:
                raise
        if loop.time() >= deadline:
            raise Timeout(f"put {key!r}: not acknowledged within {timeout:g} s")
        await asyncio.sleep(0.05)


async def read_local(cluster: Cluster, name: str, prefix: bytes) -> dict[bytes, store_pb2.KeyValue]:
    """Every key under `prefix` in `name`'s own store (a serializable read on that master)."""
    async with cluster.client([name], retry_for=5.0) as kv:
        resp = await kv.get(prefix, prefix=True, serializable=True)
    return {item.key: item for item in resp.kvs}


async def hashes_at_one_index(
    cluster: Cluster, timeout: float = 30.0
) -> dict[str, api_pb2.HashResponse]:
    """Every master's Maintenance.Hash, asked until all answer at the same applied index."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with cluster.client() as kv:
        while True:
            got: dict[str, api_pb2.HashResponse] = {}
            for name in cluster.names:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    got[name] = await kv.hash(cluster.endpoint(name))
            indexes = {h.applied_index for h in got.values()}
            if len(got) == len(cluster.names) and len(indexes) == 1:
                return got
            if loop.time() >= deadline:
                seen = {n: (h.applied_index, h.revision) for n, h in got.items()}
                raise Timeout(f"masters at one applied index: not within {timeout:g} s: {seen}")
            await asyncio.sleep(0.1)
