"""The pipeline with its real parts: a ledger on disk, the engine with the K05 pack, redaction."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import TRACES
from logwarden.detect.engine import Engine
from logwarden.detect.rulesets import load_rules
from logwarden.detect.silence import RESUMED, STOPPED, SilenceWatch, Watched
from logwarden.ledger import note
from logwarden.ledger.segments import Entry
from logwarden.ledger.sink import LedgerSink
from logwarden.ledger.tail import recent_entries
from logwarden.ledger.verify import verify_ledger
from logwarden.metrics import Metrics
from logwarden.normalize import k8s_audit
from logwarden.pipeline import Pipeline
from logwarden.records import Alert, Record
from logwarden.sources.base import Saturated

DEMO = Path(__file__).parent.parent / "demo" / "audit" / "audit2rbac-demo-full-v1beta1-2017.log"
SIGNER = note.generate("test/pipeline")


def records(path: Path, source_id: str = "audit") -> list[Record]:
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            view = k8s_audit.decode_raw(line)
            t = k8s_audit.event_time_ns(view)
            out.append(Record("k8s_audit", source_id, 0, 0, t, t, line, view))
    return out


class Collected:
    """A sink that keeps the alerts in memory (the pipeline's `Sinks` interface)."""

    def __init__(self, detected_through: int | None = None) -> None:
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()
        #: what a state file would say detection got through before this start, and the
        #: marks detection gave in this run
        self.before = detected_through
        self.marks: list[int] = []

    def start(self) -> None:
        pass

    def __call__(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def through(self, index: int) -> None:
        self.marks.append(index)

    def detected_through(self) -> int | None:
        return self.before

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


class Written(Collected):
    """A sink that appends each alert to a file as a JSON line (visible from another
    process: the detection worker's)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def __call__(self, alert: Alert) -> None:
        with self.path.open("ab") as out:
            out.write(msgspec.json.encode(alert) + b"\n")

    def stats(self) -> dict[str, Any]:
        return {
            "file": {
                "sent": 1,
                "retried": 0,
                "dead": 0,
                "pending": 0,
                "oldest_pending_age_secs": 0.0,
                "failing": False,
            }
        }


def make(
    ledger: Path, *, detected_through: int | None = None, **options: object
) -> tuple[Pipeline, Collected, Metrics]:
    rules = load_rules(["builtin"])
    engine = Engine(rules.rules, correlations=rules.correlations)
    got = Collected(detected_through)
    metrics = Metrics()
    sink = LedgerSink(ledger, SIGNER)
    return Pipeline(sink, engine, got, metrics, **options), got, metrics  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "ledger"


def stored(ledger: Path) -> list[Entry]:
    return list(recent_entries(ledger, segments=1000))


def test_batches_are_durable_then_detected_and_the_ledger_verifies(ledger: Path) -> None:
    pipeline, got, metrics = make(ledger)
    pipeline.start()
    batch = records(DEMO)
    futures = [
        pipeline.submit("audit", batch[i : i + 50], numbered=False) for i in range(0, 200, 50)
    ]
    assert [f.result(timeout=30) for f in futures] == [50, 50, 50, 50]
    pipeline.stop()
    entries = stored(ledger)
    assert [e.seq for e in entries] == list(range(1, 201))
    assert all(e.instance == "audit" for e in entries)
    assert [e.raw for e in entries] == [r.raw for r in batch[:200]]
    assert verify_ledger(ledger, keys=[SIGNER.verifier()], jobs=1).ok
    assert got.alerts, "the demo log has exec, RBAC and namespace changes by a human"
    assert 'logwarden_events_received_total{source="audit"} 200.0' in metrics.expose().decode()


def test_a_retried_batch_is_stored_once_even_across_a_restart(ledger: Path) -> None:
    batch = records(DEMO)[:100]
    pipeline, _, metrics = make(ledger)
    pipeline.start()
    assert pipeline.submit("audit", batch, numbered=False).result(timeout=30) == 100
    assert pipeline.submit("audit", batch[50:], numbered=False).result(timeout=30) == 0
    pipeline.stop()
    assert 'logwarden_events_duplicate_total{source="audit"} 50.0' in metrics.expose().decode()

    again, _, _ = make(ledger)  # a restart: what was stored is known from the ledger
    again.start()
    assert again.resume_seq("audit") == 100
    fresh = records(DEMO)[100:150]
    assert again.submit("audit", batch[:10] + fresh, numbered=False).result(timeout=30) == 50
    again.stop()
    entries = stored(ledger)
    assert [e.seq for e in entries] == list(range(1, 151))
    assert verify_ledger(ledger, keys=[SIGNER.verifier()], jobs=1).ok


def test_records_stored_but_not_detected_before_a_stop_are_detected_at_the_next_start(
    ledger: Path,
) -> None:
    batch = records(DEMO)  # 757 events, alerts from first to last
    pipeline, first, _ = make(ledger)
    pipeline.start()
    assert pipeline.submit("audit", batch, numbered=False).result(timeout=30) == len(batch)
    pipeline.stop()
    assert first.marks and first.marks[-1] == len(batch) - 1  # detection said how far it got
    assert pipeline.replay is None  # nothing said before: nothing to take up

    # a state file saying detection had got through entry 499 only (a crash after the
    # ledger stored them all): entries 500 to 756 are detected on again, before anything new
    again, got, metrics = make(ledger, detected_through=499)
    again.start()
    assert again.replay == (500, len(batch) - 1)
    again.stop()
    assert got.marks[-1] == len(batch) - 1
    assert "logwarden_events_replayed_total 257.0" in metrics.expose().decode()
    later = {a.origin.index for a in got.alerts}
    expected = {a.origin.index for a in first.alerts if a.origin.index >= 500}
    assert later == expected and expected, "the alerts of entries 500..756, and only those"
    assert all(a.origin.seq == a.origin.index + 1 for a in got.alerts)  # the stored numbers

    done, nothing, _ = make(
        ledger, detected_through=len(batch) - 1
    )  # it got through: nothing again
    done.start()
    done.stop()
    assert done.replay is None and not nothing.alerts


def test_numbered_sources_keep_their_own_numbers(ledger: Path) -> None:
    pipeline, _, _ = make(ledger)
    pipeline.start()
    batch = records(DEMO, "file")[:20]
    for i, r in enumerate(batch, 1):
        r.seq = i
    pipeline.submit("file", batch, numbered=True).result(timeout=30)
    pipeline.stop()
    assert [e.seq for e in stored(ledger)] == list(range(1, 21))


def test_no_secret_value_reaches_the_ledger_or_an_alert(ledger: Path) -> None:
    event = json.loads((TRACES / "create_secret.json").read_text().splitlines()[0])
    event["level"] = "Request"
    event["requestObject"] = {
        "kind": "Secret",
        "metadata": {"name": "example-secret"},
        "data": {"password": "aHVudGVyMg=="},
    }
    raw = json.dumps(event).encode()
    view = k8s_audit.decode_raw(raw)
    rec = Record("k8s_audit", "audit", 0, 0, 0, k8s_audit.event_time_ns(view), raw, view)
    pipeline, got, _ = make(ledger)
    pipeline.start()
    pipeline.submit("audit", [rec], numbered=False).result(timeout=30)
    pipeline.stop()
    (entry,) = stored(ledger)
    assert b"aHVudGVyMg==" not in entry.raw
    assert b"logwarden.io/redacted" in entry.raw
    for alert in got.alerts:
        assert "aHVudGVyMg==" not in json.dumps(alert.output_fields) + alert.output


def test_a_full_queue_refuses_instead_of_buffering(ledger: Path) -> None:
    pipeline, _, _ = make(ledger, queue_events=100)
    batch = records(DEMO)[:60]
    pipeline.submit("audit", batch, block=False, numbered=False)  # not started: stays queued
    with pytest.raises(Saturated) as refused:
        pipeline.submit("audit", batch, block=False, numbered=False)
    assert refused.value.full
    pipeline.start()  # the queued batch is stored; then there is room again
    pipeline.submit("audit", batch[:30], block=False, numbered=False).result(timeout=30)
    pipeline.stop()
    with pytest.raises(Saturated) as stopping:
        pipeline.submit("audit", batch, block=False, numbered=False)
    assert not stopping.value.full
    assert len(stored(ledger)) == 60  # the second submission repeated the first 30


def test_silence_fires_once_and_clears_when_records_come_back() -> None:
    now = [1000.0]
    watch = SilenceWatch({"audit": Watched("audit events", "k8s_audit", 300)}, clock=lambda: now[0])
    assert watch.check() == []  # never sent: not silent, maybe not set up yet
    watch.seen("audit")
    now[0] += 299
    assert watch.check() == []
    now[0] += 2
    (stopped,) = watch.check()
    assert stopped.rule == STOPPED and stopped.severity == "high"
    assert stopped.output.startswith("audit events stopped arriving from audit: nothing for 301s")
    now[0] += 600
    assert watch.check() == []  # one alert per silence
    watch.seen("audit")
    (resumed,) = watch.check()
    assert resumed.rule == RESUMED
    assert resumed.output == "audit events resumed arriving from audit after 901s of silence"
    assert resumed.fingerprint == stopped.fingerprint


def test_a_detection_worker_process_raises_the_same_alerts(tmp_path: Path) -> None:
    batch = records(DEMO)[:300]
    in_thread, got, _ = make(tmp_path / "a")
    in_thread.start()
    in_thread.submit("audit", batch, numbered=False).result(timeout=30)
    in_thread.stop()

    alerts_file = tmp_path / "alerts.jsonl"
    rules = load_rules(["builtin"])
    engine = Engine(rules.rules, correlations=rules.correlations)
    metrics = Metrics()
    sinks = Written(alerts_file)
    worker = Pipeline(
        LedgerSink(tmp_path / "b", SIGNER), engine, sinks, metrics, detect_worker=True
    )
    worker.start()
    assert worker.worker is not None and worker.worker.pid != os.getpid()
    worker.submit("audit", records(DEMO)[:300], numbered=False).result(timeout=30)
    worker.stop()
    assert worker.worker.exitcode == 0
    written = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    assert [(a["rule"], a["audit_id"]) for a in written] == [
        (a.rule, a.audit_id) for a in got.alerts
    ]
    exposed = metrics.expose().decode().splitlines()  # counted in the worker, reported back
    counts = Counter((a.rule, a.severity) for a in got.alerts)
    for (rule, severity), n in counts.items():
        assert (
            f'logwarden_alerts_total{{rule="{rule}",severity="{severity}"}} {float(n)}' in exposed
        )
    assert 'logwarden_notifications_sent_total{receiver="file"} 1.0' in exposed
