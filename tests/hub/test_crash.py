"""kill -9 the hub again and again while 16 departments answer: every confirmed response survives;
and a kill between a commit and its ack: the resend is logged once."""

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
from hub.runtime import HOLD_ACK_ENV

KILLS = 4


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop), SIGKILL if it does not end within 20 s."""
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    if proc.poll() is None:
        proc.kill()


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
        # keep dispatching until there is enough to judge (bounded: a loaded machine is slow)
        deadline = time.monotonic() + 60
        while (len(issued) <= 10 or len(confirmed) <= 100) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
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
        stop_process(proc)
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


def _sqlite_count(db: Path, msg_id: str) -> int:
    """Events carrying a client message id, counted by the sqlite3 CLI (not the hub's reader)."""
    out = subprocess.run(
        ["sqlite3", f"file:{db}?mode=ro", "SELECT count(*) FROM events WHERE "
         f"json_extract(payload, '$.client_msg_id') = '{msg_id}'"],
        capture_output=True, text=True, check=True, timeout=30)
    return int(out.stdout.strip())


async def test_kill_9_between_commit_and_ack_then_resend_is_logged_once(tmp_path: Path) -> None:
    """The hub commits a request, then is SIGKILLed before it acks (a fault point holds the
    ack of ids starting `hold-`); the client's resend to the restarted hub gets the first
    answer with duplicate:true, and the event is in the log once."""
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fault = {HOLD_ACK_ENV: "^hold-"}
    proc = start_hub_process(data, port, env=fault)
    await wait_http(url)
    auth = TokenAuthority(load_secret(data))
    now = int(time.time())
    clients = {"commander": HubClient(url, auth.issue("commander", now=now), request_timeout=60),
               "fire": HubClient(url, auth.issue("department", now=now, dept="fire"),
                                 request_timeout=60),
               "evaluator": HubClient(url, auth.issue("evaluator", now=now, name="张三"),
                                      request_timeout=60)}
    for c in clients.values():
        await c.connect()
    db = data / "events.db"
    try:
        await clients["commander"].request("operation.start", title="kill between", kind="drill")
        cid = (await clients["commander"].issue(["fire"], "集结"))["command_id"]
        cases = [("commander", "command.issue", {"targets": ["fire"], "text": "held"},
                  "command.issued"),
                 ("fire", "command.respond", {"command_id": cid, "response": "receipt"},
                  "command.acknowledged"),
                 ("evaluator", "observation.record",
                  {"criterion": "command_coordination", "rating": "S"}, "observation.recorded")]
        for who, mtype, fields, kind in cases:
            mid = f"hold-{mtype}"
            pending = asyncio.ensure_future(clients[who].request(mtype, msg_id=mid, **fields))
            deadline = time.monotonic() + 20
            while _sqlite_count(db, mid) == 0:  # committed ...
                assert time.monotonic() < deadline, f"{mid} never committed"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert not pending.done()  # ... and not acknowledged
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc = start_hub_process(data, port, env=fault)
            await wait_http(url)
            ack = await asyncio.wait_for(pending, 60)  # the client resent it on reconnect
            assert ack["duplicate"] is True, (mtype, ack)
            assert _sqlite_count(db, mid) == 1, mtype
            ev = [e for e in read_events(db) if e.payload.get("client_msg_id") == mid]
            assert [e.kind for e in ev] == [kind] and ack["seq"] == ev[0].seq
        obs = next(e for e in read_events(db) if e.kind == "observation.recorded")
        assert obs.payload["evaluator"] == "张三" and len(obs.payload["evaluator_id"]) == 8
    finally:
        for c in clients.values():
            await c.close()
        stop_process(proc)
    verify_file(db)
