"""Load shedding: how late the event loop runs says when media work (health samples, the wall's
frame rate) gives way, so that the command path and ICE keep their time on a starved machine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

PROBE_S = 0.25  # the probe sleeps this long and measures how much later it wakes


@dataclass
class Shedder:
    """Decides from event loop lag readings whether to shed (pure: the caller gives the times).

    Sheds when a reading exceeds `high_s`; stops once every reading for `hold_s` stayed
    below `low_s` (hysteresis: a machine that is starved now and then does not flap).
    """

    high_s: float = 0.1
    low_s: float = 0.03
    hold_s: float = 5.0
    shedding: bool = False
    episodes: int = 0  # how often shedding started
    max_lag_s: float = 0.0
    _calm_since: float | None = None

    def observe(self, lag: float, now: float) -> bool | None:
        """One lag reading at `now`; returns True/False when shedding starts/stops, else None."""
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.high_s:
            self._calm_since = None
            if not self.shedding:
                self.shedding = True
                self.episodes += 1
                return True
            return None
        if not self.shedding:
            return None
        if lag >= self.low_s:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now
        elif now - self._calm_since >= self.hold_s:
            self.shedding = False
            self._calm_since = None
            return False
        return None


async def watch_loop_lag(shedder: Shedder, on_change: Callable[[bool], None],
                         probe_s: float = PROBE_S) -> None:
    """Measure the running loop's lag every `probe_s` (run as a task; cancel to stop) and call
    `on_change(shedding)` whenever `shedder` starts or stops shedding."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(probe_s)
        now = loop.time()
        change = shedder.observe(max(0.0, now - before - probe_s), now)
        if change is not None:
            on_change(change)
