"""PATCH documents: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

What kubectl sends with them (kubectl-api.md §7.1): `label`, `annotate`, `scale` and
`patch --type merge` send merge patches; `rollout undo` and `patch --type json` send JSON
patches. Strategic merge patch (`apply`, `rollout restart`, `cordon`, the default of
`kubectl patch`) needs per-field merge keys and is not implemented here.

Pure functions over JSON values. The inputs are never modified (the store may retry a
mutation, which then patches the same document again). Errors are `APIError`s: 400 for a
patch document that is malformed, 422 for a well-formed JSON patch that does not apply
(missing path, failed `test`), as kube-apiserver answers.
"""

from __future__ import annotations

import copy
from typing import Any

from . import errors
from .errors import APIError

MERGE = "merge"
JSON_PATCH = "json"

_MEDIA_TYPES = {
    "application/merge-patch+json": MERGE,
    "application/json-patch+json": JSON_PATCH,
}
_MAX_OPERATIONS = 10_000


def patch_kind(media_type: str) -> str | None:
    """MERGE or JSON_PATCH for a request's Content-Type media type; None when unsupported."""
    return _MEDIA_TYPES.get(media_type)


def apply(kind: str, target: Any, patch: Any) -> Any:
    """`target` with `patch` applied; `target` and `patch` are left unchanged."""
    if kind == MERGE:
        return merge_patch(target, patch)
    if kind == JSON_PATCH:
        return json_patch(target, patch)
    raise ValueError(f"unknown patch kind {kind!r}")


# -- RFC 7386 ----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch: an object patch merges recursively and `null` deletes a member;
    any other value replaces the target whole."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- RFC 6902 ----------------------------------------------------------------------------------


def _invalid(message: str) -> APIError:
    return APIError(422, "Invalid", message)


def parse_pointer(pointer: Any, where: str) -> list[str]:
    """RFC 6901: `""` is the whole document, `/a/b~1c` is ["a", "b/c"]."""
    if not isinstance(pointer, str):
        raise errors.bad_request(f"{where}: expected a JSON pointer string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise errors.bad_request(f'{where}: JSON pointer "{pointer}" must start with "/"')
    tokens = pointer[1:].split("/")
    for t in tokens:
        rest = t.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise errors.bad_request(f'{where}: JSON pointer "{pointer}" has a bad "~" escape')
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _index(token: str, size: int, pointer: str, *, append: bool) -> int:
    """An array index token: digits without leading zeros, `-` (one past the end) only where
    appending is allowed."""
    if append and token == "-":
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise _invalid(f'path "{pointer}": "{token}" is not an array index')
    i = int(token)
    limit = size if append else size - 1
    if i > limit:
        raise _invalid(
            f'path "{pointer}": index {i} is out of range (the array has {size} elements)'
        )
    return i


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    """The container that holds the last token of `tokens`."""
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict):
            if t not in node:
                raise _invalid(f'path "{pointer}": "{t}" does not exist')
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(t, len(node), pointer, append=False)]
        else:
            raise _invalid(f'path "{pointer}": "{t}" is not inside an object or array')
    return node


def _get(doc: Any, tokens: list[str], pointer: str) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _invalid(f'path "{pointer}" does not exist')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), pointer, append=False)]
    raise _invalid(f'path "{pointer}" does not exist')


def _add(doc: Any, tokens: list[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), pointer, append=True), value)
    else:
        raise _invalid(f'path "{pointer}": the parent is not an object or array')
    return doc


def _remove(doc: Any, tokens: list[str], pointer: str) -> tuple[Any, Any]:
    """(document, removed value)."""
    if not tokens:
        raise _invalid("cannot remove the whole document")
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _invalid(f'path "{pointer}" does not exist: nothing to remove')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), pointer, append=False))
    raise _invalid(f'path "{pointer}" does not exist: nothing to remove')


def _operation(doc: Any, op: Any, i: int) -> Any:
    where = f"operation {i}"
    if not isinstance(op, dict):
        raise errors.bad_request(f"{where}: expected an object with op and path")
    name = op.get("op")
    path = parse_pointer(op.get("path"), f"{where} path")
    pointer = str(op["path"])
    if name in ("add", "replace", "test") and "value" not in op:
        raise errors.bad_request(f'{where}: "{name}" needs a value')
    if name == "add":
        return _add(doc, path, copy.deepcopy(op["value"]), pointer)
    if name == "remove":
        return _remove(doc, path, pointer)[0]
    if name == "replace":
        _get(doc, path, pointer)  # must exist
        if not path:
            return copy.deepcopy(op["value"])
        doc, _ = _remove(doc, path, pointer)
        return _add(doc, path, copy.deepcopy(op["value"]), pointer)
    if name in ("move", "copy"):
        source = parse_pointer(op.get("from"), f"{where} from")
        origin = str(op["from"])
        if name == "move":
            if path[: len(source)] == source and path != source:
                raise _invalid(f'{where}: cannot move "{origin}" into its own child "{pointer}"')
            doc, value = _remove(doc, source, origin)
        else:
            value = copy.deepcopy(_get(doc, source, origin))
        return _add(doc, path, value, pointer)
    if name == "test":
        if not _equal(_get(doc, path, pointer), op["value"]):
            raise _invalid(f'{where}: test failed: the value at "{pointer}" differs')
        return doc
    raise errors.bad_request(
        f"{where}: unknown op {name!r} (expected add, remove, replace, move, copy or test)"
    )


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` equals `1.0` (RFC 6902 §4.6)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def json_patch(target: Any, patch: Any) -> Any:
    """RFC 6902: apply every operation in order to a copy of `target`; all or nothing."""
    if not isinstance(patch, list):
        raise errors.bad_request("a JSON patch must be an array of operations")
    if len(patch) > _MAX_OPERATIONS:
        raise errors.bad_request(f"a JSON patch may hold at most {_MAX_OPERATIONS} operations")
    doc = copy.deepcopy(target)
    for i, op in enumerate(patch):
        doc = _operation(doc, op, i)
    return doc
