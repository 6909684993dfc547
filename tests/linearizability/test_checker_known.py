"""Known histories of one register, linearizable or not, with their verdicts.

Linearizability (Herlihy & Wing 1990, §2): each operation takes effect at one instant inside
its interval, and the resulting order is a legal sequential run. Indeterminate operations
(outcome unknown) may take effect at any instant after their invocation, or never.
"""

from __future__ import annotations

import pytest

from controlplane.linearizability import Operation, Verdict, check

from .builders import assert_valid_linearization, cas, d, r, w

Case = tuple[str, list[Operation], bool]

SEQUENTIAL: list[Case] = [
    ("empty", [], True),
    ("read of an absent key", [r(0, None, 0, 1)], True),
    ("write then read", [w(0, "a", 0, 1), r(0, "a", 2, 3)], True),
    ("last write wins", [w(0, "a", 0, 1), w(1, "b", 2, 3), r(2, "b", 4, 5)], True),
    ("delete then read absent", [w(0, "a", 0, 1), d(0, 2, 3), r(0, None, 4, 5)], True),
    ("cas swaps", [w(0, "a", 0, 1), cas(0, "a", "b", True, 2, 3), r(0, "b", 4, 5)], True),
    ("cas fails on another value", [w(0, "a", 0, 1), cas(0, "x", "b", False, 2, 3)], True),
    ("cas creates an absent key", [cas(0, None, "a", True, 0, 1), r(0, "a", 2, 3)], True),
    ("cas from absent fails when present", [w(0, "a", 0, 1), cas(0, None, "b", False, 2, 3)], True),
]

CONCURRENT: list[Case] = [
    ("read during a write sees it", [w(0, "a", 0, 10), r(1, "a", 2, 3)], True),
    ("read during a write misses it", [w(0, "a", 0, 10), r(1, None, 2, 3)], True),
    ("equal timestamps overlap", [w(0, "a", 0, 5), r(1, None, 5, 6)], True),
    (
        "concurrent writes, a last",
        [w(0, "a", 0, 10), w(1, "b", 0, 10), r(2, "a", 11, 12)],
        True,
    ),
    (
        "concurrent writes, b last",
        [w(0, "a", 0, 10), w(1, "b", 0, 10), r(2, "b", 11, 12)],
        True,
    ),
    (
        "reads flip once during a write",
        [w(0, "a", 0, 10), r(1, None, 1, 2), r(1, "a", 3, 4), r(2, "a", 5, 6)],
        True,
    ),
    (
        "racing cas: one wins",
        [
            w(0, "a", 0, 1),
            cas(1, "a", "b", True, 2, 10),
            cas(2, "a", "c", False, 2, 10),
            r(0, "b", 11, 12),
        ],
        True,
    ),
]

VIOLATIONS: list[Case] = [
    (
        "stale read after a completed write",
        [w(0, "a", 0, 1), w(1, "b", 2, 3), r(2, "a", 4, 5)],
        False,
    ),
    ("read of a value never written", [w(0, "a", 0, 1), r(1, "z", 2, 3)], False),
    ("lost acknowledged write", [w(0, "a", 0, 1), r(1, None, 2, 3)], False),
    ("read before the write was invoked", [r(0, "a", 0, 1), w(1, "a", 2, 3)], False),
    ("deleted value comes back", [w(0, "a", 0, 1), d(0, 2, 3), r(1, "a", 4, 5)], False),
    (
        "new-old inversion",
        [w(0, "a", 0, 10), r(1, "a", 1, 2), r(2, None, 3, 4)],
        False,
    ),
    (
        "two reads observe writes in opposite orders",
        [
            w(0, "a", 0, 100),
            w(1, "b", 0, 100),
            r(2, "a", 10, 20),
            r(2, "b", 30, 40),
            r(3, "b", 10, 20),
            r(3, "a", 30, 40),
        ],
        False,
    ),
    (
        "cas succeeds twice from the same expected value",
        [w(0, "a", 0, 1), cas(1, "a", "b", True, 2, 10), cas(2, "a", "c", True, 2, 10)],
        False,
    ),
    ("cas fails on the expected value", [w(0, "a", 0, 1), cas(1, "a", "b", False, 2, 3)], False),
    ("cas succeeds on another value", [w(0, "a", 0, 1), cas(1, "x", "b", True, 2, 3)], False),
]

