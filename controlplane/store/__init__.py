"""The replicated state machine: an etcd-like MVCC key-value store and its watch hub.

`mvcc.Store` holds the keyspace with its history and applies committed log entries
(`storepb.Request`); `watch.WatchHub` feeds watchers from the store's writes and history;
`errors` names what can go wrong. Everything here is pure and synchronous (no clocks,
threads or I/O): the Raft node drives it and the API layer serves it.
"""

from __future__ import annotations

from .errors import (
    Compacted,
    FutureRevision,
    InvalidRequest,
    InvalidSnapshot,
    SlowWatcher,
    StoreError,
    WatcherFailed,
)
from .mvcc import (
    ALL_KEYS,
    MAX_TXN_OPS,
    Change,
    Revision,
    Store,
    compaction_target,
    prefix_end,
    txn_is_read_only,
)
from .watch import Watcher, WatchHub, change_to_event

__all__ = [
    "ALL_KEYS",
    "MAX_TXN_OPS",
    "Change",
    "Compacted",
    "FutureRevision",
    "InvalidRequest",
    "InvalidSnapshot",
    "Revision",
    "SlowWatcher",
    "Store",
    "StoreError",
    "WatchHub",
    "Watcher",
    "WatcherFailed",
    "change_to_event",
    "compaction_target",
    "prefix_end",
    "txn_is_read_only",
]
