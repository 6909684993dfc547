"""Label and field selectors, as Kubernetes parses and matches them (kubectl-api.md §4).

Label selectors follow `k8s.io/apimachinery/pkg/labels`: the same lexer (so `x in (in)` and
`a!=b` tokenize as they do in Go), the same grammar, the same validation of keys and values,
and the same canonical string (requirements sorted by key, set values sorted), which is what
kubectl prints and what `rollout history` sends back to us. A `LabelSelector` object
(`matchLabels` + `matchExpressions`) converts like `metav1.LabelSelectorAsSelector`: a missing
selector selects nothing, an empty one selects everything.

Field selectors follow `k8s.io/apimachinery/pkg/fields`: comma-separated `field=value`,
`field==value`, `field!=value` terms, values escaped with `\\`, `\\,` and `\\=`. Which fields
a kind supports, and how an object's fields read, follow each kind's `GetAttrs` in
kube-apiserver: a field the object leaves unset reads as its zero value (`""`, `"false"`,
`"0"`), so `involvedObject.namespace=` matches an event about a node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .resources import Resource

# -- label keys and values (k8s.io/apimachinery/pkg/util/validation) ---------------------------

_QUALIFIED_NAME_MAX = 63
_LABEL_VALUE_MAX = 63
_DNS1123_SUBDOMAIN_MAX = 253
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^({_QUALIFIED_NAME_FMT})?$")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")

_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for "
    f"validation is '{_QUALIFIED_NAME_FMT}')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue', or "
    f"'my_value', or '12345', regex used for validation is '({_QUALIFIED_NAME_FMT})?')"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    f"used for validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)


def label_key_errors(key: str) -> list[str]:
    """Why `key` is not a valid label key (`[prefix/]name`), empty when it is.

    The messages are Kubernetes' `IsQualifiedName` ones, so a validator for metadata.labels
    can reuse them word for word."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
        errs: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = []
        if not prefix:
            errs.append("prefix part must be non-empty")
        elif len(prefix) > _DNS1123_SUBDOMAIN_MAX:
            errs.append(f"prefix part must be no more than {_DNS1123_SUBDOMAIN_MAX} characters")
        elif not _DNS1123_SUBDOMAIN_RE.match(prefix):
            errs.append(f"prefix part {_DNS1123_SUBDOMAIN_MSG}")
    else:
        return [
            f"a qualified name {_QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {_QUALIFIED_NAME_MAX} characters")
    if name and not _QUALIFIED_NAME_RE.match(name):
        errs.append(f"name part {_QUALIFIED_NAME_MSG}")
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value, empty when it is (the empty string is valid)."""
    errs: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append(f"must be no more than {_LABEL_VALUE_MAX} characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


# -- label selectors ---------------------------------------------------------------------------

IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

# Kubernetes lists these in this order in "expected: ..." messages.
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_INT64 = re.compile(r"^[+-]?[0-9]+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64), or None when it would fail."""
    if not _INT64.match(text):
        return None
    n = int(text)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `key op values` (values empty for exists/!exists)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: str, values: tuple[str, ...] = ()) -> Requirement:
        """A validated requirement (labels.NewRequirement); ValueError says what is wrong."""
        errs = [f'invalid label key "{key}": {e}' for e in label_key_errors(key)]
        if operator in (IN, NOT_IN):
            if not values:
                errs.append("for 'in', 'notin' operators, values set can't be empty")
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(values) != 1:
                errs.append("exact-match compatibility requires one single value")
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if values:
                errs.append("values set must be empty for exists and does not exist")
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(values) != 1:
                errs.append("for 'Gt', 'Lt' operators, exactly one value is required")
            errs.extend(
                f"for 'Gt', 'Lt' operators, the value must be an integer, got \"{v}\""
                for v in values
                if _parse_int64(v) is None
            )
        else:
            errs.append(f'unsupported operator "{operator}"')
        for v in values:
            errs.extend(
                f'invalid label value "{v}" for key "{key}": {e}' for e in label_value_errors(v)
            )
        if errs:
            raise ValueError("; ".join(errs))
        return cls(key, operator, values)

    def matches(self, labels: Mapping[str, Any]) -> bool:
        """Requirement.Matches: `!=` and `notin` match objects without the key."""
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: both sides must parse as integers.
        value = labels.get(self.key)
        have = _parse_int64(value) if isinstance(value, str) else None
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


