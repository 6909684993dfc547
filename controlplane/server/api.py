"""The gRPC API of a master: KV, Watch, Cluster and Maintenance (controlplane/apipb).

Writes (DESIGN.md). A write waits, bounded, for a leader before it is proposed; with none
it fails with "no leader" and nothing was proposed. Once proposed (by this member: Raft
forwards a follower's proposal to the leader) it is never proposed again here: it succeeds
when this member applies it, or fails with "outcome unknown" at the deadline.

Reads are linearizable by default: a ReadIndex round confirms leadership, then the read
waits until this member has applied that index and is served from the local store.
`serializable` reads (and watches) are served from the local store at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from controlplane.apipb import api_pb2, api_pb2_grpc
from controlplane.config import ClusterConfig, ConfigError, MasterSpec, read_token_file
from controlplane.raft.errors import ProposalDropped
from controlplane.raftnode.node import NodeStopped, RaftNode
from controlplane.store import Compacted, Store, StoreError, Watcher, txn_is_read_only
from controlplane.storepb import store_pb2 as pb

from .errors import NoLeader, OutcomeUnknown, ReadUnavailable, status_code
from .http import AddressInUse
from .metrics import Metrics
from .statemachine import KVStateMachine, NotSent, Outcome

logger = logging.getLogger(__name__)

T = TypeVar("T")

SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),  # two servers must never share an address
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]
PROGRESS_NOTIFY_S = 5.0


def load_tokens(path: Path) -> set[str]:
    """The tokens of the cluster's token file (`token,user,uid[,groups]` per line)."""
    try:
        return {t.token for t in read_token_file(path)}
    except ConfigError as e:
        logger.error("no tokens loaded, every call will be refused: %s", e)
        return set()


