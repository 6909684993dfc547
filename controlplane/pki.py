"""The cluster's PKI: a CA, the API server's serving certificate, TLS contexts, the kubeconfig.

`kubelab up` calls `ensure_pki` and then `ensure_kubeconfig`; every master serves its REST
API with `server_ssl_context(pki_paths(cfg))`; clients (tests, the CLI's REST client) verify
with `client_ssl_context(ca_cert)`. Files live in `<data_dir>/pki` (DESIGN.md "Security").

Decisions:

- **EC P-256 keys**: small and fast to generate; every client we serve (kubectl 1.20's Go,
  Python's OpenSSL) accepts them. Keys are PKCS#8 PEM, mode 0600, written atomically.
- **One serving certificate for every master**, with IP SANs for the front door, every
  master and 127.0.0.1, and the DNS names in-cluster clients use (`kubernetes.default.svc`
  ...). Clients connect by IP and check the name (check_hostname on), so an address that
  is not a SAN is a hard failure: `ensure_pki` re-issues the certificate, with the same CA,
  whenever a needed SAN is missing (the cluster grew), the certificate or its key is
  missing, unreadable or mismatched, it is not signed by the current CA, or it expires
  within `RENEW_BEFORE`. Re-issuing never invalidates a kubeconfig: those trust the CA.
- **The CA is never replaced silently once its key exists with its certificate**: clients
  (kubeconfigs copied elsewhere) trust it. A CA certificate whose key is gone is an error
  telling what to do; a CA key without its certificate is an interrupted creation (the key
  is written first) and the CA is made afresh.
- **Certificates are RFC 5280-strict** (subject and authority key identifiers, critical
  basicConstraints and keyUsage) so that OpenSSL's `VERIFY_X509_STRICT`, Python 3.13's
  default, accepts them; `client_ssl_context` turns that flag on so we find out here.
- **HTTP/1.1 only over ALPN**: our REST server speaks HTTP/1.1; kubectl offers h2 and
  http/1.1 and falls back when the server picks http/1.1.
- Library exceptions (`ssl.SSLError`, cryptography's `ValueError`) stop here: a broken or
  missing file is a `ConfigError` naming the file and what to do.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.config import ClusterConfig, ConfigError, admin_token, write_atomic

__all__ = [
    "CA_VALIDITY",
    "RENEW_BEFORE",
    "SERVER_VALIDITY",
    "SERVICE_DNS_NAMES",
    "PKIPaths",
    "ServerNames",
    "client_ssl_context",
    "ensure_kubeconfig",
    "ensure_pki",
    "kubeconfig_document",
    "kubeconfig_server",
    "pki_paths",
    "server_cert_problem",
    "server_names",
    "server_ssl_context",
    "write_kubeconfig",
]

log = logging.getLogger(__name__)

CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
"""A serving certificate that expires sooner than this is re-issued by `ensure_pki`."""
BACKDATE = timedelta(minutes=5)
"""notBefore is set this far in the past, so that a client whose clock lags accepts it."""

SERVICE_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
"""DNS SANs of the API server: the names of the `kubernetes` Service, as kubeadm sets them."""

_ALPN = ["http/1.1"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class PKIPaths:
    """Where a cluster's CA and serving certificate are (`<data_dir>/pki`)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class ServerNames:
    """The subject alternative names the serving certificate must hold."""

    ips: frozenset[IPAddress]
    dns: frozenset[str]


def pki_paths(cfg: ClusterConfig) -> PKIPaths:
    """The PKI files of `cfg` (nothing is read or created)."""
    d = cfg.data_dir / "pki"
    return PKIPaths(d / "ca.crt", d / "ca.key", d / "apiserver.crt", d / "apiserver.key")


def server_names(cfg: ClusterConfig) -> ServerNames:
    """Every address a client may reach the API server by: the front door, each master,
    loopback, and the `kubernetes` Service's DNS names."""
    ips = {cfg.frontdoor[0], "127.0.0.1", *(m.ip for m in cfg.masters)}
    return ServerNames(
        frozenset(ipaddress.ip_address(ip) for ip in ips), frozenset(SERVICE_DNS_NAMES)
    )


# -- ensure_pki ---------------------------------------------------------------------------------


