"""Pub/Sub's REST API on one subscription, and the threads of a subscriber around it.

`Api` makes the three calls `gke_pubsub` needs (``:pull``, ``:acknowledge``,
``:modifyAckDeadline``) through google-auth's `AuthorizedSession`, and tells what a failed
answer means: `Transient` (worth trying again), `Invalid` (a rejected request: for an
acknowledgement, expired ack ids) or an `InputError` naming the subscription. `Puller` runs
each pull in a thread of its own so that `stop` is seen while it waits; `Lease` extends the
ack deadline of the messages held. `load_credentials` finds the Google credentials the
session uses.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from logwarden.errors import InputError

__all__ = [
    "ENDPOINT",
    "Api",
    "Invalid",
    "Lease",
    "Message",
    "Puller",
    "Received",
    "Transient",
    "load_credentials",
]

log = logging.getLogger("logwarden.sources")

#: Pub/Sub's public endpoint.
ENDPOINT = "https://pubsub.googleapis.com"
_PERMISSION = "pubsub.subscriptions.consume"
_SCOPES = ["https://www.googleapis.com/auth/pubsub"]
_CONNECT_SECS = 10
#: a pull waits on the server for messages (a bounded time) before it answers
_PULL_READ_SECS = 90
_CALL_READ_SECS = 30
#: how often a waiting loop looks at `stop`
_POLL_SECS = 0.05
#: ack ids per acknowledge or modifyAckDeadline request (the request is at most 512 KB)
_ACK_CHUNK = 1000


class Message(msgspec.Struct):
    data: str = ""
    messageId: str = ""


class Received(msgspec.Struct):
    ackId: str
    message: Message = msgspec.field(default_factory=Message)


class _Pulled(msgspec.Struct):
    receivedMessages: list[Received] = []


class _Status(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""


class _ErrorBody(msgspec.Struct):
    error: _Status | None = None


_pulled_decoder = msgspec.json.Decoder(_Pulled)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


class Transient(Exception):
    """A failed request worth trying again."""


class Invalid(InputError):
    """Pub/Sub rejected a request (400, 412): for an acknowledgement, expired ack ids."""


class Api:
    """Pub/Sub's REST methods on one subscription through one authorized session (each
    thread has its own)."""

    def __init__(self, credentials: Any, endpoint: str, subscription: str, where: str) -> None:
        from google.auth.transport import requests as transport

        authorized: Any = transport.AuthorizedSession  # untyped
        self._session: Any = authorized(credentials)
        self._session.headers["User-Agent"] = "logwarden"
        self._base = f"{endpoint.rstrip('/')}/v1/{subscription}"
        self._subscription = subscription
        self._where = where

    def pull(self, max_messages: int) -> list[Received]:
        data = self._call("pull", {"maxMessages": max_messages}, _PULL_READ_SECS)
        try:
            return _pulled_decoder.decode(data).receivedMessages
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise Transient(f"the pull answer is not a PullResponse: {exc}") from None

    def acknowledge(self, ack_ids: list[str]) -> None:
        for i in range(0, len(ack_ids), _ACK_CHUNK):
            self._call("acknowledge", {"ackIds": ack_ids[i : i + _ACK_CHUNK]}, _CALL_READ_SECS)

    def modify(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), _ACK_CHUNK):
            body = {"ackIds": ack_ids[i : i + _ACK_CHUNK], "ackDeadlineSeconds": seconds}
            self._call("modifyAckDeadline", body, _CALL_READ_SECS)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, body: dict[str, Any], read_secs: int) -> bytes:
        import requests
        from google.auth import exceptions as gx

        try:
            resp = self._session.post(
                f"{self._base}:{method}",
                data=msgspec.json.encode(body),
                headers={"Content-Type": "application/json"},
                timeout=(_CONNECT_SECS, read_secs),
            )
        except (requests.RequestException, gx.TransportError) as exc:
            raise Transient(f"{method}: {exc}") from None
        except gx.RefreshError as exc:
            if exc.retryable:
                raise Transient(f"{method}: getting a token failed: {exc}") from None
            raise InputError(f"{self._where}: the credentials were refused ({exc})") from exc
        except gx.GoogleAuthError as exc:
            raise InputError(f"{self._where}: the credentials are unusable ({exc})") from exc
        if resp.status_code == 200:
            return bytes(resp.content)
        raise self._error(method, resp.status_code, resp.content)

    def _error(self, method: str, code: int, content: bytes) -> Exception:
        """What a failed answer means (see the module doc)."""
        try:
            status = _error_decoder.decode(content).error or _Status()
        except (msgspec.DecodeError, UnicodeDecodeError):
            status = _Status(message=content[:200].decode("utf-8", "replace").strip())
        said = f"{status.status or code}: {status.message}".rstrip(": ")
        if code in (408, 429) or code >= 500:
            return Transient(f"{method}: {said}")
        where = self._where
        if code == 403:
            return InputError(
                f"{where}: permission denied to {method}; grant the identity in use "
                f"{_PERMISSION} on {self._subscription} (the role roles/pubsub.subscriber) "
                f"(Pub/Sub said: {said})"
            )
        if code == 401:
            return InputError(f"{where}: Pub/Sub refused the credentials ({said})")
        if code == 404:
            return InputError(f"{where}: the subscription does not exist ({said})")
        if code in (400, 412):
            return Invalid(f"{where}: {method} was rejected ({said})")
        return InputError(f"{where}: {method} failed ({said})")


class Puller:
    """Runs each pull in a thread of its own so that `stop` is seen while it waits. A pull
    still waiting when `run` ends hands back what it brings (deadline 0) and closes its
    session."""

    def __init__(self, api: Api, max_messages: int) -> None:
        self._api = api
        self._max = max_messages
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._closed = False
        self._result: list[Received] = []
        self._error: Exception | None = None

    def pull(self, stop: threading.Event) -> list[Received] | None:
        """The messages of one pull; None if `stop` was set while waiting."""
        if self._done.is_set():
            self._done.clear()
            threading.Thread(target=self._work, name="gke-pubsub-pull", daemon=True).start()
        while not self._done.wait(_POLL_SECS):
            if stop.is_set():
                return None  # the pull goes on: `close` hands back what it brings
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if not self._done.is_set():
                return  # the pull thread closes the session when it is done
        self._api.close()

    def _work(self) -> None:
        result: list[Received] = []
        error: Exception | None = None
        try:
            result = self._api.pull(self._max)
        except Exception as exc:
            error = exc
        with self._lock:
            self._result, self._error = result, error
            self._done.set()
            if not self._closed:
                return
        try:
            if result:
                self._api.modify([r.ackId for r in result], 0)
        except Exception as exc:
            log.info("could not hand back %d pulled messages (%s)", len(result), exc)
        finally:
            self._api.close()


class Lease:
    """Extends the ack deadline of the messages held, every half deadline, in a thread of
    its own (which closes its session when it ends). `extended` is told how many messages
    each extension held, `failed` why one failed."""

    def __init__(
        self,
        api: Api,
        deadline_secs: int,
        extended: Callable[[int], None],
        failed: Callable[[str], None],
    ) -> None:
        self._api = api
        self._deadline = deadline_secs
        self._extended = extended
        self._failed = failed
        self._held: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="gke-pubsub-lease", daemon=True).start()

    def hold(self, ack_ids: list[str]) -> None:
        with self._lock:
            self._held.update(dict.fromkeys(ack_ids))

    def release(self, ack_ids: list[str]) -> None:
        with self._lock:
            for ack_id in ack_ids:
                self._held.pop(ack_id, None)

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._deadline / 2):
                with self._lock:
                    ack_ids = list(self._held)
                if not ack_ids:
                    continue
                try:
                    self._api.modify(ack_ids, self._deadline)
                    self._extended(len(ack_ids))
                except Exception as exc:  # a message that expires comes again: a repeat
                    self._failed(f"extending the ack deadline of {len(ack_ids)} messages: {exc}")
        finally:
            self._api.close()


def load_credentials(credentials_file: str | None, source_id: str) -> Any:
    """The credentials of `credentials_file` (a service account key), else Application
    Default Credentials. Raises InputError, naming source `source_id`, when google-auth is
    missing or the credentials are unusable."""
    try:
        import google.auth
        from google.auth import exceptions as gx
        from google.auth.transport import requests as _  # noqa: F401 (needs requests)
        from google.oauth2 import service_account
    except ImportError as exc:
        raise InputError(
            f"source '{source_id}' (gke_pubsub) needs google-auth: pip install 'logwarden[gcp]'"
        ) from exc
    what = credentials_file or "Application Default Credentials"
    try:
        if not credentials_file:
            credentials, _project = google.auth.default(scopes=_SCOPES)
            return credentials
        info = json.loads(Path(credentials_file).read_bytes())
        kind = info.get("type") if isinstance(info, dict) else None
        if kind != "service_account":
            raise ValueError(
                f"not a service account key (type {kind!r}); other credentials go in "
                "GOOGLE_APPLICATION_CREDENTIALS"
            )
        load: Any = service_account.Credentials.from_service_account_info  # untyped
        return load(info, scopes=_SCOPES)
    except OSError as exc:
        raise InputError(
            f"source '{source_id}': cannot read the credentials file {what}: {exc.strerror}"
        ) from exc
    except (gx.GoogleAuthError, ValueError) as exc:
        raise InputError(
            f"source '{source_id}': no usable Google credentials ({what}: {exc}); "
            "set credentials_file to a service account key or GOOGLE_APPLICATION_CREDENTIALS, "
            "or give the pod a Workload Identity"
        ) from exc
