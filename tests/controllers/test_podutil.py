"""Pure pod and template helpers: readiness and availability, controller references and
the claim decision, the pod-template hash (stable, Kubernetes-shaped, and blind to how
`kubectl rollout undo` spells a template)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from controlplane.controllers import podutil
from controlplane.controllers.podutil import Claim
from controlplane.kube.errors import APIError
from controlplane.kube.selectors import LabelSelector
from controlplane.kube.storage import rfc3339

Obj = dict[str, Any]
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def ts(t: float) -> str:
    return rfc3339(t)


def pod(
    name: str = "p",
    *,
    phase: str = "Running",
    ready: bool | None = True,
    ready_since: float | None = T0,
    deleting: bool = False,
    labels: dict[str, str] | None = None,
    owner: Obj | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if labels is not None:
        meta["labels"] = labels
    if deleting:
        meta["deletionTimestamp"] = ts(T0)
    if owner is not None:
        meta["ownerReferences"] = [owner]
    status: Obj = {"phase": phase}
    if ready is not None:
        cond: Obj = {"type": "Ready", "status": "True" if ready else "False"}
        if ready_since is not None:
            cond["lastTransitionTime"] = ts(ready_since)
        status["conditions"] = [{"type": "PodScheduled", "status": "True"}, cond]
    return {"metadata": meta, "spec": {}, "status": status}


# -- readiness, availability, activity ---------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "min_ready", "now", "available"),
    [
        (pod(ready=False), 0, T0, False),
        (pod(ready=None), 0, T0, False),
        (pod(), 0, T0, True),
        (pod(), 10, T0 + 10, False),  # exactly minReadySeconds: not yet (strictly after)
        (pod(), 10, T0 + 11, True),
        (pod(ready_since=None), 10, T0 + 100, False),  # no transition time: never available
    ],
    ids=["not-ready", "no-condition", "ready", "ready-10s-at-10s", "ready-10s-at-11s", "no-time"],
)
def test_pod_available_after_min_ready_seconds(
    p: Obj, min_ready: int, now: float, available: bool
) -> None:
    """IsPodAvailable: ready, and ready for longer than minReadySeconds."""
    assert podutil.is_pod_available(p, min_ready, now) is available


@pytest.mark.parametrize(
    ("p", "active"),
    [
        (pod(phase="Pending", ready=False), True),
        (pod(phase="Running"), True),
        (pod(phase="Unknown"), True),
        (pod(phase="Succeeded"), False),
        (pod(phase="Failed"), False),
        (pod(deleting=True), False),
    ],
    ids=["pending", "running", "unknown", "succeeded", "failed", "terminating"],
)
def test_active_pods_are_neither_finished_nor_terminating(p: Obj, active: bool) -> None:
    """IsPodActive: what a ReplicaSet counts towards its replicas."""
    assert podutil.is_pod_active(p) is active


def test_ready_time_and_restarts() -> None:
    p = pod(ready_since=T0 + 5)
    p["status"]["containerStatuses"] = [{"restartCount": 2}, {"restartCount": 7}]
    assert podutil.pod_ready_time(p) == T0 + 5
    assert podutil.pod_ready_time(pod(ready=False)) is None
    assert podutil.max_container_restarts(p) == 7
    assert podutil.max_container_restarts(pod()) == 0


@pytest.mark.parametrize(
    ("annotation", "cost"),
    [(None, 0), ("100", 100), ("-5", -5), ("x", 0), ("9999999999", 0)],
    ids=["absent", "positive", "negative", "not-an-int", "beyond-int32"],
)
def test_pod_deletion_cost(annotation: str | None, cost: int) -> None:
    p = pod()
    if annotation is not None:
        p["metadata"]["annotations"] = {podutil.POD_DELETION_COST_ANNOTATION: annotation}
    assert podutil.pod_deletion_cost(p) == cost


def test_namespace_terminating_error() -> None:
    terminating = APIError(
        403,
        "Forbidden",
        "unable to create new content in namespace x because it is being terminated",
    )
    assert podutil.namespace_terminating(terminating)
    assert not podutil.namespace_terminating(APIError(403, "Forbidden", "quota exceeded"))
    assert not podutil.namespace_terminating(APIError(409, "Conflict", "being terminated"))


# -- controller references and claims ----------------------------------------------------------

RS: Obj = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid"},
}
OURS = podutil.new_controller_ref(RS, api_version="apps/v1", kind="ReplicaSet")
THEIRS = {**OURS, "name": "other", "uid": "other-uid"}
SELECTOR = LabelSelector.from_object({"matchLabels": {"app": "web"}})
WEB = {"app": "web"}


def test_new_controller_ref() -> None:
    assert OURS == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "rs-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    owned = pod(owner=OURS)
    assert podutil.controller_ref(owned) == OURS
    assert podutil.is_controlled_by(owned, RS)
    not_controller = pod(owner={**OURS, "controller": False})
    assert podutil.controller_ref(not_controller) is None


def deleting(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["metadata"]["deletionTimestamp"] = ts(T0)
    return out


@pytest.mark.parametrize(
    ("owner", "obj", "expected"),
    [
        (RS, pod(labels=WEB, owner=OURS), Claim.OWNED),
        (RS, pod(labels={"app": "db"}, owner=OURS), Claim.RELEASE),
        (deleting(RS), pod(labels={"app": "db"}, owner=OURS), Claim.IGNORE),
        (RS, pod(labels=WEB, owner=THEIRS), Claim.IGNORE),
        (RS, pod(labels=WEB), Claim.ADOPT),
        (RS, pod(labels={"app": "db"}), Claim.IGNORE),
        (RS, pod(labels=WEB, deleting=True), Claim.IGNORE),
        (deleting(RS), pod(labels=WEB), Claim.IGNORE),
    ],
    ids=[
        "ours-matching",
        "ours-not-matching",
        "ours-not-matching-owner-deleting",
        "someone-elses",
        "orphan-matching",
        "orphan-not-matching",
        "orphan-terminating",
        "orphan-owner-deleting",
    ],
)
def test_claim(owner: Obj, obj: Obj, expected: Claim) -> None:
    """ClaimObject: keep ours that match, release ours that do not, adopt matching
    orphans, never touch another controller's objects."""
    assert podutil.claim(owner, obj, SELECTOR) is expected


