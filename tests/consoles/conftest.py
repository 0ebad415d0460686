"""Browser tests of the consoles: a real hub on loopback and Debian's headless Chromium (Playwright).

Chromium gets a fake camera and microphone, so department pages publish real WebRTC video to
the hub. Screenshots go to test-artifacts/consoles/.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hub.bench_ui import CHROMIUM_ARGS, BenchError, find_chromium
from hub.runtime import RunningHub, ServeOptions, start_hub

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "consoles"


def chromium_path() -> str | None:
    try:
        return find_chromium(os.environ.get("COMMANDHUB_CHROMIUM"))
    except BenchError:
        return None


async def launch_chromium() -> AsyncIterator[Any]:
    """Debian's headless Chromium under Playwright (skips the test when it is not installed)."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Debian's chromium is not installed (python3 -m hub.bootstrap test installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async for b in launch_chromium():
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0, ice_hosts=["127.0.0.1"]))
    try:
        yield running
    finally:
        await running.stop()


def issue(hub: RunningHub, role: str, dept: str | None = None) -> str:
    return hub.hub.authority.issue(role, now=int(time.time()), dept=dept)  # type: ignore[arg-type]


class Pages:
    """Opens console pages, each in its own browser context; records console errors."""

    def __init__(self, browser: Any, hub: RunningHub, test_name: str) -> None:
        self.browser, self.hub, self.test_name = browser, hub, test_name
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    async def open(self, page: str, role: str | None = None, dept: str | None = None, *,
                   token: str | None = None, label: str | None = None,
                   width: int = 1600, height: int = 900, lang: str | None = None,
                   rtc_tuning: dict[str, Any] | None = None, init_script: str | None = None) -> Any:
        """Open a console page in a fresh context; `lang` ("en"/"zh") is set before it loads,
        `rtc_tuning` shortens the page's media timeouts and backoff (window.chRtcTuning)."""
        ctx = await self.browser.new_context(viewport={"width": width, "height": height},
                                             accept_downloads=True)
        self.contexts.append(ctx)
        if lang is not None:
            await ctx.add_init_script(f"localStorage.setItem('commandhub.lang', {json.dumps(lang)});")
        if rtc_tuning is not None:
            await ctx.add_init_script(f"window.chRtcTuning = {json.dumps(rtc_tuning)};")
        if init_script is not None:
            await ctx.add_init_script(init_script)
        p = await ctx.new_page()
        name = label or dept or role or page
        p.on("pageerror", lambda e: self.errors.append(f"{name}: {e}"))
        p.on("console", lambda m: self.errors.append(f"{name}: {m.text}") if m.type == "error" else None)
        if token is None and role is not None:
            token = issue(self.hub, role, dept)
        url = f"{self.hub.url}/{page}" + (f"?token={token}" if token is not None else "")
        await p.goto(url)
        return p

    async def shot(self, page: Any, name: str) -> Path | None:
        """A screenshot for people to look at (test-artifacts/consoles/), when
        COMMANDHUB_TEST_SHOTS=1: no test reads them, and 40 of them cost the suite time."""
        if os.environ.get("COMMANDHUB_TEST_SHOTS") != "1":
            return None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}-{name}.png"
        await page.screenshot(path=str(path))
        return path

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def pages(browser: Any, hub: RunningHub, request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    p = Pages(browser, hub, request.node.name.removeprefix("test_"))
    try:
        yield p
    finally:
        await p.close()


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 10.0,
                     what: str = "condition") -> Any:
    """Poll a check (plain or async) until it returns something truthy."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


PLAYING_JS = """async (sel) => {
  const v = document.querySelector(sel);
  if (!v || !v.srcObject) return null;
  const t0 = v.currentTime;
  await new Promise(r => setTimeout(r, 400));
  return {before: t0, after: v.currentTime, width: v.videoWidth, height: v.videoHeight};
}"""


async def playing(page: Any, selector: str, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the <video> at `selector` plays: currentTime advances and videoWidth > 0."""
    async def check() -> Any:
        r = await page.evaluate(PLAYING_JS, selector)
        return r if r and r["after"] > r["before"] and r["width"] > 0 else None
    try:
        result: dict[str, Any] = await eventually(check, timeout, f"video {selector} playing")
    except AssertionError as exc:
        debug = await page.evaluate("() => window.chDebug ? window.chDebug() : null")
        raise AssertionError(f"{exc}; page WebRTC state: {debug}") from None
    return result
