"""Machinery shared by the scheduler and the controllers.

A `Manager` runs on every master: it campaigns for its Lease (`kube-scheduler` or
`kube-controller-manager` in `kube-system`) and, while it leads, runs its controllers with a
`Context`. Everything a controller writes goes through `Context.writer`, which attaches the
Lease's `Fence` (DESIGN.md, fencing): a paused ex-leader that wakes up with a write in hand
is refused by the store (409 "fenced") instead of doubling a pod or a binding.

Two test-only switches, read from the environment of the master process:
- `KUBELAB_TEST_HOLD_WRITES_FILE`: a path, where `{name}` stands for the master's name;
  while that file exists, every write waits before it is sent, adding a line saying what it
  is (`create pods default`) to `<file>.held` (so a test can pause one master with a given
  write pending);
- `KUBELAB_UNSAFE_NO_FENCING=1`: writes carry no fence (so the same test can show the
  double that fencing prevents).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controlplane.client.events import EventRecorder
from controlplane.client.informer import SharedInformerFactory
from controlplane.client.leaderelection import LeaderElector
from controlplane.client.resources import ResourceClient
from controlplane.client.workqueue import RateLimitingQueue, ShutDown
from controlplane.config import Timers
from controlplane.kube.errors import APIError
from controlplane.kube.resources import Resource
from controlplane.kube.storage import Fence

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HOLD_WRITES_ENV = "KUBELAB_TEST_HOLD_WRITES_FILE"
NO_FENCING_ENV = "KUBELAB_UNSAFE_NO_FENCING"


def key_of(obj: Obj) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects), as client-go's
    MetaNamespaceKeyFunc."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a key; namespace "" for cluster-scoped objects."""
    ns, _, name = key.rpartition("/")
    return ns, name


