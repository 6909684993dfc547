"""Informers: a local cache of one resource kept current by list-then-watch (client-go's
`tools/cache` reflector, store and shared informer, in one asyncio class).

An `Informer` lists the objects, then watches from the list's resourceVersion, so it misses
nothing and sees nothing twice. A watch that ends or breaks resumes from the last version
it saw; when that version has been compacted away (a 410 Expired, as an ERROR event or an
error) it lists again and turns the difference between its cache and the new list into
add, update and delete notifications, so handlers see a consistent history of the state
even across the gap.

Handlers are plain functions called on the event loop, in order, one event at a time:
like client-go's they should only enqueue a key (see `workqueue`) and return. The objects
they receive, and those `get` and `list` return, are the cache's own: never mutate them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.kube.errors import APIError
from controlplane.kube.resources import Resource

from .resources import ResourceClient

__all__ = ["Informer", "SharedInformerFactory", "object_key"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Objs = list[Obj]  # `list` is also a method name below
OnAdd = Callable[[Obj], None]
OnUpdate = Callable[[Obj, Obj], None]
OnDelete = Callable[[Obj], None]

LIST_PAGE_SIZE = 500  # client-go's reflector pages lists by 500 as well
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 10.0


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's
    `MetaNamespaceKeyFunc`)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{ns}/{name}" if ns else str(name)


def _resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True)
class _Handler:
    on_add: OnAdd | None
    on_update: OnUpdate | None
    on_delete: OnDelete | None


class _Expired(Exception):
    """The watch's resourceVersion was compacted: list again."""


