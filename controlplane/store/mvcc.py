"""`Store`: the etcd-like multi-version key-value store that every master applies from the log.

Semantics are etcd's (server/storage/mvcc and server/etcdserver/txn), so etcd's documentation
describes them:

- One revision counter for the whole keyspace, starting at 1; every write request that
  changes something (a put, a delete that deletes something, a transaction with such writes)
  makes exactly one new revision, and the writes of a transaction are sub-revisions 0, 1, ...
  of it. Reads, failed compares and deletes of nothing do not advance it.
- Per key: `create_revision` (revision of the put that created it), `mod_revision` (of its
  last change) and `version` (puts since creation, from 1). A delete leaves a tombstone;
  recreating the key starts a new life with version 1 and a new create_revision.
- `range` reads any revision between the compaction point and the current revision;
  `Compacted` below it, `FutureRevision` above. range_end follows etcd: empty = the single
  key, `b"\\0"` = every key >= key, `prefix_end(p)` = every key starting with p.
- `txn` evaluates every compare (nested ones too) against the state before the transaction,
  checks the reads of the chosen path, then runs the operations in order (later operations
  see earlier writes). Validation happens before anything is written, so a transaction
  either applies entirely or raises and changes nothing. As in etcd, a key may be written at
  most once per transaction.
- `compact(rev)` keeps, for each key, its history after `rev` plus its last value at or
  before `rev` (unless that was a delete), so reads at `rev` still work and every change
  after `rev` keeps its previous value (watchers' prev_kv). Watches must start after `rev`.

Replication. `apply(index, request)` executes one committed log entry and records `index`
as the applied index (etcd's consistent index). Entries at or below it are ignored, so
replaying the log after a restart is safe. Everything the store does is a function of the
entries applied: no clocks, no randomness, no I/O, no threads. Housekeeping (compaction) is
an entry like any other, proposed by the leader (`compaction_target` helps it choose).
`hash()` digests the whole retained history so tests and operators can compare masters, and
`snapshot()`/`Store.restore()` carry the whole state, applied index included, in a Raft
snapshot.

Data layout, for 100k keys and more:
- `_index`: key -> that key's records, oldest first (`Revision` tuples; a tombstone has
  value None). A read at the current revision looks at the last record; a read in the past
  bisects by revision.
- `_keys`: every key with records, ordered (`SortedKeys`, a chunked sorted list), for ranges.
  Deleted keys stay until compaction drops their last tombstone.
- `_changes`: every change since the compaction point in revision order, with the key's
  previous live record. It feeds watchers (replay without scanning keys) and tells
  compaction which keys it has to trim, so compaction costs the changes it discards rather
  than the size of the keyspace.

Requests and responses are the storepb messages themselves, not domain dataclasses: the
log entry *is* a `storepb.Request`, and the gRPC API returns these responses unchanged, so
a conversion layer would only copy large range results twice. The records inside stay plain
Python tuples.

Not thread-safe: the owner serializes every call (the replica applies on one thread and
guards readers with a lock). Listeners (the watch hub) run inside the write that notifies
them.
"""

from __future__ import annotations

import logging
import struct
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise
from operator import itemgetter
from typing import NamedTuple

from google.protobuf.message import DecodeError

from controlplane.storepb import store_pb2 as pb

from .errors import Compacted, FutureRevision, InvalidRequest, InvalidSnapshot
from .sortedkeys import SortedKeys

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_KEYS",
    "MAX_TXN_OPS",
    "Change",
    "Listener",
    "Revision",
    "Store",
    "compaction_target",
    "prefix_end",
    "txn_is_read_only",
]

# range_end meaning "every key >= key" (etcd: a range end of "\0").
ALL_KEYS = b"\0"
# Operations per compare list or branch of a transaction (etcd's --max-txn-ops default).
MAX_TXN_OPS = 128
SNAPSHOT_FORMAT = 1

_EQUAL = pb.Compare.EQUAL
_GREATER = pb.Compare.GREATER
_LESS = pb.Compare.LESS
_NOT_EQUAL = pb.Compare.NOT_EQUAL
_RESULTS = frozenset({_EQUAL, _GREATER, _LESS, _NOT_EQUAL})
_VERSION = pb.Compare.VERSION
_CREATE = pb.Compare.CREATE
_MOD = pb.Compare.MOD
_VALUE = pb.Compare.VALUE
# compare target -> the member of target_union that may carry its operand
_TARGET_FIELD = {
    _VERSION: "version",
    _CREATE: "create_revision",
    _MOD: "mod_revision",
    _VALUE: "value",
}
_RECORD = struct.Struct(">qqqq")


