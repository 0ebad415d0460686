"""`commandhub bench tiers`: a city hub and N town hubs (separate processes, loopback), each
town with M departments as WebSocket clients; the city issues commands at a fixed rate, each
to one town in turn; the town issues it to its departments, which answer receipt and
completed at once.

Measured from the city's log (its monotonic clock): `rtt_*` command.issued -> the town's
command.completed (every department of the town answered, through the town hub, back at the
city) and `link_*` command.issued -> the town's receipt (the town hub linked it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hub.bench import percentile, proc_cpu_s, wait_http
from hub.client import HubClient, HubClientError
from hub.logformat import read_events
from hub.tiers.cluster import Tiers
from hub.tiers.linkcheck import check_linked

MAX_SECONDS = 120.0  # the issuing phase, at most
DRAIN_S = 30.0  # then at most this long for the last answers


def _cpu(tiers: Tiers) -> tuple[float, float]:
    """CPU seconds so far of the city process and of the town processes together."""
    def of(p: Any) -> float:
        return proc_cpu_s(p.proc.pid) if p.proc is not None and p.proc.poll() is None else 0.0
    return of(tiers.city), sum(of(t) for t in tiers.towns.values())


def _responder(client: HubClient) -> Any:
    async def on_command(frame: dict[str, Any]) -> None:
        cid = frame["command"]["command_id"]
        with contextlib.suppress(HubClientError):
            await client.respond(cid, "receipt")
            await client.respond(cid, "completed")
    return on_command


async def _wait_towns_online(cmdr: HubClient, towns: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await cmdr.rest("GET", "/api/state")
        online = {d["id"] for d in state["departments"] if d["online"]}
        if set(towns) <= online:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"towns not online at the city within {timeout} s")


async def bench_tiers(args: argparse.Namespace) -> dict[str, Any]:
    seconds = min(float(args.seconds), MAX_SECONDS)
    with tempfile.TemporaryDirectory(prefix="bench-tiers-") as tmp:
        tiers = Tiers.make(Path(tmp), args.towns, args.departments)
        clients: list[HubClient] = []
        started = time.monotonic()
        try:
            await tiers.start(timeout=180)  # 15 Python processes starting on 2 cores
            cmdr = HubClient(tiers.city.url, tiers.city.token("commander"), request_timeout=120,
                             max_backoff=1.0)
            clients.append(cmdr)
            await cmdr.connect()
            await _wait_towns_online(cmdr, list(tiers.towns), 60)
            for t, units in tiers.units.items():
                for d in units:
                    c = HubClient(tiers.towns[t].url, tiers.towns[t].token("department", d),
                                  request_timeout=30)
                    c.on_command = _responder(c)
                    await c.connect()
                    clients.append(c)
            setup_s = time.monotonic() - started
            towns = list(tiers.towns)
            count = max(1, int(seconds * args.rate))
            cpu0 = _cpu(tiers), time.process_time()
            t0 = time.monotonic()
            issued: list[str] = []
            pending: list[asyncio.Task[dict[str, Any]]] = []
            paused = 0.0
            for i in range(count):
                if args.outage and i == count // 2:  # the city dies mid-run and comes back
                    cut = time.monotonic()
                    tiers.city.stop(kill=True)
                    await asyncio.sleep(min(args.outage, MAX_SECONDS))
                    tiers.city.start()
                    await wait_http(tiers.city.url, 120)
                    paused = time.monotonic() - cut
                await asyncio.sleep(max(0.0, t0 + paused + i / args.rate - time.monotonic()))
                pending.append(asyncio.create_task(cmdr.issue(
                    [towns[i % len(towns)]], f"bench {i}", requires=["receipt", "completed"])))
            for task in pending:
                with contextlib.suppress(HubClientError):
                    issued.append((await task)["command_id"])
            issue_s = time.monotonic() - t0
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline:
                state = await cmdr.rest("GET", "/api/state")
                if not state["commands"]:
                    break
                await asyncio.sleep(0.2)
            load = os.getloadavg()
            cpu1 = _cpu(tiers), time.process_time()
        finally:
            for c in clients:
                with contextlib.suppress(Exception):
                    await c.close()
            tiers.stop()
        events = read_events(tiers.city.db)
        linked = check_linked(tiers.city.db, [t.db for t in tiers.towns.values()])
    issued_at = {e.payload["command_id"]: e.mono_ns for e in events
                 if e.kind == "command.issued"}
    rtt, link = [], []
    seen: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        if e.role != "hub" or e.payload.get("command_id") not in issued_at:
            continue
        seen[(e.payload["command_id"], str(e.dept), e.kind)] += 1
        ms = (e.mono_ns - issued_at[e.payload["command_id"]]) / 1e6
        if e.kind == "command.completed":
            rtt.append(ms)
        elif e.kind == "command.acknowledged":
            link.append(ms)
    result = {
        "towns": args.towns, "departments": args.departments, "rate": args.rate,
        "commands": count, "issued": len(issued), "completed": len(rtt), "linked": len(link),
        "lost": len(issued) - len(set(k[0] for k in seen if k[2] == "command.completed")),
        "doubled": sum(n - 1 for n in seen.values() if n > 1),
        "outage_s": args.outage, "linked_verify_problems": len(linked.problems),
        "rtt_p50_ms": round(percentile(rtt, 50), 2) if rtt else None,
        "rtt_p99_ms": round(percentile(rtt, 99), 2) if rtt else None,
        "rtt_max_ms": round(max(rtt), 2) if rtt else None,
        "link_p50_ms": round(percentile(link, 50), 2) if link else None,
        "link_p99_ms": round(percentile(link, 99), 2) if link else None,
        "target_p99_ms": 100.0, "setup_s": round(setup_s, 1), "issue_s": round(issue_s, 1),
        "loadavg": [round(x, 2) for x in load],
        # CPU seconds used while issuing and draining: the city, all towns, the client process
        "cpu_s": {"city": None if args.outage else round(cpu1[0][0] - cpu0[0][0], 2),
                  "towns": round(cpu1[0][1] - cpu0[0][1], 2),
                  "clients": round(cpu1[1] - cpu0[1], 2)},
    }
    if not args.json:
        for k, v in result.items():
            print(f"{k:>14}: {v}")
    return result
