"""A small kube-apiserver for the Event endpoints, over real HTTPS, for the unmocked client.

It keeps Event objects and a change log numbered by resourceVersion, the way the API
server's watch cache does, and answers:

- ``GET /apis/events.k8s.io/v1[/namespaces/NS]/events`` and ``/api/v1[/namespaces/NS]/
  events``: a paged list (``limit``/``continue``, one consistent snapshot per list), or,
  with ``watch=true``, a chunked stream of watch events (one JSON line each) after
  ``resourceVersion``, then new ones as they happen, until ``timeoutSeconds``;
- 410 Gone when the resourceVersion was compacted away, as an ERROR watch event (what a
  real server sends) or, `gone_as_status`, as the status of the request;
- 404 for events.k8s.io when `events_v1` is off (a cluster that does not serve it), 401
  without the bearer token, 500 for the next `fail_next` requests.

Objects are served as compact JSON made once when they are stored, so a test knows the
exact bytes the client received. Every request is kept in `requests`.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from logwarden.generate.pki import ensure_service_pki

TOKEN = "fake-apiserver-token-not-a-secret"


@dataclass
class Change:
    rv: int
    type: str
    namespace: str
    raw: bytes  # the object's JSON as served


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class FakeApiServer:
    """See the module doc. Use `running_apiserver` to start one."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rv = 1000
        self.log: list[Change] = []
        #: name key -> (namespace, raw) of the objects that exist now
        self.objects: dict[str, tuple[str, bytes]] = {}
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.events_v1 = True
        self.gone_as_status = False
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.snapshots: dict[str, list[tuple[str, bytes]]] = {}
        self.page_limit = 3  # the server's own page size cap, to exercise continue
        self.closed = False
        self.fail_next = 0  # answer this many next requests with 500
        self.generation = 0  # raised by `end_watches`
        self.url = ""
        self.ca = Path()

    # --- changing the store ----------------------------------------------------------------

    def put(self, obj: dict[str, Any], kind: str = "ADDED") -> bytes:
        """Store (ADDED/MODIFIED) or remove (DELETED) `obj`; returns the bytes served."""
        with self.cond:
            self.rv += 1
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.rv)
            key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            raw = dumps(obj)
            self._append(kind, meta.get("namespace", ""), raw)
            if kind == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = (meta.get("namespace", ""), raw)
            return raw

    def put_raw(self, kind: str, raw: bytes, namespace: str = "") -> None:
        """Send `raw` as the object of a watch event as is (malformed input)."""
        with self.cond:
            self.rv += 1
            self._append(kind, namespace, raw)

    def _append(self, kind: str, namespace: str, raw: bytes) -> None:
        self.log.append(Change(self.rv, kind, namespace, raw))
        self.cond.notify_all()

    def bookmark(self) -> None:
        with self.cond:
            self.rv += 1
            raw = dumps(
                {"kind": "Event", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)}}
            )
            self._append("BOOKMARK", "", raw)

    def compact(self, skip: int = 0) -> None:
        """Forget the change log up to now: older resourceVersions get 410 Gone. `skip`
        first moves the resourceVersion on (other resources changed meanwhile), so that
        the last one a client saw is gone too."""
        with self.cond:
            self.rv += skip
            self.compacted = self.rv + 1
            self.log = [c for c in self.log if c.rv >= self.compacted]
            self.snapshots.clear()

    def end_watches(self) -> None:
        """End the open watches, as the server's timeout does."""
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def watches(self) -> int:
        return sum(1 for _, q in self.requests if q.get("watch") == ["true"])

    # --- answering -------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        with self.cond:
            self.requests.append((url.path, query))
        parts = url.path.strip("/").split("/")
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(handler, 401, "Unauthorized")
        with self.cond:
            failing, self.fail_next = self.fail_next > 0, max(0, self.fail_next - 1)
        if failing:
            return _status(handler, 500, "InternalError", "etcdserver: request timed out")
        if parts[:3] == ["apis", "events.k8s.io", "v1"] and self.events_v1:
            rest = parts[3:]
        elif parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        else:
            return _status(handler, 404, "NotFound")
        if rest == ["events"]:
            namespace = None
        elif len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "events":
            namespace = rest[1]
        else:
            return _status(handler, 404, "NotFound")
        if query.get("watch") == ["true"]:
            return self._watch(handler, query, namespace)
        return self._list(handler, query, namespace)

    def _list(
        self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]], namespace: str | None
    ) -> None:
        limit = min(int(query.get("limit", ["500"])[0]), self.page_limit)
        with self.cond:
            token = query.get("continue", [""])[0]
            if token:
                if token not in self.snapshots:
                    return _status(handler, 410, "Expired", "continue token expired")
                snap_rv, start = token.rsplit(":", 1)[0], int(token.rsplit(":", 1)[1])
                items = self.snapshots[token]
            else:
                snap_rv, start = str(self.rv), 0
                items = [v for k, v in sorted(self.objects.items()) if namespace in (None, v[0])]
            page = items[start : start + limit]
            meta: dict[str, str] = {"resourceVersion": snap_rv}
            if start + limit < len(items):
                nxt = f"{snap_rv}:{start + limit}"
                self.snapshots[nxt] = items
                meta["continue"] = nxt
        kind = "EventList"
        api = "events.k8s.io/v1" if handler.path.startswith("/apis/") else "v1"
        body = b'{"kind":"%s","apiVersion":"%s","metadata":%s,"items":[%s]}' % (
            kind.encode(),
            api.encode(),
            dumps(meta),
            b",".join(raw for _, raw in page),
        )
        _send(handler, 200, body)

    def _watch(
        self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]], namespace: str | None
    ) -> None:
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        timeout = float(query.get("timeoutSeconds", ["30"])[0])
        bookmarks = query.get("allowWatchBookmarks") == ["true"]
        with self.cond:
            gone = since < self.compacted - 1
            generation = self.generation
        if gone and self.gone_as_status:
            return _status(handler, 410, "Expired", f"too old resource version: {since}")
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            if gone:
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"too old resource version: {since}",
                    "reason": "Expired",
                    "code": 410,
                }
                _chunk(handler, b'{"type":"ERROR","object":%s}\n' % dumps(status))
            else:
                self._stream(handler, since, timeout, bookmarks, namespace, generation)
            _chunk(handler, b"")
        except (OSError, ssl.SSLError):
            handler.close_connection = True

    def _stream(
        self,
        handler: BaseHTTPRequestHandler,
        since: int,
        timeout: float,
        bookmarks: bool,
        namespace: str | None,
        generation: int,
    ) -> None:
        deadline = time.monotonic() + timeout
        sent = since

        def ready(after: int) -> bool:
            return (
                self.closed
                or self.generation != generation
                or (bool(self.log) and self.log[-1].rv > after)
            )

        while True:
            with self.cond:
                wait = max(0.0, min(0.2, deadline - time.monotonic()))
                self.cond.wait_for(functools.partial(ready, sent), timeout=wait)
                if self.closed or self.generation != generation:
                    return
                changes = [c for c in self.log if c.rv > sent]
            lines = [
                b'{"type":"%s","object":%s}\n' % (c.type.encode(), c.raw)
                for c in changes
                if (c.type != "BOOKMARK" or bookmarks)
                and (namespace is None or c.type == "BOOKMARK" or c.namespace == namespace)
            ]
            for line in lines:
                _chunk(handler, line)  # one chunk per event, as the API server flushes
            if changes:
                sent = changes[-1].rv
            if time.monotonic() >= deadline:
                return


def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _status(handler: BaseHTTPRequestHandler, code: int, reason: str, message: str = "") -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or reason,
        "reason": reason,
        "code": code,
    }
    _send(handler, code, dumps(status))


@contextmanager
def running_apiserver(tmp: Path) -> Iterator[FakeApiServer]:
    """Serve a `FakeApiServer` over HTTPS on 127.0.0.1 with a CA made under `tmp`."""
    api = FakeApiServer()
    pki = ensure_service_pki(tmp / "pki", ["127.0.0.1"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            api.answer(self)

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # clients that hang up (a stopped watch) are expected

    server = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    api.url = f"https://127.0.0.1:{server.server_address[1]}"
    api.ca = pki.ca
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        with api.cond:
            api.closed = True
            api.cond.notify_all()
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_kubeconfig(path: Path, api: FakeApiServer) -> Path:
    """A kubeconfig whose current context is `api` (CA-verified TLS, bearer token)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": api.url, "certificate-authority": str(api.ca)},
                    }
                ],
                "users": [{"name": "watcher", "user": {"token": TOKEN}}],
                "contexts": [{"name": "lab", "context": {"cluster": "fake", "user": "watcher"}}],
                "current-context": "lab",
            }
        )
    )
    return path
