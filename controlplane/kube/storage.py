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
import base64
import binascii
import builtins
import copy
import json
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from controlplane.store import Compacted, Store, StoreError, Watcher, WatchHub, prefix_end
from controlplane.storepb import store_pb2 as pb

from . import admission, errors
from .errors import APIError
from .resources import NAMESPACES, PODS, Resource
from .selectors import FieldSelector, LabelSelector, object_fields

T = TypeVar("T")
Obj = dict[str, Any]


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
    # Internal (the namespace controller): the namespace is empty, remove it now.
    finalize_namespace: bool = False


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: dict[str, Any]


# Kubernetes' generated-name suffix alphabet (no vowels, no confusable digits).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_UPDATE_ATTEMPTS = 16
_WATCH_QUEUE_LIMIT = 10_000
_MAX_GRACE_S = 10**9  # about 31 years: keeps deletionTimestamp a valid date
FENCE_PREFIX = b"/registry/coordination.k8s.io/leasefences/"


def fence_key(namespace: str, name: str) -> bytes:
    """The key holding `<holderIdentity>/<leaseTransitions>` of a Lease: it changes only
    when the Lease changes hands, so fenced writes compare it (not the Lease's revision,
    which every renewal bumps)."""
    return FENCE_PREFIX + f"{namespace}/{name}".encode()


