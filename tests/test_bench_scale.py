"""`kubelab bench scale` and `kubelab bench reschedule`: the pure pieces, table-driven, and
one `--quick` run of each end to end.

The end-to-end runs are smoke tests: they start real masters and a `fakenodes` process
under the test's temporary directory (`--workdir`), and assert the JSON's shape and that
every figure is there and positive, never a threshold (this machine is shared and noisy;
speed lives in the benchmark's own output). Whatever a run leaves behind is killed by the
safety net, and a leak fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procfixtures import cleanup, interrupt_at

from controlplane.bench import reschedule, scale
from controlplane.bench.probes import parse_prometheus
from controlplane.bench.scale import PodTimeline
from controlplane.config import PROFILES
from controlplane.kube.storage import rfc3339

_KUBELAB = Path(sys.executable).with_name("kubelab")
KUBELAB: list[str] = (
    [str(_KUBELAB)]
    if _KUBELAB.exists()
    else [sys.executable, "-c", "import sys\nfrom controlplane.cli import main\nsys.exit(main())"]
)

Obj = dict[str, Any]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBELAB_CLUSTER"}
    env["KUBELAB_HOME"] = str(root / "home")
    return env


def _kubelab(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBELAB, *args],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# -- sizes, rates, histograms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "per", "expected"),
    [
        (3000, 100, [100] * 30),
        (250, 100, [84, 83, 83]),
        (100, 50, [50, 50]),
        (1, 100, [1]),
        (7, 3, [3, 2, 2]),
    ],
)
def test_deployment_sizes_split_evenly(pods: int, per: int, expected: list[int]) -> None:
    sizes = scale.deployment_sizes(pods, per)
    assert sizes == expected
    assert sum(sizes) == pods and max(sizes) <= per


@pytest.mark.parametrize(("pods", "per"), [(0, 100), (10, 0)])
def test_deployment_sizes_refuse_nothing(pods: int, per: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        scale.deployment_sizes(pods, per)


def test_deployment_manifest_is_labelled_and_selects_its_pods() -> None:
    d = scale.deployment_manifest("scale-001", 7, "scale")
    tmpl = d["spec"]["template"]
    assert d["spec"]["replicas"] == 7
    assert tmpl["metadata"]["labels"] == {"app": "scale-001", "kubelab-bench": "scale"}
    sel = d["spec"]["selector"]["matchLabels"]
    assert sel.items() <= tmpl["metadata"]["labels"].items()
    assert tmpl["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "10m"


@pytest.mark.parametrize(
    ("times", "width", "peak"),
    [
        ([], 1.0, 0),
        ([5.0], 1.0, 1),
        ([0.0, 0.1, 0.5, 0.99, 1.0, 1.5], 1.0, 4),  # [0, 1) holds 4; 1.0 starts a new window
        ([0.0, 1.0, 2.0, 3.0], 1.0, 1),
        ([0.0, 0.0, 0.0], 1.0, 3),
        ([3.0, 0.2, 0.1, 2.9, 3.05], 0.5, 3),  # unsorted input
    ],
)
def test_peak_in_window_slides(times: list[float], width: float, peak: int) -> None:
    assert scale.peak_in_window(times, width) == peak


def test_rate_summary_of_an_even_stream() -> None:
    t0 = 1000.0
    times = [t0 + 2.0 + i * 0.01 for i in range(301)]  # 300 intervals of 10 ms from t0+2 s
    s = scale.rate_summary(times, t0)
    assert s["count"] == 301
    assert s["first_s"] == 2.0 and s["last_s"] == 5.0 and s["span_s"] == 3.0
    assert s["average_per_s"] == 100.0
    assert s["peak_1s_per_s"] in (100, 101)  # float steps of 10 ms: the edge may fall either way
    assert s["overall_per_s"] == round(301 / 5.0, 1)
    assert scale.rate_summary([]) == {"count": 0}
    assert scale.rate_summary([1.0])["average_per_s"] is None


def test_per_second_peak_counts_whole_seconds() -> None:
    s = scale.per_second_peak([10.0, 10.0, 10.9, 11.0, 13.0])
    assert s == {"count": 5, "seconds": 4, "average_per_s": 1.2, "peak_second_count": 3}
    assert scale.per_second_peak([]) == {"count": 0}


@pytest.mark.parametrize(
    ("intervals", "most"),
    [
        ([], 0),
        ([(0.0, 1.0), (1.0, 2.0)], 1),  # one ends as the other starts
        ([(0.0, 2.0), (0.5, 1.0), (0.7, None)], 3),
        ([(0.0, None), (1.0, None)], 2),
    ],
)
def test_max_concurrent(intervals: list[tuple[float, float | None]], most: int) -> None:
    assert scale.max_concurrent(intervals) == most


HIST = "kubelab_proposal_commit_seconds"


def _hist_page(counts: dict[str, float], total: float, sum_s: float) -> dict[str, float]:
    lines = [f'{HIST}_bucket{{le="{le}"}} {c}' for le, c in counts.items()]
    lines += [f"{HIST}_count {total}", f"{HIST}_sum {sum_s}"]
    return parse_prometheus("\n".join(lines))


def test_bucket_quantile_interpolates_like_prometheus() -> None:
    page = _hist_page({"0.01": 50, "0.1": 90, "1.0": 100, "+Inf": 100}, 100, 3.0)
    buckets = scale.hist_buckets(page, HIST)
    assert [le for le, _ in buckets][-1] == float("inf")
    got = scale.bucket_quantile(buckets, 0.5)
    assert got is not None and got == pytest.approx((0.01, False))
    got = scale.bucket_quantile(buckets, 0.7)  # halfway through the (0.01, 0.1] bucket
    assert got is not None and got[0] == pytest.approx(0.055) and not got[1]
    got = scale.bucket_quantile(buckets, 0.99)
    assert got is not None and got[0] == pytest.approx(0.91)


def test_bucket_quantile_in_the_inf_bucket_is_a_lower_bound() -> None:
    page = _hist_page({"0.1": 10, "1.0": 50, "+Inf": 100}, 100, 500.0)
    assert scale.bucket_quantile(scale.hist_buckets(page, HIST), 0.99) == (1.0, True)
    assert scale.bucket_quantile([], 0.5) is None
    assert scale.bucket_quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_hist_summary_is_the_difference_of_two_scrapes() -> None:
    before = _hist_page({"0.01": 40, "0.1": 40, "+Inf": 40}, 40, 0.2)
    after = _hist_page({"0.01": 50, "0.1": 140, "+Inf": 140}, 140, 5.2)
    s = scale.hist_summary(before, after, HIST)
    assert s is not None
    assert s["count"] == 100 and s["mean_ms"] == 50.0
    # 10 of the 100 in (0, 0.01], 90 in (0.01, 0.1]: the median is in the second bucket.
    assert s["p50_ms"] == pytest.approx(10 + 90 * 40 / 90)
    assert s["p99_ms"] == pytest.approx(10 + 90 * 89 / 90, rel=1e-3)
    assert scale.hist_summary(None, None, HIST) is None


def test_merged_hist_summary_adds_the_members_up() -> None:
    """Writes are proposed on whichever master a client talks to: the server-side figure
    is every master's histogram together (a member without one is skipped)."""
    m1 = _hist_page({"0.01": 10, "0.1": 10, "+Inf": 10}, 10, 0.05)
    m2 = _hist_page({"0.01": 0, "0.1": 90, "+Inf": 90}, 90, 4.95)
    s = scale.merged_hist_summary([(None, m1), (None, m2), (None, None)], HIST)
    assert s is not None
    assert s["count"] == 100 and s["mean_ms"] == 50.0
    assert s["p50_ms"] == pytest.approx(10 + 90 * 40 / 90)
    assert scale.merged_hist_summary([(None, None)], HIST) is None


