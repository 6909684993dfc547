"""`kubelab bench quorum --quick` runs end to end and writes the JSON its readers rely on.

Smoke tests only: every figure must exist and be positive, never above or below a threshold
(this machine is shared and noisy; speed lives in the benchmark's own output). With `etcd`
on PATH the run also compares with etcd; without, it must say how to install it and skip.

The benchmark starts real master processes (and etcd members) under the test's temporary
directory (`--workdir`); whatever it leaves behind, even after a failure or a timeout, is
killed by the safety net, and a leak fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procfixtures import cleanup, interrupt_at

from controlplane.bench import probes, stats
from controlplane.bench.report import table
from controlplane.bench.svg import cdf_svg

_KUBELAB = Path(sys.executable).with_name("kubelab")
KUBELAB: list[str] = (
    [str(_KUBELAB)]
    if _KUBELAB.exists()
    else [sys.executable, "-c", "import sys\nfrom controlplane.cli import main\nsys.exit(main())"]
)
HAVE_ETCD = shutil.which("etcd") is not None
LATENCY_PHASES = ("sequential_leader", "sequential_follower", "concurrent", "pipelined")


def _env(root: Path, *, hide_etcd: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBELAB_CLUSTER"}
    env["KUBELAB_HOME"] = str(root / "home")
    if hide_etcd:  # a PATH with this interpreter's tools only: no etcd
        env["PATH"] = str(Path(sys.executable).parent)
    return env


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str]]:
    """One `--quick --compare etcd` run (etcd skipped when absent): its document and output."""
    root = tmp_path_factory.mktemp("bench-quorum")
    out = root / "results" / "quorum.json"
    work = root / "work"
    argv = [*KUBELAB, "bench", "quorum", "--quick", "--compare", "etcd"]
    argv += ["--json", str(out), "--workdir", str(work)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            env=_env(root, hide_etcd=not HAVE_ETCD),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        leaked = cleanup(work)  # the safety net: whatever the run left dies now
    took = time.monotonic() - t0
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert not leaked, f"processes left running by the benchmark: {leaked}"
    print(f"bench quorum --quick took {took:.1f} s")
    yield json.loads(out.read_text()), proc.stdout


def _positive(doc: dict[str, Any], *path: str) -> float:
    cur: Any = doc
    for k in path:
        assert isinstance(cur, dict) and k in cur, f"missing {'.'.join(path)}"
        cur = cur[k]
    assert isinstance(cur, int | float) and cur > 0, f"{'.'.join(path)} = {cur!r}"
    return float(cur)


def _check_system(sysdoc: dict[str, Any], masters: int) -> None:
    for phase in LATENCY_PHASES:
        lat = sysdoc[phase]["latency"]
        for q in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"):
            _positive(lat, q)
        assert lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        _positive(sysdoc, phase, "throughput_per_s")
        _positive(sysdoc, phase, "writes")
        assert len(sysdoc[phase]["members"]) == masters
        leader = [m for m in sysdoc[phase]["members"].values() if m["role"] == "leader"]
        assert len(leader) == 1
        _positive(leader[0], "fsync", "mean_ms")
        _positive(leader[0], "cpu_s")
        _positive(sysdoc, phase, "server_cpu_ms_per_write")
        _positive(sysdoc, phase, "client_cpu_ms_per_write")
    assert sysdoc["concurrent"]["clients"] == 16
    assert sysdoc["pipelined"]["window"] == 64
    assert sysdoc["sequential_follower"]["target"] != sysdoc["sequential_leader"]["target"]
    fo = sysdoc["failover"]
    assert len(fo["rounds"]) == 2
    for q in ("min_ms", "median_ms", "max_ms"):
        _positive(fo, "summary", q)
    for r in fo["rounds"]:
        assert r["term_after"] > r["term_before"], r
    assert set(sysdoc["busy_max"]) == {"other_masters", "pytest_processes", "other_etcd"}
    el = sysdoc["elections_without_fault"]
    assert isinstance(el["count"], int) and el["count"] >= 0
    assert el["how"]


def _check_profile(sysdoc: dict[str, Any]) -> None:
    for path in ("leader", "follower"):
        steps = sysdoc["profile"][path]
        names = [s["step"] for s in steps]
        assert "client round trip (mean)" in names
        assert "append + fsync on the leader" in names
        for s in steps:
            assert s["how"], s
            if s["ms"] is None:  # never invented: says why it is missing
                assert s["how"].startswith(("not measurable", "not applicable", "no obs")), s
            else:
                assert s["how"].startswith(("measured", "derived")), s


def test_document_names_parameters_machine_and_configuration(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, _ = quick_run
    assert {"benchmark", "parameters", "machine", "runs", "plot"} <= doc.keys()
    assert doc["parameters"]["quick"] is True
    assert doc["parameters"]["value_size"] == 1024
    m = doc["machine"]
    assert m["python"] and m["cpu_count"] >= 1
    _positive(m, "workdir_fsync_ms", "p50_ms")
    (run,) = doc["runs"]
    assert (run["masters"], run["timers"]) == (3, "demo")
    assert (run["heartbeat_ms"], run["election_ms"]) == (100, 600)


def test_kubelab_figures_are_all_there_and_positive(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, _ = quick_run
    kube = doc["runs"][0]["systems"]["kubelab"]
    _check_system(kube, 3)
    _check_profile(kube)
    # kubelab exposes its proposal latency: the profile has a measured figure for it.
    steps = {s["step"]: s for s in kube["profile"]["leader"]}
    _positive(steps["propose -> applied, on the member written to"], "ms")


def test_etcd_is_compared_or_the_skip_says_how_to_install_it(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, printed = quick_run
    run = doc["runs"][0]
    etcd = run["systems"]["etcd"]
    if not HAVE_ETCD:
        assert "apt-get install -y etcd-server" in etcd["skipped"]
        assert "skipping the comparison" in printed
        assert "comparison" not in run
        return
    _check_system(etcd, 3)
    _check_profile(etcd)
    assert doc["machine"]["etcd_version"]
    ratios = run["comparison"]["ratios"]
    for key in ("sequential_leader_p50", "concurrent_throughput", "failover_median"):
        _positive(ratios, key)
    for t in run["comparison"]["targets"].values():
        assert t["met"] in (True, False) and t["target"]
    assert "kubelab/etcd" in printed


def test_progress_table_and_plot(quick_run: tuple[dict[str, Any], str]) -> None:
    doc, printed = quick_run
    for n in range(1, 7):
        assert f"phase {n}/6" in printed
    assert "sequential -> leader" in printed and "p99 ms" in printed
    assert "per-write profile" in printed
    svg = Path(doc["plot"])
    assert svg.suffix == ".svg" and svg.parent == Path(doc["machine"]["workdir"]).parent / "results"
    text = svg.read_text()
    assert text.startswith("<svg") and text.count("<path") >= 4


def test_interrupted_run_stops_every_process(tmp_path: Path) -> None:
    """SIGTERM in the middle of a run: the benchmark stops its cluster before exiting."""
    work = tmp_path / "work"
    argv = [*KUBELAB, "bench", "quorum", "--quick", "--workdir", str(work)]
    output, code, left, leaked = interrupt_at(argv, _env(tmp_path), work, "phase 2/6")
    assert code != 0, output
    assert not left, f"still running after the interrupted benchmark: {left}\n{output}"
    assert not leaked


# -- the pure pieces ---------------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 100) == 4.0
    s = stats.summarize_latencies([0.001, 0.002, 0.003])
    assert (s["count"], s["p50_ms"], s["max_ms"]) == (3, 2.0, 3.0)
    assert stats.summarize_values([700.0, 600.0, 900.0])["median_ms"] == 700.0
    pts = stats.cdf_points([i / 1000 for i in range(1, 1001)], points=50)
    assert len(pts) <= 50 and pts[0] == (1.0, 0.001) and pts[-1] == (1000.0, 1.0)
    assert stats.ratio(3.0, 2.0) == 1.5 and stats.ratio(1.0, 0) is None


def test_prometheus_text_is_read_with_labels_summed() -> None:
    text = (
        "# HELP x_seconds a histogram\n"
        'x_seconds_bucket{le="0.1"} 3.0\n'
        "x_seconds_count 4.0\n"
        "x_seconds_sum 0.5\n"
        'peer_rtt_count{To="a"} 2\n'
        'peer_rtt_count{To="b"} 3\n'
        "kubelab_raft_elections_total 2.0 1700000000000\n"
    )
    s = probes.parse_prometheus(text)
    assert s["x_seconds_count"] == 4.0
    assert s["kubelab_raft_elections_total"] == 2.0
    assert probes.series_total(s, "peer_rtt_count") == 5.0
    before = {"x_seconds_count": 1.0, "x_seconds_sum": 0.1}
    h = probes.hist_delta(before, s, "x_seconds")
    assert h is not None and h.count == 3.0 and h.mean_ms == pytest.approx(133.333, abs=0.01)
    assert probes.counter_delta(None, s, "kubelab_raft_elections_total") == 2.0
    assert probes.counter_delta(before, s, "absent") is None


def test_table_aligns_columns_and_svg_has_one_line_per_series() -> None:
    out = table(["name", "ms"], [["a", "1.5"], ["longer", "10.25"]]).splitlines()
    assert out[0].index("ms") + 2 == len(out[0]) and out[2].endswith("  1.5")
    assert len({len(line) for line in out[1:]}) == 1
    svg = cdf_svg({"3 members": {"kubelab": {"concurrent": [0.001, 0.002]}, "etcd": {}}})
    assert svg.count("<path") == 1 and "kubelab: concurrent clients" in svg
