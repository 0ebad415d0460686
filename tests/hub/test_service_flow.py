"""Commands and responses end to end over the real WebSocket and a real SQLite log."""

from __future__ import annotations

import asyncio

import pytest

from hub.client import HubClientError
from hub.logformat import read_events, verify_file
from hub.runtime import RunningHub
from tests.conftest import Connect


async def next_command(client, timeout: float = 5.0) -> dict:  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(client.commands.get(), timeout)


async def test_command_receipt_round_trip(running_hub: RunningHub, connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    police = await connect("department", "police")
    await cmd.request("operation.start", title="flood drill", kind="drill", level="II")
    ack = await cmd.issue(["fire", "police"], "到达现场核查", requires=["receipt", "on_scene"])
    cid = ack["command_id"]
    assert ack["departments"] == ["fire", "police"]
    for dept in (fire, police):
        frame = await next_command(dept)
        assert frame["command"]["command_id"] == cid
        assert frame["command"]["deadlines"] == {"receipt": 60.0, "on_scene": 900.0}  # level II
    r = await fire.respond(cid, "receipt")
    assert r["state"] == "acknowledged" and r["latency_s"] >= 0
    await fire.respond(cid, "on_scene")
    with pytest.raises(HubClientError) as bad:
        await police.respond(cid, "on_scene")  # receipt must come first
    assert bad.value.code == "invalid_transition"
    await police.respond(cid, "declined", reason="车辆故障")
    state = await cmd.rest("GET", "/api/state")
    assert state["commands"] == [c for c in state["commands"] if c["command_id"] != cid]  # closed
    events = read_events(running_hub.hub.log.path)
    kinds = [e.kind for e in events if e.payload.get("command_id") == cid]
    assert kinds == ["command.issued", "command.acknowledged", "command.on_scene",
                     "command.declined"]
    declined = next(e for e in events if e.kind == "command.declined")
    assert declined.payload["reason"] == "车辆故障" and declined.dept == "police"
    assert all(e.op.startswith("drill-") and e.op_kind == "drill" for e in events
               if e.kind.startswith("command."))
    verify_file(running_hub.hub.log.path)


async def test_repeated_client_message_is_logged_once(running_hub: RunningHub,
                                                      connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    cid = (await cmd.issue("fire", "集结待命"))["command_id"]
    first = await fire.request("command.respond", msg_id="m-1", command_id=cid, response="receipt")
    again = await fire.request("command.respond", msg_id="m-1", command_id=cid, response="receipt")
    assert again["duplicate"] is True and again["seq"] == first["seq"]
    acks = [e for e in read_events(running_hub.hub.log.path) if e.kind == "command.acknowledged"]
    assert len(acks) == 1


async def test_department_may_respond_only_as_itself(connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    cid = (await cmd.issue("police", "test"))["command_id"]
    with pytest.raises(HubClientError) as exc:
        await fire.respond(cid, "receipt")
    assert exc.value.code == "not_targeted"
    with pytest.raises(HubClientError) as exc2:
        await fire.request("command.respond", command_id=cid, response="receipt", dept="police")
    assert exc2.value.code == "forbidden"


async def test_reconnect_replays_pending_commands(running_hub: RunningHub, connect: Connect,
                                                  token) -> None:  # type: ignore[no-untyped-def]
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    await fire.close()  # the department goes away
    cid = (await cmd.issue("fire", "离线期间下达的指令"))["command_id"]
    done = (await cmd.issue("fire", "已完成的指令"))["command_id"]
    fire2 = await connect("department", "fire")
    frames = [await next_command(fire2), await next_command(fire2)]
    assert {f["command"]["command_id"] for f in frames} == {cid, done}
    assert all(f["cause"] == "replay" for f in frames)
    await fire2.respond(done, "receipt")  # requires only receipt: now closed
    fire3 = await connect("department", "fire")
    frame = await next_command(fire3)
    assert frame["command"]["command_id"] == cid
    await asyncio.sleep(0.2)
    assert fire3.commands.empty()  # the closed one is not replayed
    kinds = [e.kind for e in read_events(running_hub.hub.log.path)
             if e.kind.startswith("presence.") and e.dept == "fire"]
    assert kinds[:2] == ["presence.online", "presence.offline"]


async def test_a_command_issued_while_a_department_joins_reaches_it_once(
        running_hub: RunningHub, connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its welcome is out, its presence.online still committing, when a command is issued:
    it gets the command live, and not a second time as a replay."""
    hub = running_hub.hub
    cmd = await connect("commander")
    gate, joining = asyncio.Event(), asyncio.Event()
    emit = hub.emit

    async def held_online(kind, payload, *args):  # type: ignore[no-untyped-def]
        if kind == "presence.online" and not gate.is_set():
            joining.set()
            await gate.wait()
        return await emit(kind, payload, *args)

    monkeypatch.setattr(hub, "emit", held_online)
    fire_joins = asyncio.create_task(connect("department", "fire"))
    await asyncio.wait_for(joining.wait(), 10)
    cid = (await cmd.issue("fire", "速报"))["command_id"]
    gate.set()
    fire = await fire_joins
    frame = await next_command(fire)
    assert (frame["cause"], frame["command"]["command_id"]) == ("issued", cid)
    await asyncio.sleep(0.5)
    extra = [fire.commands.get_nowait() for _ in range(fire.commands.qsize())]
    assert extra == []


async def test_overdue_marks_and_resends(running_hub: RunningHub, connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    cid = (await cmd.issue("fire", "速报", deadlines={"receipt": 0.3}))["command_id"]
    first = await next_command(fire)
    assert first["cause"] == "issued"
    again = await next_command(fire, timeout=5)
    assert again["cause"] == "overdue" and again["command"]["command_id"] == cid
    late = await fire.respond(cid, "receipt")
    assert late["latency_s"] >= 0.3
    events = read_events(running_hub.hub.log.path)
    overdue = [e for e in events if e.kind == "command.overdue"]
    assert [(e.payload["dept"], e.payload["stage"]) for e in overdue] == [("fire", "receipt")]
    assert any(e.kind == "command.resent" and e.payload["cause"] == "overdue" for e in events)


async def test_escalate_and_cancel(running_hub: RunningHub, connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    cid = (await cmd.issue(["fire", "police"], "报告水位"))["command_id"]
    await next_command(fire)
    esc = await cmd.request("command.escalate", command_id=cid, note="催办")
    assert esc["departments"] == ["fire", "police"]
    assert (await next_command(fire))["cause"] == "escalated"
    await fire.respond(cid, "receipt")
    c = await cmd.request("command.cancel", command_id=cid, reason="演练调整")
    assert c["departments"] == ["police"]
    with pytest.raises(HubClientError) as exc:
        await cmd.request("command.cancel", command_id=cid)
    assert exc.value.code == "invalid_transition"


async def test_checkin_level_and_field_report(running_hub: RunningHub, connect: Connect) -> None:
    cmd = await connect("commander")
    water = await connect("department", "water")
    with pytest.raises(HubClientError) as exc:
        await water.checkin()
    assert exc.value.code == "no_operation"
    await cmd.request("operation.start", title="防汛演练", kind="drill", level="IV")
    first = await water.checkin()
    again = await water.checkin()
    assert again["duplicate"] is True and again["checked_in_us"] == first["checked_in_us"]
    await cmd.request("operation.level", level="II", reason="雨情加剧")
    cid = (await cmd.issue("flood", "巡查堤防"))["command_id"]
    rep = await water.request("report.field", command_id=cid, text="堤防无渗漏")
    assert rep["report_id"].startswith("R")
    events = read_events(running_hub.hub.log.path)
    issued = next(e for e in events if e.kind == "command.issued")
    assert issued.payload["level"] == "II"  # takes the operation's current level
    assert "water" in issued.payload["departments"]
    level = next(e for e in events if e.kind == "operation.level_changed")
    assert (level.payload["from"], level.payload["to"]) == ("IV", "II")
    await cmd.request("operation.end")
    with pytest.raises(HubClientError):
        await cmd.request("operation.end")


async def test_commander_watches_live_events(connect: Connect) -> None:
    cmd = await connect("commander")
    ev = await connect("evaluator")
    sub = await ev.subscribe(after=0)
    assert sub["head"] >= 1
    while not ev.events.empty():
        ev.events.get_nowait()
    cid = (await cmd.issue("all", "全体注意"))["command_id"]
    got = await asyncio.wait_for(ev.events.get(), 5)
    while got["kind"].startswith("presence."):  # clock reports of the two clients may interleave
        got = await asyncio.wait_for(ev.events.get(), 5)
    assert got["kind"] == "command.issued" and got["payload"]["command_id"] == cid
    assert len(got["payload"]["departments"]) == 16
    obs = await ev.request("observation.record", criterion="command_coordination", rating="S",
                           note="响应迅速")
    assert obs["seq"] > got["seq"]


async def test_network_failure_and_clean_close_are_told_apart(running_hub: RunningHub,
                                                              connect: Connect) -> None:
    fire = await connect("department", "fire")
    police = await connect("department", "police")
    await fire.abort()  # the connection dies without a closing handshake
    await police.close()
    await asyncio.sleep(0.3)
    off = {e.dept: e.payload["reason"] for e in read_events(running_hub.hub.log.path)
           if e.kind == "presence.offline"}
    assert off == {"fire": "error", "police": "closed"}


async def test_pause_stops_deadlines(running_hub: RunningHub, connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    await cmd.request("operation.start", title="t", kind="drill")
    cid = (await cmd.issue("fire", "x", deadlines={"receipt": 0.5}))["command_id"]
    await cmd.request("operation.pause")
    await asyncio.sleep(1.0)  # twice the deadline, paused
    assert not [e for e in read_events(running_hub.hub.log.path) if e.kind == "command.overdue"]
    await cmd.request("operation.resume")
    while True:  # the deadline passes 0.5 s of running time after issue, pause excluded
        frame = await next_command(fire, timeout=5)
        if frame["cause"] == "overdue":
            break
    events = read_events(running_hub.hub.log.path)
    issued = next(e for e in events if e.kind == "command.issued")
    paused = next(e for e in events if e.kind == "operation.paused")
    resumed = next(e for e in events if e.kind == "operation.resumed")
    overdue = next(e for e in events if e.kind == "command.overdue")
    pause_us = resumed.ts_us - paused.ts_us
    assert overdue.payload["deadline_us"] == issued.ts_us + 500_000 + pause_us
    assert overdue.payload["command_id"] == cid


async def test_field_report_sent_again_is_logged_once(running_hub: RunningHub,
                                                     connect: Connect) -> None:
    cmd = await connect("commander")
    fire = await connect("department", "fire")
    cid = (await cmd.issue("fire", "报告现场"))["command_id"]
    first = await fire.request("report.field", msg_id="fire-r1", command_id=cid, text="火势可控")
    again = await fire.request("report.field", msg_id="fire-r1", command_id=cid, text="火势可控")
    assert again["duplicate"] is True
    assert (again["report_id"], again["seq"]) == (first["report_id"], first["seq"])
    reports = [e for e in read_events(running_hub.hub.log.path) if e.kind == "report.field"]
    assert len(reports) == 1
    assert running_hub.hub._locks == {}  # per-request locks do not pile up
