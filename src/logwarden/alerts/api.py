"""The alerts API of `logwarden run` (ASGI; served over HTTPS by `service`).

Every request must carry `Authorization: Bearer <token>` (the token of
`alerts.api.token_file`); without it the answer is 401. Bodies are JSON.

- ``GET /api/v1/alerts[?status=firing|acknowledged|resolved]``: tracked alerts, newest first
- ``GET /api/v1/alerts/{fingerprint}``: one alert (404 if unknown)
- ``POST /api/v1/alerts/{fingerprint}/ack`` and ``.../resolve``, body
  ``{"by": "alice", "comment": "..."}`` (both optional): the manager applies it within a
  second; the answer waits up to 5 s for it: 200 ``{"result": "..."}``, or 202
  ``{"command": id}`` when it is still queued
- ``GET /api/v1/silences``; ``POST /api/v1/silences`` with ``{"matchers": [...],
  "duration": "2h", "comment": "...", "created_by": "..."}`` (201, the silence);
  ``DELETE /api/v1/silences/{id}`` ends one now. A silence lasts at most 10 years
  (`MAX_SILENCE`).

Errors are ``{"error": "what is wrong"}`` with 400, 401, 404 or 405; a body that is not
JSON, not UTF-8 or not what is expected is a 400 naming the member at fault.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs

import msgspec

from logwarden._asgi import BodyStalled, Receive, Scope, Send, receive_part, reply
from logwarden.alerts.matchers import MatcherError, parse_silence_matchers
from logwarden.alerts.state import AlertStore
from logwarden.records import parse_duration

__all__ = ["MAX_SILENCE", "AlertsApi", "silence_span"]

#: The longest a silence lasts, as written in messages, and in nanoseconds.
MAX_SILENCE = "10 years (3650d)"
_MAX_SILENCE_NS = 3650 * 86_400 * 1_000_000_000

_JSON = b"application/json"
_PREFIX = "/api/v1/"
_MAX_BODY = 64 << 10


class _Change(msgspec.Struct, forbid_unknown_fields=True):
    by: str = "api"
    comment: str = ""


class _NewSilence(msgspec.Struct, forbid_unknown_fields=True):
    matchers: list[str]
    comment: str
    duration: str = "2h"
    created_by: str = "api"


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AlertsApi:
    """The ASGI app; `store` is opened by the caller, `token` is the bearer token."""

    def __init__(self, store: AlertStore, token: str, *, wait_secs: float = 5.0) -> None:
        self._store = store
        self._token = f"Bearer {token}".encode()
        self._wait = wait_secs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            self._authenticate(scope)
            body = await _body(receive)
            status, answer = await self._route(scope["method"], scope["path"], scope, body)
        except _Refused as exc:
            status, answer = exc.status, {"error": str(exc)}
        headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await reply(send, status, msgspec.json.encode(answer), _JSON, headers)

    def _authenticate(self, scope: Scope) -> None:
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._token):
            raise _Refused(401, "send the API token as 'Authorization: Bearer <token>'")

    async def _route(self, method: str, path: str, scope: Scope, body: bytes) -> tuple[int, Any]:
        if not path.startswith(_PREFIX):
            raise _Refused(404, f"no such path {path}: the API is under {_PREFIX}")
        parts = path[len(_PREFIX) :].strip("/").split("/")
        store = self._store
        match parts, method:
            case ["alerts"], "GET":
                query = parse_qs(scope.get("query_string", b"").decode())
                status = query.get("status", [None])[0]
                if status not in (None, "firing", "acknowledged", "resolved"):
                    raise _Refused(400, "status must be firing, acknowledged or resolved")
                return 200, await asyncio.to_thread(store.alerts, status)
            case ["alerts", fp], "GET":
                alert = await asyncio.to_thread(store.alert, fp)
                if alert is None:
                    raise _Refused(404, f"no alert with fingerprint {fp}")
                return 200, alert
            case ["alerts", fp, ("ack" | "resolve") as kind], "POST":
                return await self._change(fp, kind, _decode(body, _Change))
            case ["silences"], "GET":
                return 200, await asyncio.to_thread(store.silences)
            case ["silences"], "POST":
                return 201, await asyncio.to_thread(self._silence, _decode(body, _NewSilence))
            case ["silences", sid], "DELETE":
                if not await asyncio.to_thread(store.expire_silence, sid, time.time_ns()):
                    raise _Refused(404, f"no active silence {sid}")
                return 200, {"result": f"silence {sid} expired"}
            case (
                (["alerts"] | ["alerts", _] | ["alerts", _, _] | ["silences"] | ["silences", _]),
                _,
            ):
                raise _Refused(405, f"{method} is not allowed on {path}")
        raise _Refused(404, f"no such path {path}")

    async def _change(self, fp: str, kind: str, change: _Change) -> tuple[int, Any]:
        store = self._store
        if await asyncio.to_thread(store.alert, fp) is None:
            raise _Refused(404, f"no alert with fingerprint {fp}")
        command = await asyncio.to_thread(store.command, kind, fp, change.by, change.comment)  # type: ignore[arg-type]
        deadline = time.monotonic() + self._wait
        while time.monotonic() < deadline:
            result = await asyncio.to_thread(store.result, command)
            if result is not None:
                return 200, {"result": result}
            await asyncio.sleep(0.1)
        return 202, {"command": command, "result": None}

    def _silence(self, new: _NewSilence) -> Any:
        try:
            parse_silence_matchers(new.matchers)
        except MatcherError as exc:
            raise _Refused(400, f"matchers: {exc}") from None
        try:
            span = silence_span(new.duration)
        except ValueError as exc:
            raise _Refused(400, f"duration: {exc}") from None
        now = time.time_ns()
        return self._store.add_silence(new.matchers, now, now + span, new.created_by, new.comment)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message = await receive_part(receive)
        except BodyStalled as exc:
            raise _Refused(408, str(exc)) from None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            raise _Refused(400, f"the body is larger than {_MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def silence_span(duration: str) -> int:
    """Nanoseconds of a silence's `duration` (`2h`, `1h30m`, `90`: see `parse_duration`);
    ValueError unless it is one of at most `MAX_SILENCE`."""
    if len(duration) > 64:
        raise ValueError(f"{duration[:20]!r}... is not a duration of at most {MAX_SILENCE}")
    span = parse_duration(duration)
    if span > _MAX_SILENCE_NS:
        raise ValueError(f"'{duration}' is too long: a silence lasts at most {MAX_SILENCE}")
    return span


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise _Refused(400, f"body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise _Refused(400, f"body is not JSON: {exc}") from None
    except UnicodeDecodeError:
        raise _Refused(400, f"body: invalid UTF-8{_not_utf8(body)}") from None


def _not_utf8(body: bytes) -> str:
    """Where in `body` the invalid UTF-8 is (`` - at `$.comment` ``), if it is JSON."""
    try:
        doc = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return ""
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack:
        at, value = stack.pop()
        if _escaped(at) or (isinstance(value, str) and _escaped(value)):
            return f" - at `{_shown(at)}`"
        if isinstance(value, dict):
            stack.extend(reversed([(f"{at}.{k}", v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{at}[{i}]", v) for i, v in enumerate(value)]))
    return ""


def _escaped(text: str) -> bool:
    """Whether `text` holds a byte that is no UTF-8 (decoded with surrogateescape)."""
    return any("\udc80" <= c <= "\udcff" for c in text)


def _shown(path: str) -> str:
    return path.encode("utf-8", "backslashreplace").decode()
