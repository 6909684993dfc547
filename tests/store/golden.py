"""The interpreter of the store's golden files (testdata/*.txt, run by test_store_golden.py).

One `GoldenEnv` per file: a store, its watch hub, and the watchers the file creates (buffer
mode). After every command the events each watcher received are printed under the command's
own output, so a file reads as a trace of what clients see. Commands:

    put KEY VALUE [prev_kv]                       rev=N [prev: KV]
    range KEYS [rev=N] [limit=N] [keys_only] [count_only]
    del KEYS [prev_kv]
    txn                                           input lines:
      if TARGET(KEYS) OP OPERAND                    TARGET: version|create|mod|value
      then|else put KEY VALUE | range KEYS | del KEYS
    compact REV
    watch NAME KEYS [start=N] [prev_kv] [slow]    slow: flow control (the hub's limit is 3)
                                                  and drained only by `drain NAME`
    drain NAME
    cancel NAME
    apply INDEX [id=ID]                           input: one line, `put K V` or `del KEYS`
                                                  or `compact REV` or `noop`
    restore                                       snapshot, restore, rebind the hub, compare
    state                                         revision, compact revision, applied index

KEYS is `k` (one key), `k*` (prefix), `k..` (every key from k) or `a..c` ([a, c)).
Errors print as `error: ClassName: message`.
"""

from __future__ import annotations

from controlplane.raft.rafttest.datadriven import Block, CmdArg
from controlplane.store import (
    ALL_KEYS,
    Store,
    StoreError,
    Watcher,
    WatchHub,
    prefix_end,
)
from controlplane.storepb import store_pb2 as pb

_TARGETS = {
    "version": pb.Compare.VERSION,
    "create": pb.Compare.CREATE,
    "mod": pb.Compare.MOD,
    "value": pb.Compare.VALUE,
}
_OPS = {
    "=": pb.Compare.EQUAL,
    "!=": pb.Compare.NOT_EQUAL,
    ">": pb.Compare.GREATER,
    "<": pb.Compare.LESS,
}


def keys(spec: str) -> tuple[bytes, bytes]:
    """(key, range_end) of a KEYS spec."""
    if spec.endswith("*"):
        k = spec[:-1].encode()
        return k, prefix_end(k)
    if ".." in spec:
        start, _, end = spec.partition("..")
        return start.encode(), end.encode() if end else ALL_KEYS
    return spec.encode(), b""


def fmt_kv(kv: pb.KeyValue) -> str:
    value = f"={kv.value.decode()}" if kv.value else ""
    return (
        f"{kv.key.decode()}{value} create={kv.create_revision} mod={kv.mod_revision} "
        f"ver={kv.version}"
    )


def fmt_event(ev: pb.Event) -> str:
    if ev.type == pb.Event.DELETE:
        line = f"DELETE {ev.kv.key.decode()} mod={ev.kv.mod_revision}"
    else:
        line = f"PUT {fmt_kv(ev.kv)}"
    if ev.HasField("prev_kv"):
        line += f" (prev {fmt_kv(ev.prev_kv)})"
    return line


def fmt_range(resp: pb.RangeResponse) -> list[str]:
    head = f"rev={resp.header.revision} count={resp.count}"
    if resp.more:
        head += " more"
    return [head, *(f"  {fmt_kv(kv)}" for kv in resp.kvs)]


def fmt_response_op(resp: pb.ResponseOp) -> list[str]:
    kind = resp.WhichOneof("response")
    if kind == "response_range":
        head, *kvs = fmt_range(resp.response_range)
        return [f"range {head}", *kvs]
    if kind == "response_put":
        return [f"put rev={resp.response_put.header.revision}"]
    if kind == "response_delete_range":
        d = resp.response_delete_range
        return [f"del rev={d.header.revision} deleted={d.deleted}"]
    t = resp.response_txn
    return [f"txn succeeded={t.succeeded}"] + [
        "  " + line for r in t.responses for line in fmt_response_op(r)
    ]


