"""The Deployment controller (kube-controller-manager's `pkg/controller/deployment`).

A Deployment owns one ReplicaSet per pod template it has had. The *new* ReplicaSet is
the one whose template equals the Deployment's (ignoring the pod-template-hash label); it
is created on demand, named `<deployment>-<pod-template-hash>`, with that hash added to
its labels and selector so the ReplicaSets of one Deployment never share pods. Every
other ReplicaSet it controls is *old*. Each sync, level-triggered from the caches:

- a paused Deployment only scales (proportionally, below) and reports status;
- a change of `spec.replicas` (the ReplicaSets' `desired-replicas` annotation differs) is a
  scaling event: every active ReplicaSet gets its share of the change, in proportion to
  its size (`scale_plan`), so a rollout in flight keeps its shape;
- otherwise the strategy rolls out: **RollingUpdate** scales the new ReplicaSet up within
  `replicas + maxSurge` pods and the old ones down while at least
  `replicas - maxUnavailable` stay available (`reconcile_new_replica_set`,
  `reconcile_old_replica_sets`); **Recreate** scales every old ReplicaSet to 0, waits
  until their pods are gone, then scales the new one up.

Revisions: the new ReplicaSet's `deployment.kubernetes.io/revision` is one more than the
highest of the old ones, so re-using an old ReplicaSet (`kubectl rollout undo` sends its
template back) moves it to the top and keeps its name. Old ReplicaSets scaled to 0 beyond
`revisionHistoryLimit` are deleted, oldest revision first.

Status (`rollout_status`) carries what `kubectl rollout status` reads: observedGeneration,
replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas and the
conditions Available and Progressing (ProgressDeadlineExceeded once no progress was seen
for progressDeadlineSeconds).

One deliberate difference from Kubernetes, so that a rollout never leaves its bounds even
for a moment: when deciding how far it may surge, kubelab counts a ReplicaSet's pods as
`max(spec.replicas, status.replicas)` (the pods of a ReplicaSet just scaled down exist
until its controller deletes them), and when deciding how far it may scale down it counts
a ReplicaSet's available pods as at most its `spec.replicas` (pods being deleted are no
longer available). Kubernetes uses spec and status as they are, and a stale status can let
it step one batch over `maxSurge` or under `maxUnavailable`.

Decisions are pure functions; `DeploymentController` reads the caches and writes through
`ctx.writer`. Scaling Events use Kubernetes 1.33's wording: `Scaled up replica set
web-5d4f8c7b9 to 3` when it creates one, `Scaled down replica set web-5d4f8c7b9 from 3 to
1` when it resizes one.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.errors import APIError
from controlplane.kube.resources import DEPLOYMENTS, PODS, REPLICASETS
from controlplane.kube.selectors import LabelSelector
from controlplane.kube.storage import parse_rfc3339, rfc3339

from . import podutil
from .base import Context, key_of, run_workers, split_key
from .podutil import (
    POD_TEMPLATE_HASH_LABEL,
    Claim,
    Obj,
    annotations_of,
    by_creation,
    controller_ref,
    int_field,
    is_terminating,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    spec_of,
    spec_replicas,
    status_of,
    uid_of,
)

logger = logging.getLogger(__name__)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000
MAX_INT32 = 2**31 - 1
DEFAULT_WORKERS = 5  # --concurrent-deployment-syncs

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

# Condition reasons (deploymentutil).
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET_CREATED = "NewReplicaSetCreated"
FOUND_NEW_REPLICA_SET = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"

_ANNOTATIONS_NOT_COPIED = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        DEPRECATED_ROLLBACK_TO,
    }
)

# -- int-or-percent and the fenceposts ---------------------------------------------------------


def int_or_percent(value: object, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as it is; `"25%"` of `total`, rounded
    up or down; None is 0. ValueError for anything else (validation refuses it first)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r} is neither an int nor a string")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid value for IntOrString: {value!r} is neither an int nor a string")
    if not value.endswith("%"):
        raise ValueError(
            f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}"
        )
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f"invalid value {value!r}: not an integer percentage") from None
    scaled = Fraction(percent * total, 100)
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(max_surge: object, max_unavailable: object, desired: int) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts: (surge, unavailable) for `desired` replicas. Surge
    rounds up and unavailable down (so 25% of 5 is 2 and 1); when both come out 0,
    unavailable is 1, or the rollout could never move."""
    surge = int_or_percent(max_surge, desired, True)
    unavailable = int_or_percent(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def strategy_type(d: Mapping[str, Any]) -> str:
    strategy = spec_of(d).get("strategy")
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    return str(kind or ROLLING_UPDATE)


def is_rolling_update(d: Mapping[str, Any]) -> bool:
    return strategy_type(d) == ROLLING_UPDATE


def _rolling_params(d: Mapping[str, Any]) -> tuple[object, object]:
    strategy = spec_of(d).get("strategy")
    rolling = strategy.get("rollingUpdate") if isinstance(strategy, dict) else None
    rolling = rolling if isinstance(rolling, dict) else {}
    return rolling.get("maxSurge"), rolling.get("maxUnavailable")


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    try:
        return resolve_fenceposts(*_rolling_params(d), spec_replicas(d))
    except ValueError:
        return 0, 0  # caught by validation; Kubernetes ignores it here as well


def max_surge(d: Mapping[str, Any]) -> int:
    """deploymentutil.MaxSurge: extra pods a rolling update may run (0 for Recreate)."""
    return _fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    """deploymentutil.MaxUnavailable: pods a rolling update may miss, at most `replicas`
    (0 for Recreate and for 0 replicas)."""
    replicas = spec_replicas(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


# -- ReplicaSet accessors ----------------------------------------------------------------------


def _status_int(obj: Mapping[str, Any] | None, key: str) -> int:
    return int_field(status_of(obj), key) if obj is not None else 0


def _pods_of(rs: Mapping[str, Any]) -> int:
    """Pods `rs` may still have: its spec, or more while its controller has not yet deleted
    what a scale-down removed (see the module docstring)."""
    return max(spec_replicas(rs), _status_int(rs, "replicas"))


def _available_of(rs: Mapping[str, Any]) -> int:
    """Available pods of `rs` that will stay: at most its spec (see the module docstring)."""
    return min(_status_int(rs, "availableReplicas"), spec_replicas(rs))


def filter_active(rss: Sequence[Obj | None]) -> list[Obj]:
    """controller.FilterActiveReplicaSets: those with spec.replicas > 0."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def revision(rs: Mapping[str, Any]) -> int | None:
    """The revision annotation as an int: 0 when absent, None when it does not parse."""
    text = annotations_of(rs).get(REVISION_ANNOTATION)
    if text is None:
        return 0
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def max_revision(rss: Sequence[Obj]) -> int:
    """deploymentutil.MaxRevision (unparsable revisions are skipped)."""
    best = 0
    for rs in rss:
        v = revision(rs)
        if v is not None and v > best:
            best = v
    return best


def _by_revision(rs: Mapping[str, Any]) -> tuple[int, float, str]:
    return (revision(rs) or 0, *by_creation(rs))


def _annotation_int(rs: Mapping[str, Any], key: str) -> int | None:
    text = annotations_of(rs).get(key)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# -- annotations -------------------------------------------------------------------------------


def _annotations(obj: Obj) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    annotations: dict[str, str] = meta["annotations"]
    return annotations


def copy_deployment_annotations(d: Mapping[str, Any], rs: Obj) -> bool:
    """Copy the Deployment's annotations to `rs`, except the controller's own and
    kubectl's last-applied configuration; True when `rs` changed."""
    target = _annotations(rs)
    changed = False
    for key, value in annotations_of(d).items():
        if key in _ANNOTATIONS_NOT_COPIED or target.get(key) == value:
            continue
        target[key] = value
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    target = _annotations(rs)
    changed = False
    for key, value in (
        (DESIRED_REPLICAS_ANNOTATION, str(desired)),
        (MAX_REPLICAS_ANNOTATION, str(max_replicas)),
    ):
        if target.get(key) != value:
            target[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(
    rs: Mapping[str, Any], desired: int, max_replicas: int
) -> bool:
    annotations = annotations_of(rs)
    return annotations.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or annotations.get(
        MAX_REPLICAS_ANNOTATION
    ) != str(max_replicas)


def set_new_replica_set_annotations(
    d: Mapping[str, Any],
    rs: Obj,
    new_revision: int,
    exists: bool,
    history_limit_chars: int = MAX_REV_HISTORY_LENGTH_IN_CHARS,
) -> bool:
    """deploymentutil.SetNewReplicaSetAnnotations on `rs` (the caller's copy): copy the
    Deployment's annotations; raise the revision to `new_revision` when it is lower (a
    re-used ReplicaSet keeps its former revisions in `revision-history`, within
    `history_limit_chars`); a ReplicaSet about to be created also gets the replicas
    annotations. True when `rs` changed."""
    changed = copy_deployment_annotations(d, rs)
    annotations = _annotations(rs)
    old_text = annotations.get(REVISION_ANNOTATION)
    if old_text is None:
        old = 0
    else:
        try:
            old = int(old_text)
        except ValueError:
            logger.warning(
                "replicaset %s has a revision that is not an int: %r", name_of(rs), old_text
            )
            return False
    if old < new_revision:
        annotations[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if old_text is not None:
            history = annotations.get(REVISION_HISTORY_ANNOTATION, "")
            if not history:
                annotations[REVISION_HISTORY_ANNOTATION] = old_text
            else:
                parts = history.split(",")
                total = len(history) + len(old_text) + 1
                start = 0
                while total > history_limit_chars and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= history_limit_chars:
                    annotations[REVISION_HISTORY_ANNOTATION] = ",".join([*parts[start:], old_text])
    if not exists and set_replicas_annotations(
        rs, spec_replicas(d), spec_replicas(d) + max_surge(d)
    ):
        changed = True
    return changed


# -- finding the new and old ReplicaSets -------------------------------------------------------


def template_of(obj: Mapping[str, Any]) -> Obj:
    template = spec_of(obj).get("template")
    return template if isinstance(template, dict) else {}


def find_new_replica_set(d: Mapping[str, Any], rss: Sequence[Obj]) -> Obj | None:
    """deploymentutil.FindNewReplicaSet: the oldest ReplicaSet whose template equals the
    Deployment's, ignoring the pod-template-hash label; None when there is none yet."""
    template = template_of(d)
    for rs in sorted(rss, key=by_creation):
        if podutil.equal_ignore_hash(template_of(rs), template):
            return rs
    return None


def find_old_replica_sets(d: Mapping[str, Any], rss: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """deploymentutil.FindOldReplicaSets: (old ones with replicas, every old one)."""
    new = find_new_replica_set(d, rss)
    all_old = [rs for rs in rss if new is None or uid_of(rs) != uid_of(new)]
    return [rs for rs in all_old if spec_replicas(rs) != 0], all_old


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """deploymentutil.FindActiveOrLatest: the only ReplicaSet with replicas, or the newest
    one when none has any; None when several have replicas (scale them proportionally)."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=by_creation, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    """The new ReplicaSet holds the whole Deployment: its size and desired-replicas
    annotation equal `spec.replicas`, and that many of its pods are available."""
    if rs is None:
        return False
    desired = _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION)
    replicas = spec_replicas(d)
    return (
        desired == replicas
        and spec_replicas(rs) == replicas
        and _status_int(rs, "availableReplicas") == replicas
    )


def is_scaling_event(d: Mapping[str, Any], rss: Sequence[Obj | None]) -> bool:
    """`spec.replicas` changed since the active ReplicaSets were last sized (their
    desired-replicas annotation says otherwise): scale, do not roll out."""
    for rs in filter_active(rss):
        desired = _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION)
        if desired is not None and desired != spec_replicas(d):
            return True
    return False


def new_replica_set(
    d: Mapping[str, Any], template_hash: str, new_revision: int, old_rss: Sequence[Obj]
) -> Obj:
    """The new ReplicaSet for `d` (getNewReplicaSet's create branch): `<d>-<hash>`, the
    hash in template labels and selector, a controller reference to `d`, as many replicas
    as the strategy allows now, and the revision and replicas annotations."""
    template = copy.deepcopy(template_of(d))
    tmeta = template.setdefault("metadata", {})
    labels = dict(tmeta.get("labels") or {})
    labels[POD_TEMPLATE_HASH_LABEL] = template_hash
    tmeta["labels"] = labels
    selector = copy.deepcopy(spec_of(d).get("selector") or {})
    selector["matchLabels"] = {
        **(selector.get("matchLabels") or {}),
        POD_TEMPLATE_HASH_LABEL: template_hash,
    }
    spec: Obj = {"replicas": 0, "selector": selector, "template": template}
    min_ready = int_field(spec_of(d), "minReadySeconds")
    if min_ready:
        spec["minReadySeconds"] = min_ready
    rs: Obj = {
        "apiVersion": REPLICASETS.api_version,
        "kind": REPLICASETS.kind,
        "metadata": {
            "name": f"{name_of(d)}-{template_hash}",
            "namespace": namespace_of(d),
            "labels": dict(labels),
            "ownerReferences": [
                podutil.new_controller_ref(
                    d, api_version=DEPLOYMENTS.api_version, kind=DEPLOYMENTS.kind
                )
            ],
        },
        "spec": spec,
    }
    spec["replicas"] = new_rs_new_replicas(d, [*old_rss, rs], rs)
    set_new_replica_set_annotations(d, rs, new_revision, exists=False)
    return rs


# -- sizes -------------------------------------------------------------------------------------


def new_rs_new_replicas(d: Mapping[str, Any], all_rss: Sequence[Obj], new_rs: Obj) -> int:
    """deploymentutil.NewRSNewReplicas: the size the new ReplicaSet may have now. Rolling:
    grow into the room left under `replicas + maxSurge`, never past `replicas`. Recreate:
    `replicas` (the old ones are gone by then)."""
    kind = strategy_type(d)
    replicas = spec_replicas(d)
    if kind == RECREATE:
        return replicas
    if kind != ROLLING_UPDATE:
        raise ValueError(f"deployment type {kind} isn't supported")
    surge = int_or_percent(_rolling_params(d)[0], replicas, True)
    current = sum(_pods_of(rs) for rs in all_rss)
    max_total = replicas + surge
    if current >= max_total:
        return spec_replicas(new_rs)
    room = min(max_total - current, replicas - spec_replicas(new_rs))
    return spec_replicas(new_rs) + room


def reconcile_new_replica_set(
    d: Mapping[str, Any], all_rss: Sequence[Obj], new_rs: Obj
) -> int | None:
    """reconcileNewReplicaSet's decision: the new ReplicaSet's next size, None to leave it."""
    replicas = spec_replicas(d)
    current = spec_replicas(new_rs)
    if current == replicas:
        return None
    if current > replicas:
        return replicas
    target = new_rs_new_replicas(d, all_rss, new_rs)
    return None if target == current else target


@dataclass(frozen=True)
class ScaleStep:
    """Resize `rs` to `replicas`. `always`: also when the size is unchanged, to refresh the
    replicas annotations (scaleReplicaSet rather than scaleReplicaSetAndRecordEvent)."""

    rs: Obj
    replicas: int
    always: bool = False


def reconcile_old_replica_sets(
    d: Mapping[str, Any], all_rss: Sequence[Obj], old_rss: Sequence[Obj], new_rs: Obj
) -> list[ScaleStep]:
    """reconcileOldReplicaSets' decisions, in order: first shrink old ReplicaSets by their
    unavailable pods (cleanupUnhealthyReplicas: that costs no availability), then by what
    the availability budget allows (scaleDownOldReplicaSetsForRollingUpdate), oldest
    first. A ReplicaSet may appear twice; each step's size accounts for the earlier."""
    if sum(spec_replicas(rs) for rs in old_rss) == 0:
        return []
    all_pods = sum(spec_replicas(rs) for rs in all_rss)
    min_available = spec_replicas(d) - max_unavailable(d)
    new_unavailable = spec_replicas(new_rs) - _available_of(new_rs)
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    oldest_first = sorted(old_rss, key=by_creation)
    steps: list[ScaleStep] = []
    sizes = {uid_of(rs): spec_replicas(rs) for rs in oldest_first}
    cleaned = 0
    for rs in oldest_first:
        if cleaned >= max_scaled_down:
            break
        size, available = sizes[uid_of(rs)], _available_of(rs)
        if size in (0, available):
            continue
        down = min(max_scaled_down - cleaned, size - available)
        sizes[uid_of(rs)] = size - down
        steps.append(ScaleStep(rs, size - down))
        cleaned += down
    available_pods = sum(_available_of(rs) for rs in [*oldest_first, new_rs])
    if available_pods <= min_available:
        return steps
    budget = available_pods - min_available
    scaled = 0
    for rs in oldest_first:
        if scaled >= budget:
            break
        size = sizes[uid_of(rs)]
        if size == 0:
            continue
        down = min(size, budget - scaled)
        sizes[uid_of(rs)] = size - down
        steps.append(ScaleStep(rs, size - down))
        scaled += down
    return steps


def _round_half_away(x: Fraction) -> int:
    """Go's math.Round (halves away from zero), exactly."""
    return math.floor(x + Fraction(1, 2)) if x >= 0 else -math.floor(-x + Fraction(1, 2))


def replica_set_fraction(rs: Mapping[str, Any], d: Mapping[str, Any]) -> int:
    """getReplicaSetFraction: how many replicas `rs` gains (or loses) when the Deployment
    it was sized for (its max-replicas annotation) becomes `replicas + maxSurge`."""
    replicas = spec_replicas(d)
    if replicas == 0:
        return -spec_replicas(rs)
    deployment_replicas = replicas + max_surge(d)
    annotated = _annotation_int(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None:
        annotated = _status_int(d, "replicas")
    if annotated <= 0:
        return 0
    new_size = Fraction(spec_replicas(rs) * deployment_replicas, annotated)
    return _round_half_away(new_size) - spec_replicas(rs)


def replica_set_proportion(
    rs: Mapping[str, Any] | None, d: Mapping[str, Any], to_add: int, added: int
) -> int:
    """GetReplicaSetProportion: `rs`'s share of `to_add`, within what is left of it."""
    if rs is None or spec_replicas(rs) == 0 or to_add in (0, added):
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _by_size(rss: Sequence[Obj], newer_first: bool) -> list[Obj]:
    """ReplicaSetsBySizeNewer / ReplicaSetsBySizeOlder: largest first, ties by age."""
    by_age = sorted(rss, key=by_creation, reverse=newer_first)
    return sorted(by_age, key=lambda rs: -spec_replicas(rs))


def scale_plan(d: Mapping[str, Any], new_rs: Obj | None, old_rss: Sequence[Obj]) -> list[ScaleStep]:
    """The `scale` decisions for a scaling event or a paused Deployment. With one active
    ReplicaSet (or none: the newest), it takes `replicas`. With a saturated new one, the
    old ones go to 0. Otherwise (rolling) `replicas + maxSurge - current` is shared out in
    proportion to each active ReplicaSet's size: growing favours the larger and newer,
    shrinking the larger and older; the rounding leftover goes to the first."""
    replicas = spec_replicas(d)
    single = find_active_or_latest(new_rs, old_rss)
    if single is not None:
        return [] if spec_replicas(single) == replicas else [ScaleStep(single, replicas)]
    if is_saturated(d, new_rs):
        return [ScaleStep(rs, 0) for rs in filter_active(old_rss)]
    if not is_rolling_update(d):
        return []
    active = filter_active([*old_rss, new_rs])
    allowed = replicas + max_surge(d) if replicas > 0 else 0
    to_add = allowed - sum(spec_replicas(rs) for rs in active)
    if to_add > 0:
        active = _by_size(active, newer_first=True)
    elif to_add < 0:
        active = _by_size(active, newer_first=False)
    added = 0
    sizes: list[int] = []
    for rs in active:
        share = replica_set_proportion(rs, d, to_add, added) if to_add else 0
        sizes.append(spec_replicas(rs) + share)
        added += share
    if active and to_add:
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return [ScaleStep(rs, size, always=True) for rs, size in zip(active, sizes, strict=True)]


def old_pods_running(
    new_rs: Mapping[str, Any] | None, old_rss: Sequence[Obj], pod_map: Mapping[str, list[Obj]]
) -> bool:
    """Recreate waits while an old ReplicaSet reports pods or any pod of one has not
    finished (terminating pods included: they may still be serving)."""
    if sum(_status_int(rs, "replicas") for rs in old_rss) > 0:
        return True
    for rs_uid, pods in pod_map.items():
        if new_rs is not None and rs_uid == uid_of(new_rs):
            continue
        for pod in pods:
            if podutil.pod_phase(pod) not in ("Succeeded", "Failed"):
                return True
    return False


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    value = spec_of(d).get("progressDeadlineSeconds")
    return isinstance(value, int) and not isinstance(value, bool) and value != MAX_INT32


def has_revision_history_limit(d: Mapping[str, Any]) -> bool:
    value = spec_of(d).get("revisionHistoryLimit")
    return isinstance(value, int) and not isinstance(value, bool) and value != MAX_INT32


def replica_sets_to_clean_up(d: Mapping[str, Any], old_rss: Sequence[Obj]) -> list[Obj]:
    """cleanupDeployment: old ReplicaSets beyond `revisionHistoryLimit`, lowest revision
    first, that may go: scaled to 0 and reporting no pods for their latest generation."""
    if not has_revision_history_limit(d):
        return []
    alive = [rs for rs in old_rss if not is_terminating(rs)]
    excess = len(alive) - int(spec_of(d)["revisionHistoryLimit"])
    if excess <= 0:
        return []
    out = []
    for rs in sorted(alive, key=_by_revision)[:excess]:
        if (
            _status_int(rs, "replicas") != 0
            or spec_replicas(rs) != 0
            or int_field(meta_of(rs), "generation") > _status_int(rs, "observedGeneration")
        ):
            continue
        out.append(rs)
    return out


# -- conditions and status ---------------------------------------------------------------------


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> Obj:
    at = rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def remove_condition(status: Obj, kind: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: no change when the same status and reason are there; a
    condition whose status stays keeps its lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None and (current["status"], current.get("reason")) == (
        cond["status"],
        cond.get("reason"),
    ):
        return
    cond = dict(cond)
    if current is not None and current["status"] == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    others = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]]
    status["conditions"] = [*others, cond]


def calculate_status(
    all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Mapping[str, Any], now: float
) -> Obj:
    """calculateStatus: counts summed over the ReplicaSets, the Available condition, the
    other conditions and collisionCount kept. Zero counts are omitted (Go's omitempty)."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(_status_int(rs, "availableReplicas") for rs in rss)
    total = sum(spec_replicas(rs) for rs in rss)
    status: Obj = {}
    for key, value in (
        ("observedGeneration", int_field(meta_of(d), "generation")),
        ("replicas", sum(_status_int(rs, "replicas") for rs in rss)),
        ("updatedReplicas", _status_int(new_rs, "replicas")),
        ("readyReplicas", sum(_status_int(rs, "readyReplicas") for rs in rss)),
        ("availableReplicas", available),
        ("unavailableReplicas", max(total - available, 0)),
    ):
        if value:
            status[key] = value
    conditions = [copy.deepcopy(c) for c in status_of(d).get("conditions") or []]
    if conditions:
        status["conditions"] = conditions
    if available >= spec_replicas(d) - max_unavailable(d):
        cond = new_condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    else:
        cond = new_condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, cond)
    if "collisionCount" in status_of(d):
        status["collisionCount"] = status_of(d)["collisionCount"]
    return status


def deployment_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Every desired replica is updated and available, no old ones are left, and the
    status is of the current generation."""
    replicas = spec_replicas(d)
    return (
        int_field(status, "updatedReplicas") == replicas
        and int_field(status, "replicas") == replicas
        and int_field(status, "availableReplicas") == replicas
        and int_field(status, "observedGeneration") >= int_field(meta_of(d), "generation")
    )


def deployment_progressing(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Compared with the stored status: more updated, fewer old, more ready or more
    available replicas."""
    old = status_of(d)

    def olds(s: Mapping[str, Any]) -> int:
        return int_field(s, "replicas") - int_field(s, "updatedReplicas")

    return (
        int_field(status, "updatedReplicas") > int_field(old, "updatedReplicas")
        or olds(status) < olds(old)
        or int_field(status, "readyReplicas") > int_field(old, "readyReplicas")
        or int_field(status, "availableReplicas") > int_field(old, "availableReplicas")
    )


def deployment_timed_out(d: Mapping[str, Any], status: Mapping[str, Any], now: float) -> bool:
    """No progress reported for progressDeadlineSeconds (or already timed out)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_rfc3339(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + int(spec_of(d)["progressDeadlineSeconds"]) < now


def _replica_failures(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the ReplicaSets as Deployment conditions, the new
    ReplicaSet's first."""

    def of(rs: Obj) -> list[Obj]:
        out = []
        for c in status_of(rs).get("conditions") or []:
            if isinstance(c, dict) and c.get("type") == REPLICA_FAILURE:
                out.append(
                    {
                        "type": REPLICA_FAILURE,
                        "status": c.get("status"),
                        "lastUpdateTime": c.get("lastTransitionTime"),
                        "lastTransitionTime": c.get("lastTransitionTime"),
                        "reason": c.get("reason"),
                        "message": c.get("message"),
                    }
                )
        return out

    if new_rs is not None and (found := of(new_rs)):
        return found
    return [c for rs in all_rss if rs is not None for c in of(rs)]


def rollout_status(
    d: Mapping[str, Any], all_rss: Sequence[Obj | None], new_rs: Obj | None, now: float
) -> Obj:
    """syncRolloutStatus' new status: `calculate_status` plus the Progressing condition
    (NewReplicaSetAvailable when complete, ReplicaSetUpdated while progress is seen,
    ProgressDeadlineExceeded after progressDeadlineSeconds without any) and the
    ReplicaSets' ReplicaFailure."""
    status = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(status_of(d), PROGRESSING)
    complete_before = (
        int_field(status, "replicas") == int_field(status, "updatedReplicas")
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    subject = (
        f'ReplicaSet "{name_of(new_rs)}"' if new_rs is not None else f'Deployment "{name_of(d)}"'
    )
    if has_progress_deadline(d) and not complete_before:
        if deployment_complete(d, status):
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE,
                    f"{subject} has successfully progressed.",
                    now,
                ),
            )
        elif deployment_progressing(d, status):
            cond = new_condition(
                PROGRESSING, "True", REPLICA_SET_UPDATED, f"{subject} is progressing.", now
            )
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            set_condition(
                status,
                new_condition(
                    PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.", now
                ),
            )
    failures = _replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def progress_check_after(
    d: Mapping[str, Any], status: Mapping[str, Any], now: float
) -> float | None:
    """requeueStuckDeployment: seconds until the progress deadline of a rollout that shows
    no progress must be checked again (plus a second against clock skew); None when there
    is nothing to check."""
    current = get_condition(status_of(d), PROGRESSING)
    if not has_progress_deadline(d) or current is None:
        return None
    if deployment_complete(d, status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_rfc3339(current.get("lastUpdateTime"))
    if since is None:
        return None
    after = since + int(spec_of(d)["progressDeadlineSeconds"]) - now
    return max(after, 0.0) + 1.0


def paused_condition_status(d: Mapping[str, Any], now: float) -> Obj | None:
    """checkPausedConditions: the status with Progressing Unknown DeploymentPaused (or
    DeploymentResumed) when pausing (or resuming) is not reflected yet; None otherwise.
    A timed-out rollout keeps saying so."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(status_of(d), PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_shown = cond is not None and cond.get("reason") == PAUSED
    paused = spec_of(d).get("paused") is True
    if paused and not paused_shown:
        new = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif not paused and paused_shown:
        new = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    else:
        return None
    status = copy.deepcopy(status_of(d))
    set_condition(status, new)
    return status


# -- the controller ----------------------------------------------------------------------------


class DeploymentController:
    """Rolls Deployments out through their ReplicaSets (see the module docstring)."""

    name = "deployment"

    def __init__(self, *, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name)
        self._ctx: Context | None = None

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("DeploymentController.setup(ctx) was not called")
        return self._ctx

    # -- wiring --------------------------------------------------------------------------------

    def setup(self, ctx: Context) -> None:
        self._ctx = ctx
        self.queue = RateLimitingQueue(name=self.name)
        self.d_informer = ctx.informers.informer_for(DEPLOYMENTS)
        self.rs_informer = ctx.informers.informer_for(REPLICASETS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.d_informer.add_handler(self._enqueue, self._update_deployment, self._enqueue)
        self.rs_informer.add_handler(self._add_rs, self._update_rs, self._delete_rs)
        self.pod_informer.add_handler(on_delete=self._delete_pod)

    async def run(self, ctx: Context) -> None:
        await run_workers(self.name, self.queue, self.sync, workers=self.workers)

    # -- informer handlers (enqueue only) ------------------------------------------------------

    def _enqueue(self, d: Obj) -> None:
        self.queue.add(key_of(d))

    def _update_deployment(self, old: Obj, cur: Obj) -> None:
        self.queue.add(key_of(cur))

    def _resolve(self, namespace: str, ref: Mapping[str, Any]) -> Obj | None:
        if ref.get("kind") != DEPLOYMENTS.kind:
            return None
        d = self.d_informer.get(namespace, str(ref.get("name") or ""))
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return d

    def _deployments_selecting(self, rs: Obj) -> list[Obj]:
        """Deployments of the ReplicaSet's namespace whose selector matches its labels
        (an orphan's candidate owners)."""
        out = []
        for d in self.d_informer.list():
            if namespace_of(d) != namespace_of(rs):
                continue
            try:
                selector = LabelSelector.from_object(spec_of(d).get("selector"))
            except ValueError:
                continue
            if not selector.empty and selector.matches(labels_of(rs)):
                out.append(d)
        return out

    def _add_rs(self, rs: Obj) -> None:
        if is_terminating(rs):
            self._delete_rs(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            d = self._resolve(namespace_of(rs), ref)
            if d is not None:
                self._enqueue(d)
            return
        for d in self._deployments_selecting(rs):
            self._enqueue(d)

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        if meta_of(old).get("resourceVersion") == meta_of(cur).get("resourceVersion"):
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace_of(old), old_ref)
            if previous is not None:
                self._enqueue(previous)
        if cur_ref is not None:
            d = self._resolve(namespace_of(cur), cur_ref)
            if d is not None:
                self._enqueue(d)
            return
        if ref_changed or labels_of(old) != labels_of(cur):
            for d in self._deployments_selecting(cur):
                self._enqueue(d)

    def _delete_rs(self, rs: Obj) -> None:
        ref = controller_ref(rs)
        if ref is None:
            return
        d = self._resolve(namespace_of(rs), ref)
        if d is not None:
            self._enqueue(d)

    def _delete_pod(self, pod: Obj) -> None:
        """A Recreate rollout waits for the old pods to be gone: their deletion wakes it."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != REPLICASETS.kind:
            return
        rs = self.rs_informer.get(namespace_of(pod), str(ref.get("name") or ""))
        if rs is None or uid_of(rs) != ref.get("uid"):
            return
        rs_ref = controller_ref(rs)
        d = self._resolve(namespace_of(rs), rs_ref) if rs_ref is not None else None
        if d is not None and strategy_type(d) == RECREATE:
            self._enqueue(d)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """syncDeployment (see the module docstring). Raising requeues with backoff."""
        ctx = self.ctx
        namespace, name = split_key(key)
        cached = self.d_informer.get(namespace, name)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        try:
            selector = LabelSelector.from_object(spec_of(d).get("selector"))
        except ValueError as e:
            logger.warning("deployment %s has an invalid selector, skipping: %s", key, e)
            return
        if selector.empty:
            ctx.recorder.event(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            generation = int_field(meta_of(d), "generation")
            if _status_int(d, "observedGeneration") < generation:
                status = {**status_of(d), "observedGeneration": generation}
                await self._write(d, status=status)
            return
        rs_list = await self._claim_replica_sets(d, selector)
        if is_terminating(d):
            d, new_rs, old_rss = await self._get_all(d, rs_list, create=False)
            await self._sync_deployment_status(d, [*old_rss, new_rs], new_rs)
            return
        paused = paused_condition_status(d, ctx.clock())
        if paused is not None:
            d = await self._write(d, status=paused)
        d, new_rs, old_rss = await self._get_all(d, rs_list, create=False)
        if spec_of(d).get("paused") is True or is_scaling_event(d, [*old_rss, new_rs]):
            await self._scale(d, new_rs, old_rss)
            await self._sync_deployment_status(d, [*old_rss, new_rs], new_rs)
            return
        if strategy_type(d) == RECREATE:
            pod_map = self._pod_map(d, selector, rs_list)  # only Recreate needs the pods
            await self._rollout_recreate(d, new_rs, old_rss, pod_map)
        else:
            await self._rollout_rolling(d, new_rs, old_rss)

    # -- reading -------------------------------------------------------------------------------

    async def _claim_replica_sets(self, d: Obj, selector: LabelSelector) -> list[Obj]:
        """getReplicaSetsForDeployment: the ReplicaSets `d` controls after adopting matching
        orphans (after re-reading `d` from the API) and releasing those that stopped
        matching."""
        ctx = self.ctx
        owned: list[Obj] = []
        checked = False
        for rs in self.rs_informer.list():
            if namespace_of(rs) != namespace_of(d):
                continue
            action = podutil.claim(d, rs, selector)
            if action is Claim.OWNED:
                owned.append(rs)
            elif action is Claim.ADOPT:
                if not checked:
                    fresh = await ctx.client.get(DEPLOYMENTS, namespace_of(d), name_of(d))
                    if uid_of(fresh) != uid_of(d) or is_terminating(fresh):
                        raise APIError(
                            409,
                            "Conflict",
                            f"deployment {namespace_of(d)}/{name_of(d)} is gone or being "
                            "deleted: it cannot adopt ReplicaSets",
                        )
                    checked = True
                ref = podutil.new_controller_ref(
                    d, api_version=DEPLOYMENTS.api_version, kind=DEPLOYMENTS.kind
                )
                try:
                    adopted = await ctx.writer.update(
                        REPLICASETS, namespace_of(rs), podutil.with_controller_ref(rs, ref)
                    )
                except APIError as e:
                    if e.code == 404:
                        continue
                    raise
                logger.info("deployment %s adopted replicaset %s", name_of(d), name_of(rs))
                owned.append(adopted)
            elif action is Claim.RELEASE:
                try:
                    await ctx.writer.update(
                        REPLICASETS, namespace_of(rs), podutil.without_owner(rs, uid_of(d))
                    )
                except APIError as e:
                    if e.code != 404:
                        raise
                logger.info("deployment %s released replicaset %s", name_of(d), name_of(rs))
        return owned

    def _pod_map(
        self, d: Obj, selector: LabelSelector, rs_list: Sequence[Obj]
    ) -> dict[str, list[Obj]]:
        """getPodMapForDeployment: the Deployment's pods by the uid of their ReplicaSet."""
        pod_map: dict[str, list[Obj]] = {uid_of(rs): [] for rs in rs_list}
        for pod in self.pod_informer.list():
            if namespace_of(pod) != namespace_of(d) or not selector.matches(labels_of(pod)):
                continue
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in pod_map:
                pod_map[str(ref["uid"])].append(pod)
        return pod_map

    async def _get_all(
        self, d: Obj, rs_list: Sequence[Obj], *, create: bool
    ) -> tuple[Obj, Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision: (d as last written, the new ReplicaSet or None,
        every old one), with the new one's annotations and revision brought up to date."""
        _, all_old = find_old_replica_sets(d, rs_list)
        d, new_rs = await self._get_new_replica_set(d, rs_list, all_old, create=create)
        return d, new_rs, all_old

    async def _get_new_replica_set(
        self, d: Obj, rs_list: Sequence[Obj], old_rss: Sequence[Obj], *, create: bool
    ) -> tuple[Obj, Obj | None]:
        ctx = self.ctx
        existing = find_new_replica_set(d, rs_list)
        new_revision = max_revision(old_rss) + 1
        if existing is None:
            if not create:
                return d, None
            return await self._create_new_replica_set(d, old_rss, new_revision)
        rs = copy.deepcopy(existing)
        annotations_changed = set_new_replica_set_annotations(d, rs, new_revision, exists=True)
        min_ready = int_field(spec_of(d), "minReadySeconds")
        if annotations_changed or int_field(spec_of(rs), "minReadySeconds") != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            updated = await ctx.writer.update(REPLICASETS, namespace_of(rs), rs)
            return d, updated
        status: Obj | None = None
        if has_progress_deadline(d) and get_condition(status_of(d), PROGRESSING) is None:
            status = copy.deepcopy(status_of(d))
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "True",
                    FOUND_NEW_REPLICA_SET,
                    f'Found new replica set "{name_of(rs)}"',
                    ctx.clock(),
                ),
            )
        d = await self._write(
            d, revision=annotations_of(rs).get(REVISION_ANNOTATION), status=status
        )
        return d, rs

    # -- writing -------------------------------------------------------------------------------

    async def _write(
        self, d: Obj, *, revision: str | None = None, status: Obj | None = None
    ) -> Obj:
        """Record the revision annotation and a new status on `d`; returns `d` as stored.
        The annotation goes through a main-resource update, since kubelab's status
        subresource keeps metadata (Kubernetes lets deployments/status set annotations)."""
        ctx = self.ctx
        if revision is not None and annotations_of(d).get(REVISION_ANNOTATION) != revision:
            body = copy.deepcopy(d)
            _annotations(body)[REVISION_ANNOTATION] = revision
            d = await ctx.writer.update(DEPLOYMENTS, namespace_of(d), body)
        if status is not None and status != status_of(d):
            body = copy.deepcopy(d)
            body["status"] = status
            d = await ctx.writer.update_status(DEPLOYMENTS, namespace_of(d), body)
        return d

    async def _create_new_replica_set(
        self, d: Obj, old_rss: Sequence[Obj], new_revision: int
    ) -> tuple[Obj, Obj]:
        """getNewReplicaSet's create branch, with hash-collision handling: a ReplicaSet of
        that name that is not this template's bumps status.collisionCount (the next sync
        hashes to another name)."""
        ctx = self.ctx
        collision = status_of(d).get("collisionCount")
        collision = collision if isinstance(collision, int) else None
        rs = new_replica_set(
            d, podutil.compute_hash(template_of(d), collision), new_revision, old_rss
        )
        namespace, rs_name, replicas = namespace_of(d), name_of(rs), spec_replicas(rs)
        already = False
        try:
            created = await ctx.writer.create(REPLICASETS, namespace, rs)
        except APIError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                found = self.rs_informer.get(namespace, rs_name)
                if found is None:
                    found = await ctx.client.get(REPLICASETS, namespace, rs_name)
                if podutil.is_controlled_by(found, d) and podutil.equal_ignore_hash(
                    template_of(d), template_of(found)
                ):
                    created, already = found, True
                else:
                    status = {**copy.deepcopy(status_of(d)), "collisionCount": (collision or 0) + 1}
                    await self._write(d, status=status)
                    logger.info(
                        "deployment %s: hash collision on replicaset %s, collisionCount=%d",
                        name_of(d),
                        rs_name,
                        status["collisionCount"],
                    )
                    raise
            elif podutil.namespace_terminating(e):
                raise
            else:
                message = f'Failed to create new replica set "{rs_name}": {e.message}'
                if has_progress_deadline(d):
                    status = copy.deepcopy(status_of(d))
                    set_condition(
                        status,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, ctx.clock()),
                    )
                    try:
                        await self._write(d, status=status)
                    except APIError as write_error:
                        logger.info(
                            "deployment %s: status not written: %s", name_of(d), write_error
                        )
                ctx.recorder.event(d, "Warning", FAILED_RS_CREATE, message)
                raise
        if not already and replicas > 0:
            ctx.recorder.event(
                d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}"
            )
        created_status: Obj | None = None
        if not already and has_progress_deadline(d):
            created_status = copy.deepcopy(status_of(d))
            set_condition(
                created_status,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_REPLICA_SET_CREATED,
                    f'Created new replica set "{rs_name}"',
                    ctx.clock(),
                ),
            )
        d = await self._write(d, revision=str(new_revision), status=created_status)
        return d, created

    async def _scale_replica_set(self, rs: Obj, size: int, d: Obj) -> tuple[bool, Obj]:
        """scaleReplicaSet: set the size and the replicas annotations; an Event when the
        size changed. Returns (resized, the ReplicaSet as stored)."""
        ctx = self.ctx
        old = spec_replicas(rs)
        desired, most = spec_replicas(d), spec_replicas(d) + max_surge(d)
        resize = old != size
        if not resize and not replicas_annotations_need_update(rs, desired, most):
            return False, rs
        body = copy.deepcopy(rs)
        body.setdefault("spec", {})["replicas"] = size
        set_replicas_annotations(body, desired, most)
        updated = await ctx.writer.update(REPLICASETS, namespace_of(rs), body)
        if resize:
            direction = "up" if old < size else "down"
            ctx.recorder.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {name_of(rs)} from {old} to {size}",
            )
        return resize, updated

    async def _apply(self, steps: Sequence[ScaleStep], d: Obj) -> bool:
        """Apply scale steps in order (a ReplicaSet named twice is resized from its latest
        state); True when any size changed."""
        latest: dict[str, Obj] = {}
        scaled = False
        for step in steps:
            rs = latest.get(uid_of(step.rs), step.rs)
            if not step.always and spec_replicas(rs) == step.replicas:
                continue
            resized, latest[uid_of(rs)] = await self._scale_replica_set(rs, step.replicas, d)
            scaled = scaled or resized
        return scaled

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> None:
        """sync(): scale proportionally; a paused Deployment also cleans up old revisions."""
        await self._apply(scale_plan(d, new_rs, old_rss), d)
        if spec_of(d).get("paused") is True:
            await self._cleanup(d, old_rss)

    async def _cleanup(self, d: Obj, old_rss: Sequence[Obj]) -> None:
        for rs in replica_sets_to_clean_up(d, old_rss):
            logger.info("deployment %s: deleting old replicaset %s", name_of(d), name_of(rs))
            try:
                await self.ctx.writer.delete(REPLICASETS, namespace_of(rs), name_of(rs))
            except APIError as e:
                if e.code != 404:
                    raise

    async def _sync_deployment_status(
        self, d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None
    ) -> None:
        await self._write(d, status=calculate_status(all_rss, new_rs, d, self.ctx.clock()))

    async def _sync_rollout_status(
        self, d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None
    ) -> None:
        now = self.ctx.clock()
        status = rollout_status(d, all_rss, new_rs, now)
        if status != status_of(d):
            await self._write(d, status=status)
            return
        after = progress_check_after(d, status, now)
        if after is not None:
            self.queue.add_after(key_of(d), after)

    # -- strategies ----------------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """rolloutRolling: one move per sync (scale up, else scale down), then status."""
        if new_rs is None:
            d, new_rs = await self._create_new_replica_set(d, old_rss, max_revision(old_rss) + 1)
        all_rss = [*old_rss, new_rs]
        target = reconcile_new_replica_set(d, all_rss, new_rs)
        if target is not None:
            scaled, _ = await self._scale_replica_set(new_rs, target, d)
            if scaled:
                await self._sync_rollout_status(d, all_rss, new_rs)
                return
        steps = reconcile_old_replica_sets(d, all_rss, filter_active(old_rss), new_rs)
        if await self._apply(steps, d):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if deployment_complete(d, status_of(d)):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _rollout_recreate(
        self,
        d: Obj,
        new_rs: Obj | None,
        old_rss: list[Obj],
        pod_map: Mapping[str, list[Obj]],
    ) -> None:
        """rolloutRecreate: old ReplicaSets to 0; once none of their pods is left, the new
        ReplicaSet (created now if needed) to `replicas`."""
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        if await self._apply([ScaleStep(rs, 0) for rs in filter_active(old_rss)], d):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if old_pods_running(new_rs, old_rss, pod_map):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            d, new_rs = await self._create_new_replica_set(d, old_rss, max_revision(old_rss) + 1)
            all_rss = [*old_rss, new_rs]
        await self._apply([ScaleStep(new_rs, spec_replicas(d))], d)
        if deployment_complete(d, status_of(d)):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)
