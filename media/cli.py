"""`commandhub wall-preview`, `record verify` and the media benchmarks (`bench wall|health|record`)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("wall-preview", help="render the video wall of synthetic feeds to a PNG")
    p.add_argument("--layout", default="4x4", help="1, 2x2, 3x3, 4x4 or spotlight")
    p.add_argument("--size", default="1280x720", help="WxH")
    p.add_argument("--out", default="wall.png")
    p.set_defaults(handler=cmd_wall_preview)
    rec = sub.add_parser("record", help="recordings: check them against the log")
    rsub = rec.add_subparsers(dest="record_cmd", required=True)
    v = rsub.add_parser("verify", help="check every recording against the log's media.recording "
                        "hashes; report duration and frames; exit 1 on any problem")
    v.add_argument("dir", help="the data folder, or its recordings folder (the log beside it)")
    v.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    v.set_defaults(handler=cmd_record_verify)
    from media import cli_ingest

    cli_ingest.register(sub)


def register_bench(bench_sub: Any) -> None:
    w = bench_sub.add_parser("wall", help="video wall: compose 16 tiles; whole path CPU share")
    w.add_argument("--frames", type=int, default=600, help="frames for the compose timing")
    w.add_argument("--seconds", type=float, default=10.0, help="wall time of the whole path")
    w.add_argument("--fps", type=float, default=15.0, help="wall output frame rate")
    w.add_argument("--json", action="store_true", help="last line: one JSON object")
    w.set_defaults(handler=cmd_bench_wall)
    h = bench_sub.add_parser("health", help="stream health analysis per sampled frame")
    h.add_argument("--frames", type=int, default=2000)
    h.add_argument("--json", action="store_true", help="last line: one JSON object")
    h.set_defaults(handler=cmd_bench_health)
    r = bench_sub.add_parser("record", help="recording 16 feeds (remux, segments, SHA-256): CPU share")
    r.add_argument("--seconds", type=float, default=20.0, help="seconds of media per feed")
    r.add_argument("--segment", type=float, default=5.0, help="segment length in seconds")
    r.add_argument("--json", action="store_true", help="last line: one JSON object")
    r.set_defaults(handler=cmd_bench_record)


def _size(text: str) -> tuple[int, int]:
    from hub.cli import CliError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CliError(f"bad size {text!r}; expected WxH, e.g. 1280x720") from None
    return w, h


def cmd_wall_preview(args: argparse.Namespace) -> int:
    import cv2

    from hub.cli import CliError
    from media.bench import _names, source_frames
    from media.wall import VideoWall, WallError

    feeds = source_frames(1)
    ids = list(feeds)
    try:
        wall = VideoWall(args.layout, size=_size(args.size), names=_names(), order=ids)
    except WallError as exc:
        raise CliError(str(exc)) from None
    for i, d in enumerate(ids):
        wall.update(d, feeds[d][0])
        wall.set_state(d, online=i < 12, frozen=i == 1, overdue=i == 4, lost=i == 2)
    if not cv2.imwrite(args.out, wall.compose("2025-06-01 14:03:22")):
        raise CliError(f"cannot write {args.out}", 1)
    print(args.out)
    return 0


def cmd_record_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub.cli import CliError
    from media.verify import VerifyError, verify_recordings

    try:
        report = verify_recordings(Path(args.dir))
    except VerifyError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, sort_keys=True))
        return 0 if report.ok else 1
    chain = report.log_problem or "hash chain ok"
    print(f"log: {report.log}, {report.log_events} events, {chain}")
    for f in report.files:
        media = (f"{f.codec} {f.duration_s:.3f} s {f.frames} frames index {f.index}"
                 if f.codec is not None else "-")
        logged = f"session {f.session} part {f.part} (seq {f.seq})" if f.seq is not None else "not logged"
        print(f"{'ok' if f.status == 'ok' else 'PROBLEM':8} {f.path}  {media}  {logged}")
        for problem in f.problems:
            print(f"         {problem}")
    counts = report.counts()
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if k not in ("files", "ok"))
    bad = counts["files"] - counts["ok"]
    print(f"summary: {counts['files']} files, {counts['ok']} ok, {bad} with problems"
          + (f" ({kinds})" if kinds else "") + ("" if report.log_problem is None else "; the log is broken"))
    return 0 if report.ok else 1


def _finish(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in result.items()}, sort_keys=True))
    return 0


def cmd_bench_wall(args: argparse.Namespace) -> int:
    from media import bench

    result = bench.bench_compose(args.frames)
    print(
        f"wall compose: 16 tiles (320x240 sources) into 1280x720, every tile with a new frame: "
        f"{result['compose_ms']:.2f} ms mean, {result['compose_p95_ms']:.2f} ms p95 "
        f"(target <= 4 ms); one tile changed: {result['compose_idle_ms']:.2f} ms"
    )
    path = bench.bench_wall_path(args.seconds, args.fps)
    print(
        f"wall path: decode 16 VP8 320x240@15 + compose + encode VP8 1280x720@{args.fps:g} for "
        f"{path['wall_seconds']:.1f} s: {path['wall_cpu_pct']:.1f}% of one core (target <= 35%) "
        f"[decode+scale {path['wall_decode_pct']:.1f}%, "
        f"compose+yuv {path['wall_compose_pct']:.1f}%, encode {path['wall_encode_pct']:.1f}%; "
        f"{path['wall_kbps']:.0f} kbit/s; {path['wall_late_ticks']:.0f} ticks late]"
    )
    return _finish(args, {**result, **path})


def cmd_bench_health(args: argparse.Namespace) -> int:
    from media import bench

    result = bench.bench_health(args.frames)
    print(
        f"health: per sampled 320x240 frame {result['health_ms']:.3f} ms (BGR), "
        f"{result['health_gray_ms']:.3f} ms (gray), {result['health_from_av_ms']:.3f} ms "
        f"(av yuv420p luma plane + analysis); p95 {result['health_p95_ms']:.3f} ms "
        "(target <= 0.5 ms)"
    )
    return _finish(args, result)


def cmd_bench_record(args: argparse.Namespace) -> int:
    from media import bench

    result = bench.bench_record(args.seconds, args.segment)
    print(
        f"record: 16 VP8 feeds 320x240@15 remuxed to webm, {args.segment:g} s segments, SHA-256 on "
        f"close: {result['record_cpu_pct']:.2f}% of one core to record all 16 in real time "
        f"({result['record_segments']:.0f} segments, {result['record_mb']:.1f} MB, "
        f"{result['record_errors']:.0f} errors); handing a frame to the worker: "
        f"{result['record_submit_us']:.1f} us on the event loop"
    )
    return _finish(args, result)
