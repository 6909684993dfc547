"""`kubelab kv put|get|del|watch` and `kubelab transfer-leader`: the raw store, for Raft labs.

They talk to the masters' gRPC API with the cluster's admin token, failing over between
masters by deadline. A write that is not acknowledged exits non-zero and says whether
nothing was written ("no leader": safe to run again) or the outcome is unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.json_format import MessageToDict

from controlplane.cli.common import CliError, cluster_from_args
from controlplane.client.kv import ClientError, KVClient, OutcomeUnknown
from controlplane.config import ClusterConfig, ConfigError, admin_token

T = TypeVar("T")

EXIT_UNKNOWN = 3  # the write may or may not have been applied


def _client(cfg: ClusterConfig, timeout: float) -> KVClient:
    try:
        admin = admin_token(cfg)
    except ConfigError as e:
        raise CliError(f"{e}; is the cluster up? (`kubelab up`)") from None
    endpoints = [f"{m.ip}:{m.grpc_port}" for m in cfg.masters]
    return KVClient(endpoints, admin, timeout=timeout)


def _run(args: argparse.Namespace, fn: Callable[[KVClient], Awaitable[T]]) -> T:
    cfg = cluster_from_args(args)

    async def go() -> T:
        async with _client(cfg, args.timeout) as c:
            return await fn(c)

    try:
        return asyncio.run(go())
    except OutcomeUnknown as e:
        raise CliError(
            f"write not acknowledged, outcome unknown: {e}. Check with `kubelab kv get`.",
            EXIT_UNKNOWN,
        ) from None
    except ClientError as e:
        raise CliError(f"{e}. Is a quorum of masters up? (`kubelab status`)") from None


def _kv_line(kv: object, show_meta: bool) -> str:
    d = MessageToDict(kv, preserving_proto_field_name=True)  # type: ignore[arg-type]
    key = getattr(kv, "key", b"").decode(errors="backslashreplace")
    value = getattr(kv, "value", b"").decode(errors="backslashreplace")
    if not show_meta:
        return f"{key}\n{value}"
    return (
        f"{key} = {value}  (create_revision={d.get('create_revision', 0)} "
        f"mod_revision={d.get('mod_revision', 0)} version={d.get('version', 0)})"
    )


def cmd_put(args: argparse.Namespace) -> int:
    resp = _run(args, lambda c: c.put(args.key.encode(), args.value.encode()))
    print(f"OK (revision {resp.header.revision})")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    resp = _run(
        args,
        lambda c: c.get(
            args.key.encode(),
            prefix=args.prefix,
            revision=args.rev,
            serializable=args.serializable,
        ),
    )
    if args.output == "json":
        print(json.dumps(MessageToDict(resp, preserving_proto_field_name=True), indent=2))
        return 0
    for kv in resp.kvs:
        print(_kv_line(kv, args.verbose))
    if not resp.kvs:
        print(f"(no key {'with prefix ' if args.prefix else ''}{args.key!r})", file=sys.stderr)
        return 1
    return 0


def cmd_del(args: argparse.Namespace) -> int:
    resp = _run(args, lambda c: c.delete(args.key.encode(), prefix=args.prefix))
    print(f"deleted {resp.deleted} (revision {resp.header.revision})")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    async def go(c: KVClient) -> int:
        seen = 0
        async for resp in c.watch(args.key.encode(), prefix=args.prefix, start_revision=args.rev):
            for ev in resp.events:
                kind = "DELETE" if ev.type == 1 else "PUT"
                key = ev.kv.key.decode(errors="backslashreplace")
                value = ev.kv.value.decode(errors="backslashreplace")
                print(f"{kind} {key} {value}  (revision {ev.kv.mod_revision})", flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    return 0
        return 0

    try:
        return _run(args, go)
    except KeyboardInterrupt:
        return 0


def cmd_transfer_leader(args: argparse.Namespace) -> int:
    cfg = cluster_from_args(args)
    try:
        target = cfg.master(args.name)
    except ConfigError as e:
        raise CliError(str(e), 2) from None
    resp = _run(args, lambda c: c.transfer_leadership(target.id))
    print(f"leader is now {args.name} (term {resp.term})")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kv = sub.add_parser("kv", help="read and write the raw replicated store (Raft labs)")
    kv.add_argument("--timeout", type=float, default=5.0, help="per-call deadline in seconds")
    kvsub = kv.add_subparsers(title="kv commands", metavar="COMMAND", required=True)

    p = kvsub.add_parser("put", help="write KEY = VALUE (exit 3 if the outcome is unknown)")
    p.add_argument("key")
    p.add_argument("value")
    p.set_defaults(func=cmd_put)

    p = kvsub.add_parser("get", help="read a key (linearizable unless --serializable)")
    p.add_argument("key")
    p.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    p.add_argument("--rev", type=int, default=0, help="read at a past revision")
    p.add_argument("--serializable", action="store_true", help="local read, may be stale")
    p.add_argument("-v", "--verbose", action="store_true", help="show revisions and version")
    p.add_argument("-o", "--output", choices=("simple", "json"), default="simple")
    p.set_defaults(func=cmd_get)

    p = kvsub.add_parser("del", help="delete a key (or a prefix)")
    p.add_argument("key")
    p.add_argument("--prefix", action="store_true")
    p.set_defaults(func=cmd_del)

    p = kvsub.add_parser("watch", help="print changes to a key (or prefix) as they happen")
    p.add_argument("key")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--rev", type=int, default=0, help="start from this revision (history)")
    p.add_argument("--count", type=int, default=0, help="stop after N events")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("transfer-leader", help="hand Raft leadership to master NAME")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_transfer_leader)
