"""The replay model of one operation, from the event log alone (read-only; no aiohttp, no media).

`load_replay(data_dir, op)` reads `DATA/events.db` through `hub.logformat.open_readonly` (so a
folder on read-only media works), verifies the hash chain, and returns a `Replay`:

* `items`: the timeline (injects, commands, each department's stages, overdue marks, field
  reports, evaluator ratings, operation changes, feed starts and ends), each with its seq;
* `spans`: outages (lost, frozen, black) from their event to the department's `video.restored`
  (starting `duration_s` earlier when the problem began before it was detected);
* `recordings`: the `media.recording` files of each department overlapping the operation,
  with their hub-time span (`start_ts_us` + the file's media time) and trust: the file must
  exist inside the recordings folder and match the logged SHA-256 and size, in a log whose
  chain verifies; an untrusted file is listed with its problem and never served;
* `gaps`: each department's stretches of the operation with no trusted recording, labelled
  with the cause the log gives (not yet published, feed ended, lost, write error, untrusted);
* `around(seq=..., t_us=...)`: the log entries around a moment.

Hub times are microseconds (`ts_us`, the hub clock), as in the log.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hub.logformat import (
    COLUMNS,
    ChainError,
    Event,
    Head,
    LogFormatError,
    canonical_json,
    iter_rows,
    open_readonly,
    verify_rows,
)

LOG_NAME = "events.db"
RECORDINGS = "recordings"
GAP_TOLERANCE_US = 500_000  # a part boundary (next key frame) is no gap
NOISE = frozenset({"link.stats", "log.head_signed", "presence.clock"})  # not in "around"

STAGES = {"command.delivered": "delivered", "command.acknowledged": "acknowledged",
          "command.on_scene": "on_scene", "command.completed": "completed",
          "command.declined": "declined"}
CATEGORY = {
    "inject.released": "inject", "command.issued": "command", "command.cancelled": "command",
    "command.escalated": "command", "command.resent": "command", "command.overdue": "overdue",
    "report.field": "report", "observation.recorded": "rating", "checklist.ticked": "rating",
    "operation.started": "operation", "operation.ended": "operation",
    "operation.paused": "operation", "operation.resumed": "operation",
    "operation.level_changed": "operation", "dept.excused": "operation",
    "dept.checked_in": "presence", "presence.online": "presence", "presence.offline": "presence",
    "media.published": "media", "media.unpublished": "media", "media.error": "media",
    "video.lost": "outage", "video.frozen": "outage", "video.black": "outage",
    "video.restored": "outage", "media.snapshot": "media",
    **{k: "stage" for k in STAGES},
}
OUTAGE = {"video.lost": "lost", "video.frozen": "frozen", "video.black": "black"}
# events that explain why a feed has no recording, newest first wins
GAP_CAUSES = ("media.unpublished", "video.lost", "media.error", "rtc.failed", "presence.offline")


class ReplayError(Exception):
    """No such operation, or not a data folder with an event log."""


@dataclass(frozen=True)
class Item:
    """One mark on the timeline."""

    seq: int
    ts_us: int
    kind: str
    cat: str
    dept: str | None
    label: str
    command_id: str | None = None


@dataclass(frozen=True)
class Span:
    """An outage of a department's picture: `kind` lost/frozen/black, until `to_us`."""

    dept: str
    kind: str
    from_us: int
    to_us: int
    cause: str
    seq: int
    end_seq: int | None


@dataclass(frozen=True)
class Recording:
    """A logged recording file: media time t shows hub time `start_us` + t (`media_origin_us`)."""

    dept: str
    name: str  # file name inside DATA/recordings
    path: str  # as logged, relative to the data folder
    session: str
    part: int
    codec: str
    start_us: int
    end_us: int  # start_us + duration_s (the file's own media time)
    duration_s: float
    frames: int
    seq: int
    sha256: str
    size: int
    trusted: bool
    problem: str = ""


@dataclass(frozen=True)
class Gap:
    """A stretch of the operation with no trusted recording of `dept`, and why."""

    dept: str
    from_us: int
    to_us: int
    cause: str  # in English (the CLI, the clip)
    seq: int | None  # the event that gives the cause
    code: str = "no_recording"  # the cause for the page to word in its language (GAP_CODES)
    args: dict[str, str] = field(default_factory=dict)  # the cause's details, as logged


@dataclass(frozen=True)
class Entry:
    """A log entry shown around the cursor."""

    seq: int
    ts_us: int
    kind: str
    role: str
    dept: str | None
    text: str


