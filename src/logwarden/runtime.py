"""`logwarden run` assembled: every part built from a `Config`, started and stopped in order.

Start: the data directory, the ledger's signing key (generated on first start), the
ledger, the rules, the alert stage (routing, escalation, receivers), the pipeline, the file
sources (a thread each), then the HTTPS webhooks, the alerts API and the operations
endpoint. Stop (SIGTERM, SIGINT, or `stop()`): the webhooks and the API stop taking
requests and finish those in flight, the file sources stop after their current batch, the
pipeline drains (everything accepted reaches the ledger, the detectors and the alert
stage), the receivers are sent what is due (the rest stays in the outbox for the next
start), and the operations endpoint closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from logwarden.alerts.api import AlertsApi
from logwarden.alerts.setup import alert_stage, api_token
from logwarden.alerts.state import AlertStore
from logwarden.config import Config, K8sAuditWebhookSource
from logwarden.detect.engine import Engine
from logwarden.detect.rulesets import load_rules
from logwarden.detect.silence import SilenceWatch, Watched
from logwarden.detect.suppression import Suppressor
from logwarden.errors import UsageError
from logwarden.generate.pki import ServicePki, ensure_service_pki
from logwarden.ledger import keys, note
from logwarden.ledger.sink import LedgerSink
from logwarden.ledger.writer import WriterOptions
from logwarden.metrics import Metrics
from logwarden.pipeline import Pipeline
from logwarden.records import Record
from logwarden.redact import Redactor
from logwarden.rejects import Rejects
from logwarden.rejects import open_file as open_rejects
from logwarden.service import Listener, Service, TlsFiles
from logwarden.sources.base import LiveSource
from logwarden.sources.build import live_source, record_source, what
from logwarden.sources.k8s_audit_webhook import K8sAuditWebhook

__all__ = ["Runtime", "configure_logging"]

log = logging.getLogger("logwarden.run")


def _private_dir(path: Path) -> None:
    """Make `path` (mode 0700), or narrow it to 0700 if it is open to others: the data
    directory holds audit events, rejected input and the alerts' payloads."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as exc:
            log.warning("data_dir %s is open to other users (mode %o): %s", path, mode, exc)
        else:
            log.info("data_dir %s was open to other users (mode %o): now 0700", path, mode)


@dataclass
class _Tail:
    """A live source of the service (a followed file, the journal, an API watch...), run
    in a thread of its own."""

    source_id: str
    tail: LiveSource
    record_source: str
    thread: threading.Thread | None = None
    error: BaseException | None = None
    #: the source's `rejected` counter as last published to /metrics
    rejected: int = 0


