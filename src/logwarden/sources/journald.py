"""The systemd journal: follows it with ``journalctl -o json --all --follow``.

The source runs ``journalctl --output=json --all --no-pager --follow --no-tail
[--directory=D] [--cursor=C] [--unit=U ...]`` (the system journal without a directory)
and reads its output line by line; each line is one entry, decoded by
`normalize.journald.FORMAT`. Entries are handed to `emit` in batches of at most
`batch_events`, a batch going out when it is full, when journalctl has printed nothing
for 50 ms, or at the latest one second after its first entry. A line the format rejects,
or an entry without ``__CURSOR``, is reported to `Rejects` as ``journald <cursor>:
reason`` (``journald line <n> ...`` when it has no cursor; n counts the lines of the
current journalctl process) and counted in `rejected`; the source goes on.

Position. After `emit` returns (the batch is durable), the source saves the batch's last
seq and the ``__CURSOR`` of its last entry in ``<state_dir>/journald.<source_id>.json``,
atomically. journalctl's own ``--cursor-file`` is not used: journalctl 252 does not write
it when it is stopped by a signal.

Resume. A restart runs journalctl ``--cursor`` the saved cursor and drops the first entry
if it is the saved one. (``--after-cursor`` is not used: journalctl 252 skips one entry
after the cursor's position unconditionally, so with ``--unit`` filters the cursor entry
does not match, or with the entry vacuumed away, it would skip an entry never seen.)
If the saved seq lags the ledger's `resume_seq` (a crash after the ledger stored a batch
but before the state was saved), the first ``resume_seq - seq`` entries are skipped. A
state ahead of the ledger, or no state with a non-empty ledger, is an `InputError`.

First start (no state, empty ledger). The state is saved at once (seq 0), so that a crash
before the first batch's state is saved finds the state behind the ledger, not missing.
``start_at="beginning"``: the whole journal is read.
``start_at="end"``: the current end of the journal is taken with ``journalctl --lines=0
--show-cursor`` (the cursor of its last entry) and saved at once as the position (seq 0),
then journalctl follows from there: only entries written after the first start are read,
also when the source is stopped before any arrives. (``--follow --lines=0`` would leave
nothing to save, so a restart before the first entry would skip what came meanwhile.)

journalctl ending unexpectedly (killed, failing) is reported to `Rejects` with its exit
status and last error message, counted in `restarts`, and it is started again after the
entry last read, after `restart_backoff_secs` (doubled after each run that printed
nothing, up to 30 s). A unit glob that matches nothing (``-u 'kube*'``) makes journalctl
fail this way until a matching entry exists. journalctl missing is an `InputError`.
`stop` terminates journalctl once the batch in hand is emitted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.journald import FORMAT, journalctl_command
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, save_state, state_path
from logwarden.sources.base import require_at_least_one, require_positive, require_start_at

__all__ = ["JournaldSource", "JournaldState"]

log = logging.getLogger("logwarden.sources")

_KIND = "journald"
#: a batch goes out once journalctl has printed nothing for this long
_IDLE_SECS = 0.05
#: ... or at the latest this long after its first entry
_MAX_BATCH_AGE_SECS = 1.0
#: how often `stop` is looked at with no batch in hand
_POLL_SECS = 0.1
_READ_BYTES = 1 << 20
_STDERR_KEEP = 4096
_MAX_BACKOFF_SECS = 30.0
_PROBE_TIMEOUT_SECS = 60.0
_MISSING = (
    "is not installed or not executable: the journald source needs systemd's journalctl "
    "(Debian/Ubuntu package systemd)"
)


class JournaldState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The saved position: the seq of the last durable entry and its ``__CURSOR`` (None:
    nothing read yet, start at the beginning of the journal)."""

    version: int = 1
    seq: int
    cursor: str | None


