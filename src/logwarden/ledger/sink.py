"""The ledger as a pipeline sink: ``start()``, ``process(batch) -> ok``, ``shutdown()``.

This is the shape DESIGN.md gives every sink, so the monitoring service puts the ledger
between redaction and detection and wraps it like any other sink. `process` appends a
whole batch with one write and (by default) one fdatasync, and returns True only once the
batch is durable; records go on to detection only after that. A timer thread issues the
checkpoints that time calls for (every second while records arrive, a heartbeat while
idle, sealing old segments). `shutdown` drains: it stops the timer, checkpoints what is
left and closes the ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from logwarden.ledger.layout import LedgerError
from logwarden.ledger.note import Signer
from logwarden.ledger.writer import LedgerWriter, RecordLike, WriterOptions

__all__ = ["LedgerSink"]


class LedgerSink:
    """Appends batches of records to a ledger directory (see module doc)."""

    name = "ledger"

    def __init__(
        self,
        path: str | Path,
        signer: Signer,
        *,
        origin: str | None = None,
        anchor: str | Path | None = None,
        options: WriterOptions | None = None,
    ) -> None:
        self.path = Path(path)
        self._signer = signer
        self._origin = origin
        self._anchor = anchor
        self.options = options or WriterOptions()
        self._writer: LedgerWriter | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        #: errors that made `process` return False or the timer skip a checkpoint
        self.errors: list[str] = []
        #: the index of the last record made durable, -1 before any
        self.last_index = -1

    @property
    def writer(self) -> LedgerWriter:
        if self._writer is None:
            raise LedgerError(f"{self.path}: the ledger sink is not started")
        return self._writer

    def start(self) -> None:
        """Open (or create) the ledger, repairing a torn tail, and start the timer."""
        self._writer = LedgerWriter(
            self.path,
            self._signer,
            origin=self._origin,
            anchor=self._anchor,
            options=self.options,
        )
        self.last_index = self._writer.size - 1
        self._stop.clear()
        self._timer = threading.Thread(target=self._tick, name="ledger-checkpoints", daemon=True)
        self._timer.start()

    def process(self, batch: Sequence[RecordLike]) -> bool:
        """Append `batch`; True once it is durable, False if the ledger failed (see errors)."""
        with self._lock:
            try:
                first = self.writer.append_records(batch)
            except LedgerError as exc:
                self.errors.append(str(exc))
                return False
            self.last_index = first + len(batch) - 1
            return True

    def _tick(self) -> None:
        period = min(self.options.checkpoint_interval_secs, self.options.heartbeat_secs) / 4
        while not self._stop.wait(period):
            with self._lock:
                try:
                    self.writer.tick()
                except LedgerError as exc:
                    self.errors.append(str(exc))

    def shutdown(self) -> None:
        """Stop the timer, checkpoint everything appended, close the ledger."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    writer.close()
                except LedgerError as exc:
                    self.errors.append(str(exc))
                    raise
