"""Pure helpers shared by the workload controllers (ReplicaSet, Deployment, and whoever
else reads pods): pod readiness and availability, controller references and the
adopt/release decision, and the pod-template hash that names a Deployment's ReplicaSets.

They follow `k8s.io/kubernetes/pkg/api/v1/pod`, `pkg/controller/controller_utils.go`,
`controller_ref_manager.go` and `apimachinery/pkg/apis/meta/v1` on JSON objects. Nothing
here does I/O or reads the clock: callers pass `now` (epoch seconds).

The pod-template hash is Kubernetes' `controller.ComputeHash` in shape: FNV-32a over the
template, then over the collision count, printed in decimal and re-encoded with
`rand.SafeEncodeString` (so names look like `web-5d4f8c7b9`). Go hashes the spew dump of
its `PodTemplateSpec` struct; kubelab hashes the canonical JSON of the template's
*semantic* form instead (`semantic_template`), so the exact digits differ from a real
cluster's but keep the properties that matter: the same template always gives the same
name, and a template that differs only in how it is spelled (the `creationTimestamp: null`
and the server defaults that `kubectl rollout undo` sends back, `0.5` for `500m`, an empty
list for a missing one) gives the same hash and compares equal to the ReplicaSet it came
from.
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

from controlplane.kube import quantity
from controlplane.kube.defaults import normalize_template
from controlplane.kube.errors import APIError
from controlplane.kube.selectors import LabelSelector
from controlplane.kube.storage import parse_rfc3339

Obj = dict[str, Any]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"  # apps.DefaultDeploymentUniqueLabelKey
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

# -- object accessors --------------------------------------------------------------------------


def meta_of(obj: Mapping[str, Any]) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def spec_of(obj: Mapping[str, Any]) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def status_of(obj: Mapping[str, Any]) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("uid") or "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = meta_of(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    annotations = meta_of(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def is_terminating(obj: Mapping[str, Any]) -> bool:
    """The object has a deletionTimestamp: it is going away (graceful deletion, finalizers)."""
    return bool(meta_of(obj).get("deletionTimestamp"))


def creation_time(obj: Mapping[str, Any]) -> float | None:
    return parse_rfc3339(meta_of(obj).get("creationTimestamp"))


def by_creation(obj: Mapping[str, Any]) -> tuple[float, str]:
    """Sort key of `controller.ReplicaSetsByCreationTimestamp`: oldest first, then by name
    (timestamps have one-second resolution, so ties are common)."""
    created = creation_time(obj)
    return (created if created is not None else 0.0, name_of(obj))


def int_field(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    """`obj[key]` as an int; `default` when absent, null or not a number (validation keeps
    stored objects well-formed, so this is only a guard against a hand-written one)."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def spec_replicas(obj: Mapping[str, Any]) -> int:
    """`*spec.replicas` (defaulted to 1 by the API server when unset)."""
    return int_field(spec_of(obj), "replicas", 1)


# -- pods --------------------------------------------------------------------------------------


def pod_phase(pod: Mapping[str, Any]) -> str:
    return str(status_of(pod).get("phase") or "")


