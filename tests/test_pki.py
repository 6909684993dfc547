"""The cluster PKI, the kubeconfig, and the real kubectl binaries (`controlplane.pki`,
`controlplane.kubectlbin`).

Certificates are checked with `cryptography` (SANs, chain, extensions), then by the
clients that must accept them: Python's `ssl` in a loopback handshake, and kubectl 1.33
and 1.20 (Go's TLS, which also checks the SANs and falls back from h2 to http/1.1) reading
`/version` through our kubeconfig from a small HTTPS server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import ssl
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubectl import kubectl_binary, run_kubectl

from controlplane import kubectlbin
from controlplane.config import (
    ClusterConfig,
    ConfigError,
    admin_token,
    new_tokens,
    parse_config,
    write_token_file,
)
from controlplane.pki import (
    CA_VALIDITY,
    SERVER_VALIDITY,
    SERVICE_DNS_NAMES,
    PKIPaths,
    client_ssl_context,
    ensure_kubeconfig,
    ensure_pki,
    kubeconfig_server,
    pki_paths,
    server_ssl_context,
    write_kubeconfig,
)

C = 42  # the clusters' subnet 127.42.0.0/16: nothing binds its addresses here


def cluster(tmp_path: Path, *, masters: int = 3, name: str = "lab") -> ClusterConfig:
    text = f'[cluster]\nname = "{name}"\nsubnet = "127.{C}.0.0/16"\ndata_dir = "{name}-data"\n'
    text += "".join(f'[[masters]]\nname = "master-{i}"\n' for i in range(1, masters + 1))
    return parse_config(text, source=tmp_path / f"{name}.toml")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    ips = {str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)}
    return ips, set(ext.value.get_values_for_type(x509.DNSName))


def contents(paths: PKIPaths) -> dict[str, bytes]:
    return {
        "ca_cert": paths.ca_cert.read_bytes(),
        "ca_key": paths.ca_key.read_bytes(),
        "server_cert": paths.server_cert.read_bytes(),
        "server_key": paths.server_key.read_bytes(),
    }


# -- certificates ------------------------------------------------------------------------------


def test_ca_is_a_ten_year_ca_named_after_the_cluster(tmp_path: Path) -> None:
    """The CA is self-signed, CN kubelab-<name>-ca, basicConstraints CA (critical), ~10 years."""
    paths = ensure_pki(cluster(tmp_path))
    assert paths.ca_cert.parent == tmp_path / "lab-data" / "pki"
    ca = load(paths.ca_cert)
    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["kubelab-lab-ca"]
    ca.verify_directly_issued_by(ca)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    lifetime = ca.not_valid_after_utc - datetime.now(UTC)
    assert CA_VALIDITY - timedelta(days=1) < lifetime <= CA_VALIDITY


def test_server_cert_names_every_address_and_chains_to_the_ca(tmp_path: Path) -> None:
    """IP SANs: the front door, every master, 127.0.0.1; DNS SANs: localhost and the
    `kubernetes` Service names; serverAuth; not a CA; signed by the cluster CA; ~1 year."""
    paths = ensure_pki(cluster(tmp_path))
    cert, ca = load(paths.server_cert), load(paths.ca_cert)
    cert.verify_directly_issued_by(ca)
    ips, dns = sans(cert)
    assert ips == {f"127.{C}.0.1", f"127.{C}.0.11", f"127.{C}.0.12", f"127.{C}.0.13", "127.0.0.1"}
    assert dns == {
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    assert set(SERVICE_DNS_NAMES) == dns
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - datetime.now(UTC)
    assert SERVER_VALIDITY - timedelta(days=1) < lifetime <= SERVER_VALIDITY


def test_keys_are_private_and_certs_readable(tmp_path: Path) -> None:
    """Keys are mode 0600, certificates 0644; no temporary file is left behind."""
    paths = ensure_pki(cluster(tmp_path))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths.ca_cert.parent.iterdir()}
    assert modes == {
        "ca.crt": 0o644,
        "ca.key": 0o600,
        "apiserver.crt": 0o644,
        "apiserver.key": 0o600,
    }


def test_second_call_keeps_the_ca_and_the_certificate(tmp_path: Path) -> None:
    """ensure_pki is idempotent: nothing is rewritten when everything is valid."""
    cfg = cluster(tmp_path)
    first = contents(ensure_pki(cfg))
    assert contents(ensure_pki(cfg)) == first


def test_a_new_master_gets_a_new_certificate_from_the_same_ca(tmp_path: Path) -> None:
    """The cluster grew to 5 masters: the certificate is re-issued with their IPs, the CA
    (which kubeconfigs trust) stays."""
    before = contents(ensure_pki(cluster(tmp_path, masters=3)))
    paths = ensure_pki(cluster(tmp_path, masters=5))
    after = contents(paths)
    assert (after["ca_cert"], after["ca_key"]) == (before["ca_cert"], before["ca_key"])
    assert after["server_cert"] != before["server_cert"]
    cert = load(paths.server_cert)
    cert.verify_directly_issued_by(load(paths.ca_cert))
    assert {f"127.{C}.0.14", f"127.{C}.0.15"} <= sans(cert)[0]


def _remove_server_key(paths: PKIPaths, other: PKIPaths) -> None:
    paths.server_key.unlink()


def _garble_server_cert(paths: PKIPaths, other: PKIPaths) -> None:
    paths.server_cert.write_text("not a certificate\n")


def _foreign_server_cert(paths: PKIPaths, other: PKIPaths) -> None:
    shutil.copy(other.server_cert, paths.server_cert)
    shutil.copy(other.server_key, paths.server_key)


def _mismatched_server_key(paths: PKIPaths, other: PKIPaths) -> None:
    shutil.copy(other.server_key, paths.server_key)


@pytest.mark.parametrize(
    "damage",
    [_remove_server_key, _garble_server_cert, _foreign_server_cert, _mismatched_server_key],
    ids=["key-missing", "cert-garbled", "other-ca", "key-mismatch"],
)
def test_an_unusable_server_certificate_is_reissued(
    tmp_path: Path, damage: Callable[[PKIPaths, PKIPaths], None]
) -> None:
    """A serving certificate that is missing, unreadable, from another CA or not matching
    its key is re-issued by the next ensure_pki, from the same CA."""
    cfg = cluster(tmp_path)
    paths = ensure_pki(cfg)
    other = ensure_pki(cluster(tmp_path, name="other"))
    ca_before = paths.ca_cert.read_bytes()
    damage(paths, other)
    ensure_pki(cfg)
    assert paths.ca_cert.read_bytes() == ca_before
    assert _handshake(paths, paths.ca_cert) == "http/1.1"


@pytest.mark.parametrize(
    ("days_later", "reissued"),
    [(300, False), (340, True)],
    ids=["65-days-left-kept", "25-days-left-renewed"],
)
def test_a_certificate_near_expiry_is_renewed(
    tmp_path: Path, days_later: int, reissued: bool
) -> None:
    """Within 30 days of its expiry the serving certificate is renewed; earlier it is kept."""
    cfg = cluster(tmp_path)
    before = ensure_pki(cfg).server_cert.read_bytes()
    later = datetime.now(UTC) + timedelta(days=days_later)
    after = ensure_pki(cfg, now=later).server_cert.read_bytes()
    assert (after != before) is reissued
    if reissued:
        assert load(pki_paths(cfg).server_cert).not_valid_after_utc > later + timedelta(days=300)


def test_a_ca_without_its_key_is_an_error_saying_what_to_do(tmp_path: Path) -> None:
    """Clients trust the CA: it is never replaced silently once its certificate exists."""
    cfg = cluster(tmp_path)
    paths = ensure_pki(cfg)
    paths.ca_key.unlink()
    with pytest.raises(ConfigError, match=r"ca\.key is gone.*remove .*pki, then run `kubelab up`"):
        ensure_pki(cfg)


def test_a_garbled_ca_certificate_is_an_error_naming_the_file(tmp_path: Path) -> None:
    cfg = cluster(tmp_path)
    paths = ensure_pki(cfg)
    paths.ca_cert.write_text("garbage\n")
    with pytest.raises(ConfigError, match=r"ca\.crt: not a readable PEM certificate"):
        ensure_pki(cfg)


def test_a_ca_key_without_its_certificate_is_an_interrupted_creation(tmp_path: Path) -> None:
    """The key is written first: a key alone is a creation that did not finish; the CA is
    made afresh and the serving certificate re-issued from it."""
    cfg = cluster(tmp_path)
    paths = ensure_pki(cfg)
    old_key = paths.ca_key.read_bytes()
    paths.ca_cert.unlink()
    ensure_pki(cfg)
    assert paths.ca_key.read_bytes() != old_key
    load(paths.server_cert).verify_directly_issued_by(load(paths.ca_cert))


# -- TLS ---------------------------------------------------------------------------------------


def _handshake(paths: PKIPaths, ca_cert: Path, server_hostname: str = "127.0.0.1") -> str | None:
    """Serve one echo over TLS on 127.0.0.1 (port 0); the client's ALPN result."""

    async def main() -> str | None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(await reader.readline())
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ssl_context(paths))
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=client_ssl_context(ca_cert),
                server_hostname=server_hostname,
            )
            try:
                writer.write(b"ping\n")
                assert await reader.readline() == b"ping\n"
                tls = writer.get_extra_info("ssl_object")
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
                alpn: str | None = tls.selected_alpn_protocol()
                return alpn
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await writer.wait_closed()

    return asyncio.run(main())


