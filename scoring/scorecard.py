"""The scorecard: results with their evidence, and its canonical JSON (same inputs, same bytes)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scoring.notes import Note
from scoring.rubric import Text

if TYPE_CHECKING:
    from scoring.evidence import PairTable
    from scoring.metrics import Units
    from scoring.ratings import RatingRecord

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
SCHEMA = "commandhub.scorecard/2"


def round_half_up(x: float, places: int) -> float:
    """The one rounding rule: `places` decimals, halves away from zero, after float noise below
    1e-6 of the last place is removed (so 2.675 and 0.1 + 0.2 round as written)."""
    scale = 10.0**places
    v = round(abs(x) * scale, 6)
    return math.copysign(math.floor(v + 0.5), x) / scale + 0.0


def round_array(x: F64, places: int) -> F64:
    """round_half_up over an array (NaN stays NaN)."""
    scale = 10.0**places
    v = np.round(np.abs(x) * scale, 6)
    return np.asarray(np.copysign(np.floor(v + 0.5), x) / scale + 0.0, np.float64)


def sum_pts(xs: list[float]) -> float:
    """The sum of printed (2-decimal) points, exact."""
    return round_half_up(math.fsum(xs), 2)


def evidence_of(seq: I64, ts: I64) -> Evidence:
    """Evidence from parallel seq/ts arrays of any shape: unique, non-zero, in seq order."""
    s = np.asarray(seq, np.int64).reshape(-1)
    t = np.asarray(ts, np.int64).reshape(-1)
    keep = s > 0
    s, t = s[keep], t[keep]
    if len(s) == 0:
        return Evidence.empty()
    uniq, idx = np.unique(s, return_index=True)
    return Evidence(uniq, t[idx])


@dataclass(frozen=True)
class Evidence:
    """The events a number came from: their seqs and hub times (ts_us)."""

    seq: I64
    ts_us: I64

    @staticmethod
    def empty() -> Evidence:
        return Evidence(np.zeros(0, np.int64), np.zeros(0, np.int64))

    @staticmethod
    def of(pairs: list[tuple[int, int]]) -> Evidence:
        if not pairs:
            return Evidence.empty()
        return evidence_of(
            np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)
        )

    def __len__(self) -> int:
        return len(self.seq)

    def merge(self, other: Evidence) -> Evidence:
        return evidence_of(np.concatenate([self.seq, other.seq]), np.concatenate([self.ts_us, other.ts_us]))

    def to_json(self) -> list[list[int]]:
        return np.stack([self.seq, self.ts_us], axis=1).tolist() if len(self) else []


@dataclass
class DeptResult:
    """A criterion's result for one department."""

    value: float | None
    fraction: float | None  # None: not applicable to this department
    earned: float | None
    count: int | None
    units: int
    evidence: Evidence
    note: str = ""
    # scored; not_applicable (nothing to measure), excused, not_taking_part, no_video, not_rated
    status: str = "scored"


@dataclass
class CriterionResult:
    id: str
    type: str
    title: Text
    section: str
    max: float
    applicable: bool
    earned: float
    fraction: float | None
    value: float | None
    unit: str
    scope: str
    rule: str
    evidence: Evidence
    departments: dict[str, DeptResult] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    action: Text | None = None
    params: dict[str, Any] = field(default_factory=dict)  # metric, stage, deadline source
    # the units measured and each one's fraction under the curve (for the paper; not in the JSON)
    detail: Units | None = None
    detail_fraction: F64 | None = None


@dataclass
class SectionResult:
    id: str
    title: Text
    max: float
    applicable: float
    earned: float
    criteria: list[CriterionResult]


@dataclass
class DeductionResult:
    id: str
    title: Text
    metric: str
    per: str
    points_each: float
    count: int
    deducted: float
    max: float | None
    evidence: Evidence
    by_dept: dict[str, int]
    action: Text | None = None


@dataclass
class VetoResult:
    id: str
    title: Text
    triggered: bool
    cap: str
    detail: Note
    evidence: Evidence
    departments: list[str]
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (command, department)


@dataclass
class DeptScore:
    id: str
    name_zh: str
    name_en: str
    score: float | None  # 0..100, None when no per-department criterion applies
    grade: str | None
    earned: float
    max: float
    deducted: float
    stats: dict[str, float | int | None]
    status: str = "taking_part"  # taking_part, excused, not_taking_part
    reason: str = ""  # the excusal's reason
    evidence: Evidence = field(default_factory=lambda: Evidence.empty())  # e.g. the dept.excused event


