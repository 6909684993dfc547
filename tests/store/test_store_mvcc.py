"""The MVCC store (controlplane.store.mvcc): etcd's revision, range, txn and compaction rules,
checked case by case and against a naive model on random workloads."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence

import pytest

from controlplane.store import (
    ALL_KEYS,
    MAX_TXN_OPS,
    Change,
    Compacted,
    FutureRevision,
    InvalidRequest,
    InvalidSnapshot,
    SlowWatcher,
    Store,
    StoreError,
    compaction_target,
    prefix_end,
    txn_is_read_only,
)
from controlplane.storepb import store_pb2 as pb

from .storefixtures import (
    Model,
    cmp,
    delete,
    get,
    put,
    random_range,
    random_request,
    txn,
    txn_op,
)


def kv_tuple(kv: pb.KeyValue) -> tuple[int, int, int, bytes]:
    return kv.create_revision, kv.mod_revision, kv.version, kv.value


# -- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"a", b"b"),
        (b"/registry/pods/", b"/registry/pods0"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"\xff", ALL_KEYS),
        (b"", ALL_KEYS),
    ],
    ids=["simple", "slash", "trailing-ff", "two-ff", "all-ff", "empty"],
)
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    """prefix_end increments the last byte below 0xff, or means 'every key' (etcd)."""
    assert prefix_end(prefix) == end


@pytest.mark.parametrize(
    ("observed", "compact", "keep", "want"),
    [
        (100, 0, 0, 100),
        (100, 100, 0, None),
        (100, 40, 50, 50),
        (100, 60, 50, None),
        (10, 0, 50, None),
    ],
    ids=["periodic", "nothing-new", "revision-mode", "revision-mode-done", "young-store"],
)
def test_compaction_target(observed: int, compact: int, keep: int, want: int | None) -> None:
    """The target keeps `keep` revisions below the observed one, and only moves forward."""
    assert compaction_target(observed, compact, keep) == want


@pytest.mark.parametrize(
    ("req", "want"),
    [
        (txn(), True),
        (txn(success=[get(b"a")], failure=[get(b"b")]), True),
        (txn(failure=[put(b"a")]), False),
        (txn(success=[delete(b"a")]), False),
        (txn(success=[txn_op(success=[get(b"a")])]), True),
        (txn(success=[txn_op(failure=[put(b"a")])]), False),
    ],
    ids=["empty", "reads", "put-in-failure", "delete", "nested-read", "nested-put"],
)
def test_txn_is_read_only(req: pb.TxnRequest, want: bool) -> None:
    """A txn is read-only when no branch at any depth puts or deletes (etcd IsTxnReadonly)."""
    assert txn_is_read_only(req) is want


# -- revisions and versions --------------------------------------------------------------------


Step = Callable[[Store], object]


@pytest.mark.parametrize(
    ("steps", "revision", "kv"),
    [
        ([], 1, None),
        ([lambda s: s.put(b"k", b"1")], 2, (2, 2, 1, b"1")),
        ([lambda s: s.put(b"k", b"1"), lambda s: s.put(b"k", b"2")], 3, (2, 3, 2, b"2")),
        ([lambda s: s.put(b"k", b"1"), lambda s: s.delete_range(b"k")], 3, None),
        (
            [
                lambda s: s.put(b"k", b"1"),
                lambda s: s.delete_range(b"k"),
                lambda s: s.put(b"k", b"3"),
            ],
            4,
            (4, 4, 1, b"3"),
        ),
        ([lambda s: s.put(b"other", b"1"), lambda s: s.put(b"k", b"")], 3, (3, 3, 1, b"")),
        ([lambda s: s.delete_range(b"k")], 1, None),
        ([lambda s: s.txn(txn(success=[get(b"k")]))], 1, None),
        ([lambda s: s.txn(txn(success=[put(b"k", b"1"), put(b"j", b"2")]))], 2, (2, 2, 1, b"1")),
    ],
    ids=[
        "empty-store-is-revision-1",
        "first-put-is-revision-2",
        "second-put-is-version-2",
        "delete-leaves-nothing",
        "recreate-is-version-1-new-create",
        "empty-value-is-a-value",
        "delete-nothing-no-revision",
        "read-only-txn-no-revision",
        "txn-is-one-revision",
    ],
)
def test_revisions_and_versions(
    steps: list[Step], revision: int, kv: tuple[int, int, int, bytes] | None
) -> None:
    """One revision per write that changes something; per key create/mod/version as etcd."""
    s = Store()
    for step in steps:
        step(s)
    assert s.revision == revision
    got = s.get(b"k")
    assert (kv_tuple(got) if got else None) == kv


def test_txn_sub_revisions_order_changes() -> None:
    """The writes of one txn are sub-revisions 0, 1, ... of one revision, in op order."""
    s = Store()
    s.put(b"c", b"0")
    seen: list[tuple[int, Sequence[Change]]] = []
    s.add_listener(lambda rev, changes: seen.append((rev, list(changes))))
    s.txn(txn(success=[put(b"b"), delete(b"c"), put(b"a")]))
    assert [(rev, [(c.key, c.rev.main, c.rev.sub) for c in ch]) for rev, ch in seen] == [
        (3, [(b"b", 3, 0), (b"c", 3, 1), (b"a", 3, 2)])
    ]


def test_listener_called_once_per_revision() -> None:
    """Listeners hear every new revision once, and nothing for writes that changed nothing."""
    s = Store()
    revs: list[int] = []
    s.add_listener(lambda rev, changes: revs.append(rev))
    s.put(b"a", b"1")
    s.delete_range(b"zzz")
    s.txn(txn(success=[get(b"a")]))
    s.delete_range(b"a", ALL_KEYS)
    assert revs == [2, 3]


# -- transactions ------------------------------------------------------------------------------

# State for the compare table: k created at 2, modified at 3 (version 2, value "b"); j at 4.


def _cas_store() -> Store:
    s = Store()
    s.put(b"k", b"a")
    s.put(b"k", b"b")
    s.put(b"j", b"x")
    return s


@pytest.mark.parametrize(
    ("compare", "succeeded"),
    [
        (cmp("version", b"k", "=", 2), True),
        (cmp("version", b"k", "=", 1), False),
        (cmp("version", b"k", ">", 1), True),
        (cmp("version", b"k", "<", 2), False),
        (cmp("version", b"k", "!=", 2), False),
        (cmp("create", b"k", "=", 2), True),
        (cmp("create", b"k", "<", 3), True),
        (cmp("mod", b"k", "=", 3), True),
        (cmp("mod", b"k", "=", 2), False),
        (cmp("mod", b"k", ">", 3), False),
        (cmp("value", b"k", "=", b"b"), True),
        (cmp("value", b"k", ">", b"a"), True),
        (cmp("value", b"k", "<", b"a"), False),
        (cmp("value", b"k", "!=", b"b"), False),
        (cmp("create", b"nope", "=", 0), True),
        (cmp("version", b"nope", "=", 0), True),
        (cmp("mod", b"nope", "=", 0), True),
        (cmp("value", b"nope", "=", b""), False),
        (cmp("value", b"nope", "!=", b"x"), False),
        (cmp("version", b"a", ">", 0, range_end=ALL_KEYS), True),
        (cmp("mod", b"j", ">", 2, range_end=b"l"), True),
        (cmp("mod", b"a", ">", 3, range_end=b"z"), False),
        (cmp("version", b"x", "=", 0, range_end=b"z"), True),
    ],
    ids=[
        "version-eq",
        "version-eq-false",
        "version-gt",
        "version-lt-false",
        "version-ne-false",
        "create-eq",
        "create-lt",
        "mod-eq-cas",
        "mod-eq-cas-stale",
        "mod-gt-false",
        "value-eq",
        "value-gt",
        "value-lt-false",
        "value-ne-false",
        "missing-create-is-0",
        "missing-version-is-0",
        "missing-mod-is-0",
        "missing-value-always-false",
        "missing-value-ne-also-false",
        "range-all-keys",
        "range-every-key-holds",
        "range-one-key-fails",
        "empty-range-compares-zero",
    ],
)
def test_txn_compare(compare: pb.Compare, succeeded: bool) -> None:
    """Each compare target and result as etcd evaluates it; the branch follows the outcome."""
    s = _cas_store()
    resp = s.txn(txn([compare], success=[put(b"out", b"then")], failure=[put(b"out", b"else")]))
    assert resp.succeeded is succeeded
    out = s.get(b"out")
    assert out is not None
    assert out.value == (b"then" if succeeded else b"else")
    assert resp.header.revision == s.revision == 5


def test_txn_compares_are_anded() -> None:
    """Every compare must hold for the success branch."""
    s = _cas_store()
    both = [cmp("mod", b"k", "=", 3), cmp("value", b"j", "=", b"x")]
    one_wrong = [cmp("mod", b"k", "=", 3), cmp("value", b"j", "=", b"y")]
    assert s.txn(txn(both)).succeeded
    assert not s.txn(txn(one_wrong)).succeeded


def test_txn_reads_see_earlier_writes() -> None:
    """Ops run in order, and a range after a put in the same txn sees the new value."""
    s = _cas_store()
    resp = s.txn(txn(success=[get(b"k"), put(b"k", b"new"), get(b"k"), delete(b"j"), get(b"j")]))
    r = resp.responses
    assert r[0].response_range.kvs[0].value == b"b"
    assert r[0].response_range.header.revision == 4
    assert r[2].response_range.kvs[0].value == b"new"
    assert r[2].response_range.header.revision == 5
    assert r[3].response_delete_range.deleted == 1
    assert r[4].response_range.count == 0
    assert s.get(b"j") is None
    assert s.revision == 5


def test_nested_txn_compares_see_the_state_before() -> None:
    """Nested compares are evaluated before any write of the txn (etcd compareToPath)."""
    s = _cas_store()
    nested = txn_op([cmp("value", b"k", "=", b"b")], [put(b"n", b"saw-old")], [put(b"n", b"new")])
    resp = s.txn(txn(success=[put(b"k", b"changed"), nested]))
    assert resp.succeeded
    inner = resp.responses[1].response_txn
    assert inner.succeeded
    assert len(inner.responses) == 1 and inner.responses[0].HasField("response_put")
    n = s.get(b"n")
    assert n is not None and n.value == b"saw-old"
    assert s.revision == 5


def test_nested_txn_failure_branch() -> None:
    """A nested txn runs its failure branch when its compare fails; responses nest."""
    s = _cas_store()
    nested = txn_op([cmp("version", b"k", "=", 9)], [put(b"n", b"x")], [get(b"k")])
    resp = s.txn(txn(success=[nested]))
    inner = resp.responses[0].response_txn
    assert not inner.succeeded
    assert inner.responses[0].response_range.kvs[0].value == b"b"
    assert s.revision == 4


@pytest.mark.parametrize(
    ("success", "ok"),
    [
        ([put(b"a"), put(b"a")], False),
        ([put(b"a"), delete(b"a")], False),
        ([delete(b"a", ALL_KEYS), put(b"b")], False),
        ([delete(b"a"), delete(b"a", b"z")], True),
        ([put(b"a"), put(b"b")], True),
        ([txn_op(success=[put(b"a")], failure=[put(b"a")])], True),
        ([txn_op(success=[put(b"a")]), put(b"a")], False),
        ([txn_op(success=[put(b"a")]), txn_op(success=[put(b"a")])], False),
        ([txn_op(success=[delete(b"a", b"c")]), put(b"b")], False),
        ([delete(b"a", b"c"), txn_op(failure=[put(b"b")])], False),
        ([delete(b"a", b"b"), put(b"b")], True),
    ],
    ids=[
        "put-put",
        "put-delete",
        "delete-range-then-put",
        "overlapping-deletes",
        "different-keys",
        "nested-then-and-else-exclusive",
        "nested-put-and-outer-put",
        "sibling-nested-puts",
        "nested-delete-covers-outer-put",
        "outer-delete-covers-nested-put",
        "range-end-exclusive",
    ],
)
def test_txn_duplicate_keys(success: list[pb.RequestOp], ok: bool) -> None:
    """A key may be written once per txn (etcd checkIntervals); refused txns write nothing."""
    s = _cas_store()
    before = s.hash()
    if ok:
        s.txn(txn(success=success))
        assert s.revision == 5
    else:
        with pytest.raises(InvalidRequest, match="duplicate key"):
            s.txn(txn(success=success))
        assert s.hash() == before


@pytest.mark.parametrize(
    ("req", "error"),
    [
        (txn(success=[put(b"z"), get(b"k", revision=99)]), FutureRevision),
        (txn(success=[put(b"z"), get(b"k", revision=2)]), Compacted),
        (txn(success=[txn_op(success=[put(b"z"), get(b"k", revision=2)])]), Compacted),
    ],
    ids=["future-read", "compacted-read", "nested-compacted-read"],
)
def test_txn_bad_read_writes_nothing(req: pb.TxnRequest, error: type[StoreError]) -> None:
    """A read of the chosen path at a bad revision fails the whole txn before any write."""
    s = _cas_store()
    s.compact(3)
    before = s.hash()
    with pytest.raises(error):
        s.txn(req)
    assert s.hash() == before
    assert s.get(b"z") is None


# -- ranges ------------------------------------------------------------------------------------


def test_range_limit_count_more() -> None:
    """limit cuts kvs; count is the full count; more says the limit cut something."""
    s = Store()
    for k in (b"a", b"b", b"c", b"d"):
        s.put(k, k)
    s.delete_range(b"c")
    cases = [(0, 3, False), (1, 1, True), (2, 2, True), (3, 3, False), (10, 3, False)]
    for limit, n, more in cases:
        r = s.range(b"a", ALL_KEYS, limit=limit)
        assert (len(r.kvs), r.count, r.more) == (n, 3, more), limit
    r = s.range(b"a", ALL_KEYS, limit=1, count_only=True)
    assert (len(r.kvs), r.count, r.more) == (0, 3, False)
    r = s.range(b"a", ALL_KEYS, keys_only=True)
    assert [kv.value for kv in r.kvs] == [b"", b"", b""]
    assert [kv.key for kv in r.kvs] == [b"a", b"b", b"d"]


def test_header_revision_is_current_even_for_past_reads() -> None:
    """A range's header carries the current revision, not the revision read (etcd)."""
    s = Store()
    s.put(b"a", b"1")
    s.put(b"a", b"2")
    r = s.range(b"a", revision=2)
    assert r.header.revision == 3
    assert r.kvs[0].value == b"1"


