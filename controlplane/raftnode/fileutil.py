"""Small durable-file helpers shared by the WAL and the snapshotter."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import WALLocked


def write_file(path: Path, data: bytes, fsync: bool) -> None:
    """Create (or truncate) `path` with `data`; synced to disk when `fsync`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Sync a directory, making the creation, renaming or removal of its entries durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_dir(path: Path) -> int:
    """Open `path` and take an exclusive flock on it; return the fd (closing it unlocks).

    `WALLocked` if another open file description holds the lock (another process, or another
    object in this one).
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WALLocked(f"{path} is in use by another process") from None
    return fd
