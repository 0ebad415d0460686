"""The consoles work under the hub's Content-Security-Policy in Debian's Chromium: no violation
on any page, while an injected inline handler is blocked (so the check can fail)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from hub.bench_ui import CHROMIUM_ARGS, BenchError, find_chromium
from hub.runtime import RunningHub

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
PAGES = [("commander", "commander", None, "#conn[data-state=online]"),
         ("department", "department", "fire", "#conn[data-state=online]"),
         ("evaluator", "evaluator", None, '#obs-criterion option[value="field_operations"]')]


async def test_pages_run_under_the_csp(running_hub: RunningHub) -> None:
    try:
        exe = find_chromium(os.environ.get("COMMANDHUB_CHROMIUM"))
    except BenchError:
        pytest.skip("Debian's chromium is not installed")
    from playwright.async_api import async_playwright

    auth, now = running_hub.hub.authority, int(time.time())
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            for page_name, role, dept, ready in PAGES:
                ctx = await browser.new_context()
                page = await ctx.new_page()
                errors: list[str] = []
                page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error"
                        else None)
                await page.add_init_script(WATCH)
                token = auth.issue(role, now=now, dept=dept)  # type: ignore[arg-type]
                response: Any = await page.goto(f"{running_hub.url}/{page_name}?token={token}")
                assert "default-src 'none'" in (await response.all_headers())[
                    "content-security-policy"]
                await page.locator(ready).first.wait_for(state="attached", timeout=15000)
                await page.wait_for_timeout(500)
                assert await page.evaluate("window.__csp") == [], page_name
                assert not [e for e in errors if "Content Security Policy" in e], errors
                # an injected inline handler is refused: the policy is live and watched
                await page.evaluate("document.body.insertAdjacentHTML('beforeend', "
                                    "'<img src=\"/nothing.png\" onerror=\"window.__ran=1\">')")
                await page.wait_for_function("window.__csp.length > 0", timeout=5000)
                assert await page.evaluate("window.__ran === undefined")
                await ctx.close()
        finally:
            await browser.close()