def test_vm_status_of_this_process_and_of_a_gone_one() -> None:
    mine = scale.vm_status_mb(os.getpid())
    assert mine is not None and mine["peak_mb"] >= mine["rss_mb"] > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert scale.vm_status_mb(child.pid) is None
    assert scale.vm_status_mb(None) is None


def test_claim_octet_stays_in_the_benchmark_range() -> None:
    c = scale.claim_octet(3)
    assert c in scale.BENCH_OCTETS
    assert scale.claim_octet(3, avoid=[c]) != c


def test_fake_cluster_config_has_the_fake_workers(tmp_path: Path) -> None:
    from controlplane.config import load_config  # noqa: PLC0415

    path = tmp_path / "cluster.toml"
    path.write_text(
        scale.fake_cluster_toml(
            "bench81", 81, tmp_path / "data", masters=3, timers="kubernetes", workers=4
        )
    )
    cfg = load_config(path)
    assert [w.name for w in cfg.workers] == [f"worker-{i}" for i in range(1, 5)]
    assert {w.runtime for w in cfg.workers} == {"fake"}
    assert cfg.timers.profile == "kubernetes" and len(cfg.masters) == 3
    assert str(cfg.subnet) == "127.81.0.0/16"


# -- the pod timeline ---------------------------------------------------------------------------


