"""Recording and snapshots in the running hub: files per session read back with ffprobe, hashes, errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from hub.media_wiring import MEDIA_KEY
from tests.mediawiring.conftest import wait_for
from tests.mediawiring.probe import ffprobe_recording


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_segments_and_snapshot_are_registered(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 1.5, "wall": True}})
    cmd, _ = await h.join("center", publish=False, slots=4)
    water, _ = await h.join("water")

    def recordings(name: str) -> list[Any]:
        return [e for e in h.events() if e.kind == "media.recording" and e.payload["dept"] == name]

    await wait_for(lambda: recordings("water") and recordings("wall"), 20)
    issued = await cmd.request("command.issue", targets=["water"], text="report the levee")
    await water.request("command.respond", command_id=issued["command_id"], response="receipt")
    await wait_for(lambda: "media.snapshot" in h.kinds("water"), 10)
    for name in ("water", "wall"):
        seg = recordings(name)[0]
        p = seg.payload
        assert _sha(h.data / p["path"]) == p["sha256"]
        assert p["start_ts_us"] <= p["end_ts_us"] <= seg.ts_us
        with av.open(str(h.data / p["path"])) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 2
    snap = next(e for e in h.events() if e.kind == "media.snapshot")
    assert snap.payload["command_id"] == issued["command_id"]
    assert _sha(snap.payload["path"]) == snap.payload["sha256"]
    assert Path(snap.payload["path"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG


async def test_write_errors_are_logged_and_the_hub_keeps_working(media_hub: Any) -> None:
    def block_dirs(data: Path) -> None:  # a file where the folders should be: every write fails
        (data / "recordings").write_text("not a folder")
        (data / "snapshots").write_text("not a folder")

    h = await media_hub(prepare=block_dirs)
    cmd, cmd_media = await h.join("center", publish=False, slots=4)
    fire, _ = await h.join("fire")
    await wait_for(lambda: "media.error" in h.kinds("fire"), 15)
    issued = await cmd.request("command.issue", targets=["fire"], text="go")
    ack = await fire.request("command.respond", command_id=issued["command_id"], response="receipt")
    assert ack["state"] == "acknowledged"
    await wait_for(lambda: sum(k == "media.error" for k in h.kinds("fire")) >= 2, 10)
    errors = [e.payload for e in h.events() if e.kind == "media.error"]
    assert {"recordings", "snapshots"} <= {Path(e["path"]).parent.name for e in errors}
    assert all(e["op"] in ("open", "snapshot") and e["errno"] for e in errors)
    # the hub, the log and the video still work
    await wait_for(lambda: "fire" in cmd_media.seen("video").values(), 10)
    assert h.running.runner.app[MEDIA_KEY].stats()["segments"] == 0


def recordings(h: Any, name: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in h.events() if e.kind == "media.recording" and e.payload["dept"] == name]


async def publish_for(h: Any, dept: str, seconds: float,
                      codec: str = "video/VP8") -> tuple[Any, float, float]:
    """A bot publishes `seconds` of video, then its connection closes; returns (its source at the hub,
    when its first frame reached the hub, when it left)."""
    media = h.running.runner.app[MEDIA_KEY]
    hc, mc = await h.join(dept, codec=codec)
    await wait_for(lambda: media.video.video_source(dept) is not None
                   and media.video.video_source(dept).frames > 0, 20)
    source = media.video.video_source(dept)
    first = time.monotonic()
    await asyncio.sleep(seconds)  # the session's length is what the files are checked against
    await mc.close()
    await hc.close()
    h.joined.remove((hc, mc))
    return source, first, time.monotonic()


async def test_each_publishing_session_gets_its_own_file_closed_when_it_ends(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 600}})
    media = h.running.runner.app[MEDIA_KEY]
    sessions = []
    for codec in ("video/VP8", "video/H264"):  # the same department twice, VP8 then H264
        source, first, left = await publish_for(h, "water", 5.0, codec)
        n = len(sessions) + 1
        await wait_for(lambda n=n: len(recordings(h, "water")) == n, 5)
        closed_after = time.monotonic() - left
        await wait_for(lambda: media.video.video_source("water") is None, 5)
        sessions.append((source, left - first, closed_after))
    recs = recordings(h, "water")
    assert [r["codec"] for r in recs] == ["VP8", "H264"]
    assert recs[0]["session"] != recs[1]["session"] and [r["part"] for r in recs] == [1, 1]
    assert [Path(r["path"]).suffix for r in recs] == [".webm", ".mkv"]
    for rec, (source, session_s, closed_after) in zip(recs, sessions, strict=True):
        assert closed_after <= 2.0, f"the file was logged {closed_after:.2f} s after the feed ended"
        path = h.data / rec["path"]
        assert _sha(path) == rec["sha256"] and path.stat().st_size == rec["size"]
        probe = ffprobe_recording(path)
        assert probe.codecs == [rec["codec"].lower()]
        assert probe.monotonic and probe.repeated == 0 and probe.decode_errors == 0
        assert probe.duration_s == pytest.approx(session_s, rel=0.05)
        assert probe.duration_s == pytest.approx(rec["duration_s"], abs=0.01)
        assert (rec["end_ts_us"] - rec["start_ts_us"]) / 1e6 == pytest.approx(session_s, rel=0.05)
        assert probe.frames == rec["frames"]
        forwarded = source.frames  # the hub's own count for that publisher
        assert abs(probe.frames - forwarded) <= max(1, 0.02 * forwarded), (probe.frames, forwarded)


async def test_the_wall_recording_plays_at_real_speed(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 600, "wall": True}, "wall": {"record_fps": 5}})
    _, first, left = await publish_for(h, "fire", 8.0)
    await wait_for(lambda: recordings(h, "wall"), 5)  # nobody publishes any more: the wall's file closes
    [rec] = recordings(h, "wall")
    probe = ffprobe_recording(h.data / rec["path"])
    wall_s = (rec["end_ts_us"] - rec["start_ts_us"]) / 1e6
    assert probe.codecs == ["vp8"] and probe.monotonic and probe.decode_errors == 0
    assert probe.duration_s == pytest.approx(left - first, rel=0.1, abs=0.5)  # it starts with the feed
    assert probe.duration_s == pytest.approx(wall_s + 1 / 5, rel=0.05)
    assert probe.frames == pytest.approx(5 * probe.duration_s, rel=0.1)


async def commandhub(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", *args,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_record_verify_checks_every_file_against_the_log(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 600}})
    await publish_for(h, "water", 3.0)
    await publish_for(h, "water", 2.0, "video/H264")
    await wait_for(lambda: len(recordings(h, "water")) == 2, 5)
    recs = recordings(h, "water")
    code, out = await commandhub("record", "verify", str(h.data), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["ok"] and doc["log_problem"] is None and doc["log_events"] == len(h.events())
    files = {f["path"]: f for f in doc["files"]}
    assert set(files) == {r["path"] for r in recs}
    for rec in recs:
        f, probe = files[rec["path"]], ffprobe_recording(h.data / rec["path"])
        assert f["status"] == "ok" and f["problems"] == [] and f["session"] == rec["session"]
        assert (f["codec"], f["frames"]) == (rec["codec"], probe.frames)
        assert f["duration_s"] == pytest.approx(probe.duration_s, abs=0.002)
        assert f["index"] == probe.keyframes >= 1  # the Cues index every key frame
    code, out = await commandhub("record", "verify", str(h.data / "recordings"))  # the folder itself
    assert code == 0 and "summary: 2 files, 2 ok, 0 with problems" in out, out
    assert "hash chain ok" in out.splitlines()[0]

    first, second = (h.data / r["path"] for r in recs)
    stray = first.with_name("stray.webm")
    stray.write_bytes(first.read_bytes())  # a file the log does not know
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of a logged file
    first.write_bytes(bytes(data))
    second.unlink()
    code, out = await commandhub("record", "verify", str(h.data), "--json")
    assert code == 1
    problems = {f["path"]: f["problems"] for f in json.loads(out)["files"]}
    assert [p.split(":")[0] for p in problems[recs[0]["path"]]] == ["hash mismatch"]
    assert [p.split(":")[0] for p in problems[recs[1]["path"]]] == ["missing"]
    assert [p.split(":")[0] for p in problems["recordings/stray.webm"]] == ["unlogged"]
    code, out = await commandhub("record", "verify", str(h.data))
    assert code == 1 and "summary: 3 files, 0 ok, 3 with problems" in out, out
    code, out = await commandhub("record", "verify", str(h.data / "nowhere"))
    assert code == 2


async def test_stopping_the_hub_closes_and_logs_the_open_files(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 600, "wall": True}})
    media = h.running.runner.app[MEDIA_KEY]
    await h.join("police")
    await wait_for(lambda: media.recorders["police"].recording and media.recorders["wall"].recording, 20)
    await asyncio.sleep(1.0)  # a second of video in both files
    await h.running.stop()  # the department still publishes when the hub stops
    kinds = [e.kind for e in h.events()]
    assert kinds[-1] == "hub.stopped"
    for name in ("police", "wall"):
        [rec] = recordings(h, name)
        assert _sha(h.data / rec["path"]) == rec["sha256"]
        assert ffprobe_recording(h.data / rec["path"]).frames == rec["frames"] >= 2
