"""Media benchmarks (wall compose, whole wall path, health); figures printed, never asserted."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

N_FEEDS = 16
SOURCE_SIZE = (320, 240)
SOURCE_FPS = 15


def _ms(values: list[float]) -> tuple[float, float]:
    """Mean and 95th percentile in milliseconds of durations in seconds."""
    s = sorted(values)
    return statistics.fmean(s) * 1e3, s[min(len(s) - 1, round(0.95 * (len(s) - 1)))] * 1e3


def source_frames(n_frames: int, size: tuple[int, int] = SOURCE_SIZE) -> dict[str, list[np.ndarray]]:
    """BGR frames of the 16 default departments' synthetic sources (moving bar, clock, stamp)."""
    from hub.roster import load_roster
    from media.source import DepartmentVideo

    roster = load_roster()
    out: dict[str, list[np.ndarray]] = {}
    for i, dept in enumerate(roster.departments[:N_FEEDS]):
        src = DepartmentVideo(i + 1, dept.name_zh, dept.name_en, width=size[0], height=size[1])
        out[dept.id] = [
            cv2.cvtColor(src.render(k, 1.7e9 + k / SOURCE_FPS), cv2.COLOR_RGB2BGR) for k in range(n_frames)
        ]
    return out


def _names() -> dict[str, str]:
    from hub.roster import load_roster

    return {d.id: d.name_zh for d in load_roster().departments}


def bench_compose(frames: int = 600, size: tuple[int, int] = (1280, 720)) -> dict[str, Any]:
    """Per output frame: 16 new source frames scaled into their tiles + compose (worst case)."""
    from media.wall import VideoWall

    feeds = source_frames(30)
    ids = list(feeds)
    wall = VideoWall("4x4", size=size, names=_names(), order=ids)
    for i, d in enumerate(ids):
        wall.set_state(d, online=True, frozen=i == 3, overdue=i == 7)
    full: list[float] = []
    only: list[float] = []
    for k in range(frames):
        clock = f"2025-06-01 14:{k // 900 % 60:02d}:{k // 15 % 60:02d}"
        t0 = time.perf_counter()
        for d in ids:
            wall.update(d, feeds[d][k % 30])
        wall.compose(clock)
        t1 = time.perf_counter()
        wall.set_state(ids[k % 16], lost=bool(k % 2))  # one tile changes state
        wall.compose(clock)
        t2 = time.perf_counter()
        full.append(t1 - t0)
        only.append(t2 - t1)
    mean, p95 = _ms(full)
    only_mean, _ = _ms(only)
    return {"compose_ms": mean, "compose_p95_ms": p95, "compose_idle_ms": only_mean}


def encode_streams(feeds: dict[str, list[np.ndarray]], bitrate: int = 300_000) -> dict[str, list[Any]]:
    """VP8 packets per feed (PyAV libvpx, realtime), first packet a keyframe, for looping."""
    import av

    out: dict[str, list[Any]] = {}
    for dept, frames in feeds.items():
        h, w = frames[0].shape[:2]
        enc = _vp8_encoder(w, h, bitrate)
        packets: list[Any] = []
        for k, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            frame.pts = k
            frame.time_base = Fraction(1, SOURCE_FPS)
            packets += list(enc.encode(frame))
        packets += list(enc.encode(None))
        out[dept] = packets
    return out


def _vp8_encoder(w: int, h: int, bitrate: int) -> Any:
    """A libvpx encoder configured like aiortc 1.16's Vp8Encoder (realtime, CBR, cpu-used -6)."""
    import av

    enc: Any = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.bit_rate = bitrate
    enc.time_base = Fraction(1, SOURCE_FPS)
    enc.framerate = Fraction(SOURCE_FPS, 1)
    enc.gop_size = 3000
    # aiortc uses 1 thread below 3 CPUs for 720p; libvpx's worker threads spin-wait and burn
    # several times the CPU when the cores are shared (measured ~10x here with the default)
    enc.thread_count = 1
    enc.qmin, enc.qmax = 2, 56
    enc.options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    return enc


