"""The stdout and file notifiers: one JSON line per alert, with the notification's ids."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.file import FileNotifier
from logwarden.alerts.notifiers.stdout import StdoutNotifier

from .notifier_helpers import alert_state, notification


def test_stdout_writes_a_line_per_alert_with_the_alert_and_notification_fields() -> None:
    out = io.BytesIO()
    notifier = StdoutNotifier(out)
    sent = notification(alert_state("f1"), alert_state("f2", status="resolved"), id="n-7")
    notifier.send(notifier.render(sent), sent.id)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["fingerprint"] for line in lines] == ["f1", "f2"]
    assert [line["status"] for line in lines] == ["firing", "resolved"]
    first = lines[0]
    assert first["notification_id"] == "n-7"
    assert first["receiver"] == "oncall" and first["route"] == "root"
    assert first["notification_status"] == "firing"
    assert first["labels"]["rule"] == "Exec into pod" and first["count"] == 3
    assert first["links"][0] == {
        "instance": "audit",
        "seq": 7,
        "time": "2024-05-17T08:00:00Z",
        "audit_id": "a-1",
        "index": -1,
    }
    assert (first["rule"], first["audit_id"]) == ("Exec into pod", "a-1")
    assert lines[1]["resolved_by"] == "bob"
    assert StdoutNotifier.joins and not StdoutNotifier.per_alert


def test_file_appends_joined_payloads_and_reports_an_unwritable_path(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    notifier = FileNotifier(path)
    one, two = notification(id="n-1"), notification(alert_state("f9"), id="n-2")
    notifier.send(notifier.render(one) + notifier.render(two), "n-1")
    notifier.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["notification_id"], x["fingerprint"]) for x in lines] == [
        ("n-1", "f00d"),
        ("n-2", "f9"),
    ]
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    with pytest.raises(SendError, match="blocked") as caught:
        FileNotifier(blocked / "alerts.jsonl").send(b"{}\n", "n-3")
    assert caught.value.retry


def test_stdout_whose_reader_is_gone_fails_the_send_and_closes_quietly() -> None:
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "wb")
    notifier = StdoutNotifier(stream)
    try:
        with pytest.raises(SendError, match="Broken pipe") as caught:
            notifier.send(notifier.render(notification()), "n-1")
        assert caught.value.retry
        notifier.close()
    finally:
        with contextlib.suppress(BrokenPipeError):
            stream.close()


#: runs in a process of its own: a file size limit makes the kernel cut a write short
_CUT_SHORT = """
    import resource, signal, sys
    from logwarden.alerts.notifiers.base import SendError
    from logwarden.alerts.notifiers.file import FileNotifier

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
    line = b'{"pad": "' + b"x" * 100 + b'"}\\n'
    notifier = FileNotifier(sys.argv[1])
    notifier.send(line, "n-1")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(line) + 50, hard))
    try:
        notifier.send(line * 3, "n-2")
    except SendError as exc:
        print("failed, retry:", exc.retry)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    notifier.send(line * 3, "n-2")
    notifier.close()
"""


def test_file_takes_back_a_write_cut_short_so_the_retry_leaves_whole_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.jsonl"
    script = textwrap.dedent(_CUT_SHORT)
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "failed, retry: True\n"
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4
    assert all(json.loads(line) == {"pad": "x" * 100} for line in lines)
