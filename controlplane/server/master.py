"""One master process: Raft member, replicated store, gRPC API and the health port.

Start-up order: configuration, durable storage (refusing an empty data dir of an existing
cluster), state machine, Raft thread and peer transport, gRPC API, health port, then
housekeeping; `gc.freeze()` once everything is up, so the collector does not walk the
start-up garbage on every cycle. SIGTERM/SIGINT stop it in the reverse order.

Housekeeping is proposed through the log by the leader only (DESIGN.md): every compaction
interval the leader compacts the store to the revision it saw one interval earlier, as the
Kubernetes API server's compactor does, so every replica compacts at the same log index.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

from controlplane import pki
from controlplane.config import ClusterConfig, ConfigError, load_config
from controlplane.kube.resources import NAMESPACES, SYSTEM_NAMESPACES
from controlplane.kube.storage import ObjectStore
from controlplane.raftnode import DiskStorage, DiskStorageConfig, StorageError
from controlplane.raftnode.node import NodeConfig, NodeStatus, RaftNode
from controlplane.raftnode.transport import AddressInUse as PeerAddressInUse

from .api import APIServer
from .http import AddressInUse, HealthServer, Response
from .kube import Housekeeper, MasterBackend
from .managers import run_managers
from .metrics import Metrics
from .resources import add_to_server as add_resource_service
from .rest import RESTServer
from .statemachine import KVStateMachine

logger = logging.getLogger("controlplane.master")

EXIT_REFUSED = 3


class Refused(Exception):
    """The master must not start; the message says why and what to do."""


class Master:
    def __init__(self, cfg: ClusterConfig, name: str, *, initial_cluster: bool) -> None:
        self.cfg = cfg
        self.spec = cfg.master(name)
        self.name = name
        self.initial_cluster = initial_cluster
        self.names = {m.id: m.name for m in cfg.masters}
        self.metrics = Metrics(name)
        self.node: RaftNode | None = None
        self.api: APIServer | None = None
        self.health: HealthServer | None = None
        self.rest: RESTServer | None = None
        self._stop = asyncio.Event()

    # -- start-up ------------------------------------------------------------------------

    def _open_storage(self) -> DiskStorage:
        raft = self.cfg.raft
        # etcd keeps 5,000 catch-up entries; a small snapshot_count (labs) keeps half of it.
        catch_up = min(DiskStorageConfig().catch_up_entries, max(1, raft.snapshot_count // 2))
        dcfg = DiskStorageConfig(
            snapshot_count=raft.snapshot_count, catch_up_entries=catch_up, fsync=raft.fsync
        )
        data_dir = self.spec.data_dir
        if DiskStorage.exists(data_dir):
            return DiskStorage.open(data_dir, dcfg)
        if not self.initial_cluster:
            raise Refused(
                f"{self.name}: {data_dir} holds no Raft log. A master with an empty data dir "
                "must not vote in an existing cluster (it could elect a leader that lacks "
                "committed writes). If this is a new cluster, start it with `kubelab up`; "
                "to rebuild this member, remove the cluster with `kubelab down --purge` or "
                "restore the directory from a backup."
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        return DiskStorage.create(data_dir, dcfg, metadata=self.cfg.name.encode())

    def _node_config(self) -> NodeConfig:
        raft = self.cfg.raft
        tick_ms = max(1, min(10, raft.heartbeat_ms))
        return NodeConfig(
            id=self.spec.id,
            peers={m.id: (m.ip, m.raft_port) for m in self.cfg.masters if m.id != self.spec.id},
            listen=(self.spec.ip, self.spec.raft_port),
            tick_ms=tick_ms,
            heartbeat_tick=max(1, raft.heartbeat_ms // tick_ms),
            election_tick=max(2, raft.election_ms // tick_ms),
            pre_vote=raft.pre_vote,
            check_quorum=raft.check_quorum,
            cluster_id=self.cfg.name,
        )

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        storage = self._open_storage()
        sm = KVStateMachine(loop)
        ncfg = self._node_config()
        self.node = RaftNode(
            ncfg,
            storage,
            sm,
            on_status=self._on_status,
            on_persist=self.metrics.fsync_latency.observe,
            on_unsent=sm.notify_unsent,
        )
        self.node.start()
        try:
            self.api = APIServer(
                cfg=self.cfg,
                spec=self.spec,
                node=self.node,
                sm=sm,
                metrics=self.metrics,
                names=self.names,
            )
            objects = ObjectStore(
                MasterBackend(self.api), toleration_s=math.ceil(self.cfg.timers.toleration_s)
            )
            self.api.extra_services.append(lambda srv: add_resource_service(srv, objects))
            await self.api.start()
            paths = pki.pki_paths(self.cfg)
            self.rest = RESTServer(
                objects,
                host=self.spec.ip,
                port=self.spec.rest_port,
                ssl=pki.server_ssl_context(paths),
                tokens=self.api.tokens,
                server_address=f"{self.spec.ip}:{self.spec.rest_port}",
            )
            await self.rest.start()
            housekeeper = Housekeeper(
                objects,
                lambda: self.node is not None and self.node.status().role == "leader",
                event_ttl_s=self.cfg.timers.event_ttl_s,
            )
            self.health = HealthServer(
                self.spec.ip,
                self.spec.health_port,
                {
                    "/healthz": lambda: Response(200, b"ok\n"),
                    "/readyz": self._readyz,
                    "/status": self._status_json,
                    "/metrics": self._metrics,
                },
            )
            await self.health.start()
            gc.freeze()
            logger.info(
                "master started name=%s id=%d raft=%s:%d grpc=%s:%d rest=https://%s:%d pid=%d",
                self.name,
                self.spec.id,
                self.spec.ip,
                self.spec.raft_port,
                self.spec.ip,
                self.spec.grpc_port,
                self.spec.ip,
                self.spec.rest_port,
                os.getpid(),
            )
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._compactor())
                tg.create_task(housekeeper.run())
                tg.create_task(run_managers(self.cfg, self.spec))
                tg.create_task(self.metrics.watch_loop_lag())
                tg.create_task(self._watch_fatal())
                await self._stop.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
            logger.info("master stopping name=%s", self.name)
            if self.health is not None:
                await self.health.stop()
            if self.rest is not None:
                await self.rest.stop()
            if self.api is not None:
                await self.api.stop()
            self.node.stop()
            storage.close()
        return 0

    async def _watch_fatal(self) -> None:
        assert self.node is not None
        while self.node.fatal is None:
            await asyncio.sleep(0.5)
        logger.error("raft loop died: %r; exiting", self.node.fatal)
        os._exit(1)

    # -- observations ------------------------------------------------------------------------

    def _on_status(self, st: NodeStatus) -> None:
        # Called on the Raft thread: only cheap, thread-safe work (prometheus is).
        self.metrics.observe_status(st)

    def _readyz(self) -> Response:
        assert self.node is not None
        st = self.node.status()
        if st.leader == 0:
            return Response(503, b"not ready: no leader known\n")
        if st.applied_index < st.commit_index:
            return Response(
                503, f"not ready: applied {st.applied_index} < commit {st.commit_index}\n".encode()
            )
        if self.rest is None:
            return Response(503, b"not ready: the Kubernetes API is not serving yet\n")
        assert self.api is not None
        missing = self.api.sm.read(
            lambda s: [n for n in SYSTEM_NAMESPACES if s.get(NAMESPACES.key("", n)) is None]
        )
        if missing:
            # As kube-apiserver's bootstrap-controller post-start hook: the leader creates
            # them through the log, and this member has not applied them yet.
            return Response(
                503,
                f"not ready: system namespaces not created yet: {', '.join(missing)}\n".encode(),
            )
        return Response(200, b"ok\n")

    def _status_json(self) -> Response:
        assert self.node is not None and self.api is not None
        st = self.node.status()
        return Response.json(
            {
                "name": self.name,
                "id": self.spec.id,
                "pid": os.getpid(),
                "role": st.role,
                "term": st.term,
                "leader": self.names.get(st.leader),
                "commit_index": st.commit_index,
                "applied_index": st.applied_index,
                "last_index": st.last_index,
                "snapshot_index": st.snapshot_index,
                "revision": self.api.sm.revision(),
                "elections": st.elections,
                "leader_changes": st.leader_changes,
                "peers": {
                    self.names.get(i, str(i)): {"match": p.match, "next": p.next, "state": p.state}
                    for i, p in st.progress.items()
                    if i != self.spec.id
                },
                "faults": self.api.faults_snapshot(),
            }
        )

    def _metrics(self) -> Response:
        body, ctype = self.metrics.render()
        return Response(200, body, ctype)

    # -- housekeeping ------------------------------------------------------------------------

    async def _compactor(self) -> None:
        """Leader only: compact to the revision seen one interval ago (through the log)."""
        assert self.node is not None and self.api is not None
        interval = self.cfg.timers.compaction_interval_s
        seen: int | None = None
        while True:
            await asyncio.sleep(interval)
            if self.node.status().role != "leader":
                seen = None
                continue
            if seen is not None and seen > self.api.sm.compact_revision():
                try:
                    await self.api.propose_compaction(seen)
                    logger.info("auto-compaction revision=%d", seen)
                except Exception as e:  # retried at the next interval
                    logger.warning("auto-compaction failed revision=%d err=%s", seen, e)
            seen = self.api.sm.revision()


class _Stop(Exception):
    pass


def _setup_logging(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    handlers: list[logging.Handler] = [logging.FileHandler(path)]
    if sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=handlers)
    # The core logs every state transition at INFO; vote traffic is DEBUG noise here.
    logging.getLogger("controlplane.raft.raft").setLevel(logging.INFO)


def run_master(config: Path, name: str, *, initial_cluster: bool) -> int:
    try:
        cfg = load_config(config)
        spec = cfg.master(name)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _setup_logging(spec.data_dir / "master.log")
    t0 = time.monotonic()
    try:
        return asyncio.run(Master(cfg, name, initial_cluster=initial_cluster).run())
    except (Refused, AddressInUse, PeerAddressInUse, StorageError, ConfigError) as e:
        logger.error("refused to start: %s", e)
        print(f"{name}: refused to start: {e}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        logger.info("master exited name=%s after=%.1fs", name, time.monotonic() - t0)
