"""Every notifier end to end in `logwarden run`: real audit events in over HTTPS, routed
and escalated alerts out to Debian's Alertmanager, an SMTP server and HTTPS receivers
playing PagerDuty, Slack, a Standard Webhooks consumer and a CloudEvents consumer; an
acknowledgement through the API reaches PagerDuty."""

from __future__ import annotations

import base64
import hmac
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service_helpers import all_demo_lines, event_list, running

from .notifier_helpers import Answer, LocalReceiver, Seen
from .test_alertmanager import alertmanager  # noqa: F401 - the fixture
from .test_email import Smtp, smtp_server  # noqa: F401 - the fixture

RECEIVERS = ("am", "pd", "slack", "sw", "ce", "mail", "file")
SECRET = base64.b64encode(b"logwarden-test-secret-key-32byte").decode()


def wait_for(what: str, probe: Callable[[], Any], secs: float = 30.0) -> Any:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def signed(seen: Seen) -> Answer:
    """A Standard Webhooks consumer: 401 unless the signature is right."""
    msg_id, stamp = seen.headers["webhook-id"], seen.headers["webhook-timestamp"]
    mac = hmac.new(base64.b64decode(SECRET), f"{msg_id}.{stamp}.".encode() + seen.body, "sha256")
    good = f"v1,{base64.b64encode(mac.digest()).decode()}"
    return Answer() if good in seen.headers["webhook-signature"].split() else Answer(401)


def test_routes_escalation_and_all_six_notifiers(
    tmp_path: Path,
    alertmanager: str,  # noqa: F811 - the fixture
    smtp_server: Smtp,  # noqa: F811
) -> None:
    hooks = {name: LocalReceiver(tmp_path / f"pki-{name}") for name in ("pd", "slack", "sw", "ce")}
    hooks["sw"].check = signed
    hooks["pd"].check = lambda seen: Answer(202, b'{"status":"success"}')
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pd.key").write_text("R0UTINGKEY0000000000000000000000\n")
    (secrets / "slack.url").write_text(f"{hooks['slack'].url}/services/T0/B0/XXXX\n")
    (secrets / "sw.secret").write_text(f"whsec_{SECRET}\n")
    (secrets / "smtp.password").write_text("s3cret\n")
    receivers = f"""\
  am: {{type: alertmanager, url: "{alertmanager}"}}
  pd:
    type: pagerduty
    routing_key_file: {secrets / "pd.key"}
    url: {hooks["pd"].url}/v2/enqueue
    ca_file: {hooks["pd"].ca}
  slack: {{type: slack, url_file: {secrets / "slack.url"}, ca_file: {hooks["slack"].ca}}}
  sw:
    type: webhook
    url: {hooks["sw"].url}/hook
    secret_file: {secrets / "sw.secret"}
    ca_file: {hooks["sw"].ca}
  ce: {{type: cloudevents, url: {hooks["ce"].url}/events, ca_file: {hooks["ce"].ca}}}
  mail:
    type: email
    host: 127.0.0.1
    port: {smtp_server.port}
    from_address: logwarden@example.org
    to: [oncall@example.org]
    username: alerts
    password_file: {secrets / "smtp.password"}
    ca_file: {smtp_server.ca}
"""
    alerts = """\
  route:
    receiver: file
    group_by: [alertname]
    routes:
      - {receiver: file, continue: true}
      - {receiver: am, continue: true}
      - {receiver: sw, continue: true}
      - {receiver: ce, continue: true}
      - {receiver: mail, matchers: ['severity=~"critical|high"'], continue: true}
      - matchers: ['alertname="Kubernetes Binding To cluster-admin"']
        receiver: slack
        escalation: page
  escalations:
    page:
      levels:
        - {receivers: [slack], timeout: 1s}
        - {receivers: [pd], timeout: 1h}
"""
    try:
        with running(tmp_path, receivers=receivers, alerts=alerts) as svc:
            assert svc.post(event_list(all_demo_lines()))[0] == 200
            rules = wait_for("alerts in the file", lambda: {a["rule"] for a in svc.alerts()})

            # Alertmanager got the alerts, grouped by alertname as it is configured to
            am = wait_for("alertmanager", lambda: _get(f"{alertmanager}/api/v2/alerts"))
            assert {a["labels"]["alertname"] for a in am} <= rules
            # the Standard Webhooks consumer accepted every signed post
            posts = wait_for("signed posts", lambda: hooks["sw"].seen)
            assert all(signed(s).status == 200 for s in posts)
            # CloudEvents 1.0 in structured mode
            event = wait_for("a cloudevent", lambda: hooks["ce"].seen)[0]
            assert event.headers["Content-Type"].startswith("application/cloudevents+json")
            body = event.json()
            assert body["specversion"] == "1.0" and body["source"] == "logwarden"
            # email, for the severe ones only
            wait_for("email", lambda: smtp_server.inbox.messages)
            # escalation: Slack first, then PagerDuty after the 1 s level timed out
            wait_for("slack", lambda: hooks["slack"].seen)
            trigger = wait_for("pagerduty", lambda: hooks["pd"].seen)[0].json()
            assert trigger["event_action"] == "trigger"
            fingerprint = trigger["dedup_key"]

            status, answer = svc.api("POST", f"/api/v1/alerts/{fingerprint}/ack", {"by": "sre"})
            assert status == 200, answer
            actions = wait_for(
                "the acknowledgement at PagerDuty",
                lambda: [s.json()["event_action"] for s in hooks["pd"].seen][1:],
            )
            assert actions == ["acknowledge"]
            assert [s.json()["dedup_key"] for s in hooks["pd"].seen] == [fingerprint] * 2

            def counted() -> bool:  # the worker reports its figures every half second
                _, metrics = svc.ops("/metrics")
                sent = [f'logwarden_notifications_sent_total{{receiver="{r}"}}' for r in RECEIVERS]
                pending = 'logwarden_outbox_pending{receiver="pd"} 0.0'
                return all(s in metrics for s in sent) and pending in metrics

            wait_for("every receiver's figures on /metrics", counted)
    finally:
        for hook in hooks.values():
            hook.close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)
