"""Google Kubernetes Engine (GKE) audit logs: Cloud Audit Log `LogEntry` JSON.

GKE writes the Kubernetes API server's audit events to Cloud Logging as LogEntries
(``logName: projects/P/logs/cloudaudit.googleapis.com%2Factivity`` for writes,
``%2Fdata_access`` for reads) whose ``protoPayload`` is a
``type.googleapis.com/google.cloud.audit.AuditLog`` with ``serviceName: k8s.io``:
``methodName`` ``io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>``
(``io.k8s.core.v1.pods.exec.create``; ``io.k8s.get`` for a path outside the API),
``resourceName`` ``<group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<sub>]]``
(``core/v1/namespaces/NS/pods/NAME/exec``), ``authenticationInfo.principalEmail``,
``authorizationInfo[{permission, granted, resource}]``, ``requestMetadata.{callerIp,
callerSuppliedUserAgent}``, ``status {code (google.rpc.Code), message}`` and
``request``/``response`` objects with an ``@type``. The entry's ``labels`` hold the
apiserver's audit annotations (``authorization.k8s.io/decision``, ``.../reason``,
``pod-security.kubernetes.io/*``, ``mutation.webhook.admission.k8s.io/round_0_index_N``);
``resource.labels`` name the cluster (``cluster_name``, ``location``, ``project_id``).

One input unit is one LogEntry; `entries_of` splits a delivery (a `gcloud logging read
--format=json` array, an `entries.list` page, JSON Lines, one pretty-printed entry).
Entries of other services (``container.googleapis.com`` cluster operations) are valid
and derive nothing; an entry without an AuditLog ``protoPayload`` is malformed.

derived() is the audit.k8s.io/v1 Event the entry stands for, so every audit rule runs on
it (the conversion follows Falco's k8saudit-gke plugin where they overlap):

================================  ==========================================================
Event member                      from
================================  ==========================================================
``auditID``                       ``insertId`` (= ``operation.id``): GKE keeps no auditID
``stage``                         ``ResponseComplete``; ``ResponseStarted`` for a granted
                                  exec, attach or portforward (the stream opened: GKE logs
                                  no stage, Falco's plugin infers it the same way)
``level``                         ``RequestResponse`` with a request or response, else
                                  ``Metadata``
``verb``                          the last segment of ``methodName``
``objectRef``                     ``resourceName``: apiGroup (``core`` becomes absent, as
                                  the apiserver writes the core group), apiVersion,
                                  resource, namespace, name, subresource
``requestURI``                    rebuilt from ``resourceName`` (``/api/v1/...``,
                                  ``/apis/<group>/<version>/...``; ``/<resourceName>`` for
                                  a path outside the API): the query string is lost
``user.username``                 ``authenticationInfo.principalEmail``
``sourceIPs``, ``userAgent``      ``requestMetadata.callerIp``, ``.callerSuppliedUserAgent``
``responseStatus``                ``status``, by the table `HTTP_OF_RPC` (google.rpc's own
                                  mapping); success is 201 for create, 101 for a stream,
                                  else 200; a failure also gets ``status: Failure``, the
                                  ``message`` and the Kubernetes ``reason`` of its code
``requestObject``,                ``request``, ``response`` without GKE's ``@type``
``responseObject``
``annotations``                   the entry's ``labels``
``requestReceivedTimestamp``,     ``timestamp``
``stageTimestamp``
================================  ==========================================================

What cannot be recovered: ``user.groups``, ``user.uid`` and ``user.extra`` (GKE logs no
groups), impersonation (``impersonatedUser``), the real auditID, the request's query
string (exec's ``command=``), ``objectRef.uid``/``resourceVersion``, the true stage of
other requests, a 422 (Invalid) apart from a 400 (both are INVALID_ARGUMENT), and which
2xx a success was beyond the verb.

document() is the LogEntry as plain JSON (``insertId``, ``logName``, ``timestamp``,
``resource.labels.cluster_name``, ``protoPayload.methodName``, ...) plus the names
SigmaHQ's ``gcp.audit`` rules read, those of Elastic's GCP integration:
``gcp.audit.method_name``, ``gcp.audit.service_name``, ``gcp.audit.resource_name``,
``gcp.audit.type``, ``gcp.audit.authentication_info.principal_email``,
``gcp.audit.authorization_info[].{permission,granted,resource}``,
``gcp.audit.request_metadata.{caller_ip,caller_supplied_user_agent}``,
``gcp.audit.status.{code,message}``, ``gcp.audit.request``, ``gcp.audit.response``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from logwarden.normalize import k8s_audit
from logwarden.normalize._cloud import JSON_ERRORS, json_error, split_units, strip_bom
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import json_value, parse_rfc3339_ns

__all__ = [
    "FORMAT",
    "HTTP_OF_RPC",
    "SOURCE",
    "GkeEntry",
    "alert_ids",
    "alert_labels",
    "audit_event",
    "decode",
    "derived",
    "document",
    "entries_of",
    "entry_time_ns",
    "object_ref",
]

#: The `Record.source` of GKE audit LogEntries.
SOURCE = "gke_audit"

#: google.rpc.Code -> (HTTP status, Kubernetes Status reason), as google/rpc/code.proto
#: maps codes to HTTP. OK (0) is decided by the verb.
HTTP_OF_RPC: dict[int, tuple[int, str]] = {
    1: (499, "Canceled"),  # CANCELLED
    2: (500, "InternalError"),  # UNKNOWN
    3: (400, "BadRequest"),  # INVALID_ARGUMENT (also Kubernetes' 422 Invalid)
    4: (504, "Timeout"),  # DEADLINE_EXCEEDED
    5: (404, "NotFound"),  # NOT_FOUND
    6: (409, "AlreadyExists"),  # ALREADY_EXISTS
    7: (403, "Forbidden"),  # PERMISSION_DENIED
    8: (429, "TooManyRequests"),  # RESOURCE_EXHAUSTED
    9: (400, "BadRequest"),  # FAILED_PRECONDITION
    10: (409, "Conflict"),  # ABORTED
    11: (400, "BadRequest"),  # OUT_OF_RANGE
    12: (501, "NotImplemented"),  # UNIMPLEMENTED
    13: (500, "InternalError"),  # INTERNAL
    14: (503, "ServiceUnavailable"),  # UNAVAILABLE
    15: (500, "InternalError"),  # DATA_LOSS
    16: (401, "Unauthorized"),  # UNAUTHENTICATED
}

_STREAMS = frozenset({"exec", "attach", "portforward"})
_NAMESPACE_SUBRESOURCES = frozenset({"finalize", "status"})
_EMPTY = msgspec.Raw(b"")
_AUDIT_LOG = "type.googleapis.com/google.cloud.audit.AuditLog"


class _Status(msgspec.Struct, gc=False):
    code: int = 0
    message: str | None = None


class _AuthenticationInfo(msgspec.Struct, gc=False):
    principalEmail: str | None = None


class _AuthorizationInfo(msgspec.Struct, gc=False):
    permission: str | None = None
    granted: bool | None = None
    resource: str | None = None


class _RequestMetadata(msgspec.Struct, gc=False):
    callerIp: str | None = None
    callerSuppliedUserAgent: str | None = None


class AuditLog(msgspec.Struct, gc=False):
    type: str | None = msgspec.field(default=None, name="@type")
    serviceName: str | None = None
    methodName: str | None = None
    resourceName: str | None = None
    authenticationInfo: _AuthenticationInfo | None = None
    authorizationInfo: list[_AuthorizationInfo] | None = None
    requestMetadata: _RequestMetadata | None = None
    status: _Status | None = None
    request: msgspec.Raw = _EMPTY
    response: msgspec.Raw = _EMPTY


class _Operation(msgspec.Struct, gc=False):
    id: str | None = None
    producer: str | None = None
    first: bool | None = None
    last: bool | None = None


class _Resource(msgspec.Struct, gc=False):
    type: str | None = None
    labels: dict[str, str] | None = None


class GkeEntry(msgspec.Struct, gc=False):
    """The members of a LogEntry logwarden reads; names as in the LogEntry."""

    protoPayload: AuditLog
    insertId: str | None = None
    logName: str | None = None
    timestamp: str | None = None
    receiveTimestamp: str | None = None
    resource: _Resource | None = None
    labels: dict[str, str] | None = None
    operation: _Operation | None = None


_entry_decoder = msgspec.json.Decoder(GkeEntry)
_encode = msgspec.json.Encoder().encode


def entries_of(data: bytes) -> list[bytes | MalformedInput]:
    """The LogEntries of a delivery: a JSON array (`gcloud logging read --format=json`),
    an `entries.list` page (`{"entries": [...]}`), JSON Lines, or one entry."""
    return split_units(data, "entries")


def decode(data: bytes) -> GkeEntry:
    """The view of one LogEntry."""
    try:
        entry = _entry_decoder.decode(strip_bom(data))
    except msgspec.ValidationError as exc:
        if "missing required field `protoPayload`" in str(exc):
            raise MalformedInput("not a Cloud Audit Log entry: missing protoPayload") from None
        raise json_error(exc, "a GKE audit LogEntry") from None
    except JSON_ERRORS as exc:
        raise json_error(exc, "a GKE audit LogEntry") from None
    payload = entry.protoPayload
    if payload.type is not None and payload.type != _AUDIT_LOG:
        raise MalformedInput(f'not a Cloud Audit Log entry: protoPayload.@type is "{payload.type}"')
    if not payload.methodName:
        raise MalformedInput("not a Cloud Audit Log entry: missing protoPayload.methodName")
    if not entry.timestamp and not entry.receiveTimestamp:
        raise MalformedInput("GKE audit LogEntry: missing timestamp")
    if not entry.insertId:
        raise MalformedInput("GKE audit LogEntry: missing insertId")
    return entry


def entry_time_ns(entry: GkeEntry) -> int:
    """`timestamp`, else `receiveTimestamp`."""
    text = entry.timestamp or entry.receiveTimestamp
    if not text:
        raise MalformedInput("GKE audit LogEntry: missing timestamp")
    return parse_rfc3339_ns(text)


def object_ref(resource_name: str | None) -> dict[str, str] | None:
    """The audit objectRef `resourceName` names (None for a path outside the API)."""
    if not resource_name:
        return None
    parts = resource_name.split("/")
    n = len(parts)
    if n < 3 or not parts[0] or not parts[1] or not all(parts[2:]):
        return None
    ref = {"apiGroup": parts[0], "apiVersion": parts[1]}
    if parts[2] == "namespaces" and n >= 5 and parts[4] not in _NAMESPACE_SUBRESOURCES:
        ref["namespace"] = parts[3]
        rest = parts[4:]
    else:
        rest = parts[2:]
    if len(rest) > 3:
        return None
    ref["resource"] = rest[0]
    if len(rest) > 1:
        ref["name"] = rest[1]
    if len(rest) > 2:
        ref["subresource"] = rest[2]
    if ref["apiGroup"] == "core":
        del ref["apiGroup"]
    return ref


def _request_uri(resource_name: str, ref: dict[str, str] | None) -> str:
    if ref is None:
        return "/" + resource_name.lstrip("/")
    group, rest = resource_name.split("/", 1)
    return f"/api/{rest}" if group == "core" else f"/apis/{group}/{rest}"


def _is_k8s(entry: GkeEntry) -> bool:
    return entry.protoPayload.serviceName == "k8s.io"


def _without_type(raw: msgspec.Raw) -> Any:
    value = json_value(raw)
    if isinstance(value, dict):
        value.pop("@type", None)
    return value


def audit_event(entry: GkeEntry) -> dict[str, Any]:
    """The audit.k8s.io/v1 Event a `k8s.io` entry stands for (the module docstring's
    table)."""
    p = entry.protoPayload
    method = p.methodName or ""
    verb = method.rsplit(".", 1)[-1]
    resource_name = p.resourceName or ""
    ref = object_ref(resource_name)
    rpc = p.status.code if p.status is not None else 0
    stream = ref is not None and ref.get("subresource") in _STREAMS
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if p.request or p.response else "Metadata",
        "auditID": entry.insertId,
        "stage": "ResponseStarted" if stream and rpc == 0 else "ResponseComplete",
        "requestURI": _request_uri(resource_name, ref),
        "verb": verb,
    }
    user = p.authenticationInfo.principalEmail if p.authenticationInfo is not None else None
    ev["user"] = {"username": user} if user else {}
    meta = p.requestMetadata
    if meta is not None:
        if meta.callerIp:
            ev["sourceIPs"] = [meta.callerIp]
        if meta.callerSuppliedUserAgent:
            ev["userAgent"] = meta.callerSuppliedUserAgent
    if ref is not None:
        ev["objectRef"] = ref
    ev["responseStatus"] = _response_status(rpc, p.status, verb, stream)
    if p.request:
        ev["requestObject"] = _without_type(p.request)
    if p.response:
        ev["responseObject"] = _without_type(p.response)
    ev["requestReceivedTimestamp"] = ev["stageTimestamp"] = (
        entry.timestamp or entry.receiveTimestamp
    )
    if entry.labels:
        ev["annotations"] = entry.labels
    return ev


def _response_status(rpc: int, status: Any, verb: str, stream: bool) -> dict[str, Any]:
    if rpc == 0:
        code = 101 if stream else 201 if verb == "create" else 200
        return {"metadata": {}, "code": code}
    code, reason = HTTP_OF_RPC.get(rpc, (500, "InternalError"))
    out: dict[str, Any] = {"metadata": {}, "status": "Failure", "reason": reason, "code": code}
    if status is not None and status.message:
        out["message"] = status.message
    return out


def alert_ids(entry: GkeEntry) -> tuple[str | None, str | None]:
    """The entry's insertId (which the derived audit Event uses as its auditID)."""
    return entry.insertId, None


