"""The certificates `logwarden run` generates when none are configured."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from logwarden.errors import UsageError
from logwarden.generate.pki import ServicePki, ensure_service_pki

HOSTS = ["127.0.0.1", "::1", "localhost", "logwarden.example"]
OPENSSL = shutil.which("openssl")


@pytest.fixture
def pki(tmp_path: Path) -> ServicePki:
    return ensure_service_pki(tmp_path / "pki", HOSTS)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_the_ca_signs_certificates_only(pki: ServicePki) -> None:
    ca = _cert(pki.ca)
    assert ca.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())  # type: ignore[arg-type]
    days = (ca.not_valid_after_utc - ca.not_valid_before_utc).days
    assert 3650 <= days <= 3651


@pytest.mark.parametrize(
    ("attr", "eku"),
    [
        ("server_cert", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client_cert", ExtendedKeyUsageOID.CLIENT_AUTH),
    ],
)
def test_leaf_certificates_carry_the_extensions_of_their_use(
    pki: ServicePki, attr: str, eku: x509.ObjectIdentifier
) -> None:
    ca, cert = _cert(pki.ca), _cert(getattr(pki, attr))
    assert cert.issuer == ca.subject
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert (cert.not_valid_after_utc - now).days in (824, 825)
    assert cert.not_valid_after_utc < ca.not_valid_after_utc


def test_server_names_are_dns_names_and_addresses_are_ip_addresses(pki: ServicePki) -> None:
    sans = _cert(pki.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert sans.value.get_values_for_type(x509.DNSName) == ["localhost", "logwarden.example"]
    client = _cert(pki.client_cert).extensions
    assert x509.SubjectAlternativeName not in [type(e.value) for e in client]


def test_serial_numbers_are_random(tmp_path: Path) -> None:
    serials = set()
    for i in range(3):
        made = ensure_service_pki(tmp_path / str(i), HOSTS)
        serials |= {_cert(p).serial_number for p in (made.ca, made.server_cert, made.client_cert)}
    assert len(serials) == 9 and min(serials) > 1 << 64


def _serve_once(server: ssl.SSLContext, sock: socket.socket, seen: list[object]) -> None:
    try:
        with server.wrap_socket(sock, server_side=True) as tls:
            seen.append(tls.getpeercert())
            tls.sendall(b"ok")
    except (ssl.SSLError, OSError) as exc:
        seen.append(exc)


@pytest.fixture
def strict_handshake(pki: ServicePki) -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """Server and client contexts as strict as Python 3.13's defaults (X509_STRICT)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    server.load_verify_locations(pki.ca)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=pki.ca)
    client.load_cert_chain(pki.client_cert, pki.client_key)
    for context in (server, client):
        context.verify_flags |= ssl.VERIFY_X509_STRICT
    yield server, client


def test_mutual_tls_with_strict_x509_verification(
    strict_handshake: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = strict_handshake
    ours, theirs = socket.socketpair()
    seen: list[object] = []
    thread = threading.Thread(target=_serve_once, args=(server, theirs, seen))
    thread.start()
    try:
        with client.wrap_socket(ours, server_hostname="logwarden.example") as tls:
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(10)
    assert isinstance(seen[0], dict)  # the server verified the client certificate
    assert ("commonName", "kube-apiserver") in [kv for rdn in seen[0]["subject"] for kv in rdn]


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_verifies_each_certificate_for_its_purpose_strictly(pki: ServicePki) -> None:
    verify = [OPENSSL or "openssl", "verify", "-CAfile", str(pki.ca)]
    for cert, purpose in ((pki.server_cert, "sslserver"), (pki.client_cert, "sslclient")):
        done = subprocess.run(
            [*verify, "-x509_strict", "-purpose", purpose, str(cert)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    wrong = subprocess.run(
        [*verify, "-purpose", "sslserver", str(pki.client_cert)],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0  # a client certificate is no server certificate


def test_keys_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = ensure_service_pki(tmp_path / "pki", HOSTS)
    finally:
        os.umask(old)
    for key in (made.server_key, made.client_key, tmp_path / "pki" / "ca.key"):
        assert _mode(key) == 0o600
        serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert _mode(made.ca) == 0o644
    assert [p.name for p in (tmp_path / "pki").iterdir() if p.name.endswith(".tmp")] == []


def test_existing_files_are_returned_unchanged(pki: ServicePki) -> None:
    before = _contents(pki.ca.parent)
    assert ensure_service_pki(pki.ca.parent, ["other.example"]) == pki
    assert _contents(pki.ca.parent) == before


def test_a_missing_key_is_issued_again_by_the_same_ca(pki: ServicePki) -> None:
    before = _contents(pki.ca.parent)
    pki.client_key.unlink()  # a client certificate without its key is of no use
    again = ensure_service_pki(pki.ca.parent, HOSTS)
    after = _contents(pki.ca.parent)
    # the CA the apiserver trusts and the server certificate it verifies are kept
    for name in ("ca.pem", "ca.key", "server.pem", "server.key"):
        assert after[name] == before[name]
    assert after["client.pem"] != before["client.pem"]
    cert = _cert(again.client_cert)
    _cert(again.ca).public_key().verify(  # type: ignore[call-arg]
        cert.signature,
        cert.tbs_certificate_bytes,
        ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
    )
    key = serialization.load_pem_private_key(again.client_key.read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


def test_a_replaced_key_file_never_keeps_a_lax_mode(pki: ServicePki) -> None:
    pki.client_cert.unlink()
    pki.client_key.chmod(0o644)  # left world-readable by hand
    ensure_service_pki(pki.ca.parent, HOSTS)
    assert _mode(pki.client_key) == 0o600


def test_certificates_without_their_ca_are_never_replaced(pki: ServicePki) -> None:
    (pki.ca.parent / "ca.key").unlink()
    pki.server_key.unlink()
    before = _contents(pki.ca.parent)
    with pytest.raises(UsageError, match=r"the CA that signed .*client\.pem.*is missing"):
        ensure_service_pki(pki.ca.parent, HOSTS)
    assert _contents(pki.ca.parent) == before


def test_a_half_written_ca_alone_is_made_again(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "ca.key").write_bytes(b"")  # a first start stopped after one file
    made = ensure_service_pki(directory, HOSTS)
    assert _cert(made.client_cert).issuer == _cert(made.ca).subject
    assert _mode(directory / "ca.key") == 0o600
