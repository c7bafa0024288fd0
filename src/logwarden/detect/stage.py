"""The detect stage: rules, correlations and suppression over a stream of records.

`DetectStage` is what the pipeline runs after the ledger, in a thread of the service or in
a worker process of its own (`detect.worker`): records go in, alerts come out through
`emit`. Between records, `idle(now)` lets windows that wall time has closed give their
alerts (a live service may see no events for a while); `finish` closes every window when
the stream ends. A record whose format derives records of another (a cloud provider's
audit entry is also a Kubernetes audit Event) has the rules of both run over it. Alerts
raised elsewhere (a silent source) go through `alert`, unsuppressed.

A record the rules fail on (a bug, or input no rule was written for) is logged with where
it came from and counted in `errors`; detection goes on with the next record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from logwarden.detect.engine import Engine
from logwarden.detect.suppression import Suppressor
from logwarden.normalize import FORMATS
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.records import Alert, Record

__all__ = ["DetectStage", "derived"]

log = logging.getLogger("logwarden.detect")
#: errors logged with their traceback; the later ones are only counted (and summed up)
_LOGGED_ERRORS = 10


class DetectStage:
    """Runs `engine` and `suppressor` over records; every alert that passes goes to `emit`."""

    def __init__(
        self, engine: Engine, emit: Callable[[Alert], None], suppressor: Suppressor | None = None
    ) -> None:
        self.engine = engine
        self._emit = emit
        self._suppressor = suppressor
        #: records the rules failed on (logged, skipped)
        self.errors = 0
        #: one record in (the hot path of `detect`: what was fixed is bound once)
        self.record = self._recorder()

    def _recorder(self) -> Callable[[Record], None]:
        process = self.engine.process
        push = self._push
        emit = self._emit
        suppress = self._suppressor.process if self._suppressor is not None else None

        failed = self._failed

        def record(record: Record) -> None:
            try:
                alerts = process(record)
            except Exception as exc:  # the rules: what is emitted fails as it fails
                failed(record, exc)
                return
            if alerts:  # as `_push`, inlined
                for alert in alerts:
                    if suppress is None:
                        emit(alert)
                    else:
                        for passed in suppress(alert):
                            emit(passed)
            if record.source != K8S_AUDIT:
                for also in derived(record):
                    try:
                        more = process(also)
                    except Exception as exc:
                        failed(also, exc)
                        continue
                    for alert in more:
                        push(alert)

        return record

    def _failed(self, record: Record, exc: Exception) -> None:
        self.errors += 1
        where = f"{record.instance}:{record.line}" if record.line else record.instance
        if record.index >= 0:
            where += f" (ledger entry {record.index})"
        if self.errors <= _LOGGED_ERRORS:
            log.error("detection failed on the record of %s, skipped: %r", where, exc, exc_info=exc)
        elif self.errors % 1000 == 0:
            log.error("detection has failed on %d records (the latest: %s)", self.errors, where)

    def records(self, records: Iterable[Record]) -> None:
        record = self.record
        for r in records:
            record(r)

    def alert(self, alert: Alert) -> None:
        """An alert raised outside the rules (it is not suppressed)."""
        self._emit(alert)

    def idle(self, now_ns: int) -> None:
        """No records for a while: windows that wall time has closed give their alerts."""
        for alert in self.engine.advance(now_ns):
            self._push(alert)
        if self._suppressor is not None:
            for alert in self._suppressor.expire(now_ns):
                self._emit(alert)

    def finish(self) -> None:
        """The stream is over: every window closes."""
        for alert in self.engine.flush():
            self._push(alert)
        if self._suppressor is not None:
            for alert in self._suppressor.flush():
                self._emit(alert)

    def _push(self, alert: Alert) -> None:
        if self._suppressor is None:
            self._emit(alert)
            return
        for passed in self._suppressor.process(alert):
            self._emit(passed)


def derived(record: Record) -> list[Record]:
    """The records a record also is (a cloud provider's audit entry is a Kubernetes audit
    Event too): same origin, their own source and view; one its format cannot read is
    skipped (the original record is what the ledger holds)."""
    out = []
    for source, raw in FORMATS[record.source].derived(record.raw, record.view):
        fmt = FORMATS[source]
        try:
            view = fmt.decode(raw)
            when = fmt.time_ns(view)
        except MalformedInput:
            continue
        r = record
        out.append(
            Record(source, r.instance, r.seq, r.line, r.received_ns, when, raw, view, None, r.index)
        )
    return out
