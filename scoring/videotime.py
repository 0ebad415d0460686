"""When each department's video was live and healthy, from the log's media and video events (pure).

A feed is *live* between `media.published` and the matching `media.unpublished` (the hub's
media events; any session of the department counts), or, for older logs without media events,
while the department is connected (`presence.online` .. `presence.offline`). Within a live
span an *outage* runs from the first `video.lost` / `video.frozen` / `video.black` to the next
`video.restored`, starting at the restored event's time minus its `duration_s` when that is
earlier (the onset the hub measured, before it detected it). A new live span (the first video
of a new feed) ends an outage left open by the previous feed. See docs/events.md.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Source = Literal["media", "presence"]
MEDIA_KINDS = ("media.published", "media.unpublished")
PRESENCE_KINDS = ("presence.online", "presence.offline")
BAD_KINDS = ("video.lost", "video.frozen", "video.black")
RESTORED = "video.restored"
KINDS = (*MEDIA_KINDS, *PRESENCE_KINDS, *BAD_KINDS, RESTORED)
NO_FEED = {"media": "no_feed", "presence": "offline"}


class LogEvent(Protocol):
    """What is read of an event (scoring.drilllog.Parsed and hub.logformat.Event fit)."""

    @property
    def seq(self) -> int: ...
    @property
    def ts_us(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def dept(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Span:
    """A stretch of one department's video: up, lost, frozen, black, or no_feed / offline."""

    start_us: int
    end_us: int
    state: str


@dataclass
class DeptVideo:
    """One department's video over the window."""

    segments: list[Span] = field(default_factory=list)
    up_us: int = 0
    live_us: int = 0  # time with a feed at all
    frozen_black_us: int = 0
    evidence: list[tuple[int, int]] = field(default_factory=list)  # (seq, ts_us) of the events used
    marks: list[tuple[int, str]] = field(default_factory=list)  # (seq, kind) of the events that took it down


@dataclass
class _State:
    sessions: set[str] = field(default_factory=set)
    live_since: int | None = None
    live: list[tuple[int, int]] = field(default_factory=list)
    pieces: list[list[Any]] = field(default_factory=list)  # open outage: [start_us, kind]
    outages: list[tuple[int, int, str]] = field(default_factory=list)


def event_dept(ev: LogEvent, source: Source) -> str | None:
    """The department an event speaks for (None: not one this source uses)."""
    if ev.kind in PRESENCE_KINDS:
        return ev.dept if source == "presence" and ev.role == "department" else None
    if ev.kind in MEDIA_KINDS and source != "media":
        return None
    d = ev.payload.get("dept")
    return d if isinstance(d, str) else None


def _live_key(ev: LogEvent) -> str:
    if ev.kind in PRESENCE_KINDS:
        return str(ev.payload.get("conn"))
    return f"{ev.payload.get('source')}/{ev.payload.get('session')}"


def _close_outage(st: _State, t: int, onset: int | None = None) -> None:
    if not st.pieces:
        return
    if onset is not None:  # back to the measured onset, but not into the previous outage
        floor = st.outages[-1][1] if st.outages else onset
        st.pieces[0][0] = min(st.pieces[0][0], max(onset, floor))
    for (a, kind), nxt in zip(st.pieces, [*st.pieces[1:], [t, ""]], strict=True):
        st.outages.append((int(a), max(int(a), int(nxt[0])), str(kind)))
    st.pieces = []


def _apply(st: _State, ev: LogEvent) -> None:
    t = ev.ts_us
    if ev.kind in ("media.published", "presence.online"):
        if not st.sessions:
            st.live_since = t
            st.pieces = []  # the first video of a new feed: an old outage is over
        st.sessions.add(_live_key(ev))
    elif ev.kind in ("media.unpublished", "presence.offline"):
        key = _live_key(ev)
        if key in st.sessions:
            st.sessions.discard(key)
        else:  # an end we cannot match: every feed of the department has ended
            st.sessions.clear()
        if not st.sessions and st.live_since is not None:
            st.live.append((st.live_since, t))
            st.live_since = None
    elif ev.kind in BAD_KINDS:
        kind = ev.kind.removeprefix("video.")
        if not st.pieces or st.pieces[-1][1] != kind:
            st.pieces.append([t, kind])
    elif ev.kind == RESTORED and st.pieces:
        d = ev.payload.get("duration_s")
        onset = None
        if isinstance(d, int | float) and not isinstance(d, bool) and d >= 0:
            onset = t - round(float(d) * 1e6)
        _close_outage(st, t, onset)


def _covering(starts: list[int], ends: list[int], t: float) -> int:
    """Index of the interval (sorted, not overlapping) that holds t, or -1."""
    i = bisect.bisect_right(starts, t) - 1
    return i if i >= 0 and t < ends[i] else -1


def _segments(st: _State, start: int, end: int, no_feed: str) -> list[Span]:
    cuts = {start, end}
    for a, b in st.live:
        cuts |= {a, b}
    for a, b, _ in st.outages:
        cuts |= {a, b}
    points = sorted(c for c in cuts if start <= c <= end)
    live_a, live_b = [a for a, _ in st.live], [b for _, b in st.live]
    out_a, out_b = [a for a, _, _ in st.outages], [b for _, b, _ in st.outages]
    out: list[Span] = []
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        if _covering(live_a, live_b, mid) < 0:
            state = no_feed
        else:
            k = _covering(out_a, out_b, mid)
            state = st.outages[k][2] if k >= 0 else "up"
        if out and out[-1].state == state and out[-1].end_us == a:
            out[-1] = Span(out[-1].start_us, b, state)
        else:
            out.append(Span(a, b, state))
    return out


def dept_video(
    events: Iterable[LogEvent], depts: Sequence[str], start_us: int, end_us: int, source: Source
) -> dict[str, DeptVideo]:
    """Each department's live/healthy segments over [start_us, end_us], from events in log
    order (those before the window set the state it starts in)."""
    known = set(depts)
    states = {d: _State() for d in depts}
    result = {d: DeptVideo() for d in depts}
    for ev in events:
        if ev.kind not in KINDS:
            continue
        d = event_dept(ev, source)
        if d is None or d not in known:
            continue
        if ev.ts_us > end_us:
            continue
        _apply(states[d], ev)
        result[d].evidence.append((ev.seq, ev.ts_us))
        if ev.kind in (*BAD_KINDS, "media.unpublished", "presence.offline") and ev.ts_us >= start_us:
            result[d].marks.append((ev.seq, ev.kind.split(".")[1]))
    no_feed = NO_FEED[source]
    for d, st in states.items():
        if st.live_since is not None:
            st.live.append((st.live_since, end_us))
        _close_outage(st, end_us)
        r = result[d]
        r.segments = _segments(st, start_us, end_us, no_feed)
        for s in r.segments:
            n = s.end_us - s.start_us
            if s.state != no_feed:
                r.live_us += n
            if s.state == "up":
                r.up_us += n
            elif s.state in ("frozen", "black"):
                r.frozen_black_us += n
    return result
