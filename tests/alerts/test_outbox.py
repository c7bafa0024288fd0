"""The outbox: order, idempotent puts, retries and dead rows, and what survives a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from logwarden.alerts.outbox import Outbox
from logwarden.errors import InputError

SEC = 1_000_000_000


def rows(receiver: str, *keys: str) -> list[tuple[str, str, bytes]]:
    return [(receiver, k, f"body {k}".encode()) for k in keys]


def test_due_gives_a_receivers_rows_oldest_first_and_done_removes_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    assert box.put(rows("a", "1", "2", "3") + rows("b", "x"), now_ns=10 * SEC) == 4
    assert [i.key for i in box.due("a", 10 * SEC, limit=10)] == ["1", "2", "3"]
    assert [i.key for i in box.due("a", 10 * SEC, limit=2)] == ["1", "2"]
    assert [(i.key, i.body) for i in box.due("b", 10 * SEC, limit=10)] == [("x", b"body x")]
    first = box.due("a", 10 * SEC, limit=1)[0]
    box.done([first.id], 11 * SEC)
    assert [i.key for i in box.due("a", 11 * SEC, limit=10)] == ["2", "3"]
    assert box.count("a") == 2 and box.count("a", "sent") == 1
    box.close()


def test_a_row_backing_off_holds_back_the_rows_after_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put(rows("a", "1", "2"), now_ns=10 * SEC)
    head = box.due("a", 10 * SEC, limit=10)[0]
    box.retry([head.id], next_ns=20 * SEC, error="HTTP 503")
    assert box.due("a", 19 * SEC, limit=10) == []
    again = box.head("a")
    assert again is not None
    assert (again.key, again.attempts, again.next_ns, again.last_error) == (
        "1",
        1,
        20 * SEC,
        "HTTP 503",
    )
    assert [i.key for i in box.due("a", 20 * SEC, limit=10)] == ["1", "2"]
    box.close()


def test_the_same_key_put_twice_is_kept_once_even_after_it_was_sent(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", keep_sent_secs=60)
    assert box.put(rows("a", "n1"), now_ns=10 * SEC) == 1
    assert box.put(rows("a", "n1", "n2") + rows("b", "n1"), now_ns=11 * SEC) == 2
    assert [i.key for i in box.due("a", 11 * SEC, limit=10)] == ["n1", "n2"]
    box.done([i.id for i in box.due("a", 11 * SEC, limit=10)], 12 * SEC)
    assert box.put(rows("a", "n1"), now_ns=13 * SEC) == 0  # re-made after a crash: not resent
    box.done([], 100 * SEC)  # the sent rows are pruned after keep_sent_secs
    assert box.count("a", "sent") == 0
    assert box.put(rows("a", "n1"), now_ns=101 * SEC) == 1
    box.close()


def test_a_dead_row_is_kept_listed_and_can_be_requeued(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put(rows("a", "1", "2"), now_ns=10 * SEC, unrendered=[("a", "3", b"{}", "render failed")])
    head = box.due("a", 10 * SEC, limit=1)[0]
    box.dead([head.id], "HTTP 400 Bad Request")
    assert [i.key for i in box.due("a", 10 * SEC, limit=10)] == ["2"]
    assert [(i.key, i.state, i.last_error) for i in box.failed("a")] == [
        ("1", "dead", "HTTP 400 Bad Request"),
        ("3", "unrendered", "render failed"),
    ]
    assert box.failed("b") == [] and len(box.failed()) == 2
    assert box.requeue("a", now_ns=30 * SEC) == 1  # the unrendered row has nothing to send
    assert [i.key for i in box.due("a", 30 * SEC, limit=10)] == ["1", "2"]
    box.close()


def test_the_rows_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.put(rows("a", "1", "2"), now_ns=10 * SEC)
    box.retry([box.due("a", 10 * SEC, limit=1)[0].id], 15 * SEC, "timeout")
    box.close()
    box = Outbox(path)
    assert [(i.key, i.attempts) for i in box.due("a", 15 * SEC, limit=10)] == [("1", 1), ("2", 0)]
    box.close()


def test_a_put_that_returned_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from logwarden.alerts.outbox import Outbox\n"
            "box = Outbox(sys.argv[1])\n"
            "box.put([('a', f'n{i}', b'x') for i in range(100)], now_ns=1)\n"
            "print('put', flush=True)\n"
            "time.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "put\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    box = Outbox(path)
    assert box.count("a") == 100
    assert [i.key for i in box.due("a", 1, limit=2)] == ["n0", "n1"]
    box.close()


def test_a_damaged_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(InputError, match=r"outbox '.*outbox\.db'"):
        Outbox(path)


def test_a_closed_outbox_raises_an_input_error(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.close()
    with pytest.raises(InputError, match="cannot be written"):
        box.put(rows("a", "1"), now_ns=1)
