"""Chaos on one member: `kill`, `pause`, `resume`, `start`, `restart`.

Each acts on one process through the cluster's pid files (`controlplane.procs`), only on a
process that is provably ours, and prints what it did (`killed master-2 (pid 1234)`).
Killed members are not restarted automatically: that is the point of a chaos demo.

`start` refuses a master whose data dir holds no Raft log: an empty member must not vote in
an existing cluster (it could help elect a leader that lacks committed writes). The master
process refuses too (exit code 3); the CLI checks first to say what to do instead.

Fake workers all live in one process (`fakenodes`), so a command on one of them is a request
on that process's control socket (`controlplane.procs.control_call`): `kill` is a node crash
(heartbeats, lease renewals and pod updates stop; `--agent-only` is the same, a fake node
has no containers to spare), `start` a fresh kubelet, `pause`/`resume` stop and continue the
node inside the process, `restart` is kill then start. Workers of the docker and process
runtimes have no processes yet (the kubelet issue): commands on them say so.
"""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.config import ClusterConfig, MasterSpec, WorkerSpec
from controlplane.procs import (
    FAKENODES,
    ControlError,
    NotRunning,
    ProcessTable,
    ProcState,
    cluster_table,
    control_call,
    fakenodes_log,
    fakenodes_socket,
    master_has_state,
    start_master,
)

from .common import EXIT_USAGE, CliError, cluster_from_args, exit_note, print_tail, say, settle


def _member(cfg: ClusterConfig, name: str) -> MasterSpec | WorkerSpec:
    """The master or fake worker called `name`; a clear error for anything else."""
    for m in cfg.masters:
        if m.name == name:
            return m
    for w in cfg.workers:
        if w.name == name:
            if w.runtime == "fake":
                return w
            raise CliError(
                f"{name} is a worker of runtime {w.runtime!r}; workers do not run yet "
                "with that runtime (coming with the kubelet issue)"
            )
    raise CliError(
        f"no member named {name!r} in cluster {cfg.name!r}; members: {', '.join(cfg.names)}",
        EXIT_USAGE,
    )


# -- fake workers: requests to the fakenodes process -------------------------------------------


def _fake(cfg: ClusterConfig, worker: WorkerSpec, op: str) -> tuple[dict[str, Any], int]:
    """Ask `fakenodes` to `op` the node; (its answer, its pid). A clear `CliError` when the
    process does not run or does not answer."""
    state, rec = cluster_table(cfg).lookup(FAKENODES)
    if rec is None:
        raise CliError(
            f"{worker.name} is not running: {FAKENODES}, the process of the fake workers, is "
            "not running; `kubelab up` starts it (with every fake worker)"
        )
    if state is ProcState.PAUSED:
        raise CliError(
            f"{FAKENODES} (pid {rec.pid}), the process of the fake workers, is stopped "
            f"(SIGSTOP) and cannot act on {worker.name}: continue it with `kill -CONT {rec.pid}`"
        )
    try:
        answer = control_call(fakenodes_socket(cfg), {"op": op, "node": worker.name})
    except ControlError as e:
        raise CliError(
            f"cannot reach {FAKENODES} (pid {rec.pid}): {e}; its log is {fakenodes_log(cfg)}"
        ) from None
    return answer, rec.pid


def _fake_refused(worker: WorkerSpec, answer: dict[str, Any]) -> CliError:
    state = answer.get("state")
    if state == ProcState.DEAD:
        return _not_running(worker.name)
    if state in (ProcState.RUNNING, ProcState.PAUSED):
        hint = f"; `kubelab resume {worker.name}`" if state == ProcState.PAUSED else ""
        return CliError(f"{worker.name} is already {state}{hint}")
    return CliError(f"{FAKENODES} refused: {answer.get('error') or answer}")


def _fake_where(pid: int) -> str:
    return f"fake node in {FAKENODES}, pid {pid}"


def _fake_kill(cfg: ClusterConfig, worker: WorkerSpec, *, agent_only: bool) -> int:
    answer, pid = _fake(cfg, worker, "kill")
    if not answer.get("ok"):
        raise _fake_refused(worker, answer)
    extra = "; --agent-only is the same for a fake node" if agent_only else ""
    say(f"killed {worker.name} ({_fake_where(pid)}: heartbeats and pod updates stop{extra})")
    return 0


def _fake_pause(cfg: ClusterConfig, worker: WorkerSpec, *, pause: bool) -> int:
    answer, pid = _fake(cfg, worker, "pause" if pause else "resume")
    if not answer.get("ok"):
        raise _fake_refused(worker, answer)
    previous = answer.get("previous")
    if pause and previous == ProcState.PAUSED:
        say(f"{worker.name} is already paused; `kubelab resume {worker.name}`")
    elif not pause and previous == ProcState.RUNNING:
        say(f"{worker.name} is not paused")
    else:
        say(f"{'paused' if pause else 'resumed'} {worker.name} ({_fake_where(pid)})")
    return 0


def _fake_start(cfg: ClusterConfig, worker: WorkerSpec, *, restart: bool) -> int:
    if restart:
        answer, pid = _fake(cfg, worker, "kill")
        if answer.get("ok"):
            say(f"killed {worker.name} ({_fake_where(pid)})")
    answer, pid = _fake(cfg, worker, "start")
    if not answer.get("ok"):
        raise _fake_refused(worker, answer)
    say(f"started {worker.name} ({_fake_where(pid)}: it registers and reports its pods again)")
    return 0