def alert_labels(entry: GkeEntry) -> dict[str, str]:
    """`namespace`, `user` (principalEmail) and `resource` (`pods/exec`) of a Kubernetes
    API entry."""
    labels: dict[str, str] = {}
    p = entry.protoPayload
    if _is_k8s(entry):
        ref = object_ref(p.resourceName)
        if ref is not None:
            if "namespace" in ref:
                labels["namespace"] = ref["namespace"]
            sub = ref.get("subresource")
            labels["resource"] = f"{ref['resource']}/{sub}" if sub else ref["resource"]
    if p.authenticationInfo is not None and p.authenticationInfo.principalEmail:
        labels["user"] = p.authenticationInfo.principalEmail
    return labels


def document(raw: bytes, _entry: GkeEntry) -> Any:
    """The LogEntry as plain JSON values, plus `gcp.audit.*` (Elastic's names)."""
    doc = json_value(strip_bom(raw))
    payload = doc.get("protoPayload") if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        return doc
    audit: dict[str, Any] = {}
    for name, key in _ECS_NAMES:
        if name in payload:
            audit[key] = payload[name]
    authn = payload.get("authenticationInfo")
    if isinstance(authn, dict) and "principalEmail" in authn:
        audit["authentication_info"] = {"principal_email": authn["principalEmail"]}
    meta = payload.get("requestMetadata")
    if isinstance(meta, dict):
        audit["request_metadata"] = {
            "caller_ip": meta.get("callerIp"),
            "caller_supplied_user_agent": meta.get("callerSuppliedUserAgent"),
        }
    doc["gcp"] = {"audit": audit}
    return doc


_ECS_NAMES = (
    ("@type", "type"),
    ("serviceName", "service_name"),
    ("methodName", "method_name"),
    ("resourceName", "resource_name"),
    ("authorizationInfo", "authorization_info"),
    ("status", "status"),
    ("request", "request"),
    ("response", "response"),
)


def derived(_raw: bytes, entry: GkeEntry) -> list[tuple[str, bytes]]:
    """The Kubernetes audit Event of a `k8s.io` entry (nothing for other services)."""
    if not _is_k8s(entry):
        return []
    return [(k8s_audit.SOURCE, _encode(audit_event(entry)))]


class _GkeFormat:
    source = SOURCE
    decode = staticmethod(decode)
    time_ns = staticmethod(entry_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(derived)


#: The GKE audit LogEntry format as a `normalize.base.Format`.
FORMAT = _GkeFormat()
