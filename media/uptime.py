"""Per-department video uptime from logged video.* events (standard library only, for scoring)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

BAD_KINDS = frozenset({"video.lost", "video.frozen", "video.black"})
RESTORED = "video.restored"


class VideoEvent(Protocol):
    """What is read of a log event (`hub.logformat.Event` fits)."""

    @property
    def ts_us(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Outage:
    """One outage of a department's video, hub clock in microseconds (`end_us` None: ongoing)."""

    dept: str
    start_us: int
    end_us: int | None
    was: str


def outages(events: Iterable[VideoEvent]) -> list[Outage]:
    """Outages in log order. An outage starts at the first video.lost/frozen/black of a
    department and ends at its video.restored; its start is taken as the restored event's
    time minus `duration_s` (the onset the hub measured, earlier than detection) when that is
    earlier than the first bad event."""
    open_: dict[str, tuple[int, str]] = {}
    result: list[Outage] = []
    for ev in events:
        if ev.kind not in BAD_KINDS and ev.kind != RESTORED:
            continue
        dept = ev.payload.get("dept")
        if not isinstance(dept, str):
            continue
        if ev.kind in BAD_KINDS:
            start = open_[dept][0] if dept in open_ else ev.ts_us
            open_[dept] = (start, ev.kind.removeprefix("video."))
        elif dept in open_:
            start, _ = open_.pop(dept)
            duration = ev.payload.get("duration_s")
            if isinstance(duration, int | float):
                start = min(start, ev.ts_us - round(duration * 1e6))
            result.append(Outage(dept, start, ev.ts_us, str(ev.payload.get("was", ""))))
    for dept, (start, was) in open_.items():
        result.append(Outage(dept, start, None, was))
    return result


def uptime(
    events: Iterable[VideoEvent], depts: Iterable[str], start_us: int, end_us: int
) -> dict[str, float]:
    """Share (0..1) of [start_us, end_us] each department's video was not in an outage."""
    span = end_us - start_us
    down = dict.fromkeys(depts, 0)
    for o in outages(events):
        if o.dept not in down:
            continue
        a = max(o.start_us, start_us)
        b = min(end_us if o.end_us is None else o.end_us, end_us)
        down[o.dept] += max(0, b - a)
    if span <= 0:
        return dict.fromkeys(down, 1.0)
    return {d: max(0.0, 1.0 - t / span) for d, t in down.items()}
