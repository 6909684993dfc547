"""Sequential specifications for the checker: a `Model` says which operation is legal in
which state, and what state follows.

The checker calls `step(state, op)` for an operation it tries to linearize next. The
model must be deterministic and its states hashable and compared by value: the checker
memoizes (set of linearized operations, state) pairs, so two equal states must mean the same
future. A step depends on the operation's kind, arguments and output only, never on its
client or its times: the checker treats indeterminate operations with the same kind and
arguments as interchangeable.

An indeterminate operation (`op.unknown`) has no output: its step must be legal in every
state, and its effect must follow from its arguments and the state alone (a compare-and-swap
with unknown outcome swaps if and only if the state holds the expected value). Whether it
took effect at all is the checker's business: it may leave it out.

`read_only`, `blind` and `only_state` describe operations so that the checker can prune its
search (checker.py, reductions b-d). They must never claim more than is true; the cautious
answers (False, False, None) are always correct, only slower.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from controlplane.linearizability.history import Operation, OpKind, Value

S = TypeVar("S")


class Model(Protocol[S]):
    """A sequential object, e.g. one register. States must be hashable and immutable."""

    def init(self) -> S:
        """The state before any operation."""
        ...

    def step(self, state: S, op: Operation) -> tuple[bool, S]:
        """(whether `op` with its recorded output is legal in `state`, the next state)."""
        ...

    def read_only(self, op: Operation) -> bool:
        """True if `op` never changes the state (a read): an indeterminate one is dropped,
        and no indeterminate blind operation is placed right before a determinate one that is
        legal without it (it could as well come after)."""
        ...

    def blind(self, op: Operation) -> bool:
        """True if `op` is legal in every state and the next state does not depend on the
        state (a write): the checker then tries an indeterminate `op` only right before an
        operation that is not blind, since a blind write that nothing observes is useless."""
        ...

    def only_state(self, op: Operation) -> tuple[S] | None:
        """For an operation that is not blind: `(s,)` if `s` is the one state in which `op`
        is legal and (when indeterminate) changes the state; None if there may be several.
        An optimization: the checker then pairs with `op` only the indeterminate blind
        operations that leave `s`. None is always correct."""
        ...

    def describe_state(self, state: S) -> str:
        """The state, for explanations."""
        ...


class RegisterModel:
    """A key of the store as a register: read, write, delete (write None), compare-and-swap.

    The state is the value, None when the key is absent (the initial state).
    """

    def init(self) -> Value:
        return None

    def step(self, state: Value, op: Operation) -> tuple[bool, Value]:
        kind = op.kind
        if kind is OpKind.READ:
            return op.unknown or op.value == state, state
        if kind is OpKind.WRITE:
            return True, op.value
        if kind is OpKind.DELETE:
            return True, None
        # compare-and-swap
        if op.succeeded is None:  # outcome unknown: the state decides
            return True, op.value if state == op.expected else state
        if op.succeeded:
            return state == op.expected, op.value
        return state != op.expected, state

    def read_only(self, op: Operation) -> bool:
        return op.kind is OpKind.READ or (op.kind is OpKind.CAS and op.succeeded is False)

    def blind(self, op: Operation) -> bool:
        return op.kind is OpKind.WRITE or op.kind is OpKind.DELETE

    def only_state(self, op: Operation) -> tuple[Value] | None:
        if op.kind is OpKind.READ and not op.unknown:
            return (op.value,)
        if op.kind is OpKind.CAS and op.succeeded is not False:  # succeeded, or unknown
            return (op.expected,)
        return None  # a failed cas: legal in every state but one

    def describe_state(self, state: Value) -> str:
        return "absent" if state is None else repr(state)


REGISTER = RegisterModel()
"""The default model of `check`."""
