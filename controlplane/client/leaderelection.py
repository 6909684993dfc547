"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's `leaderelection`.

Candidates race to write the Lease; the holder renews it every `retry_period`. Another
candidate takes it only once it has looked expired for `leaseDurationSeconds` of *local*
time: the expiry is judged from when this process last saw the record change, never by
comparing `renewTime` with its own wall clock, so clock skew between processes does not
matter. Every write carries the resourceVersion it read: two candidates that saw the same
expired Lease cannot both win (the second gets 409 and reads again).

Timing alone cannot make leadership safe: a holder paused past its lease wakes up still
believing it leads. So leadership has a term, `(holderIdentity, leaseTransitions)`, which
changes exactly when the Lease changes hands, and the leader's writes carry it as a
`Fence` (see `fence()`); the server refuses a fenced write once the term is over
(DESIGN.md "Fencing"). The timers only bound how long a dead leader blocks progress.

`run()` returns once leadership is lost (or was never won before cancellation); run it
again to stand again, as client-go callers do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.kube.errors import APIError
from controlplane.kube.resources import LEASES
from controlplane.kube.storage import Fence

from .resources import ResourceClient

__all__ = ["LeaderElector", "LeaseRecord", "default_identity", "format_micro_time"]

logger = logging.getLogger(__name__)

JITTER_FACTOR = 1.2  # client-go's: retries come every retry_period * [1, 2.2)


def default_identity() -> str:
    """`<hostname>_<uuid>`, unique per process as client-go's examples make it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def format_micro_time(t: datetime) -> str:
    """metav1.MicroTime: RFC3339 with microseconds, UTC (`2024-05-01T10:00:00.123456Z`)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The election's view of a Lease's spec."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def of(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out


