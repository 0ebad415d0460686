"""`commandhub replay export`: the wall between two logged moments as an MP4, read back with
ffprobe and PyAV, hashed in its manifest and logged (`replay.exported`, read back with the sqlite3
CLI; `commandhub log verify` still passes); a read-only folder is left untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.replay.conftest import ROOT, Drill, _can_mount

pytestmark = pytest.mark.asyncio(loop_scope="package")


def _folder_state(data: Path) -> dict[str, str]:
    return {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data.rglob("*")) if p.is_file()}


async def test_export_a_clip_between_two_seqs(drill: Drill, tmp_path: Path) -> None:
    issued = drill.seq_of("command.issued")
    on_scene = drill.seq_of("command.on_scene", "police")
    folder = tmp_path / "data"  # a copy: the export writes to the folder's log
    shutil.copytree(drill.data, folder)
    out = tmp_path / "clip.mp4"
    run = subprocess.run([sys.executable, "-m", "hub.cli", "replay", "export", "--data",
                          str(folder), "--from", f"#{issued.seq}", "--to", f"#{on_scene.seq}",
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
    # logged: read back with the sqlite3 CLI, the chain and signed heads verify
    rows = subprocess.run(["sqlite3", "-json", str(folder / "events.db"),
                           "SELECT seq, op, role, kind, payload FROM events WHERE kind = "
                           "'replay.exported'"], capture_output=True, text=True, check=True)
    (row,) = json.loads(rows.stdout)
    payload = json.loads(row["payload"])
    assert row["op"] == manifest["op"] and row["role"] == "hub"
    assert payload["sha256"] == manifest["sha256"] and payload["size"] == len(data)
    assert (payload["from_us"], payload["to_us"], payload["name"]) == \
        (issued.ts_us, on_scene.ts_us, "clip.mp4") and payload["who"]
    assert manifest["logged"] == {"logged": True, "seq": row["seq"], "kind": "replay.exported"}
    assert f"replay.exported #{row['seq']}" in run.stdout
    verify = subprocess.run([sys.executable, "-m", "hub.cli", "log", "verify",
                             str(folder / "events.db")], capture_output=True, text=True, cwd=ROOT)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare -m for a read-only mount")
async def test_export_from_a_read_only_folder_writes_nothing_there(drill: Drill,
                                                                    tmp_path: Path) -> None:
    data, mount, out = tmp_path / "data", tmp_path / "ro", tmp_path / "clip.mp4"
    shutil.copytree(drill.data, data)
    mount.mkdir()
    before = _folder_state(data)
    cmd = " ".join(f"'{c}'" for c in [sys.executable, "-m", "hub.cli", "replay", "export",
                                       "--data", str(mount), "--from", "+1", "--to", "+3",
                                       "--out", str(out)])
    script = (f"set -e; mount --bind '{data}' '{mount}'; mount -o remount,bind,ro '{mount}'; "
              f"if touch '{mount}/probe' 2>/dev/null; then exit 9; fi; exec {cmd}")
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "NOT LOGGED" in run.stderr and "read-only (archived)" in run.stderr
    manifest = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    assert manifest["logged"]["logged"] is False and "read-only" in manifest["logged"]["why"]
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() in run.stdout
    assert _folder_state(data) == before  # not a byte of the folder changed


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
