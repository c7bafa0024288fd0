"""The seed's hackme app end to end: Debian's nginx with the app's configuration, its
stdout and stderr written in CRI format under a /var/log/pods layout (the test plays the
container runtime), probed like an attacker; logwarden, following those logs, raises the
web alerts. With the seed's original configuration (logs to /dev/null) the same probe
leaves nothing to follow, and `logwarden scan` is what reports that."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logwarden.cli import main
from service_helpers import free_port, running

HACKME = Path(__file__).resolve().parents[1] / "fixtures" / "hackme"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
POD = "web_hackme-app_5b1f3c2e-9d4a-4f6e-8a7b-1c2d3e4f5a6b"


def nginx_conf(tmp: Path, port: int, *, fixed: bool) -> Path:
    """The seed's nginx.conf and default.conf, made to run unprivileged in `tmp`; `fixed`
    turns the logs on (stdout and stderr, as k8s/fixed does), else they stay /dev/null."""
    main_conf = (HACKME / "nginx" / "nginx.conf").read_text()
    server = (HACKME / "nginx" / "default.conf").read_text()
    html = tmp / "html"
    html.mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text("<h1>hackme</h1>\n")
    (html / "40x.html").write_text("not here\n")
    server = server.replace("listen       80;", f"listen       127.0.0.1:{port};")
    server = server.replace("/usr/share/nginx/html", str(html))
    main_conf = main_conf.replace("/var/run/nginx.pid", str(tmp / "nginx.pid"))
    main_conf = main_conf.replace("include /etc/nginx/conf.d/*.conf;", f"include {tmp}/*.site;")
    main_conf = main_conf.replace("worker_processes  auto;", "worker_processes  1;")
    temp = f"client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; "
    temp += f"fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;"
    main_conf = main_conf.replace("sendfile           on;", f"sendfile           on;\n    {temp}")
    if fixed:
        for conf in ("main", "server"):
            text = main_conf if conf == "main" else server
            text = text.replace("access_log   /dev/null;", "access_log   /dev/stdout main;")
            text = text.replace("access_log  /dev/null  main;", "access_log  /dev/stdout  main;")
            text = text.replace("error_log    /dev/null;", "error_log    /dev/stderr;")
            text = text.replace("error_log  /dev/null  notice;", "error_log  /dev/stderr  notice;")
            if conf == "main":
                main_conf = text
            else:
                server = text
    (tmp / "default.site").write_text(server)
    path = tmp / "nginx.conf"
    path.write_text(main_conf)
    return path


class Runtime(threading.Thread):
    """The container runtime's part: each line nginx writes becomes a CRI log line."""

    def __init__(self, stream: object, log: Path, name: str) -> None:
        super().__init__(daemon=True)
        self.stream, self.log, self.name_ = stream, log, name

    def run(self) -> None:
        with self.log.open("ab", buffering=0) as out:
            for line in iter(self.stream.readline, b""):  # type: ignore[attr-defined]
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                out.write(f"{now} {self.name_} F ".encode() + line.rstrip(b"\n") + b"\n")


@contextmanager
def hackme(tmp: Path, pods: Path, *, fixed: bool) -> Iterator[int]:
    port = free_port()
    conf = nginx_conf(tmp, port, fixed=fixed)
    log = pods / POD / "hackme" / "0.log"
    log.parent.mkdir(parents=True)
    log.touch()
    # as root, nginx's workers would run as nobody, who cannot read the test's directory
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp), "-e", "/dev/stderr", "-g", directives],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    copiers = [Runtime(proc.stdout, log, "stdout"), Runtime(proc.stderr, log, "stderr")]
    for c in copiers:
        c.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                get(port, "/")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr and proc.stderr.read()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for c in copiers:
            c.join(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def get(port: int, path: str, agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"User-Agent": agent})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def probe(port: int) -> None:
    """What an attacker does: a scanner's user agent, path traversal and SQL injection in
    the query, and a burst of 404s looking for admin pages."""
    assert get(port, "/", agent="sqlmap/1.7.2#stable (https://sqlmap.org)") == 200
    get(port, "/index.html?file=../../../etc/passwd")
    get(port, "/index.html?id=1%27%20UNION%20SELECT%20password%20FROM%20users--")
    for i in range(40):
        assert get(port, f"/admin{i}.php") == 404


def alerts_of(svc: object, secs: float, want: set[str]) -> set[str]:
    deadline = time.monotonic() + secs
    rules: set[str] = set()
    while time.monotonic() < deadline:
        rules = {a["rule"] for a in svc.alerts()}  # type: ignore[attr-defined]
        if want <= rules:
            break
        time.sleep(0.2)
    return rules


SOURCE = (
    "  pods: {{type: container_logs, root: '{root}', poll_interval_secs: 0.1, "
    "start_at: beginning}}\n"
)
DETECT = "detect: {rules: [builtin, sigma], match: all}\n"


@pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is missing (apt-get install nginx-light)"
)
def test_the_probe_of_the_fixed_app_raises_the_web_alerts(tmp_path: Path) -> None:
    pods = tmp_path / "pods"
    want = {"Hack Tool User Agent", "SQL Injection Strings In URI"}
    with (
        running(tmp_path / "lw", sources=SOURCE.format(root=pods), extra=DETECT) as svc,
        hackme(tmp_path / "app", pods, fixed=True) as port,
    ):
        probe(port)
        rules = alerts_of(svc, 30, want | {"Web Client Error Burst From One Client"})
    assert want | {"Web Client Error Burst From One Client"} <= rules, rules
    web = [a for a in svc.alerts() if a["rule"] in want]
    assert {a["labels"]["source"] for a in web} == {"nginx_access"}


@pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is missing (apt-get install nginx-light)"
)
def test_with_the_seeds_dev_null_logs_the_probe_leaves_nothing_and_scan_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = tmp_path / "pods"
    with (
        running(tmp_path / "lw", sources=SOURCE.format(root=pods), extra=DETECT) as svc,
        hackme(tmp_path / "app", pods, fixed=False) as port,
    ):
        probe(port)
        time.sleep(2)
        assert svc.alerts() == []
    assert (pods / POD / "hackme" / "0.log").read_bytes() == b""  # nothing was logged
    assert main(["scan", "--format", "json", str(HACKME / "nginx")]) == 0
    found = json.loads(capsys.readouterr().out)
    discarded = {(Path(f["file"]).name, f["id"]) for f in found}
    assert discarded == {
        ("default.conf", "LW-DISCARD-001"),  # access_log /dev/null
        ("default.conf", "LW-DISCARD-002"),  # error_log /dev/null
        ("nginx.conf", "LW-DISCARD-001"),
        ("nginx.conf", "LW-DISCARD-002"),
    }
