"""Clocks: the hub stamps events through an injected Clock; pure code never reads the time itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall time in UTC microseconds and a monotonic reading in nanoseconds."""

    def wall_us(self) -> int: ...

    def mono_ns(self) -> int: ...


class SystemClock:
    """The machine's clocks."""

    def wall_us(self) -> int:
        return time.time_ns() // 1000

    def mono_ns(self) -> int:
        return time.monotonic_ns()


class ManualClock:
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, wall_us: int = 1_800_000_000_000_000, mono_ns: int = 0) -> None:
        self._wall_us = wall_us
        self._mono_ns = mono_ns

    def wall_us(self) -> int:
        return self._wall_us

    def mono_ns(self) -> int:
        return self._mono_ns

    def advance(self, seconds: float) -> None:
        self._wall_us += round(seconds * 1_000_000)
        self._mono_ns += round(seconds * 1_000_000_000)
