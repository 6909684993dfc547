"""RateLimitingQueue: client-go's work queue semantics."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.client.workqueue import (
    ItemExponentialFailureRateLimiter,
    RateLimitingQueue,
    ShutDown,
)

from . import run

WAIT = 10.0  # bound on waiting for an item that must come


async def get(q: RateLimitingQueue[str]) -> str:
    return await asyncio.wait_for(q.get(), WAIT)


def test_add_deduplicates_queued_items() -> None:
    """An item queued twice is handed out once, in first-add order."""

    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        for item in ("a", "b", "a", "a"):
            q.add(item)
        assert len(q) == q.len() == 2
        assert [await get(q), await get(q)] == ["a", "b"]
        assert len(q) == 0

    run(body())


def test_item_added_while_processing_comes_back_after_done() -> None:
    """Never two workers on one item, and no change lost: a re-add during processing waits
    for `done`."""

    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        q.add("a")
        item = await get(q)
        q.add("a")
        q.add("a")
        assert len(q) == 0  # not handed to a second worker
        q.done(item)
        assert len(q) == 1
        assert await get(q) == "a"
        q.done("a")
        assert len(q) == 0

    run(body())


def test_done_without_readd_does_not_requeue() -> None:
    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        q.add("a")
        q.done(await get(q))
        q.add("b")
        assert await get(q) == "b"

    run(body())


def test_get_waits_for_an_item() -> None:
    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        waiter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        q.add("x")
        assert await asyncio.wait_for(waiter, WAIT) == "x"

    run(body())


def test_exponential_backoff_doubles_up_to_the_cap_per_item() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(5)]
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert limiter.when("b") == 0.005  # per item
    assert limiter.num_requeues("a") == 5
    for _ in range(30):
        limiter.when("a")
    assert limiter.when("a") == 1000.0
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


def test_backoff_never_overflows() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 60.0)
    for _ in range(2000):
        assert limiter.when("a") <= 60.0


def test_bad_backoff_config_names_the_parameters() -> None:
    with pytest.raises(ValueError, match="base_delay"):
        ItemExponentialFailureRateLimiter(0.0, 1.0)
    with pytest.raises(ValueError, match="max_delay"):
        ItemExponentialFailureRateLimiter(2.0, 1.0)


def test_add_rate_limited_counts_requeues_and_delivers() -> None:
    async def body() -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            0.001, 0.01
        )
        q = RateLimitingQueue(limiter)
        for _ in range(3):
            q.add_rate_limited("a")
        assert q.num_requeues("a") == 3
        assert await get(q) == "a"
        q.done("a")
        q.forget("a")
        assert q.num_requeues("a") == 0

    run(body())


def test_add_after_waits_then_delivers() -> None:
    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        q.add_after("a", 0.05)
        assert len(q) == 0
        assert await get(q) == "a"

    run(body())


@pytest.mark.parametrize("order", ["long-then-short", "short-then-long"])
def test_add_after_keeps_the_earlier_time(order: str) -> None:
    """A waiting item keeps the earlier of two delays (an hour-long one would time out)."""

    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        delays = [3600.0, 0.01] if order == "long-then-short" else [0.01, 3600.0]
        for d in delays:
            q.add_after("a", d)
        assert await get(q) == "a"
        q.done("a")
        q.shut_down()

    run(body())


def test_shut_down_drains_then_raises_and_wakes_waiters() -> None:
    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        q.add("a")
        q.add_after("late", 3600.0)
        q.shut_down()
        q.add("b")  # ignored
        assert q.shutting_down
        assert await get(q) == "a"
        with pytest.raises(ShutDown):
            await get(q)

        idle: RateLimitingQueue[str] = RateLimitingQueue()
        waiter = asyncio.ensure_future(idle.get())
        await asyncio.sleep(0)
        idle.shut_down()
        with pytest.raises(ShutDown):
            await asyncio.wait_for(waiter, WAIT)

    run(body())


def test_workers_process_each_key_once_at_a_time() -> None:
    """Several workers, many adds of few keys: a key is never processed concurrently, and
    the last add of each key is processed after it happened."""

    async def body() -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue()
        active: set[str] = set()
        processed: dict[str, int] = {}
        version: dict[str, int] = {}

        async def worker() -> None:
            while True:
                try:
                    key = await q.get()
                except ShutDown:
                    return
                assert key not in active
                active.add(key)
                seen = version[key]
                await asyncio.sleep(0)
                processed[key] = seen
                active.discard(key)
                q.done(key)

        workers = [asyncio.ensure_future(worker()) for _ in range(4)]
        for i in range(200):
            key = f"k{i % 5}"
            version[key] = i
            q.add(key)
            if i % 7 == 0:
                await asyncio.sleep(0)
        while len(q) or any(processed.get(k) != v for k, v in version.items()):
            await asyncio.sleep(0.001)
        q.shut_down()
        await asyncio.wait_for(asyncio.gather(*workers), WAIT)
        assert processed == version

    run(body())
