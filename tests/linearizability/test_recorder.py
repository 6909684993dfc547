"""The recorder: timestamps around each call, the three outcomes, the context manager, and
concurrent use from threads and asyncio tasks (ending in a check, as a chaos test does)."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.linearizability import HistoryError, OpKind, Recorder, check, load_history

from .builders import cas, d, r, w


def fake_recorder() -> Recorder:
    """A recorder whose clock reads 10, 20, 30, ... (one reading per timestamp)."""
    ticks = itertools.count(10, 10)
    return Recorder(clock=lambda: next(ticks))


def test_outcomes() -> None:
    """ok records the output, unknown leaves the interval open, fail drops the call."""
    rec = fake_recorder()
    a = rec.invoke(0, OpKind.WRITE, "k", value="a")  # 10
    b = rec.invoke(1, OpKind.READ, "k")  # 20
    c = rec.invoke(2, OpKind.CAS, "k", expected="a", value="b")  # 30
    e = rec.invoke(3, OpKind.DELETE, "k")  # 40
    f = rec.invoke(4, OpKind.WRITE, "k", value="x")  # 50
    rec.ok(b, value="a")  # 60
    rec.ok(a)  # 70
    rec.unknown(c)
    rec.fail(f)
    rec.ok(e)  # 80
    assert rec.history() == [
        w(0, "a", 10, 70),
        r(1, "a", 20, 60),
        cas(2, "a", "b", None, 30, None),
        d(3, 40, 80),
    ]
    assert (rec.failed, rec.pending) == (1, 0)


def test_pending_calls_count_as_unknown() -> None:
    """A call still in flight when the history is taken may yet take effect: unknown."""
    rec = fake_recorder()
    rec.invoke(0, OpKind.WRITE, "k", value="a")
    assert rec.history() == [w(0, "a", 10, None)]
    assert rec.pending == 1


def test_bytes_are_decoded_losslessly() -> None:
    """Keys and values may be bytes, even non-UTF-8 ones."""
    rec = fake_recorder()
    rec.ok(rec.invoke(0, OpKind.WRITE, b"/reg/\xff", value=b"v\x80"))
    (op,) = rec.history()
    assert op.key.encode("utf-8", "surrogateescape") == b"/reg/\xff"
    assert op.value is not None and op.value.encode("utf-8", "surrogateescape") == b"v\x80"


MISUSE: dict[str, Callable[[Recorder], object]] = {
    "write without a value": lambda rec: rec.invoke(0, OpKind.WRITE, "k"),
    "unknown kind": lambda rec: rec.invoke(0, "incr", "k"),  # type: ignore[arg-type]
    "cas completed without succeeded": lambda rec: rec.ok(
        rec.invoke(0, OpKind.CAS, "k", value="b")
    ),
    "write completed with a value": lambda rec: rec.ok(
        rec.invoke(0, OpKind.WRITE, "k", value="a"), value="b"
    ),
    "completed twice": lambda rec: [rec.ok(i := rec.invoke(0, OpKind.DELETE, "k")), rec.ok(i)],
    "unknown id": lambda rec: rec.fail(42),
}


@pytest.mark.parametrize("misuse", MISUSE.values(), ids=MISUSE.keys())
def test_misuse_raises(misuse: Callable[[Recorder], object]) -> None:
    """Recording mistakes raise HistoryError at once, rather than corrupting the history."""
    with pytest.raises(HistoryError):
        misuse(fake_recorder())


def test_call_context_manager() -> None:
    """`with recorder.call(...)` invokes on entry; the outcome is given inside."""
    rec = fake_recorder()
    with rec.call(0, OpKind.WRITE, "k", value="a") as call:
        call.ok()
    with rec.call(1, OpKind.READ, "k") as call:
        call.ok(value="a")
    with rec.call(2, OpKind.WRITE, "k", value="b") as call:
        call.fail()
    assert rec.history() == [w(0, "a", 10, 20), r(1, "a", 30, 40)]


def test_call_exception_records_unknown_and_propagates() -> None:
    """An exception without an outcome leaves the call indeterminate and is not swallowed."""
    rec = fake_recorder()
    with pytest.raises(TimeoutError), rec.call(0, OpKind.WRITE, "k", value="a"):
        raise TimeoutError
    assert rec.history() == [w(0, "a", 10, None)]


def test_call_without_outcome_is_an_error() -> None:
    """Leaving the block normally without an outcome records unknown and raises."""
    rec = fake_recorder()
    with pytest.raises(HistoryError, match="without an outcome"), rec.call(0, OpKind.DELETE, "k"):
        pass
    assert rec.history() == [d(0, 10, None)]


def test_call_async_context_manager() -> None:
    """`async with` works the same, including cancellation (recorded as unknown)."""
    rec = fake_recorder()

    async def main() -> None:
        async with rec.call(0, OpKind.READ, "k") as call:
            call.ok(value=None)
        with pytest.raises(asyncio.CancelledError):
            async with rec.call(1, OpKind.WRITE, "k", value="a"):
                raise asyncio.CancelledError

    asyncio.run(main())
    assert rec.history() == [r(0, None, 10, 20), w(1, "a", 30, None)]


def test_threads_share_a_recorder() -> None:
    """Calls recorded from several threads at once are all kept, each with its outcome."""
    rec = Recorder()
    barrier = threading.Barrier(4)

    def client(c: int) -> None:
        barrier.wait()
        for n in range(300):
            rec.ok(rec.invoke(c, OpKind.WRITE, f"k{c}", value=str(n)))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = rec.history()
    assert len(history) == 1200
    assert all(not op.unknown for op in history)
    assert check(history).passed


# -- end to end: asyncio clients against an in-memory store -----------------------------------


class NotProposed(Exception):
    """The store definitely did not apply the request."""


class OutcomeUnknown(Exception):
    """The store may or may not have applied the request."""


class MemoryKV:
    """A register per key, with seeded faults; `stale_reads` serves reads from a lagging copy
    (the bug a linearizability check exists to catch)."""

    def __init__(self, rng: random.Random, *, stale_reads: bool = False) -> None:
        self.rng = rng
        self.data: dict[str, str | None] = {}
        self.lagging: dict[str, str | None] = {}
        self.stale_reads = stale_reads

    async def _network(self) -> None:
        for _ in range(self.rng.randrange(4)):
            await asyncio.sleep(0)  # yields to the other clients; no time passes

    async def _apply(self, key: str, value: str | None) -> None:
        if self.rng.random() < 0.05:
            raise NotProposed
        self.data[key] = value
        if self.rng.random() < 0.3:
            self.lagging = dict(self.data)
        if self.rng.random() < 0.05:
            raise OutcomeUnknown

    async def get(self, key: str) -> str | None:
        await self._network()
        return (self.lagging if self.stale_reads else self.data).get(key)

    async def put(self, key: str, value: str | None) -> None:
        await self._network()
        await self._apply(key, value)
        await self._network()

    async def cas(self, key: str, expected: str | None, value: str) -> bool:
        await self._network()
        if self.data.get(key) != expected:
            return False
        await self._apply(key, value)
        await self._network()
        return True


async def run_clients(kv: MemoryKV, rec: Recorder, clients: int, ops: int) -> None:
    async def client(c: int) -> None:
        rng = random.Random(c)
        for n in range(ops):
            key, value = f"k{rng.randrange(2)}", f"{c}.{n}"
            x = rng.random()
            if x < 0.5:
                call = rec.call(c, OpKind.READ, key)
            elif x < 0.8:
                call = rec.call(c, OpKind.WRITE, key, value=value)
            else:
                # Usually the current value (as if just read), else "absent".
                expected = kv.data.get(key) if rng.random() < 0.7 else None
                call = rec.call(c, OpKind.CAS, key, value=value, expected=expected)
            async with call:
                try:
                    if x < 0.5:
                        call.ok(value=await kv.get(key))
                    elif x < 0.8:
                        await kv.put(key, value)
                        call.ok()
                    else:
                        call.ok(succeeded=await kv.cas(key, expected, value))
                except NotProposed:
                    call.fail()
                except OutcomeUnknown:
                    call.unknown()

    async with asyncio.TaskGroup() as tg:
        for c in range(clients):
            tg.create_task(client(c))


@pytest.mark.parametrize("seed", range(3))
def test_asyncio_clients_of_a_correct_store_pass(seed: int) -> None:
    """Clients recording against a linearizable store produce a linearizable history."""
    rec = Recorder()
    asyncio.run(run_clients(MemoryKV(random.Random(seed)), rec, clients=6, ops=60))
    history = rec.history()
    assert len(history) + rec.failed == 360
    assert any(op.unknown for op in history)
    result = check(history)
    assert result.passed, result.render()


def test_asyncio_clients_catch_stale_reads(tmp_path: Path) -> None:
    """The same clients against a store with stale reads fail the check, and the saved
    history fails again when reloaded."""
    ticks = itertools.count()  # distinct readings in execution order: a deterministic history
    rec = Recorder(clock=lambda: next(ticks))
    asyncio.run(run_clients(MemoryKV(random.Random(0), stale_reads=True), rec, 6, 60))
    result = check(rec.history())
    assert result.ok is False
    path = rec.save(tmp_path / "history.json", meta={"test": "stale reads"})
    assert check(load_history(path)).ok is False
