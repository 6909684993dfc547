"""The Deployment controller: its decisions as tables (surge and unavailability, the new
and old ReplicaSets' sizes at each step of a rollout, proportional scaling, revisions,
history cleanup, status and conditions), then rollouts in process over the gRPC API on a
`LocalBackend` store, with a fake kubelet (no scheduler: it binds and readies pods)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest
from client import eventually, run

from controlplane.client.informer import Informer
from controlplane.client.resources import ResourceClient
from controlplane.controllers import podutil
from controlplane.controllers.deployment import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DeploymentController,
    ScaleStep,
    calculate_status,
    filter_active,
    find_new_replica_set,
    find_old_replica_sets,
    int_or_percent,
    is_scaling_event,
    max_revision,
    max_surge,
    max_unavailable,
    new_replica_set,
    new_rs_new_replicas,
    old_pods_running,
    paused_condition_status,
    progress_check_after,
    reconcile_new_replica_set,
    reconcile_old_replica_sets,
    replica_sets_to_clean_up,
    resolve_fenceposts,
    rollout_status,
    scale_plan,
    set_new_replica_set_annotations,
)
from controlplane.controllers.replicaset import ReplicaSetController
from controlplane.kube.resources import DEPLOYMENTS, PODS, REPLICASETS
from controlplane.kube.storage import rfc3339

from .test_replicaset import events_about, modify, pods_of, running_controllers, running_ready

Obj = dict[str, Any]
NOW = 1_700_000_000.0

# -- builders ----------------------------------------------------------------------------------


def deployment(
    replicas: int = 5,
    *,
    image: str = "nginx:1.25",
    surge: object = "25%",
    unavailable: object = "25%",
    strategy: str = "RollingUpdate",
    paused: bool = False,
    history: int = 10,
    deadline: int = 600,
    generation: int = 1,
    status: Obj | None = None,
) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
        "strategy": {"type": strategy},
        "revisionHistoryLimit": history,
        "progressDeadlineSeconds": deadline,
    }
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    if paused:
        spec["paused"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "d-uid",
            "generation": generation,
        },
        "spec": spec,
        "status": status if status is not None else {},
    }


def rs(
    name: str,
    replicas: int,
    *,
    available: int | None = None,
    pods: int | None = None,
    created: float = NOW - 3600,
    revision: int | None = None,
    desired: int | None = None,
    most: int | None = None,
    image: str = "nginx:1.25",
    generation: int = 1,
) -> Obj:
    annotations: Obj = {}
    if revision is not None:
        annotations[REVISION_ANNOTATION] = str(revision)
    if desired is not None:
        annotations[DESIRED_REPLICAS_ANNOTATION] = str(desired)
    if most is not None:
        annotations[MAX_REPLICAS_ANNOTATION] = str(most)
    pods = replicas if pods is None else pods
    available = pods if available is None else available
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "generation": generation,
            "creationTimestamp": rfc3339(created),
            "annotations": annotations,
            "ownerReferences": [
                podutil.new_controller_ref(deployment(), api_version="apps/v1", kind="Deployment")
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": name}},
            "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
        "status": {
            "replicas": pods,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": generation,
        },
    }


def unobserved(r: Obj) -> Obj:
    """`r` with a status of its previous generation."""
    r["status"]["observedGeneration"] = r["metadata"]["generation"] - 1
    return r


def sizes(steps: list[ScaleStep]) -> list[tuple[str, int]]:
    return [(s.rs["metadata"]["name"], s.replicas) for s in steps]


# -- surge and unavailability ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (3, 10, True, 3),
        ("25%", 5, True, 2),
        ("25%", 5, False, 1),
        ("25%", 4, True, 1),
        ("0%", 7, True, 0),
        ("100%", 3, False, 3),
        (None, 5, True, 0),
    ],
)
def test_int_or_percent(value: object, total: int, round_up: bool, expected: int) -> None:
    assert int_or_percent(value, total, round_up) == expected


@pytest.mark.parametrize(
    "value", ["10", "x%", True, 1.5], ids=["no-percent", "nan", "bool", "float"]
)
def test_int_or_percent_refuses_other_values(value: object) -> None:
    with pytest.raises(ValueError, match="invalid value"):
        int_or_percent(value, 10, True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 5, (2, 1)),
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),
        ("0%", "1%", 2, (0, 1)),
        (0, 0, 3, (0, 1)),
        (1, 0, 3, (1, 0)),
        ("50%", "50%", 3, (2, 1)),
    ],
    ids=[
        "25%-of-5",
        "25%-of-4",
        "25%-of-1",
        "both-round-to-0",
        "both-0",
        "surge-only",
        "50%-of-3",
    ],
)
def test_resolve_fenceposts(
    surge: object, unavailable: object, desired: int, expected: tuple[int, int]
) -> None:
    """Surge rounds up, unavailable down; both 0 makes unavailable 1."""
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(
    ("d", "surge", "unavailable"),
    [
        (deployment(5), 2, 1),
        (deployment(2, unavailable=5), 1, 2),  # at most the replicas
        (deployment(0), 0, 0),
        (deployment(5, strategy="Recreate"), 0, 0),
    ],
    ids=["rolling", "unavailable-capped", "zero-replicas", "recreate"],
)
def test_max_surge_and_unavailable(d: Obj, surge: int, unavailable: int) -> None:
    assert (max_surge(d), max_unavailable(d)) == (surge, unavailable)


# -- the new and old ReplicaSets at each step --------------------------------------------------


@pytest.mark.parametrize(
    ("d", "all_rss", "new", "expected"),
    [
        (deployment(5), [rs("old", 5)], rs("new", 0), 2),
        (deployment(5), [rs("old", 4)], rs("new", 2), 3),
        (deployment(5), [rs("old", 5)], rs("new", 2), 2),
        (deployment(5), [rs("old", 4, pods=5)], rs("new", 2), 2),
        (deployment(5), [rs("old", 0)], rs("new", 2), 5),
        (deployment(5, strategy="Recreate"), [rs("old", 5)], rs("new", 0), 5),
    ],
    ids=[
        "surge-room",
        "room-after-scale-down",
        "no-room",
        "old-pods-not-yet-deleted",
        "never-past-replicas",
        "recreate",
    ],
)
def test_new_rs_new_replicas(d: Obj, all_rss: list[Obj], new: Obj, expected: int) -> None:
    """NewRSNewReplicas: grow into `replicas + maxSurge` minus the pods there are."""
    assert new_rs_new_replicas(d, [*all_rss, new], new) == expected


def simulate_rolling_update(d: Obj) -> list[tuple[int, int]]:
    """Drive reconcile_new/old_replica_set to the end of a rollout from 1 old ReplicaSet,
    the world answering each move at once (pods created ready, deleted pods gone).
    Returns the (new, old) sizes after each move; asserts both bounds after each."""
    replicas = d["spec"]["replicas"]
    surge, unavailable = max_surge(d), max_unavailable(d)
    old, new = rs("old", replicas, revision=1), rs("new", 0, created=NOW, revision=2)
    moves: list[tuple[int, int]] = []
    for _ in range(50):
        all_rss = [old, new]
        target = reconcile_new_replica_set(d, all_rss, new)
        if target is not None:
            new["spec"]["replicas"] = target
        else:
            steps = reconcile_old_replica_sets(d, all_rss, filter_active([old]), new)
            if not steps:
                break
            old["spec"]["replicas"] = steps[-1].replicas
        for r in (old, new):
            n = r["spec"]["replicas"]
            r["status"].update(replicas=n, readyReplicas=n, availableReplicas=n)
        moves.append((new["spec"]["replicas"], old["spec"]["replicas"]))
        assert new["spec"]["replicas"] + old["spec"]["replicas"] <= replicas + surge
        assert new["spec"]["replicas"] + old["spec"]["replicas"] >= replicas - unavailable
    return moves


@pytest.mark.parametrize(
    ("d", "moves"),
    [
        (deployment(5), [(2, 5), (2, 2), (5, 2), (5, 0)]),
        (
            deployment(3, surge=1, unavailable=0),
            [(1, 3), (1, 2), (2, 2), (2, 1), (3, 1), (3, 0)],
        ),
        (
            deployment(3, surge=0, unavailable=1),
            [(0, 2), (1, 2), (1, 1), (2, 1), (2, 0), (3, 0)],
        ),
        (deployment(2, surge="0%", unavailable="1%"), [(0, 1), (1, 1), (1, 0), (2, 0)]),
        (deployment(4, surge="100%", unavailable=0), [(4, 4), (4, 0)]),
    ],
    ids=["25%-of-5", "surge-1", "unavailable-1", "both-round-to-0", "blue-green"],
)
def test_rolling_update_moves(d: Obj, moves: list[tuple[int, int]]) -> None:
    """The new and old ReplicaSets' sizes after each move of a rolling update, within
    `replicas + maxSurge` and `replicas - maxUnavailable` throughout."""
    assert simulate_rolling_update(d) == moves


def test_old_replica_sets_shrink_by_unhealthy_pods_first() -> None:
    """cleanupUnhealthyReplicas: unavailable old pods go first (free: they serve
    nothing), oldest ReplicaSet first; then the availability budget applies."""
    d = deployment(10, surge=3, unavailable=2)
    oldest = rs("oldest", 4, available=1, created=NOW - 300)
    older = rs("older", 4, available=4, created=NOW - 200)
    new = rs("new", 5, available=5, created=NOW - 100)
    steps = reconcile_old_replica_sets(d, [oldest, older, new], [oldest, older], new)
    # maxScaledDown = 13 - 8 - 0 = 5: oldest loses its 3 unavailable; then 10 available -
    # 8 = 2 more, from the oldest first.
    assert sizes(steps) == [("oldest", 1), ("oldest", 0), ("older", 3)]


def test_old_replica_sets_wait_for_the_new_ones_pods() -> None:
    """Unavailable new pods use up the budget: nothing scales down (13 - 8 - 5 = 0)."""
    d = deployment(10, surge=3, unavailable=2)
    old = rs("old", 8)
    new = rs("new", 5, available=0, created=NOW)
    assert reconcile_old_replica_sets(d, [old, new], [old], new) == []


def test_stale_status_cannot_overstate_availability() -> None:
    """An old ReplicaSet just scaled 5 -> 4 still reports 5 available: it counts as 4,
    so the next step keeps `replicas - maxUnavailable` available."""
    d = deployment(5, surge=2, unavailable=1)
    old = rs("old", 4, pods=5, available=5)
    new = rs("new", 3, available=1, created=NOW)
    steps = reconcile_old_replica_sets(d, [old, new], [old], new)
    assert sizes(steps) == [("old", 3)]  # 4 + 1 available - 4 needed = 1, not 2


# -- proportional scaling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "new", "old", "expected"),
    [
        (deployment(5), rs("new", 3, desired=3), [rs("old", 0)], [("new", 5)]),
        (deployment(5), None, [rs("a", 0), rs("b", 0, created=NOW)], [("b", 5)]),
        (
            deployment(5),
            rs("new", 5, desired=5, created=NOW),
            [rs("old", 2, desired=5)],
            [("old", 0)],
        ),
        (
            deployment(20, surge=0, unavailable=1),
            rs("new", 4, most=10, created=NOW),
            [rs("old", 6, most=10)],
            [("old", 12), ("new", 8)],
        ),
        (
            deployment(10, surge=0, unavailable=1),
            rs("new", 8, most=20, created=NOW),
            [rs("old", 12, most=20)],
            [("old", 6), ("new", 4)],
        ),
        (
            deployment(10),
            rs("new", 3, most=7, created=NOW),
            [rs("old", 4, most=7)],
            [("old", 7), ("new", 6)],
        ),
        (
            deployment(0),
            rs("new", 3, most=7, created=NOW),
            [rs("old", 4, most=7)],
            [("old", 0), ("new", 0)],
        ),
    ],
    ids=[
        "one-active",
        "none-active-newest",
        "saturated-new",
        "up-10-to-20",
        "down-20-to-10",
        "mid-rollout-5-to-10",
        "to-zero",
    ],
)
def test_scale_plan(
    d: Obj, new: Obj | None, old: list[Obj], expected: list[tuple[str, int]]
) -> None:
    """scale(): one active ReplicaSet takes `replicas`; a saturated new one empties the
    old; otherwise the change is shared in proportion to size (max-replicas annotation)."""
    assert sizes(scale_plan(d, new, old)) == expected


@pytest.mark.parametrize(
    ("d", "rss", "scaling"),
    [
        (deployment(5), [rs("a", 5, desired=5)], False),
        (deployment(7), [rs("a", 5, desired=5)], True),
        (deployment(7), [rs("a", 0, desired=5)], False),  # inactive: not looked at
        (deployment(7), [rs("a", 5)], False),  # no annotation: not a scaling event
    ],
    ids=["same", "changed", "inactive", "no-annotation"],
)
def test_is_scaling_event(d: Obj, rss: list[Obj], scaling: bool) -> None:
    assert is_scaling_event(d, rss) is scaling


# -- revisions, the new ReplicaSet, history ----------------------------------------------------


def test_new_replica_set() -> None:
    """`<d>-<hash>`, the hash in labels, template labels and selector, a controller
    reference, revision max(old)+1, desired and max replicas, as many replicas as surge
    allows, the Deployment's annotations except kubectl's and the controller's."""
    d = deployment(5, image="nginx:1.26")
    d["metadata"]["annotations"] = {
        "team": "a",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        REVISION_ANNOTATION: "2",
    }
    h = podutil.compute_hash(d["spec"]["template"])
    new = new_replica_set(d, h, 3, [rs("old", 5, revision=2)])
    assert new["metadata"]["name"] == f"web-{h}"
    assert new["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert new["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert new["spec"]["template"]["metadata"]["labels"] == new["metadata"]["labels"]
    assert new["spec"]["replicas"] == 2
    assert new["metadata"]["annotations"] == {
        "team": "a",
        REVISION_ANNOTATION: "3",
        DESIRED_REPLICAS_ANNOTATION: "5",
        MAX_REPLICAS_ANNOTATION: "7",
    }
    assert podutil.is_controlled_by(new, d)
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "web"}, "not mutated"


