"""The `kubelab` command (console script `kubelab = controlplane.cli:main`).

Subcommands live in modules by theme: `lifecycle` (up, down), `status`, `chaos` (kill,
pause, resume, start, restart); `kubeconfig`, a one-liner, lives here. `transfer-leader` and
`kv ...` come from `controlplane.cli_kv` when that module exists: its
`add_parsers(subparsers)` registers them (each parser with `set_defaults(func=handler)`,
`handler(args) -> exit code`; handlers find their cluster with `cluster_from_args(args)`).
The global options `-c/--config FILE` and `--cluster NAME` are accepted before or after the
subcommand, on every (sub)parser, including those that `cli_kv` adds.

Errors: `ConfigError` (exit 2) and `CliError` (its own code, 1 by default) are printed as
`kubelab: error: ...` without a traceback; see `common` for the exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from controlplane.config import ConfigError
from controlplane.procs import ProcessError

from . import chaos, faults, lifecycle, status
from .common import EXIT_FAILED, EXIT_USAGE, CliError, Handler, cluster_from_args

__all__ = ["CliError", "Handler", "build_parser", "cluster_from_args", "main"]

EXTERNAL_MODULE = "controlplane.cli_kv"


def _version() -> str:
    try:
        return version("kubelab")
    except PackageNotFoundError:
        return "0+unknown"


def _add_common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # On subparsers the defaults are SUPPRESS, so `kubelab -c F status` is not undone by
    # the subparser's own (absent) -c.
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        default=default,
        help="the cluster's cluster.toml (default: --cluster, KUBELAB_CLUSTER, the only "
        "running cluster, else the packaged default)",
    )
    p.add_argument(
        "--cluster",
        metavar="NAME",
        default=default,
        help="the cluster named NAME under $KUBELAB_HOME (default ~/.kubelab)",
    )


def _add_common_everywhere(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--config" not in sub._option_string_actions:
                    _add_common(sub, top=False)
                _add_common_everywhere(sub)


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    """`kubelab kubeconfig`: print the absolute path of the cluster's kubeconfig, for
    `kubectl --kubeconfig "$(kubelab kubeconfig)" ...`; exit 1 if `up` never wrote it."""
    cfg = cluster_from_args(args)
    path = cfg.kubeconfig.absolute()
    if not path.is_file():
        raise CliError(
            f"cluster {cfg.name} has no kubeconfig ({path}): it has not been brought up; "
            "run `kubelab up` first"
        )
    print(path)
    return 0


def _add_kubeconfig_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "kubeconfig",
        help="print the path of the kubeconfig for the real kubectl",
        description="Print the absolute path of the cluster's kubeconfig (written by `kubelab "
        'up`), for `kubectl --kubeconfig "$(kubelab kubeconfig)" get namespaces`.',
    )
    p.set_defaults(func=cmd_kubeconfig)


def build_parser() -> argparse.ArgumentParser:
    """The full `kubelab` parser, with `controlplane.cli_kv`'s commands if it exists."""
    parser = argparse.ArgumentParser(
        prog="kubelab",
        description="kubelab: a highly available Kubernetes-style control plane on one "
        "machine, on its own Raft. Start with `kubelab up`, then `kubelab status`.",
    )
    parser.add_argument("--version", action="version", version=f"kubelab {_version()}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    lifecycle.add_parsers(sub)
    status.add_parser(sub)
    chaos.add_parsers(sub)
    faults.add_parsers(sub)
    _add_kubeconfig_parser(sub)
    importlib.import_module(f"{__name__}.bench").add_parsers(sub)
    importlib.import_module(f"{__name__}.workloads").add_parsers(sub)
    try:
        external = importlib.import_module(EXTERNAL_MODULE)
    except ModuleNotFoundError as e:
        if e.name != EXTERNAL_MODULE:
            raise  # the module exists but is broken: do not hide that
    else:
        external.add_parsers(sub)
    _add_common_everywhere(parser)
    return parser


def _error(message: str) -> None:
    print(f"kubelab: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `kubelab`; returns the exit code (0 done, 1 failed, 2 usage or configuration)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return func(args)
    except ConfigError as e:
        _error(str(e))
        return EXIT_USAGE
    except CliError as e:
        _error(e.message)
        return e.code
    except ProcessError as e:
        _error(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kubelab status | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
