"""The replay page in Debian's headless Chromium, served by `commandhub replay DIR` from a recorded
drill's folder mounted read-only (no hub running): every tile shows the frame the bots stamped at
the cursor's hub time (read from the <video> through a canvas), jumps go to the next event, and a
#seq link of the scorecard PDF (read back with pypdf) opens the same moment."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest
from pypdf import PdfReader

from hub.roster import load_roster
from media.stamp import read_frame_stamp
from scoring.rubric import bundled
from tests.replay.conftest import OP, PUBLISHERS, ROOT, Drill, ReplayServer

pytestmark = pytest.mark.asyncio(loop_scope="package")
IDS = load_roster().ids
TIME_MOD = 1 << 36
SLACK_MS = 2  # rounding: the stamp and WebM's block times are in ms


def signed(ms: int) -> int:
    """A difference of stamped times (kept modulo 2**36 ms) as a signed number."""
    ms %= TIME_MOD
    return ms if ms < TIME_MOD // 2 else ms - TIME_MOD


async def open_page(browser: Any, url: str, server: ReplayServer) -> tuple[Any, Any, list[str]]:
    ctx = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(url)
    await page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20_000)
    return ctx, page, errors


@functools.cache
def decoded(path: Path) -> list[tuple[float, int, int]]:
    """(media time, stamped frame number, stamped send time in ms) of every frame of a
    recording, decoded with PyAV."""
    out = []
    with av.open(str(path)) as c:
        base = c.streams.video[0].time_base
        for f in c.decode(video=0):
            stamp = read_frame_stamp(f)
            out.append((float(f.pts * base), stamp.frame, stamp.time_ms))
    return out


def expected_frame(drill: Drill, dept: str,
                   t_us: int) -> tuple[str, float, dict[int, float], dict[int, int]] | None:
    """The recording of `dept` at hub time `t_us` by the log (media time 0 at the earlier of its
    first and last frame's arrival minus their media time, docs/replay.md), the media time
    that is then, its frames' media times by stamped frame number (decoded with PyAV), and by
    frame number how much later its stamped send time is than its media time says, next to
    the first or the last frame (the larger), in ms: the sender's two clocks apart (its stamp
    is taken just after the media time; on a loaded machine a pause can come between)."""
    for e in drill.events:
        p = e.payload
        if e.kind != "media.recording" or p["dept"] != dept:
            continue
        origin = min(p["start_ts_us"], p["end_ts_us"] - round(p["last_s"] * 1e6))
        t = (t_us - origin) / 1e6
        if 0 <= t < p["duration_s"]:
            got = decoded(drill.data / p["path"])
            frames = {n: pts for pts, n, _ in got}
            off = {n: ms - round(pts * 1000) for pts, n, ms in got}
            ref = (off[got[0][1]], off[got[-1][1]])
            late = {n: max(signed(o - ref[0]), signed(o - ref[1])) for n, o in off.items()}
            return Path(p["path"]).name, t, frames, late
    return None


async def check_stamps(page: Any, drill: Drill, t_us: int) -> set[str]:
    """Each tile shows, at `t_us`, a frame of the recording the log's times put there: the frame
    due then or its neighbour, or one taken (by its media time) at most one frame interval
    before (a lagging sender bunches frames), never a later one; its stamp read through a
    canvas in the page, never stamped after the moment (beyond what the sender's clocks were
    apart by, read from the file itself). Returns the departments checked."""
    state = await page.evaluate("chReplay.state()")
    assert abs(state["t_us"] - t_us) < 1, (state["t_us"], t_us)
    stamps = await page.evaluate("chReplay.stamps()")
    frame_s = state["frame_us"] / 1e6
    checked = set()
    for tile in state["tiles"]:
        want = expected_frame(drill, tile["dept"], t_us)
        if want is None:
            assert tile["rec"] is None, (tile, t_us)
            continue
        name, t, frames, late = want
        assert tile["rec"] == name, (tile, want[:2])
        stamp = stamps[tile["dept"]]
        assert stamp is not None, (tile, t_us)
        assert stamp["dept"] == IDS.index(tile["dept"]) + 1, (tile, stamp)
        order = sorted(frames.values())
        shown = frames[stamp["frame"]]
        due = sum(1 for pts in order if pts <= t + 1e-6) - 1  # the frame on screen at t
        apart = abs(order.index(shown) - due)  # frames between what is shown and what is due
        assert shown <= t + 0.001, (tile["dept"], stamp, t, shown)  # never a later frame
        assert apart <= 1 or t - shown <= frame_s + 0.001, (tile["dept"], stamp, t, shown, apart)
        # sent before it is shown: media time 0 is at a hub time no earlier than the first or
        # the last frame was sent (each arrived after it was sent), so a frame stamped d ms
        # later than its media time says (next to those two) may look up to d ms late
        behind = signed((t_us // 1000) - stamp["time_ms"])
        allowed = SLACK_MS + max(0, late[stamp["frame"]])
        assert behind >= -allowed, (tile["dept"], behind, allowed, t_us)
        checked.add(tile["dept"])
    return checked


@pytest.mark.parametrize("player", ["frames", "video"])
async def test_five_logged_moments_show_the_stamped_frames(browser: Any, drill: Drill,
                                                           replay_server: ReplayServer,
                                                           player: str) -> None:
    """Tiles decoded by the page (WebCodecs: the frame index and Range) and, with
    &player=video (a browser without WebCodecs), one <video> per tile."""
    url = replay_server.url + ("&player=video" if player == "video" else "")
    ctx, page, errors = await open_page(browser, url, replay_server)
    try:
        issued = drill.seq_of("command.issued")
        moments = [issued.ts_us, drill.seq_of("command.acknowledged", "police").ts_us,
                   drill.seq_of("command.acknowledged", "water").ts_us,
                   drill.seq_of("command.on_scene", "police").ts_us]
        ended = drill.seq_of("operation.ended").ts_us
        moments.append((moments[-1] + ended) // 2)  # after fire left
        seen: list[set[str]] = []
        for t_us in moments:
            assert await page.evaluate(f"chReplay.seek({t_us})") is True
            seen.append(await check_stamps(page, drill, t_us))
            shown = (await page.evaluate("chReplay.state()"))["tiles"]
            assert {x["player"] for x in shown if x["rec"]} == {player}, shown
        assert seen[0] == set(PUBLISHERS), seen  # all four were on at the command
        assert "fire" not in seen[-1] and {"police", "water", "power"} <= seen[-1]
        fire = page.locator(".rp-tile[data-dept=fire] .rp-over")
        # gap causes from the log, worded in the page's language (zh by default)
        assert "视频流结束" in (await fire.inner_text())
        assert await fire.get_attribute("data-cause") == "feed_ended"
        never = page.locator(".rp-tile[data-dept=health120]")
        assert await never.get_attribute("data-state") == "gap"
        assert "尚未接入视频" in (await never.inner_text())
        # the log shows the entries around the cursor with their seq
        assert await page.locator(".rp-entry").count() > 5
        # frame step: one frame on shows the next stamped frame
        before = await page.evaluate("chReplay.stamps()")
        await page.click("#rp-fwd")
        await page.wait_for_function("() => chReplay.settled(100)")
        state = await page.evaluate("chReplay.state()")
        await check_stamps(page, drill, round(state["t_us"]))
        after = await page.evaluate("chReplay.stamps()")
        assert after["police"]["frame"] == (before["police"]["frame"] + 1) % 65536
        assert errors == []
    finally:
        await ctx.close()


async def test_jump_to_next_event_and_click_in_the_log(browser: Any, drill: Drill,
                                                       replay_server: ReplayServer) -> None:
    ctx, page, errors = await open_page(browser, replay_server.url, replay_server)
    try:
        ack = drill.seq_of("command.acknowledged", "police")
        on_scene = drill.seq_of("command.on_scene", "police")
        await page.select_option("#rp-kind", "stage")
        await page.select_option("#rp-dept", "police")
        await page.click("#rp-next")
        await page.wait_for_function(f"() => chReplay.state().t_us === {ack.ts_us}")
        assert await page.evaluate("chReplay.settled()") is True
        await check_stamps(page, drill, ack.ts_us)
        assert f"seq={ack.seq}" in page.url
        await page.wait_for_selector(f".rp-entry.at[data-seq='{ack.seq}']")
        await page.click("#rp-next")
        await page.wait_for_function(f"() => chReplay.state().t_us === {on_scene.ts_us}")
        await page.click("#rp-prev")
        await page.wait_for_function(f"() => chReplay.state().t_us === {ack.ts_us}")
        # a click on a log entry moves the cursor to it
        issued = drill.seq_of("command.issued")
        await page.wait_for_selector(f".rp-entry[data-seq='{issued.seq}']")
        await page.click(f".rp-entry[data-seq='{issued.seq}']")
        await page.wait_for_function(f"() => chReplay.state().t_us === {issued.ts_us}")
        assert await page.evaluate("chReplay.settled()") is True
        await check_stamps(page, drill, issued.ts_us)
        # play at 2x for a moment: the cursor moves and the tiles follow
        await page.select_option("#rp-speed", "2")
        await page.click("#rp-play")
        await page.wait_for_function(f"() => chReplay.state().t_us > {issued.ts_us + 1_000_000}")
        await page.click("#rp-play")
        assert await page.evaluate("chReplay.settled()") is True
        assert errors == []
    finally:
        await ctx.close()


async def test_a_seq_link_in_the_scorecard_opens_that_moment(
        browser: Any, drill: Drill, replay_server: ReplayServer, tmp_path: Path) -> None:
    pdf = tmp_path / "scorecard.pdf"
    run = subprocess.run([sys.executable, "-m", "hub.cli", "score", "--log",
                          str(drill.data / "events.db"), "--rubric", str(bundled()), "--out",
                          str(pdf), "--replay-url", replay_server.base, "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: a failing grade is fine
    links = []
    for p in PdfReader(pdf).pages:
        for annot in p.get("/Annots") or []:
            action = annot.get_object().get("/A")
            if action is not None and "/URI" in action:
                links.append(str(action["/URI"]))
    ack = drill.seq_of("command.acknowledged", "water")
    wanted = f"{replay_server.base}/replay?op={OP}&seq={ack.seq}"
    assert wanted in links, [x for x in links if "seq=" in x][:20]
    assert all(re.fullmatch(rf"{re.escape(replay_server.base)}/replay\?op={OP}&seq=\d+", x)
               for x in links if "/replay" in x)
    # the page got its token as a cookie when first opened; the PDF's link carries none
    ctx, page, errors = await open_page(browser, replay_server.url, replay_server)
    try:
        await page.goto(wanted)
        await page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20_000)
        assert await page.evaluate("chReplay.settled()") is True
        await check_stamps(page, drill, ack.ts_us)
        await page.wait_for_selector(f".rp-entry.at[data-seq='{ack.seq}']")
        assert errors == []
    finally:
        await ctx.close()


async def test_the_server_wants_its_token(replay_server: ReplayServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{replay_server.base}/api/replay?op={OP}") as r:
            assert r.status == 401
        async with http.get(f"{replay_server.base}/api/replay?op={OP}&token=wrong") as r:
            assert r.status == 401
        async with http.get(f"{replay_server.base}/api/replay?op={OP}&token={replay_server.token}") as r:
            assert r.status == 200
            assert (await r.json())["log"]["verified"] is True


async def test_the_page_in_english(browser: Any, drill: Drill, replay_server: ReplayServer) -> None:
    ctx = await browser.new_context(viewport={"width": 1600, "height": 1000})
    await ctx.add_init_script("localStorage.setItem('commandhub.lang', 'en');")
    try:
        page = await ctx.new_page()
        await page.goto(replay_server.url)
        await page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20_000)
        shown = await page.evaluate("""() => [...document.querySelectorAll(
            '.rp-controls, .rp-log h2, .rp-tile .rp-name, .rp-tile .rp-over, #trust')]
            .map(e => e.innerText).join(' ')""")
        assert "Play" in shown and "No recording at this time" in shown, shown
        assert "not published yet" in shown, shown  # health120's gap cause, in English
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in shown), shown
    finally:
        await ctx.close()