@dataclass
class Scorecard:
    rubric_id: str
    rubric_title: Text
    rubric_version: str
    rubric_sha256: str
    log_head: tuple[int, str]
    scenario: dict[str, str] | None
    operation: dict[str, Any]
    total: float
    applicable: float
    earned: float
    deducted: float
    score: float  # on the rubric's total scale
    percent: float
    grade: str
    grade_uncapped: str
    grades: list[dict[str, Any]]
    sections: list[SectionResult]
    deductions: list[DeductionResult]
    vetoes: list[VetoResult]
    departments: list[DeptScore]
    injects: list[dict[str, Any]]
    observations: list[dict[str, Any]]
    checklist: list[dict[str, Any]]
    notes: list[Note]
    ratings: list[RatingRecord] = field(default_factory=list)  # every rating event, with its status
    evaluators: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # heads the log was checked against
    video: dict[str, Any] = field(default_factory=dict)
    appendix: PairTable | None = None
    participants: list[dict[str, Any]] = field(default_factory=list)  # each department's status
    department_sections: list[str] = field(default_factory=list)  # sections of the department score

    def grade_label(self, gid: str | None, lang: str) -> str:
        for g in self.grades:
            if g["id"] == gid:
                return str(g["zh"] if lang == "zh" else g["en"])
        return "—"

    def criteria(self) -> list[CriterionResult]:
        return [c for s in self.sections for c in s.criteria]

    def dept(self, did: str) -> DeptScore:
        return next(d for d in self.departments if d.id == did)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "rubric": {
                "id": self.rubric_id,
                "title": _text(self.rubric_title),
                "version": self.rubric_version,
                "sha256": self.rubric_sha256,
            },
            "log_head": {"seq": self.log_head[0], "hash": self.log_head[1]},
            "scenario": self.scenario,
            "operation": self.operation,
            "total": pts(self.total),
            "applicable": pts(self.applicable),
            "earned": pts(self.earned),
            "deducted": pts(self.deducted),
            "score": pts(self.score),
            "percent": pts(self.percent),
            "grade": self.grade,
            "grade_uncapped": self.grade_uncapped,
            "grades": self.grades,
            "sections": [_section(s) for s in self.sections],
            "deductions": [_deduction(d) for d in self.deductions],
            "vetoes": [_veto(v) for v in self.vetoes],
            "departments": [_dept_score(d) for d in self.departments],
            "injects": self.injects,
            "observations": self.observations,
            "checklist": self.checklist,
            "notes": [n.text("en") for n in self.notes],
            "ratings": [r.to_json() for r in self.ratings],
            "evaluators": self.evaluators,
            "checkpoints": self.checkpoints,
            "video": self.video,
            "participants": self.participants,
            "department_sections": self.department_sections,
            "appendix": {"pairs": self.appendix.to_json() if self.appendix is not None else None},
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, fixed rounding, UTF-8; the same inputs give the same bytes."""
        return (
            json.dumps(
                self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
            + "\n"
        )


def pts(x: float | None) -> float | None:
    """Points and percentages: 2 decimals."""
    return None if x is None or not math.isfinite(x) else round_half_up(float(x), 2)


def frac(x: float | None) -> float | None:
    """Fractions: 4 decimals."""
    return None if x is None or not math.isfinite(x) else round_half_up(float(x), 4)


def num(x: float | None) -> float | None:
    """Measured values (seconds, ratios): 3 decimals."""
    return None if x is None or not math.isfinite(x) else round_half_up(float(x), 3)


def _text(t: Text | None) -> dict[str, str] | None:
    return None if t is None else {"zh": t.zh, "en": t.en}


def _dept_result(d: DeptResult) -> dict[str, Any]:
    return {
        "value": num(d.value),
        "fraction": frac(d.fraction),
        "earned": pts(d.earned),
        "count": d.count,
        "units": d.units,
        "evidence": d.evidence.to_json(),
        "note": d.note,
        "status": d.status,
    }


def _criterion(c: CriterionResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "type": c.type,
        "title": _text(c.title),
        "section": c.section,
        "max": pts(c.max),
        "applicable": c.applicable,
        "earned": pts(c.earned),
        "fraction": frac(c.fraction),
        "value": num(c.value),
        "unit": c.unit,
        "scope": c.scope,
        "rule": c.rule,
        "evidence": c.evidence.to_json(),
        "departments": {k: _dept_result(v) for k, v in sorted(c.departments.items())},
        "notes": [n.text("en") for n in c.notes],
        "extra": c.extra,
        "action": _text(c.action),
        "params": c.params,
    }


def _section(s: SectionResult) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": _text(s.title),
        "max": pts(s.max),
        "applicable": pts(s.applicable),
        "earned": pts(s.earned),
        "criteria": [_criterion(c) for c in s.criteria],
    }


def _deduction(d: DeductionResult) -> dict[str, Any]:
    return {
        "id": d.id,
        "title": _text(d.title),
        "metric": d.metric,
        "per": d.per,
        "points_each": pts(d.points_each),
        "count": d.count,
        "deducted": pts(d.deducted),
        "max": pts(d.max),
        "evidence": d.evidence.to_json(),
        "by_dept": dict(sorted(d.by_dept.items())),
        "action": _text(d.action),
    }


def _veto(v: VetoResult) -> dict[str, Any]:
    return {
        "id": v.id,
        "title": _text(v.title),
        "triggered": v.triggered,
        "cap": v.cap,
        "detail": v.detail.text("en"),
        "evidence": v.evidence.to_json(),
        "departments": v.departments,
        "pairs": [list(p) for p in v.pairs],
    }


def _dept_score(d: DeptScore) -> dict[str, Any]:
    stats = {k: (v if isinstance(v, int) or v is None else num(v)) for k, v in sorted(d.stats.items())}
    return {
        "id": d.id,
        "name_zh": d.name_zh,
        "name_en": d.name_en,
        "score": pts(d.score),
        "grade": d.grade,
        "earned": pts(d.earned),
        "max": pts(d.max),
        "deducted": pts(d.deducted),
        "stats": stats,
        "status": d.status,
        "reason": d.reason,
        "evidence": d.evidence.to_json(),
    }
