"""Certificates for the audit webhook when none are configured: a private CA, a server
certificate for the webhook and a client certificate for kube-apiserver.

`logwarden run` on its embedded defaults makes them on first start under
``<data_dir>/tls/`` (keys mode 0600) and then requires the client certificate (mutual
TLS): `logwarden generate webhook-kubeconfig --ca tls/ca.pem --client-cert
tls/client.pem --client-key tls/client.key` gives kube-apiserver what it needs. Keys are
ECDSA P-256; the CA is valid 10 years, the leaf certificates 825 days.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ServicePki", "ensure_service_pki"]

_CA_DAYS = 3650
_LEAF_DAYS = 825


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

    `hosts` are the names and addresses the server certificate is valid for.
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
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "logwarden webhook CA")])
    ca_cert = _sign(ca_name, ca_name, ca_key.public_key(), ca_key, _CA_DAYS, ca=True)
    _write_key(directory / "ca.key", ca_key)
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for name, cert_path, key_path, usage, sans in (
        ("logwarden", pki.server_cert, pki.server_key, ExtendedKeyUsageOID.SERVER_AUTH, hosts),
        ("kube-apiserver", pki.client_cert, pki.client_key, ExtendedKeyUsageOID.CLIENT_AUTH, []),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = _sign(subject, ca_name, key.public_key(), ca_key, _LEAF_DAYS, usage=usage, sans=sans)
        _write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki


def _sign(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    days: int,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: list[str] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in sans]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
