"""Read a recording back with FFmpeg's own tools (ffprobe, ffmpeg): what a user's player would see."""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Probe:
    codecs: list[str]  # codec_name of every stream
    duration_s: float  # the container's duration
    frames: int  # video packets
    monotonic: bool  # pts strictly increasing
    repeated: int  # packets whose payload equals the previous one's (a frame forwarded twice)
    keyframes: int
    decode_errors: int  # lines ffmpeg prints at -v error when decoding the whole file
    first_pts_s: float
    last_pts_s: float


def ffprobe_recording(path: Path | str) -> Probe:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_packets",
         "-show_data_hash", "sha256", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60).stdout
    doc = json.loads(out)
    packets = [p for p in doc.get("packets", []) if p.get("codec_type") == "video"]
    pts = [float(p["pts_time"]) for p in packets]
    hashes = [p.get("data_hash") for p in packets]
    decode = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=120)
    return Probe(
        codecs=[s["codec_name"] for s in doc.get("streams", [])],
        duration_s=float(doc["format"]["duration"]),
        frames=len(packets),
        monotonic=all(b > a for a, b in itertools.pairwise(pts)),
        repeated=sum(1 for a, b in itertools.pairwise(hashes) if a == b),
        keyframes=sum(1 for p in packets if "K" in p.get("flags", "")),
        decode_errors=len(decode.stderr.splitlines()),
        first_pts_s=pts[0] if pts else 0.0,
        last_pts_s=pts[-1] if pts else 0.0,
    )
