"""Errors of the API layer and the one table that maps domain errors to gRPC status codes.

DESIGN.md's write contract, as codes:
- `NoLeader`: no leader appeared within the bounded wait; nothing was proposed, so any
  client may retry any call. UNAVAILABLE "no leader".
- `OutcomeUnknown`: the proposal may have been sent and its fate is unknown (the leader
  changed, the deadline passed). UNAVAILABLE "outcome unknown"; the server never retries
  it and clients retry only idempotent calls.
"""

from __future__ import annotations

import grpc

from controlplane.raft.errors import ProposalDropped
from controlplane.raftnode.node import NodeStopped
from controlplane.store import errors as store_errors


class APIError(Exception):
    """Base class of the API layer's own errors."""

    retryable = False


class NoLeader(APIError):
    retryable = True

    def __init__(self, waited: float) -> None:
        super().__init__(
            f"no leader: none elected within {waited:.1f} s (a quorum of masters may be down "
            "or partitioned); nothing was proposed, safe to retry"
        )


class OutcomeUnknown(APIError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"outcome unknown: {detail}; the write may or may not have been applied "
            "(retry only if it is idempotent)"
        )


class ReadUnavailable(APIError):
    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(f"linearizable read unavailable: {detail}; safe to retry")


class Unauthenticated(APIError):
    pass


# domain error class -> gRPC status code (most specific first)
_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (NoLeader, grpc.StatusCode.UNAVAILABLE),
    (OutcomeUnknown, grpc.StatusCode.UNAVAILABLE),
    (ReadUnavailable, grpc.StatusCode.UNAVAILABLE),
    (ProposalDropped, grpc.StatusCode.UNAVAILABLE),
    (NodeStopped, grpc.StatusCode.UNAVAILABLE),
    (store_errors.Compacted, grpc.StatusCode.OUT_OF_RANGE),
    (store_errors.FutureRevision, grpc.StatusCode.OUT_OF_RANGE),
    (store_errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
]


def status_code(err: BaseException) -> grpc.StatusCode | None:
    """The gRPC code for a domain error, or None if it is not one (then it is a bug)."""
    for cls, code in _CODES:
        if isinstance(err, cls):
            return code
    return None
