"""Live mode through the official kubernetes client against a local HTTPS API server.

The server is real (TLS with a CA and server certificate made here with `cryptography`,
bearer-token checked) and answers from API responses kept in tests/fixtures/posture/live/
(the exact shape of the Kubernetes API's list responses). Nothing in the client is
mocked: logwarden loads a kubeconfig that points at the server. Every request is kept,
so the tests also prove that the scan only reads (GET).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import FIXTURES
from logwarden.posture import Live, scan

LIVE = FIXTURES / "posture" / "live"
TOKEN = "test-token-not-a-secret"
ROUTES = {
    "/api/v1/nodes": "nodes",
    "/api/v1/namespaces/kube-system/pods": "kube-system-pods",
    "/apis/apps/v1/daemonsets": "daemonsets",
    "/apis/apps/v1/deployments": "deployments",
    "/apis/apps/v1/statefulsets": "statefulsets",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles": "clusterroles",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": "clusterrolebindings",
    "/apis/rbac.authorization.k8s.io/v1/roles": "roles",
    "/apis/rbac.authorization.k8s.io/v1/rolebindings": "rolebindings",
    "/apis/networking.k8s.io/v1/ingresses": "ingresses",
    "/api/v1/configmaps": "configmaps",
}


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0] if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256())


@dataclass
class ApiServer:
    url: str
    ca: Path
    seen: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    scenario: str = "kubeadm"
    forbidden: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("apiserver")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("logwarden-test-ca", ca_key, None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("127.0.0.1", key, (ca.subject, ca_key))
    (tmp / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    state = ApiServer(url="", ca=tmp / "ca.crt")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str) -> None:
            self._answer(
                code,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": reason,
                    "code": code,
                },
            )

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            state.seen.append(("GET", url.path, parse_qs(url.query)))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._status(401, "Unauthorized")
            elif url.path in state.forbidden:
                self._status(403, "Forbidden")
            elif url.path in ROUTES:
                self._answer(
                    200,
                    json.loads((LIVE / state.scenario / f"{ROUTES[url.path]}.json").read_text()),
                )
            else:
                self._status(404, "NotFound")

        def _refuse(self) -> None:
            state.seen.append((self.command, self.path, {}))
            self._status(405, "MethodNotAllowed")

        do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "server.crt", tmp / "server.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(tmp_path: Path, server: ApiServer) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "test",
                        "cluster": {"server": server.url, "certificate-authority": str(server.ca)},
                    }
                ],
                "users": [{"name": "reader", "user": {"token": TOKEN}}],
                "contexts": [{"name": "lab", "context": {"cluster": "test", "user": "reader"}}],
                "current-context": "lab",
            }
        )
    )
    return path


def live_scan(tmp_path: Path, server: ApiServer, scenario: str, paths: list[str] | None = None):  # type: ignore[no-untyped-def]
    server.scenario = scenario
    server.seen.clear()
    return scan(paths or [], live=Live(str(kubeconfig(tmp_path, server)), None))


def test_self_managed_cluster_apiserver_flags_agents_rbac_and_ingress(
    tmp_path: Path, apiserver: ApiServer
) -> None:
    result = live_scan(tmp_path, apiserver, "kubeadm")
    assert result.inventory.rejects.count == 0
    assert result.inventory.live is not None and result.inventory.live.context == "lab"
    assert result.inventory.live.control_plane_visible  # its kube-apiserver pod was listed
    got = {(f.id, f.object, f.severity) for f in result.findings}
    assert got == {
        ("LW-AUDIT-001", "Pod/kube-system/kube-apiserver-cp-1", "high"),
        ("LW-EVENTS-002", "Pod/kube-system/kube-apiserver-cp-1", "medium"),  # --event-ttl=30m
        ("LW-SHIP-004", "DaemonSet/logging/fluent-bit", "high"),  # 2 of 3 ready
        ("LW-EVENTS-003", "ClusterRoleBinding/cleaner", "high"),
        ("LW-DISCARD-003", "ConfigMap/ingress-nginx/ingress-nginx-controller", "high"),
        ("LW-DISCARD-001", "ConfigMap/ingress-nginx/ingress-nginx-controller", "high"),
        ("LW-MON-001", "cluster lab", "low"),
    }
    assert all(f.file is None and f.line is None for f in result.findings)
    ship = next(f for f in result.findings if f.id == "LW-SHIP-004")
    assert (
        ship.message
        == "DaemonSet/logging/fluent-bit: 2 of 3 agent pods ready (3 schedulable nodes)"
    )
    # read-only: every request was a GET, and the ConfigMaps were selected by label
    assert {m for m, _, _ in apiserver.seen} == {"GET"}
    cms = next(q for _, p, q in apiserver.seen if p == "/api/v1/configmaps")
    assert cms["labelSelector"][0].startswith("app.kubernetes.io/name in (ingress-nginx,")


def test_managed_cluster_needs_cloud_config_instead_of_failing(
    tmp_path: Path, apiserver: ApiServer
) -> None:
    result = live_scan(tmp_path, apiserver, "eks")
    got = {(f.id, f.severity) for f in result.findings}
    # no kube-apiserver is visible on EKS: no false "audit off", a "needs cloud config" note
    assert ("LW-CLOUD-004", "info") in got
    assert not [f for f in result.findings if f.group == "audit-logging"]
    assert ("LW-SHIP-001", "high") in got  # the live cluster runs no log agent
    assert result.inventory.live is not None and result.inventory.live.provider == "eks"
    assert not result.inventory.live.control_plane_visible
    (needs,) = [f for f in result.findings if f.id == "LW-CLOUD-004"]
    assert "managed EKS cluster" in needs.message
    # with the cloud's own description in the input, the verdict comes from it instead
    eks_json = str(FIXTURES / "posture" / "manifests" / "cloud" / "eks.json")
    with_cloud = live_scan(tmp_path, apiserver, "eks", [eks_json])
    ids = {f.id for f in with_cloud.findings}
    assert "LW-CLOUD-004" not in ids and "LW-CLOUD-001" in ids


def test_forbidden_calls_are_counted_and_the_scan_goes_on(
    tmp_path: Path, apiserver: ApiServer
) -> None:
    apiserver.forbidden = {"/apis/rbac.authorization.k8s.io/v1/clusterroles"}
    try:
        result = live_scan(tmp_path, apiserver, "kubeadm")
    finally:
        apiserver.forbidden = set()
    assert result.inventory.rejects.count == 1
    assert result.inventory.rejects.first[0].where == "live: clusterroles"
    assert result.inventory.rejects.first[0].reason.startswith("403")
    ids = {f.id for f in result.findings}
    assert "LW-EVENTS-003" not in ids  # its ClusterRole could not be read ...
    assert {"LW-AUDIT-001", "LW-SHIP-004"} <= ids  # ... everything else still is
