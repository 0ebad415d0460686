"""The flooding department of `bench commands --flood`, run in its own process (its CPU must
not slow the answering departments): raw WebSocket frames at a fixed rate for a bounded time,
reconnecting whenever the hub cuts it off, as a hostile client would.

`python -m hub.bench_flood URL TOKEN RATE SECONDS TYPE` prints one JSON line: frames tried
and sent, acks, `rate_limited` and other errors, connections made and refused. It runs at
nice 10: on a real network the flooder's CPU is not the hub's. TYPE `cpu` is the control: a
process as busy, sending nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

TICK_S = 0.01  # frames go out in batches, one batch per tick
MAX_FRAMES = 200_000  # whatever the arguments, the loop is bounded


def frame(kind: str, i: int) -> str:
    if kind == "ping":
        return json.dumps({"v": 1, "id": f"flood-{i}", "type": "ping"})
    return json.dumps({"v": 1, "id": f"flood-{i}", "type": "report.field",
                       "text": f"flood report {i}"})


async def flood(url: str, token: str, rate: float, seconds: float, kind: str) -> dict[str, Any]:
    replies: Counter[str] = Counter()
    total = min(int(rate * seconds), MAX_FRAMES)
    per_tick = max(1, round(rate * TICK_S))
    connections = refused = 0
    close_codes: Counter[str] = Counter()
    sent = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    async with aiohttp.ClientSession() as http:
        while sent < total and time.perf_counter() < deadline:
            try:
                ws = await http.ws_connect(url.rstrip("/") + "/ws", params={"token": token},
                                           heartbeat=5.0)
            except aiohttp.WSServerHandshakeError as exc:
                refused += 1
                close_codes[f"http {exc.status}"] += 1
                await asyncio.sleep(TICK_S)
                continue
            connections += 1
            await ws.receive()  # welcome

            async def read(ws: aiohttp.ClientWebSocketResponse = ws) -> None:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        f = json.loads(msg.data)
                        if f.get("type") in ("ack", "error"):
                            replies["ack" if f["type"] == "ack" else str(f.get("code"))] += 1

            reader = asyncio.create_task(read())
            try:
                while sent < total and time.perf_counter() < deadline and not ws.closed:
                    delay = t0 + (sent // per_tick) * TICK_S - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    for _ in range(min(per_tick, total - sent)):
                        await ws.send_str(frame(kind, sent))
                        sent += 1
            except (aiohttp.ClientError, ConnectionError):
                pass  # cut off by the hub: connect again
            await asyncio.sleep(0.05)  # answers in flight
            close_codes[str(ws.close_code)] += 1
            await ws.close()
            reader.cancel()
    elapsed = time.perf_counter() - t0
    return {"tried": total, "sent": sent, "seconds": round(elapsed, 3),
            "sent_per_s": round(sent / elapsed, 1), "acks": replies.pop("ack", 0),
            "rate_limited": replies.pop("rate_limited", 0), "other_errors": dict(replies),
            "connections": connections, "connections_refused": refused,
            "closes": dict(close_codes)}


def burn(seconds: float) -> dict[str, Any]:
    """The control: as busy as a flooder, sending nothing (what the shared cores alone cost)."""
    deadline = time.perf_counter() + seconds
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return {"tried": 0, "sent": 0, "control": "cpu only", "spins": spins}


def main(argv: list[str]) -> int:
    url, token, rate, seconds, kind = argv
    # A real flooder runs on its own machine; here it shares the hub's cores, so it yields
    # to them (its sending is what is measured against, not its CPU).
    os.nice(10)
    result = burn(float(seconds)) if kind == "cpu" else \
        asyncio.run(flood(url, token, float(rate), float(seconds), kind))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
