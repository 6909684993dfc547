"""Human-readable renderings of core values, in etcd-io/raft's trace format.

Golden trace files and logs use these, so a trace reads like etcd's:
``1->2 MsgApp Term:1 Log:1/3 Commit:3 Entries:[1/4 EntryNormal "foo"]``.
"""

from __future__ import annotations

from .types import Entry, EntryType, HardState, Message, MessageType, Ready, Snapshot, SoftState


def describe_entry(e: Entry) -> str:
    kind = "EntryNormal" if e.type == EntryType.NORMAL else "EntryConfChange"
    return f"{e.term}/{e.index} {kind} {_quote(e.data)}"


def describe_entries(ents: tuple[Entry, ...] | list[Entry]) -> str:
    return "\n".join(describe_entry(e) for e in ents)


def describe_snapshot(s: Snapshot) -> str:
    m = s.metadata
    voters = " ".join(map(str, m.conf_state.voters))
    return f"Index:{m.index} Term:{m.term} ConfState:Voters:[{voters}]"


def describe_hard_state(hs: HardState) -> str:
    return f"Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}"


def describe_soft_state(ss: SoftState) -> str:
    return f"Lead:{ss.lead} State:{ss.raft_state}"


def describe_message(m: Message) -> str:
    s = f"{m.frm}->{m.to} {m.type.short} Term:{m.term} Log:{m.log_term}/{m.index}"
    if m.reject:
        s += f" Rejected (Hint: {m.reject_hint})"
    if m.commit:
        s += f" Commit:{m.commit}"
    if m.entries:
        s += " Entries:[" + ", ".join(describe_entry(e) for e in m.entries) + "]"
    if m.snapshot is not None and not m.snapshot.is_empty:
        s += f" Snapshot: {describe_snapshot(m.snapshot)}"
    if m.context and m.type not in (MessageType.VOTE, MessageType.PRE_VOTE):
        s += f" Context:{_quote(m.context)}"
    elif m.context:
        s += f" Context:{m.context.decode(errors='replace')}"
    return s


def describe_ready(rd: Ready) -> str:
    lines: list[str] = []
    if rd.soft_state is not None:
        lines.append(describe_soft_state(rd.soft_state))
    if rd.hard_state is not None:
        lines.append("HardState " + describe_hard_state(rd.hard_state))
    if rd.read_states:
        lines.append("ReadStates:")
        lines.extend(f"  Index:{r.index} Ctx:{_quote(r.request_ctx)}" for r in rd.read_states)
    if rd.entries:
        lines.append("Entries:")
        lines.extend(describe_entry(e) for e in rd.entries)
    if rd.snapshot is not None:
        lines.append("Snapshot " + describe_snapshot(rd.snapshot))
    if rd.committed_entries:
        lines.append("CommittedEntries:")
        lines.extend(describe_entry(e) for e in rd.committed_entries)
    if rd.messages:
        lines.append("Messages:")
        lines.extend(describe_message(m) for m in rd.messages)
    if not lines:
        return "<empty Ready>"
    if rd.must_sync:
        lines.insert(0, "MustSync")
    return "\n".join(lines)


def _quote(b: bytes) -> str:
    return '"' + b.decode("utf-8", errors="backslashreplace") + '"'