def bench_wall_path(
    seconds: float = 10.0,
    fps: float = 15.0,
    size: tuple[int, int] = (1280, 720),
    decode_threads: int = 1,
) -> dict[str, Any]:
    """Decode 16 VP8 feeds at their rate, compose, encode one VP8 wall stream, paced in real
    time for `seconds`; CPU share of one core = process CPU time / wall time (all threads)."""
    import av

    from media.frames import to_bgr, to_video_frame
    from media.wall import VideoWall

    feeds = source_frames(SOURCE_FPS * 2)
    packets = encode_streams(feeds)
    ids = list(feeds)
    decoders: dict[str, Any] = {}
    for d in ids:
        decoders[d] = av.CodecContext.create("libvpx", "r")
        decoders[d].thread_count = decode_threads
    wall = VideoWall("4x4", size=size, names=_names(), order=ids)
    for d in ids:
        wall.set_state(d, online=True)
    enc = _vp8_encoder(size[0], size[1], 1_500_000)
    enc.time_base = Fraction(1, round(fps))
    per_step = {"decode": 0.0, "compose": 0.0, "encode": 0.0}  # CPU seconds (all threads)
    out_bytes = 0
    ticks = int(seconds * fps)
    late = 0
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for k in range(ticks):
        due = start_wall + k / fps
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        else:
            late += 1
        t0 = time.process_time()
        # sources at SOURCE_FPS: decode the packets that fell due since the previous tick
        n_src = int((k + 1) * SOURCE_FPS / fps) - int(k * SOURCE_FPS / fps)
        for d in ids:
            for j in range(n_src):
                idx = (int(k * SOURCE_FPS / fps) + j) % len(packets[d])
                for frame in decoders[d].decode(packets[d][idx]):
                    wall.update(d, to_bgr(frame))
        t1 = time.process_time()
        vf = to_video_frame(wall.compose(time.strftime("%Y-%m-%d %H:%M:%S")))
        vf.pts = k
        vf.time_base = enc.time_base
        t2 = time.process_time()
        for p in enc.encode(vf):
            out_bytes += p.size
        t3 = time.process_time()
        per_step["decode"] += t1 - t0
        per_step["compose"] += t2 - t1
        per_step["encode"] += t3 - t2
    elapsed = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    return {
        "wall_cpu_pct": 100.0 * cpu / elapsed,
        "wall_decode_pct": 100.0 * per_step["decode"] / elapsed,
        "wall_compose_pct": 100.0 * per_step["compose"] / elapsed,
        "wall_encode_pct": 100.0 * per_step["encode"] / elapsed,
        "wall_kbps": out_bytes * 8 / elapsed / 1000,
        "wall_seconds": elapsed,
        "wall_late_ticks": late,
    }


def bench_health(frames: int = 2000) -> dict[str, Any]:
    """Health analysis per sampled 320x240 frame: BGR input, gray input, and av -> gray."""
    import av

    from media.frames import to_gray
    from media.health import FeedHealth, HealthConfig

    feeds = source_frames(30)
    imgs = next(iter(feeds.values()))
    grays = [cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) for i in imgs]
    avf = [av.VideoFrame.from_ndarray(i, format="bgr24").reformat(format="yuv420p") for i in imgs]
    cfg = HealthConfig()

    def run(inputs: list[Any], prep: Callable[[Any], np.ndarray]) -> list[float]:
        feed = FeedHealth("bench", cfg)
        times = []
        for k in range(frames):
            t0 = time.perf_counter()
            feed.observe(k / cfg.sample_fps, prep(inputs[k % len(inputs)]))
            times.append(time.perf_counter() - t0)
        return times

    run(imgs, lambda x: x)  # warm up
    bgr_mean, bgr_p95 = _ms(run(imgs, lambda x: x))
    gray_mean, _ = _ms(run(grays, lambda x: x))
    av_mean, _ = _ms(run(avf, to_gray))
    return {
        "health_ms": bgr_mean,
        "health_p95_ms": bgr_p95,
        "health_gray_ms": gray_mean,
        "health_from_av_ms": av_mean,
    }


def bench_record(seconds: float = 20.0, segment_s: float = 5.0) -> dict[str, Any]:
    """Remux 16 VP8 feeds (320x240@15, ~300 kbit/s) into segments with SHA-256 on close: CPU
    seconds (both threads) per second of recorded media (not paced: the files get `seconds` of
    media each), and the cost per frame of handing it to the media worker (the event loop's part)."""
    import tempfile

    from media.encoded import EncodedPacket
    from media.record import MediaError, MediaWorker, Segment, SegmentRecorder

    feeds = source_frames(SOURCE_FPS * 2)
    packets = encode_streams(feeds)
    clock = 90000
    segments: list[Segment] = []
    errors: list[MediaError] = []
    n = int(seconds * SOURCE_FPS)
    with tempfile.TemporaryDirectory() as tmp:
        recs = {
            d: SegmentRecorder(
                tmp,
                d,
                on_segment=segments.append,
                on_error=errors.append,
                to_log_us=lambda t: round(t * 1e6),
                max_segment_s=segment_s,
            )
            for d in feeds
        }
        # loop the 2 s of packets; every loop starts with a key frame, so segments can roll over
        frames = {
            d: [
                EncodedPacket(
                    bytes(p), k * clock // SOURCE_FPS, clock, "VP8", bool(p.is_keyframe), k / SOURCE_FPS
                )
                for k, p in enumerate(packets[d][j % len(packets[d])] for j in range(n))
            ]
            for d in feeds
        }
        worker = MediaWorker("bench-record", max_backlog=n * len(recs) + 1)
        c0, w0 = time.process_time(), time.perf_counter()
        submit = 0.0
        for k in range(n):
            s0 = time.perf_counter()
            for d, rec in recs.items():
                worker.submit(rec.push, frames[d][k])  # as the hub does, on its event loop
            submit += time.perf_counter() - s0
        for rec in recs.values():
            worker.call(rec.end_session)
        worker.call(lambda: None).result()
        worker.stop()
        cpu, elapsed = time.process_time() - c0, time.perf_counter() - w0
        size = sum(s.size for s in segments)
    return {
        "record_cpu_pct": 100.0 * cpu / seconds,
        "record_segments": len(segments),
        "record_errors": len(errors),
        "record_mb": size / 1e6,
        "record_elapsed_s": elapsed,
        "record_submit_us": submit / (n * len(recs)) * 1e6,
    }
