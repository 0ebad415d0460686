"""Recording: remuxed VP8/H264 files read back with PyAV and ffprobe, sessions, hashes, errors, snapshots."""

from __future__ import annotations

import errno
import hashlib
import io
import threading
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import cv2
import numpy as np
import pytest

from media.encoded import EncodedPacket
from media.record import (
    FrameEncoder,
    MediaError,
    MediaWorker,
    MediaWriteError,
    Segment,
    SegmentRecorder,
    vp8_size,
    write_snapshot,
)
from tests.mediawiring.probe import ffprobe_recording

FPS = 15
CLOCK = 90000
T0_US = 1_780_000_000_000_000


def to_log_us(t: float) -> int:
    return T0_US + round(t * 1e6)


def picture(k: int, w: int = 160, h: int = 120) -> np.ndarray:
    img = np.full((h, w, 3), 60, np.uint8)
    x = (k * 5) % (w - 20)
    img[h // 3 : h // 3 + 20, x : x + 20] = (0, 200, 255)
    return img


def encode(n: int, codec: str = "libvpx", gop: int = FPS, w: int = 160, h: int = 120) -> list[EncodedPacket]:
    """n frames at 15 fps, a key frame every `gop` frames, as the hub's tap delivers them."""
    ctx: Any = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.gop_size = gop
    ctx.thread_count = 1
    if codec == "libvpx":
        ctx.options = {"deadline": "realtime", "lag-in-frames": "0"}
    else:
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "bframes": "0"}
    name = "VP8" if codec == "libvpx" else "H264"
    out: list[EncodedPacket] = []
    for k in range(n):
        frame = av.VideoFrame.from_ndarray(picture(k, w, h), format="bgr24").reformat(format="yuv420p")
        frame.pts = k
        frame.time_base = Fraction(1, FPS)
        for p in ctx.encode(frame):
            pts = int(p.pts or 0)
            out.append(
                EncodedPacket(bytes(p), pts * CLOCK // FPS, CLOCK, name, bool(p.is_keyframe), pts / FPS)
            )
    for p in ctx.encode(None):
        pts = int(p.pts or 0)
        out.append(EncodedPacket(bytes(p), pts * CLOCK // FPS, CLOCK, name, bool(p.is_keyframe), pts / FPS))
    return out


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return len(frames), (frames[0].width, frames[0].height)


class Sink:
    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.errors: list[MediaError] = []
        self.keyframe_requests = 0

    def recorder(self, directory: Path, **kw: Any) -> SegmentRecorder:
        return SegmentRecorder(
            directory,
            "police",
            on_segment=self.segments.append,
            on_error=self.errors.append,
            to_log_us=to_log_us,
            request_keyframe=self.request,
            **kw,
        )

    def request(self) -> None:
        self.keyframe_requests += 1


def test_vp8_segments_roll_over_at_keyframes(tmp_path: Path) -> None:
    packets = encode(45)
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=1.0)
    for p in packets:
        rec.push(p)
    rec.close()
    assert [s.frames for s in sink.segments] == [15, 15, 15]
    session = sink.segments[0].session
    assert session.startswith("police-") and session.endswith("Z")
    for i, seg in enumerate(sink.segments):
        assert seg.path.suffix == ".webm" and seg.path.parent == tmp_path
        assert seg.path.name == f"{session}-{i + 1:03d}.webm"
        assert seg.sha256 == hashlib.sha256(seg.path.read_bytes()).hexdigest()
        assert count_frames(seg.path) == (15, (160, 120))
        assert seg.start_ts_us == to_log_us(i * 1.0)
        assert seg.end_ts_us == to_log_us(i * 1.0 + 14 / FPS)
        assert seg.duration_s == pytest.approx(1.0)
        assert seg.payload(tmp_path) == {
            "dept": "police",
            "path": seg.path.name,
            "sha256": seg.sha256,
            "start_ts_us": seg.start_ts_us,
            "end_ts_us": seg.end_ts_us,
            "frames": 15,
            "size": seg.path.stat().st_size,
            "codec": "VP8",
            "session": session,
            "part": i + 1,
            "duration_s": 1.0,
            "last_s": round(14 / FPS, 6),
        }
    assert len({s.path for s in sink.segments}) == 3
    assert sink.errors == []


@pytest.mark.parametrize("codec", ["libvpx", "libx264"])
def test_files_play_at_the_speed_they_were_sent(tmp_path: Path, codec: str) -> None:
    """15 s sent at 15 fps in the RTP clock (90 kHz) play 15 s, frame k at k/15 s."""
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in encode(225, codec=codec):
        rec.push(p)
    seg = rec.close()
    assert seg is not None and seg.duration_s == pytest.approx(15.0)
    with av.open(str(seg.path)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
        assert c.duration is not None and c.duration / 1e6 == pytest.approx(15.0, abs=0.07)
    assert len(times) == 225
    assert times == pytest.approx([k / FPS for k in range(225)], abs=0.002)
    assert seg.last_s == pytest.approx(times[-1], abs=0.001)  # the last frame's media time
    probe = ffprobe_recording(seg.path)
    assert probe.duration_s == pytest.approx(15.0, abs=0.07)
    assert probe.frames == 225 and probe.monotonic and probe.decode_errors == 0
    assert probe.codecs == [{"libvpx": "vp8", "libx264": "h264"}[codec]]


def later(packets: list[EncodedPacket], seconds: float) -> list[EncodedPacket]:
    """The same frames sent again by a new publisher: its clock starts at 0, `seconds` later."""
    return [replace(p, arrival=p.arrival + seconds) for p in packets]


def test_a_new_session_starts_a_new_file(tmp_path: Path) -> None:
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in encode(30):
        rec.push(p)
    first = rec.session
    rec.end_session()  # the publisher left: its file is closed now
    assert [s.frames for s in sink.segments] == [30] and not rec.recording and rec.session == ""
    for p in later(encode(15), 10.0):
        rec.push(p)
    rec.end_session()
    a, b = sink.segments
    assert a.session == first and b.session != first and a.part == b.part == 1
    assert b.start_ts_us == to_log_us(10.0) and b.frames == 15
    assert count_frames(b.path)[0] == 15 and ffprobe_recording(b.path).duration_s == pytest.approx(1.0)


def test_a_codec_change_or_a_restarted_clock_starts_a_new_part(tmp_path: Path) -> None:
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in [*encode(15), *later(encode(15, codec="libx264"), 1.0), *later(encode(15), 2.0)]:
        rec.push(p)
    rec.close()
    assert [(s.codec, s.part, s.frames, s.path.suffix) for s in sink.segments] == [
        ("VP8", 1, 15, ".webm"), ("H264", 2, 15, ".mkv"), ("VP8", 3, 15, ".webm")]
    assert len({s.session for s in sink.segments}) == 1
    for seg in sink.segments:
        assert ffprobe_recording(seg.path).codecs == [seg.codec.lower()]


def test_a_frame_forwarded_twice_is_written_once(tmp_path: Path) -> None:
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in encode(30):
        rec.push(p)
        rec.push(p)
    seg = rec.close()
    assert seg is not None and seg.frames == 30 and rec.duplicates == 30
    probe = ffprobe_recording(seg.path)
    assert probe.frames == 30 and probe.repeated == 0


def test_waits_for_a_keyframe_and_asks_for_one(tmp_path: Path) -> None:
    packets = encode(30)
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in packets[3:]:  # joins mid-GOP
        rec.push(p)
    rec.close()
    assert sink.keyframe_requests == 1
    assert [s.frames for s in sink.segments] == [15]  # from the key frame at 1 s
    assert sink.segments[0].start_ts_us == to_log_us(1.0)


def test_an_unanswered_keyframe_request_is_sent_again(tmp_path: Path) -> None:
    packets = encode(76, gop=1000)[1:]  # joined after the only key frame: 5 s of delta frames
    sink = Sink()
    rec = sink.recorder(tmp_path)
    for p in packets:
        rec.push(p)
    assert sink.keyframe_requests == 3 and not rec.recording  # at 0.07, 2.07 and 4.07 s


def test_segment_length_is_bounded_by_keyframe_request(tmp_path: Path) -> None:
    packets = encode(45, gop=1000)  # a sender that sends no key frames unless asked
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=1.0)
    for p in packets:
        rec.push(p)
    assert sink.keyframe_requests == 1  # asked once when the segment reached 1 s
    assert rec.recording
    rec.close()
    assert [s.frames for s in sink.segments] == [45]


def test_a_key_frame_is_asked_for_when_the_seek_index_would_grow_sparse(tmp_path: Path) -> None:
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0, keyframe_s=2.0)
    for p in encode(150, gop=60):  # key frames at 0, 4 and 8 s
        rec.push(p)
    assert sink.keyframe_requests == 2  # at 2 and at 6 s (once each until a key frame came)
    assert [s.frames for s in sink.segments] == [] and rec.recording
    assert rec.close() is not None and ffprobe_recording(sink.segments[0].path).keyframes == 3


def test_h264_is_remuxed_into_matroska(tmp_path: Path) -> None:
    if "libx264" not in av.codecs_available:
        pytest.skip("no libx264 in this PyAV build")
    packets = encode(30, codec="libx264")
    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0)
    for p in packets:
        rec.push(p)
    seg = rec.close()
    assert seg is not None and seg.path.suffix == ".mkv"
    assert count_frames(seg.path) == (30, (160, 120))


