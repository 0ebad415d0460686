"""Exactly-once: a state-changing request sent again with its id is answered with the first
answer (`duplicate: true`) and logged once — per (actor, id), per command for responses —
over raw frames, after a dropped socket, and after a hub restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.api.messages import MESSAGES
from hub.checkpoint import HeadSigner
from hub.client import HubClient
from hub.logformat import Event, Head, read_events
from hub.runtime import RunningHub, ServeOptions, start_hub
from tests.hub.raw import RawSocket, outcome, rpc

# Each state-changing type, who sends it, and fields that succeed in the prepared state
# (an operation with fire, police and the town changjiang taking part; C1 issued to fire and
# police, C2 to changjiang, whose town hub answers it).
ONCE: list[tuple[str, tuple[str, str | None], dict[str, Any]]] = [
    ("command.issue", ("commander", None), {"targets": ["fire"], "text": "集结"}),
    ("command.escalate", ("commander", None), {"command_id": "C1", "note": "催办"}),
    ("command.respond", ("department", "fire"), {"command_id": "C1", "response": "receipt"}),
    ("link.respond", ("hub", "changjiang"), {
        "command_id": "C2", "response": "receipt", "town_command_id": "C1", "town_seq": 4,
        "town_ts_us": 1, "offset_us": 0, "rtt_us": 300, "head": json.dumps(HeadSigner(
            Ed25519PrivateKey.generate()).sign(Head(4, "ef" * 32), 1, "link").to_dict())}),
    ("report.field", ("department", "fire"), {"text": "堤防无渗漏", "command_id": "C1"}),
    ("dept.checkin", ("department", "fire"), {}),
    ("inject.release", ("commander", None), {"inject_id": "I1", "title": "t"}),
    ("observation.record", ("evaluator", None), {"criterion": "field_operations",
                                                  "rating": "P", "dept": "fire"}),
    ("checklist.tick", ("evaluator", None), {"item": "comms_check"}),
    ("operation.level", ("commander", None), {"level": "II"}),
    ("operation.pause", ("commander", None), {}),
    ("operation.resume", ("commander", None), {}),
    ("dept.excuse", ("commander", None), {"dept": "police", "reason": "车辆故障"}),
    ("command.cancel", ("commander", None), {"command_id": "C1"}),
    ("token.revoke", ("commander", None), {"jti": "0" * 32}),
    ("operation.end", ("commander", None), {"reason": "done"}),
    ("operation.start", ("commander", None), {"title": "second", "operation_id": "again"}),
]


def test_every_state_changing_type_is_covered() -> None:
    assert {t for t, _, _ in ONCE} == {m.type for m in MESSAGES.values() if m.writes}


def logged_with(path: Path, msg_id: str) -> list[Event]:
    return [e for e in read_events(path) if e.payload.get("client_msg_id") == msg_id]


async def _prepare(http: aiohttp.ClientSession, url: str, token: Callable[..., str]) -> RawSocket:
    cmdr = await RawSocket.open(http, url, token("commander"))
    assert outcome(await cmdr.request("operation.start", title="once",
                                      participants=["fire", "police", "changjiang"])) == "ok"
    assert (await cmdr.request("command.issue", targets=["fire", "police"],
                               text="x"))["command_id"] == "C1"
    assert (await cmdr.request("command.issue", targets=["changjiang"],
                               text="z"))["command_id"] == "C2"
    return cmdr


async def test_every_repeat_is_answered_and_logged_once(running_hub: RunningHub,
                                                        token: Callable[..., str]) -> None:
    path = running_hub.hub.log.path
    async with aiohttp.ClientSession() as http:
        cmdr = await _prepare(http, running_hub.url, token)
        socks = {("commander", None): cmdr}
        for mtype, (role, dept), fields in ONCE:
            sock = socks.get((role, dept))
            if sock is None:
                sock = socks[(role, dept)] = await RawSocket.open(http, running_hub.url,
                                                                  token(role, dept))
            mid = f"once-{mtype}"
            first = await sock.request(mtype, msg_id=mid, **fields)
            assert first["type"] == "ack", (mtype, first)
            head = running_hub.hub.log.head.seq
            again = await sock.request(mtype, msg_id=mid, **fields)
            assert again["type"] == "ack" and again["duplicate"] is True, (mtype, again)
            # a town hub's ack carries this hub's head as signed when answering: newer on a repeat
            strip = {"re", "duplicate", "head"}
            assert {k: v for k, v in again.items() if k not in strip} == \
                {k: v for k, v in first.items() if k not in strip}, mtype
            # nothing new logged for it (the hub's own events may follow: operation.end
            # has the log sign its head, log.head_signed)
            since = [e for e in read_events(path) if e.seq > head]
            assert all(e.role == "hub" and e.kind == "log.head_signed" for e in since), \
                (mtype, [e.kind for e in since])
            assert len(logged_with(path, mid)) == 1, mtype
            # and over POST /api/rpc, the same key gets the same answer
            status, body = await rpc(http, running_hub.url, token(role, dept),
                                     {"id": mid, "type": mtype, **fields})
            assert status == 200 and body["duplicate"] is True, (mtype, status, body)
        for sock in socks.values():
            await sock.close()


async def test_departments_numbering_from_1_lose_nothing(running_hub: RunningHub,
                                                         token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await _prepare(http, running_hub.url, token)
        c2 = (await cmdr.request("command.issue", targets=["fire"], text="y"))["command_id"]
        fire = await RawSocket.open(http, running_hub.url, token("department", "fire"))
        police = await RawSocket.open(http, running_hub.url, token("department", "police"))
        # two departments, the same id on the same command: both logged
        a = await fire.request("command.respond", msg_id="1", command_id="C1", response="receipt")
        b = await police.request("command.respond", msg_id="1", command_id="C1",
                                 response="receipt")
        assert "duplicate" not in a and "duplicate" not in b and a["seq"] != b["seq"]
        # one department, the same id on another command: a new response
        c = await fire.request("command.respond", msg_id="1", command_id=c2, response="receipt")
        assert c["type"] == "ack" and "duplicate" not in c
        # the same id for another kind of request is refused, not mistaken for a repeat
        d = await fire.request("report.field", msg_id="1", text="x")
        assert "duplicate" not in d  # a report is keyed apart from responses (per command)
        e = await fire.request("dept.checkin", msg_id="1")
        assert outcome(e) == "id_reused", e
        # a state-changing request without an id is refused; nothing is logged
        head = running_hub.hub.log.head.seq
        f = await police.request("report.field", msg_id=None, text="no id")
        assert outcome(f) == "bad_request" and "id" in f["message"]
        assert running_hub.hub.log.head.seq == head
        for s in (cmdr, fire, police):
            await s.close()
    acks = [(e.dept, e.payload["command_id"]) for e in read_events(running_hub.hub.log.path)
            if e.kind == "command.acknowledged"]
    assert sorted(acks) == sorted([("fire", "C1"), ("police", "C1"), ("fire", c2)])


async def test_the_first_answer_survives_a_restart(tmp_path: Path) -> None:
    opts = ServeOptions(data=tmp_path / "data", port=0)
    running = await start_hub(opts)
    tok = running.hub.authority.issue
    now = int(time.time())
    toks = {"commander": tok("commander", now=now), "fire": tok("department", now=now, dept="fire"),
            "evaluator": tok("evaluator", now=now)}
    async with aiohttp.ClientSession() as http:
        cmdr = await RawSocket.open(http, running.url, toks["commander"])
        start = await cmdr.request("operation.start", msg_id="op-1", title="t")
        issue = await cmdr.request("command.issue", msg_id="cmd-1", targets=["fire"], text="x")
        fire = await RawSocket.open(http, running.url, toks["fire"])
        resp = await fire.request("command.respond", msg_id="r-1", command_id=issue["command_id"],
                                  response="receipt")
        report = await fire.request("report.field", msg_id="rep-1", text="x")
        ev = await RawSocket.open(http, running.url, toks["evaluator"])
        obs = await ev.request("observation.record", msg_id="o-1",
                               criterion="command_coordination", rating="M")
        for s in (cmdr, fire, ev):
            await s.close()
    await running.stop()
    running = await start_hub(opts)  # a new process would fold the same log the same way
    try:
        async with aiohttp.ClientSession() as http:
            for who, mid, mtype, fields, first in [
                ("commander", "op-1", "operation.start", {"title": "t"}, start),
                ("commander", "cmd-1", "command.issue", {"targets": ["fire"], "text": "x"}, issue),
                ("fire", "r-1", "command.respond",
                 {"command_id": issue["command_id"], "response": "receipt"}, resp),
                ("fire", "rep-1", "report.field", {"text": "x"}, report),
                ("evaluator", "o-1", "observation.record",
                 {"criterion": "command_coordination", "rating": "M"}, obs),
            ]:
                status, body = await rpc(http, running.url, toks[who],
                                         {"id": mid, "type": mtype, **fields})
                assert status == 200 and body.pop("duplicate") is True, (mtype, body)
                assert body == {k: v for k, v in first.items() if k not in ("v", "type", "re",
                                                                            "for")}, mtype
                assert len(logged_with(running.hub.log.path, mid)) == 1, mtype
    finally:
        await running.stop()


async def test_hubclient_resend_after_a_drop_is_logged_once(running_hub: RunningHub,
                                                            token: Callable[..., str]) -> None:
    """The reconnect case of the report: 10 commands, each with the socket cut right after it
    was sent; every one is issued exactly once, whether its ack or its resend won."""
    client = HubClient(running_hub.url, token("commander"), request_timeout=20)
    await client.connect()
    duplicates = 0
    try:
        for i in range(10):
            task = asyncio.ensure_future(client.issue(["fire"], f"重发 {i}"))
            await asyncio.sleep(0)  # the frame is on its way
            await client.drop()
            ack = await task
            duplicates += bool(ack.get("duplicate"))
    finally:
        await client.close()
    issued = [e for e in read_events(running_hub.hub.log.path) if e.kind == "command.issued"]
    assert sorted(e.payload["text"] for e in issued) == sorted(f"重发 {i}" for i in range(10))
    assert client.reconnects >= 10
    assert duplicates >= 1  # the resend path was taken (usually every time)


async def test_a_lost_ack_is_recovered_by_resending(running_hub: RunningHub,
                                                    token: Callable[..., str]) -> None:
    """The request committed but its socket died before the ack: the resend on a new socket
    gets the original answer."""
    frame = json.dumps({"v": 1, "id": "lost-1", "type": "command.issue", "targets": ["fire"],
                        "text": "ack lost"})
    async with aiohttp.ClientSession() as http:
        sock = await RawSocket.open(http, running_hub.url, token("commander"))
        await sock.ws.send_str(frame)
        await sock.ws.close()  # without reading the ack
        for _ in range(200):
            if logged_with(running_hub.hub.log.path, "lost-1"):
                break
            await asyncio.sleep(0.02)
        assert len(logged_with(running_hub.hub.log.path, "lost-1")) == 1
        again = await RawSocket.open(http, running_hub.url, token("commander"))
        reply = await again.send_text(frame)
        assert reply["duplicate"] is True and reply["command_id"] == "C1"
        await again.close()
    assert len(logged_with(running_hub.hub.log.path, "lost-1")) == 1


async def test_two_runs_of_a_named_client_do_not_collide(running_hub: RunningHub,
                                                         token: Callable[..., str]) -> None:
    """A tool that names its client (`client_id="drill-runner"`) and runs twice gets two
    commands, not the first run's answer twice."""
    acks = []
    for _ in range(2):
        async with HubClient(running_hub.url, token("commander"), client_id="drill-runner") as c:
            acks.append(await c.issue(["fire"], "每次运行一条"))
    assert [a["command_id"] for a in acks] == ["C1", "C2"]
    assert not any(a.get("duplicate") for a in acks)