@dataclass
class Runtime:
    """The monitoring service of one config; `run()` blocks until stopped."""

    config: Config
    stdout: BinaryIO | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tails: list[_Tail] = []
        self._tails_stop = threading.Event()
        self.started = threading.Event()
        data = Path(self.config.data_dir)
        _private_dir(data)
        self.data_dir = data
        self.rejects_file = data / "rejects.jsonl"
        self._rejects_fh = open_rejects(self.rejects_file, append=True)  # closed in run()
        #: one redaction for the ledger's records and what rejects keep
        self.redactor = Redactor(self.config.redact.extra_paths)
        self.rejects = Rejects(
            log=None, keep=self._rejects_fh, flush=True, redact=self.redactor.redact_bytes
        )
        self.pipeline = self._pipeline()
        self.service = Service(_listener(self.config.service.listen), self.metrics, self._not_ready)
        self.urls: dict[str, str] = {}
        self._webhooks()
        self._api()
        self._file_sources()

    # -- building --------------------------------------------------------------------------

    def _signer(self) -> note.Signer:
        path = Path(self.config.ledger.key_file)
        if path.exists():
            return keys.load_signer(path)
        signer = note.generate(f"{socket.gethostname()}/logwarden")
        keys.write_key_pair(signer, path)
        log.info("generated the ledger signing key %s (verifier key: %s.pub)", path, path)
        return signer

    def _pipeline(self) -> Pipeline:
        c = self.config
        ledger = LedgerSink(
            c.ledger.path,
            self._signer(),
            anchor=c.ledger.anchor,
            options=WriterOptions(
                fsync=c.ledger.fsync,
                checkpoint_interval_secs=c.ledger.checkpoint_interval_secs,
                segment_bytes=c.ledger.segment_bytes,
            ),
        )
        rules = load_rules(c.detect.rules)
        for text in rules.notes:
            log.info("rules: %s", text)
        engine = Engine(
            rules.rules,
            correlations=rules.correlations,
            match=c.detect.match,
            lateness_ns=int(c.detect.lateness_secs * 1e9),
        )
        suppressor = Suppressor.for_rules(rules.rules, int(c.detect.suppress_secs * 1e9))
        api = c.alerts.api
        self.alerts = alert_stage(
            c,
            stdout=self.stdout,
            external_url=f"https://{api.listen}/api/v1/alerts" if api.enabled else None,
        )
        watched = {
            source_id: Watched(what(source), record_source(source), source.silence_after_secs)
            for source_id, source in c.sources.items()
        }
        return Pipeline(
            ledger,
            engine,
            self.alerts,
            self.metrics,
            redactor=self.redactor,
            suppressor=suppressor,
            silence=SilenceWatch(watched, self.metrics),
            queue_events=c.pipeline.queue_events,
            batch_events=c.pipeline.batch_events,
            detect_worker=c.pipeline.detect_worker,
        )

    def _api(self) -> None:
        """The alerts API on its own HTTPS listener (the service's certificate)."""
        api = self.config.alerts.api
        if not api.enabled:
            return
        listen = _listener(api.listen)
        if api.tls_cert_file is not None and api.tls_key_file is not None:
            tls = TlsFiles(Path(api.tls_cert_file), Path(api.tls_key_file))
        else:
            pki = self._pki(listen)
            tls = TlsFiles(pki.server_cert, pki.server_key)
        store = AlertStore(self.data_dir / "alerts.db")
        self.service.add_api(AlertsApi(store, api_token(api.token_file)), listen, tls)
        self.urls["alerts-api"] = f"https://{api.listen}/api/v1/"
        log.info(
            "alerts API on https://%s/api/v1/, requiring the bearer token of %s",
            api.listen,
            api.token_file,
        )

    def _webhooks(self) -> None:
        for source_id, source in self.config.sources.items():
            if not isinstance(source, K8sAuditWebhookSource):
                continue
            listen = _listener(source.listen)
            tls, generated = self._tls(source, listen)
            token = None
            if source.bearer_token_file is not None:
                token = _read_secret(source.bearer_token_file)
            app = K8sAuditWebhook(
                source_id,
                self._submit_now,
                self.rejects,
                self.metrics,
                path=source.path,
                max_body_bytes=source.max_body_bytes,
                bearer_token=token,
            )
            self.service.add_webhook(app, listen, tls)
            self.urls[source_id] = f"https://{source.listen}{source.path}"
            auth = []
            if tls.client_ca is not None:
                auth.append(f"a client certificate signed by {tls.client_ca}")
            if token is not None:
                auth.append(f"the bearer token of {source.bearer_token_file}")
            log.info(
                "source %r: audit webhook on %s, requiring %s%s",
                source_id,
                self.urls[source_id],
                " and ".join(auth) or "nothing (allow_unauthenticated)",
                f" (certificates generated in {generated})" if generated else "",
            )

    def _submit_now(self, source_id: str, records: Sequence[Record]) -> Future[int]:
        """A webhook's batch: refused at once when the pipeline is full (429)."""
        return self.pipeline.submit(source_id, records, block=False, numbered=False)

    def _tls(self, source: K8sAuditWebhookSource, listen: Listener) -> tuple[TlsFiles, Path | None]:
        client_ca = Path(source.client_ca_file) if source.client_ca_file else None
        if not source.generates_tls:
            assert source.tls_cert_file is not None and source.tls_key_file is not None
            return TlsFiles(Path(source.tls_cert_file), Path(source.tls_key_file), client_ca), None
        pki = self._pki(listen)
        directory = self.data_dir / "tls"
        if client_ca is None and source.bearer_token_file is None:
            client_ca = pki.ca
        return TlsFiles(pki.server_cert, pki.server_key, client_ca), directory

    def _pki(self, listen: Listener) -> ServicePki:
        """The service's generated CA and certificates (made on first start)."""
        hosts = sorted({"localhost", "127.0.0.1", "::1", listen.host, socket.gethostname()})
        usable = [h for h in hosts if h not in ("", "0.0.0.0", "::")]
        return ensure_service_pki(self.data_dir / "tls", usable)

    def _file_sources(self) -> None:
        """Every source that is not a server: files, pod logs, the journal, API watches."""
        for source_id, source in self.config.sources.items():
            tail = live_source(
                source_id,
                source,
                self.data_dir / "sources" / source_id,
                self.rejects,
                batch_events=self.config.pipeline.batch_events,
            )
            if tail is not None:
                self._tails.append(_Tail(source_id, tail, record_source(source)))
        self.metrics.on_scrape(self._source_metrics)

    def _source_metrics(self) -> None:
        """The live sources' own counts of malformed input, published when scraped."""
        for t in self._tails:
            rejected = t.tail.rejected
            if rejected > t.rejected:
                self.metrics.malformed.labels(t.source_id).inc(rejected - t.rejected)
                t.rejected = rejected

    # -- running ---------------------------------------------------------------------------

    def _not_ready(self) -> str | None:
        if self.pipeline.failure is not None:
            return self.pipeline.failure
        if not self.pipeline.ready:
            return "the pipeline is not taking records"
        for t in self._tails:
            if t.error is not None:
                return f"source {t.source_id!r} stopped: {t.error}"
        return None

    def run(self) -> int:
        """Start everything, serve until stopped, drain; 0 on a clean stop."""
        try:
            return asyncio.run(self._main())
        finally:
            self._rejects_fh.close()

    def stop(self) -> None:
        """Ask a running service to stop (thread-safe)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):  # not the main thread
                self._loop.add_signal_handler(sig, self._stop.set)
        self.pipeline.start()
        self._start_tails()
        serving = asyncio.create_task(self.service.serve(self._stop))
        ready = asyncio.create_task(self._announce())
        watch = asyncio.create_task(self._watch_detection())
        try:
            await serving
        finally:
            ready.cancel()
            watch.cancel()
            await asyncio.to_thread(self._drain)
            await self.service.close_operations()
        failed = [t for t in self._tails if t.error is not None]
        return 1 if failed or self.pipeline.failure else 0

    async def _watch_detection(self) -> None:
        """A detection worker that ends by itself stops the service, the way the ledger's
        failure does not: a restart cures it. What was accepted is stored first; the exit
        status is 1, so a supervisor (systemd, the kubelet) starts logwarden again, which
        detects first on what was stored and not yet detected on."""
        assert self._stop is not None
        while not self._stop.is_set():
            await asyncio.sleep(0.5)
            if self.pipeline.detection_lost:
                log.error(
                    "%s: stopping, so that a restart detects on what is stored",
                    self.pipeline.failure,
                )
                self._stop.set()

    async def _announce(self) -> None:
        while not self.service.started:
            await asyncio.sleep(0.05)
        log.info(
            "logwarden is running: ledger %s, metrics on http://%s/metrics",
            self.config.ledger.path,
            self.config.service.listen,
        )
        self.started.set()

    def _start_tails(self) -> None:
        for t in self._tails:
            t.thread = threading.Thread(target=self._tail, args=(t,), name=f"source-{t.source_id}")
            t.thread.start()

    def _tail(self, t: _Tail) -> None:
        def emit(batch: list[Record]) -> None:
            self.pipeline.submit(t.source_id, batch, numbered=True).result()

        try:
            resume = self.pipeline.resume_seq(t.source_id, t.record_source)
            t.tail.run(emit, self._tails_stop, resume)
        except Exception as exc:  # reported on /readyz and in the log; the rest keeps going
            t.error = exc
            log.error("source %r stopped: %s", t.source_id, exc)

    def _drain(self) -> None:
        self._tails_stop.set()
        for t in self._tails:
            if t.thread is not None:
                t.thread.join()
        self.pipeline.stop()
        failure = self.pipeline.failure
        if failure is not None:
            log.error("logwarden stopped: %s", failure)
        else:
            log.info("logwarden stopped: everything accepted is in the ledger and was detected on")


def _listener(text: str) -> Listener:
    host, _, port = text.rpartition(":")
    return Listener(host.strip("[]"), int(port))


def _read_secret(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the bearer token: {exc.strerror}") from exc
    if not token:
        raise UsageError(f"{path}: the bearer token file is empty")
    return token


def configure_logging(fmt: str) -> None:
    """Log lines to stderr: sentences (text) or one JSON object a line (json)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("logwarden")
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOGWARDEN_LOG_LEVEL", "INFO"))
    root.propagate = False
    server = logging.getLogger("uvicorn.error")  # the HTTP server's own errors
    server.handlers[:] = [handler]
    server.setLevel(logging.WARNING)
    server.propagate = False


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return msgspec.json.encode(doc).decode()
