"""The leader's object housekeeping: system namespaces and Event expiry."""

from __future__ import annotations

import asyncio

from controlplane.kube.resources import EVENTS, NAMESPACES
from controlplane.kube.storage import LocalBackend, ObjectStore, rfc3339
from controlplane.server.kube import Housekeeper


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def keeper() -> tuple[Housekeeper, ObjectStore, Clock]:
    clock = Clock()
    store = ObjectStore(LocalBackend(), clock=clock)
    return Housekeeper(store, lambda: True, event_ttl_s=600), store, clock


def names(store: ObjectStore) -> list[str]:
    items = asyncio.run(store.list(NAMESPACES, None))["items"]
    return [o["metadata"]["name"] for o in items]


def test_bootstrap_creates_system_namespaces_once() -> None:
    hk, store, _ = keeper()
    asyncio.run(hk.bootstrap())
    asyncio.run(hk.bootstrap())  # idempotent: AlreadyExists is fine
    assert names(store) == ["default", "kube-node-lease", "kube-public", "kube-system"]


def event(name: str, last: float) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": rfc3339(last),
        "lastTimestamp": rfc3339(last),
    }


def test_events_expire_after_their_ttl() -> None:
    hk, store, clock = keeper()
    asyncio.run(hk.bootstrap())
    asyncio.run(store.create(EVENTS, "default", event("old", clock.now - 601)))
    asyncio.run(store.create(EVENTS, "default", event("fresh", clock.now - 10)))
    assert asyncio.run(hk.expire_events()) == 1
    left = asyncio.run(store.list(EVENTS, "default"))["items"]
    assert [e["metadata"]["name"] for e in left] == ["fresh"]