class _Auth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Rejects every call without a known bearer token with UNAUTHENTICATED."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        md = dict(details.invocation_metadata or ())
        auth = md.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token and token in self.tokens:
            return await continuation(details)
        reason = "missing bearer token" if not token else "invalid bearer token"

        async def deny(_req: object, ctx: grpc.aio.ServicerContext) -> None:
            await ctx.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{reason}: send `authorization: Bearer <token>` from the cluster's tokens.csv",
            )

        handler = await continuation(details)
        if handler is not None and handler.response_streaming:

            async def deny_stream(req: object, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await deny(req, ctx)
                yield None

            return grpc.unary_stream_rpc_method_handler(deny_stream)
        return grpc.unary_unary_rpc_method_handler(deny)


async def _abort_on(ctx: grpc.aio.ServicerContext, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a handler body, translating domain errors with the one table in errors.py."""
    try:
        return await fn()
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception as e:
        code = status_code(e)
        if code is None:
            logger.exception("internal error in handler")
            await ctx.abort(grpc.StatusCode.INTERNAL, f"internal error: {e!r}")
        await ctx.abort(code, str(e))
        raise  # unreachable: abort raises


class APIServer:
    def __init__(
        self,
        *,
        cfg: ClusterConfig,
        spec: MasterSpec,
        node: RaftNode,
        sm: KVStateMachine,
        metrics: Metrics,
        names: dict[int, str],
    ) -> None:
        self.cfg, self.spec, self.node, self.sm = cfg, spec, node, sm
        self.metrics = metrics
        self.names = names
        election = cfg.raft.election_ms / 1000
        self.leader_wait = 3 * election  # "a few election timeouts"
        self.request_timeout = max(5.0, 5 * election)
        self.tokens = load_tokens(cfg.token_file)
        self.unsafe_local_reads = False  # debug switch, see SetFaultsRequest
        self.server: grpc.aio.Server | None = None
        # More services on the same server and port (the Kubernetes resource API).
        self.extra_services: list[Callable[[grpc.aio.Server], None]] = []

    async def start(self) -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[_Auth(self.tokens)])
        api_pb2_grpc.add_KVServicer_to_server(_KV(self), server)
        api_pb2_grpc.add_WatchServicer_to_server(_Watch(self), server)
        api_pb2_grpc.add_ClusterServicer_to_server(_Cluster(self), server)
        api_pb2_grpc.add_MaintenanceServicer_to_server(_Maintenance(self), server)
        for add in self.extra_services:
            add(server)
        addr = f"{self.spec.ip}:{self.spec.grpc_port}"
        try:
            port = server.add_insecure_port(addr)
        except RuntimeError:
            port = 0
        if port == 0:
            raise AddressInUse(
                f"{addr} (gRPC API) is in use: another kubelab cluster or process holds it; "
                "stop it, or give this cluster another subnet in cluster.toml"
            )
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=1.0)

    # -- the write and read paths --------------------------------------------------------

    async def wait_for_leader(self, deadline: float | None = None) -> None:
        """Wait (bounded) for a leader this member has heard from recently."""
        if deadline is None:
            deadline = time.monotonic() + self.leader_wait
        # A follower hears from its leader every heartbeat; silence for 1.5 of them means
        # the leader may be gone, and a proposal forwarded now could vanish with it.
        fresh = 1.5 * self.cfg.raft.heartbeat_ms / 1000
        while not self.node.leader_is_fresh(fresh):
            if time.monotonic() > deadline:
                raise NoLeader(self.leader_wait)
            await asyncio.sleep(0.02)

    async def propose(self, req: pb.Request) -> pb.Response:
        """Propose `req` once and wait for it to be applied here.

        Proposed again only when it certainly never left this process (no leader to take
        it, or the transport dropped it before writing a byte): that is not a retry of a
        proposal that may have been sent."""
        deadline = time.monotonic() + self.leader_wait
        t0 = time.perf_counter()
        while True:
            await self.wait_for_leader(deadline)
            rid, fut = self.sm.new_request()
            req.id = rid
            try:
                await asyncio.wrap_future(self.node.propose(req.SerializeToString()))
            except (ProposalDropped, NodeStopped):
                self.sm.forget(rid)
                if time.monotonic() > deadline:
                    self.metrics.proposals.labels("dropped").inc()
                    raise NoLeader(self.leader_wait) from None
                await asyncio.sleep(0.02)
                continue
            try:
                resp, err = await self._await_applied(fut)
            finally:
                self.sm.forget(rid)
            if isinstance(err, NotSent):
                if time.monotonic() > deadline:
                    self.metrics.proposals.labels("dropped").inc()
                    raise NoLeader(self.leader_wait)
                await asyncio.sleep(0.02)
                continue
            break
        self.metrics.commit_latency.observe(time.perf_counter() - t0)
        if err is not None:
            self.metrics.proposals.labels("rejected").inc()
            raise err
        self.metrics.proposals.labels("applied").inc()
        assert resp is not None
        return resp

    async def _await_applied(self, fut: asyncio.Future[Outcome]) -> Outcome:
        """Wait for our entry to be applied here. If the leader changes meanwhile the entry
        may have been lost with the old leader: give the new leader one election timeout to
        commit it, then report the outcome as unknown rather than waiting out the deadline."""
        start = self.node.status()
        deadline = time.monotonic() + self.request_timeout
        grace_until: float | None = None
        while True:
            now = time.monotonic()
            limit = deadline if grace_until is None else min(deadline, grace_until)
            if now >= limit:
                self.metrics.proposals.labels("unknown").inc()
                why = (
                    "the leader changed while it was in flight"
                    if grace_until is not None
                    else f"not applied within {self.request_timeout:.1f} s (partition?)"
                )
                raise OutcomeUnknown(why)
            done, _ = await asyncio.wait({fut}, timeout=min(0.05, limit - now))
            if done:
                return fut.result()
            st = self.node.status()
            if grace_until is None and (st.term != start.term or st.leader != start.leader):
                grace_until = time.monotonic() + self.cfg.raft.election_ms / 1000

    async def linearizable(self) -> None:
        """Return once this member has applied everything committed before the call."""
        await self.wait_for_leader()
        try:
            index = await asyncio.wait_for(
                asyncio.wrap_future(self.node.read_index()), self.request_timeout
            )
            await asyncio.wait_for(
                asyncio.wrap_future(self.node.wait_applied(index)), self.request_timeout
            )
        except TimeoutError:
            raise ReadUnavailable(
                f"no quorum confirmed the read within {self.request_timeout:.1f} s"
            ) from None
        except (ProposalDropped, NodeStopped) as e:
            raise ReadUnavailable(str(e)) from None

    async def propose_compaction(self, revision: int) -> pb.Response:
        return await self.propose(pb.Request(compaction=pb.CompactionRequest(revision=revision)))

    def header(self) -> pb.ResponseHeader:
        st = self.node.status()
        return pb.ResponseHeader(
            member_id=self.spec.id, revision=self.sm.revision(), raft_term=st.term
        )

    def faults_snapshot(self) -> dict[str, Any]:
        d = self.node.transport.faults.describe()
        return {self.names.get(int(k), k): v for k, v in d.items()}


class _KV(api_pb2_grpc.KVServicer):
    def __init__(self, api: APIServer) -> None:
        self.api = api

    async def Range(self, req: pb.RangeRequest, ctx: grpc.aio.ServicerContext) -> pb.RangeResponse:
        async def go() -> pb.RangeResponse:
            if not req.serializable and not self.api.unsafe_local_reads:
                await self.api.linearizable()
            return self.api.sm.read(lambda s: s.range_request(req))

        return await _abort_on(ctx, go)

    async def Put(self, req: pb.PutRequest, ctx: grpc.aio.ServicerContext) -> pb.PutResponse:
        async def go() -> pb.PutResponse:
            resp = await self.api.propose(pb.Request(put=req))
            return resp.put

        return await _abort_on(ctx, go)

    async def DeleteRange(
        self, req: pb.DeleteRangeRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.DeleteRangeResponse:
        async def go() -> pb.DeleteRangeResponse:
            resp = await self.api.propose(pb.Request(delete_range=req))
            return resp.delete_range

        return await _abort_on(ctx, go)

    async def Txn(self, req: pb.TxnRequest, ctx: grpc.aio.ServicerContext) -> pb.TxnResponse:
        async def go() -> pb.TxnResponse:
            if txn_is_read_only(req):
                await self.api.linearizable()
                return self.api.sm.read(lambda s: s.txn(req))
            resp = await self.api.propose(pb.Request(txn=req))
            return resp.txn

        return await _abort_on(ctx, go)


class _Watch(api_pb2_grpc.WatchServicer):
    def __init__(self, api: APIServer) -> None:
        self.api = api

    async def Watch(
        self, req: api_pb2.WatchRequest, ctx: grpc.aio.ServicerContext
    ) -> AsyncIterator[api_pb2.WatchResponse]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[list[pb.Event], int] | StoreError] = asyncio.Queue()
        sm = self.api.sm

        def on_events(events: list[pb.Event], revision: int) -> None:
            loop.call_soon_threadsafe(q.put_nowait, (events, revision))

        def on_cancel(err: StoreError) -> None:
            loop.call_soon_threadsafe(q.put_nowait, err)

        header = self.api.header()
        yield api_pb2.WatchResponse(header=header, created=True)
        watcher: Watcher | None = None
        try:
            with sm.lock:
                watcher = sm.hub.watch(
                    req.key,
                    req.range_end,
                    req.start_revision,
                    prev_kv=req.prev_kv,
                    callback=on_events,
                    on_cancel=on_cancel,
                )
        except Compacted as e:
            yield api_pb2.WatchResponse(
                header=header,
                canceled=True,
                compact_revision=e.compact_revision,
                cancel_reason=str(e),
            )
            return
        except StoreError as e:
            yield api_pb2.WatchResponse(header=header, canceled=True, cancel_reason=str(e))
            return
        try:
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), PROGRESS_NOTIFY_S)
                except TimeoutError:
                    if req.progress_notify:
                        yield api_pb2.WatchResponse(header=self.api.header())
                    continue
                if isinstance(item, StoreError):
                    compact = item.compact_revision if isinstance(item, Compacted) else 0
                    yield api_pb2.WatchResponse(
                        header=self.api.header(),
                        canceled=True,
                        compact_revision=compact,
                        cancel_reason=str(item),
                    )
                    return
                events, revision = item
                hdr = pb.ResponseHeader(member_id=self.api.spec.id, revision=revision)
                yield api_pb2.WatchResponse(header=hdr, events=events)
                watcher.ack(len(events))
        finally:
            with sm.lock:
                sm.hub.cancel(watcher)


class _Cluster(api_pb2_grpc.ClusterServicer):
    def __init__(self, api: APIServer) -> None:
        self.api = api

    async def Status(
        self, req: api_pb2.StatusRequest, ctx: grpc.aio.ServicerContext
    ) -> api_pb2.StatusResponse:
        api = self.api
        st = api.node.status()
        return api_pb2.StatusResponse(
            header=api.header(),
            id=api.spec.id,
            name=api.spec.name,
            role=st.role,
            term=st.term,
            leader=st.leader,
            leader_name=api.names.get(st.leader, ""),
            commit_index=st.commit_index,
            applied_index=st.applied_index,
            members=[
                api_pb2.Member(
                    id=m.id,
                    name=m.name,
                    peer_address=f"{m.ip}:{m.raft_port}",
                    client_address=f"{m.ip}:{m.grpc_port}",
                )
                for m in api.cfg.masters
            ],
            progress={
                i: api_pb2.PeerProgress(match=p.match, next=p.next, state=p.state)
                for i, p in st.progress.items()
            },
            compact_revision=api.sm.compact_revision(),
            snapshot_index=st.snapshot_index,
            elections=st.elections,
        )


class _Maintenance(api_pb2_grpc.MaintenanceServicer):
    def __init__(self, api: APIServer) -> None:
        self.api = api

    async def TransferLeadership(
        self, req: api_pb2.TransferLeadershipRequest, ctx: grpc.aio.ServicerContext
    ) -> api_pb2.TransferLeadershipResponse:
        api = self.api

        async def go() -> api_pb2.TransferLeadershipResponse:
            if req.target not in api.names:
                raise ValueError(f"no member with id {req.target}")
            await api.wait_for_leader()
            # A follower forwards the request to the leader (MsgTransferLeader).
            await asyncio.wrap_future(api.node.transfer_leader(req.target))
            deadline = time.monotonic() + 2 * api.cfg.raft.election_ms / 1000 + 1
            while time.monotonic() < deadline:
                st = api.node.status()
                if st.leader == req.target:
                    return api_pb2.TransferLeadershipResponse(leader=st.leader, term=st.term)
                await asyncio.sleep(0.02)
            raise OutcomeUnknown(
                f"leadership did not move to {api.names[req.target]} within "
                f"{2 * api.cfg.raft.election_ms} ms (it may be lagging or unreachable)"
            )

        try:
            return await _abort_on(ctx, go)
        except ValueError as e:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise

    async def Compact(
        self, req: api_pb2.CompactRequest, ctx: grpc.aio.ServicerContext
    ) -> api_pb2.CompactResponse:
        async def go() -> api_pb2.CompactResponse:
            await self.api.propose_compaction(req.revision)
            return api_pb2.CompactResponse(header=self.api.header())

        return await _abort_on(ctx, go)

    async def Hash(
        self, req: api_pb2.HashRequest, ctx: grpc.aio.ServicerContext
    ) -> api_pb2.HashResponse:
        def h(s: Store) -> api_pb2.HashResponse:
            value, revision = s.hash()
            return api_pb2.HashResponse(
                header=pb.ResponseHeader(member_id=self.api.spec.id, revision=revision),
                hash=value,
                revision=revision,
                applied_index=s.applied_index,
            )

        return self.api.sm.read(h)

    async def SetFaults(
        self, req: api_pb2.SetFaultsRequest, ctx: grpc.aio.ServicerContext
    ) -> api_pb2.SetFaultsResponse:
        faults = self.api.node.transport.faults
        try:
            if req.clear:
                faults.heal()
                self.api.unsafe_local_reads = False
            if req.HasField("unsafe_local_reads"):
                self.api.unsafe_local_reads = req.unsafe_local_reads
                logger.warning(
                    "debug: unsafe local reads %s member=%s (reads skip ReadIndex)",
                    "ON" if req.unsafe_local_reads else "off",
                    self.api.spec.name,
                )
            for f in req.faults:
                if f.peer not in self.api.names or f.peer == self.api.spec.id:
                    raise ValueError(f"faults[].peer: {f.peer} is not another member's id")
                fields = ("drop_out", "drop_in", "delay_ms", "block_out", "block_in")
                faults.set(f.peer, **{k: getattr(f, k) for k in fields if f.HasField(k)})
        except ValueError as e:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        logger.info("faults set member=%s faults=%s", self.api.spec.name, faults.describe())
        return api_pb2.SetFaultsResponse(faults_json=json.dumps(self.api.faults_snapshot()))