def _pod(name: str, *, node: str = "", phase: str = "Pending", **meta: Any) -> Obj:
    pod: Obj = {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"app": "web"},
            "creationTimestamp": rfc3339(1000.0),
            **meta,
        },
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    }
    if node:
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(1001.0)}
        ]
    return pod


def test_pod_timeline_keeps_first_sightings() -> None:
    tl = PodTimeline()
    tl.on_event("ADDED", _pod("a"), 1000.2)
    tl.on_event("MODIFIED", _pod("a", node="worker-2"), 1001.3)
    tl.on_event("MODIFIED", _pod("a", node="worker-2", phase="Running"), 1001.6)
    tl.on_event("MODIFIED", _pod("a", node="worker-2", phase="Running"), 1009.0)  # resync
    (p,) = tl.pods.values()
    assert (p.name, p.app, p.node) == ("a", "web", "worker-2")
    assert (p.seen, p.bound_seen, p.running_seen) == (1000.2, 1001.3, 1001.6)
    assert (p.created, p.scheduled) == (1000.0, 1001.0)
    assert p.running and p.live
    deleting = _pod(
        "a",
        node="worker-2",
        phase="Running",
        deletionTimestamp=rfc3339(1040.0),
        deletionGracePeriodSeconds=30,
    )
    tl.on_event("MODIFIED", deleting, 1010.5)
    assert p.deleting_seen == 1010.5 and p.deletion_requested == 1010.0
    assert not p.running and not p.live
    tl.on_event("DELETED", deleting, 1011.0)
    assert p.gone_seen == 1011.0
    assert tl.count(lambda x: x.running) == 0


def test_pod_timeline_sees_bind_and_running_in_one_event() -> None:
    """A watch that lagged shows the pod bound and Running at once: both at that time."""
    tl = PodTimeline()
    tl.on_event("ADDED", _pod("b", node="worker-1", phase="Running"), 1002.0)
    (p,) = tl.pods.values()
    assert p.seen == p.bound_seen == p.running_seen == 1002.0


# -- elections, targets, output ------------------------------------------------------------------


def _reading(at: float, terms: dict[str, int], changes: dict[str, int], trans: int) -> Any:
    return scale.Reading(
        at=at,
        status={
            n: {"term": t, "leader_changes": changes[n], "role": "follower"}
            for n, t in terms.items()
        },
        metrics={n: None for n in terms},
        cpu={n: None for n in terms},
        leases={"kube-scheduler": {"holderIdentity": "master-1", "leaseTransitions": trans}},
    )


def test_elections_count_term_growth_and_leader_changes() -> None:
    names = ("master-1", "master-2", "master-3")
    before = _reading(0, dict.fromkeys(names, 2), dict.fromkeys(names, 1), 0)
    same = scale.elections_doc(
        before, _reading(9, dict.fromkeys(names, 2), dict.fromkeys(names, 1), 0)
    )
    assert same["count"] == 0 and same["term_first"] == same["term_last"] == 2
    after = _reading(9, {"master-1": 4, "master-2": 4, "master-3": 3}, dict.fromkeys(names, 2), 1)
    moved = scale.elections_doc(before, after)
    assert moved["count"] == 2  # two terms, though each member saw one leader change
    assert moved["leader_changes"] == dict.fromkeys(names, 1)
    assert moved["leader_leases"]["kube-scheduler"]["transitions"] == 1
    assert moved["leader_leases"]["kube-controller-manager"]["transitions"] is None


