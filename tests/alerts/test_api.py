"""The alerts API and the `logwarden alerts` command against a running service."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from service_helpers import Running, demo_lines, event_list, running


def wait_for(check: Any, what: str, secs: float = 20.0) -> Any:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alerts_cli(svc: Running, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", "alerts", *args, "--data-dir", str(svc.data)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_list_ack_resolve_and_silence_over_https_and_from_the_command_line(
    tmp_path: Path,
) -> None:
    with running(tmp_path) as svc:
        assert svc.post(event_list(demo_lines()))[0] == 200
        listed = wait_for(lambda: svc.api("GET", "/api/v1/alerts")[1], "tracked alerts")
        assert {a["status"] for a in listed} == {"firing"}
        fp = listed[0]["fingerprint"]
        assert listed[0]["labels"]["fingerprint"] == fp and listed[0]["links"]

        # the token is required, and checked
        assert svc.api("GET", "/api/v1/alerts", token="wrong")[0] == 401
        assert svc.api("GET", "/api/v1/alerts", token="")[0] == 401
        assert svc.api("GET", "/api/v1/alerts/nope")[0] == 404
        assert svc.api("DELETE", "/api/v1/alerts")[0] == 405
        assert svc.api("GET", "/api/v1/alerts?status=open")[0] == 400

        status, body = svc.api("POST", f"/api/v1/alerts/{fp}/ack", {"by": "alice"})
        assert (status, body) == (200, {"result": f"alert {fp} acknowledged by alice"})
        status, one = svc.api("GET", f"/api/v1/alerts/{fp}")
        assert (status, one["status"], one["acknowledged_by"]) == (200, "acknowledged", "alice")
        assert svc.api("POST", f"/api/v1/alerts/{fp}/ack", {"by": 3})[0] == 400

        # the command line works on the same state while the service runs
        shown = alerts_cli(svc, "list", "--status", "acknowledged")
        assert shown.returncode == 0 and fp in shown.stdout, shown.stderr
        done = alerts_cli(svc, "resolve", fp, "--by", "bob")
        assert done.returncode == 0 and done.stdout.strip() == f"alert {fp} resolved by bob"
        assert svc.api("GET", f"/api/v1/alerts/{fp}")[1]["status"] == "resolved"
        unknown = alerts_cli(svc, "ack", "0000")
        assert unknown.returncode == 2 and "no alert with fingerprint 0000" in unknown.stderr

        # silences: made, listed, refused when malformed, expired
        status, silence = svc.api(
            "POST",
            "/api/v1/silences",
            {"matchers": ['namespace="kube-system"'], "duration": "1h", "comment": "upgrade"},
        )
        assert status == 201 and silence["matchers"] == ['namespace="kube-system"']
        assert [s["id"] for s in svc.api("GET", "/api/v1/silences")[1]] == [silence["id"]]
        bad = svc.api("POST", "/api/v1/silences", {"matchers": ["a~b"], "comment": "x"})
        assert bad[0] == 400 and "a~b" in bad[1]["error"]
        for everything in ([], ['alertname=~".*"'], ['team=""'], ['team=~".*"', 'x=""']):
            wide = svc.api("POST", "/api/v1/silences", {"matchers": everything, "comment": "x"})
            assert wide[0] == 400, everything
            assert "a silence of everything is refused" in wide[1]["error"]
        wide_cli = alerts_cli(svc, "silence", 'alertname=~".*"', "--comment", "x")
        assert wide_cli.returncode == 2 and "must not match the empty string" in wide_cli.stderr
        assert svc.api("DELETE", f"/api/v1/silences/{silence['id']}")[0] == 200
        assert svc.api("DELETE", f"/api/v1/silences/{silence['id']}")[0] == 404
        made = alerts_cli(svc, "silence", 'user="alice"', "--duration", "30m", "--comment", "t")
        assert made.returncode == 0, made.stderr
        listed_cli = alerts_cli(svc, "silences", "--format", "json")
        assert made.stdout.strip() in listed_cli.stdout


def post_raw(svc: Running, path: str, body: bytes) -> tuple[int, Any]:
    """A POST to the alerts API with `body` as it is (not necessarily UTF-8)."""
    context = ssl.create_default_context(cafile=str(svc.tls / "ca.pem"))
    conn = http.client.HTTPSConnection("127.0.0.1", svc.api_port, context=context, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {svc.api_token}"}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_bodies_that_are_not_utf8_and_silences_too_long_are_refused_with_400(
    tmp_path: Path,
) -> None:
    with running(tmp_path) as svc:
        body = b'{"matchers":["namespace=\\"a\\""],"comment":"\xff"}'
        assert post_raw(svc, "/api/v1/silences", body) == (
            400,
            {"error": "body: invalid UTF-8 - at `$.comment`"},
        )
        assert post_raw(svc, "/api/v1/alerts/0000/ack", b'{"by":"\xff"}') == (
            400,
            {"error": "body: invalid UTF-8 - at `$.by`"},
        )
        status, answer = post_raw(svc, "/api/v1/alerts/0000/ack", b'{"by":"\xff"')
        assert (status, answer) == (400, {"error": "body: invalid UTF-8"})
        for duration in ("99999999999w", "9999999999999999999", "3651d", "9" * 5000):
            status, answer = svc.api(
                "POST",
                "/api/v1/silences",
                {"matchers": ['namespace="a"'], "comment": "x", "duration": duration},
            )
            assert status == 400, duration
            assert answer["error"].startswith("duration: '")
            assert answer["error"].endswith("at most 10 years (3650d)")
        status, answer = svc.api(
            "POST",
            "/api/v1/silences",
            {"matchers": ['namespace="a"'], "comment": "x", "duration": "3650d"},
        )
        assert status == 201, answer
        assert answer["ends_ns"] - answer["starts_ns"] == 3650 * 86_400 * 10**9
        assert svc.api("GET", "/api/v1/silences")[0] == 200
