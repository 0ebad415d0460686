"""kill -9 the hub again and again while 16 departments answer: every confirmed response survives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from hub.auth import TokenAuthority, load_secret
from hub.bench import free_port, start_hub_process, wait_http
from hub.client import HubClient, HubClientError
from hub.logformat import read_events, verify_file
from hub.roster import load_roster

KILLS = 4


async def test_kill_9_loses_no_confirmed_response(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_hub_process(data, port)
    await wait_http(url)
    auth = TokenAuthority(load_secret(data))
    now = int(time.time())
    confirmed: list[tuple[str, str, str, int]] = []  # (command, dept, state, seq)
    commander = HubClient(url, auth.issue("commander", now=now), request_timeout=30)
    await commander.connect()
    depts = load_roster().ids
    clients = []

    def responder(c: HubClient, dept: str) -> Any:
        busy: set[str] = set()

        async def on_command(frame: dict[str, Any]) -> None:
            command = frame["command"]
            cid = command["command_id"]
            if cid in busy:
                return
            busy.add(cid)
            try:
                done = set(command["progress"][dept]["times_us"])
                for stage, state in (("receipt", "acknowledged"), ("on_scene", "on_scene"),
                                     ("completed", "completed")):
                    if state in done:
                        continue
                    ack = await c.respond(cid, stage)
                    confirmed.append((cid, dept, ack["state"], ack["seq"]))
            except HubClientError:
                pass  # refused or cut off: not confirmed, so nothing is owed
            finally:
                busy.discard(cid)
        return on_command

    for d in depts:
        c = HubClient(url, auth.issue("department", now=now, dept=d), request_timeout=30)
        c.on_command = responder(c, d)
        await c.connect()
        clients.append(c)

    stop = asyncio.Event()
    issued: list[str] = []

    async def dispatch() -> None:
        i = 0
        while not stop.is_set():
            with contextlib.suppress(HubClientError):
                ack = await commander.issue("all", f"指令 {i}",
                                            requires=["receipt", "on_scene", "completed"])
                issued.append(ack["command_id"])
            i += 1
            await asyncio.sleep(0.05)

    task = asyncio.create_task(dispatch())
    try:
        for _ in range(KILLS):
            await asyncio.sleep(0.8)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc = start_hub_process(data, port)
            await wait_http(url)
        await asyncio.sleep(1.5)
        stop.set()
        await task
        # let the departments finish what is in flight (bounded)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = await commander.rest("GET", "/api/state")
            if not state["commands"]:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        for c in [commander, *clients]:
            await c.close()
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()
    head = verify_file(data / "events.db")
    events = {e.seq: e for e in read_events(data / "events.db")}
    assert head.seq == max(events)
    kind_of = {"acknowledged": "command.acknowledged", "on_scene": "command.on_scene",
               "completed": "command.completed"}
    assert len(confirmed) > 100 and len(issued) > 10
    for cid, dept, state, seq in confirmed:
        ev = events[seq]
        assert (ev.kind, ev.payload["command_id"], ev.dept) == (kind_of[state], cid, dept)
    # and each (command, department, state) is logged once, however often it was re-sent
    keys = [(e.kind, e.payload["command_id"], e.dept) for e in events.values()
            if e.kind in kind_of.values()]
    assert len(keys) == len(set(keys))
    starts = [e for e in events.values() if e.kind == "hub.started"]
    assert len(starts) == KILLS + 1
    assert any(e.kind == "presence.offline" and e.payload["reason"] == "hub_restart"
               for e in events.values())
