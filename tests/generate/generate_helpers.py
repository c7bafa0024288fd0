"""Helpers for the generate tests: a throwaway PKI and a real HTTPS server needing mTLS.

The PKI is made with `cryptography` for each test session: a CA, a server certificate for
127.0.0.1 and localhost, and client certificates (valid, expired, with an encrypted key).
`AuditReceiver` is an HTTPS server on loopback that, like logwarden's audit webhook,
requires a client certificate signed by the CA (and optionally a bearer token) and keeps
the bodies it accepted.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    expired_cert: Path
    expired_key: Path
    encrypted_key: Path
    other_key: Path
    token: Path


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: list[x509.GeneralName] | None = None,
    expired: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(root: Path) -> Pki:
    """Write a CA, a loopback server certificate and client credentials under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("logwarden test CA")
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue(
        _name("logwarden"),
        server_key,
        ca_name,
        ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_name = _name("kube-apiserver-audit", "system:kube-apiserver")
    client = _issue(client_name, client_key, ca_name, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    expired = _issue(
        client_name,
        client_key,
        ca_name,
        ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        expired=True,
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "server.pem": server.public_bytes(pem),
        "server-key.pem": _pem_key(server_key),
        "client.pem": client.public_bytes(pem),
        "client-key.pem": _pem_key(client_key),
        "expired.pem": expired.public_bytes(pem),
        "encrypted-key.pem": _pem_key(client_key, b"secret"),
        "other-key.pem": _pem_key(ec.generate_private_key(ec.SECP256R1())),
        "token": b"lw-test-token.0123456789abcdef\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return Pki(
        dir=root,
        ca=root / "ca.pem",
        server_cert=root / "server.pem",
        server_key=root / "server-key.pem",
        client_cert=root / "client.pem",
        client_key=root / "client-key.pem",
        expired_cert=root / "expired.pem",
        expired_key=root / "client-key.pem",
        encrypted_key=root / "encrypted-key.pem",
        other_key=root / "other-key.pem",
        token=root / "token",
    )


@dataclass
class Received:
    path: str
    body: bytes
    authorization: str | None
    client_cn: str


@dataclass
class AuditReceiver:
    """What the loopback HTTPS server accepted."""

    url: str
    received: list[Received] = field(default_factory=list)


def _handler(
    receiver: AuditReceiver, token: str | None
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the method name http.server dispatches to
            body = self._body()
            auth = self.headers.get("Authorization")
            if token is not None and auth != f"Bearer {token}":
                self.send_error(401, "bearer token required")
                return
            cert = self.connection.getpeercert()
            cn = dict(x[0] for x in cert["subject"])["commonName"] if cert else ""
            receiver.received.append(Received(self.path, body, auth, cn))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def audit_receiver(
    pki: Pki, *, path: str = "/audit", token: str | None = None
) -> Iterator[AuditReceiver]:
    """A real HTTPS server on 127.0.0.1 requiring a client certificate signed by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    receiver = AuditReceiver(f"https://127.0.0.1:{server.server_address[1]}{path}")
    server.RequestHandlerClass = _handler(receiver, token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
