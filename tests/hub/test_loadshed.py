"""Load shedding's decision: event loop lag readings in, shed / stop out (hysteresis)."""

from __future__ import annotations

import asyncio
import time

from hub.loadshed import Shedder, watch_loop_lag


def test_sheds_on_one_late_reading_and_stops_only_after_a_calm_hold() -> None:
    s = Shedder(high_s=0.1, low_s=0.03, hold_s=5.0)
    assert s.observe(0.02, 0.0) is None and not s.shedding
    assert s.observe(0.25, 1.0) is True and s.shedding and s.episodes == 1
    assert s.observe(0.3, 1.25) is None  # still shedding: no second start
    assert s.observe(0.01, 2.0) is None  # calm from here...
    assert s.observe(0.05, 4.0) is None  # ...but not calm enough: the hold starts again
    assert s.observe(0.01, 5.0) is None and s.observe(0.01, 9.0) is None and s.shedding
    assert s.observe(0.01, 10.0) is False and not s.shedding
    assert s.episodes == 1 and s.max_lag_s == 0.3
    assert s.observe(0.2, 11.0) is True and s.episodes == 2


async def test_a_blocked_loop_is_measured_and_starts_shedding() -> None:
    changes: list[bool] = []
    shedder = Shedder(hold_s=0.3)
    task = asyncio.ensure_future(watch_loop_lag(shedder, changes.append, probe_s=0.05))
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # the loop is starved for 300 ms
        deadline = time.monotonic() + 5
        while changes != [True, False] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert changes == [True, False]
        assert shedder.max_lag_s >= 0.2
    finally:
        task.cancel()
