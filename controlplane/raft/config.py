"""Configuration of one Raft node, validated in one place."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import ConfigError
from .readonly import ReadOnlyOption
from .storage import NO_LIMIT


class PlantedBug(enum.Enum):
    """Known Raft bugs that tests switch on to prove the safety checks can fail.

    Never set outside tests: each one breaks safety on purpose.
    """

    COUNT_STALE_VOTES = "count-stale-votes"  # count vote responses from an older term
    COMMIT_PREVIOUS_TERM = "commit-previous-term"  # commit by counting replicas of any term
    FORGET_VOTE = "forget-vote"  # leave the vote out of the persisted HardState


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one node. Ticks are abstract: the driver decides how long a tick is.

    `voters` bootstraps a brand-new node; a node restarting from storage takes the voters
    from the stored configuration instead.
    """

    id: int
    voters: tuple[int, ...] = ()
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    seed: int = 0
    """Seeds the randomized election timeout: same seed, same inputs, same outputs."""
    max_size_per_msg: int = 1 << 20
    max_committed_size_per_ready: int = NO_LIMIT
    max_uncommitted_entries_size: int = 0  # 0: no limit
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 0  # 0: no limit
    check_quorum: bool = True
    pre_vote: bool = True
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    disable_proposal_forwarding: bool = False
    planted_bugs: frozenset[PlantedBug] = frozenset()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid key and its constraint."""
        if self.id <= 0:
            raise ConfigError(f"id: must be a positive integer, got {self.id}")
        if any(v <= 0 for v in self.voters):
            raise ConfigError(f"voters: ids must be positive integers, got {list(self.voters)}")
        if len(set(self.voters)) != len(self.voters):
            raise ConfigError(f"voters: ids must be unique, got {list(self.voters)}")
        if self.heartbeat_tick <= 0:
            raise ConfigError(f"heartbeat_tick: must be greater than 0, got {self.heartbeat_tick}")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigError(
                f"election_tick: must be greater than heartbeat_tick ({self.heartbeat_tick}), "
                f"got {self.election_tick}"
            )
        if self.applied < 0:
            raise ConfigError(f"applied: must not be negative, got {self.applied}")
        if self.max_size_per_msg <= 0:
            raise ConfigError(f"max_size_per_msg: must be positive, got {self.max_size_per_msg}")
        if self.max_committed_size_per_ready <= 0:
            raise ConfigError(
                "max_committed_size_per_ready: must be positive, "
                f"got {self.max_committed_size_per_ready}"
            )
        if self.max_uncommitted_entries_size < 0:
            raise ConfigError(
                "max_uncommitted_entries_size: must not be negative (0 means no limit), "
                f"got {self.max_uncommitted_entries_size}"
            )
        if self.max_inflight_msgs <= 0:
            raise ConfigError(
                f"max_inflight_msgs: must be greater than 0, got {self.max_inflight_msgs}"
            )
        if self.max_inflight_bytes < 0:
            raise ConfigError(
                "max_inflight_bytes: must not be negative (0 means no limit), "
                f"got {self.max_inflight_bytes}"
            )
        if 0 < self.max_inflight_bytes < self.max_size_per_msg:
            raise ConfigError(
                "max_inflight_bytes: must be 0 (no limit) or at least max_size_per_msg "
                f"({self.max_size_per_msg}), got {self.max_inflight_bytes}"
            )
        if self.read_only_option == ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ConfigError("read_only_option: lease-based reads need check_quorum to be on")
