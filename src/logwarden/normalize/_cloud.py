"""What the cloud providers' audit formats share: splitting a delivery into units, and
checking that an embedded Kubernetes audit Event is one."""

from __future__ import annotations

import msgspec

from logwarden.normalize import k8s_audit
from logwarden.normalize.base import MalformedInput

__all__ = ["BOM", "JSON_ERRORS", "audit_event", "json_error", "split_units", "strip_bom"]

#: The UTF-8 byte order mark some Azure and Windows tools write before JSON.
BOM = b"\xef\xbb\xbf"

_WS = b" \t\r\n"

#: What decoding JSON with msgspec may raise on bad input (`json_error` says which).
JSON_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)


class _Holder(msgspec.Struct):
    records: list[msgspec.Raw] | None = None
    entries: list[msgspec.Raw] | None = None


_holder_decoder = msgspec.json.Decoder(_Holder)
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_any_decoder = msgspec.json.Decoder()


def strip_bom(data: bytes) -> bytes:
    """`data` without a leading UTF-8 byte order mark and surrounding whitespace."""
    if data[:3] == BOM:
        data = data[3:]
    return data.strip(_WS)


def json_error(exc: Exception, what: str) -> MalformedInput:
    """A decoding error of msgspec (one of `JSON_ERRORS`) as MalformedInput about `what`."""
    if isinstance(exc, UnicodeDecodeError):
        return MalformedInput(f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8")
    if isinstance(exc, RecursionError):
        return MalformedInput("JSON nested too deeply to read")
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return MalformedInput(f"not {what}: {text}")
    return MalformedInput(f"invalid JSON: {text}", truncated="truncated" in text)


def split_units(data: bytes, container: str) -> list[bytes | MalformedInput]:
    """The units of a delivery: the elements of `{container: [...]}` (`records` of an
    Azure Event Hubs batch, `entries`), of a JSON array, one pretty-printed JSON document,
    or the lines of a JSON Lines file. A leading BOM is ignored. A line that is not JSON is
    a MalformedInput naming its line, in place of the unit; so is a whole delivery that is
    not JSON at all."""
    data = strip_bom(data)
    if not data:
        return []
    if data[:1] == b"[":
        try:
            return [bytes(r) for r in _array_decoder.decode(data)]
        except JSON_ERRORS as exc:
            return [json_error(exc, "a JSON array")]
    try:
        holder = _holder_decoder.decode(data)
    except msgspec.ValidationError:
        return [data]  # one JSON value, not an object: the unit's decode says why
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        if "trailing characters" not in str(exc) and b"\n" not in data:
            return [json_error(exc, "JSON")]
        return _lines(data)
    items = getattr(holder, container, None) if container in ("records", "entries") else None
    if items is None:
        return [data]
    return [bytes(r) for r in items]


def _lines(data: bytes) -> list[bytes | MalformedInput]:
    out: list[bytes | MalformedInput] = []
    for n, line in enumerate(data.split(b"\n"), 1):
        line = line.strip(_WS)
        if not line:
            continue
        try:
            _any_decoder.decode(line)
        except JSON_ERRORS as exc:
            err = json_error(exc, "JSON")
            out.append(MalformedInput(f"line {n}: {err}", truncated=err.truncated))
            continue
        out.append(line)
    return out


def audit_event(raw: bytes, where: str) -> k8s_audit.AuditEvent:
    """The view of the audit Event `raw`, exactly as the `k8s_audit` format decodes it;
    MalformedInput says `where` the event was."""
    try:
        return k8s_audit.decode_raw(raw)
    except MalformedInput as exc:
        raise MalformedInput(f"{where}: {exc}", truncated=exc.truncated) from None