# Lexer tokens (labels.Token); identifiers carry their text.
_IDENT = "identifier"
_EOS = "end of string"
_KEYWORDS = {
    ")": ")",
    ",": ",",
    "!": "!",
    "==": "==",
    "=": "=",
    ">": ">",
    "in": "in",
    "<": "<",
    "!=": "!=",
    "notin": "notin",
    "(": "(",
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens of a label selector, as (token, literal), ending with end-of-string.

    Like labels.Lexer: whitespace separates, operator characters scan greedily as long as
    the run is a known operator, everything else runs to the next operator or blank and is
    a keyword (`in`, `notin`) or an identifier."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append((_EOS, ""))
            return tokens
        if text[i] in _SPECIAL:
            j = i + 1
            best = i + 1  # every single operator character is a token
            while j < n and text[j] in _SPECIAL:
                if text[i : j + 1] not in _KEYWORDS:
                    break
                j += 1
                best = j
            literal = text[i:best]
            tokens.append((_KEYWORDS[literal], literal))
            i = best
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
            j += 1
        literal = text[i:j]
        tokens.append((_KEYWORDS.get(literal, _IDENT), literal))
        i = j


class _Parser:
    """labels.Parser: a recursive-descent parser over the token list.

    In value position the keywords `in` and `notin` are plain identifiers, so `x in (in)`
    parses; messages are Kubernetes' own ("found 'x', expected: ...")."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.tokens[self.pos]
        if values and tok in (IN, NOT_IN):
            tok = _IDENT
        return tok, lit

    def _next(self, values: bool = True) -> tuple[str, str]:
        item = self._peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok == _EOS:
                return requirements
            if tok not in (_IDENT, "!"):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except ValueError as e:
                raise ValueError(f"unable to parse requirement: {e}") from None
            tok, lit = self._next()
            if tok == _EOS:
                return requirements
            if tok != ",":
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek()
            if tok not in (_IDENT, "!"):
                raise ValueError(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        operator = ""
        tok, key = self._next()
        if tok == "!":
            operator = DOES_NOT_EXIST
            tok, key = self._next()
        if tok != _IDENT:
            raise ValueError(f"found '{key}', expected: identifier")
        errs = label_key_errors(key)
        if errs:
            raise ValueError(f'invalid label key "{key}": {"; ".join(errs)}')
        if not operator and self._peek()[0] in (_EOS, ","):
            operator = EXISTS
        if operator:
            return Requirement.new(key, operator)
        tok, lit = self._next(values=False)
        operator = {
            "in": IN,
            "notin": NOT_IN,
            "=": EQUALS,
            "==": DOUBLE_EQUALS,
            "!=": NOT_EQUALS,
            ">": GREATER_THAN,
            "<": LESS_THAN,
        }.get(tok, "")
        if not operator:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return Requirement.new(key, operator, tuple(sorted(values)))

    def _set_values(self) -> set[str]:
        tok, lit = self._next()
        if tok != "(":
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok == ")":  # "()" is the set of the empty string
            self._next()
            return {""}
        if tok not in (_IDENT, ","):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers()
        tok, _ = self._next()
        if tok != ")":
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def _identifiers(self) -> set[str]:
        """A comma-separated list of possibly empty values: `(a,,b)`, `(,a)`, `(a,)`."""
        values: set[str] = set()
        while True:
            tok, lit = self._next()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek()
                if tok2 == ")":
                    return values
                if tok2 != ",":
                    raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == ",":
                if not values:
                    values.add("")  # "(,"
                tok2, _ = self._peek()
                if tok2 == ")":
                    values.add("")  # ",)"
                    return values
                if tok2 == ",":
                    values.add("")  # ",,"
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._peek()
        if tok in (_EOS, ","):  # "a=" selects the empty value
            return {""}
        tok, lit = self._next()
        if tok == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


_SELECTOR_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


class LabelSelector:
    """A parsed label selector: the AND of its requirements, sorted by key.

    `LabelSelector.nothing()` (what a missing selector object converts to) matches no
    object and prints as ""; the empty selector matches every object."""

    __slots__ = ("_nothing", "requirements")

    def __init__(
        self, requirements: tuple[Requirement, ...] = (), *, nothing: bool = False
    ) -> None:
        self.requirements = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the `labelSelector` query syntax (labels.Parse).

        Grammar: requirements joined by `,`; each is `key`, `!key`, `key=v`, `key==v`,
        `key!=v`, `key in (v1,v2)`, `key notin (v1)`, `key>n` or `key<n`. Raises ValueError
        with Kubernetes' message, e.g. `unable to parse requirement: found '', expected:
        in, notin, =, ==, !=, gt, lt`."""
        return cls(tuple(_Parser(text).parse()))

    @classmethod
    def from_object(cls, sel: Mapping[str, Any] | None) -> LabelSelector:
        """Convert a `metav1.LabelSelector` object (metav1.LabelSelectorAsSelector).

        None selects nothing (a controller without a selector must not adopt every pod);
        `{}` selects everything. ValueError names the offending field."""
        if sel is None:
            return cls.nothing()
        if not isinstance(sel, Mapping):
            raise ValueError(f"selector: must be an object, got {type(sel).__name__}")
        match_labels = sel.get("matchLabels") or {}
        expressions = sel.get("matchExpressions") or []
        if not isinstance(match_labels, Mapping):
            raise ValueError("matchLabels: must be an object of string keys and values")
        if not isinstance(expressions, list):
            raise ValueError("matchExpressions: must be a list")
        requirements: list[Requirement] = []
        for key, value in match_labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"matchLabels[{key!r}]: keys and values must be strings")
            try:
                requirements.append(Requirement.new(key, EQUALS, (value,)))
            except ValueError as e:
                raise ValueError(f"matchLabels: {e}") from None
        for i, expr in enumerate(expressions):
            requirements.append(_expression(i, expr))
        return cls(tuple(requirements))

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every object)."""
        return not self._nothing and not self.requirements

    def matches(self, labels: Mapping[str, Any] | None) -> bool:
        if self._nothing:
            return False
        present: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
        return all(r.matches(present) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (self._nothing, self.requirements) == (other._nothing, other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


def _expression(i: int, expr: Any) -> Requirement:
    where = f"matchExpressions[{i}]"
    if not isinstance(expr, Mapping):
        raise ValueError(f"{where}: must be an object with key, operator and values")
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str):
        raise ValueError(f"{where}.key: must be a string")
    if op not in _SELECTOR_OPERATORS:
        raise ValueError(
            f'{where}.operator: "{op}" is not a valid label selector operator '
            "(In, NotIn, Exists, DoesNotExist)"
        )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}.values: must be a list of strings")
    try:
        return Requirement.new(key, _SELECTOR_OPERATORS[op], tuple(values))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def selector_string(sel: Mapping[str, Any] | None) -> str:
    """A LabelSelector object as kubectl's SELECTOR columns show it (metav1.FormatLabelSelector):
    `app=web,tier in (a,b)`, `<none>` when it selects everything or nothing, `<error>` when
    it does not convert."""
    try:
        text = str(LabelSelector.from_object(sel))
    except ValueError:
        return "<error>"
    return text or "<none>"


# -- field selectors ---------------------------------------------------------------------------

_FIELD_OPERATORS = ("!=", "==", "=")  # "==" before "=" so no "=" is left on the value


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: escape `\\`, `,` and `=` so a value parses back unchanged."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    """fields.UnescapeValue: `\\\\`, `\\,` and `\\=` only; a bare `,` or `=` is an error."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {c}")
        else:
            out.append(c)
    if escaped:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped; escapes stay in the terms."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """(field, operator, raw value) at the first operator; fields have no escapes."""
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


class FieldSelector:
    """A parsed field selector: the AND of `field = value` / `field != value` terms.

    `requirements` are (field, op, value) with op `=` or `!=` (`==` normalizes to `=`),
    sorted like Kubernetes sorts the terms."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: tuple[tuple[str, str, str], ...] = ()) -> None:
        self.requirements = list(requirements)

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse the `fieldSelector` query syntax (fields.ParseSelector)."""
        requirements: list[tuple[str, str, str]] = []
        for part in sorted(_split_terms(text)) if text else []:
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
            field, op, raw = split
            requirements.append((field, "!=" if op == "!=" else "=", _unescape_field_value(raw)))
        return cls(tuple(requirements))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """True when every term holds; a field the object lacks reads as ""."""
        for field, op, value in self.requirements:
            if (fields.get(field, "") == value) != (op == "="):
                return False
        return True

    def check(self, res: Resource) -> None:
        """Raise ValueError `field label not supported: <f>` for a field `res` does not index
        (the apiserver answers 400 BadRequest with this message)."""
        supported = supported_fields(res)
        for field, _, _ in self.requirements:
            if field not in supported:
                raise ValueError(f"field label not supported: {field}")

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        """Selectors are equal when they hold the same terms, in any order (an AND)."""
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return sorted(self.requirements) == sorted(other.requirements)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.requirements)))


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
_INVOLVED_OBJECT_FIELDS = (
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
)
_EVENT_FIELDS = (
    *(f"involvedObject.{f}" for f in _INVOLVED_OBJECT_FIELDS),
    "reason",
    "reportingComponent",
    "source",
    "type",
)
# "name" on namespaces is a historical bug kube-apiserver keeps for compatibility.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": _POD_FIELDS,
    "Event": _EVENT_FIELDS,
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase", "name"),
    "ReplicaSet": ("status.replicas",),
}


def supported_fields(res: Resource) -> frozenset[str]:
    """The fields a field selector on `res` may name."""
    meta = ("metadata.name", "metadata.namespace") if res.namespaced else ("metadata.name",)
    return frozenset(meta + _KIND_FIELDS.get(res.kind, ()))


def _at(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _go_bool(value: Any) -> str:
    return "true" if value is True else "false"


def _go_int(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def object_fields(res: Resource, obj: Mapping[str, Any]) -> dict[str, str]:
    """The field set of `obj` that field selectors match against (the kind's GetAttrs).

    Unset string fields read as "", unset booleans as "false" and unset counters as "0",
    the Go zero values kube-apiserver would print."""
    meta = _at(obj, "metadata")
    fields = {"metadata.name": _s(_at(meta, "name"))}
    if res.namespaced:
        fields["metadata.namespace"] = _s(_at(meta, "namespace"))
    kind = res.kind
    if kind == "Pod":
        spec, status = _at(obj, "spec"), _at(obj, "status")
        pod_ips = _at(status, "podIPs")
        first_ip = _at(pod_ips[0], "ip") if isinstance(pod_ips, list) and pod_ips else None
        fields.update(
            {
                "spec.nodeName": _s(_at(spec, "nodeName")),
                "spec.restartPolicy": _s(_at(spec, "restartPolicy")),
                "spec.schedulerName": _s(_at(spec, "schedulerName")),
                "spec.serviceAccountName": _s(_at(spec, "serviceAccountName")),
                "spec.hostNetwork": _go_bool(_at(spec, "hostNetwork")),
                "status.phase": _s(_at(status, "phase")),
                "status.podIP": _s(first_ip) or _s(_at(status, "podIP")),
                "status.nominatedNodeName": _s(_at(status, "nominatedNodeName")),
            }
        )
    elif kind == "Event":
        involved = _at(obj, "involvedObject")
        for name in _INVOLVED_OBJECT_FIELDS:
            fields[f"involvedObject.{name}"] = _s(_at(involved, name))
        reporting = _s(_at(obj, "reportingComponent"))
        fields.update(
            {
                "reason": _s(_at(obj, "reason")),
                "reportingComponent": reporting,
                "source": _s(_at(obj, "source", "component")) or reporting,
                "type": _s(_at(obj, "type")),
            }
        )
    elif kind == "Node":
        fields["spec.unschedulable"] = _go_bool(_at(obj, "spec", "unschedulable"))
    elif kind == "Namespace":
        fields["status.phase"] = _s(_at(obj, "status", "phase"))
        fields["name"] = fields["metadata.name"]
    elif kind == "ReplicaSet":
        fields["status.replicas"] = _go_int(_at(obj, "status", "replicas"))
    return fields
