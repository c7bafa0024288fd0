"""Certificates for the audit webhook when none are configured: a private CA, a server
certificate for the webhook and a client certificate for kube-apiserver.

`logwarden run` on its embedded defaults makes them on first start under
``<data_dir>/tls/`` (keys mode 0600) and then requires the client certificate (mutual
TLS): `logwarden generate webhook-kubeconfig --ca tls/ca.pem --client-cert
tls/client.pem --client-key tls/client.key` gives kube-apiserver what it needs. Keys are
ECDSA P-256; the CA is valid 10 years, the leaf certificates 825 days. Every certificate
carries the extensions RFC 5280 asks for (key identifiers, key usage), so strict
verifiers (OpenSSL's X509_STRICT, the default of Python 3.13's `ssl`) accept them.

Existing files are kept: when a certificate or its key is missing, that pair is issued
again by the existing CA, so the CA the apiserver trusts and the other pair stay valid.
Without its CA (``ca.pem`` and ``ca.key``) an issued certificate or key is never
replaced: the error says what to do. Every file is written to a temporary file (keys created
mode 0600) and renamed into place.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from logwarden._durable import write_atomic
from logwarden.errors import UsageError

__all__ = ["ServicePki", "ensure_service_pki"]

_CA_DAYS = 3650
_LEAF_DAYS = 825
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "logwarden webhook CA")])


@dataclass(frozen=True)
class ServicePki:
    """Paths of the generated files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def ensure_service_pki(directory: Path, hosts: list[str]) -> ServicePki:
    """The CA, server and client certificates under `directory`, made if missing.

    `hosts` are the names and addresses the server certificate is valid for. Raises
    UsageError when files are missing and the CA that signed the others cannot be used.
    """
    pki = ServicePki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    if all(p.exists() for p in dataclasses.astuple(pki)):
        return pki
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_cert = _ca(directory, pki)
    for name, cert_path, key_path, usage, sans in (
        ("logwarden", pki.server_cert, pki.server_key, ExtendedKeyUsageOID.SERVER_AUTH, hosts),
        ("kube-apiserver", pki.client_cert, pki.client_key, ExtendedKeyUsageOID.CLIENT_AUTH, []),
    ):
        if cert_path.exists() and key_path.exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = _sign(subject, key.public_key(), ca_key, ca_cert, _LEAF_DAYS, usage, sans)
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return pki


def _ca(directory: Path, pki: ServicePki) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The existing CA, or a new one when no certificate or key it would have signed exists."""
    key_path = directory / "ca.key"
    if pki.ca.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{directory}: the generated CA cannot be read ({exc})") from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and _same_key(cert, key):
            return key, cert
        raise UsageError(f"{key_path}: not the key of the CA certificate {pki.ca}")
    issued = [p.name for p in dataclasses.astuple(pki)[1:] if p.exists()]
    if issued:
        raise UsageError(
            f"{directory}: the CA that signed {', '.join(issued)} is missing ({pki.ca.name} "
            f"and {key_path.name} are both needed); nothing was replaced. Restore it, or move "
            "the directory away to generate a new CA and certificates (and then the "
            "apiserver's webhook kubeconfig again)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_CA_NAME, key.public_key(), key, None, _CA_DAYS, None, [])
    _write(key_path, _key_pem(key), private=True)
    _write(pki.ca, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return key, cert


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate | None,
    days: int,
    usage: x509.ObjectIdentifier | None,
    sans: list[str],
) -> x509.Certificate:
    """A certificate signed by `ca_key`; self-signed CA certificate when `ca_cert` is None."""
    ca = ca_cert is None
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if ca_cert is None else ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if ca_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in sans]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write `path` whole (`write_atomic`): a key is mode 0600 from the moment it exists,
    whatever the umask or the mode of a file it replaces."""
    try:
        write_atomic(path, data, mode=0o600 if private else 0o644)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
