"""The audit webhook over real HTTPS: the service as `logwarden run` starts it, a real TLS
client with a client certificate, real captured audit events as EventList bodies."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import pytest

from logwarden.generate.pki import ensure_service_pki
from logwarden.ledger.tail import recent_entries
from logwarden.ledger.verify import verify_ledger
from service_helpers import demo_lines, event_list, running


def stored(data: Path) -> list[bytes]:
    return [e.raw for e in recent_entries(data / "ledger", segments=1000)]


def verified(data: Path) -> bool:
    from logwarden.ledger.keys import load_verifiers

    keys = load_verifiers([str(data / "ledger.key.pub")])
    return verify_ledger(data / "ledger", keys=keys, jobs=1).ok


def test_batches_from_a_client_certificate_are_stored_then_alerted(tmp_path: Path) -> None:
    lines = demo_lines()
    with running(tmp_path) as svc:
        for i in range(0, 400, 100):
            assert svc.post(event_list(lines[i : i + 100])) == (200, {"stored": 100})
        # the apiserver retries a batch it got no answer for: stored once
        assert svc.post(event_list(lines[300:400])) == (200, {"stored": 0})
        status, metrics = svc.ops("/metrics")
        assert status == 200
        assert 'logwarden_events_received_total{source="audit"} 400.0' in metrics
        assert 'logwarden_events_duplicate_total{source="audit"} 100.0' in metrics
        assert "logwarden_events_dropped_total 0.0" in metrics
        assert svc.ops("/readyz") == (200, "ready\n")
        assert svc.ops("/healthz") == (200, "ok\n")
    assert stored(svc.data) == [line.strip() for line in lines[:400]]
    assert verified(svc.data)
    rules = {a["rule"] for a in svc.alerts()}
    assert "Kubernetes Request Made By Impersonation" in rules  # system:admin as bob


def test_clients_without_the_right_certificate_are_refused_in_the_handshake(
    tmp_path: Path,
) -> None:
    body = event_list(demo_lines()[:5])
    other = ensure_service_pki(tmp_path / "other-ca", ["localhost"])
    with running(tmp_path) as svc:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            svc.post(body, context=svc.client_context(cert=False))
        stranger = svc.client_context(cert=False)
        stranger.load_cert_chain(other.client_cert, other.client_key)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            svc.post(body, context=stranger)
        assert svc.post(body)[0] == 200
    assert len(stored(svc.data)) == 5


def test_a_bearer_token_is_required_when_configured(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    source = f"    bearer_token_file: {token}\n"
    body = event_list(demo_lines()[:3])
    with running(tmp_path, source=source) as svc:
        anyone = svc.client_context(cert=False)  # token only: no client certificate asked
        status, answer = svc.post(body, context=anyone)
        assert (status, answer) == (401, {"error": "missing or wrong bearer token"})
        wrong = {"Authorization": "Bearer guess"}
        assert svc.post(body, context=anyone, headers=wrong)[0] == 401
        # nothing is said to a stranger, not even where the events go
        assert svc.post(body, context=anyone, path="/x") == (401, answer)
        right = {"Authorization": "Bearer s3cr3t-token"}
        assert svc.post(body, context=anyone, headers=right) == (200, {"stored": 3})
    assert len(stored(svc.data)) == 3


def test_oversized_malformed_and_misdirected_bodies_are_refused_and_not_stored(
    tmp_path: Path,
) -> None:
    lines = demo_lines()
    good = event_list(lines[:2])
    broken = json.loads(event_list(lines[:3]))
    del broken["items"][1]["auditID"]
    with running(tmp_path, source="    max_body_bytes: 20000\n") as svc:
        status, answer = svc.post(event_list(lines[:40]))
        assert status == 413 and "over 20000" in answer["error"]
        status, answer = svc.post(json.dumps(broken).encode())
        assert status == 400
        assert answer["error"] == (
            "not audit events: items[1]: not a Kubernetes audit event: missing auditID"
        )
        status, answer = svc.post(b'{"kind":"EventList","items":[{"auditID":')
        assert status == 400 and answer["error"].startswith("not audit events: invalid JSON")
        assert svc.post(b"[]")[0] == 400
        assert svc.post(good, method="GET")[0] == 405
        assert svc.post(good, path="/other")[0] == 404
        assert svc.post(good) == (200, {"stored": 2})
        _, metrics = svc.ops("/metrics")
        assert 'logwarden_webhook_requests_total{code="400",source="audit"} 3.0' in metrics
        assert 'logwarden_events_malformed_total{source="audit"} 2.0' in metrics
    assert stored(svc.data) == [line.strip() for line in lines[:2]]
    kept = [json.loads(line) for line in (svc.data / "rejects.jsonl").read_text().splitlines()]
    assert kept[0]["reason"] == ("items[1]: not a Kubernetes audit event: missing auditID")
    assert kept[0]["where"].startswith("audit: POST from 127.0.0.1:")
    assert json.loads(kept[0]["raw"]) == broken  # the whole refused body is kept


def test_a_number_no_float_holds_and_deep_nesting_neither_wedge_nor_crash(
    tmp_path: Path,
) -> None:
    """A Secret holding 1e999 (redacted, stored exactly), a rule reading a binding's body
    holding one, and a body nested deeper than anything can read: answered, and the
    service goes on."""
    event = json.loads(demo_lines()[0])
    huge = {
        **event,
        "auditID": "huge-1",
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "s"},
        "requestObject": {"kind": "Secret", "data": {"k": "c2VjcmV0"}, "x": 1},
    }
    body = json.dumps(huge).replace('"x": 1', '"x": 1e999').encode()
    binding = {
        **event,
        "auditID": "huge-2",
        "verb": "create",
        "objectRef": {"resource": "clusterrolebindings", "apiGroup": "rbac.authorization.k8s.io"},
        "responseStatus": {"code": 201},
        "requestObject": {"kind": "ClusterRoleBinding", "roleRef": {"name": "cluster-admin"}},
    }
    bound = json.dumps(binding).replace('"cluster-admin"}', '"cluster-admin"}, "x": 1e999')
    deep = json.dumps({**event, "auditID": "deep-1", "requestObject": "DEEP"})
    deep = deep.replace('"DEEP"', '{"a":' * 5000 + "1" + "}" * 5000)
    with running(tmp_path) as svc:
        assert svc.post(event_list([body])) == (200, {"stored": 1})
        assert svc.post(event_list([bound.encode()])) == (200, {"stored": 1})
        status, answer = svc.post(event_list([deep.encode()]))
        assert status == 400 and "nested too deeply" in answer["error"]
        assert svc.post(event_list(demo_lines()[1:3])) == (200, {"stored": 2})
        deadline = time.monotonic() + 20
        while not any("cluster-admin" in a["rule"] for a in svc.alerts()):
            assert time.monotonic() < deadline, "no alert about the binding"
            time.sleep(0.1)
        assert svc.ops("/readyz")[0] == 200
        assert svc.runtime.pipeline.worker is not None and svc.runtime.pipeline.worker.alive
    raws = stored(svc.data)
    assert b'"x":1E+999' in raws[0] and b"c2VjcmV0" not in raws[0]
    assert len(raws) == 4 and verified(svc.data)


def test_clients_that_stall_are_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection with no request head, or with half a body, is closed (408 for the
    body) instead of holding a file descriptor for good."""
    import socket

    from logwarden import _asgi, service

    monkeypatch.setattr(service, "HEAD_SECS", 1.0)
    monkeypatch.setattr(_asgi, "BODY_PART_SECS", 1.0)

    def connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        return context.wrap_socket(raw, server_hostname="localhost")

    with running(tmp_path) as svc:
        for port, context in [
            (svc.webhook_port, svc.client_context()),
            (svc.api_port, svc.client_context(cert=False)),
        ]:
            with connect(port, context) as quiet:  # nothing sent: closed
                started = time.monotonic()
                assert quiet.recv(100) == b""
                assert time.monotonic() - started < 8
        with connect(svc.webhook_port, svc.client_context()) as half:
            half.sendall(b"POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            answer = b""
            while b"no part of the body" not in answer and (chunk := half.recv(1000)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 ") and b"no part of the body" in answer
        assert svc.post(event_list(demo_lines()[:1])) == (200, {"stored": 1})
