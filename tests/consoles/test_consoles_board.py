"""The commander's board, field reports, journal, tiles and keyboard path, in headless Chromium.

State at a glance (colour and word per state, offline = not reached, reasons and reports in
the cell, snapshot thumbnails), wall order, 16 departments without scrolling at 1920x1080 and
1366x768, selection cleared after sending, tile names whole, both verdicts on a tile, the
journal without noise by default, and a keyboard-only command.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from hub.logformat import read_events
from hub.roster import load_roster
from hub.runtime import RunningHub

from .conftest import Pages, eventually, issue, playing

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDS = load_roster().ids
SIZES = ((1920, 1080), (1366, 768))
TEXT = "全体注意：立即报到并报告辖区积水情况"
REASON = "警力不足，需要支援"
REPORT = "长江路下穿隧道积水约40厘米，已设置警戒"


def log(hub: RunningHub) -> list[Any]:
    return read_events(hub.hub.data_dir / "events.db")


CELLS_JS = """cid => [...document.querySelectorAll(`.board-row[data-cmd="${cid}"] .cell`)].map(c => ({
  dept: c.dataset.dept, state: c.dataset.state, word: c.querySelector('.cell-state').textContent,
  colour: getComputedStyle(c).borderLeftColor, title: c.title,
  reason: c.querySelector('.cell-reason') ? c.querySelector('.cell-reason').textContent : null,
  report: c.querySelector('.cell-report') ? c.querySelector('.cell-report').textContent : null}))"""

# Every cell of the command inside the board's visible box, every target chip inside the
# composer, and no page scrolling.
FITS_JS = """cid => {
  const inside = (r, b) => r.top >= b.top - 1 && r.bottom <= b.bottom + 1
    && r.left >= b.left - 1 && r.right <= b.right + 1;
  const rect = (e) => e.getBoundingClientRect();
  const board = rect(document.querySelector('#board'));
  const cells = [...document.querySelectorAll(`.board-row[data-cmd="${cid}"] .cell`)];
  const composer = rect(document.querySelector('#composer'));
  const chips = [...document.querySelectorAll('.dept-chip')];
  const view = {top: 0, left: 0, bottom: innerHeight, right: innerWidth};
  const doc = document.documentElement;
  return {cells: cells.length,
    cellsOut: cells.filter(c => !inside(rect(c), board)).map(c => c.dataset.dept),
    chips: chips.length,
    chipsOut: chips.filter(c => !inside(rect(c), composer) || !inside(rect(c), view))
      .map(c => c.dataset.dept),
    tilesOut: [...document.querySelectorAll('.tile')].filter(t => !inside(rect(t), view))
      .map(t => t.dataset.dept),
    scrolls: doc.scrollHeight > innerHeight + 1 || doc.scrollWidth > innerWidth + 1};
}"""

# A tile's name: wholly inside the tile, not cut by an ellipsis, overlapped by no badge,
# warning or verdict line.
TILES_JS = """() => [...document.querySelectorAll('.tile')].map(t => {
  const n = t.querySelector('.tile-name'), nr = n.getBoundingClientRect(), tr = t.getBoundingClientRect();
  const hit = el => { if (!el || !el.textContent.trim()) return false; const r = el.getBoundingClientRect();
    return !(r.right <= nr.left || r.left >= nr.right || r.bottom <= nr.top || r.top >= nr.bottom); };
  const flags = [...t.querySelectorAll('.tile-flags .badge')];
  const v = t.querySelector('.tile-verdict').getBoundingClientRect();
  const overVerdict = flags.filter(f => { const r = f.getBoundingClientRect();
    return t.querySelector('.tile-verdict').textContent.trim() && !(r.bottom <= v.top || r.top >= v.bottom
      || r.right <= v.left || r.left >= v.right); }).map(f => f.textContent);
  return {dept: t.dataset.dept, name: n.textContent, overVerdict,
    inside: nr.top >= tr.top - 1 && nr.bottom <= tr.bottom + 1
      && nr.left >= tr.left - 1 && nr.right <= tr.right + 1,
    ellipsis: getComputedStyle(n).textOverflow === 'ellipsis' || getComputedStyle(n).whiteSpace === 'nowrap',
    overlaps: [...flags.filter(hit).map(f => f.textContent),
      ...(hit(t.querySelector('.tile-warn')) ? ['warn'] : []),
      ...(hit(t.querySelector('.tile-verdict')) ? ['verdict'] : [])],
    badges: flags.length};
})"""


async def cells(page: Any, cid: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate(CELLS_JS, cid)
    return result


async def _state_is(page: Any, cid: str, dept: str, state: str) -> bool:
    return any(c["dept"] == dept and c["state"] == state for c in await cells(page, cid))


async def _count(loc: Any, n: int) -> bool:
    return bool(await loc.count() >= n)


async def _img_loaded(loc: Any) -> bool:
    return bool(await loc.count() and await loc.first.evaluate("i => i.complete && i.naturalWidth > 0"))


async def test_board_shows_each_state_at_a_glance(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander", width=1920, height=1080)
    fire = await pages.open("department", "department", "fire", width=1366, height=768)
    police = await pages.open("department", "department", "police", width=1366, height=768)
    await playing(commander, '.tile[data-dept="fire"] video', 20)
    await playing(fire, "#self-video", 10)
    # group chips by their names, not their ids
    groups = await commander.eval_on_selector_all(".group-chip", "bs => bs.map(b => b.textContent)")
    assert groups == ["公共安全", "防汛", "卫生防疫", "危化品处置", "城市基础设施", "镇街"], groups

    # a command to all: 14 departments are offline and must not look reached
    await commander.click("#target-all")
    assert await commander.get_attribute("#picked", "data-count") == "16"
    await commander.fill("#cmd-text", TEXT)
    await commander.press("#cmd-text", "Enter")
    row = commander.locator('.board-row[data-cmd="C1"]')
    await row.wait_for(timeout=5000)
    # sending cleared the targets: the next order cannot go to the same set by accident
    assert await commander.get_attribute("#picked", "data-count") == "0"
    assert await commander.locator(".dept-chip.on, .group-chip.on, #target-all.on").count() == 0

    await fire.locator('.card[data-cmd="C1"] button[data-response="receipt"]').click()
    await police.locator('.card[data-cmd="C1"] button[data-response="declined"]').click()
    await police.fill(".decline-reason", REASON)
    await police.click(".decline button.danger")
    await fire.select_option("#report-command", "C1")
    await fire.fill("#report-text", REPORT)
    await fire.click("#report-send")
    await fire.locator(".report-item .snap-ok").wait_for(timeout=10_000)
    await eventually(lambda: _state_is(commander, "C1", "fire", "acknowledged"), 10, "fire received")
    await eventually(lambda: _state_is(commander, "C1", "police", "declined"), 10, "police declined")

    got = await cells(commander, "C1")
    # wall order (the roster's order), not sorted by id
    assert [c["dept"] for c in got] == IDS
    by = {c["dept"]: c for c in got}
    offline = [d for d in IDS if d not in ("fire", "police")]
    assert all(by[d]["state"] == "offline" and by[d]["word"] == "离线未送达" for d in offline)
    assert by["fire"]["word"] == "已签收" and by["police"]["word"] == "无法执行"
    # the decline reason is in the cell, and the tooltip calls it a reason (not "请填写原因")
    assert by["police"]["reason"] == REASON
    assert f"原因: {REASON}" in by["police"]["title"] and "请填写原因" not in by["police"]["title"]
    # the field report for C1 is in fire's cell
    await eventually(lambda: commander.locator('.cell[data-dept="fire"] .cell-report').count(), 10,
                     "report in the cell")
    fire_cell = '.board-row[data-cmd="C1"] .cell[data-dept="fire"]'
    assert REPORT in await commander.inner_text(f"{fire_cell} .cell-report")
    # the row says how many were reached: 2 of 16, 14 offline
    summary = await row.locator(".cmd-summary").inner_text()
    assert "已送达 2/16" in summary and "未送达 14（离线 14）" in summary, summary
    # colours differ between states, and from every other state in the legend
    colours = {by["fire"]["colour"], by["police"]["colour"], by["emergency"]["colour"]}
    assert len(colours) == 3, colours
    legend = await commander.eval_on_selector_all(
        "#board-legend .legend-chip",
        "cs => cs.map(c => [c.textContent, getComputedStyle(c).borderLeftColor])")
    assert [w for w, _ in legend] == ["未送达", "离线未送达", "已送达", "已签收", "已到场", "已完成",
                                      "无法执行", "超时"]
    assert len({c for _, c in legend}) == len(legend), legend
    assert len({w for w, _ in legend}) == len(legend)

    # the field-report panel beside the board, with the snapshot as a thumbnail
    card = commander.locator('#reports .report-card[data-dept="fire"]')
    await card.wait_for(timeout=5000)
    assert REPORT in await card.inner_text() and "关联 C1" in await card.inner_text()
    await eventually(lambda: _img_loaded(card.locator("img")), 10, "snapshot thumbnail loaded")
    src = await card.locator("img").get_attribute("src")
    assert src is not None and src.startswith("/api/snapshots/fire-")
    await eventually(lambda: _img_loaded(commander.locator('.cell[data-dept="fire"] .cell-snap img')), 10,
                     "thumbnail in the cell")

    # receipts at once share hub snapshots (media.snapshot.responses: one picture a second per
    # department at most, the answers meanwhile join it): every cell shows its picture
    cids = ("C2", "C3", "C4")
    for cid in cids:
        await commander.click('.dept-chip[data-dept="fire"]')
        await commander.fill("#cmd-text", f"{TEXT} {cid}")
        await commander.press("#cmd-text", "Enter")
        await fire.locator(f'.card[data-cmd="{cid}"] button[data-response="receipt"]').wait_for()
    await fire.evaluate("""cids => cids.forEach(c => document.querySelector(
        `.card[data-cmd="${c}"] button[data-response="receipt"]`).click())""", list(cids))

    def shared() -> bool:
        return any(len({r.get("command_id") for r in e.payload.get("responses", [])} & set(cids)) >= 2
                   for e in log(hub) if e.kind == "media.snapshot")
    await eventually(shared, 15, "one snapshot for two of the receipts")
    for cid in cids:
        await eventually(lambda cid=cid: _img_loaded(commander.locator(
            f'.board-row[data-cmd="{cid}"] .cell[data-dept="fire"] .cell-snap img')), 10,
            f"{cid}'s thumbnail in the cell")

    # the journal: no technical noise by default, kinds in Chinese, noise behind the toggle
    journal = commander.locator(".journal-list")
    await eventually(lambda: "presence.clock" in [e.kind for e in log(hub)], 10, "a clock event logged")
    kinds = await journal.evaluate("l => [...l.querySelectorAll('.jrow')].map(r => r.dataset.kind)")
    assert "presence.clock" not in kinds and "link.stats" not in kinds and "command.declined" in kinds
    declined = journal.locator('.jrow[data-kind="command.declined"] .jkind').first
    assert await declined.inner_text() == "无法执行"
    assert re.search(r"已隐藏 \d+ 条技术事件", await commander.inner_text(".noise-count"))
    await commander.check(".noise-toggle")
    await journal.locator('.jrow[data-kind="presence.clock"]').first.wait_for(timeout=5000)
    text = await journal.inner_text()
    assert "时钟校准" in text and not re.search(r"\d\.\d{4,}", text), text[:400]
    await commander.uncheck(".noise-toggle")

    for w, h in SIZES:
        await commander.set_viewport_size({"width": w, "height": h})
        fits = await eventually(lambda: _fits(commander, "C1"), 5, f"16 cells fit at {w}x{h}")
        assert fits["cells"] == 16 and fits["chips"] == 16
        await pages.shot(commander, f"commander-zh-{w}x{h}")
        for lang, sw in (("en", "中文"), ("zh", "English")):
            await commander.click("#lang")
            await eventually(lambda sw=sw: _text_is(commander, "#lang", sw), 5, "language switched")
            fits = await eventually(lambda: _fits(commander, "C1"), 5, f"16 cells fit at {w}x{h} {lang}")
            if lang == "en":
                await pages.shot(commander, f"commander-en-{w}x{h}")
                by = {c["dept"]: c for c in await cells(commander, "C1")}
                assert by["emergency"]["word"] == "Offline" and by["fire"]["word"] == "Received"
                assert by["police"]["word"] == "Cannot comply"
                assert f"Reason: {REASON}" in by["police"]["title"]
                groups = await commander.eval_on_selector_all(".group-chip",
                                                              "bs => bs.map(b => b.textContent)")
                assert "Public Safety" in groups and "Hazardous Materials" in groups
    await pages.shot(fire, "fire-zh-1366x768")
    await pages.shot(police, "police-declined-zh-1366x768")


async def _fits(page: Any, cid: str) -> Any:
    r = await page.evaluate(FITS_JS, cid)
    return r if not (r["cellsOut"] or r["chipsOut"] or r["tilesOut"] or r["scrolls"]) else None


async def _text_is(page: Any, sel: str, text: str) -> bool:
    return bool(await page.inner_text(sel) == text)


async def test_tiles_show_both_verdicts_and_whole_names(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander", width=1366, height=768)
    fire = await pages.open("department", "department", "fire", width=1366, height=768)
    await playing(commander, '.tile[data-dept="fire"] video', 20)
    tile = commander.locator('.tile[data-dept="fire"]')
    # this browser's verdict: it decodes frames (fps from getStats), labelled 本机
    local = tile.locator(".v-local")
    await eventually(lambda: _matches(local, r"^本机: 正常 \d+ fps$"), 10, "local verdict with fps")
    # the hub's verdict, labelled 中心 (whatever it is, it is said to be the hub's)
    assert (await tile.locator(".v-hub").inner_text()).startswith("中心: ")
    assert "中心" in (await tile.locator(".tile-verdict").get_attribute("title") or "")
    # a drill with a check-in: the badge must not cover the name
    await commander.fill("#op-title", "核对画面")
    await commander.click("#op-start")
    await fire.locator("#checkin").click()
    await tile.locator(".badge.checked").wait_for(timeout=5000)
    for w, h in SIZES:
        await commander.set_viewport_size({"width": w, "height": h})
        for lang in ("zh", "en"):
            if (await commander.inner_text("#lang")) == ("中文" if lang == "zh" else "English"):
                await commander.click("#lang")
            await eventually(lambda lang=lang: _name_is(commander, lang), 5, "names in the language")
            for t in await commander.evaluate(TILES_JS):
                assert t["inside"] and not t["ellipsis"] and not t["overlaps"], (w, h, lang, t)
                assert not t["overVerdict"], (w, h, lang, t)  # the badge covers no verdict either
            await pages.shot(commander, f"tiles-{lang}-{w}x{h}")
    # the camera goes dark: this browser says so, and says it is its own verdict
    await fire.evaluate(
        "() => document.querySelector('#self-video').srcObject.getVideoTracks()[0].enabled = false")
    await eventually(lambda: _attr_in(tile, "data-local", ("black", "frozen")), 10, "local black/frozen")
    warn = await tile.locator(".tile-warn").inner_text()
    assert warn.startswith("⚠ ") and ("Here" in warn or "本机" in warn), warn
    await pages.shot(commander, "tile-local-verdict")


async def _name_is(page: Any, lang: str) -> bool:
    want = "Fire and Rescue" if lang == "en" else "消防救援大队"
    return bool(await page.inner_text('.tile[data-dept="fire"] .tile-name') == want)


async def _matches(loc: Any, pattern: str) -> bool:
    return re.match(pattern, await loc.inner_text()) is not None


async def _attr_in(loc: Any, attr: str, values: tuple[str, ...]) -> bool:
    return await loc.get_attribute(attr) in values


async def test_keyboard_only_command(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander", width=1366, height=768)
    await commander.locator("#conn[data-state=online]").wait_for()
    kb = commander.keyboard
    # the page starts in the target box
    await eventually(lambda: commander.evaluate("() => document.activeElement.id === 'target-find'"), 5,
                     "focus in the target box")
    # "?" in the empty target box: the keys, in the page; Esc closes and goes back
    await kb.press("?")
    await commander.locator("#help-box").wait_for()
    assert "回车" in await commander.inner_text("#help-box")
    await pages.shot(commander, "help")
    await kb.press("Escape")
    await commander.locator("#help-box").wait_for(state="hidden")
    # type-ahead: an id, Chinese, a group, a wall number
    await kb.type("fire")
    first = commander.locator("#target-suggest .suggest-item.active")
    await first.wait_for()
    assert await first.get_attribute("data-id") == "fire"
    await kb.press("Enter")
    await kb.type("公安")
    await kb.press("Enter")
    await kb.type("haz")
    await eventually(lambda: _active_is(commander, "hazmat"), 5, "hazmat suggested")
    await kb.press("Enter")
    await kb.type("12")  # the 12th tile (power) first; health120 also contains "12"
    await eventually(lambda: _active_is(commander, "power"), 5, "wall number 12 suggested")
    await kb.press("Enter")
    # fire, police, hazmat (fire, transport, ecology, market), power
    assert await commander.get_attribute("#picked", "data-count") == "6"
    await kb.press("Backspace")  # the last pick (power) goes
    await eventually(lambda: _attr_is(commander, "#picked", "data-count", "5"), 5, "power removed")
    await pages.shot(commander, "keyboard-targets")
    await kb.press("Tab")
    assert await commander.evaluate("() => document.activeElement.id") == "cmd-text"
    await kb.type("危化品泄漏：立即封控")
    await kb.press("Enter")
    await eventually(lambda: [e for e in log(hub) if e.kind == "command.issued"], 5, "command logged")
    issued = next(e for e in log(hub) if e.kind == "command.issued")
    assert issued.payload["text"] == "危化品泄漏：立即封控"
    assert set(issued.payload["departments"]) == {"fire", "police", "transport", "ecology", "market"}
    # sent: targets cleared, back in the target box for the next order
    await eventually(lambda: _attr_is(commander, "#picked", "data-count", "0"), 5, "targets cleared")
    assert await commander.evaluate("() => document.activeElement.id") == "target-find"
    # "/" from elsewhere goes back to the targets
    await kb.press("Tab")
    await kb.press("Escape")
    await kb.press("/")
    assert await commander.evaluate("() => document.activeElement.id") == "target-find"
    # a wall tile by keyboard: Enter enlarges, Esc closes and the focus goes back to the tile
    await commander.focus('.tile[data-dept="police"]')
    await kb.press("Enter")
    await commander.locator("#focus").wait_for()
    await kb.press("Escape")
    await commander.locator("#focus").wait_for(state="hidden")
    assert await commander.evaluate("() => document.activeElement.dataset.dept") == "police"


async def _active_is(page: Any, dept: str) -> bool:
    return bool(await page.get_attribute("#target-suggest .suggest-item.active", "data-id") == dept)


async def _attr_is(page: Any, sel: str, attr: str, value: str) -> bool:
    return bool(await page.get_attribute(sel, attr) == value)


async def test_an_unknown_target_is_refused_with_the_valid_ids(hub: RunningHub) -> None:
    token = issue(hub, "commander")
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{hub.url}/api/commands",
                            json={"id": "u1", "targets": ["fire", "nope"], "text": "x"},
                            headers={"Authorization": f"Bearer {token}"})
        body = await r.json()
        assert r.status == 404 and body["error"]["code"] == "unknown_target"
        msg = body["error"]["message"]
        assert "'nope'" in msg and all(d in msg for d in IDS) and "public-safety" in msg, msg
        r = await http.post(f"{hub.url}/api/rpc",
                            json={"type": "route.push", "source": "nope", "targets": "all"},
                            headers={"Authorization": f"Bearer {token}"})
        msg = (await r.json())["error"]["message"]
        assert r.status == 400 and "'nope'" in msg and "changjiang" in msg, msg
