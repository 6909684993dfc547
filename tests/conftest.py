"""Shared pytest configuration."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# -- golden trace files (tests/raft/test_traces.py) -------------------------------------------
# `--rewrite` regenerates the expected output of data-driven files in place instead of
# comparing. Review the diff before committing: a rewritten trace is only as right as the
# behaviour it records.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected output of data-driven test files in place",
    )


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files instead of checking them."""
    return bool(request.config.getoption("--rewrite"))


# -- end of golden trace files ------------------------------------------------------------------


# -- figures printed at the end of the run ---------------------------------------------------
# Tests record what CI must show (for example the simulation's coverage) with
# `record_summary`; the lines are printed in pytest's terminal summary, even without -s.

_SUMMARY: list[tuple[str, str]] = []


def record_summary(section: str, line: str) -> None:
    _SUMMARY.append((section, line))


@pytest.fixture
def summary() -> Callable[[str, str], None]:
    """`summary(section, line)` adds a line to the figures printed at the end of the run."""
    return record_summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _SUMMARY:
        return
    sections: dict[str, list[str]] = {}
    for section, line in _SUMMARY:
        sections.setdefault(section, []).append(line)
    for section, lines in sections.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)


# -- end of figures ---------------------------------------------------------------------------
