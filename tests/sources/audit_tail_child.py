"""An audit file tail to be killed while its `emit` holds a batch already stored.

    python audit_tail_child.py LIVE STATE_DIR STORE KILL_AT

Runs `K8sAuditFileSource` (batches of 10) with an `emit` that appends each record as
``seq line raw`` to STORE and fsyncs it: the fake ledger. When the batch just stored
reaches seq KILL_AT it prints ``stored <seq>`` and waits to be killed, so the position of
that batch is never saved.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.k8s_audit_file import K8sAuditFileSource


def main() -> None:
    live, state_dir, store, kill_at = sys.argv[1:5]

    def emit(batch: list[Record]) -> None:
        with open(store, "ab") as out:
            for record in batch:
                out.write(f"{record.seq} {record.line} ".encode() + record.raw + b"\n")
            out.flush()
            os.fsync(out.fileno())
        if batch[-1].seq >= int(kill_at):
            print(f"stored {batch[-1].seq}", flush=True)
            threading.Event().wait()  # until SIGKILL

    source = K8sAuditFileSource(
        "apiserver", live, Path(state_dir), Rejects(), poll_interval_secs=0.005, batch_events=10
    )
    source.run(emit, threading.Event(), 0)


if __name__ == "__main__":
    main()
