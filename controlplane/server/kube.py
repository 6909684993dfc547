"""The Kubernetes object layer of a master: its `Backend` on the Raft path, and the
leader's housekeeping of Kubernetes objects.

`MasterBackend` adapts `APIServer` (propose, ReadIndex, the local store and its watch hub)
to `kube.storage.Backend`, translating the write contract's errors into Kubernetes Status:
no leader → 503 with Retry-After (nothing was proposed), outcome unknown → 504 without it.

Housekeeping (DESIGN.md) is done by the leader through the log, never by local timers on
every replica: creating the system namespaces and expiring Events after their TTL.
(Terminating namespaces are the namespace controller's, controllers/namespace.py.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from controlplane.kube import errors as kerrors
from controlplane.kube.resources import EVENTS, NAMESPACES, SYSTEM_NAMESPACES
from controlplane.kube.storage import DeleteOptions, ObjectStore, parse_rfc3339
from controlplane.store import Store, StoreError, Watcher
from controlplane.storepb import store_pb2 as pb

from .api import APIServer
from .errors import NoLeader, OutcomeUnknown, ReadUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MasterBackend:
    def __init__(self, api: APIServer) -> None:
        self.api = api

    async def txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        try:
            resp = await self.api.propose(pb.Request(txn=req))
        except NoLeader as e:
            raise kerrors.unavailable(str(e), retry_after=1) from None
        except OutcomeUnknown as e:
            raise kerrors.outcome_unknown(str(e)) from None
        except StoreError as e:
            raise kerrors.internal(f"store refused the transaction: {e}") from None
        return resp.txn

    async def linearizable(self) -> None:
        if self.api.unsafe_local_reads:
            return
        try:
            await self.api.linearizable()
        except (NoLeader, ReadUnavailable) as e:
            raise kerrors.unavailable(str(e), retry_after=1) from None

    def read(self, fn: Callable[[Store], T]) -> T:
        return self.api.sm.read(fn)

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        callback: Callable[[list[pb.Event], int], None],
        on_cancel: Callable[[StoreError], None],
    ) -> Watcher:
        sm = self.api.sm
        with sm.lock:
            return sm.hub.watch(
                key,
                range_end,
                start_revision,
                prev_kv=True,
                callback=callback,
                on_cancel=on_cancel,
                flow_control=False,
            )

    def cancel_watch(self, watcher: Watcher) -> None:
        sm = self.api.sm
        with sm.lock:
            sm.hub.cancel(watcher)


class Housekeeper:
    """The leader's periodic object housekeeping (see the module docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        is_leader: Callable[[], bool],
        *,
        event_ttl_s: float,
        period_s: float = 1.0,
    ) -> None:
        self.store = store
        self.is_leader = is_leader
        self.event_ttl_s = event_ttl_s
        self.period_s = period_s
        self._bootstrapped = False

    async def run(self) -> None:
        """Poll leadership often (a new leader bootstraps at once); do the rest every
        `period_s`."""
        last_round = last_expiry = 0.0
        while True:
            await asyncio.sleep(0.1)
            if not self.is_leader():
                self._bootstrapped = False
                continue
            now = time.monotonic()
            try:
                if not self._bootstrapped:
                    await self.bootstrap()
                    self._bootstrapped = True
                if now - last_round < self.period_s:
                    continue
                last_round = now
                if now - last_expiry >= min(60.0, self.event_ttl_s / 10):
                    last_expiry = now
                    await self.expire_events()
            except kerrors.APIError as e:  # no quorum, lost leadership: next round
                logger.info("housekeeping postponed: %s", e.message)

    async def bootstrap(self) -> None:
        """Create the system namespaces that do not exist yet."""
        for name in SYSTEM_NAMESPACES:
            try:
                await self.store.create(NAMESPACES, "", {"metadata": {"name": name}})
                logger.info("bootstrap: created namespace %s", name)
            except kerrors.APIError as e:
                if e.code != 409:
                    raise

    async def expire_events(self) -> int:
        """Delete Events whose last occurrence is older than the TTL; returns the count."""
        cutoff = self.store.clock() - self.event_ttl_s
        events = await self.store.list(EVENTS, None)
        expired = 0
        for ev in events["items"]:
            when = (
                parse_rfc3339(ev.get("lastTimestamp"))
                or parse_rfc3339(ev.get("eventTime"))
                or parse_rfc3339(ev["metadata"].get("creationTimestamp"))
            )
            if when is None or when >= cutoff:
                continue
            meta = ev["metadata"]
            try:
                await self.store.delete(
                    EVENTS,
                    meta["namespace"],
                    meta["name"],
                    DeleteOptions(preconditions_resource_version=meta["resourceVersion"]),
                )
                expired += 1
            except kerrors.APIError as e:
                if e.code not in (404, 409):
                    raise
        if expired:
            logger.info("expired %d events older than %.0f s", expired, self.event_ttl_s)
        return expired
