"""Amazon EKS control-plane logs from CloudWatch Logs (audit logs foremost).

EKS writes its control-plane logs to the log group ``/aws/eks/<cluster>/cluster``; the
audit log's streams are named ``kube-apiserver-audit-<hash>`` and each log event's
`message` IS one audit.k8s.io Event as JSON. They arrive as a CloudWatch Logs
subscription payload (base64 of gzip of ``{messageType, owner, logGroup, logStream,
subscriptionFilters, logEvents: [{id, timestamp, message}]}``; a Lambda receives it as
``{"awslogs": {"data": ...}}``, Firehose as gzip members written back to back) or as a
FilterLogEvents response page (``{"events": [{logStreamName, timestamp, message,
ingestionTime, eventId}], "nextToken": ...}``).

One input unit is a small JSON envelope per log event, made by `events_of_subscription`
and `events_of_filter_log_events`, so that nothing is lost::

    {"logGroup": ..., "logStream": ..., "id": ..., "timestamp": <ms>, "message": ...}

Quirks handled: the payload may be base64 text, gzip bytes, the Lambda wrapper or the
already decoded JSON (the SYNTHETIC sample); several gzip members in one file; a
CONTROL_MESSAGE (CloudWatch's reachability check) yields nothing; the log group mixes the
audit streams with other control-plane streams (``kube-apiserver-``, ``authenticator-``,
``kube-controller-manager-``, ``kube-scheduler-``, ``cloud-controller-manager-``, all
text): those are valid records that derive nothing. A message of an audit stream that is
not an audit Event is malformed, naming `message`. EKS's `user.extra` (`accessKeyId`,
`arn`, `canonicalArn`, `sessionName`) and `heptio-authenticator-aws:<account>:<role id>`
uids are kept as they are in the derived event.

derived() gives `message` as a `k8s_audit` record (validated with `k8s_audit`'s own
decoding). document() is the envelope with `message` parsed when it is JSON:
``logGroup``, ``logStream``, ``id``, ``timestamp``, ``message.*`` (the audit Event's
members). No SigmaHQ rule applies to it: the `aws/cloudtrail` EKS rules read CloudTrail
(`eventSource: eks.amazonaws.com`), which is a different log; the audit rules see the
derived record. What cannot be recovered: the subscription's `owner` (account) and filter
names, and a FilterLogEvents event's `ingestionTime`, are not kept (the log group is not
in a FilterLogEvents response: the caller passes it).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

import msgspec

from logwarden.normalize import k8s_audit
from logwarden.normalize._cloud import JSON_ERRORS, audit_event, json_error, strip_bom
from logwarden.normalize.base import MalformedInput, checked_time_ns
from logwarden.normalize.k8s_audit import AuditEvent, json_value

__all__ = [
    "AUDIT_STREAM_PREFIX",
    "FORMAT",
    "MAX_PAYLOAD_BYTES",
    "SOURCE",
    "EksEnvelope",
    "EksRecord",
    "alert_ids",
    "alert_labels",
    "decode",
    "derived",
    "document",
    "events_of_filter_log_events",
    "events_of_subscription",
    "record_time_ns",
]

#: The `Record.source` of EKS control-plane log events.
SOURCE = "eks_audit"

#: The log streams of the EKS audit log.
AUDIT_STREAM_PREFIX = "kube-apiserver-audit"

#: The most a subscription payload may inflate to (CloudWatch sends at most 1 MB of gzip
#: per delivery; this bounds a hostile one).
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class EksEnvelope(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One CloudWatch Logs event and where it was logged (the raw unit)."""

    logGroup: str | None = None
    logStream: str | None = None
    id: str | None = None
    timestamp: int | None = None
    message: str


class EksRecord(msgspec.Struct, gc=False):
    """The view of one log event: its envelope and the audit Event its message is (None
    for the other control-plane streams)."""

    envelope: EksEnvelope
    audit: AuditEvent | None
    audit_raw: bytes | None


class _LogEvent(msgspec.Struct):
    message: str
    id: str | None = None
    timestamp: int | None = None


class _Subscription(msgspec.Struct):
    messageType: str | None = None
    logGroup: str | None = None
    logStream: str | None = None
    logEvents: list[msgspec.Raw] | None = None


class _FilteredEvent(msgspec.Struct):
    message: str
    logStreamName: str | None = None
    timestamp: int | None = None
    eventId: str | None = None


