"""The drill clock stands still while the operation is paused."""

from __future__ import annotations

import asyncio
from typing import Any

from drills.runner import DrillRunner
from drills.scenario import load_scenario_text

SCENARIO = """
id: pause-test
title: 暂停测试
level: IV
end: 10m
levels:
  IV: {receipt: 60s}
injects:
  - {id: E1, at: 2m, type: event, title: 第一条}
  - {id: E2, at: 5m, type: event, title: 第二条}
"""


class FakeClock:
    """Real time that only moves when the runner sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


class Commander:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[str, dict[str, Any], float]] = []

    async def request(self, type: str, *, msg_id: str | None = None, **fields: Any) -> dict[str, Any]:
        self.sent.append((type, fields, self.clock.t))
        return {"operation": "drill-pause-test", "seq": len(self.sent)}


async def test_pause_moves_later_injects_by_the_pause() -> None:
    clock = FakeClock()
    commander = Commander(clock)
    runner = DrillRunner(commander, load_scenario_text(SCENARIO), speed=60.0, auto=False,
                         operation_id="drill-pause-test", clock=clock)
    run = asyncio.ensure_future(runner.run())
    while not any(t == "inject.release" for t, _, _ in commander.sent):
        await asyncio.sleep(0)
    runner.paused(True)
    for _ in range(50):  # while paused, time passes but no inject is released
        await clock.sleep(1.0)
    assert [f["inject_id"] for t, f, _ in commander.sent if t == "inject.release"] == ["E1"]
    runner.paused(False)
    result = await asyncio.wait_for(run, 5)
    releases = [(f["inject_id"], f["actual_offset_s"], at) for t, f, at in commander.sent
                if t == "inject.release"]
    assert [r[0] for r in releases] == ["E1", "E2"]
    assert abs(releases[1][1] - 300.0) < 1.0  # E2 at drill 5m, the pause not counted
    # real time between them: 3 s of drill (180 drill s at 60x) plus the 50 s pause
    assert abs(releases[1][2] - releases[0][2] - 53.0) < 0.3
    assert result.releases[1].inject_id == "E2"
