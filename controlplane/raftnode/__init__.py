"""The Raft node: what runs the pure core (`controlplane.raft`) against the real world.

So far: durable storage (`DiskStorage` = `MemoryStorage` cache + `WAL` + `Snapshotter`, as
in etcd) and the protobuf codec. The asyncio driver and the transports come next.
"""

from __future__ import annotations

from .disk import DiskStorage, DiskStorageConfig
from .errors import (
    CodecError,
    ConfigError,
    RaftNodeError,
    SnapshotCorrupted,
    SnapshotNotFound,
    StorageError,
    WALClosed,
    WALCorrupted,
    WALExists,
    WALFailed,
    WALLocked,
    WALNotFound,
)
from .snap import Snapshotter
from .wal import WAL, Recovered, WalSnapshot

__all__ = [
    "WAL",
    "CodecError",
    "ConfigError",
    "DiskStorage",
    "DiskStorageConfig",
    "RaftNodeError",
    "Recovered",
    "SnapshotCorrupted",
    "SnapshotNotFound",
    "Snapshotter",
    "StorageError",
    "WALClosed",
    "WALCorrupted",
    "WALExists",
    "WALFailed",
    "WALLocked",
    "WALNotFound",
    "WalSnapshot",
]
