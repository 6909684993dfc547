"""End-to-end tests: real master processes on loopback, one cluster per module.

They are marked `e2e` (select or skip them with `-m e2e` / `-m "not e2e"`), run in CI, and
never in parallel: each module starts its own 3 or 5 masters on the machine's 2 cores.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: starts real master processes (multi-process; never run in parallel)"
    )
