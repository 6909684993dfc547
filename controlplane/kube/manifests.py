"""Reading manifests as kubectl's `-f` does: files, directories, stdin; YAML or JSON.

`load_manifests(source)` returns every object of the source, checked enough that a command
can act on it: a mapping with `apiVersion`, `kind`, `metadata.name` (or
`metadata.generateName`) of a kind the server serves. Everything is read and checked before
the caller sends anything, so a typo in the third document does not leave the first two
applied and the rest not.

Sources: `-` is stdin (named `STDIN` in messages, as kubectl does); a directory means its
`*.yaml`, `*.yml` and `*.json` files, sorted by name, not recursive (kubectl's default); a
file is read whatever its extension. A source whose first non-blank character is `{` is a
stream of JSON objects (kubectl sniffs the same way); anything else is multi-document YAML.
Empty documents are skipped; a `kind: List` (or any `*List`) contributes its `items`.

YAML follows Kubernetes' reading of it, not PyYAML's: timestamps stay strings (the API
stores them as strings), keys become strings, and values JSON cannot carry (`!!binary`,
`!!set`) are errors naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from .resources import Resource, by_api_version_kind, known_kinds

__all__ = [
    "STDIN",
    "Manifest",
    "ManifestError",
    "load_manifests",
    "manifest_files",
    "parse_manifests",
]

STDIN = "STDIN"
EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A source that cannot be used: the message names the file (and line and column, or
    the document) and what is wrong."""


@dataclass(frozen=True)
class Manifest:
    """One object read from `source`: the `index`-th document (0-based, counting empty
    ones), and for a document that is a List, its `item`-th item."""

    obj: dict[str, Any]
    source: str
    index: int
    item: int | None = None

    @property
    def resource(self) -> Resource:
        res = by_api_version_kind(str(self.obj.get("apiVersion")), str(self.obj.get("kind")))
        if res is None:  # load_manifests checked it; a hand-made Manifest may not be
            raise ManifestError(f"{self.where}: {_unknown_kind(self.obj)}")
        return res

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        """The manifest's own namespace ("" when it sets none)."""
        return str(self.metadata.get("namespace") or "")

    @property
    def where(self) -> str:
        """`x.yaml (document 2)`, `x.yaml (document 1, item 3)`: for messages."""
        at = f"document {self.index + 1}"
        if self.item is not None:
            at += f", item {self.item + 1}"
        return f"{self.source} ({at})"


def load_manifests(source: str | Path, *, stdin: TextIO) -> list[Manifest]:
    """Every object of `source` (see the module docstring); `ManifestError` for the first
    problem found."""
    out: list[Manifest] = []
    for name, text in _texts(source, stdin):
        out.extend(parse_manifests(text, name))
    return out


def manifest_files(directory: Path) -> list[Path]:
    """The files of a directory that `-f DIR` reads."""
    return sorted(p for p in directory.iterdir() if p.suffix in EXTENSIONS and p.is_file())


def parse_manifests(text: str, source: str) -> list[Manifest]:
    """The objects of one file's text (`source` names it in errors)."""
    out: list[Manifest] = []
    for index, doc in enumerate(_documents(text, source)):
        if doc is None:
            continue
        base = Manifest({}, source, index)
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{base.where}: expected an object (a mapping with apiVersion, kind and "
                f"metadata), got {_type_name(doc)}"
            )
        obj = _json_ready(doc, base.where, "")
        kind = obj.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in obj:
            items = obj["items"]
            if not isinstance(items, list):
                raise ManifestError(f"{base.where}: items must be a list")
            for i, item in enumerate(items):
                m = Manifest(item, source, index, i)
                if not isinstance(item, dict):
                    raise ManifestError(f"{m.where}: expected an object, got {_type_name(item)}")
                out.append(_checked(m))
            continue
        out.append(_checked(Manifest(obj, source, index)))
    return out


def _texts(source: str | Path, stdin: TextIO) -> Iterator[tuple[str, str]]:
    if str(source) == "-":
        yield STDIN, stdin.read()
        return
    path = Path(source)
    if path.is_dir():
        files = manifest_files(path)
    elif path.exists():
        files = [path]
    else:
        raise ManifestError(f'the path "{path}" does not exist')
    for f in files:
        try:
            yield str(f), f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"{f}: cannot read: {e}") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: `2024-05-01` stays a string, as in the API."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _documents(text: str, source: str) -> Iterator[Any]:
    if text.lstrip().startswith("{"):
        yield from _json_documents(text, source)
        return
    try:
        yield from yaml.load_all(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        raise ManifestError(_yaml_problem(e, source)) from None
    except yaml.YAMLError as e:
        raise ManifestError(f"{source}: {e}") from None


def _yaml_problem(e: yaml.MarkedYAMLError, source: str) -> str:
    """`file:line:column: problem` (PyYAML's marks are 0-based; editors count from 1)."""
    mark = e.problem_mark or e.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = e.problem or e.context or "invalid YAML"
    if e.context and e.problem and e.context_mark and e.context_mark is not mark:
        problem += f" ({e.context} at line {e.context_mark.line + 1})"
    return f"{where}: {problem}"


_WS = re.compile(r"\s*")


def _json_documents(text: str, source: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{source}:{e.lineno}:{e.colno}: {e.msg}") from None
        yield doc
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]


def _json_ready(value: Any, where: str, path: str) -> Any:
    """`value` with string keys only; `ManifestError` naming the field for a value JSON
    cannot carry."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _key_text(k)
            out[key] = _json_ready(v, where, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list):
        return [_json_ready(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ManifestError(f"{where}: {path}: {_type_name(value)} cannot be sent to the API")


def _key_text(key: Any) -> str:
    """A mapping key as text, spelled as YAML (and Go) spell it: `true`, `null`, `1.5`."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _checked(m: Manifest) -> Manifest:
    obj = m.obj
    problems = [f"{field} not set" for field in ("apiVersion", "kind") if not obj.get(field)]
    problems += [
        f"{field} must be a string"
        for field in ("apiVersion", "kind")
        if obj.get(field) and not isinstance(obj[field], str)
    ]
    meta = obj.get("metadata")
    if meta is None:
        problems.append("metadata not set")
    elif not isinstance(meta, dict):
        problems.append(f"metadata must be a mapping, got {_type_name(meta)}")
    elif not meta.get("name") and not meta.get("generateName"):
        problems.append("metadata.name not set")
    else:
        problems += [
            f"metadata.{field} must be a string"
            for field in ("name", "generateName", "namespace")
            if meta.get(field) is not None and not isinstance(meta[field], str)
        ]
    if problems:
        raise ManifestError(f"{m.where}: {', '.join(problems)}")
    if by_api_version_kind(obj["apiVersion"], obj["kind"]) is None:
        raise ManifestError(f"{m.where}: {_unknown_kind(obj)}")
    return m


def _unknown_kind(obj: dict[str, Any]) -> str:
    return (
        f'the server doesn\'t have a resource type "{obj.get("kind")}" '
        f"(apiVersion {obj.get('apiVersion')}): known kinds are {', '.join(known_kinds())}"
    )


def _type_name(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__} value"
