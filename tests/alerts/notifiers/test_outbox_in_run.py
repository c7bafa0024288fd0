"""A receiver that is down while logwarden raises alerts, across a restart of logwarden,
gets every notification exactly once when it is back."""

from __future__ import annotations

import time
from pathlib import Path

from logwarden.alerts.stage import RECEIVER_FAILING
from logwarden.generate.pki import ensure_service_pki
from service_helpers import all_demo_lines, event_list, running

from .notifier_helpers import Answer, LocalReceiver, free_port


def test_a_receiver_down_through_a_restart_gets_every_notification_once(tmp_path: Path) -> None:
    port = free_port()
    pki = tmp_path / "pki-hook"
    ca = ensure_service_pki(pki, ["127.0.0.1"]).ca
    receivers = f"  hook: {{type: webhook, url: 'https://127.0.0.1:{port}/hook', ca_file: {ca}}}\n"

    with running(tmp_path, receivers=receivers) as svc:  # the receiver is down throughout
        assert svc.post(event_list(all_demo_lines()))[0] == 200
        deadline = time.monotonic() + 30
        while 'logwarden_outbox_pending{receiver="hook"} 0.0' in svc.ops("/metrics")[1] or (
            "logwarden_outbox_pending" not in svc.ops("/metrics")[1]
        ):
            assert time.monotonic() < deadline, "nothing was queued for the receiver"
            time.sleep(0.2)
        time.sleep(1.0)  # let the rest of the alerts be routed
    made = {a["notification_id"] for a in svc.alerts()}
    assert len(made) > 5
    expected = {i.replace("/file/", "/hook/") for i in made}

    receiver = LocalReceiver(pki, port=port)  # back, on the same address
    try:
        with running(tmp_path, receivers=receivers) as again:
            deadline = time.monotonic() + 60
            while {s.headers["webhook-id"] for s in receiver.seen} != expected:
                assert time.monotonic() < deadline, (
                    f"{len(receiver.seen)} of {len(expected)} notifications arrived"
                )
                time.sleep(0.2)
            while 'logwarden_outbox_pending{receiver="hook"} 0.0' not in again.ops("/metrics")[1]:
                assert time.monotonic() < deadline, "the outbox did not empty"
                time.sleep(0.2)
        ids = [s.headers["webhook-id"] for s in receiver.seen]
        assert len(ids) == len(set(ids)) == len(expected)  # each exactly once
    finally:
        receiver.close()


def test_a_receiver_that_refuses_raises_an_alert_of_its_own(tmp_path: Path) -> None:
    receiver = LocalReceiver(tmp_path / "pki-hook")
    receiver.check = lambda seen: Answer(400, b"no such hook")
    receivers = f"  hook: {{type: webhook, url: '{receiver.url}/hook', ca_file: {receiver.ca}}}\n"
    try:
        with running(tmp_path, receivers=receivers) as svc:
            assert svc.post(event_list(all_demo_lines()[:50]))[0] == 200
            deadline = time.monotonic() + 30
            while not [a for a in svc.alerts() if a["rule"] == RECEIVER_FAILING]:
                assert time.monotonic() < deadline, "no alert about the receiver"
                time.sleep(0.2)
            (failing,) = [a for a in svc.alerts() if a["rule"] == RECEIVER_FAILING]
            assert failing["labels"]["receiver"] == "hook" and failing["severity"] == "high"
            assert "400" in failing["output"]
            # the worker reports delivery figures every half second: the alert can come first
            failed = 'logwarden_notifications_failed_total{receiver="hook"}'
            while failed not in svc.ops("/metrics")[1]:
                assert time.monotonic() < deadline, f"no {failed} in the metrics"
                time.sleep(0.2)
    finally:
        receiver.close()