def test_disk_full_is_reported_and_recording_resumes(tmp_path: Path) -> None:
    packets = encode(75)  # 5 s
    opened: list[Path] = []

    def opener(path: Path) -> IO[bytes]:
        opened.append(path)
        if len(opened) == 1:
            return open("/dev/full", "wb", buffering=0)  # every write: ENOSPC
        return path.open("wb")

    sink = Sink()
    rec = sink.recorder(tmp_path, max_segment_s=60.0, retry_after_s=2.0, opener=opener)
    for p in packets:
        rec.push(p)  # never raises
    rec.close()
    assert len(sink.errors) == 1
    err = sink.errors[0]
    assert err.errno == "ENOSPC" and err.name == "police" and err.op in ("open", "write")
    assert set(err.payload()) == {"dept", "path", "op", "errno", "message"}
    # the first write (t=0) failed: paused for 2 s, restarted at the key frame at 2 s
    assert len(sink.segments) == 1
    assert sink.segments[0].start_ts_us == to_log_us(2.0)
    assert count_frames(sink.segments[0].path)[0] == 45
    assert opened[1] != opened[0]


def test_unwritable_directory_reports_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    sink = Sink()
    rec = sink.recorder(blocker / "rec")
    for p in encode(5):
        rec.push(p)
    assert sink.segments == [] and len(sink.errors) == 1
    assert sink.errors[0].op == "open" and sink.errors[0].errno in ("ENOTDIR", "EEXIST")
    assert "recording police" in caplog.text


