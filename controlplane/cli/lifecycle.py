"""`kubelab up` and `kubelab down`: create, start, stop and remove a cluster.

`up` decides, in this order:

1. **What is asked**: `-c FILE` plus the flags; without `-c`, the cluster's effective config
   if `up` ran before (so `kubelab up` restarts a stopped cluster as it was), else the
   packaged default; `--cluster NAME` picks `$KUBELAB_HOME/NAME`.
2. **Whether it exists**: `<data_dir>/cluster.toml` exists. The master list of an existing
   cluster cannot change (a member's Raft id is its position; membership changes are not
   implemented), so a different one is refused with both ways out. Other settings (timers,
   raft, workers) of a *stopped* cluster are rewritten from the request; a running cluster
   keeps its file.
3. **Whether it runs**: every master running or paused means "already up" (exit 0); the dead
   ones of a partly running cluster are started.
4. **Bootstrap**: `--initial-cluster` is passed only when no master of the cluster has a Raft
   log yet (a brand-new cluster, or a first `up` that failed before any member wrote one). A
   member whose log is gone while others have one is skipped with a warning: it must not vote.
5. **Readiness**: wait (default 60 s) until a leader of the highest term is known and a
   majority answers `/readyz` 200; a master that dies meanwhile ends the wait with its log.
6. **Fake workers**: once the masters are ready, if any worker's runtime is "fake", `up`
   starts the process that hosts them all (`fakenodes`, unless it runs) and waits until
   every fake node is Ready in the API (same timeout). Workers of the docker and process
   runtimes do not run yet (the kubelet issue); `--workers 0` means masters only.

Before any master starts, `up` makes what they and clients read: the token file (once), the
CA and serving certificate in `<data_dir>/pki` and the kubeconfig (`controlplane.pki`;
idempotent, the serving certificate re-issued when it lacks an address).

`down` terminates every recorded process of the cluster (SIGTERM, then SIGKILL after a grace
period) and removes the pid files; `--purge` removes the data dir, and only a data dir that
holds the cluster's own `cluster.toml` (with its uid): never anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

from controlplane.config import (
    ClusterConfig,
    ConfigError,
    WorkerSpec,
    find_cluster,
    known_clusters,
    kubelab_home,
    load_config,
    new_tokens,
    new_uid,
    register_cluster,
    unregister_cluster,
    write_config,
    write_token_file,
)
from controlplane.pki import ensure_kubeconfig, ensure_pki
from controlplane.procs import (
    FAKENODES,
    ProcessTable,
    ProcState,
    cluster_alive,
    cluster_table,
    fake_workers,
    fakenodes_log,
    master_has_state,
    start_fakenodes,
    start_master,
)

from .common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    cluster_from_args,
    exit_note,
    print_tail,
    say,
    settle,
)
from .status import PROBE_TIMEOUT_S, leader_of, probe_all, read_api

DEFAULT_WAIT_S = 60.0
STOP_GRACE_S = 5.0
NODE_READ_TIMEOUT_S = 2.0


# -- up ----------------------------------------------------------------------------------------


def _requested(args: argparse.Namespace) -> ClusterConfig:
    overrides: dict[str, object] = {}
    if args.masters is not None:
        overrides["masters"] = args.masters
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.runtime is not None:
        overrides["workers.runtime"] = args.runtime
    if args.timers is not None:
        overrides["cluster.timers"] = args.timers
    if args.config is not None:
        return load_config(args.config, overrides=overrides)
    base = find_cluster(None, args.cluster, running=False)
    return load_config(base.source, overrides=overrides)


def _check_same_masters(
    stored: ClusterConfig, requested: ClusterConfig, args: argparse.Namespace
) -> None:
    if stored.name != requested.name:
        raise CliError(
            f"{stored.data_dir} holds cluster {stored.name!r}, not {requested.name!r}: give "
            f"{requested.name!r} its own [cluster] data_dir",
            EXIT_USAGE,
        )
    old = [m.name for m in stored.masters]
    new = [m.name for m in requested.masters]
    if old == new:
        return
    with_c = f" -c {args.config}" if args.config is not None else ""
    what = (
        f"{len(old)} masters ({', '.join(old)})"
        if len(old) != len(new)
        else f"the masters {', '.join(old)}"
    )
    keep = (
        f"`kubelab up --masters {len(old)}{with_c}`"
        if len(old) != len(new)
        else f"`kubelab up` with the masters {', '.join(old)}"
    )
    raise CliError(
        f"{stored.data_dir} holds cluster {stored.name!r} with {what}; the masters of an "
        f"existing cluster cannot change (a master's Raft id is its position). Keep it and its "
        f"data: {keep}. Or start afresh, deleting its data: `kubelab down --purge{with_c}`, "
        f"then `kubelab up` again.",
        EXIT_USAGE,
    )


def _check_new_data_dir(cfg: ClusterConfig) -> None:
    """A new cluster goes only into a new or empty directory: `down --purge` deletes the
    data dir, and must never delete anything that kubelab did not create."""
    d = cfg.data_dir
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise CliError(
            f"{d} exists and is not an empty directory, and holds no cluster.toml of kubelab: "
            "a new cluster needs a new or empty data dir (so that `kubelab down --purge` never "
            "deletes anything else). Set another [cluster] data_dir, or move that one away.",
            EXIT_USAGE,
        )


def _check_subnet_free(cfg: ClusterConfig) -> None:
    for other in known_clusters():
        if other.name != cfg.name and other.subnet == cfg.subnet and cluster_alive(other):
            raise CliError(
                f"subnet {cfg.subnet} is in use by the running cluster {other.name!r} "
                f"({other.data_dir}); give {cfg.name!r} another [cluster] subnet, or stop "
                f"the other: `kubelab down --cluster {other.name}`",
                EXIT_USAGE,
            )


def cmd_up(args: argparse.Namespace) -> int:
    """`kubelab up`: see the module docstring."""
    requested = _requested(args)
    for w in requested.warnings:
        say(f"warning: {w}")
    table = cluster_table(requested)
    stored = load_config(requested.stored_config) if requested.stored_config.is_file() else None

    if stored is not None:
        _check_same_masters(stored, requested, args)
        states = {m.name: table.state(m.name) for m in stored.masters}
        if any(s is not ProcState.DEAD for s in states.values()):
            cfg = stored  # (partly) running: its processes read this file; leave it alone
            if all(s is not ProcState.DEAD for s in states.values()):
                return _already_up(cfg, table, args.timeout)
            if dataclasses.replace(requested, uid=stored.uid, source=stored.source) != stored:
                say("note: the cluster is partly running; its settings stay as they are")
        else:
            cfg = dataclasses.replace(requested, uid=stored.uid or new_uid())
    else:
        _check_new_data_dir(requested)
        cfg = dataclasses.replace(requested, uid=new_uid())

    _check_subnet_free(cfg)
    register_cluster(cfg)
    if cfg is not stored:
        write_config(cfg)
    cfg = load_config(cfg.stored_config)  # exactly what the masters will read
    table.run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.token_file.exists():
        write_token_file(cfg.token_file, new_tokens())
    ensure_pki(cfg)  # before the masters start: they serve with <data_dir>/pki
    ensure_kubeconfig(cfg)

    initial = not any(master_has_state(m) for m in cfg.masters)
    expected = []
    for m in cfg.masters:
        state = table.state(m.name)
        if state is not ProcState.DEAD:
            say(f"{m.name} ({m.ip}) is already {state}")
            expected.append(m.name)
            continue
        if not initial and not master_has_state(m):
            say(
                f"warning: skipping {m.name}: {m.data_dir} holds no Raft log, and a master with "
                "an empty data dir must not vote in an existing cluster. To start afresh: "
                "`kubelab down --purge`, then `kubelab up`"
            )
            continue
        say(f"starting {m.name} ({m.ip}) ... ", end="")
        rec = start_master(cfg, m, initial_cluster=initial)
        if settle(table, rec) is ProcState.DEAD:
            say("failed")
            print_tail(m.log_file)
            raise CliError(
                f"{m.name} did not start: {exit_note(rec)}; its log is {m.log_file}. Fix the "
                "cause, then run `kubelab up` again (`kubelab down` stops the others)."
            )
        say(f"ok (pid {rec.pid})")
        expected.append(m.name)
    if len(expected) < cfg.quorum:
        raise CliError(
            f"only {len(expected)} of {len(cfg.masters)} masters can run, fewer than a "
            f"majority ({cfg.quorum}): the cluster cannot elect a leader. To start afresh: "
            "`kubelab down --purge`, then `kubelab up`."
        )
    _say_other_workers(cfg)
    leader, term = _wait_ready(cfg, table, expected, args.timeout)
    if fake_workers(cfg):
        _start_fake_workers(cfg, table, args.timeout)
    _next_steps(cfg, leader, term)
    return 0


def _already_up(cfg: ClusterConfig, table: ProcessTable, timeout_s: float) -> int:
    say(f"cluster {cfg.name} is already up ({len(cfg.masters)} masters, data dir {cfg.data_dir})")
    for m in cfg.masters:
        if table.state(m.name) is ProcState.PAUSED:
            say(f"note: {m.name} is paused: `kubelab resume {m.name}`")
    if fake_workers(cfg) and table.state(FAKENODES) is ProcState.DEAD:
        _start_fake_workers(cfg, table, timeout_s)
    say("see it with `kubelab status`; stop it with `kubelab down`")
    return 0


def _say_other_workers(cfg: ClusterConfig) -> None:
    """Workers of the docker and process runtimes have no kubelet yet: say so."""
    others = [w for w in cfg.workers if w.runtime != "fake"]
    if not others:
        return
    if len(others) == len(cfg.workers):
        say("workers: none yet (coming with the kubelet issue)")
    else:
        say(
            f"workers {', '.join(w.name for w in others)}: not started (the docker and "
            "process runtimes come with the kubelet issue)"
        )


def _start_fake_workers(cfg: ClusterConfig, table: ProcessTable, timeout_s: float) -> None:
    """Start `fakenodes` unless it runs, then wait until every fake node is Ready."""
    workers = fake_workers(cfg)
    log = fakenodes_log(cfg)
    state, rec = table.lookup(FAKENODES)
    if rec is None:
        say(f"starting {FAKENODES} ({_count_of(len(workers), 'fake worker')}) ... ", end="")
        rec = start_fakenodes(cfg)
        if settle(table, rec) is ProcState.DEAD:
            say("failed")
            print_tail(log)
            raise CliError(
                f"{FAKENODES} did not start: {exit_note(rec)}; its log is {log}. The masters "
                "are up: fix the cause and run `kubelab up` again."
            )
        say(f"ok (pid {rec.pid})")
    elif state is ProcState.PAUSED:
        raise CliError(
            f"{FAKENODES} (pid {rec.pid}), the process of the fake workers, is stopped "
            f"(SIGSTOP): continue it with `kill -CONT {rec.pid}`, or `kubelab down` and "
            "`kubelab up`"
        )
    else:
        say(f"{FAKENODES} is already running (pid {rec.pid})")
    _wait_nodes_ready(cfg, table, workers, timeout_s)


def _count_of(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _wait_nodes_ready(
    cfg: ClusterConfig, table: ProcessTable, workers: tuple[WorkerSpec, ...], timeout_s: float
) -> None:
    """Poll the API until every node of `workers` is Ready; fail if `fakenodes` dies."""
    say(f"waiting for {_count_of(len(workers), 'node')} to be Ready ", end="")
    names = [w.name for w in workers]
    endpoints = [f"{m.ip}:{m.grpc_port}" for m in cfg.masters]
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    log = fakenodes_log(cfg)
    while True:
        round_start = time.monotonic()
        view = read_api(cfg, endpoints, NODE_READ_TIMEOUT_S, pods=False)
        ready = [n for n in names if view.ready.get(n) is True]
        if len(ready) == len(names):
            say(f" ok ({time.monotonic() - t0:.1f} s)")
            return
        if table.state(FAKENODES) is ProcState.DEAD:
            say(" failed")
            rec = table.record(FAKENODES)
            say(f"{FAKENODES}: {exit_note(rec) if rec else 'it exited'}")
            print_tail(log)
            raise CliError(
                f"{FAKENODES} exited while its nodes were registering; see the log lines "
                f"above ({log}). The masters are up: fix the cause and run `kubelab up` again."
            )
        if time.monotonic() >= deadline:
            say(" timed out")
            missing = [n for n in names if n not in ready]
            why = f"; the API: {view.error}" if view.error else ""
            raise CliError(
                f"not every node is Ready after {timeout_s:g} s (not Ready: "
                f"{', '.join(missing)}{why}). The masters and {FAKENODES} are still running: "
                f"look at `kubelab status` and {log}; `kubelab down` stops everything."
            )
        say(".", end="")
        time.sleep(max(0.0, 0.5 - (time.monotonic() - round_start)))


def _wait_ready(
    cfg: ClusterConfig, table: ProcessTable, expected: list[str], timeout_s: float
) -> tuple[str, int]:
    """Wait for a leader of the highest term and a ready majority; (leader, term)."""
    say("waiting for a leader and a ready majority ", end="")
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    targets = [(m.ip, m.health_port, "/status") for m in cfg.masters]
    targets += [(m.ip, m.health_port, "/readyz") for m in cfg.masters]
    n = len(cfg.masters)
    while True:
        round_start = time.monotonic()
        probes = probe_all(targets, PROBE_TIMEOUT_S)
        reports = []
        for m, p in zip(cfg.masters, probes[:n], strict=True):
            info = p.json() or {}
            reports.append(
                {
                    "name": m.name,
                    "state": table.state(m.name),
                    "role": info.get("role"),
                    "term": info.get("term"),
                    "reported_leader": info.get("leader"),
                }
            )
        leader, term = leader_of(reports)
        ready = sum(1 for p in probes[n:] if p.status == 200)
        if leader is not None and term is not None and ready >= cfg.quorum:
            say(f" ok ({time.monotonic() - t0:.1f} s)")
            return leader, term
        dead = [
            m for m in cfg.masters if m.name in expected and table.state(m.name) is ProcState.DEAD
        ]
        if dead:
            say(" failed")
            for m in dead:
                rec = table.record(m.name)
                note = exit_note(rec) if rec else "it exited"
                say(f"{m.name}: {note}")
                print_tail(m.log_file)
            raise CliError(
                f"{', '.join(m.name for m in dead)} exited while the cluster was starting; see "
                "the log lines above. Fix the cause and run `kubelab up` again (`kubelab down` "
                "stops the masters still running)."
            )
        if time.monotonic() >= deadline:
            say(" timed out")
            logs = ", ".join(str(m.log_file) for m in cfg.masters)
            raise CliError(
                f"no leader with a ready majority after {timeout_s:g} s (leader: "
                f"{leader or 'none'}, ready: {ready}/{n}, quorum {cfg.quorum}). The masters are "
                f"still running: look at `kubelab status` and their logs ({logs}); "
                "`kubelab down` stops them."
            )
        say(".", end="")
        time.sleep(max(0.0, 0.5 - (time.monotonic() - round_start)))


def _next_steps(cfg: ClusterConfig, leader: str, term: int) -> None:
    fake = fake_workers(cfg)
    workers = f", {_count_of(len(fake), 'fake worker')} Ready" if fake else ""
    say(
        f"cluster {cfg.name} is up: leader {leader} (term {term}), {len(cfg.masters)} masters"
        + workers
    )
    say(f"  data dir:   {cfg.data_dir}")
    say(f"  tokens:     {cfg.token_file}")
    if cfg.kubeconfig.exists():
        say(f"  kubeconfig: {cfg.kubeconfig}")
    say("next steps:")
    say("  kubelab status                 # roles, terms, commit indexes")
    say("  kubelab kv put hello world     # a replicated write")
    say(f"  kubelab kill {leader:<17} # kill the leader, watch a new election")
    if fake:
        say(f"  kubelab kill {fake[0].name:<17} # a node crash: its heartbeats stop")
        say('  kubectl --kubeconfig "$(kubelab kubeconfig)" get nodes')
    else:
        say('  kubectl --kubeconfig "$(kubelab kubeconfig)" get namespaces')


# -- down --------------------------------------------------------------------------------------


def cmd_down(args: argparse.Namespace) -> int:
    """`kubelab down [--purge]`: see the module docstring."""
    cfg = cluster_from_args(args)
    table = cluster_table(cfg)
    stopped = table.stop(table.names(), grace_s=STOP_GRACE_S)
    for rec, how in stopped:
        if how == "terminated":
            say(f"stopped {rec.name} (pid {rec.pid})")
        else:
            say(f"killed {rec.name} (pid {rec.pid}): it did not exit within {STOP_GRACE_S:g} s")
    if not stopped:
        say(f"cluster {cfg.name}: nothing was running")
    if args.purge:
        _purge(cfg)
    return 0


def _purge(cfg: ClusterConfig) -> None:
    data_dir = cfg.data_dir
    if not cfg.stored_config.is_file():
        say(f"nothing to purge: {data_dir} holds no cluster.toml written by `kubelab up`")
        unregister_cluster(cfg)
        return
    try:
        owner = load_config(cfg.stored_config)
    except ConfigError as e:
        raise CliError(
            f"not removing {data_dir}: its cluster.toml does not load ({e}); remove the "
            "directory by hand if it is yours"
        ) from None
    same_dir = os.path.normpath(owner.data_dir) == os.path.normpath(data_dir)
    if owner.name != cfg.name or not same_dir or not owner.uid:
        raise CliError(
            f"not removing {data_dir}: its cluster.toml describes cluster {owner.name!r} in "
            f"{owner.data_dir} (uid {owner.uid or 'none'}), not this one; remove it by hand if "
            "it is yours"
        )
    resolved = data_dir.resolve()
    if resolved in {Path("/"), Path.home().resolve(), kubelab_home().resolve()}:
        raise CliError(f"not removing {data_dir}: it is not a cluster's own directory")
    shutil.rmtree(data_dir)
    unregister_cluster(cfg)
    say(f"removed {data_dir}")


# -- parsers -----------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="start the cluster in the background and wait until it serves",
        description="Create (first time) or start the cluster's masters, wait until a leader "
        "is elected and a majority is ready, and print the next steps.",
    )
    p.add_argument("--masters", type=_count, metavar="N", help="number of masters (3 or 5)")
    p.add_argument("--workers", type=_count, metavar="N", help="number of workers (0: none)")
    p.add_argument(
        "--runtime", choices=("docker", "process", "fake"), help="runtime of every worker"
    )
    p.add_argument("--timers", choices=("demo", "kubernetes"), help="timer profile")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help=f"seconds to wait for a leader and a ready majority (default {DEFAULT_WAIT_S:g})",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "down",
        help="stop every process of the cluster",
        description="Stop every process of the cluster (SIGTERM, then SIGKILL after "
        f"{STOP_GRACE_S:g} s). The data stays unless --purge.",
    )
    p.add_argument(
        "--purge", action="store_true", help="also delete the data dir (every stored object)"
    )
    p.set_defaults(func=cmd_down)


__all__ = ["EXIT_FAILED", "add_parsers", "cmd_down", "cmd_up"]
