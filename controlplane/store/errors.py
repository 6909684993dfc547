"""Errors of the MVCC store and its watch hub. Each says whether the caller may retry.

Every error raised while applying a log entry is deterministic: it depends only on the
store's state and the request, so every replica raises the same one for the same entry and
nothing is written (a failed request changes nothing but the applied index). The API layer
maps these classes to gRPC codes and Kubernetes `Status` reasons in one table
(`Compacted` is 410 Gone for Kubernetes watches, as in the Kubernetes API server).

`retryable` means "the same call may succeed later without changing it": `SlowWatcher` is
(watch again from `next_revision`). `Compacted` and `FutureRevision` are not retryable as
they are: the caller must pick another revision (relist and watch from the list's revision,
or wait until the store has caught up).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by `controlplane.store`."""

    retryable = False


class InvalidRequest(StoreError, ValueError):
    """The request is malformed (empty key, range_end before key, negative revision or limit,
    duplicate key in a transaction, ...); the message says which field and why. Sending the
    same request again fails the same way."""


class Compacted(StoreError):
    """The revision asked for is at or below the compaction point: its history is gone.

    `revision` is the revision asked for and `compact_revision` the store's compaction point.
    Reads work at `compact_revision` and later; watches must start after it (from
    `compact_revision + 1`). A Kubernetes client relists and watches from the list's revision.
    `op` is what was refused: "read", "watch" or "compact".
    """

    def __init__(self, revision: int, compact_revision: int, *, op: str = "read") -> None:
        self.revision = revision
        self.compact_revision = compact_revision
        self.op = op
        if op == "watch":
            detail = (
                f"cannot watch from revision {revision}: the history up to revision "
                f"{compact_revision} is gone; list again and watch from the list's revision + 1"
            )
        elif op == "compact":
            detail = (
                f"cannot compact at revision {revision}: the store is already compacted at "
                f"revision {compact_revision}"
            )
        else:
            detail = (
                f"cannot read at revision {revision}: the store is compacted at revision "
                f"{compact_revision}; read at revision {compact_revision} or later"
            )
        # etcd's text (ErrCompacted), then what to do about it
        super().__init__(f"mvcc: required revision has been compacted: {detail}")


class FutureRevision(StoreError):
    """The revision asked for is newer than the store's current revision (a replica that is
    behind, or a bad client). `revision` was asked; `current_revision` is the store's."""

    def __init__(self, revision: int, current_revision: int) -> None:
        self.revision = revision
        self.current_revision = current_revision
        super().__init__(
            f"mvcc: required revision is a future revision: revision {revision} is after the "
            f"current revision {current_revision}"
        )


class SlowWatcher(StoreError):
    """The hub cancelled a watcher whose unread events passed the limit. Events before
    `next_revision` were delivered (or are still buffered); watch again from `next_revision`
    to continue without a gap or a duplicate."""

    retryable = True

    def __init__(self, next_revision: int, limit: int) -> None:
        self.next_revision = next_revision
        self.limit = limit
        super().__init__(
            f"watch cancelled: the watcher fell behind by more than {limit} unread events; "
            f"watch again from revision {next_revision}"
        )


class WatcherFailed(StoreError):
    """The hub cancelled a watcher because its callback raised (a bug in the consumer; the
    store and the other watchers are unaffected). `next_revision` is the first revision the
    callback did not accept."""

    def __init__(self, next_revision: int, error: BaseException) -> None:
        self.next_revision = next_revision
        super().__init__(
            f"watch cancelled: the watcher's callback raised {type(error).__name__}: {error} "
            f"(at revision {next_revision})"
        )


class InvalidSnapshot(StoreError):
    """The bytes given to `Store.restore` are not a store snapshot this version can read (a
    corrupt file, or a newer format); the message says what is wrong."""
