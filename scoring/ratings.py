"""Which evaluator ratings and checklist ticks count: the latest per criterion (and department)
or item; earlier ones are superseded, ones that fit no criterion are ignored with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.metrics import Evaluator, Facts, Observation, Tick
from scoring.notes import Note, note
from scoring.rubric import ChecklistCriterion, ObservationCriterion, Rubric

COUNTED, SUPERSEDED, IGNORED = "counted", "superseded", "ignored"


@dataclass
class RatingRecord:
    """One observation.recorded or checklist.ticked event and what became of it."""

    kind: str  # observation or checklist
    seq: int
    ts_us: int
    criterion: str  # the observation criterion, or the checklist criterion the item belongs to
    item: str | None
    dept: str | None
    value: str  # P/S/M/U, or checked / unchecked
    note: str
    author: Evaluator
    status: str = COUNTED
    reason: Note | None = None
    superseded_by: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seq": self.seq,
            "ts_us": self.ts_us,
            "criterion": self.criterion,
            "item": self.item,
            "dept": self.dept,
            "value": self.value,
            "note": self.note,
            "evaluator": self.author.name,
            "evaluator_id": self.author.id,
            "status": self.status,
            "reason": self.reason.text("en") if self.reason else None,
            "superseded_by": self.superseded_by,
        }


@dataclass
class Ratings:
    records: list[RatingRecord]
    observations: dict[tuple[str, str | None], RatingRecord]  # counting, by (criterion, dept)
    ticks: dict[str, RatingRecord]  # counting, by item

    def evaluators(self) -> list[dict[str, Any]]:
        """Everyone who recorded a rating or tick, with how many (in order of first rating)."""
        seen: dict[str, tuple[Evaluator, int]] = {}
        for r in self.records:
            e, n = seen.get(r.author.key, (r.author, 0))
            seen[r.author.key] = (e, n + 1)
        return [{"id": e.id, "name": e.name, "ratings": n} for e, n in seen.values()]


def _observation(o: Observation, crits: dict[str, ObservationCriterion], f: Facts) -> RatingRecord:
    rec = RatingRecord("observation", o.seq, o.ts_us, o.criterion, None, o.dept, o.rating, o.note, o.author)
    c = crits.get(o.criterion)
    why: Note | None = None
    if c is None:
        why = note("unknown_criterion", criterion=o.criterion)
    elif c.scope == "overall" and o.dept is not None:
        who = f.names.get(o.dept)
        why = note(
            "overall_with_dept",
            criterion=o.criterion,
            dept_zh=who.name_zh if who else o.dept,
            dept_en=who.name_en if who else o.dept,
        )
    elif c.scope == "per_department" and o.dept is None:
        why = note("needs_dept", criterion=o.criterion)
    elif o.dept is not None and o.dept not in f.names:
        why = note("unknown_dept", dept=o.dept)
    elif o.dept is not None and not f.dept_ok[f.depts.index(o.dept)]:
        why = note("dept_na", name_zh=f.names[o.dept].name_zh, name_en=f.names[o.dept].name_en)
    if why is not None:
        rec.status, rec.reason = IGNORED, why
    return rec


def _tick(t: Tick, items: dict[str, str]) -> RatingRecord:
    rec = RatingRecord(
        "checklist",
        t.seq,
        t.ts_us,
        items.get(t.item, ""),
        t.item,
        None,
        "checked" if t.checked else "unchecked",
        t.note,
        t.author,
    )
    if t.item not in items:
        rec.status, rec.reason = IGNORED, note("unknown_item", item=t.item)
    return rec


def classify(f: Facts, rubric: Rubric) -> Ratings:
    """Every rating and tick with its status; the ones that count, by key."""
    crits = {c.id: c for _, c in rubric.criteria() if isinstance(c, ObservationCriterion)}
    items = {it.id: c.id for _, c in rubric.criteria() if isinstance(c, ChecklistCriterion) for it in c.items}
    records = [_observation(o, crits, f) for o in f.observations] + [_tick(t, items) for t in f.ticks]
    records.sort(key=lambda r: r.seq)
    observations: dict[tuple[str, str | None], RatingRecord] = {}
    ticks: dict[str, RatingRecord] = {}
    for r in records:
        if r.status != COUNTED:
            continue
        if r.kind == "observation":
            earlier = observations.get((r.criterion, r.dept))
            observations[(r.criterion, r.dept)] = r
        else:
            assert r.item is not None
            earlier = ticks.get(r.item)
            ticks[r.item] = r
        if earlier is not None:
            earlier.status, earlier.superseded_by = SUPERSEDED, r.seq
            earlier.reason = note("superseded", seq=r.seq)
    return Ratings(records, observations, ticks)
