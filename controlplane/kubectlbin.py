"""Real `kubectl` binaries of pinned versions, for tests and scripts.

- **1.27 to 1.33 from the machine image.** Its `kubectl` on PATH is a symlink to a
  dispatcher (it reports `v1.32.4-dispatcher`) that runs the `kubectl.1.NN` next to it,
  chosen by the server's minor version. A test pins a version, so it runs `kubectl.1.NN`
  by path: `find_kubectl(NN)` looks beside the dispatcher's real path, then on PATH, then
  accepts a plain (non-dispatcher) `kubectl` that reports minor NN (a CI runner with one
  kubectl installed).
- **1.20 from Debian.** bookworm's `kubernetes-client` package is kubectl 1.20.2.
  Installing it would replace the image's `/usr/bin/kubectl`, so it is fetched with
  `apt-get download` (no root needed while apt's package lists exist) and unpacked with
  `dpkg-deb -x` into a private cache directory: `ensure_kubectl_1_20`. Never installed.
  The unpacked tree is renamed into place only once its kubectl has reported 1.20, so a
  concurrent or interrupted fetch never leaves a half-written binary behind.

Failures are `RuntimeError`s that say what failed and what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = [
    "DEBIAN_PACKAGE",
    "IMAGE_MINORS",
    "client_version",
    "default_cache_dir",
    "ensure_kubectl_1_20",
    "find_kubectl",
    "kubectl_1_20_path",
]

IMAGE_MINORS = range(27, 34)
"""The minor versions the machine image ships as `kubectl.1.NN`."""
DEBIAN_PACKAGE = "kubernetes-client"
"""Debian's kubectl package; bookworm's is 1.20.2."""
APT_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 30.0


def default_cache_dir() -> Path:
    """`<repo>/.cache` in a source checkout (git-ignored); else `$XDG_CACHE_HOME/kubelab`
    (default `~/.cache/kubelab`), never inside an installed package."""
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kubelab"


def client_version(binary: Path) -> str | None:
    """The `gitVersion` that `binary version --client -o json` reports (`v1.33.1`), or None
    if it does not run or answers something else."""
    try:
        r = subprocess.run(
            [str(binary), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
        doc = json.loads(r.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    version = doc.get("clientVersion", {}).get("gitVersion") if isinstance(doc, dict) else None
    return version if isinstance(version, str) else None


def find_kubectl(minor: int) -> Path | None:
    """An executable kubectl 1.`minor`, or None (see the module docstring for the order)."""
    name = f"kubectl.1.{minor}"
    candidates: list[Path] = []
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        candidates.append(Path(os.path.realpath(kubectl)).parent / name)
    on_path = shutil.which(name)
    if on_path is not None:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    if kubectl is not None:
        version = client_version(Path(kubectl)) or ""
        if version.startswith(f"v1.{minor}.") and "dispatcher" not in version:
            return Path(kubectl)
    return None


def kubectl_1_20_path(cache_dir: Path) -> Path:
    """Where `ensure_kubectl_1_20(cache_dir)` puts the binary."""
    return cache_dir / "kubectl-1.20" / "usr" / "bin" / "kubectl"


def ensure_kubectl_1_20(cache_dir: Path | None = None) -> Path:
    """kubectl 1.20 unpacked from Debian's package under `cache_dir` (default
    `default_cache_dir()`); fetched on first use, then reused. `RuntimeError` on failure.

    Runs `apt-get download kubernetes-client` in a temporary directory; if that fails (no
    package lists in a fresh container, or stale ones), `apt-get update` once and retry.
    """
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    binary = kubectl_1_20_path(cache)
    if binary.is_file():
        return binary
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"cannot fetch kubectl 1.20: `{tool}` is not on PATH (a Debian or Ubuntu "
                f"machine is needed); or unpack a kubectl 1.20 binary to {binary} yourself"
            )
    target = binary.parents[2]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".kubectl-1.20-") as tmp:
        work = Path(tmp)
        deb = _download(work)
        root = work / "root"
        _run_or_fail(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
        unpacked = root / binary.relative_to(target)
        version = client_version(unpacked) if unpacked.is_file() else None
        if version is None or not version.startswith("v1.20."):
            raise RuntimeError(
                f"{deb.name} does not hold a working kubectl 1.20 (found "
                f"{version or 'no runnable usr/bin/kubectl'}): this machine's apt sources "
                f"offer another version; kubectl 1.20 is in Debian 12 (bookworm)"
            )
        if target.exists() and not binary.is_file():
            shutil.rmtree(target)  # damaged: our cache, rebuilt from the package
        try:
            root.rename(target)
        except OSError:
            if not binary.is_file():  # not a concurrent fetch that won the race
                raise
    return binary


def _download(work: Path) -> Path:
    cmd = ["apt-get", "download", DEBIAN_PACKAGE]
    first = _run(cmd, cwd=work)
    if first.returncode != 0:
        update = _run(["apt-get", "update"])
        if update.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed ({_last_line(first)}) and `apt-get update` failed "
                f"too ({_last_line(update)}): run `sudo apt-get update` once, then try again"
            )
        again = _run(cmd, cwd=work)
        if again.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed even after `apt-get update`: "
                f"{_last_line(again)}. kubectl 1.20 is in Debian 12 (bookworm)'s main archive"
            )
    debs = sorted(work.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"`{' '.join(cmd)}` left {len(debs)} .deb files in {work}, not one")
    return debs[0]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(cmd)}` did not finish within {APT_TIMEOUT_S:g} s") from None
    except OSError as e:
        raise RuntimeError(f"cannot run `{' '.join(cmd)}`: {e}") from None


def _run_or_fail(cmd: list[str], what: str) -> None:
    r = _run(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed: {_last_line(r)}")


def _last_line(r: subprocess.CompletedProcess[str]) -> str:
    """The most telling line of a failed command: its last error line, else its last line."""
    lines = [x for x in (r.stderr or r.stdout).splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("E:")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else f"exit code {r.returncode}"
