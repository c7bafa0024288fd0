"""Container and application logs as the kubelet keeps them: CRI and Docker json-file lines.

The pieces, each in its own private module and public here:

- Files and names (`_pod_path`): `parse_path` reads a `PodRef` (namespace, pod, pod UID,
  container, restart count or container id) from a kubelet log file's name, under
  /var/log/pods or /var/log/containers.
- Line formats (`_cri`): `Reassembler` turns the CRI (containerd, CRI-O) or Docker
  json-file lines of one file into complete messages (`Entry`), partial chunks joined per
  stream and capped at `DEFAULT_MAX_BYTES`, a malformed line a `LineError`; the formats
  and the quirks handled are in that module's docstring.
- Multi-line stack traces (`_multiline`): `MultilineJoiner` joins Java, Python and Go
  traces printed one line per log line into one entry; the exact rules are in the class
  docstring.

This module makes the records and the format.

Records
    `envelope(entry, podref, path)` makes the raw bytes of one record, a compact JSON
    object: ``time`` (the first chunk's time, as written), ``stream``, ``log`` (the message
    as text), ``namespace``, ``pod``, ``pod_uid``, ``container``, ``restart``, ``file``,
    ``truncated``, and only when they apply ``invalid_utf8`` (the message was not UTF-8:
    bad bytes became U+FFFD), ``partial`` (the file ended before the message did) and
    ``container_id`` (known from a /var/log/containers name).

`document()` fields: the envelope's fields (``invalid_utf8``, ``partial`` always present as
booleans, ``container_id`` as null when unknown), and:

- ``json``: when ``log`` is a JSON object (structured logging), its members (strings that
  hold JSON stay strings: only one level is parsed); else null.
- ``level``: the app's log level, lower case: from the JSON keys ``level``, ``severity``,
  ``lvl``, ``levelname`` or ``log.level`` (numeric bunyan/pino levels become names), or
  from the klog header letter of a text line (``I`` info, ``W`` warning, ``E`` error,
  ``F`` fatal); else null.
- ``msg``: the JSON ``msg`` or ``message`` string, or a klog line's text after its header;
  else null.
- ``ts``: the app's own time as written: the JSON ``ts``, ``time``, ``timestamp`` or
  ``@timestamp`` value; else null.

Text lines that are neither JSON nor klog (access logs, plain text) stay text in ``log``;
parsing them is another module's job.

What cannot be recovered: bytes beyond the cap; where Docker split a character at 16 KiB
(Docker's encoder already wrote each half as U+FFFD); a partial message whose rest was
never written; a Java trace's header when it does not name an exception (see
`MultilineJoiner`); the pod UID and restart count from a /var/log/containers name alone
(resolve the link and parse that path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from logwarden.normalize import web_access
from logwarden.normalize._cri import (
    DEFAULT_MAX_BYTES,
    Entry,
    Kind,
    LineError,
    Reassembler,
    parse_time_ns,
)
from logwarden.normalize._multiline import DEFAULT_WINDOW_NS, MultilineJoiner
from logwarden.normalize._pod_path import PodRef, parse_path
from logwarden.normalize.base import MalformedInput

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_WINDOW_NS",
    "FORMAT",
    "SOURCE",
    "ContainerLog",
    "Entry",
    "LineError",
    "MultilineJoiner",
    "PodRef",
    "Reassembler",
    "alert_ids",
    "alert_labels",
    "decode",
    "document",
    "envelope",
    "envelopes",
    "log_time_ns",
    "parse_path",
    "parse_time_ns",
]

#: The `Record.source` of container log entries.
SOURCE = "container_log"


# --- the record ------------------------------------------------------------------------


class ContainerLog(msgspec.Struct, gc=False):
    """The raw envelope of one container log record, and its decoded view."""

    time: str
    stream: str
    log: str
    namespace: str | None = None
    pod: str | None = None
    pod_uid: str | None = None
    container: str | None = None
    restart: int | None = None
    file: str | None = None
    truncated: bool = False
    invalid_utf8: bool | msgspec.UnsetType = msgspec.UNSET
    partial: bool | msgspec.UnsetType = msgspec.UNSET
    container_id: str | msgspec.UnsetType = msgspec.UNSET


_encode = msgspec.json.Encoder().encode


class _NoPod:
    """What an envelope says about the pod of a file `parse_path` does not know."""

    namespace = pod = pod_uid = container = container_id = None
    restart: int | None = None


_NO_POD = _NoPod()
_decoder = msgspec.json.Decoder(ContainerLog)


def envelope(entry: Entry, podref: PodRef | None, path: str) -> bytes:
    """The raw bytes of the record of `entry`, read from the file `path` of `podref`."""
    message = entry.message
    try:
        log = message.decode()
        bad: bool | msgspec.UnsetType = msgspec.UNSET
    except UnicodeDecodeError:
        log = message.decode("utf-8", "replace")
        bad = True
    ref: PodRef | _NoPod = podref if podref is not None else _NO_POD
    view = ContainerLog(
        entry.time,
        entry.stream,
        log,
        ref.namespace,
        ref.pod,
        ref.pod_uid,
        ref.container,
        ref.restart,
        path,
        entry.truncated,
        bad,
        True if entry.partial else msgspec.UNSET,
        msgspec.UNSET if ref.container_id is None else ref.container_id,
    )
    return _encode(view)


def envelopes(
    lines: Iterable[bytes],
    path: str,
    *,
    kind: Kind | None = None,
    joiner: MultilineJoiner | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[int, bytes] | LineError]:
    """The records of a whole log file: `(first line, envelope bytes)` per entry, in the
    order they complete, and a `LineError` per malformed line (what `logwarden detect`
    over a container log file needs). The pod comes from `parse_path(path)`."""
    podref = parse_path(path)
    reassembler = Reassembler(kind, max_bytes=max_bytes)
    push = joiner.push if joiner is not None else None
    for line in lines:
        item = reassembler.feed(line)
        if item is None:
            continue
        if isinstance(item, LineError):
            yield item
            continue
        for entry in push(item) if push is not None else (item,):
            yield entry.first_line, envelope(entry, podref, path)
    rest = reassembler.flush()
    if joiner is not None:
        rest = [e for r in rest for e in joiner.push(r)] + joiner.flush()
    for entry in rest:
        yield entry.first_line, envelope(entry, podref, path)


def decode(data: bytes) -> ContainerLog:
    """The view of one record's envelope; raises MalformedInput."""
    try:
        view = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MalformedInput(f"not a container log record: {exc}") from None
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8"
        ) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        truncated = "truncated" in str(exc)
        raise MalformedInput(f"invalid JSON: {exc}", truncated=truncated) from None
    if view.stream != "stdout" and view.stream != "stderr":
        raise MalformedInput(
            f"container log record: stream is {view.stream!r}, expected stdout or stderr"
        )
    return view