def test_tls_handshake_on_loopback(tmp_path: Path) -> None:
    """The client verifies the chain and the IP SAN 127.0.0.1; ALPN picks http/1.1."""
    paths = ensure_pki(cluster(tmp_path))
    assert _handshake(paths, paths.ca_cert) == "http/1.1"


def test_tls_client_refuses_another_clusters_ca(tmp_path: Path) -> None:
    paths = ensure_pki(cluster(tmp_path))
    other = ensure_pki(cluster(tmp_path, name="other"))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(paths, other.ca_cert)


def test_tls_client_checks_the_address_is_a_san(tmp_path: Path) -> None:
    """check_hostname is on: an address that is not a SAN is refused."""
    paths = ensure_pki(cluster(tmp_path))
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        _handshake(paths, paths.ca_cert, server_hostname="10.1.2.3")


def test_server_context_without_files_names_them(tmp_path: Path) -> None:
    paths = pki_paths(cluster(tmp_path))
    with pytest.raises(ConfigError, match=r"apiserver\.crt .*`kubelab up` creates them"):
        server_ssl_context(paths)


# -- kubeconfig --------------------------------------------------------------------------------


@pytest.fixture
def ready(tmp_path: Path) -> ClusterConfig:
    """A cluster with its token file and PKI, as `kubelab up` leaves it before masters start."""
    cfg = cluster(tmp_path)
    write_token_file(cfg.token_file, new_tokens())
    ensure_pki(cfg)
    return cfg


