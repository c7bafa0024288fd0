"""Redaction: secret values leave a record before anything stores or shows it.

The monitoring service runs every record through `Redactor.redact` between its source and
the ledger, so what the ledger, the detectors and the alerts see is the redacted record
(`Record.raw` is "the bytes as received, after redaction").

Covered sources: Kubernetes audit events (`k8s_audit`) and the cloud providers' audit
records that carry one (`eks_audit`, `aks_audit`, `gke_audit`); other sources carry no
Secret objects and pass unchanged.

In a Kubernetes audit event, the values of a Secret's `data` and `stringData` are replaced
by ``<redacted>`` (the keys stay: which keys changed is worth knowing), and so are they in
the copy `kubectl apply` keeps in the annotation
``kubectl.kubernetes.io/last-applied-configuration``, wherever a Secret
appears in `requestObject` or `responseObject`: a Secret, the items of a SecretList, a
patch of the `secrets` resource (merge patches, and the `value` of JSON-patch operations
on `/data` or `/stringData`). Configured extra paths (`requestObject.spec.password`)
are replaced too; a path step that meets a list applies to each element. The event notes
what was replaced in the annotation ``logwarden.io/redacted`` (the paths, comma-separated).

EKS log events and AKS diagnostic records embed such an event (`message`,
`properties.log`, as a JSON string, or for AKS also as an object or bare): the embedded
event is redacted exactly so, annotation included, and written back in its place as
compact JSON. A GKE LogEntry holds the objects in `protoPayload.request` and
`.response`: a Secret is recognised there by its `kind` (or GKE's `@type`), a patch by
`resourceName`/`methodName` naming the core `secrets` resource; the note goes into the
entry's `labels` (which become the derived event's annotations) with the entry's paths
(``protoPayload.request.data``). Extra paths are written in event terms; for GKE a
leading `requestObject`, `responseObject`, `annotations` becomes `protoPayload.request`,
`protoPayload.response`, `labels` (other paths are looked up in the entry as written).

A record with nothing to redact keeps its bytes untouched.

`redact_bytes` does the same for bytes of any kind that may not have been decoded, such
as rejected input before it is kept: wherever they read as JSON, every Secret and
SecretList (by `kind`, or GKE's `@type`), every audit Event (an object with `auditID`,
alone, in an EventList's `items`, in an array, embedded as a JSON string like an EKS
`message`) and every GKE call on `secrets` loses its values as above; with extra paths
(`Redactor.redact_bytes` passes the configured ones), every audit Event and GKE
LogEntry found so also loses the values at those paths.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from logwarden.normalize import FORMATS, cloud_aks, cloud_eks, cloud_gke, k8s_audit
from logwarden.normalize._cloud import strip_bom
from logwarden.normalize.k8s_audit import AuditEvent, json_value
from logwarden.records import Record

__all__ = ["MASK", "NOTE", "Redactor", "redact_bytes", "redact_event"]

#: What a redacted value becomes.
MASK = "<redacted>"
#: The annotation that lists what was redacted.
NOTE = "logwarden.io/redacted"

_BODIES = ("requestObject", "responseObject")
#: The annotation `kubectl apply` writes: the whole object as JSON, a Secret's values too.
_LAST_APPLIED_KEY = "kubectl.kubernetes.io/last-applied-configuration"
_LAST_APPLIED = _LAST_APPLIED_KEY.encode()
_SECRET_MAPS = ("data", "stringData")
_EMBEDDING = frozenset({cloud_eks.SOURCE, cloud_aks.SOURCE})
#: Event members as a GKE LogEntry holds them (for extra paths).
_GKE_MEMBERS = {
    "requestObject": ("protoPayload", "request"),
    "responseObject": ("protoPayload", "response"),
    "annotations": ("labels",),
}
_GKE_SECRET_METHOD = "io.k8s.core.v1.secrets."
_GKE_TYPES = ("core.k8s.io/v1.Secret", "core.k8s.io/v1.SecretList")
#: a number no float holds stays the number it was (`json_value` reads it as a Decimal)
_encode = msgspec.json.Encoder(decimal_format="number").encode

DotPath = tuple[str, ...]


class Redactor:
    """Redacts records in place; `extra_paths` are dot paths into the event."""

    def __init__(self, extra_paths: Sequence[str] = ()) -> None:
        self._extra: list[DotPath] = [tuple(p.split(".")) for p in extra_paths]
        self._gke_extra = [_gke_path(p) for p in self._extra]
        #: records changed so far
        self.redacted = 0

    def redact(self, record: Record) -> Record:
        """The record with secret values replaced (the same object, changed if needed)."""
        source = record.source
        if source == k8s_audit.SOURCE:
            if not (_names_secrets(record.view) or b"Secret" in record.raw or self._extra):
                return record
            raw = self._event_bytes(record.raw)
        elif source in _EMBEDDING:
            raw = self._embedded(record)
        elif source == cloud_gke.SOURCE:
            raw = self._gke(record.raw, record.view)
        else:
            return record
        if raw is None:
            return record
        self.redacted += 1
        view = (
            k8s_audit.decode_raw(raw) if source == k8s_audit.SOURCE else FORMATS[source].decode(raw)
        )
        return msgspec.structs.replace(record, raw=raw, view=view, cache=None)

    def redact_bytes(self, raw: bytes) -> bytes:
        """`redact_bytes` with the configured extra paths (for rejected input)."""
        return redact_bytes(raw, self._extra)

    def _event_bytes(self, raw: bytes) -> bytes | None:
        """The audit Event `raw` redacted, or None if nothing was."""
        event = json_value(raw)
        if not isinstance(event, dict) or not redact_event(event, self._extra):
            return None
        return _encode(event)

    def _embedded(self, record: Record) -> bytes | None:
        """An EKS or AKS record with its embedded audit Event redacted, or None."""
        view: cloud_eks.EksRecord | cloud_aks.AksRecord = record.view
        inner = view.audit_raw
        if view.audit is None or inner is None:
            return None  # another control-plane log: no audit Event
        if not (_names_secrets(view.audit) or b"Secret" in inner or self._extra):
            return None
        event = self._event_bytes(inner)
        if event is None:
            return None
        if isinstance(view, cloud_eks.EksRecord):
            envelope = json_value(record.raw)
            envelope["message"] = event.decode()
            return _encode(envelope)
        if view.category is None:  # a bare audit Event
            return event
        doc = json_value(strip_bom(record.raw))
        props = doc["properties"]
        log = props["log"]
        if isinstance(log, str):
            props["log"] = event.decode() + ("\n" if log.endswith("\n") else "")
        else:
            props["log"] = json_value(event)
        return _encode(doc)

    def _gke(self, raw: bytes, entry: cloud_gke.GkeEntry) -> bytes | None:
        """A GKE LogEntry with the secret values of its request and response redacted."""
        call = entry.protoPayload
        secrets = _gke_names_secrets(call.methodName, call.resourceName)
        if not (secrets or b"Secret" in raw or self._gke_extra):
            return None
        doc = json_value(strip_bom(raw))
        payload = doc["protoPayload"]
        done: list[str] = []
        for member in ("request", "response"):
            if member in payload:
                where = f"protoPayload.{member}"
                _typed_secret(payload[member], where, done)
                payload[member] = _secret_values(payload[member], where, secrets, done)
        _replace_paths(doc, self._gke_extra, done)
        if not done:
            return None
        _note(doc, "labels", done)
        return _encode(doc)


def redact_event(event: dict[str, Any], extra: Sequence[DotPath] = ()) -> list[str]:
    """Mask the secret values of the audit Event `event` (a plain dict) in place, and the
    `extra` paths; note them in its annotations. The paths masked, in order (may repeat)."""
    ref = event.get("objectRef")
    secrets = isinstance(ref, dict) and ref.get("resource") == "secrets" and not ref.get("apiGroup")
    done: list[str] = []
    for body in _BODIES:
        if body in event:
            event[body] = _secret_values(event[body], body, secrets, done)
    _replace_paths(event, extra, done)
    if done:
        _note(event, "annotations", done)
    return done


def redact_bytes(raw: bytes, extra: Sequence[DotPath] = ()) -> bytes:
    """`raw` with the values of every Secret in it masked wherever it reads as JSON (see
    the module's docstring), and the `extra` paths of its audit Events and GKE entries,
    re-encoded as compact JSON; bytes that are not JSON, or hold nothing to mask, are
    returned as they are. Invalid UTF-8 inside strings is kept."""
    text = strip_bom(raw)
    if not text.startswith((b"{", b"[")):
        return raw
    doc = _json_text(text.decode("utf-8", "surrogateescape"))
    if doc is _NOT_JSON or not _mask_document(doc, extra):
        return raw
    try:
        out = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return out.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # an escaped lone surrogate (`"\ud800"`) in the input
        return json.dumps(doc, separators=(",", ":")).encode()


#: What `_json_text` answers for text that is not JSON.
_NOT_JSON: Any = object()


def _json_text(text: str) -> Any:
    """The JSON value `text` holds (control characters in strings allowed), or _NOT_JSON."""
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _mask_document(doc: Any, extra: Sequence[DotPath] = ()) -> bool:
    """Mask, in place, the Secret values anywhere in the decoded JSON `doc` (audit Events,
    Secrets, SecretLists, GKE calls on secrets, JSON text embedded in strings), and the
    `extra` paths of its audit Events and GKE entries; whether anything was."""
    done: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if "auditID" in obj:
                done += redact_event(obj, extra)
            if extra and isinstance(obj.get("protoPayload"), dict):  # a GKE LogEntry
                paths: list[str] = []
                _replace_paths(obj, [_gke_path(path) for path in extra], paths)
                if paths:
                    _note(obj, "labels", paths)
                    done += paths
            _gke_payload(obj, done)
            _typed_secret(obj, "", done)
            _mask_secret(obj, obj.get("kind"), "", done)
            members: list[Any] = list(obj)
        elif isinstance(obj, list):
            members = list(range(len(obj)))
        else:
            continue
        for key in members:
            value = obj[key]
            if isinstance(value, str):
                masked = _embedded_json(value, extra)
                if masked is not None:
                    obj[key] = masked
                    done.append(str(key))
            else:
                stack.append(value)
    return bool(done)


def _embedded_json(text: str, extra: Sequence[DotPath] = ()) -> str | None:
    """A string holding JSON that names Secrets or holds an audit Event with `extra` paths
    (an EKS `message`, an AKS `properties.log`) with those values masked, or None if it
    holds none to mask."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    if not (extra and "auditID" in text) and "Secret" not in text and "secrets" not in text:
        return None
    doc = _json_text(text)
    if doc is _NOT_JSON or not _mask_document(doc, extra):
        return None
    out = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return out + "\n" if text.endswith("\n") else out


def _gke_payload(obj: dict[str, Any], done: list[str]) -> None:
    """A GKE AuditLog payload (`protoPayload`) of a call on secrets: its request and
    response lose the values they carry, patches included."""
    method, name = obj.get("methodName"), obj.get("resourceName")
    method = method if isinstance(method, str) else None
    name = name if isinstance(name, str) else None
    if (method is None and name is None) or not _gke_names_secrets(method, name):
        return
    for member in ("request", "response"):
        if member in obj:
            obj[member] = _secret_values(obj[member], member, True, done)


def _names_secrets(event: AuditEvent) -> bool:
    ref = event.objectRef
    return ref is not None and ref.resource == "secrets" and not ref.apiGroup


def _gke_names_secrets(method: str | None, resource_name: str | None) -> bool:
    """Whether a GKE call (`methodName`, `resourceName`) is about the core `secrets`."""
    if (method or "").startswith(_GKE_SECRET_METHOD):
        return True
    ref = cloud_gke.object_ref(resource_name)
    return ref is not None and ref["resource"] == "secrets" and "apiGroup" not in ref


def _note(doc: dict[str, Any], member: str, done: list[str]) -> None:
    notes = doc.get(member)
    if not isinstance(notes, dict):
        notes = doc[member] = {}
    notes[NOTE] = ",".join(dict.fromkeys(done))


def _gke_path(path: DotPath) -> DotPath:
    """An event path as a path into a GKE LogEntry."""
    return _GKE_MEMBERS.get(path[0], path[:1]) + path[1:]


def _typed_secret(body: Any, where: str, done: list[str]) -> None:
    """A GKE object that names itself by `@type` only (no `kind`)."""
    if not isinstance(body, dict) or "kind" in body or body.get("@type") not in _GKE_TYPES:
        return
    _mask_secret(body, "Secret" if body["@type"] == _GKE_TYPES[0] else "SecretList", where, done)


def _mask_secret(obj: dict[str, Any], kind: Any, where: str, done: list[str]) -> None:
    """Mask the values of `obj` if it is a Secret, or of its items if a SecretList (`kind`)."""
    if kind == "Secret":
        _mask_maps(obj, where, done)
    elif kind == "SecretList" and isinstance(obj.get("items"), list):
        for i, item in enumerate(obj["items"]):  # list items carry no kind
            _mask_maps(item, f"{where}.items[{i}]", done)


def _secret_values(body: Any, where: str, secrets: bool, done: list[str]) -> Any:
    """`body` with the values of every Secret in it masked (a patch of secrets too)."""
    if secrets and isinstance(body, list):  # a JSON patch of a Secret: the values it sets
        for i, op in enumerate(body):
            if _sets_secret_value(op):
                op["value"] = _masked(op["value"])
                done.append(f"{where}[{i}].value")
        return body
    if secrets and isinstance(body, dict) and "kind" not in body:  # a merge patch
        _mask_maps(body, where, done)
    stack: list[tuple[Any, str]] = [(body, where)]
    while stack:  # every Secret, wherever it is nested (a List, a SecretList, an extension)
        obj, at = stack.pop()
        if isinstance(obj, list):
            stack.extend((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(obj))))
        elif isinstance(obj, dict):
            _mask_secret(obj, obj.get("kind"), at, done)
            stack.extend((v, f"{at}.{k}") for k, v in reversed(list(obj.items())))
    return body