class Revision(NamedTuple):
    """One record of a key's history: the key as it was from revision `main` on."""

    main: int
    sub: int
    create: int  # 0 for a tombstone
    version: int  # 0 for a tombstone
    value: bytes | None  # None: the key was deleted at `main`


class Change(NamedTuple):
    """One write, as watchers see it: `rev` is the new record of `key` (a tombstone for a
    delete) and `prev` the key's live record before it, if the key existed."""

    key: bytes
    rev: Revision
    prev: Revision | None


# Called after every revision with the revision and its changes, in sub-revision order.
Listener = Callable[[int, Sequence[Change]], None]

_main_of: Callable[[Revision], int] = itemgetter(0)


def _change_main(c: Change) -> int:
    return c.rev.main


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that covers every key starting with `prefix` (etcd's GetPrefixRangeEnd):
    the prefix with its last byte below 0xff incremented, or `ALL_KEYS` if there is none."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return ALL_KEYS


def compaction_target(observed_revision: int, compact_revision: int, keep: int = 0) -> int | None:
    """The revision to propose compacting at, or None if there is nothing to compact.

    Periodic mode (the Kubernetes API server's compactor): every interval, pass the revision
    observed one interval earlier with keep=0, so about one interval of history stays.
    Revision mode (etcd's --auto-compaction-mode=revision): pass the current revision and
    keep=N to retain the last N revisions.
    """
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    target = observed_revision - keep
    return target if target > compact_revision else None


def txn_is_read_only(req: pb.TxnRequest) -> bool:
    """True if no branch of the transaction writes (etcd's IsTxnReadonly): the API may serve
    it from the local store after a ReadIndex instead of proposing it."""
    for op in (*req.success, *req.failure):
        kind = op.WhichOneof("request")
        if kind in ("request_put", "request_delete_range"):
            return False
        if kind == "request_txn" and not txn_is_read_only(op.request_txn):
            return False
    return True


def _check_key_range(what: str, key: bytes, range_end: bytes) -> None:
    if not key:
        raise InvalidRequest(f"{what}: key is empty; every key has at least one byte")
    if range_end and range_end != ALL_KEYS and range_end < key:
        raise InvalidRequest(
            f"{what}: range_end {range_end!r} sorts before key {key!r}; range_end must be "
            "empty (one key), b'\\x00' (every key from key on) or after key"
        )


def _range_bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    """[start, end) of a non-empty range_end; end None means unbounded."""
    return key, (None if range_end == ALL_KEYS else range_end)


def _live_at(hist: list[Revision], revision: int) -> Revision | None:
    """The key's live record at `revision`, or None if it did not exist then."""
    last = hist[-1]
    if last.main <= revision:
        return last if last.value is not None else None
    i = bisect_right(hist, revision, key=_main_of) - 1
    if i < 0:
        return None
    rec = hist[i]
    return rec if rec.value is not None else None


def _fill_kv(kv: pb.KeyValue, key: bytes, rec: Revision, keys_only: bool = False) -> None:
    kv.key = key
    kv.create_revision = rec.create
    kv.mod_revision = rec.main
    kv.version = rec.version
    if not keys_only and rec.value:
        kv.value = rec.value


class Store:
    """The MVCC key-value store; see the module docstring. Not thread-safe."""

    __slots__ = (
        "_applied_index",
        "_changes",
        "_compact_revision",
        "_index",
        "_keys",
        "_listeners",
        "_pending",
        "_revision",
    )

    def __init__(self) -> None:
        self._revision = 1
        self._compact_revision = 0
        self._applied_index = 0
        self._index: dict[bytes, list[Revision]] = {}
        self._keys = SortedKeys()
        self._changes: list[Change] = []
        self._pending: list[Change] = []  # changes of the write in progress
        self._listeners: list[Listener] = []

    # -- state ---------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The current revision: 1 for an empty store, +1 per write that changed something."""
        return self._revision

    @property
    def compact_revision(self) -> int:
        """Reads below this revision and watches from it or below fail with `Compacted`."""
        return self._compact_revision

    @property
    def applied_index(self) -> int:
        """Index of the last log entry applied (0: none)."""
        return self._applied_index

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(revision, changes)` after every new revision, inside the write."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    # -- the replicated path -------------------------------------------------------------

    def apply(self, index: int, request: pb.Request) -> pb.Response | None:
        """Execute committed log entry `index` and record it as applied.

        Returns None, changing nothing, if `index` <= `applied_index` (a replay). A request
        with no op (Raft's empty entries, configuration changes) only records the index.
        A request that fails raises a `StoreError`; the entry still counts as applied and
        nothing else changed, identically on every replica, so the caller hands the error to
        whoever proposed `request.id` and goes on with the next entry.
        """
        if index <= self._applied_index:
            return None
        self._applied_index = index
        resp = pb.Response(id=request.id)
        op = request.WhichOneof("op")
        if op == "put":
            resp.put.CopyFrom(self.put_request(request.put))
        elif op == "delete_range":
            resp.delete_range.CopyFrom(self.delete_range_request(request.delete_range))
        elif op == "txn":
            resp.txn.CopyFrom(self.txn(request.txn))
        elif op == "compaction":
            resp.compaction.CopyFrom(self.compact(request.compaction.revision))
        return resp

    # -- reads ---------------------------------------------------------------------------

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> pb.RangeResponse:
        """The keys of [key, range_end) at `revision` (0: current), sorted by key.

        `count` is the number of keys in the range, `kvs` at most `limit` of them (0: all),
        `more` whether the limit cut some off; header.revision is the current revision.
        Raises `InvalidRequest`, `Compacted` or `FutureRevision`.
        """
        return self.range_request(
            pb.RangeRequest(
                key=key,
                range_end=range_end,
                revision=revision,
                limit=limit,
                keys_only=keys_only,
                count_only=count_only,
            )
        )

    def range_request(self, req: pb.RangeRequest) -> pb.RangeResponse:
        """`range` for a RangeRequest (serializable is the API's business and ignored)."""
        self._check_range(req)
        self._check_read_revision(req.revision)
        out = pb.RangeResponse()
        self._exec_range(req, out)
        return out

    def get(self, key: bytes, *, revision: int = 0) -> pb.KeyValue | None:
        """The key at `revision` (0: current), or None if it did not exist then."""
        resp = self.range(key, revision=revision)
        return resp.kvs[0] if resp.kvs else None

    def changes(self, start_revision: int) -> Sequence[Change]:
        """Every change of revisions >= `start_revision`, in revision order (for watchers).

        Raises `Compacted` (op "watch") if `start_revision` <= compact_revision: the
        changes of the compacted revisions are gone.
        """
        if start_revision <= self._compact_revision:
            raise Compacted(start_revision, self._compact_revision, op="watch")
        i = bisect_left(self._changes, start_revision, key=_change_main)
        return self._changes[i:]

    # -- writes --------------------------------------------------------------------------

    def put(self, key: bytes, value: bytes, *, prev_kv: bool = False) -> pb.PutResponse:
        """Set `key` to `value` at a new revision. Replicas write only through `apply`."""
        return self.put_request(pb.PutRequest(key=key, value=value, prev_kv=prev_kv))

    def put_request(self, req: pb.PutRequest) -> pb.PutResponse:
        _check_key_range("put", req.key, b"")
        out = pb.PutResponse()
        with self._write():
            self._exec_put(req, out)
        return out

    def delete_range(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> pb.DeleteRangeResponse:
        """Delete the keys of [key, range_end) that exist; a new revision only if any did."""
        return self.delete_range_request(
            pb.DeleteRangeRequest(key=key, range_end=range_end, prev_kv=prev_kv)
        )

    def delete_range_request(self, req: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        _check_key_range("delete_range", req.key, req.range_end)
        out = pb.DeleteRangeResponse()
        with self._write():
            self._exec_delete(req, out)
        return out

    def txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        """Run a transaction atomically (see the module docstring); one revision if it writes.

        Raises `InvalidRequest` for a malformed transaction and `Compacted`/`FutureRevision`
        for a range of the chosen branch at a bad revision; then nothing was written.
        """
        self._validate_txn(req, "txn")
        _check_txn_intervals(req.success)
        _check_txn_intervals(req.failure)
        path = self._compare_path(req)
        self._check_path_reads(req, iter(path))
        out = pb.TxnResponse()
        with self._write():
            self._exec_txn(req, out, iter(path))
        out.header.revision = self._revision
        return out

    def compact(self, revision: int) -> pb.CompactionResponse:
        """Discard the history before `revision` (see the module docstring).

        Raises `Compacted` if `revision` <= compact_revision (already done) and
        `FutureRevision` if it is beyond the current revision.
        """
        if revision < 1:
            raise InvalidRequest(f"compaction: revision must be at least 1, got {revision}")
        if revision <= self._compact_revision:
            raise Compacted(revision, self._compact_revision, op="compact")
        if revision > self._revision:
            raise FutureRevision(revision, self._revision)
        end = bisect_right(self._changes, revision, key=_change_main)
        touched = {c.key for c in self._changes[:end]}
        del self._changes[:end]
        dropped = 0
        for key in touched:
            hist = self._index[key]
            i = bisect_right(hist, revision, key=_main_of) - 1
            keep_from = i if hist[i].value is not None else i + 1
            if keep_from:
                del hist[:keep_from]
                dropped += keep_from
            if not hist:
                del self._index[key]
                self._keys.discard(key)
        self._compact_revision = revision
        logger.info(
            "compacted revision=%d records_dropped=%d keys=%d", revision, dropped, len(self._keys)
        )
        out = pb.CompactionResponse()
        out.header.revision = self._revision
        return out

    # -- hash and snapshot ---------------------------------------------------------------

    def hash(self) -> tuple[int, int]:
        """(CRC-32 of the whole retained history, current revision), like etcd's HashKV:
        equal on two replicas that applied the same entries. The applied index is not part
        of it."""
        h = zlib.crc32(struct.pack(">qq", self._revision, self._compact_revision))
        pack = _RECORD.pack
        crc = zlib.crc32
        for key in self._keys:
            h = crc(key, h)
            for r in self._index[key]:
                h = crc(pack(r.main, r.sub, r.create, r.version), h)
                h = crc(b"\1" + r.value if r.value is not None else b"\0", h)
        return h, self._revision

    def snapshot(self) -> bytes:
        """The whole state (history since compaction, revisions, applied index), encoded as
        a `storepb.StoreSnapshot`, for a Raft snapshot at `applied_index`."""
        keys: list[bytes] = []
        counts: list[int] = []
        mains: list[int] = []
        subs: list[int] = []
        creates: list[int] = []
        versions: list[int] = []
        values: list[bytes] = []
        index = self._index
        for key in self._keys:
            hist = index[key]
            keys.append(key)
            counts.append(len(hist))
            for r in hist:
                mains.append(r.main)
                subs.append(r.sub)
                creates.append(r.create)
                versions.append(r.version)
                values.append(r.value or b"")
        snap = pb.StoreSnapshot(
            format=SNAPSHOT_FORMAT,
            revision=self._revision,
            compact_revision=self._compact_revision,
            applied_index=self._applied_index,
        )
        snap.keys.extend(keys)
        snap.counts.extend(counts)
        snap.mod_revisions.extend(mains)
        snap.sub_revisions.extend(subs)
        snap.create_revisions.extend(creates)
        snap.versions.extend(versions)
        snap.values.extend(values)
        return snap.SerializeToString()

    @classmethod
    def restore(cls, data: bytes) -> Store:
        """A store equal to the one whose `snapshot()` gave `data` (listeners not included).

        Raises `InvalidSnapshot` if `data` is not a snapshot this version can read.
        """
        try:
            snap = pb.StoreSnapshot.FromString(data)
        except DecodeError as e:
            raise InvalidSnapshot(f"store snapshot does not decode: {e}") from e
        if snap.format != SNAPSHOT_FORMAT:
            raise InvalidSnapshot(
                f"store snapshot format {snap.format} is not supported (this version reads "
                f"format {SNAPSHOT_FORMAT})"
            )
        keys = list(snap.keys)
        counts = list(snap.counts)
        mains = list(snap.mod_revisions)
        subs = list(snap.sub_revisions)
        creates = list(snap.create_revisions)
        versions = list(snap.versions)
        values = list(snap.values)
        n = len(mains)
        if len(counts) != len(keys) or sum(counts) != n:
            raise InvalidSnapshot(
                f"store snapshot is inconsistent: {len(keys)} keys, {len(counts)} counts, "
                f"{sum(counts)} records counted, {n} records"
            )
        if not len(subs) == len(creates) == len(versions) == len(values) == n:
            raise InvalidSnapshot("store snapshot is inconsistent: record columns differ in length")
        if any(a >= b for a, b in pairwise(keys)):
            raise InvalidSnapshot("store snapshot is inconsistent: keys are not sorted")
        if not 0 <= snap.compact_revision < snap.revision:
            raise InvalidSnapshot(
                f"store snapshot is inconsistent: compact revision {snap.compact_revision}, "
                f"revision {snap.revision}"
            )
        store = cls()
        store._revision = snap.revision
        store._compact_revision = snap.compact_revision
        store._applied_index = snap.applied_index
        compact = snap.compact_revision
        changes: list[Change] = []
        pos = 0
        for key, count in zip(keys, counts, strict=True):
            if count == 0:
                raise InvalidSnapshot(f"store snapshot is inconsistent: key {key!r} has no record")
            hist: list[Revision] = []
            prev: Revision | None = None
            for j in range(pos, pos + count):
                live = versions[j] > 0
                rec = Revision(
                    mains[j], subs[j], creates[j], versions[j], values[j] if live else None
                )
                if rec.main > snap.revision or (hist and rec.main < hist[-1].main):
                    raise InvalidSnapshot(
                        f"store snapshot is inconsistent: key {key!r} has revision {rec.main} "
                        "out of order"
                    )
                hist.append(rec)
                if rec.main > compact:
                    changes.append(Change(key, rec, prev))
                prev = rec if rec.value is not None else None
            pos += count
            store._index[key] = hist
        store._keys = SortedKeys(keys)
        changes.sort(key=lambda c: (c.rev.main, c.rev.sub))
        store._changes = changes
        return store

    # -- validation ----------------------------------------------------------------------

    def _check_read_revision(self, revision: int) -> None:
        if revision < 0:
            raise InvalidRequest(f"range: revision must be >= 0 (0: current), got {revision}")
        if revision > self._revision:
            raise FutureRevision(revision, self._revision)
        if revision and revision < self._compact_revision:
            raise Compacted(revision, self._compact_revision)

    @staticmethod
    def _check_range(req: pb.RangeRequest) -> None:
        _check_key_range("range", req.key, req.range_end)
        if req.limit < 0:
            raise InvalidRequest(f"range: limit must be >= 0 (0: no limit), got {req.limit}")

    def _validate_txn(self, req: pb.TxnRequest, where: str) -> None:
        """Everything that can be checked without reading the store, recursively."""
        for name, items in (
            ("compare", req.compare),
            ("success", req.success),
            ("failure", req.failure),
        ):
            if len(items) > MAX_TXN_OPS:
                raise InvalidRequest(
                    f"{where}: too many operations in {name} ({len(items)} > {MAX_TXN_OPS})"
                )
        for i, c in enumerate(req.compare):
            what = f"{where}.compare[{i}]"
            _check_key_range(what, c.key, c.range_end)
            if c.result not in _RESULTS:
                raise InvalidRequest(f"{what}: unknown compare result {c.result}")
            field = _TARGET_FIELD.get(c.target)
            if field is None:
                raise InvalidRequest(f"{what}: unknown or unsupported compare target {c.target}")
            given = c.WhichOneof("target_union")
            if given is not None and given != field:
                raise InvalidRequest(
                    f"{what}: target {pb.Compare.CompareTarget.Name(c.target)} compares "
                    f"{field}, but {given} was given"
                )
        for branch, ops in (("success", req.success), ("failure", req.failure)):
            for i, op in enumerate(ops):
                what = f"{where}.{branch}[{i}]"
                kind = op.WhichOneof("request")
                if kind == "request_range":
                    r = op.request_range
                    _check_key_range(what, r.key, r.range_end)
                    if r.limit < 0:
                        raise InvalidRequest(f"{what}: limit must be >= 0, got {r.limit}")
                    if r.revision < 0:
                        raise InvalidRequest(f"{what}: revision must be >= 0, got {r.revision}")
                elif kind == "request_put":
                    _check_key_range(what, op.request_put.key, b"")
                elif kind == "request_delete_range":
                    d = op.request_delete_range
                    _check_key_range(what, d.key, d.range_end)
                elif kind == "request_txn":
                    self._validate_txn(op.request_txn, what)
                else:
                    raise InvalidRequest(f"{what}: the operation is empty")

    def _compare_path(self, req: pb.TxnRequest) -> list[bool]:
        """The outcome of every transaction on the chosen path, in pre-order, all evaluated
        against the state before the transaction (etcd's compareToPath)."""
        ok = all(self._compare(c) for c in req.compare)
        path = [ok]
        for op in req.success if ok else req.failure:
            if op.WhichOneof("request") == "request_txn":
                path.extend(self._compare_path(op.request_txn))
        return path

    def _check_path_reads(self, req: pb.TxnRequest, path: Iterator[bool]) -> None:
        for op in req.success if next(path) else req.failure:
            kind = op.WhichOneof("request")
            if kind == "request_range":
                self._check_read_revision(op.request_range.revision)
            elif kind == "request_txn":
                self._check_path_reads(op.request_txn, path)

    def _compare(self, c: pb.Compare) -> bool:
        rev = self._revision
        if c.range_end:
            start, end = _range_bounds(c.key, c.range_end)
            recs = [
                (k, r)
                for k in self._keys.irange(start, end)
                if (r := _live_at(self._index[k], rev)) is not None
            ]
        else:
            hist = self._index.get(c.key)
            r = _live_at(hist, rev) if hist else None
            recs = [(c.key, r)] if r is not None else []
        if not recs:
            if c.target == _VALUE:
                return False  # a missing key has no value to compare (etcd)
            return _compare_one(c, None)
        return all(_compare_one(c, r) for _, r in recs)

    # -- execution -----------------------------------------------------------------------

    def _write(self) -> _WriteScope:
        return _WriteScope(self)

    def _visible_revision(self) -> int:
        """The revision reads inside the write in progress see (its own writes included)."""
        return self._revision + 1 if self._pending else self._revision

    def _exec_range(self, req: pb.RangeRequest, out: pb.RangeResponse) -> None:
        current = self._visible_revision()
        rev = req.revision or current
        out.header.revision = current
        limit = req.limit
        keys_only = req.keys_only
        count_only = req.count_only
        kvs = out.kvs
        if not req.range_end:
            hist = self._index.get(req.key)
            r = _live_at(hist, rev) if hist else None
            if r is not None:
                out.count = 1
                if not count_only:
                    _fill_kv(kvs.add(), req.key, r, keys_only)
            return
        start, end = _range_bounds(req.key, req.range_end)
        index = self._index
        count = 0
        for k in self._keys.irange(start, end):
            r = _live_at(index[k], rev)
            if r is None:
                continue
            count += 1
            if count_only or (limit and count > limit):
                continue
            _fill_kv(kvs.add(), k, r, keys_only)
        out.count = count
        out.more = not count_only and bool(limit) and count > limit

    def _exec_put(self, req: pb.PutRequest, out: pb.PutResponse) -> None:
        key = req.key
        main = self._revision + 1
        hist = self._index.get(key)
        if hist is None:
            hist = self._index[key] = []
            self._keys.add(key)
            prev = None
        else:
            last = hist[-1]
            prev = last if last.value is not None else None
        sub = len(self._pending)
        if prev is None:
            rec = Revision(main, sub, main, 1, req.value)
        else:
            rec = Revision(main, sub, prev.create, prev.version + 1, req.value)
            if req.prev_kv:
                _fill_kv(out.prev_kv, key, prev)
        hist.append(rec)
        self._pending.append(Change(key, rec, prev))
        out.header.revision = main

    def _exec_delete(self, req: pb.DeleteRangeRequest, out: pb.DeleteRangeResponse) -> None:
        if req.range_end:
            start, end = _range_bounds(req.key, req.range_end)
            keys = list(self._keys.irange(start, end))
        else:
            keys = [req.key] if req.key in self._index else []
        main = self._revision + 1
        deleted = 0
        for key in keys:
            hist = self._index[key]
            last = hist[-1]
            if last.value is None:
                continue
            rec = Revision(main, len(self._pending), 0, 0, None)
            hist.append(rec)
            self._pending.append(Change(key, rec, last))
            deleted += 1
            if req.prev_kv:
                _fill_kv(out.prev_kvs.add(), key, last)
        out.deleted = deleted
        out.header.revision = self._visible_revision()

    def _exec_txn(self, req: pb.TxnRequest, out: pb.TxnResponse, path: Iterator[bool]) -> None:
        ok = next(path)
        out.succeeded = ok
        for op in req.success if ok else req.failure:
            resp = out.responses.add()
            kind = op.WhichOneof("request")
            if kind == "request_range":
                self._exec_range(op.request_range, resp.response_range)
            elif kind == "request_put":
                self._exec_put(op.request_put, resp.response_put)
            elif kind == "request_delete_range":
                self._exec_delete(op.request_delete_range, resp.response_delete_range)
            else:
                self._exec_txn(op.request_txn, resp.response_txn, path)
        out.header.revision = self._visible_revision()

    def _commit(self) -> None:
        """End the write in progress: one new revision if it changed anything."""
        if not self._pending:
            return
        changes = self._pending
        self._pending = []
        self._revision += 1
        self._changes.extend(changes)
        for listener in list(self._listeners):
            listener(self._revision, changes)

    def _rollback(self) -> None:
        """Undo the write in progress (only reached through a bug: validation runs first)."""
        for change in reversed(self._pending):
            hist = self._index[change.key]
            hist.pop()
            if not hist:
                del self._index[change.key]
                self._keys.discard(change.key)
        self._pending = []


class _WriteScope:
    """`with store._write():` commits the changes made inside, or undoes them on error."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> None:
        if self._store._pending:
            raise RuntimeError("store: nested write")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._store._commit()
        else:
            logger.error("store: write failed after validation; rolled back")
            self._store._rollback()


def _compare_one(c: pb.Compare, rec: Revision | None) -> bool:
    target = c.target
    if target == _VALUE:
        a_bytes = rec.value if rec is not None and rec.value is not None else b""
        b_bytes = c.value
        result = (a_bytes > b_bytes) - (a_bytes < b_bytes)
    else:
        if target == _VERSION:
            a, b = (rec.version if rec else 0), c.version
        elif target == _CREATE:
            a, b = (rec.create if rec else 0), c.create_revision
        else:
            a, b = (rec.main if rec else 0), c.mod_revision
        result = (a > b) - (a < b)
    op = c.result
    if op == _EQUAL:
        return result == 0
    if op == _NOT_EQUAL:
        return result != 0
    if op == _GREATER:
        return result > 0
    return result < 0


_Interval = tuple[bytes, bytes | None]  # [start, end), end None: unbounded


def _hits(dels: list[_Interval], key: bytes) -> bool:
    return any(s <= key and (e is None or key < e) for s, e in dels)


def _check_txn_intervals(ops: Sequence[pb.RequestOp]) -> tuple[set[bytes], list[_Interval]]:
    """Reject a branch that writes a key twice, nested transactions included; returns the
    keys it puts and the ranges it deletes (etcd's checkIntervals: the success and failure
    branches of one nested transaction exclude each other, so they may put the same key)."""
    dels: list[_Interval] = []
    for op in ops:
        if op.WhichOneof("request") == "request_delete_range":
            d = op.request_delete_range
            # a single key k is the interval [k, k + b"\0")
            dels.append(
                _range_bounds(d.key, d.range_end) if d.range_end else (d.key, d.key + b"\0")
            )
    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, dels_then = _check_txn_intervals(op.request_txn.success)
        puts_else, dels_else = _check_txn_intervals(op.request_txn.failure)
        for k in puts_then:
            if k in puts or _hits(dels, k):
                raise _duplicate(k)
            puts.add(k)
        for k in puts_else:
            if (k in puts and k not in puts_then) or _hits(dels, k):
                raise _duplicate(k)
            puts.add(k)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        k = op.request_put.key
        if k in puts or _hits(dels, k):
            raise _duplicate(k)
        puts.add(k)
    return puts, dels


def _duplicate(key: bytes) -> InvalidRequest:
    return InvalidRequest(
        f"txn: duplicate key given in txn request: {key!r} is written more than once "
        "(a key may be put or deleted at most once per transaction)"
    )
