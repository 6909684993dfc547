"""Linearizability testing of the replicated store: record what concurrent clients saw,
then search for a legal sequential order (Wing & Gong; Lowe; porcupine; Knossos).

A chaos test runs a few asyncio clients against the real cluster while faults are injected.
Each client wraps every call in a `Recorder` (history.py explains the three outcomes: ok,
fail — dropped — and unknown). At the end, `check(recorder.history())` decides, per key,
whether some order of the operations, each placed inside its [invoke, complete] interval,
is a legal run of a register (model.py; checker.py explains the search and its pruning).

    result = check(recorder.history(), timeout_s=60)
    if not result.passed:
        recorder.save(artifact_dir / "history.json")   # re-check with `python -m ...`
    assert result.passed, result.render()

Indeterminate operations: a call whose outcome is unknown (deadline, lost connection) may
take effect at any time after its invocation, even after the client moved on, or never. The
checker gives it an open-ended interval and does not require it to be placed.

Verdicts: `result.ok` is True (linearizable), False (a violation, explained by key: the
longest linearizable prefix and the operations that could not come next), or None (the
checker gave up at its deadline or state budget). None is not a pass: use `result.passed`.
"""

from controlplane.linearizability.checker import (
    DEFAULT_MAX_STATES,
    DEFAULT_TIMEOUT_S,
    Explanation,
    KeyResult,
    Result,
    Verdict,
    check,
)
from controlplane.linearizability.history import (
    HistoryError,
    Operation,
    OpKind,
    Value,
    dump_history,
    history_from_json,
    history_to_json,
    load_history,
)
from controlplane.linearizability.model import REGISTER, Model, RegisterModel
from controlplane.linearizability.recorder import Call, Recorder

__all__ = [
    "DEFAULT_MAX_STATES",
    "DEFAULT_TIMEOUT_S",
    "REGISTER",
    "Call",
    "Explanation",
    "HistoryError",
    "KeyResult",
    "Model",
    "OpKind",
    "Operation",
    "Recorder",
    "RegisterModel",
    "Result",
    "Value",
    "Verdict",
    "check",
    "dump_history",
    "history_from_json",
    "history_to_json",
    "load_history",
]
