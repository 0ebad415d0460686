"""Drill bar, overdue and 催办, the evaluator's observations and scorecard PDF, language switch."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from hub.logformat import read_events
from hub.runtime import RunningHub

from .conftest import Pages, eventually, issue

pytestmark = pytest.mark.asyncio(loop_scope="module")


def kinds(hub: RunningHub) -> list[str]:
    return [e.kind for e in read_events(hub.hub.data_dir / "events.db")]


async def test_drill_overdue_escalation_and_scorecard(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander")
    commander.on("dialog", lambda d: d.accept())
    fire = await pages.open("department", "department", "fire")
    evaluator = await pages.open("evaluator", "evaluator")
    await commander.locator("#conn[data-state=online]").wait_for()

    # drill bar: start at level IV, raise to II
    await commander.fill("#op-title", "防汛联合演练")
    await commander.click("#op-start")
    await commander.locator("#op-stop").wait_for()
    await commander.select_option("#op-level", "II")
    await eventually(lambda: "operation.level_changed" in kinds(hub), 5, "level change logged")
    assert "防汛联合演练" in await commander.inner_text("#op-label")
    await fire.locator("#checkin").click()
    await eventually(lambda: "dept.checked_in" in kinds(hub), 5, "check-in logged")

    # a command with a 2 s receipt deadline that fire lets pass
    await commander.click('.dept-chip[data-dept="fire"]')
    await commander.fill("#deadline-receipt", "2")
    await commander.fill("#cmd-text", "立即核查堤防管涌点")
    await commander.press("#cmd-text", "Enter")
    card = fire.locator('.card[data-cmd="C1"]')
    await card.wait_for(timeout=5000)
    cell = commander.locator('.board-row[data-cmd="C1"] .cell[data-dept="fire"]')
    await cell.locator(".escalate").wait_for(timeout=6000)
    assert "overdue" in ((await cell.get_attribute("class")) or "")
    await eventually(lambda: "command.overdue" in kinds(hub), 5, "overdue logged")
    await pages.shot(commander, "overdue")
    await cell.locator(".escalate").click()
    await card.locator(".esc-badge").wait_for(timeout=5000)
    assert "overdue" in ((await card.get_attribute("class")) or "")
    await pages.shot(fire, "escalated")
    await card.locator('button[data-response="receipt"]').click()
    await eventually(lambda: "command.acknowledged" in kinds(hub), 5, "late receipt logged")

    # the evaluator sees the same board (read-only) and records an observation and a tick
    ev_cell = evaluator.locator('.board-row[data-cmd="C1"] .cell[data-dept="fire"]')
    await eventually(lambda: _class_has(ev_cell, "st-acknowledged"), 5, "evaluator board")
    assert await evaluator.locator(".escalate").count() == 0
    await evaluator.locator('#obs-criterion option[value="command_coordination"]').wait_for(state="attached")
    await evaluator.select_option("#obs-criterion", "command_coordination")
    await evaluator.check('#obs-rating input[value="S"]')
    await evaluator.fill("#obs-note", "指令下达清楚，催办及时")
    await evaluator.click("#obs-record")
    await evaluator.locator(".obs-item").wait_for(timeout=5000)
    await evaluator.check('#checklist input[data-item="comms_check"]')
    await eventually(lambda: "checklist.ticked" in kinds(hub), 5, "tick logged")
    for kind in ("command.escalated", "observation.recorded"):
        await evaluator.locator(f'.journal-list .jrow[data-kind="{kind}"]').first.wait_for(timeout=5000)

    # stop the drill; the evaluator produces the scorecard PDF
    await commander.click("#op-stop")
    await eventually(lambda: "operation.ended" in kinds(hub), 5, "drill ended")
    await evaluator.click("#pdf")
    pdf = await eventually(lambda: evaluator.evaluate("() => window.chLastPdf || null"), 60,
                           "scorecard produced")
    status = await evaluator.inner_text("#pdf-status")
    await pages.shot(evaluator, "evaluator")
    assert pdf["size"] > 10_000, status
    assert pdf["name"].startswith("scorecard-drill-"), pdf

    events = read_events(hub.hub.data_dir / "events.db")
    obs = next(e for e in events if e.kind == "observation.recorded")
    assert obs.payload["criterion"] == "command_coordination" and obs.payload["rating"] == "S"
    esc = next(e for e in events if e.kind == "command.escalated")
    assert esc.payload["departments"] == ["fire"]
    assert any(e.kind == "command.resent" and e.payload["cause"] == "escalated" for e in events)


async def _class_has(loc: Any, cls: str) -> bool:
    return cls in ((await loc.get_attribute("class")) or "").split()


async def test_scorecard_route_returns_a_pdf_or_a_clear_error(hub: RunningHub) -> None:
    evaluator, department = issue(hub, "evaluator"), issue(hub, "department", "fire")
    async with aiohttp.ClientSession() as http:
        # nothing to score yet
        r = await http.post(f"{hub.url}/api/report", headers={"Authorization": f"Bearer {evaluator}"})
        assert r.status == 409 and (await r.json())["error"]["code"] == "no_operation"
        r = await http.post(f"{hub.url}/api/report", headers={"Authorization": f"Bearer {department}"})
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        # snapshots: department only, JPEG only, 1 MiB at most
        r = await http.post(f"{hub.url}/api/snapshots", data=b"\xff\xd8\xff" + b"0" * 10,
                            headers={"Authorization": f"Bearer {evaluator}", "Content-Type": "image/jpeg"})
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        r = await http.post(f"{hub.url}/api/snapshots", data=b"GIF89a",
                            headers={"Authorization": f"Bearer {department}", "Content-Type": "image/jpeg"})
        assert r.status == 400
        too_big = io.BytesIO(b"\xff\xd8\xff" + b"0" * (1024 * 1024))
        r = await http.post(f"{hub.url}/api/snapshots", data=too_big,
                            headers={"Authorization": f"Bearer {department}", "Content-Type": "image/jpeg"})
        assert r.status == 413
        r = await http.get(f"{hub.url}/api/rubric?token={evaluator}")
        body = await r.json()
        assert {c["id"] for c in body["observations"]} >= {"command_coordination", "field_operations"}


async def test_language_switch_and_cjk_font(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open("commander", "commander", width=1280, height=800)
    await page.locator("#conn[data-state=online]").wait_for()
    assert await page.inner_text('.tile[data-dept="fire"] .tile-name') == "消防救援大队"
    # the CJK face comes from the hub (works where the machine has no CJK font)
    loaded = await page.evaluate("""async () => {
        const faces = await document.fonts.load('16px CJK', '应急管理局');
        return faces.map(f => [f.family, f.status]);
    }""")
    assert ["CJK", "loaded"] in loaded or ['"CJK"', "loaded"] in loaded, loaded
    await page.click("#lang")
    assert await page.inner_text('.tile[data-dept="fire"] .tile-name') == "Fire and Rescue"
    assert await page.inner_text(".wall-pane h2") == "Video wall"
    await page.reload()
    await page.locator("#conn[data-state=online]").wait_for()
    assert await page.inner_text('.tile[data-dept="fire"] .tile-name') == "Fire and Rescue"
    await pages.shot(page, "english")
    await page.click("#lang")
    assert await page.inner_text(".wall-pane h2") == "视频墙"


async def test_scenario_injects_are_prompted(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander")
    await commander.locator('#op-scenario option[value="extreme-weather"]').wait_for(state="attached")
    await commander.select_option("#op-scenario", "extreme-weather")
    await commander.click("#op-start")
    banner = commander.locator("#inject-banner.due")
    await banner.wait_for(timeout=5000)
    assert "E1" in await banner.inner_text() and "暴雨红色预警" in await banner.inner_text()
    await pages.shot(commander, "inject-due")
    await banner.locator("button").click()
    # released: the banner counts down to the next inject (C1 at 1 min)
    await eventually(lambda: _banner_next(commander), 5, "next inject shown")
    events = read_events(hub.hub.data_dir / "events.db")
    started = next(e for e in events if e.kind == "operation.started")
    assert started.payload["scenario"] == "extreme-weather" and started.payload["level"] == "IV"
    rel = next(e for e in events if e.kind == "inject.released")
    assert rel.payload["inject_id"] == "E1" and rel.payload["planned_offset_s"] == 0
    assert rel.payload["type"] == "event"
    assert 0 <= rel.payload["actual_offset_s"] < 10


async def _banner_next(page: Any) -> bool:
    text = await page.inner_text("#inject-banner")
    return "C1" in text and "下一条" in text
