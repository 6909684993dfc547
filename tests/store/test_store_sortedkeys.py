"""SortedKeys (controlplane.store.sortedkeys): an ordered set that agrees with sorted()."""

from __future__ import annotations

import random

import pytest

from controlplane.store.sortedkeys import SortedKeys


@pytest.mark.parametrize("load", [1, 2, 7, 512], ids=lambda n: f"load-{n}")
def test_matches_a_sorted_set_under_random_operations(load: int) -> None:
    """Random adds and discards (present or not) keep exactly the keys a set would, in
    order, and every range [start, end) or [start, ...) agrees with filtering sorted()."""
    rng = random.Random(load)
    sk = SortedKeys(load=load)
    model: set[bytes] = set()
    universe = [bytes([rng.randrange(97, 102)]) * rng.randrange(1, 4) for _ in range(60)]
    for _ in range(2000):
        k = rng.choice(universe)
        if rng.random() < 0.6:
            sk.add(k)
            model.add(k)
        else:
            sk.discard(k)
            model.discard(k)
        if rng.random() < 0.1:
            start = rng.choice(universe)
            end = rng.choice([None, *universe])
            want = [x for x in sorted(model) if x >= start and (end is None or x < end)]
            assert list(sk.irange(start, end)) == want
    assert list(sk) == sorted(model)
    assert len(sk) == len(model)
    assert all(k in sk for k in model)
    assert b"zz" not in sk


def test_bulk_construction_sorts_and_dedupes() -> None:
    """The constructor accepts keys in any order, with duplicates."""
    sk = SortedKeys([b"c", b"a", b"b", b"a"], load=1)
    assert list(sk) == [b"a", b"b", b"c"]
    assert list(sk.irange(b"b", None)) == [b"b", b"c"]
    assert list(sk.irange(b"a", b"a")) == []
    assert list(sk.irange(b"d", None)) == []


def test_load_must_be_positive() -> None:
    """A chunk load below 1 is refused."""
    with pytest.raises(ValueError, match="load"):
        SortedKeys(load=0)