def ensure_pki(cfg: ClusterConfig, *, now: datetime | None = None) -> PKIPaths:
    """Create the CA and the serving certificate of `cfg` if needed; idempotent.

    A second call keeps both unless the serving certificate must be re-issued (see the
    module docstring). `now` (default: the current UTC time) is when validity is judged
    and starts. Raises `ConfigError` naming the file for a CA that cannot be used.
    """
    paths = pki_paths(cfg)
    when = now or datetime.now(UTC)
    ca_key, ca_cert = _ensure_ca(cfg, paths, when)
    names = server_names(cfg)
    reason = _stored_server_cert_problem(paths, ca_cert, names, when)
    if reason is not None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_server_cert(key, ca_key, ca_cert, names, when)
        _write_key(paths.server_key, key)
        write_atomic(paths.server_cert, _cert_pem(cert), mode=0o644)
        log.info(
            "issued apiserver certificate path=%s reason=%r expires=%s",
            paths.server_cert,
            reason,
            cert.not_valid_after_utc.date(),
        )
    return paths


def _ensure_ca(
    cfg: ClusterConfig, paths: PKIPaths, now: datetime
) -> tuple[SigningKey, x509.Certificate]:
    if paths.ca_cert.exists():
        if not paths.ca_key.exists():
            raise ConfigError(
                f"{paths.ca_cert} exists but its key {paths.ca_key} is gone: the cluster CA "
                f"cannot sign. To make a new CA (kubeconfigs copied elsewhere must be fetched "
                f"again): remove {paths.ca_cert.parent}, then run `kubelab up`"
            )
        cert = _load_cert(paths.ca_cert)
        key = _load_key(paths.ca_key)
        problem = _ca_problem(cert, key, now)
        if problem is not None:
            raise ConfigError(
                f"{paths.ca_cert}: {problem}. To make a new CA (kubeconfigs copied elsewhere "
                f"must be fetched again): remove {paths.ca_cert.parent}, then run `kubelab up`"
            )
        return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue_ca_cert(key, f"kubelab-{cfg.name}-ca", now)
    _write_key(paths.ca_key, key)  # the key first: a key alone means "creation interrupted"
    write_atomic(paths.ca_cert, _cert_pem(cert), mode=0o644)
    log.info("created cluster CA path=%s cluster=%s", paths.ca_cert, cfg.name)
    return key, cert


def _ca_problem(cert: x509.Certificate, key: SigningKey, now: datetime) -> str | None:
    """Why `cert` with `key` cannot serve as the cluster CA, or None."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "not a CA certificate (no basicConstraints)"
    if not bc.ca:
        return "not a CA certificate (basicConstraints CA:FALSE)"
    if not _same_public_key(cert, key):
        return "the certificate does not match the key in ca.key"
    if cert.not_valid_after_utc <= now:
        return f"the CA expired on {cert.not_valid_after_utc.date()}"
    return None


def _stored_server_cert_problem(
    paths: PKIPaths, ca_cert: x509.Certificate, names: ServerNames, now: datetime
) -> str | None:
    """Why the serving certificate on disk must be (re-)issued, or None if it is good."""
    if not paths.server_cert.exists() or not paths.server_key.exists():
        return "absent"
    try:
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        key = _parse_key(paths.server_key.read_bytes())
    except (OSError, ValueError, TypeError) as e:
        return f"unreadable: {e}"
    return server_cert_problem(cert, key, ca_cert, names, now)


def server_cert_problem(
    cert: x509.Certificate,
    key: SigningKey,
    ca_cert: x509.Certificate,
    names: ServerNames,
    now: datetime,
) -> str | None:
    """Why `cert` (with `key`) is not a valid serving certificate for `names` signed by
    `ca_cert` at least `RENEW_BEFORE` before it expires; None if it is."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the cluster CA"
    if not _same_public_key(cert, key):
        return "the certificate does not match its key"
    have_ips, have_dns = _sans(cert)
    missing = sorted(str(ip) for ip in names.ips - have_ips) + sorted(names.dns - have_dns)
    if missing:
        return f"missing SANs {', '.join(missing)}"
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return f"expires on {cert.not_valid_after_utc.date()}"
    return None