def log_time_ns(view: ContainerLog) -> int:
    """The time of the entry's first chunk, as the runtime wrote it."""
    return parse_time_ns(view.time)


def alert_ids(_view: ContainerLog) -> tuple[str | None, str | None]:
    """Container log lines carry no event id or stage."""
    return None, None


def alert_labels(view: ContainerLog) -> dict[str, str]:
    """`namespace`, `resource` (``pods``), `pod` and `container`, those known."""
    labels: dict[str, str] = {}
    if view.namespace:
        labels["namespace"] = view.namespace
    if view.pod:
        labels["resource"] = "pods"
        labels["pod"] = view.pod
    if view.container:
        labels["container"] = view.container
    return labels


_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "log.level")
_MSG_KEYS = ("msg", "message")
_TS_KEYS = ("ts", "time", "timestamp", "@timestamp")
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_KLOG = re.compile(r"([IWEF])[0-9]{4} [0-9:]{8}\.[0-9]{6} +[0-9]+ [^ \]]+:[0-9]+\] ")
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}


def _app_json(log: str) -> dict[str, Any] | None:
    text = log.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _level(doc: dict[str, Any]) -> str | None:
    for key in _LEVEL_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return value.lower()
        if isinstance(value, int) and not isinstance(value, bool):
            return _NUMERIC_LEVELS.get(value, str(value))
    nested = doc.get("log")
    if isinstance(nested, dict) and isinstance(nested.get("level"), str):
        return str(nested["level"]).lower()
    return None


def document(_raw: bytes, view: ContainerLog) -> Any:
    """The record as plain JSON values (field names in the module docstring)."""
    log = view.log
    doc: dict[str, Any] = {
        "time": view.time,
        "stream": view.stream,
        "log": log,
        "namespace": view.namespace,
        "pod": view.pod,
        "pod_uid": view.pod_uid,
        "container": view.container,
        "restart": view.restart,
        "file": view.file,
        "truncated": view.truncated,
        "invalid_utf8": view.invalid_utf8 is True,
        "partial": view.partial is True,
        "container_id": None if view.container_id is msgspec.UNSET else view.container_id,
        "json": None,
        "level": None,
        "msg": None,
        "ts": None,
    }
    app = _app_json(log)
    if app is not None:
        doc["json"] = app
        doc["level"] = _level(app)
        doc["msg"] = next((app[k] for k in _MSG_KEYS if isinstance(app.get(k), str)), None)
        doc["ts"] = next((app[k] for k in _TS_KEYS if k in app), None)
        return doc
    m = _KLOG.match(log)
    if m is not None:
        doc["level"] = _KLOG_LEVELS[m.group(1)]
        doc["msg"] = log[m.end() :]
    return doc


def _derived(_raw: bytes, view: ContainerLog) -> list[tuple[str, bytes]]:
    """An access log line a web server in the container wrote (ingress-nginx's format,
    nginx `combined`, Envoy's default) is also a record of that format, so the web rules
    see the requests of an app whose logs go to stdout."""
    line = view.log
    if "HTTP/" not in line or '" ' not in line or (not line[:1].isalnum() and line[:1] != "["):
        return []
    data = line.rstrip("\r\n").encode()
    for fmt in _ACCESS_FORMATS:
        try:
            fmt.time_ns(fmt.decode(data))
        except MalformedInput:
            continue
        return [(fmt.source, data)]
    return []


#: tried in this order: the most specific format first
_ACCESS_FORMATS = (web_access.INGRESS_NGINX, web_access.NGINX, web_access.ENVOY)


class _ContainerLogFormat:
    source = SOURCE
    # the module functions themselves, so a call through FORMAT adds no frame
    decode = staticmethod(decode)
    time_ns = staticmethod(log_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(_derived)


#: The container log format as a `normalize.base.Format`.
FORMAT = _ContainerLogFormat()