class JournaldSource:
    """Follows the systemd journal through journalctl (see the module doc).

    Counters for metrics: `events` (entries emitted and durable), `rejected` (lines the
    format rejects), `restarts` (unexpected ends of journalctl, each restarted),
    `last_event_ns` (receive time of the newest entry). `journalctl_pid` is the process
    id of the running journalctl (None when none runs).
    """

    def __init__(
        self,
        source_id: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        directory: str | None = None,
        units: list[str] | tuple[str, ...] = (),
        batch_events: int = 1024,
        start_at: str = "end",
        restart_backoff_secs: float = 1.0,
        journalctl: str = "journalctl",
    ) -> None:
        require_at_least_one("batch_events", batch_events)
        require_start_at(start_at)
        require_positive("restart_backoff_secs", restart_backoff_secs)
        if any(not unit.strip() for unit in units):
            raise ValueError("units: an empty unit name (journalctl refuses it)")
        self.source_id = source_id
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.directory = directory
        self.units = list(units)
        self.batch_events = batch_events
        self.start_at = start_at
        self.restart_backoff_secs = restart_backoff_secs
        self.journalctl = journalctl
        self.events = 0
        self.rejected = 0
        self.restarts = 0
        self.last_event_ns = 0
        self.journalctl_pid: int | None = None
        self._seq = 0
        self._durable = 0
        #: the cursor of the last entry read: where journalctl starts again
        self._cursor: str | None = None
        #: the cursor journalctl was started at: its entry is printed first, and dropped
        self._drop: str | None = None
        self._at_end = False
        self._batch: list[Record] = []
        self._batch_since = 0.0
        self._lines = 0

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of entries until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved state
        and the ledger disagree, or journalctl cannot be run."""
        self._resume(resume_seq)
        backoff = self.restart_backoff_secs
        while not stop.is_set():
            self._lines = 0
            ended = self._probe_end() if self._at_end else None
            if ended is None:
                ended = self._follow(emit, stop)
            if stop.is_set():
                return
            # a journalctl that printed entries is started again soon; one that fails
            # at once (a unit glob matching nothing, a missing directory) less and less often
            backoff = (
                self.restart_backoff_secs if self._lines else min(2 * backoff, _MAX_BACKOFF_SECS)
            )
            self.restarts += 1
            after = f"after {self._cursor}" if self._cursor else "from the beginning"
            self.rejects.report(
                f"journald {self.source_id}: journalctl",
                f"{ended}; starting it again in {backoff:g} s, reading {after}",
            )
            stop.wait(backoff)

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        state = load_state(self.state_file, JournaldState)
        if state is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its state file {self.state_file} is missing: cannot tell which journal "
                    "entry to continue after without repeating or skipping; restore the "
                    "state file"
                )
            self._at_end = self.start_at == "end"
            if not self._at_end:  # a crash before the first save must find a state
                save_state(self.state_file, JournaldState(seq=0, cursor=None))
            return
        if state.seq > resume_seq:
            raise InputError(
                f"the state file {self.state_file} says entries up to {state.seq} of source "
                f"'{self.source_id}' are stored, but the ledger holds only {resume_seq}: "
                "entries believed durable are missing from the ledger (restored from an "
                "older copy?); refusing to skip or repeat them"
            )
        self._seq, self._durable, self._cursor = state.seq, resume_seq, state.cursor

    def _probe_end(self) -> str | None:
        """Take the journal's current end as the position and save it; a description of
        the failure if journalctl fails."""
        argv = [self.journalctl, "--output=json", "--quiet", "--no-pager"]
        if self.directory is not None:
            argv.append(f"--directory={self.directory}")
        argv += ["--lines=0", "--show-cursor"]
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_SECS
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise InputError(f"{self.journalctl!r} {_MISSING}") from exc
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` did not answer within {_PROBE_TIMEOUT_SECS:g} s"
        cursor = None
        for line in done.stdout.splitlines():
            if line.startswith(b"-- cursor: "):
                cursor = line[11:].decode("utf-8", "replace").strip()
        error = done.stderr.decode("utf-8", "replace").strip()
        if cursor is None and error:  # without an error message: the journal is empty
            return f"`{' '.join(argv)}` {_status(done.returncode)}: {error}"
        self._cursor = cursor
        self._at_end = False
        save_state(self.state_file, JournaldState(seq=0, cursor=cursor))
        return None

    def _argv(self) -> list[str]:
        directory = Path(self.directory) if self.directory is not None else None
        argv = journalctl_command(follow=True, cursor_file=None, file=None, directory=directory)
        argv[0] = self.journalctl
        if self._cursor is not None:
            argv.append(f"--cursor={self._cursor}")
        return argv + [f"--unit={unit}" for unit in self.units]

    # --- reading ----------------------------------------------------------------------------

    def _follow(self, emit: Callable[[list[Record]], None], stop: threading.Event) -> str:
        """Run journalctl until `stop` is set or it ends; say how it ended."""
        proc = _Journalctl(self._argv(), self.journalctl)
        self.journalctl_pid = proc.pid
        self._drop = self._cursor
        try:
            while not stop.is_set():
                wait = _POLL_SECS
                if self._batch:
                    age = time.monotonic() - self._batch_since
                    wait = max(0.0, min(_IDLE_SECS, _MAX_BATCH_AGE_SECS - age))
                lines = proc.read(wait)
                received = time.time_ns()
                for line in lines or ():
                    self._line(line, received)
                    if len(self._batch) >= self.batch_events:
                        self._flush(emit)
                        if stop.is_set():
                            break  # the lines left are printed again after the cursor
                if proc.eof:
                    break
                if self._batch and (lines is None or wait == 0.0):
                    self._flush(emit)
            if self._batch:
                self._flush(emit)  # the batch in hand, on stop or after journalctl ended
        finally:
            ended = proc.close()
            self.journalctl_pid = None
        return ended

    def _line(self, raw: bytes, received: int) -> None:
        """Take one line of journalctl's output."""
        self._lines += 1
        if not raw.strip():
            return
        cursor = None
        try:
            view = FORMAT.decode(raw)
            cursor = FORMAT.alert_ids(view)[0]
            when = FORMAT.time_ns(view)
            if cursor is None:
                raise MalformedInput("journal entry without __CURSOR: cannot resume after it")
        except MalformedInput as exc:
            self._reject(cursor, str(exc), raw)
            return
        if self._drop is not None:
            drop, self._drop = self._drop, None
            if cursor == drop:
                return  # the entry of the cursor journalctl started at: read before
        self._cursor = cursor
        self._seq += 1
        if self._seq <= self._durable:
            return  # stored by the ledger before a crash saved the state
        if not self._batch:
            self._batch_since = time.monotonic()
        self._batch.append(
            Record(FORMAT.source, self.source_id, self._seq, 0, received, when, raw, view)
        )

    def _flush(self, emit: Callable[[list[Record]], None]) -> None:
        """Emit the batch in hand; once durable, count it and save the position after it."""
        batch, self._batch = self._batch, []
        emit(batch)
        self.events += len(batch)
        self.last_event_ns = batch[-1].received_ns
        self._durable = batch[-1].seq
        save_state(self.state_file, JournaldState(seq=batch[-1].seq, cursor=self._cursor))

    def _reject(self, cursor: str | None, reason: str, raw: bytes) -> None:
        """Report an unusable line, unless it lies before the last durable entry
        (reported by the run that emitted that entry)."""
        if self._seq < self._durable:
            return
        if cursor is not None:
            where = f"journald {cursor}"
        else:
            after = f" after {self._cursor}" if self._cursor is not None else ""
            where = f"journald line {self._lines} of journalctl's output{after}"
        self.rejected += 1
        self.rejects.report(where, reason, raw)


