"""The kinds kubelab serves, as Kubernetes' discovery describes them.

One `Resource` per (group, version, plural). Keys in the store follow the Kubernetes API
server's layout: `/registry/<prefix>/<namespace>/<name>` for namespaced kinds and
`/registry/<prefix>/<name>` for cluster-scoped ones, where `prefix` is the plural with a
few historical exceptions (`services/specs`, `minions` for nodes are not reproduced: we use
the plural everywhere, which is what a reader expects).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str  # "status", "scale", "log", "eviction", ...
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # set when the subresource answers another group's kind
    version: str | None = None


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = True  # spec and status are written separately (status subresource)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: how Kubernetes names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def prefix(self) -> bytes:
        """Store key prefix of every object of this resource (ends with '/')."""
        group = f"{self.group}/" if self.group else ""
        return f"/registry/{group}{self.plural}/".encode()

    def key(self, namespace: str, name: str) -> bytes:
        if self.namespaced:
            return self.prefix + f"{namespace}/{name}".encode()
        return self.prefix + name.encode()

    def namespace_prefix(self, namespace: str | None) -> bytes:
        """Prefix of the objects of one namespace (all of them when None or cluster-scoped)."""
        if namespace and self.namespaced:
            return self.prefix + f"{namespace}/".encode()
        return self.prefix

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def url(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of a collection or an object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return base


_STATUS_VERBS = ("get", "patch", "update")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, _STATUS_VERBS)


NAMESPACES = Resource(
    "", "v1", "Namespace", "namespaces", False, ("ns",), (), (_status("Namespace"),)
)
NODES = Resource("", "v1", "Node", "nodes", False, ("no",), (), (_status("Node"),))
PODS = Resource(
    "",
    "v1",
    "Pod",
    "pods",
    True,
    ("po",),
    ("all",),
    (
        _status("Pod"),
        Subresource("log", "Pod", ("get",)),
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
    ),
)
SERVICES = Resource(
    "", "v1", "Service", "services", True, ("svc",), ("all",), (_status("Service"),)
)
ENDPOINTS = Resource("", "v1", "Endpoints", "endpoints", True, ("ep",), has_status=False)
EVENTS = Resource("", "v1", "Event", "events", True, ("ev",), has_status=False)
CONFIGMAPS = Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",), has_status=False)
DEPLOYMENTS = Resource(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    True,
    ("deploy",),
    ("all",),
    (
        Subresource("scale", "Scale", _STATUS_VERBS, "autoscaling", "v1"),
        _status("Deployment"),
    ),
)
REPLICASETS = Resource(
    "apps",
    "v1",
    "ReplicaSet",
    "replicasets",
    True,
    ("rs",),
    ("all",),
    (
        Subresource("scale", "Scale", _STATUS_VERBS, "autoscaling", "v1"),
        _status("ReplicaSet"),
    ),
)
LEASES = Resource("coordination.k8s.io", "v1", "Lease", "leases", True, has_status=False)

RESOURCES: tuple[Resource, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    ENDPOINTS,
    EVENTS,
    CONFIGMAPS,
    DEPLOYMENTS,
    REPLICASETS,
    LEASES,
)

# Namespaces every cluster has from bootstrap (Kubernetes' system namespaces).
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")

_BY_GVR = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_GVK = {(r.group, r.version, r.kind): r for r in RESOURCES}


def by_gvr(group: str, version: str, plural: str) -> Resource | None:
    return _BY_GVR.get((group, version, plural))


def by_api_version_kind(api_version: str, kind: str) -> Resource | None:
    """The resource of a manifest's `apiVersion` and `kind` (None when not served)."""
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def by_kind(kind: str) -> Resource | None:
    for r in RESOURCES:
        if r.kind == kind:
            return r
    return None


def lookup(name: str) -> Resource | None:
    """Resolve what a user types, as kubectl does: plural, singular, short name or kind,
    optionally qualified by group (`deployments.apps`, `deploy`, `Deployment`)."""
    name = name.strip()
    base, _, group = name.partition(".")
    low = base.lower()
    for r in RESOURCES:
        if group and r.group != group:
            continue
        if low in (r.plural, r.singular, r.kind.lower()) or low in r.short_names:
            return r
    return None


def known_kinds() -> list[str]:
    """`Kind (apiVersion)` of every served resource, for "unknown kind" errors."""
    return [f"{r.kind} ({r.api_version})" for r in RESOURCES]


def groups() -> list[tuple[str, str]]:
    """(group, version) pairs served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.append(gv)
    return seen