def _sets_secret_value(op: Any) -> bool:
    """A JSON-patch operation that sets Secret values: in `data` or `stringData`, or in
    metadata that may hold kubectl's last-applied configuration (the whole Secret)."""
    if not isinstance(op, dict) or "value" not in op:
        return False
    path = op.get("path")
    if not isinstance(path, str):
        return False
    if path.startswith(("/data", "/stringData")):
        return True
    return path.startswith("/metadata") and _LAST_APPLIED in _encode(op["value"])


def _mask_maps(obj: Any, where: str, done: list[str]) -> None:
    """Mask a Secret's (or a patch's) `data` and `stringData`, and the copy of them in the
    annotation `kubectl apply` keeps (the whole object as JSON text)."""
    if not isinstance(obj, dict):
        return
    for key in _SECRET_MAPS:
        if key in obj and obj[key] is not None:
            obj[key] = _masked(obj[key])
            done.append(f"{where}.{key}")
    meta = obj.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(notes, dict) and _LAST_APPLIED_KEY in notes:
        notes[_LAST_APPLIED_KEY] = _last_applied(notes[_LAST_APPLIED_KEY])
        done.append(f"{where}.metadata.annotations.{_LAST_APPLIED_KEY}")


def _last_applied(text: Any) -> Any:
    """kubectl's last-applied configuration of a Secret with its values masked, as the
    compact JSON it is kept as; anything but such JSON text is masked whole."""
    if not isinstance(text, str):
        return _masked(text)
    try:
        obj = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return MASK
    if not isinstance(obj, dict):
        return MASK
    _mask_maps(obj, "", [])
    return _encode(obj).decode() + "\n"


def _masked(value: Any) -> Any:
    """Every value masked; the keys of a map kept."""
    if isinstance(value, dict):
        return {k: MASK for k in value}
    return MASK


def _replace_paths(doc: Any, paths: Sequence[DotPath], done: list[str]) -> None:
    """Mask the values at each of `paths` in `doc`, noting each path masked in `done`."""
    for path in paths:
        _replace(doc, path, 0, ".".join(path), done)


def _replace(obj: Any, path: DotPath, i: int, shown: str, done: list[str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _replace(item, path, i, shown, done)
        return
    if not isinstance(obj, dict) or path[i] not in obj:
        return
    if i == len(path) - 1:
        obj[path[i]] = _masked(obj[path[i]])
        done.append(shown)
        return
    _replace(obj[path[i]], path, i + 1, shown, done)
