"""ReadIndex bookkeeping on the leader (Raft thesis §6.4).

A read request records the commit index at the time it arrives, then the leader broadcasts a
heartbeat carrying the request's context. Once a quorum acknowledges that heartbeat, the
leader knows it was still the leader when the read arrived, so the recorded index is safe to
serve once applied. Requests are answered in arrival order: a quorum acknowledging a later
heartbeat also confirms every earlier pending request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .types import Message


class ReadOnlyOption(enum.Enum):
    SAFE = "safe"  # ReadIndex confirmed by a quorum heartbeat round (the default)
    LEASE_BASED = "lease-based"  # trusts the leader lease; unsafe under pauses and clock drift


@dataclass(slots=True)
class ReadIndexStatus:
    req: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    def __init__(self, option: ReadOnlyOption) -> None:
        self.option = option
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(req=m, index=index)
        self.queue.append(ctx)

    def recv_ack(self, node: int, ctx: bytes) -> set[int] | None:
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks.add(node)
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Dequeue every request up to and including the one with `ctx`."""
        try:
            i = self.queue.index(ctx)
        except ValueError:
            return []
        done = self.queue[: i + 1]
        del self.queue[: i + 1]
        return [self.pending.pop(c) for c in done]

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""