INDETERMINATE: list[Case] = [
    ("unknown write explains a later read", [w(0, "a", 0, None), r(1, "a", 100, 101)], True),
    (
        "unknown write takes effect long after",
        [
            w(0, "a", 0, 1),
            w(1, "b", 2, None),
            w(2, "c", 3, 4),
            r(0, "c", 5, 6),
            r(0, "b", 7, 8),
        ],
        True,
    ),
    (
        "unknown write never takes effect",
        [w(0, "a", 0, 1), w(1, "b", 2, None), r(0, "a", 10, 11), r(2, "a", 20, 21)],
        True,
    ),
    (
        "unknown cas explains a read",
        [w(0, "a", 0, 1), cas(1, "a", "b", None, 2, None), r(0, "b", 9, 10)],
        True,
    ),
    ("unknown delete explains absence", [w(0, "a", 0, 1), d(1, 2, None), r(0, None, 5, 6)], True),
    ("unknown read is ignored", [w(0, "a", 0, 1), r(1, None, 2, None)], True),
    ("only unknown operations", [w(0, "a", 0, None), cas(1, "a", "b", None, 0, None)], True),
    (
        "unknown write makes a cas fail",
        [w(0, "a", 0, 1), w(1, "b", 2, None), cas(2, "a", "c", False, 3, 4), r(0, "b", 5, 6)],
        True,
    ),
    (
        "unknown write then unknown cas explain a read",
        [w(0, "a", 0, 1), w(1, "b", 2, None), cas(2, "b", "c", None, 3, None), r(0, "c", 9, 10)],
        True,
    ),
    (
        "unknown write cannot act before its invocation",
        [r(0, "a", 0, 1), w(1, "a", 2, None)],
        False,
    ),
    (
        "unknown write cannot be undone",
        [w(0, "a", 0, 1), w(1, "b", 2, None), r(2, "b", 3, 4), r(2, "a", 5, 6)],
        False,
    ),
    (
        "unknown cas cannot swap from another value",
        [w(0, "a", 0, 1), cas(1, "x", "b", None, 2, None), r(0, "b", 9, 10)],
        False,
    ),
    (
        "unknown write cannot both fail a cas and stay unseen",
        [w(0, "a", 0, 1), w(1, "b", 2, None), cas(2, "a", "c", False, 3, 4), r(0, "a", 5, 6)],
        False,
    ),
    (
        "unknown read explains nothing",
        [w(0, "a", 0, 1), r(1, None, 2, None), r(2, "z", 3, 4)],
        False,
    ),
]


def cases(*tables: list[Case]) -> list[object]:
    return [pytest.param(h, ok, id=name) for table in tables for name, h, ok in table]


@pytest.mark.parametrize(
    ("history", "ok"), cases(SEQUENTIAL, CONCURRENT, VIOLATIONS, INDETERMINATE)
)
def test_known_history(history: list[Operation], ok: bool) -> None:
    """A known history gets its known verdict; a positive one comes with a valid order."""
    result = check(history)
    assert result.ok is ok, result.render()
    if ok:
        assert_valid_linearization(history, [i for k in result.keys for i in k.linearization])


def test_stale_read_is_explained() -> None:
    """The explanation names the read that cannot be placed and the state it contradicts."""
    history = [
        w(0, "a", 0, 1_000_000),
        w(1, "b", 2_000_000, 3_000_000),
        r(2, "a", 4_000_000, 5_000_000),
    ]
    result = check(history)
    (key,) = result.failures
    assert key.verdict is Verdict.NOT_LINEARIZABLE
    assert key.explanation is not None
    assert key.explanation.prefix == (0, 1)
    assert key.explanation.state == "'b'"
    assert key.explanation.blocking == 2
    assert key.explanation.candidates == ((2, False),)
    text = result.render()
    assert "NOT LINEARIZABLE" in text
    assert "key 'k': not linearizable" in text
    assert "state after the prefix: 'b'" in text
    assert "#2 completed, but nothing invoked before then can come next" in text
    assert "read -> 'a'" in text and "illegal here" in text
    assert "[4.000, 5.000] ms" in text


def test_explanation_marks_legal_dead_ends() -> None:
    """A candidate legal in the state but leading nowhere is told apart from an illegal one."""
    history = [w(0, "a", 0, 1), w(1, "b", 2, None), r(2, "z", 3, 4)]
    result = check(history)
    (key,) = result.failures
    assert key.explanation is not None
    assert key.explanation.blocking == 2
    assert key.explanation.candidates == ((2, False), (1, True))
    text = result.render()
    assert "write 'b' (outcome unknown)" in text
    assert "legal here, but every continuation fails" in text
    assert ", inf] ms" in text


def test_keys_are_checked_independently() -> None:
    """Linearizability is local: the verdict is per key, and one bad key fails the history."""
    history = [
        w(0, "a", 0, 1, key="x"),
        r(1, "a", 2, 3, key="x"),
        w(0, "a", 0, 1, key="y"),
        w(0, "b", 2, 3, key="y"),
        r(1, "a", 4, 5, key="y"),
        r(2, None, 0, 1, key="z"),
    ]
    result = check(history)
    assert result.ok is False
    assert [k.key for k in result.keys] == ["x", "y", "z"]
    assert [k.key for k in result.failures] == ["y"]
    assert result.keys[0].linearization == (0, 1)
    assert result.failures[0].explanation is not None
    assert result.failures[0].explanation.blocking == 4  # an index into the whole history


def test_unknown_reads_are_dropped_and_counted() -> None:
    """Indeterminate reads constrain nothing: they are dropped before the search."""
    history = [w(0, "a", 0, 1), r(1, None, 2, None), r(2, None, 3, None), w(0, "b", 4, None)]
    (key,) = check(history).keys
    assert (key.operations, key.indeterminate, key.dropped) == (2, 1, 2)