class Writer:
    """The write half of `ResourceClient`, every call fenced by the manager's Lease."""

    def __init__(
        self,
        client: ResourceClient,
        fence: Callable[[], Fence | None],
        *,
        hold_file: Path | None = None,
    ) -> None:
        self.client = client
        self._fence = fence
        self.hold_file = hold_file

    async def _before(self, what: str) -> Fence | None:
        fence = self._fence()  # taken before the hold: a held write keeps its old term
        hold = self.hold_file
        if hold is not None and hold.exists():
            # Say which (a line in `<hold>.held`): the test pauses this master only once
            # the write it cares about waits.
            held = hold.with_name(hold.name + ".held")
            with held.open("a") as f:
                f.write(what + "\n")
            while hold.exists():
                await asyncio.sleep(0.05)
        return fence

    async def _write(self, what: str, call: Callable[[Fence | None], Awaitable[Obj]]) -> Obj:
        """Run one write to its end even if the controller is cancelled meanwhile (it lost
        its Lease): a decided write may already be on the wire, and the fence, not the
        cancellation, is what keeps a stale one out. (Cancelling it would also hide the
        double in the unfenced test.)"""

        async def go() -> Obj:
            return await call(await self._before(what))

        task = asyncio.ensure_future(go())
        task.add_done_callback(_consume)
        return await asyncio.shield(task)

    async def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        return await self._write(
            f"create {res.plural} {namespace}",
            lambda f: self.client.create(res, namespace, obj, fence=f),
        )

    async def update(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        return await self._write(
            f"update {res.plural} {namespace}",
            lambda f: self.client.update(res, namespace, obj, fence=f),
        )

    async def update_status(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        return await self._write(
            f"update-status {res.plural} {namespace}",
            lambda f: self.client.update_status(res, namespace, obj, fence=f),
        )

    async def delete(self, res: Resource, namespace: str, name: str, **kw: Any) -> Obj:
        return await self._write(
            f"delete {res.plural} {namespace}/{name}",
            lambda f: self.client.delete(res, namespace, name, fence=f, **kw),
        )

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        return await self._write(
            f"bind pods {namespace}/{name}",
            lambda f: self.client.bind(namespace, name, node, fence=f),
        )


def _consume(task: asyncio.Future[Obj]) -> None:
    """Retrieve a write's exception, so that one whose caller was cancelled is logged here
    rather than as "never retrieved" (a caller still waiting handles it itself)."""
    if task.cancelled():
        return
    err = task.exception()
    if isinstance(err, APIError) and err.message.startswith("fenced"):
        logger.info("write refused: %s", err.message)
    elif err is not None:
        logger.debug("write failed: %s", err)


@dataclass
class Context:
    """What a controller gets while its manager leads."""

    client: ResourceClient  # reads that must be fresh (the informers serve the rest)
    writer: Writer
    informers: SharedInformerFactory
    recorder: EventRecorder
    timers: Timers
    identity: str
    clock: Callable[[], float] = field(default=time.time)


class Controller(Protocol):
    name: str

    def setup(self, ctx: Context) -> None:
        """Take informers from `ctx.informers` and register handlers (no I/O). Called for
        every controller before the informers start."""

    async def run(self, ctx: Context) -> None:
        """Reconcile until cancelled; called once the informers' caches are synced."""


async def run_workers(
    name: str,
    queue: RateLimitingQueue[str],
    sync: Callable[[str], Awaitable[None]],
    *,
    workers: int = 1,
) -> None:
    """client-go's processNextWorkItem loop: `sync(key)` for each queued key; a failure is
    retried with the queue's per-item backoff, a success forgets the key's failures. Runs
    until cancelled (then shuts the queue down)."""

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                await sync(key)
            except asyncio.CancelledError:
                raise
            except APIError as e:
                level = logging.DEBUG if e.code in (404, 409) else logging.INFO
                logger.log(level, "%s: sync %s failed, retrying: %s", name, key, e.message)
                queue.add_rate_limited(key)
            except Exception:
                logger.exception("%s: sync %s crashed, retrying", name, key)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(workers):
                tg.create_task(worker())
    finally:
        queue.shut_down()


class Manager:
    """Campaign for `lease` and run `controllers` while leading (see the module docstring)."""

    def __init__(
        self,
        name: str,
        client: ResourceClient,
        controllers: Sequence[Controller],
        *,
        timers: Timers,
        identity: str,
        component: str,
        hold_file: Path | None = None,
        fencing: bool = True,
        components: Mapping[str, str] | None = None,
    ) -> None:
        """`component`: the source of the controllers' Events; `components` names another
        one per controller name (Kubernetes' "replicaset-controller"...)."""
        self.name = name
        self.components = dict(components or {})
        self.client = client
        self.controllers = controllers
        self.timers = timers
        self.identity = identity
        self.component = component
        self.hold_file = hold_file
        self.fencing = fencing
        self.elector = LeaderElector(
            client,
            "kube-system",
            name,
            identity,
            lease_duration=timers.leader_lease_duration_s,
            renew_deadline=timers.leader_renew_deadline_s,
            retry_period=timers.leader_retry_s,
            on_started_leading=self._lead,
            release_on_cancel=True,
        )

    @classmethod
    def from_env(
        cls,
        name: str,
        client: ResourceClient,
        controllers: Sequence[Controller],
        *,
        timers: Timers,
        identity: str,
        component: str,
        member: str,
        components: Mapping[str, str] | None = None,
    ) -> Manager:
        hold = os.environ.get(HOLD_WRITES_ENV, "").replace("{name}", member)
        fencing = os.environ.get(NO_FENCING_ENV) != "1"
        if not fencing:
            logger.warning("%s: UNSAFE test switch: writes are not fenced by the lease", name)
        return cls(
            name,
            client,
            controllers,
            timers=timers,
            identity=identity,
            component=component,
            hold_file=Path(hold) if hold else None,
            fencing=fencing,
            components=components,
        )

    async def run(self) -> None:
        """Campaign, lead, lose, campaign again: until cancelled."""
        while True:
            try:
                await self.elector.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: leader election failed; campaigning again", self.name)
            await asyncio.sleep(self.timers.leader_retry_s)

    def _fence(self) -> Fence | None:
        return self.elector.fence() if self.fencing else None

    async def _lead(self) -> None:
        logger.info(
            "%s: %s leads; starting %d controllers", self.name, self.identity, len(self.controllers)
        )
        informers = SharedInformerFactory(self.client)
        # One recorder per event source, as Kubernetes names them ("replicaset-controller").
        recorders: dict[str, EventRecorder] = {}
        base = Context(
            client=self.client,
            writer=Writer(self.client, self._fence, hold_file=self.hold_file),
            informers=informers,
            recorder=EventRecorder(self.client, self.component, host=self.identity),
            timers=self.timers,
            identity=self.identity,
        )
        recorders[self.component] = base.recorder
        contexts = []
        for c in self.controllers:
            component = self.components.get(c.name, self.component)
            if component not in recorders:
                recorders[component] = EventRecorder(self.client, component, host=self.identity)
            contexts.append(dataclasses.replace(base, recorder=recorders[component]))
        for r in recorders.values():
            r.start()
        try:
            for c, ctx in zip(self.controllers, contexts, strict=True):
                c.setup(ctx)
            informers.start()
            while not await informers.wait_for_cache_sync(timeout=5.0):
                logger.info("%s: waiting for the informers' caches to sync", self.name)
            async with asyncio.TaskGroup() as tg:
                for c, ctx in zip(self.controllers, contexts, strict=True):
                    tg.create_task(c.run(ctx), name=f"{self.name}/{c.name}")
        finally:
            logger.info("%s: %s stopped leading", self.name, self.identity)
            await informers.stop()
            for r in recorders.values():
                with contextlib.suppress(Exception):
                    await r.stop()
