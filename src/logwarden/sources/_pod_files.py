"""The container logs under a root as `container_logs` follows them: their files, read.

`PodFiles` finds the logs (`_kubelet_files`) of the namespaces wanted, reads the lines of
each log's files into its `PodLog` (a batch's worth at a time), and follows its files
through the kubelet's rotation: the renamed file is finished through its descriptor, then
the next one read from its start; a log whose files are all gone is finished. `restore`
opens a saved log again where its `LogState` says and feeds again its lines not emitted
yet. What cannot be read as it should (a file gone, truncated, not readable) is reported
as a gap; malformed lines are reported as rejects.
"""

from __future__ import annotations

import os
import time
from functools import partial

from logwarden.normalize.container_log import parse_path
from logwarden.rejects import Rejects
from logwarden.sources._kubelet_files import candidates, log_keys
from logwarden.sources._pod_log import LogState, PodLog
from logwarden.sources._rotation import (
    MISSES,
    Candidate,
    after_ns,
    gone_reason,
    locate,
    newer_files,
    open_candidate,
)
from logwarden.sources._tail import ShortFile, TailFile, open_at, skip_to_end

__all__ = ["PodFiles"]

#: bytes of lines looked at per log and pump at most, so that `stop` is seen in a long run
_PUMP_BYTES = 8 << 20


