"""`controlplane.procs`: start detached, state, signals, graceful stop, and the pid-reuse guard.

Stand-in processes (a sleeper) go through the real start path with an injected command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procfixtures import cleanup, sleeper_argv

from controlplane import procs
from controlplane.config import ClusterConfig, parse_config, write_config
from controlplane.procs import AlreadyRunning, NotRunning, ProcessTable, ProcState
from controlplane.raftnode.disk import DiskStorage


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[ClusterConfig]:
    c = parse_config(
        f'[cluster]\nname = "p"\nsubnet = "127.77.0.0/16"\ndata_dir = "{tmp_path}/p"\n'
    )
    write_config(c)
    yield c
    assert cleanup(tmp_path) == [], "leaked processes"


@pytest.fixture
def table(cfg: ClusterConfig) -> ProcessTable:
    return procs.cluster_table(cfg)


def start_sleeper(cfg: ClusterConfig, name: str = "master-1", **kw: bool) -> procs.ProcRecord:
    spec = cfg.master(name)
    return procs.start_master(
        cfg, spec, initial_cluster=False, argv=sleeper_argv(cfg.data_dir, **kw)
    )


def test_start_records_pid_and_start_time(cfg: ClusterConfig, table: ProcessTable) -> None:
    """A started process is running, detached in its own session, recorded in its pid file."""
    rec = start_sleeper(cfg)
    assert table.state("master-1") is ProcState.RUNNING
    assert os.getsid(rec.pid) == rec.pid  # new session
    body = json.loads((cfg.run_dir / "master-1.pid").read_text())
    assert (body["pid"], body["start_time"]) == (rec.pid, rec.start_time)
    assert body["argv"] == list(rec.argv)
    log = cfg.master("master-1").log_file
    assert log.exists() and "kubelab: starting master-1" in log.read_text()
    assert table.names() == ["master-1"]
    assert procs.cluster_alive(cfg)


def test_master_argv_is_the_entry_point(cfg: ClusterConfig) -> None:
    """`python -m controlplane --config <data_dir>/cluster.toml --name N [--initial-cluster]`."""
    spec = cfg.master("master-2")
    argv = procs.master_argv(cfg, spec, initial_cluster=True)
    assert argv == [
        sys.executable,
        "-m",
        "controlplane",
        "--config",
        str(cfg.data_dir / "cluster.toml"),
        "--name",
        "master-2",
        "--initial-cluster",
    ]
    assert "--initial-cluster" not in procs.master_argv(cfg, spec, initial_cluster=False)


def test_pause_resume_kill(cfg: ClusterConfig, table: ProcessTable) -> None:
    """SIGSTOP shows as paused (not alive), SIGCONT as running, SIGKILL as dead."""
    rec = start_sleeper(cfg)
    table.pause("master-1")
    assert table.state("master-1") is ProcState.PAUSED
    assert not ProcState.PAUSED.alive
    table.resume("master-1")
    assert table.state("master-1") is ProcState.RUNNING
    table.pause("master-1")
    killed = table.kill("master-1")  # works on a paused process too
    assert killed.pid == rec.pid
    assert table.state("master-1") is ProcState.DEAD
    assert rec.exit_code == -signal.SIGKILL
    with pytest.raises(NotRunning):
        table.kill("master-1")
    assert not procs.cluster_alive(cfg)


def test_start_refuses_a_live_process(cfg: ClusterConfig) -> None:
    rec = start_sleeper(cfg)
    with pytest.raises(AlreadyRunning, match=rf"master-1 is already running \(pid {rec.pid}\)"):
        start_sleeper(cfg)


def test_start_after_death_replaces_the_record(cfg: ClusterConfig, table: ProcessTable) -> None:
    first = start_sleeper(cfg)
    table.kill("master-1")
    second = start_sleeper(cfg)
    assert second.pid != first.pid
    assert table.find("master-1") == second


def test_stop_terminates_running_and_paused(cfg: ClusterConfig, table: ProcessTable) -> None:
    """SIGTERM reaches a paused process too (SIGCONT follows it); pid files are removed."""
    start_sleeper(cfg, "master-1")
    start_sleeper(cfg, "master-2")
    table.pause("master-2")
    t0 = time.monotonic()
    stopped = table.stop(table.names(), grace_s=5.0)
    assert sorted((r.name, how) for r, how in stopped) == [
        ("master-1", "terminated"),
        ("master-2", "terminated"),
    ]
    assert time.monotonic() - t0 < 2.0
    assert table.names() == []


def test_stop_kills_what_ignores_sigterm(cfg: ClusterConfig, table: ProcessTable) -> None:
    rec = start_sleeper(cfg, ignore_term=True)
    time.sleep(0.3)  # let it install its SIGTERM handler
    assert table.stop(["master-1"], grace_s=0.3) == [(rec, "killed")]
    assert table.probe(rec) is ProcState.DEAD


def test_pid_reuse_guard_start_time(cfg: ClusterConfig, table: ProcessTable) -> None:
    """A pid file whose start time does not match is not ours: no signal is sent."""
    rec = start_sleeper(cfg)
    pid_file = cfg.run_dir / "master-1.pid"
    body = json.loads(pid_file.read_text())
    body["start_time"] = rec.start_time - 1  # as if the pid had been recycled
    pid_file.write_text(json.dumps(body))
    try:
        assert table.state("master-1") is ProcState.DEAD
        with pytest.raises(NotRunning):
            table.kill("master-1")
        assert not table.send(dataclasses.replace(rec, start_time=rec.start_time - 1), 9)
        assert table.probe(rec) is ProcState.RUNNING  # still alive: nothing was sent
    finally:
        os.kill(rec.pid, signal.SIGKILL)
        os.waitpid(rec.pid, 0)


def test_pid_reuse_guard_command_line(
    cfg: ClusterConfig, table: ProcessTable, tmp_path: Path
) -> None:
    """A process with the recorded pid and start time but another command line is not ours."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = Path(f"/proc/{other.pid}/stat").read_bytes()
        start_time = int(start[start.rindex(b")") + 2 :].split()[19])
        body = {
            "pid": other.pid,
            "start_time": start_time,
            "argv": sleeper_argv(cfg.data_dir),
        }
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / "master-1.pid").write_text(json.dumps(body))
        assert table.state("master-1") is ProcState.DEAD
        with pytest.raises(NotRunning):
            table.pause("master-1")
        assert table.stop(["master-1"]) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_marker_must_be_in_argv(table: ProcessTable, tmp_path: Path) -> None:
    """Only commands that name the cluster's data dir can be started (and later found)."""
    with pytest.raises(ValueError, match="must name"):
        table.start("x", [sys.executable, "-c", "pass"], log_file=tmp_path / "x.log")


def test_unexecutable_command_raises_and_records_nothing(
    table: ProcessTable, cfg: ClusterConfig, tmp_path: Path
) -> None:
    with pytest.raises(OSError):
        table.start("x", [str(tmp_path / "nope"), str(cfg.data_dir)], log_file=tmp_path / "x.log")
    assert table.names() == []


def test_exit_code_of_a_process_that_exits(cfg: ClusterConfig, table: ProcessTable) -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit(3)", str(cfg.data_dir)]
    rec = table.start("master-1", argv, log_file=cfg.master("master-1").log_file)
    assert table.wait_dead(rec, 5.0)
    assert rec.exit_code == 3


def test_master_has_state(cfg: ClusterConfig) -> None:
    """A master's data dir counts as empty until it holds a Raft log (its log file aside)."""
    spec = cfg.master("master-1")
    assert not procs.master_has_state(spec)
    spec.data_dir.mkdir(parents=True)
    spec.log_file.write_text("log\n")
    assert not procs.master_has_state(spec)
    DiskStorage.create(spec.data_dir).close()
    assert procs.master_has_state(spec)