def fence_value(lease: Obj) -> bytes:
    spec: Obj = lease["spec"] if isinstance(lease.get("spec"), dict) else {}
    holder = spec.get("holderIdentity") or ""
    transitions = spec.get("leaseTransitions") or 0
    return f"{holder}/{transitions}".encode()


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_rfc3339(value: object) -> float | None:
    """Seconds since the epoch of an RFC3339 timestamp (fractions allowed); None if bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        v = value.replace("Z", "+00:00")
        return datetime.fromisoformat(v).timestamp()
    except ValueError:
        return None


def _decode(kv: pb.KeyValue) -> Obj:
    obj: Obj = json.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def _cmp_create(key: bytes, revision: int) -> pb.Compare:
    return pb.Compare(
        key=key, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=revision
    )


def _cmp_mod(key: bytes, revision: int) -> pb.Compare:
    return pb.Compare(
        key=key, target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=revision
    )


def _cmp_value(key: bytes, value: bytes) -> pb.Compare:
    return pb.Compare(key=key, target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=value)


def _put(key: bytes, value: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value))


def _delete(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key))


def _range(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=key))


def _rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(f'{what}: Invalid value: "{value}": must be a number') from None
    if rv < 0:
        raise errors.bad_request(f'{what}: Invalid value: "{value}": must not be negative')
    return rv


def _selectors(res: Resource, opts: ListOptions) -> tuple[LabelSelector, FieldSelector]:
    try:
        labels = LabelSelector.parse(opts.label_selector)
    except ValueError as e:
        raise errors.bad_request(f"unable to parse labelSelector: {e}") from None
    try:
        fields = FieldSelector.parse(opts.field_selector)
        fields.check(res)
    except ValueError as e:
        raise errors.bad_request(str(e)) from None
    return labels, fields


def _matcher(res: Resource, labels: LabelSelector, fields: FieldSelector) -> Callable[[Obj], bool]:
    if labels.empty and fields.empty:
        return lambda _obj: True

    def match(obj: Obj) -> bool:
        meta = obj.get("metadata")
        lbls = meta.get("labels") if isinstance(meta, dict) else None
        if not labels.matches(lbls if isinstance(lbls, dict) else {}):
            return False
        return fields.empty or fields.matches(object_fields(res, obj))

    return match


def _encode_continue(revision: int, start: bytes) -> str:
    raw = json.dumps({"rv": revision, "start": start.decode()}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, bytes]:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(d["rv"]), str(d["start"]).encode()
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request(
            "continue: Invalid value: the continue token is not valid (use the one the "
            "previous list returned, with the same selectors)"
        ) from None


class ObjectStore:
    """The Kubernetes object layer over a `Backend` (see the module docstring).

    `clock`, `new_uid` and `rand` are injectable for deterministic tests."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
        rand: random.Random | None = None,
        toleration_s: int | None = None,
    ) -> None:
        self.backend = backend
        self.toleration_s = toleration_s
        self.clock = clock
        self.new_uid = new_uid
        self.rand = rand or random.SystemRandom()

    # -- reads ------------------------------------------------------------------------------

    async def _ready_at(self, resource_version: str) -> None:
        """Make the local store fresh enough for a read with this resourceVersion."""
        if resource_version == "0":
            return  # any revision: local state
        if resource_version == "":
            await self.backend.linearizable()
            return
        want = _rv(resource_version)
        if self.backend.read(lambda s: s.revision) >= want:
            return
        await self.backend.linearizable()
        if self.backend.read(lambda s: s.revision) < want:
            raise APIError(
                504,
                "Timeout",
                f"Too large resource version: {want}, current: "
                f"{self.backend.read(lambda s: s.revision)}",
            )

    async def get(
        self, res: Resource, namespace: str, name: str, *, resource_version: str = ""
    ) -> Obj:
        """The object (with kind, apiVersion, metadata.resourceVersion); 404 if absent."""
        await self._ready_at(resource_version)
        kv = self.backend.read(lambda s: s.get(res.key(namespace, name)))
        if kv is None:
            raise errors.not_found(res, name)
        return _decode(kv)

    async def list(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> Obj:
        """A `<Kind>List` with `metadata.resourceVersion` (the store revision of the read),
        items sorted by namespace then name, filtered by the selectors; `limit`/`continue`
        paginate at the first page's revision (410 once that revision is compacted)."""
        opts = opts or ListOptions()
        match = _matcher(res, *_selectors(res, opts))
        prefix = res.namespace_prefix(namespace)
        start, revision = prefix, 0
        if opts.continue_:
            revision, start = _decode_continue(opts.continue_)
            if not start.startswith(prefix):
                raise errors.bad_request("continue: Invalid value: the token is for another list")
        else:
            await self._ready_at(opts.resource_version)
        end = prefix_end(prefix)

        def read(s: Store) -> tuple[builtins.list[pb.KeyValue], int]:
            try:
                kvs = s.range(start, end, revision=revision).kvs
            except Compacted:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                ) from None
            return builtins.list(kvs), revision or s.revision

        kvs, rev = self.backend.read(read)
        items: builtins.list[Obj] = []
        next_key: bytes | None = None
        for kv in kvs:
            obj = _decode(kv)
            if not match(obj):
                continue
            if opts.limit and len(items) == opts.limit:
                next_key = kv.key
                break
            items.append(obj)
        meta: Obj = {"resourceVersion": str(rev)}
        if next_key is not None:
            meta["continue"] = _encode_continue(rev, next_key)
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": items,
        }

    # -- writes -----------------------------------------------------------------------------

    def _suffix(self) -> str:
        return "".join(self.rand.choice(_SUFFIX_ALPHABET) for _ in range(5))

    def _extra_ops(
        self, res: Resource, old: Obj | None, new: Obj | None
    ) -> builtins.list[pb.RequestOp]:
        """Writes that travel with an object's: a Lease's fence key."""
        if res.kind != "Lease":
            return []
        ref = new or old
        assert ref is not None
        meta = ref["metadata"]
        key = fence_key(meta.get("namespace", ""), meta["name"])
        if new is None:
            return [_delete(key)]
        if old is not None and fence_value(old) == fence_value(new):
            return []
        return [_put(key, fence_value(new))]

    async def _commit(
        self,
        compares: builtins.list[pb.Compare],
        ops: builtins.list[pb.RequestOp],
        reads: builtins.list[bytes],
    ) -> pb.TxnResponse:
        """One transaction; on failure, the current values of `reads` (in order)."""
        return await self.backend.txn(
            pb.TxnRequest(compare=compares, success=ops, failure=[_range(k) for k in reads])
        )

    def _fence_compare(self, fence: Fence | None) -> builtins.list[pb.Compare]:
        if fence is None:
            return []
        return [
            _cmp_value(
                fence_key(fence.namespace, fence.name),
                f"{fence.holder}/{fence.transitions}".encode(),
            )
        ]

    @staticmethod
    def _fenced_out(fence: Fence) -> APIError:
        return APIError(
            409,
            "Conflict",
            f"fenced: the write was made under Lease {fence.namespace}/{fence.name} held by "
            f"{fence.holder!r} (transition {fence.transitions}), which it no longer holds",
            details={"name": fence.name, "group": "coordination.k8s.io", "kind": "leases"},
        )

    async def create(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        *,
        dry_run: bool = False,
        fence: Fence | None = None,
    ) -> Obj:
        """POST: 201 semantics; 409 AlreadyExists; 404 for a missing namespace, 403 for a
        terminating one."""
        if res.namespaced and not namespace:
            raise errors.bad_request(f"{res.kind} is namespaced: a namespace is required")
        for _attempt in range(3):  # a generated name may collide: draw another
            new, data = admission.admit_create(
                res,
                namespace,
                obj,
                now=rfc3339(self.clock()),
                uid=self.new_uid(),
                name_suffix=self._suffix(),
                toleration_s=self.toleration_s,
            )
            name = new["metadata"]["name"]
            if dry_run:
                return new
            key = res.key(namespace, name)
            if res.namespaced:
                self._check_namespace_open(namespace)
            compares = [_cmp_create(key, 0)]
            ns_key = NAMESPACES.key("", namespace) if res.namespaced else None
            if ns_key is not None:
                compares.append(
                    pb.Compare(
                        key=ns_key,
                        target=pb.Compare.CREATE,
                        result=pb.Compare.GREATER,
                        create_revision=0,
                    )
                )
            compares += self._fence_compare(fence)
            ops = [_put(key, data), *self._extra_ops(res, None, new)]
            resp = await self._commit(compares, ops, [key, ns_key or key])
            if resp.succeeded:
                new["metadata"]["resourceVersion"] = str(resp.header.revision)
                return new
            existing = resp.responses[0].response_range.kvs
            if existing:
                if "generateName" in new["metadata"] and not (
                    isinstance(obj.get("metadata"), dict) and obj["metadata"].get("name")
                ):
                    continue
                raise errors.already_exists(res, name)
            if ns_key is not None and not resp.responses[1].response_range.kvs:
                raise errors.namespace_not_found(namespace)
            if fence is not None:
                raise self._fenced_out(fence)
            raise errors.internal("create transaction failed for no known reason")
        raise errors.already_exists(res, str(obj.get("metadata", {}).get("generateName", "")))

    def _check_namespace_open(self, namespace: str) -> None:
        """403 for a create in a terminating namespace. Checked against local state before
        proposing, as Kubernetes' NamespaceLifecycle admission checks its cache: the
        namespace controller removes whatever slips in meanwhile."""
        kv = self.backend.read(lambda s: s.get(NAMESPACES.key("", namespace)))
        if kv is not None and _decode(kv)["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )

    async def update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        obj: Obj,
        *,
        subresource: str = "",
        fence: Fence | None = None,
    ) -> Obj:
        """PUT: replace spec (or status, with subresource="status"). A resourceVersion in
        `obj` is a precondition (409 when stale); without one a concurrent write is
        retried over the fresh object."""
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        want_rv = str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""
        precondition = _rv(want_rv, "metadata.resourceVersion") if want_rv else None
        return await self._update(
            res, namespace, name, lambda _cur: obj, subresource, fence, precondition
        )

    async def guaranteed_update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        subresource: str = "",
        fence: Fence | None = None,
    ) -> Obj:
        """Read, `mutate` (a copy; None: no change), write conditioned on the read revision;
        retried on a concurrent write."""
        return await self._update(res, namespace, name, mutate, subresource, fence, None)

    async def _update(  # noqa: PLR0917
        self,
        res: Resource,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        subresource: str,
        fence: Fence | None,
        precondition: int | None,
    ) -> Obj:
        if subresource not in ("", "status", "binding"):
            raise errors.bad_request(f"subresource {subresource!r} cannot be updated here")
        key = res.key(namespace, name)
        await self.backend.linearizable()
        kv = self.backend.read(lambda s: s.get(key))
        for _attempt in range(_MAX_UPDATE_ATTEMPTS):
            if kv is None:
                raise errors.not_found(res, name)
            if precondition is not None and kv.mod_revision != precondition:
                raise errors.conflict(res, name)
            cur = _decode(kv)
            body = mutate(copy.deepcopy(cur))
            if body is None:
                return cur
            if subresource == "binding":
                new, data = admission.admit_binding(res, cur, body, now=rfc3339(self.clock()))
            else:
                new, data = admission.admit_update(res, cur, body, subresource=subresource)
            if data == kv.value:
                return cur  # no-op: no new revision, as the API server does
            compares = [_cmp_mod(key, kv.mod_revision), *self._fence_compare(fence)]
            finalized = bool(new["metadata"].get("deletionTimestamp")) and not new["metadata"].get(
                "finalizers"
            )
            if finalized:  # the last finalizer of a deleted object is gone: delete it
                ops = [_delete(key), *self._extra_ops(res, cur, None)]
            else:
                ops = [_put(key, data), *self._extra_ops(res, cur, new)]
            resp = await self._commit(compares, ops, [key])
            if resp.succeeded:
                new["metadata"]["resourceVersion"] = str(resp.header.revision)
                return new
            kvs = resp.responses[0].response_range.kvs
            if kvs and kvs[0].mod_revision == kv.mod_revision and fence is not None:
                raise self._fenced_out(fence)
            kv = kvs[0] if kvs else None
        raise errors.conflict(res, name, "too many concurrent writers; try again")

    async def bind(
        self, namespace: str, name: str, node: str, *, fence: Fence | None = None
    ) -> Obj:
        """`pods/binding`: assign a pending pod to `node` (409 if it is already bound)."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        return await self._update(
            PODS, namespace, name, lambda _cur: binding, "binding", fence, None
        )

    async def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        options: DeleteOptions | None = None,
        *,
        fence: Fence | None = None,
    ) -> Obj:
        """Returns the deleted object's last state, or the object still present (graceful
        pod deletion, finalizers, namespaces turning Terminating)."""
        options = options or DeleteOptions()
        key = res.key(namespace, name)
        await self.backend.linearizable()
        kv = self.backend.read(lambda s: s.get(key))
        for _attempt in range(_MAX_UPDATE_ATTEMPTS):
            if kv is None:
                raise errors.not_found(res, name)
            cur = _decode(kv)
            meta = cur["metadata"]
            if options.preconditions_uid and options.preconditions_uid != meta.get("uid"):
                raise errors.conflict(
                    res,
                    name,
                    f"Precondition failed: UID in precondition: {options.preconditions_uid}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if options.preconditions_resource_version and (
                options.preconditions_resource_version != meta["resourceVersion"]
            ):
                raise errors.conflict(
                    res,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{options.preconditions_resource_version}, ResourceVersion in object "
                    f"meta: {meta['resourceVersion']}",
                )
            compares = [_cmp_mod(key, kv.mod_revision), *self._fence_compare(fence)]
            after = self._after_delete(res, cur, options)
            if after is None:
                ops = [_delete(key), *self._extra_ops(res, cur, None)]
                result = cur
            else:
                if after == cur:
                    return cur  # already being deleted
                ops = [_put(key, admission.encode(after))]
                result = after
            resp = await self._commit(compares, ops, [key])
            if resp.succeeded:
                result["metadata"]["resourceVersion"] = str(resp.header.revision)
                return result
            kvs = resp.responses[0].response_range.kvs
            if kvs and kvs[0].mod_revision == kv.mod_revision and fence is not None:
                raise self._fenced_out(fence)
            kv = kvs[0] if kvs else None
        raise errors.conflict(res, name, "too many concurrent writers; try again")

    def _after_delete(self, res: Resource, cur: Obj, options: DeleteOptions) -> Obj | None:
        """The object that stays after a DELETE (None: it goes at once)."""
        meta = cur["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        if policy not in (None, "", "Background", "Foreground", "Orphan"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        # The garbage collector finishes what these finalizers start (as in Kubernetes).
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers = [f for f in finalizers if f != "orphan"] + ["foregroundDeletion"]
        elif policy == "Orphan" and "orphan" not in finalizers:
            finalizers = [f for f in finalizers if f != "foregroundDeletion"] + ["orphan"]
        grace = options.grace_period_seconds
        spec: Obj = cur["spec"] if isinstance(cur.get("spec"), dict) else {}
        if res.kind == "Namespace":
            finalizers_spec = [] if options.finalize_namespace else spec.get("finalizers")
            if finalizers_spec or finalizers:
                after = copy.deepcopy(cur)
                after["metadata"].setdefault("deletionTimestamp", rfc3339(self.clock()))
                after["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                after.setdefault("status", {})["phase"] = "Terminating"
                after["metadata"].pop("resourceVersion", None)
                return after
            return None
        if res.kind == "Pod" and not finalizers:
            phase = (cur.get("status") or {}).get("phase")
            bound = bool(spec.get("nodeName"))
            if grace is None:
                grace = int(spec.get("terminationGracePeriodSeconds", 30) or 0)
            grace = max(0, min(grace, _MAX_GRACE_S))
            if grace <= 0 or not bound or phase in ("Succeeded", "Failed"):
                return None
            prev = meta.get("deletionGracePeriodSeconds")
            if prev is not None and prev <= grace:
                return cur  # already terminating with a grace at most this long
            after = copy.deepcopy(cur)
            after["metadata"]["deletionTimestamp"] = rfc3339(self.clock() + grace)
            after["metadata"]["deletionGracePeriodSeconds"] = grace
            after["metadata"].pop("resourceVersion", None)
            return after
        if not finalizers:
            return None
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return cur
        after = copy.deepcopy(cur)
        after["metadata"].setdefault("deletionTimestamp", rfc3339(self.clock()))
        after["metadata"].setdefault("deletionGracePeriodSeconds", 0)
        after["metadata"]["finalizers"] = finalizers
        after["metadata"].pop("resourceVersion", None)
        return after

    # -- watch ------------------------------------------------------------------------------

    async def watch(
        self, res: Resource, namespace: str | None, opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after `opts.resource_version` (missing or "0": synthetic ADDED for what
        exists, then live events); a compacted revision yields one ERROR event (410
        Expired Status) and ends. Selectors apply as in Kubernetes: an object that stops
        matching is DELETED, one that starts matching is ADDED. Ends after
        `opts.timeout_seconds`, or when the consumer stops iterating."""
        opts = opts or ListOptions()
        match = _matcher(res, *_selectors(res, opts))
        prefix = res.namespace_prefix(namespace)
        deadline = time.monotonic() + opts.timeout_seconds if opts.timeout_seconds else None
        initial: builtins.list[Obj] = []
        if opts.resource_version in ("", "0"):
            if opts.resource_version == "":
                await self.backend.linearizable()
            kvs, start = self.backend.read(
                lambda s: (builtins.list(s.range(prefix, prefix_end(prefix)).kvs), s.revision)
            )
            initial = [o for o in map(_decode, kvs) if match(o)]
        else:
            await self._ready_at(opts.resource_version)  # a future revision: 504, as Kubernetes
            start = _rv(opts.resource_version)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[builtins.list[pb.Event], int] | StoreError] = asyncio.Queue()

        def on_events(events: builtins.list[pb.Event], revision: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (events, revision))

        def on_cancel(err: StoreError) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, err)

        try:
            watcher = self.backend.watch(
                prefix, prefix_end(prefix), start + 1, on_events, on_cancel
            )
        except Compacted as e:
            yield _expired(start, e.compact_revision)
            return
        try:
            for obj in initial:
                yield WatchEvent("ADDED", obj)
            while True:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    return
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if isinstance(item, StoreError):
                    if isinstance(item, Compacted):
                        yield _expired(start, item.compact_revision)
                    return
                if queue.qsize() > _WATCH_QUEUE_LIMIT:
                    return  # too slow a consumer: it re-watches from its last revision
                for ev in item[0]:
                    out = _to_watch_event(ev, match)
                    if out is not None:
                        yield out
        finally:
            self.backend.cancel_watch(watcher)


def _expired(start: int, compact_revision: int) -> WatchEvent:
    err = errors.gone(f"too old resource version: {start} ({compact_revision})")
    return WatchEvent("ERROR", err.status())


def _to_watch_event(ev: pb.Event, match: Callable[[Obj], bool]) -> WatchEvent | None:
    prev = _decode(ev.prev_kv) if ev.HasField("prev_kv") and ev.prev_kv.key else None
    if ev.type == pb.Event.DELETE:
        if prev is None or not match(prev):
            return None
        prev["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
        return WatchEvent("DELETED", prev)
    obj = _decode(ev.kv)
    now, before = match(obj), prev is not None and match(prev)
    if now and before:
        return WatchEvent("MODIFIED", obj)
    if now:
        return WatchEvent("ADDED", obj)
    if before:
        return WatchEvent("DELETED", obj)
    return None