def _sans(cert: x509.Certificate) -> tuple[frozenset[IPAddress], frozenset[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    ips = frozenset(
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
    )
    return ips, frozenset(san.get_values_for_type(x509.DNSName))


# -- issuing -----------------------------------------------------------------------------------


def _issue_ca_cert(key: SigningKey, common_name: str, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _issue_server_cert(
    key: SigningKey,
    ca_key: SigningKey,
    ca_cert: x509.Certificate,
    names: ServerNames,
    now: datetime,
) -> x509.Certificate:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # IPs then DNS names, each sorted: a stable order makes certificates easy to compare.
    sans: list[x509.GeneralName] = [x509.IPAddress(ip) for ip in sorted(names.ips, key=str)]
    sans += [x509.DNSName(d) for d in sorted(names.dns)]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- files -------------------------------------------------------------------------------------


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _write_key(path: Path, key: SigningKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem.decode("ascii"), mode=0o600)


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable PEM certificate: {e}") from None


def _load_key(path: Path) -> SigningKey:
    try:
        return _parse_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a readable PEM private key: {e}") from None


def _parse_key(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"expected an EC or RSA key, got {type(key).__name__}")
    return key


def _same_public_key(cert: x509.Certificate, key: SigningKey) -> bool:
    def spki(k: Any) -> bytes:
        return bytes(
            k.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    return spki(cert.public_key()) == spki(key.public_key())


# -- TLS contexts ------------------------------------------------------------------------------


def server_ssl_context(paths: PKIPaths) -> ssl.SSLContext:
    """A TLS server context with the serving certificate: TLS 1.2 or later, ALPN `http/1.1`.

    `ConfigError` naming the files if they cannot be loaded (run `kubelab up` to make them).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(paths.server_cert, paths.server_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot load the serving certificate {paths.server_cert} with its key "
            f"{paths.server_key}: {e}; `kubelab up` creates them"
        ) from None
    ctx.set_alpn_protocols(_ALPN)
    return ctx


def client_ssl_context(ca_cert: Path) -> ssl.SSLContext:
    """A TLS client context that trusts only the cluster CA and checks the server's name.

    Clients connect by IP: the serving certificate's IP SANs are what `check_hostname`
    matches. `ConfigError` if the CA file cannot be loaded.
    """
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load the cluster CA {ca_cert}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.set_alpn_protocols(_ALPN)
    return ctx


# -- kubeconfig --------------------------------------------------------------------------------


def kubeconfig_server(cfg: ClusterConfig) -> str:
    """The API address a kubeconfig names.

    Until the front door exists (the Services issue), this is master-1's REST address:
    kubectl then fails while master-1 is down although the cluster still serves, and tests
    use the surviving masters' addresses. With the front door it becomes
    `host, port = cfg.frontdoor` (the serving certificate already holds its IP).
    """
    host, port = cfg.masters[0].ip, cfg.masters[0].rest_port
    return f"https://{host}:{port}"


def kubeconfig_document(name: str, server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """A kubeconfig (`kind: Config`) with one cluster, one token user and one context.

    The cluster is `name`, the user `<name>-admin`, the context `name` (current, namespace
    `default`); the CA is embedded so the file works from anywhere.
    """
    user = f"{name}-admin"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": user, "namespace": "default"}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(cfg: ClusterConfig, server: str, token: str, path: Path) -> None:
    """Write a kubeconfig for `server` with `token` and `cfg`'s CA to `path` (mode 0600,
    atomically). Requires the CA (`ensure_pki`); `ConfigError` if it is missing."""
    if not server.startswith("https://"):
        # kubectl sends no credentials over plain HTTP (research/kubectl-api.md).
        raise ValueError(f"server: expected an https:// URL, got {server!r}")
    ca = pki_paths(cfg).ca_cert
    try:
        ca_pem = ca.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the cluster CA {ca} ({e}); `kubelab up` creates it"
        ) from None
    doc = kubeconfig_document(cfg.name, server, ca_pem, token)
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False), mode=0o600)


def ensure_kubeconfig(cfg: ClusterConfig) -> Path:
    """Write `cfg.kubeconfig` for the admin user (token from the token file) and return it.

    Rewritten on every call, so it follows the CA, the token and `kubeconfig_server`.
    Requires `ensure_pki(cfg)` and the token file; `ConfigError` otherwise.
    """
    write_kubeconfig(cfg, kubeconfig_server(cfg), admin_token(cfg), cfg.kubeconfig)
    return cfg.kubeconfig
