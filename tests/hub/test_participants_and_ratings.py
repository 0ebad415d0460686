"""Issue 13's hub side: who takes part (participants, dept.excuse), ratings that carry their
evaluator's name and fit their criterion's scope (bad_scope), and the rubric in use (--rubric)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import jwt

from hub.logformat import read_events
from hub.runtime import RunningHub, ServeOptions, start_hub
from scoring.rubric import bundled
from tests.hub.raw import RawSocket, outcome


async def test_participants_and_excusing_a_department(running_hub: RunningHub,
                                                      token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
        bad = await cmdr.request("operation.start", title="t", participants=["fire", "mars"])
        assert (outcome(bad), "mars" in bad["message"]) == ("unknown_target", True)
        # ids and groups, resolved and sorted
        assert outcome(await cmdr.request("operation.start", title="两部门演练",
                                          participants="police,fire")) == "ok"
        cases = [({"dept": "mars", "reason": "x"}, "unknown_target"),
                 ({"dept": "water", "reason": "x"}, "not_participant"),
                 ({"dept": "fire"}, "bad_request"),
                 ({"dept": "fire", "reason": "  "}, "bad_request"),
                 ({"dept": "fire", "reason": "车辆故障"}, "ok"),
                 ({"dept": "fire", "reason": "again"}, "invalid_transition")]
        for fields, want in cases:
            assert outcome(await cmdr.request("dept.excuse", **fields)) == want, fields
        fire = await RawSocket.open(http, running_hub.url, token("department", "fire"))
        assert outcome(await fire.request("dept.excuse", dept="police", reason="x")) == "forbidden"
        assert fire.welcome["state"]["operation"]["excused"] == {"fire": "车辆故障"}
        assert fire.welcome["state"]["operation"]["participants"] == ["fire", "police"]
        # commands reach only who takes part: `all` and groups are narrowed, a named
        # non-participant or excused department is refused, and so is its check-in
        everyone = await cmdr.request("command.issue", targets=["all"], text="全体集结")
        assert (outcome(everyone), everyone.get("departments")) == ("ok", ["police"])
        for targets, hint in ((["water"], "does not take part"), (["fire"], "车辆故障"),
                              (["fire", "water"], "车辆故障")):
            reply = await cmdr.request("command.issue", targets=targets, text="x")
            assert (outcome(reply), hint in reply.get("message", "")) == ("not_participant", True)
        assert outcome(await fire.request("dept.checkin", client_ts_us=1)) == "not_participant"
        police = await RawSocket.open(http, running_hub.url, token("department", "police"))
        assert outcome(await police.request("dept.checkin", client_ts_us=1)) == "ok"
        await police.close()
        assert outcome(await cmdr.request("operation.end")) == "ok"
        assert outcome(await cmdr.request("dept.excuse", dept="fire", reason="x")) == "no_operation"
        # by default every department takes part
        assert outcome(await cmdr.request("operation.start", title="全体")) == "ok"
        for s in (cmdr, fire):
            await s.close()
    events = read_events(running_hub.hub.log.path)
    started = [e for e in events if e.kind == "operation.started"]
    assert started[0].payload["participants"] == ["fire", "police"]
    assert len(started[0].payload["roster"]) == 16  # the roster is kept whole
    assert started[1].payload["participants"] == sorted(running_hub.hub.roster.ids)
    excused = [e for e in events if e.kind == "dept.excused"]
    assert [(e.role, e.dept, e.payload["dept"], e.payload["reason"]) for e in excused] == \
        [("commander", "center", "fire", "车辆故障")]
    assert excused[0].op == started[0].op


async def test_ratings_fit_their_criterion(running_hub: RunningHub,
                                           token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        ev = await RawSocket.open(http, running_hub.url, token("evaluator"))
        cases = [({"criterion": "command_coordination", "rating": "P", "dept": "fire"}, "bad_scope"),
                 ({"criterion": "field_operations", "rating": "P"}, "bad_scope"),
                 ({"criterion": "no_such_criterion", "rating": "P"}, "bad_scope"),
                 ({"criterion": "overdue_stages", "rating": "P"}, "bad_scope"),  # not observed
                 ({"criterion": "field_operations", "rating": "P", "dept": "mars"},
                  "unknown_target"),
                 ({"criterion": "command_coordination", "rating": "X"}, "bad_request"),
                 ({"criterion": "command_coordination", "rating": "S", "dept": None}, "ok"),
                 ({"criterion": "field_operations", "rating": "U", "dept": "fire"}, "ok")]
        for fields, want in cases:
            reply = await ev.request("observation.record", **fields)
            assert outcome(reply) == want, (fields, reply)
            if want == "bad_scope":
                assert fields["criterion"] in reply["message"]
        assert outcome(await ev.request("checklist.tick", item="nope")) == "bad_scope"
        assert outcome(await ev.request("checklist.tick", item="debrief")) == "ok"
        await ev.close()
    obs = [e for e in read_events(running_hub.hub.log.path) if e.kind == "observation.recorded"]
    assert [(e.payload["criterion"], e.payload["dept"]) for e in obs] == \
        [("command_coordination", None), ("field_operations", "fire")]


async def test_evaluator_names_from_the_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "token", "issue", "--data", str(data), "--role",
        "evaluator", "--name", "张三", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    named = out.decode().strip()
    claims = jwt.decode(named, options={"verify_signature": False})
    assert proc.returncode == 0 and claims["name"] == "张三"
    too_long = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "token", "issue", "--data", str(data), "--role",
        "evaluator", "--name", "x" * 65, stderr=asyncio.subprocess.PIPE)
    _, err = await too_long.communicate()
    assert too_long.returncode == 2 and b"name" in err
    running = await start_hub(ServeOptions(data=data, port=0))
    try:
        anonymous = running.hub.authority.issue("evaluator", now=int(time.time()))
        async with aiohttp.ClientSession() as http:
            for tok in (named, anonymous):
                ev = await RawSocket.open(http, running.url, tok)
                assert outcome(await ev.request("observation.record",
                                                criterion="command_coordination",
                                                rating="M")) == "ok"
                await ev.close()
        obs = [e.payload for e in read_events(running.hub.log.path)
               if e.kind == "observation.recorded"]
        named_jti = claims["jti"][:8]
        anon_jti = jwt.decode(anonymous, options={"verify_signature": False})["jti"][:8]
        assert [(p["evaluator"], p["evaluator_id"]) for p in obs] == \
            [("张三", named_jti), (anon_jti, anon_jti)]
    finally:
        await running.stop()


async def test_the_hub_rates_against_the_rubric_it_is_given(tmp_path: Path) -> None:
    text = bundled().read_text(encoding="utf-8")
    custom = tmp_path / "rubric.yaml"
    custom.write_text(text.replace("id: command_coordination", "id: leadership"), encoding="utf-8")
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0, rubric=str(custom)))
    try:
        tok = running.hub.authority.issue("evaluator", now=int(time.time()))
        async with aiohttp.ClientSession() as http:
            ev = await RawSocket.open(http, running.url, tok)
            assert outcome(await ev.request("observation.record", criterion="leadership",
                                            rating="P")) == "ok"
            assert outcome(await ev.request("observation.record", criterion="command_coordination",
                                            rating="P")) == "bad_scope"
            await ev.close()
            async with http.get(running.url + "/api/rubric",
                                headers={"Authorization": f"Bearer {tok}"}) as r:
                ids = {c["id"] for c in (await r.json())["observations"]}
        assert "leadership" in ids and "command_coordination" not in ids
    finally:
        await running.stop()
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "serve", "--data", str(tmp_path / "d2"), "--port", "0",
        "--rubric", str(broken), stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and b"--rubric" in err and b"broken.yaml" in err
