"""A year of drills as data: every drill scored the same way, series per criterion and department,
whether each improvement-plan item is closed in a later drill; JSON and CSV (the PDF is trend.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.engine import score_drill
from scoring.logread import Verifier, extract, list_operations, open_readonly
from scoring.notes import Note
from scoring.plan import SEVERITY_ORDER, findings
from scoring.rubric import Rubric, Text
from scoring.scenario import ScenarioView
from scoring.scorecard import num, pts
from scoring.trusthead import TrustedHead, heads_for

MOVE = 5.0  # points of change that count as improved / slipped
# the notes of a drill's scorecard that the trend report repeats beside the drill
TREND_NOTES = ("scenario_missing", "scenario_other", "not_ended", "video_from_presence")


@dataclass
class DrillPoint:
    """One drill's results, as its scorecard has them."""

    log: str
    op: str
    title: str
    start_us: int
    log_head: tuple[int, str]
    scenario: str | None
    end_head: tuple[int, str]  # the chain at the drill's last event: names the drill in its log
    score: float
    total: float
    percent: float
    grade: str
    grade_label: dict[str, str]
    criteria: dict[str, dict[str, Any]]  # id -> earned, max, fraction, applicable
    depts: dict[str, dict[str, Any]]  # id -> status, score, receipt_mean_s, receipt_answered, ...
    findings: dict[str, dict[str, Any]]  # key -> title, severity
    notes: list[Note] = field(default_factory=list)


@dataclass
class FollowUp:
    """One improvement-plan item across the drills: open (a finding), closed, or not applicable."""

    key: str
    title: Text
    severity: str
    states: list[str]  # per drill: open, closed (raised before, not now), ok (never raised yet), na

    @property
    def first(self) -> int:
        return self.states.index("open")

    def closed_at(self, after: int) -> int | None:
        """The first drill after `after` where this item is no longer a finding."""
        for j in range(after + 1, len(self.states)):
            if self.states[j] == "closed":
                return j
        return None

    @property
    def open_now(self) -> bool:
        last = [s for s in self.states if s != "na"]
        return bool(last) and last[-1] == "open"

    @property
    def raised(self) -> int:
        return self.states.count("open")

    @property
    def reopened(self) -> int:
        seen = [s for s in self.states if s in ("open", "closed")]
        return sum(1 for a, b in itertools.pairwise(seen) if a == "closed" and b == "open")


