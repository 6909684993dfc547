"""A data-driven interaction environment for the Raft core, after etcd-io/raft's
`rafttest/interaction_env*.go`.

Each block of a trace file (see `datadriven`) is a command; the environment runs it against
a `Network` of `SimNode`s and returns what happened, in etcd's trace format (`describe`):
the Ready each node handled, the messages each node received, and the core's log lines at
the current level ("INFO became leader term=1 node=1"). Input lines under a directive are
run as further commands, so a setup block can chain several.

Messages move only when a command moves them (`process-ready` puts a node's messages on
the wire, `deliver-msgs` hands them over, `stabilize` does both until nothing changes), so
a trace shows every step. Partitions (`cut`, `isolate`, `recover`) are the network's
faults: a message sent over a cut link is shown as dropped at send time.

Commands (ids are node ids; nodes are numbered from 1 in the order they are added):

    add-nodes N [voters=(1 2 3)] [index=I] [prevote=B] [checkquorum=B] [max-inflight=N]
              [max-inflight-bytes=N] [max-size=N] [max-uncommitted-size=N]
              [max-committed-size-per-ready=N] [election-tick=N] [heartbeat-tick=N]
              [read-only=safe|lease-based] [bugs=(commit-previous-term ...)]
        N new nodes; `index` starts them from a snapshot at index I (term 1); voters
        default to every node added so far. Defaults follow etcd's test stub: election
        tick 3, heartbeat tick 1, no message size limit; prevote and checkquorum default
        to the core's defaults (on). `bugs` plants known bugs (`PlantedBug` values), for
        tests that show a safety check failing.
    campaign ID                        start an election (a pre-vote round if pre-vote is on)
    propose ID DATA                    propose one entry
    propose-batch ID DATA...           propose several entries at once (one append)
    read-index ID CTX                  request a linearizable read
    transfer-leadership from=ID to=ID
    process-ready ID...                handle one Ready on each node
    deliver-msgs [ID...] [drop=(ID...)] [type=MsgApp]
                                       deliver (or drop) the messages queued for ID
    stabilize [ID...]                  process Readies and deliver until nothing changes
    tick ID [n=N] | tick-heartbeat ID | tick-election ID
    set-randomized-election-timeout ID timeout=N
    compact ID INDEX                   snapshot the state machine at INDEX (<= applied) and
                                       discard the log up to and including INDEX
    report-unreachable ID PEER | report-snapshot ID PEER [ok=B]
    cut A B | isolate ID | recover     network faults
    crash ID | restart ID              lose the in-memory node and restart it from storage
    raft-log ID | raft-state | status ID
    log-level debug|info|warn|error|none
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..config import Config, PlantedBug
from ..describe import describe_entry, describe_message, describe_ready
from ..errors import RaftError
from ..raft import Raft
from ..readonly import ReadOnlyOption
from ..storage import NO_LIMIT
from ..types import (
    ConfState,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from .datadriven import Block, CmdArg, parse_line
from .network import AppState, MemoryDisk, Network, SimNode

_CORE_LOGGER = "controlplane.raft"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 10,
}
_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}
_MESSAGE_TYPES = {t.short: t for t in MessageType}


class UsageError(ValueError):
    """A trace file uses a command wrongly (unknown command, missing argument)."""


class _Capture(logging.Handler):
    def __init__(self, env: InteractionEnv) -> None:
        super().__init__(logging.DEBUG)
        self._env = env

    def emit(self, record: logging.LogRecord) -> None:
        name = _LEVEL_NAMES.get(record.levelno, record.levelname)
        self._env.write(f"{name} {record.getMessage()}")


class InteractionEnv:
    """Nodes on a `Network`, driven one command at a time; see the module docstring."""

    def __init__(self) -> None:
        self.net = Network(())
        self.level = logging.INFO
        self._out: list[str] = []
        self._indent = ""
        self._commands: dict[str, Callable[[tuple[CmdArg, ...]], None]] = {
            "add-nodes": self._add_nodes,
            "campaign": self._campaign,
            "propose": self._propose,
            "propose-batch": self._propose_batch,
            "read-index": self._read_index,
            "transfer-leadership": self._transfer_leadership,
            "process-ready": self._process_ready,
            "deliver-msgs": self._deliver_msgs,
            "stabilize": self._stabilize,
            "tick": self._tick,
            "tick-heartbeat": self._tick_heartbeat,
            "tick-election": self._tick_election,
            "set-randomized-election-timeout": self._set_randomized_election_timeout,
            "compact": self._compact,
            "report-unreachable": self._report_unreachable,
            "report-snapshot": self._report_snapshot,
            "cut": self._cut,
            "isolate": self._isolate,
            "recover": self._recover,
            "crash": self._crash,
            "restart": self._restart,
            "raft-log": self._raft_log,
            "raft-state": self._raft_state,
            "status": self._status,
            "log-level": self._log_level,
        }

    # -- entry point -----------------------------------------------------------------------

    def handle(self, block: Block) -> str:
        """Run a block (its directive, then each input line as a command); return the trace.

        Errors of the core that a caller may see (`RaftError`) are part of the trace; any
        other exception (a broken invariant in the core, a misused command) propagates.
        """
        self._out = []
        with self._capture_logs():
            self._run(block.cmd, block.args)
            for line in block.input.splitlines():
                if line.strip():
                    self._run(*parse_line(line, block.pos))
        return "\n".join(self._out) + "\n" if self._out else "ok\n"

    def run(self, script: str) -> str:
        """Run each line of `script` as a command (for tests that drive the environment
        from code); returns the combined trace."""
        lines = [ln.strip() for ln in script.strip().splitlines() if ln.strip()]
        cmd, args = parse_line(lines[0], "<script>")
        rest = "".join(f"{ln}\n" for ln in lines[1:])
        return self.handle(Block("<script>", cmd, args, rest, "", ()))

    def write(self, text: str) -> None:
        """Append lines to the trace (suppressed at log level none)."""
        if self.level > logging.CRITICAL:
            return
        for line in text.split("\n"):
            self._out.append(f"{self._indent}{line}" if line else line)

    def _run(self, cmd: str, args: tuple[CmdArg, ...]) -> None:
        fn = self._commands.get(cmd)
        if fn is None:
            raise UsageError(f"unknown command {cmd!r}")
        try:
            fn(args)
        except RaftError as e:
            self._out.append(f"{self._indent}{type(e).__name__}: {e}")

    @contextmanager
    def _capture_logs(self) -> Iterator[None]:
        logger = logging.getLogger(_CORE_LOGGER)
        handler = _Capture(self)
        old_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(min(self.level, logging.CRITICAL))
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

    @contextmanager
    def _indented(self) -> Iterator[None]:
        old = self._indent
        self._indent += "  "
        try:
            yield
        finally:
            self._indent = old

    # -- argument helpers -------------------------------------------------------------------

    @staticmethod
    def _positional(args: tuple[CmdArg, ...]) -> list[str]:
        return [a.key for a in args if not a.vals]

    def _ids(self, args: tuple[CmdArg, ...]) -> list[int]:
        ids = [int(k) for k in self._positional(args)]
        for i in ids:
            if i not in self.net.nodes:
                raise UsageError(f"no node {i}")
        return ids

    def _one_id(self, args: tuple[CmdArg, ...]) -> int:
        ids = self._ids(args[:1])
        if len(ids) != 1:
            raise UsageError("expected a node id as the first argument")
        return ids[0]

    @staticmethod
    def _kw(args: tuple[CmdArg, ...], key: str) -> tuple[str, ...] | None:
        for a in args:
            if a.key == key and a.vals:
                return a.vals
        return None

    def _kw_int(self, args: tuple[CmdArg, ...], key: str, default: int) -> int:
        v = self._kw(args, key)
        return default if v is None else int(v[0])

    def _kw_bool(self, args: tuple[CmdArg, ...], key: str, default: bool) -> bool:
        v = self._kw(args, key)
        if v is None:
            return default
        if v[0] not in ("true", "false"):
            raise UsageError(f"{key}: expected true or false, got {v[0]!r}")
        return v[0] == "true"

    def _node(self, i: int) -> SimNode:
        return self.net.nodes[i]

    def _raft(self, i: int) -> Raft:
        return self._node(i).raw.raft

    # -- nodes -------------------------------------------------------------------------------

    def _add_nodes(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if not pos:
            raise UsageError("add-nodes needs the number of nodes")
        n = int(pos[0])
        first = max(self.net.nodes, default=0) + 1
        new_ids = list(range(first, first + n))
        voters_arg = self._kw(args, "voters")
        voters = (
            tuple(int(v) for v in voters_arg)
            if voters_arg is not None
            else tuple(sorted((*self.net.nodes, *new_ids)))
        )
        read_only = self._kw(args, "read-only")
        index = self._kw_int(args, "index", 0)
        for i in new_ids:
            cfg = Config(
                id=i,
                voters=voters,
                election_tick=self._kw_int(args, "election-tick", 3),
                heartbeat_tick=self._kw_int(args, "heartbeat-tick", 1),
                seed=i,
                max_size_per_msg=self._kw_int(args, "max-size", NO_LIMIT),
                max_inflight_msgs=self._kw_int(args, "max-inflight", 256),
                max_inflight_bytes=self._kw_int(args, "max-inflight-bytes", 0),
                max_uncommitted_entries_size=self._kw_int(args, "max-uncommitted-size", 0),
                max_committed_size_per_ready=self._kw_int(
                    args, "max-committed-size-per-ready", NO_LIMIT
                ),
                pre_vote=self._kw_bool(args, "prevote", True),
                check_quorum=self._kw_bool(args, "checkquorum", True),
                read_only_option=ReadOnlyOption(read_only[0]) if read_only else ReadOnlyOption.SAFE,
                planted_bugs=frozenset(PlantedBug(b) for b in self._kw(args, "bugs") or ()),
            )
            storage = MemoryDisk()
            if index > 0:
                storage.apply_snapshot(
                    Snapshot(
                        metadata=SnapshotMetadata(
                            conf_state=ConfState(voters=voters), index=index, term=1
                        )
                    )
                )
            self.net.add_node(cfg, storage)

    def _crash(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        self.net.crash(i)
        self.write(f"node {i} crashed: in-memory state and messages to it are lost")

    def _restart(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        if self._node(i).alive:
            raise UsageError(f"node {i} is running")
        self.net.restart(i)

    # -- inputs ------------------------------------------------------------------------------

    def _campaign(self, args: tuple[CmdArg, ...]) -> None:
        self._node(self._one_id(args)).raw.campaign()

    def _propose(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if len(pos) != 2:
            raise UsageError("usage: propose ID DATA")
        self._node(self._one_id(args)).raw.propose(pos[1].encode())

    def _propose_batch(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if len(pos) < 2:
            raise UsageError("usage: propose-batch ID DATA...")
        self._node(self._one_id(args)).raw.propose(*(p.encode() for p in pos[1:]))

    def _read_index(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if len(pos) != 2:
            raise UsageError("usage: read-index ID CTX")
        self._node(self._one_id(args)).raw.read_index(pos[1].encode())

    def _transfer_leadership(self, args: tuple[CmdArg, ...]) -> None:
        frm, to = self._kw(args, "from"), self._kw(args, "to")
        if frm is None or to is None:
            raise UsageError("usage: transfer-leadership from=ID to=ID")
        self._node(int(frm[0])).raw.transfer_leader(int(to[0]))

    def _report_unreachable(self, args: tuple[CmdArg, ...]) -> None:
        ids = self._ids(args)
        if len(ids) != 2:
            raise UsageError("usage: report-unreachable ID PEER")
        self._node(ids[0]).raw.report_unreachable(ids[1])

    def _report_snapshot(self, args: tuple[CmdArg, ...]) -> None:
        ids = self._ids(args)
        if len(ids) != 2:
            raise UsageError("usage: report-snapshot ID PEER [ok=B]")
        self._node(ids[0]).raw.report_snapshot(ids[1], self._kw_bool(args, "ok", True))

    # -- time ----------------------------------------------------------------------------------

    def _tick_n(self, i: int, n: int) -> None:
        raw = self._node(i).raw
        for _ in range(n):
            raw.tick()

    def _tick(self, args: tuple[CmdArg, ...]) -> None:
        self._tick_n(self._one_id(args), self._kw_int(args, "n", 1))

    def _tick_heartbeat(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        self._tick_n(i, self._raft(i).heartbeat_timeout)

    def _tick_election(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        self._tick_n(i, self._raft(i).election_timeout)

    def _set_randomized_election_timeout(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        timeout = self._kw(args, "timeout")
        if timeout is None:
            raise UsageError("usage: set-randomized-election-timeout ID timeout=N")
        self._raft(i).randomized_election_timeout = int(timeout[0])

    # -- Ready and messages ------------------------------------------------------------------

    def process_ready(self, i: int) -> None:
        """Handle one Ready of node i (persist, send, apply, advance), describing it."""
        sn = self._node(i)
        if not sn.alive:
            self.write(f"node {i} is down")
            return
        seen: list[Ready] = []
        outbox: list[Message] = []
        if not sn.handle_ready(outbox, lambda _sn, rd: seen.append(rd)):
            self.write("<empty Ready>")
            return
        self.write(describe_ready(seen[0]))
        self._send(outbox)

    def _send(self, msgs: list[Message]) -> None:
        faults = self.net.faults
        wire: list[Message] = []
        for m in msgs:
            if (m.frm, m.to) in faults.cut:
                self.write(f"dropped (link cut): {describe_message(m)}")
            elif not self._node(m.to).alive:
                self.write(f"dropped (node down): {describe_message(m)}")
            else:
                wire.append(m)
        self.net.send(wire)

    def _process_ready(self, args: tuple[CmdArg, ...]) -> None:
        ids = self._ids(args)
        for i in ids:
            if len(ids) > 1:
                self.write(f"> {i} handling Ready")
                with self._indented():
                    self.process_ready(i)
            else:
                self.process_ready(i)

    def _pending_to(self, i: int) -> bool:
        return any(f.msg.to == i for f in self.net.in_flight)

    def deliver(self, i: int, drop: bool = False, typ: MessageType | None = None) -> int:
        """Deliver (or drop) the messages queued for node i; returns how many."""
        msgs = self.net.take(i, None if typ is None else frozenset({typ}))
        for m in msgs:
            if drop:
                self.write(f"dropped: {describe_message(m)}")
                continue
            self.write(describe_message(m))
            sn = self._node(i)
            if not sn.alive:
                self.write(f"dropped (node down): {describe_message(m)}")
                continue
            try:
                sn.raw.step(m)
            except RaftError as e:
                self.write(f"{type(e).__name__}: {e}")
        return len(msgs)

    def _deliver_msgs(self, args: tuple[CmdArg, ...]) -> None:
        ids = self._ids(args)
        drops = [int(v) for v in self._kw(args, "drop") or ()]
        typ_arg = self._kw(args, "type")
        typ = None
        if typ_arg is not None:
            if typ_arg[0] not in _MESSAGE_TYPES:
                raise UsageError(f"unknown message type {typ_arg[0]!r}")
            typ = _MESSAGE_TYPES[typ_arg[0]]
        if not ids and not drops:
            ids = list(self.net.ids)
        n = 0
        for i in ids:
            n += self.deliver(i, typ=typ)
        for i in drops:
            n += self.deliver(i, drop=True, typ=typ)
        if n == 0:
            self.write("no messages")

    def stabilize(self, ids: list[int]) -> None:
        """Alternate Ready handling and delivery on `ids` until nothing changes."""
        nodes = ids or list(self.net.ids)
        for _ in range(1000):
            done = True
            for i in nodes:
                sn = self._node(i)
                if sn.alive and sn.raw.has_ready():
                    self.write(f"> {i} handling Ready")
                    with self._indented():
                        self.process_ready(i)
                    done = False
            for i in nodes:
                if self._pending_to(i):
                    self.write(f"> {i} receiving messages")
                    with self._indented():
                        self.deliver(i)
                    done = False
            if done:
                return
        raise RuntimeError("stabilize: no fixed point after 1000 rounds")

    def _stabilize(self, args: tuple[CmdArg, ...]) -> None:
        self.stabilize(self._ids(args))

    # -- storage ------------------------------------------------------------------------------

    def _compact(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if len(pos) != 2:
            raise UsageError("usage: compact ID INDEX")
        i, index = self._one_id(args), int(pos[1])
        sn = self._node(i)
        applied = sn.raw.raft.raft_log.applied
        if index > applied:
            raise UsageError(f"compact {i} {index}: only applied entries (<= {applied})")
        storage = sn.storage
        if not isinstance(storage, MemoryDisk):
            raise UsageError(f"compact {i}: only nodes with an in-memory disk can be compacted")
        # Rebuild the state machine at `index` from the last snapshot and the stored log.
        state = AppState.decode(storage.snapshot().data)
        first = storage.snapshot().metadata.index + 1
        if index >= first:
            for e in storage.entries(first, index + 1, NO_LIMIT):
                state.apply(e)
        storage.create_snapshot(index, sn.raw.conf_state(), state.encode())
        storage.compact(index)
        self._write_log(i)

    def _write_log(self, i: int) -> None:
        storage = self._node(i).storage
        first, last = storage.first_index(), storage.last_index()
        if last < first:
            self.write(f"log is empty: first index={first}, last index={last}")
            return
        for e in storage.entries(first, last + 1, NO_LIMIT):
            self.write(describe_entry(e))

    def _raft_log(self, args: tuple[CmdArg, ...]) -> None:
        self._write_log(self._one_id(args))

    # -- inspection ----------------------------------------------------------------------------

    def _raft_state(self, args: tuple[CmdArg, ...]) -> None:
        for i, sn in sorted(self.net.nodes.items()):
            if not sn.alive:
                self.write(f"{i}: down")
                continue
            r = sn.raw.raft
            self.write(
                f"{i}: {r.state} Term:{r.term} Lead:{r.lead} Vote:{r.vote} "
                f"Commit:{r.raft_log.committed} Applied:{r.raft_log.applied} "
                f"Last:{r.raft_log.last_index()}"
            )

    def _status(self, args: tuple[CmdArg, ...]) -> None:
        i = self._one_id(args)
        r = self._raft(i)
        if r.state != StateType.LEADER:
            self.write(f"{i} is {r.state}: no progress to show")
            return
        for j, pr in sorted(r.trk.progress.items()):
            self.write(f"{j}: {pr!r}")

    def _log_level(self, args: tuple[CmdArg, ...]) -> None:
        pos = self._positional(args)
        if len(pos) != 1 or pos[0].lower() not in _LEVELS:
            raise UsageError(f"usage: log-level {'|'.join(_LEVELS)}")
        self.level = _LEVELS[pos[0].lower()]
        logging.getLogger(_CORE_LOGGER).setLevel(min(self.level, logging.CRITICAL))

    # -- faults --------------------------------------------------------------------------------

    def _cut(self, args: tuple[CmdArg, ...]) -> None:
        ids = self._ids(args)
        if len(ids) != 2:
            raise UsageError("usage: cut A B")
        self.net.cut(ids[0], ids[1])

    def _isolate(self, args: tuple[CmdArg, ...]) -> None:
        self.net.isolate(self._one_id(args))

    def _recover(self, args: tuple[CmdArg, ...]) -> None:
        self.net.recover()
