"""One operation's events in the shape scoring needs: parsed small kinds, columns for responses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.logformat import Event
from scoring.notes import Note, note

# Response kinds kept as columns (they are most of a big log); codes index RESPONSE_KINDS.
RESPONSE_KINDS = (
    "command.delivered",
    "command.acknowledged",
    "command.on_scene",
    "command.completed",
    "command.declined",
)
DELIVERED, ACKNOWLEDGED, ON_SCENE, COMPLETED, DECLINED = range(5)

# Kinds parsed in full (few per drill). link.stats, presence.clock and the like are not needed.
PARSED_KINDS = (
    "operation.started",
    "operation.ended",
    "operation.level_changed",
    "operation.paused",
    "operation.resumed",
    "dept.checked_in",
    "presence.online",
    "presence.offline",
    "command.issued",
    "command.overdue",
    "command.escalated",
    "command.cancelled",
    "observation.recorded",
    "checklist.ticked",
    "inject.released",
    "dept.excused",
    "media.published",
    "media.unpublished",
    "video.lost",
    "video.frozen",
    "video.black",
    "video.restored",
)
# Kinds before the operation that set the state it starts in (who is online, whose feed is
# live, whose video is out; whether the hub logs media events at all).
CARRY_IN_KINDS = (
    "hub.started",
    "presence.online",
    "presence.offline",
    "media.published",
    "media.unpublished",
    "video.lost",
    "video.frozen",
    "video.black",
    "video.restored",
)

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]


class OperationNotFoundError(Exception):
    """The log has no such operation, or several and none was chosen."""


@dataclass(frozen=True, slots=True)
class Department:
    """A department taking part, as the operation's roster names it."""

    id: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed event of one of PARSED_KINDS."""

    seq: int
    ts_us: int
    role: str
    dept: str | None
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    """The operation being scored: its header and time window."""

    id: str
    title: str
    kind: str
    level: str
    scenario: str | None
    speed: float
    start_seq: int
    start_us: int
    end_us: int
    ended: bool
    roster: tuple[Department, ...]
    # the departments taking part (operation.started.participants; older logs: the whole roster)
    participants: tuple[str, ...] = ()
    participants_listed: bool = False
    # the chain at the operation's last event (operation.ended, else its last event): names the drill
    end_seq: int = 0
    end_hash: str = ""


@dataclass(frozen=True)
class Responses:
    """Department responses as columns, in seq order."""

    kind: I8
    seq: I64
    ts_us: I64
    command_id: list[str]
    dept: list[str]

    @staticmethod
    def empty() -> Responses:
        return Responses(np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])

    def __len__(self) -> int:
        return len(self.seq)


@dataclass(frozen=True)
class DrillLog:
    """Everything the engine reads about one operation."""

    operation: Operation
    parsed: list[Parsed]
    carry_in: list[Parsed]
    responses: Responses = field(default_factory=Responses.empty)
    notes: tuple[Note, ...] = ()

    def of_kind(self, *kinds: str) -> list[Parsed]:
        return [p for p in self.parsed if p.kind in kinds]


@dataclass(frozen=True, slots=True)
class OperationStart:
    """An operation.started event, for choosing which operation to score."""

    seq: int
    ts_us: int
    op: str
    payload: Mapping[str, Any]


def choose_operation(starts: Sequence[OperationStart], op: str | None) -> OperationStart:
    """The operation to score: the one named, else the latest drill (else the latest one)."""
    if op is not None:
        for s in starts:
            if s.op == op:
                return s
        known = ", ".join(s.op for s in starts) or "none"
        raise OperationNotFoundError(f"no operation {op!r} in the log (operations: {known})")
    if not starts:
        raise OperationNotFoundError("the log has no operation.started event")
    drills = [s for s in starts if s.op.startswith("drill-") or s.payload.get("kind") == "drill"]
    return (drills or list(starts))[-1]


def choice_note(starts: Sequence[OperationStart], chosen: OperationStart, op: str | None) -> Note | None:
    """A note when the operation was picked among several, naming the others."""
    if op is not None or len(starts) <= 1:
        return None
    others = ", ".join(s.op for s in starts if s.op != chosen.op)
    return note("several_operations", n=len(starts), chosen=chosen.op, others=others)


def make_operation(
    start: OperationStart, end_us: int, ended: bool, end_seq: int = 0, end_hash: str = ""
) -> Operation:
    p = start.payload
    roster: list[Department] = []
    seen: set[str] = set()
    for entry in p.get("roster") or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            continue
        did = str(entry["id"])
        if did in seen or did == "center":
            continue
        seen.add(did)
        roster.append(Department(did, str(entry.get("name_zh") or did), str(entry.get("name_en") or did)))
    speed = p.get("speed")
    listed = p.get("participants")
    if isinstance(listed, list):
        participants = tuple(sorted({str(d) for d in listed if isinstance(d, str) and d != "center"}))
    else:
        participants = tuple(sorted(d.id for d in roster))
    return Operation(
        id=start.op,
        title=str(p.get("title") or start.op),
        kind=str(p.get("kind") or "drill"),
        level=str(p.get("level") or ""),
        scenario=str(p["scenario"]) if p.get("scenario") else None,
        speed=float(speed) if isinstance(speed, int | float) and speed > 0 else 1.0,
        start_seq=start.seq,
        start_us=start.ts_us,
        end_us=max(end_us, start.ts_us),
        ended=ended,
        roster=tuple(roster),
        participants=participants,
        participants_listed=isinstance(listed, list),
        end_seq=end_seq,
        end_hash=end_hash,
    )


def operations_in(events: Iterable[Event]) -> list[OperationStart]:
    return [OperationStart(e.seq, e.ts_us, e.op, e.payload) for e in events if e.kind == "operation.started"]


def start_hash(events: Sequence[Event], seq: int) -> str:
    return next((e.hash for e in events if e.seq == seq), "")


def from_events(events: Sequence[Event], op: str | None = None) -> DrillLog:
    """Build a DrillLog from events in seq order (the pure path; see logread for the fast one)."""
    starts = operations_in(events)
    start = choose_operation(starts, op)
    chosen = choice_note(starts, start, op)
    parsed: list[Parsed] = []
    carry: list[Parsed] = []
    kinds: list[int] = []
    seqs: list[int] = []
    tss: list[int] = []
    cids: list[str] = []
    depts: list[str] = []
    codes = {k: i for i, k in enumerate(RESPONSE_KINDS)}
    parsed_kinds = set(PARSED_KINDS)
    carry_kinds = set(CARRY_IN_KINDS)
    end_us, ended = start.ts_us, False
    max_us = start.ts_us
    last = (start.seq, start_hash(events, start.seq))
    since = max(
        (e.seq for e in events if e.kind == "hub.started" and e.op == "system" and e.seq < start.seq),
        default=0,
    )
    for e in events:
        if e.op != start.op:
            if since <= e.seq < start.seq and e.kind in carry_kinds:
                carry.append(Parsed(e.seq, e.ts_us, e.role, e.dept, e.kind, e.payload))
            continue
        if ended:
            continue
        max_us = max(max_us, e.ts_us)
        last = (e.seq, e.hash)
        code = codes.get(e.kind)
        if code is not None:
            kinds.append(code)
            seqs.append(e.seq)
            tss.append(e.ts_us)
            cids.append(str(e.payload.get("command_id")))
            depts.append(str(e.dept))  # the responding department is the actor
        elif e.kind in parsed_kinds:
            parsed.append(Parsed(e.seq, e.ts_us, e.role, e.dept, e.kind, e.payload))
            if e.kind == "operation.ended":
                ended, end_us = True, e.ts_us
    responses = Responses(
        np.asarray(kinds, np.int8), np.asarray(seqs, np.int64), np.asarray(tss, np.int64), cids, depts
    )
    return DrillLog(
        make_operation(start, end_us if ended else max_us, ended, *last),
        parsed,
        carry,
        responses,
        (chosen,) if chosen else (),
    )
