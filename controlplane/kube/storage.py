"""Kubernetes objects on the MVCC store: get, list, create, update, delete and watch.

Objects are JSON at `Resource.key(namespace, name)`; `metadata.resourceVersion` is the
key's mod revision and is never stored (it is set on the way out), so a write is replicated
byte for byte. Every write is one transaction proposed through the `Backend`:

- create: `create_revision(key) == 0` (else 409 AlreadyExists) and, for namespaced kinds,
  the namespace exists and is not terminating;
- update and delete: `mod_revision(key) == <revision read>` (a stale caller-supplied
  resourceVersion is 409 Conflict at once; a race with another writer re-reads and retries,
  as the API server's GuaranteedUpdate does, unless the caller gave a resourceVersion);
- a `Fence` adds `value(fence key) == "<holder>/<transitions>"`: the write happens only
  while the caller still holds the Lease (DESIGN.md, fencing).

Everything nondeterministic (uid, timestamps, generated names) is decided here, before the
transaction is proposed, so every replica applies the same bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from controlplane.store import Store, StoreError, Watcher, WatchHub
from controlplane.storepb import store_pb2 as pb

from .resources import Resource

T = TypeVar("T")

MAX_OBJECT_BYTES = 1_572_864  # 1.5 MiB, the API server's request limit (etcd's is 1.5 MiB)

WatchCallback = Callable[[list[pb.Event], int], None]
CancelCallback = Callable[[StoreError], None]


class Backend(Protocol):
    """What the object layer needs from a master (or from a local store in tests).

    Errors: `txn` and `linearizable` raise `APIError`s of `errors` for "no leader"
    (503, Retry-After) and "outcome unknown" (504); see `server.kube` for the master's."""

    async def txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        """Propose a write transaction and return its result once applied here."""

    async def linearizable(self) -> None:
        """Return once this member has applied everything committed before the call."""

    def read(self, fn: Callable[[Store], T]) -> T:
        """Run `fn` against the local store, under the store's lock."""

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        callback: WatchCallback,
        on_cancel: CancelCallback,
    ) -> Watcher:
        """Register a watcher (prev_kv on, no flow control) under the store's lock; raises
        `Compacted` for a compacted start revision. Callbacks run on the store's thread."""

    def cancel_watch(self, watcher: Watcher) -> None: ...


class LocalBackend:
    """A Backend on an in-process store (tests, tools): writes apply at once."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.hub = WatchHub(self.store)
        self.lock = threading.Lock()
        self._index = 0

    async def txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        with self.lock:
            self._index += 1
            resp = self.store.apply(self._index, pb.Request(txn=req))
        assert resp is not None
        return resp.txn

    async def linearizable(self) -> None:
        await asyncio.sleep(0)

    def read(self, fn: Callable[[Store], T]) -> T:
        with self.lock:
            return fn(self.store)

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        callback: WatchCallback,
        on_cancel: CancelCallback,
    ) -> Watcher:
        with self.lock:
            return self.hub.watch(
                key,
                range_end,
                start_revision,
                prev_kv=True,
                callback=callback,
                on_cancel=on_cancel,
                flow_control=False,
            )

    def cancel_watch(self, watcher: Watcher) -> None:
        with self.lock:
            self.hub.cancel(watcher)

    async def compact(self, revision: int) -> None:
        with self.lock:
            self._index += 1
            self.store.apply(
                self._index, pb.Request(compaction=pb.CompactionRequest(revision=revision))
            )


@dataclass(frozen=True)
class Fence:
    """A write is fenced by a Lease: it applies only while `holder` still holds the Lease
    `namespace/name` with `transitions` leaseTransitions."""

    namespace: str
    name: str
    holder: str
    transitions: int


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""  # "": linearizable; "0": any (local state); N: at least N
    limit: int = 0
    continue_: str = ""
    timeout_seconds: float | None = None  # watch only
    allow_bookmarks: bool = False  # watch only


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Background (default), Foreground, Orphan
    preconditions_uid: str | None = None
    preconditions_resource_version: str | None = None


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: dict[str, Any]


class ObjectStore:
    """The Kubernetes object layer over a `Backend` (see the module docstring)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get(
        self, res: Resource, namespace: str, name: str, *, resource_version: str = ""
    ) -> dict[str, Any]:
        """The object (with kind, apiVersion, metadata.resourceVersion); 404 if absent."""
        raise NotImplementedError

    async def list(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> dict[str, Any]:
        """A `<Kind>List` with `metadata.resourceVersion` (the store revision of the read),
        items sorted by namespace then name, filtered by the selectors; `limit`/`continue`
        paginate (continue tokens expire with compaction: 410)."""
        raise NotImplementedError

    async def create(
        self, res: Resource, namespace: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        subresource: str = "",
        fence: Fence | None = None,
    ) -> dict[str, Any]:
        """PUT: replace spec (or status, with subresource="status"); see module docstring."""
        raise NotImplementedError

    async def guaranteed_update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        subresource: str = "",
        fence: Fence | None = None,
    ) -> dict[str, Any]:
        """Read, `mutate` (a copy; None: no change), write conditioned on the read revision;
        retried on a concurrent write."""
        raise NotImplementedError

    async def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        options: DeleteOptions | None = None,
        *,
        fence: Fence | None = None,
    ) -> dict[str, Any]:
        """Returns the deleted object's last state, or the object still present (graceful
        pod deletion, finalizers, namespaces turning Terminating)."""
        raise NotImplementedError

    def watch(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after `opts.resource_version` (missing or "0": synthetic ADDED for what
        exists, then live events); a compacted revision yields one ERROR event (410
        Expired Status) and ends. Selectors apply as in Kubernetes: an object that stops
        matching is DELETED, one that starts matching is ADDED."""
        raise NotImplementedError
