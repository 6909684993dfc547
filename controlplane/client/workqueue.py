"""A work queue like client-go's `util/workqueue`: the heart of a level-triggered controller.

Event handlers `add` keys; workers `get` one, reconcile it, and call `done`. The queue
guarantees what makes that correct:

- an item is queued at most once (adding a queued item again does nothing: the worker
  will see the latest state anyway);
- an item is processed by at most one worker at a time: adding an item while it is being
  processed marks it dirty, and `done` queues it again, so the change is not lost;
- a failed item comes back after a per-item exponential backoff (`add_rate_limited`),
  and `forget` resets it after a success.

Pure asyncio, one event loop; delays use the loop's clock (`loop.call_later`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

__all__ = [
    "ItemExponentialFailureRateLimiter",
    "RateLimiter",
    "RateLimitingQueue",
    "ShutDown",
]

T = TypeVar("T", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

DEFAULT_BASE_DELAY = 0.005  # client-go's DefaultControllerRateLimiter: 5 ms ...
DEFAULT_MAX_DELAY = 1000.0  # ... doubling up to 1000 s


class ShutDown(Exception):
    """`get` on a queue that is shut down and drained: the worker should return."""


class RateLimiter(Protocol[K_contra]):
    """How long an item waits before it is retried (client-go's `RateLimiter`)."""

    def when(self, item: K_contra) -> float:
        """The delay before the next retry of `item`; counts one more failure."""

    def forget(self, item: K_contra) -> None:
        """Stop tracking `item` (it succeeded)."""

    def num_requeues(self, item: K_contra) -> int:
        """Failures of `item` since it was last forgotten."""


class ItemExponentialFailureRateLimiter(Generic[T]):
    """`base * 2**failures`, capped at `max_delay`, counted per item."""

    def __init__(
        self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError(
                f"need 0 < base_delay <= max_delay (got base_delay={base_delay}, "
                f"max_delay={max_delay})"
            )
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 1024:  # 2**exp would overflow a float; long past the cap anyway
            return self.max_delay
        return min(self.base_delay * 2.0**exp, self.max_delay)

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


class RateLimitingQueue(Generic[T]):
    """client-go's rate-limiting work queue (see the module docstring).

    Items must be hashable and are usually `namespace/name` keys. After `shut_down`, `add`
    is ignored and `get` hands out what is still queued, then raises `ShutDown`."""

    def __init__(self, rate_limiter: RateLimiter[T] | None = None, *, name: str = "") -> None:
        self.name = name
        self.rate_limiter: RateLimiter[T] = rate_limiter or ItemExponentialFailureRateLimiter()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()  # queued, or to be queued again when processing ends
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, asyncio.TimerHandle]] = {}  # add_after
        self._shutting_down = False
        self._nonempty = asyncio.Event()  # set whenever an item is queued, or on shut_down

    # -- the queue -----------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue `item` unless it is queued already; if it is being processed, queue it
        again when `done` is called."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._nonempty.set()

    async def get(self) -> T:
        """The next item, waiting for one; the caller must call `done(item)` after it.
        Raises `ShutDown` once the queue is shut down and empty."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(f"work queue {self.name!r} is shut down")
            self._nonempty.clear()  # only while empty: every add sets it again
            await self._nonempty.wait()
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        """Processing of `item` has ended; queue it again if it was added meanwhile."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._nonempty.set()

    def shut_down(self) -> None:
        """Refuse new items, drop the delayed ones, and wake every `get`."""
        self._shutting_down = True
        for _at, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._nonempty.set()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def len(self) -> int:
        """Items queued (not those being processed or waiting for a delay)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    # -- delays --------------------------------------------------------------------------------

    def add_after(self, item: T, delay: float) -> None:
        """Queue `item` after `delay` seconds. An item already waiting keeps the earlier of
        its two times (client-go's delaying queue)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        current = self._waiting.get(item)
        if current is not None:
            if current[0] <= at:
                return
            current[1].cancel()
        self._waiting[item] = (at, loop.call_at(at, self._delay_over, item))

    def _delay_over(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    # -- rate limiting -------------------------------------------------------------------------

    def add_rate_limited(self, item: T) -> None:
        """Queue `item` after its backoff (it failed once more)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset the backoff of `item` (it succeeded); does not remove it from the queue."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
