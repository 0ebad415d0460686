"""Browser feeds judged from what they send: two department pages stay live for a minute with
full video uptime; an H264 camera (GStreamer webrtcbin over WHIP) shows on the commander's wall."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.logformat import read_events
from hub.runtime import RunningHub
from scoring.engine import score_log
from scoring.rubric import load_rubric
from tests.interop import gst

from .conftest import Pages, eventually, issue, playing

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

RUBRIC = Path(__file__).resolve().parents[2] / "scoring" / "rubrics" / "joint-live-drill.yaml"
DEPTS = ("fire", "police")
BAD = ("video.lost", "video.frozen", "video.black")


def log(hub: RunningHub) -> list[Any]:
    return read_events(hub.hub.data_dir / "events.db")


async def api_state(hub: RunningHub) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{hub.url}/api/state", headers={"Authorization": f"Bearer {issue(hub, 'commander')}"}
    ) as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def test_two_department_pages_stay_live_for_a_minute(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander")
    for d in DEPTS:
        await pages.open("department", "department", d)
    for d in DEPTS:
        await playing(commander, f'.tile[data-dept="{d}"] video', 30)
    await eventually(lambda: all(any(e.kind == "media.published" and e.payload["dept"] == d
                                     for e in log(hub)) for d in DEPTS), 10, "both published")
    published = {e.payload["dept"]: e.payload for e in log(hub) if e.kind == "media.published"}
    assert {published[d]["source"] for d in DEPTS} == {"webrtc"}

    cmd = issue(hub, "commander")
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{hub.url}/api/rpc", json={
            "type": "operation.start", "id": "op1", "title": "视频在线一分钟", "kind": "drill"},
            headers={"Authorization": f"Bearer {cmd}"})
        assert r.status == 200, await r.text()
        op = (await r.json())["operation"]
        r = await http.post(f"{hub.url}/api/commands", json={"id": "c1", "targets": list(DEPTS),
                            "text": "回传现场画面"}, headers={"Authorization": f"Bearer {cmd}"})
        assert r.status == 201, await r.text()
    # a minute of live video; fail as soon as the hub logs an outage for either
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        bad = [(e.kind, e.payload) for e in log(hub) if e.kind in BAD or e.kind == "media.unpublished"]
        assert not bad, f"after {time.monotonic() - t0:.0f} s: {bad}"
        await asyncio.sleep(1.0)
    # the pages answer; the hub takes a snapshot of each department's picture
    for page in pages.contexts[1:]:
        p = page.pages[0]
        await p.locator('.card[data-cmd="C1"] button[data-response="receipt"]').click()
    await eventually(lambda: {e.payload["dept"] for e in log(hub) if e.kind == "media.snapshot"
                              and e.payload.get("command_id") == "C1"} >= set(DEPTS), 10,
                     "a snapshot per response")
    state = await api_state(hub)
    assert {d: state["media"]["health"][d] for d in DEPTS} == dict.fromkeys(DEPTS, "ok")
    assert all(next(x for x in state["departments"] if x["id"] == d)["online"] for d in DEPTS)
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{hub.url}/api/rpc", json={"type": "operation.end", "id": "end1"},
                            headers={"Authorization": f"Bearer {cmd}"})
        assert r.status == 200, await r.text()

    events = log(hub)
    assert not [e for e in events if e.kind in BAD and e.payload.get("dept") in DEPTS]
    _, facts = score_log(str(hub.hub.data_dir / "events.db"), load_rubric(RUBRIC), op=op)
    uptime = {d: float(facts.uptime[facts.depts.index(d)]) for d in DEPTS}
    print("scorecard video uptime:", uptime)
    assert uptime == dict.fromkeys(DEPTS, 1.0), uptime
    assert not [e for e in pages.errors if "Failed to load resource" not in e], pages.errors


async def test_h264_camera_shows_on_the_commanders_wall(hub: RunningHub, pages: Pages) -> None:
    why = gst.unavailable()
    if why is not None:
        pytest.skip(why)
    commander = await pages.open("commander", "commander")
    await commander.locator("#conn[data-state=online]").wait_for(timeout=20_000)
    camera = await gst.GstPeer.start("publish", f"{hub.url}/whip/water",
                                     issue(hub, "department", "water"), "--codec", "h264",
                                     "--seconds", "40")
    try:
        await camera.wait_event("answer", 30)
        r = await playing(commander, '.tile[data-dept="water"] video', 30)
        assert (r["width"], r["height"]) == (320, 240)
        # a WHIP-only department is online, not 离线
        tile = commander.locator('.tile[data-dept="water"]')
        await eventually(lambda: _has_class(tile, "online"), 10, "water tile online")
        # the page re-checks its tiles once a second: the warning clears once it sees the picture
        await eventually(lambda: _text_is(tile.locator(".tile-warn"), ""), 5, "no tile warning")
        codecs = [s["codec"] for s in (await commander.evaluate("() => window.chDebug()"))
                  ["slots"]["video"] if s["dept"] == "water"]
        assert codecs == ["H264"]
    finally:
        await camera.stop()


async def _text_is(locator: Any, text: str) -> bool:
    return bool(await locator.inner_text() == text)


async def _has_class(locator: Any, cls: str) -> bool:
    return cls in ((await locator.get_attribute("class")) or "").split()
