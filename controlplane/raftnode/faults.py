"""Fault injection for the peer transport: message loss, delay and partitions, per peer.

A `Faults` object belongs to one `Transport` and describes what *this* member does to its
traffic with each peer; a cluster-wide partition is the sum of the rules set on each member
(the admin RPC does that). Rules take effect for the next message; they can be changed at any
time, from any thread (each change replaces an immutable `PeerFaults` under a lock, so the
transport always reads a consistent rule).

Semantics, per peer:

- `drop_out` / `drop_in`: probability of losing each outgoing / incoming message, decided
  independently per message with `rng` (seed it for reproducible tests);
- `delay_ms`: outgoing messages are held this long before they are written. The delay is fixed
  when a message is sent and messages leave in order, so per-peer FIFO order is kept (a message
  never overtakes an earlier, more delayed one);
- `block_out`: nothing is sent to the peer (queued messages are discarded too);
- `block_in`: everything received from the peer is discarded (its connections are still
  accepted: the emulated partition loses messages, not TCP handshakes).

Losses caused by faults look like a lossy network to Raft: they are counted, but not reported
as unreachable. A dropped MsgSnap is still reported as a failed snapshot, or the leader would
wait for it forever.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["Faults", "PeerFaults"]


@dataclass(frozen=True, slots=True)
class PeerFaults:
    """The faults applied to the traffic with one peer (the defaults mean "none")."""

    drop_out: float = 0.0
    drop_in: float = 0.0
    delay_ms: int = 0
    block_out: bool = False
    block_in: bool = False

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid key and its constraint."""
        for key in ("drop_out", "drop_in"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"{key}: must be a probability between 0 and 1, got {v!r}")
        if isinstance(self.delay_ms, bool) or not isinstance(self.delay_ms, int):
            raise ConfigError(f"delay_ms: must be an integer, got {self.delay_ms!r}")
        if self.delay_ms < 0:
            raise ConfigError(f"delay_ms: must not be negative, got {self.delay_ms}")
        for key in ("block_out", "block_in"):
            v = getattr(self, key)
            if not isinstance(v, bool):
                raise ConfigError(f"{key}: must be true or false, got {v!r}")

    @property
    def is_clear(self) -> bool:
        return self == _CLEAR

    def as_dict(self) -> dict[str, float | int | bool]:
        return dataclasses.asdict(self)


_CLEAR = PeerFaults()


class Faults:
    """Per-peer fault rules of one transport. All methods are thread-safe."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._rules: dict[int, PeerFaults] = {}

    # -- changing the rules ---------------------------------------------------------------

    def set(
        self,
        peer: int,
        *,
        drop_out: float | None = None,
        drop_in: float | None = None,
        delay_ms: int | None = None,
        block_out: bool | None = None,
        block_in: bool | None = None,
    ) -> PeerFaults:
        """Change the given fields of `peer`'s rule (others are kept); returns the new rule.

        Raises `ConfigError` naming the key if a value is invalid (nothing is changed then).
        """
        with self._lock:
            old = self._rules.get(peer, _CLEAR)
            rule = PeerFaults(
                drop_out=old.drop_out if drop_out is None else drop_out,
                drop_in=old.drop_in if drop_in is None else drop_in,
                delay_ms=old.delay_ms if delay_ms is None else delay_ms,
                block_out=old.block_out if block_out is None else block_out,
                block_in=old.block_in if block_in is None else block_in,
            )
            rule.validate()
            self._store(peer, rule)
        return rule

    def partition(self, peers: Iterable[int], oneway: bool = False) -> None:
        """Cut this member off from `peers`: stop sending to them and, unless `oneway`,
        discard what they send (so with `oneway` this member still hears them)."""
        with self._lock:
            for peer in peers:
                rule = self._rules.get(peer, _CLEAR)
                rule = dataclasses.replace(
                    rule, block_out=True, block_in=rule.block_in or not oneway
                )
                self._store(peer, rule)

    def clear(self, peer: int | None = None) -> None:
        """Remove every fault (heal), or only those of `peer`."""
        with self._lock:
            if peer is None:
                self._rules.clear()
            else:
                self._rules.pop(peer, None)

    def heal(self) -> None:
        """Remove every fault: the network is whole again."""
        self.clear()

    def _store(self, peer: int, rule: PeerFaults) -> None:
        if rule.is_clear:
            self._rules.pop(peer, None)
        else:
            self._rules[peer] = rule

    # -- reading the rules ----------------------------------------------------------------

    def get(self, peer: int) -> PeerFaults:
        return self._rules.get(peer, _CLEAR)

    def describe(self) -> dict[str, dict[str, float | int | bool]]:
        """The active rules, JSON-friendly: ``{"2": {"drop_out": 0.1, ...}}`` (peers without
        faults are left out, so a healed network describes as ``{}``)."""
        with self._lock:
            return {str(peer): rule.as_dict() for peer, rule in sorted(self._rules.items())}

    # -- decisions, made by the transport for each message --------------------------------

    def drop_outgoing(self, peer: int) -> bool:
        """True if the next message to `peer` must be lost (blocked or randomly dropped)."""
        rule = self._rules.get(peer, _CLEAR)
        return rule.block_out or (rule.drop_out > 0.0 and self.rng.random() < rule.drop_out)

    def drop_incoming(self, peer: int) -> bool:
        """True if the message just received from `peer` must be discarded."""
        rule = self._rules.get(peer, _CLEAR)
        return rule.block_in or (rule.drop_in > 0.0 and self.rng.random() < rule.drop_in)

    def blocked_out(self, peer: int) -> bool:
        return self._rules.get(peer, _CLEAR).block_out

    def delay(self, peer: int) -> float:
        """The outgoing delay for `peer`, in seconds."""
        return self._rules.get(peer, _CLEAR).delay_ms / 1000.0
