"""Linearizability checking: Wing & Gong's search with Lowe's memoization, per key.

A history is linearizable if every operation can be given a point in time inside its
interval such that, taken in that order, the operations are a legal sequential execution of
the model (here a register per key). Linearizability is local (Herlihy & Wing,
"P-compositionality"): a history is linearizable iff each key's sub-history is, so keys are
checked independently, which keeps each search small.

The search (G. Lowe, "Testing for linearizability", 2017, §3-4; the same algorithm as
porcupine's `checkSingle` and Knossos's `linear` checker):

1. The key's operations become events, sorted by time: a *call* at `invoke_ns` and a *return*
   at `complete_ns`; on a tie the call comes first (equal timestamps count as overlapping,
   the permissive reading). The events form a doubly linked list.
2. Depth-first search. The operations that may take effect next are the calls found before
   the first return in the list: an operation cannot be linearized after another one's
   return unless it was invoked before that return. Walking the list from its head, the
   first candidate whose step is legal in the current state is *lifted* (its call and return
   are unlinked), pushed on a stack with the state before it, and the walk restarts from the
   head.
3. Reaching a return means that operation completed without being linearized: dead end.
   Pop the last linearized operation, restore its state, unlift it and try the candidates
   after it. An empty stack at a dead end means the history is not linearizable.
4. Memoization: the pair (set of linearized operations as a bitset, model state) fully
   determines the rest of the search, so a pair seen before is not explored again. This is
   what makes the search practical; the number of pairs is the "state budget".

Indeterminate operations (outcome unknown) have a call and no return: they may be linearized
anywhere after their invocation, and they never force a dead end. The search succeeds as
soon as every *determinate* operation is linearized: the indeterminate ones still unplaced
are those that never took effect (or took effect after everything else, which no one
observed). Left alone, they make the search exponential in their number (every subset of
them, placed anywhere), so five reductions keep it small. Each keeps every successful
configuration reachable, so the verdict is the same as the plain search's:

a. Subsumption. An indeterminate operation is optional, so a configuration with the same
   determinate operations and state but fewer indeterminate ones already linearized has
   every option of this one. The memo maps (determinate set, state) to the minimal
   indeterminate sets seen, and a configuration is skipped if one of them is a subset of
   its own.
b. Indeterminate reads are dropped (they constrain nothing), and so are steps of an
   indeterminate operation that leave the state unchanged (a cas whose comparison fails).
c. Forced reads. If a determinate read-only operation (a read, a failed cas) can come next,
   it is taken and nothing else is tried from that configuration: in any completion it can
   be moved first, since it changes no state and its removal only admits more candidates.
d. Blind indeterminate writes (write, delete: legal anywhere, the next state ignores the
   state) are only placed immediately before a non-blind operation that observes them, as
   one step: a blind write followed by another, or by nothing, can be dropped, and one
   before a read-only operation that is legal without it can move after it. The model's
   `only_state` narrows the pairs to the writes that leave the state the observer needs.
e. Symmetry. Indeterminate operations with the same effect (blind ones leaving the same
   state, e.g. two unknown deletes; others with the same kind and arguments) are
   interchangeable once both are invoked, so only the earliest one not yet linearized is
   tried. Without this, the choice of which of k unknown deletes "happened" multiplies
   the configurations by up to 2^k.

Candidates are tried determinate first (reads first, by c), then indeterminate, so that the
configurations with fewer indeterminate operations are the ones the memo holds (a).

The verdict is one of three. "Gave up" (deadline or state budget exhausted) means the check
proved nothing: `Result.ok` is None and `Result.passed` is False, and callers must count it as
a failure, never as a pass (a history too hard to check is a test that did not run).

For a non-linearizable key the result explains the deepest dead end the search reached: the
longest linearizable prefix, the state after it, the operation whose completion could not be
reached, and the candidates that could not be placed next (illegal in that state, or legal
but leading only to dead ends).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.linearizability.history import Operation
from controlplane.linearizability.model import REGISTER, Model

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_STATES = 1_000_000
_CLOCK_EVERY = 4096  # search steps between two looks at the clock


class Verdict(StrEnum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    GAVE_UP = "gave up"


@dataclass(frozen=True, slots=True)
class Explanation:
    """The deepest dead end of a failed search. Operations are indexes into the history."""

    prefix: tuple[int, ...]
    """The longest linearizable prefix found, in linearization order."""
    state: str
    """The model state after the prefix."""
    blocking: int
    """The operation that completed, yet could not be linearized after the prefix."""
    candidates: tuple[tuple[int, bool], ...]
    """(operation, legal in `state`) for each unplaced operation invoked before `blocking`
    completed: none of them can come next."""


@dataclass(frozen=True, slots=True)
class KeyResult:
    key: str
    verdict: Verdict
    operations: int
    """Operations searched (indeterminate read-only ones are dropped first)."""
    indeterminate: int
    """Of which indeterminate."""
    dropped: int
    """Indeterminate read-only operations dropped before the search."""
    states: int
    """Configurations explored (linearized set and model state): the search's size, and the
    unit of `max_states`."""
    elapsed_s: float
    linearization: tuple[int, ...] = ()
    """If linearizable: the operations in a valid order (indeterminate ones left out were
    taken to have had no effect)."""
    explanation: Explanation | None = None
    """If not linearizable: why."""
    reason: str = ""
    """If the checker gave up: why."""


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict on a whole history.

    `ok` is True (every key linearizable), False (some key is not: a violation), or None
    (no violation found, but the checker gave up on some key). Use `passed` in tests: a
    check that gave up is a failure.
    """

    ok: bool | None
    keys: tuple[KeyResult, ...]
    history: tuple[Operation, ...]
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return self.ok is True

    @property
    def failures(self) -> tuple[KeyResult, ...]:
        """The keys that are not linearizable or were not fully checked."""
        return tuple(k for k in self.keys if k.verdict is not Verdict.LINEARIZABLE)

    def render(self, max_prefix: int = 20) -> str:
        """A report for people: the verdict, then an explanation per failed key."""
        return _render(self, max_prefix)