class Informer:
    """A cache of `res` objects (in `namespace`, or all when None) that match the selectors;
    see the module docstring. `run()` keeps it current until cancelled; `resync` (seconds)
    re-delivers every cached object to `on_update(obj, obj)` periodically, so a handler that
    dropped work gets it again."""

    def __init__(
        self,
        client: ResourceClient,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        resync: float | None = None,
    ) -> None:
        if resync is not None and resync <= 0:
            raise ValueError(f"resync must be a positive number of seconds or None, not {resync}")
        self.client = client
        self.res = res
        self.namespace = namespace or None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.store: dict[str, Obj] = {}
        self.resource_version = ""
        """The last version the cache reflects (of a list, an event or a bookmark)."""
        self._handlers: list[_Handler] = []
        self._synced = asyncio.Event()

    # -- the cache -----------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first list has been stored (and its adds delivered)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait for the first list; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self.store.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> Objs:
        return [*self.store.values()]

    def add_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> None:
        """Register handlers. A handler added late first gets `on_add` for every cached
        object, as in client-go, so it never misses what the cache already holds."""
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in list(self.store.values()):
                self._call(on_add, obj)

    # -- list and watch ------------------------------------------------------------------------

    async def run(self) -> None:
        """List, then watch, until cancelled. Errors are logged and retried with backoff;
        a compacted version means a new list."""
        async with asyncio.TaskGroup() as tg:
            if self.resync is not None:
                tg.create_task(self._resync_loop(self.resync))
            await self._list_and_watch()

    async def _list_and_watch(self) -> None:
        delay = BACKOFF_INITIAL
        need_list = True
        while True:
            try:
                if need_list:
                    items, rv = await self._list()
                    self._replace(items, rv)
                    need_list = False
                await self._watch()
                delay = BACKOFF_INITIAL
            except _Expired as e:
                logger.info("relisting resource=%s: %s", self.res.group_resource, e)
                need_list = True
            except APIError as e:
                if e.code == 410:
                    need_list = True
                    continue
                logger.warning(
                    "list/watch failed resource=%s code=%d retry_in=%.1fs: %s",
                    self.res.group_resource,
                    e.code,
                    delay,
                    e.message,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _list(self) -> tuple[Objs, str]:
        """Every matching object, at one revision (the first page's)."""
        items: Objs = []
        version, cont = "", ""
        while True:
            try:
                page = await self.client.list(
                    self.res,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    limit=LIST_PAGE_SIZE,
                    continue_=cont,
                )
            except APIError as e:
                if e.code != 410 or not cont:
                    raise
                # The continue token outlived its revision: one list without pages.
                page = await self.client.list(
                    self.res,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                )
                items, version, cont = [], "", ""
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            items.extend(page.get("items") or [])
            cont = str(meta.get("continue") or "")
            if not cont:
                return items, version

    async def _watch(self) -> None:
        """Apply events from `resource_version` until the stream ends."""
        events = self.client.watch(
            self.res,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_bookmarks=True,
        )
        async for ev in events:
            if ev.type == "ERROR":
                status = ev.object
                if status.get("code") == 410:
                    raise _Expired(str(status.get("message", "resource version expired")))
                raise APIError(
                    int(status.get("code") or 500),
                    str(status.get("reason") or "InternalError"),
                    str(status.get("message") or "watch error"),
                )
            self._apply(ev.type, ev.object)

    # -- applying changes ----------------------------------------------------------------------

    def _replace(self, items: Objs, version: str) -> None:
        """Make the cache the list, notifying the difference."""
        old, new = self.store, {object_key(o): o for o in items}
        self.store = new
        self.resource_version = version
        for key, obj in new.items():
            before = old.get(key)
            if before is None:
                self._notify_add(obj)
            elif _resource_version(before) != _resource_version(obj):
                self._notify_update(before, obj)
        for key, obj in old.items():
            if key not in new:
                self._notify_delete(obj)  # its last known state: the deletion was missed
        if not self._synced.is_set():
            logger.info(
                "informer synced resource=%s namespace=%s objects=%d version=%s",
                self.res.group_resource,
                self.namespace or "*",
                len(new),
                version,
            )
            self._synced.set()

    def _apply(self, kind: str, obj: Obj) -> None:
        version = _resource_version(obj)
        if version:
            self.resource_version = version
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        if kind == "DELETED":
            self.store.pop(key, None)
            self._notify_delete(obj)
            return
        before = self.store.get(key)
        self.store[key] = obj
        if before is None:
            self._notify_add(obj)
        else:
            self._notify_update(before, obj)

    async def _resync_loop(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(period)
            for obj in list(self.store.values()):
                self._notify_update(obj, obj)

    def _notify_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        """A failing handler is a bug in it: logged, and the informer goes on."""
        try:
            fn(*args)
        except Exception:
            logger.exception("informer handler failed resource=%s", self.res.group_resource)


class SharedInformerFactory:
    """One informer per (resource, namespace), shared by every controller that asks, so a
    process lists and watches each kind once (client-go's `SharedInformerFactory`).

    Ask for informers with `informer_for`, then `start()`: it runs those not yet running
    (call it again after asking for more). `stop()` cancels them and waits."""

    def __init__(self, client: ResourceClient, *, resync: float | None = None) -> None:
        self.client = client
        self.resync = resync
        self._informers: dict[tuple[str, str, str, str], Informer] = {}
        self._tasks: dict[tuple[str, str, str, str], asyncio.Task[None]] = {}

    def informer_for(self, res: Resource, namespace: str | None = None) -> Informer:
        key = (res.group, res.version, res.plural, namespace or "")
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, res, namespace, resync=self.resync)
            self._informers[key] = informer
        return informer

    def start(self) -> None:
        for key, informer in self._informers.items():
            if key not in self._tasks:
                task = asyncio.get_running_loop().create_task(
                    informer.run(), name=f"informer {'/'.join(k for k in key if k)}"
                )
                task.add_done_callback(_log_crash)
                self._tasks[key] = task

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once every started informer has synced; False if `timeout` passed first."""
        waits = [self._informers[k].wait_synced() for k in self._tasks]
        try:
            results = await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return all(results)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> SharedInformerFactory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s crashed", task.get_name(), exc_info=task.exception())