class _Journalctl:
    """One running journalctl: its output as lines, its errors kept and logged."""

    def __init__(self, argv: list[str], name: str) -> None:
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise InputError(f"{name!r} {_MISSING}") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.pid = self.proc.pid
        self.eof = False
        self._out = self.proc.stdout.fileno()
        self._partial = bytearray()
        self._errors = bytearray()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out, selectors.EVENT_READ)
        self._selector.register(self.proc.stderr.fileno(), selectors.EVENT_READ)

    def read(self, timeout: float) -> list[bytes] | None:
        """The complete lines printed within `timeout` (None: nothing printed); sets `eof`
        when journalctl closed its output."""
        lines: list[bytes] | None = None
        for key, _ in self._selector.select(timeout):
            chunk = os.read(key.fd, _READ_BYTES)
            if not chunk:
                self._selector.unregister(key.fd)
            if key.fd != self._out:
                self._stderr(chunk)
            elif not chunk:
                self.eof = True  # a partial last line is printed again after the restart
                lines = lines or []
            else:
                self._partial += chunk
                cut = self._partial.rfind(b"\n") + 1
                lines = bytes(self._partial[: cut - 1]).split(b"\n") if cut else []
                del self._partial[:cut]
        return lines

    def _stderr(self, chunk: bytes) -> None:
        for text in chunk.decode("utf-8", "replace").splitlines():
            if text.strip():
                log.warning("journalctl (pid %d) says: %s", self.pid, text.strip())
        self._errors += chunk
        del self._errors[:-_STDERR_KEEP]

    def close(self) -> str:
        """Stop journalctl if it runs; say how it ended."""
        proc = self.proc
        if proc.poll() is None and not self.eof:
            proc.terminate()
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        if self.eof:  # ended by itself: its last words
            os.set_blocking(proc.stderr.fileno(), False)
            with contextlib.suppress(BlockingIOError):
                self._errors += proc.stderr.read() or b""
        self._selector.close()
        proc.stdout.close()
        proc.stderr.close()
        lines = self._errors.decode("utf-8", "replace").strip().splitlines()
        return f"{_status(proc.returncode)}" + (f": {lines[-1]}" if lines else "")


def _status(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
