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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from logwarden.normalize import FORMATS, cloud_aks, cloud_eks, cloud_gke, k8s_audit
from logwarden.normalize._cloud import strip_bom
from logwarden.normalize.k8s_audit import AuditEvent, json_value
from logwarden.records import Record

__all__ = ["MASK", "NOTE", "Redactor", "redact_event"]

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
_encode = msgspec.json.Encoder().encode

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
        secrets = _gke_names_secrets(entry.protoPayload)
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
        for path in self._gke_extra:
            _replace(doc, path, 0, ".".join(path), done)
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
    for path in extra:
        _replace(event, path, 0, ".".join(path), done)
    if done:
        _note(event, "annotations", done)
    return done


def _names_secrets(event: AuditEvent) -> bool:
    ref = event.objectRef
    return ref is not None and ref.resource == "secrets" and not ref.apiGroup


def _gke_names_secrets(payload: cloud_gke.AuditLog) -> bool:
    """Whether a GKE entry is about the core `secrets` resource."""
    if (payload.methodName or "").startswith(_GKE_SECRET_METHOD):
        return True
    ref = cloud_gke.object_ref(payload.resourceName)
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
    if body["@type"] == _GKE_TYPES[0]:
        _mask_maps(body, where, done)
    elif isinstance(body.get("items"), list):
        for i, item in enumerate(body["items"]):
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
            kind = obj.get("kind")
            if kind == "Secret":
                _mask_maps(obj, at, done)
            elif kind == "SecretList" and isinstance(obj.get("items"), list):
                for i, item in enumerate(obj["items"]):  # list items carry no kind
                    _mask_maps(item, f"{at}.items[{i}]", done)
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
    return path.startswith("/metadata") and _LAST_APPLIED in msgspec.json.encode(op["value"])


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
    return msgspec.json.encode(obj).decode() + "\n"


def _masked(value: Any) -> Any:
    """Every value masked; the keys of a map kept."""
    if isinstance(value, dict):
        return {k: MASK for k in value}
    return MASK


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
