"""`kubelab partition`, `heal` and `delay`: network faults between masters, at runtime.

They drive each master's peer transport through the Maintenance.SetFaults RPC. A partition
is installed on both sides of every cut link (so it holds even while one side is paused or
restarting); `--oneway` drops only the traffic from the named members to the others. Faults
live in the masters' memory: a restarted master starts healed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

import grpc

from controlplane.apipb import api_pb2
from controlplane.cli.common import CliError, cluster_from_args
from controlplane.client.kv import ClientError, KVClient
from controlplane.config import ClusterConfig, ConfigError, MasterSpec, admin_token


def _names(cfg: ClusterConfig, text: str, flag: str) -> list[MasterSpec]:
    out = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        try:
            out.append(cfg.master(name))
        except ConfigError as e:
            raise CliError(f"{flag}: {e}", 2) from None
    if not out:
        raise CliError(f"{flag}: expected master names like master-1,master-2", 2)
    return out


def _admin_token(cfg: ClusterConfig) -> str:
    try:
        return admin_token(cfg)
    except ConfigError as e:
        raise CliError(f"{e}; is the cluster up? (`kubelab up`)") from None


def _endpoint(m: MasterSpec) -> str:
    return f"{m.ip}:{m.grpc_port}"


def apply_faults(
    cfg: ClusterConfig,
    plan: dict[str, api_pb2.SetFaultsRequest],
) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    """Send each master its faults; returns (faults now in force, errors) by master name."""
    masters = {m.name: m for m in cfg.masters}

    async def go() -> tuple[dict[str, dict[str, object]], dict[str, str]]:
        now: dict[str, dict[str, object]] = {}
        errors: dict[str, str] = {}
        async with KVClient([_endpoint(m) for m in cfg.masters], _admin_token(cfg)) as c:

            async def one(name: str, req: api_pb2.SetFaultsRequest) -> None:
                try:
                    resp = await c.set_faults(_endpoint(masters[name]), req, timeout=1.0)
                    now[name] = json.loads(resp.faults_json)
                except grpc.aio.AioRpcError as e:
                    errors[name] = e.details() or e.code().name

            await asyncio.gather(*(one(n, r) for n, r in plan.items()))
        return now, errors

    try:
        return asyncio.run(go())
    except ClientError as e:
        raise CliError(str(e)) from None


def _report(now: dict[str, dict[str, object]], errors: dict[str, str], what: str) -> int:
    for name in sorted(errors):
        print(f"{name}: not reached ({errors[name]}); it keeps its previous faults")
    print(what)
    return 1 if errors and not now else 0


def cmd_partition(args: argparse.Namespace) -> int:
    cfg = cluster_from_args(args)
    side = _names(cfg, args.names, "NAMES")
    side_ids = {m.id for m in side}
    others = (
        _names(cfg, args.frm, "--from")
        if args.frm
        else [m for m in cfg.masters if m.id not in side_ids]
    )
    if not others or side_ids & {m.id for m in others}:
        raise CliError("the two sides of a partition must be non-empty and disjoint", 2)
    plan: dict[str, api_pb2.SetFaultsRequest] = {}

    def add(m: MasterSpec, peer: MasterSpec, **kw: bool) -> None:
        plan.setdefault(m.name, api_pb2.SetFaultsRequest()).faults.append(
            api_pb2.PeerFault(peer=peer.id, **kw)
        )

    for a in side:
        for b in others:
            if args.oneway:  # a's messages never reach b; b's still reach a
                add(a, b, block_out=True)
                add(b, a, block_in=True)
            else:
                add(a, b, block_out=True, block_in=True)
                add(b, a, block_out=True, block_in=True)
    now, errors = apply_faults(cfg, plan)
    arrow = "->" if args.oneway else "<->"
    what = (
        f"partitioned {','.join(m.name for m in side)} {arrow} "
        f"{','.join(m.name for m in others)}; `kubelab heal` removes it"
    )
    return _report(now, errors, what)


def cmd_heal(args: argparse.Namespace) -> int:
    cfg = cluster_from_args(args)
    plan = {m.name: api_pb2.SetFaultsRequest(clear=True) for m in cfg.masters}
    now, errors = apply_faults(cfg, plan)
    return _report(now, errors, "healed: no partitions, losses or delays between masters")


def cmd_delay(args: argparse.Namespace) -> int:
    cfg = cluster_from_args(args)
    (target,) = _names(cfg, args.name, "NAME")
    if args.ms < 0 or args.ms > 60_000:
        raise CliError(f"MS: expected 0 to 60000 milliseconds, got {args.ms}", 2)
    plan: dict[str, api_pb2.SetFaultsRequest] = {}
    for m in cfg.masters:
        if m.id == target.id:
            continue
        # Both directions of every link of the target: a round trip costs 2 x MS.
        plan.setdefault(target.name, api_pb2.SetFaultsRequest()).faults.append(
            api_pb2.PeerFault(peer=m.id, delay_ms=args.ms)
        )
        plan.setdefault(m.name, api_pb2.SetFaultsRequest()).faults.append(
            api_pb2.PeerFault(peer=target.id, delay_ms=args.ms)
        )
    now, errors = apply_faults(cfg, plan)
    what = (
        f"delayed every message to and from {target.name} by {args.ms} ms"
        if args.ms
        else f"removed the delay of {target.name}"
    )
    return _report(now, errors, what)


def describe_faults(faults: dict[str, object] | None) -> str:
    """One line for `status`: `master-2: block_out,block_in; master-3: delay 200ms`."""
    if not faults:
        return ""
    parts = []
    for peer, rule in sorted(faults.items()):
        if not isinstance(rule, dict):
            continue
        bits: list[str] = []
        if rule.get("block_out") and rule.get("block_in"):
            bits.append("cut")
        elif rule.get("block_out"):
            bits.append("cut ->")
        elif rule.get("block_in"):
            bits.append("cut <-")
        if rule.get("delay_ms"):
            bits.append(f"delay {rule['delay_ms']}ms")
        if rule.get("drop_out") or rule.get("drop_in"):
            bits.append(f"loss {rule.get('drop_out', 0)}/{rule.get('drop_in', 0)}")
        if bits:
            parts.append(f"{peer} {' '.join(bits)}")
    return "; ".join(parts)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "partition",
        help="cut masters off from the others (Raft traffic between masters)",
        description=(
            "Isolate NAMES (comma-separated) from every other master, or only from --from. "
            "With --oneway, messages from NAMES to the others are dropped but not the reverse."
        ),
    )
    p.add_argument("names", metavar="NAMES", help="e.g. master-1 or master-1,master-2")
    p.add_argument("--from", dest="frm", metavar="NAMES", help="the other side (default: rest)")
    p.add_argument("--oneway", action="store_true")
    p.set_defaults(func=cmd_partition)

    p = sub.add_parser("heal", help="remove every partition, loss and delay between masters")
    p.set_defaults(func=cmd_heal)

    p = sub.add_parser("delay", help="delay every message to and from a master")
    p.add_argument("name", metavar="NAME")
    p.add_argument("ms", metavar="MS", type=int, help="milliseconds each way (0 removes it)")
    p.set_defaults(func=cmd_delay)


__all__: Sequence[str] = ("add_parsers", "apply_faults", "describe_faults")
