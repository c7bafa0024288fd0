"""A ledger writer to be killed: appends real audit lines in random batches until killed.

    python crash_writer.py LEDGER KEYFILE AUDITLOG SEED

After each batch returns (durable: fsync policy ``always``) it prints the index of the
batch's last entry and flushes, so the test knows exactly what was acknowledged. Record i
carries line i % len(lines) of AUDITLOG as raw bytes and seq i + 1, so the test can
check every acknowledged record is there. It also prints what reopening repaired.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from logwarden.ledger.keys import load_signer
from logwarden.ledger.writer import LedgerWriter, WriterOptions


def main() -> None:
    ledger, key, log, seed = sys.argv[1:5]
    lines = Path(log).read_bytes().splitlines()
    rnd = random.Random(int(seed))
    options = WriterOptions(checkpoint_interval_secs=0.02, segment_bytes=1 << 20)
    writer = LedgerWriter(ledger, load_signer(Path(key)), options=options)
    for repair in writer.repairs:
        print(f"repaired {repair}", flush=True)
    print(f"opened {writer.size}", flush=True)
    while True:
        start = writer.size
        count = rnd.randint(1, 40) if rnd.random() < 0.7 else rnd.randint(200, 1500)
        batch = [
            ("k8s_audit", "crash.log", i + 1, i, lines[i % len(lines)])
            for i in range(start, start + count)
        ]
        writer.append_records([_Rec(*r) for r in batch])
        print(f"ack {start + count - 1}", flush=True)


class _Rec:
    __slots__ = ("instance", "raw", "received_ns", "seq", "source")

    def __init__(self, source: str, instance: str, seq: int, received_ns: int, raw: bytes):
        self.source, self.instance, self.seq, self.received_ns, self.raw = (
            source,
            instance,
            seq,
            received_ns,
            raw,
        )


if __name__ == "__main__":
    main()
