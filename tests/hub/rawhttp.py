"""A deliberately dumb HTTP/1.1 client over a raw socket: bodies in pieces, lies in headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_http(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
                   pieces: tuple[bytes, ...] = (), pause_s: float = 0.0,
                   content_length: int | None = -1, chunked: bool = False,
                   timeout_s: float = 30.0) -> RawResponse:
    """Send the request line and headers, then each piece (pausing `pause_s` between them);
    return the parsed response. `content_length`: -1 the true total, None no header, or a lie."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        total = sum(len(p) for p in pieces)
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        elif content_length is not None:
            head.append(f"Content-Length: {total if content_length == -1 else content_length}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        for i, piece in enumerate(pieces):
            if i and pause_s:
                await asyncio.sleep(pause_s)
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            try:
                await writer.drain()
            except ConnectionError:
                break  # the server answered early and closed; read what it said
        if chunked:
            try:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            except ConnectionError:
                pass
        response = await asyncio.wait_for(_read_response(reader), timeout_s)
        # hang up (FIN) and wait until the server has closed too, so it is not left lingering
        # (waiting for the rest of a body it refused) while the test tears the hub down
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            writer.write_eof()
            await asyncio.wait_for(reader.read(), timeout_s)
        return response
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    status_line = await reader.readline()
    parts = status_line.decode().split(" ", 2)
    if len(parts) < 2:
        raise ConnectionError(f"no HTTP response (got {status_line!r})")
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return RawResponse(int(parts[1]), headers, body)