@pytest.mark.parametrize("seed", range(6))
def test_matches_model_on_random_workload(seed: int) -> None:
    """On random writes (with compactions), every range at every retained revision equals
    a naive full-copy model; so do the revision and, for writes, the header."""
    rng = random.Random(seed)
    s, m = Store(), Model()
    for i in range(1, 160):
        req = random_request(rng, i, m)
        s.apply(i, req)
        m.apply(req)
        assert s.revision == m.revision
        if rng.random() < 0.04 and s.revision - 5 > s.compact_revision:
            s.compact(s.revision - 5)
    for _ in range(300):
        key, end = random_range(rng)
        rev = rng.randrange(s.compact_revision or 1, s.revision + 1)
        resp = s.range(key, end, revision=rev)
        want = m.range(key, end, rev)
        assert [(kv.key, kv_tuple(kv)) for kv in resp.kvs] == want, (key, end, rev)
        assert resp.count == len(want)


# -- compaction --------------------------------------------------------------------------------


def _history_store() -> Store:
    """Revisions 2..6: a=1, a=2, b=1, del b, a=3."""
    s = Store()
    s.put(b"a", b"1")
    s.put(b"a", b"2")
    s.put(b"b", b"1")
    s.delete_range(b"b")
    s.put(b"a", b"3")
    return s