def _result(**over: Any) -> Obj:
    r: Obj = {
        "pods": {"target": 100, "created": 100, "bound": 100, "running": 100, "all_running": True},
        "deployments": 2,
        "time_to_all_running_s": 4.2,
        "scheduler": {
            "watch": {"count": 100, "average_per_s": 150.0, "peak_1s_per_s": 90, "span_s": 0.7},
            "server_podscheduled": {"average_per_s": 50.0, "peak_second_count": 80},
            "max_pending": 40,
        },
        "mutating": {
            "client": {"count": 80, "p50_ms": 8.0, "p99_ms": 40.0, "max_ms": 70.0},
            "server_commit": {"count": 500, "p50_ms": 4.0, "p99_ms": 30.0},
        },
        "masters": {
            f"master-{i}": {"role": "follower" if i > 1 else "leader", "rss": {"peak_mb": 90.0}}
            for i in (1, 2, 3)
        },
        "elections_without_fault": {"count": 0, "leader_changes": {}, "leader_leases": {}},
        "profile": [
            {"step": "pod seen -> bound", "count": 100, "mean_ms": 5.0, "p50_ms": 4.0,
             "p99_ms": 9.0, "max_ms": 10.0, "how": "derived"},
        ],
        "fakenodes": {"pid": 1, "rss": {"peak_mb": 50.0, "rss_mb": 49.0}},
    }  # fmt: skip
    r.update(over)
    return r


def test_targets_met_missed_and_unmeasured() -> None:
    met = {t["figure"]: t["met"] for t in scale.targets(_result())}
    assert all(met.values()), met
    slow = _result(
        scheduler={"watch": {"average_per_s": 40.0}},
        mutating={"client": {"p99_ms": 900.0}, "server_commit": {"p99_ms": 1500.0}},
        elections_without_fault={"count": 1},
    )
    by = {t["figure"]: t for t in scale.targets(slow)}
    assert by["scheduler throughput (average while binding)"]["met"] is False
    worst = by["p99 of mutating API calls (worst of client and server)"]
    assert (worst["value"], worst["met"]) == (1500.0, False)
    assert by["elections without a fault"]["met"] is False
    gone = _result(masters={"master-1": {"rss": None}, "master-2": {"rss": {"peak_mb": 10.0}}})
    by = {t["figure"]: t for t in scale.targets(gone)}
    assert by["peak RSS per master (largest)"]["met"] is None  # a master not measured


def test_render_scale_shows_misses_and_the_profile() -> None:
    r = _result(scheduler={"watch": {"average_per_s": 40.0}, "server_podscheduled": {}})
    r["targets"] = scale.targets(r)
    doc = {"parameters": {"pods": 100, "workers": 5, "masters": 3, "timers": "demo"}, "result": r}
    text = scale.render_scale(doc)
    assert "scale benchmark: 100 pods in 2 Deployments on 5 fake nodes" in text
    assert "MISSED" in text and "met" in text
    assert "pod seen -> bound" in text
    assert "fakenodes" in text and "master-3" in text
    assert "no result" in scale.render_scale({"parameters": {}, "error": "boom"})


def test_timeline_svg_draws_one_line_per_series() -> None:
    series = {"created": [0.1, 0.2, 0.3], "bound": [0.2, 0.3, 0.5], "Running": [0.3, 0.6, 0.9]}
    svg = scale.timeline_svg(series, "pods <over> time")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<path") == 3
    assert "pods &lt;over&gt; time" in svg
    assert "no pods" in scale.timeline_svg({}, "empty")


# -- reschedule: stages from what the watches saw -------------------------------------------------


