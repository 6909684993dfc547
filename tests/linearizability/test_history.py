"""Operations are validated on construction; histories survive a JSON round trip; the
`python -m controlplane.linearizability` entry point re-checks a saved history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.linearizability import (
    HistoryError,
    Operation,
    OpKind,
    check,
    dump_history,
    history_from_json,
    history_to_json,
    load_history,
)
from controlplane.linearizability.__main__ import main
from controlplane.linearizability.simulate import Workload, random_history

from .builders import r, w

INVALID: dict[str, dict[str, Any]] = {
    "completes before invoked": {"kind": OpKind.WRITE, "value": "a", "complete_ns": -1},
    "write without a value": {"kind": OpKind.WRITE},
    "delete with a value": {"kind": OpKind.DELETE, "value": "a"},
    "read with expected": {"kind": OpKind.READ, "expected": "a"},
    "unknown read with output": {"kind": OpKind.READ, "value": "a", "complete_ns": None},
    "determinate cas without succeeded": {"kind": OpKind.CAS, "value": "b"},
    "unknown cas with succeeded": {
        "kind": OpKind.CAS,
        "value": "b",
        "succeeded": True,
        "complete_ns": None,
    },
    "kind is a plain string": {"kind": "write", "value": "a"},
}


@pytest.mark.parametrize("fields", INVALID.values(), ids=INVALID.keys())
def test_invalid_operation_is_refused(fields: dict[str, Any]) -> None:
    """An operation whose fields do not fit its kind raises HistoryError."""
    args: dict[str, Any] = {"client": 0, "key": "k", "invoke_ns": 0, "complete_ns": 1} | fields
    with pytest.raises(HistoryError):
        Operation(**args)


def test_json_round_trip() -> None:
    """A history, with unknown outcomes and metadata, reads back equal."""
    history = random_history(7, Workload(operations=200, keys=3, unknown_rate=0.2))
    text = history_to_json(history, meta={"seed": 7, "test": "round trip"})
    ops, meta = history_from_json(text)
    assert ops == history
    assert meta == {"seed": 7, "test": "round trip"}
    assert json.loads(text)["format"] == "kubelab.linearizability/v1"


def test_non_utf8_values_round_trip(tmp_path: Path) -> None:
    """Keys and values that were bytes (decoded with surrogateescape) survive the file."""
    key = b"\xff/k".decode("utf-8", "surrogateescape")
    history = [w(0, "\udcfe", 0, 1, key=key), r(1, "\udcfe", 2, 3, key=key)]
    path = dump_history(history, tmp_path / "h.json")
    assert load_history(path) == history


BAD_FILES: dict[str, str] = {
    "not JSON": "{",
    "no format": '{"operations": []}',
    "operations not a list": '{"format": "kubelab.linearizability/v1", "operations": {}}',
    "missing key": '{"format": "kubelab.linearizability/v1", "operations": '
    '[{"client": 0, "kind": "read", "invoke_ns": 0, "complete_ns": 1}]}',
    "bad kind": '{"format": "kubelab.linearizability/v1", "operations": '
    '[{"client": 0, "kind": "incr", "key": "k", "invoke_ns": 0}]}',
    "bool as a time": '{"format": "kubelab.linearizability/v1", "operations": '
    '[{"client": 0, "kind": "read", "key": "k", "invoke_ns": true}]}',
    "inconsistent operation": '{"format": "kubelab.linearizability/v1", "operations": '
    '[{"client": 0, "kind": "write", "key": "k", "invoke_ns": 0, "complete_ns": 1}]}',
}


@pytest.mark.parametrize("text", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_refused(text: str) -> None:
    """A file that is not a valid history raises HistoryError, never a verdict."""
    with pytest.raises(HistoryError):
        history_from_json(text)


def test_missing_optional_fields_default_to_none() -> None:
    """Optional fields may be left out of the file (hand-written histories)."""
    text = (
        '{"format": "kubelab.linearizability/v1", "operations": '
        '[{"client": 0, "kind": "read", "key": "k", "invoke_ns": 0, "complete_ns": 1}]}'
    )
    assert history_from_json(text)[0] == [r(0, None, 0, 1)]


# -- the command line -------------------------------------------------------------------------


def test_cli_check_linearizable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE` exits 0 and says so for a linearizable history."""
    path = dump_history(random_history(1), tmp_path / "h.json")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.startswith("linearizable: 1 key, 300 operations")


def test_cli_check_violation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE` exits 1 and prints the explanation for a violation."""
    history = [w(0, "a", 0, 1), w(1, "b", 2, 3), r(2, "a", 4, 5)]
    path = dump_history(history, tmp_path / "h.json")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("NOT LINEARIZABLE")
    assert "#2 completed, but nothing invoked before then can come next" in out


def test_cli_check_gave_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE` exits 3 (not 0) when the checker gives up."""
    path = dump_history(random_history(1), tmp_path / "h.json")
    assert main(["check", str(path), "--max-states", "3"]) == 3
    assert capsys.readouterr().out.startswith("GAVE UP (a failure)")


def test_cli_check_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE` exits 2 for a missing or malformed file."""
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "bad.json").write_text("[]")
    assert main(["check", str(tmp_path / "bad.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_bench(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench` checks random histories and their corruptions, and exits 0 when all verdicts
    are right."""
    assert main(["bench", "--ops", "60", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 clients, 60 operations on 1 key(s), 5% unknown outcomes, 2 seeds" in out
    for name in ("linearizable", "never written", "stale read", "lost write"):
        assert name in out


def test_check_accepts_a_loaded_history(tmp_path: Path) -> None:
    """What `dump_history` wrote, `check` reads back to the same verdict."""
    history = random_history(3, Workload(unknown_rate=0.3))
    assert check(load_history(dump_history(history, tmp_path / "h.json"))).passed
