"""The audit webhook kubeconfig, read by the clients that read kubeconfigs for real.

The official Kubernetes Python client loads it and must see the URL, CA, client
certificate and key or token that went in; kubectl (client-go, the library the
kube-apiserver's audit webhook is built on) posts through it to a real HTTPS server that
requires the client certificate and the token. Bad input is refused with a message that
names the option, the file and what is wrong.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from generate_helpers import Pki, audit_receiver, make_pki
from kubernetes import client, config
from kubernetes.config.kube_config import KubeConfigLoader

from logwarden.errors import UsageError
from logwarden.generate import WebhookCredentials, webhook_kubeconfig

URL = "https://logwarden.example:8443/audit"
TOKEN = "lw-test-token.0123456789abcdef"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def loaded(text: str, tmp_path: Path) -> client.Configuration:
    """The client configuration the Kubernetes Python client makes of the kubeconfig."""
    cfg = client.Configuration()
    loader = KubeConfigLoader(
        config_dict=yaml.safe_load(text),
        config_base_path=str(tmp_path),
        temp_file_path=str(tmp_path),
    )
    loader.load_and_set(cfg)
    return cfg


def test_client_certificate_and_token_load_with_the_kubernetes_client(
    pki: Pki, tmp_path: Path
) -> None:
    creds = WebhookCredentials(
        ca=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key, token_file=pki.token
    )
    cfg = loaded(webhook_kubeconfig(URL, creds), tmp_path)
    assert cfg.host == URL
    assert Path(cfg.ssl_ca_cert).read_bytes() == pki.ca.read_bytes()
    assert Path(cfg.cert_file).read_bytes() == pki.client_cert.read_bytes()
    assert Path(cfg.key_file).read_bytes() == pki.client_key.read_bytes()
    assert cfg.api_key["BearerToken"] == f"Bearer {TOKEN}"
    assert cfg.verify_ssl is True


def test_token_only_and_no_ca(pki: Pki, tmp_path: Path) -> None:
    text = webhook_kubeconfig(URL, WebhookCredentials(token_file=pki.token))
    data = yaml.safe_load(text)
    assert data["current-context"] == "logwarden"
    (user,) = data["users"]
    assert user["user"] == {"token": TOKEN}
    (cluster,) = data["clusters"]
    assert cluster["cluster"] == {"server": URL}  # the system's trust store verifies
    cfg = loaded(text, tmp_path)
    assert cfg.host == URL and cfg.cert_file is None and cfg.ssl_ca_cert is None
    assert cfg.api_key["BearerToken"] == f"Bearer {TOKEN}"


def test_client_certificate_only(pki: Pki, tmp_path: Path) -> None:
    creds = WebhookCredentials(ca=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key)
    data = yaml.safe_load(webhook_kubeconfig(URL, creds))
    (user,) = data["users"]
    assert set(user["user"]) == {"client-certificate-data", "client-key-data"}
    assert base64.b64decode(user["user"]["client-key-data"]) == pki.client_key.read_bytes()
    cfg = loaded(webhook_kubeconfig(URL, creds), tmp_path)
    assert "BearerToken" not in cfg.api_key


def test_load_kube_config_reads_the_file(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "webhook.kubeconfig"
    creds = WebhookCredentials(
        ca=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key, token_file=pki.token
    )
    path.write_text(webhook_kubeconfig(URL, creds))
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(path), client_configuration=cfg, temp_file_path=str(tmp_path)
    )
    assert cfg.host == URL
    assert Path(cfg.cert_file).read_bytes() == pki.client_cert.read_bytes()
    assert cfg.api_key["BearerToken"] == f"Bearer {TOKEN}"


# --- client-go, over a real TLS connection -------------------------------------------------

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (client-go) not installed")
EVENTS = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}


def kubectl_post(kubeconfig: Path, url: str, body: Path) -> subprocess.CompletedProcess[bytes]:
    """POST `body` through the kubeconfig as client-go does (to the URL's path)."""
    assert KUBECTL is not None
    return subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "create",
            "--raw",
            urlsplit(url).path,
            "-f",
            str(body),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def body(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(EVENTS))
    yield path


@needs_kubectl
def test_client_go_posts_with_the_client_certificate_and_token(
    pki: Pki, tmp_path: Path, body: Path
) -> None:
    kubeconfig = tmp_path / "webhook.kubeconfig"
    with audit_receiver(pki, token=TOKEN) as server:
        creds = WebhookCredentials(
            ca=pki.ca,
            client_cert=pki.client_cert,
            client_key=pki.client_key,
            token_file=pki.token,
        )
        kubeconfig.write_text(webhook_kubeconfig(server.url, creds))
        done = kubectl_post(kubeconfig, server.url, body)
        assert done.returncode == 0, done.stderr
    (got,) = server.received
    assert got.path == "/audit"
    assert json.loads(got.body) == EVENTS
    assert got.authorization == f"Bearer {TOKEN}"
    assert got.client_cn == "kube-apiserver-audit"


@needs_kubectl
def test_client_go_verifies_the_server_with_the_given_ca(
    pki: Pki, tmp_path: Path, body: Path
) -> None:
    stranger = make_pki(tmp_path / "other")
    kubeconfig = tmp_path / "webhook.kubeconfig"
    with audit_receiver(pki) as server:
        creds = WebhookCredentials(
            ca=stranger.ca, client_cert=pki.client_cert, client_key=pki.client_key
        )
        kubeconfig.write_text(webhook_kubeconfig(server.url, creds))
        done = kubectl_post(kubeconfig, server.url, body)
    assert done.returncode != 0
    assert b"certificate" in done.stderr
    assert server.received == []


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://logwarden.example/audit", "must start with https://"),
        ("logwarden.example:8443/audit", "must start with https://"),
        ("https:///audit", "no host name"),
        ("https://user:pw@logwarden.example/audit", "user and password do not belong"),
        ("https://logwarden.example:99999/audit", "not a valid URL"),
        ("https://logwarden.example/audit#x", "fragment"),
        # Python's urlsplit drops tabs and newlines and strips leading blanks; client-go
        # refuses them ("net/url: invalid control character in URL"): the apiserver would
        # never send an event
        ("https://logwarden.example/au\ndit", "control characters"),
        ("https://logwarden.example/audit\t", "control characters"),
        (" https://logwarden.example/audit", "control characters"),
        ("https://logwarden .example/audit", "control characters"),
    ],
)
def test_bad_urls_are_refused(pki: Pki, url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        webhook_kubeconfig(url, WebhookCredentials(token_file=pki.token))
    assert str(err.value).startswith("--url ")


def refused(creds: WebhookCredentials) -> str:
    with pytest.raises(UsageError) as err:
        webhook_kubeconfig(URL, creds)
    return str(err.value)


def test_no_credentials_are_refused(pki: Pki) -> None:
    message = refused(WebhookCredentials(ca=pki.ca))
    assert message.startswith("no credentials: give --client-cert and --client-key, --token-file")


def test_a_certificate_without_its_key_and_a_key_without_its_certificate(pki: Pki) -> None:
    assert refused(WebhookCredentials(client_cert=pki.client_cert)).startswith(
        "--client-cert needs --client-key"
    )
    assert refused(WebhookCredentials(client_key=pki.client_key, token_file=pki.token)).startswith(
        "--client-key needs --client-cert"
    )


def test_a_ca_that_is_not_pem_is_refused(pki: Pki, tmp_path: Path) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(_der_of(pki.ca))
    message = refused(WebhookCredentials(ca=der, token_file=pki.token))
    assert message.startswith(f"--ca {der}: not a PEM certificate")
    assert "no PEM block" in message
    text = tmp_path / "notes.txt"
    text.write_text("this is not a certificate\n")
    assert refused(WebhookCredentials(ca=text, token_file=pki.token)).startswith(
        f"--ca {text}: not a PEM certificate"
    )
    key = refused(WebhookCredentials(ca=pki.client_key, token_file=pki.token))
    assert key == f"--ca {pki.client_key}: holds a private key; give a file with certificates only"
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert refused(WebhookCredentials(ca=broken, token_file=pki.token)).startswith(
        f"--ca {broken}: a certificate in it cannot be read"
    )


def _der_of(pem_file: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def test_missing_files_are_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert refused(WebhookCredentials(ca=missing, token_file=pki.token)) == (
        f"--ca {missing}: cannot read: No such file or directory"
    )
    assert refused(WebhookCredentials(token_file=missing)).startswith(f"--token-file {missing}:")


def test_bad_client_keys_are_refused(pki: Pki) -> None:
    encrypted = refused(
        WebhookCredentials(client_cert=pki.client_cert, client_key=pki.encrypted_key)
    )
    assert encrypted.startswith(f"--client-key {pki.encrypted_key}: the key is encrypted")
    other = refused(WebhookCredentials(client_cert=pki.client_cert, client_key=pki.other_key))
    assert other.startswith(f"--client-key {pki.other_key}: does not belong to the certificate")
    swapped = refused(WebhookCredentials(client_cert=pki.client_cert, client_key=pki.client_cert))
    assert swapped.startswith(f"--client-key {pki.client_cert}: not a PEM private key")
    not_cert = refused(WebhookCredentials(client_cert=pki.client_key, client_key=pki.client_key))
    assert not_cert.startswith(f"--client-cert {pki.client_key}: holds a private key")


def test_an_expired_client_certificate_is_refused(pki: Pki) -> None:
    message = refused(WebhookCredentials(client_cert=pki.expired_cert, client_key=pki.client_key))
    assert message.startswith(f"--client-cert {pki.expired_cert}: expired on ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n  \n", "the file is empty"),
        (b"one\ntwo\n", "a bearer token is one line"),
        (b"Bearer abc\n", "a bearer token is one line"),
        ("jeton\u00e9".encode(), "not an ASCII token"),
    ],
)
def test_bad_token_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    assert refused(WebhookCredentials(token_file=path)).startswith(
        f"--token-file {path}: {message}"
    )