@pytest.mark.parametrize(
    ("current", "history", "new_revision", "expected", "expected_history"),
    [
        (None, None, 1, "1", None),
        ("1", None, 3, "3", "1"),
        ("2", "1", 5, "5", "1,2"),
        ("4", None, 3, "4", None),  # never lowered
    ],
    ids=["first", "rollback", "rollback-twice", "higher-already"],
)
def test_revision_moves_to_the_top(
    current: str | None,
    history: str | None,
    new_revision: int,
    expected: str,
    expected_history: str | None,
) -> None:
    """A re-used ReplicaSet takes max(old)+1 and remembers its former revisions."""
    target = rs("x", 0)
    annotations = target["metadata"]["annotations"]
    if current is not None:
        annotations[REVISION_ANNOTATION] = current
    if history is not None:
        annotations[REVISION_HISTORY_ANNOTATION] = history
    set_new_replica_set_annotations(deployment(), target, new_revision, exists=True)
    assert annotations[REVISION_ANNOTATION] == expected
    assert annotations.get(REVISION_HISTORY_ANNOTATION) == expected_history


def test_max_revision_skips_garbage() -> None:
    bad = rs("bad", 0)
    bad["metadata"]["annotations"][REVISION_ANNOTATION] = "x"
    assert max_revision([rs("a", 0, revision=3), bad, rs("b", 0, revision=7)]) == 7
    assert max_revision([]) == 0


