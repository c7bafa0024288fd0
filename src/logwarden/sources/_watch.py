"""The Kubernetes API's list and watch of Events, as `k8s_events` reads them.

`new_client` makes the client of a kubeconfig or of the pod's service account; `Api` is
the list-or-watch call of Events of each API (`EVENTS_V1`, `CORE_V1`), for one namespace or
all. The few members the source reads of a list page, a watch event and a Status are
declared here with their decoders; `read_meta` reads an object's name and resourceVersion.
`Lines` reads the lines of a watch response in a thread of its own. `Gone` (410: list
again) and `Failed` (any other error of a watch) say how reading ended; `describe` names
a failed request in a log line.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.errors import InputError

__all__ = [
    "CORE_V1",
    "END",
    "EVENTS_V1",
    "Api",
    "Failed",
    "Gone",
    "Lines",
    "ListMeta",
    "Meta",
    "Status",
    "describe",
    "list_decoder",
    "new_client",
    "read_meta",
    "status_decoder",
    "watch_decoder",
]

#: The two APIs Events are read from.
EVENTS_V1 = "events.k8s.io/v1"
CORE_V1 = "v1"

#: how often the reading thread looks at `close`
_POLL_SECS = 0.1
#: watch lines read ahead of the batch being made
_READ_AHEAD = 4096


class Meta(msgspec.Struct):
    namespace: str | None = None
    name: str | None = None
    resourceVersion: str | None = None


class _Head(msgspec.Struct):
    metadata: Meta | None = None


class ListMeta(msgspec.Struct):
    resourceVersion: str | None = None
    cont: str | None = msgspec.field(default=None, name="continue")


class _List(msgspec.Struct):
    metadata: ListMeta | None = None
    items: list[msgspec.Raw] | None = None


class _WatchEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


class Status(msgspec.Struct):
    code: int | None = None
    reason: str | None = None
    message: str | None = None


_head_decoder = msgspec.json.Decoder(_Head)
list_decoder = msgspec.json.Decoder(_List)
watch_decoder = msgspec.json.Decoder(_WatchEvent)
status_decoder = msgspec.json.Decoder(Status)


class Gone(Exception):
    """The resourceVersion (or list continuation) is too old: list again."""


class Failed(Exception):
    """The API server answered a watch with an error other than 410 Gone."""


def new_client(
    kubeconfig: str | None, context: str | None, in_cluster: bool, source_id: str
) -> Any:
    """A client of the API server of `kubeconfig`/`context` (kubectl's defaults when None),
    or, `in_cluster`, of the pod's service account. Raises InputError, naming source
    `source_id`, when the config is unusable."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # its loaders are untyped
    try:
        if in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = "in-cluster config" if in_cluster else "kubeconfig"
        raise InputError(f"source '{source_id}': {where}: {exc}") from exc


class Api:
    """The list-or-watch call of Events of each API, for one namespace or all."""

    def __init__(self, api_client: Any, namespace: str | None) -> None:
        from kubernetes import client

        self._calls: dict[str, Callable[..., Any]] = {}
        for name, api in (
            (EVENTS_V1, client.EventsV1Api(api_client)),
            (CORE_V1, client.CoreV1Api(api_client)),
        ):
            if namespace:
                self._calls[name] = functools.partial(api.list_namespaced_event, namespace)
            else:
                self._calls[name] = api.list_event_for_all_namespaces

    def call(self, api: str, **kwargs: Any) -> Any:
        return self._calls[api](**kwargs)


#: What `Lines.get` returns when the watch ended (the server closed it).
END = object()


class Lines:
    """Reads the lines of a watch response in a thread, so that a batch can take what has
    arrived without waiting, and `close` can end a read in progress."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self._queue: queue.Queue[object] = queue.Queue(_READ_AHEAD)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="k8s-events-watch", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        rest = b""
        try:
            for chunk in self._resp.stream(None, decode_content=True):
                received = time.time_ns()
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        self._put((received, line))
            self._put(END)  # an unfinished last line is sent again by the next watch
        except Exception as exc:  # handed to the reading thread
            self._put(exc)

    def _put(self, item: object) -> None:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECS)
                return
            except queue.Full:
                continue

    def get(self, timeout: float) -> object:
        """`(received_ns, line)`, `END`, the exception that ended the read, or None when
        nothing came within `timeout`."""
        try:
            if timeout:
                return self._queue.get(timeout=timeout)
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        """End the read (at once, even mid-read) and the connection."""
        self._closing.set()
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            _shutdown(self._resp)  # raises when released already: the read is over
        self._thread.join(5)
        self._resp.close()


def _shutdown(resp: Any) -> None:
    """Make a read in progress on `resp` return: its `shutdown` (urllib3 2.3 and later),
    else, as that does, shut its socket down for reading (kubernetes>=29 allows urllib3
    1.26 and 2.0-2.2)."""
    shutdown = getattr(resp, "shutdown", None)
    if shutdown is not None:
        shutdown()
        return
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is not None:
        sock.shutdown(socket.SHUT_RD)


def read_meta(raw: bytes) -> Meta:
    """The object's name and resourceVersion, as far as they can be read."""
    try:
        head = _head_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return Meta()
    return head.metadata or Meta()


def describe(exc: BaseException) -> str:
    """How a log line names a failed request: its HTTP status and reason, else the first
    line of its message."""
    status = getattr(exc, "status", None)
    if status is not None:
        return f"{status} {getattr(exc, 'reason', '') or ''}".strip()
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