@pytest.mark.parametrize(
    ("compact", "read", "error"),
    [
        (4, 3, Compacted),
        (4, 4, None),
        (4, 6, None),
        (4, 0, None),
        (4, 7, FutureRevision),
        (1, 1, None),
        (6, 5, Compacted),
    ],
    ids=[
        "below-point",
        "at-point",
        "after-point",
        "current",
        "future",
        "compact-at-1",
        "compact-at-current",
    ],
)
def test_compaction_reads(compact: int, read: int, error: type[StoreError] | None) -> None:
    """Reads below the compaction point fail with Compacted naming both revisions; reads at
    the point and after return what they returned before the compaction."""
    s = _history_store()
    before = None if error else s.range(b"a", b"z", revision=read)
    s.compact(compact)
    if error is None:
        assert s.range(b"a", b"z", revision=read) == before
        return
    with pytest.raises(error) as info:
        s.range(b"a", b"z", revision=read)
    if isinstance(info.value, Compacted):
        assert (info.value.revision, info.value.compact_revision) == (read, compact)
        assert "compacted" in str(info.value)


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [(4, 4, Compacted), (4, 3, Compacted), (4, 7, FutureRevision), (4, 0, InvalidRequest)],
    ids=["same-twice", "backwards", "future", "zero"],
)
def test_compaction_errors(first: int, second: int, error: type[StoreError]) -> None:
    """A compaction must move the point forward and stay within the current revision."""
    s = _history_store()
    s.compact(first)
    with pytest.raises(error):
        s.compact(second)
    assert s.compact_revision == first


