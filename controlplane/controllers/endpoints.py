"""The Endpoints controller (kube-controller-manager's `pkg/controller/endpoint`).

For every Service with a selector it keeps an Endpoints object of the same name listing the
pods the selector picks: ready ones in `addresses`, the others in `notReadyAddresses`, with
the ports the Service's `targetPort`s resolve to in each pod (a number, or the name of a
container port, looked up per pod: pods of one Service may number their ports differently,
and then land in different subsets). Terminating pods, pods without an IP and pods that
finished for good are left out (ShouldPodBeInEndpoints). A Service without a selector is
left alone: its Endpoints are the user's. When the Service goes, its Endpoints go too.

Only a change is written: the computed subsets are in a canonical order (RepackSubsets, then
addresses by IP), so equal sets of endpoints compare equal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.errors import APIError
from controlplane.kube.resources import ENDPOINTS, PODS, SERVICES

from .base import Context, key_of, run_workers, split_key

__all__ = [
    "HEADLESS_LABEL",
    "EndpointsController",
    "desired_endpoints",
    "endpoint_subsets",
    "endpoints_changed",
    "find_port",
    "pod_changed",
    "pod_in_endpoints",
    "pod_ready",
    "service_selector",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"


# -- decisions -------------------------------------------------------------------------------------


def service_selector(service: Obj) -> dict[str, str] | None:
    """The Service's selector; None when it has none (or an empty one): such a Service's
    Endpoints are managed by someone else."""
    spec = service.get("spec")
    sel = spec.get("selector") if isinstance(spec, dict) else None
    if not isinstance(sel, dict) or not sel:
        return None
    return {str(k): str(v) for k, v in sel.items()}


def selects(selector: Mapping[str, str], pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True (podutil.IsPodReady)."""
    status = pod.get("status")
    conds = status.get("conditions") if isinstance(status, dict) else None
    for c in conds if isinstance(conds, list) else []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _pod_ip(pod: Obj) -> str:
    status = pod.get("status")
    ip = status.get("podIP") if isinstance(status, dict) else None
    return str(ip) if ip else ""


def pod_in_endpoints(pod: Obj, include_terminating: bool = False) -> bool:
    """ShouldPodBeInEndpoints: an IP, not terminating (unless asked), and not finished for
    good by its restart policy."""
    if not _pod_ip(pod):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    phase = (pod.get("status") or {}).get("phase")
    policy = (spec or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a Service port (podutil.FindPort): a numeric targetPort as is, a
    named one looked up among the containers' ports with the same protocol; None when
    the pod has no such port."""
    target = service_port.get("targetPort")
    if target in (None, "", 0):
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for c in containers if isinstance(containers, list) else []:
        ports = c.get("ports") if isinstance(c, dict) else None
        for p in ports if isinstance(ports, list) else []:
            if (
                isinstance(p, dict)
                and p.get("name") == target
                and (p.get("protocol") or "TCP") == protocol
                and isinstance(p.get("containerPort"), int)
            ):
                return int(p["containerPort"])
    return None


def _address(pod: Obj, service: Obj) -> Obj:
    """podToEndpointAddressForService."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    addr: Obj = {"ip": _pod_ip(pod)}
    hostname = (spec or {}).get("hostname")
    subdomain = (spec or {}).get("subdomain")
    svc_name = (service.get("metadata") or {}).get("name")
    if (
        hostname
        and subdomain == svc_name
        and (service.get("metadata") or {}).get("namespace") == meta.get("namespace")
    ):
        addr["hostname"] = hostname
    node = (spec or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }
    return addr


def _endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _port_key(port: Obj) -> tuple[str, int, str]:
    return (str(port.get("name", "")), int(port.get("port", -1)), str(port.get("protocol", "")))


def _addr_key(addr: Obj) -> tuple[str, str]:
    return (str(addr["ip"]), str(addr["targetRef"]["uid"]))


def _ip_order(ip: str) -> tuple[tuple[int, ...], str]:
    """IPv4 addresses in numeric order (10.0.0.9 before 10.0.0.10); anything else after."""
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts), ip
    return (1 << 16,), ip