class _FilterPage(msgspec.Struct):
    events: list[msgspec.Raw]


class _Lambda(msgspec.Struct):
    awslogs: dict[str, str] | None = None


_envelope_decoder = msgspec.json.Decoder(EksEnvelope)
_log_event_decoder = msgspec.json.Decoder(_LogEvent)
_subscription_decoder = msgspec.json.Decoder(_Subscription)
_filtered_decoder = msgspec.json.Decoder(_FilteredEvent)
_page_decoder = msgspec.json.Decoder(_FilterPage)
_lambda_decoder = msgspec.json.Decoder(_Lambda)
_encode = msgspec.json.Encoder().encode
_GZIP = b"\x1f\x8b"
#: Finds where each JSON document ends; numbers stay text (msgspec reads them after).
_boundaries = json.JSONDecoder(parse_int=str, parse_float=str)

#: What an events_of_* function returns: envelope bytes, or why an item is malformed.
Unit = bytes | MalformedInput


def _gunzip(data: bytes) -> bytes:
    """Every gzip member of `data`, inflated and joined (at most MAX_PAYLOAD_BYTES)."""
    out: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, MAX_PAYLOAD_BYTES - size + 1)
        except zlib.error as exc:
            raise MalformedInput(f"CloudWatch Logs payload: invalid gzip: {exc}") from None
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES or inflater.unconsumed_tail:
            raise MalformedInput(f"CloudWatch Logs payload inflates past {MAX_PAYLOAD_BYTES} bytes")
        if not inflater.eof:
            raise MalformedInput("CloudWatch Logs payload: gzip data is truncated", truncated=True)
        out.append(chunk)
        data = inflater.unused_data.lstrip(b"\0")
    return b"".join(out)


def _payload_json(data: bytes) -> bytes:
    """The JSON text of a subscription delivery, whatever wraps it."""
    data = strip_bom(data)
    if data[:2] == _GZIP:
        return _gunzip(data)
    if data[:1] == b"{":
        try:
            wrapper = _lambda_decoder.decode(data)
        except JSON_ERRORS:
            return data  # the subscription JSON itself; its decoding says what is wrong
        if wrapper.awslogs is None or "data" not in wrapper.awslogs:
            return data
        data = wrapper.awslogs["data"].encode()
    try:
        packed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput(
            "not a CloudWatch Logs subscription payload: neither JSON, gzip nor base64"
        ) from None
    if packed[:2] != _GZIP:
        raise MalformedInput("CloudWatch Logs payload: base64 data is not gzip")
    return _gunzip(packed)


def _documents(text: bytes) -> list[bytes]:
    """The JSON documents of `text` written back to back (Firehose joins deliveries), each
    as its bytes."""
    try:
        s = text.decode()
    except UnicodeDecodeError as exc:
        raise json_error(exc, "JSON") from None
    docs: list[bytes] = []
    pos = 0
    while True:
        while pos < len(s) and s[pos] in " \t\r\n":
            pos += 1
        if pos == len(s):
            return docs
        try:
            end = _boundaries.raw_decode(s, pos)[1]
        except json.JSONDecodeError as exc:
            raise MalformedInput(f"invalid JSON: {exc}") from None
        except RecursionError:
            raise MalformedInput("JSON nested too deeply to read") from None
        docs.append(s[pos:end].encode())
        pos = end


def events_of_subscription(data: bytes) -> list[Unit]:
    """The log events of a CloudWatch Logs subscription delivery as envelope bytes.

    `data` is base64 text of gzip, gzip bytes (several members allowed), a Lambda event
    `{"awslogs": {"data": ...}}` or the decoded JSON. A CONTROL_MESSAGE yields nothing.
    Raises MalformedInput when the delivery as a whole is unusable; a malformed log event
    is a MalformedInput in its place.
    """
    text = _payload_json(data)
    try:
        return _subscription_events(_subscription_decoder.decode(text))
    except msgspec.ValidationError as exc:
        raise json_error(exc, "a CloudWatch Logs subscription payload") from None
    except JSON_ERRORS as exc:
        if "trailing characters" not in str(exc):
            raise json_error(exc, "JSON") from None
    out: list[Unit] = []
    for doc in _documents(text):
        try:
            out.extend(_subscription_events(_subscription_decoder.decode(doc)))
        except JSON_ERRORS as exc:
            raise json_error(exc, "a CloudWatch Logs subscription payload") from None
    return out


