"""API discovery documents, built from `resources.RESOURCES` (kubectl-api.md §3).

Two forms are served:

- **Legacy** (`/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`): enough on its own for every
  kubectl from 1.20 to 1.33, and the form `kubectl drain` reads in 1.27+ even when the
  aggregated one is served (it checks the `pods/eviction` entry's group and version).
- **Aggregated** (`apidiscovery.k8s.io` v2 and v2beta1, on `/api` and `/apis`): saves a
  request per group version. The client decides by the response Content-Type, which must echo
  the parameters it asked for (`negotiate_aggregated`).

Only what the REST server serves is advertised: a listed group version whose document fails
makes every kubectl command print discovery errors, and a listed subresource that 404s sends
`drain` and `scale` down the wrong path. `SERVED_SUBRESOURCES` is the list the REST server
routes; a subresource of `RESOURCES` missing from it (exec, portforward, binding) is left out.

Pure functions: no I/O, output depends only on the arguments.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from .resources import RESOURCES, Resource, Subresource, groups

# Subresources the REST server answers (controlplane/server/rest.py routes exactly these).
SERVED_SUBRESOURCES = frozenset({"status", "scale", "eviction", "log"})

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_AS = "APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")

Doc = dict[str, Any]


def _served(res: Resource, served: Collection[str]) -> list[Subresource]:
    return [s for s in res.subresources if s.name in served]


def _resources_of(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def api_versions(server_address: str) -> Doc:
    """`GET /api`: the core group's versions and the address clients should use."""
    return {
        "kind": "APIVersions",
        "versions": [v for g, v in groups() if g == ""],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_version(group: str, version: str) -> Doc:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str) -> Doc | None:
    """`GET /apis/{group}`: one named group (None when the group is not served)."""
    versions = [v for g, v in groups() if g == group]
    if not group or not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version(group, v) for v in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list() -> Doc:
    """`GET /apis`: every named group (the core group is `/api`'s)."""
    names: list[str] = []
    for g, _ in groups():
        if g and g not in names:
            names.append(g)
    items = [api_group(g) for g in names]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in g.items() if k not in ("kind", "apiVersion")} for g in items if g
        ],
    }


def _resource_entry(res: Resource) -> Doc:
    entry: Doc = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": sorted(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    return entry


def _subresource_entry(res: Resource, sub: Subresource) -> Doc:
    entry: Doc = {
        "name": f"{res.plural}/{sub.name}",
        "singularName": "",
        "namespaced": res.namespaced,
    }
    if sub.group is not None:
        entry["group"] = sub.group
    if sub.version is not None:
        entry["version"] = sub.version
    entry["kind"] = sub.kind
    entry["verbs"] = sorted(sub.verbs)
    return entry


def api_resource_list(
    group: str, version: str, served: Collection[str] = SERVED_SUBRESOURCES
) -> Doc | None:
    """`GET /api/v1` or `GET /apis/{group}/{version}` (None when not served): every resource
    and served subresource of the group version, sorted by name as kube-apiserver lists them
    (`pods`, `pods/eviction`, `pods/log`, `pods/status`, ...)."""
    resources = _resources_of(group, version)
    if not resources:
        return None
    entries: list[Doc] = []
    for res in resources:
        entries.append(_resource_entry(res))
        entries.extend(_subresource_entry(res, s) for s in _served(res, served))
    entries.sort(key=lambda e: str(e["name"]))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


# -- aggregated discovery (apidiscovery.k8s.io) -------------------------------------------------


def _media_ranges(accept: str) -> Iterable[tuple[str, dict[str, str]]]:
    """The media ranges of an Accept header in the client's order, with lower-cased
    parameter names; malformed parts are skipped (Accept is a preference, not a contract)."""
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            name, sep, value = f.partition("=")
            if sep:
                params[name.strip().lower()] = value.strip().strip('"')
        yield media, params


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated discovery version to answer `/api` or `/apis` with ("v2", "v2beta1"),
    or None for the legacy document.

    The client's order decides, as in kube-apiserver's negotiation: kubectl 1.30+ offers v2,
    then v2beta1, then plain JSON; 1.27-1.29 offer v2beta1 then JSON; 1.20 plain JSON."""
    for media, params in _media_ranges(accept):
        if media in ("application/json", "application/*", "*/*") and not params.get("as"):
            return None
        if (
            media == "application/json"
            and params.get("g") == AGGREGATED_GROUP
            and params.get("as") == AGGREGATED_AS
            and params.get("v") in AGGREGATED_VERSIONS
        ):
            return params["v"]
    return None


def aggregated_content_type(version: str) -> str:
    """The Content-Type that tells the client the body is aggregated discovery."""
    return f"application/json;g={AGGREGATED_GROUP};v={version};as={AGGREGATED_AS}"


def _gvk(group: str, version: str, kind: str) -> Doc:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(res: Resource, served: Collection[str]) -> Doc:
    entry: Doc = {
        "resource": res.plural,
        "responseKind": _gvk(res.group, res.version, res.kind),
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": sorted(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = _served(res, served)
    if subs:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": _gvk(
                    s.group if s.group is not None else res.group,
                    s.version if s.version is not None else res.version,
                    s.kind,
                ),
                "verbs": sorted(s.verbs),
            }
            for s in sorted(subs, key=lambda s: s.name)
        ]
    return entry


def _aggregated_group(group: str, served: Collection[str]) -> Doc:
    versions = [v for g, v in groups() if g == group]
    return {
        "metadata": {"name": group},
        "versions": [
            {
                "version": v,
                "freshness": "Current",
                "resources": [
                    _aggregated_resource(r, served)
                    for r in sorted(_resources_of(group, v), key=lambda r: r.plural)
                ],
            }
            for v in versions
        ],
    }


def aggregated(version: str, *, core: bool, served: Collection[str] = SERVED_SUBRESOURCES) -> Doc:
    """An `APIGroupDiscoveryList`: the core group only (`/api`, one item named "") or every
    named group (`/apis`). v2 and v2beta1 differ only in `apiVersion`."""
    names: list[str] = []
    for g, _ in groups():
        if (g == "") == core and g not in names:
            names.append(g)
    return {
        "kind": AGGREGATED_AS,
        "apiVersion": f"{AGGREGATED_GROUP}/{version}",
        "metadata": {},
        "items": [_aggregated_group(g, served) for g in names],
    }


def served_group_versions() -> list[str]:
    """The discovery paths of every served group version (`/api/v1`, `/apis/apps/v1`)."""
    return [f"/apis/{g}/{v}" if g else f"/api/{v}" for g, v in groups()]
