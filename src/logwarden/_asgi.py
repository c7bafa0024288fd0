"""The little of ASGI that logwarden's HTTP apps use: the callable's types, a reply, and
reading a body from a client that may stall."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["BODY_PART_SECS", "BodyStalled", "Receive", "Scope", "Send", "receive_part", "reply"]

#: how long a client may take to send the next part of a body
BODY_PART_SECS = 30.0


class BodyStalled(Exception):
    """The client sent no part of the body for `BODY_PART_SECS`."""


async def receive_part(receive: Receive) -> dict[str, Any]:
    """The next message of a request, or BodyStalled if it does not come in time (a client
    holding a connection open with half a body)."""
    try:
        return await asyncio.wait_for(receive(), BODY_PART_SECS)
    except TimeoutError:
        raise BodyStalled(f"no part of the body came for {BODY_PART_SECS:.0f} s") from None


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def reply(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole response: status, content type and length, extra headers, body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