@dataclass
class Replay:
    op: str
    title: str
    op_kind: str
    start_us: int
    end_us: int
    ended: bool
    depts: list[dict[str, Any]]
    items: list[Item]
    spans: list[Span]
    recordings: list[Recording]
    gaps: list[Gap]
    log: dict[str, Any]
    events: list[Event] = field(repr=False, default_factory=list)
    _times: list[int] = field(repr=False, default_factory=list)
    _seqs: list[int] = field(repr=False, default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What the replay page loads (everything but the raw log)."""
        return {"op": self.op, "title": self.title, "op_kind": self.op_kind,
                "start_us": self.start_us, "end_us": self.end_us, "ended": self.ended,
                "depts": self.depts, "log": self.log,
                "items": [asdict(i) for i in self.items],
                "spans": [asdict(s) for s in self.spans],
                "recordings": [asdict(r) for r in self.recordings],
                "gaps": [asdict(g) for g in self.gaps]}

    def recording(self, name: str) -> Recording | None:
        """The logged recording of this operation with that file name."""
        return next((r for r in self.recordings if r.name == name), None)

    def _index(self, seq: int) -> int | None:
        if len(self._seqs) != len(self.events):
            self._seqs = [e.seq for e in self.events]
        i = bisect_left(self._seqs, seq)
        return i if i < len(self.events) and self.events[i].seq == seq else None

    def event(self, seq: int) -> Event | None:
        """The event `seq`, if it belongs to the operation's window."""
        i = self._index(seq)
        return None if i is None else self.events[i]

    def around(self, *, seq: int | None = None, t_us: int | None = None,
               before: int = 12, after: int = 12) -> dict[str, Any]:
        """The operation's log entries around `seq` (its time) or `t_us` (hub clock)."""
        if seq is not None:
            found = self._index(seq)
            if found is None:
                raise ReplayError(f"seq {seq} is not an event of operation {self.op}")
            i = found
            at = self.events[i].ts_us
        else:
            at = self.start_us if t_us is None else t_us
            i = bisect_left(self._times, at)
        lo = i
        picked_before: list[Event] = []
        while lo > 0 and len(picked_before) < before:
            lo -= 1
            if self.events[lo].kind not in NOISE:
                picked_before.append(self.events[lo])
        picked_after: list[Event] = []
        hi = i
        while hi < len(self.events) and len(picked_after) < after:
            if self.events[hi].kind not in NOISE:
                picked_after.append(self.events[hi])
            hi += 1
        entries = [entry(e) for e in [*reversed(picked_before), *picked_after]]
        return {"at_us": at, "seq": seq, "entries": [asdict(e) for e in entries]}


def entry(e: Event) -> Entry:
    text = canonical_json(dict(e.payload))
    return Entry(e.seq, e.ts_us, e.kind, e.role, e.dept, text if len(text) <= 240
                 else text[:239] + "…")


# ------------------------------------------------------------------------------- file trust

Hasher = Callable[[Path], tuple[int, str]]


def sha256_size(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


class CachedHasher:
    """`sha256_size` once per (file, size, mtime, inode): a server re-reads a model cheaply."""

    def __init__(self, hasher: Hasher = sha256_size) -> None:
        self._hasher = hasher
        self._cache: dict[tuple[str, int, int, int], tuple[int, str]] = {}

    def known(self, path: Path) -> bool:
        """Whether the file's hash is cached as it is now (a check then costs a stat only)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return (str(path), st.st_size, st.st_mtime_ns, st.st_ino) in self._cache

    def __call__(self, path: Path) -> tuple[int, str]:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = self._hasher(path)
        return got


def recording_file(data_dir: Path, logged: str) -> Path | None:
    """The file a logged `path` names, if it lies inside DATA/recordings (no `..`, no links out)."""
    p = PurePosixPath(logged)
    if p.is_absolute() or ".." in p.parts or len(p.parts) != 2 or p.parts[0] != RECORDINGS:
        return None
    return data_dir / RECORDINGS / p.name


def check_file(data_dir: Path, payload: Mapping[str, Any], hasher: Hasher) -> str:
    """'' when the file matches the log's SHA-256 and size, else the problem."""
    path = recording_file(data_dir, str(payload.get("path", "")))
    if path is None:
        return "path outside the recordings folder"
    if path.is_symlink() or not path.is_file():
        return "missing"
    try:
        size, sha = hasher(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if size != payload.get("size"):
        return f"size mismatch ({size} bytes, logged {payload.get('size')})"
    if sha != payload.get("sha256"):
        return "hash mismatch"
    return ""


# ------------------------------------------------------------------------------- building

MEDIA_BEFORE_US = 3600 * 1_000_000  # outage and feed events this long before the start count
MEDIA_AFTER_US = 600 * 1_000_000  # a file overlapping the end is logged when it closes


@dataclass
class LogRead:
    """What the replay of one operation needs from the log, and whether the chain verifies."""

    op: dict[str, Any]  # id, title, kind, start_us, end_us (None while running)
    operations: list[dict[str, Any]]
    events: list[Event]  # the operation's, and every other one from an hour before to 10 min after
    status: dict[str, Any]  # {verified, head} or {verified: False, error, seq}
    head: Head | None  # the verified head (None if the chain is broken)


def read_operation(log_path: Path, op: str | None = None, verified: Head | None = None) -> LogRead:
    """Read operation `op` (default: the last) of a log, read-only. The whole chain is verified,
    from `verified` (a head this log had verified before: its event must still hash the same)
    when given, else from the first event. Only the operation's window is parsed."""
    try:
        conn = open_readonly(log_path)
    except LogFormatError as exc:
        raise ReplayError(str(exc)) from exc
    try:
        marks = conn.execute(f"SELECT {COLUMNS} FROM events WHERE kind IN "
                             "('operation.started', 'operation.ended') ORDER BY seq")
        ops = operations(Event.from_row(r) for r in marks)
        if not ops:
            raise ReplayError("the log has no operation")
        found = ops[-1] if op is None else next((o for o in ops if o["op"] == op), None)
        if found is None:
            raise ReplayError(f"no operation {op!r} in the log (there are: "
                              f"{', '.join(o['op'] for o in ops[-8:])})")
        end = found["end_us"]
        if end is None:
            (end,) = conn.execute("SELECT max(ts_us) FROM events WHERE op = ?",
                                  (found["op"],)).fetchone()
        rows = conn.execute(f"SELECT {COLUMNS} FROM events WHERE op = ? OR ts_us BETWEEN ? AND ? "
                            "ORDER BY seq", (found["op"], found["start_us"] - MEDIA_BEFORE_US,
                                             end + MEDIA_AFTER_US))
        events = [Event.from_row(r) for r in rows]
        head: Head | None
        try:
            if verified is not None and verified.seq > 0:
                head = verify_rows(iter_rows(conn, after=verified.seq - 1), start=verified)
            else:
                head = verify_rows(iter_rows(conn))
            status: dict[str, Any] = {"verified": True,
                                      "head": {"seq": head.seq, "hash": head.hash}}
        except ChainError as exc:
            head, status = None, {"verified": False, "error": str(exc), "seq": exc.seq}
    finally:
        conn.close()
    return LogRead(found, ops, events, status, head)


def operations(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The operations of a log: id, title, kind, start and end (None while running)."""
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == "operation.started":
            out[e.op] = {"op": e.op, "title": str(e.payload.get("title", "")), "kind": e.op_kind,
                         "start_us": e.ts_us, "end_us": None}
        elif e.kind == "operation.ended" and e.op in out:
            out[e.op]["end_us"] = e.ts_us
    return list(out.values())


def load_replay(data_dir: Path, op: str | None = None, *, hasher: Hasher = sha256_size) -> Replay:
    """The replay of operation `op` (default: the last one) in the data folder."""
    return build_replay(read_operation(data_dir / LOG_NAME, op), data_dir, hasher)


def build_replay(read: LogRead, data_dir: Path, hasher: Hasher = sha256_size) -> Replay:
    """The model from what `read_operation` read; each file's trust checked now."""
    found, events, status = read.op, read.events, read.status
    op_id = found["op"]
    own = [e for e in events if e.op == op_id]
    start_us = found["start_us"]
    ended = found["end_us"] is not None
    end_us = found["end_us"] if ended else max(e.ts_us for e in own)
    started = next(e for e in own if e.kind == "operation.started")
    roster = [d for d in started.payload.get("roster", []) if isinstance(d, dict)]
    taking = set(started.payload.get("participants") or [d.get("id") for d in roster])
    depts = [{"id": d["id"], "name_zh": d.get("name_zh", d["id"]),
              "name_en": d.get("name_en", d["id"])} for d in roster if d.get("id") in taking]
    ids = {d["id"] for d in depts}
    # media events are logged by time, not always inside the operation (a file closes after
    # operation.ended is logged under `system`): take those overlapping the operation
    media = [e for e in events if e.kind in ("media.recording", *OUTAGE, "video.restored",
                                             *GAP_CAUSES, "media.published")
             and _dept(e) in ids]
    recordings = _recordings(media, data_dir, start_us, end_us, status, hasher)
    spans = _spans(media, start_us, end_us)
    gaps = _gaps(sorted(ids), recordings, media, start_us, end_us)
    items = [_item(e) for e in own if e.kind in CATEGORY]
    items += [_item(e) for e in media if e.op != op_id and e.kind in CATEGORY
              and start_us <= e.ts_us <= end_us]
    items.sort(key=lambda i: i.seq)
    window = [e for e in events if e.op == op_id or start_us <= e.ts_us <= end_us]
    return Replay(op_id, found["title"], found["kind"], start_us, end_us, ended, depts, items,
                  spans, recordings, gaps, status, window, [e.ts_us for e in window])


def _dept(e: Event) -> str | None:
    d = e.payload.get("dept")
    return d if isinstance(d, str) else e.dept


def _recordings(media: list[Event], data_dir: Path, start_us: int, end_us: int,
                status: Mapping[str, Any], hasher: Hasher) -> list[Recording]:
    out = []
    for e in media:
        if e.kind != "media.recording":
            continue
        p = e.payload
        try:
            r_start = int(p["start_ts_us"])
            duration = float(p["duration_s"])
        except (KeyError, TypeError, ValueError):
            continue
        r_start = media_origin_us(r_start, p.get("end_ts_us"), duration, p.get("frames"),
                                  p.get("last_s"))
        r_end = r_start + int(duration * 1e6)
        if r_end < start_us or r_start > end_us:
            continue
        problem = "" if status.get("verified") else f"log not trusted: {status.get('error')}"
        problem = problem or check_file(data_dir, p, hasher)
        out.append(Recording(
            dept=str(p["dept"]), name=PurePosixPath(str(p.get("path", ""))).name,
            path=str(p.get("path", "")), session=str(p.get("session", "")),
            part=int(p.get("part", 1)), codec=str(p.get("codec", "")), start_us=r_start,
            end_us=r_end, duration_s=duration, frames=int(p.get("frames", 0)), seq=e.seq,
            sha256=str(p.get("sha256", "")), size=int(p.get("size", 0)), trusted=not problem,
            problem=problem))
    out.sort(key=lambda r: (r.dept, r.start_us))
    return out


def media_origin_us(start_ts_us: int, end_ts_us: Any, duration_s: float, frames: Any,
                    last_s: Any = None) -> int:
    """The hub time of a file's media time 0.

    `start_ts_us` is when the first frame arrived, `end_ts_us` the last: each is the send time
    plus a delay that is never negative, so the smaller of the two estimates is the closer one.
    A first frame held up (a key frame waited for, the link still settling) would otherwise
    shift the whole file late by that delay (seen: 0.4 s). The last frame's media time is
    `last_s` as the recorder logged it; older logs lack it, and it is estimated as
    `duration_s * (frames-1)/frames` (off by up to 0.14 s when a loaded sender bunched frames).
    """
    if not isinstance(end_ts_us, int) or not isinstance(frames, int) or frames < 2:
        return start_ts_us
    if isinstance(last_s, (int, float)) and not isinstance(last_s, bool) and \
            0 <= last_s <= duration_s:
        last_media_us = round(last_s * 1e6)
    else:
        last_media_us = int(duration_s * 1e6 * (frames - 1) / frames)  # the last frame's start
    return min(start_ts_us, end_ts_us - last_media_us)


def _spans(media: list[Event], start_us: int, end_us: int) -> list[Span]:
    open_: dict[str, tuple[Event, int]] = {}
    out: list[Span] = []
    for e in media:
        dept = _dept(e)
        if dept is None:
            continue
        if e.kind in OUTAGE and dept not in open_:
            since = e.payload.get("since_us")
            open_[dept] = (e, int(since) if isinstance(since, int) and since <= e.ts_us
                           else e.ts_us)
        elif e.kind == "video.restored" and dept in open_:
            first, began = open_.pop(dept)
            d = e.payload.get("duration_s")
            if isinstance(d, int | float):
                began = min(began, e.ts_us - int(d * 1e6))
            out.append(Span(dept, OUTAGE[first.kind], began, e.ts_us,
                            str(first.payload.get("cause", "")), first.seq, e.seq))
    for dept, (first, began) in open_.items():
        out.append(Span(dept, OUTAGE[first.kind], began, end_us,
                        str(first.payload.get("cause", "")), first.seq, None))
    return [s for s in out if s.to_us >= start_us and s.from_us <= end_us]


def _gaps(ids: list[str], recordings: list[Recording], media: list[Event], start_us: int,
          end_us: int) -> list[Gap]:
    out: list[Gap] = []
    for dept in ids:
        mine = [r for r in recordings if r.dept == dept]
        good = sorted((r.start_us, r.end_us) for r in mine if r.trusted)
        holes: list[tuple[int, int]] = []
        at = start_us
        for a, b in good:
            if a - at > GAP_TOLERANCE_US:
                holes.append((at, a))
            at = max(at, b)
        if end_us - at > GAP_TOLERANCE_US:
            holes.append((at, end_us))
        events = [e for e in media if _dept(e) == dept]
        for a, b in holes:
            code, args, seq = _gap_cause(a, b, mine, events)
            out.append(Gap(dept, max(a, start_us), min(b, end_us), cause_text(code, args), seq,
                           code, args))
    return out


# a gap's cause: code -> (the payload fields it shows, its English wording); the page words
# the same codes in Chinese and English (hub/static/js/replay.js, "gap.CODE")
GAP_CODES: dict[str, tuple[tuple[str, ...], str]] = {
    "untrusted": (("problem",), "untrusted recording: {problem}"),
    "feed_ended": (("cause", "reason"), "feed ended: {cause} ({reason})"),
    "video_lost": (("cause", "reason"), "video lost: {cause} ({reason})"),
    "recording_error": (("op", "errno", "message"), "recording error: {op} {errno} {message}"),
    "connection_failed": (("reason",), "connection failed: {reason}"),
    "offline": (("reason",), "offline: {reason}"),
    "not_published": ((), "not published"),
    "no_recording": ((), "no recording logged"),
}
_CODE_OF = {"media.unpublished": "feed_ended", "video.lost": "video_lost",
            "media.error": "recording_error", "rtc.failed": "connection_failed",
            "presence.offline": "offline"}


def cause_text(code: str, args: Mapping[str, str]) -> str:
    """A gap cause in English."""
    text = GAP_CODES[code][1].format_map({k: args.get(k, "") for k in GAP_CODES[code][0]})
    return text.replace(" ()", "").strip()


def _gap_cause(a: int, b: int, mine: list[Recording],
               events: list[Event]) -> tuple[str, dict[str, str], int | None]:
    bad = next((r for r in mine if not r.trusted and r.start_us < b and r.end_us > a), None)
    if bad is not None:
        return "untrusted", {"problem": bad.problem}, bad.seq
    # the newest event that explains the hole: from a little before it starts to its end
    why = [e for e in events if e.kind in GAP_CAUSES and a - 2_000_000 <= e.ts_us <= b]
    if why:
        e = why[0]
        code = _CODE_OF[e.kind]
        return code, {k: str(e.payload.get(k) or "") for k in GAP_CODES[code][0]}, e.seq
    if not any(e.kind == "media.published" and e.ts_us < a for e in events):
        return "not_published", {}, None
    return "no_recording", {}, None


def _item(e: Event) -> Item:
    p = e.payload
    cmd = p.get("command_id") if isinstance(p.get("command_id"), str) else None
    dept = _dept(e)
    if e.kind == "command.issued":
        label = f"{cmd} {p.get('text', '')}"
        dept = None
    elif e.kind in STAGES:
        label = f"{cmd} {STAGES[e.kind]}" + (f": {p['reason']}" if p.get("reason") else "")
    elif e.kind == "command.overdue":
        label = f"{cmd} {p.get('stage', '')} overdue"
    elif e.kind == "inject.released":
        label = f"{p.get('inject_id', '')} {p.get('title', '')}"
    elif e.kind == "observation.recorded":
        label = f"{p.get('criterion', '')} {p.get('rating', '')} {p.get('note', '')}"
    elif e.kind == "checklist.ticked":
        label = f"{p.get('item', '')} {'✓' if p.get('checked') else '✗'}"
    elif e.kind == "report.field":
        label = str(p.get("text", ""))
    elif e.kind in OUTAGE or e.kind == "video.restored":
        label = f"{e.kind.split('.')[1]} {p.get('cause', '')}"
    elif e.kind == "media.unpublished":
        label = f"{p.get('cause', '')} {p.get('reason', '')}"
    else:
        label = str(p.get("title") or p.get("reason") or "")
    return Item(e.seq, e.ts_us, e.kind, CATEGORY[e.kind], dept, label.strip()[:160], cmd)


def replay_link(base: str, op: str, seq: int | None = None, t_us: int | None = None) -> str:
    """The deep link of a moment: `BASE/replay?op=ID&seq=N` (or `&t=US`)."""
    from urllib.parse import urlencode

    q: dict[str, Any] = {"op": op}
    if seq is not None:
        q["seq"] = seq
    if t_us is not None:
        q["t"] = t_us
    return f"{base.rstrip('/')}/replay?{urlencode(q)}"

