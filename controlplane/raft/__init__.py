"""The Raft consensus core: a pure, deterministic state machine with no I/O.

It imports no asyncio, grpc, socket, time or os (tests/raft/test_purity.py checks this).
Time is counted in ticks, randomness comes from a seeded RNG in `Config`, and all effects
are returned to the driver as a `Ready` (see `rawnode`).
"""

from .config import Config, PlantedBug
from .errors import (
    Compacted,
    ConfigError,
    ProposalDropped,
    RaftError,
    SnapOutOfDate,
    SnapshotTemporarilyUnavailable,
    StepLocalMessage,
    StepPeerNotFound,
    Unavailable,
)
from .progress import ProgressState
from .raft import CAMPAIGN_TRANSFER, Raft, Status
from .rawnode import RawNode
from .readonly import ReadOnlyOption
from .storage import NO_LIMIT, MemoryStorage, Storage
from .types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    NONE,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)

__all__ = [
    "CAMPAIGN_TRANSFER",
    "EMPTY_HARD_STATE",
    "EMPTY_SNAPSHOT",
    "NONE",
    "NO_LIMIT",
    "Compacted",
    "ConfState",
    "Config",
    "ConfigError",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "PlantedBug",
    "ProgressState",
    "ProposalDropped",
    "Raft",
    "RaftError",
    "RawNode",
    "ReadOnlyOption",
    "ReadState",
    "Ready",
    "SnapOutOfDate",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "StateType",
    "Status",
    "StepLocalMessage",
    "StepPeerNotFound",
    "Storage",
    "Unavailable",
]
