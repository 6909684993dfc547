"""`kubelab` and fake workers: chaos routed to `fakenodes`, `status` workers and pods, `up`.

No real master runs here. Chaos commands on a fake worker are checked against a stand-in
control socket (recording each request) with a sleeper recorded as the `fakenodes`
process; `status` reads a gRPC resource API served in-process (a thread with its own event
loop, over `LocalBackend`) on master-1's address. The whole path (`up --runtime fake`
starting the real `python -m kubelet.fakenodes`, its nodes Ready, `kill worker-N`, `down`)
runs the same in-process API behind `tests/fakemaster.py` masters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import grpc
import pytest
from procfixtures import FAKE_MASTER, cleanup, free_octet, sleeper_argv

from controlplane import procs
from controlplane.cli import main
from controlplane.config import (
    ClusterConfig,
    MasterSpec,
    load_config,
    new_tokens,
    write_config,
    write_token_file,
)
from controlplane.kube.resources import LEASES, NAMESPACES, NODES, PODS
from controlplane.kube.storage import LocalBackend, ObjectStore
from controlplane.server import api
from controlplane.server.resources import add_to_server

T = TypeVar("T")
Obj = dict[str, Any]
WORKER_KEYS = {"name", "kubelet_pid", "proxy_pid", "state", "alive", "ready"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    h = tmp_path / "home"
    monkeypatch.setenv("KUBELAB_HOME", str(h))
    monkeypatch.delenv("KUBELAB_CLUSTER", raising=False)
    yield h
    assert cleanup(tmp_path) == [], "leaked processes"


def cluster_file(tmp_path: Path, c: int, *, fake: int = 2, docker: int = 0) -> Path:
    text = f'[cluster]\nname = "w{c}"\nsubnet = "127.{c}.0.0/16"\n'
    text += "".join(f'[[masters]]\nname = "master-{i}"\n' for i in (1, 2, 3))
    runtimes = ["fake"] * fake + ["docker"] * docker
    text += "".join(
        f'[[workers]]\nname = "worker-{i}"\nruntime = "{r}"\n'
        for i, r in enumerate(runtimes, start=1)
    )
    path = tmp_path / f"w{c}.toml"
    path.write_text(text)
    return path


def stored_cluster(tmp_path: Path, c: int, **kw: int) -> ClusterConfig:
    """A cluster as `up` leaves it on disk (config and tokens), nothing started."""
    cfg = load_config(cluster_file(tmp_path, c, **kw))
    write_config(cfg)
    write_token_file(cfg.token_file, new_tokens())
    return load_config(cfg.stored_config)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# -- stand-ins -----------------------------------------------------------------------------------


class FakeControl:
    """A control socket at `path` that records each request and answers `reply(request)`."""

    def __init__(self, path: Path, reply: Callable[[Obj], Obj]) -> None:
        self.requests: list[Obj] = []
        self.reply = reply
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with procs.unix_socket_address(path) as address:
            self.sock.bind(address)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    request = json.loads(line)
                    self.requests.append(request)
                    f.write(json.dumps(self.reply(request)).encode() + b"\n")
                    f.flush()

    @property
    def ops(self) -> list[tuple[str, str]]:
        return [(r["op"], r.get("node", "")) for r in self.requests]

    def close(self) -> None:
        self.sock.close()


def start_stand_in(cfg: ClusterConfig) -> int:
    """A sleeper recorded as the `fakenodes` process; its pid."""
    return procs.start_fakenodes(cfg, argv=sleeper_argv(cfg.data_dir)).pid


@contextlib.contextmanager
def control(cfg: ClusterConfig, reply: Callable[[Obj], Obj]) -> Iterator[FakeControl]:
    fake = FakeControl(procs.fakenodes_socket(cfg), reply)
    try:
        yield fake
    finally:
        fake.close()


class _AnyToken(set[str]):
    """Every token is known: the stand-in API serves whatever tokens `up` writes."""

    def __contains__(self, token: object) -> bool:
        return True


class ThreadAPI:
    """The gRPC resource API over `LocalBackend`, served on `address` from a thread with
    its own event loop; `call(coro)` runs a coroutine there (to seed or read the store)."""

    def __init__(self, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store, self.server = self.call(self._start(address))

    async def _start(self, address: str) -> tuple[ObjectStore, grpc.aio.Server]:
        store = ObjectStore(LocalBackend())
        for ns in ("default", "kube-system", "kube-node-lease"):
            await store.create(NAMESPACES, "", {"metadata": {"name": ns}})
        server = grpc.aio.server(options=api.SERVER_OPTIONS, interceptors=[api._Auth(_AnyToken())])
        add_to_server(server, store)
        assert server.add_insecure_port(address), f"{address} is in use"
        await server.start()
        return store, server

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def thread_api(spec: MasterSpec) -> Iterator[ThreadAPI]:
    a = ThreadAPI(f"{spec.ip}:{spec.grpc_port}")
    try:
        yield a
    finally:
        a.close()


@contextlib.contextmanager
def answering(spec: MasterSpec) -> Iterator[None]:
    """master `spec` answers `/status` as the leader of term 1."""
    body = json.dumps({"name": spec.name, "role": "leader", "term": 1, "leader": spec.name})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((spec.ip, spec.health_port), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def node(name: str, ready: str | None) -> Obj:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


def pod(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


# -- chaos routed to fakenodes -------------------------------------------------------------------

OK = {"ok": True, "previous": "running", "state": "dead"}
STARTED = {"ok": True, "previous": "dead", "state": "running"}
WHERE = "fake node in fakenodes, pid {pid}"


class Case(NamedTuple):
    argv: list[str]
    answers: list[Obj]
    ops: list[str]
    rc: int
    expected: str


CASES = {
    "kill": Case(
        ["kill", "worker-2"],
        [OK],
        ["kill"],
        0,
        f"killed worker-2 ({WHERE}: heartbeats and pod updates stop)",
    ),
    "kill-agent-only": Case(
        ["kill", "worker-2", "--agent-only"],
        [OK],
        ["kill"],
        0,
        "--agent-only is the same for a fake node",
    ),
    "kill-dead": Case(
        ["kill", "worker-2"],
        [{"ok": False, "error": "x", "state": "dead"}],
        ["kill"],
        1,
        "worker-2 is not running; start it with `kubelab start worker-2`",
    ),
    "pause": Case(
        ["pause", "worker-2"],
        [{"ok": True, "previous": "running", "state": "paused"}],
        ["pause"],
        0,
        f"paused worker-2 ({WHERE})",
    ),
    "pause-paused": Case(
        ["pause", "worker-2"],
        [{"ok": True, "previous": "paused", "state": "paused"}],
        ["pause"],
        0,
        "worker-2 is already paused; `kubelab resume worker-2`",
    ),
    "resume": Case(
        ["resume", "worker-2"],
        [{"ok": True, "previous": "paused", "state": "running"}],
        ["resume"],
        0,
        f"resumed worker-2 ({WHERE})",
    ),
    "resume-running": Case(
        ["resume", "worker-2"],
        [{"ok": True, "previous": "running", "state": "running"}],
        ["resume"],
        0,
        "worker-2 is not paused",
    ),
    "start": Case(
        ["start", "worker-2"],
        [STARTED],
        ["start"],
        0,
        f"started worker-2 ({WHERE}: it registers and reports its pods again)",
    ),
    "start-paused": Case(
        ["start", "worker-2"],
        [{"ok": False, "error": "x", "state": "paused"}],
        ["start"],
        1,
        "worker-2 is already paused; `kubelab resume worker-2`",
    ),
    "restart": Case(
        ["restart", "worker-2"],
        [OK, STARTED],
        ["kill", "start"],
        0,
        f"killed worker-2 ({WHERE})\nstarted worker-2",
    ),
    "restart-dead": Case(
        ["restart", "worker-2"],
        [{"ok": False, "state": "dead"}, STARTED],
        ["kill", "start"],
        0,
        "started worker-2",
    ),
    "refused": Case(
        ["pause", "worker-2"],
        [{"ok": False, "error": "something odd"}],
        ["pause"],
        1,
        "fakenodes refused: something odd",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_chaos_on_a_fake_worker_goes_to_fakenodes(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    """DESIGN.md: `kill`/`pause` of a fake worker stop that node inside the one process; the
    CLI sends the request to the control socket and words the answer like for a master."""
    cfg = stored_cluster(tmp_path, free_octet(3))
    pid = start_stand_in(cfg)
    replies = iter(case.answers)
    with control(cfg, lambda _r: next(replies)) as ctl:
        rc, out, err = run(capsys, "-c", str(cfg.stored_config), *case.argv)
    assert ctl.ops == [(op, "worker-2") for op in case.ops]
    assert rc == case.rc
    assert case.expected.format(pid=pid) in (out if rc == 0 else err)


def test_chaos_on_a_fake_worker_without_fakenodes(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = stored_cluster(tmp_path, free_octet(3), fake=1, docker=1)
    config = str(cfg.stored_config)
    rc, _, err = run(capsys, "kill", "worker-1", "-c", config)
    assert rc == 1
    assert "fakenodes, the process of the fake workers, is not running; `kubelab up`" in err
    rc, _, err = run(capsys, "pause", "worker-2", "-c", config)
    assert rc == 1 and "workers do not run yet" in err and "'docker'" in err

    pid = start_stand_in(cfg)  # runs, but nothing listens on its socket
    rc, _, err = run(capsys, "start", "worker-1", "-c", config)
    assert rc == 1 and f"cannot reach fakenodes (pid {pid})" in err and "fakenodes.log" in err
    procs.cluster_table(cfg).pause(procs.FAKENODES)
    rc, _, err = run(capsys, "resume", "worker-1", "-c", config)
    assert rc == 1 and "is stopped (SIGSTOP)" in err and f"kill -CONT {pid}" in err


# -- status ------------------------------------------------------------------------------------


def test_status_shows_fake_workers_and_pods(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`workers`: the fakenodes pid as kubelet_pid, no proxy, state from the control socket,
    ready from the Node's Ready condition (null without one or without a Node); `pods`
    counts by phase; the human form has a workers table and the pods line."""
    cfg = stored_cluster(tmp_path, free_octet(3), fake=3, docker=1)
    pid = start_stand_in(cfg)
    states = {"worker-1": "running", "worker-2": "paused", "worker-3": "dead"}
    m1 = cfg.masters[0]
    with (
        thread_api(m1) as a,
        answering(m1),
        control(cfg, lambda _r: {"ok": True, "pid": pid, "nodes": states}),
    ):
        a.call(a.store.create(NODES, "", node("worker-1", "True")))
        a.call(a.store.create(NODES, "", node("worker-2", "Unknown")))
        for name, phase in (("a", "Running"), ("b", "Running"), ("c", "Pending")):
            created = a.call(a.store.create(PODS, "default", pod(name)))
            created["status"]["phase"] = phase
            a.call(a.store.update(PODS, "default", name, created, subresource="status"))
        t0 = time.monotonic()
        rc, out, _ = run(capsys, "status", "--json", "-c", str(cfg.stored_config))
        elapsed = time.monotonic() - t0
        assert rc == 0
        rc, text, _ = run(capsys, "status", "-c", str(cfg.stored_config))
        assert rc == 0
    assert elapsed < 1.5, f"status took {elapsed:.2f} s"
    doc = json.loads(out)
    assert all(set(w) >= WORKER_KEYS for w in doc["workers"])
    got = [{k: w[k] for k in sorted(WORKER_KEYS)} for w in doc["workers"]]
    assert got == [
        {
            "alive": True,
            "kubelet_pid": pid,
            "name": "worker-1",
            "proxy_pid": None,
            "ready": True,
            "state": "running",
        },
        {
            "alive": False,
            "kubelet_pid": pid,
            "name": "worker-2",
            "proxy_pid": None,
            "ready": None,
            "state": "paused",
        },
        {
            "alive": False,
            "kubelet_pid": pid,
            "name": "worker-3",
            "proxy_pid": None,
            "ready": None,
            "state": "dead",
        },
    ]
    assert list(doc["pods"].items()) == [("Running", 2), ("Pending", 1)]
    header = next(line for line in text.splitlines() if line.startswith("WORKER"))
    assert header.split() == ["WORKER", "KUBELET", "PROXY", "STATE", "READY", "NOTE"]
    row = next(line for line in text.splitlines() if line.startswith("worker-1 "))
    assert row.split()[:5] == ["worker-1", str(pid), "-", "running", "True"]
    assert "pods: Running 2, Pending 1" in text
    assert "workers worker-4: not running yet" in text


