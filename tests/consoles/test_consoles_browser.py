"""The commander, department and evaluator pages in headless Chromium against a real hub."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from playwright.async_api import expect

from hub.logformat import read_events
from hub.runtime import RunningHub
from scoring.metrics import UNPLANNED_OFFLINE

from .conftest import Pages, eventually, issue, playing

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT = "立即出动，封闭长江路下穿隧道"


def log(hub: RunningHub) -> list[Any]:
    return read_events(hub.hub.data_dir / "events.db")


async def test_command_round_trip(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander")
    fire = await pages.open("department", "department", "fire")
    police = await pages.open("department", "department", "police")

    # departments publish; the commander's tiles play them
    for d in ("fire", "police"):
        r = await playing(commander, f'.tile[data-dept="{d}"] video', 20)
        assert r["width"] > 0 and r["after"] > r["before"]
    # each department sees the commander's own feed
    await playing(fire, "#slot-main", 15)
    # Chinese names from the roster, as written
    assert await commander.inner_text('.tile[data-dept="health120"] .tile-name') == "卫健委/120急救"
    assert await commander.inner_text('.tile[data-dept="fire"] .tile-warn') == ""

    # the commander picks the two departments, types, presses Enter
    await commander.click('.dept-chip[data-dept="fire"]')
    await commander.click('.dept-chip[data-dept="police"]')
    await commander.fill("#cmd-text", TEXT)
    await commander.press("#cmd-text", "Enter")

    for page in (fire, police):
        card = page.locator('.card[data-cmd="C1"]')
        await card.wait_for(timeout=5000)
        # rendered text (innerText): a card's content is laid out at the frame after it is
        # inserted (`content-visibility: auto`), so read it once it is painted
        await expect(card.locator(".card-text")).to_have_text(TEXT, use_inner_text=True)
        await card.locator('button[data-response="receipt"]').click()
    # the board shows both receipts with their latency
    for d in ("fire", "police"):
        cell = commander.locator(f'.board-row[data-cmd="C1"] .cell[data-dept="{d}"]')
        await eventually(lambda c=cell: _has_class(c, "st-acknowledged"), 5, f"{d} receipt on the board")
    await pages.shot(commander, "commander")
    await pages.shot(fire, "fire")

    events = log(hub)
    kinds = [e.kind for e in events]
    issued = next(e for e in events if e.kind == "command.issued")
    assert issued.payload["text"] == TEXT and issued.payload["departments"] == ["fire", "police"]
    for d in ("fire", "police"):
        mine = [e for e in events if e.kind.startswith("command.")
                and e.payload.get("command_id") == "C1" and e.payload.get("dept") == d]
        assert [e.kind for e in mine] == ["command.delivered", "command.acknowledged"], d
        ack = mine[1]
        assert ack.payload["client_msg_id"] == f"{d}-C1-receipt"
        latency = (ack.ts_us - issued.ts_us) / 1e6
        # done with the receipt: the cell's timer stopped at the receipt latency
        text = await commander.inner_text(f'.board-row[data-cmd="C1"] .cell[data-dept="{d}"] .cell-timer')
        # JS toFixed rounds exact ties up, Python's format to even: accept either
        assert text in (f"{latency:.1f}秒", f"{math.floor(latency * 10 + 0.5) / 10:.1f}秒"), \
            (text, latency)
        tip = await commander.get_attribute(f'.board-row[data-cmd="C1"] .cell[data-dept="{d}"]', "title")
        assert tip is not None and f"+{latency:.3f}s" in tip
    for who in ("commander", "fire", "police"):
        assert any(e.kind == "presence.online" and (e.dept == who or (who == "commander"
                   and e.role == "commander")) for e in events), who
    assert kinds.count("command.acknowledged") == 2
    # the journal shows them, kinds in the operator's language (the raw kind in the tooltip)
    receipts = commander.locator('.journal-list .jrow[data-kind="command.acknowledged"]')
    await eventually(lambda: _count_is(receipts, 2), 5, "two receipts in the journal")
    assert await receipts.first.locator(".jkind").inner_text() == "签收"
    assert await receipts.first.locator(".jkind").get_attribute("title") == "command.acknowledged"
    assert TEXT in await commander.inner_text(".journal-list")
    assert not [e for e in pages.errors if "Failed to load resource" not in e], pages.errors


async def _count_is(locator: Any, n: int) -> bool:
    return bool(await locator.count() == n)


async def _has_class(locator: Any, cls: str) -> bool:
    return cls in ((await locator.get_attribute("class")) or "").split()


async def test_bad_token_shows_a_clear_message(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open("commander", token="not-a-token", label="bad")
    gate = page.locator("#token-message")
    await gate.wait_for()
    msg = await gate.inner_text()
    assert "令牌无效" in msg and "bad_token" in msg, msg
    assert await page.locator("#app").is_hidden()
    await pages.shot(page, "bad-token")
    # no token at all: a form to paste one
    page2 = await pages.open("department", label="none")
    await page2.locator("#token-input").wait_for()
    assert "缺少令牌" in await page2.inner_text("#token-message")
    # a department token on the commander page is refused by name
    page3 = await pages.open("commander", "department", "fire", label="wrongrole")
    await eventually(lambda: page3.inner_text("#token-message"), 5, "wrong role message")
    assert "department" in await page3.inner_text("#token-message")
    rejected = [e for e in log(hub) if e.kind == "auth.rejected"]
    assert rejected and rejected[0].payload["path"] == "/api/state"


async def test_reload_gets_pending_commands_back(hub: RunningHub, pages: Pages) -> None:
    fire = await pages.open("department", "department", "fire")
    await fire.locator("#conn[data-state=online]").wait_for()
    rpc = hub.hub
    cmd = issue(hub, "commander")
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for text in ("第一条：签收后到场", "第二条：未签收"):
            r = await http.post(f"{hub.url}/api/commands", json={"targets": ["fire"], "text": text,
                                "requires": ["receipt", "on_scene"], "id": text},
                                headers={"Authorization": f"Bearer {cmd}"})
            assert r.status == 201
    await fire.locator('.card[data-cmd="C2"]').wait_for(timeout=5000)
    await fire.locator('.card[data-cmd="C1"] button[data-response="receipt"]').click()
    await eventually(lambda: _acked(rpc, "C1"), 5, "C1 receipt logged")
    await fire.reload()
    for cid in ("C1", "C2"):
        await fire.locator(f'.card[data-cmd="{cid}"]').wait_for(timeout=5000)
    c1 = fire.locator('.card[data-cmd="C1"]')
    await expect(c1.locator(".card-state")).to_contain_text("已签收", use_inner_text=True)
    # receipt is done: the next button is on scene
    assert await c1.locator('button[data-response="receipt"]').is_disabled()
    assert await c1.locator('button[data-response="on_scene"]').is_enabled()
    await expect(fire.locator('.card[data-cmd="C2"] .card-text')).to_contain_text(
        "未签收", use_inner_text=True)
    await pages.shot(fire, "after-reload")
    # delivered once per command although the page loaded twice (stable message ids)
    delivered = [e.payload["command_id"] for e in log(hub) if e.kind == "command.delivered"]
    assert sorted(delivered) == ["C1", "C2"]


def _acked(h: Any, cid: str) -> bool:
    p = h.state.commands.commands[cid].progress["fire"]
    return bool(p.state == "acknowledged")


async def test_push_reaches_the_other_department(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander")
    fire = await pages.open("department", "department", "fire")
    police = await pages.open("department", "department", "police")
    await playing(commander, '.tile[data-dept="police"] video', 20)
    await playing(fire, "#slot-main", 15)
    assert await fire.locator('.pushed-feed[data-dept="police"]').count() == 0
    # enlarge police; the push menu offers all, each group by name, and each other department
    await commander.click('.tile[data-dept="police"]')
    await commander.locator("#focus").wait_for()
    await playing(commander, "#focus-video", 10)
    values = await commander.eval_on_selector_all("#push-target option", "os => os.map(o => o.value)")
    assert values[0] == "all" and "police" not in values and "fire" in values and "public-safety" in values
    labels = await commander.eval_on_selector_all("#push-target option", "os => os.map(o => o.textContent)")
    assert any(lab.startswith("公共安全") for lab in labels), labels
    # to one department only
    await commander.select_option("#push-target", "fire")
    await commander.click("#push-go")
    pushed = '.pushed-feed[data-dept="police"]'
    await fire.locator(pushed).wait_for(timeout=5000)
    r = await playing(fire, f"{pushed} video", 10)
    assert r["width"] > 0
    assert "公安110" in await fire.inner_text(f"{pushed} .feed-label")
    await eventually(lambda: _text_is(commander, "#focus-pushed", "已推送至: 消防救援大队"), 5,
                     "push to fire shown")
    await pages.shot(commander, "commander-focus")
    await pages.shot(fire, "fire-pushed")
    # to a group the source belongs to: "pushed to" names the others, never the source itself
    await commander.select_option("#push-target", "public-safety")
    await commander.click("#push-go")
    await eventually(lambda: _text_is(commander, "#focus-pushed",
                                      "已推送至: 应急管理局、消防救援大队、卫健委/120急救"),
                     5, "push to a group shown without the source")
    # to all
    await commander.select_option("#push-target", "all")
    await commander.click("#push-go")
    await eventually(lambda: _text_is(commander, "#focus-pushed", "已推送至: 全部其他部门"), 5,
                     "push to all shown")
    # take it back
    await commander.click("#unpush")
    await eventually(lambda: _gone(fire, pushed), 10, "feed taken back")
    # mute police, talk to fire only
    await commander.click("#focus-mute")
    await eventually(lambda: _text_is(commander, "#focus-mute", "取消静音"), 5, "mute shown")
    await commander.click("#focus-close")
    await commander.select_option("#talk-to", "fire")
    await eventually(lambda: "talk" in [e.payload["action"] for e in log(hub) if e.kind == "route.changed"],
                     5, "talk logged")
    routes = [e.payload for e in log(hub) if e.kind == "route.changed"]
    assert [r["action"] for r in routes] == ["push", "push", "push", "unpush", "mute", "talk"], routes
    assert routes[0]["source"] == "police" and routes[0]["targets"] == ["fire"]
    assert routes[1]["targets"] == ["emergency", "police", "fire", "health120"]
    assert routes[2]["targets"] == "all"
    # police's camera goes black: its tile warns
    await police.evaluate(
        "() => document.querySelector('#self-video').srcObject.getVideoTracks()[0].enabled = false")
    tile = commander.locator('.tile[data-dept="police"]')
    await eventually(lambda: _attr_in(tile, "data-warn", ("black", "frozen")), 10, "black tile warning")
    # the warning says who saw it: this browser (本机), not the hub
    assert (await tile.locator(".tile-warn").inner_text()).startswith("⚠ 本机:")
    assert (await tile.locator(".v-local").inner_text()).startswith("本机: ⚠")
    await pages.shot(commander, "black-warning")


async def _text_is(page: Any, sel: str, text: str) -> bool:
    return bool(await page.inner_text(sel) == text)


async def _attr_in(loc: Any, attr: str, values: tuple[str, ...]) -> bool:
    return await loc.get_attribute(attr) in values


async def _gone(page: Any, sel: str) -> bool:
    return bool(await page.locator(sel).count() == 0 or await page.locator(sel).is_hidden())


def _sha(path: Any) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_field_report_with_snapshot(hub: RunningHub, pages: Pages) -> None:
    fire = await pages.open("department", "department", "fire")
    await playing(fire, "#self-video", 10)
    await fire.fill("#report-text", "现场积水约40厘米，已设置警戒")
    await fire.click("#report-send")
    item = fire.locator(".report-item .snap-ok")
    await item.wait_for(timeout=5000)
    events = log(hub)
    report = next(e for e in events if e.kind == "report.field")
    snap = next(e for e in events if e.kind == "media.snapshot" and e.payload.get("source") == "browser")
    assert snap.payload["report_id"] == report.payload["report_id"]
    assert snap.payload["dept"] == "fire"
    path = hub.hub.data_dir / snap.payload["path"]
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert _sha(path) == snap.payload["sha256"]
    assert re.fullmatch(r"snapshots/fire-\d+-[0-9a-f]{12}\.jpg", snap.payload["path"])


async def test_reconnect_loses_nothing(hub: RunningHub, pages: Pages) -> None:
    fire = await pages.open("department", "department", "fire")
    await fire.locator("#conn[data-state=online]").wait_for()
    cmd = issue(hub, "commander")
    import aiohttp

    async def send(http: aiohttp.ClientSession, text: str) -> None:
        r = await http.post(f"{hub.url}/api/commands", json={"targets": ["fire"], "text": text,
                                                             "id": text},
                            headers={"Authorization": f"Bearer {cmd}"})
        assert r.status == 201

    async with aiohttp.ClientSession() as http:
        await send(http, "断线前的指令")
        await fire.locator('.card[data-cmd="C1"]').wait_for(timeout=5000)
        # the network goes away silently: no close reaches either side, the socket stays
        # "open"; the page's keepalive ping goes unanswered (5 s), so it knows within 10 s
        await fire.context.set_offline(True)
        await fire.locator("#conn:not([data-state=online])").wait_for(timeout=12000)
        assert "不会丢失" in await fire.inner_text("#offline-banner")
        await pages.shot(fire, "offline")
        # pressed while offline: kept and sent after the reconnect
        await fire.locator('.card[data-cmd="C1"] button[data-response="receipt"]').click()
        await send(http, "断线期间的指令")
        await fire.context.set_offline(False)
        await fire.locator("#conn[data-state=online]").wait_for(timeout=15000)
        assert await fire.locator("#offline-banner").is_hidden()
        await fire.locator('.card[data-cmd="C2"]').wait_for(timeout=5000)
        await eventually(lambda: _acked(hub.hub, "C1"), 10, "receipt sent after reconnect")
    events = log(hub)
    acks = [e for e in events if e.kind == "command.acknowledged"]
    assert [(e.payload["command_id"], e.payload["client_msg_id"]) for e in acks] == \
        [("C1", "fire-C1-receipt")]
    assert sorted(e.payload["command_id"] for e in events if e.kind == "command.delivered") == ["C1", "C2"]
    presence = [(e.kind, e.payload.get("reason")) for e in events
                if e.kind in ("presence.online", "presence.offline") and e.dept == "fire"]
    # Chromium offline may still answer the hub's pings, so the hub hears of the outage from
    # the page (its close frame, code 4000, or the reconnect naming the socket it gave up on:
    # `link_lost`) or from its own heartbeat; either way it is scored as a disconnect
    assert [k for k, _ in presence] == ["presence.online", "presence.offline",
                                        "presence.online"], f"the outage is in the log: {presence}"
    assert presence[1][1] in UNPLANNED_OFFLINE, presence


async def test_new_command_renders_only_itself(hub: RunningHub, pages: Pages) -> None:
    """A new command adds its own card, report choice and board row: the others stay the same
    DOM nodes (no rebuild per event, no cell rebuilt by its running timer), and the
    department's new-command flash animates opacity only (the compositor's work, not a repaint
    of the page on the main thread every frame)."""
    commander = await pages.open("commander", "commander")
    fire = await pages.open("department", "department", "fire")
    card = '.card[data-cmd="{}"]'
    row = '.board-row[data-cmd="{}"]'
    for i in (1, 2):
        await commander.click('.dept-chip[data-dept="fire"]')
        await commander.fill("#cmd-text", f"渲染检查 {i}")
        await commander.press("#cmd-text", "Enter")
        cid = f"C{i}"
        # delivered: the card has taken the state it keeps until the department answers
        await fire.locator(f'{card.format(cid)}.st-delivered').wait_for(timeout=10_000)
        await commander.locator(f'{row.format(cid)} .cell[data-state="delivered"]').wait_for(timeout=10_000)
        if i == 1:
            await fire.evaluate("""() => {
              document.querySelector('.card[data-cmd="C1"]').chTag = 1;
              document.querySelector('#report-command option[value="C1"]').chTag = 1; }""")
            await commander.evaluate("""() => {
              document.querySelector('.board-row[data-cmd="C1"]').chTag = 1;
              document.querySelector('.board-row[data-cmd="C1"] .cell-state').chTag = 1; }""")
    await commander.wait_for_timeout(1200)  # two board ticks and a countdown tick
    assert await fire.evaluate("""() => [document.querySelector('.card[data-cmd="C1"]').chTag,
      document.querySelector('#report-command option[value="C1"]').chTag]""") == [1, 1]
    assert await commander.evaluate("""() => [document.querySelector('.board-row[data-cmd="C1"]').chTag,
      document.querySelector('.board-row[data-cmd="C1"] .cell-state').chTag]""") == [1, 1]
    assert await fire.locator("#inbox .card").count() == 2
    choices = "() => [...document.querySelectorAll('#report-command option')].map(o => o.value)"
    assert await fire.evaluate(choices) == ["", "C2", "C1"]
    rows = "() => [...document.querySelectorAll('#board .board-row')].map(r => r.dataset.cmd)"
    assert await commander.evaluate(rows) == ["C2", "C1"]
    animated = await fire.evaluate("""() => document.getAnimations().map(a => a.effect.getKeyframes()
      .flatMap(k => Object.keys(k))
      .filter(p => !['offset', 'computedOffset', 'easing', 'composite'].includes(p)))""")
    assert animated and all(set(props) == {"opacity"} for props in animated), animated
