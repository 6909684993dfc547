"""Kubernetes quantities: apimachinery's grammar, exact values, canonical strings."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from controlplane.kube.quantity import (
    FORMAT_ERROR,
    NUMERIC_ERROR,
    canonical,
    is_quantity,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "value", "shown"),
    [
        ("100m", Fraction(1, 10), "100m"),
        ("128Mi", 128 * 2**20, "128Mi"),
        ("0.5", Fraction(1, 2), "500m"),
        ("1.5Gi", 1536 * 2**20, "1536Mi"),
        ("1e3", 1000, "1e3"),
        ("1E3", 1000, "1e3"),
        ("12e-1", Fraction(6, 5), "1200e-3"),
        ("1E", 10**18, "1E"),
        ("2k", 2000, "2k"),
        ("2000", 2000, "2k"),
        ("1234", 1234, "1234"),
        ("1500m", Fraction(3, 2), "1500m"),
        ("1n", Fraction(1, 10**9), "1n"),
        ("5u", Fraction(5, 10**6), "5u"),
        ("3M", 3 * 10**6, "3M"),
        ("4G", 4 * 10**9, "4G"),
        ("5T", 5 * 10**12, "5T"),
        ("6P", 6 * 10**15, "6P"),
        ("1Ki", 1024, "1Ki"),
        ("1Ti", 2**40, "1Ti"),
        ("1Pi", 2**50, "1Pi"),
        ("1Ei", 2**60, "1Ei"),
        ("0.5Ki", 512, "512"),
        (".5", Fraction(1, 2), "500m"),
        ("1.", 1, "1"),
        ("+1", 1, "1"),
        ("-1k", -1000, "-1k"),
        ("0", 0, "0"),
        ("0.0000000001", Fraction(1, 10**10), "1n"),
        (1, 1, "1"),
        (0.1, Fraction(1, 10), "100m"),
        (2.5, Fraction(5, 2), "2500m"),
    ],
    ids=repr,
)
def test_parse_and_canonical(text: object, value: Fraction | int, shown: str) -> None:
    """The exact value of a quantity, and Quantity.String() of it (format preserved)."""
    assert parse_quantity(text) == value
    assert canonical(text) == shown
    assert is_quantity(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_ERROR),
        ("abc", FORMAT_ERROR),
        ("1 ", FORMAT_ERROR),
        (" 1", FORMAT_ERROR),
        ("1KiB", FORMAT_ERROR),
        ("1e", FORMAT_ERROR),
        ("1ki", FORMAT_ERROR),
        ("1.2.3", FORMAT_ERROR),
        ("--1", FORMAT_ERROR),
        ("1\n", FORMAT_ERROR),
        ("\uff11", FORMAT_ERROR),  # a full-width digit: `\d` would take it
        ("1e99999999", NUMERIC_ERROR),
        ("1" * 2000, NUMERIC_ERROR),
        (float("nan"), NUMERIC_ERROR),
        (float("inf"), NUMERIC_ERROR),
        (True, FORMAT_ERROR),
        (None, FORMAT_ERROR),
        ([], FORMAT_ERROR),
        ({}, FORMAT_ERROR),
    ],
    ids=repr,
)
def test_rejected(text: object, message: str) -> None:
    """Anything outside the grammar is a ValueError quoting Kubernetes' message."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_quantity(text)
    assert not is_quantity(text)


def test_binary_and_decimal_compare_exactly() -> None:
    """1Gi is more than 1G, and 1000m is exactly 1: comparisons are on exact values."""
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000m") == parse_quantity(1)
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")
