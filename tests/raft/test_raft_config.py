"""`Config.validate`: every invalid setting raises `ConfigError` naming the key."""

from __future__ import annotations

import dataclasses

import pytest

from controlplane.raft import Config, ConfigError, MemoryStorage, RawNode, ReadOnlyOption


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"id": 0}, "id"),
        ({"id": -1}, "id"),
        ({"voters": (1, 0)}, "voters"),
        ({"voters": (1, 2, 2)}, "voters"),
        ({"heartbeat_tick": 0}, "heartbeat_tick"),
        ({"election_tick": 1, "heartbeat_tick": 1}, "election_tick"),
        ({"election_tick": 2, "heartbeat_tick": 3}, "election_tick"),
        ({"applied": -1}, "applied"),
        ({"max_size_per_msg": 0}, "max_size_per_msg"),
        ({"max_committed_size_per_ready": 0}, "max_committed_size_per_ready"),
        ({"max_uncommitted_entries_size": -1}, "max_uncommitted_entries_size"),
        ({"max_inflight_msgs": 0}, "max_inflight_msgs"),
        ({"max_inflight_bytes": -1}, "max_inflight_bytes"),
        ({"max_inflight_bytes": 100, "max_size_per_msg": 1000}, "max_inflight_bytes"),
        (
            {"read_only_option": ReadOnlyOption.LEASE_BASED, "check_quorum": False},
            "read_only_option",
        ),
    ],
    ids=[
        "id-zero",
        "id-negative",
        "voter-zero",
        "voter-duplicate",
        "heartbeat-zero",
        "election-equals-heartbeat",
        "election-below-heartbeat",
        "applied-negative",
        "max-size-zero",
        "max-committed-size-zero",
        "max-uncommitted-negative",
        "max-inflight-zero",
        "max-inflight-bytes-negative",
        "max-inflight-bytes-below-max-size",
        "lease-read-without-check-quorum",
    ],
)
def test_validate_rejects(changes: dict[str, object], key: str) -> None:
    """An invalid value raises ConfigError whose message starts with the key."""
    cfg = dataclasses.replace(Config(id=1, voters=(1,)), **changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        cfg.validate()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"max_inflight_bytes": 1 << 20, "max_size_per_msg": 1 << 20},
        {"read_only_option": ReadOnlyOption.LEASE_BASED},
        {"voters": ()},
    ],
    ids=["defaults", "inflight-bytes-equal-max-size", "lease-read", "voters-from-storage"],
)
def test_validate_accepts(changes: dict[str, object]) -> None:
    """Valid configurations pass; voters may come from storage instead."""
    dataclasses.replace(Config(id=1, voters=(1,)), **changes).validate()  # type: ignore[arg-type]


def test_raft_validates_its_config() -> None:
    """A node cannot be built from an invalid configuration."""
    with pytest.raises(ConfigError, match=r"^heartbeat_tick: "):
        RawNode(Config(id=1, voters=(1,), heartbeat_tick=0), MemoryStorage())


def test_no_voters_anywhere() -> None:
    """A brand-new node needs voters from its config (nothing is in its storage)."""
    with pytest.raises(ConfigError, match=r"^voters: "):
        RawNode(Config(id=1), MemoryStorage())
