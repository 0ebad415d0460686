"""English mode is English: a walk over every page's DOM (text, titles, placeholders, labels,
hidden dialogs included) finds no Chinese outside what operators typed, after a drill with
Chinese text, a decline, a field report, a push and a scorecard; also after switching in place."""

from __future__ import annotations

from typing import Any

import pytest

from hub.runtime import RunningHub

from .conftest import Pages, eventually, playing

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "防汛联合演练"
TEXT = "立即封闭长江路下穿隧道"
REASON = "人员不足，无法到场"
REPORT = "隧道积水约40厘米"
OPERATOR = [TITLE, TEXT, REASON, REPORT]

# Han characters in text nodes and in the attributes a user sees, outside `.user-text`
# (what people typed: commands, reasons, reports, drill and scenario titles) and `.native`
# (the language switch names Chinese in Chinese), after removing the operator's own strings
# (a tooltip may quote them).
HAN_JS = """(operator) => {
  const HAN = /\\p{Script=Han}/u;
  const clean = (s) => operator.reduce((acc, o) => acc.split(o).join(''), s || '');
  const where = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode, p = n.parentElement;
    if (!p || ['SCRIPT', 'STYLE'].includes(p.tagName) || p.closest('.user-text, .native')) continue;
    if (HAN.test(clean(n.nodeValue))) bad.push(`${where(p)}: ${n.nodeValue.trim().slice(0, 80)}`);
  }
  for (const el of document.querySelectorAll('[title],[placeholder],[aria-label],[alt],optgroup[label]')) {
    if (el.closest('.user-text, .native')) continue;
    for (const a of ['title', 'placeholder', 'aria-label', 'alt', 'label']) {
      const v = el.getAttribute(a);
      if (v && HAN.test(clean(v))) bad.push(`${where(el)}@${a}: ${v.slice(0, 80)}`);
    }
  }
  if (HAN.test(clean(document.title))) bad.push(`title: ${document.title}`);
  return bad;
}"""


async def han(page: Any) -> list[str]:
    result: list[str] = await page.evaluate(HAN_JS, OPERATOR)
    return result


async def order_all_by_keyboard(page: Any) -> None:
    """The commander's keyboard path: "all" in the target box, Tab, the text, Enter."""
    await page.focus("#target-find")
    await page.keyboard.type("all")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await page.keyboard.type(TEXT)
    await page.keyboard.press("Enter")


async def test_english_mode_has_no_chinese_outside_operator_text(hub: RunningHub, pages: Pages) -> None:
    commander = await pages.open("commander", "commander", width=1920, height=1080, lang="en")
    fire = await pages.open("department", "department", "fire", width=1366, height=768, lang="en")
    police = await pages.open("department", "department", "police", width=1366, height=768, lang="en")
    evaluator = await pages.open("evaluator", "evaluator", width=1366, height=768, lang="en")
    zh = await pages.open("commander", "commander", width=1366, height=768, label="switched")
    await playing(commander, '.tile[data-dept="police"] video', 20)
    # a drill from a (Chinese) scenario, with a Chinese title
    await commander.locator('#op-scenario option[value="extreme-weather"]').wait_for(state="attached")
    await commander.select_option("#op-scenario", "extreme-weather")
    await commander.fill("#op-title", TITLE)
    await commander.click("#op-start")
    await commander.locator("#op-stop").wait_for()
    await fire.locator("#checkin").click()
    # a command to all, by keyboard
    await order_all_by_keyboard(commander)
    card = fire.locator('.card[data-cmd="C1"]')
    await card.wait_for(timeout=5000)
    await card.locator('button[data-response="receipt"]').click()
    pcard = police.locator('.card[data-cmd="C1"]')
    await pcard.wait_for(timeout=5000)
    await pcard.locator('button[data-response="declined"]').click()
    await police.fill(".decline-reason", REASON)
    await police.click(".decline button.danger")
    await fire.select_option("#report-command", "C1")
    await fire.fill("#report-text", REPORT)
    await fire.click("#report-send")
    await fire.locator(".report-item .snap-ok").wait_for(timeout=10_000)
    await commander.locator('#reports .report-card[data-dept="fire"]').wait_for(timeout=5000)
    # technical events shown too (their text must be English as well)
    await commander.check(".noise-toggle")
    await evaluator.check(".noise-toggle")
    # the scorecard of the running drill
    async with evaluator.expect_download(timeout=90_000) as dl:
        await evaluator.click("#pdf")
    assert (await dl.value).suggested_filename.startswith("scorecard-")
    await evaluator.locator("#pdf-link:not([hidden])").wait_for()
    assert (await evaluator.inner_text("#pdf-status")).startswith("Scorecard downloaded")
    # enlarge a tile (its dialog is walked too)
    await commander.click('.tile[data-dept="police"]')
    await commander.locator("#focus").wait_for()
    await eventually(lambda: commander.inner_text("#focus-status"), 5, "focus status")
    await pages.shot(commander, "en-commander-focus-1920x1080")
    for name, page in (("commander", commander), ("fire", fire), ("police", police),
                       ("evaluator", evaluator)):
        bad = await han(page)
        assert bad == [], (name, bad)
    await commander.click("#focus-close")
    await pages.shot(commander, "en-commander-1920x1080")
    await commander.set_viewport_size({"width": 1366, "height": 768})
    await pages.shot(commander, "en-commander-1366x768")
    await pages.shot(fire, "en-fire-1366x768")
    await pages.shot(police, "en-police-1366x768")
    await pages.shot(evaluator, "en-evaluator-1366x768")
    for name, page in (("evaluator", evaluator), ("fire", fire)):
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await pages.shot(page, f"en-{name}-1920x1080")
        await page.set_viewport_size({"width": 1366, "height": 768})
    assert await han(commander) == []

    # a page that was Chinese and switches in place: everything follows
    await zh.locator('.board-row[data-cmd="C1"]').wait_for(timeout=10_000)
    await zh.locator('#reports .report-card[data-dept="fire"]').wait_for(timeout=10_000)
    await zh.check('.req[value="on_scene"]')  # a deadline label that exists before the switch
    assert await han(zh) != []  # it is Chinese now (the check can fail)
    # an order sent just before the switch: its toast is worded again too
    await order_all_by_keyboard(zh)
    await zh.locator(".toast", has_text="已下达 C2").wait_for(timeout=5000)
    toasts = await zh.evaluate(  # switched and read in one step (a toast lasts 4 s)
        "() => { document.querySelector('#lang').click();"
        " return [...document.querySelectorAll('.toast')].map((e) => e.innerText); }")
    assert any(x.startswith("Issued C2 → All departments") for x in toasts), toasts
    await eventually(lambda: _text_is(zh, ".wall-pane h2", "Video wall"), 5, "switched")
    bad = await han(zh)
    assert bad == [], bad
    await pages.shot(zh, "en-switched-1366x768")
    for page in (fire, evaluator):
        await page.click("#lang")
    await eventually(lambda: _text_is(fire, "#report h2", "现场报告"), 5, "fire back in Chinese")
    assert "截图已保存" in await fire.inner_text("#report-list")
    for name, page in (("evaluator", evaluator), ("fire", fire)):
        await pages.shot(page, f"zh-{name}-1366x768")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await pages.shot(page, f"zh-{name}-1920x1080")
    assert (await evaluator.inner_text("#pdf-status")).startswith("评分报告已下载")


async def _text_is(page: Any, sel: str, text: str) -> bool:
    return bool(await page.locator(sel).first.inner_text() == text)
