"""The `kubelab` command: up/down, status, chaos commands, errors, and plug-in commands.

No real master runs here. `status` is checked against fake `/status` servers bound on a
test-only subnet 127.C.0.0/16 (C picked free per test), with stand-in processes for the pid
states; the lifecycle commands run `tests/fakemaster.py`, which keeps the master's contract
(refuses an empty data dir without `--initial-cluster`, serves `/status` and `/readyz`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from procfixtures import FAKE_MASTER, cleanup, free_octet, sleeper_argv

from controlplane import procs
from controlplane.cli import main
from controlplane.cli.status import leader_of
from controlplane.config import ClusterConfig, MasterSpec, admin_token, load_config, write_config
from controlplane.pki import pki_paths

DESIGN_KEYS = {"cluster", "timers", "leader", "term", "masters", "workers", "pods"}
MASTER_KEYS = {
    "name",
    "pid",
    "state",
    "alive",
    "role",
    "term",
    "commit_index",
    "applied_index",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    h = tmp_path / "home"
    monkeypatch.setenv("KUBELAB_HOME", str(h))
    monkeypatch.delenv("KUBELAB_CLUSTER", raising=False)
    yield h
    assert cleanup(tmp_path) == [], "leaked processes"


def cluster_file(tmp_path: Path, c: int, *, masters: int = 3, workers: int = 1) -> Path:
    text = f'[cluster]\nname = "t{c}"\nsubnet = "127.{c}.0.0/16"\n'
    text += "".join(f'[[masters]]\nname = "master-{i}"\n' for i in range(1, masters + 1))
    text += "".join(f'[[workers]]\nname = "worker-{i}"\n' for i in range(1, workers + 1))
    path = tmp_path / f"t{c}.toml"
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# -- status against fake servers ---------------------------------------------------------------


class FakeStatus:
    """A `/status` server for one master; `hang=True` accepts connections but never answers
    (what a paused process does)."""

    def __init__(self, host: str, port: int, doc: dict[str, Any] | None, *, hang: bool = False):
        self.sock: socket.socket | None = None
        self.server: ThreadingHTTPServer | None = None
        if hang:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(8)
            return
        body = json.dumps(doc).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextlib.contextmanager
def fake_servers(servers: list[FakeStatus]) -> Iterator[None]:
    try:
        yield
    finally:
        for s in servers:
            s.close()


def report(
    spec: MasterSpec, role: str, term: int, leader: str | None, index: int
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "id": spec.id,
        "pid": 1,
        "role": role,
        "term": term,
        "leader": leader,
        "commit_index": index,
        "applied_index": index,
        "revision": 7,
        "peers": {},
        "faults": {},
    }


def stored_cluster(tmp_path: Path, c: int) -> ClusterConfig:
    """A cluster as `up` leaves it on disk (effective config written), nothing started."""
    cfg = load_config(cluster_file(tmp_path, c))
    write_config(cfg)
    return load_config(cfg.stored_config)


def test_status_json_answers_within_a_second_with_a_paused_member(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DESIGN.md shape; a paused member (accepts, never answers) shows paused, role unknown,
    and does not slow the answer down; a dead member shows dead with no pid."""
    cfg = stored_cluster(tmp_path, free_octet(3))
    m1, m2, m3 = cfg.masters
    recs = {
        m.name: procs.start_master(cfg, m, initial_cluster=False, argv=sleeper_argv(cfg.data_dir))
        for m in (m1, m2)
    }
    procs.cluster_table(cfg).pause(m2.name)
    servers = [
        FakeStatus(m1.ip, m1.health_port, report(m1, "leader", 3, m1.name, 42)),
        FakeStatus(m2.ip, m2.health_port, None, hang=True),
    ]
    with fake_servers(servers):
        t0 = time.monotonic()
        rc, out, _ = run(capsys, "status", "--json", "-c", str(cfg.stored_config))
        elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < 1.0, f"status took {elapsed:.2f} s"
    doc = json.loads(out)
    assert set(doc) >= DESIGN_KEYS
    assert (doc["cluster"], doc["leader"], doc["term"]) == (cfg.name, "master-1", 3)
    assert (doc["workers"], doc["pods"]) == ([], {})
    assert doc["timers"]["profile"] == "demo"
    assert doc["raft"]["election_ms"] == 600
    by_name = {m["name"]: m for m in doc["masters"]}
    assert all(set(m) >= MASTER_KEYS for m in doc["masters"])
    first = {k: by_name["master-1"][k] for k in MASTER_KEYS}
    assert first == {
        "name": "master-1",
        "pid": recs["master-1"].pid,
        "state": "running",
        "alive": True,
        "role": "leader",
        "term": 3,
        "commit_index": 42,
        "applied_index": 42,
    }
    paused = by_name["master-2"]
    assert (paused["state"], paused["alive"], paused["pid"]) == (
        "paused",
        False,
        recs["master-2"].pid,
    )
    assert (paused["role"], paused["term"]) == (None, None)
    assert "no answer" in paused["error"]
    dead = by_name["master-3"]
    assert (dead["state"], dead["alive"], dead["pid"], dead["role"]) == ("dead", False, None, None)
    assert m3.name == "master-3"