def test_status_with_fakenodes_dead_or_paused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The process's own state stands for its nodes when it cannot answer; without any
    answering master, pods and readiness are unknown."""
    cfg = stored_cluster(tmp_path, free_octet(3), fake=2)
    rc, out, _ = run(capsys, "status", "--json", "-c", str(cfg.stored_config))
    assert rc == 0
    doc = json.loads(out)
    assert [(w["state"], w["kubelet_pid"], w["ready"]) for w in doc["workers"]] == [
        ("dead", None, None),
        ("dead", None, None),
    ]
    assert (doc["pods"], doc["api_error"]) == ({}, "no master answered")
    pid = start_stand_in(cfg)
    procs.cluster_table(cfg).pause(procs.FAKENODES)
    rc, out, _ = run(capsys, "status", "--json", "-c", str(cfg.stored_config))
    assert rc == 0
    doc = json.loads(out)
    assert [(w["state"], w["alive"], w["kubelet_pid"]) for w in doc["workers"]] == [
        ("paused", False, pid),
        ("paused", False, pid),
    ]
    _, text, _ = run(capsys, "status", "-c", str(cfg.stored_config))
    assert "pods: unknown (no master answered)" in text


# -- the whole path: up, status, kill, start, down -----------------------------------------------


@pytest.fixture
def fake_master(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masters run tests/fakemaster.py instead of `python -m controlplane`."""

    def argv(cfg: ClusterConfig, spec: MasterSpec, *, initial_cluster: bool) -> list[str]:
        a = [sys.executable, str(FAKE_MASTER), "controlplane", "--config", str(cfg.stored_config)]
        a += ["--name", spec.name]
        return [*a, "--initial-cluster"] if initial_cluster else a

    monkeypatch.setattr(procs, "master_argv", argv)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_up_runtime_fake_starts_fakenodes_and_waits_for_ready_nodes(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_master: None,
    summary: Callable[[str, str], None],
) -> None:
    """`up --runtime fake --workers 2` starts the fake-node process once the masters are
    ready and returns when both nodes are Ready; `status` shows them; `kill worker-2` stops
    its lease renewals, `start` brings it back; `down` stops fakenodes with the masters."""
    c = free_octet(3)
    path = cluster_file(tmp_path, c, fake=0, docker=1)
    cfg = load_config(path)
    with thread_api(cfg.masters[0]) as a:
        t0 = time.monotonic()
        rc, out, err = run(
            capsys, "up", "-c", str(path), "--runtime", "fake", "--workers", "2", "--timeout", "30"
        )
        summary("kubelab CLI", f"up with 2 fake workers took {time.monotonic() - t0:.2f} s")
        assert rc == 0, out + err
        assert "workers: none yet" not in out
        assert "starting fakenodes (2 fake workers) ... ok (pid " in out
        assert "waiting for 2 nodes to be Ready " in out and " ok (" in out
        assert (
            f"cluster w{c} is up: leader master-1 (term 1), 3 masters, 2 fake workers Ready" in out
        )
        assert "kubelab kill worker-1" in out
        stored = load_config(load_config(path).stored_config)
        assert [(w.name, w.runtime) for w in stored.workers] == [
            ("worker-1", "fake"),
            ("worker-2", "fake"),
        ]
        fakenodes = procs.cluster_table(stored).find(procs.FAKENODES)
        assert fakenodes is not None
        assert procs.fakenodes_log(stored).is_file()

        rc, out, _ = run(capsys, "status", "--json", "--cluster", f"w{c}")
        doc = json.loads(out)
        assert [(w["name"], w["state"], w["ready"], w["kubelet_pid"]) for w in doc["workers"]] == [
            ("worker-1", "running", True, fakenodes.pid),
            ("worker-2", "running", True, fakenodes.pid),
        ]

        def renew_time() -> str:
            lease = a.call(a.store.get(LEASES, "kube-node-lease", "worker-2"))
            return str(lease["spec"]["renewTime"])

        rc, out, _ = run(capsys, "kill", "worker-2")
        assert rc == 0 and out.startswith("killed worker-2 (fake node in fakenodes")
        frozen = renew_time()
        rc, out, _ = run(capsys, "status", "--json")
        assert [w["state"] for w in json.loads(out)["workers"]] == ["running", "dead"]
        rc, out, _ = run(capsys, "start", "worker-2")
        assert rc == 0 and out.startswith("started worker-2")
        wait_for(lambda: renew_time() != frozen, "worker-2's lease renewed after start")

        rc, out, _ = run(capsys, "up", "-c", str(path), "--runtime", "fake", "--workers", "2")
        assert rc == 0 and f"cluster w{c} is already up" in out

        rc, out, _ = run(capsys, "down")
        assert rc == 0
        assert sorted(line.split(" (")[0] for line in out.splitlines()) == [
            "stopped fakenodes",
            "stopped master-1",
            "stopped master-2",
            "stopped master-3",
        ]
        assert not procs.fakenodes_socket(stored).exists(), "removed on SIGTERM"
