"""Kubernetes Events: list, then watch, the cluster's Event objects through its API.

The official `kubernetes` client talks to the API server of `kubeconfig`/`context` (the
defaults kubectl uses), or, `in_cluster`, to the one of the pod's service account. Events
are read from ``events.k8s.io/v1``; when the cluster does not serve it (404), from core
``/api/v1/events``. Responses are read as the API's own JSON (`_preload_content=False`): the
raw of a record is the Event object's bytes exactly as the API sent them (a list item, or
the ``object`` of a watch event), decoded by `normalize.k8s_event.FORMAT`. The client, the
list-or-watch call of each API and the reading of a watch response are in `_watch`.

Reading. With no resourceVersion to go on (first start, or after 410 Gone), the source
lists every Event (in pages), emits those not emitted yet, and then watches from the
list's resourceVersion (``allowWatchBookmarks``). ADDED and MODIFIED objects are records;
BOOKMARKs only move the resourceVersion; DELETED (Events expire) are counted in `deleted`.
A watch that ends (the server's timeout) is opened again from the last resourceVersion;
one that fails (unreachable, 5xx, 401/403) too, after a backoff up to 30 s, counted in
`errors` and logged. 410 Gone (an ERROR watch event with code 410, or the status of a
request) means the resourceVersion was compacted away: the source lists again.

Repeats. What an occurrence is comes from `k8s_event.dedupe_key`: the Event object (uid)
and its count. The source remembers, per object, the highest count it emitted (the
`remember_events` objects seen last); an ADDED or MODIFIED object whose count is not above
it (a relist, a resync, a metadata change) is a repeat, dropped and counted in `repeats`.
A series update that raises the count is a new occurrence and emitted. After a complete
list, objects the list no longer holds (expired) are forgotten. A cluster that keeps more
live Event objects than `remember_events` may see a few repeats after a relist.

Position. After `emit` returns (the batch is durable in the ledger), the source saves in
``<state_dir>/k8s_events.<source_id>.json`` the seq of its last record, the
resourceVersion reached (empty while a list is under way: a restart lists again), the API
in use and the remembered counts. With nothing to emit, a moved resourceVersion (bookmarks,
repeats, deletions) is saved at most every 5 s, and on stop. Before a batch is handed to
`emit`, the state last saved is written again with the batch's [object, count] pairs as
`pending`. All saves are atomic.

Resume. `run(..., resume_seq)` gets the last seq of this source the ledger holds; the watch
goes on from the saved resourceVersion. If the state lags the ledger (a crash after the
ledger stored a batch but before the state was saved), the first ``resume_seq -
state.seq`` pending pairs are taken as emitted: those occurrences are repeats when the
watch, or a list, brings them again. (Skipping a number of records instead would be
wrong after a relist: a list is in name order, and Events come and expire meanwhile.) A
state ahead of the ledger, lagging it by more than its pending batch, or missing with a
non-empty ledger, is an `InputError`: the source never guesses. A bad object read after
the last save may be reported again after a crash.

Bad input. An object that is not a usable Event goes to `Rejects` as ``k8s_event
<namespace/name>: reason`` (``k8s_event resourceVersion <rv>`` when it has no name), a watch
line that is not a watch event as ``k8s_event watch after resourceVersion <rv>``; each is
counted in `rejected`, and reading goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_event import FORMAT, dedupe_key
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, pending_lag, save_state, state_path
from logwarden.sources._watch import (
    CORE_V1,
    END,
    EVENTS_V1,
    Api,
    Failed,
    Gone,
    Lines,
    ListMeta,
    Meta,
    Status,
    describe,
    list_decoder,
    new_client,
    read_meta,
    status_decoder,
    watch_decoder,
)
from logwarden.sources.base import require_at_least_one

__all__ = ["CORE_V1", "EVENTS_V1", "K8sEventsSource"]

log = logging.getLogger("logwarden.sources")

_KIND = "k8s_events"
_PAGE = 500
_CONNECT_SECS = 10
_LIST_READ_SECS = 60
_BACKOFF_MIN_SECS = 0.5
_BACKOFF_MAX_SECS = 30.0
_IDLE_SAVE_NS = 5_000_000_000
#: how often a waiting loop looks at `stop`
_POLL_SECS = 0.1


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the state file holds (see the module doc)."""

    version: int = 1
    seq: int
    resource_version: str
    api: str
    #: [uid (else namespace/name), highest count emitted], oldest first
    emitted: list[tuple[str, int]]
    #: the same of the batch handed to `emit`, not known to be durable
    pending: list[tuple[str, int]] = []