def test_compaction_drops_dead_keys_and_keeps_prev_of_later_changes() -> None:
    """After compacting, a key deleted before the point is gone entirely, and changes after
    the point still know their previous value (for watchers' prev_kv)."""
    s = _history_store()
    s.put(b"a", b"4")  # revision 7
    s.compact(6)
    assert s.range(b"a", b"z", revision=6).count == 1
    assert [(c.key, c.rev.main, c.prev.value if c.prev else None) for c in s.changes(7)] == [
        (b"a", 7, b"3")
    ]
    with pytest.raises(Compacted):
        s.changes(6)


# -- apply, hash, snapshot ---------------------------------------------------------------------


def _log(seed: int, n: int) -> list[pb.Request]:
    rng = random.Random(seed)
    m = Model()
    log = []
    for i in range(1, n + 1):
        req = random_request(rng, i, m)
        m.apply(req)
        log.append(req)
        if i % 37 == 0:
            log.append(
                pb.Request(id=f"c{i}", compaction=pb.CompactionRequest(revision=m.revision - 3))
            )
        if i % 50 == 0:
            log.append(pb.Request())  # a Raft empty entry
    return log


def test_apply_is_idempotent_by_index() -> None:
    """Entries at or below the applied index are ignored (a replay after restart)."""
    log = _log(1, 120)
    s = Store()
    for i, req in enumerate(log, 1):
        assert s.apply(i, req) is not None
    h = s.hash()
    for i, req in enumerate(log, 1):
        assert s.apply(i, req) is None
    assert s.hash() == h
    assert s.applied_index == len(log)


