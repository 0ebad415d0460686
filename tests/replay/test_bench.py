"""`commandhub bench replay` runs end to end on a tiny synthetic drill and prints its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.consoles.conftest import chromium_path
from tests.replay.conftest import ROOT


@pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")
def test_bench_replay_prints_seek_figures(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "replay", "--json",
                          "--minutes", "1", "--departments", "3", "--part-s", "20", "--fps", "5",
                          "--seeks", "6", "--export-minutes", "0", "--dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: over the target (a loaded box)
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["seeks"] == 6 and figures["tiles"] == 3 and figures["tiles_playing_last"] == 3
    assert figures["seeks_timed_out"] == 0
    assert 0 < figures["seek_ms_p50"] <= figures["seek_ms_p95"] <= figures["seek_ms_max"]
    assert (figures["seek_ok"] is True) == (run.returncode == 0)
    # the parts of a seek: every tile seeks; the first far move opens new files
    assert 0 < figures["tile_seek_ms_p95"] <= figures["seek_ms_max"]
    assert figures["open_ms_p95"] is not None and 0 < figures["open_ms_p95"] <= figures["seek_ms_max"]
    assert len(list((tmp_path / "data" / "recordings").glob("*.webm"))) == 3 * 3