def check(
    history: Sequence[Operation],
    model: Model[Any] = REGISTER,
    *,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    max_states: int | None = DEFAULT_MAX_STATES,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Check `history` for linearizability against `model`, each key on its own.

    `timeout_s` bounds the whole check and `max_states` each key's memo table (None: no
    bound); past either, the key's verdict is "gave up" and `ok` cannot be True. Every key
    is checked, in key order, even after a violation (until the deadline).
    """
    start = clock()
    deadline = None if timeout_s is None else start + timeout_s
    by_key: dict[str, list[int]] = {}
    for i, op in enumerate(history):
        by_key.setdefault(op.key, []).append(i)
    results = []
    for key in sorted(by_key):
        if deadline is not None and clock() > deadline:
            n = len(by_key[key])
            reason = f"not checked: the {timeout_s} s deadline passed"
            results.append(KeyResult(key, Verdict.GAVE_UP, n, 0, 0, 0, 0.0, reason=reason))
            continue
        results.append(
            _check_key(
                key,
                by_key[key],
                history=history,
                model=model,
                deadline=deadline,
                max_states=max_states,
                clock=clock,
            )
        )
    verdicts = {r.verdict for r in results}
    ok: bool | None = True
    if Verdict.NOT_LINEARIZABLE in verdicts:
        ok = False
    elif Verdict.GAVE_UP in verdicts:
        ok = None
    result = Result(ok, tuple(results), tuple(history), clock() - start)
    logger.info(
        "linearizability checked ok=%s keys=%d operations=%d states=%d elapsed=%.3fs",
        ok,
        len(results),
        len(history),
        sum(r.states for r in results),
        result.elapsed_s,
    )
    return result


def _check_key(
    key: str,
    indexes: list[int],
    *,
    history: Sequence[Operation],
    model: Model[Any],
    deadline: float | None,
    max_states: int | None,
    clock: Callable[[], float],
) -> KeyResult:
    start = clock()
    kept = [i for i in indexes if not (history[i].unknown and model.read_only(history[i]))]
    ops = [history[i] for i in kept]
    n = len(ops)
    indeterminate = sum(op.unknown for op in ops)
    dropped = len(indexes) - n
    if indeterminate == n:  # nothing has to be linearized
        return KeyResult(key, Verdict.LINEARIZABLE, n, indeterminate, dropped, 0, clock() - start)
    ev = _Events(ops, model)
    nxt, prv, is_call, ret_of, blind = ev.nxt, ev.prv, ev.is_call, ev.ret_of, ev.blind
    read_only, only_state = ev.read_only, ev.only_state
    cls_of, cls_used, canonical = ev.cls_of, ev.cls_used, ev.canonical
    node_op = [ops[j] for j in ev.op_of]  # node -> operation (heads: any)
    node_bit = [1 << j for j in ev.op_of]
    nil = _NIL
    step = model.step

    # Memo: (determinate set, state) -> the indeterminate sets seen with it, kept minimal: a
    # configuration is skipped if one with the same determinate set and state and a subset
    # of its indeterminate operations was seen (it had every option this one has).
    memo: dict[tuple[int, Any], list[int]] = {}
    visited = 0
    frames: list[_Frame] = []
    state: Any = model.init()
    lin_det = lin_unk = 0
    remaining = n - indeterminate  # determinate operations not yet linearized
    deepest: tuple[list[_Frame], Any, int, list[int]] | None = None
    # The scan cursor: phase, node (phases R, A, B) or pair index (phase C).
    phase = _R
    o = nxt[_HEAD]
    u = nil
    frontier = nil  # the first remaining return, once phase R has reached it
    pairs: list[tuple[int, int]] = []
    idx = 0
    steps = 0

    def result(verdict: Verdict, **kw: Any) -> KeyResult:
        elapsed = clock() - start
        return KeyResult(key, verdict, n, indeterminate, dropped, visited, elapsed, **kw)

    while remaining:
        steps += 1
        if steps % _CLOCK_EVERY == 0 and deadline is not None and clock() > deadline:
            return result(Verdict.GAVE_UP, reason=f"deadline passed after {visited} states")
        if phase == _R:
            if not is_call[o]:
                frontier = o
                phase, o = _A, nxt[_HEAD]
                continue
            if not read_only[o]:
                o = nxt[o]
                continue
            u = nil
        elif phase == _A:
            if o == frontier:
                phase, o = _B, nxt[_HEAD_UNKNOWN]
                continue
            if read_only[o]:  # illegal here, or phase R would have taken it
                o = nxt[o]
                continue
            u = nil
        elif phase == _B:
            if o == nil or o > frontier:
                phase, idx, pairs = _C, 0, ev.pairs(frontier, state)
                continue
            if blind[o] or not canonical(o):
                o = nxt[o]
                continue
            u = nil
        elif idx < len(pairs):
            u, o = pairs[idx]
        else:
            # Dead end: the frontier's operation completed and nothing can come before it.
            if deepest is None or len(frames) > len(deepest[0]):
                deepest = (frames[:], state, frontier, nxt[:])  # explained if the search fails
            if not frames:
                prefix, state, frontier, nxt = deepest
                why = _explain(ops, kept, prefix, state, frontier, ev=ev, nxt=nxt, model=model)
                return result(Verdict.NOT_LINEARIZABLE, explanation=why)
            phase, u, o, pairs, idx, state, frontier, lin_det, lin_unk = frames.pop()
            r = ret_of[o]
            if r != nil:
                remaining += 1
                nxt[prv[r]] = r
                if nxt[r] != nil:
                    prv[nxt[r]] = r
            for x in (o, u):
                if x != nil:
                    nxt[prv[x]] = x
                    if nxt[x] != nil:
                        prv[nxt[x]] = x
                    if cls_of[x] != nil:
                        cls_used[cls_of[x]] -= 1
            if phase == _R:  # a forced step failed: the configuration has no other option
                phase, idx, pairs, frontier = _C, 0, [], ev.frontier(nxt)
            elif phase == _C:
                idx += 1
            else:
                o = nxt[o]
            continue

        # Try the candidate: `o`, preceded by the indeterminate blind operation `u` if any.
        before = state if u == nil else ev.blind_state[u]
        only = only_state[o]
        if only is None or only[0] == before:
            legal, new_state = step(before, node_op[o])
        else:
            legal = False
        r = ret_of[o]
        if legal and (r != nil or new_state != before):  # a no-op adds nothing
            if r != nil:
                new_det, new_unk = lin_det | node_bit[o], lin_unk
            else:
                new_det, new_unk = lin_det, lin_unk | node_bit[o]
            if u != nil:
                new_unk |= node_bit[u]
            seen = memo.get((new_det, new_state))
            if seen is None:
                memo[new_det, new_state] = [new_unk]
                fresh = True
            elif any(s | new_unk == new_unk for s in seen):
                fresh = False
            else:
                seen[:] = [s for s in seen if s | new_unk != s]
                seen.append(new_unk)
                fresh = True
            if fresh:
                visited += 1
                if max_states is not None and visited > max_states:
                    reason = f"state budget exhausted ({max_states} states)"
                    return result(Verdict.GAVE_UP, reason=reason)
                frames.append((phase, u, o, pairs, idx, state, frontier, lin_det, lin_unk))
                state, lin_det, lin_unk = new_state, new_det, new_unk
                for x in (u, o, r):
                    if x != nil:
                        p, q = prv[x], nxt[x]
                        nxt[p] = q
                        if q != nil:
                            prv[q] = p
                        if cls_of[x] != nil:
                            cls_used[cls_of[x]] += 1
                if r != nil:
                    remaining -= 1
                phase, o = _R, nxt[_HEAD]
                continue
            if phase == _R:  # the forced step was explored before: so was this
                phase, idx, pairs, frontier = _C, 0, [], ev.frontier(nxt)
                continue
        if phase == _C:
            idx += 1
        else:
            o = nxt[o]

    order: list[int] = []
    for f in frames:
        order.extend(kept[ev.op_of[x]] for x in (f[1], f[2]) if x != nil)
    return result(Verdict.LINEARIZABLE, linearization=tuple(order))


# The candidates of a configuration are scanned in phases. R: the determinate read-only
# calls before the first remaining return (the frontier); a legal one is a forced step,
# explored alone. A: the other determinate calls before the frontier. B: the indeterminate
# calls before it that are not blind. C: pairs (blind indeterminate call, non-blind call)
# taken as one step.
_R, _A, _B, _C = 0, 1, 2, 3
_NIL = -1
_HEAD = 0  # head of the list of determinate calls and returns
_HEAD_UNKNOWN = 1  # head of the list of indeterminate calls
# (phase, blind node or nil, node, pairs, pair index, state, frontier, det set, unknown set):
# a step taken, and what backtracking restores.
_Frame = tuple[int, int, int, list[tuple[int, int]], int, Any, int, int, int]


class _Events:
    """The events of one key as two doubly linked lists over shared arrays, by node number.

    Determinate operations contribute a call and a return, linked in time order from
    `_HEAD`; indeterminate ones a call only, linked in time order from `_HEAD_UNKNOWN`.
    Nodes are numbered in the merged time order (calls before returns on ties), so an
    indeterminate call is a candidate while its number is below the frontier's.
    """

    def __init__(self, ops: Sequence[Operation], model: Model[Any]) -> None:
        events: list[tuple[int, int, int]] = []  # (time, 0 call | 1 return, operation)
        for j, op in enumerate(ops):
            events.append((op.invoke_ns, 0, j))
            if op.complete_ns is not None:
                events.append((op.complete_ns, 1, j))
        events.sort()
        size = len(events) + 2
        self.nxt = [_NIL] * size
        self.prv = [_NIL] * size
        self.op_of = [0] * size
        self.is_call = [False] * size
        self.ret_of = [_NIL] * size  # call node -> its return node (nil if indeterminate)
        self.blind = [False] * size  # a blind call (see Model.blind)
        self.blind_state: list[Any] = [None] * size  # the state it leaves
        self.only_state: list[tuple[Any] | None] = [None] * size  # see Model.only_state
        self.read_only = [False] * size
        # Interchangeable indeterminate calls form a class: blind ones leaving the same state,
        # others with the same kind and arguments. Only a class's first pending call (in
        # time order) is a candidate; the linearized ones are always a prefix of the class.
        self.cls_of = [_NIL] * size
        self.cls_nodes: list[list[int]] = []
        self.cls_used: list[int] = []
        classes: dict[Any, int] = {}
        tail = [_HEAD, _HEAD_UNKNOWN]
        call_node = [_NIL] * len(ops)
        for node, (_time, kind, j) in enumerate(events, start=2):
            op = ops[j]
            self.op_of[node] = j
            if kind == 0:
                self.is_call[node] = True
                call_node[j] = node
            else:
                self.ret_of[call_node[j]] = node
            if kind == 0 and model.blind(op):
                self.blind[node] = True
                self.blind_state[node] = model.step(model.init(), op)[1]
            elif kind == 0:
                self.only_state[node] = model.only_state(op)
                self.read_only[node] = model.read_only(op)
            if op.unknown:
                name = (
                    ("blind", self.blind_state[node])
                    if self.blind[node]
                    else (op.kind, op.value, op.expected)
                )
                c = classes.setdefault(name, len(classes))
                if c == len(self.cls_nodes):
                    self.cls_nodes.append([])
                    self.cls_used.append(0)
                self.cls_of[node] = c
                self.cls_nodes[c].append(node)
            t = tail[op.unknown]
            self.prv[node], self.nxt[t], tail[op.unknown] = t, node, node
        for nodes in self.cls_nodes:
            nodes.append(_NIL)  # past the end: the class is used up
        self.ops = ops
        self.step = model.step

    def canonical(self, node: int) -> bool:
        """True for the first pending call of an indeterminate call's class."""
        c = self.cls_of[node]
        return self.cls_nodes[c][self.cls_used[c]] == node

    def frontier(self, nxt: list[int]) -> int:
        """The first remaining return (phase R has not always reached it)."""
        node = nxt[_HEAD]
        while self.is_call[node]:
            node = nxt[node]
        return node

    def pairs(self, frontier: int, state: Any) -> list[tuple[int, int]]:
        """Phase C's candidates: each blind indeterminate call before `frontier`, right
        before each non-blind call before it that it may make legal.

        Pairs that cannot matter are left out: a blind write that the next operation does
        not observe is useless, and one placed before a read-only operation that is legal
        without it could as well come after it.
        """
        by_state: dict[Any, int] = {}
        blinds: list[int] = []
        others: list[int] = []
        node = self.nxt[_HEAD_UNKNOWN]
        while node != _NIL and node < frontier:
            if self.canonical(node):
                if self.blind[node]:
                    blinds.append(node)
                    by_state[self.blind_state[node]] = node
                else:
                    others.append(node)
            node = self.nxt[node]
        if not blinds:
            return []
        node = self.nxt[_HEAD]
        while node != frontier:
            if self.is_call[node] and not self.blind[node]:
                others.append(node)
            node = self.nxt[node]
        pairs: list[tuple[int, int]] = []
        for o in others:
            if self.read_only[o] and self.step(state, self.ops[self.op_of[o]])[0]:
                continue
            only = self.only_state[o]
            if only is None:
                pairs.extend((u, o) for u in blinds)
            elif only[0] in by_state:
                pairs.append((by_state[only[0]], o))
        return pairs