def test_apply_echoes_id_and_op() -> None:
    """The response carries the request's id and the same op case."""
    s = Store()
    resp = s.apply(1, pb.Request(id="x", put=pb.PutRequest(key=b"k", value=b"v")))
    assert resp is not None and resp.id == "x" and resp.WhichOneof("op") == "put"
    assert resp.put.header.revision == 2
    resp = s.apply(2, pb.Request(id="y"))
    assert resp is not None and resp.id == "y" and resp.WhichOneof("op") is None


def test_failed_apply_consumes_the_index() -> None:
    """A request that fails raises, changes nothing but the applied index, and is not
    re-executed when replayed."""
    s = Store()
    s.apply(1, pb.Request(put=pb.PutRequest(key=b"k", value=b"v")))
    h = s.hash()
    bad = pb.Request(put=pb.PutRequest(key=b"", value=b"v"))
    with pytest.raises(InvalidRequest):
        s.apply(2, bad)
    assert s.applied_index == 2
    assert s.hash() == h
    assert s.apply(2, bad) is None


@pytest.mark.parametrize("seed", range(4))
def test_same_log_same_hash(seed: int) -> None:
    """Two stores applying the same entries hash equal (determinism); a different log
    hashes differently."""
    log = _log(seed, 150)
    a, b = Store(), Store()
    for i, req in enumerate(log, 1):
        for s in (a, b):
            with contextlib.suppress(StoreError):
                s.apply(i, req)
    assert a.hash() == b.hash()
    b.apply(len(log) + 1, pb.Request(put=pb.PutRequest(key=b"/extra", value=b"x")))
    assert a.hash() != b.hash()


