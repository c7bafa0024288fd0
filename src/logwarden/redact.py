"""Redaction: secret values leave a record before anything stores or shows it.

The monitoring service runs every record through `Redactor.redact` between its source and
the ledger, so what the ledger, the detectors and the alerts see is the redacted record
(`Record.raw` is "the bytes as received, after redaction").

For Kubernetes audit events, the values of a Secret's `data` and `stringData` are replaced
by ``<redacted>`` (the keys stay: which keys changed is worth knowing) wherever a Secret
appears in `requestObject` or `responseObject`: a Secret, the items of a SecretList, a
patch of the `secrets` resource (merge patches, and the `value` of JSON-patch operations
on `/data` or `/stringData`). Configured extra paths (`requestObject.spec.password`)
are replaced too; a path step that meets a list applies to each element. The event notes
what was replaced in the annotation ``logwarden.io/redacted`` (the paths, comma-separated).
An event with nothing to redact keeps its bytes untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from logwarden.normalize import k8s_audit
from logwarden.records import Record

__all__ = ["MASK", "NOTE", "Redactor"]

#: What a redacted value becomes.
MASK = "<redacted>"
#: The annotation that lists what was redacted.
NOTE = "logwarden.io/redacted"

_BODIES = ("requestObject", "responseObject")
_SECRET_MAPS = ("data", "stringData")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class Redactor:
    """Redacts records in place; `extra_paths` are dot paths into the event."""

    def __init__(self, extra_paths: Sequence[str] = ()) -> None:
        self._extra = [tuple(p.split(".")) for p in extra_paths]
        #: records changed so far
        self.redacted = 0

    def redact(self, record: Record) -> Record:
        """The record with secret values replaced (the same object, changed if needed)."""
        if record.source != k8s_audit.SOURCE:
            return record
        view = record.view
        ref = view.objectRef
        secrets = ref is not None and ref.resource == "secrets" and not ref.apiGroup
        if not (secrets or b"Secret" in record.raw or self._extra):
            return record
        event = k8s_audit.json_value(record.raw)
        if not isinstance(event, dict):
            return record
        done: list[str] = []
        for body in _BODIES:
            if body in event:
                event[body] = _secret_values(event[body], body, secrets, done)
        for path in self._extra:
            _replace(event, path, 0, ".".join(path), done)
        if not done:
            return record
        annotations = event.get("annotations")
        if not isinstance(annotations, dict):
            annotations = event["annotations"] = {}
        annotations[NOTE] = ",".join(dict.fromkeys(done))
        raw = _encode(event)
        self.redacted += 1
        return msgspec.structs.replace(record, raw=raw, view=k8s_audit.decode_raw(raw), cache=None)


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
    if not isinstance(op, dict) or "value" not in op:
        return False
    path = op.get("path")
    return isinstance(path, str) and path.startswith(("/data", "/stringData"))


def _mask_maps(obj: Any, where: str, done: list[str]) -> None:
    if not isinstance(obj, dict):
        return
    for key in _SECRET_MAPS:
        if key in obj and obj[key] is not None:
            obj[key] = _masked(obj[key])
            done.append(f"{where}.{key}")


def _masked(value: Any) -> Any:
    """Every value masked; the keys of a map kept."""
    if isinstance(value, dict):
        return {k: MASK for k in value}
    return MASK


def _replace(obj: Any, path: tuple[str, ...], i: int, shown: str, done: list[str]) -> None:
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
