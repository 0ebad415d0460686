"""Reading a raw HTTP request body whole, up to the route's limit: the one reader every route uses.

`read_body` returns every byte the client sent or raises BodyError: 413 `too_large` past the
limit (at once when Content-Length says so), 400 `short_body` when fewer bytes arrive than
Content-Length promised (the client stopped sending, or hung up), 408 `body_timeout` when a
body without Content-Length stalls. So what a route stores and hashes is exactly what was sent.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

IDLE_TIMEOUT_S = 10.0  # no byte of the body for this long: the client is not sending it
TOTAL_TIMEOUT_S = 120.0  # a whole body, however slowly it trickles in
CHUNK = 64 * 1024


class BodyError(Exception):
    """The body cannot be used; `status` and `code` go on the wire."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyError otherwise (see the module doc)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyError(413, "too_large", f"body of {declared} bytes is over this route's limit "
                        f"of {limit} bytes")
    buf = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOTAL_TIMEOUT_S
    try:
        while True:
            wait = min(IDLE_TIMEOUT_S, deadline - loop.time())
            if wait <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(request.content.read(min(CHUNK, limit + 1 - len(buf))),
                                           wait)
            if not chunk:
                break
            buf += chunk
            if len(buf) > limit:
                raise BodyError(413, "too_large", f"body is over this route's limit of {limit} "
                                "bytes")
    except TimeoutError as exc:
        if declared is not None:
            raise BodyError(400, "short_body", f"Content-Length is {declared} but only "
                            f"{len(buf)} bytes arrived (no more for {IDLE_TIMEOUT_S:g} s)") from exc
        raise BodyError(408, "body_timeout", f"body stalled after {len(buf)} bytes") from exc
    except (ConnectionError, HttpProcessingError) as exc:
        raise BodyError(400, "short_body", f"the body ended early after {len(buf)} bytes "
                        f"({type(exc).__name__}: {exc})") from exc
    if declared is not None and len(buf) != declared:
        raise BodyError(400, "short_body", f"Content-Length is {declared} but {len(buf)} bytes "
                        "arrived")
    return bytes(buf)
