"""Seeded random histories: real executions of a register must pass, corrupted ones must not,
and on small histories the checker agrees with an exhaustive search that has no pruning."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import pytest

from controlplane.linearizability import REGISTER, Operation, OpKind, check
from controlplane.linearizability.simulate import (
    Workload,
    corrupt_lost_write,
    corrupt_never_written,
    corrupt_stale_read,
    random_history,
)

from .builders import assert_valid_explanation, assert_valid_linearization

WORKLOADS = {
    "5 clients": Workload(clients=5, operations=300),
    "10 clients": Workload(clients=10, operations=300),
    "3 keys": Workload(clients=8, operations=300, keys=3),
    "no unknowns": Workload(clients=5, operations=300, unknown_rate=0.0),
    "20% unknowns": Workload(clients=5, operations=300, unknown_rate=0.2),
    "writes only": Workload(
        clients=5, operations=200, write_rate=1.0, cas_rate=0.0, delete_rate=0.0
    ),
    "cas heavy": Workload(clients=5, operations=300, write_rate=0.1, cas_rate=0.6),
}


@pytest.mark.parametrize("workload", WORKLOADS.values(), ids=WORKLOADS.keys())
@pytest.mark.parametrize("seed", range(4))
def test_real_execution_is_linearizable(workload: Workload, seed: int) -> None:
    """A history recorded from a sequential register is linearizable, with a valid order."""
    history = random_history(seed, workload)
    result = check(history, timeout_s=None)
    assert result.passed, result.render()
    order = [i for k in result.keys for i in k.linearization]
    assert_valid_linearization(history, order)


Corruption = Callable[[list[Operation]], tuple[int, list[Operation]] | None]
CORRUPTIONS: dict[str, tuple[Corruption, Workload]] = {
    "read of a value never written": (corrupt_never_written, Workload()),
    "stale read": (corrupt_stale_read, Workload()),
    "lost write": (corrupt_lost_write, Workload(delete_rate=0.0)),
    "stale read, 10 clients": (corrupt_stale_read, Workload(clients=10)),
    "stale read, 20% unknowns": (corrupt_stale_read, Workload(unknown_rate=0.2)),
}


@pytest.mark.parametrize(("corrupt", "workload"), CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
@pytest.mark.parametrize("seed", range(4))
def test_corrupted_output_is_rejected(corrupt: Corruption, workload: Workload, seed: int) -> None:
    """One read changed to an impossible value makes the history non-linearizable, and the
    explanation stops at that read."""
    found = corrupt(random_history(seed, workload))
    assert found is not None
    index, history = found
    result = check(history, timeout_s=None)
    assert result.ok is False
    (key,) = result.failures
    assert key.key == history[index].key
    assert key.explanation is not None
    assert key.explanation.blocking == index
    assert_valid_explanation(history, result)
    assert f"#{index} completed" in result.render()


# -- agreement with an exhaustive search ------------------------------------------------------


def exhaustive(history: list[Operation]) -> bool:
    """Linearizable? By trying every order (memoized on the remaining set, no other pruning):
    an operation may come next unless a remaining determinate one returned before it began."""

    @functools.cache
    def search(remaining: frozenset[int], state: str | None) -> bool:
        if all(history[i].unknown for i in remaining):
            return True
        for i in remaining:
            op = history[i]
            blocked = any(
                (c := history[p].complete_ns) is not None and c < op.invoke_ns
                for p in remaining
                if p != i
            )
            legal, after = REGISTER.step(state, op)
            if not blocked and legal and search(remaining - {i}, after):
                return True
        return False

    return search(frozenset(range(len(history))), None)


def random_op(rng: random.Random, client: int, unknown_rate: float, span: int) -> Operation:
    """Any operation, with arbitrary outputs: about half of such histories are linearizable."""
    values = ["a", "b", "c", None]
    invoke = rng.randrange(20)
    complete = None if rng.random() < unknown_rate else invoke + rng.randrange(span)
    kind = rng.choice([OpKind.READ, OpKind.READ, OpKind.WRITE, OpKind.CAS, OpKind.DELETE])
    if kind is OpKind.READ:
        value = None if complete is None else rng.choice(values)
        return Operation(client, kind, "k", invoke, complete, value)
    if kind is OpKind.WRITE:
        return Operation(client, kind, "k", invoke, complete, rng.choice(values[:3]))
    if kind is OpKind.DELETE:
        return Operation(client, kind, "k", invoke, complete)
    succeeded = None if complete is None else rng.random() < 0.5
    expected, new = rng.choice(values), rng.choice(values)
    return Operation(client, kind, "k", invoke, complete, new, expected, succeeded)


@pytest.mark.parametrize(
    ("unknown_rate", "span"),
    [(0.0, 8), (0.25, 8), (0.5, 20)],
    ids=["determinate", "some unknown", "mostly unknown, long"],
)
@pytest.mark.parametrize("seed", range(2))
def test_agrees_with_exhaustive_search(unknown_rate: float, span: int, seed: int) -> None:
    """On 1500 small random histories the pruned search and the exhaustive one agree."""
    rng = random.Random(seed)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        history = [random_op(rng, c, unknown_rate, span) for c in range(rng.randrange(1, 9))]
        expected = exhaustive(history)
        result = check(history)
        assert result.ok is expected, history
        assert_valid_explanation(history, result)
        verdicts[expected] += 1
    assert min(verdicts.values()) > 300  # both verdicts are well represented
