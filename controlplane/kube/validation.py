"""Kubernetes validation of kubelab's kinds, answered as `metav1.Status` causes (422).

Each rule and message is the one of `k8s.io/kubernetes/pkg/apis/*/validation` and
`k8s.io/apimachinery/pkg/util/validation`, so `kubectl` prints what it prints against a real
cluster: `spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must ...`.
A cause's `message` is the field error's body (`Invalid value: <value>: <detail>`), its
`field` the kubectl-style path; `errors.invalid` joins them into the 422 message.

The input is untrusted JSON that has been defaulted (`defaults.apply_defaults`) but not
decoded into types, as Go would have. A value of the wrong JSON type is reported as a
`FieldValueTypeInvalid` cause (`Invalid value: "x": expected object`) and the rules below it
are skipped; nothing here raises on any JSON value (tests feed it random junk).

Kubelab departs from Kubernetes where its network does: IP addresses are IPv4 only, and
endpoint addresses may be loopback (pods on the process runtime live on 127.x.y.z).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, TypeGuard

from .errors import Cause, cause
from .quantity import FORMAT_ERROR, canonical, parse_quantity
from .resources import Resource

JSON = dict[str, Any]

# -- limits and reasons ----------------------------------------------------------------------

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
PORT_NAME_MAX = 15
TOTAL_ANNOTATION_SIZE = 256 * 1024
CONFIG_MAP_MAX_SIZE = 1024 * 1024
EVENT_REASON_MAX = 128
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"
EMPTY = "must be non-empty"
IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)

# -- apimachinery's string checks (each returns the messages of what is wrong) ---------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_ENV_VAR_NAME = re.compile(_ENV_VAR_NAME_FMT)
_CONFIG_MAP_KEY = re.compile(_CONFIG_MAP_KEY_FMT)
_PERCENT = re.compile(_PERCENT_FMT)
_PORT_NAME_CHARSET = re.compile("[-a-z0-9]+")

_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, double spaces before `or` included."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = "".join((" or " if i else "") + f"'{e}', " for i, e in enumerate(examples))
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def _size(value: str) -> int:
    """Go's len(): bytes of the UTF-8 encoding."""
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_LABEL_MAX)] if _size(value) > DNS1123_LABEL_MAX else []
    if not _DNS1123_LABEL.fullmatch(value):
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                    _DNS1123_LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_SUBDOMAIN_MAX)] if _size(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(DNS1035_LABEL_MAX)] if _size(value) > DNS1035_LABEL_MAX else []
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS-1123 subdomain prefix and '/', a name."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY)
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + EMPTY)
    elif _size(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = [max_len_error(LABEL_VALUE_MAX)] if _size(value) > LABEL_VALUE_MAX else []
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 lowercase letters, digits and single inner hyphens."""
    errs = [max_len_error(PORT_NAME_MAX)] if len(port) > PORT_NAME_MAX else []
    if not _PORT_NAME_CHARSET.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_env_var_name(value: str) -> list[str]:
    errs = []
    if not _ENV_VAR_NAME.fullmatch(value):
        errs.append(
            regex_error(
                "a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit",
                _ENV_VAR_NAME_FMT,
                "my.env-name",
                "MY_ENV.NAME",
                "MyEnvName1",
            )
        )
    return errs + _has_chdir_prefix(value)


def is_config_map_key(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_SUBDOMAIN_MAX)] if _size(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _CONFIG_MAP_KEY.fullmatch(value):
        errs.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_MAP_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    return errs + _has_chdir_prefix(value)


def is_valid_percent(value: str) -> list[str]:
    if _PERCENT.fullmatch(value):
        return []
    return [
        regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            _PERCENT_FMT,
            "1%",
            "93%",
        )
    ]


def is_ipv4(value: str) -> list[str]:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return [IP_ERROR]
    if address.version != 4:
        return ["must be an IPv4 address (kubelab's networks are IPv4 only)"]
    return []


# -- rendering values as Go's field errors do ------------------------------------------------


def go_quote(value: str) -> str:
    """Go's %q: a double-quoted string with Go escapes, printable Unicode kept."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_RENDER_BUDGET = 512


def render(value: Any) -> str:
    """A bad value as `field.Error` prints it: `"x"`, `5`, `true`, `null`,
    `map[string]string{"app":"x"}`; other structures as (truncated) JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return string_map_repr(value)
    text = _preview(value, 8)
    return text if len(text) <= _RENDER_BUDGET else text[:_RENDER_BUDGET] + "..."


def string_map_repr(labels: dict[str, str] | None) -> str:
    """Go's %#v of a map[string]string (keys sorted)."""
    if labels is None:
        return "map[string]string(nil)"
    inner = ", ".join(f"{go_quote(str(k))}:{go_quote(v)}" for k, v in sorted(labels.items()))
    return "map[string]string{" + inner + "}"


def _preview(value: Any, depth: int) -> str:
    """Compact JSON of a value, with nesting below `depth` elided (bounded recursion)."""
    if isinstance(value, dict):
        if depth == 0:
            return "{...}"
        items = list(value.items())[:32]
        body = ",".join(f"{json.dumps(str(k))}:{_preview(v, depth - 1)}" for k, v in items)
        return "{" + body + (",..." if len(value) > 32 else "") + "}"
    if isinstance(value, list):
        if depth == 0:
            return "[...]"
        body = ",".join(_preview(v, depth - 1) for v in value[:32])
        return "[" + body + (",..." if len(value) > 32 else "") + "]"
    if isinstance(value, str):
        return json.dumps(value[:_RENDER_BUDGET])
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return json.dumps(value) if isinstance(value, (int, float, bool)) or value is None else "?"


def selector_repr(selector: JSON | None) -> str:
    """Go's %#v of a *metav1.LabelSelector, as Kubernetes prints an immutable selector."""
    if selector is None:
        return "(*v1.LabelSelector)(nil)"
    labels = selector.get("matchLabels")
    labels_text = string_map_repr(labels if _is_string_map(labels) and labels else None)
    exprs = selector.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        reqs = []
        for expr in exprs:
            if not isinstance(expr, dict):
                continue
            values = expr.get("values")
            values_text = (
                "[]string{" + ", ".join(go_quote(v) for v in values if isinstance(v, str)) + "}"
                if isinstance(values, list) and values
                else "[]string(nil)"
            )
            reqs.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(expr.get('key', '')))}, "
                f"Operator:{go_quote(str(expr.get('operator', '')))}, Values:{values_text}}}"
            )
        exprs_text = "[]v1.LabelSelectorRequirement{" + ", ".join(reqs) + "}"
    else:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    return f"&v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{exprs_text}}}"


def _is_string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


# -- causes, as field.Error bodies -----------------------------------------------------------


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return cause(path, f"Invalid value: {render(value)}" + (f": {detail}" if detail else ""))


def required(path: str, detail: str = "") -> Cause:
    return cause(path, "Required value" + (f": {detail}" if detail else ""), REQUIRED)


