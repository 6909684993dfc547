"""Kubernetes resource quantities (`100m`, `128Mi`, `1.5Gi`, `1e3`), exactly.

The grammar is apimachinery's `resource.Quantity`:

    <quantity>     ::= <sign>? <number> <suffix>
    <number>       ::= <digits> | <digits>.<digits>? | .<digits>
    <suffix>       ::= <binarySI> | <decimalSI> | <decimalExponent>
    <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExp>   ::= (e | E) <sign>? <digits>

Values are `Fraction`s so that comparisons (`requests <= limits`) are exact, as Kubernetes'
`inf.Dec` arithmetic is. JSON numbers are quantities too: YAML `cpu: 1` arrives as the
integer 1 and Kubernetes accepts it. `canonical()` renders a quantity the way
`Quantity.String()` does, so error messages quote `500m` for an input of `0.5`.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

# Kubernetes' own error text for a string outside the grammar (resource.ErrFormatWrong).
FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC_ERROR = "unable to parse numeric part of quantity"

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {power: suffix for suffix, power in _BINARY.items()}

# `[0-9]`, not `\d`: Python's `\d` accepts every Unicode digit.
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?"
)
# Bounds that keep a hostile `1e999999999` from allocating a huge integer. Kubernetes keeps
# exponents in an int32 scale; nothing meaningful is anywhere near these.
_MAX_EXPONENT = 1000
_MAX_DIGITS = 1000

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"


def _split(value: object) -> tuple[Fraction, str]:
    """The exact value of a quantity and its format (which `canonical` preserves)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{FORMAT_ERROR}: expected a string or a number, got {_type(value)}")
    if isinstance(value, int):
        return Fraction(value), DECIMAL_SI
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(NUMERIC_ERROR)
        # repr() is the shortest string that round-trips: 0.1 is "0.1", not 0.1000000000000000055.
        text = repr(value)
    else:
        text = value
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(FORMAT_ERROR)
    number = match["number"]
    if len(number) > _MAX_DIGITS:
        raise ValueError(NUMERIC_ERROR)
    magnitude = Fraction(number if not number.endswith(".") else number[:-1])
    if match["sign"] == "-":
        magnitude = -magnitude
    suffix, exp = match["suffix"], match["exp"]
    if exp is not None:
        exponent = int(exp) if len(exp) <= 6 else _MAX_EXPONENT + 1
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(NUMERIC_ERROR)
        return magnitude * Fraction(10) ** exponent, DECIMAL_EXPONENT
    suffix = suffix or ""
    if suffix in _BINARY:
        return magnitude * 1024 ** _BINARY[suffix], BINARY_SI
    return magnitude * Fraction(10) ** _DECIMAL[suffix], DECIMAL_SI


def parse_quantity(value: object) -> Fraction:
    """The exact value of a Kubernetes quantity; `ValueError` naming the grammar otherwise."""
    return _split(value)[0]


def is_quantity(value: object) -> bool:
    try:
        _split(value)
    except ValueError:
        return False
    return True


def canonical(value: object) -> str:
    """`Quantity.String()`: the largest suffix of the input's format with an integer mantissa.

    Binary quantities under 1Ki or not whole are shown in decimal SI, as Kubernetes does;
    fractions finer than a nano-unit round away from zero (`inf.RoundUp`)."""
    amount, fmt = _split(value)
    if fmt == BINARY_SI and (abs(amount) < 1024 or amount.denominator != 1):
        fmt = DECIMAL_SI
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if fmt == BINARY_SI:
        whole = int(amount)
        power = 0
        while power < 6 and whole % 1024 ** (power + 1) == 0:
            power += 1
        return f"{sign}{whole // 1024**power}{_BINARY_SUFFIX[power]}" if power else f"{sign}{whole}"
    nanos = amount * 10**9
    units = int(nanos) + (1 if nanos.denominator != 1 else 0)  # round away from zero
    if units == 0:
        return "0"
    exponent = -9
    while exponent < 18 and units % 1000 == 0:
        units //= 1000
        exponent += 3
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{units}e{exponent}" if exponent else f"{sign}{units}"
    return f"{sign}{units}{_DECIMAL_SUFFIX[exponent]}"


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
