"""Errors of the Raft node: configuration, codecs and durable storage.

`StorageError` and its subclasses mean the member's durable state (WAL, snapshots) cannot be
used as it is. None is retryable: a member must not rejoin its cluster with a log it cannot
trust, because it could vote or acknowledge against what it promised before. The messages say
which file is at fault and what an operator should do.
"""

from __future__ import annotations

from pathlib import Path

RESTORE_HINT = (
    "this member's log cannot be trusted: move its data directory aside and restore the member "
    "from a healthy peer"
)


class RaftNodeError(Exception):
    """Base class of every error raised by `controlplane.raftnode`."""

    retryable = False


class ConfigError(RaftNodeError, ValueError):
    """A configuration value is invalid; the message names the key and the constraint."""


class CodecError(RaftNodeError):
    """A protobuf message does not decode to a valid core value (e.g. an unknown enum value)."""


class StorageError(RaftNodeError):
    """The durable state of the member (WAL or snapshots) cannot be used as it is."""


class WALCorrupted(StorageError):
    """A WAL record before the torn tail failed its checks, or the log it holds is inconsistent.

    `path` and `offset` locate the bad record (the offset of its first header byte).
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"WAL corrupted: {reason} (file {path}, offset {offset}); {RESTORE_HINT}")


class WALNotFound(StorageError):
    """There is no WAL in the directory (a new member must be created, not opened)."""


class WALExists(StorageError):
    """`WAL.create` found a WAL already in the directory; refusing to overwrite it."""


class WALLocked(StorageError):
    """Another process (or another `WAL` in this one) has the WAL open."""


class WALClosed(RaftNodeError):
    """The WAL was used after `close()`."""


class SnapshotNotFound(StorageError):
    """The WAL does not record the snapshot asked for, or the log needs a snapshot whose file
    is missing or corrupt."""


class SnapshotCorrupted(StorageError):
    """A snapshot file failed its checksum or does not decode."""


class WALFailed(StorageError):
    """A write or sync failed. The WAL is closed and its tail may be torn (the next `open`
    repairs it): stop the member and restart it; an fsync error cannot be retried safely."""