@dataclass
class TrendData:
    rubric_id: str
    rubric_sha256: str
    drills: list[DrillPoint]
    depts: list[tuple[str, str, str]]  # id, name_zh, name_en, in first-seen order
    criteria: list[tuple[str, Text, float]]  # id, title, points, in rubric order
    grades: list[tuple[str, str, str, float]] = field(default_factory=list)  # id, zh, en, min
    notes: list[str] = field(default_factory=list)

    def series(self, did: str, key: str) -> list[float | None]:
        return [d.depts.get(did, {}).get(key) for d in self.drills]

    def crit_series(self, cid: str, key: str = "percent") -> list[float | None]:
        out: list[float | None] = []
        for d in self.drills:
            c = d.criteria.get(cid)
            out.append(c[key] if c and c["applicable"] else None)
        return out

    def change(self, did: str, key: str) -> float | None:
        vals = [v for v in self.series(did, key) if v is not None]
        return vals[-1] - vals[0] if len(vals) >= 2 else None

    def movers(self) -> tuple[list[str], list[str]]:
        """Departments whose score rose / fell by at least MOVE points, first drill to last."""
        up, down = [], []
        for did, _, _ in self.depts:
            c = self.change(did, "score")
            if c is not None and c >= MOVE:
                up.append(did)
            elif c is not None and c <= -MOVE:
                down.append(did)
        return up, down

    def followups(self) -> list[FollowUp]:
        """Every item any drill's improvement plan raised, with its state drill by drill."""
        keys: dict[str, dict[str, Any]] = {}
        for d in self.drills:
            for k, f in d.findings.items():
                keys.setdefault(k, f)
        out: list[FollowUp] = []
        for key, f in keys.items():
            states: list[str] = []
            raised = False
            for d in self.drills:
                if key in d.findings:
                    states.append("open")
                    raised = True
                elif not _applicable(d, key):
                    states.append("na")
                else:
                    states.append("closed" if raised else "ok")
            out.append(FollowUp(key, Text(f["title"]["zh"], f["title"]["en"]), f["severity"], states))
        out.sort(key=lambda u: (SEVERITY_ORDER.get(u.severity, 9), u.first, u.key))
        return out

    def to_dict(self) -> dict[str, Any]:
        up, down = self.movers()
        return {
            "schema": "commandhub.trend/2",
            "rubric": {"id": self.rubric_id, "sha256": self.rubric_sha256},
            "drills": [
                {
                    "n": i + 1,
                    "log": Path(d.log).name,
                    "op": d.op,
                    "title": d.title,
                    "start_us": d.start_us,
                    "log_head": {"seq": d.log_head[0], "hash": d.log_head[1]},
                    "end_head": {"seq": d.end_head[0], "hash": d.end_head[1]},
                    "scenario": d.scenario,
                    "score": pts(d.score),
                    "total": pts(d.total),
                    "percent": pts(d.percent),
                    "grade": d.grade,
                    "criteria": d.criteria,
                    "departments": dict(sorted(d.depts.items())),
                    "findings": sorted(d.findings),
                    "notes": [n.text("en") for n in d.notes],
                }
                for i, d in enumerate(self.drills)
            ],
            "departments": [
                {
                    "id": i,
                    "name_zh": zh,
                    "name_en": en,
                    "score_change": pts(self.change(i, "score")),
                    "receipt_change_s": num(self.change(i, "receipt_mean_s")),
                }
                for i, zh, en in self.depts
            ],
            "followups": [
                {
                    "key": u.key,
                    "title": {"zh": u.title.zh, "en": u.title.en},
                    "severity": u.severity,
                    "states": u.states,
                    "raised": u.raised,
                    "reopened": u.reopened,
                    "open_at_last": u.open_now,
                }
                for u in self.followups()
            ],
            "improved": up,
            "slipped": down,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"

    def to_csv(self, tz: dt.timezone) -> str:
        """One row per drill and line item (overall, criterion, department, finding): for a sheet."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        names = {i: zh for i, zh, _ in self.depts}
        crit_names = {i: t.zh for i, t, _ in self.criteria}
        for n, d in enumerate(self.drills, start=1):
            base = {
                "drill": n,
                "op": d.op,
                "title": d.title,
                "start": dt.datetime.fromtimestamp(d.start_us / 1e6, tz).strftime("%Y-%m-%d %H:%M"),
                "log_head": f"{d.log_head[0]}:{d.log_head[1]}",
                "end_head": f"{d.end_head[0]}:{d.end_head[1]}",
            }
            w.writerow(
                base
                | {"row": "overall", "points": pts(d.score), "max": pts(d.total), "percent": pts(d.percent)}
                | {"grade": d.grade}
            )
            for cid, c in d.criteria.items():
                w.writerow(
                    base
                    | {"row": "criterion", "id": cid, "name": crit_names.get(cid, cid), "points": c["earned"]}
                    | {"max": c["max"], "percent": c["percent"]}
                    | {"status": "scored" if c["applicable"] else "not_applicable"}
                )
            for did, v in sorted(d.depts.items()):
                w.writerow(
                    base
                    | {"row": "department", "id": did, "name": names.get(did, did), "percent": v.get("score")}
                    | {"grade": v.get("grade") or "", "status": v["status"]}
                    | {
                        "receipt_mean_s": v.get("receipt_mean_s"),
                        "receipts_answered": v.get("receipt_answered"),
                    }
                    | {"receipts_owed": v.get("receipt_owed")}
                )
            for key, f in sorted(d.findings.items()):
                w.writerow(
                    base | {"row": "finding", "id": key, "name": f["title"]["zh"], "status": f["severity"]}
                )
        return buf.getvalue()


CSV_COLUMNS = (
    "drill",
    "op",
    "title",
    "start",
    "log_head",
    "end_head",
    "row",
    "id",
    "name",
    "points",
    "max",
    "percent",
    "grade",
    "status",
    "receipt_mean_s",
    "receipts_answered",
    "receipts_owed",
)


def _applicable(d: DrillPoint, key: str) -> bool:
    kind, _, ident = key.partition(":")
    if kind == "criterion":
        c = d.criteria.get(ident)
        return bool(c and c["applicable"])
    return True  # a deduction or veto that did not fire is closed


def pick_scenario(scenarios: Sequence[ScenarioView], ran: str | None) -> ScenarioView | None:
    """The scenario for a drill: one given applies to every drill; of several, the one whose id
    is the drill's (operation.started.scenario); none when none matches."""
    if len(scenarios) == 1:
        return scenarios[0]
    return next((s for s in scenarios if s.id and s.id == ran), None)


def _point(
    path: str, log: Any, rubric: Rubric, head: Any, scenario: ScenarioView | None, checked: list[TrustedHead]
) -> DrillPoint:
    card, _ = score_drill(log, rubric, head, scenario, checked)
    g = next(x for x in card.grades if x["id"] == card.grade)
    criteria = {
        c.id: {
            "earned": pts(c.earned) if c.applicable else None,
            "max": pts(c.max),
            "fraction": c.fraction,
            "percent": pts(100.0 * c.earned / c.max) if c.applicable and c.max else None,
            "applicable": c.applicable,
        }
        for c in card.criteria()
    }
    depts: dict[str, dict[str, Any]] = {}
    for ds in card.departments:
        st = ds.stats
        r = st.get("receipt_mean_s")
        depts[ds.id] = {
            "status": ds.status,
            "score": pts(ds.score),
            "grade": ds.grade,
            "receipt_mean_s": num(float(r)) if isinstance(r, int | float) else None,
            "receipt_answered": st.get("receipt_answered"),
            "receipt_owed": st.get("receipt_owed"),
            "missed": st.get("missed"),
            "commands": st.get("commands"),
        }
    found = {
        f.key: {"title": {"zh": f.title.zh, "en": f.title.en}, "severity": f.severity} for f in findings(card)
    }
    op = log.operation
    return DrillPoint(
        path,
        op.id,
        op.title,
        op.start_us,
        card.log_head,
        op.scenario,
        (op.end_seq, op.end_hash),
        card.score,
        card.total,
        card.percent,
        card.grade,
        {"zh": g["zh"], "en": g["en"]},
        criteria,
        depts,
        found,
        [n for n in card.notes if n.code in TREND_NOTES],
    )


def collect(
    logs: list[str],
    rubric: Rubric,
    workers: int | None = None,
    on_log: Callable[[str], None] | None = None,
    scenarios: Sequence[ScenarioView] = (),
) -> TrendData:
    """Score every drill in every log (each chain verified once, against its signed head when
    there is one); order the drills by start."""
    drills: list[DrillPoint] = []
    names: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    notes: list[str] = []
    for path in logs:
        if on_log:
            on_log(f"scoring {path}")
        checked = heads_for(path, None)
        verifier = Verifier(path, workers, [t.head for t in checked])
        try:
            starts = list_operations(path)
            ops = [o for o in starts if o.op.startswith("drill-") or o.payload.get("kind") == "drill"]
            conn = open_readonly(path)
            try:
                logs_of = [extract(conn, o.op, starts) for o in ops]
            finally:
                conn.close()
        except BaseException:
            verifier.close()
            raise
        head = verifier.result()
        if not ops:
            notes.append(f"{path}: no drill in this log")
        for log in logs_of:
            scenario = pick_scenario(scenarios, log.operation.scenario)
            drills.append(_point(path, log, rubric, head, scenario, checked))
            for d in log.operation.roster:
                if d.id not in names:
                    names[d.id] = (d.name_zh, d.name_en)
                    order.append(d.id)
    if not drills:
        raise ValueError("no drill found in the given logs")
    drills.sort(key=lambda d: (d.start_us, d.op))
    criteria = [(c.id, c.title, c.points) for _, c in rubric.criteria()]
    grades = [(g.id, g.label.zh, g.label.en, g.min) for g in rubric.grades]
    depts = [(i, names[i][0], names[i][1]) for i in order]
    return TrendData(rubric.id, rubric.sha256, drills, depts, criteria, grades, notes)
