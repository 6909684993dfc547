"""`kubelab apply|get|delete|scale`: the workload commands, for machines without kubectl.

They are a REST client of the cluster's Kubernetes API (`RESTClient.for_cluster`: every
master, the cluster CA, the admin token) and print what kubectl prints: the server's Tables
laid out by kubectl's rules, `deployment.apps/web created`, and kubectl's error lines
(research/kubectl-api.md §5, §6, §9.1). Everything beyond these commands is kubectl's job.

Output and exit codes: results on stdout; errors on stderr in kubectl's words
(`Error from server (NotFound): ...`, `error: ...`), printed after the results as kubectl
does; exit 1 when anything failed (apply and delete go on past a failing object); exit 3
when a write was sent but its outcome is unknown (check with `kubelab get`).

`apply` is kubectl's client-side apply without strategic merge: the manifest is compared
with the live object and with the previous apply (the
`kubectl.kubernetes.io/last-applied-configuration` annotation, which kubectl reads too),
as a three-way JSON merge patch: fields the manifest sets and the live object does not
already hold are set, fields the previous apply set and this manifest drops are removed,
everything else (server defaults, allocated fields, status, other writers' labels) is kept.
Maps merge key by key; a list is replaced as a whole unless the live list already holds it
(same length, each item holding the manifest's fields). The result is written with a PUT
conditioned on the resourceVersion read, re-read and retried on 409 as kubectl does; when
there is nothing to change, nothing is written and the object is `unchanged`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from controlplane.client.rest import (
    JSON,
    TABLE,
    APIStatusError,
    OutcomeUnknown,
    RESTClient,
    RESTError,
    TransportError,
)
from controlplane.config import ConfigError
from controlplane.kube import errors, tables
from controlplane.kube.manifests import Manifest, ManifestError, load_manifests
from controlplane.kube.resources import RESOURCES, Resource, lookup

from .common import EXIT_FAILED, CliError, Handler, cluster_from_args

__all__ = [
    "LAST_APPLIED",
    "TabWriter",
    "TablePrinter",
    "add_parsers",
    "apply_patch",
    "cell_text",
    "contains",
    "merge_patch",
    "to_json",
    "to_yaml",
]

EXIT_UNKNOWN = 3  # a write was sent and its outcome is unknown (as `kubelab kv`)
MAX_CONFLICT_RETRIES = 5  # kubectl's apply and scale re-read and retry this often on 409
PAGE_SIZE = 500  # kubectl's `--chunk-size` default
DEFAULT_NAMESPACE = "default"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DELETE_OPTIONS = {"propagationPolicy": "Background"}

# Metadata the server owns: never sent from a manifest (a copied `get -o yaml` would
# otherwise pin a stale resourceVersion, or be refused on create).
_SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


class _Failed(Exception):
    """Lines already in kubectl's words for stderr, and the exit code."""

    def __init__(self, *lines: str, code: int = EXIT_FAILED) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.code = code


@dataclass
class _Outcome:
    """What a command that goes on past failures collects: error lines, in order, printed
    after the results (also when a later failure aborts the command)."""

    errors: list[str] = field(default_factory=list)
    unknown: bool = False

    def add(self, e: APIStatusError | OutcomeUnknown | _Failed) -> None:
        if isinstance(e, APIStatusError):
            self.errors.append(e.kubectl_message())
        elif isinstance(e, OutcomeUnknown):
            self.errors.append(f"error: {e}; check with `kubelab get`")
            self.unknown = True
        else:
            self.errors.extend(e.lines)

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        try:
            yield
        finally:
            sys.stdout.flush()
            for line in self.errors:
                print(line, file=sys.stderr)

    @property
    def code(self) -> int:
        if self.unknown:
            return EXIT_UNKNOWN
        return EXIT_FAILED if self.errors else 0


