"""A chaos run against a real cluster, ending with a verdict that can really fail.

Clients (asyncio tasks, each with its own `KVClient` preferring a different master) read,
write and compare-and-swap a few register keys, and append unique "ledger" keys, while a
nemesis kills, pauses, partitions (minority, the leader's side, one-way) and slows masters
through the `kubelab` CLI, as a user would. Every call is recorded with its outcome:

- ok: it returned;
- failed: it certainly had no effect (a read that failed; a write refused before anything
  was proposed: "no leader" or no connection) and is left out of the history;
- unknown: a write whose fate is unknown ("outcome unknown", a deadline): it may take effect
  at any time after it was invoked, or never.

At the end the nemesis heals everything, every key is read once more, and the history is
checked for linearizability (per key, Wing-Gong-Lowe; "gave up" is a failure). Every
acknowledged ledger key must still exist: that is the count of lost acknowledged writes.
A run in which fewer than half the calls succeeded proves nothing and fails.
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc

from controlplane.cli.status import collect_status, leader_of
from controlplane.client.kv import ClientError, KVClient, OutcomeUnknown
from controlplane.config import ClusterConfig, admin_token, load_config
from controlplane.linearizability.checker import Result, check
from controlplane.linearizability.history import OpKind
from controlplane.linearizability.recorder import Recorder
from controlplane.procs import ProcState
from controlplane.storepb import store_pb2 as pb

logger = logging.getLogger(__name__)

T = TypeVar("T")

FAULTS = (
    "kill-leader",
    "kill-follower",
    "pause-leader",
    "pause-follower",
    "partition-leader",
    "partition-follower",
    "partition-oneway",
    "partition-split",
    "delay",
)


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    config_file: Path
    clients: int = 5
    keys: int = 3
    duration_s: float = 30.0
    faults: tuple[str, ...] = FAULTS
    fault_interval_s: tuple[float, float] = (0.8, 1.8)  # a fault lasts, then quiet
    op_timeout_s: float = 2.0
    seed: int = 1
    unsafe_local_reads: bool = False  # the deliberately broken read path (checker demo)
    pin_clients: bool = False  # each client talks to one master only (no failover)


@dataclass(slots=True)
class ChaosReport:
    faults: list[str] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    ledger_acked: int = 0
    lost_writes: int = 0
    result: Result | None = None
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.unknown

    @property
    def success_ratio(self) -> float:
        return self.ok / self.total if self.total else 0.0

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "not checked"
        if self.result.ok is True:
            return "linearizable"
        return "NOT linearizable" if self.result.ok is False else "gave up (counts as failure)"

    @property
    def passed(self) -> bool:
        return (
            self.result is not None
            and self.result.passed
            and self.lost_writes == 0
            and self.success_ratio >= 0.5
        )

    def render(self) -> str:
        lines = [
            f"faults injected ({len(self.faults)}): {', '.join(self.faults) or 'none'}",
            f"operations: {self.ok} ok, {self.failed} failed, {self.unknown} unknown "
            f"({self.success_ratio:.0%} ok)",
            f"ledger: {self.ledger_acked} acknowledged writes, {self.lost_writes} lost",
            f"verdict: {self.verdict}",
        ]
        if self.result is not None and not self.result.passed:
            lines.append(self.result.render())
        return "\n".join(lines)


def _kubelab(cfg_file: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "controlplane.cli", "-c", str(cfg_file), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if r.returncode != 0:
        logger.warning("nemesis: %s failed: %s", " ".join(args), r.stderr.strip())


def _revive_all(cfg_file: Path) -> None:
    """Resume paused and start dead masters (the nemesis undoes its faults, but a run may
    end in the middle of one)."""
    for m in collect_status(load_config(cfg_file))["masters"]:
        if m["state"] == ProcState.PAUSED:
            _kubelab(cfg_file, "resume", m["name"])
        elif m["state"] == ProcState.DEAD:
            _kubelab(cfg_file, "start", m["name"])


def leader_now(cfg: ClusterConfig) -> str | None:
    """The leader of the highest term the masters report, as `kubelab status` says."""
    return leader_of(collect_status(cfg)["masters"])[0]


class _Nemesis:
    def __init__(self, plan: ChaosPlan, cfg: ClusterConfig, rng: random.Random) -> None:
        self.plan, self.cfg, self.rng = plan, cfg, rng
        self.names = [m.name for m in cfg.masters]
        self.injected: list[str] = []
        self._deck: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        lo, hi = self.plan.fault_interval_s
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(lo, hi))
            if stop.is_set():
                break
            if not self._deck:  # every kind once per round, in a shuffled order
                self._deck = list(self.plan.faults)
                self.rng.shuffle(self._deck)
            kind = self._deck.pop()
            undo = await asyncio.to_thread(self._inject, kind)
            await asyncio.sleep(self.rng.uniform(lo, hi))
            await asyncio.to_thread(undo)

    def _pick(self, leader: bool) -> str:
        ld = leader_now(self.cfg)
        if leader and ld is not None:
            return ld
        others = [n for n in self.names if n != ld]
        return self.rng.choice(others or self.names)

    def _inject(self, kind: str) -> Callable[[], None]:
        f = self.plan.config_file
        if kind.startswith("kill"):
            victim = self._pick(kind == "kill-leader")
            _kubelab(f, "kill", victim)
            self.injected.append(f"kill {victim}")
            return lambda: _kubelab(f, "start", victim)
        if kind.startswith("pause"):
            victim = self._pick(kind == "pause-leader")
            _kubelab(f, "pause", victim)
            self.injected.append(f"pause {victim}")
            return lambda: _kubelab(f, "resume", victim)
        if kind in ("partition-leader", "partition-follower"):
            victim = self._pick(kind == "partition-leader")
            _kubelab(f, "partition", victim)
            self.injected.append(f"partition {victim} (minority)")
        elif kind == "partition-oneway":
            victim = self._pick(True)
            _kubelab(f, "partition", victim, "--oneway")
            self.injected.append(f"partition {victim} --oneway")
        elif kind == "partition-split":
            names = list(self.names)
            self.rng.shuffle(names)
            minority = names[: max(1, (len(names) - 1) // 2)]
            _kubelab(f, "partition", ",".join(minority))
            self.injected.append(f"partition {','.join(minority)} (minority/majority)")
        elif kind == "delay":
            victim = self._pick(self.rng.random() < 0.5)
            ms = self.rng.choice((50, 150, 300))
            _kubelab(f, "delay", victim, str(ms))
            self.injected.append(f"delay {victim} {ms}ms")
        else:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        return lambda: _kubelab(f, "heal")


class _Client:
    def __init__(
        self,
        i: int,
        plan: ChaosPlan,
        *,
        cfg: ClusterConfig,
        token: str,
        rec: Recorder,
        run_id: str,
    ) -> None:
        self.i, self.plan, self.rec = i, plan, rec
        eps = [f"{m.ip}:{m.grpc_port}" for m in cfg.masters]
        eps = eps[i % len(eps) :] + eps[: i % len(eps)]  # each client prefers another master
        if plan.pin_clients:
            eps = eps[:1]
        t = plan.op_timeout_s
        self.kv = KVClient(eps, token, timeout=t, retry_for=2 * t)
        self.rng = random.Random(plan.seed * 1000 + i)
        self.seq = 0
        self.ledger: list[bytes] = []
        self.counts = {"ok": 0, "failed": 0, "unknown": 0}
        self.run_id = run_id

    def key(self) -> str:
        return f"k{self.rng.randrange(self.plan.keys)}"

    def kv_key(self, key: str) -> bytes:
        # A fresh namespace per run: the checker assumes every register starts absent.
        return f"chaos/{self.run_id}/{key}".encode()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.seq += 1
            r = self.rng.random()
            if self.seq % 5 == 0:
                await self.ledger_put()
            elif r < 0.5:
                await self.read(self.key())
            elif r < 0.8:
                await self.write(self.key(), f"c{self.i}-{self.seq}")
            else:
                await self.cas(self.key())

    async def read(self, key: str) -> None:
        op = self.rec.invoke(self.i, OpKind.READ, key)
        try:
            resp = await self.kv.get(self.kv_key(key))
        except (ClientError, grpc.aio.AioRpcError):
            self.rec.fail(op)  # a read that failed changed nothing
            self.counts["failed"] += 1
            return
        value = resp.kvs[0].value.decode() if resp.kvs else None
        self.rec.ok(op, value=value)
        self.counts["ok"] += 1

    async def _write(self, op: int, call: Awaitable[T]) -> T | None:
        try:
            result = await call
        except OutcomeUnknown:
            self.rec.unknown(op)
            self.counts["unknown"] += 1
            return None
        except ClientError:
            self.rec.fail(op)  # refused before anything was proposed
            self.counts["failed"] += 1
            return None
        except Exception:
            self.rec.unknown(op)
            self.counts["unknown"] += 1
            return None
        return result

    async def write(self, key: str, value: str) -> None:
        op = self.rec.invoke(self.i, OpKind.WRITE, key, value=value)
        resp = await self._write(op, self.kv.put(self.kv_key(key), value.encode()))
        if resp is not None:
            self.rec.ok(op)
            self.counts["ok"] += 1

    async def cas(self, key: str) -> None:
        expected = f"c{self.rng.randrange(self.plan.clients)}-{self.rng.randrange(self.seq + 1)}"
        # Compare against a value read recently to make successes likely.
        try:
            cur = await self.kv.get(self.kv_key(key), serializable=True)
            if cur.kvs:
                expected = cur.kvs[0].value.decode()
        except (ClientError, grpc.aio.AioRpcError):
            pass
        new = f"c{self.i}-{self.seq}"
        k = self.kv_key(key)
        req = pb.TxnRequest(
            compare=[
                pb.Compare(
                    key=k,
                    result=pb.Compare.EQUAL,
                    target=pb.Compare.VALUE,
                    value=expected.encode(),
                )
            ],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=new.encode()))],
        )
        op = self.rec.invoke(self.i, OpKind.CAS, key, value=new, expected=expected)
        resp = await self._write(op, self.kv.txn(req))
        if isinstance(resp, pb.TxnResponse):
            self.rec.ok(op, succeeded=resp.succeeded)
            self.counts["ok"] += 1

    async def ledger_put(self) -> None:
        key = f"ledger/{self.run_id}/c{self.i}/{self.seq}".encode()
        try:
            await self.kv.put(key, b"1")
        except OutcomeUnknown:
            self.counts["unknown"] += 1
            return
        except (ClientError, grpc.aio.AioRpcError):
            self.counts["failed"] += 1
            return
        self.ledger.append(key)
        self.counts["ok"] += 1


async def _set_unsafe_reads(cfg: ClusterConfig, token: str, on: bool) -> None:
    from controlplane.apipb import api_pb2  # noqa: PLC0415

    eps = [f"{m.ip}:{m.grpc_port}" for m in cfg.masters]
    async with KVClient(eps, token) as kv:
        for ep in eps:
            await kv.set_faults(ep, api_pb2.SetFaultsRequest(unsafe_local_reads=on))


async def run_chaos(plan: ChaosPlan) -> ChaosReport:
    """Run `plan` against the (running) cluster of `plan.config_file`; see the module doc."""
    cfg = load_config(plan.config_file)
    token = admin_token(cfg)
    rng = random.Random(plan.seed)
    rec = Recorder()
    report = ChaosReport()
    t0 = time.monotonic()
    if plan.unsafe_local_reads:
        await _set_unsafe_reads(cfg, token, True)
    run_id = f"{plan.seed}-{time.time_ns():x}"
    clients = [
        _Client(i, plan, cfg=cfg, token=token, rec=rec, run_id=run_id) for i in range(plan.clients)
    ]
    nemesis = _Nemesis(plan, cfg, rng)
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as tg:
            for c in clients:
                tg.create_task(c.run(stop))
            tg.create_task(nemesis.run(stop))
            await asyncio.sleep(plan.duration_s)
            stop.set()
        # Heal and bring everyone back, then read every key once more.
        await asyncio.to_thread(_kubelab, plan.config_file, "heal")
        await asyncio.to_thread(_revive_all, plan.config_file)
        final = clients[0]
        for k in range(plan.keys):
            await final.read(f"k{k}")
        acked = [key for c in clients for key in c.ledger]
        report.ledger_acked = len(acked)
        present = await final.kv.get(f"ledger/{run_id}/".encode(), prefix=True)
        have = {kv.key for kv in present.kvs}
        report.lost_writes = sum(1 for key in acked if key not in have)
    finally:
        if plan.unsafe_local_reads:
            await _set_unsafe_reads(cfg, token, False)
        for c in clients:
            await c.kv.close()
    for c in clients:
        report.ok += c.counts["ok"]
        report.failed += c.counts["failed"]
        report.unknown += c.counts["unknown"]
    report.faults = nemesis.injected
    report.result = await asyncio.to_thread(check, rec.history())
    report.elapsed_s = time.monotonic() - t0
    return report