def pod_condition(pod: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in status_of(pod).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True (podutil.IsPodReady)."""
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_ready_time(pod: Mapping[str, Any]) -> float | None:
    """When the pod last became Ready; None when it is not ready or the time is unknown."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_rfc3339(cond.get("lastTransitionTime"))


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> bool:
    """Ready, and for longer than `min_ready_seconds` (podutil.IsPodAvailable: with 0 a pod
    is available as soon as it is ready; otherwise the Ready condition must carry a
    lastTransitionTime at least that old)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds < now


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Neither finished (Succeeded, Failed) nor being deleted (controller.IsPodActive): the
    pods a ReplicaSet counts towards its replicas."""
    return pod_phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def filter_active_pods(pods: Iterable[Obj]) -> list[Obj]:
    return [p for p in pods if is_pod_active(p)]


def max_container_restarts(pod: Mapping[str, Any]) -> int:
    restarts = 0
    for cs in status_of(pod).get("containerStatuses") or []:
        if isinstance(cs, dict):
            restarts = max(restarts, int_field(cs, "restartCount"))
    return restarts


def pod_deletion_cost(pod: Mapping[str, Any]) -> int:
    """The `controller.kubernetes.io/pod-deletion-cost` annotation (an int32; 0 when absent
    or malformed, as the controller treats a value validation would have refused)."""
    text = annotations_of(pod).get(POD_DELETION_COST_ANNOTATION)
    if not isinstance(text, str):
        return 0
    try:
        value = int(text.strip())
    except ValueError:
        return 0
    return value if -(2**31) <= value < 2**31 else 0


def pod_key(pod: Mapping[str, Any]) -> str:
    """`namespace/name` (controller.PodKey), the expectations' identity of a pod."""
    return f"{namespace_of(pod)}/{name_of(pod)}"


def namespace_terminating(e: APIError) -> bool:
    """A create refused because its namespace is being deleted (Kubernetes' status cause
    NamespaceTerminating): controllers drop it, the namespace controller removes the rest."""
    return e.code == 403 and "because it is being terminated" in e.message


# -- controller references ---------------------------------------------------------------------


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with `controller: true` (metav1.GetControllerOf), or None."""
    for ref in meta_of(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def new_controller_ref(owner: Mapping[str, Any], *, api_version: str, kind: str) -> Obj:
    """metav1.NewControllerRef: the reference a controller puts on what it creates."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid_of(owner)


class Claim(enum.Enum):
    """What a controller does with an object its namespace holds (ClaimObject)."""

    OWNED = "owned"  # ours, and matching our selector
    ADOPT = "adopt"  # an orphan that matches: take it
    RELEASE = "release"  # ours but no longer matching: let it go
    IGNORE = "ignore"  # someone else's, or not for us


def claim(owner: Mapping[str, Any], obj: Mapping[str, Any], selector: LabelSelector) -> Claim:
    """Kubernetes' `BaseControllerRefManager.ClaimObject` decision.

    An object controlled by `owner` stays while it matches the selector and is released
    when it stops matching (unless the owner is itself being deleted). An orphan is adopted
    when it matches, is not being deleted, lives in the owner's namespace and the owner is
    not being deleted. Objects controlled by anyone else are never touched."""
    ref = controller_ref(obj)
    if ref is not None:
        if ref.get("uid") != uid_of(owner):
            return Claim.IGNORE
        if selector.matches(labels_of(obj)):
            return Claim.OWNED
        return Claim.IGNORE if is_terminating(owner) else Claim.RELEASE
    if is_terminating(owner) or is_terminating(obj) or not selector.matches(labels_of(obj)):
        return Claim.IGNORE
    if namespace_of(owner) and namespace_of(owner) != namespace_of(obj):
        return Claim.IGNORE
    return Claim.ADOPT


def with_controller_ref(obj: Mapping[str, Any], ref: Obj) -> Obj:
    """A copy of `obj` that also carries `ref` (adoption)."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["ownerReferences"] = [*(meta.get("ownerReferences") or []), copy.deepcopy(ref)]
    return out


def without_owner(obj: Mapping[str, Any], owner_uid: str) -> Obj:
    """A copy of `obj` without the ownerReference to `owner_uid` (release)."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    return out


# -- pod templates: semantic form, equality and hash -------------------------------------------

# Go fields that are plain (non-pointer) bools and ints with `omitempty`: false and 0 are
# their zero values, which a Go client drops when it re-encodes a template (kubectl does,
# in `rollout undo`). Pointer fields (runAsUser: 0, privileged: false) keep their meaning.
_ZERO_IS_UNSET = {
    "hostNetwork": False,
    "hostPID": False,
    "hostIPC": False,
    "stdin": False,
    "stdinOnce": False,
    "tty": False,
    "readOnly": False,
    "hostPort": 0,
    "initialDelaySeconds": 0,
}
# Maps of user data inside a pod template: their keys are not Go fields, and a key with
# the value "" is not the same as no key.
_USER_MAPS = frozenset(
    {"labels", "annotations", "nodeSelector", "matchLabels", "volumeAttributes", "options"}
)


def _quantity(value: Any) -> Any:
    try:
        return quantity.canonical(value)
    except ValueError:
        return value  # not a quantity: validation's business, compared as it is


def _quantities(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {name: _quantity(value) for name, value in values.items()}


def _unset(key: str, value: Any, in_user_map: bool) -> bool:
    """Does Go see this field as unset? nil, an empty map or slice, and (for struct
    fields) "" and the zero value of a plain bool or int field."""
    if value is None or value in ({}, []):
        return True
    if in_user_map:
        return False
    if value == "" and isinstance(value, str):
        return True  # API strings are plain Go strings: "" is the zero value
    zero = _ZERO_IS_UNSET.get(key)
    return zero is not None and type(value) is type(zero) and value == zero


def _prune(value: Any, key: str = "") -> Any:
    """Go's semantic equality on JSON: nil and empty maps and slices are equal, plain zero
    values are unset; quantities compare by value (canonical form)."""
    if isinstance(value, dict):
        out: Obj = {}
        user_map = key in _USER_MAPS
        for k, item in value.items():
            if key == "resources" and k in ("limits", "requests"):
                item = _quantities(item)  # noqa: PLW2901
            elif key == "emptyDir" and k == "sizeLimit":
                item = _quantity(item)  # noqa: PLW2901
            pruned = item if user_map else _prune(item, k)
            if not _unset(k, pruned, user_map):
                out[k] = pruned
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def semantic_template(template: Mapping[str, Any]) -> Obj:
    """The form of a pod template that two spellings of one template share: normalised
    (`defaults.normalize_template`: server defaults applied, `creationTimestamp: null`
    dropped), empty and zero values dropped, quantities canonical. ValueError when
    `template` is not an object."""
    pruned: Obj = _prune(normalize_template(dict(template)))
    return pruned


def without_hash_label(template: Mapping[str, Any]) -> Obj:
    """A copy of `template` without the pod-template-hash label."""
    out = copy.deepcopy(dict(template))
    meta = out.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        meta["labels"].pop(POD_TEMPLATE_HASH_LABEL, None)
    return out


def equal_ignore_hash(t1: Mapping[str, Any] | None, t2: Mapping[str, Any] | None) -> bool:
    """deploymentutil.EqualIgnoreHash: the two pod templates are semantically equal once the
    pod-template-hash label is left out. A template that is not an object equals nothing."""
    if not isinstance(t1, Mapping) or not isinstance(t2, Mapping):
        return False
    try:
        return semantic_template(without_hash_label(t1)) == semantic_template(
            without_hash_label(t2)
        )
    except ValueError:
        return False


FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, h: int = FNV32_OFFSET) -> int:
    """FNV-1a, 32 bits (Go's hash/fnv New32a); pass the previous value to continue."""
    for byte in data:
        h = ((h ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return h


# k8s.io/apimachinery/pkg/util/rand: no vowels (no words), no 0/1/3 (no confusion, no
# "l33t" words).
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode_string(s: str) -> str:
    """rand.SafeEncodeString: each byte mapped into the safe alphabet."""
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """controller.ComputeHash: the pod-template-hash of `template` (see the module
    docstring). `collision_count` (the Deployment's status.collisionCount) is hashed after
    the template, as 8 bytes holding its little-endian uint32, when it is set."""
    canonical = json.dumps(
        semantic_template(template), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    h = fnv32a(canonical.encode())
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), h)
    return safe_encode_string(str(h))