def _kubectl_errors(fn: Handler) -> Handler:
    """Run a handler, turning client errors into kubectl's lines (or `CliError` for what
    is ours: no cluster, no server reachable)."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _Failed as e:
            for line in e.lines:
                print(line, file=sys.stderr)
            return e.code
        except APIStatusError as e:
            print(e.kubectl_message(), file=sys.stderr)
            return EXIT_FAILED
        except OutcomeUnknown as e:
            raise CliError(f"{e}; check with `kubelab get`", EXIT_UNKNOWN) from None
        except TransportError as e:
            raise CliError(f"{e}. Is the cluster up? (`kubelab status`)") from None
        except RESTError as e:  # an answer that makes no sense (not JSON, not an object)
            raise CliError(str(e)) from None

    return run


def _client(args: argparse.Namespace) -> RESTClient:
    cfg = cluster_from_args(args)
    try:
        return RESTClient.for_cluster(cfg, timeout=args.request_timeout)
    except ConfigError as e:
        raise CliError(f"{e}; is the cluster up? (`kubelab up`)") from None


# -- what the user typed -----------------------------------------------------------------------


def qualified_kind(res: Resource) -> str:
    """`deployment.apps`, `pod`: how kubectl names a kind in `kind/name` and messages."""
    kind = res.kind.lower()
    return f"{kind}.{res.group}" if res.group else kind


def resolve(name: str) -> Resource:
    """The resource for `deploy`, `po`, `deployments.apps`, `Deployment`..."""
    res = lookup(name) if name else None
    if res is None:
        raise _Failed(f'error: the server doesn\'t have a resource type "{name}"')
    return res


def _kinds(text: str) -> list[Resource]:
    """`deploy,rs` (and `all`, kubectl's category) as resources, without repeats."""
    out: list[Resource] = []
    for part in text.split(","):
        found = (
            [r for r in RESOURCES if "all" in r.categories] if part == "all" else [resolve(part)]
        )
        out += [r for r in found if r not in out]
    return out


Target = tuple[Resource, list[str]]  # a resource and the names asked for (none: a list)


def parse_targets(words: Sequence[str], verb: str) -> list[Target]:
    """kubectl's argument forms: `KIND[,KIND...] [NAME...]` or `KIND/NAME...`."""
    if not words:
        known = ", ".join(f"{r.plural}" for r in RESOURCES)
        raise _Failed(
            f"error: you must specify the type of resource to {verb}; known types: {known}"
        )
    if any("/" in w for w in words):
        if not all("/" in w for w in words):
            raise _Failed(
                "error: there is no need to specify a resource type as a separate argument "
                f"when passing arguments in resource/name form (e.g. 'kubelab {verb} "
                f"resource/<resource_name>' instead of 'kubelab {verb} resource "
                "resource/<resource_name>')"
            )
        targets: list[Target] = []
        for w in words:
            kind, _, name = w.partition("/")
            if not name:
                raise _Failed(f"error: arguments in resource/name form must have a name: {w!r}")
            res = resolve(kind)
            if targets and targets[-1][0] == res:
                targets[-1][1].append(name)
            else:
                targets.append((res, [name]))
        return targets
    return [(res, list(words[1:])) for res in _kinds(words[0])]


def _namespace_for(res: Resource, flag: str | None, manifest: Manifest | None = None) -> str:
    """The namespace an object is in: the manifest's, else `-n`, else `default` ("" for
    a cluster-scoped kind). A manifest and `-n` that disagree are an error, as in kubectl."""
    if not res.namespaced:
        return ""
    own = manifest.namespace if manifest else ""
    if own and flag and own != flag:
        raise _Failed(
            f'error: the namespace from the provided object "{own}" does not match the '
            f"namespace \"{flag}\". You must pass '--namespace={own}' to perform this "
            "operation."
        )
    return own or flag or DEFAULT_NAMESPACE


# -- kubectl's tabwriter and table printer -----------------------------------------------------


class TabWriter:
    """kubectl's column layout (`liggitt/tabwriter` as `printers.GetNewTabWriter` sets it
    up: minimum width 6, padding 3, spaces, `RememberWidths`).

    Every cell but the last of a line is padded to its column's width: the widest cell of
    the column in this batch plus 3, at least 6, and never narrower than what earlier
    batches used (watch rows stay under the list's header; each resource of a `get` gets
    its own writer, as kubectl forgets the widths between resources). The last cell is not
    padded.
    Widths count characters (Go counts runes). Go's column blocks end at a line with fewer
    cells; kubectl never writes such lines into one batch, so columns here span the batch.
    """

    MIN_WIDTH = 6
    PADDING = 3

    def __init__(self) -> None:
        self.widths: list[int] = []

    def format(self, lines: Sequence[Sequence[str]]) -> str:
        """One batch (kubectl's `Flush`): the lines laid out, each ending with a newline."""
        ncols = max((len(line) - 1 for line in lines), default=0)
        for col in range(ncols):
            width = self.MIN_WIDTH
            for line in lines:
                if col < len(line) - 1:
                    width = max(width, len(line[col]) + self.PADDING)
            if col < len(self.widths):
                self.widths[col] = max(self.widths[col], width)
            else:
                self.widths.append(width)
        out = []
        for line in lines:
            padded = [cell.ljust(self.widths[i]) for i, cell in enumerate(line[:-1])]
            out.append("".join([*padded, *line[-1:]]) + "\n")
        return "".join(out)


def _go_float(v: float) -> str:
    """Go's `%v` of a float64 (`strconv` 'g', shortest): the shortest digits that read
    back the same, in exponent form when the exponent is below -4 or from 6 on."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    d = Decimal(repr(v)).normalize()  # repr: Python's shortest round-trip digits
    sign, digit_tuple, exponent = d.as_tuple()
    digits = "".join(map(str, digit_tuple))
    exp = len(digits) + int(exponent) - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return format(d, "f")


def cell_text(value: Any) -> str:
    """A cell as kubectl prints it (Go's `fmt.Sprint` of the decoded JSON value): text
    cut at the first line break with `...` appended, escape characters made visible."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    cut = min((i for i in (text.find(c) for c in "\f\n\r") if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut] + "..."
    return text.replace("\x1b", "^[").replace("\t", " ")


def _row_namespace(row: Mapping[str, Any]) -> str:
    obj = row.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return ns if isinstance(ns, str) else ""


class TablePrinter:
    """Prints the server's Tables of one resource as kubectl's `HumanReadablePrinter` does.

    Column names upper-cased; `priority` 1 columns only when `wide`; `with_namespace`
    (for `-A`) puts a NAMESPACE column first, from each row's object metadata; `kind`
    (when several kinds are listed) prefixes the `format: name` column with `kind/`. The
    header is printed with the first rows and again only if the columns change; a Table
    without columnDefinitions (a watch event may omit them) reuses the last ones.
    `add` queues a Table's lines, `flush` lays out what was queued (one tabwriter batch).
    """

    def __init__(
        self,
        *,
        wide: bool = False,
        with_namespace: bool = False,
        kind: str = "",
        writer: TabWriter | None = None,
    ) -> None:
        self.wide = wide
        self.with_namespace = with_namespace
        self.kind = kind
        self.writer = writer or TabWriter()
        self._columns: list[dict[str, Any]] = []
        self._printed_header = False
        self._lines: list[list[str]] = []

    def add(self, table: Mapping[str, Any]) -> None:
        columns = [c for c in table.get("columnDefinitions") or () if isinstance(c, dict)]
        if columns and columns != self._columns:
            self._columns = columns
            self._printed_header = False
        rows = [r for r in table.get("rows") or () if isinstance(r, dict)]
        if not rows or not self._columns:  # no columns known: nothing kubectl could print
            return
        visible = [i for i, c in enumerate(self._columns) if self.wide or not c.get("priority")]
        name_col = next(
            (
                i
                for i, c in enumerate(self._columns)
                if c.get("format") == "name" and c.get("type") == "string"
            ),
            -1,
        )
        if not self._printed_header:
            header = [str(self._columns[i].get("name", "")).upper() for i in visible]
            self._lines.append(["NAMESPACE", *header] if self.with_namespace else header)
            self._printed_header = True
        for row in rows:
            cells = row.get("cells")
            cells = cells if isinstance(cells, list) else []
            line = []
            for i in visible:
                if i >= len(cells):
                    break
                text = cell_text(cells[i])
                if i == name_col and self.kind:
                    text = f"{self.kind}/{text}"
                line.append(text)
            self._lines.append([_row_namespace(row), *line] if self.with_namespace else line)

    def add_status(self, status: Mapping[str, Any]) -> None:
        """A Status (a watch's ERROR event) as kubectl's default printer shows it."""
        header = ["STATUS", "REASON", "MESSAGE"]
        row = [cell_text(status.get(k)) for k in ("status", "reason", "message")]
        if self.with_namespace:
            header, row = ["NAMESPACE", *header], ["", *row]
        self._lines += [header, row]

    def flush(self) -> str:
        lines, self._lines = self._lines, []
        return self.writer.format(lines) if lines else ""


def _as_table(res: Resource, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The server's Table, or one built here from objects when it sent none."""
    if doc.get("kind") == "Table":
        return doc
    items = doc.get("items")
    objs = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else [doc]
    return tables.table(res, objs, time.time())


# -- -o yaml | json | name ---------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """YAML as kubectl writes it (sigs.k8s.io/yaml): sorted keys, block style, sequences
    not indented under their key, double quotes when quoting is needed, multi-line
    strings as `|` blocks, no line folding."""

    def choose_scalar_style(self) -> str:
        style: str = super().choose_scalar_style()
        return '"' if style == "'" else style


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    return yaml.dump(
        obj,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=1 << 30,
    )


def to_json(obj: Any) -> str:
    """JSON as kubectl writes it (Go's `json.MarshalIndent`, 4 spaces, sorted keys, HTML
    characters escaped)."""
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    for c, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(c, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def _with_type(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """A list item with the kind and apiVersion the list left out (kubectl fills them)."""
    return {"apiVersion": res.api_version, "kind": res.kind, **obj}


def _name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


# -- apply: the three-way merge (pure) ---------------------------------------------------------


def contains(have: Any, want: Any) -> bool:
    """True when `have` already holds everything `want` sets: maps key by key, lists item
    by item with the same length, other values equal (a bool is not a number)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            (v is None and k not in have) or (k in have and contains(have[k], v))
            for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(contains(h, w) for h, w in zip(have, want, strict=True))
        )
    if isinstance(want, bool) or isinstance(have, bool):
        return isinstance(want, bool) and isinstance(have, bool) and want == have
    return bool(have == want)


def apply_patch(
    original: Mapping[str, Any] | None, modified: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that makes `current` carry `modified`, given that
    the previous apply sent `original` (see the module docstring); empty when `current`
    already does."""
    patch: dict[str, Any] = {}
    for key, want in modified.items():
        if key not in current:
            if want is not None:
                patch[key] = want
            continue
        have = current[key]
        if want is None:
            patch[key] = None
        elif isinstance(want, dict) and isinstance(have, dict):
            before = original.get(key) if original else None
            sub = apply_patch(before if isinstance(before, dict) else None, want, have)
            if sub:
                patch[key] = sub
        elif not contains(have, want):
            patch[key] = want
    for key in original or ():
        if key not in modified and key in current:
            patch[key] = None
    return patch


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: `target` with `patch` applied (None deletes); neither is modified."""
    out = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            base = out.get(key)
            out[key] = merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def desired_object(m: Manifest, namespace: str) -> dict[str, Any]:
    """What `apply` sends for a manifest: its namespace set, server-owned metadata and
    status dropped, and the last-applied annotation holding the rest (as kubectl does:
    compact JSON with sorted keys and a final newline)."""
    obj = copy.deepcopy(m.obj)
    obj.pop("status", None)
    meta = obj["metadata"]
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    if namespace:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del meta["annotations"]
    last = json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"
    annotations = meta.setdefault("annotations", {})
    if isinstance(annotations, dict):
        annotations[LAST_APPLIED] = last
    return obj


def last_applied(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest the previous apply sent, from the live object's annotation."""
    meta = live.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    if not isinstance(text, str):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


# -- apply -------------------------------------------------------------------------------------


def _get_object(client: RESTClient, url: str) -> dict[str, Any]:
    resp = client.request("GET", url)
    obj = resp.json()
    if not isinstance(obj, dict):
        raise RESTError(f"{resp.server} answered GET {url} with {type(obj).__name__}")
    return obj


def _load(files: Sequence[str]) -> list[Manifest]:
    manifests: list[Manifest] = []
    for f in files:
        try:
            manifests += load_manifests(f, stdin=sys.stdin)
        except ManifestError as e:
            raise _Failed(f"error: {e}") from None
    return manifests


def _apply_one(client: RESTClient, m: Manifest, namespace_flag: str | None) -> str:
    res = m.resource
    if not m.name:
        raise _Failed(f"error: from {m.where}: cannot use generate name with apply")
    ns = _namespace_for(res, namespace_flag, m)
    ref = f"{qualified_kind(res)}/{m.name}"
    desired = desired_object(m, ns)
    url = res.url(ns, m.name)
    conflicts = 0
    while True:
        try:
            live = _get_object(client, url)
        except APIStatusError as e:
            if e.code != 404:
                raise e.with_source(
                    f"retrieving current configuration of {ref} from server for", m.source
                ) from None
            try:
                client.request("POST", res.url(ns), body=desired)
            except APIStatusError as e2:
                raise e2.with_source("creating", m.source) from None
            return f"{ref} created"
        patch = apply_patch(last_applied(live), desired, live)
        if not patch:
            return f"{ref} unchanged"
        try:
            client.request("PUT", url, body=merge_patch(live, patch))
        except APIStatusError as e:
            conflicts += 1
            if e.reason == "Conflict" and conflicts <= MAX_CONFLICT_RETRIES:
                continue  # someone wrote in between: read again
            raise e.with_source("applying", m.source) from None
        return f"{ref} configured"


@_kubectl_errors
def cmd_apply(args: argparse.Namespace) -> int:
    manifests = _load(args.filename)
    if not manifests:
        raise _Failed("error: no objects passed to apply")
    client = _client(args)
    outcome = _Outcome()
    with outcome.reporting():
        for m in manifests:
            try:
                print(_apply_one(client, m, args.namespace), flush=True)
            except (APIStatusError, OutcomeUnknown, _Failed) as e:
                outcome.add(e)
    return outcome.code


# -- get ---------------------------------------------------------------------------------------


def _pages(
    client: RESTClient, res: Resource, namespace: str | None, query: dict[str, Any], accept: str
) -> Iterator[dict[str, Any]]:
    """Every page of a list (kubectl asks for 500 at a time and follows `continue`)."""
    q = {**query, "limit": PAGE_SIZE}
    while True:
        doc = client.get_json(res.url(namespace), query=q, accept=accept)
        if not isinstance(doc, dict):
            raise RESTError(f"the list of {res.plural} is {type(doc).__name__}, not an object")
        yield doc
        meta = doc.get("metadata")
        token = meta.get("continue") if isinstance(meta, dict) else None
        if not token:
            return
        q["continue"] = token


@dataclass
class _GetOptions:
    namespace: str | None  # None: every namespace (-A)
    output: str
    label_selector: str
    field_selector: str
    ignore_not_found: bool

    def query(self) -> dict[str, Any]:
        return {
            "labelSelector": self.label_selector or None,
            "fieldSelector": self.field_selector or None,
        }


def _list_namespace(res: Resource, opts: _GetOptions) -> str | None:
    return opts.namespace if res.namespaced else None


def _fetch(
    client: RESTClient,
    res: Resource,
    names: list[str],
    opts: _GetOptions,
    *,
    accept: str,
    outcome: _Outcome,
) -> list[dict[str, Any]]:
    """The documents of one target: one per name (errors go to `outcome`), or the pages
    of the list."""
    if not names:
        return list(_pages(client, res, _list_namespace(res, opts), opts.query(), accept))
    ns = (opts.namespace or DEFAULT_NAMESPACE) if res.namespaced else ""
    docs = []
    for name in names:
        try:
            doc = client.get_json(res.url(ns, name), accept=accept)
        except APIStatusError as e:
            if not (e.code == 404 and opts.ignore_not_found):
                outcome.add(e)
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _get_tables(client: RESTClient, targets: list[Target], opts: _GetOptions) -> int:
    outcome = _Outcome()
    several_kinds = len({res for res, _ in targets}) > 1
    written = False
    with outcome.reporting():
        for res, names in targets:
            printer = TablePrinter(
                wide=opts.output == "wide",
                with_namespace=opts.namespace is None and res.namespaced,
                kind=qualified_kind(res) if several_kinds else "",
            )
            for doc in _fetch(client, res, names, opts, accept=TABLE, outcome=outcome):
                printer.add(_as_table(res, doc))
            text = printer.flush()
            if text:
                sys.stdout.write(("\n" if written else "") + text)
                written = True
    if not written and not outcome.errors and not opts.ignore_not_found:
        all_namespaced = opts.namespace is not None and all(r.namespaced for r, _ in targets)
        where = f" in {opts.namespace} namespace" if all_namespaced else ""
        print(f"No resources found{where}.", file=sys.stderr)
    return outcome.code


def _objects(res: Resource, doc: dict[str, Any]) -> list[dict[str, Any]]:
    items = doc.get("items")
    if isinstance(items, list):
        return [_with_type(res, i) for i in items if isinstance(i, dict)]
    return [doc]


def _print_objects(objs: list[dict[str, Any]], output: str, *, single: bool) -> None:
    if output == "name":
        for obj in objs:
            res = lookup(str(obj.get("kind", "")))
            kind = qualified_kind(res) if res else str(obj.get("kind", "")).lower()
            print(f"{kind}/{_name_of(obj)}")
        return
    doc: dict[str, Any]
    if single and len(objs) == 1:
        doc = objs[0]
    else:
        doc = {
            "apiVersion": "v1",
            "items": objs,
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        }
    sys.stdout.write(to_yaml(doc) if output == "yaml" else to_json(doc))


def _get_objects(client: RESTClient, targets: list[Target], opts: _GetOptions) -> int:
    outcome = _Outcome()
    objs: list[dict[str, Any]] = []
    with outcome.reporting():
        for res, names in targets:
            for doc in _fetch(client, res, names, opts, accept=JSON, outcome=outcome):
                objs += _objects(res, doc)
        single = len(targets) == 1 and len(targets[0][1]) == 1
        if objs or not single:
            _print_objects(objs, opts.output, single=single)
    return outcome.code


def _watch(client: RESTClient, target: Target, opts: _GetOptions) -> int:
    """kubectl's `get -w`: the list (or the named object), then every change from the
    list's resourceVersion, until the server ends the stream (exit 0) or Ctrl-C."""
    res, names = target
    field_selector = opts.field_selector
    if names:
        by_name = f"metadata.name={names[0]}"
        field_selector = f"{field_selector},{by_name}" if field_selector else by_name
    query = {"labelSelector": opts.label_selector or None, "fieldSelector": field_selector or None}
    ns = _list_namespace(res, opts)
    tabular = opts.output in ("", "wide")
    accept = TABLE if tabular else JSON
    printer = TablePrinter(wide=opts.output == "wide", with_namespace=ns is None and res.namespaced)
    docs = list(_pages(client, res, ns, query, accept))
    count = 0
    for doc in docs:
        if tabular:
            table = _as_table(res, doc)
            count += len(table.get("rows") or ())
            printer.add(table)
        else:
            objs = _objects(res, doc)
            count += len(objs)
            _print_stream(objs, opts.output, count - len(objs))
    if names and count == 0:
        raise APIStatusError(errors.not_found(res, names[0]).status())
    sys.stdout.write(printer.flush())
    sys.stdout.flush()
    meta = docs[-1].get("metadata") if docs else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    watch_query = {**query, "watch": True, "resourceVersion": rv or None}
    try:
        for event in client.stream(res.url(ns), watch_query, accept):
            kind, obj = event.get("type"), event.get("object")
            if kind == "BOOKMARK" or not isinstance(obj, dict):
                continue
            if tabular:
                if kind == "ERROR" or obj.get("kind") == "Status":
                    printer.add_status(obj)
                else:
                    printer.add(_as_table(res, obj))
                sys.stdout.write(printer.flush())
            else:
                _print_stream([obj], opts.output, count)
                count += 1
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    except TransportError as e:
        raise _Failed(f"error: the watch ended: {e}") from None
    return 0


def _print_stream(objs: list[dict[str, Any]], output: str, already: int) -> None:
    """Objects printed one by one (watch): YAML documents after the first get `---`."""
    for i, obj in enumerate(objs):
        if output == "yaml":
            sys.stdout.write(("---\n" if already + i else "") + to_yaml(obj))
        elif output == "json":
            sys.stdout.write(to_json(obj))
        else:
            _print_objects([obj], "name", single=True)


@_kubectl_errors
def cmd_get(args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources, "get")
    if args.selector and any(names for _, names in targets):
        raise _Failed("error: name cannot be provided when a selector is specified")
    if args.all_namespaces and any(names for _, names in targets):
        raise _Failed("error: a resource cannot be retrieved by name across all namespaces")
    opts = _GetOptions(
        namespace=None if args.all_namespaces else (args.namespace or DEFAULT_NAMESPACE),
        output=args.output or "",
        label_selector=args.selector or "",
        field_selector=args.field_selector or "",
        ignore_not_found=args.ignore_not_found,
    )
    client = _client(args)
    if args.watch:
        if len(targets) > 1 or len(targets[0][1]) > 1:
            raise _Failed(
                "error: watch is only supported on individual resources and resource "
                "collections - more than 1 resource was found"
            )
        return _watch(client, targets[0], opts)
    if opts.output in ("", "wide"):
        return _get_tables(client, targets, opts)
    return _get_objects(client, targets, opts)


# -- delete ------------------------------------------------------------------------------------


@_kubectl_errors
def cmd_delete(args: argparse.Namespace) -> int:
    items: list[tuple[Resource, str, str]] = []  # resource, namespace, name
    if args.filename:
        if args.resources:
            raise _Failed("error: give either KIND NAME... or -f FILE, not both")
        for m in _load(args.filename):
            if not m.name:
                raise _Failed(f"error: {m.where}: a name is required to delete an object")
            items.append((m.resource, _namespace_for(m.resource, args.namespace, m), m.name))
    else:
        targets = parse_targets(args.resources, "delete")
        for res, names in targets:
            if not names:
                raise _Failed("error: resource(s) were provided, but no name was specified")
            items += [(res, _namespace_for(res, args.namespace), n) for n in names]
    if not items:
        raise _Failed("error: no objects passed to delete")
    client = _client(args)
    outcome = _Outcome()
    with outcome.reporting():
        for res, ns, name in items:
            try:
                client.request("DELETE", res.url(ns, name), body=DELETE_OPTIONS)
            except APIStatusError as e:
                if not (e.code == 404 and args.ignore_not_found):
                    outcome.add(e)
                continue
            except OutcomeUnknown as e:
                outcome.add(e)
                continue
            print(f'{qualified_kind(res)} "{name}" deleted', flush=True)
    return outcome.code


# -- scale -------------------------------------------------------------------------------------


@_kubectl_errors
def cmd_scale(args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise _Failed(
            "error: The --replicas=COUNT flag is required, and COUNT must be greater than or "
            "equal to 0"
        )
    targets = parse_targets(args.resources, "scale")
    items: list[tuple[Resource, str]] = []
    for res, names in targets:
        if res.subresource("scale") is None:
            scalable = ", ".join(r.plural for r in RESOURCES if r.subresource("scale"))
            raise _Failed(f"error: {res.plural} cannot be scaled (only {scalable})")
        if not names:
            raise _Failed("error: resource(s) were provided, but no name was specified")
        items += [(res, n) for n in names]
    client = _client(args)
    outcome = _Outcome()
    with outcome.reporting():
        for res, name in items:
            try:
                _scale_one(
                    client, res.url(_namespace_for(res, args.namespace), name), args.replicas
                )
            except (APIStatusError, OutcomeUnknown) as e:
                outcome.add(e)
                continue
            print(f"{qualified_kind(res)}/{name} scaled", flush=True)
    return outcome.code


def _scale_one(client: RESTClient, url: str, replicas: int) -> None:
    """GET, set spec.replicas, PUT with the resourceVersion read; re-read on 409."""
    for attempt in range(MAX_CONFLICT_RETRIES + 1):
        live = _get_object(client, url)
        spec = live.get("spec")
        live["spec"] = {**(spec if isinstance(spec, dict) else {}), "replicas": replicas}
        try:
            client.request("PUT", url, body=live)
            return
        except APIStatusError as e:
            if e.reason != "Conflict" or attempt == MAX_CONFLICT_RETRIES:
                raise


# -- the parsers -------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="the namespace (default: the manifest's, else `default`)",
    )
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each request's connect and read",
    )


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `apply`, `get`, `delete` and `scale`."""
    p = sub.add_parser(
        "apply",
        help="create or update objects from manifests (like `kubectl apply -f`)",
        description="Create the objects of the manifests, or update them to match.",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE|DIR|-",
        help="a manifest file, a directory of *.yaml/*.yml/*.json files, or - for stdin "
        "(repeatable)",
    )
    _common(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "get",
        help="show objects as kubectl does (the server's tables)",
        description="List objects of one or more kinds (KIND[,KIND...] [NAME...] or "
        "KIND/NAME...), e.g. `kubelab get deploy,rs -A`, `kubelab get pod web-1 -o yaml`.",
    )
    p.add_argument("resources", nargs="*", metavar="KIND [NAME...]")
    p.add_argument("-o", "--output", choices=("wide", "yaml", "json", "name"))
    p.add_argument("-l", "--selector", metavar="SELECTOR", help="label selector (app=web)")
    p.add_argument("--field-selector", metavar="SELECTOR", help="field selector")
    p.add_argument("-w", "--watch", action="store_true", help="then print every change")
    p.add_argument(
        "--ignore-not-found", action="store_true", help="a missing named object is no error"
    )
    _common(p, all_namespaces=True)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "delete",
        help="delete objects by kind and name or from manifests",
        description="Delete objects: KIND NAME..., KIND/NAME..., or -f FILE.",
    )
    p.add_argument("resources", nargs="*", metavar="KIND [NAME...]")
    p.add_argument("-f", "--filename", action="append", metavar="FILE|DIR|-")
    p.add_argument("--ignore-not-found", action="store_true", help="a missing object is no error")
    _common(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser(
        "scale",
        help="set the replicas of a deployment or replicaset",
        description="Set spec.replicas: `kubelab scale deployment web --replicas 3`.",
    )
    p.add_argument("resources", nargs="+", metavar="KIND NAME")
    p.add_argument("--replicas", type=int, required=True, metavar="N")
    _common(p)
    p.set_defaults(func=cmd_scale)
