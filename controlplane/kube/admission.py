"""The one admission path of every write, REST or gRPC: shape checks, system metadata,
defaulting, validation and the spec/status split.

Pure: the caller passes what is nondeterministic (the time, a uid, a generateName suffix),
decided before proposing, so every replica stores the same bytes. Errors are `APIError`s:
400 for a body that is not an object of the URL's kind, 422 with `details.causes` for
invalid fields (every cause at once, as the API server does).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import defaults, errors, validation
from .resources import Resource

Obj = dict[str, Any]

# Metadata the server owns: a client's values are replaced on create and kept on update.
SYSTEM_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "resourceVersion",
)
MAX_OBJECT_BYTES = 1_572_864  # 1.5 MiB: the API server's and etcd's request size limit


def encode(obj: Obj) -> bytes:
    """The stored form: compact JSON without the resourceVersion (it is the mod revision)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _check_shape(res: Resource, obj: object) -> Obj:
    if not isinstance(obj, dict):
        raise errors.bad_request(
            f"the request body must be a JSON object (a {res.kind}), got {type(obj).__name__}"
        )
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in (None, "", res.kind) or api_version not in (None, "", res.api_version):
        raise errors.bad_request(
            f"the body is a {kind} ({api_version}) but the URL is for {res.kind} "
            f"({res.api_version}): send it to its own resource's URL"
        )
    meta = obj.get("metadata", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise errors.invalid(
            res, "", [errors.cause("metadata", "Invalid value: expected an object")]
        )
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise errors.invalid(
                res,
                str(meta.get("name", "")),
                [errors.cause(f"metadata.{key}", "Invalid value: expected a map of strings")],
            )
    out = copy.deepcopy(obj)
    out["kind"], out["apiVersion"] = res.kind, res.api_version
    out["metadata"] = copy.deepcopy(meta)
    return out


def _check_size(res: Resource, obj: Obj) -> bytes:
    data = encode(obj)
    if len(data) > MAX_OBJECT_BYTES:
        raise errors.too_large(
            f"{res.kind} {obj['metadata'].get('name', '')!r} is {len(data)} bytes; the limit is "
            f"{MAX_OBJECT_BYTES} bytes (1.5 MiB), as in Kubernetes"
        )
    return data


def _fail_on(res: Resource, name: str, causes: list[errors.Cause]) -> None:
    if causes:
        raise errors.invalid(res, name, causes)


def _spec_of(obj: Obj) -> Obj:
    """Everything but metadata and status: what a `generation` counts changes of."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _initial_status(res: Resource, obj: Obj) -> None:
    """What the API server's PrepareForCreate strategies set (status is not the client's)."""
    if res.kind in ("Deployment", "ReplicaSet"):
        obj["status"] = {}
    elif res.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
    elif res.kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    elif res.kind == "Namespace":
        obj["status"] = {"phase": "Active"}


def _qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        return "BestEffort"
    any_set, all_guaranteed = False, True
    for c in containers:
        res = c.get("resources") if isinstance(c, dict) else None
        res = res if isinstance(res, dict) else {}
        req: Obj = res["requests"] if isinstance(res.get("requests"), dict) else {}
        lim: Obj = res["limits"] if isinstance(res.get("limits"), dict) else {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                all_guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if all_guaranteed else "Burstable"


def admit_create(
    res: Resource,
    namespace: str,
    body: object,
    *,
    now: str,
    uid: str,
    name_suffix: str,
    toleration_s: int | None = None,
) -> tuple[Obj, bytes]:
    """The object to store for a POST, and its bytes. `toleration_s`: the
    DefaultTolerationSeconds admission plugin's value for Pods (None: off)."""
    obj = _check_shape(res, body)
    meta = obj["metadata"]
    for key in SYSTEM_METADATA:
        meta.pop(key, None)
    meta.pop("managedFields", None)
    if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        meta["name"] = meta["generateName"] + name_suffix
    if res.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = uid
    meta["creationTimestamp"] = now
    if res.has_status:
        meta["generation"] = 1
    obj["metadata"] = _ordered_meta(meta)
    if res.has_status:
        _initial_status(res, obj)
    defaults.apply_defaults(res, obj)
    if res.kind == "Pod" and toleration_s is not None:
        _default_tolerations(obj, toleration_s)
    _fail_on(res, str(meta.get("name", "")), validation.validate(res, obj))
    return obj, _check_size(res, obj)


NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _default_tolerations(pod: Obj, seconds: int) -> None:
    """As Kubernetes' DefaultTolerationSeconds plugin: a pod tolerates a not-ready or
    unreachable node for `seconds` before the node lifecycle controller evicts it, unless
    it says otherwise."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if any(
            isinstance(t, dict)
            and t.get("key") in (key, None, "")
            and t.get("effect") in ("NoExecute", None, "")
            for t in tolerations
        ):
            continue
        tolerations.append(
            {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
        )


def admit_binding(res: Resource, old: Obj, body: object, *, now: str) -> tuple[Obj, bytes]:
    """A `pods/binding` (a `Binding` with `target.name`): sets spec.nodeName once and the
    PodScheduled condition; 409 when the pod is already bound, as the API server does."""
    if not isinstance(body, dict) or not isinstance(body.get("target"), dict):
        raise errors.bad_request("a Binding needs target.name: the node to bind the pod to")
    node = body["target"].get("name")
    name = str(old["metadata"]["name"])
    if not isinstance(node, str) or not node:
        raise errors.invalid(res, name, [errors.cause("target.name", "Required value")])
    spec: Obj = old["spec"] if isinstance(old.get("spec"), dict) else {}
    if spec.get("nodeName"):
        raise errors.conflict(
            res, name, f"pod {name} is already assigned to node {spec['nodeName']!r}"
        )
    if old["metadata"].get("deletionTimestamp"):
        raise errors.conflict(
            res, name, f"pod {name} is being deleted, cannot be assigned to a host"
        )
    obj = copy.deepcopy(old)
    obj["spec"]["nodeName"] = node
    status = obj.setdefault("status", {})
    conditions = [
        c
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") != "PodScheduled"
    ]
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
    )
    status["conditions"] = conditions
    obj["metadata"].pop("resourceVersion", None)
    return obj, _check_size(res, obj)


def admit_update(
    res: Resource, old: Obj, body: object, *, subresource: str = ""
) -> tuple[Obj, bytes]:
    """The object to store for a PUT over `old` (as read), and its bytes.

    Main resource: the client's spec and metadata, the server's status and system metadata,
    `generation` bumped when the spec changed. `status`: only the client's status."""
    new = _check_shape(res, body)
    name = str(old["metadata"]["name"])
    new_name = new["metadata"].get("name")
    if new_name not in (None, "", name):
        raise errors.bad_request(
            f"the name of the object ({new_name}) does not match the name on the URL ({name})"
        )
    if subresource == "status":
        obj = copy.deepcopy(old)
        obj["status"] = new.get("status", {})
    else:
        obj = new
        meta = obj["metadata"]
        for key in SYSTEM_METADATA:
            meta.pop(key, None)
            if key in old["metadata"] and key != "resourceVersion":
                meta[key] = old["metadata"][key]
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = old["metadata"].get("namespace", "")
        else:
            meta.pop("namespace", None)
        if res.has_status:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        if res.kind == "Service":
            _keep_allocations(old, obj)
        defaults.apply_defaults(res, obj)
        if res.has_status and _spec_of(obj) != _spec_of(old):
            meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
        obj["metadata"] = _ordered_meta(meta)
    obj["metadata"].pop("resourceVersion", None)
    _fail_on(res, name, validation.validate_update(res, old, obj))
    return obj, _check_size(res, obj)


def _keep_allocations(old: Obj, new: Obj) -> None:
    """A replaced Service keeps what was allocated to it (clusterIP, nodePorts) unless the
    client sets them, as the API server's Service REST strategy does."""
    old_spec, new_spec = old.get("spec"), new.get("spec")
    if not isinstance(old_spec, dict) or not isinstance(new_spec, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if not new_spec.get(key) and old_spec.get(key):
            new_spec[key] = copy.deepcopy(old_spec[key])
    old_ports, new_ports = old_spec.get("ports"), new_spec.get("ports")
    if not isinstance(old_ports, list) or not isinstance(new_ports, list):
        return
    allocated = {
        (p.get("port"), p.get("protocol", "TCP")): p["nodePort"]
        for p in old_ports
        if isinstance(p, dict) and p.get("nodePort")
    }
    for p in new_ports:
        if isinstance(p, dict) and not p.get("nodePort"):
            found = allocated.get((p.get("port"), p.get("protocol", "TCP")))
            if found:
                p["nodePort"] = found


_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
)


def _ordered_meta(meta: Obj) -> Obj:
    """Metadata in the API server's field order (what `-o yaml` shows), unknown keys last."""
    out = {k: meta[k] for k in _META_ORDER if k in meta}
    out.update((k, v) for k, v in meta.items() if k not in out)
    return out
