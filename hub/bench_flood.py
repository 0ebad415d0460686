"""The flooding department of `bench commands --flood`, run in its own process (its CPU must
not slow the answering departments): raw WebSocket frames at a fixed rate for a bounded time.

`python -m hub.bench_flood URL TOKEN RATE SECONDS TYPE` prints one JSON line: frames tried
and sent, acks, `rate_limited` and other errors, and the rate the hub let through.
"""

from __future__ import annotations

import asyncio
import json
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
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url.rstrip("/") + "/ws", params={"token": token},
                                   heartbeat=2.0)
        await ws.receive()  # welcome

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    f = json.loads(msg.data)
                    if f.get("type") == "ack":
                        replies["ack"] += 1
                    elif f.get("type") == "error":
                        replies[str(f.get("code"))] += 1

        reader = asyncio.create_task(read())
        t0 = time.perf_counter()
        deadline = t0 + seconds
        sent = 0
        while sent < total and time.perf_counter() < deadline:
            target = t0 + (sent // per_tick) * TICK_S
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for _ in range(min(per_tick, total - sent)):
                await ws.send_str(frame(kind, sent))  # blocks when the hub stops reading
                sent += 1
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0.5)  # answers in flight
        await ws.close()
        reader.cancel()
    return {"tried": total, "sent": sent, "seconds": round(elapsed, 3),
            "sent_per_s": round(sent / elapsed, 1), "acks": replies.pop("ack", 0),
            "rate_limited": replies.pop("rate_limited", 0), "other_errors": dict(replies)}


def main(argv: list[str]) -> int:
    url, token, rate, seconds, kind = argv
    print(json.dumps(asyncio.run(flood(url, token, float(rate), float(seconds), kind))),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
