"""A city hub and town hubs as separate processes on loopback: a city command reaches every
town department, every stage comes back, a 30 s city outage loses and doubles nothing, the city
marks a lost town unreachable; departments and the commander speak raw WebSocket frames, the
logs are read with the sqlite3 CLI and checked with `commandhub log verify --linked`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from pypdf import PdfReader

from hub.bench import wait_http
from hub.tiers.cluster import Tiers
from hub.tiers.linkcheck import check_linked
from tests.hub.raw import RawSocket, outcome, rpc

STAGES = ("receipt", "on_scene", "completed")


def sql(db: Path, query: str) -> list[dict[str, Any]]:
    """Rows of `query` on a (live) log, through the sqlite3 CLI."""
    out = subprocess.run(["sqlite3", "-json", f"file:{db}?mode=ro", query], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


class RawUnit:
    """A town department on a raw socket: answers each command up to `upto` (a stage index)."""

    def __init__(self, sock: RawSocket, dept: str) -> None:
        self.sock, self.dept, self.upto = sock, dept, len(STAGES)
        self.commands: dict[str, int] = {}  # command id -> stages answered
        self.errors: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for msg in self.sock.ws:
            frame = json.loads(msg.data)
            if frame.get("type") == "command":
                self.commands.setdefault(frame["command"]["command_id"], 0)
                await self.answer()
            elif frame.get("type") == "event" and frame["event"]["kind"] == "command.cancelled":
                self.commands[frame["event"]["payload"]["command_id"]] = len(STAGES)
            elif frame.get("type") == "error":
                self.errors.append(frame)

    async def answer(self) -> None:
        for cid, done in self.commands.items():
            for i in range(done, self.upto):
                await self.sock.ws.send_str(json.dumps({
                    "v": 1, "id": f"{self.dept}-{cid}-{i}", "type": "command.respond",
                    "command_id": cid, "response": STAGES[i]}))
            self.commands[cid] = max(done, self.upto)


def town_online(city_db: Path, town: str) -> bool:
    rows = sql(city_db, "SELECT kind FROM events WHERE role='hub' AND dept='" + town + "' AND "
               "kind LIKE 'presence.o%' ORDER BY seq DESC LIMIT 1")
    return bool(rows) and rows[0]["kind"] == "presence.online"


def answers(city_db: Path, cid: str) -> list[tuple[str, str]]:
    return [(r["dept"], r["kind"]) for r in sql(
        city_db, f"SELECT dept, kind FROM events WHERE role='hub' AND json_extract(payload, "
        f"'$.command_id')='{cid}' AND kind LIKE 'command.%' ORDER BY seq")]


async def test_city_command_reaches_towns_and_survives_a_30_s_city_outage(tmp_path: Path) -> None:
    tiers = Tiers.make(tmp_path, towns=2, departments=2)
    city = tiers.city
    await tiers.start(timeout=90)  # a bound only: 3 to 5 processes start on a loaded machine
    http = aiohttp.ClientSession()
    units: list[RawUnit] = []
    try:
        for t in tiers.towns:
            await until(lambda t=t: town_online(city.db, t), 15, f"{t} online at the city")
        async with http.get(city.url + "/api/state",
                            headers={"Authorization": f"Bearer {city.token('commander')}"}) as r:
            state = await r.json()
        online = {d["id"]: d["online"] for d in state["departments"]}
        assert online["town01"] and online["town02"] and not online["police"]
        for t, depts in tiers.units.items():
            for d in depts:
                sock = await RawSocket.open(http, tiers.towns[t].url,
                                            tiers.towns[t].token("department", d))
                units.append(RawUnit(sock, d))
        cmdr = await RawSocket.open(http, city.url, city.token("commander"))
        assert outcome(await cmdr.request("operation.start", title="跨层级演练")) == "ok"
        ack = await cmdr.request("command.issue", targets=["town"], text="转移群众",
                                 requires=list(STAGES))
        assert outcome(ack) == "ok" and ack["departments"] == ["town01", "town02"], ack
        c1 = ack["command_id"]
        want = sorted((t, f"command.{k}") for t in tiers.towns
                      for k in ("acknowledged", "on_scene", "completed"))
        await until(lambda: sorted(answers(city.db, c1)) == want, 15, "every stage of C1 back")

        # the town's command names the city's id and seq; the city's answer the town's
        for t, town in tiers.towns.items():
            [issued] = sql(town.db, "SELECT seq, payload FROM events WHERE kind="
                           "'command.issued'")
            p = json.loads(issued["payload"])
            assert p["link"]["command_id"] == c1 and p["link"]["seq"] == ack["seq"]
            assert sorted(p["departments"]) == tiers.units[t]
            [receipt] = sql(city.db, "SELECT payload FROM events WHERE kind='command."
                            f"acknowledged' AND dept='{t}'")
            link = json.loads(receipt["payload"])["link"]
            assert (link["command_id"], link["seq"]) == (p["command_id"], issued["seq"])

        # C2: receipts only; then the city is killed while the departments finish
        for u in units:
            u.upto = 1
        ack2 = await cmdr.request("command.issue", targets=["all"], text="开闸泄洪",
                                  requires=list(STAGES))
        c2 = ack2["command_id"]
        await until(lambda: sorted(answers(city.db, c2)) == [
            ("town01", "command.acknowledged"), ("town02", "command.acknowledged")], 15,
            "C2 receipts at the city")
        # C3 to town01, cancelled at the city once the town has it: the town cancels its own
        ack3 = await cmdr.request("command.issue", targets=["town01"], text="撤回",
                                  requires=list(STAGES))
        c3 = ack3["command_id"]
        await until(lambda: answers(city.db, c3) == [("town01", "command.acknowledged")], 15,
                    "C3's receipt at the city")
        assert outcome(await cmdr.request("command.cancel", command_id=c3, reason="误发")) == "ok"
        town01 = tiers.towns["town01"]
        [cancelled] = await until(lambda: sql(town01.db, "SELECT payload FROM events WHERE "
                                              "kind='command.cancelled'"), 10,
                                  "town01 cancels its C3")
        assert json.loads(cancelled["payload"])["link"]["command_id"] == c3
        town_c3 = json.loads(cancelled["payload"])["command_id"]
        town01_units = [u for u in units if u.dept.startswith("town01")]
        await until(lambda: all(u.commands.get(town_c3) == len(STAGES) for u in town01_units),
                    10,
                    "town01's departments saw the cancel")
        await cmdr.close()
        # the city is down for 30 s (the issue's outage); the towns' departments go on answering
        city.stop(kill=True)
        cut = time.monotonic()
        for stage, kind, n in ((2, "on_scene", 4), (3, "completed", 4)):  # C1's 2 + C2's 2
            for u in units:
                u.upto = stage
                await u.answer()
            for t, town in tiers.towns.items():
                await until(lambda town=town, kind=kind, n=n: len(sql(
                    town.db, f"SELECT seq FROM events WHERE kind='command.{kind}'")) == n, 10,
                    f"{t}'s departments: C2 {kind} while the city is down")
            if stage == 2:
                await asyncio.sleep(max(0.0, cut + 15 - time.monotonic()))
        await asyncio.sleep(max(0.0, cut + 30 - time.monotonic()))  # the outage's length
        city.start()  # same data, same port
        await wait_http(city.url, 90)
        await until(lambda: sorted(answers(city.db, c2)) == want, 20,
                    "C2's on_scene and completed at the city after its restart")
    finally:
        for u in units:
            u.task.cancel()
        await http.close()
        tiers.stop()
    assert not [e for u in units for e in u.errors], [e for u in units for e in u.errors]
    # nothing doubled: one answer per town, stage and command; one town command per city one
    assert sorted(answers(city.db, c1)) == want and sorted(answers(city.db, c2)) == want
    for t, town in tiers.towns.items():
        linked = sql(town.db, "SELECT json_extract(payload, '$.link.command_id') AS c FROM events "
                     "WHERE kind='command.issued'")
        assert sorted(r["c"] for r in linked) == sorted([c1, c2, *([c3] if t == "town01" else [])])
    towns = [str(t.db) for t in tiers.towns.values()]
    out, pdf = tmp_path / "score.json", tmp_path / "scorecard.pdf"
    # the two CLIs at once (each is seconds of imports on a loaded machine)
    verifying = subprocess.Popen(
        [sys.executable, "-m", "hub", "log", "verify", str(city.db), "--linked", *towns],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scoring = subprocess.Popen(
        [sys.executable, "-m", "hub", "score", "--log", str(city.db), "--quiet", "--json",
         str(out), "--out", str(pdf), "--lang", "en", "--rubric",
         "scoring/rubrics/joint-live-drill.yaml", "--linked", *towns],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2])
    verify_out, verify_err = verifying.communicate(timeout=120)
    assert verifying.returncode == 0, verify_out + verify_err
    assert "linked towns: town01=" in verify_out and "5 linked command(s), 13 answer(s)" \
        in verify_out, verify_out
    # a town log whose linked command was altered: the cross-reference names it
    forged = tmp_path / "forged.db"
    subprocess.run(["sqlite3", str(tiers.towns["town01"].db), f"VACUUM INTO '{forged}'"],
                   check=True)
    subprocess.run(["sqlite3", str(forged), "DROP TRIGGER IF EXISTS events_no_update; "
                    "UPDATE events SET payload=replace(payload, '转移群众', '原地待命') WHERE "
                    "kind='command.issued'"], check=True)
    report = check_linked(city.db, [forged])
    assert [p for p in report.problems if "differs from city seq" in p and "text" in p], \
        report.problems
    # the cross-tier scorecard: per-tier latencies from the city log and the towns' logs
    score_out, score_err = scoring.communicate(timeout=120)
    assert scoring.returncode == 0, score_out + score_err
    t = json.loads(out.read_text(encoding="utf-8"))["tiers"]
    assert t["commands"] == 3 and t["down"]["n"] == 5  # two commands to two towns, C3 to one
    assert {s: v["n"] for s, v in t["town"].items()} == {"receipt": 10, "on_scene": 8,
                                                         "completed": 8}  # 4 depts x 2, +2
    assert {s: v["n"] for s, v in t["end_to_end"].items()} == {"receipt": 5, "on_scene": 4,
                                                               "completed": 4}
    assert t["end_to_end"]["completed"]["max_ms"] > t["end_to_end"]["receipt"]["p50_ms"] > 0
    assert "city -> town hub:" in score_out
    # the same figures on the PDF scorecard, read back with pypdf
    text = " ".join(p.extract_text() or "" for p in PdfReader(pdf).pages).replace("\n", " ")
    assert "Latency per tier (city -> town hub -> department)" in text, text[:2000]
    for label, figures in (("city -> town hub (down) —", t["down"]),
                           ("town hub -> department on scene", t["town"]["on_scene"]),
                           ("town -> city (up) completed", t["up"]["completed"]),
                           ("city -> town -> city (end to end) receipt",
                            t["end_to_end"]["receipt"])):
        row = f"{label} {figures['n']} {figures['p50_ms']:g} {figures['p90_ms']:g} " \
              f"{figures['max_ms']:g}"
        assert row in text, (row, text[text.find("Latency per tier"):][:1500])


async def test_a_frozen_town_is_unreachable_within_6_s_and_learns_the_cancels_it_missed(
        tmp_path: Path) -> None:
    """Frozen (SIGSTOP) as a cut cable leaves it, town01 is offline at the city within 6 s; C1,
    cancelled at the city meanwhile, is cancelled at the town once it is back (the city
    replays the cancel); C2, cancelled by the town's own commander, goes up as declined."""
    tiers = Tiers.make(tmp_path, towns=1, departments=2)
    await tiers.start(timeout=90)  # a bound only: 3 to 5 processes start on a loaded machine
    city, town = tiers.city, tiers.towns["town01"]
    cmdr, town_cmdr = city.token("commander"), town.token("commander")
    try:
        async with aiohttp.ClientSession() as http:
            await until(lambda: town_online(city.db, "town01"), 15, "town01 online")
            c1, c2 = [(await rpc(http, city.url, cmdr, {
                "type": "command.issue", "id": f"i{i}", "targets": ["town01"], "text": text,
                "requires": list(STAGES)}))[1]["command_id"] for i, text in ((1, "封路"),
                                                                           (2, "转移"))]
            for c in (c1, c2):
                await until(lambda c=c: answers(city.db, c) == [
                    ("town01", "command.acknowledged")], 15, f"{c}'s receipt at the city")
            # a command to one department of the town (TOWN:ID), and its per-department state
            status, c3 = await rpc(http, city.url, cmdr, {
                "type": "command.issue", "id": "i3", "targets": ["town01:town01-u2"],
                "text": "单点", "requires": ["receipt", "completed"]})
            assert status == 200 and c3["departments"] == ["town01"], c3
            c3 = c3["command_id"]
            [own_c3] = await until(lambda: sql(town.db, "SELECT payload FROM events WHERE "
                                               f"json_extract(payload, '$.link.command_id')="
                                               f"'{c3}'"), 10, "town01 links C3")
            assert json.loads(own_c3["payload"])["departments"] == ["town01-u2"]
            status, st = await rpc(http, city.url, cmdr, {"type": "link.status",
                                                          "command_id": c3, "town": "town01"})
            assert status == 200 and st["departments"].keys() == {"town01-u2"}, st
            assert st["departments"]["town01-u2"]["state"] == "issued"
            assert st["town_command_id"] == json.loads(own_c3["payload"])["command_id"]
            status, err = await rpc(http, city.url, cmdr, {"type": "command.issue", "id": "i4",
                                                           "targets": ["police:x"], "text": "x"})
            assert status == 404 and err["error"]["code"] == "unknown_target", err
            # a department the town does not have: the town declines it up, saying why
            c4 = (await rpc(http, city.url, cmdr, {"type": "command.issue", "id": "i5",
                                                   "targets": ["town01:atlantis"],
                                                   "text": "无此单位"}))[1]["command_id"]
            await until(lambda: answers(city.db, c4) == [("town01", "command.declined")], 15,
                        "C4 declined by town01")
            assert town.proc is not None
            os.kill(town.proc.pid, signal.SIGSTOP)  # the link goes silent, as a cut cable would
            cut = time.monotonic()
            await until(lambda: not town_online(city.db, "town01"), 8, "town01 offline")
            assert time.monotonic() - cut < 6.0
            status, err = await rpc(http, city.url, cmdr, {"type": "link.status",
                                                           "command_id": c1, "town": "town01"})
            assert status == 503 and err["error"]["code"] == "unreachable", err
            status, cancel = await rpc(http, city.url, cmdr, {
                "type": "command.cancel", "id": "x1", "command_id": c1, "reason": "误发"})
            assert status == 200 and cancel["departments"] == ["town01"], cancel
            os.kill(town.proc.pid, signal.SIGCONT)
            await until(lambda: town_online(city.db, "town01"), 15, "town01 back online")
            [cancelled] = await until(lambda: sql(town.db, "SELECT payload FROM events WHERE "
                                                  "kind='command.cancelled'"), 10,
                                      "town01 cancels its C1 on reconnect")
            p = json.loads(cancelled["payload"])
            assert p["link"] == {"command_id": c1, "seq": cancel["seq"]}
            assert sorted(p["departments"]) == tiers.units["town01"] and "误发" in p["reason"]
            [own_c2] = sql(town.db, "SELECT json_extract(payload, '$.command_id') AS c FROM "
                           f"events WHERE json_extract(payload, '$.link.command_id')='{c2}'")
            status, _ = await rpc(http, town.url, town_cmdr, {
                "type": "command.cancel", "id": "t1", "command_id": own_c2["c"],
                "reason": "本镇撤回"})
            assert status == 200
            await until(lambda: answers(city.db, c2)[-1:] == [("town01", "command.declined")],
                        15, "C2 declined at the city")
    finally:
        if town.proc is not None:
            os.kill(town.proc.pid, signal.SIGCONT)
        tiers.stop()
    offs = sql(city.db, "SELECT payload FROM events WHERE kind='presence.offline' AND "
               "dept='town01' ORDER BY seq")
    assert json.loads(offs[0]["payload"])["reason"] == "heartbeat"  # the freeze, then the stop
    assert answers(city.db, c1) == [("town01", "command.acknowledged")]  # nothing after the cancel
    assert answers(city.db, c2) == [("town01", "command.acknowledged"),
                                    ("town01", "command.declined")]
    declined = [json.loads(r["payload"]) for r in sql(
        city.db, "SELECT payload FROM events WHERE kind='command.declined' ORDER BY seq")]
    assert [d["command_id"] for d in declined] == [c4, c2]
    assert "unknown_target" in declined[0]["reason"] and "atlantis" in declined[0]["reason"]
    assert declined[1]["reason"].count("cancelled (本镇撤回)") == 2, declined[1]
    assert len(sql(town.db, "SELECT seq FROM events WHERE kind='command.cancelled'")) == 2
    assert not sql(town.db, "SELECT seq FROM events WHERE kind='link.refused'")
    report = check_linked(city.db, [town.db])
    assert report.ok and report.checked["answers"] == 5, report