@pytest.mark.parametrize("cut", [0, 1, 40, 97, 151], ids=lambda c: f"cut-{c}")
def test_snapshot_restore_round_trip(cut: int) -> None:
    """A restored snapshot equals the original: hash, revisions, applied index, reads at
    every retained revision, the change history; and both stay equal as the log goes on."""
    log = _log(7, 150)
    s = Store()

    def run(store: Store, entries: list[tuple[int, pb.Request]]) -> None:
        for i, req in entries:
            with contextlib.suppress(StoreError):
                store.apply(i, req)

    numbered = list(enumerate(log, 1))
    run(s, numbered[:cut])
    r = Store.restore(s.snapshot())
    assert r.hash() == s.hash()
    assert (r.revision, r.compact_revision, r.applied_index) == (
        s.revision,
        s.compact_revision,
        s.applied_index,
    )
    for rev in range(max(s.compact_revision, 1), s.revision + 1):
        assert r.range(b"/", ALL_KEYS, revision=rev) == s.range(b"/", ALL_KEYS, revision=rev)
    assert list(r.changes(s.compact_revision + 1)) == list(s.changes(s.compact_revision + 1))
    run(s, numbered[cut:])
    run(r, numbered)  # replays the prefix (ignored by index) and applies the rest
    assert r.hash() == s.hash()
    assert r.snapshot() == s.snapshot()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\xff\xff\xff", "does not decode"),
        (pb.StoreSnapshot(format=2, revision=1).SerializeToString(), "format 2"),
        (pb.StoreSnapshot(format=1, revision=1, keys=[b"a"]).SerializeToString(), "inconsistent"),
        (pb.StoreSnapshot(format=1, revision=0).SerializeToString(), "inconsistent"),
        (
            pb.StoreSnapshot(
                format=1,
                revision=3,
                keys=[b"b", b"a"],
                counts=[1, 1],
                mod_revisions=[2, 3],
                sub_revisions=[0, 0],
                create_revisions=[2, 3],
                versions=[1, 1],
                values=[b"", b""],
            ).SerializeToString(),
            "not sorted",
        ),
    ],
    ids=["garbage", "newer-format", "counts-missing", "revision-0", "unsorted-keys"],
)
def test_restore_rejects_bad_snapshots(data: bytes, match: str) -> None:
    """Bad snapshot bytes raise InvalidSnapshot saying what is wrong, never a crash."""
    with pytest.raises(InvalidSnapshot, match=match):
        Store.restore(data)


# -- bad input ---------------------------------------------------------------------------------


_lease_compare = pb.Compare(key=b"k", target=4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.put(b"", b"v"), "key is empty"),
        (lambda s: s.range(b""), "key is empty"),
        (lambda s: s.delete_range(b""), "key is empty"),
        (lambda s: s.range(b"b", b"a"), "sorts before key"),
        (lambda s: s.delete_range(b"b", b"a"), "sorts before key"),
        (lambda s: s.range(b"a", limit=-1), "limit"),
        (lambda s: s.range(b"a", revision=-1), "revision"),
        (lambda s: s.txn(txn(success=[pb.RequestOp()])), "empty"),
        (lambda s: s.txn(txn([cmp("mod", b"", "=", 1)])), "key is empty"),
        (
            lambda s: s.txn(txn([pb.Compare(key=b"k", target=pb.Compare.MOD, version=1)])),
            "MOD compares mod_revision, but version was given",
        ),
        (lambda s: s.txn(txn([_lease_compare])), "unsupported compare target"),
        (
            lambda s: s.txn(txn([pb.Compare(key=b"k", result=7)])),  # type: ignore[arg-type]
            "unknown compare result",
        ),
        (
            lambda s: s.txn(txn(success=[put(b"k%d" % i) for i in range(MAX_TXN_OPS + 1)])),
            "too many",
        ),
        (lambda s: s.txn(txn(success=[txn_op(success=[put(b"")])])), r"success\[0\]"),
        (lambda s: s.txn(txn(failure=[get(b"a", revision=-2)])), "revision must be >= 0"),
        (lambda s: s.compact(-1), "at least 1"),
    ],
    ids=[
        "put-empty-key",
        "range-empty-key",
        "delete-empty-key",
        "range-end-before-key",
        "delete-end-before-key",
        "negative-limit",
        "negative-revision",
        "empty-op",
        "compare-empty-key",
        "compare-union-mismatch",
        "compare-lease",
        "compare-unknown-result",
        "too-many-ops",
        "nested-bad-put",
        "bad-op-in-branch-not-taken",
        "negative-compaction",
    ],
)
def test_bad_input(call: Callable[[Store], object], match: str) -> None:
    """Malformed requests raise InvalidRequest with a message naming the problem, and write
    nothing."""
    s = _cas_store()
    before = s.hash()
    with pytest.raises(InvalidRequest, match=match) as info:
        call(s)
    assert not info.value.retryable
    assert s.hash() == before


def test_retryable_flags() -> None:
    """Only a slow watcher's cancellation is retryable as it is."""
    assert SlowWatcher(3, 10).retryable
    assert not Compacted(1, 2).retryable
    assert not FutureRevision(3, 2).retryable
