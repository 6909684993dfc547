"""Chaos on one member: `kill`, `pause`, `resume`, `start`, `restart`.

Each acts on one process through the cluster's pid files (`controlplane.procs`), only on a
process that is provably ours, and prints what it did (`killed master-2 (pid 1234)`).
Killed members are not restarted automatically: that is the point of a chaos demo.

`start` refuses a master whose data dir holds no Raft log: an empty member must not vote in
an existing cluster (it could help elect a leader that lacks committed writes). The master
process refuses too (exit code 3); the CLI checks first to say what to do instead.
Workers are named in cluster.toml but have no processes yet (the kubelet issue): commands on
them say so.
"""

from __future__ import annotations

import argparse

from controlplane.config import ClusterConfig, MasterSpec
from controlplane.procs import (
    NotRunning,
    ProcessTable,
    ProcState,
    cluster_table,
    master_has_state,
    start_master,
)

from .common import EXIT_USAGE, CliError, cluster_from_args, exit_note, print_tail, say, settle


def _master(cfg: ClusterConfig, name: str) -> MasterSpec:
    for m in cfg.masters:
        if m.name == name:
            return m
    if any(w.name == name for w in cfg.workers):
        raise CliError(
            f"{name} is a worker; workers do not run yet (coming with the kubelet issue)"
        )
    raise CliError(
        f"no member named {name!r} in cluster {cfg.name!r}; members: {', '.join(cfg.names)}",
        EXIT_USAGE,
    )


def _not_running(name: str) -> CliError:
    return CliError(f"{name} is not running; start it with `kubelab start {name}`")


def cmd_kill(args: argparse.Namespace) -> int:
    """`kubelab kill NAME [--agent-only]`: SIGKILL."""
    cfg = cluster_from_args(args)
    spec = _master(cfg, args.name)
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
    spec = _master(cfg, args.name)
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
    spec = _master(cfg, args.name)
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
    spec = _master(cfg, args.name)
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
        p.add_argument("name", metavar="NAME", help="member name, e.g. master-2")
        if name == "kill":
            p.add_argument(
                "--agent-only",
                action="store_true",
                help="workers only: kill the kubelet, leave its pods running",
            )
        p.set_defaults(func=func)
