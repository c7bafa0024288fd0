"""Amazon EKS audit logs, polled from CloudWatch Logs with FilterLogEvents.

EKS writes its control-plane logs to the log group ``/aws/eks/<cluster>/cluster`` (when
the cluster's ``audit`` log type is enabled); each log event of a
``kube-apiserver-audit-*`` stream is one audit.k8s.io Event. The source reads the group
with boto3's ``logs`` client, ``filter_log_events`` (``logGroupName``,
``logStreamNamePrefix`` = `log_stream_prefix`, ``startTime``/``endTime``, ``nextToken``
pages), every `poll_interval_secs`. Each log event becomes the envelope
``{logGroup, logStream, id, timestamp, message}`` of `normalize.cloud_eks` (made by its
`events_of_filter_log_events`): that is the record's raw, decoded by `cloud_eks.FORMAT`.

Credentials and permissions. boto3's standard chain: the ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` variables, ``AWS_PROFILE`` and the shared
credentials/config files, a web identity token (IRSA, EKS Pod Identity), the container
or EC2 instance role. The identity needs ``logs:FilterLogEvents`` on
``arn:aws:logs:<region>:<account>:log-group:<log group>:*``. `endpoint_url` points the
client elsewhere (a VPC endpoint, a test server).

Exactly once. CloudWatch ingestion is eventually consistent: an event can become visible
after newer ones, with an older timestamp. So each query re-reads a settle window: it
covers ``[start, min(now, done + slice)]`` where `done` is the time up to which the group
was read completely and ``start = done - settle_secs``; `slice` (the settle window, at
least 60 s) bounds how much one query covers while catching up. The ``eventId`` of every
event emitted (or rejected) with a timestamp at or after `start` is remembered, so a
re-read event is passed over (counted in `repeats`) and a late one is emitted. An event
that becomes visible more than `settle_secs` after its timestamp (or while the host's
clock is more than that ahead of AWS's) is missed. At most `remember_events` ids are
kept: beyond that, the oldest timestamps are forgotten and `start` moves past them (the
settle window shrinks for them, counted in `overflows`, logged). The cost of the window:
every poll reads ``settle_secs`` worth of events again (FilterLogEvents has a low
account-wide rate limit; on a busy cluster, lengthen the poll or shorten the window).

Position. ``<state_dir>/eks_cloudwatch.<source_id>.json`` holds the seq of the last
durable record, `start`, `done` and the remembered ids with their timestamps. Before a
batch is handed to `emit`, its ids are written there as `pending`; once `emit` returned
(the batch is durable), the state is saved again with them remembered. With nothing to
emit, a moved `done` is saved at most every 5 s, and on stop. All saves are atomic.

Resume. `run(..., resume_seq)` gets the last seq of this source the ledger holds. If the
state lags it (a crash after the ledger stored a batch but before the state was saved),
the first ``resume_seq - state.seq`` pending events are taken as emitted. A state ahead of
the ledger, lagging it by more than its pending batch, or missing with a non-empty ledger,
is an `InputError`: the source never guesses. With no state and an empty ledger the first
query starts `lookback_secs` ago, and that start is saved at once: a run stopped before
its first poll completed (AWS unreachable) does not make the next start later.

Errors. Throttling, 5xx answers and network errors are retried after a backoff (from the
poll interval, at most 1 s, doubling up to 30 s), counted in `errors` and logged; the run
goes on. Access denied, unknown credentials, a missing log group or a rejected request are
an `InputError` naming the log group (and, when denied, the IAM action).

Bad input. A log event that is not an audit Event (its message is not one, or it comes
from another control-plane stream because `log_stream_prefix` is wrong) goes to `Rejects`
as ``eks <logStream>/<eventId>: reason``, is counted in `rejected`, and reading goes on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_eks import FORMAT, events_of_filter_log_events
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, pending_lag, save_state, state_path
from logwarden.sources.base import require_at_least_one, require_positive

__all__ = ["EksCloudWatchSource"]

log = logging.getLogger("logwarden.sources")

_KIND = "eks_cloudwatch"
_ACTION = "logs:FilterLogEvents"
_MIN_SLICE_MS = 60_000
_BACKOFF_MAX_SECS = 30.0
_IDLE_SAVE_NS = 5_000_000_000
_CONNECT_SECS = 10
_READ_SECS = 30
#: error codes that say the identity may not read the log group
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
#: error codes that say the credentials are unknown, forged or expired
_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "ExpiredToken",
}
#: error codes worth trying again (besides any 429 or 5xx status)
_TRANSIENT = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
}

_encode = msgspec.json.Encoder().encode


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the state file holds (see the module doc); times in ms since the epoch."""

    version: int = 1
    seq: int
    start_ms: int
    done_ms: int
    #: [eventId, timestamp] of the events emitted or rejected at or after `start_ms`
    seen: list[tuple[str, int]]
    #: [eventId, timestamp] of the batch handed to `emit`, not known to be durable
    pending: list[tuple[str, int]] = []


