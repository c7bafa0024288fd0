"""GKE audit logs, pulled from a Pub/Sub subscription that a Cloud Logging sink feeds.

A Cloud Logging sink whose destination is a Pub/Sub topic publishes each matching
LogEntry as one message, the entry's JSON as the message data. The source pulls the
topic's subscription `subscription` (``projects/P/subscriptions/S``) with Pub/Sub's REST
API: ``POST {endpoint}/v1/{subscription}:pull`` (``maxMessages`` = `max_messages`),
``:acknowledge`` and ``:modifyAckDeadline``. Each message's data, base64-decoded, is the
raw of one record, decoded by `normalize.cloud_gke.FORMAT`.

Library. google-auth's `AuthorizedSession` (requests, with the OAuth token of the
credentials) and the three REST methods, rather than google-cloud-pubsub: that client
needs grpcio, protobuf, proto-plus, google-api-core and OpenTelemetry's SDK for three JSON
calls, and its high-level subscriber (streaming pull, gRPC only) hides when a message is
acknowledged, which must be only after the ledger holds it. google-auth adds only
pyasn1-modules to what logwarden already has (requests, cryptography). That client, the
threads that pull and extend deadlines through it, and finding the credentials are in
`_pubsub_api`.

Credentials and permissions. `credentials_file`, a service account key (JSON), else
Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` (any credentials file,
workload identity federation too), gcloud's user credentials, the GKE or GCE metadata
server (Workload Identity). The identity needs ``pubsub.subscriptions.consume``
on the subscription (the role ``roles/pubsub.subscriber``). `endpoint` points the source
elsewhere (a private or regional endpoint, a test server).

Delivery. Pull, decode, emit (the batch is durable in the ledger when `emit` returns),
save the state, and only then acknowledge: what is acknowledged is stored. Pub/Sub
redelivers a message that was not acknowledged within its ack deadline, so nothing is
lost, and a message may come again although it was stored (the process died between the
save and the acknowledgement, or the acknowledgement was lost): the source remembers the
messageIds of the last `remember_messages` messages it stored or rejected, and the
identity of their entries (insertId, timestamp, logName: a Logging sink may publish an
entry twice, under two messageIds); a redelivery of one of them is dropped, counted in
`repeats`, and acknowledged again. While a batch is held (a slow ledger), a thread extends
the deadline of its messages every half `ack_deadline_secs` (the subscription's ack
deadline; Pub/Sub's default is 10 s). A pull waits for messages in its own thread, so
`stop` ends `run` at once; messages that pull brings back after `run` ended are handed
back (deadline 0, redelivered at once), as are those of a pull not yet emitted when `stop`
came between two of its batches.

State. ``<state_dir>/gke_pubsub.<source_id>.json`` holds the seq of the last durable
record and the remembered ``[messageId, entry key]`` pairs. Before a batch is handed to
`emit`, its pairs are written there as `pending`; once `emit` returned they are remembered
and the state is saved again, before acknowledging. All saves are atomic.

Resume. `run(..., resume_seq)` gets the last seq of this source the ledger holds. If the
state lags it (a crash after the ledger stored a batch but before the state was saved),
the first ``resume_seq - state.seq`` pending messages are taken as stored: when Pub/Sub
redelivers them they are repeats. A state ahead of the ledger, lagging it by more than its
pending batch, or missing with a non-empty ledger, is an `InputError`: the source never
guesses.

Errors. Network errors, 408, 429 and 5xx answers are retried after a backoff (from the
poll interval, at most 1 s, doubling up to 30 s), counted in `errors` and logged. A
denied permission, refused credentials, an unknown subscription or a rejected request
are an `InputError` naming the subscription (and, when denied, the IAM permission).

Bad input. A message whose data is not a GKE audit LogEntry (not base64, empty, not JSON,
another kind of log entry because the sink's filter lets it through) goes to `Rejects` as
``gke <messageId>: reason``, is counted in `rejected`, remembered, and acknowledged: it is
kept in the rejects file rather than redelivered forever.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_gke import FORMAT, GkeEntry
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, pending_lag, save_state, state_path
from logwarden.sources._pubsub_api import (
    ENDPOINT,
    Api,
    Invalid,
    Lease,
    Message,
    Puller,
    Received,
    Transient,
    load_credentials,
)
from logwarden.sources.base import require_at_least_one, require_positive

__all__ = ["GkePubSubSource"]

log = logging.getLogger("logwarden.sources")

_KIND = "gke_pubsub"
_SUBSCRIPTION = re.compile(r"projects/[^/]+/subscriptions/[^/]+")
_BACKOFF_MAX_SECS = 30.0


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the state file holds (see the module doc)."""

    version: int = 1
    seq: int
    #: [messageId, entry key ("" for a rejected message)], oldest first
    seen: list[tuple[str, str]]
    #: the same of the batch handed to `emit`, not known to be durable
    pending: list[tuple[str, str]] = []