def test_kubeconfig_content(ready: ClusterConfig) -> None:
    """One cluster (server, embedded CA), one token user, one current context, namespace
    default; the server is master-1's REST address until the front door exists."""
    path = ensure_kubeconfig(ready)
    assert path == ready.kubeconfig
    doc = yaml.safe_load(path.read_text())
    ca_data = base64.b64encode(pki_paths(ready).ca_cert.read_bytes()).decode()
    assert doc == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {
                    "server": f"https://127.{C}.0.11:6443",
                    "certificate-authority-data": ca_data,
                },
            }
        ],
        "users": [{"name": "lab-admin", "user": {"token": admin_token(ready)}}],
        "contexts": [
            {
                "name": "lab",
                "context": {"cluster": "lab", "user": "lab-admin", "namespace": "default"},
            }
        ],
        "current-context": "lab",
        "preferences": {},
    }
    assert kubeconfig_server(ready) == f"https://127.{C}.0.11:6443"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_kubeconfig_needs_https(ready: ClusterConfig, tmp_path: Path) -> None:
    """kubectl sends no token over plain HTTP, so an http:// server is refused."""
    with pytest.raises(ValueError, match="expected an https:// URL"):
        write_kubeconfig(ready, "http://127.0.0.1:6443", "t", tmp_path / "kc")


