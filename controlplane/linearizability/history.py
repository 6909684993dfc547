"""Histories of register operations: what concurrent clients asked and what they were told.

An `Operation` is one call of one client on one key: its kind, its arguments, its outcome
and the interval `[invoke_ns, complete_ns]` measured by the recorder *around* the call (the
invoke timestamp is taken before the request is sent, the completion timestamp after the
response arrived), so that the operation's real effect happened somewhere inside.

Outcomes (the three answers a client of a replicated store can get):

- **ok**: the call returned; the history holds its output (the value read, whether a
  compare-and-swap swapped). The operation took effect exactly once inside its interval.
- **fail**: the call definitely did not happen (the server said "no leader", nothing was
  proposed). It is dropped from the history: it constrains nothing.
- **unknown** (indeterminate): a deadline, a lost connection, "outcome unknown". The
  operation may or may not have taken effect, at any time after its invocation, even long
  after the client gave up. Its `complete_ns` is None (an open-ended interval, +infinity)
  and its output is unknown (None). Only the arguments constrain the search.

Keys and values are text (`str`); bytes given to the recorder are decoded as UTF-8 with
`surrogateescape`, which is lossless and survives the JSON round trip. A value of None means
"absent": a read of a missing key returns None, a delete is a write of None, and a
compare-and-swap whose expected value is None succeeds only if the key is absent.

The JSON form (`dump_history`/`load_history`) is a test artifact: a failing history is saved
and re-checked with `python -m controlplane.linearizability check FILE.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

FORMAT = "kubelab.linearizability/v1"

Value = str | None
"""A register value; None is "absent"."""


class HistoryError(ValueError):
    """A malformed operation or history (a programming or file error, never a verdict)."""


class OpKind(StrEnum):
    READ = "read"
    WRITE = "write"
    CAS = "cas"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Operation:
    """One call on one key, as the client saw it.

    Fields by kind:

    - read: `value` is the value returned (None: absent, or unknown if the outcome is).
    - write: `value` is the value written (never None: use delete).
    - delete: `value` is None.
    - cas: `expected` is the value compared against (None: absent), `value` the new value,
      `succeeded` whether it swapped (None when the outcome is unknown).

    `complete_ns` is None for an indeterminate operation. Client ids are informational:
    the checker does not assume that a client waits for its previous call, so a client may
    carry on after an indeterminate call.
    """

    client: int
    kind: OpKind
    key: str
    invoke_ns: int
    complete_ns: int | None
    value: Value = None
    expected: Value = None
    succeeded: bool | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise HistoryError(f"invalid operation {self}: {problem}")

    def _problem(self) -> str:
        if not isinstance(self.kind, OpKind):
            return f"kind must be one of {[k.value for k in OpKind]}"
        if self.complete_ns is not None and self.complete_ns < self.invoke_ns:
            return "complete_ns is before invoke_ns"
        cas_only = self.expected is not None or self.succeeded is not None
        if self.kind is not OpKind.CAS and cas_only:
            return "expected and succeeded are for cas only"
        if self.kind is OpKind.WRITE and self.value is None:
            return "a write needs a value (use delete)"
        if self.kind is OpKind.DELETE and self.value is not None:
            return "a delete has no value"
        if self.kind is OpKind.READ and self.unknown and self.value is not None:
            return "an indeterminate read has no output"
        if self.kind is OpKind.CAS and (self.succeeded is None) != self.unknown:
            return "succeeded is None exactly when the outcome is unknown"
        return ""

    @property
    def unknown(self) -> bool:
        """True for an indeterminate operation (it may take effect at any time, or never)."""
        return self.complete_ns is None

    def describe(self) -> str:
        """A short rendering of the call and its output, e.g. `cas 'a'->'b' ok`."""
        kind = self.kind
        if kind is OpKind.READ:
            return "read -> ?" if self.unknown else f"read -> {self.value!r}"
        if kind is OpKind.WRITE:
            text = f"write {self.value!r}"
        elif kind is OpKind.DELETE:
            text = "delete"
        else:
            outcome = {None: "?", True: "ok", False: "failed"}[self.succeeded]
            text = f"cas {self.expected!r}->{self.value!r} {outcome}"
        return f"{text} (outcome unknown)" if self.unknown else text

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "kind": self.kind.value,
            "key": self.key,
            "invoke_ns": self.invoke_ns,
            "complete_ns": self.complete_ns,
            "value": self.value,
            "expected": self.expected,
            "succeeded": self.succeeded,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Operation:
        """Parse one operation; raises HistoryError naming the field that is wrong."""
        try:
            kind = OpKind(obj["kind"])
        except (KeyError, ValueError) as e:
            raise HistoryError(f"operation {dict(obj)}: bad or missing kind") from e
        none = type(None)
        return cls(
            client=_field(obj, "client", (int,)),
            kind=kind,
            key=_field(obj, "key", (str,)),
            invoke_ns=_field(obj, "invoke_ns", (int,)),
            complete_ns=_field(obj, "complete_ns", (int, none)),
            value=_field(obj, "value", (str, none)),
            expected=_field(obj, "expected", (str, none)),
            succeeded=_field(obj, "succeeded", (bool, none)),
        )


def _field(obj: Mapping[str, Any], name: str, types: tuple[type, ...]) -> Any:
    """obj[name] if it has one of `types` (a missing field is None, if None is allowed)."""
    if name not in obj and type(None) not in types:
        raise HistoryError(f"operation {dict(obj)}: missing {name}")
    v = obj.get(name)
    if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
        raise HistoryError(f"operation {dict(obj)}: {name} must be {types[0].__name__}")
    return v


def history_to_json(
    history: Iterable[Operation], meta: Mapping[str, Any] | None = None, *, indent: int = 1
) -> str:
    """The JSON text of a history; `meta` (seed, test name, cluster...) is kept verbatim."""
    doc = {
        "format": FORMAT,
        "meta": dict(meta or {}),
        "operations": [op.to_json() for op in history],
    }
    return json.dumps(doc, indent=indent)


def history_from_json(text: str) -> tuple[list[Operation], dict[str, Any]]:
    """Parse `history_to_json`'s output: (operations, meta). Raises HistoryError."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise HistoryError(f"not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HistoryError(f"not a history: the format field must be {FORMAT!r}")
    ops = doc.get("operations")
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise HistoryError("operations must be a list of objects")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise HistoryError("meta must be an object")
    return [Operation.from_json(o) for o in ops], meta


def dump_history(
    history: Sequence[Operation], path: Path | str, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write a history as JSON (e.g. as a failing test's artifact); returns the path."""
    p = Path(path)
    p.write_text(history_to_json(history, meta) + "\n")
    return p


def load_history(path: Path | str) -> list[Operation]:
    """Read a history written by `dump_history`. Raises HistoryError or OSError."""
    ops, _meta = history_from_json(Path(path).read_text())
    return ops
