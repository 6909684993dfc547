"""The checker's third verdict: it gave up (deadline or state budget). That is a failure."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from controlplane.linearizability import Verdict, check
from controlplane.linearizability.simulate import Workload, corrupt_stale_read, random_history

from .builders import r, w


def test_state_budget_exhausted_is_not_a_pass() -> None:
    """A search that exceeds max_states reports "gave up": ok is None and passed is False."""
    history = random_history(0, Workload(operations=100))
    result = check(history, max_states=5)
    assert result.ok is None
    assert not result.passed
    (key,) = result.failures
    assert key.verdict is Verdict.GAVE_UP
    assert key.reason == "state budget exhausted (5 states)"
    text = result.render()
    assert text.startswith("GAVE UP (a failure)")
    assert "this key proves nothing; count it as a failure" in text


def test_budget_large_enough_passes() -> None:
    """The same history with room to search is linearizable (the budget is the only cause)."""
    history = random_history(0, Workload(operations=100))
    assert check(history, max_states=10_000).passed


def fake_clock(*readings: float) -> Callable[[], float]:
    """Returns the readings in turn, then the last one forever."""
    it = itertools.chain(readings, itertools.repeat(readings[-1]))
    return lambda: next(it)


def test_deadline_during_a_search() -> None:
    """The deadline is checked during a search: past it, the key's verdict is "gave up"."""
    found = corrupt_stale_read(random_history(1, Workload(operations=1500)))
    assert found is not None
    # check() start, the key's turn, the key's start: then every reading is past the deadline.
    result = check(found[1], timeout_s=10.0, clock=fake_clock(0.0, 0.0, 0.0, 11.0))
    assert result.ok is None
    (key,) = result.failures
    assert key.reason.startswith("deadline passed after")


def test_keys_after_the_deadline_are_not_checked() -> None:
    """Keys not reached before the deadline are reported as not checked."""
    history = [w(0, "a", 0, 1, key="x"), r(1, "a", 2, 3, key="x"), r(1, None, 2, 3, key="y")]
    ticks = itertools.count()  # one second per reading: x is checked within 3 s, then y is late
    result = check(history, timeout_s=3.0, clock=lambda: float(next(ticks)))
    assert result.ok is None
    assert [k.verdict for k in result.keys] == [Verdict.LINEARIZABLE, Verdict.GAVE_UP]
    assert result.keys[1].reason == "not checked: the 3.0 s deadline passed"


def test_violation_outranks_gave_up() -> None:
    """A violation on one key makes ok False even if the checker gave up on another."""
    bad = [w(0, "a", 0, 1, key="a"), r(1, None, 2, 3, key="a")]
    big = random_history(0, Workload(operations=100))  # on key "k0"
    result = check(bad + big, max_states=5)
    assert result.ok is False
    assert [k.verdict for k in result.keys] == [Verdict.NOT_LINEARIZABLE, Verdict.GAVE_UP]
