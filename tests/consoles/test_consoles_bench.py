"""`commandhub bench ui` runs end to end (a few commands) and reports sane figures."""

from __future__ import annotations

import pytest

from hub.bench_ui import nearest_rank, run

from .conftest import chromium_path


def test_nearest_rank() -> None:
    xs = sorted(float(i) for i in range(1, 51))
    assert nearest_rank(xs, 50) == 25.0
    assert nearest_rank(xs, 99) == 50.0  # with 50 samples p99 is the maximum
    assert nearest_rank([7.0], 99) == 7.0


@pytest.mark.asyncio(loop_scope="function")
async def test_bench_ui_smoke() -> None:
    if chromium_path() is None:
        pytest.skip("Debian's chromium is not installed")
    result = await run(commands=3, media=False)
    assert result["commands"] == 3
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p99_ms"] == result["max_ms"]
    assert result["max_ms"] < 10_000
    assert result["clock_skew_ms"] < 5
