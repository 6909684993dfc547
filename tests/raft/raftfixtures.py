"""Small builders shared by the Raft core's unit tests (not a test module)."""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.raft import Config, Entry, HardState, MemoryStorage, Message, Raft, Snapshot
from controlplane.raft.types import SnapshotMetadata


def ents(*terms: int, start: int = 1) -> list[Entry]:
    """Entries with the given terms at consecutive indexes from `start`."""
    return [Entry(term=t, index=start + i) for i, t in enumerate(terms)]


def new_storage(
    entries: Iterable[Entry] = (),
    hard_state: HardState | None = None,
    snapshot: tuple[int, int] | None = None,
) -> MemoryStorage:
    """A MemoryStorage, optionally starting from a snapshot at (index, term)."""
    s = MemoryStorage()
    if snapshot is not None:
        s.apply_snapshot(Snapshot(metadata=SnapshotMetadata(index=snapshot[0], term=snapshot[1])))
    s.append(list(entries))
    if hard_state is not None:
        s.set_hard_state(hard_state)
    return s


def new_raft(
    id_: int = 1,
    peers: tuple[int, ...] = (1, 2, 3),
    election: int = 10,
    heartbeat: int = 1,
    storage: MemoryStorage | None = None,
    **kw: object,
) -> Raft:
    """A Raft node; pre-vote and check-quorum are off unless given (the paper has neither)."""
    opts: dict[str, object] = {"pre_vote": False, "check_quorum": False, **kw}
    cfg = Config(
        id=id_,
        voters=peers,
        election_tick=election,
        heartbeat_tick=heartbeat,
        seed=id_,
        **opts,  # type: ignore[arg-type]
    )
    return Raft(cfg, storage if storage is not None else new_storage())


def read_messages(r: Raft) -> list[Message]:
    msgs, r.msgs = r.msgs, []
    return msgs
