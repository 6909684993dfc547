"""`Recorder`: timestamps concurrent calls and builds the history the checker reads.

Usage, from asyncio tasks (or threads) sharing one recorder:

    with recorder.call(client, OpKind.WRITE, key, value=v) as call:
        try:
            await kv.put(key, v)
        except NotProposed:          # definitely did not happen
            call.fail()
        except OutcomeUnknown:       # may have happened, now or later
            call.unknown()
        else:
            call.ok()

`async with` works the same. The invoke timestamp is taken on entering, before the request
is sent; the completion timestamp when the outcome is given, after the response arrived. So
the recorded interval contains the operation's real effect, which is what the checker
assumes.

Leaving the block without an outcome records the call as indeterminate, the only safe
reading: on an exception (including cancellation) the exception propagates; on a normal
exit `HistoryError` is raised as well, since a forgotten `ok()` would silently weaken the
check.

The methods never block on I/O and hold a lock only to update a few fields: they are safe to
call from threads and from asyncio tasks. Timestamps come from `time.monotonic_ns` unless a
clock is given (tests pass a fake one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from controlplane.linearizability.history import (
    HistoryError,
    Operation,
    OpKind,
    Value,
    dump_history,
)

Text = str | bytes


def _text(x: Text | None) -> Value:
    """Bytes as text, losslessly (UTF-8 with surrogateescape)."""
    if isinstance(x, bytes):
        return x.decode("utf-8", "surrogateescape")
    return x


@dataclass(frozen=True, slots=True)
class _Pending:
    client: int
    kind: OpKind
    key: str
    invoke_ns: int
    value: Value
    expected: Value


class Recorder:
    """Records calls on keys; `history()` returns them as `Operation`s, in invocation order."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._done: dict[int, Operation] = {}
        self._failed = 0

    def invoke(
        self,
        client: int,
        kind: OpKind,
        key: Text,
        *,
        value: Text | None = None,
        expected: Text | None = None,
    ) -> int:
        """Record the start of a call; returns its id for `ok`/`fail`/`unknown`.

        `value` is the value to write (write, cas), `expected` the value a cas compares with
        (None: absent). Call this just before sending the request.
        """
        try:
            kind = OpKind(kind)
        except ValueError as e:
            raise HistoryError(f"unknown kind {kind!r}") from e
        args = _Pending(client, kind, _text(key) or "", 0, _text(value), _text(expected))
        self._indeterminate(args)  # raises HistoryError on arguments that do not fit the kind
        with self._lock:
            op_id = self._next_id
            self._next_id += 1
            self._pending[op_id] = replace(args, invoke_ns=self._clock())
        return op_id

    def ok(
        self, op_id: int, *, value: Text | None = None, succeeded: bool | None = None
    ) -> Operation:
        """The call returned: `value` is what a read returned, `succeeded` whether a cas swapped."""
        with self._lock:
            now = self._clock()
            p = self._pending_call(op_id)
            if p.kind is OpKind.CAS and succeeded is None:
                raise HistoryError(f"call {op_id}: a cas completes with succeeded=True/False")
            if p.kind is not OpKind.READ and value is not None:
                raise HistoryError(f"call {op_id}: only a read completes with a value")
            out = _text(value) if p.kind is OpKind.READ else p.value
            op = Operation(p.client, p.kind, p.key, p.invoke_ns, now, out, p.expected, succeeded)
            return self._complete(op_id, op)

    def fail(self, op_id: int) -> None:
        """The call definitely did not take effect: it is left out of the history."""
        with self._lock:
            self._pending_call(op_id)
            del self._pending[op_id]
            self._failed += 1

    def unknown(self, op_id: int) -> Operation:
        """The call may or may not take effect, at any time from its invocation on."""
        with self._lock:
            p = self._pending_call(op_id)
            return self._complete(op_id, self._indeterminate(p))

    def call(
        self,
        client: int,
        kind: OpKind,
        key: Text,
        *,
        value: Text | None = None,
        expected: Text | None = None,
    ) -> Call:
        """A context manager that invokes on entry; see the module docstring."""
        return Call(self, client, kind, key, value=value, expected=expected)

    def history(self) -> list[Operation]:
        """The calls so far, in invocation order. Calls still pending count as indeterminate."""
        with self._lock:
            done = dict(self._done)
            done.update((i, self._indeterminate(p)) for i, p in self._pending.items())
        return [done[i] for i in sorted(done)]

    @property
    def failed(self) -> int:
        """How many calls were recorded as failed (and left out)."""
        return self._failed

    @property
    def pending(self) -> int:
        """How many calls have no outcome yet."""
        with self._lock:
            return len(self._pending)

    def save(self, path: Path | str, meta: Mapping[str, Any] | None = None) -> Path:
        """Write `history()` as JSON (see `dump_history`)."""
        return dump_history(self.history(), path, meta)

    def _pending_call(self, op_id: int) -> _Pending:
        p = self._pending.get(op_id)
        if p is None:
            raise HistoryError(f"call {op_id} is not pending (unknown id or already completed)")
        return p

    def _complete(self, op_id: int, op: Operation) -> Operation:
        del self._pending[op_id]
        self._done[op_id] = op
        return op

    @staticmethod
    def _indeterminate(p: _Pending) -> Operation:
        value = None if p.kind is OpKind.READ else p.value
        return Operation(p.client, p.kind, p.key, p.invoke_ns, None, value, p.expected)


class Call:
    """One call being recorded; give it exactly one outcome (`ok`, `fail` or `unknown`)."""

    def __init__(
        self,
        recorder: Recorder,
        client: int,
        kind: OpKind,
        key: Text,
        *,
        value: Text | None,
        expected: Text | None,
    ) -> None:
        self._recorder = recorder
        self._args = (client, kind, key, value, expected)
        self._id: int | None = None
        self._decided = False

    @property
    def op_id(self) -> int:
        if self._id is None:
            raise HistoryError("the call has not been entered")
        return self._id

    def ok(self, *, value: Text | None = None, succeeded: bool | None = None) -> Operation:
        op = self._recorder.ok(self.op_id, value=value, succeeded=succeeded)
        self._decided = True
        return op

    def fail(self) -> None:
        self._recorder.fail(self.op_id)
        self._decided = True

    def unknown(self) -> Operation:
        op = self._recorder.unknown(self.op_id)
        self._decided = True
        return op

    def __enter__(self) -> Call:
        client, kind, key, value, expected = self._args
        self._id = self._recorder.invoke(client, kind, key, value=value, expected=expected)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._decided or self._id is None:
            return
        self.unknown()
        if exc_type is None:
            raise HistoryError(f"call {self._id} exited without an outcome (recorded as unknown)")

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
