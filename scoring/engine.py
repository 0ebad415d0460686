"""The scoring engine: (events, rubric, optional scenario) -> Scorecard. Pure: no hub server, no PDF."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from hub.logformat import Event, Head, canonical_json, verify_rows
from scoring.catalog import STAGES
from scoring.curves import apply, zero_point
from scoring.drilllog import DrillLog, from_events
from scoring.evidence import pair_table
from scoring.metrics import EXCUSED, F64, NONE, Facts, ScoringError, Units, build_facts
from scoring.notes import Note, note
from scoring.ratings import classify
from scoring.rubric import (
    VIDEO_METRICS,
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
    round_half_up,
    sum_pts,
)
from scoring.trusthead import SignedHeadCheck, TrustedHead, heads_for
from scoring.wording import AGG_ZH, curve_text, exact_duration

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


def _f4(x: float) -> float:
    """Fractions are rounded to 4 decimals before points are computed from them."""
    return round_half_up(x, 4)


def _earned(points: float, fraction: float) -> float:
    """Points earned: the printed fraction times the points, to 2 decimals."""
    return round_half_up(points * _f4(fraction), 2)


class _Scorer:
    def __init__(self, facts: Facts, rubric: Rubric, scenario: ScenarioView | None) -> None:
        self.f = facts
        self.rubric = rubric
        self.scenario = scenario
        self.notes: list[Note] = []
        self._units: dict[tuple[str, Any], Units] = {}
        self.ratings = classify(facts, rubric)

    def units(self, spec: Any, params: Any) -> Units:
        key = (spec.name, params)
        if key not in self._units:
            self._units[key] = self.f.units(spec, params, self.scenario)
        return self._units[key]

    def na(self, i: int) -> DeptResult | None:
        """The result for a department not taking part or excused (None when it is scored)."""
        if self.f.dept_ok[i]:
            return None
        status = self.f.dept_status[i]
        reason = self.f.excused[self.f.depts[i]].reason if status == EXCUSED else ""
        return DeptResult(None, None, None, None, 0, Evidence.empty(), reason, status)

    def na_note(self) -> list[Note]:
        n = int(np.sum(~self.f.dept_ok))
        return [note("depts_na", n=n)] if n else []

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

    def _params(self, c: MetricCriterion | CountCriterion) -> dict[str, Any]:
        """What a reader needs to find the rows a criterion used: its metric and deadline."""
        p = c.params
        out: dict[str, Any] = {"metric": c.metric.name, "basis": c.metric.basis}
        if c.metric.name in ("receipt_latency", "on_scene_latency", "completion_latency", "missed"):
            stage = {"receipt_latency": 0, "on_scene_latency": 1, "completion_latency": 2, "missed": 0}
            out["stage"] = STAGES[stage[c.metric.name]]
        if p.deadline is not None:
            out["deadline"] = p.deadline
            if p.deadline == "from_scenario" and self.scenario is not None:
                stage_name = out.get("stage", "receipt")
                out["scenario_deadlines"] = {
                    lvl: v[stage_name] for lvl, v in sorted(self.scenario.levels.items()) if stage_name in v
                }
        for k in ("within", "stage"):
            v = getattr(p, k)
            if v is not None:
                out[k] = v
        if c.metric.name == "injects_on_time":
            out["tolerance"] = p.tolerance
        return out

    def metric(self, section: str, c: MetricCriterion) -> CriterionResult:
        spec = c.metric
        units = self.units(spec, c.params)
        rule = f"{c.aggregate} of {spec.name}"
        if c.params.deadline is not None and spec.name.endswith("_latency"):
            rule += f" beyond the deadline ({_deadline_text(c.params.deadline)})"
        if c.params.deadline is not None and spec.name == "missed":
            rule += f" (deadline {_deadline_text(c.params.deadline)})"
        if c.params.within is not None:
            rule += f" within {exact_duration(c.params.within, 'en')}"
        curve_words = curve_text(c.curve, "ratio" if c.aggregate == "ratio" else spec.unit, "en")
        rule += f"; {c.curve_name + ' = ' if c.curve_name else ''}{curve_words}"
        notes: list[Note] = self.na_note() if spec.basis in ("dept", "pair") else []
        zero = zero_point(c.curve)
        video = spec.name in VIDEO_METRICS
        if zero is not None and spec.unit == "s" and units.censored.any():
            # never reached: the time until the end of the drill, or the curve's zero point if later
            units = units.with_value(np.where(units.censored, np.maximum(units.value, zero), units.value))
        if np.isnan(units.value).all() and len(units):
            notes.append(note("left_out"))
            units = units.select(np.zeros(len(units), np.bool_))
        elif video:
            notes += self._no_video_notes(c)
        depts: dict[str, DeptResult] = {}
        value: float
        if c.scope == "overall":
            value = aggregate(units.value, c.aggregate)
            if math.isnan(value):
                return self._na(section, c, rule, spec.unit, notes or [note("nothing_to_measure")])
            fraction = _f4(float(apply(c.curve, np.array([value]))[0]))
        elif c.scope == "per_department":
            fractions: list[float] = []
            for i, du in enumerate(_by_dept(units, self.f.n_depts)):
                did = self.f.depts[i]
                gone = self.na(i)
                v = aggregate(du.value, c.aggregate)
                if gone is not None or math.isnan(v):
                    status = "no_video" if video and self.f.no_feed[i] else "not_applicable"
                    depts[did] = gone or DeptResult(None, None, None, None, 0, Evidence.empty(), "", status)
                    continue
                fr = _f4(float(apply(c.curve, np.array([v]))[0]))
                fractions.append(fr)
                status = "no_video" if video and self.f.no_feed[i] else "scored"
                depts[did] = DeptResult(
                    v, fr, _earned(c.points, fr), None, len(du), _evidence(du), "", status
                )
            if not fractions:
                return self._na(section, c, rule, spec.unit, notes or [note("nothing_to_measure")])
            fraction = _f4(_mean(fractions))
            value = math.nan
        else:  # per_command_department: the curve per pair, then fractions combined
            pf = apply(c.curve, units.value)
            if len(pf) == 0:
                return self._na(section, c, rule, spec.unit, notes or [note("nothing_to_measure")])
            rule = f"{spec.name} per command and department; {c.aggregate} of fractions; " + (
                f"{c.curve_name + ' = ' if c.curve_name else ''}{curve_words}"
            )
            for i, du in enumerate(_by_dept(units.with_value(pf), self.f.n_depts)):
                did = self.f.depts[i]
                gone = self.na(i)
                if gone is not None or len(du) == 0:
                    depts[did] = gone or DeptResult(
                        None, None, None, None, 0, Evidence.empty(), "", "not_applicable"
                    )
                    continue
                fr = _f4(aggregate(du.value, c.aggregate))
                raw = units.value[units.dept == i]
                depts[did] = DeptResult(
                    float(np.mean(raw)), fr, _earned(c.points, fr), None, len(du), _evidence(du)
                )
            fraction = _f4(aggregate(pf, c.aggregate))
            value = float(np.mean(units.value))
        censored = int(np.sum(units.censored))
        if censored and spec.unit == "s" and spec.basis in ("pair", "dept") and not video:
            notes.append(note("never_reached", n=censored))
        return self._result(
            section,
            c,
            applicable=True,
            earned=_earned(c.points, fraction),
            fraction=fraction,
            value=None if math.isnan(value) else value,
            unit=spec.unit,
            scope=c.scope,
            rule=rule,
            evidence=_evidence(units),
            departments=depts,
            notes=notes,
            params=self._params(c),
            detail=units,
            detail_fraction=apply(c.curve, units.value),
        )

    def _no_video_notes(self, c: MetricCriterion) -> list[Note]:
        gone = [d for i, d in enumerate(self.f.depts) if self.f.no_feed[i] and self.f.dept_ok[i]]
        if not gone:
            return []
        code = "no_video_na" if c.params.no_video == "not_applicable" else "no_video_zero"
        names = [self.f.names[d] for d in gone]
        zh, en = "、".join(d.name_zh for d in names), ", ".join(d.name_en for d in names)
        return [note(code, n=len(gone), names_zh=zh, names_en=en)]

    def _na(self, section: str, c: Criterion, rule: str, unit: str, notes: list[Note]) -> CriterionResult:
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
            params=self._params(c) if isinstance(c, MetricCriterion | CountCriterion) else {},
        )

    def count(self, section: str, c: CountCriterion) -> CriterionResult:
        units = self.units(c.metric, c.params)
        rule = f"{c.points:g} points minus {c.deduct:g} per {c.metric.name}, floor 0"
        if c.scope == "overall":
            n = round(float(np.sum(units.value)))
            earned = round_half_up(max(0.0, c.points - c.deduct * n), 2)
            fraction = _f4(earned / c.points) if c.points else 1.0
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
                evidence=_evidence(units.select(units.value > 0)),  # only the occurrences
                notes=self.na_note(),
                params=self._params(c),
                detail=units,
            )
        depts: dict[str, DeptResult] = {}
        fractions: list[float] = []
        for i, du in enumerate(_by_dept(units, self.f.n_depts)):
            did = self.f.depts[i]
            gone = self.na(i)
            if gone is not None or (c.metric.basis == "pair" and len(du) == 0):
                depts[did] = gone or DeptResult(
                    None, None, None, None, 0, Evidence.empty(), "", "not_applicable"
                )
                continue
            n = round(float(np.sum(du.value)))
            e = max(0.0, c.points - c.deduct * n)
            fr = _f4(e / c.points) if c.points else 1.0
            fractions.append(fr)
            depts[did] = DeptResult(
                float(n), fr, round_half_up(e, 2), n, len(du), _evidence(du.select(du.value > 0))
            )
        if not fractions:
            return self._na(section, c, rule, "count", [note("nothing_to_measure")])
        fraction = _f4(_mean(fractions))
        total = round(float(np.sum(units.value)))
        return self._result(
            section,
            c,
            applicable=True,
            earned=_earned(c.points, fraction),
            fraction=fraction,
            value=float(total),
            unit="count",
            scope=c.scope,
            rule=rule,
            evidence=_evidence(units.select(units.value > 0)),
            departments=depts,
            notes=self.na_note(),
            params=self._params(c),
            detail=units,
        )

    def observation(self, section: str, c: ObservationCriterion) -> CriterionResult:
        ratings = self.rubric.ratings
        rule = "evaluator rating: " + ", ".join(f"{k} {v:g}" for k, v in ratings.items())
        extra: dict[str, Any] = {
            "capability": {"zh": c.capability.zh, "en": c.capability.en},
            "critical_tasks": [{"zh": t.zh, "en": t.en} for t in c.critical_tasks],
        }
        counted = self.ratings.observations
        if c.scope == "overall":
            r = counted.get((c.id, None))
            fraction = ratings[r.value] if r else 0.0
            extra["rating"] = r.value if r else None
            extra["note"] = r.note if r else ""
            extra["seq"] = r.seq if r else None
            return self._result(
                section,
                c,
                applicable=True,
                earned=_earned(c.points, fraction),
                fraction=_f4(fraction),
                value=None,
                unit="rating",
                scope=c.scope,
                rule=rule,
                evidence=Evidence.of([(r.seq, r.ts_us)]) if r else Evidence.empty(),
                notes=[] if r else [note("not_rated")],
                extra=extra,
            )
        depts: dict[str, DeptResult] = {}
        fractions: list[float] = []
        evs: list[tuple[int, int]] = []
        unrated = 0
        for i, did in enumerate(self.f.depts):
            gone = self.na(i)
            if gone is not None:
                depts[did] = gone
                continue
            r = counted.get((c.id, did))
            fr = ratings[r.value] if r else 0.0
            unrated += r is None
            fractions.append(_f4(fr))
            if r:
                evs.append((r.seq, r.ts_us))
            depts[did] = DeptResult(
                None,
                _f4(fr),
                _earned(c.points, fr),
                None,
                1 if r else 0,
                Evidence.of([(r.seq, r.ts_us)]) if r else Evidence.empty(),
                r.note if r else "",
                "scored" if r else "not_rated",
            )
        notes = [note("depts_not_rated", n=unrated)] if unrated else []
        fraction = _f4(_mean(fractions)) if fractions else 0.0
        return self._result(
            section,
            c,
            applicable=bool(fractions),
            earned=_earned(c.points, fraction) if fractions else 0.0,
            fraction=fraction if fractions else None,
            value=None,
            unit="rating",
            scope=c.scope,
            rule=rule,
            evidence=Evidence.of(evs),
            departments=depts,
            notes=self.na_note() + notes,
            extra=extra,
        )

    def checklist(self, section: str, c: ChecklistCriterion) -> CriterionResult:
        items = []
        earned = 0.0
        evs: list[tuple[int, int]] = []
        for it in c.items:
            t = self.ratings.ticks.get(it.id)
            ok = t is not None and t.value == "checked"
            if ok:
                earned += it.points
            if t is not None:
                evs.append((t.seq, t.ts_us))
            items.append(
                {
                    "id": it.id,
                    "text": {"zh": it.text.zh, "en": it.text.en},
                    "points": round_half_up(it.points, 2),
                    "checked": ok,
                    "note": t.note if t else "",
                    "seq": t.seq if t else None,
                    "evaluator": t.author.name if t else None,
                    "evaluator_id": t.author.id if t else None,
                }
            )
        earned = round_half_up(earned, 2)
        return self._result(
            section,
            c,
            applicable=True,
            earned=earned,
            fraction=_f4(earned / c.points) if c.points else 1.0,
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
            round_half_up(deducted, 2),
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
            else:
                lat, missing = f.latency(0)
                dl = f.deadlines(0, "from_command", self.scenario)
                bad = crit & (missing | (lat > dl + 1e-9))
            idx = np.flatnonzero(bad)
            depts = sorted({f.depts[f.p_dept[i]] for i in idx})
            ev = evidence_of(f.cmd_seq[f.p_cmd[idx]], f.cmd_ts[f.p_cmd[idx]])
            pairs = [(f.cmd_ids[f.p_cmd[i]], f.depts[f.p_dept[i]]) for i in idx]
            listed = ", ".join(f"{c}/{d}" for c, d in pairs[:20]) + (", ..." if len(pairs) > 20 else "")
            detail = note(f"veto_{v.when}", n=len(idx), pairs=listed) if len(idx) else note("veto_none")
            return VetoResult(v.id, v.title, bool(len(idx)), v.cap, detail, ev, depts, pairs)
        assert v.metric is not None
        units = self.units(v.metric, v.params)
        value = aggregate(units.value, v.aggregate)
        triggered = not math.isnan(value) and (
            (v.below is not None and value < v.below) or (v.above is not None and value > v.above)
        )
        limit = v.below if v.below is not None else v.above
        assert limit is not None
        cond = f"below {limit:g}" if v.below is not None else f"above {limit:g}"
        cond_zh = f"低于{limit:g}" if v.below is not None else f"高于{limit:g}"
        detail = note(
            "veto_metric",
            aggregate=v.aggregate,
            metric=v.metric.name,
            metric_zh=v.metric.zh,
            aggregate_zh=AGG_ZH.get(v.aggregate, v.aggregate),
            value="—" if math.isnan(value) else f"{num(value):g}",
            cond=cond,
            cond_zh=cond_zh,
        )
        ev = _evidence(units) if triggered else Evidence.empty()
        return VetoResult(v.id, v.title, triggered, v.cap, detail, ev, [])

    # departments ---------------------------------------------------------------------------------
    def dept_stats(self) -> dict[str, dict[str, float | int | None]]:
        f = self.f
        out: dict[str, dict[str, float | int | None]] = {}
        lat = [f.latency(s) for s in range(3)]
        app = [f.stage_applicable(s) for s in range(3)]
        dl = f.deadlines(0, "from_command", self.scenario)
        missed = (lat[0][1] | (lat[0][0] > dl + 1e-9)) & app[0]
        overdue_by_dept = Counter(d for d, *_ in f.overdue)
        for i, did in enumerate(f.depts):
            mine = f.p_dept == i
            row: dict[str, float | int | None] = {}
            ck = int(f.checkin_ts[i])
            row["checkin_s"] = None if ck == NONE else (ck - f.op.start_us) * f.scale
            for s, name in enumerate(("receipt", "on_scene", "completion")):
                owed = mine & app[s]
                answered = owed & ~lat[s][1]
                vals = lat[s][0][answered]  # answered ones only: a missing answer has no latency
                row[f"{name}_mean_s"] = float(np.mean(vals)) if len(vals) else None
                row[f"{name}_worst_s"] = float(np.max(vals)) if len(vals) else None
                row[f"{name}_owed"] = int(np.sum(owed))
                row[f"{name}_answered"] = int(np.sum(answered))
            row["commands"] = int(np.sum(mine))
            row["missed"] = int(np.sum(missed & mine))
            row["declined"] = int(np.sum((f.p_declined_ts != NONE) & mine))
            row["overdue"] = overdue_by_dept[i]
            row["uptime"] = float(f.uptime[i]) if f.video_measured else None
            row["frozen_black_s"] = float(f.frozen_black_s[i]) if f.video_measured else None
            row["video_live"] = int(not f.no_feed[i]) if f.video_measured else None
            out[did] = row
        return out

    def dept_scores(
        self, sections: list[SectionResult], deductions: list[DeductionResult], vetoes: list[VetoResult]
    ) -> list[DeptScore]:
        chosen = set(self.rubric.department_sections) or {s.id for s in sections}  # as in run()
        per_dept_deduct = {d.id: d for d in self.rubric.deductions}
        stats = self.dept_stats()
        out: list[DeptScore] = []
        f = self.f
        order = [d.id for d in f.op.roster] + [d for d in f.depts if d not in {r.id for r in f.op.roster}]
        index = f.dept_index()
        for did in order:
            i = index[did]
            name = f.names[did]
            if not f.dept_ok[i]:
                ex = f.excused.get(did)
                out.append(
                    DeptScore(
                        did,
                        name.name_zh,
                        name.name_en,
                        None,
                        None,
                        0.0,
                        0.0,
                        0.0,
                        stats[did],
                        f.dept_status[i],
                        ex.reason if ex else "",
                        Evidence.of([(ex.seq, ex.ts_us)]) if ex else Evidence.empty(),
                    )
                )
                continue
            earned: list[float] = []
            maxes: list[float] = []
            for s in sections:
                if s.id not in chosen:
                    continue
                for c in s.criteria:
                    r = c.departments.get(did)
                    if r is None or r.fraction is None or r.earned is None or not c.applicable:
                        continue
                    earned.append(r.earned)
                    maxes.append(c.max)
            mx = sum_pts(maxes)
            ded: list[float] = []
            for dr in deductions:
                n = dr.by_dept.get(did, 0)
                if not n:
                    continue
                spec = per_dept_deduct[dr.id]
                amount = spec.points * (n if spec.per == "occurrence" else 1)
                if spec.max is not None:
                    amount = min(amount, spec.max)
                ded.append(round_half_up(amount, 2))
            e, dd = sum_pts(earned), sum_pts(ded)
            if mx <= 0:
                out.append(DeptScore(did, name.name_zh, name.name_en, None, None, 0.0, 0.0, dd, stats[did]))
                continue
            score = round_half_up(max(0.0, e - dd) / mx * 100.0, 2)
            grade = self.rubric.grade_for(score)
            for v in vetoes:
                if v.triggered and did in v.departments:
                    grade = _lower(self.rubric, grade.id, v.cap)
            out.append(DeptScore(did, name.name_zh, name.name_en, score, grade.id, e, mx, dd, stats[did]))
        return out

    def participants(self) -> list[dict[str, Any]]:
        f = self.f
        out = []
        for i, did in enumerate(f.depts):
            ex = f.excused.get(did)
            out.append(
                {
                    "id": did,
                    "status": f.dept_status[i],
                    "reason": ex.reason if ex else None,
                    "seq": ex.seq if ex else None,
                    "ts_us": ex.ts_us if ex else None,
                }
            )
        return out

    def video_notes(self) -> list[Note]:
        uses = any(
            isinstance(c, MetricCriterion) and c.metric.name in VIDEO_METRICS
            for _, c in self.rubric.criteria()
        )
        if not uses:
            return []
        if not self.f.video_measured:
            return [note("video_not_measured")]
        if self.f.video_source == "presence":
            fallback = self.rubric.video.without_media_events == "presence"
            return [note("video_from_presence" if fallback else "video_presence_left_out")]
        return []

    # everything ----------------------------------------------------------------------------------
    def run(self, head: Head, checked: Sequence[TrustedHead] = ()) -> Scorecard:
        r = self.rubric
        f = self.f
        if r.uses_scenario and self.scenario is None:
            self.notes.append(note("scenario_missing"))
        if (
            self.scenario is not None
            and f.op.scenario
            and self.scenario.id
            and self.scenario.id != f.op.scenario
        ):
            self.notes.append(note("scenario_other", given=self.scenario.id, ran=f.op.scenario))
        sections: list[SectionResult] = []
        for s in r.sections:
            results = [self.criterion(s.id, c) for c in s.criteria]
            sections.append(
                SectionResult(
                    s.id,
                    s.title,
                    s.points,
                    sum_pts([c.max for c in results if c.applicable]),
                    sum_pts([c.earned for c in results if c.applicable]),
                    results,
                )
            )
        deductions = [self.deduction(d) for d in r.deductions]
        vetoes = [self.veto(v) for v in r.vetoes]
        applicable = sum_pts([s.applicable for s in sections])
        earned = sum_pts([s.earned for s in sections])
        deducted = sum_pts([d.deducted for d in deductions])
        net = max(0.0, earned - deducted)
        percent = min(round_half_up(net / applicable * 100.0, 2), 100.0) if applicable > 0 else 0.0
        score = round_half_up(net * r.total / applicable, 2) if applicable > 0 else 0.0
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
            "end_seq": op.end_seq,
            "end_hash": op.end_hash,
            "duration_s": num(f.window_s),
            "level_changes": [{"ts_us": t, "from": a, "to": b} for t, a, b in f.level_changes],
            "evaluators": len(self.ratings.evaluators()),
            "commands": len(f.cmd_ids),
            "pairs": len(f.p_cmd),
            "roster": [{"id": d.id, "name_zh": d.name_zh, "name_en": d.name_en} for d in op.roster],
            "participants": list(op.participants),
            "participants_listed": op.participants_listed,
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
                "rating": v.value,
                "note": v.note,
                "seq": v.seq,
                "ts_us": v.ts_us,
                "evaluator": v.author.name,
                "evaluator_id": v.author.id,
            }
            for k, v in sorted(self.ratings.observations.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ]
        checklist = [
            {
                "item": t.item,
                "checked": t.value == "checked",
                "note": t.note,
                "seq": t.seq,
                "ts_us": t.ts_us,
                "evaluator": t.author.name,
                "evaluator_id": t.author.id,
            }
            for t in sorted(self.ratings.ticks.values(), key=lambda t: t.item or "")
        ]
        ignored = sum(1 for x in self.ratings.records if x.status == "ignored")
        if ignored:
            self.notes.append(note("ratings_ignored", n=ignored))
        if not checked:
            self.notes.append(note("no_checkpoint"))
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
            score=score,
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
            notes=f.notes
            + self.video_notes()
            + self.notes
            + (list(self.scenario.notes) if self.scenario else []),
            ratings=self.ratings.records,
            evaluators=self.ratings.evaluators(),
            checkpoints=[t.to_json() for t in checked],
            video={"source": f.video_source, "measured": f.video_measured},
            appendix=pair_table(f),
            participants=self.participants(),
            department_sections=list(r.department_sections) or [s.id for s in r.sections],
        )


def _lower(r: Rubric, current: str, cap: str) -> Any:
    ids = [g.id for g in r.grades]
    return r.grades[max(ids.index(current), ids.index(cap))]


def _deadline_text(d: Any) -> str:
    return exact_duration(float(d), "en") if isinstance(d, int | float) else str(d)


def score_drill(
    log: DrillLog,
    rubric: Rubric,
    head: Head,
    scenario: ScenarioView | None = None,
    checked: Sequence[TrustedHead] = (),
) -> tuple[Scorecard, Facts]:
    """Score one operation; also return the facts (the report draws from them). `checked`: the
    heads the log was verified to extend (printed on the scorecard)."""
    facts = build_facts(log, scenario)
    return _Scorer(facts, rubric, scenario).run(head, checked), facts


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
    head: Head | None = None,
    signed_check: SignedHeadCheck | None = None,
) -> tuple[Scorecard, Facts]:
    """Verify and score a log file (the fast path used by the CLI). The log must extend `head`
    (handed over out of band) and the latest signed head (`signed_check`, by default
    scoring.trusthead.signed_head_check): ChainError if it does not, TrustError if a signed
    head does not verify."""
    from scoring.logread import load

    checked = heads_for(path, head, signed_check)
    log, verified = load(path, op, workers, [t.head for t in checked])
    return score_drill(log, rubric, verified, scenario, checked)
