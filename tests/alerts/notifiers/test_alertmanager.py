"""The Alertmanager notifier against Debian's prometheus-alertmanager: alerts arrive,
are grouped by alertname, are sent on to a webhook receiver, and resolve."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from logwarden.alerts.notifiers.alertmanager import AlertmanagerNotifier
from logwarden.alerts.notifiers.base import SendError

from .notifier_helpers import NOW_NS, LocalReceiver, alert_state, free_port, notification

BINARY = "/usr/bin/prometheus-alertmanager"
T = TypeVar("T")

CONFIG = """\
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}/am
        send_resolved: true
"""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def alertmanager(tmp_path: Path, http_receiver: LocalReceiver) -> Iterator[str]:
    if shutil.which(BINARY) is None:
        pytest.skip(f"{BINARY} is missing (apt-get install prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=http_receiver.url))
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    return response.status == 200
            except OSError:
                assert process.poll() is None, log.read_text()
                return False

        wait_for("alertmanager to start", ready)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_alerts_arrive_grouped_and_resolve(alertmanager: str, http_receiver: LocalReceiver) -> None:
    am = AlertmanagerNotifier(alertmanager)
    execs = [alert_state("f1"), alert_state("f2", namespace="dev")]
    secret = alert_state("f3", "Secret read")
    for sent in (notification(*execs, id="n-1"), notification(secret, id="n-2")):
        am.send(am.render(sent), sent.id)

    alerts = get(f"{alertmanager}/api/v2/alerts")
    assert sorted(a["labels"]["fingerprint"] for a in alerts) == ["f1", "f2", "f3"]
    first = next(a for a in alerts if a["labels"]["fingerprint"] == "f1")
    assert first["status"]["state"] == "active"
    assert first["labels"]["alertname"] == "Exec into pod"
    assert first["annotations"]["summary"] == "Exec into pod: alice ran a shell in prod/web-0"
    assert first["annotations"]["count"] == "3"
    assert first["generatorURL"] == "https://logwarden.example/alerts"
    assert abs(when(first["startsAt"]).timestamp() - (NOW_NS / 1e9 - 60)) < 0.01
    groups = get(f"{alertmanager}/api/v2/alerts/groups")
    by_name = {g["labels"]["alertname"]: g for g in groups}
    assert sorted(by_name) == ["Exec into pod", "Secret read"]
    assert len(by_name["Exec into pod"]["alerts"]) == 2

    def posted(status: str) -> dict[str, Any] | None:
        for seen in http_receiver.seen:
            body = seen.json()
            if body["status"] == status and body["groupLabels"] == {"alertname": "Exec into pod"}:
                return dict(body)
        return None

    fired = wait_for("the firing group at the webhook", lambda: posted("firing"))
    assert len(fired["alerts"]) == 2

    resolved = [
        alert_state("f1", status="resolved"),
        alert_state("f2", status="resolved", namespace="dev"),
    ]
    am.send(am.render(notification(*resolved, id="n-3")), "n-3")
    am.close()
    told = wait_for("the resolved group at the webhook", lambda: posted("resolved"))
    assert {a["status"] for a in told["alerts"]} == {"resolved"}
    ends = {when(a["endsAt"]).timestamp() for a in told["alerts"]}
    assert all(abs(end - NOW_NS / 1e9) < 0.01 for end in ends)
    # Alertmanager lists open alerts only
    assert [a["labels"]["fingerprint"] for a in get(f"{alertmanager}/api/v2/alerts")] == ["f3"]


def test_a_refused_payload_is_not_retried(alertmanager: str) -> None:
    am = AlertmanagerNotifier(alertmanager)
    with pytest.raises(SendError, match="400") as caught:
        am.send(b'[{"labels": {}}]', "n-1")
    assert not caught.value.retry


def test_auth_options_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        AlertmanagerNotifier("http://am:9093", username="u", password="p", bearer_token="t")
    with pytest.raises(ValueError, match="both username and password"):
        AlertmanagerNotifier("http://am:9093", username="u")
    with pytest.raises(ValueError, match="ftp://am"):
        AlertmanagerNotifier("ftp://am")


def test_an_alert_stamped_ahead_of_the_clock_still_resolves(alertmanager: str) -> None:
    am = AlertmanagerNotifier(alertmanager)
    ahead = 120_000_000_000  # the event's clock runs two minutes ahead of logwarden's
    firing = alert_state("f9")
    firing.first_ns = firing.last_ns = NOW_NS + ahead
    am.send(am.render(notification(firing, id="n-1")), "n-1")
    assert [a["labels"]["fingerprint"] for a in get(f"{alertmanager}/api/v2/alerts")] == ["f9"]
    resolved = alert_state("f9", status="resolved")  # resolved at NOW_NS
    resolved.first_ns = resolved.last_ns = NOW_NS + ahead
    am.send(am.render(notification(resolved, id="n-2")), "n-2")
    am.close()
    assert get(f"{alertmanager}/api/v2/alerts") == []
