"""Rejected input: kept readable by its owner only, and without Secret values."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from logwarden.redact import MASK
from logwarden.rejects import Rejects, open_file
from service_helpers import event_list, running

PASSWORD = "hunter2-TOPSECRET"
#: a Secret-create audit event (RequestResponse level), as kube-apiserver posts it
SECRET_EVENT = json.dumps(
    {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "5b0e6a3c-0000-4000-8000-000000000001",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/secrets",
        "verb": "create",
        "user": {"username": "alice"},
        "objectRef": {
            "resource": "secrets",
            "namespace": "default",
            "name": "s",
            "apiVersion": "v1",
        },
        "requestObject": {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s"},
            "stringData": {"password": PASSWORD},
        },
        "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
        "stageTimestamp": "2024-05-01T10:00:00.100000Z",
    }
).encode()
#: an item the webhook refuses (no stage): the whole batch is rejected
BAD_ITEM = b'{"kind":"Event","auditID":"x"}'


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain `open` creates files 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_service_keeps_a_rejected_batch_owner_only_and_without_secret_values(
    tmp_path: Path, umask_022: None
) -> None:
    with running(tmp_path) as svc:
        status, answer = svc.post(event_list([SECRET_EVENT, BAD_ITEM]))
        assert status == 400, answer
        kept = svc.data / "rejects.jsonl"
        assert mode(kept) == 0o600
        assert PASSWORD.encode() not in kept.read_bytes()
        (line,) = [json.loads(x) for x in kept.read_bytes().splitlines()]
    body = json.loads(line["raw"])
    event, bad = body["items"]
    assert event["requestObject"]["stringData"] == {"password": MASK}
    assert event["annotations"]["logwarden.io/redacted"] == "requestObject.stringData"
    assert bad == json.loads(BAD_ITEM)  # what was wrong is kept as it was


def test_the_service_s_rejects_lose_the_configured_extra_paths_too(tmp_path: Path) -> None:
    token = "ghp_extra-path-SECRET"
    event = json.loads(SECRET_EVENT)
    event["requestObject"] = {"kind": "Pod", "spec": {"token": token}}
    with running(tmp_path, extra="redact: {extra_paths: [requestObject.spec.token]}\n") as svc:
        status, answer = svc.post(event_list([json.dumps(event).encode(), BAD_ITEM]))
        assert status == 400, answer
        kept = (svc.data / "rejects.jsonl").read_bytes()
    assert token.encode() not in kept
    (line,) = [json.loads(x) for x in kept.splitlines()]
    first = json.loads(line["raw"])["items"][0]
    assert first["requestObject"]["spec"]["token"] == MASK
    assert first["annotations"]["logwarden.io/redacted"] == "requestObject.spec.token"


def test_logwarden_detect_keeps_rejects_owner_only_and_without_secret_values(
    tmp_path: Path, umask_022: None
) -> None:
    log = tmp_path / "audit.log"
    event = json.loads(SECRET_EVENT)
    del event["stage"]  # refused: the line is rejected, Secret and all
    log.write_text(json.dumps(event) + "\n")
    kept = tmp_path / "rejects.jsonl"
    kept.write_bytes(b"old\n")
    kept.chmod(0o644)  # a file left by an earlier run is narrowed too
    done = subprocess.run(
        [sys.executable, "-m", "logwarden", "detect", "--rejects", str(kept), str(log)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert mode(kept) == 0o600
    assert PASSWORD.encode() not in kept.read_bytes()
    (line,) = [json.loads(x) for x in kept.read_bytes().splitlines()]
    assert json.loads(line["raw"])["requestObject"]["stringData"] == {"password": MASK}


def test_open_file_creates_and_narrows_to_0600(tmp_path: Path, umask_022: None) -> None:
    new = tmp_path / "new.jsonl"
    with open_file(new, append=True) as fh:
        fh.write(b"a\n")
    assert mode(new) == 0o600
    new.chmod(0o644)
    with open_file(new, append=True) as fh:
        fh.write(b"b\n")
    assert mode(new) == 0o600
    assert new.read_bytes() == b"a\nb\n"
    with open_file(new) as fh:  # truncated
        fh.write(b"c\n")
    assert new.read_bytes() == b"c\n"


def test_every_source_s_rejects_lose_secret_values_and_other_bytes_are_kept() -> None:
    keep = io.BytesIO()
    rejects = Rejects(keep=keep)
    rejects.report("a:1", "bad", SECRET_EVENT.replace(b'"alice"', b'"\xff"'))  # not UTF-8
    rejects.report("a:2", "bad", b"not json " + PASSWORD.encode())
    rejects.report("a:3", "bad", b'{"kind":"ConfigMap","data":{"k":"v"}}')
    first, second, third = [json.loads(x) for x in keep.getvalue().splitlines()]
    raw = base64.b64decode(first["raw_b64"])
    assert PASSWORD.encode() not in raw
    assert b'"username":"\xff"' in raw  # the invalid byte that made it a reject is kept
    assert second["raw"] == "not json " + PASSWORD  # bytes that are no JSON: as they are
    assert third["raw"] == '{"kind":"ConfigMap","data":{"k":"v"}}'
    assert rejects.first[0].raw_b64 == first["raw_b64"]  # what is echoed is masked too