def test_orphan_in_another_namespace_is_not_adopted() -> None:
    other = pod(labels=WEB)
    other["metadata"]["namespace"] = "kube-system"
    assert podutil.claim(RS, other, SELECTOR) is Claim.IGNORE


def test_adopt_and_release_copy_the_object() -> None:
    orphan = pod(labels=WEB, owner={**THEIRS, "controller": False})
    adopted = podutil.with_controller_ref(orphan, OURS)
    assert adopted["metadata"]["ownerReferences"] == [{**THEIRS, "controller": False}, OURS]
    assert orphan["metadata"]["ownerReferences"] == [{**THEIRS, "controller": False}]
    released = podutil.without_owner(adopted, "rs-uid")
    assert released["metadata"]["ownerReferences"] == [{**THEIRS, "controller": False}]
    assert "ownerReferences" not in podutil.without_owner(pod(owner=OURS), "rs-uid")["metadata"]


# -- the pod-template hash ---------------------------------------------------------------------

TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}},
            }
        ]
    },
}


def undo_style(template: Obj) -> Obj:
    """What `kubectl rollout undo` sends back: the server's defaults, a null
    creationTimestamp, Go's canonical quantities and no empty lists."""
    out = podutil.semantic_template(template)  # defaults applied
    out["metadata"]["creationTimestamp"] = None
    out["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "500m"
    return out


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968)],
    ids=["empty", "a", "foobar"],
)
def test_fnv32a_vectors(data: bytes, expected: int) -> None:
    """The published FNV-1a 32-bit test vectors."""
    assert podutil.fnv32a(data) == expected