class LeaderElector:
    """One candidate for the Lease `namespace/name` (see the module docstring).

    `on_started_leading` runs as a task while this candidate leads and is cancelled when
    leadership ends; `on_stopped_leading` is called once after a term ends; `on_new_leader`
    whenever another identity is seen holding the Lease. `clock` (monotonic seconds) and
    `now` (wall time for the record's timestamps) are injectable for tests."""

    def __init__(
        self,
        client: ResourceClient,
        namespace: str,
        name: str,
        identity: str | None = None,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], Coroutine[Any, Any, None]] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        release_on_cancel: bool = False,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        _validate(namespace, name, lease_duration, renew_deadline, retry_period)
        self.client = client
        self.namespace = namespace
        self.name = name
        self.lease = f"{namespace}/{name}"  # for messages
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self.now = now
        self._observed: LeaseRecord | None = None
        self._observed_time = 0.0
        self._reported_leader = ""
        self._term: Fence | None = None  # set while (and after) this candidate leads
        self._leading = False

    # -- public --------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this candidate leads, as of its last successful renewal."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder this candidate last saw ("" when none)."""
        return self._observed.holder if self._observed else ""

    def fence(self) -> Fence:
        """The term of this candidate's current (or last) leadership, for fenced writes.
        After the term ends the server refuses writes fenced with it, which is the point.
        RuntimeError if this candidate never led."""
        if self._term is None:
            raise RuntimeError(
                f"{self.identity} has never held Lease {self.namespace}/{self.name}: no fence"
            )
        return self._term

    async def run(self) -> None:
        """Acquire the Lease, lead while renewing it, and return when leadership is lost.
        Cancellation stops at any point (releasing the Lease if `release_on_cancel`)."""
        if not await self._acquire():
            return
        work: asyncio.Task[None] | None = None
        if self.on_started_leading is not None:
            work = asyncio.get_running_loop().create_task(
                self.on_started_leading(), name=f"leading {self.lease}"
            )
            work.add_done_callback(_log_crash)
        try:
            await self._renew_loop()
        except asyncio.CancelledError:
            if self.release_on_cancel:
                await self._release()
            raise
        finally:
            self._leading = False
            if work is not None:
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            logger.info("stopped leading lease=%s identity=%s", self.lease, self.identity)
            if self.on_stopped_leading is not None:
                self.on_stopped_leading()

    # -- the loops -----------------------------------------------------------------------------

    async def _acquire(self) -> bool:
        logger.info(
            "attempting to acquire lease=%s identity=%s",
            self.lease,
            self.identity,
        )
        while True:
            if await self._try_acquire_or_renew():
                logger.info(
                    "acquired lease=%s identity=%s transitions=%d",
                    self.lease,
                    self.identity,
                    self.fence().transitions,
                )
                return True
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR))

    async def _renew_loop(self) -> None:
        """Renew every `retry_period`; return when no renewal succeeded within
        `renew_deadline` (client-go's `renew`)."""
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = self.clock() + self.renew_deadline
            while True:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    logger.warning(
                        "failed to renew lease=%s identity=%s within %.1fs",
                        self.lease,
                        self.identity,
                        self.renew_deadline,
                    )
                    return
                try:
                    renewed = await asyncio.wait_for(self._try_acquire_or_renew(), remaining)
                except TimeoutError:
                    renewed = False
                if renewed:
                    break
                if not self._leading:  # someone else holds it now: no point retrying
                    return
                await asyncio.sleep(min(self.retry_period, max(0.0, deadline - self.clock())))

    # -- one attempt ---------------------------------------------------------------------------

    async def _try_acquire_or_renew(self) -> bool:
        """client-go's `tryAcquireOrRenew`: one read and at most one write."""
        stamp = format_micro_time(self.now())
        desired = LeaseRecord(
            holder=self.identity,
            lease_duration_seconds=max(1, math.ceil(self.lease_duration)),
            acquire_time=stamp,
            renew_time=stamp,
            transitions=0,
        )
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except APIError as e:
            if e.code != 404:
                logger.info("reading lease=%s failed: %s", self.lease, e)
                return False
            return await self._write(desired, None)

        old = LeaseRecord.of(lease)
        if old != self._observed:
            self._observe(old)
        if old.holder and old.holder != self.identity and self._valid():
            self._leading = False
            return False
        if old.holder == self.identity:
            desired = LeaseRecord(
                desired.holder,
                desired.lease_duration_seconds,
                old.acquire_time or stamp,
                stamp,
                old.transitions,
            )
        else:
            desired = LeaseRecord(
                desired.holder,
                desired.lease_duration_seconds,
                stamp,
                stamp,
                old.transitions + 1,
            )
        return await self._write(desired, lease)

    async def _write(self, record: LeaseRecord, lease: dict[str, Any] | None) -> bool:
        """Create the Lease, or update it conditioned on the version read."""
        try:
            if lease is None:
                obj: dict[str, Any] = {
                    "apiVersion": LEASES.api_version,
                    "kind": LEASES.kind,
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": record.spec(),
                }
                await self.client.create(LEASES, self.namespace, obj)
            else:
                obj = {**lease, "spec": {**(lease.get("spec") or {}), **record.spec()}}
                await self.client.update(LEASES, self.namespace, obj)
        except APIError as e:
            # 409: another candidate wrote first (read again next time); 504: maybe written,
            # the next read tells.
            logger.info("writing lease=%s failed code=%d: %s", self.lease, e.code, e)
            return False
        self._observe(record)
        self._term = Fence(self.namespace, self.name, self.identity, record.transitions)
        self._leading = True
        return True

    async def _release(self) -> None:
        """Give the Lease up (holder "", 1 s duration) so a successor need not wait it out."""
        if self._observed is None or self._observed.holder != self.identity:
            return
        stamp = format_micro_time(self.now())
        record = LeaseRecord("", 1, stamp, stamp, self._observed.transitions)
        try:
            lease = await asyncio.wait_for(
                self.client.get(LEASES, self.namespace, self.name), self.renew_deadline
            )
            if LeaseRecord.of(lease).holder != self.identity:
                return
            obj = {**lease, "spec": {**(lease.get("spec") or {}), **record.spec()}}
            await asyncio.wait_for(
                self.client.update(LEASES, self.namespace, obj), self.renew_deadline
            )
            logger.info("released lease=%s identity=%s", self.lease, self.identity)
        except (APIError, TimeoutError) as e:
            logger.warning("releasing lease=%s failed: %s", self.lease, e)

    # -- observation ---------------------------------------------------------------------------

    def _observe(self, record: LeaseRecord) -> None:
        self._observed = record
        self._observed_time = self.clock()
        if record.holder and record.holder != self._reported_leader:
            self._reported_leader = record.holder
            if record.holder != self.identity:
                logger.info("new leader lease=%s holder=%s", self.lease, record.holder)
                if self.on_new_leader is not None:
                    self.on_new_leader(record.holder)

    def _valid(self) -> bool:
        """Whether the observed record is unexpired, by local time since it last changed."""
        assert self._observed is not None
        duration = self._observed.lease_duration_seconds or self.lease_duration
        return self._observed_time + duration > self.clock()


def _validate(
    namespace: str, name: str, lease_duration: float, renew_deadline: float, retry_period: float
) -> None:
    """client-go's checks, with messages naming the parameters."""
    if not namespace or not name:
        raise ValueError("the Lease needs a namespace and a name")
    if lease_duration <= renew_deadline:
        raise ValueError(
            f"lease_duration ({lease_duration}) must be greater than renew_deadline "
            f"({renew_deadline})"
        )
    if renew_deadline <= JITTER_FACTOR * retry_period:
        raise ValueError(
            f"renew_deadline ({renew_deadline}) must be greater than retry_period * "
            f"{JITTER_FACTOR} ({JITTER_FACTOR * retry_period:g})"
        )
    if retry_period <= 0:
        raise ValueError(f"retry_period ({retry_period}) must be positive")


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s crashed", task.get_name(), exc_info=task.exception())