def endpoint_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets of `service` over the pods it selects (see the module
    docstring): addresses grouped by the set of ports they serve, sorted."""
    spec = service.get("spec") if isinstance(service.get("spec"), dict) else {}
    spec = spec or {}
    publish = spec.get("publishNotReadyAddresses") is True
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    # port (or None: the headless sentinel) -> address key -> (address, ready)
    by_port: dict[tuple[str, int, str] | None, dict[tuple[str, str], tuple[Obj, bool]]] = {}
    port_of: dict[tuple[str, int, str], Obj] = {}
    for pod in pods:
        if not pod_in_endpoints(pod, include_terminating=publish):
            continue
        addr = _address(pod, service)
        ready = publish or pod_ready(pod)
        if not ports:
            if headless:
                by_port.setdefault(None, {})[_addr_key(addr)] = (addr, ready)
            continue
        for sp in ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            ep = _endpoint_port(sp, number)
            port_of[_port_key(ep)] = ep
            by_port.setdefault(_port_key(ep), {})[_addr_key(addr)] = (addr, ready)
    # RepackSubsets: ports that share the same addresses (and readiness) share a subset.
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[str, int, str] | None]] = {}
    members: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[Obj, bool]]] = {}
    for port_key, addrs in by_port.items():
        signature = frozenset((k, ready) for k, (_a, ready) in addrs.items())
        groups.setdefault(signature, []).append(port_key)
        members[signature] = list(addrs.values())
    subsets: list[Obj] = []
    for signature, port_keys in groups.items():
        ready_addrs = sorted(
            (a for a, r in members[signature] if r), key=lambda a: _ip_order(a["ip"])
        )
        not_ready = sorted(
            (a for a, r in members[signature] if not r), key=lambda a: _ip_order(a["ip"])
        )
        subset: Obj = {}
        if ready_addrs:
            subset["addresses"] = ready_addrs
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        real = sorted(pk for pk in port_keys if pk is not None)
        if real:
            subset["ports"] = [port_of[pk] for pk in real]
        subsets.append(subset)
    subsets.sort(key=_subset_order)
    return subsets


def _subset_order(subset: Obj) -> tuple[Any, ...]:
    ports = [_port_key(p) for p in subset.get("ports", [])]
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{"ip": ""}])[0]
    return (ports, _ip_order(str(first["ip"])))


def desired_endpoints(service: Obj, pods: Iterable[Obj]) -> Obj:
    """The Endpoints object `service` should have: its name, namespace and labels (plus
    the headless label for a headless Service), and the subsets."""
    meta = service.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    spec = service.get("spec") if isinstance(service.get("spec"), dict) else {}
    if (spec or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    out_meta: Obj = {"name": meta.get("name", ""), "namespace": meta.get("namespace", "")}
    if labels:
        out_meta["labels"] = labels
    return {
        "apiVersion": ENDPOINTS.api_version,
        "kind": ENDPOINTS.kind,
        "metadata": out_meta,
        "subsets": endpoint_subsets(service, pods),
    }


def endpoints_changed(current: Obj, desired: Obj) -> bool:
    """Whether `current` must be rewritten: its subsets or labels differ."""
    cur_labels = (current.get("metadata") or {}).get("labels") or {}
    want_labels = (desired.get("metadata") or {}).get("labels") or {}
    return bool((current.get("subsets") or []) != desired["subsets"] or cur_labels != want_labels)


def pod_changed(old: Obj, new: Obj) -> bool:
    """Whether an update of a pod can change any Endpoints (podEndpointsChanged): its
    labels, IP, readiness, node, hostname, deletion or phase."""

    def view(p: Obj) -> tuple[Any, ...]:
        meta = p.get("metadata") or {}
        spec = p.get("spec") if isinstance(p.get("spec"), dict) else {}
        status = p.get("status") if isinstance(p.get("status"), dict) else {}
        return (
            meta.get("labels"),
            bool(meta.get("deletionTimestamp")),
            (status or {}).get("podIP"),
            (status or {}).get("phase"),
            pod_ready(p),
            (spec or {}).get("nodeName"),
            (spec or {}).get("hostname"),
            (spec or {}).get("subdomain"),
            (spec or {}).get("containers"),
        )

    return view(old) != view(new)


# -- the controller --------------------------------------------------------------------------------


class EndpointsController:
    """Keeps each selector Service's Endpoints (see the module docstring)."""

    name = "endpoints"

    def __init__(self, *, workers: int = 4) -> None:
        self.workers = workers

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.services = ctx.informers.informer_for(SERVICES)
        self.pods = ctx.informers.informer_for(PODS)
        self.endpoints = ctx.informers.informer_for(ENDPOINTS)
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="endpoints")
        self.pods_by_ns: dict[str, set[str]] = {}
        self.services.add_handler(
            lambda s: self.queue.add(key_of(s)),
            lambda _old, new: self.queue.add(key_of(new)),
            lambda s: self.queue.add(key_of(s)),
        )
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        # Endpoints left behind by a deleted Service (checkLeftoverEndpoints), and Endpoints
        # someone else changed or deleted, are reconciled too.
        self.endpoints.add_handler(
            lambda e: self.queue.add(key_of(e)),
            lambda _old, new: self.queue.add(key_of(new)),
            lambda e: self.queue.add(key_of(e)),
        )

    async def run(self, ctx: Context) -> None:
        await run_workers(self.name, self.queue, self.sync, workers=self.workers)

    # -- handlers --------------------------------------------------------------------------------

    def _enqueue_services_of(self, pod: Obj) -> None:
        """getPodServiceMemberships: every selector Service of the pod's namespace that
        selects it."""
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        for svc in self.services.list():
            meta = svc.get("metadata") or {}
            if meta.get("namespace") != ns:
                continue
            selector = service_selector(svc)
            if selector is not None and selects(selector, pod):
                self.queue.add(key_of(svc))

    def _pod_added(self, pod: Obj) -> None:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        self.pods_by_ns.setdefault(ns, set()).add(key_of(pod))
        self._enqueue_services_of(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not pod_changed(old, new):
            return
        self._enqueue_services_of(new)
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._enqueue_services_of(old)

    def _pod_deleted(self, pod: Obj) -> None:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        keys = self.pods_by_ns.get(ns)
        if keys is not None:
            keys.discard(key_of(pod))
            if not keys:
                del self.pods_by_ns[ns]
        self._enqueue_services_of(pod)

    # -- sync ------------------------------------------------------------------------------------

    def _pods_in(self, namespace: str) -> list[Obj]:
        out = []
        for key in self.pods_by_ns.get(namespace, ()):
            pod = self.pods.get(*split_key(key))
            if pod is not None:
                out.append(pod)
        return out

    async def sync(self, key: str) -> None:
        """syncService: create, update or delete the Endpoints `key`."""
        ns, name = split_key(key)
        service = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if service is None:
            if current is not None:
                try:
                    await self.ctx.writer.delete(ENDPOINTS, ns, name)
                    logger.info("endpoints %s deleted with their service", key)
                except APIError as e:
                    if e.code != 404:
                        raise
            return
        selector = service_selector(service)
        if selector is None:
            return
        pods = [p for p in self._pods_in(ns) if selects(selector, p)]
        desired = desired_endpoints(service, pods)
        if current is None:
            await self.ctx.writer.create(ENDPOINTS, ns, desired)
            logger.info("endpoints %s created", key)
            return
        if not endpoints_changed(current, desired):
            return
        meta = {**(current.get("metadata") or {}), **desired["metadata"]}
        if "labels" not in desired["metadata"]:
            meta.pop("labels", None)
        await self.ctx.writer.update(
            ENDPOINTS, ns, {**current, "metadata": meta, "subsets": desired["subsets"]}
        )
        logger.debug("endpoints %s updated", key)