def test_kubeconfig_needs_the_token_file_and_the_ca(tmp_path: Path) -> None:
    cfg = cluster(tmp_path)
    with pytest.raises(ConfigError, match=r"tokens\.csv: cannot read the token file"):
        ensure_kubeconfig(cfg)
    write_token_file(cfg.token_file, new_tokens())
    with pytest.raises(ConfigError, match=r"cannot read the cluster CA .*ca\.crt"):
        ensure_kubeconfig(cfg)


class VersionHandler(BaseHTTPRequestHandler):
    """Answers `/version` like DESIGN.md says, 401 without the expected bearer token."""

    token = ""
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path.split("?")[0], self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            status, body = 401, {"kind": "Status", "status": "Failure", "code": 401}
        elif self.path.split("?")[0] == "/version":
            status = 200
            body = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-kubelab"}
        else:
            status, body = 404, {"kind": "Status", "status": "Failure", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_version(ready: ClusterConfig) -> Iterator[tuple[str, type[VersionHandler]]]:
    """An HTTPS `/version` server on 127.0.0.1 (port 0) with the cluster's certificate."""
    handler = type("Handler", (VersionHandler,), {"token": admin_token(ready), "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = server_ssl_context(pki_paths(ready)).wrap_socket(
        server.socket, server_side=True
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("version", ["1.33", "1.20"])
def test_real_kubectl_trusts_the_certificate_and_sends_the_token(
    ready: ClusterConfig,
    tmp_path: Path,
    https_version: tuple[str, type[VersionHandler]],
    version: str,
) -> None:
    """kubectl (Go's TLS) verifies our chain and IP SAN, speaks HTTP/1.1 after ALPN, and
    sends the kubeconfig's bearer token."""
    url, handler = https_version
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(ready, url, admin_token(ready), kubeconfig)
    r = run_kubectl(
        kubectl_binary(version), kubeconfig, "version", "-o", "json", cache_dir=tmp_path / "kc"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["serverVersion"]["gitVersion"] == "v1.33.0-kubelab"
    assert ("/version", f"Bearer {admin_token(ready)}") in handler.seen


# -- kubectl binaries --------------------------------------------------------------------------


@pytest.mark.slow
def test_ensure_kubectl_1_20_fetches_and_unpacks_debians_kubectl(tmp_path: Path) -> None:
    """From an empty cache: `apt-get download` + `dpkg-deb -x`, a working 1.20 client; the
    second call reuses it."""
    cache = tmp_path / "cache"
    binary = kubectlbin.ensure_kubectl_1_20(cache)
    assert binary == cache / "kubectl-1.20" / "usr" / "bin" / "kubectl"
    r = subprocess.run(
        [str(binary), "version", "--client"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert 'GitVersion:"v1.20.' in r.stdout
    assert [p.name for p in cache.iterdir()] == ["kubectl-1.20"]  # no temporary left
    assert kubectlbin.ensure_kubectl_1_20(cache) == binary


def _fake_apt(tmp_path: Path, *, update_ok: bool, git_version: str) -> Path:
    """A bin dir whose `apt-get download` fails until `apt-get update` ran, then yields a
    .deb holding a kubectl that reports `git_version`; calls are logged to `apt.log`."""
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: kubernetes-client\nVersion: 1.20.9\nArchitecture: all\n"
        "Maintainer: test <t@example.com>\nDescription: fake\n"
    )
    fake_kubectl = pkg / "usr" / "bin" / "kubectl"
    fake_kubectl.parent.mkdir(parents=True)
    fake_kubectl.write_text(
        f'#!/bin/sh\necho \'{{"clientVersion": {{"gitVersion": "{git_version}"}}}}\'\n'
    )
    fake_kubectl.chmod(0o755)
    deb = tmp_path / "fake.deb"
    subprocess.run(["dpkg-deb", "-b", str(pkg), str(deb)], check=True, capture_output=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    updated, log = tmp_path / "updated", tmp_path / "apt.log"
    update = (
        f'touch "{updated}"' if update_ok else 'echo "E: Could not open lock file" >&2; exit 100'
    )
    script = f"""#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
update) {update};;
download)
  if [ -e "{updated}" ]; then cp "{deb}" ./kubernetes-client_1.20.9_all.deb; exit 0; fi
  echo "E: Unable to locate package $2" >&2; exit 100;;
esac
"""
    apt = bin_dir / "apt-get"
    apt.write_text(script)
    apt.chmod(0o755)
    return bin_dir


def test_ensure_kubectl_1_20_runs_apt_update_once_when_lists_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _fake_apt(tmp_path, update_ok=True, git_version="v1.20.9")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    binary = kubectlbin.ensure_kubectl_1_20(tmp_path / "cache")
    assert kubectlbin.client_version(binary) == "v1.20.9"
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["download kubernetes-client", "update", "download kubernetes-client"]


@pytest.mark.parametrize(
    ("update_ok", "git_version", "message"),
    [
        (False, "v1.20.9", r"apt-get update` failed too .*run `sudo apt-get update` once"),
        (True, "v1.27.3", r"does not hold a working kubectl 1\.20 \(found v1\.27\.3\)"),
    ],
    ids=["update-refused", "wrong-version"],
)
def test_ensure_kubectl_1_20_failures_say_what_to_do(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    update_ok: bool,
    git_version: str,
    message: str,
) -> None:
    """A failure is a RuntimeError with the cause and the way out; the cache holds nothing."""
    bin_dir = _fake_apt(tmp_path, update_ok=update_ok, git_version=git_version)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=message):
        kubectlbin.ensure_kubectl_1_20(cache)
    assert list(cache.iterdir()) == []


def test_ensure_kubectl_1_20_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="`apt-get` is not on PATH"):
        kubectlbin.ensure_kubectl_1_20(tmp_path / "cache")


def _script(path: Path, git_version: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho \'{{"clientVersion": {{"gitVersion": "{git_version}"}}}}\'\n')
    path.chmod(0o755)


def test_find_kubectl_looks_beside_the_dispatcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kubectl` on PATH is a symlink to the dispatcher; `kubectl.1.NN` lie beside its real
    path. The dispatcher itself is never taken for a version."""
    sdk = tmp_path / "sdk"
    _script(sdk / "kubectl", "v1.32.4-dispatcher")
    _script(sdk / "kubectl.1.33", "v1.33.1")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kubectl").symlink_to(sdk / "kubectl")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert kubectlbin.find_kubectl(33) == sdk / "kubectl.1.33"
    assert kubectlbin.find_kubectl(32) is None


def test_find_kubectl_accepts_a_plain_kubectl_of_that_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(tmp_path / "bin" / "kubectl", "v1.29.3")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert kubectlbin.find_kubectl(29) == tmp_path / "bin" / "kubectl"
    assert kubectlbin.find_kubectl(33) is None


def test_this_machines_kubectl_1_33_is_found() -> None:
    """The machine image ships kubectl.1.33 (skipped elsewhere, a failure in CI)."""
    binary = kubectl_binary("1.33")
    assert kubectlbin.client_version(binary) is not None
    assert (kubectlbin.client_version(binary) or "").startswith("v1.33.")
