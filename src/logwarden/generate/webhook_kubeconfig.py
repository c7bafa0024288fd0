"""The kubeconfig kube-apiserver's `--audit-webhook-config-file` takes, pointing at logwarden.

The apiserver reads it with client-go like any kubeconfig: the current context's cluster
gives the URL it POSTs `EventList` batches to (`server`) and the CA that signs that
server's certificate (`certificate-authority-data`); the context's user gives the
credentials it presents (`client-certificate-data` and `client-key-data` for mutual TLS,
`token` for a bearer token). Everything is embedded, so the one file is all the
apiserver's static pod has to mount.

logwarden refuses unauthenticated posts, so a client certificate and key, a token, or
both are required. Every file is checked before anything is written: the CA and client
certificate must be PEM certificates, the key an unencrypted PEM private key that matches
the certificate, the token a single line. Errors name the option, the file and what is
wrong.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from logwarden.errors import UsageError

__all__ = ["NAME", "USER", "WebhookCredentials", "check_url", "webhook_kubeconfig"]

#: the name of the cluster and context in the kubeconfig
NAME = "logwarden"
#: the name of the user (the apiserver is the client)
USER = "kube-apiserver"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
#: bearer token characters client-go sends as they are (RFC 6750 b64token, and JWT dots)
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")


class WebhookCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """The files given on the command line; None where an option was not given."""

    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    token_file: Path | None = None


def check_url(url: str) -> str:
    """The webhook URL, if it is an https URL with a host and nothing that does not belong."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UsageError(
            f"--url {url!r}: spaces and control characters do not belong in a URL "
            "(the apiserver refuses it); percent-encode them"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--url {url!r}: not a valid URL ({exc})") from None
    if parts.scheme != "https":
        raise UsageError(
            f"--url {url!r}: must start with https:// (the apiserver sends audit events, "
            "secrets' metadata included, to this URL; logwarden accepts them over TLS only)"
        )
    if not parts.hostname:
        raise UsageError(f"--url {url!r}: no host name")
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            f"--url {url!r}: user and password do not belong in the URL; "
            "use --client-cert/--client-key or --token-file"
        )
    if parts.fragment:
        raise UsageError(f"--url {url!r}: a URL fragment ('#...') is never sent; remove it")
    if port == 0:
        raise UsageError(f"--url {url!r}: port 0 is not a port")
    return url


def _read(option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None


def _pem_kinds(data: bytes) -> list[str]:
    return [m.group(1).decode() for m in _PEM_BLOCK.finditer(data)]


def _certificates(option: str, path: Path) -> tuple[bytes, list[x509.Certificate]]:
    data = _read(option, path)
    kinds = _pem_kinds(data)
    if any("PRIVATE KEY" in k for k in kinds):
        raise UsageError(
            f"{option} {path}: holds a private key; give a file with certificates only"
        )
    if "CERTIFICATE" not in kinds:
        found = f"PEM blocks {', '.join(sorted(set(kinds)))}" if kinds else "no PEM block"
        raise UsageError(
            f"{option} {path}: not a PEM certificate (expected '-----BEGIN CERTIFICATE-----', "
            f"found {found}; convert DER with 'openssl x509 -inform der')"
        )
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise UsageError(f"{option} {path}: a certificate in it cannot be read: {exc}") from None
    return data, certs


def _private_key(path: Path) -> tuple[bytes, PrivateKeyTypes]:
    data = _read("--client-key", path)
    if not any("PRIVATE KEY" in k for k in _pem_kinds(data)):
        raise UsageError(
            f"--client-key {path}: not a PEM private key "
            "(expected '-----BEGIN ... PRIVATE KEY-----')"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageError(
            f"--client-key {path}: the key is encrypted; the apiserver cannot ask for a "
            "passphrase (decrypt it with 'openssl pkey')"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"--client-key {path}: cannot read the key: {exc}") from None
    return data, key


def _public_der(key: object) -> bytes:
    public = getattr(key, "public_key", None)
    if public is None:
        return b""
    encoded: bytes = public().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


def _client_pair(cert_path: Path, key_path: Path) -> tuple[bytes, bytes]:
    cert_data, certs = _certificates("--client-cert", cert_path)
    expires = certs[0].not_valid_after_utc
    if expires <= dt.datetime.now(dt.UTC):
        raise UsageError(
            f"--client-cert {cert_path}: expired on {expires:%Y-%m-%d %H:%M} UTC; "
            "TLS handshakes with it fail"
        )
    key_data, key = _private_key(key_path)
    if _public_der(certs[0]) != _public_der(key):
        raise UsageError(
            f"--client-key {key_path}: does not belong to the certificate in {cert_path} "
            "(their public keys differ)"
        )
    return cert_data, key_data


def _token(path: Path) -> str:
    data = _read("--token-file", path)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--token-file {path}: not an ASCII token") from None
    if not text:
        raise UsageError(f"--token-file {path}: the file is empty")
    if not _TOKEN.fullmatch(text):
        raise UsageError(
            f"--token-file {path}: a bearer token is one line of letters, digits and "
            "'-._~+/='; this file holds more (spaces, several lines or other characters)"
        )
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _user(creds: WebhookCredentials) -> dict[str, str]:
    if (creds.client_cert is None) != (creds.client_key is None):
        given, missing = (
            ("--client-cert", "--client-key")
            if creds.client_cert is not None
            else ("--client-key", "--client-cert")
        )
        raise UsageError(f"{given} needs {missing}: a client certificate is used with its key")
    if creds.client_cert is None and creds.token_file is None:
        raise UsageError(
            "no credentials: give --client-cert and --client-key, --token-file, or both "
            "(logwarden refuses audit events from unauthenticated clients)"
        )
    user: dict[str, str] = {}
    if creds.client_cert is not None and creds.client_key is not None:
        cert, key = _client_pair(creds.client_cert, creds.client_key)
        user["client-certificate-data"] = _b64(cert)
        user["client-key-data"] = _b64(key)
    if creds.token_file is not None:
        user["token"] = _token(creds.token_file)
    return user


_HEADER = """\
# kube-apiserver audit webhook configuration written by `logwarden generate webhook-kubeconfig`.
# Use it with --audit-webhook-config-file (and --audit-webhook-mode=batch).
# It holds the apiserver's credentials for logwarden: keep it mode 0600, readable by root only.
"""


def webhook_kubeconfig(url: str, creds: WebhookCredentials) -> str:
    """The kubeconfig as YAML text; raises UsageError naming what is wrong."""
    server = check_url(url)
    user = _user(creds)
    cluster: dict[str, str] = {"server": server}
    if creds.ca is not None:
        ca_data, _ = _certificates("--ca", creds.ca)
        cluster["certificate-authority-data"] = _b64(ca_data)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": USER, "user": user}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": USER}}],
        "current-context": NAME,
        "preferences": {},
    }
    return _HEADER + yaml.safe_dump(config, sort_keys=False, width=1 << 16)
