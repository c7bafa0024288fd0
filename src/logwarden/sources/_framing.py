"""How a file of one format becomes record units, for formats that are not simply one
record per line (`FileSource`, what `detect` reads).

A framer takes the file's (decompressed) stream and its path and yields ``(line, unit)``:
the unit's bytes (what the format decodes, and what the ledger would hold) or a
`MalformedInput` saying why a part of the file is not a record; `line` is where the unit
starts, 0 when the splitter cannot tell. Formats without a framer are read a line at a
time by `FileSource` itself. Container logs, Hubble flows and journal exports are read as
they are framed, so a file of any size takes little memory; JSON documents (a journal as
a JSON array, the cloud providers' deliveries) are read whole.

- container logs: CRI or Docker json-file lines reassembled (partials, stack traces) into
  one envelope per message; the pod comes from the path (/var/log/pods/...);
- journald: `journalctl -o json` lines, a JSON array or pretty-printed entries, or the
  export format (`journalctl -o export`);
- AKS: Event Hubs batches (`{"records": [...]}`), JSON lines of records;
- EKS: CloudWatch Logs subscription payloads and FilterLogEvents pages;
- GKE: LogEntry lines or arrays;
- Hubble: JSON lines, `//` comment lines (a header) skipped.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import IO

from logwarden.normalize import cloud_aks, cloud_eks, cloud_gke, container_log, journald
from logwarden.normalize.base import MalformedInput

__all__ = ["FRAMERS", "Framer", "Unit"]

Unit = tuple[int, "bytes | MalformedInput"]
Framer = Callable[[IO[bytes], str], Iterator[Unit]]


def _numbered(units: list[bytes | MalformedInput]) -> Iterator[Unit]:
    for unit in units:
        yield 0, unit


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of `stream` without their ending (``\n`` or ``\r\n``), as they are read
    (a line ends at ``\n`` only, as the container runtime and the live source split)."""
    for line in stream:
        if line[-1:] == b"\n":
            line = line[:-2] if line[-2:-1] == b"\r" else line[:-1]
        yield line


def _container(stream: IO[bytes], path: str) -> Iterator[Unit]:
    joiner = container_log.MultilineJoiner()
    for item in container_log.envelopes(_lines(stream), path, joiner=joiner):
        if isinstance(item, container_log.LineError):
            yield item.line, MalformedInput(item.reason)
        else:
            yield item


def _journald(stream: IO[bytes], _path: str) -> Iterator[Unit]:
    peek = getattr(stream, "peek", None)
    head = peek(512) if peek is not None else b""
    if not head.strip() or head.lstrip()[:1] in (b"{", b"["):  # JSON, or cannot tell: whole
        data = stream.read()
        if data.lstrip()[:1] in (b"{", b"["):
            yield from _numbered(journald.entries_of_json_file(data))
            return
        stream = io.BytesIO(data)
    for unit in journald.export_entries(stream):
        yield 0, unit


def _eks(stream: IO[bytes], _path: str) -> Iterator[Unit]:
    data = stream.read()
    head = data.lstrip()[:200]
    if head.startswith(b"{") and b'"events"' in head and b'"messageType"' not in head:
        units = cloud_eks.events_of_filter_log_events(data)
    else:
        units = cloud_eks.events_of_subscription(data)
    for unit in units:
        yield 0, unit


def _hubble(stream: IO[bytes], _path: str) -> Iterator[Unit]:
    for n, line in enumerate(stream, 1):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"//"):
            yield n, stripped


FRAMERS: dict[str, Framer] = {
    container_log.SOURCE: _container,
    journald.SOURCE: _journald,
    cloud_aks.SOURCE: lambda stream, _path: _numbered(cloud_aks.records_of(stream.read())),
    cloud_eks.SOURCE: _eks,
    cloud_gke.SOURCE: lambda stream, _path: _numbered(cloud_gke.entries_of(stream.read())),
    "hubble_flow": _hubble,
}
