"""How a whole file of one format becomes record units, for formats that are not simply
one record per line (`FileSource`, what `detect` reads).

A framer takes the file's (decompressed) bytes and its path and yields ``(line, unit)``:
the unit's bytes (what the format decodes, and what the ledger would hold) or a
`MalformedInput` saying why a part of the file is not a record; `line` is where the unit
starts, 0 when the splitter cannot tell. Formats without a framer are read a line at a
time by `FileSource` itself.

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

from logwarden.normalize import cloud_aks, cloud_eks, cloud_gke, container_log, journald
from logwarden.normalize.base import MalformedInput

__all__ = ["FRAMERS", "Framer", "Unit"]

Unit = tuple[int, "bytes | MalformedInput"]
Framer = Callable[[bytes, str], Iterator[Unit]]


def _numbered(units: list[bytes | MalformedInput]) -> Iterator[Unit]:
    for unit in units:
        yield 0, unit


def _container(data: bytes, path: str) -> Iterator[Unit]:
    joiner = container_log.MultilineJoiner()
    for item in container_log.envelopes(data.splitlines(), path, joiner=joiner):
        if isinstance(item, container_log.LineError):
            yield item.line, MalformedInput(item.reason)
        else:
            yield item


def _journald(data: bytes, _path: str) -> Iterator[Unit]:
    if data.lstrip()[:1] in (b"{", b"["):
        yield from _numbered(journald.entries_of_json_file(data))
    else:
        for unit in journald.export_entries(io.BytesIO(data)):
            yield 0, unit


def _eks(data: bytes, _path: str) -> Iterator[Unit]:
    head = data.lstrip()[:200]
    if head.startswith(b"{") and b'"events"' in head and b'"messageType"' not in head:
        units = cloud_eks.events_of_filter_log_events(data)
    else:
        units = cloud_eks.events_of_subscription(data)
    for unit in units:
        yield 0, unit


def _hubble(data: bytes, _path: str) -> Iterator[Unit]:
    for n, line in enumerate(data.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"//"):
            yield n, stripped


FRAMERS: dict[str, Framer] = {
    container_log.SOURCE: _container,
    journald.SOURCE: _journald,
    cloud_aks.SOURCE: lambda data, _path: _numbered(cloud_aks.records_of(data)),
    cloud_eks.SOURCE: _eks,
    cloud_gke.SOURCE: lambda data, _path: _numbered(cloud_gke.entries_of(data)),
    "hubble_flow": _hubble,
}