def test_safe_encode_string() -> None:
    """rand.SafeEncodeString maps each byte into 27 safe characters ('0', byte 48, is 21: '4')."""
    assert podutil.safe_encode_string("0123456789") == "456789bcdf"


def test_hash_looks_like_kubernetes() -> None:
    """The decimal FNV-32a, safe-encoded: up to 10 characters of the safe alphabet."""
    h = podutil.compute_hash(TEMPLATE)
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", h)


PINNED_HASH = "f6f9b698"
PINNED_HASH_COLLISION_1 = "5b4cbf755f"


def test_hash_is_pinned() -> None:
    """The same template names the same ReplicaSet in every version of kubelab: changing
    the hash would orphan every ReplicaSet of a running cluster on upgrade."""
    assert podutil.compute_hash(TEMPLATE) == PINNED_HASH
    assert podutil.compute_hash(TEMPLATE, 1) == PINNED_HASH_COLLISION_1


@pytest.mark.parametrize(
    "variant",
    [
        undo_style(TEMPLATE),
        {**copy.deepcopy(TEMPLATE), "metadata": {"labels": {"app": "web"}, "annotations": {}}},
        {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.25",
                        "env": [],
                        "stdin": False,
                        "workingDir": "",
                        "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                    }
                ],
                "hostNetwork": False,
                "restartPolicy": "Always",
            },
        },
    ],
    ids=["kubectl-undo", "empty-annotations", "explicit-zero-values"],
)
def test_spellings_of_one_template_hash_and_compare_equal(variant: Obj) -> None:
    """A rollback must find the ReplicaSet it restores: normalised templates (defaults, no
    null creationTimestamp, canonical quantities, Go's zero values) hash and compare equal."""
    assert podutil.compute_hash(variant) == podutil.compute_hash(TEMPLATE)
    assert podutil.equal_ignore_hash(variant, TEMPLATE)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["spec"]["containers"][0].__setitem__("image", "nginx:1.26"),
        lambda t: t["metadata"]["labels"].__setitem__("tier", "front"),
        lambda t: t["spec"]["containers"][0]["resources"]["requests"].__setitem__("cpu", "1"),
        lambda t: t["spec"].__setitem__("hostNetwork", True),
        lambda t: t["spec"].__setitem__("securityContext", {"runAsUser": 0}),
    ],
    ids=["image", "label", "cpu", "host-network", "run-as-root"],
)
def test_a_different_template_hashes_differently(change: Any) -> None:
    other = copy.deepcopy(TEMPLATE)
    change(other)
    assert podutil.compute_hash(other) != podutil.compute_hash(TEMPLATE)
    assert not podutil.equal_ignore_hash(other, TEMPLATE)


def test_empty_values_of_user_maps_count() -> None:
    """In labels and other maps of user data, a key with "" is not a missing key."""
    labelled = copy.deepcopy(TEMPLATE)
    labelled["metadata"]["labels"]["canary"] = ""
    selected = copy.deepcopy(TEMPLATE)
    selected["spec"]["nodeSelector"] = {"disk": ""}
    for other in (labelled, selected):
        assert podutil.compute_hash(other) != podutil.compute_hash(TEMPLATE)
        assert not podutil.equal_ignore_hash(other, TEMPLATE)


def test_collision_count_changes_the_hash() -> None:
    """collisionCount is hashed when set: nil and 0 differ, as in Kubernetes."""
    hashes = {podutil.compute_hash(TEMPLATE, c) for c in (None, 0, 1, 2)}
    assert len(hashes) == 4


def test_equal_ignore_hash_ignores_only_the_hash_label() -> None:
    rs_template = copy.deepcopy(TEMPLATE)
    rs_template["metadata"]["labels"][podutil.POD_TEMPLATE_HASH_LABEL] = "abc"
    assert podutil.equal_ignore_hash(rs_template, TEMPLATE)
    assert not podutil.equal_ignore_hash(None, TEMPLATE)
    assert not podutil.equal_ignore_hash(TEMPLATE, {"spec": "not an object"})