def not_supported(path: str, value: Any, supported: Sequence[str]) -> Cause:
    allowed = ", ".join(go_quote(v) for v in supported)
    return cause(
        path, f"Unsupported value: {render(value)}: supported values: {allowed}", NOT_SUPPORTED
    )


def duplicate(path: str, value: Any) -> Cause:
    return cause(path, f"Duplicate value: {render(value)}", DUPLICATE)


def forbidden(path: str, detail: str) -> Cause:
    return cause(path, f"Forbidden: {detail}", FORBIDDEN)


def too_long(path: str, limit: int) -> Cause:
    return cause(path, f"Too long: may not be more than {limit} bytes", TOO_LONG)


def not_found(path: str, value: Any) -> Cause:
    return cause(path, f"Not found: {render(value)}", NOT_FOUND)


def type_invalid(path: str, value: Any, expected: str) -> Cause:
    return cause(path, f"Invalid value: {render(value)}: expected {expected}", TYPE_INVALID)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# -- the checker: typed access to untrusted JSON, collecting causes --------------------------


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects causes while reading a JSON object; each accessor reports a wrong type once
    and answers "absent" for it, so the rules that need the value are skipped."""

    def __init__(self) -> None:
        self.errs: list[Cause] = []

    def add(self, *causes: Cause) -> None:
        self.errs.extend(causes)

    def invalid_each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        self.errs.extend(invalid(path, value, msg) for msg in messages)

    # typed access; `parent[key]` absent or null reads as absent

    def obj(self, parent: JSON, key: str, path: str) -> JSON | None:
        value = parent.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.add(type_invalid(path, value, "object"))
        return None

    def array(self, parent: JSON, key: str, path: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.add(type_invalid(path, value, "array"))
        return []

    def items(self, parent: JSON, key: str, path: str) -> list[tuple[str, JSON]]:
        """(path, item) of each object in the array `parent[key]`."""
        out = []
        for i, item in enumerate(self.array(parent, key, path)):
            item_path = f"{path}[{i}]"
            if isinstance(item, dict):
                out.append((item_path, item))
            else:
                self.add(type_invalid(item_path, item, "object"))
        return out

    def string(self, parent: JSON, key: str, path: str) -> str | None:
        """The string, "" when absent, None when of another type (reported)."""
        value = parent.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.add(type_invalid(path, value, "string"))
        return None

    def integer(self, parent: JSON, key: str, path: str, *, bits: int = 32) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        limit = INT32_MAX if bits == 32 else INT64_MAX
        if not _is_int(value) or not -limit - 1 <= value <= limit:
            self.add(type_invalid(path, value, f"int{bits}"))
            return None
        return int(value)

    def boolean(self, parent: JSON, key: str, path: str) -> bool | None:
        value = parent.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.add(type_invalid(path, value, "boolean"))
        return None

    def strings(self, parent: JSON, key: str, path: str) -> list[str]:
        out = []
        for i, item in enumerate(self.array(parent, key, path)):
            if isinstance(item, str):
                out.append(item)
            else:
                self.add(type_invalid(f"{path}[{i}]", item, "string"))
        return out

    def string_map(self, parent: JSON, key: str, path: str) -> dict[str, str]:
        """A map[string]string; entries with other values are reported at `path[key]`."""
        value = self.obj(parent, key, path)
        out: dict[str, str] = {}
        for k, v in sorted((value or {}).items()):
            if isinstance(v, str):
                out[k] = v
            else:
                self.add(type_invalid(f"{path}[{k}]", v, "string"))
        return out

    def nonnegative(self, parent: JSON, key: str, path: str, *, bits: int = 32) -> int | None:
        value = self.integer(parent, key, path, bits=bits)
        if value is not None and value < 0:
            self.add(invalid(path, value, NEGATIVE))
        return value

    def one_of(self, parent: JSON, key: str, path: str, supported: Sequence[str]) -> str | None:
        """An enum: Required when empty, NotSupported when unknown."""
        value = self.string(parent, key, path)
        if value == "":
            self.add(required(path))
        elif value is not None and value not in supported:
            self.add(not_supported(path, value, supported))
        return value

    # -- metadata ------------------------------------------------------------------------------

    def labels(self, parent: JSON, key: str, path: str) -> dict[str, str]:
        labels = self.string_map(parent, key, path)
        for k, v in labels.items():
            self.invalid_each(path, k, is_qualified_name(k))
            self.invalid_each(path, v, is_valid_label_value(v))
        return labels

    def annotations(self, parent: JSON, key: str, path: str) -> None:
        annotations = self.string_map(parent, key, path)
        total = 0
        for k, v in annotations.items():
            self.invalid_each(path, k, is_qualified_name(k.lower()))
            total += _size(k) + _size(v)
        if total > TOTAL_ANNOTATION_SIZE:
            self.add(too_long(path, TOTAL_ANNOTATION_SIZE))

    def name_value(self, name: str, path: str, check: Callable[[str], list[str]]) -> None:
        if name == "":
            self.add(required(path, "name or generateName is required"))
        else:
            self.invalid_each(path, name, check(name))

    def owner_references(self, meta: JSON, path: str) -> None:
        controller = ""
        for _, ref in self.items(meta, "ownerReferences", path):
            api_version = self.string(ref, "apiVersion", f"{path}.apiVersion")
            kind = self.string(ref, "kind", f"{path}.kind")
            name = self.string(ref, "name", f"{path}.name")
            uid = self.string(ref, "uid", f"{path}.uid")
            if api_version == "" or (api_version and not api_version.rpartition("/")[2]):
                self.add(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
            for field, value in (("kind", kind), ("name", name), ("uid", uid)):
                if value == "":
                    self.add(invalid(f"{path}.{field}", value, "must not be empty"))
            if self.boolean(ref, "controller", f"{path}.controller"):
                current = f"{kind}/{name}"
                if controller:
                    self.add(
                        invalid(
                            path,
                            meta.get("ownerReferences"),
                            'Only one reference can have Controller set to true. Found "true" '
                            f"in references for {controller} and {current}",
                        )
                    )
                else:
                    controller = current

    def finalizers(self, parent: JSON, key: str, path: str) -> None:
        for name in self.strings(parent, key, path):
            self.invalid_each(path, name, is_qualified_name(name))
            if "/" not in name and name not in _STANDARD_FINALIZERS:
                self.add(
                    invalid(
                        path,
                        name,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    )
                )

    def object_meta(self, res: Resource, obj: JSON) -> JSON | None:
        """ValidateObjectMeta; returns the metadata object (None when absent or not one)."""
        meta = self.obj(obj, "metadata", "metadata")
        if meta is None:
            if obj.get("metadata") is None:
                self.add(required("metadata.name", "name or generateName is required"))
                if res.namespaced:
                    self.add(required("metadata.namespace"))
            return None
        check = name_check(res)
        generate_name = self.string(meta, "generateName", "metadata.generateName")
        if generate_name:
            masked = (
                generate_name[:-1] + "a"
                if len(generate_name) > 1 and generate_name.endswith("-")
                else generate_name
            )
            self.invalid_each("metadata.generateName", generate_name, check(masked))
        name = self.string(meta, "name", "metadata.name")
        if name is not None:
            self.name_value(name, "metadata.name", check)
        namespace = self.string(meta, "namespace", "metadata.namespace")
        if res.namespaced:
            if namespace == "":
                self.add(required("metadata.namespace"))
            elif namespace is not None:
                self.invalid_each("metadata.namespace", namespace, is_dns1123_label(namespace))
        elif namespace:
            self.add(forbidden("metadata.namespace", "not allowed on this type"))
        self.nonnegative(meta, "generation", "metadata.generation", bits=64)
        self.labels(meta, "labels", "metadata.labels")
        self.annotations(meta, "annotations", "metadata.annotations")
        self.owner_references(meta, "metadata.ownerReferences")
        self.finalizers(meta, "finalizers", "metadata.finalizers")
        return meta

    # -- label selectors -----------------------------------------------------------------------

    def label_selector(self, parent: JSON, key: str, path: str) -> tuple[JSON | None, bool]:
        """The selector and whether it is well-formed (so that matching it means something)."""
        selector = self.obj(parent, key, path)
        if selector is None:
            return None, False
        before = len(self.errs)
        self.labels(selector, "matchLabels", f"{path}.matchLabels")
        for expr_path, expr in self.items(selector, "matchExpressions", f"{path}.matchExpressions"):
            operator = self.string(expr, "operator", f"{expr_path}.operator")
            values = self.strings(expr, "values", f"{expr_path}.values")
            if operator in ("In", "NotIn"):
                if not values:
                    self.add(
                        required(
                            f"{expr_path}.values",
                            "must be specified when `operator` is 'In' or 'NotIn'",
                        )
                    )
            elif operator in ("Exists", "DoesNotExist"):
                if values:
                    self.add(
                        forbidden(
                            f"{expr_path}.values",
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        )
                    )
            elif operator is not None:
                self.add(
                    invalid(f"{expr_path}.operator", operator, "not a valid selector operator")
                )
            key_name = self.string(expr, "key", f"{expr_path}.key")
            if key_name is not None:
                self.invalid_each(f"{expr_path}.key", key_name, is_qualified_name(key_name))
            for i, value in enumerate(values):
                self.invalid_each(f"{expr_path}.values[{i}]", value, is_valid_label_value(value))
        return selector, len(self.errs) == before

    # -- pods ----------------------------------------------------------------------------------

    def port_num_or_name(self, parent: JSON, key: str, path: str) -> None:
        """An IntOrString port: a number 1-65535 or an IANA_SVC_NAME (absent reads as 0)."""
        value = parent.get(key, 0)
        if value is None:
            value = 0
        if _is_int(value):
            self.invalid_each(path, value, is_valid_port_num(value))
        elif isinstance(value, str):
            self.invalid_each(path, value, is_valid_port_name(value))
        else:
            self.add(type_invalid(path, value, "integer or string"))

    def handler(self, handler: JSON, path: str, kinds: Sequence[str]) -> None:
        """Exactly one of `kinds` (exec, httpGet, tcpSocket, grpc, sleep)."""
        found = 0
        for kind in kinds:
            action = self.obj(handler, kind, f"{path}.{kind}")
            if action is None:
                continue
            if found:
                self.add(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
                continue
            found += 1
            self.action(kind, action, f"{path}.{kind}")
        if not found:
            self.add(required(path, "must specify a handler type"))

    def action(self, kind: str, action: JSON, path: str) -> None:
        if kind == "exec":
            if not self.strings(action, "command", f"{path}.command"):
                self.add(required(f"{path}.command"))
        elif kind == "httpGet":
            if self.string(action, "path", f"{path}.path") == "":
                self.add(required(f"{path}.path"))
            self.port_num_or_name(action, "port", f"{path}.port")
            scheme = self.string(action, "scheme", f"{path}.scheme")
            if scheme is not None and scheme not in ("HTTP", "HTTPS"):
                self.add(not_supported(f"{path}.scheme", scheme, ("HTTP", "HTTPS")))
            self.string(action, "host", f"{path}.host")
            for header_path, header in self.items(action, "httpHeaders", f"{path}.httpHeaders"):
                self.string(header, "name", f"{header_path}.name")
                self.string(header, "value", f"{header_path}.value")
        elif kind == "tcpSocket":
            self.port_num_or_name(action, "port", f"{path}.port")
        elif kind == "grpc":
            port = self.integer(action, "port", f"{path}.port")
            self.invalid_each(f"{path}.port", port or 0, is_valid_port_num(port or 0))
            self.string(action, "service", f"{path}.service")
        elif kind == "sleep":
            self.nonnegative(action, "seconds", f"{path}.seconds", bits=64)

    def probe(self, container: JSON, key: str, path: str) -> None:
        probe = self.obj(container, key, path)
        if probe is None:
            return
        self.handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
        for field in (
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ):
            self.nonnegative(probe, field, f"{path}.{field}")
        success = probe.get("successThreshold")
        if key != "readinessProbe" and _is_int(success) and success != 1:
            self.add(invalid(f"{path}.successThreshold", success, "must be 1"))
        grace = self.integer(
            probe, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds", bits=64
        )
        if grace is not None and grace <= 0:
            self.add(
                invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0")
            )

    def container_ports(self, container: JSON, path: str) -> None:
        names: set[str] = set()
        for port_path, port in self.items(container, "ports", path):
            name = self.string(port, "name", f"{port_path}.name")
            if name:
                messages = is_valid_port_name(name)
                self.invalid_each(f"{port_path}.name", name, messages)
                if not messages and name in names:
                    self.add(duplicate(f"{port_path}.name", name))
                names.add(name)
            if port.get("containerPort") in (None, 0):
                self.add(required(f"{port_path}.containerPort"))
            else:
                number = self.integer(port, "containerPort", f"{port_path}.containerPort")
                if number is not None:
                    self.invalid_each(
                        f"{port_path}.containerPort", number, is_valid_port_num(number)
                    )
            host_port = self.integer(port, "hostPort", f"{port_path}.hostPort")
            if host_port:
                self.invalid_each(f"{port_path}.hostPort", host_port, is_valid_port_num(host_port))
            self.one_of(port, "protocol", f"{port_path}.protocol", _PROTOCOLS)
            self.string(port, "hostIP", f"{port_path}.hostIP")

    def env(self, container: JSON, path: str) -> None:
        for env_path, env in self.items(container, "env", f"{path}.env"):
            name = self.string(env, "name", f"{env_path}.name")
            if name == "":
                self.add(required(f"{env_path}.name"))
            elif name is not None:
                self.invalid_each(f"{env_path}.name", name, is_env_var_name(name))
            value = self.string(env, "value", f"{env_path}.value")
            source = self.obj(env, "valueFrom", f"{env_path}.valueFrom")
            if source is not None:
                self.env_source(source, f"{env_path}.valueFrom", bool(value))
        for source_path, source in self.items(container, "envFrom", f"{path}.envFrom"):
            self.string(source, "prefix", f"{source_path}.prefix")

    def env_source(self, source: JSON, path: str, has_value: bool) -> None:
        if has_value:
            self.add(invalid(path, "", "may not be specified when `value` is not empty"))
            return
        kinds = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
        present = [kind for kind in kinds if self.obj(source, kind, f"{path}.{kind}") is not None]
        if not present:
            self.add(
                invalid(
                    path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                    "`secretKeyRef`",
                )
            )
        elif len(present) > 1:
            self.add(invalid(path, "", "may not have more than one field specified at a time"))
        else:
            kind = present[0]
            ref = source[kind]
            field = {"fieldRef": "fieldPath", "resourceFieldRef": "resource"}.get(kind, "key")
            if self.string(ref, field, f"{path}.{kind}.{field}") == "":
                self.add(required(f"{path}.{kind}.{field}"))

    def volume_mounts(self, container: JSON, path: str, volumes: set[str]) -> None:
        mount_paths: set[str] = set()
        for mount_path, mount in self.items(container, "volumeMounts", path):
            name = self.string(mount, "name", f"{mount_path}.name")
            if name == "":
                self.add(required(f"{mount_path}.name"))
            elif name is not None and name not in volumes:
                self.add(not_found(f"{mount_path}.name", name))
            target = self.string(mount, "mountPath", f"{mount_path}.mountPath")
            if target == "":
                self.add(required(f"{mount_path}.mountPath"))
            elif target is not None:
                if target in mount_paths:
                    self.add(invalid(f"{mount_path}.mountPath", target, "must be unique"))
                mount_paths.add(target)
            self.boolean(mount, "readOnly", f"{mount_path}.readOnly")
            self.string(mount, "subPath", f"{mount_path}.subPath")

    def quantities(self, parent: JSON, key: str, path: str) -> dict[str, tuple[Fraction, str]]:
        """A ResourceList: standard container resource names, non-negative quantities."""
        out: dict[str, tuple[Fraction, str]] = {}
        resources = self.obj(parent, key, path)
        for name, raw in sorted((resources or {}).items()):
            item_path = f"{path}[{name}]"
            self.invalid_each(item_path, name, is_qualified_name(name))
            if (
                "/" not in name
                and name not in _CONTAINER_RESOURCES
                and not name.startswith("hugepages-")
            ):
                self.add(invalid(item_path, name, "must be a standard resource for containers"))
            amount = self.quantity(raw, item_path)
            if amount is not None:
                out[name] = (amount, canonical(raw))
        return out

    def quantity(self, raw: Any, path: str) -> Fraction | None:
        """A non-negative quantity, or None (reported) when it is not one."""
        try:
            amount = parse_quantity(raw)
        except ValueError as err:
            if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
                self.add(invalid(path, raw, str(err) if isinstance(raw, str) else FORMAT_ERROR))
            else:
                self.add(
                    type_invalid(
                        path, raw, "a quantity (a string such as '100m' or '128Mi', or a number)"
                    )
                )
            return None
        if amount < 0:
            self.add(invalid(path, canonical(raw), NEGATIVE))
            return None
        return amount

    def resources(self, container: JSON, path: str) -> None:
        resources = self.obj(container, "resources", path)
        if resources is None:
            return
        limits = self.quantities(resources, "limits", f"{path}.limits")
        requests = self.quantities(resources, "requests", f"{path}.requests")
        for name, (amount, text) in requests.items():
            if name not in limits:
                continue
            limit, limit_text = limits[name]
            if amount != limit and name not in _OVERCOMMITTABLE:
                self.add(
                    invalid(
                        f"{path}.requests", text, f"must be equal to {name} limit of {limit_text}"
                    )
                )
            elif amount > limit:
                self.add(
                    invalid(
                        f"{path}.requests",
                        text,
                        f"must be less than or equal to {name} limit of {limit_text}",
                    )
                )

    def container(self, container: JSON, path: str, names: set[str], volumes: set[str]) -> None:
        name = self.string(container, "name", f"{path}.name")
        if name == "":
            self.add(required(f"{path}.name"))
        elif name is not None:
            self.invalid_each(f"{path}.name", name, is_dns1123_label(name))
            if name in names:
                self.add(duplicate(f"{path}.name", name))
            names.add(name)
        image = self.string(container, "image", f"{path}.image")
        if image == "":
            self.add(required(f"{path}.image"))
        elif image is not None and image.strip() != image:
            self.add(
                invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
            )
        self.strings(container, "command", f"{path}.command")
        self.strings(container, "args", f"{path}.args")
        self.string(container, "workingDir", f"{path}.workingDir")
        for flag in ("stdin", "stdinOnce", "tty"):
            self.boolean(container, flag, f"{path}.{flag}")
        self.container_ports(container, f"{path}.ports")
        self.env(container, path)
        self.volume_mounts(container, f"{path}.volumeMounts", volumes)
        self.resources(container, f"{path}.resources")
        self.one_of(
            container,
            "imagePullPolicy",
            f"{path}.imagePullPolicy",
            ("Always", "IfNotPresent", "Never"),
        )
        self.one_of(
            container,
            "terminationMessagePolicy",
            f"{path}.terminationMessagePolicy",
            ("File", "FallbackToLogsOnError"),
        )
        self.string(container, "terminationMessagePath", f"{path}.terminationMessagePath")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            self.probe(container, probe, f"{path}.{probe}")
        lifecycle = self.obj(container, "lifecycle", f"{path}.lifecycle")
        if lifecycle is not None:
            for hook in ("postStart", "preStop"):
                handler = self.obj(lifecycle, hook, f"{path}.lifecycle.{hook}")
                if handler is not None:
                    self.handler(
                        handler,
                        f"{path}.lifecycle.{hook}",
                        ("exec", "httpGet", "tcpSocket", "sleep"),
                    )
        self.obj(container, "securityContext", f"{path}.securityContext")

    def volumes(self, spec: JSON, path: str) -> set[str]:
        names: set[str] = set()
        for volume_path, volume in self.items(spec, "volumes", path):
            name = self.string(volume, "name", f"{volume_path}.name")
            if name == "":
                self.add(required(f"{volume_path}.name"))
            elif name is not None:
                self.invalid_each(f"{volume_path}.name", name, is_dns1123_label(name))
                if name in names:
                    self.add(duplicate(f"{volume_path}.name", name))
                names.add(name)
            sources = [k for k, v in volume.items() if k != "name" and v is not None]
            if not sources:
                self.add(required(volume_path, "must specify a volume type"))
            for extra in sources[1:]:
                self.add(
                    forbidden(f"{volume_path}.{extra}", "may not specify more than 1 volume type")
                )
            for source in sources:
                self.obj(volume, source, f"{volume_path}.{source}")
        return names

    def tolerations(self, spec: JSON, path: str) -> None:
        for tol_path, tol in self.items(spec, "tolerations", path):
            key = self.string(tol, "key", f"{tol_path}.key")
            operator = self.string(tol, "operator", f"{tol_path}.operator")
            value = self.string(tol, "value", f"{tol_path}.value")
            effect = self.string(tol, "effect", f"{tol_path}.effect")
            seconds = self.integer(
                tol, "tolerationSeconds", f"{tol_path}.tolerationSeconds", bits=64
            )
            if key:
                self.invalid_each(f"{tol_path}.key", key, is_qualified_name(key))
            if key == "" and operator is not None and operator != "Exists":
                self.add(
                    invalid(
                        f"{tol_path}.operator",
                        operator,
                        'operator must be Exists when `key` is empty, which means "match all '
                        'values and all keys"',
                    )
                )
            if seconds is not None and effect is not None and effect != "NoExecute":
                self.add(
                    invalid(
                        f"{tol_path}.effect",
                        effect,
                        "effect must be 'NoExecute' when `tolerationSeconds` is set",
                    )
                )
            if operator in ("Equal", "") and value is not None:
                errs = is_valid_label_value(value)
                if errs:
                    self.add(invalid(f"{tol_path}.operator", value, ";".join(errs)))
            elif operator == "Exists":
                if value:
                    self.add(
                        invalid(
                            f"{tol_path}.operator",
                            tol,
                            "value must be empty when `operator` is 'Exists'",
                        )
                    )
            elif operator is not None:
                self.add(not_supported(f"{tol_path}.operator", operator, ("Equal", "Exists")))
            if effect:
                self.taint_effect(effect, f"{tol_path}.effect")

    def taint_effect(self, effect: str, path: str) -> None:
        if effect not in _TAINT_EFFECTS:
            self.add(not_supported(path, effect, _TAINT_EFFECTS))

    def pod_spec(self, spec: JSON, path: str) -> None:
        """ValidatePodSpec."""
        volumes = self.volumes(spec, f"{path}.volumes")
        names: set[str] = set()
        raw = spec.get("containers")
        if raw is None or raw == []:
            self.add(required(f"{path}.containers"))
        containers = self.items(spec, "containers", f"{path}.containers")
        for init_path, init in self.items(spec, "initContainers", f"{path}.initContainers"):
            self.container(init, init_path, names, volumes)
        for container_path, container in containers:
            self.container(container, container_path, names, volumes)
        self.one_of(
            spec, "restartPolicy", f"{path}.restartPolicy", ("Always", "OnFailure", "Never")
        )
        self.one_of(
            spec,
            "dnsPolicy",
            f"{path}.dnsPolicy",
            ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        )
        self.labels(spec, "nodeSelector", f"{path}.nodeSelector")
        for field in ("serviceAccountName", "nodeName"):
            value = self.string(spec, field, f"{path}.{field}")
            if value:
                self.invalid_each(f"{path}.{field}", value, is_dns1123_subdomain(value))
        for field in ("hostname", "subdomain"):
            value = self.string(spec, field, f"{path}.{field}")
            if value:
                self.invalid_each(f"{path}.{field}", value, is_dns1123_label(value))
        for field in (
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "enableServiceLinks",
            "automountServiceAccountToken",
        ):
            self.boolean(spec, field, f"{path}.{field}")
        self.string(spec, "schedulerName", f"{path}.schedulerName")
        self.string(spec, "priorityClassName", f"{path}.priorityClassName")
        self.integer(spec, "priority", f"{path}.priority")
        self.obj(spec, "securityContext", f"{path}.securityContext")
        self.obj(spec, "affinity", f"{path}.affinity")
        self.tolerations(spec, f"{path}.tolerations")
        deadline = self.integer(
            spec, "activeDeadlineSeconds", f"{path}.activeDeadlineSeconds", bits=64
        )
        if deadline is not None and not 1 <= deadline <= INT32_MAX:
            self.add(invalid(f"{path}.activeDeadlineSeconds", deadline, range_error(1, INT32_MAX)))
        self.nonnegative(
            spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds", bits=64
        )

    def pod_template(self, parent: JSON, key: str, path: str) -> JSON | None:
        """ValidatePodTemplateSpec: template labels, annotations and pod spec."""
        template = self.obj(parent, key, path)
        if template is None:
            if parent.get(key) is None:
                self.add(required(path))
            return None
        meta = self.obj(template, "metadata", f"{path}.metadata")
        if meta is not None:
            self.labels(meta, "labels", f"{path}.metadata.labels")
            self.annotations(meta, "annotations", f"{path}.metadata.annotations")
        spec = self.obj(template, "spec", f"{path}.spec")
        if spec is not None:
            self.pod_spec(spec, f"{path}.spec")
        elif template.get("spec") is None:
            self.add(required(f"{path}.spec.containers"))
        return template


_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_OVERCOMMITTABLE = ("cpu", "memory", "ephemeral-storage")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def name_check(res: Resource) -> Callable[[str], list[str]]:
    """The name rule of a kind: DNS-1123 label for Namespace, DNS-1035 label for Service
    (apimachinery's NameIsDNS1035Label), DNS-1123 subdomain for the others."""
    if res.kind == "Namespace":
        return is_dns1123_label
    if res.kind == "Service":
        return is_dns1035_label
    return is_dns1123_subdomain


def validate_name(res: Resource, name: object) -> list[Cause]:
    """The causes against `name` as `metadata.name` of a `res` object (none when valid)."""
    if not isinstance(name, str):
        return [type_invalid("metadata.name", name, "string")]
    checker = _Checker()
    checker.name_value(name, "metadata.name", name_check(res))
    return checker.errs


# -- kinds -----------------------------------------------------------------------------------


def _pod(c: _Checker, obj: JSON) -> None:
    spec = c.obj(obj, "spec", "spec")
    if spec is None:
        if obj.get("spec") is None:
            c.add(required("spec.containers"))
        return
    c.pod_spec(spec, "spec")


def _selector_matches(selector: JSON, labels: dict[str, str]) -> bool:
    """A well-formed LabelSelector against a label set (metav1.LabelSelectorAsSelector)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = expr.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _replicated(c: _Checker, obj: JSON) -> tuple[JSON, int] | None:
    """ValidateReplicaSetSpec and the part of ValidateDeploymentSpec they share; returns
    the spec and its minReadySeconds."""
    spec = c.obj(obj, "spec", "spec")
    if spec is None:
        if obj.get("spec") is None:
            c.add(required("spec.selector"))
        return None
    c.nonnegative(spec, "replicas", "spec.replicas")
    min_ready = c.nonnegative(spec, "minReadySeconds", "spec.minReadySeconds")
    selector, selector_ok = c.label_selector(spec, "selector", "spec.selector")
    if selector is None and spec.get("selector") is None:
        c.add(required("spec.selector"))
    empty = (
        selector is not None
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )
    if empty:
        shown = selector_repr(selector)  # a Go struct, printed unquoted
        c.add(
            cause(
                "spec.selector", f"Invalid value: {shown}: empty selector is invalid for deployment"
            )
        )
    raw_template = spec.get("template")
    raw_meta = raw_template.get("metadata") if isinstance(raw_template, dict) else None
    raw_labels = raw_meta.get("labels") if isinstance(raw_meta, dict) else None
    if (
        selector is not None
        and selector_ok
        and not empty
        and isinstance(raw_template, dict)
        and (raw_labels is None or _is_string_map(raw_labels))
        and not _selector_matches(selector, raw_labels or {})
    ):
        c.add(
            cause(
                "spec.template.metadata.labels",
                f"Invalid value: {string_map_repr(raw_labels)}: "
                "`selector` does not match template `labels`",
            )
        )
    template = c.pod_template(spec, "template", "spec.template")
    pod_spec = template.get("spec") if template is not None else None
    if isinstance(pod_spec, dict):
        policy = pod_spec.get("restartPolicy")
        if isinstance(policy, str) and policy != "Always":
            c.add(not_supported("spec.template.spec.restartPolicy", policy, ("Always",)))
        if pod_spec.get("activeDeadlineSeconds") is not None:
            c.add(
                forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                )
            )
    return spec, min_ready or 0


def _int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the number of "25%" or 25; anything else counts as 0."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str):
        digits = value[:-1] if value.endswith("%") else value
        if digits.isascii() and digits.isdigit() and len(digits) < 12:
            return int(digits)
    return 0


def _int_or_percent(c: _Checker, parent: JSON, key: str, path: str) -> None:
    """ValidatePositiveIntOrPercent."""
    value = parent.get(key)
    if value is None:
        return
    if isinstance(value, str):
        c.invalid_each(path, value, is_valid_percent(value))
    elif _is_int(value):
        if value < 0:
            c.add(invalid(path, value, NEGATIVE))
    else:
        c.add(type_invalid(path, value, "an integer or percentage (e.g '5%')"))


def _deployment(c: _Checker, obj: JSON) -> None:
    replicated = _replicated(c, obj)
    if replicated is None:
        return
    spec, min_ready = replicated
    c.boolean(spec, "paused", "spec.paused")
    strategy = c.obj(spec, "strategy", "spec.strategy")
    if strategy is not None:
        kind = c.string(strategy, "type", "spec.strategy.type")
        rolling = c.obj(strategy, "rollingUpdate", "spec.strategy.rollingUpdate")
        path = "spec.strategy.rollingUpdate"
        if kind == "Recreate":
            if strategy.get("rollingUpdate") is not None:
                c.add(forbidden(path, "may not be specified when strategy `type` is 'Recreate'"))
        elif kind == "RollingUpdate":
            if rolling is None:
                if strategy.get("rollingUpdate") is None:
                    c.add(required(path, "this should be defaulted and never be nil"))
            else:
                _int_or_percent(c, rolling, "maxUnavailable", f"{path}.maxUnavailable")
                _int_or_percent(c, rolling, "maxSurge", f"{path}.maxSurge")
                unavailable = rolling.get("maxUnavailable")
                if (
                    _int_or_percent_value(unavailable) == 0
                    and _int_or_percent_value(rolling.get("maxSurge")) == 0
                ):
                    c.add(
                        invalid(
                            f"{path}.maxUnavailable",
                            unavailable,
                            "may not be 0 when `maxSurge` is 0",
                        )
                    )
                if (
                    isinstance(unavailable, str)
                    and unavailable.endswith("%")
                    and _int_or_percent_value(unavailable) > 100
                ):
                    c.add(
                        invalid(
                            f"{path}.maxUnavailable", unavailable, "must not be greater than 100%"
                        )
                    )
        elif kind is not None:
            c.add(not_supported("spec.strategy.type", kind, ("Recreate", "RollingUpdate")))
    c.nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    deadline = c.nonnegative(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
    if deadline is not None and deadline <= min_ready:
        c.add(
            invalid(
                "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
            )
        )


def _replica_set(c: _Checker, obj: JSON) -> None:
    _replicated(c, obj)


def _service(c: _Checker, obj: JSON) -> None:
    spec = c.obj(obj, "spec", "spec")
    if spec is None:
        if obj.get("spec") is None:
            c.add(required("spec.ports"))
        return
    kind = c.one_of(spec, "type", "spec.type", _SERVICE_TYPES)
    cluster_ip = c.string(spec, "clusterIP", "spec.clusterIP")
    headless = cluster_ip == "None"
    raw_ports = spec.get("ports")
    ports = c.items(spec, "ports", "spec.ports")
    if raw_ports in (None, []) and not headless and kind != "ExternalName":
        c.add(required("spec.ports"))
    if kind == "ExternalName":
        if cluster_ip:
            c.add(forbidden("spec.clusterIP", "may not be set for ExternalName services"))
        name = c.string(spec, "externalName", "spec.externalName")
        if name in ("", "."):
            c.add(required("spec.externalName"))
        elif name is not None:
            c.invalid_each(
                "spec.externalName",
                name.removesuffix("."),
                is_dns1123_subdomain(name.removesuffix(".")),
            )
    elif cluster_ip and not headless:
        c.invalid_each("spec.clusterIP", cluster_ip, is_ipv4(cluster_ip))
    cluster_ips = c.strings(spec, "clusterIPs", "spec.clusterIPs")
    if cluster_ips and cluster_ip and cluster_ips[0] != cluster_ip:
        c.add(invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    names: set[str] = set()
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    for port_path, port in ports:
        name = c.string(port, "name", f"{port_path}.name")
        if name == "" and len(ports) > 1:
            c.add(required(f"{port_path}.name"))
        elif name:
            c.invalid_each(f"{port_path}.name", name, is_dns1123_label(name))
            if name in names:
                c.add(duplicate(f"{port_path}.name", name))
            names.add(name)
        number = c.integer(port, "port", f"{port_path}.port")
        if number is not None or port.get("port") is None:
            c.invalid_each(f"{port_path}.port", number or 0, is_valid_port_num(number or 0))
        protocol = c.one_of(port, "protocol", f"{port_path}.protocol", _PROTOCOLS)
        c.port_num_or_name(port, "targetPort", f"{port_path}.targetPort")
        node_port = c.integer(port, "nodePort", f"{port_path}.nodePort")
        if node_port:
            if kind in ("ClusterIP", "ExternalName"):
                c.add(
                    forbidden(f"{port_path}.nodePort", f"may not be used when `type` is '{kind}'")
                )
            elif not NODE_PORT_MIN <= node_port <= NODE_PORT_MAX:
                c.add(
                    invalid(
                        f"{port_path}.nodePort",
                        node_port,
                        "provided port is not in the valid range. The range of valid ports is "
                        f"{NODE_PORT_MIN}-{NODE_PORT_MAX}",
                    )
                )
            if (protocol or "", node_port) in seen_node_ports:
                c.add(duplicate(f"{port_path}.nodePort", node_port))
            seen_node_ports.add((protocol or "", node_port))
        if number is not None and protocol:
            if (protocol, number) in seen_ports:
                c.add(
                    cause(
                        port_path,
                        "Duplicate value: "
                        f"core.ServicePort{{Protocol:{go_quote(protocol)}, Port:{number}}}",
                        DUPLICATE,
                    )
                )
            seen_ports.add((protocol, number))
    if kind != "ExternalName":
        c.labels(spec, "selector", "spec.selector")
    c.one_of(spec, "sessionAffinity", "spec.sessionAffinity", ("ClientIP", "None"))
    external = kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    external_policy = c.string(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy")
    if external_policy and not external:
        c.add(
            invalid(
                "spec.externalTrafficPolicy",
                external_policy,
                "may only be set for externally-accessible services",
            )
        )
    elif external and external_policy is not None:
        c.one_of(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", ("Cluster", "Local"))
    internal_policy = c.string(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy")
    if internal_policy == "" and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        c.add(required("spec.internalTrafficPolicy"))
    elif internal_policy and internal_policy not in ("Cluster", "Local"):
        c.add(not_supported("spec.internalTrafficPolicy", internal_policy, ("Cluster", "Local")))
    for i, address in enumerate(c.strings(spec, "externalIPs", "spec.externalIPs")):
        c.invalid_each(f"spec.externalIPs[{i}]", address, is_ipv4(address))


def _namespace(c: _Checker, obj: JSON) -> None:
    spec = c.obj(obj, "spec", "spec")
    if spec is not None:
        c.finalizers(spec, "finalizers", "spec.finalizers")
    status = c.obj(obj, "status", "status")
    if status is not None:
        phase = c.string(status, "phase", "status.phase")
        if phase and phase not in ("Active", "Terminating"):
            c.add(not_supported("status.phase", phase, ("Active", "Terminating")))


def _config_map(c: _Checker, obj: JSON) -> None:
    data = c.string_map(obj, "data", "data")
    total = 0
    for key, value in data.items():
        c.invalid_each(f"data[{key}]", key, is_config_map_key(key))
        total += _size(key) + _size(value)
    binary = c.string_map(obj, "binaryData", "binaryData")
    for key, value in binary.items():
        c.invalid_each(f"binaryData[{key}]", key, is_config_map_key(key))
        if key in data:
            c.add(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        try:
            total += _size(key) + len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            c.add(type_invalid(f"binaryData[{key}]", value, "base64-encoded bytes"))
    c.boolean(obj, "immutable", "immutable")
    if total > CONFIG_MAP_MAX_SIZE:
        c.add(too_long("", CONFIG_MAP_MAX_SIZE))


def _node(c: _Checker, obj: JSON) -> None:
    spec = c.obj(obj, "spec", "spec")
    if spec is not None:
        c.boolean(spec, "unschedulable", "spec.unschedulable")
        c.string(spec, "podCIDR", "spec.podCIDR")
        c.strings(spec, "podCIDRs", "spec.podCIDRs")
        seen: set[tuple[str, str]] = set()
        for taint_path, taint in c.items(spec, "taints", "spec.taints"):
            key = c.string(taint, "key", f"{taint_path}.key")
            if key is not None:
                c.invalid_each(f"{taint_path}.key", key, is_qualified_name(key))
            value = c.string(taint, "value", f"{taint_path}.value")
            if value:
                errs = is_valid_label_value(value)
                if errs:
                    c.add(invalid(f"{taint_path}.value", value, ";".join(errs)))
            effect = c.string(taint, "effect", f"{taint_path}.effect")
            if effect == "":
                c.add(required(f"{taint_path}.effect"))
            elif effect is not None:
                c.taint_effect(effect, f"{taint_path}.effect")
            if key is not None and effect is not None:
                if (key, effect) in seen:
                    c.add(
                        cause(
                            taint_path,
                            f"Duplicate value: {render(taint)}: "
                            "taints must be unique by key and effect pair",
                            DUPLICATE,
                        )
                    )
                seen.add((key, effect))
    status = c.obj(obj, "status", "status")
    if status is not None:
        for field in ("capacity", "allocatable"):
            resources = c.obj(status, field, f"status.{field}")
            for name, raw in sorted((resources or {}).items()):
                c.quantity(raw, f"status.{field}.{name}")


def _event(c: _Checker, obj: JSON) -> None:
    involved = c.obj(obj, "involvedObject", "involvedObject")
    if involved is None:
        if obj.get("involvedObject") is None:
            c.add(required("involvedObject"))
    else:
        for field in ("kind", "name", "namespace", "uid", "apiVersion", "fieldPath"):
            c.string(involved, field, f"involvedObject.{field}")
        meta = obj.get("metadata")
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
        involved_ns = involved.get("namespace")
        if (
            isinstance(namespace, str)
            and isinstance(involved_ns, str)
            and (involved_ns != namespace if involved_ns else namespace not in ("", "default"))
        ):
            c.add(
                invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
    reason = c.string(obj, "reason", "reason")
    if reason and len(reason) > EVENT_REASON_MAX:
        c.add(invalid("reason", reason, f"can have at most {EVENT_REASON_MAX} characters"))
    for field in ("message", "type", "firstTimestamp", "lastTimestamp"):
        c.string(obj, field, field)
    c.nonnegative(obj, "count", "count")
    c.obj(obj, "source", "source")


def _lease(c: _Checker, obj: JSON) -> None:
    spec = c.obj(obj, "spec", "spec")
    if spec is None:
        return
    c.string(spec, "holderIdentity", "spec.holderIdentity")
    duration = c.integer(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
    if duration is not None and duration <= 0:
        c.add(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = c.integer(spec, "leaseTransitions", "spec.leaseTransitions")
    if transitions is not None and transitions < 0:
        c.add(invalid("spec.leaseTransitions", transitions, NEGATIVE))
    c.string(spec, "acquireTime", "spec.acquireTime")
    c.string(spec, "renewTime", "spec.renewTime")


def _endpoints(c: _Checker, obj: JSON) -> None:
    for subset_path, subset in c.items(obj, "subsets", "subsets"):
        addresses = c.items(subset, "addresses", f"{subset_path}.addresses")
        not_ready = c.items(subset, "notReadyAddresses", f"{subset_path}.notReadyAddresses")
        if not addresses and not not_ready:
            c.add(required(subset_path, "must specify `addresses` or `notReadyAddresses`"))
        for address_path, address in addresses + not_ready:
            ip = c.string(address, "ip", f"{address_path}.ip")
            if ip is not None:
                c.invalid_each(f"{address_path}.ip", ip, is_ipv4(ip))
            hostname = c.string(address, "hostname", f"{address_path}.hostname")
            if hostname:
                c.invalid_each(f"{address_path}.hostname", hostname, is_dns1123_label(hostname))
            node = c.string(address, "nodeName", f"{address_path}.nodeName")
            if node:
                c.invalid_each(f"{address_path}.nodeName", node, is_dns1123_subdomain(node))
            c.obj(address, "targetRef", f"{address_path}.targetRef")
        ports = c.items(subset, "ports", f"{subset_path}.ports")
        for port_path, port in ports:
            name = c.string(port, "name", f"{port_path}.name")
            if name == "" and len(ports) > 1:
                c.add(required(f"{port_path}.name"))
            elif name:
                c.invalid_each(f"{port_path}.name", name, is_dns1123_label(name))
            number = c.integer(port, "port", f"{port_path}.port")
            if number is not None or port.get("port") is None:
                c.invalid_each(f"{port_path}.port", number or 0, is_valid_port_num(number or 0))
            c.one_of(port, "protocol", f"{port_path}.protocol", _PROTOCOLS)


_VALIDATORS: dict[str, Callable[[_Checker, JSON], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "Service": _service,
    "Namespace": _namespace,
    "ConfigMap": _config_map,
    "Node": _node,
    "Event": _event,
    "Lease": _lease,
    "Endpoints": _endpoints,
}

_TOO_DEEP = cause("", "Invalid value: the object is nested too deeply to be validated")


def validate(res: Resource, obj: dict[str, Any]) -> list[Cause]:
    """Every cause `obj` (a defaulted `res` object) is invalid for; empty when valid."""
    if not isinstance(obj, dict):
        return [type_invalid("", obj, "object")]
    checker = _Checker()
    try:
        checker.object_meta(res, obj)
        validator = _VALIDATORS.get(res.kind)
        if validator is not None:
            validator(checker, obj)
    except RecursionError:
        return [_TOO_DEEP]
    return checker.errs


# -- updates ---------------------------------------------------------------------------------


def _semantic(value: Any) -> Any:
    """A value for equality as apimachinery's Semantic.DeepEqual sees it: null, empty maps
    and empty lists are the same as absent."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            normal = _semantic(v)
            if normal not in (None, {}, []):
                out[k] = normal
        return out
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _changed_paths(old: Any, new: Any, path: str, out: list[str]) -> None:
    """The paths where two semantic values differ (at most 8), for a readable message."""
    if len(out) >= 8 or old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _changed_paths(old.get(key), new.get(key), _child(path, str(key)), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _changed_paths(a, b, f"{path}[{i}]", out)
    else:
        out.append(path)


def _immutable(old: Any, new: Any, path: str) -> list[Cause]:
    return [] if _semantic(old) == _semantic(new) else [invalid(path, new, IMMUTABLE)]


def _meta_update(old: JSON, new: JSON) -> list[Cause]:
    """ValidateObjectMetaUpdate: name, namespace and uid never change. An empty new uid
    means "keep the old one" (the API server copies it before validating)."""
    old_meta, new_meta = _metadata(old), _metadata(new)
    errs = []
    for field in ("name", "namespace", "uid"):
        old_value, new_value = old_meta.get(field) or "", new_meta.get(field) or ""
        if field == "uid" and new_value == "":
            continue
        if old_value != new_value:
            errs.append(invalid(f"metadata.{field}", new_value, IMMUTABLE))
    return errs


def _metadata(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: JSON) -> JSON:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _containers_of(spec: JSON, key: str) -> list[Any]:
    value = spec.get(key)
    return value if isinstance(value, list) else []


def _pod_update(old: JSON, new: JSON) -> list[Cause]:
    """ValidatePodUpdate: only images, activeDeadlineSeconds (downwards), added tolerations
    and a negative terminationGracePeriodSeconds raised to 1 may change."""
    old_spec, new_spec = _spec(old), _spec(new)
    errs: list[Cause] = []
    for key in ("containers", "initContainers"):
        if len(_containers_of(old_spec, key)) != len(_containers_of(new_spec, key)):
            return [forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
    new_deadline, old_deadline = (
        new_spec.get("activeDeadlineSeconds"),
        old_spec.get("activeDeadlineSeconds"),
    )
    if new_deadline is None and _is_int(old_deadline):
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    elif _is_int(new_deadline) and _is_int(old_deadline) and old_deadline < new_deadline:
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds",
                new_deadline,
                "must be less than or equal to previous value",
            )
        )
    old_tolerations = [_semantic(t) for t in _containers_of(old_spec, "tolerations")]
    new_tolerations = [_semantic(t) for t in _containers_of(new_spec, "tolerations")]
    for toleration in old_tolerations:
        if not isinstance(toleration, dict):
            continue
        base = {k: v for k, v in toleration.items() if k != "tolerationSeconds"}
        if not any(
            isinstance(t, dict) and {k: v for k, v in t.items() if k != "tolerationSeconds"} == base
            for t in new_tolerations
        ):
            errs.append(
                forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            )
            break
    munged = dict(new_spec)
    for key in ("containers", "initContainers"):
        old_list, new_list = _containers_of(old_spec, key), _containers_of(new_spec, key)
        munged[key] = [
            {**c, "image": o.get("image")} if isinstance(c, dict) and isinstance(o, dict) else c
            for c, o in zip(new_list, old_list, strict=True)
        ]
        if key not in new_spec:
            del munged[key]
    for key in ("activeDeadlineSeconds", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if _is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    old_semantic, new_semantic = _semantic(old_spec), _semantic(munged)
    if old_semantic != new_semantic:
        changed: list[str] = []
        _changed_paths(old_semantic, new_semantic, "spec", changed)
        errs.append(forbidden("spec", POD_UPDATE_FORBIDDEN + "\nchanged: " + ", ".join(changed)))
    return errs


def _selector_update(old: JSON, new: JSON) -> list[Cause]:
    old_selector, new_selector = _spec(old).get("selector"), _spec(new).get("selector")
    if _semantic(old_selector) == _semantic(new_selector):
        return []
    shown = (
        selector_repr(new_selector)
        if isinstance(new_selector, dict) or new_selector is None
        else render(new_selector)
    )
    return [cause("spec.selector", f"Invalid value: {shown}: {IMMUTABLE}")]


def _service_update(old: JSON, new: JSON) -> list[Cause]:
    """The cluster IP never changes once allocated, except to or from ExternalName."""
    old_spec, new_spec = _spec(old), _spec(new)
    old_ip, new_ip = old_spec.get("clusterIP") or "", new_spec.get("clusterIP") or ""
    if "ExternalName" in (old_spec.get("type"), new_spec.get("type")) or old_ip == "":
        return []
    return [] if old_ip == new_ip else [invalid("spec.clusterIP", new_ip, IMMUTABLE)]


def _config_map_update(old: JSON, new: JSON) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    errs = []
    if new.get("immutable") is not True:
        errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in ("data", "binaryData"):
        if _semantic(old.get(field)) != _semantic(new.get(field)):
            errs.append(forbidden(field, "field is immutable when `immutable` is set"))
    return errs


_UPDATE_VALIDATORS: dict[str, Callable[[JSON, JSON], list[Cause]]] = {
    "Pod": _pod_update,
    "Deployment": _selector_update,
    "ReplicaSet": _selector_update,
    "Service": _service_update,
    "ConfigMap": _config_map_update,
}


def validate_update(res: Resource, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """`validate(new)` plus the fields an update may not change (`old` is the stored
    object). The caller carries over what the server owns first: uid when empty, the
    allocated clusterIP, as the API server's BeforeUpdate and Service registry do."""
    errs = validate(res, new)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return errs
    try:
        errs.extend(_meta_update(old, new))
        check = _UPDATE_VALIDATORS.get(res.kind)
        if check is not None:
            errs.extend(check(old, new))
    except RecursionError:
        errs.append(_TOO_DEEP)
    return errs