class _Emitting(Exception):
    """What `emit` raised, carried untouched past the retries of failed reads."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class K8sEventsSource:
    """Lists and watches Kubernetes Events (see the module doc).

    Counters for metrics: `events` (records emitted and durable), `rejected` (unusable
    objects and lines), `repeats` (updates of occurrences already emitted), `deleted`
    (DELETED watch events), `lists` (complete lists: the first and one per 410 Gone),
    `errors` (failed requests and watches, retried), `last_event_ns` (receive time of the
    newest record).
    """

    def __init__(
        self,
        source_id: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        namespace: str | None = None,
        batch_events: int = 1024,
        remember_events: int = 10000,
        watch_timeout_secs: int = 300,
    ) -> None:
        if in_cluster and (kubeconfig or context):
            raise ValueError("in_cluster uses the pod's service account: no kubeconfig/context")
        require_at_least_one("batch_events", batch_events)
        require_at_least_one("remember_events", remember_events)
        require_at_least_one("watch_timeout_secs", watch_timeout_secs)
        self.source_id = source_id
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.kubeconfig = kubeconfig
        self.context = context
        self.in_cluster = in_cluster
        self.namespace = namespace
        self.batch_events = batch_events
        self.remember_events = remember_events
        self.watch_timeout_secs = watch_timeout_secs
        self.events = 0
        self.rejected = 0
        self.repeats = 0
        self.deleted = 0
        self.lists = 0
        self.errors = 0
        self.last_event_ns = 0
        self.api = EVENTS_V1
        self._rv = ""
        self._emitted: OrderedDict[str, int] = OrderedDict()
        self._seq = 0
        self._batch: list[Record] = []
        #: [ident, count] of each record of the batch
        self._batch_keys: list[tuple[str, int]] = []
        #: the state last saved: what a batch's `pending` is written with
        self._saved = _State(seq=0, resource_version="", api=EVENTS_V1, emitted=[])
        self._saved_at = 0
        self._changed = False

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of records until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved state
        and the ledger disagree or the kubeconfig is unusable."""
        self._resume(resume_seq)
        api_client = new_client(self.kubeconfig, self.context, self.in_cluster, self.source_id)
        try:
            self._loop(Api(api_client, self.namespace), emit, stop)
            self._flush(emit, save=True)
        except _Emitting as exc:
            raise exc.error from None  # what emit raised, past the retries of reading
        finally:
            api_client.close()

    def _loop(self, api: Api, emit: Callable[[list[Record]], None], stop: threading.Event) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        backoff = _BACKOFF_MIN_SECS
        while not stop.is_set():
            try:
                if self._rv:
                    started = time.monotonic()
                    self._watch(api, emit, stop)
                    if time.monotonic() - started < 1:  # ended at once: do not spin
                        stop.wait(_BACKOFF_MIN_SECS)
                else:
                    self._list(api, emit, stop)
                backoff = _BACKOFF_MIN_SECS
            except Gone:
                self._flush(emit)
                log.info(
                    "source '%s': resourceVersion '%s' is gone: listing again",
                    self.source_id,
                    self._rv,
                )
                self._rv = ""
                self._changed = True
            except (ApiException, HTTPError, OSError, Failed) as exc:
                self._flush(emit)
                self.errors += 1
                log.warning(
                    "source '%s': reading Events failed (%s); retrying in %.1f s",
                    self.source_id,
                    describe(exc),
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_SECS)

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        state = self._load()
        if state is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its state file {self.state_file} is missing: cannot tell which Events "
                    "were stored without repeating or skipping some; restore the state file"
                )
            self._save()  # so that a crash after the first batch is durable can resume
            return
        lag = pending_lag(
            self.state_file, self.source_id, state.seq, len(state.pending), resume_seq, "Events"
        )
        self._seq = resume_seq
        self._rv = state.resource_version
        self.api = state.api if state.api in (EVENTS_V1, CORE_V1) else EVENTS_V1
        self._emitted = OrderedDict(state.emitted)
        for ident, count in state.pending[:lag]:
            self._remember(ident, count)
        self._save()

    def _load(self) -> _State | None:
        return load_state(self.state_file, _State)

    # --- list and watch ---------------------------------------------------------------------

    def _list(self, api: Api, emit: Callable[[list[Record]], None], stop: threading.Event) -> None:
        """List every Event, emit the new ones; on success the watch starts from the list's
        resourceVersion. Stopped half-way, the state says to list again."""
        listed: set[str] = set()
        cont: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": _PAGE}
            if cont:
                kwargs["_continue"] = cont
            resp = self._request(api, _request_timeout=(_CONNECT_SECS, _LIST_READ_SECS), **kwargs)
            try:
                data = resp.data
            finally:
                resp.release_conn()
            received = time.time_ns()
            try:
                page = list_decoder.decode(data)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise Failed(f"the Event list is not a list: {exc}") from None
            for raw in page.items or []:
                item = bytes(raw)
                ident = self._object(item, read_meta(item), received, "ADDED")
                if ident is not None:
                    listed.add(ident)
                if len(self._batch) >= self.batch_events:
                    self._flush(emit)
            if stop.is_set():
                return
            meta = page.metadata or ListMeta()
            cont = meta.cont
            if not cont:
                break
        for ident in [i for i in self._emitted if i not in listed]:
            del self._emitted[ident]  # expired: the cluster no longer holds it
        self.lists += 1
        self._rv = meta.resourceVersion or ""
        if not self._rv:
            raise Failed("the Event list has no resourceVersion")
        self._changed = True
        self._flush(emit, save=True)

    def _watch(self, api: Api, emit: Callable[[list[Record]], None], stop: threading.Event) -> None:
        """Watch from the resourceVersion reached until the watch ends or `stop` is set."""
        resp = self._request(
            api,
            watch=True,
            resource_version=self._rv,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout_secs,
            _request_timeout=(_CONNECT_SECS, self.watch_timeout_secs + 30),
        )
        lines = Lines(resp)
        try:
            while not stop.is_set():
                item = lines.get(_POLL_SECS)
                while isinstance(item, tuple):
                    self._watch_line(*item)
                    if len(self._batch) >= self.batch_events:
                        break
                    item = lines.get(0)
                self._flush(emit)
                if isinstance(item, BaseException):
                    raise item
                if item is END:
                    return
        finally:
            lines.close()

    def _request(self, api: Api, **kwargs: Any) -> Any:
        """The raw response of a list or watch of the API in use; 404 from events.k8s.io
        switches to core/v1 once. Raises Gone on 410."""
        from kubernetes.client.exceptions import ApiException

        while True:
            try:
                return api.call(self.api, _preload_content=False, **kwargs)
            except ApiException as exc:
                if exc.status == 410:
                    raise Gone from None
                if exc.status != 404 or self.api != EVENTS_V1:
                    raise
            log.info(
                "source '%s': the API server does not serve %s: reading core/v1 Events",
                self.source_id,
                EVENTS_V1,
            )
            self.api = CORE_V1
            self._changed = True

    def _watch_line(self, received: int, line: bytes) -> None:
        """Handle one line of a watch. Raises Gone (410) and Failed (other errors)."""
        try:
            event = watch_decoder.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            where = f"k8s_event watch after resourceVersion {self._rv}"
            self._reject(where, f"not a watch event: {exc}", line)
            return
        raw = bytes(event.object)
        if event.type == "ERROR":
            try:
                status = status_decoder.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError):
                status = Status(message=raw.decode(errors="replace"))
            if status.code == 410:
                raise Gone
            raise Failed(f"watch error {status.code} {status.reason}: {status.message}")
        meta = read_meta(raw)
        self._object(raw, meta, received, event.type)
        if meta.resourceVersion and meta.resourceVersion != self._rv:
            self._rv = meta.resourceVersion
            self._changed = True

    def _object(self, raw: bytes, meta: Meta, received: int, kind: str) -> str | None:
        """Handle one object of a list or watch; its dedupe ident, if any."""
        if kind in ("ADDED", "MODIFIED"):
            return self._event(raw, received, meta)
        if kind == "DELETED":
            self.deleted += 1
        elif kind != "BOOKMARK":
            self._reject(_where(meta, self._rv), f"unknown watch event type '{kind}'", raw)
        return None

    def _event(self, raw: bytes, received: int, meta: Meta) -> str | None:
        where = _where(meta, self._rv)
        try:
            view = FORMAT.decode(raw)
            if isinstance(view, list):
                raise MalformedInput("a list of Events where one Event was expected")
            when = FORMAT.time_ns(view)
        except MalformedInput as exc:
            self._reject(where, str(exc), raw)
            return None
        ident, count = dedupe_key(view)
        if self._emitted.get(ident, 0) >= count:
            self.repeats += 1
            return ident
        self._remember(ident, count)
        self._seq += 1
        self._batch.append(
            Record(FORMAT.source, self.source_id, self._seq, 0, received, when, raw, view)
        )
        self._batch_keys.append((ident, count))
        return ident

    def _remember(self, ident: str, count: int) -> None:
        """Note the highest count emitted of an object, forgetting the oldest past
        `remember_events`."""
        self._emitted[ident] = max(count, self._emitted.get(ident, 0))
        self._emitted.move_to_end(ident)
        while len(self._emitted) > self.remember_events:
            self._emitted.popitem(last=False)

    # --- state ------------------------------------------------------------------------------

    def _flush(self, emit: Callable[[list[Record]], None], *, save: bool = False) -> None:
        """Emit the batch in hand (the state last saved written first with the batch's
        pairs pending), then save the state; with no batch, save the state if it moved and
        was last saved long ago (or `save`)."""
        batch = self._batch
        if batch:
            pending = msgspec.structs.replace(self._saved, pending=self._batch_keys)
            save_state(self.state_file, pending)
            try:
                emit(batch)
            except BaseException as exc:
                raise _Emitting(exc) from None
            self._batch = []
            self._batch_keys = []
            self.events += len(batch)
            self.last_event_ns = batch[-1].received_ns
            self._save()
        elif save or (self._changed and time.monotonic_ns() - self._saved_at > _IDLE_SAVE_NS):
            self._save()

    def _save(self) -> None:
        state = _State(
            seq=self._seq,
            resource_version=self._rv,
            api=self.api,
            emitted=list(self._emitted.items()),
        )
        save_state(self.state_file, state)
        self._saved = state
        self._saved_at = time.monotonic_ns()
        self._changed = False

    def _reject(self, where: str, reason: str, raw: bytes) -> None:
        """Report an unusable object."""
        self.rejected += 1
        self.rejects.report(where, reason, raw)


def _where(meta: Meta, rv: str) -> str:
    """How a reject names an object: namespace/name, else its resourceVersion."""
    if meta.name:
        return (
            f"k8s_event {meta.namespace}/{meta.name}"
            if meta.namespace
            else f"k8s_event {meta.name}"
        )
    if meta.resourceVersion:
        return f"k8s_event resourceVersion {meta.resourceVersion}"
    return f"k8s_event watch after resourceVersion {rv}"
