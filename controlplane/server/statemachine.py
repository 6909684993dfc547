"""The replicated state machine of a master: the MVCC `Store` applied from the Raft log.

Threads. `apply`, `snapshot` and `restore` run on the Raft thread; reads, watch
registration and result delivery belong to the API event loop. One lock serializes the
store and its `WatchHub` between the two (the hub is not thread-safe by contract). Results
go back to the API loop with `call_soon_threadsafe`, and only for requests this process
proposed (their ids carry this process's prefix), so followers do not wake the API loop for
every entry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import DecodeError

from controlplane.store import Store, StoreError, WatchHub
from controlplane.storepb import store_pb2 as pb

logger = logging.getLogger(__name__)

T = TypeVar("T")


class NotSent(Exception):
    """The proposal never left this process (the transport dropped it before writing)."""


Outcome = tuple[pb.Response | None, StoreError | NotSent | None]


class KVStateMachine:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lock = threading.Lock()
        self.store = Store()
        self.hub = WatchHub(self.store)
        self._loop = loop
        # Unique across restarts of this member: pid and start time.
        self._prefix = f"{os.getpid():x}.{time.time_ns():x}."
        self._seq = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Outcome]] = {}

    # -- Raft thread ---------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> None:
        try:
            req = pb.Request.FromString(data)
        except DecodeError:
            # Never fatal: every replica sees the same bytes and skips them the same way.
            logger.error("skipping undecodable log entry index=%d size=%d", index, len(data))
            req = pb.Request()
        err: StoreError | None = None
        resp: pb.Response | None = None
        with self.lock:
            try:
                resp = self.store.apply(index, req)
            except StoreError as e:
                err = e
        if req.id.startswith(self._prefix):
            self._loop.call_soon_threadsafe(self._resolve, req.id, resp, err)

    def notify_unsent(self, data: bytes) -> None:
        """Raft thread: a proposal of ours was dropped before it was sent anywhere."""
        try:
            rid = pb.Request.FromString(data).id
        except DecodeError:
            return
        if rid.startswith(self._prefix):
            self._loop.call_soon_threadsafe(self._resolve, rid, None, NotSent())

    def snapshot(self) -> bytes:
        with self.lock:
            return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        store = Store.restore(data)
        with self.lock:
            self.store = store
            self.hub.rebind(store)
        logger.info(
            "restored store from snapshot revision=%d applied_index=%d",
            store.revision,
            store.applied_index,
        )

    # -- API loop ------------------------------------------------------------------------

    def new_request(self) -> tuple[str, asyncio.Future[Outcome]]:
        """A fresh request id and the future its outcome resolves (when applied here)."""
        rid = f"{self._prefix}{next(self._seq)}"
        fut: asyncio.Future[Outcome] = self._loop.create_future()
        self._pending[rid] = fut
        return rid, fut

    def forget(self, rid: str) -> None:
        self._pending.pop(rid, None)

    def _resolve(
        self, rid: str, resp: pb.Response | None, err: StoreError | NotSent | None
    ) -> None:
        fut = self._pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result((resp, err))

    def read(self, fn: Callable[[Store], T]) -> T:
        """Run a read against the local store (the caller decides about linearizability)."""
        with self.lock:
            return fn(self.store)

    def revision(self) -> int:
        return self.store.revision

    def compact_revision(self) -> int:
        return self.store.compact_revision