def test_failing_python_writer_does_not_raise(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def write(self, b: Any) -> int:
            if self.tell() > 200:
                raise OSError(errno.EIO, "I/O error")
            return super().write(b)

    sink = Sink()
    rec = sink.recorder(tmp_path, opener=lambda p: Broken())
    for p in encode(30):
        rec.push(p)
    rec.close()
    assert [e.errno for e in sink.errors][:1] == ["EIO"]
    assert sink.segments == []


def test_wall_frames_encoded_and_recorded(tmp_path: Path) -> None:
    enc = FrameEncoder(320, 180, fps=FPS, keyframe_s=1.0)
    sink = Sink()
    rec = SegmentRecorder(
        tmp_path, "wall", on_segment=sink.segments.append, on_error=sink.errors.append, max_segment_s=1.0
    )
    for k in range(45):
        for p in enc.encode(picture(k, 320, 180), 100.0 + k / FPS):
            rec.push(p)
    rec.close()
    assert sink.errors == []
    assert sum(s.frames for s in sink.segments) >= 44  # the encoder may hold the last frame
    assert len(sink.segments) >= 2 and all(s.name == "wall" for s in sink.segments)
    assert count_frames(sink.segments[0].path)[1] == (320, 180)


def test_vp8_size_parses_keyframes_only() -> None:
    packets = encode(3)
    assert vp8_size(packets[0].data) == (160, 120)
    assert vp8_size(packets[1].data) is None
    assert vp8_size(b"") is None


def test_snapshot_is_written_and_hashed(tmp_path: Path) -> None:
    img = picture(3, 320, 240)
    snap = write_snapshot(tmp_path / "snaps", "fire", img, T0_US + 123456, report_id="r-7", command_id="c/1")
    data = snap.path.read_bytes()
    assert snap.sha256 == hashlib.sha256(data).hexdigest()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == img.shape
    assert np.abs(decoded.astype(int) - img.astype(int)).mean() < 5
    assert snap.payload() == {
        "dept": "fire",
        "path": str(snap.path),
        "sha256": snap.sha256,
        "command_id": "c/1",
        "report_id": "r-7",
    }
    assert "/" not in snap.path.name.removesuffix(".jpg").split("-")[-1]


def test_snapshot_write_error_raises_media_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(MediaWriteError) as info:
        write_snapshot(blocker, "fire", picture(0), T0_US)
    assert info.value.error.op == "snapshot" and info.value.error.errno in ("ENOTDIR", "EEXIST")


def test_wall_encoder_sends_a_key_frame_when_asked() -> None:
    enc = FrameEncoder(320, 180, fps=FPS, keyframe_s=100.0)
    keys = [p.keyframe for k in range(10) for p in enc.encode(picture(k, 320, 180), k / FPS)]
    assert keys[0] and not any(keys[1:])
    enc.request_keyframe()
    assert [p.keyframe for p in enc.encode(picture(10, 320, 180), 10 / FPS)] == [True]


def test_media_worker_runs_jobs_in_order_and_bounds_its_backlog() -> None:
    worker = MediaWorker("test-worker", max_backlog=3)
    gate, busy = threading.Event(), threading.Event()
    done: list[int] = []
    try:
        worker.call(lambda: (busy.set(), gate.wait(10)))  # the thread is busy until the gate opens
        assert busy.wait(10)
        accepted = [worker.submit(done.append, k) for k in range(5)]
        assert accepted == [True, True, True, False, False] and worker.dropped == 2
        gate.set()
        assert worker.call(lambda: list(done)).result(10) == [0, 1, 2]
        failing = worker.call(lambda: 1 // 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(10)
        assert worker.call(lambda: "still running").result(10) == "still running"
    finally:
        gate.set()
        worker.stop()
