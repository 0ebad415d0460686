"""`commandhub bench replay`: seek time of the replay page (cursor move -> every tile showing the
new moment) on a long synthetic recorded drill, in Debian's headless Chromium."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from media.encoded import RECORD_KEYFRAME_S

TARGET_SEEK_P95_MS = 500.0
OP = "drill-bench-replay"


def make_drill(data: Path, minutes: int, departments: int, part_s: int, fps: int,
               keyframe_s: float) -> dict[str, Any]:
    """A drill of `minutes` with `departments` feeds recorded in `part_s` parts, commands every
    30 s and link stats every 5 s per feed. Every file is a hard link to one encoded part (so
    hashes and sizes match the log; the browser still fetches and decodes each tile on its own;
    the stamps are not checked here). Reused when `data` already has it."""
    from media.record import sha256_file
    from media.replaydrill import encode_part, link_or_copy
    from scoring.synth import T0_US, LogBuilder, S, default_roster

    if (data / "events.db").is_file():
        return {"made_s": 0.0, "reused": True}
    t = time.monotonic()
    rec = data / "recordings"
    rec.mkdir(parents=True)
    roster = default_roster()[:departments]
    b = LogBuilder(op=OP, roster=roster, title="回放基准：60 分钟演练")
    b.start(participants=[d.id for d in roster])
    parts = max(1, minutes * 60 // part_s)
    source = rec / "source.webm"  # one encoded part, shared by every file (encoding is slow)
    frames = encode_part(source, part_s, fps, keyframe_s, 1, T0_US // 1000)
    size, sha = source.stat().st_size, sha256_file(source)
    for d in roster:
        b.publish(0.2, d.id, session=f"s-{d.id}")
        for p in range(parts):
            name = f"{d.id}-20260601T010000.000Z-{p + 1:03d}.webm"
            link_or_copy(source, rec / name)
            start = 0.2 + p * part_s
            b.add(start + part_s + 0.3, "hub", None, "media.recording", {
                "dept": d.id, "path": f"recordings/{name}", "sha256": sha, "size": size,
                "codec": "VP8", "session": f"{d.id}-20260601T010000.000Z", "part": p + 1,
                "frames": frames, "start_ts_us": T0_US + int(start * S),
                "end_ts_us": T0_US + int((start + part_s - 1 / fps) * S),
                "duration_s": float(part_s), "last_s": round(part_s - 1 / fps, 6)})
        for s in range(0, minutes * 60, 5):
            b.add(s + 0.1, "hub", None, "link.stats", {"dept": d.id, "track": "video", "fps": fps,
                                                        "bitrate_kbps": 300, "loss_pct": 0,
                                                        "rtt_ms": 1, "freezes": 0})
    for c in range(minutes * 2):
        cid = f"C{c + 1}"
        targets = [roster[(c + i) % len(roster)].id for i in range(3)]
        b.issue(c * 30 + 1, cid, targets)
        for i, dept in enumerate(targets):
            b.respond(c * 30 + 5 + i, "acknowledged", cid, dept)
    b.end(minutes * 60)
    b.write(data / "events.db")
    source.unlink()
    return {"made_s": round(time.monotonic() - t, 1), "reused": False}


async def measure(data: Path, seeks: int, chromium: str | None, seed: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from hub.bench_ui import CHROMIUM_ARGS, find_chromium, nearest_rank
    from hub.replay.web import replay_app

    token = secrets.token_urlsafe(16)
    runner = web.AppRunner(replay_app(data, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=find_chromium(chromium),
                                               args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1600, "height": 1000})
                t0 = time.monotonic()
                await page.goto(f"http://127.0.0.1:{port}/replay?op={OP}&token={token}")
                await page.wait_for_function("() => document.body.dataset.ready === '1'",
                                             timeout=60_000)
                first = await page.evaluate("() => chReplay.settled(30000)")
                load_ms = (time.monotonic() - t0) * 1000
                state = await page.evaluate("() => chReplay.state()")
                span = await page.evaluate("() => fetch(location.href.replace('/replay', "
                                           "'/api/replay')).then(r => r.json())"
                                           ".then(m => [m.start_us, m.end_us])")
                rng = random.Random(seed)
                far: list[float] = []
                near: list[float] = []
                failed = 0
                opens: list[float] = []  # cursor move -> the last new file's metadata
                decodes: list[float] = []  # the slowest tile's seek (decoding from a key frame)
                each: list[tuple[str, float, int]] = []  # (far/near, ms, frames the page decoded)
                decoded = 0
                at = span[0] + 2_000_000
                for i in range(seeks):
                    if i % 2 == 0:  # anywhere in the drill: mostly another part of every feed
                        at = rng.randrange(span[0] + 1_000_000, span[1] - 1_000_000)
                    else:  # a few seconds on: usually the same parts
                        at = min(at + rng.randrange(500_000, 5_000_000), span[1] - 1_000_000)
                    ok, ms, ph = await page.evaluate(
                        "async (t) => { const t0 = performance.now(); const ok = await "
                        "chReplay.seek(t); return [ok, performance.now() - t0, "
                        "chReplay.phases(t0)]; }", at)
                    failed += 0 if ok else 1
                    (far if i % 2 == 0 else near).append(ms)
                    if ph["opened"]:
                        opens.append(ph["open_ms"])
                    decodes.append(ph["seek_ms"])
                    each.append(("far" if i % 2 == 0 else "near", round(ms), ph["decoded"] - decoded))
                    decoded = ph["decoded"]
                both = sorted(far + near)
                last = (await page.evaluate("() => chReplay.state()"))["tiles"]
                tiles = sum(1 for x in last if x["rec"])
                by_page = sum(1 for x in last if x["rec"] and x["player"] == "frames")
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    far.sort()
    near.sort()
    return {"seek_ms_p50": round(nearest_rank(both, 50), 1),
            "seek_ms_p95": round(nearest_rank(both, 95), 1),
            "seek_ms_max": round(both[-1], 1),
            "far_seek_ms_p95": round(nearest_rank(far, 95), 1) if far else None,
            "near_seek_ms_p95": round(nearest_rank(near, 95), 1) if near else None,
            "open_ms_p95": round(nearest_rank(sorted(opens), 95), 1) if opens else None,
            "tile_seek_ms_p95": round(nearest_rank(sorted(decodes), 95), 1) if decodes else None,
            "seeks": len(both), "seeks_timed_out": failed, "tiles": len(state["tiles"]),
            "tiles_playing_last": tiles, "tiles_decoded_by_page_last": by_page,
            "each_seek": each,
            "first_load_ms": round(load_ms, 1),
            "first_settled": bool(first)}


def export_seconds(data: Path, minutes: int) -> float:
    """Seconds to export the first `minutes` of the drill (`commandhub replay export`)."""
    from hub.replay.export import export

    with tempfile.TemporaryDirectory(prefix="commandhub-bench-clip-") as tmp:
        t = time.monotonic()
        export(data, OP, "+1", f"+{1 + minutes * 60}", Path(tmp) / "clip.mp4")
        return round(time.monotonic() - t, 1)


def run(args: argparse.Namespace) -> int:
    own = args.dir is None
    tmp = tempfile.TemporaryDirectory(prefix="commandhub-bench-replay-") if own else None
    data = Path(tmp.name if tmp is not None else args.dir) / "data"
    try:
        made = make_drill(data, args.minutes, args.departments, args.part_s, args.fps,
                          args.keyframe_s)
        figures = asyncio.run(measure(data, min(args.seeks, 500), args.chromium, args.seed))
        figures["export_s"] = export_seconds(data, args.export_minutes) \
            if args.export_minutes > 0 else None
    finally:
        if tmp is not None:
            tmp.cleanup()
    figures |= {"minutes": args.minutes, "departments": args.departments, "part_s": args.part_s,
                "fps": args.fps, "keyframe_s": args.keyframe_s, "drill": made,
                "export_minutes": args.export_minutes,
                "target_seek_ms_p95": TARGET_SEEK_P95_MS,
                "seek_ok": figures["seek_ms_p95"] <= TARGET_SEEK_P95_MS
                and figures["seeks_timed_out"] == 0}
    print(f"replay seek (cursor -> all {figures['tiles']} tiles at the new moment), "
          f"{figures['seeks']} seeks over a {args.minutes} min drill: p50 "
          f"{figures['seek_ms_p50']} ms, p95 {figures['seek_ms_p95']} ms (target <= "
          f"{TARGET_SEEK_P95_MS:.0f}), max {figures['seek_ms_max']} ms (p95 of its parts: "
          f"opening new files {figures['open_ms_p95']} ms, the slowest tile's seek "
          f"{figures['tile_seek_ms_p95']} ms); first load "
          f"{figures['first_load_ms']} ms; export of {args.export_minutes} min: "
          f"{figures['export_s']} s")
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0 if figures["seek_ok"] else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="last line: the figures as JSON")
    p.add_argument("--minutes", type=int, default=60, help="drill length (default 60)")
    p.add_argument("--departments", type=int, default=16, choices=range(1, 17),
                   metavar="1..16")
    p.add_argument("--part-s", type=int, default=60, help="recording part length (segment_s)")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--keyframe-s", type=float, default=RECORD_KEYFRAME_S,
                   help=f"key frame interval (default {RECORD_KEYFRAME_S:g}: the hub's "
                   "record keyframe_s)")
    p.add_argument("--seeks", type=int, default=40, help="cursor moves timed (bounded: <= 500)")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--export-minutes", type=int, default=5, help="clip exported for export_s "
                   "(0: none)")
    p.add_argument("--chromium", help="the browser (default: Debian's chromium)")
    p.add_argument("--dir", help="make (or reuse) the synthetic drill here")
    p.set_defaults(handler=run)


def register_bench(bench_sub: Any) -> None:
    """Adds `commandhub bench replay`."""
    add_arguments(bench_sub.add_parser(
        "replay", help="replay page seek time on a long synthetic recorded drill (Chromium)"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="commandhub bench replay")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
