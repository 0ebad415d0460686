"""The media commands: wall preview PNG and the bench commands' JSON last line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from hub.cli import build_parser, main


def test_wall_preview_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wall.png"
    assert main(["wall-preview", "--layout", "spotlight", "--size", "640x360", "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (360, 640, 3)
    assert main(["wall-preview", "--layout", "7x7", "--out", str(out)]) == 2


def test_bench_commands_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "wall", "--json", "--seconds", "1"])
    assert args.handler.__name__ == "cmd_bench_wall" and args.json
    args = parser.parse_args(["bench", "health", "--json"])
    assert args.handler.__name__ == "cmd_bench_health"


def test_bench_health_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "health", "--json", "--frames", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"health_ms", "health_gray_ms", "health_from_av_ms"} <= result.keys()
    assert len(lines) >= 2  # a human-readable line before the JSON


def test_bench_record_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "record", "--json", "--seconds", "3", "--segment", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["record_errors"] == 0
    assert result["record_segments"] >= 16 * 2  # rolled over at the 2 s key frames
