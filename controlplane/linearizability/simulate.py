"""Seeded histories of a correct register, for testing the checker and measuring it.

`random_history` plays a real sequential execution: clients invoke operations one after the
other with random latencies, each operation takes effect at a random point inside its
interval, and outputs are computed by applying the operations in that order to a register
per key. The result is linearizable by construction; corrupting one output is the way to
build histories that are not.

Some operations end with an unknown outcome; of those, about half took effect (at a point
that may be long after the client gave up) and half never did. A client carries on after an
unknown outcome, as a real client that gave up waiting does. Values are unique ("v<n>"), so a
read's value names the write it observed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from controlplane.linearizability.history import Operation, OpKind, Value


@dataclass(frozen=True, slots=True)
class Workload:
    """The mix of a random history. Rates are probabilities; reads take the rest."""

    clients: int = 5
    operations: int = 300
    keys: int = 1
    write_rate: float = 0.3
    cas_rate: float = 0.2
    delete_rate: float = 0.05
    unknown_rate: float = 0.05
    max_latency: int = 1_000_000  # ns, from invoke to effect and from effect to completion
    max_think: int = 200_000  # ns between a completion and the client's next invoke

    def validate(self) -> None:
        """Raise ValueError naming the field and the constraint it breaks."""
        for name in ("clients", "operations", "keys", "max_latency"):
            if getattr(self, name) < 1:
                raise ValueError(f"Workload.{name} must be >= 1")
        if self.max_think < 0:
            raise ValueError("Workload.max_think must be >= 0")
        for name in ("write_rate", "cas_rate", "delete_rate", "unknown_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Workload.{name} must be in [0, 1]")
        if self.write_rate + self.cas_rate + self.delete_rate > 1.0:
            raise ValueError("Workload: write_rate + cas_rate + delete_rate must be <= 1")


def random_history(seed: int, workload: Workload | None = None) -> list[Operation]:
    """A linearizable history of `workload`, the same for the same seed."""
    w = workload or Workload()
    w.validate()
    rng = random.Random(seed)
    ready = [rng.randrange(w.max_think + 1) for _ in range(w.clients)]
    # (effect time, seq, client, kind, key, invoke, complete or None, takes effect)
    planned: list[tuple[int, int, int, OpKind, str, int, int | None, bool]] = []
    for seq in range(w.operations):
        client = min(range(w.clients), key=lambda c: (ready[c], rng.random()))
        invoke = ready[client]
        effect = invoke + rng.randrange(w.max_latency)
        complete = effect + rng.randrange(w.max_latency)
        ready[client] = complete + rng.randrange(w.max_think + 1)
        unknown = rng.random() < w.unknown_rate
        if unknown:  # it may take effect long after the client gave up
            effect = invoke + rng.randrange(5 * w.max_latency)
        x = rng.random()
        if x < w.write_rate:
            kind = OpKind.WRITE
        elif x < w.write_rate + w.cas_rate:
            kind = OpKind.CAS
        elif x < w.write_rate + w.cas_rate + w.delete_rate:
            kind = OpKind.DELETE
        else:
            kind = OpKind.READ
        key = f"k{rng.randrange(w.keys)}"
        takes_effect = not unknown or rng.random() < 0.5
        planned.append(
            (effect, seq, client, kind, key, invoke, None if unknown else complete, takes_effect)
        )
    planned.sort()

    registers: dict[str, Value] = {}
    written: dict[str, list[str]] = {}
    history: list[tuple[int, Operation]] = []
    for _effect, seq, client, kind, key, invoke, completed, takes_effect in planned:
        state = registers.get(key)
        value: Value = None
        expected: Value = None
        succeeded: bool | None = None
        if kind is OpKind.READ:
            value = state if completed is not None else None
        elif kind is OpKind.WRITE:
            value = f"v{seq}"
        elif kind is OpKind.CAS:
            value = f"v{seq}"
            # Expect the current value half of the time, else an older one (or absent).
            older = written.get(key, [])
            current = rng.random() < 0.5 or not older
            expected = state if current else rng.choice([None, *older[-3:]])
            if completed is not None:
                succeeded = state == expected
        if takes_effect and kind is not OpKind.READ:
            if kind is OpKind.WRITE or (kind is OpKind.CAS and state == expected):
                registers[key] = value
                written.setdefault(key, []).append(f"v{seq}")
            elif kind is OpKind.DELETE:
                registers[key] = None
        op = Operation(client, kind, key, invoke, completed, value, expected, succeeded)
        history.append((seq, op))
    history.sort(key=lambda t: t[0])  # in invocation order per client, as a recorder would
    return [op for _, op in history]


# Corruptions: each changes one output of a linearizable history (from `random_history`,
# whose values are unique) so that the history is certainly not linearizable, and returns
# (the index of the operation changed, the new history); None if the history has no spot.


def corrupt_never_written(history: list[Operation]) -> tuple[int, list[Operation]] | None:
    """A read in the second half returns a value that nothing wrote."""
    for i in range(len(history) // 2, len(history)):
        op = history[i]
        if op.kind is OpKind.READ and not op.unknown:
            return i, _with(history, i, replace(op, value="never-written"))
    return None


def corrupt_stale_read(history: list[Operation]) -> tuple[int, list[Operation]] | None:
    """A read returns the value of a write w1 although a write w2 invoked after w1 completed
    had completed before the read was invoked (the classic stale read)."""
    for i in range(len(history) // 2, len(history)):
        r = history[i]
        if r.kind is not OpKind.READ or r.unknown:
            continue
        before = _completed_writes(history, r.key, r.invoke_ns)
        for w2, _ in reversed(before):
            older = [w for w, done in before if done < w2.invoke_ns]
            if older and older[-1].value != r.value:
                return i, _with(history, i, replace(r, value=older[-1].value))
    return None


def corrupt_lost_write(history: list[Operation]) -> tuple[int, list[Operation]] | None:
    """A read returns "absent" after a write completed, on a key nothing ever deletes."""
    for i in range(len(history) // 2, len(history)):
        r = history[i]
        if r.kind is not OpKind.READ or r.unknown or r.value is None:
            continue
        deletes = any(
            op.key == r.key
            and (op.kind is OpKind.DELETE or op.kind is OpKind.CAS)
            and op.value is None
            for op in history
        )
        if not deletes and _completed_writes(history, r.key, r.invoke_ns):
            return i, _with(history, i, replace(r, value=None))
    return None


def _completed_writes(history: list[Operation], key: str, by: int) -> list[tuple[Operation, int]]:
    """The determinate writes of `key` completed before `by`, with their completion times,
    in history order."""
    return [
        (op, op.complete_ns)
        for op in history
        if op.kind is OpKind.WRITE
        and op.key == key
        and op.complete_ns is not None
        and op.complete_ns < by
    ]


def _with(history: list[Operation], i: int, op: Operation) -> list[Operation]:
    out = list(history)
    out[i] = op
    return out
