"""The scoring engine: (events, rubric, optional scenario) -> Scorecard. Pure: no hub server, no PDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hub.logformat import Event, Head, canonical_json, verify_rows
from scoring.curves import apply, zero_point
from scoring.drilllog import DrillLog, from_events
from scoring.metrics import F64, NONE, Facts, ScoringError, Units, build_facts
from scoring.rubric import (
    ChecklistCriterion,
    CountCriterion,
    Criterion,
    Deduction,
    MetricCriterion,
    ObservationCriterion,
    Rubric,
    Veto,
)
from scoring.scenario import ScenarioView
from scoring.scorecard import (
    CriterionResult,
    DeductionResult,
    DeptResult,
    DeptScore,
    Evidence,
    Scorecard,
    SectionResult,
    VetoResult,
    evidence_of,
    num,
)

__all__ = ["ScoringError", "score_events", "score_log"]


def aggregate(values: F64, how: str) -> float:
    """One number from many: mean, median, p90 (linear interpolation), max, min, ratio, sum."""
    if how == "sum":
        return float(np.sum(values))
    if len(values) == 0:
        return math.nan
    if how in ("mean", "ratio"):
        return float(np.mean(values))
    if how == "median":
        return float(np.median(values))
    if how == "p90":
        return float(np.percentile(values, 90))
    if how == "max":
        return float(np.max(values))
    if how == "min":
        return float(np.min(values))
    raise ScoringError(f"unknown aggregate {how}")


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _by_dept(units: Units, n: int) -> list[Units]:
    order = np.argsort(units.dept, kind="stable")
    sorted_dept = units.dept[order]
    bounds = np.searchsorted(sorted_dept, np.arange(n + 1))
    out = []
    for i in range(n):
        mask = np.zeros(len(units), np.bool_)
        mask[order[bounds[i] : bounds[i + 1]]] = True
        out.append(units.select(mask))
    return out


def _evidence(units: Units) -> Evidence:
    return evidence_of(units.ev_seq, units.ev_ts)


class _Scorer:
    def __init__(self, facts: Facts, rubric: Rubric, scenario: ScenarioView | None) -> None:
        self.f = facts
        self.rubric = rubric
        self.scenario = scenario
        self.notes: list[str] = []
        self._units: dict[tuple[str, Any], Units] = {}

    def units(self, spec: Any, params: Any) -> Units:
        key = (spec.name, params)
        if key not in self._units:
            self._units[key] = self.f.units(spec, params, self.scenario)
        return self._units[key]

    # criteria ------------------------------------------------------------------------------
    def criterion(self, section: str, c: Criterion) -> CriterionResult:
        if isinstance(c, MetricCriterion):
            return self.metric(section, c)
        if isinstance(c, CountCriterion):
            return self.count(section, c)
        if isinstance(c, ObservationCriterion):
            return self.observation(section, c)
        return self.checklist(section, c)

    def _result(self, section: str, c: Criterion, **kw: Any) -> CriterionResult:
        return CriterionResult(
            id=c.id, type=c.type, title=c.title, section=section, max=c.points, action=c.action, **kw
        )

    def metric(self, section: str, c: MetricCriterion) -> CriterionResult:
        spec = c.metric
        units = self.units(spec, c.params)
        rule = f"{c.aggregate} of {spec.name}"
        if c.params.deadline is not None and spec.name.endswith("_latency"):
            rule += f" beyond the deadline ({_deadline_text(c.params.deadline)})"
        if c.params.deadline is not None and spec.name == "missed":
            rule += f" (deadline {_deadline_text(c.params.deadline)})"
        rule += f"; {c.curve_name + ' = ' if c.curve_name else ''}{c.curve.describe()}"
        notes: list[str] = []
        zero = zero_point(c.curve)
        if zero is not None and spec.unit == "s" and units.censored.any():
            # never reached: the time until the end of the drill, or the curve's zero point if later
            floored = np.where(units.censored, np.maximum(units.value, zero), units.value)
            units = Units(floored, units.dept, units.ev_seq, units.ev_ts, units.censored, units.label)
        if np.isnan(units.value).all() and len(units):
            notes.append("not measured in this drill; left out of earned and maximum points")
            units = units.select(np.zeros(len(units), np.bool_))
        depts: dict[str, DeptResult] = {}
        if c.scope == "overall":
            value = aggregate(units.value, c.aggregate)
            if math.isnan(value):
                return self._na(section, c, rule, spec.unit, notes or ["no units to measure"])
            fraction = float(apply(c.curve, np.array([value]))[0])
        elif c.scope == "per_department":
            fractions: list[float] = []
            for i, du in enumerate(_by_dept(units, self.f.n_depts)):
                v = aggregate(du.value, c.aggregate)
                did = self.f.depts[i]
                if math.isnan(v):
                    depts[did] = DeptResult(None, None, None, None, 0, Evidence.empty(), "not applicable")
                    continue
                fr = float(apply(c.curve, np.array([v]))[0])
                fractions.append(fr)
                depts[did] = DeptResult(v, fr, c.points * fr, None, len(du), _evidence(du))
            if not fractions:
                return self._na(section, c, rule, spec.unit, notes or ["no department to measure"])
            fraction = _mean(fractions)
            value = math.nan
        else:  # per_command_department: the curve per pair, then fractions combined
            pf = apply(c.curve, units.value)
            if len(pf) == 0:
                return self._na(section, c, rule, spec.unit, notes or ["no commands to measure"])
            rule = f"{spec.name} per command and department; {c.aggregate} of fractions; " + (
                f"{c.curve_name + ' = ' if c.curve_name else ''}{c.curve.describe()}"
            )
            for i, du in enumerate(
                _by_dept(
                    Units(pf, units.dept, units.ev_seq, units.ev_ts, units.censored, units.label),
                    self.f.n_depts,
                )
            ):
                did = self.f.depts[i]
                if len(du) == 0:
                    depts[did] = DeptResult(None, None, None, None, 0, Evidence.empty(), "not applicable")
                    continue
                fr = aggregate(du.value, c.aggregate)
                raw = units.value[units.dept == i]
                depts[did] = DeptResult(float(np.mean(raw)), fr, c.points * fr, None, len(du), _evidence(du))
            fraction = aggregate(pf, c.aggregate)
            value = float(np.mean(units.value))
        censored = int(np.sum(units.censored))
        if censored and spec.unit == "s" and spec.basis in ("pair", "dept"):
            notes.append(
                f"{censored} never reached: counted as the time until the end of the drill "
                "or the curve's zero point, whichever is later"
            )
        return self._result(
            section,
            c,
            applicable=True,
            earned=c.points * fraction,
            fraction=fraction,
            value=None if math.isnan(value) else value,
            unit=spec.unit,
            scope=c.scope,
            rule=rule,
            evidence=_evidence(units),
            departments=depts,
            notes=notes,
        )

    def _na(self, section: str, c: Criterion, rule: str, unit: str, notes: list[str]) -> CriterionResult:
        return self._result(
            section,
            c,
            applicable=False,
            earned=0.0,
            fraction=None,
            value=None,
            unit=unit,
            scope=getattr(c, "scope", "overall"),
            rule=rule,
            evidence=Evidence.empty(),
            notes=notes,
        )

    def count(self, section: str, c: CountCriterion) -> CriterionResult:
        units = self.units(c.metric, c.params)
        rule = f"{c.points:g} points minus {c.deduct:g} per {c.metric.name}, floor 0"
        if c.scope == "overall":
            n = round(float(np.sum(units.value)))
            earned = max(0.0, c.points - c.deduct * n)
            fraction = earned / c.points if c.points else 1.0
            # evidence: only the occurrences (events that counted)
            ev = _evidence(units.select(units.value > 0))
            return self._result(
                section,
                c,
                applicable=True,
                earned=earned,
                fraction=fraction,
                value=float(n),
                unit="count",
                scope=c.scope,
                rule=rule,
                evidence=ev,
            )
        depts: dict[str, DeptResult] = {}
        fractions: list[float] = []
        for i, du in enumerate(_by_dept(units, self.f.n_depts)):
            did = self.f.depts[i]
            if c.metric.basis == "pair" and len(du) == 0:
                depts[did] = DeptResult(None, None, None, None, 0, Evidence.empty(), "not applicable")
                continue
            n = round(float(np.sum(du.value)))
            e = max(0.0, c.points - c.deduct * n)
            fr = e / c.points if c.points else 1.0
            fractions.append(fr)
            depts[did] = DeptResult(float(n), fr, e, n, len(du), _evidence(du.select(du.value > 0)))
        if not fractions:
            return self._na(section, c, rule, "count", ["no department to count"])
        fraction = _mean(fractions)
        total = round(float(np.sum(units.value)))
        return self._result(
            section,
            c,
            applicable=True,
            earned=c.points * fraction,
            fraction=fraction,
            value=float(total),
            unit="count",
            scope=c.scope,
            rule=rule,
            evidence=_evidence(units.select(units.value > 0)),
            departments=depts,
        )

    def observation(self, section: str, c: ObservationCriterion) -> CriterionResult:
        ratings = self.rubric.ratings
        rule = "evaluator rating: " + ", ".join(f"{k} {v:g}" for k, v in ratings.items())
        extra: dict[str, Any] = {
            "capability": {"zh": c.capability.zh, "en": c.capability.en},
            "critical_tasks": [{"zh": t.zh, "en": t.en} for t in c.critical_tasks],
        }
        if c.scope == "overall":
            r = self.f.ratings.get((c.id, None))
            notes = [] if r else ["not rated by an evaluator: scored 0"]
            fraction = ratings[r.rating] if r else 0.0
            ev = Evidence.of([(r.seq, r.ts_us)]) if r else Evidence.empty()
            extra["rating"] = r.rating if r else None
            extra["note"] = r.note if r else ""
            return self._result(
                section,
                c,
                applicable=True,
                earned=c.points * fraction,
                fraction=fraction,
                value=None,
                unit="rating",
                scope=c.scope,
                rule=rule,
                evidence=ev,
                notes=notes,
                extra=extra,
            )
        depts: dict[str, DeptResult] = {}
        fractions: list[float] = []
        evs: list[tuple[int, int]] = []
        unrated = 0
        for did in self.f.depts:
            r = self.f.ratings.get((c.id, did))
            fr = ratings[r.rating] if r else 0.0
            unrated += r is None
            fractions.append(fr)
            if r:
                evs.append((r.seq, r.ts_us))
            depts[did] = DeptResult(
                None,
                fr,
                c.points * fr,
                None,
                1 if r else 0,
                Evidence.of([(r.seq, r.ts_us)]) if r else Evidence.empty(),
                f"{r.rating}: {r.note}" if r else "not rated",
            )
        notes = [f"{unrated} department(s) not rated by an evaluator: scored 0"] if unrated else []
        fraction = _mean(fractions) if fractions else 0.0
        return self._result(
            section,
            c,
            applicable=True,
            earned=c.points * fraction,
            fraction=fraction,
            value=None,
            unit="rating",
            scope=c.scope,
            rule=rule,
            evidence=Evidence.of(evs),
            departments=depts,
            notes=notes,
            extra=extra,
        )

    def checklist(self, section: str, c: ChecklistCriterion) -> CriterionResult:
        items = []
        earned = 0.0
        evs: list[tuple[int, int]] = []
        for it in c.items:
            t = self.f.ticks.get(it.id)
            ok = t is not None and t.checked
            if ok:
                earned += it.points
            if t is not None:
                evs.append((t.seq, t.ts_us))
            items.append(
                {
                    "id": it.id,
                    "text": {"zh": it.text.zh, "en": it.text.en},
                    "points": round(it.points, 2),
                    "checked": ok,
                    "note": t.note if t else "",
                    "seq": t.seq if t else None,
                }
            )
        fraction = earned / c.points if c.points else 1.0
        return self._result(
            section,
            c,
            applicable=True,
            earned=earned,
            fraction=fraction,
            value=None,
            unit="items",
            scope="overall",
            rule="points of the items an evaluator ticked",
            evidence=Evidence.of(evs),
            extra={"items": items},
        )

    # deductions and vetoes -------------------------------------------------------------------
    def deduction(self, d: Deduction) -> DeductionResult:
        units = self.units(d.metric, d.params)
        hit = units.select(units.value > 0)
        by_dept: dict[str, int] = {}
        for i, du in enumerate(_by_dept(hit, self.f.n_depts)):
            n = round(float(np.sum(du.value)))
            if n:
                by_dept[self.f.depts[i]] = n
        count = round(float(np.sum(hit.value)))
        occurrences = count if d.per == "occurrence" else len(by_dept)
        deducted = d.points * occurrences
        if d.max is not None:
            deducted = min(deducted, d.max)
        return DeductionResult(
            d.id,
            d.title,
            d.metric.name,
            d.per,
            d.points,
            occurrences,
            deducted,
            d.max,
            _evidence(hit),
            by_dept,
            d.action,
        )

    def veto(self, v: Veto) -> VetoResult:
        f = self.f
        if v.when in ("critical_incomplete", "critical_missed"):
            crit = f.critical_pairs()
            if v.when == "critical_incomplete":
                final = f.final_stage()
                reached = f.p_stage_ts[np.arange(len(final)), final] != NONE
                bad = crit & ~reached
                detail = "critical command(s) never brought to their last required stage"
            else:
                lat, missing = f.latency(0)
                dl = f.deadlines(0, "from_command", self.scenario)
                bad = crit & (missing | (lat > dl + 1e-9))
                detail = "critical command(s) with no receipt by the deadline"
            idx = np.flatnonzero(bad)
            depts = sorted({f.depts[f.p_dept[i]] for i in idx})
            ev = evidence_of(f.cmd_seq[f.p_cmd[idx]], f.cmd_ts[f.p_cmd[idx]])
            text = f"{len(idx)} {detail}: " + ", ".join(
                f"{f.cmd_ids[f.p_cmd[i]]}/{f.depts[f.p_dept[i]]}" for i in idx[:20]
            )
            if len(idx) > 20:
                text += ", ..."
            return VetoResult(v.id, v.title, bool(len(idx)), v.cap, text if len(idx) else "none", ev, depts)
        assert v.metric is not None
        units = self.units(v.metric, v.params)
        value = aggregate(units.value, v.aggregate)
        triggered = not math.isnan(value) and (
            (v.below is not None and value < v.below) or (v.above is not None and value > v.above)
        )
        cond = f"below {v.below:g}" if v.below is not None else f"above {v.above:g}"
        detail = f"{v.aggregate} of {v.metric.name} = {num(value)} (veto when {cond})"
        return VetoResult(
            v.id, v.title, triggered, v.cap, detail, _evidence(units) if triggered else Evidence.empty(), []
        )

    # departments ---------------------------------------------------------------------------------
    def dept_stats(self) -> dict[str, dict[str, float | int | None]]:
        f = self.f
        out: dict[str, dict[str, float | int | None]] = {}
        lat = [f.latency(s) for s in range(3)]
        app = [f.stage_applicable(s) for s in range(3)]
        dl = f.deadlines(0, "from_command", self.scenario)
        missed = (lat[0][1] | (lat[0][0] > dl + 1e-9)) & app[0]
        for i, did in enumerate(f.depts):
            mine = f.p_dept == i
            row: dict[str, float | int | None] = {}
            ck = int(f.checkin_ts[i])
            row["checkin_s"] = None if ck == NONE else (ck - f.op.start_us) * f.scale
            for s, name in enumerate(("receipt", "on_scene", "completion")):
                sel = mine & app[s]
                vals = lat[s][0][sel]
                row[f"{name}_mean_s"] = float(np.mean(vals)) if len(vals) else None
                row[f"{name}_worst_s"] = float(np.max(vals)) if len(vals) else None
            row["commands"] = int(np.sum(mine))
            row["missed"] = int(np.sum(missed & mine))
            row["declined"] = int(np.sum((f.p_declined_ts != NONE) & mine))
            row["overdue"] = sum(1 for d, *_ in f.overdue if d == i)
            row["uptime"] = float(f.uptime[i]) if f.video_measured else None
            row["frozen_black_s"] = float(f.frozen_black_s[i]) if f.video_measured else None
            out[did] = row
        return out

    def dept_scores(
        self, sections: list[SectionResult], deductions: list[DeductionResult], vetoes: list[VetoResult]
    ) -> list[DeptScore]:
        chosen = set(self.rubric.department_sections) or {s.id for s in sections}
        per_dept_deduct = {d.id: d for d in self.rubric.deductions}
        stats = self.dept_stats()
        out: list[DeptScore] = []
        order = [d.id for d in self.f.op.roster] + [
            d for d in self.f.depts if d not in {r.id for r in self.f.op.roster}
        ]
        for did in order:
            earned: list[float] = []
            maxes: list[float] = []
            for s in sections:
                if s.id not in chosen:
                    continue
                for c in s.criteria:
                    r = c.departments.get(did)
                    if r is None or r.fraction is None or not c.applicable:
                        continue
                    earned.append(c.max * r.fraction)
                    maxes.append(c.max)
            mx = math.fsum(maxes)
            ded = 0.0
            for dr in deductions:
                n = dr.by_dept.get(did, 0)
                if not n:
                    continue
                spec = per_dept_deduct[dr.id]
                amount = spec.points * (n if spec.per == "occurrence" else 1)
                if spec.max is not None:
                    amount = min(amount, spec.max)
                ded += amount
            name = self.f.names[did]
            if mx <= 0:
                out.append(DeptScore(did, name.name_zh, name.name_en, None, None, 0.0, 0.0, ded, stats[did]))
                continue
            score = max(0.0, math.fsum(earned) - ded) / mx * 100.0
            grade = self.rubric.grade_for(score)
            for v in vetoes:
                if v.triggered and did in v.departments:
                    grade = _lower(self.rubric, grade.id, v.cap)
            out.append(
                DeptScore(
                    did, name.name_zh, name.name_en, score, grade.id, math.fsum(earned), mx, ded, stats[did]
                )
            )
        return out

    # everything ----------------------------------------------------------------------------------
    def run(self, head: Head) -> Scorecard:
        r = self.rubric
        f = self.f
        if r.uses_scenario and self.scenario is None:
            self.notes.append(
                "the rubric takes deadlines from the scenario, but none was given: "
                "the commands' own deadlines were used"
            )
        sections: list[SectionResult] = []
        for s in r.sections:
            results = [self.criterion(s.id, c) for c in s.criteria]
            app = math.fsum(c.max for c in results if c.applicable)
            sections.append(
                SectionResult(
                    s.id,
                    s.title,
                    s.points,
                    app,
                    math.fsum(c.earned for c in results if c.applicable),
                    results,
                )
            )
        deductions = [self.deduction(d) for d in r.deductions]
        vetoes = [self.veto(v) for v in r.vetoes]
        applicable = math.fsum(s.applicable for s in sections)
        earned = math.fsum(s.earned for s in sections)
        deducted = math.fsum(d.deducted for d in deductions)
        percent = max(0.0, earned - deducted) / applicable * 100.0 if applicable > 0 else 0.0
        percent = min(percent, 100.0)
        grade = r.grade_for(percent)
        capped = grade
        for v in vetoes:
            if v.triggered:
                capped = _lower(r, capped.id, v.cap)
        op = f.op
        operation = {
            "id": op.id,
            "title": op.title,
            "kind": op.kind,
            "level": op.level,
            "scenario": op.scenario,
            "speed": op.speed,
            "start_us": op.start_us,
            "end_us": op.end_us,
            "ended": op.ended,
            "duration_s": num(f.window_s),
            "level_changes": [{"ts_us": t, "from": a, "to": b} for t, a, b in f.level_changes],
            "evaluators": f.evaluators,
            "commands": len(f.cmd_ids),
            "pairs": len(f.p_cmd),
            "roster": [{"id": d.id, "name_zh": d.name_zh, "name_en": d.name_en} for d in op.roster],
        }
        scenario = None
        if self.scenario is not None:
            scenario = {
                "id": self.scenario.id,
                "title": self.scenario.title,
                "level": self.scenario.level,
                "sha256": self.scenario.sha256,
            }
        injects = [
            {
                "id": i.id,
                "title": i.title,
                "type": i.type,
                "planned_s": num(i.planned_s),
                "actual_s": num(i.actual_s),
                "seq": i.seq,
                "ts_us": i.ts_us,
            }
            for i in f.injects
        ]
        observations = [
            {
                "criterion": k[0],
                "dept": k[1],
                "rating": v.rating,
                "note": v.note,
                "seq": v.seq,
                "ts_us": v.ts_us,
            }
            for k, v in sorted(f.ratings.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ]
        checklist = [
            {"item": t.item, "checked": t.checked, "note": t.note, "seq": t.seq, "ts_us": t.ts_us}
            for t in sorted(f.ticks.values(), key=lambda t: t.item)
        ]
        return Scorecard(
            rubric_id=r.id,
            rubric_title=r.title,
            rubric_version=r.version,
            rubric_sha256=r.sha256,
            log_head=(head.seq, head.hash),
            scenario=scenario,
            operation=operation,
            total=r.total,
            applicable=applicable,
            earned=earned,
            deducted=deducted,
            score=percent * r.total / 100.0,
            percent=percent,
            grade=capped.id,
            grade_uncapped=grade.id,
            grades=[{"id": g.id, "zh": g.label.zh, "en": g.label.en, "min": g.min} for g in r.grades],
            sections=sections,
            deductions=deductions,
            vetoes=vetoes,
            departments=self.dept_scores(sections, deductions, vetoes),
            injects=injects,
            observations=observations,
            checklist=checklist,
            notes=f.notes + self.notes + (list(self.scenario.notes) if self.scenario else []),
        )


def _lower(r: Rubric, current: str, cap: str) -> Any:
    ids = [g.id for g in r.grades]
    return r.grades[max(ids.index(current), ids.index(cap))]


def _deadline_text(d: Any) -> str:
    return f"{d:g}s" if isinstance(d, int | float) else str(d)


def score_drill(
    log: DrillLog, rubric: Rubric, head: Head, scenario: ScenarioView | None = None
) -> tuple[Scorecard, Facts]:
    """Score one operation; also return the facts (the report draws from them)."""
    facts = build_facts(log, scenario)
    return _Scorer(facts, rubric, scenario).run(head), facts


def score_events(
    events: Sequence[Event], rubric: Rubric, scenario: ScenarioView | None = None, op: str | None = None
) -> Scorecard:
    """The pure entry point: verify the events' chain, then score. ChainError if it is broken."""
    head = verify_rows(_row(e) for e in events)
    return score_drill(from_events(events, op), rubric, head, scenario)[0]


def _row(e: Event) -> tuple[Any, ...]:
    return (
        e.seq,
        e.ts_us,
        e.mono_ns,
        e.op,
        e.op_kind,
        e.role,
        e.dept,
        e.kind,
        canonical_json(dict(e.payload)),
        e.prev_hash,
        e.hash,
    )


def score_log(
    path: str,
    rubric: Rubric,
    scenario: ScenarioView | None = None,
    op: str | None = None,
    workers: int | None = None,
) -> tuple[Scorecard, Facts]:
    """Verify and score a log file (the fast path used by the CLI)."""
    from scoring.logread import load

    log, head = load(path, op, workers)
    return score_drill(log, rubric, head, scenario)