def test_expected_windows_follow_the_profiles() -> None:
    demo = reschedule.expected_windows(PROFILES["demo"])
    assert demo["notready"] == (4.0, 4.5)
    assert demo["eviction"] == (6.0, 7.5)  # timeAdded is in whole seconds
    assert demo["crash"] == (0.0, 1.0)
    kube = reschedule.expected_windows(PROFILES["kubernetes"])
    assert kube["notready"] == (50.0, 55.0)
    assert kube["replacement"] == (349.0, 355.0)


@pytest.mark.parametrize(
    ("measured", "stamp", "expected"),
    [
        (None, False, "not seen"),
        (4.2, False, "as expected"),
        (5.4, False, "as expected"),  # within the slack for processing
        (6.0, False, "late by 1.5 s"),
        (3.0, False, "early by 1.0 s"),
        (3.0, True, "as expected"),  # a whole-second server stamp may be up to 1 s early
        (2.5, True, "early by 1.5 s"),
    ],
)
def test_verdict(measured: float | None, stamp: bool, expected: str) -> None:
    assert reschedule.verdict(measured, 4.0, 4.5, stamp=stamp) == expected


def _node(ready: str, taints: list[Obj], transition: float) -> Obj:
    return {
        "metadata": {"name": "worker-1"},
        "spec": {"taints": taints},
        "status": {
            "conditions": [
                {"type": "Ready", "status": ready, "lastTransitionTime": rfc3339(transition)}
            ]
        },
    }


def _lease(renew: str) -> Obj:
    return {"metadata": {"name": "worker-1"}, "spec": {"renewTime": renew}}


def _timelines() -> tuple[Any, ...]:
    """A demo-profile node loss: last renewal at 100.25, killed at 100.5-100.9."""
    leases, nodes, pods, events = (
        reschedule.LeaseTimeline(),
        reschedule.NodeTimeline(),
        PodTimeline(),
        reschedule.EventLog(),
    )
    leases.on_event("MODIFIED", _lease("1970-01-01T00:01:39.250000Z"), 99.3)
    leases.on_event("MODIFIED", _lease("1970-01-01T00:01:40.250000Z"), 100.3)
    nodes.on_event("ADDED", _node("True", [], 50.0), 90.0)
    for i in (1, 2):  # the victim's pods, then their eviction
        pods.on_event("ADDED", _pod(f"v{i}", node="worker-1", phase="Running"), 90.0)
    pods.on_event("ADDED", _pod("keep", node="worker-2", phase="Running"), 90.0)
    unreachable = {
        "key": "node.kubernetes.io/unreachable",
        "effect": "NoExecute",
        "timeAdded": rfc3339(104.0),
    }
    nodes.on_event("MODIFIED", _node("Unknown", [], 104.0), 104.6)
    nodes.on_event("MODIFIED", _node("Unknown", [unreachable], 104.0), 104.7)
    for i, at in ((1, 107.4), (2, 107.6)):
        gone = _pod(
            f"v{i}",
            node="worker-1",
            phase="Running",
            deletionTimestamp=rfc3339(137.0),
            deletionGracePeriodSeconds=30,
        )
        pods.on_event("MODIFIED", gone, at)
    events.on_event(
        "ADDED",
        {
            "metadata": {"name": "v1.abc"},
            "reason": "TaintManagerEviction",
            "message": "Marking for deletion Pod default/v1",
            "involvedObject": {"name": "v1"},
            "firstTimestamp": rfc3339(107.0),
        },
        107.5,
    )
    for i, (seen, bound, running) in enumerate(((107.7, 107.9, 108.0), (107.8, 108.1, 108.3))):
        name = f"r{i}"
        pods.on_event("ADDED", _pod(name), seen)
        pods.on_event("MODIFIED", _pod(name, node=f"worker-{2 + i}"), bound)
        pods.on_event("MODIFIED", _pod(name, node=f"worker-{2 + i}", phase="Running"), running)
    return leases, nodes, pods, events


