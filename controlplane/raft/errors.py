"""Errors of the Raft core. Each says whether the caller may retry."""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error raised by the Raft core."""

    retryable = False


class ConfigError(RaftError, ValueError):
    """A configuration value is invalid; the message names the key and the constraint."""


class ProposalDropped(RaftError):
    """The proposal was not appended (no leader known, leadership transfer in progress, or
    the uncommitted log is full). Nothing was proposed, so it is safe to retry."""

    retryable = True


class StepLocalMessage(RaftError):
    """A local message type (MsgHup, MsgBeat, ...) was passed to `RawNode.step`."""


class StepPeerNotFound(RaftError):
    """A response message came from a node that is not in the configuration."""


class Compacted(RaftError):
    """The requested index is older than the storage's first index: it was compacted."""


class SnapOutOfDate(RaftError):
    """The snapshot is older than the one the storage already has."""


class Unavailable(RaftError):
    """The requested index is beyond the storage's last index."""


class SnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; the leader will retry later."""

    retryable = True