def _flags(args: tuple[CmdArg, ...]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and key=value options."""
    pos = [a.key for a in args if not a.vals]
    opts = {a.key: a.vals[0] for a in args if a.vals}
    return pos, opts


def parse_op(line: str) -> pb.RequestOp:
    """`put K V`, `range KEYS [rev=N]` or `del KEYS` (nested transactions are unit-tested)."""
    words = line.split()
    if words[0] == "put":
        return pb.RequestOp(
            request_put=pb.PutRequest(key=words[1].encode(), value=words[2].encode())
        )
    k, end = keys(words[1])
    if words[0] == "range":
        opts = dict(w.split("=", 1) for w in words[2:])
        return pb.RequestOp(
            request_range=pb.RangeRequest(key=k, range_end=end, revision=int(opts.get("rev", 0)))
        )
    if words[0] == "del":
        return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=k, range_end=end))
    raise ValueError(f"unknown op {line!r}")


def parse_compare(text: str) -> pb.Compare:
    """`TARGET(KEYS) OP OPERAND`."""
    lhs, op, operand = text.split()
    target, _, spec = lhs.partition("(")
    k, end = keys(spec.rstrip(")"))
    c = pb.Compare(key=k, range_end=end, target=_TARGETS[target], result=_OPS[op])
    if target == "value":
        c.value = operand.encode()
    elif target == "version":
        c.version = int(operand)
    elif target == "create":
        c.create_revision = int(operand)
    else:
        c.mod_revision = int(operand)
    return c


def parse_txn(lines: list[str]) -> pb.TxnRequest:
    req = pb.TxnRequest()
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word == "if":
            req.compare.append(parse_compare(rest))
        elif word == "then":
            req.success.append(parse_op(rest))
        elif word == "else":
            req.failure.append(parse_op(rest))
        else:
            raise ValueError(f"unknown txn line {line!r}")
    return req


class GoldenEnv:
    def __init__(self) -> None:
        self.store = Store()
        self.hub = WatchHub(self.store, max_pending=3)
        self.watchers: dict[str, Watcher] = {}
        self.manual: set[str] = set()  # slow watchers: drained only by `drain NAME`

    def handle(self, b: Block) -> str:
        try:
            out = getattr(self, f"cmd_{b.cmd.replace('-', '_')}")(b)
        except StoreError as e:
            out = [f"error: {type(e).__name__}: {e}"]
        return "\n".join([*out, *self._deliveries()])

    def _deliveries(self) -> list[str]:
        lines: list[str] = []
        for name, w in self.watchers.items():
            if name not in self.manual:
                lines.extend(f"{name} <- {fmt_event(ev)}" for ev in w.drain())
            if w.cancelled and w.error is not None:
                lines.append(f"{name} cancelled: {type(w.error).__name__}: {w.error}")
                w.error = None  # print once
        return lines

    def cmd_put(self, b: Block) -> list[str]:
        pos, _ = _flags(b.args)
        resp = self.store.put(pos[0].encode(), pos[1].encode(), prev_kv="prev_kv" in pos)
        out = [f"rev={resp.header.revision}"]
        if resp.HasField("prev_kv"):
            out.append(f"prev: {fmt_kv(resp.prev_kv)}")
        return out

    def cmd_range(self, b: Block) -> list[str]:
        pos, opts = _flags(b.args)
        k, end = keys(pos[0])
        resp = self.store.range(
            k,
            end,
            revision=int(opts.get("rev", 0)),
            limit=int(opts.get("limit", 0)),
            keys_only="keys_only" in pos,
            count_only="count_only" in pos,
        )
        return fmt_range(resp)

    def cmd_del(self, b: Block) -> list[str]:
        pos, _ = _flags(b.args)
        k, end = keys(pos[0])
        resp = self.store.delete_range(k, end, prev_kv="prev_kv" in pos)
        return [f"rev={resp.header.revision} deleted={resp.deleted}"] + [
            f"prev: {fmt_kv(kv)}" for kv in resp.prev_kvs
        ]

    def cmd_txn(self, b: Block) -> list[str]:
        resp = self.store.txn(parse_txn(b.input.splitlines()))
        return [f"succeeded={resp.succeeded} rev={resp.header.revision}"] + [
            line for r in resp.responses for line in fmt_response_op(r)
        ]

    def cmd_compact(self, b: Block) -> list[str]:
        pos, _ = _flags(b.args)
        resp = self.store.compact(int(pos[0]))
        return [f"rev={resp.header.revision} compact={self.store.compact_revision}"]

    def cmd_watch(self, b: Block) -> list[str]:
        pos, opts = _flags(b.args)
        name = pos[0]
        k, end = keys(pos[1])
        w = self.hub.watch(
            k,
            end,
            int(opts.get("start", 0)),
            prev_kv="prev_kv" in pos,
            flow_control="slow" in pos,
        )
        self.watchers[name] = w
        if "slow" in pos:
            self.manual.add(name)
        return [f"{name}: watching {pos[1]} next_revision={w.next_revision}"]

    def cmd_drain(self, b: Block) -> list[str]:
        name = b.args[0].key
        w = self.watchers[name]
        events = w.drain()
        return [
            *(f"{name} <- {fmt_event(ev)}" for ev in events),
            f"{name}: drained {len(events)}, next_revision={w.next_revision}",
        ]

    def cmd_cancel(self, b: Block) -> list[str]:
        name = b.args[0].key
        self.hub.cancel(self.watchers[name])
        return [f"{name} cancelled, next_revision={self.watchers[name].next_revision}"]

    def cmd_apply(self, b: Block) -> list[str]:
        pos, opts = _flags(b.args)
        index = int(pos[0])
        req = pb.Request(id=opts.get("id", ""))
        words = b.input.split()
        if words[0] == "put":
            req.put.key, req.put.value = words[1].encode(), words[2].encode()
        elif words[0] == "del":
            req.delete_range.key, req.delete_range.range_end = keys(words[1])
        elif words[0] == "compact":
            req.compaction.revision = int(words[1])
        try:
            resp = self.store.apply(index, req)
        except StoreError as e:
            return [
                f"error: {type(e).__name__}: {e}",
                f"applied_index={self.store.applied_index} rev={self.store.revision}",
            ]
        if resp is None:
            return [f"ignored: applied_index={self.store.applied_index}"]
        kind = resp.WhichOneof("op") or "noop"
        return [
            f"id={resp.id!r} {kind} applied_index={self.store.applied_index} "
            f"rev={self.store.revision}"
        ]

    def cmd_restore(self, b: Block) -> list[str]:
        before = self.store.hash()
        self.store = Store.restore(self.store.snapshot())
        self.hub.rebind(self.store)
        equal = self.store.hash() == before
        return [f"restored {self._state()} hash_equal={equal}"]

    def cmd_state(self, b: Block) -> list[str]:
        return [self._state()]

    def _state(self) -> str:
        s = self.store
        return f"rev={s.revision} compact={s.compact_revision} applied_index={s.applied_index}"