def _explain(
    ops: list[Operation],
    kept: list[int],
    frames: list[_Frame],
    state: Any,
    frontier: int,
    *,
    ev: _Events,
    nxt: list[int],
    model: Model[Any],
) -> Explanation:
    """Describe a dead end; `nxt` is the list links as they were there."""
    candidates = []
    node = nxt[_HEAD]
    while node != frontier:
        if ev.is_call[node]:
            j = ev.op_of[node]
            candidates.append((kept[j], model.step(state, ops[j])[0]))
        node = nxt[node]
    node = nxt[_HEAD_UNKNOWN]
    while node != _NIL and node < frontier:
        j = ev.op_of[node]
        candidates.append((kept[j], model.step(state, ops[j])[0]))
        node = nxt[node]
    prefix: list[int] = []
    for f in frames:
        prefix.extend(kept[ev.op_of[x]] for x in (f[1], f[2]) if x != _NIL)
    return Explanation(
        prefix=tuple(prefix),
        state=model.describe_state(state),
        blocking=kept[ev.op_of[frontier]],
        candidates=tuple(candidates),
    )


def _render(result: Result, max_prefix: int) -> str:
    history = result.history
    origin = min((op.invoke_ns for op in history), default=0)
    total = len(history)
    unknown = sum(op.unknown for op in history)
    states = sum(k.states for k in result.keys)
    keys = len(result.keys)
    head = (
        f"{keys} key{'' if keys == 1 else 's'}, {total} operations ({unknown} indeterminate), "
        f"{states} states, {result.elapsed_s:.3f} s"
    )
    if result.ok:
        return f"linearizable: {head}"
    lines = [f"{'NOT LINEARIZABLE' if result.ok is False else 'GAVE UP (a failure)'}: {head}"]

    def row(i: int, note: str = "") -> str:
        op = history[i]
        t0 = (op.invoke_ns - origin) / 1e6
        t1 = "inf" if op.complete_ns is None else f"{(op.complete_ns - origin) / 1e6:.3f}"
        text = f"    #{i:<5} client {op.client:<3} {op.describe():<40} [{t0:.3f}, {t1}] ms"
        return f"{text}  {note}" if note else text

    for k in result.failures:
        lines.append(
            f"key {k.key!r}: {k.verdict} ({k.operations} operations, {k.indeterminate} "
            f"indeterminate, {k.dropped} indeterminate reads dropped, {k.states} states)"
        )
        if k.verdict is Verdict.GAVE_UP:
            lines.append(f"  {k.reason}: this key proves nothing; count it as a failure")
            continue
        e = k.explanation
        if e is None:
            continue
        lines.append(f"  longest linearizable prefix: {len(e.prefix)} operations")
        shown = e.prefix[-max_prefix:] if max_prefix > 0 else ()
        if len(shown) < len(e.prefix):
            lines.append(f"    ... {len(e.prefix) - len(shown)} earlier operations")
        lines.extend(row(i) for i in shown)
        lines.append(f"  state after the prefix: {e.state}")
        lines.append(f"  #{e.blocking} completed, but nothing invoked before then can come next:")
        for i, legal in e.candidates:
            why = "legal here, but every continuation fails" if legal else "illegal here"
            lines.append(row(i, why))
    return "\n".join(lines)
