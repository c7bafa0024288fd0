"""Azure Kubernetes Service (AKS) control-plane diagnostic records.

AKS sends its control-plane logs as Azure Monitor diagnostic records to an Event Hub
(batches `{"records": [...]}`), a storage account (JSON Lines) or Log Analytics. One
input unit is ONE record::

    {"category": "kube-audit" | "kube-audit-admin" | "kube-apiserver" | ...,
     "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
     "resourceId": "/SUBSCRIPTIONS/.../MANAGEDCLUSTERS/<name>", "time": "...",
     "properties": {"log": <audit Event>, "stream": "stdout", "pod": "kube-apiserver-..."},
     ...}

`records_of` splits a delivery into units. Quirks handled (from the real samples):

* `properties.log` is the audit Event **as a JSON string**, ending in ``\\n`` (sysdiglabs'
  2020 samples); some pipelines give it as an **object** instead (Elastic's variant);
* a file may start with a **UTF-8 BOM** (Event Hubs captures saved on Windows);
* records carry extra members (`ccpNamespace`, `Cloud`, `Environment`, `UnderlayClass`,
  `UnderlayName`): kept in document(), ignored otherwise;
* `time` has seven fractional digits (``2020-05-05T16:16:37.0000000Z``);
* categories other than `kube-audit` and `kube-audit-admin` (`kube-apiserver`,
  `cluster-autoscaler`, `guard`, ... whose `log` is klog text) are valid records that
  derive nothing;
* a bare audit Event (an unwrapped `properties.log`, possibly pretty-printed and with a
  BOM) is accepted as a unit too: it derives itself.

derived() gives the audit Event's bytes as a `k8s_audit` record, exactly what
`k8s_audit.decode` accepts (checked in decode(): a kube-audit record whose log is not an
audit Event is malformed, naming `properties.log`).

document() is the record as plain JSON, member names as Azure writes them (`category`,
`operationName`, `resourceId`, `time`, `properties.log` as received, `properties.pod`,
`properties.stream`, ...). No SigmaHQ rule applies to it: the `azure/activity_logs`
rules read `operationName` values of the Azure Activity Log (``MICROSOFT.KUBERNETES/
CONNECTEDCLUSTERS/...``, Azure RBAC data actions) which AKS diagnostic records never
carry (theirs is always ``Microsoft.ContainerService/managedClusters/diagnosticLogs/
Read``); the audit rules see the derived `k8s_audit` record. Nothing of the audit Event
is lost; the record's own time has only the precision Azure gives (the audit Event's
`stageTimestamp` is used when there is one).
"""

from __future__ import annotations

from typing import Any

import msgspec

from logwarden.normalize import k8s_audit
from logwarden.normalize._cloud import JSON_ERRORS, audit_event, json_error, split_units, strip_bom
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import AuditEvent, json_value, parse_rfc3339_ns

__all__ = [
    "AUDIT_CATEGORIES",
    "FORMAT",
    "SOURCE",
    "AksRecord",
    "alert_ids",
    "alert_labels",
    "decode",
    "derived",
    "document",
    "record_time_ns",
    "records_of",
]

#: The `Record.source` of AKS diagnostic records.
SOURCE = "aks_audit"

#: The diagnostic categories whose `properties.log` is a Kubernetes audit Event.
AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})

_EMPTY = msgspec.Raw(b"")


class _Properties(msgspec.Struct, gc=False):
    log: msgspec.Raw = _EMPTY
    pod: str | None = None


class _Wire(msgspec.Struct, gc=False):
    category: str | None = None
    operationName: str | None = None
    resourceId: str | None = None
    time: str | None = None
    properties: _Properties | None = None
    # a bare audit Event is recognized by these
    kind: str | None = None
    auditID: str | None = None


class AksRecord(msgspec.Struct, gc=False):
    """The view of one record: its category, cluster and time, and the audit Event it
    carries (`audit` and its bytes `audit_raw`, both None for other categories)."""

    category: str | None
    resourceId: str | None
    time: str | None
    audit: AuditEvent | None
    audit_raw: bytes | None


_wire_decoder = msgspec.json.Decoder(_Wire)
_str_decoder = msgspec.json.Decoder(str)


def records_of(data: bytes) -> list[bytes | MalformedInput]:
    """The records of a delivery: an Event Hubs batch `{"records": [...]}`, a JSON array,
    a JSON Lines file of records, or one (pretty-printed) record or bare audit Event; a
    leading BOM is dropped."""
    return split_units(data, "records")


def _log_bytes(log: msgspec.Raw) -> bytes:
    raw = bytes(log)
    if raw[:1] != b'"':
        return raw  # an object: the audit Event itself
    try:
        text = _str_decoder.decode(raw)
    except JSON_ERRORS as exc:
        raise json_error(exc, "a JSON string") from None
    return text.strip().encode()


def decode(data: bytes) -> AksRecord:
    """The view of one AKS diagnostic record (or of a bare audit Event)."""
    data = strip_bom(data)
    try:
        wire = _wire_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise json_error(exc, "an AKS diagnostic record") from None
    if wire.category is None:
        if wire.auditID is not None or wire.kind == "Event":
            ev = audit_event(data, "bare audit Event")
            return AksRecord(None, None, ev.stageTimestamp or ev.timestamp, ev, data)
        raise MalformedInput("not an AKS diagnostic record: missing category")
    if wire.category not in AUDIT_CATEGORIES:
        return AksRecord(wire.category, wire.resourceId, wire.time, None, None)
    props = wire.properties
    if props is None or not props.log:
        raise MalformedInput(f"AKS {wire.category} record: missing properties.log")
    try:
        raw = _log_bytes(props.log)
    except MalformedInput as exc:
        raise MalformedInput(f"AKS {wire.category} record: properties.log: {exc}") from None
    ev = audit_event(raw, f"AKS {wire.category} record: properties.log")
    return AksRecord(wire.category, wire.resourceId, wire.time, ev, raw)


def record_time_ns(rec: AksRecord) -> int:
    """The audit Event's time when the record carries one, else the record's `time`."""
    if rec.audit is not None:
        return k8s_audit.event_time_ns(rec.audit)
    if not rec.time:
        raise MalformedInput("AKS diagnostic record: missing time")
    return parse_rfc3339_ns(rec.time)


def alert_ids(rec: AksRecord) -> tuple[str | None, str | None]:
    """The audit Event's ID and stage (none for other categories)."""
    if rec.audit is None:
        return None, None
    return rec.audit.auditID, rec.audit.stage


def alert_labels(rec: AksRecord) -> dict[str, str]:
    """The audit Event's labels: namespace, user, resource (none for other categories)."""
    return k8s_audit.alert_labels(rec.audit) if rec.audit is not None else {}


def document(raw: bytes, _rec: AksRecord) -> Any:
    """The record as plain JSON values."""
    return json_value(strip_bom(raw))


def derived(_raw: bytes, rec: AksRecord) -> list[tuple[str, bytes]]:
    """The audit Event as a `k8s_audit` record (nothing for other categories)."""
    if rec.audit_raw is None:
        return []
    return [(k8s_audit.SOURCE, rec.audit_raw)]


class _AksFormat:
    source = SOURCE
    decode = staticmethod(decode)
    time_ns = staticmethod(record_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(derived)


#: The AKS diagnostic record format as a `normalize.base.Format`.
FORMAT = _AksFormat()
