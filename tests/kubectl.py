"""Real kubectl for tests: a binary of a pinned version, and a runner with its own cache.

`kubectl_binary("1.33")` is the machine image's `kubectl.1.33`, `kubectl_binary("1.20")`
Debian's, unpacked under `<repo>/.cache` on first use (`controlplane.kubectlbin`). A
missing binary skips the test on a workstation and fails it in CI (`CI=true`): CI must run
every kubectl test. `run_kubectl` always passes `--kubeconfig` and `--cache-dir`, so that no
test reads `~/.kube` or another test's discovery cache (kubectl caches discovery per
host:port, and a stale cache hides a changed API).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from controlplane.kubectlbin import ensure_kubectl_1_20, find_kubectl

__all__ = ["kubectl_binary", "run_kubectl"]

_VERSION_RE = re.compile(r"^1\.(\d+)$")


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI must run the kubectl tests)", pytrace=False)
    pytest.skip(message)


def kubectl_binary(version: str) -> Path:
    """kubectl `version` ("1.20", or "1.27" to "1.33"); skips (fails in CI) if there is none."""
    m = _VERSION_RE.match(version)
    if m is None:
        raise ValueError(f'version: expected "1.NN" like "1.33", got {version!r}')
    minor = int(m.group(1))
    if minor == 20:
        try:
            return ensure_kubectl_1_20()
        except RuntimeError as e:
            _missing(f"no kubectl 1.20: {e}")
    found = find_kubectl(minor)
    if found is None:
        _missing(f"no kubectl {version}: no kubectl.1.{minor} beside kubectl or on PATH")
    return found


def run_kubectl(
    binary: Path,
    kubeconfig: Path,
    *args: str,
    cache_dir: Path,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `binary --kubeconfig K --cache-dir C ARGS...`; output captured as text, the exit
    code left to the caller. A run longer than `timeout` seconds fails the test."""
    cmd = [str(binary), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`{' '.join(cmd)}` did not finish within {timeout:g} s: {e.stderr!r}")
