"""Camera ingest: file URLs forwarded without re-encoding (VP8 and H264), lost/restored, bounded retries."""

from __future__ import annotations

import asyncio
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from hub.media_wiring import MEDIA_KEY
from media.encoded import EncodedPacket
from media.ingest import Ingest, IngestConfig, StreamInfo, redact_url, whole_frames
from media.source import DepartmentVideo
from tests.media.test_record import encode
from tests.mediawiring.conftest import IDS, wait_for

ROSTER = Path(__file__).resolve().parents[2] / "hub" / "roster.yaml"


def make_file(path: Path, dept: str, codec: str, seconds: float = 2.0, fps: int = 15) -> list[bytes]:
    """A stamped synthetic department clip; returns its encoded packets as stored."""
    source = DepartmentVideo(IDS.index(dept) + 1, dept)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.width, stream.height, stream.pix_fmt = 320, 240, pix_fmt
        stream.codec_context.gop_size = fps
        if codec == "libx264":
            stream.codec_context.options = {"bf": "0", "tune": "zerolatency", "preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(source.render(i, time.time()), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as back:
        return [bytes(p) for p in back.demux(video=0) if p.size]


def roster_with_source(tmp: Path, dept: str, url: str) -> str:
    lines = []
    for line in ROSTER.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith(f"- {{id: {dept},"):
            line = line.rstrip().removesuffix("}") + f", source: \"{url}\"}}"
        lines.append(line)
    path = tmp / "roster.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def payloads(h: Any, kind: str, dept: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in h.events() if e.kind == kind and e.payload.get("dept") == dept]


async def test_roster_source_lost_then_restored_and_forwarded_as_is(media_hub: Any, tmp_path: Path) -> None:
    clip = tmp_path / "water.webm"  # does not exist yet: the first attempts fail
    fast = {"ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 0.4}}
    h = await media_hub(config=fast, record=False,
                        roster=roster_with_source(tmp_path, "water", f"file://{clip}"))
    _, cmd_media = await h.join("center", publish=False, slots=4)
    await wait_for(lambda: payloads(h, "video.lost", "water"), 10)
    stored = set(make_file(clip, "water", "libvpx"))
    tap = h.running.runner.app[MEDIA_KEY].video.frame_tap("water")
    sub = tap.packets()
    await wait_for(lambda: payloads(h, "video.restored", "water"), 10)
    await wait_for(lambda: "water" in cmd_media.seen("video").values(), 10)
    forwarded = [(await sub.get()).data for _ in range(10)]
    sub.close()
    assert set(forwarded) <= stored  # the file's VP8 frames, byte for byte: no re-encoding
    connected = payloads(h, "ingest.connected", "water")[0]
    assert connected["passthrough"] is True and connected["codec"] == "VP8"
    lost, restored = payloads(h, "video.lost", "water"), payloads(h, "video.restored", "water")
    assert len(lost) == 1 and lost[0]["cause"] == "ingest"
    assert restored[0]["cause"] == "ingest" and restored[0]["was"] == "lost"


async def test_cli_ingest_of_an_h264_file_reaches_the_commander(media_hub: Any, tmp_path: Path) -> None:
    clip = tmp_path / "fire.mkv"
    make_file(clip, "fire", "libx264")
    h = await media_hub(record=False)
    _, cmd_media = await h.join("center", publish=False, slots=4, codec="video/H264")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "ingest", "--dept", "fire", str(clip), "--hub", h.url,
        "--token", h.token("commander"), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and b'"started": "fire"' in out
    await wait_for(lambda: "fire" in cmd_media.seen("video").values(), 15)
    connected = payloads(h, "ingest.connected", "fire")[0]
    assert connected["passthrough"] is True and connected["codec"] == "H264"
    assert payloads(h, "ingest.started", "fire")[0]["by"] == "commander"


async def test_failing_url_is_retried_with_bounded_backoff(media_hub: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    config = {"ingest": {"backoff_initial_s": 0.05, "backoff_max_s": 0.1, "max_attempts": 3}}
    h = await media_hub(config=config, record=False)
    await h.running.runner.app[MEDIA_KEY].start_ingest("power", f"file://{junk}")
    await wait_for(lambda: payloads(h, "ingest.stopped", "power"), 10)
    stopped = payloads(h, "ingest.stopped", "power")[0]
    assert stopped["reason"] == "gave_up" and stopped["attempts"] == 3
    assert len(payloads(h, "video.lost", "power")) == 1  # one outage, not one event per retry


def test_backoff_doubles_up_to_the_cap_and_urls_are_redacted() -> None:
    cfg = IngestConfig(backoff_initial_s=1.0, backoff_max_s=30.0)
    assert [cfg.backoff(n) for n in (1, 2, 3, 5, 6, 100)] == [1.0, 2.0, 4.0, 16.0, 30.0, 30.0]
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    with pytest.raises(ValueError):
        IngestConfig(backoff_initial_s=0)


async def test_other_codecs_are_transcoded_to_vp8(media_hub: Any, tmp_path: Path) -> None:
    clip = tmp_path / "weather.avi"
    make_file(clip, "weather", "mjpeg")
    h = await media_hub(record=False)
    _, cmd_media = await h.join("center", publish=False, slots=4)
    await h.running.runner.app[MEDIA_KEY].start_ingest("weather", f"file://{clip}")
    await wait_for(lambda: "weather" in cmd_media.seen("video").values(), 15)
    connected = payloads(h, "ingest.connected", "weather")[0]
    assert connected["passthrough"] is False and connected["codec"] == "VP8"
    assert connected["source_codec"] == "mjpeg"


def test_parts_of_one_frame_are_joined_and_forwarding_starts_at_a_key_frame() -> None:
    # (data, pts, keyframe) as FFmpeg's RTSP demuxer gives them for a gst-rtsp-server H264
    # camera: a delta frame first, then each IDR split in two parts with the same pts
    units = [(b"d0", 0, False), (b"I1a", 6000, True), (b"I1b", 6000, True), (b"d2", 12000, False),
             (b"d3", 18000, False), (b"I4a", 24000, True), (b"I4b", 24000, True)]
    assert list(whole_frames(units, hold=True)) == [
        (b"I1aI1b", 6000, True), (b"d2", 12000, False), (b"d3", 18000, False), (b"I4aI4b", 24000, True)]
    assert list(whole_frames(units[3:5], hold=True)) == []  # never a key frame: nothing to forward
    vp8 = [(b"d", 0, False), (b"k", 3000, True), (b"d", 6000, False)]
    assert list(whole_frames(vp8, hold=False)) == vp8[1:]  # VP8 frames come whole: not held


async def test_frames_arriving_before_the_feed_is_published_are_forwarded_once(media_hub: Any) -> None:
    """However the camera's frames and the publishing task interleave, each frame is forwarded once."""
    h = await media_hub(record=False)
    media = h.running.runner.app[MEDIA_KEY]
    clip = [EncodedPacket(f.data, f.pts, f.clock_rate, f.codec, f.keyframe, time.monotonic())
            for f in encode(45)]
    tap = media.video.frame_tap("fire")
    sub = tap.packets(max_items=1000)
    media.ingests["fire"] = Ingest("fire", "rtsp://127.0.0.1:9/cam", on_connected=lambda i: None,
                                   on_packet=lambda p: None, on_lost=lambda r: None)  # never run
    media._ingest_connected("fire", StreamInfo("rtsp://127.0.0.1:9/cam", "VP8", "vp8", True, 160, 120))
    for packet in clip[:20]:  # a burst: the camera's first frames come before publishing ran
        media._ingest_packet("fire", packet)
    await wait_for(lambda: media.video.video_source("fire") is not None, 5)
    for packet in clip[20:]:
        media._ingest_packet("fire", packet)
        await asyncio.sleep(0)
    got = [await asyncio.wait_for(sub.get(), 5) for _ in clip]
    sub.close()
    assert [p.pts for p in got] == [p.pts for p in clip]
    assert media.video.video_source("fire").frames == len(clip)
    await media.stop_ingest("fire")
