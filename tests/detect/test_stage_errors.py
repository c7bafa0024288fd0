"""A record the rules fail on is logged and skipped; detection goes on with the next."""

from __future__ import annotations

import json
import logging

import pytest

from logwarden.detect.engine import Engine
from logwarden.detect.ir import Cmp, Field
from logwarden.detect.rule import Rule
from logwarden.detect.stage import DetectStage
from logwarden.normalize import k8s_audit
from logwarden.records import Alert, Record


def _name(record: Record) -> str:
    if record.view.auditID == "boom":
        raise ValueError("a value no rule was written for")
    return str(record.view.auditID)


def _record(seq: int, audit_id: str) -> Record:
    raw = json.dumps(
        {
            "kind": "Event",
            "auditID": audit_id,
            "stage": "ResponseComplete",
            "verb": "get",
            "stageTimestamp": "2024-05-17T08:00:00.000000Z",
        }
    ).encode()
    view = k8s_audit.decode_raw(raw)
    return Record("k8s_audit", "audit.log", seq, seq, 0, 0, raw, view, None, 40 + seq)


def test_a_record_the_rules_fail_on_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    field = Field("name", _name)
    rule = Rule(
        "Named",
        "sigma",
        "k8s_audit",
        "Warning",
        "medium",
        Cmp(field, "exists"),
        lambda r: ("named", {}),
    )
    alerts: list[Alert] = []
    stage = DetectStage(Engine([rule]), alerts.append)
    records = [_record(i, audit_id) for i, audit_id in enumerate(["a", "boom", "c"], start=1)]
    with caplog.at_level(logging.ERROR, logger="logwarden.detect"):
        stage.records(records)
    assert stage.errors == 1
    assert [a.origin.seq for a in alerts] == [1, 3]
    (message,) = [r.getMessage() for r in caplog.records]
    assert "audit.log:2 (ledger entry 42)" in message and "no rule was written for" in message