def test_status_table_marks_the_leader(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human form: aligned NAME PID STATE ROLE TERM COMMIT APPLIED, leader marked, timers."""
    cfg = stored_cluster(tmp_path, free_octet(3))
    m1, m2, _ = cfg.masters
    servers = [
        FakeStatus(m1.ip, m1.health_port, report(m1, "follower", 5, "master-2", 9)),
        FakeStatus(m2.ip, m2.health_port, report(m2, "leader", 5, "master-2", 10)),
    ]
    with fake_servers(servers):
        rc, out, _ = run(capsys, "-c", str(cfg.stored_config), "status")
    assert rc == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "PID", "STATE", "ROLE", "TERM", "COMMIT", "APPLIED", "NOTE"]
    row = next(line for line in lines if line.startswith("master-2"))
    assert row.startswith("master-2 *")
    assert row.index("leader") == header.index("ROLE")
    assert "leader master-2, term 5" in out
    assert "timers (profile demo): node_lease_renew_s=1" in out


def test_status_watch_refreshes_until_ctrl_c(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = stored_cluster(tmp_path, free_octet(3))
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("controlplane.cli.status.time.sleep", fake_sleep)
    rc, out, _ = run(capsys, "status", "--watch", "--json", "-c", str(cfg.stored_config))
    assert rc == 0
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 2 and docs[0]["cluster"] == cfg.name


def m(
    name: str, role: str | None, term: int | None, leader: str | None = None, state: str = "running"
) -> dict[str, Any]:
    return {"name": name, "role": role, "term": term, "reported_leader": leader, "state": state}


@pytest.mark.parametrize(
    ("masters", "expected"),
    [
        ([m("a", "leader", 2), m("b", "follower", 2, "a")], ("a", 2)),
        ([m("a", "leader", 2), m("b", "candidate", 3)], (None, 3)),
        ([m("a", "leader", 2), m("b", "leader", 3), m("c", "follower", 3, "b")], ("b", 3)),
        ([m("a", None, None), m("b", "follower", 4, "a")], ("a", 4)),
        ([m("a", None, None, state="dead"), m("b", "follower", 4, "a")], (None, 4)),
        ([m("a", None, None), m("b", None, None)], (None, None)),
    ],
    ids=[
        "leader-and-follower",
        "stale-leader-of-older-term",
        "highest-term-leader",
        "leader-named-by-follower",
        "dead-leader-ignored",
        "nobody-answers",
    ],
)
def test_leader_is_the_leader_of_the_highest_term(
    masters: list[dict[str, Any]], expected: tuple[str | None, int | None]
) -> None:
    """DESIGN.md: `leader` = the leader of the highest term reported, or null."""
    assert leader_of(masters) == expected


# -- lifecycle with the fake master ------------------------------------------------------------


@pytest.fixture
def fake_master(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masters run tests/fakemaster.py instead of `python -m controlplane`."""

    def argv(cfg: ClusterConfig, spec: MasterSpec, *, initial_cluster: bool) -> list[str]:
        a = [sys.executable, str(FAKE_MASTER), "controlplane", "--config", str(cfg.stored_config)]
        a += ["--name", spec.name]
        return [*a, "--initial-cluster"] if initial_cluster else a

    monkeypatch.setattr(procs, "master_argv", argv)


def up(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "up", "-c", str(path), "--timeout", "20", *extra)


def test_up_status_down(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_master: None,
    summary: Callable[[str, str], None],
) -> None:
    """`up` creates the cluster, starts every master with progress, waits for a leader and a
    ready majority, prints the next steps; a second `up` says it is up; `down` stops all."""
    c = free_octet(3)
    path = cluster_file(tmp_path, c)
    t0 = time.monotonic()
    rc, out, err = up(capsys, path)
    summary("kubelab CLI", f"up of 3 fake masters took {time.monotonic() - t0:.2f} s")
    assert rc == 0, err
    for i in (1, 2, 3):
        assert f"starting master-{i} (127.{c}.0.1{i}) ... ok (pid " in out
    assert "waiting for a leader and a ready majority" in out
    assert f"cluster t{c} is up: leader master-1 (term 1), 3 masters" in out
    assert "workers: none yet (coming with the kubelet issue)" in out
    for step in ("kubelab status", "kubelab kv put hello world", "kubelab kill master-1"):
        assert step in out
    cfg = load_config(home / f"t{c}" / "cluster.toml")
    assert cfg.uid
    assert stat.S_IMODE(cfg.token_file.stat().st_mode) == 0o600
    assert ",admin," in cfg.token_file.read_text()
    for spec in cfg.masters:
        assert "--initial-cluster" in spec.log_file.read_text()

    rc, out, _ = run(capsys, "status", "--json", "--cluster", f"t{c}")
    doc = json.loads(out)
    assert doc["leader"] == "master-1"
    assert [x["state"] for x in doc["masters"]] == ["running"] * 3
    assert [x["role"] for x in doc["masters"]] == ["leader", "follower", "follower"]

    rc, out, _ = up(capsys, path)
    assert rc == 0 and f"cluster t{c} is already up" in out

    rc, out, _ = run(capsys, "down")  # the only running cluster
    assert rc == 0
    assert sorted(line.split(" (")[0] for line in out.splitlines()) == [
        "stopped master-1",
        "stopped master-2",
        "stopped master-3",
    ]
    assert procs.cluster_table(cfg).names() == []
    assert not procs.cluster_alive(cfg)


def test_up_again_restarts_without_bootstrap(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    """A stopped cluster restarts with its uid and tokens and without --initial-cluster;
    settings other than the masters (here the timer profile) may change."""
    path = cluster_file(tmp_path, free_octet(3))
    assert up(capsys, path)[0] == 0
    cfg = load_config(load_config(path).stored_config)
    tokens = cfg.token_file.read_text()
    assert run(capsys, "down", "-c", str(path))[0] == 0
    rc, _, err = up(capsys, path, "--timers", "kubernetes")
    assert rc == 0, err
    again = load_config(cfg.stored_config)
    assert again.uid == cfg.uid
    assert (again.timers.profile, again.raft.election_ms) == ("kubernetes", 1000)
    assert cfg.token_file.read_text() == tokens
    for spec in cfg.masters:
        last_start = [
            x for x in spec.log_file.read_text().splitlines() if "kubelab: starting" in x
        ][-1]
        assert "--initial-cluster" not in last_start


def test_up_refuses_to_change_the_member_count(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    """The masters of an existing data dir cannot change; the message gives both ways out."""
    c = free_octet(5)
    path = cluster_file(tmp_path, c)
    assert up(capsys, path)[0] == 0
    assert run(capsys, "down", "-c", str(path))[0] == 0
    rc, _, err = up(capsys, path, "--masters", "5")
    assert rc == 2
    assert "with 3 masters (master-1, master-2, master-3)" in err
    assert f"`kubelab up --masters 3 -c {path}`" in err
    assert f"`kubelab down --purge -c {path}`" in err
    rc, _, err = run(capsys, "up", "--cluster", f"t{c}", "--masters", "5")
    assert rc == 2 and "`kubelab up --masters 3`" in err


def test_chaos_commands(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    """pause/resume/kill/start/restart act on one member and say what they did."""
    path = cluster_file(tmp_path, free_octet(3))
    assert up(capsys, path)[0] == 0
    table = procs.cluster_table(load_config(load_config(path).stored_config))
    pid2 = table.find("master-2")
    assert pid2 is not None

    assert run(capsys, "pause", "master-2") == (0, f"paused master-2 (pid {pid2.pid})\n", "")
    assert run(capsys, "pause", "master-2")[1].startswith("master-2 is already paused")
    t0 = time.monotonic()
    rc, out, _ = run(capsys, "status", "--json")
    assert time.monotonic() - t0 < 1.0
    paused = json.loads(out)["masters"][1]
    assert (paused["state"], paused["alive"], paused["role"]) == ("paused", False, None)
    assert run(capsys, "resume", "master-2") == (0, f"resumed master-2 (pid {pid2.pid})\n", "")
    assert run(capsys, "resume", "master-2")[1].startswith("master-2 is not paused")

    assert run(capsys, "kill", "master-2") == (0, f"killed master-2 (pid {pid2.pid})\n", "")
    rc, _, err = run(capsys, "kill", "master-2")
    assert rc == 1 and "master-2 is not running; start it with `kubelab start master-2`" in err
    rc, _, err = run(capsys, "pause", "master-2")
    assert rc == 1 and "not running" in err
    rc, out, _ = run(capsys, "start", "master-2")
    assert rc == 0 and out.startswith("started master-2 (pid ")
    rc, _, err = run(capsys, "start", "master-2")
    assert rc == 1 and "master-2 is already running" in err

    old = table.find("master-1")
    assert old is not None
    rc, out, err = run(capsys, "restart", "master-1")
    assert rc == 0, err
    assert out.splitlines()[0] == f"killed master-1 (pid {old.pid})"
    assert out.splitlines()[1].startswith("started master-1 (pid ")

    rc, _, err = run(capsys, "kill", "master-1", "--agent-only")
    assert rc == 2 and "not applicable to masters" in err
    rc, _, err = run(capsys, "kill", "worker-1")
    assert rc == 1 and "workers do not run yet" in err
    rc, _, err = run(capsys, "pause", "nope")
    assert rc == 2
    assert "no member named 'nope'" in err and "master-1, master-2, master-3, worker-1" in err
    run(capsys, "down")


def test_start_refuses_an_empty_data_dir(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    """An empty member must not vote in an existing cluster: start and restart refuse it."""
    path = cluster_file(tmp_path, free_octet(3))
    assert up(capsys, path)[0] == 0
    cfg = load_config(load_config(path).stored_config)
    shutil.rmtree(cfg.master("master-3").data_dir / "wal")
    rc, out, err = run(capsys, "restart", "master-3")
    assert rc == 1 and "holds no Raft log" in err
    assert out == ""  # refused before killing anything
    assert procs.cluster_table(cfg).state("master-3") is procs.ProcState.RUNNING
    assert run(capsys, "kill", "master-3")[0] == 0
    for command in ("start", "restart"):
        rc, out, err = run(capsys, command, "master-3")
        assert rc == 1
        assert "holds no Raft log" in err and "kubelab down --purge" in err
    assert procs.cluster_table(cfg).state("master-3") is procs.ProcState.DEAD
    run(capsys, "down")
    # `up` of the existing cluster starts the others and skips the empty member.
    rc, out, err = up(capsys, path)
    assert rc == 0, err
    assert "warning: skipping master-3" in out
    run(capsys, "down")


def test_up_reports_a_master_that_exits(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A master that exits at start-up stops `up` with its exit code and its log's tail."""

    def argv(cfg: ClusterConfig, spec: MasterSpec, *, initial_cluster: bool) -> list[str]:
        code = "import sys; print('boom: port in use', file=sys.stderr); sys.exit(3)"
        if spec.name != "master-2":
            return sleeper_argv(cfg.data_dir)
        return [sys.executable, "-c", code, str(cfg.stored_config)]

    monkeypatch.setattr(procs, "master_argv", argv)
    rc, out, err = up(capsys, cluster_file(tmp_path, free_octet(3)))
    assert rc == 1
    assert "starting master-2" in out and out.rstrip().endswith("failed")
    assert "master-2 did not start: it exited with code 3" in err
    assert "boom: port in use" in err
    assert run(capsys, "down")[1].count("stopped") == 1  # master-1 was running


def test_down_purge_removes_only_our_data_dir(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    c = free_octet(3)
    path = cluster_file(tmp_path, c)
    assert up(capsys, path)[0] == 0
    data_dir = home / f"t{c}"
    rc, out, _ = run(capsys, "down", "--purge")
    assert rc == 0 and f"removed {data_dir}" in out
    assert not data_dir.exists()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    other = tmp_path / "other.toml"
    other.write_text(f'[cluster]\nname = "o"\nsubnet = "127.{c}.0.0/16"\ndata_dir = "{foreign}"\n')
    rc, out, _ = run(capsys, "down", "--purge", "-c", str(other))
    assert rc == 0 and "nothing to purge" in out
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_up_writes_the_kubeconfig_and_kubeconfig_prints_its_path(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_master: None
) -> None:
    """`up` creates the CA, the serving certificate and the kubeconfig, prints its path and
    the kubectl next step; `kubelab kubeconfig` prints the same absolute path, found by
    -c FILE, by --cluster NAME, or as the only running cluster."""
    c = free_octet(3)
    path = cluster_file(tmp_path, c)
    rc, out, err = up(capsys, path)
    assert rc == 0, err
    cfg = load_config(home / f"t{c}" / "cluster.toml")
    assert f"  kubeconfig: {cfg.kubeconfig}" in out.splitlines()
    assert '  kubectl --kubeconfig "$(kubelab kubeconfig)" get namespaces' in out.splitlines()
    paths = pki_paths(cfg)
    assert paths.ca_cert.is_file() and paths.server_cert.is_file()
    assert stat.S_IMODE(cfg.kubeconfig.stat().st_mode) == 0o600
    doc = yaml.safe_load(cfg.kubeconfig.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == f"https://127.{c}.0.11:6443"
    assert doc["users"][0]["user"]["token"] == admin_token(cfg)

    for where in (["-c", str(path)], ["--cluster", f"t{c}"], []):
        rc, out, err = run(capsys, "kubeconfig", *where)
        assert (rc, out, err) == (0, f"{cfg.kubeconfig.absolute()}\n", ""), where
    assert run(capsys, "down", "-c", str(path))[0] == 0


def test_kubeconfig_of_a_cluster_never_up_exits_1(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cluster_file(tmp_path, free_octet(3))
    rc, out, err = run(capsys, "kubeconfig", "-c", str(path))
    assert (rc, out) == (1, "")
    assert "has no kubeconfig" in err and "run `kubelab up` first" in err


def test_up_refuses_a_foreign_non_empty_data_dir(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new cluster never moves into a directory it did not create (purge would delete it)."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    path = tmp_path / "c.toml"
    path.write_text(f'[cluster]\nname = "f"\nsubnet = "127.88.0.0/16"\ndata_dir = "{foreign}"\n')
    rc, _, err = run(capsys, "up", "-c", str(path))
    assert rc == 2 and "is not an empty directory" in err
    assert [p.name for p in foreign.iterdir()] == ["precious.txt"]


def test_up_refuses_a_subnet_in_use(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = free_octet(3)
    running = stored_cluster(tmp_path, c)
    procs.start_master(
        running, running.masters[0], initial_cluster=False, argv=sleeper_argv(running.data_dir)
    )
    second = tmp_path / "second.toml"
    second.write_text(f'[cluster]\nname = "second"\nsubnet = "127.{c}.0.0/16"\n')
    rc, _, err = run(capsys, "up", "-c", str(second))
    assert rc == 2
    assert f"subnet 127.{c}.0.0/16 is in use by the running cluster 't{c}'" in err


# -- errors and plumbing -----------------------------------------------------------------------


def test_bad_config_exits_2_naming_the_key(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[raft]\nfsync = 1\n")
    for argv in (["status", "-c", str(path)], ["up", "-c", str(path)]):
        rc, out, err = run(capsys, *argv)
        assert rc == 2
        assert err == f"kubelab: error: {path}: raft.fsync: expected true or false, got 1\n"
        assert "Traceback" not in out + err


def test_unknown_cluster_name_exits_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "status", "--cluster", "nope")
    assert rc == 2 and "no cluster named 'nope'" in err


def test_global_options_before_or_after_the_command(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = stored_cluster(tmp_path, free_octet(3))
    for argv in (
        ["-c", str(cfg.stored_config), "status", "--json"],
        ["status", "--json", "-c", str(cfg.stored_config)],
        ["--cluster", cfg.name, "status", "--json"],
    ):
        rc, out, _ = run(capsys, *argv)
        assert rc == 0 and json.loads(out)["cluster"] == cfg.name


def test_external_commands_plug_in(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`controlplane.cli_kv.add_parsers` adds commands, which get -c/--cluster too."""
    seen: list[argparse.Namespace] = []

    def handler(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        kv = sub.add_parser("kv").add_subparsers()
        put = kv.add_parser("put")
        put.add_argument("key")
        put.add_argument("value")
        put.set_defaults(func=handler)
        sub.add_parser("transfer-leader").add_argument("name")

    module = types.ModuleType("controlplane.cli_kv")
    module.add_parsers = add_parsers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "controlplane.cli_kv", module)
    cfg = stored_cluster(tmp_path, free_octet(3))
    rc, _, _ = run(capsys, "kv", "put", "-c", str(cfg.stored_config), "k", "v")
    assert rc == 0
    assert (seen[0].key, seen[0].value, seen[0].config) == ("k", "v", cfg.stored_config)


def test_without_cli_kv_the_command_is_absent(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        sys.modules, "controlplane.cli_kv", None
    )  # import raises ModuleNotFoundError
    with pytest.raises(SystemExit) as e:
        main(["kv", "put", "k", "v"])
    assert e.value.code == 2
    assert "invalid choice: 'kv'" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys)
    assert rc == 0 and "kubelab up" in out and "status" in out


def test_console_script_runs(home: Path) -> None:
    """The installed `kubelab` entry point works outside the repository."""
    exe = Path(sys.executable).with_name("kubelab")
    result = subprocess.run(
        [str(exe), "status", "--json"],
        check=False,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cluster"] == "kubelab"