class PodFiles:
    """The container logs followed under `root`, by key (see the module doc).

    Counters: `rejected` (malformed lines), `bytes_read`, `rotations_seen`, `gaps`
    (reported possible loss).
    """

    def __init__(
        self,
        root: str,
        rejects: Rejects,
        *,
        include_namespaces: frozenset[str],
        exclude_namespaces: frozenset[str],
        multiline: bool,
        poll_interval_secs: float,
        batch_events: int,
    ) -> None:
        self.root = root
        self.rejects = rejects
        self.include_namespaces = include_namespaces
        self.exclude_namespaces = exclude_namespaces
        self.multiline = multiline
        self.poll_interval_secs = poll_interval_secs
        self.batch_events = batch_events
        self.logs: dict[str, PodLog] = {}
        self.rejected = 0
        self.bytes_read = 0
        self.rotations_seen = 0
        self.gaps = 0
        #: files that could not be opened (permission denied), reported once each
        self._denied: set[str] = set()

    def close(self) -> None:
        """Close every log's file and forget the logs."""
        for log in self.logs.values():
            if log.file is not None:
                log.file.close()
        self.logs.clear()

    # --- logs -------------------------------------------------------------------------------

    def _new_log(self, key: str) -> PodLog | None:
        podref = parse_path("pods/" + key)
        if podref is None or not self._wanted(podref.namespace):
            return None
        return PodLog(
            key, os.path.join(self.root, key), podref, self.multiline, self.poll_interval_secs
        )

    def _wanted(self, namespace: str) -> bool:
        if self.include_namespaces and namespace not in self.include_namespaces:
            return False
        return namespace not in self.exclude_namespaces

    def discover(self, *, at_end: bool) -> None:
        """Start following the logs under the root that are not followed yet."""
        for key in log_keys(self.root):
            if key in self.logs or not self._wanted(key.split("_", 1)[0]):
                continue
            log = self._new_log(key)
            if log is None:
                continue
            cands = candidates(log.live)
            if not cands:
                continue
            cand = cands[-1] if at_end else cands[0]
            try:
                log.file = open_candidate(cand, partial(candidates, log.live))
            except FileNotFoundError:
                continue  # rotated or removed since listed: at the next poll
            except PermissionError:
                self._unreadable(cand.path)
                continue  # the other logs go on; this one is tried again at the next poll
            self._denied.discard(cand.path)
            if at_end:
                self.bytes_read += skip_to_end(log.file)
            self.logs[key] = log

    # --- a saved log ------------------------------------------------------------------------

    def restore(self, saved: LogState) -> None:
        """Open a saved log where it stood and feed again its lines not emitted yet."""
        log = self._new_log(saved.log)
        if log is None:
            return  # excluded now
        where = f"{saved.path}:{saved.line}"
        for attempt in range(MISSES + 1):
            cands = candidates(log.live)
            idx = locate(cands, saved.device, saved.inode, saved.head_len, saved.head_sha256)
            if idx is None:
                if attempt < MISSES:
                    time.sleep(0.01)  # renamed or compressed while listing: look again
                continue
            try:
                replay = self._open_saved(log, saved, cands[idx])
            except FileNotFoundError:
                continue  # compressed, renamed or removed meanwhile: look again
            self.logs[log.key] = log
            if replay:
                self._replay(log, saved)
            return
        for _ in range(MISSES + 1):
            newer = [c for c in candidates(log.live) if c.key_ns >= saved.after_ns]
            if not newer:
                break
            try:
                log.file = open_candidate(newer[0], partial(candidates, log.live))
            except FileNotFoundError:
                continue  # rotated meanwhile: look again
            reason = (
                "the file of the saved position is gone: lines after this one may be lost; "
                "continuing with the oldest newer file"
            )
            self.gap(where, reason + _unsent(saved))
            self.logs[log.key] = log
            return
        reason = "the files of this log are gone: lines after this one may be lost"
        self.gap(where, reason + _unsent(saved))

    def _open_saved(self, log: PodLog, saved: LogState, cand: Candidate) -> bool:
        """Open `cand`, the file of a saved log, at its saved line; False if it is shorter
        (opened at its start then, and reported); FileNotFoundError if it is gone."""
        try:
            expect = (cand.device, cand.inode)
            log.file = open_at(cand.path, after_ns(cand), saved.offset, saved.line, expect=expect)
        except ShortFile:
            log.file = open_candidate(cand, partial(candidates, log.live))
            reason = "holds fewer bytes than read before: reading it again from its start"
            self.gap(f"{saved.path}:{saved.line}", reason + _unsent(saved))
            return False
        return True

    def _replay(self, log: PodLog, saved: LogState) -> None:
        """Feed again the lines of a saved log's entries not emitted yet."""
        log.replay_span, log.skip = saved.span, saved.skip
        log.replay = {k + 1 for k in saved.refeed}
        self.pump(log, upto=saved.span)
        if log.g < saved.span:
            reason = "ends before the lines read before: lines after this one may be lost"
            self.gap(f"{saved.path}:{saved.line}", reason + _unsent(saved))
        log.replay_span, log.replay = 0, set()

    # --- reading ----------------------------------------------------------------------------

    def poll(self) -> bool:
        """Find new logs, read what every log holds; True if anything was read."""
        self.discover(at_end=False)
        busy = False
        for log in list(self.logs.values()):
            if self.pump(log):
                busy = True
            elif not log.finished:
                log.idle(time.time_ns())
            if log.finished and not log.outbox:
                del self.logs[log.key]
        return busy

    def pump(self, log: PodLog, *, upto: int = 0) -> bool:
        """Read lines of `log` until a batch is waiting or nothing more is there (or line
        `upto` is read); True if anything was read."""
        file = log.file
        busy = False
        looked = 0
        while file is not None:
            if upto:  # feeding again what was read before the restart: all of it
                if log.g >= upto:
                    break
            elif len(log.outbox) >= self.batch_events or looked >= _PUMP_BYTES:
                break
            start = file.offset
            line = file.take_line()
            if line is not None:
                looked += len(line) + 1
                log.take(line, file, start, self.report)
                continue
            n = file.fill()
            if n:
                self.bytes_read += n
                log.received = time.time_ns()
                busy = True
                continue
            if not self._switch(log, file):
                break
            busy = True
            file = log.file
        return busy

    # --- rotation ---------------------------------------------------------------------------

    def _switch(self, log: PodLog, file: TailFile) -> bool:
        """At the end of `file`: follow a rotation; finish a log whose files are gone;
        False if there is nothing new."""
        if not file.compressed and file.is_at(log.live):
            if not file.truncated():
                return False
            reason = "truncated in place: reading it again from its start; lines after this "
            self.gap(f"{file.path}:{file.line}", reason + "one may be lost")
            file.rewind()
            return True
        n = file.fill()  # what was written before the rename
        if n:
            self.bytes_read += n
            return True
        if not log.grace.over(file):
            return False  # the runtime may still append to it until it reopens the log
        cands = candidates(log.live)
        newer, log.misses, continues = newer_files(cands, file, log.misses)
        if newer is None:
            return False
        if not cands:  # deleted, with every file of the log
            self._close(file)
            log.file = None
            log.finish()
            return True
        if not newer:
            return False
        try:
            # replaced by a longer copy (`continues`): read on in it where `file` stands
            offset, line = (file.offset, file.line) if continues else (0, 0)
            relist = partial(candidates, log.live)
            nxt = open_candidate(newer[0], relist, offset=offset, line=line)
        except (FileNotFoundError, ShortFile):
            return False  # compressed or renamed meanwhile: look again at the next poll
        except PermissionError:
            self._unreadable(newer[0].path)
            return False  # tried again at the next poll
        self._denied.discard(newer[0].path)
        if log.misses >= MISSES:
            self.gap(f"{file.path}:{file.line}", gone_reason(nxt.path))
        log.misses = 0
        log.grace.clear()
        if continues:
            file.close()  # its partial last line goes on in `nxt`
        else:
            self._close(file)
        log.file = nxt
        self.rotations_seen += 1
        return True

    def _close(self, file: TailFile) -> None:
        partial = file.partial()
        if partial.strip():
            self.report(
                f"{file.path}:{file.line + 1}",
                "incomplete last line: the file was rotated or removed before its newline "
                "was written",
                partial,
            )
        file.close()

    # --- reports ----------------------------------------------------------------------------

    def report(self, where: str, reason: str, raw: bytes | None) -> None:
        """Report a malformed line."""
        self.rejected += 1
        self.rejects.report(where, reason, raw)

    def gap(self, where: str, reason: str) -> None:
        """Report possible loss."""
        self.gaps += 1
        self.rejects.report(where, reason)

    def _unreadable(self, path: str) -> None:
        """Report once that `path` cannot be opened (permission denied); it is tried again
        at every poll, and read from where it stands once it can be opened."""
        if path in self._denied:
            return
        self._denied.add(path)
        self.gap(
            path,
            "cannot open it: permission denied; the other logs go on, this one is tried "
            "again at every poll (its lines are lost if it is rotated away meanwhile)",
        )


def _unsent(saved: LogState) -> str:
    if not saved.refeed and not saved.skip:
        return ""
    return (
        f" (including {len(saved.refeed)} lines of entries not emitted yet"
        + (f" and {saved.skip} records the ledger holds" if saved.skip else "")
        + ")"
    )