def test_undo_template_finds_the_old_replica_set() -> None:
    """The template `kubectl rollout undo` sends (the ReplicaSet's, without its hash label,
    with a null creationTimestamp and the defaults) selects that ReplicaSet as new."""
    old = rs("old", 0, image="nginx:1.25", created=NOW - 100)
    current = rs("current", 5, image="nginx:1.26", created=NOW)
    undo = copy.deepcopy(old["spec"]["template"])
    del undo["metadata"]["labels"]["pod-template-hash"]
    undo["metadata"]["creationTimestamp"] = None
    undo = {**undo, "spec": podutil.semantic_template(undo)["spec"]}
    d = deployment(5)
    d["spec"]["template"] = undo
    assert find_new_replica_set(d, [current, old]) is old
    assert find_old_replica_sets(d, [current, old]) == ([current], [current])


@pytest.mark.parametrize(
    ("history", "old", "expected"),
    [
        (2, [rs("r1", 0, revision=1), rs("r2", 0, revision=2)], []),
        (1, [rs("r2", 0, revision=2), rs("r1", 0, revision=1)], ["r1"]),
        (0, [rs("r1", 0, revision=1), rs("r2", 1, revision=2)], ["r1"]),  # r2 has pods
        (0, [rs("r1", 0, revision=1, pods=1)], []),  # pods still reported
        (0, [unobserved(rs("r1", 0, revision=1, generation=2))], []),
    ],
    ids=["within-limit", "oldest-revision", "skip-active", "skip-with-pods", "skip-unobserved"],
)
def test_history_cleanup(history: int, old: list[Obj], expected: list[str]) -> None:
    """Beyond revisionHistoryLimit, the lowest revisions go, if scaled to 0 and empty."""
    d = deployment(history=history)
    assert [r["metadata"]["name"] for r in replica_sets_to_clean_up(d, old)] == expected