def test_extract_stages_of_a_node_loss() -> None:
    leases, nodes, pods, events = _timelines()
    got = reschedule.extract_stages(
        victim="worker-1",
        kill=(100.5, 100.9),
        victim_pods=["uid-v1", "uid-v2"],
        leases=leases,
        nodes=nodes,
        pods=pods,
        events=events,
        timers=PROFILES["demo"],
    )
    by = {s["stage"]: s for s in got["stages"]}
    assert got["last_heartbeat_epoch"] == pytest.approx(100.25)
    assert by["last_heartbeat"]["seen_s"] == pytest.approx(0.05)
    assert by["crash"]["seen_s"] == pytest.approx(0.65)
    assert by["notready"]["label"] == "node Ready -> Unknown"
    assert by["notready"]["seen_s"] == pytest.approx(4.35)
    assert by["notready"]["server_s"] == pytest.approx(3.75)
    assert by["taint"]["seen_s"] == pytest.approx(4.45)
    assert by["eviction_first"]["seen_s"] == pytest.approx(7.15)
    assert by["eviction_first"]["server_s"] == pytest.approx(6.75)  # 137 - 30 - 100.25
    assert by["eviction_all"]["seen_s"] == pytest.approx(7.35)
    assert by["eviction_event"]["seen_s"] == pytest.approx(7.25)
    assert by["replacements_created"]["seen_s"] == pytest.approx(7.55)
    assert by["replacements_scheduled"]["seen_s"] == pytest.approx(7.85)
    assert by["replacements_running"]["seen_s"] == pytest.approx(8.05)
    assert all(s["verdict"] in ("as expected", "reference") for s in got["stages"]), got
    assert got["crash_to_running_s"] == pytest.approx(108.3 - 100.9)
    assert got["replacement_nodes"] == ["worker-2", "worker-3"]
    assert got["replacements_on_victim"] == 0
    text = reschedule.render_run({"timers": "demo", "timers_effective": PROFILES["demo"]} | got)
    assert "node Ready -> Unknown" in text and "as expected" in text
    assert "node crash -> all replacements Running: 7.40 s" in text


def test_extract_stages_reports_what_was_not_seen() -> None:
    leases, nodes, pods, events = _timelines()
    got = reschedule.extract_stages(
        victim="worker-1",
        kill=(100.5, 100.9),
        victim_pods=["uid-v1", "uid-v2", "uid-v3"],  # a third pod never evicted
        leases=leases,
        nodes=nodes,
        pods=pods,
        events=events,
        timers=PROFILES["demo"],
    )
    by = {s["stage"]: s for s in got["stages"]}
    assert by["eviction_first"]["verdict"] == "as expected"
    assert by["eviction_all"]["verdict"] == "not seen"
    assert by["replacements_running"]["verdict"] == "not seen"  # 2 of 3
    assert got["crash_to_running_s"] is None


def test_node_timeline_records_ready_changes_and_new_taints() -> None:
    nodes = reschedule.NodeTimeline()
    t = {"key": "k", "effect": "NoSchedule", "timeAdded": rfc3339(5.0)}
    nodes.on_event("ADDED", _node("True", [], 1.0), 1.0)
    nodes.on_event("MODIFIED", _node("True", [], 1.0), 2.0)  # no change: nothing recorded
    nodes.on_event("MODIFIED", _node("Unknown", [t], 5.0), 5.5)
    nodes.on_event("MODIFIED", _node("True", [], 9.0), 9.5)
    nodes.on_event("MODIFIED", _node("Unknown", [t], 12.0), 12.5)
    n = nodes.nodes["worker-1"]
    assert [(s, st) for s, st, _ in n.ready] == [
        (1.0, "True"),
        (5.5, "Unknown"),
        (9.5, "True"),
        (12.5, "Unknown"),
    ]
    assert n.taints == {"k:NoSchedule": (12.5, 5.0)}  # removed at 9.5, added again at 12.5