def _subscription_events(sub: _Subscription) -> list[Unit]:
    if sub.messageType == "CONTROL_MESSAGE":
        return []
    if sub.logEvents is None:
        raise MalformedInput("CloudWatch Logs subscription payload: missing logEvents")
    out: list[Unit] = []
    for i, raw in enumerate(sub.logEvents):
        try:
            ev = _log_event_decoder.decode(raw)
        except JSON_ERRORS as exc:
            out.append(MalformedInput(f"logEvents[{i}]: {json_error(exc, 'a log event')}"))
            continue
        env = EksEnvelope(
            logGroup=sub.logGroup,
            logStream=sub.logStream,
            id=ev.id,
            timestamp=ev.timestamp,
            message=ev.message,
        )
        out.append(_encode(env))
    return out


def events_of_filter_log_events(data: bytes, log_group: str | None = None) -> list[Unit]:
    """The events of a FilterLogEvents response page as envelope bytes (the response
    does not name the log group: pass it as `log_group`)."""
    try:
        page = _page_decoder.decode(strip_bom(data))
    except JSON_ERRORS as exc:
        raise json_error(exc, "a FilterLogEvents response") from None
    out: list[Unit] = []
    for i, raw in enumerate(page.events):
        try:
            ev = _filtered_decoder.decode(raw)
        except JSON_ERRORS as exc:
            out.append(MalformedInput(f"events[{i}]: {json_error(exc, 'a log event')}"))
            continue
        env = EksEnvelope(
            logGroup=log_group,
            logStream=ev.logStreamName,
            id=ev.eventId,
            timestamp=ev.timestamp,
            message=ev.message,
        )
        out.append(_encode(env))
    return out


def _is_audit_stream(stream: str | None) -> bool | None:
    if not stream:
        return None  # unknown: the message decides
    return stream.startswith(AUDIT_STREAM_PREFIX)


def decode(data: bytes) -> EksRecord:
    """The view of one envelope."""
    try:
        env = _envelope_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise json_error(exc, "an EKS log event envelope") from None
    audit = _is_audit_stream(env.logStream)
    if audit is False:
        return EksRecord(env, None, None)
    try:
        raw = env.message.encode()
    except UnicodeEncodeError:
        raise MalformedInput("EKS log event: message is not valid Unicode") from None
    if audit is None and raw.lstrip()[:1] != b"{":
        return EksRecord(env, None, None)
    try:
        return EksRecord(env, audit_event(raw, "EKS log event: message"), raw)
    except MalformedInput:
        if audit is None:
            return EksRecord(env, None, None)
        raise


def record_time_ns(rec: EksRecord) -> int:
    """The audit Event's time, else the log event's `timestamp` (milliseconds)."""
    if rec.audit is not None:
        return k8s_audit.event_time_ns(rec.audit)
    if rec.envelope.timestamp is None:
        raise MalformedInput("EKS log event: missing timestamp")
    ms = rec.envelope.timestamp
    return checked_time_ns(ms * 1_000_000, f"EKS log event: timestamp {ms} (milliseconds)")


def alert_ids(rec: EksRecord) -> tuple[str | None, str | None]:
    """The audit Event's ID and stage, else the CloudWatch event id."""
    if rec.audit is None:
        return rec.envelope.id, None
    return rec.audit.auditID, rec.audit.stage


def alert_labels(rec: EksRecord) -> dict[str, str]:
    """The audit Event's labels: namespace, user (`user.username`), resource."""
    return k8s_audit.alert_labels(rec.audit) if rec.audit is not None else {}


def document(_raw: bytes, rec: EksRecord) -> Any:
    """The envelope with `message` parsed when it is JSON."""
    env = rec.envelope
    doc: dict[str, Any] = msgspec.structs.asdict(env)
    if rec.audit_raw is not None:
        doc["message"] = json_value(rec.audit_raw)
    return {k: v for k, v in doc.items() if v is not None}


def derived(_raw: bytes, rec: EksRecord) -> list[tuple[str, bytes]]:
    """The message as a `k8s_audit` record (nothing for the other streams)."""
    if rec.audit_raw is None:
        return []
    return [(k8s_audit.SOURCE, rec.audit_raw)]


class _EksFormat:
    source = SOURCE
    decode = staticmethod(decode)
    time_ns = staticmethod(record_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(derived)


#: The EKS CloudWatch Logs event format as a `normalize.base.Format`.
FORMAT = _EksFormat()