@pytest.mark.parametrize(
    ("pod_phases", "old_reported", "running"),
    [
        ([], 0, False),
        (["Running"], 0, True),
        (["Succeeded", "Failed"], 0, False),
        ([], 1, True),
    ],
    ids=["none", "a-pod-left", "finished-pods", "status-reports-pods"],
)
def test_old_pods_running(pod_phases: list[str], old_reported: int, running: bool) -> None:
    """Recreate waits while an old ReplicaSet reports pods or has an unfinished pod."""
    old = rs("old", 0, pods=old_reported)
    new = rs("new", 0)
    pods = [
        {"metadata": {"name": f"p{i}"}, "status": {"phase": p}} for i, p in enumerate(pod_phases)
    ]
    pod_map = {"uid-old": pods, "uid-new": [{"status": {"phase": "Running"}}]}
    assert old_pods_running(new, [old], pod_map) is running


# -- status and conditions ---------------------------------------------------------------------


def test_calculate_status_counts_and_availability() -> None:
    d = deployment(5, generation=3)
    old = rs("old", 2, pods=3, available=2)
    new = rs("new", 4, pods=4, available=1)
    status = calculate_status([old, new], new, d, NOW)
    available = status.pop("conditions")
    assert status == {
        "observedGeneration": 3,
        "replicas": 7,
        "updatedReplicas": 4,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 3,
    }
    assert available == [
        {
            "type": "Available",
            "status": "False",
            "lastUpdateTime": rfc3339(NOW),
            "lastTransitionTime": rfc3339(NOW),
            "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability.",
        }
    ]


