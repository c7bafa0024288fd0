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
pyasn1-modules to what logwarden already has (requests, cryptography).

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
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_gke import FORMAT, GkeEntry
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, save_state, state_path

__all__ = ["GkePubSubSource"]

log = logging.getLogger("logwarden.sources")

_KIND = "gke_pubsub"
_PERMISSION = "pubsub.subscriptions.consume"
_SCOPES = ["https://www.googleapis.com/auth/pubsub"]
_ENDPOINT = "https://pubsub.googleapis.com"
_SUBSCRIPTION = re.compile(r"projects/[^/]+/subscriptions/[^/]+")
_CONNECT_SECS = 10
#: a pull waits on the server for messages (a bounded time) before it answers
_PULL_READ_SECS = 90
_CALL_READ_SECS = 30
_BACKOFF_MAX_SECS = 30.0
#: how often a waiting loop looks at `stop`
_POLL_SECS = 0.05
#: ack ids per acknowledge or modifyAckDeadline request (the request is at most 512 KB)
_ACK_CHUNK = 1000


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the state file holds (see the module doc)."""

    version: int = 1
    seq: int
    #: [messageId, entry key ("" for a rejected message)], oldest first
    seen: list[tuple[str, str]]
    #: the same of the batch handed to `emit`, not known to be durable
    pending: list[tuple[str, str]] = []


class _Message(msgspec.Struct):
    data: str = ""
    messageId: str = ""


class _Received(msgspec.Struct):
    ackId: str
    message: _Message = msgspec.field(default_factory=_Message)


class _Pulled(msgspec.Struct):
    receivedMessages: list[_Received] = []


class _Status(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""


class _ErrorBody(msgspec.Struct):
    error: _Status | None = None


_pulled_decoder = msgspec.json.Decoder(_Pulled)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


class _Transient(Exception):
    """A failed request worth trying again."""


class _Invalid(InputError):
    """Pub/Sub rejected a request (400, 412): for an acknowledgement, expired ack ids."""


@dataclass(slots=True)
class _Unit:
    """One message of a pull that becomes a record."""

    ack_id: str
    message_id: str
    key: str
    data: bytes
    view: GkeEntry
    time_ns: int


class _Api:
    """Pub/Sub's REST methods on one subscription through one authorized session (each
    thread has its own)."""

    def __init__(self, credentials: Any, endpoint: str, subscription: str, where: str) -> None:
        from google.auth.transport import requests as transport

        authorized: Any = transport.AuthorizedSession  # untyped
        self._session: Any = authorized(credentials)
        self._session.headers["User-Agent"] = "logwarden"
        self._base = f"{endpoint.rstrip('/')}/v1/{subscription}"
        self._subscription = subscription
        self._where = where

    def pull(self, max_messages: int) -> list[_Received]:
        data = self._call("pull", {"maxMessages": max_messages}, _PULL_READ_SECS)
        try:
            return _pulled_decoder.decode(data).receivedMessages
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _Transient(f"the pull answer is not a PullResponse: {exc}") from None

    def acknowledge(self, ack_ids: list[str]) -> None:
        for i in range(0, len(ack_ids), _ACK_CHUNK):
            self._call("acknowledge", {"ackIds": ack_ids[i : i + _ACK_CHUNK]}, _CALL_READ_SECS)

    def modify(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), _ACK_CHUNK):
            body = {"ackIds": ack_ids[i : i + _ACK_CHUNK], "ackDeadlineSeconds": seconds}
            self._call("modifyAckDeadline", body, _CALL_READ_SECS)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, body: dict[str, Any], read_secs: int) -> bytes:
        import requests
        from google.auth import exceptions as gx

        try:
            resp = self._session.post(
                f"{self._base}:{method}",
                data=msgspec.json.encode(body),
                headers={"Content-Type": "application/json"},
                timeout=(_CONNECT_SECS, read_secs),
            )
        except (requests.RequestException, gx.TransportError) as exc:
            raise _Transient(f"{method}: {exc}") from None
        except gx.RefreshError as exc:
            if exc.retryable:
                raise _Transient(f"{method}: getting a token failed: {exc}") from None
            raise InputError(f"{self._where}: the credentials were refused ({exc})") from exc
        except gx.GoogleAuthError as exc:
            raise InputError(f"{self._where}: the credentials are unusable ({exc})") from exc
        if resp.status_code == 200:
            return bytes(resp.content)
        raise self._error(method, resp.status_code, resp.content)

    def _error(self, method: str, code: int, content: bytes) -> Exception:
        """What a failed answer means (see the module doc)."""
        try:
            status = _error_decoder.decode(content).error or _Status()
        except (msgspec.DecodeError, UnicodeDecodeError):
            status = _Status(message=content[:200].decode("utf-8", "replace").strip())
        said = f"{status.status or code}: {status.message}".rstrip(": ")
        if code in (408, 429) or code >= 500:
            return _Transient(f"{method}: {said}")
        where = self._where
        if code == 403:
            return InputError(
                f"{where}: permission denied to {method}; grant the identity in use "
                f"{_PERMISSION} on {self._subscription} (the role roles/pubsub.subscriber) "
                f"(Pub/Sub said: {said})"
            )
        if code == 401:
            return InputError(f"{where}: Pub/Sub refused the credentials ({said})")
        if code == 404:
            return InputError(f"{where}: the subscription does not exist ({said})")
        if code in (400, 412):
            return _Invalid(f"{where}: {method} was rejected ({said})")
        return InputError(f"{where}: {method} failed ({said})")


class _Puller:
    """Runs each pull in a thread of its own so that `stop` is seen while it waits. A pull
    still waiting when `run` ends hands back what it brings (deadline 0) and closes its
    session."""

    def __init__(self, api: _Api, max_messages: int) -> None:
        self._api = api
        self._max = max_messages
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._closed = False
        self._result: list[_Received] = []
        self._error: Exception | None = None

    def pull(self, stop: threading.Event) -> list[_Received] | None:
        """The messages of one pull; None if `stop` was set while waiting."""
        if self._done.is_set():
            self._done.clear()
            threading.Thread(target=self._work, name="gke-pubsub-pull", daemon=True).start()
        while not self._done.wait(_POLL_SECS):
            if stop.is_set():
                return None  # the pull goes on: `close` hands back what it brings
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if not self._done.is_set():
                return  # the pull thread closes the session when it is done
        self._api.close()

    def _work(self) -> None:
        result: list[_Received] = []
        error: Exception | None = None
        try:
            result = self._api.pull(self._max)
        except Exception as exc:
            error = exc
        with self._lock:
            self._result, self._error = result, error
            self._done.set()
            if not self._closed:
                return
        try:
            if result:
                self._api.modify([r.ackId for r in result], 0)
        except Exception as exc:
            log.info("could not hand back %d pulled messages (%s)", len(result), exc)
        finally:
            self._api.close()


class _Lease:
    """Extends the ack deadline of the messages held, every half deadline, in a thread of
    its own (which closes its session when it ends)."""

    def __init__(self, api: _Api, deadline_secs: int, source: GkePubSubSource) -> None:
        self._api = api
        self._deadline = deadline_secs
        self._source = source
        self._held: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="gke-pubsub-lease", daemon=True).start()

    def hold(self, ack_ids: list[str]) -> None:
        with self._lock:
            self._held.update(dict.fromkeys(ack_ids))

    def release(self, ack_ids: list[str]) -> None:
        with self._lock:
            for ack_id in ack_ids:
                self._held.pop(ack_id, None)

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._deadline / 2):
                with self._lock:
                    ack_ids = list(self._held)
                if not ack_ids:
                    continue
                try:
                    self._api.modify(ack_ids, self._deadline)
                    self._source.extended += len(ack_ids)
                except Exception as exc:  # a message that expires comes again: a repeat
                    self._source._failed(
                        f"extending the ack deadline of {len(ack_ids)} messages: {exc}"
                    )
        finally:
            self._api.close()


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
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        if batch_events < 1:
            raise ValueError(f"batch_events must be at least 1, not {batch_events}")
        if poll_interval_secs <= 0:
            raise ValueError(f"poll_interval_secs must be positive, not {poll_interval_secs}")
        if not 1 <= ack_deadline_secs <= 600:
            raise ValueError(f"ack_deadline_secs must be from 1 to 600, not {ack_deadline_secs}")
        if remember_messages < 1:
            raise ValueError(f"remember_messages must be at least 1, not {remember_messages}")
        self.source_id = source_id
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.subscription = subscription
        self.credentials_file = credentials_file
        self.endpoint = endpoint or _ENDPOINT
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
        credentials = self._credentials()
        api = _Api(credentials, self.endpoint, self.subscription, self._where)
        puller = _Puller(
            _Api(credentials, self.endpoint, self.subscription, self._where), self.max_messages
        )
        lease = _Lease(
            _Api(credentials, self.endpoint, self.subscription, self._where),
            self.ack_deadline_secs,
            self,
        )
        try:
            backoff = min(self.poll_interval_secs, 1.0)
            while not stop.is_set():
                try:
                    received = puller.pull(stop)
                except _Transient as exc:
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
        lag = resume_seq - state.seq
        if lag < 0 or lag > len(state.pending):
            held = "only " if lag < 0 else ""
            raise InputError(
                f"the state file {self.state_file} says records up to {state.seq} of source "
                f"'{self.source_id}' are stored (and {len(state.pending)} more may be), but "
                f"the ledger holds {held}{resume_seq}: the state and the ledger do not "
                "belong together (restored from another copy?); refusing to skip or repeat "
                "messages"
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

    def _credentials(self) -> Any:
        try:
            import google.auth
            from google.auth import exceptions as gx
            from google.auth.transport import requests as _  # noqa: F401 (needs requests)
            from google.oauth2 import service_account
        except ImportError as exc:
            raise InputError(
                f"source '{self.source_id}' (gke_pubsub) needs google-auth: "
                "pip install 'logwarden[gcp]'"
            ) from exc
        what = self.credentials_file or "Application Default Credentials"
        try:
            if not self.credentials_file:
                credentials, _project = google.auth.default(scopes=_SCOPES)
                return credentials
            info = json.loads(Path(self.credentials_file).read_bytes())
            kind = info.get("type") if isinstance(info, dict) else None
            if kind != "service_account":
                raise ValueError(
                    f"not a service account key (type {kind!r}); other credentials go in "
                    "GOOGLE_APPLICATION_CREDENTIALS"
                )
            load: Any = service_account.Credentials.from_service_account_info  # untyped
            return load(info, scopes=_SCOPES)
        except OSError as exc:
            raise InputError(
                f"source '{self.source_id}': cannot read the credentials file {what}: "
                f"{exc.strerror}"
            ) from exc
        except (gx.GoogleAuthError, ValueError) as exc:
            raise InputError(
                f"source '{self.source_id}': no usable Google credentials ({what}: {exc}); "
                "set credentials_file to a service account key or GOOGLE_APPLICATION_CREDENTIALS, "
                "or give the pod a Workload Identity"
            ) from exc

    # --- a pull -----------------------------------------------------------------------------

    def _handle(
        self,
        received: list[_Received],
        api: _Api,
        lease: _Lease,
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

    def _units(self, received: list[_Received], done: list[str]) -> list[_Unit]:
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

    def _ack(self, api: _Api, lease: _Lease, ack_ids: list[str], stop: threading.Event) -> None:
        """Acknowledge stored or rejected messages; retried until done or `stop` (a message
        not acknowledged comes again and is a repeat)."""
        backoff = min(self.poll_interval_secs, 1.0)
        while True:
            try:
                api.acknowledge(ack_ids)
                self.acked += len(ack_ids)
                break
            except _Invalid as exc:  # expired ack ids: the messages come again, as repeats
                self._failed(str(exc))
                break
            except _Transient as exc:
                self._failed(str(exc), backoff)
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, _BACKOFF_MAX_SECS)
        lease.release(ack_ids)

    def _hand_back(self, api: _Api, ack_ids: list[str]) -> None:
        """Give messages back unstored (deadline 0: redelivered at once); once only."""
        try:
            api.modify(ack_ids, 0)
        except (_Transient, _Invalid) as exc:
            self._failed(f"handing back {len(ack_ids)} messages: {exc}")

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


def _data(message: _Message) -> bytes:
    """The message's data, base64-decoded."""
    if not message.data:
        raise MalformedInput("the message has no data: not a LogEntry")
    try:
        return base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput("the message data is not base64") from None


def _raw(message: _Message) -> bytes:
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