def _not_running(name: str) -> CliError:
    return CliError(f"{name} is not running; start it with `kubelab start {name}`")


def cmd_kill(args: argparse.Namespace) -> int:
    """`kubelab kill NAME [--agent-only]`: SIGKILL."""
    cfg = cluster_from_args(args)
    spec = _member(cfg, args.name)
    if isinstance(spec, WorkerSpec):
        return _fake_kill(cfg, spec, agent_only=args.agent_only)
    if args.agent_only:
        raise CliError(
            f"--agent-only kills only a worker's kubelet: not applicable to masters "
            f"(`kubelab kill {spec.name}` kills the whole master)",
            EXIT_USAGE,
        )
    try:
        rec = cluster_table(cfg).kill(spec.name)
    except NotRunning:
        raise _not_running(spec.name) from None
    say(f"killed {spec.name} (pid {rec.pid})")
    return 0


def _stop_or_continue(args: argparse.Namespace, *, pause: bool) -> int:
    cfg = cluster_from_args(args)
    spec = _member(cfg, args.name)
    if isinstance(spec, WorkerSpec):
        return _fake_pause(cfg, spec, pause=pause)
    table = cluster_table(cfg)
    state, rec = table.lookup(spec.name)
    if rec is None:
        raise _not_running(spec.name)
    if pause and state is ProcState.PAUSED:
        say(f"{spec.name} is already paused (pid {rec.pid}); `kubelab resume {spec.name}`")
        return 0
    if not pause and state is ProcState.RUNNING:
        say(f"{spec.name} is not paused (pid {rec.pid})")
        return 0
    if pause:
        table.pause(spec.name)
    else:
        table.resume(spec.name)
    say(f"{'paused' if pause else 'resumed'} {spec.name} (pid {rec.pid})")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    """`kubelab pause NAME`: SIGSTOP (it keeps its sockets; peers see silence)."""
    return _stop_or_continue(args, pause=True)


def cmd_resume(args: argparse.Namespace) -> int:
    """`kubelab resume NAME`: SIGCONT."""
    return _stop_or_continue(args, pause=False)


def _check_startable(cfg: ClusterConfig, spec: MasterSpec) -> None:
    if not cfg.stored_config.is_file():
        raise CliError(f"cluster {cfg.name} was never started: run `kubelab up`")
    if not master_has_state(spec):
        raise CliError(
            f"{spec.name}: {spec.data_dir} holds no Raft log. A master with an empty data dir "
            "must not vote in an existing cluster (it could help elect a leader that lacks "
            "committed writes). If the cluster is new, `kubelab up` bootstraps it; to start "
            "afresh, deleting its data: `kubelab down --purge`, then `kubelab up`."
        )


def _start(cfg: ClusterConfig, table: ProcessTable, spec: MasterSpec) -> None:
    _check_startable(cfg, spec)
    rec = start_master(cfg, spec, initial_cluster=False)
    if settle(table, rec) is ProcState.DEAD:
        print_tail(spec.log_file)
        raise CliError(f"{spec.name} did not start: {exit_note(rec)}; its log is {spec.log_file}")
    say(f"started {spec.name} (pid {rec.pid})")


def cmd_start(args: argparse.Namespace) -> int:
    """`kubelab start NAME`: start a stopped member (never an empty one)."""
    cfg = cluster_from_args(args)
    spec = _member(cfg, args.name)
    if isinstance(spec, WorkerSpec):
        return _fake_start(cfg, spec, restart=False)
    table = cluster_table(cfg)
    state, rec = table.lookup(spec.name)
    if rec is not None:
        hint = f"; `kubelab resume {spec.name}`" if state is ProcState.PAUSED else ""
        raise CliError(f"{spec.name} is already {state} (pid {rec.pid}){hint}")
    _start(cfg, table, spec)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    """`kubelab restart NAME`: kill (if running or paused), then start; a member that could
    not start again (empty data dir) is refused before it is killed."""
    cfg = cluster_from_args(args)
    spec = _member(cfg, args.name)
    if isinstance(spec, WorkerSpec):
        return _fake_start(cfg, spec, restart=True)
    table = cluster_table(cfg)
    _check_startable(cfg, spec)  # refuse before killing anything
    if table.find(spec.name) is not None:
        try:
            rec = table.kill(spec.name)
            say(f"killed {spec.name} (pid {rec.pid})")
        except NotRunning:
            pass
    _start(cfg, table, spec)
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = (
        ("kill", cmd_kill, "SIGKILL a member (a crash)"),
        ("pause", cmd_pause, "SIGSTOP a member (it keeps its sockets but never answers)"),
        ("resume", cmd_resume, "SIGCONT a paused member"),
        ("start", cmd_start, "start a stopped member (refuses an empty data dir)"),
        ("restart", cmd_restart, "kill a member, then start it"),
    )
    for name, func, text in commands:
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("name", metavar="NAME", help="member name, e.g. master-2 or worker-1")
        if name == "kill":
            p.add_argument(
                "--agent-only",
                action="store_true",
                help="workers only: kill the kubelet, leave its pods running",
            )
        p.set_defaults(func=func)