@dataclass(slots=True)
class _Unit:
    """One message of a pull that becomes a record."""

    ack_id: str
    message_id: str
    key: str
    data: bytes
    view: GkeEntry
    time_ns: int


class GkePubSubSource:
    """Pulls GKE audit LogEntries from a Pub/Sub subscription (see the module doc).

    Counters for metrics: `events` (records emitted and durable), `rejected` (messages that
    are not GKE audit LogEntries), `repeats` (redeliveries of stored messages, dropped),
    `errors` (failed requests, retried), `pulls` (pull answers), `acked` (messages
    acknowledged), `extended` (ack deadline extensions, per message), `last_event_ns`
    (receive time of the newest record).
    """

    def __init__(
        self,
        source_id: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        subscription: str,
        credentials_file: str | None = None,
        endpoint: str | None = None,
        max_messages: int = 500,
        batch_events: int = 1024,
        poll_interval_secs: float = 1.0,
        ack_deadline_secs: int = 10,
        remember_messages: int = 10_000,
    ) -> None:
        if not _SUBSCRIPTION.fullmatch(subscription):
            raise ValueError(
                f"subscription must be projects/PROJECT/subscriptions/NAME, not {subscription!r}"
            )
        require_at_least_one("max_messages", max_messages)
        require_at_least_one("batch_events", batch_events)
        require_positive("poll_interval_secs", poll_interval_secs)
        if not 1 <= ack_deadline_secs <= 600:
            raise ValueError(f"ack_deadline_secs must be from 1 to 600, not {ack_deadline_secs}")
        require_at_least_one("remember_messages", remember_messages)
        self.source_id = source_id
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.subscription = subscription
        self.credentials_file = credentials_file
        self.endpoint = endpoint or ENDPOINT
        self.max_messages = max_messages
        self.batch_events = batch_events
        self.poll_interval_secs = poll_interval_secs
        self.ack_deadline_secs = ack_deadline_secs
        self.remember_messages = remember_messages
        self.events = 0
        self.rejected = 0
        self.repeats = 0
        self.errors = 0
        self.pulls = 0
        self.acked = 0
        self.extended = 0
        self.last_event_ns = 0
        self._where = f"source '{source_id}': subscription '{subscription}'"
        self._seq = 0
        #: messageId -> entry key of the messages remembered, oldest first
        self._seen: OrderedDict[str, str] = OrderedDict()
        #: entry key -> messageId
        self._entries: dict[str, str] = {}

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of records until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved state
        and the ledger disagree, or Pub/Sub refuses the credentials or the subscription."""
        self._resume(resume_seq)
        credentials = load_credentials(self.credentials_file, self.source_id)
        api = Api(credentials, self.endpoint, self.subscription, self._where)
        puller = Puller(
            Api(credentials, self.endpoint, self.subscription, self._where), self.max_messages
        )
        lease = Lease(
            Api(credentials, self.endpoint, self.subscription, self._where),
            self.ack_deadline_secs,
            self._extended,
            self._failed,
        )
        try:
            backoff = min(self.poll_interval_secs, 1.0)
            while not stop.is_set():
                try:
                    received = puller.pull(stop)
                except Transient as exc:
                    self._failed(str(exc), backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_SECS)
                    continue
                if received is None:
                    break
                backoff = min(self.poll_interval_secs, 1.0)
                self.pulls += 1
                if received:
                    self._handle(received, api, lease, emit, stop)
                else:
                    stop.wait(self.poll_interval_secs)
        finally:
            lease.close()
            puller.close()
            api.close()

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        state = self._load()
        if state is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its state file {self.state_file} is missing: cannot tell which messages "
                    "were stored without repeating some; restore the state file"
                )
            self._seq = 0
            self._save()
            return
        lag = pending_lag(
            self.state_file, self.source_id, state.seq, len(state.pending), resume_seq, "messages"
        )
        self._seq = resume_seq
        self._seen.clear()
        self._entries.clear()
        for message_id, key in [*state.seen, *state.pending[:lag]]:
            self._remember(message_id, key)
        if state.pending:
            self._save()

    def _load(self) -> _State | None:
        return load_state(self.state_file, _State)

    # --- a pull -----------------------------------------------------------------------------

    def _handle(
        self,
        received: list[Received],
        api: Api,
        lease: Lease,
        emit: Callable[[list[Record]], None],
        stop: threading.Event,
    ) -> None:
        """Store the new LogEntries of one pull, then acknowledge all its messages."""
        now = time.time_ns()
        lease.hold([r.ackId for r in received])
        done: list[str] = []  # acknowledged with the first save
        units = self._units(received, done)
        for i in range(0, len(units), self.batch_events):
            if i and stop.is_set():  # hand the rest back: redelivered to the next run
                rest = [u.ack_id for u in units[i:]]
                lease.release(rest)
                self._hand_back(api, rest)
                break
            chunk = units[i : i + self.batch_events]
            records = [
                Record(
                    FORMAT.source, self.source_id, self._seq + n, 0, now, u.time_ns, u.data, u.view
                )
                for n, u in enumerate(chunk, 1)
            ]
            self._save([(u.message_id, u.key) for u in chunk])
            emit(records)
            self._seq = records[-1].seq
            for u in chunk:
                self._remember(u.message_id, u.key)
            self.events += len(records)
            self.last_event_ns = now
            self._save()
            self._ack(api, lease, done + [u.ack_id for u in chunk], stop)
            done = []
        if done:
            self._save()
            self._ack(api, lease, done, stop)

    def _units(self, received: list[Received], done: list[str]) -> list[_Unit]:
        """The messages of a pull that become records; the ack ids of repeats and rejected
        messages go to `done`."""
        units: list[_Unit] = []
        message_ids: set[str] = set()
        keys: set[str] = set()
        for r in received:
            message_id = r.message.messageId or r.ackId
            if message_id in self._seen or message_id in message_ids:
                self.repeats += 1
                done.append(r.ackId)
                continue
            try:
                data = _data(r.message)
                view = FORMAT.decode(data)
                when = FORMAT.time_ns(view)
            except MalformedInput as exc:
                self.rejects.report(f"gke {message_id}", str(exc), _raw(r.message))
                self.rejected += 1
                self._remember(message_id, "")
                done.append(r.ackId)
                continue
            key = _entry_key(view)
            if key in self._entries or key in keys:
                self.repeats += 1
                self._remember(message_id, "")
                done.append(r.ackId)
                continue
            message_ids.add(message_id)
            keys.add(key)
            units.append(_Unit(r.ackId, message_id, key, data, view, when))
        return units

    def _ack(self, api: Api, lease: Lease, ack_ids: list[str], stop: threading.Event) -> None:
        """Acknowledge stored or rejected messages; retried until done or `stop` (a message
        not acknowledged comes again and is a repeat)."""
        backoff = min(self.poll_interval_secs, 1.0)
        while True:
            try:
                api.acknowledge(ack_ids)
                self.acked += len(ack_ids)
                break
            except Invalid as exc:  # expired ack ids: the messages come again, as repeats
                self._failed(str(exc))
                break
            except Transient as exc:
                self._failed(str(exc), backoff)
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, _BACKOFF_MAX_SECS)
        lease.release(ack_ids)

    def _hand_back(self, api: Api, ack_ids: list[str]) -> None:
        """Give messages back unstored (deadline 0: redelivered at once); once only."""
        try:
            api.modify(ack_ids, 0)
        except (Transient, Invalid) as exc:
            self._failed(f"handing back {len(ack_ids)} messages: {exc}")

    def _extended(self, count: int) -> None:
        """Count messages whose ack deadline the lease extended."""
        self.extended += count

    def _failed(self, why: str, retry_secs: float | None = None) -> None:
        self.errors += 1
        then = "" if retry_secs is None else f"; retrying in {retry_secs:.1f} s"
        log.warning("%s: %s%s", self._where, why, then)

    # --- state ------------------------------------------------------------------------------

    def _remember(self, message_id: str, key: str) -> None:
        self._seen[message_id] = key
        self._seen.move_to_end(message_id)
        if key:
            self._entries[key] = message_id
        while len(self._seen) > self.remember_messages:
            old_id, old_key = self._seen.popitem(last=False)
            if old_key and self._entries.get(old_key) == old_id:
                del self._entries[old_key]

    def _save(self, pending: list[tuple[str, str]] | None = None) -> None:
        state = _State(seq=self._seq, seen=list(self._seen.items()), pending=pending or [])
        save_state(self.state_file, state)


def _data(message: Message) -> bytes:
    """The message's data, base64-decoded."""
    if not message.data:
        raise MalformedInput("the message has no data: not a LogEntry")
    try:
        return base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput("the message data is not base64") from None


def _raw(message: Message) -> bytes:
    """What to keep of a rejected message: its data, else the base64 text as received."""
    try:
        return _data(message)
    except MalformedInput:
        return message.data.encode()


def _entry_key(entry: GkeEntry) -> str:
    """What tells one LogEntry from another (Logging's own rule: the same insertId and
    timestamp in the same log is the same entry), as a short digest."""
    text = f"{entry.insertId}\0{entry.timestamp or entry.receiveTimestamp}\0{entry.logName}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
