"""Builders, a naive reference model and a random workload for the store's tests.

`Model` is MVCC the obvious way: a full copy of the keyspace at every revision and a flat
list of events. It is slow and plainly right, so the real store is checked against it on
random workloads (reads at every revision, prefixes, watches from every start).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from controlplane.store import ALL_KEYS, prefix_end
from controlplane.storepb import store_pb2 as pb

# -- builders ---------------------------------------------------------------------------------


def put(key: bytes, value: bytes = b"v", *, prev_kv: bool = False) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, prev_kv=prev_kv))


def get(key: bytes, range_end: bytes = b"", *, revision: int = 0) -> pb.RequestOp:
    return pb.RequestOp(
        request_range=pb.RangeRequest(key=key, range_end=range_end, revision=revision)
    )


def delete(key: bytes, range_end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=range_end))


def txn_op(
    compare: list[pb.Compare] | None = None,
    success: list[pb.RequestOp] | None = None,
    failure: list[pb.RequestOp] | None = None,
) -> pb.RequestOp:
    return pb.RequestOp(request_txn=txn(compare, success, failure))


def txn(
    compare: list[pb.Compare] | None = None,
    success: list[pb.RequestOp] | None = None,
    failure: list[pb.RequestOp] | None = None,
) -> pb.TxnRequest:
    return pb.TxnRequest(compare=compare or [], success=success or [], failure=failure or [])


_RESULTS = {
    "=": pb.Compare.EQUAL,
    "!=": pb.Compare.NOT_EQUAL,
    ">": pb.Compare.GREATER,
    "<": pb.Compare.LESS,
}


def cmp(
    target: str, key: bytes, op: str, operand: int | bytes, range_end: bytes = b""
) -> pb.Compare:
    """cmp("mod", b"k", "=", 5) and so on; target is version, create, mod or value."""
    c = pb.Compare(key=key, range_end=range_end, result=_RESULTS[op])
    if target == "value":
        assert isinstance(operand, bytes)
        c.target = pb.Compare.VALUE
        c.value = operand
        return c
    assert isinstance(operand, int)
    if target == "version":
        c.target = pb.Compare.VERSION
        c.version = operand
    elif target == "create":
        c.target = pb.Compare.CREATE
        c.create_revision = operand
    else:
        c.target = pb.Compare.MOD
        c.mod_revision = operand
    return c


# -- the reference model ----------------------------------------------------------------------

KV = tuple[int, int, int, bytes]  # create_revision, mod_revision, version, value


@dataclass(frozen=True, slots=True)
class ModelEvent:
    revision: int
    key: bytes
    kv: KV | None  # None: delete
    prev: KV | None


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    return start <= key and (end == ALL_KEYS or key < end)


class Model:
    """A naive MVCC store supporting put, delete_range and flat transactions."""

    def __init__(self) -> None:
        self.states: dict[int, dict[bytes, KV]] = {1: {}}
        self.revision = 1
        self.events: list[ModelEvent] = []

    def state(self, revision: int = 0) -> dict[bytes, KV]:
        return self.states[revision or self.revision]

    def range(self, key: bytes, range_end: bytes, revision: int = 0) -> list[tuple[bytes, KV]]:
        return sorted(
            (k, v) for k, v in self.state(revision).items() if in_range(k, key, range_end)
        )

    def apply(self, req: pb.Request) -> None:
        op = req.WhichOneof("op")
        cur = dict(self.state())
        pending: list[ModelEvent] = []
        if op == "put":
            self._put(cur, req.put.key, req.put.value, pending)
        elif op == "delete_range":
            self._delete(cur, req.delete_range.key, req.delete_range.range_end, pending)
        elif op == "txn":
            ok = all(self._compare(c) for c in req.txn.compare)
            for o in req.txn.success if ok else req.txn.failure:
                kind = o.WhichOneof("request")
                if kind == "request_put":
                    self._put(cur, o.request_put.key, o.request_put.value, pending)
                elif kind == "request_delete_range":
                    d = o.request_delete_range
                    self._delete(cur, d.key, d.range_end, pending)
        if pending:
            self.revision += 1
            self.states[self.revision] = cur
            self.events.extend(pending)

    def _put(self, cur: dict[bytes, KV], key: bytes, value: bytes, out: list[ModelEvent]) -> None:
        rev = self.revision + 1
        prev = cur.get(key)
        kv = (prev[0], rev, prev[2] + 1, value) if prev else (rev, rev, 1, value)
        cur[key] = kv
        out.append(ModelEvent(rev, key, kv, prev))

    def _delete(self, cur: dict[bytes, KV], key: bytes, end: bytes, out: list[ModelEvent]) -> None:
        for k in sorted(k for k in cur if in_range(k, key, end)):
            out.append(ModelEvent(self.revision + 1, k, None, cur.pop(k)))

    def _compare(self, c: pb.Compare) -> bool:
        kvs = [v for k, v in self.state().items() if in_range(k, c.key, c.range_end)]
        if not kvs:
            if c.target == pb.Compare.VALUE:
                return False
            kvs = [(0, 0, 0, b"")]
        for create, mod, version, value in kvs:
            a: int | bytes
            b: int | bytes
            if c.target == pb.Compare.VALUE:
                a, b = value, c.value
            elif c.target == pb.Compare.VERSION:
                a, b = version, c.version
            elif c.target == pb.Compare.CREATE:
                a, b = create, c.create_revision
            else:
                a, b = mod, c.mod_revision
            r = (a > b) - (a < b)  # type: ignore[operator]
            ok = {
                pb.Compare.EQUAL: r == 0,
                pb.Compare.NOT_EQUAL: r != 0,
                pb.Compare.GREATER: r > 0,
                pb.Compare.LESS: r < 0,
            }[c.result]
            if not ok:
                return False
        return True


# -- random workloads -------------------------------------------------------------------------

KEYS = [f"/r/{d}/{n}".encode() for d in "abc" for n in range(6)]
PREFIXES = [b"/r/", b"/r/a/", b"/r/b/", b"/r/c/", b"/r/a/1"]


def random_range(rng: random.Random) -> tuple[bytes, bytes]:
    """A random (key, range_end): one key, a prefix, [a, b) or from a key on."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(KEYS), b""
    if kind == 1:
        p = rng.choice(PREFIXES)
        return p, prefix_end(p)
    if kind == 2:
        a, b = sorted(rng.sample(KEYS, 2))
        return a, b
    return rng.choice(KEYS), ALL_KEYS


def random_request(rng: random.Random, i: int, model: Model) -> pb.Request:
    """A write the model understands: put, delete (one key or a range) or a flat CAS txn."""
    req = pb.Request(id=f"r{i}")
    roll = rng.random()
    if roll < 0.55:
        req.put.key = rng.choice(KEYS)
        req.put.value = f"v{i}".encode()
    elif roll < 0.75:
        key, end = random_range(rng) if rng.random() < 0.3 else (rng.choice(KEYS), b"")
        req.delete_range.key = key
        req.delete_range.range_end = end
    else:
        k1, k2 = rng.sample(KEYS, 2)
        kv = model.state().get(k1)
        mod = kv[1] if kv and rng.random() < 0.7 else rng.randrange(0, model.revision + 1)
        req.txn.CopyFrom(
            txn(
                [cmp("mod", k1, "=", mod)],
                [put(k1, f"t{i}".encode()), delete(k2)],
                [put(k2, f"f{i}".encode())],
            )
        )
    return req
