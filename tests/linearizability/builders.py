"""Compact constructors of operations for table-driven tests, and a linearization validator.

`w(client, value, invoke, complete)`: a write; `complete=None` makes it indeterminate. The
other builders follow the same order. Times are plain integers (nanoseconds).
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.linearizability import REGISTER, Operation, OpKind, Result, Value


def w(client: int, value: str, invoke: int, complete: int | None, key: str = "k") -> Operation:
    return Operation(client, OpKind.WRITE, key, invoke, complete, value)


def r(client: int, value: Value, invoke: int, complete: int | None, key: str = "k") -> Operation:
    """A read that returned `value`; an indeterminate read (complete None) returns nothing."""
    return Operation(
        client, OpKind.READ, key, invoke, complete, None if complete is None else value
    )


def d(client: int, invoke: int, complete: int | None, key: str = "k") -> Operation:
    return Operation(client, OpKind.DELETE, key, invoke, complete)


def cas(  # noqa: PLR0917 (a table row reads best positionally)
    client: int,
    expected: Value,
    new: Value,
    succeeded: bool | None,
    invoke: int,
    complete: int | None,
    *,
    key: str = "k",
) -> Operation:
    return Operation(client, OpKind.CAS, key, invoke, complete, new, expected, succeeded)


def assert_valid_linearization(history: Sequence[Operation], order: Sequence[int]) -> None:
    """`order` places every determinate operation once, indeterminate ones at most once, each
    key's operations form a legal register run, and points can be chosen inside the
    intervals in that order (ties allowed: equal timestamps overlap)."""
    assert len(set(order)) == len(order), "an operation is placed twice"
    placed = set(order)
    missing = [i for i, op in enumerate(history) if not op.unknown and i not in placed]
    assert not missing, f"determinate operations not placed: {missing}"
    states: dict[str, Value] = {}
    points: dict[str, int] = {}
    for i in order:
        op = history[i]
        legal, states[op.key] = REGISTER.step(states.get(op.key), op)
        assert legal, f"#{i} {op.describe()} is illegal in the linearization"
        point = max(points.get(op.key, op.invoke_ns), op.invoke_ns)
        assert op.complete_ns is None or point <= op.complete_ns, f"#{i} placed after it returned"
        points[op.key] = point


def assert_valid_explanation(history: Sequence[Operation], result: Result) -> None:
    """Each failed key's explanation is consistent: its prefix is a legal order of operations
    of that key, and the blocking operation is a determinate one outside the prefix, among the
    candidates, which are all unplaced operations invoked before it completed."""
    for key in result.failures:
        e = key.explanation
        assert e is not None
        prefix = list(e.prefix)
        assert all(history[i].key == key.key for i in prefix)
        state: Value = None
        for i in prefix:
            legal, state = REGISTER.step(state, history[i])
            assert legal, f"#{i} is illegal in the explained prefix"
        assert e.state == REGISTER.describe_state(state)
        blocking = history[e.blocking]
        assert blocking.complete_ns is not None
        assert e.blocking not in prefix
        assert e.blocking in [i for i, _ in e.candidates]
        for i, legal in e.candidates:
            assert i not in prefix
            assert history[i].invoke_ns <= blocking.complete_ns
            assert legal == REGISTER.step(state, history[i])[0]
