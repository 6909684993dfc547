"""Randomized deterministic simulation of 3- and 5-node clusters (see rafttest/sim.py).

CI prints the coverage reached (terminal summary) and fails below the minimums the
Raft issue sets: 300 schedules of at least 300 ticks, 500 crash-restarts, 500 leader
changes, 100 snapshot installs and 300 healed partitions. `scripts/soak` runs more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

from controlplane.raft import PlantedBug
from controlplane.raft.rafttest.sim import (
    Check,
    Coverage,
    SafetyViolation,
    SimConfig,
    Simulation,
    main,
    run_schedules,
)

MINIMUMS = {
    "schedules": 300,
    "crash_restarts": 500,
    "leader_changes": 500,
    "snapshot_installs": 100,
    "partitions_healed": 300,
}
TICKS = 300


@pytest.fixture(autouse=True)
def _quiet_raft_logs() -> Iterator[None]:
    # Millions of state transitions: logging them would dominate the run time.
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_randomized_schedules_keep_raft_safe_and_live(
    summary: Callable[[str, str], None],
) -> None:
    """No safety or liveness violation over hundreds of seeded fault schedules."""
    start = time.monotonic()
    total = Coverage(schedules=0)
    # Mixed faults (crashes, partitions, loss, delay, reordering, duplication, transfers),
    # then the Figure 8 profile (leaders crashing every few ticks).
    total.add(run_schedules(range(1, 401), nodes=(3, 5), ticks=TICKS))
    total.add(run_schedules(range(1, 101), nodes=(3, 5), ticks=TICKS, profile="figure8"))
    elapsed = time.monotonic() - start
    summary(
        "raft simulation coverage",
        f"{total} (ticks per schedule: {TICKS}; {elapsed:.1f} s)",
    )
    got = total.as_dict()
    short = {k: (got[k], v) for k, v in MINIMUMS.items() if got[k] < v}
    assert not short, f"coverage below the minimums (got, want): {short}"


# Each planted bug must be caught by a check that states a Raft safety property.
PLANTED = [
    pytest.param(
        PlantedBug.COUNT_STALE_VOTES,
        {Check.LEADER_QUORUM.value, Check.ELECTION_SAFETY.value},
        id="count-stale-votes",
    ),
    pytest.param(
        PlantedBug.COMMIT_PREVIOUS_TERM,
        {Check.LEADER_COMPLETENESS.value, Check.STATE_MACHINE_SAFETY.value},
        id="commit-previous-term",
    ),
    pytest.param(
        PlantedBug.FORGET_VOTE,
        {Check.DOUBLE_VOTE.value, Check.ELECTION_SAFETY.value},
        id="forget-vote",
    ),
]


@pytest.mark.parametrize(("bug", "checks"), PLANTED)
def test_simulation_catches_planted_bug(
    bug: PlantedBug, checks: set[str], summary: Callable[[str, str], None]
) -> None:
    """A known Raft bug is caught within a bounded number of schedules, and replays."""
    caught: SafetyViolation | None = None
    cfg: SimConfig | None = None
    for seed in range(1, 601):
        cfg = SimConfig(seed=seed, nodes=3, bugs=frozenset({bug}), profile="figure8")
        try:
            Simulation(cfg).run()
        except SafetyViolation as e:
            caught = e
            break
    assert caught is not None and cfg is not None, f"{bug.value} went unnoticed in 600 schedules"
    assert caught.check in checks, f"{bug.value} caught by an unexpected check: {caught}"
    summary("raft planted bugs", f"{bug.value}: seed {cfg.seed}: {caught.check}")
    # The printed command replays the same violation.
    assert caught.replay == cfg.replay_command()
    with pytest.raises(SafetyViolation) as again:
        Simulation(cfg).run()
    assert str(again.value) == str(caught)


def test_the_same_seed_replays_the_same_schedule() -> None:
    """A schedule is a pure function of its seed."""
    cfg = SimConfig(seed=42, nodes=5)
    assert Simulation(cfg).run() == Simulation(cfg).run()


def test_replay_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The command printed with a violation runs the schedule from the command line."""
    assert main(["--seed", "3", "--nodes", "3", "--ticks", "100"]) == 0
    assert "ok: schedules=1" in capsys.readouterr().out
    argv = ["--seed", "1", "--count", "600", "--profile", "figure8", "--bug", "forget-vote"]
    assert main(argv) == 1
    assert "replay: python -m controlplane.raft.rafttest.sim" in capsys.readouterr().err