def test_not_ready_during_the_run_only() -> None:
    nodes = reschedule.NodeTimeline()
    nodes.on_event("ADDED", _node("True", [], 1.0), 1.0)
    nodes.on_event("MODIFIED", _node("Unknown", [], 15.0), 15.5)
    nodes.on_event("MODIFIED", _node("True", [], 16.0), 16.5)
    nodes.on_event("MODIFIED", _node("False", [], 40.0), 40.5)  # after the run
    got = scale.not_ready_during(nodes, 10.0, 30.0)
    assert got == [{"node": "worker-1", "status": "Unknown", "seen_s": 5.5}]


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scale", "--workers", "0"], "expected 1 or more"),
        (["scale", "--runtime", "docker"], "invalid choice"),
        (["scale", "--masters", "9"], "a member count is 1 to 7"),
        (["reschedule", "--timers", "fast"], "invalid choice"),
        (["reschedule", "--replicas", "x"], "expected a whole number"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = _kubelab(tmp_path, "bench", *args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr


def test_json_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    proc = _kubelab(tmp_path, "bench", "scale", "--quick", "--json", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr


# -- end to end ---------------------------------------------------------------------------------


def _positive(doc: Any, *path: str) -> float:
    cur = doc
    for k in path:
        assert isinstance(cur, dict) and k in cur, f"missing {'.'.join(path)}"
        cur = cur[k]
    assert isinstance(cur, int | float) and not isinstance(cur, bool) and cur > 0, (
        f"{'.'.join(path)} = {cur!r}"
    )
    return float(cur)


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Obj, str, Path]]:
    """One `bench scale --quick` (5 fake workers, 100 pods): its document and output."""
    root = tmp_path_factory.mktemp("bench-scale")
    out = root / "results" / "scale.json"
    work = root / "work"
    t0 = time.monotonic()
    try:
        proc = _kubelab(
            root,
            "bench",
            "scale",
            "--quick",
            "--json",
            str(out),
            "--workdir",
            str(work),
            timeout=240,
        )
    finally:
        leaked = cleanup(work)
    print(f"bench scale --quick took {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert not leaked, f"processes left running by the benchmark: {leaked}"
    yield json.loads(out.read_text()), proc.stdout, work


def test_scale_document_has_every_figure(scale_run: tuple[Obj, str, Path]) -> None:
    doc, _, _ = scale_run
    assert doc["benchmark"] == "scale"
    assert {"parameters", "machine", "cluster", "result", "plot", "wall_seconds"} <= doc.keys()
    p = doc["parameters"]
    assert (p["quick"], p["workers"], p["pods"], p["masters"]) == (True, 5, 100, 3)
    r = doc["result"]
    pods = r["pods"]
    assert set(pods) == {
        "target",
        "created",
        "bound",
        "running",
        "deleted",
        "all_running",
        "deleted_examples",
    }
    assert (pods["target"], pods["running"], pods["all_running"]) == (100, 100, True)
    assert pods["created"] >= pods["bound"] >= 100  # surplus pods (deleted) are reported
    assert len(pods["deleted_examples"]) == min(20, pods["deleted"])
    _positive(r, "writes_per_pod")
    _positive(r, "time_to_all_running_s")
    for key in ("average_per_s", "peak_1s_per_s", "span_s", "overall_per_s"):
        _positive(r, "scheduler", "watch", key)
    _positive(r, "scheduler", "server_podscheduled", "average_per_s")
    assert r["scheduler"]["watch"]["count"] == pods["bound"]
    for group in ("client", "deployment_creates", "probe_updates", "server_commit"):
        for q in ("p50_ms", "p99_ms"):
            _positive(r, "mutating", group, q)
    assert r["mutating"]["deployment_creates"]["count"] == 2
    assert len(r["masters"]) == 3
    assert sum(m["role"] == "leader" for m in r["masters"].values()) == 1
    for m in r["masters"].values():
        _positive(m, "rss", "peak_mb")
        _positive(m, "cpu_s")
        assert m["rss"]["peak_mb"] >= m["rss"]["rss_mb"]
    _positive(r, "fakenodes", "rss", "peak_mb")
    _positive(r, "fakenodes", "cpu_s")
    _positive(r, "client_cpu_s")
    holders = [h for m in r["masters"].values() for h in m["holds"]]
    assert sorted(holders) == ["kube-controller-manager", "kube-scheduler"]
    assert isinstance(r["nodes_not_ready"], list)
    el = r["elections_without_fault"]
    assert isinstance(el["count"], int) and el["count"] >= 0 and el["how"]
    assert {t["figure"] for t in r["targets"]} >= {"elections without a fault"}
    for t in r["targets"]:
        assert t["met"] in (True, False), t


def test_scale_profile_says_how_each_step_is_measured(scale_run: tuple[Obj, str, Path]) -> None:
    doc, _, _ = scale_run
    steps = {s["step"]: s for s in doc["result"]["profile"]}
    for name in (
        "pod seen -> bound (scheduling queue, filter, score, bind)",
        "pod bound -> Running (fake kubelet: watch, status update)",
        "API: update a ConfigMap (probe round trip)",
    ):
        assert steps[name]["count"] > 0, name
        assert steps[name]["how"].startswith(("measured", "derived")), name
    assert steps["first create -> pod Running (end to end)"]["count"] >= 100


def test_scale_prints_progress_table_and_writes_the_plot(scale_run: tuple[Obj, str, Path]) -> None:
    doc, printed, work = scale_run
    for n in range(1, 5):
        assert f"step {n}/4" in printed
    assert "all 100 pods Running" in printed
    assert "per-step profile (ms)" in printed and "peak RSS MB" in printed
    svg = Path(doc["plot"]).read_text()
    assert svg.startswith("<svg") and svg.count("<path") == 3
    # The cluster is gone (down --purge); its logs were kept in the work directory.
    assert not (work / "cluster" / "data").exists()
    assert any((work / "logs").glob("*master.log"))


@pytest.fixture(scope="module")
def reschedule_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Obj, str]]:
    """One `bench reschedule --quick` (demo timers, 3 pods on 3 fake nodes)."""
    root = tmp_path_factory.mktemp("bench-reschedule")
    out = root / "reschedule.json"
    work = root / "work"
    t0 = time.monotonic()
    try:
        proc = _kubelab(
            root,
            "bench",
            "reschedule",
            "--quick",
            "--json",
            str(out),
            "--workdir",
            str(work),
            timeout=240,
        )
    finally:
        leaked = cleanup(work)
    print(f"bench reschedule --quick took {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert not leaked, f"processes left running by the benchmark: {leaked}"
    yield json.loads(out.read_text()), proc.stdout


def test_reschedule_sees_every_stage_in_order(reschedule_run: tuple[Obj, str]) -> None:
    doc, printed = reschedule_run
    assert doc["benchmark"] == "reschedule" and doc["parameters"]["quick"] is True
    (run,) = doc["runs"]
    assert run["timers"] == "demo" and run["victim"] == "worker-1"
    assert run["victim_pods"] >= 1
    assert run["replacements_on_victim"] == 0 and "worker-1" not in run["replacement_nodes"]
    stages = {s["stage"]: s for s in run["stages"]}
    assert list(stages) == [
        "last_heartbeat",
        "crash",
        "notready",
        "taint",
        "eviction_first",
        "eviction_event",
        "eviction_all",
        "replacements_created",
        "replacements_scheduled",
        "replacements_running",
    ]
    for s in run["stages"]:
        assert s["seen_s"] is not None and s["seen_s"] >= 0, s
        assert s["verdict"] != "not seen" and s["how"], s
    order = [
        "crash",
        "notready",
        "eviction_first",
        "eviction_all",
        "replacements_scheduled",
        "replacements_running",
    ]
    seen = [stages[k]["seen_s"] for k in order]
    assert seen == sorted(seen), seen
    _positive(run, "crash_to_running_s")
    for key in ("notready", "taint", "eviction_first", "replacements_scheduled"):
        assert stages[key]["server_s"] is not None, key
    assert "node crash -> all replacements Running" in printed
    assert "node Ready -> Unknown" in printed


def test_interrupted_run_stops_and_removes_its_cluster(tmp_path: Path) -> None:
    """SIGTERM while pods are being scheduled: the benchmark stops every process it started
    and purges the cluster's data before exiting."""
    work = tmp_path / "work"
    argv = [*KUBELAB, "bench", "scale", "--quick", "--pods", "400", "--workdir", str(work)]
    output, code, left, leaked = interrupt_at(argv, _env(tmp_path), work, "step 3/4")
    assert code != 0, output
    assert not left, f"still running after the interrupted benchmark: {left}\n{output}"
    assert not leaked
    assert "interrupted" in output
    assert not (work / "cluster" / "data").exists()
