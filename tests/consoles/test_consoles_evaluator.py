"""The evaluator's page: completed commands stay on the board (also after a reload), the
scorecard downloads in one click with a readable link, numbers are rounded for display."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.runtime import RunningHub

from .conftest import Pages, eventually, issue

pytestmark = pytest.mark.asyncio(loop_scope="module")

# WCAG contrast ratio of an element's text colour against its background colour.
CONTRAST_JS = """el => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = c => { const [r, g, b] = c.map(lin); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const st = getComputedStyle(el);
  const a = lum(rgb(st.color)), b = lum(rgb(st.backgroundColor));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


async def rpc(hub: RunningHub, token: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {"id": uuid.uuid4().hex, **body}  # state-changing requests carry a client id
    async with aiohttp.ClientSession() as http, \
            http.post(f"{hub.url}/api/rpc", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        result: dict[str, Any] = await r.json()
        assert r.status == 200, result
        return result


async def test_completed_commands_stay_and_the_scorecard_is_one_click(hub: RunningHub, pages: Pages) -> None:
    cmd = issue(hub, "commander")
    await rpc(hub, cmd, {"type": "operation.start", "title": "评估演练", "kind": "drill", "level": "IV"})
    evaluator = await pages.open("evaluator", "evaluator", width=1366, height=768)
    fire = await pages.open("department", "department", "fire", width=1366, height=768)
    await evaluator.locator("#conn[data-state=online]").wait_for()
    for i in range(1, 5):
        await rpc(hub, cmd, {"type": "command.issue", "targets": ["fire"], "text": f"第{i}条：签收即完成"})
    for cid in ("C1", "C2", "C3", "C4"):
        await fire.locator(f'.card[data-cmd="{cid}"] button[data-response="receipt"]').click()
    # done (receipt was all they needed): kept, not dropped; the newest three dimmed with their
    # cells, older ones collapsed to their summary
    row = evaluator.locator('.board-row[data-cmd="C1"]')
    await eventually(lambda: _classes(row, {"closed", "collapsed"}), 10, "C1 closed and collapsed")
    assert "已结束" in await row.inner_text() and "已签收 1" in await row.inner_text()
    c4 = evaluator.locator('.board-row[data-cmd="C4"]')
    await eventually(lambda: _classes(c4, {"closed"}), 10, "C4 closed")
    assert not await _classes(c4, {"collapsed"}) and await c4.locator(".cell").count() == 1
    await pages.shot(evaluator, "closed-kept-zh-1366x768")
    # after a reload too (the state snapshot lists open commands only: the log brings them back)
    await evaluator.reload()
    for cid in ("C1", "C2", "C3", "C4"):
        await evaluator.locator(f'.board-row[data-cmd="{cid}"].closed').wait_for(timeout=10_000)
    await evaluator.locator('.board-row[data-cmd="C1"] .toggle-row').click()
    cell = evaluator.locator('.board-row[data-cmd="C1"] .cell[data-dept="fire"]')
    await cell.wait_for()
    assert await cell.get_attribute("data-state") == "acknowledged"
    # one click: produced and saved
    async with evaluator.expect_download(timeout=90_000) as dl:
        await evaluator.click("#pdf")
    download = await dl.value
    assert download.suggested_filename.startswith("scorecard-drill-")
    path = await download.path()
    assert path is not None and Path(path).read_bytes()[:5] == b"%PDF-"
    link = evaluator.locator("#pdf-link")
    await link.wait_for()
    assert await link.evaluate(CONTRAST_JS) >= 4.5
    assert "评分报告已下载" in await evaluator.inner_text("#pdf-status")
    await pages.shot(evaluator, "zh-1366x768")
    # numbers for display are rounded (the technical journal rows included)
    await evaluator.check(".noise-toggle")
    await evaluator.locator('.jrow[data-kind="presence.clock"]').first.wait_for(timeout=10_000)
    text = await evaluator.inner_text(".journal-list")
    assert not re.search(r"\d\.\d{4,}", text), text[:500]


async def _classes(loc: Any, want: set[str]) -> bool:
    return want <= set(((await loc.get_attribute("class")) or "").split())
