"""scripts/bench_raft.py runs end to end and writes the JSON its readers rely on.

Smoke test only: the figures must exist and be positive, never above or below a threshold
(these machines are too noisy for speed assertions).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    f"{mode}/{size}"
    for mode in ("sequential", "pipelined", "batched-1", "batched-8", "batched-64")
    for size in ("1KiB", "100B")
}
CORE_PHASES = ("propose", "step", "ready", "advance")
HARNESS_PHASES = ("persist", "apply", "send", "delivery")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_raft", ROOT / "scripts" / "bench_raft.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_raft"] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


bench_raft = _load()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One --quick run shared by the tests below: its JSON document and printed output."""
    out = tmp_path_factory.mktemp("bench") / "nested" / "raft-core.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert bench_raft.main(["--quick", "--json", str(out)]) == 0
    return json.loads(out.read_text()), printed.getvalue()


def test_json_has_machine_parameters_and_every_workload(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """The document names the machine, the parameters and one result per workload."""
    doc, _ = quick_run
    assert {"machine", "parameters", "phases", "results"} <= doc.keys()
    assert doc["machine"]["python"]
    assert doc["machine"]["cpu_count"] >= 1
    params = doc["parameters"]
    assert params["quick"] is True
    assert params["nodes"] == 3
    assert params["seconds"] > 0
    assert params["payload_sizes"] == [1024, 100]
    assert params["batch_sizes"] == [1, 8, 64]
    assert {r["workload"] for r in doc["results"]} == WORKLOADS


def test_throughput_and_cpu_per_entry_are_positive(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """Every workload committed entries on all nodes and was charged CPU time for them."""
    doc, _ = quick_run
    for r in doc["results"]:
        assert r["entries"] > 0, r["workload"]
        assert r["proposals_per_second"] > 0, r["workload"]
        assert r["cpu_us_per_entry"] > 0, r["workload"]
        assert r["messages_per_entry"] > 0, r["workload"]


def test_phase_breakdown_covers_core_and_harness(quick_run: tuple[dict[str, Any], str]) -> None:
    """The per-step breakdown has a positive figure for each core and harness step."""
    doc, _ = quick_run
    for r in doc["results"]:
        phases = r["phases"]
        assert set(phases["us_per_entry"]) == set(doc["phases"])
        for key in (*CORE_PHASES, *HARNESS_PHASES):
            assert phases["us_per_entry"][key] > 0, (r["workload"], key)
        assert phases["core_us_per_entry"] > 0
        assert phases["harness_us_per_entry"] > 0
        assert phases["total_us_per_entry"] > 0


def test_profile_lists_top_functions(quick_run: tuple[dict[str, Any], str]) -> None:
    """The cProfile summary ranks functions by cumulative and by self time."""
    doc, _ = quick_run
    for r in doc["results"]:
        profile = r["profile"]
        assert profile["entries"] > 0
        for ranking in ("top_cumulative", "top_self"):
            rows = profile[ranking]
            assert rows, (r["workload"], ranking)
            assert all(row["function"] and row["calls"] > 0 for row in rows)
        assert any("controlplane/raft/" in row["function"] for row in profile["top_self"])


def test_prints_one_table_row_per_workload(quick_run: tuple[dict[str, Any], str]) -> None:
    """The printed table has a row for each workload, in both the summary and the breakdown."""
    _, text = quick_run
    lines = text.splitlines()
    for name in WORKLOADS:
        assert sum(line.startswith(name + " ") for line in lines) == 2, name


def test_rejects_non_positive_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad parameter is reported by name, with exit status 2."""
    assert bench_raft.main(["--seconds", "0"]) == 2
    assert "seconds" in capsys.readouterr().err