def progressing(status: Obj) -> Obj | None:
    for c in status.get("conditions") or []:
        if c["type"] == "Progressing":
            return dict(c)
    return None


def test_progressing_condition_through_a_rollout() -> None:
    """ReplicaSetUpdated while progress is seen (lastUpdateTime moves, transition kept),
    NewReplicaSetAvailable when complete, ProgressDeadlineExceeded after the deadline
    without progress."""
    d = deployment(3, deadline=60)
    new = rs("new", 3, pods=1, available=0, created=NOW)
    old = rs("old", 2)
    first = rollout_status(d, [old, new], new, NOW)
    cond = progressing(first)
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "ReplicaSetUpdated")
    assert cond["message"] == 'ReplicaSet "new" is progressing.'

    d["status"] = first
    new["status"].update(replicas=2, availableReplicas=1, readyReplicas=1)
    second = rollout_status(d, [old, new], new, NOW + 30)
    cond2 = progressing(second)
    assert cond2 is not None
    assert cond2["lastUpdateTime"] == rfc3339(NOW + 30)
    assert cond2["lastTransitionTime"] == rfc3339(NOW)

    d["status"] = second
    stalled = rollout_status(d, [old, new], new, NOW + 60)
    assert stalled == second, "no progress, deadline not passed: nothing to write"
    assert progress_check_after(d, stalled, NOW + 60) == 31.0  # 30 s left, plus 1
    timed_out = rollout_status(d, [old, new], new, NOW + 91)
    cond3 = progressing(timed_out)
    assert cond3 is not None
    assert (cond3["status"], cond3["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond3["message"] == 'ReplicaSet "new" has timed out progressing.'

    d["status"] = second
    old = rs("old", 0)
    new = rs("new", 3, created=NOW)
    done = rollout_status(d, [old, new], new, NOW + 95)
    cond4 = progressing(done)
    assert cond4 is not None and cond4["reason"] == "NewReplicaSetAvailable"
    assert cond4["message"] == 'ReplicaSet "new" has successfully progressed.'


def test_paused_and_resumed_conditions() -> None:
    d = deployment(paused=True)
    paused = paused_condition_status(d, NOW)
    cond = progressing(paused or {})
    assert cond is not None and (cond["status"], cond["reason"]) == ("Unknown", "DeploymentPaused")
    d["status"] = paused
    assert paused_condition_status(d, NOW + 1) is None
    d["spec"].pop("paused")
    resumed = progressing(paused_condition_status(d, NOW + 2) or {})
    assert resumed is not None and resumed["reason"] == "DeploymentResumed"


# -- in process --------------------------------------------------------------------------------


def kubectl_rollout_status(d: Obj) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: the line `kubectl rollout status` prints, and
    whether it is done."""
    name, status, spec = d["metadata"]["name"], d.get("status") or {}, d["spec"]
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    cond = progressing(status)
    if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
        return f'deployment "{name}" exceeded its progress deadline', True
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    updated, replicas = status.get("updatedReplicas", 0), spec.get("replicas", 1)
    if updated < replicas:
        return f"{prefix}{updated} out of {replicas} new replicas have been updated...", False
    if status.get("replicas", 0) > updated:
        old = status.get("replicas", 0) - updated
        return f"{prefix}{old} old replicas are pending termination...", False
    if status.get("availableReplicas", 0) < updated:
        available = status.get("availableReplicas", 0)
        return f"{prefix}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def controllers() -> tuple[ReplicaSetController, DeploymentController]:
    return ReplicaSetController(), DeploymentController()


async def get_d(client: ResourceClient) -> Obj:
    return await client.get(DEPLOYMENTS, "default", "web")


async def replica_sets(client: ResourceClient) -> dict[str, Obj]:
    items = (await client.list(REPLICASETS, "default"))["items"]
    return {r["metadata"]["name"]: r for r in items}


async def rolled_out(client: ResourceClient) -> bool:
    return kubectl_rollout_status(await get_d(client))[1]


async def set_template(client: ResourceClient, change: Callable[[Obj], None]) -> Obj:
    """Change the Deployment's spec (retrying conflicts with the controller's writes)."""
    return await modify(client, DEPLOYMENTS, "web", lambda d: change(d["spec"]))


def image(value: str) -> Callable[[Obj], None]:
    def change(spec: Obj) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = value

    return change


class PodCensus:
    """After every pod event, the active and the available (ready) pods of the
    Deployment, as the store holds them at that revision; extremes since `reset`."""

    def __init__(self, client: ResourceClient) -> None:
        self.informer = Informer(client, PODS, "default")
        self.informer.add_handler(self._seen, lambda _o, _n: self._seen(_n), self._seen)
        self.min_available = 10**9
        self.max_active = 0
        self.samples = 0

    def reset(self) -> None:
        self.min_available, self.max_active, self.samples = 10**9, 0, 0
        self._seen({})

    def _seen(self, _pod: Obj) -> None:
        active = [p for p in self.informer.list() if podutil.is_pod_active(p)]
        available = [p for p in active if podutil.is_pod_ready(p)]
        self.min_available = min(self.min_available, len(available))
        self.max_active = max(self.max_active, len(active))
        self.samples += 1


def test_deployment_makes_one_replica_set_and_its_pods() -> None:
    """5 replicas: one ReplicaSet `web-<hash of the template>` at revision 1 with 5
    Running pods; the status `kubectl rollout status` reads says it is rolled out."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            created = await env.client.create(DEPLOYMENTS, "default", deployment(5))
            await eventually(lambda: rolled_out(env.client), "the rollout")
            h = podutil.compute_hash(created["spec"]["template"])
            (only,) = (await replica_sets(env.client)).values()
            assert only["metadata"]["name"] == f"web-{h}"
            assert only["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
            assert only["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
            assert only["metadata"]["annotations"] == {
                REVISION_ANNOTATION: "1",
                DESIRED_REPLICAS_ANNOTATION: "5",
                MAX_REPLICAS_ANNOTATION: "7",
            }
            assert podutil.is_controlled_by(only, created)
            assert len(running_ready(await pods_of(env.client))) == 5
            d = await get_d(env.client)
            assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
            conditions = {c["type"]: (c["status"], c["reason"]) for c in d["status"]["conditions"]}
            assert conditions == {
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("True", "NewReplicaSetAvailable"),
            }
            assert {
                k: d["status"][k]
                for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
            } == {
                "replicas": 5,
                "updatedReplicas": 5,
                "readyReplicas": 5,
                "availableReplicas": 5,
            }
            await env.ctx.recorder.flush()
            assert ("Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} to 5") in (
                await events_about(env.client, "web")
            )

    run(body())


def test_rolling_update_stays_within_both_bounds() -> None:
    """A new image rolls out with 25% surge and unavailability (2 and 1 of 5): at every
    pod event at most 7 active pods and at least 4 ready ones; it ends with the new
    ReplicaSet at 5 and the old at 0, and `kubectl rollout status` passes through its
    waiting lines to "successfully rolled out"."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(5))
            await eventually(lambda: rolled_out(env.client), "the first rollout")
            (old_name,) = await replica_sets(env.client)
            census = PodCensus(env.client)
            lines: list[str] = []
            watcher = Informer(env.client, DEPLOYMENTS, "default")
            watcher.add_handler(
                lambda d: lines.append(kubectl_rollout_status(d)[0]),
                lambda _o, d: lines.append(kubectl_rollout_status(d)[0]),
            )
            tasks = [asyncio.create_task(census.informer.run()), asyncio.create_task(watcher.run())]
            try:
                assert await census.informer.wait_synced(20) and await watcher.wait_synced(20)
                census.reset()
                updated = await set_template(env.client, image("nginx:1.26"))
                await eventually(lambda: rolled_out(env.client), "the rolling update", timeout=30)

                async def census_caught_up() -> bool:
                    return len(census.informer.list()) == 5 and all(
                        podutil.is_pod_ready(p) for p in census.informer.list()
                    )

                await eventually(census_caught_up, "the census to see the end")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            assert census.samples > 10
            assert census.max_active <= 5 + 2, f"surged to {census.max_active} pods"
            assert census.min_available >= 5 - 1, f"down to {census.min_available} available"
            rss = await replica_sets(env.client)
            new_name = f"web-{podutil.compute_hash(updated['spec']['template'])}"
            assert {n: r["spec"]["replicas"] for n, r in rss.items()} == {old_name: 0, new_name: 5}
            assert rss[new_name]["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
            for p in await pods_of(env.client):
                assert p["spec"]["containers"][0]["image"] == "nginx:1.26"
            assert lines[-1] == 'deployment "web" successfully rolled out'
            assert any("new replicas have been updated" in line for line in lines)
            await env.ctx.recorder.flush()
            messages = [
                m for _t, r, m in await events_about(env.client, "web") if r == "ScalingReplicaSet"
            ]
            assert f"Scaled up replica set {new_name} to 2" in messages
            assert any(
                m.startswith(f"Scaled down replica set {old_name} from 5 to ") for m in messages
            )

    run(body())


def test_rollback_reuses_the_old_replica_set() -> None:
    """`kubectl rollout undo` sends the old ReplicaSet's template back (no hash label,
    `creationTimestamp: null`, defaults): that ReplicaSet, same name, takes revision 3 and
    all the replicas; no third ReplicaSet appears."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(4))
            await eventually(lambda: rolled_out(env.client), "revision 1")
            (first,) = await replica_sets(env.client)
            await set_template(env.client, image("nginx:1.26"))
            await eventually(lambda: rolled_out(env.client), "revision 2")
            rss = await replica_sets(env.client)
            (second,) = set(rss) - {first}

            undo = copy.deepcopy(rss[first]["spec"]["template"])
            del undo["metadata"]["labels"]["pod-template-hash"]
            undo["metadata"]["creationTimestamp"] = None

            def back(spec: Obj) -> None:
                spec["template"] = undo

            await set_template(env.client, back)

            async def restored() -> bool:
                if not await rolled_out(env.client):
                    return False
                rss = await replica_sets(env.client)
                return bool(
                    rss[first]["spec"]["replicas"] == 4 and rss[second]["spec"]["replicas"] == 0
                )

            await eventually(restored, "the rollback")
            rss = await replica_sets(env.client)
            assert set(rss) == {first, second}
            annotations = rss[first]["metadata"]["annotations"]
            assert annotations[REVISION_ANNOTATION] == "3"
            assert annotations[REVISION_HISTORY_ANNOTATION] == "1"
            assert (await get_d(env.client))["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
            for p in running_ready(await pods_of(env.client)):
                assert p["spec"]["containers"][0]["image"] == "nginx:1.25"

    run(body())


def test_scaling_resizes_the_replica_set() -> None:
    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(5))
            await eventually(lambda: rolled_out(env.client), "the rollout")
            (name,) = await replica_sets(env.client)
            for replicas in (8, 2):

                def scale(spec: Obj, n: int = replicas) -> None:
                    spec["replicas"] = n

                await set_template(env.client, scale)

                async def scaled(n: int = replicas) -> bool:
                    rs_ = (await replica_sets(env.client))[name]
                    pods = running_ready(await pods_of(env.client))
                    return (
                        rs_["spec"]["replicas"] == n
                        and len(pods) == n
                        and await rolled_out(env.client)
                    )

                await eventually(scaled, f"{replicas} replicas")
                annotations = (await replica_sets(env.client))[name]["metadata"]["annotations"]
                assert annotations[DESIRED_REPLICAS_ANNOTATION] == str(replicas)
            await env.ctx.recorder.flush()
            messages = [
                m for _t, r, m in await events_about(env.client, "web") if r == "ScalingReplicaSet"
            ]
            assert f"Scaled up replica set {name} from 5 to 8" in messages
            assert f"Scaled down replica set {name} from 8 to 2" in messages

    run(body())


def test_recreate_removes_every_old_pod_before_creating_new_ones() -> None:
    """Recreate: old ReplicaSet to 0; no pod of the new template exists while any old pod
    (terminating ones included) does."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(3, strategy="Recreate"))
            await eventually(lambda: rolled_out(env.client), "the first rollout")
            overlaps: list[int] = []
            census = Informer(env.client, PODS, "default")

            def look(_pod: Obj) -> None:
                images = {p["spec"]["containers"][0]["image"] for p in census.list()}
                if len(images) > 1:
                    overlaps.append(len(census.list()))

            census.add_handler(look, lambda _o, p: look(p), look)
            task = asyncio.create_task(census.run())
            try:
                assert await census.wait_synced(20)
                await set_template(env.client, image("nginx:1.26"))

                async def done() -> bool:
                    pods = await pods_of(env.client)
                    return (
                        await rolled_out(env.client)
                        and len(pods) == 3
                        and all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods)
                    )

                await eventually(done, "the recreate rollout")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert overlaps == [], "old and new pods coexisted"
            replicas = sorted(
                r["spec"]["replicas"] for r in (await replica_sets(env.client)).values()
            )
            assert replicas == [0, 3]

    run(body())


def test_paused_deployment_scales_but_does_not_roll_out() -> None:
    """Paused: a new template makes no ReplicaSet, a new replica count resizes the current
    one; resumed, the rollout happens."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(3))
            await eventually(lambda: rolled_out(env.client), "the rollout")
            (name,) = await replica_sets(env.client)

            def pause(spec: Obj) -> None:
                spec["paused"] = True
                spec["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
                spec["replicas"] = 4

            await set_template(env.client, pause)

            async def observed() -> bool:
                d = await get_d(env.client)
                return bool(d["status"].get("observedGeneration") == d["metadata"]["generation"])

            await eventually(observed, "the paused spec observed")

            async def scaled() -> bool:
                return bool((await replica_sets(env.client))[name]["spec"]["replicas"] == 4)

            await eventually(scaled, "the paused deployment scaled")
            assert list(await replica_sets(env.client)) == [name]
            cond = progressing((await get_d(env.client))["status"])
            assert cond is not None and cond["reason"] == "DeploymentPaused"

            def resume(spec: Obj) -> None:
                spec.pop("paused")

            await set_template(env.client, resume)

            async def rolled() -> bool:
                rss = await replica_sets(env.client)
                return (
                    len(rss) == 2
                    and rss[name]["spec"]["replicas"] == 0
                    and await rolled_out(env.client)
                )

            await eventually(rolled, "the rollout after resuming")

    run(body())


def test_scaling_mid_rollout_is_proportional() -> None:
    """Pods of the new image never get ready, so the rollout stops at old 4 / new 3 (5
    replicas, surge 2, unavailable 1). Paused and scaled to 10 (surge 3), the 6 extra
    replicas are shared 3 and 3 by size (max-replicas 7 -> 13): old 7, new 6."""

    async def body() -> None:
        def ready(pod: Obj) -> bool:
            return bool(pod["spec"]["containers"][0]["image"] == "nginx:1.25")

        async with running_controllers(*controllers(), ready=ready) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(5))
            await eventually(lambda: rolled_out(env.client), "the rollout")
            (old,) = await replica_sets(env.client)
            await set_template(env.client, image("nginx:1.26"))

            async def stalled() -> bool:
                sizes = {
                    n: r["spec"]["replicas"] for n, r in (await replica_sets(env.client)).items()
                }
                pods = await pods_of(env.client)
                return sorted(sizes.values()) == [3, 4] and sizes[old] == 4 and len(pods) == 7

            await eventually(stalled, "the stalled rollout")

            def pause_and_scale(spec: Obj) -> None:
                spec["paused"] = True
                spec["replicas"] = 10

            await set_template(env.client, pause_and_scale)

            async def proportional() -> bool:
                sizes = {
                    n: r["spec"]["replicas"] for n, r in (await replica_sets(env.client)).items()
                }
                return bool(sizes[old] == 7 and sum(sizes.values()) == 13)

            await eventually(proportional, "proportional scaling")

    run(body())


def test_progress_deadline_exceeded() -> None:
    """A rollout whose new pods never get ready reports ProgressDeadlineExceeded once
    progressDeadlineSeconds pass without progress; `kubectl rollout status` then fails."""

    async def body() -> None:
        def ready(pod: Obj) -> bool:
            return bool(pod["spec"]["containers"][0]["image"] == "nginx:1.25")

        async with running_controllers(*controllers(), ready=ready) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(2, deadline=1))
            await eventually(lambda: rolled_out(env.client), "the rollout")
            await set_template(env.client, image("nginx:1.26"))

            async def timed_out() -> bool:
                cond = progressing((await get_d(env.client))["status"])
                return cond is not None and cond["reason"] == "ProgressDeadlineExceeded"

            await eventually(timed_out, "ProgressDeadlineExceeded")
            line, done = kubectl_rollout_status(await get_d(env.client))
            assert done and line == 'deployment "web" exceeded its progress deadline'

    run(body())


def test_old_revisions_beyond_the_history_limit_are_deleted() -> None:
    """revisionHistoryLimit 1: after three templates, the current ReplicaSet and one old
    one (the latest) remain."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            await env.client.create(DEPLOYMENTS, "default", deployment(2, history=1))
            await eventually(lambda: rolled_out(env.client), "revision 1")
            for tag in ("1.26", "1.27"):
                await set_template(env.client, image(f"nginx:{tag}"))
                await eventually(lambda: rolled_out(env.client), f"nginx:{tag}")

            async def cleaned() -> bool:
                return len(await replica_sets(env.client)) == 2

            await eventually(cleaned, "the oldest revision deleted")
            revisions = sorted(
                r["metadata"]["annotations"][REVISION_ANNOTATION]
                for r in (await replica_sets(env.client)).values()
            )
            assert revisions == ["2", "3"]

    run(body())


def test_hash_collision_bumps_collision_count() -> None:
    """A ReplicaSet that already has the new ReplicaSet's name but another template (and
    another owner) is a hash collision: status.collisionCount becomes 1 and the
    Deployment's ReplicaSet is named by the hash with that count."""

    async def body() -> None:
        async with running_controllers(*controllers()) as env:
            d = deployment(2)
            taken = f"web-{podutil.compute_hash(d['spec']['template'])}"
            squatter = rs(taken, 0, image="busybox")
            squatter["metadata"] = {"name": taken, "labels": {"app": "other"}}
            squatter["spec"]["selector"] = {"matchLabels": {"app": "other"}}
            squatter["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
            await env.client.create(REPLICASETS, "default", squatter)
            created = await env.client.create(DEPLOYMENTS, "default", d)
            await eventually(lambda: rolled_out(env.client), "the rollout")
            assert (await get_d(env.client))["status"]["collisionCount"] == 1
            expected = f"web-{podutil.compute_hash(created['spec']['template'], 1)}"
            rss = await replica_sets(env.client)
            assert set(rss) == {taken, expected}
            assert rss[expected]["spec"]["replicas"] == 2
            assert "ownerReferences" not in rss[taken]["metadata"]

    run(body())
