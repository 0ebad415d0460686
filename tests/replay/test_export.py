"""`commandhub replay export`: the wall between two logged moments as an MP4, read back with
ffprobe and PyAV, hashed in its manifest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.replay.conftest import ROOT, Drill

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_export_a_clip_between_two_seqs(drill: Drill, tmp_path: Path) -> None:
    issued = drill.seq_of("command.issued")
    on_scene = drill.seq_of("command.on_scene", "police")
    out = tmp_path / "clip.mp4"
    run = subprocess.run([sys.executable, "-m", "hub.cli", "replay", "export", "--data",
                          str(drill.data), "--from", f"#{issued.seq}", "--to", f"#{on_scene.seq}",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    data = out.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() in run.stdout
    assert manifest["size"] == len(data)
    assert (manifest["from_us"], manifest["to_us"]) == (issued.ts_us, on_scene.ts_us)
    assert manifest["log"]["verified"] is True and manifest["untrusted_skipped"] == []
    assert {Path(r["path"]).name.split("-")[0] for r in manifest["recordings"]} == \
        {"police", "fire", "water", "power"}
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of",
         "json", str(out)], capture_output=True, text=True, check=True).stdout)
    stream = probe["streams"][0]
    assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (1280, 720)
    assert int(stream["nb_read_frames"]) == manifest["frames"]
    span_s = (on_scene.ts_us - issued.ts_us) / 1e6
    assert abs(float(probe["format"]["duration"]) - span_s) < 0.3
    with av.open(str(out)) as c:  # the caption band at the bottom is drawn (not all background)
        frame = next(iter(c.decode(video=0))).to_ndarray(format="gray")
    assert frame[-90:, :400].max() > 200


async def test_export_refuses_bad_moments(drill: Drill, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "hub.cli", "replay", "export", "--data",
                          str(drill.data), "--from", "+5", "--to", "+1", "--out",
                          str(tmp_path / "x.mp4")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "end after it starts" in run.stderr
    assert not (tmp_path / "x.mp4").exists()
    run = subprocess.run([sys.executable, "-m", "hub.cli", "replay", "export", "--data",
                          str(drill.data), "--from", "soon", "--to", "+1", "--out",
                          str(tmp_path / "x.mp4")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "+SECONDS, #SEQ" in run.stderr
