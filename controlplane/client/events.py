"""`EventRecorder`: v1 Events about objects, aggregated like client-go's recorder.

Recording an event must never slow down or break the component that records it: `event`
only enqueues (a bounded queue; when it is full the event is dropped and logged) and one
task writes the Events, logging and dropping what fails, as client-go does.

Aggregation (client-go's `EventCorrelator`, simplified to its common case): events with the
same involved object, type, reason, message and source are one Event whose `count` grows
and whose `lastTimestamp` moves. The Event's name is `<object name>.<16 hex digits of a
hash of that identity>`, so it is the same in every process and across restarts: a
recorder that has not seen the Event yet finds it by its name (create answers 409
AlreadyExists) and increments it instead of writing a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.kube.errors import APIError
from controlplane.kube.resources import EVENTS

from .resources import ResourceClient

__all__ = ["EventRecorder", "event_name"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

EVENT_TYPES = ("Normal", "Warning")
MAX_NAME = 253
_WRITE_ATTEMPTS = 3


def format_time(t: datetime) -> str:
    """metav1.Time: RFC3339 in seconds, UTC (`2024-05-01T10:00:00Z`)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Pending:
    involved: dict[str, str]
    type: str
    reason: str
    message: str
    at: str


def involved_object(obj: Obj) -> dict[str, str]:
    """The `involvedObject` reference of `obj`; ValueError when it lacks kind or name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ValueError("the object has no metadata.name")
    if not obj.get("kind") or not obj.get("apiVersion"):
        raise ValueError(f"object {meta['name']!r} has no kind or apiVersion")
    ref = {
        "kind": str(obj["kind"]),
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta["name"]),
        "uid": str(meta.get("uid") or ""),
        "apiVersion": str(obj["apiVersion"]),
        "resourceVersion": str(meta.get("resourceVersion") or ""),
    }
    return {k: v for k, v in ref.items() if v}


def event_name(
    involved: dict[str, str], type: str, reason: str, message: str, *, component: str, host: str
) -> str:
    """`<object name>.<16 hex>`: deterministic in what makes two events the same one
    (client-go's aggregation key: not the object's resourceVersion)."""
    identity = "\x00".join(
        [
            component,
            host,
            involved.get("kind", ""),
            involved.get("namespace", ""),
            involved.get("name", ""),
            involved.get("uid", ""),
            involved.get("apiVersion", ""),
            type,
            reason,
            message,
        ]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return f"{involved['name'][: MAX_NAME - 17]}.{digest}"


class EventRecorder:
    """Records Events for `component` (on `host`, when it is one node's agent).

    `start()` runs the writer task; `stop()` writes what is queued (for a bounded time)
    and ends it; `flush()` waits until the queue is empty. Events recorded before
    `start()` wait in the queue."""

    def __init__(
        self,
        client: ResourceClient,
        component: str,
        host: str = "",
        *,
        max_pending: int = 1000,
        cache_size: int = 4096,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not component:
            raise ValueError("EventRecorder needs a component name (source.component)")
        self.client = client
        self.component = component
        self.host = host
        self.now = now
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_pending)
        self._cache: OrderedDict[str, Obj] = OrderedDict()  # event name -> last written
        self._cache_size = cache_size
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    # -- recording -----------------------------------------------------------------------------

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        """Record that `reason` happened to `obj` (`type` "Normal" or "Warning"). Never
        raises and never waits: a bad call or a full queue is logged and dropped."""
        try:
            if type not in EVENT_TYPES:
                raise ValueError(f"type {type!r} is not one of {', '.join(EVENT_TYPES)}")
            if not reason:
                raise ValueError("reason is required")
            pending = _Pending(involved_object(obj), type, reason, message, self._stamp())
        except (ValueError, TypeError, AttributeError) as e:
            logger.warning("event dropped component=%s reason=%s: %s", self.component, reason, e)
            return
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 100 == 1:
                logger.warning(
                    "event queue full component=%s dropped=%d", self.component, self.dropped
                )

    def _stamp(self) -> str:
        return format_time(self.now())

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"event recorder {self.component}"
            )

    async def flush(self) -> None:
        """Return once every event recorded so far has been written (or dropped)."""
        await self._queue.join()

    async def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued, for at most `timeout` seconds, then end the writer."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            logger.warning(
                "events not written component=%s count=%d", self.component, self._queue.qsize()
            )
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def __aenter__(self) -> EventRecorder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- writing -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except APIError as e:
                logger.warning(
                    "event dropped component=%s object=%s reason=%s code=%d: %s",
                    self.component,
                    pending.involved.get("name"),
                    pending.reason,
                    e.code,
                    e.message,
                )
            except Exception:
                logger.exception("event dropped component=%s", self.component)
            finally:
                self._queue.task_done()

    async def _write(self, p: _Pending) -> None:
        """Create the Event, or count one more occurrence of it."""
        name = event_name(
            p.involved, p.type, p.reason, p.message, component=self.component, host=self.host
        )
        namespace = p.involved.get("namespace") or "default"
        current = self._cache.get(name)
        for _attempt in range(_WRITE_ATTEMPTS):
            try:
                if current is None:
                    written = await self.client.create(
                        EVENTS, namespace, self._new_event(name, namespace, p)
                    )
                else:
                    written = await self.client.update(EVENTS, namespace, _incremented(current, p))
            except APIError as e:
                if e.code == 409:  # it exists already, or another recorder counted it
                    current = await self.client.get(EVENTS, namespace, name)
                    continue
                if e.code == 404 and current is not None:  # expired (Event TTL)
                    current = None
                    continue
                raise
            self._remember(name, written)
            return
        raise APIError(409, "Conflict", f"event {namespace}/{name}: too many concurrent writers")

    def _new_event(self, name: str, namespace: str, p: _Pending) -> Obj:
        source = {"component": self.component, **({"host": self.host} if self.host else {})}
        return {
            "apiVersion": EVENTS.api_version,
            "kind": EVENTS.kind,
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": p.involved,
            "reason": p.reason,
            "message": p.message,
            "source": source,
            "firstTimestamp": p.at,
            "lastTimestamp": p.at,
            "count": 1,
            "type": p.type,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    def _remember(self, name: str, event: Obj) -> None:
        self._cache[name] = event
        self._cache.move_to_end(name)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _incremented(event: Obj, p: _Pending) -> Obj:
    """`event` seen once more: count + 1, lastTimestamp now, the involved object's latest
    version; its resourceVersion stays, as the precondition of the update."""
    out = dict(event)
    out["count"] = int(event.get("count") or 1) + 1
    out["lastTimestamp"] = p.at
    out["involvedObject"] = {**(event.get("involvedObject") or {}), **p.involved}
    return out
