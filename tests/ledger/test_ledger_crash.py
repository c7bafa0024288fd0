"""kill -9 in a loop: a real writer process killed at random points, N times.

Every run reopens the ledger (repairing and reporting a torn tail), verifies it, and finds
every record the killed writer acknowledged, byte for byte. A kill -9 seldom tears a
write(2) on Linux, so every other run also plays a power loss after the kill: the bytes
after what was certainly synced are cut at a random point (or, if there are none, a
partly written frame is left), which leaves a torn frame for the reopening writer to
repair.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ledger_helpers import AUDIT, segments

from logwarden.ledger import note, prove
from logwarden.ledger.keys import write_key_pair
from logwarden.ledger.segments import FRAME_HEAD, Header, decode_entry, read_frames
from logwarden.ledger.verify import verify_ledger
from logwarden.ledger.writer import LedgerWriter

RUNS = 12
WRITER = Path(__file__).resolve().parent / "crash_writer.py"
LOG = AUDIT / "demo-full-v1beta1-2017.log"


def _run_and_kill(ledger: Path, key: Path, seed: int, delay: float) -> tuple[list[int], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(ledger), str(key), str(LOG), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []))
    reader.start()
    deadline = time.monotonic() + 10
    while not any(line.startswith("opened") for line in lines):  # started and recovered
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    assert proc.stderr is not None
    assert proc.stderr.read() == ""
    proc.stderr.close()
    assert proc.stdout is not None
    proc.stdout.close()
    acks = [int(line.split()[1]) for line in lines if line.startswith("ack")]
    return acks, [line for line in lines if line.startswith("repaired")]


def _lose_unsynced_tail(ledger: Path, acked: int, rnd: random.Random) -> None:
    """Cut the last segment at a random byte after what was certainly synced: entry `acked`
    and every entry a signed checkpoint covers (the writer syncs before it signs)."""
    signed = prove.ledger_checkpoints(ledger, None)[-1].checkpoint.size
    acked = max(acked, signed - 1)
    first, path = segments(ledger)[-1]
    data = path.read_bytes()
    end = Header.decode(data).length
    for offset, payload in read_frames(data, end):
        if first + 1 > acked + 1:
            break
        end = offset + FRAME_HEAD + len(payload)
        first += 1
    if end < len(data) - 1:
        os.truncate(path, rnd.randint(end + 1, len(data) - 1))
    else:  # the kill came between batches: the power loss tears the next write instead
        with open(path, "ab") as fh:
            fh.write((5000).to_bytes(4, "big") + rnd.randbytes(rnd.randint(1, 900)))


def test_kill_9_loop(tmp_path: Path) -> None:
    key = tmp_path / "ledger.key"
    signer = note.generate("crash-test.logwarden.invalid/log")
    write_key_pair(signer, key)
    ledger = tmp_path / "ledger"
    lines = LOG.read_bytes().splitlines()
    rnd = random.Random(4)
    acked = -1
    repairs: list[str] = []
    for run in range(RUNS):
        acks, repaired = _run_and_kill(ledger, key, run, rnd.uniform(0.0, 0.25))
        repairs += repaired
        acked = max([acked, *acks])
        if run % 2:
            _lose_unsynced_tail(ledger, acked, rnd)
        writer = LedgerWriter(ledger, signer)  # reopen: repairs a torn tail, checkpoints
        repairs += writer.repairs
        writer.close()
        report = verify_ledger(ledger, keys=[signer.verifier()])
        assert report.ok, [str(p) for p in report.problems]
        assert report.entries > acked
    held = {i: e for i, _, e in prove.entries(ledger)}
    for i in range(acked + 1):
        entry = decode_entry(held[i])
        assert (entry.seq, entry.raw) == (i + 1, lines[i % len(lines)])
    assert len(repairs) >= RUNS // 2
    print(f"{RUNS} kills, {acked + 1} records acknowledged, {len(repairs)} torn tails repaired")