class EksCloudWatchSource:
    """Polls an EKS cluster's audit log from CloudWatch Logs (see the module doc).

    Counters for metrics: `events` (records emitted and durable), `rejected` (log events
    that are not audit Events), `repeats` (events of the settle window read again and
    passed over), `errors` (failed requests, retried), `overflows` (times the remembered
    ids were cut short), `pages` (FilterLogEvents answers), `last_event_ns` (receive time
    of the newest record).
    """

    def __init__(
        self,
        source_id: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        log_group: str,
        region: str,
        log_stream_prefix: str = "kube-apiserver-audit",
        endpoint_url: str | None = None,
        poll_interval_secs: float = 10.0,
        lookback_secs: float = 300.0,
        settle_secs: float = 300.0,
        batch_events: int = 1024,
        page_events: int | None = None,
        remember_events: int = 200_000,
    ) -> None:
        """`page_events`: FilterLogEvents' ``limit`` (None: AWS's, up to 10,000 or 1 MB)."""
        if not log_group:
            raise ValueError("log_group must name a CloudWatch Logs log group")
        if not region:
            raise ValueError("region must name an AWS region")
        require_positive("poll_interval_secs", poll_interval_secs)
        if lookback_secs < 0 or settle_secs < 0:
            raise ValueError("lookback_secs and settle_secs must not be negative")
        require_at_least_one("batch_events", batch_events)
        if page_events is not None and not 1 <= page_events <= 10_000:
            raise ValueError(f"page_events must be from 1 to 10000, not {page_events}")
        require_at_least_one("remember_events", remember_events)
        self.source_id = source_id
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.log_group = log_group
        self.region = region
        self.log_stream_prefix = log_stream_prefix
        self.endpoint_url = endpoint_url
        self.poll_interval_secs = poll_interval_secs
        self.lookback_secs = lookback_secs
        self.batch_events = batch_events
        self.page_events = page_events
        self.remember_events = remember_events
        self.events = 0
        self.rejected = 0
        self.repeats = 0
        self.errors = 0
        self.overflows = 0
        self.pages = 0
        self.last_event_ns = 0
        self._settle_ms = int(settle_secs * 1000)
        self._slice_ms = max(self._settle_ms, _MIN_SLICE_MS)
        self._start_ms = 0
        self._done_ms = 0
        self._seq = 0
        self._seen: dict[str, int] = {}
        self._batch: list[Record] = []
        self._batch_keys: dict[str, int] = {}
        self._saved_at = 0
        self._changed = False
        #: botocore.exceptions, once the client is made
        self._bx: Any = None

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of records until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved state
        and the ledger disagree, or AWS refuses the credentials, the log group or the
        request."""
        self._resume(resume_seq)
        client = self._client()
        try:
            while not stop.is_set():
                if self._slice(client, emit, stop):
                    stop.wait(self.poll_interval_secs)
            if self._changed:
                self._save()
        finally:
            client.close()

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        state = self._load()
        if state is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its state file {self.state_file} is missing: cannot tell which log "
                    "events were stored without repeating or skipping some; restore the "
                    "state file"
                )
            self._start_ms = self._done_ms = _now_ms() - int(self.lookback_secs * 1000)
            self._save()  # the first start is the position, until a poll moves it
            return
        lag = pending_lag(
            self.state_file, self.source_id, state.seq, len(state.pending), resume_seq, "log events"
        )
        self._seq = resume_seq
        self._start_ms, self._done_ms = state.start_ms, state.done_ms
        self._seen = dict(state.seen)
        self._seen.update(state.pending[:lag])
        self._changed = bool(state.pending)

    def _load(self) -> _State | None:
        return load_state(self.state_file, _State)

    def _client(self) -> Any:
        try:
            import boto3  # type: ignore[import-untyped]
            from botocore import exceptions  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise InputError(
                f"source '{self.source_id}' (eks_cloudwatch) needs boto3: "
                "pip install 'logwarden[aws]'"
            ) from exc

        self._bx = exceptions
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},  # retried here, counted
            connect_timeout=_CONNECT_SECS,
            read_timeout=_READ_SECS,
            user_agent_extra="logwarden",
        )
        try:
            return boto3.session.Session().client(
                "logs", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        except (exceptions.BotoCoreError, ValueError) as exc:
            raise InputError(f"source '{self.source_id}': AWS client: {exc}") from exc

    # --- reading ----------------------------------------------------------------------------

    def _slice(
        self, client: Any, emit: Callable[[list[Record]], None], stop: threading.Event
    ) -> bool:
        """Read one time slice completely; True when it reached the present (wait for the
        next poll), False to go on at once (catching up, or stopped half-way)."""
        now = _now_ms()
        hi = min(now, self._done_ms + self._slice_ms)
        token: str | None = None
        while self._start_ms <= hi:
            page = self._call(client, hi, token, stop)
            if page is None:
                return False  # stopped while backing off
            if not self._page(page, emit, stop) or stop.is_set():
                return False  # the next run reads this slice again
            token = page.get("nextToken")
            if not token:
                break
        self._advance(hi)
        return hi >= now

    def _call(
        self, client: Any, hi: int, token: str | None, stop: threading.Event
    ) -> dict[str, Any] | None:
        """One FilterLogEvents page, tried until it answers; None if stopped meanwhile."""
        bx = self._bx
        credentials = (
            bx.NoCredentialsError,
            bx.PartialCredentialsError,
            bx.CredentialRetrievalError,
        )
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "startTime": self._start_ms,
            "endTime": hi,
        }
        if self.log_stream_prefix:
            kwargs["logStreamNamePrefix"] = self.log_stream_prefix
        if self.page_events is not None:
            kwargs["limit"] = self.page_events
        if token:
            kwargs["nextToken"] = token
        backoff = min(self.poll_interval_secs, 1.0)
        while True:
            try:
                page: dict[str, Any] = client.filter_log_events(**kwargs)
                self.pages += 1
                return page
            except bx.ClientError as exc:
                why = self._client_error(exc)
            except credentials as exc:
                raise InputError(
                    f"source '{self.source_id}': no usable AWS credentials ({exc}): set them "
                    "in the environment, a profile, or give the pod or instance a role"
                ) from exc
            except bx.BotoCoreError as exc:  # network: refused, reset, timed out, DNS
                why = str(exc) or type(exc).__name__
            self.errors += 1
            log.warning(
                "source '%s': reading log group '%s' failed (%s); retrying in %.1f s",
                self.source_id,
                self.log_group,
                why,
                backoff,
            )
            if stop.wait(backoff):
                return None
            backoff = min(backoff * 2, _BACKOFF_MAX_SECS)

    def _client_error(self, exc: Any) -> str:
        """What a transient AWS error was; InputError for one retrying will not cure."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        where = f"source '{self.source_id}': log group '{self.log_group}' in {self.region}"
        if code in _DENIED:
            raise InputError(
                f"{where}: access denied to {_ACTION}; allow the action {_ACTION} on "
                f"arn:aws:logs:{self.region}:<account>:log-group:{self.log_group}:* for the "
                f"identity in use (AWS said: {message})"
            ) from exc
        if code in _CREDENTIALS:
            raise InputError(f"{where}: AWS refused the credentials ({code}: {message})") from exc
        if code == "ResourceNotFoundException":
            raise InputError(
                f"{where}: the log group does not exist; is the cluster's audit logging "
                "enabled (EKS control plane logging, type 'audit')?"
            ) from exc
        if code in _TRANSIENT or status == 429 or status >= 500:
            return f"{code or status}: {message}"
        raise InputError(f"{where}: {_ACTION} failed ({code or status}: {message})") from exc

    def _page(
        self, page: dict[str, Any], emit: Callable[[list[Record]], None], stop: threading.Event
    ) -> bool:
        """Turn the new events of one page into records and emit them; False if stopped
        after a batch, before the page's end."""
        received = time.time_ns()
        fresh: list[tuple[str, int, dict[str, Any]]] = []
        keys: set[str] = set()
        for event in page.get("events") or []:
            key = _key(event)
            if key in self._seen or key in keys:
                self.repeats += 1
            else:
                keys.add(key)
                fresh.append((key, int(event.get("timestamp") or 0), event))
        units = events_of_filter_log_events(
            _encode({"events": [event for _, _, event in fresh]}), self.log_group
        )
        for (key, stamp, event), unit in zip(fresh, units, strict=True):
            where = f"eks {event.get('logStreamName')}/{event.get('eventId')}"
            if isinstance(unit, MalformedInput):
                self._reject(key, stamp, where, str(unit), _encode(event))
                continue
            self._unit(key, stamp, where, unit, received)
            if len(self._batch) >= self.batch_events:
                self._flush(emit)
                if stop.is_set():
                    return False
        self._flush(emit)
        return True

    def _unit(self, key: str, stamp: int, where: str, raw: bytes, received: int) -> None:
        """Add the record of one envelope to the batch, or reject it."""
        try:
            view = FORMAT.decode(raw)
            if view.audit is None:
                stream = view.envelope.logStream
                raise MalformedInput(
                    f"not an audit event: log stream '{stream}' is not an audit stream "
                    f"(is log_stream_prefix '{self.log_stream_prefix}' right?)"
                    if stream
                    else "not an audit event"
                )
            when = FORMAT.time_ns(view)
        except MalformedInput as exc:
            self._reject(key, stamp, where, str(exc), raw)
            return
        self._seq += 1
        self._batch.append(
            Record(FORMAT.source, self.source_id, self._seq, 0, received, when, raw, view)
        )
        self._batch_keys[key] = stamp

    def _reject(self, key: str, stamp: int, where: str, reason: str, raw: bytes) -> None:
        self.rejects.report(where, reason, raw)
        self.rejected += 1
        self._seen[key] = stamp
        self._changed = True

    def _flush(self, emit: Callable[[list[Record]], None]) -> None:
        """Emit the batch in hand: its ids written as pending first, remembered after."""
        batch = self._batch
        if not batch:
            return
        pending = list(self._batch_keys.items())
        self._save(pending)
        emit(batch)
        self._batch = []
        self._seen.update(pending)
        self._batch_keys.clear()
        self.events += len(batch)
        self.last_event_ns = batch[-1].received_ns
        self._save()

    def _advance(self, hi: int) -> None:
        """The slice up to `hi` is read: move the window and forget what fell out of it."""
        self._done_ms = max(self._done_ms, hi)
        start = max(self._start_ms, self._done_ms - self._settle_ms)
        if len(self._seen) > self.remember_events:
            stamps = sorted(self._seen.values())
            cut = stamps[len(stamps) - self.remember_events - 1]
            self.overflows += 1
            log.warning(
                "source '%s': more than %d log events in the settle window: events older "
                "than %d ms are no longer looked for",
                self.source_id,
                self.remember_events,
                cut + 1,
            )
            start = max(start, cut + 1)
        if start != self._start_ms:
            self._start_ms = start
            self._seen = {k: t for k, t in self._seen.items() if t >= start}
        self._changed = True
        if time.monotonic_ns() - self._saved_at > _IDLE_SAVE_NS:
            self._save()

    def _save(self, pending: list[tuple[str, int]] | None = None) -> None:
        state = _State(
            seq=self._seq - len(pending or ()),
            start_ms=self._start_ms,
            done_ms=self._done_ms,
            seen=list(self._seen.items()),
            pending=pending or [],
        )
        save_state(self.state_file, state)
        self._saved_at = time.monotonic_ns()
        self._changed = False


def _key(event: dict[str, Any]) -> str:
    """What tells one CloudWatch log event from another: its eventId (a digest of where
    and what it is if it has none)."""
    ident = event.get("eventId")
    if ident:
        return str(ident)
    text = f"{event.get('logStreamName')}\0{event.get('timestamp')}\0{event.get('message')}"
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
