"""Findings of a scored drill, for its improvement plan and for following them up across drills.

Severity: a triggered veto is a 不足项 (deficiency); a criterion below 60% an 整改项 (must fix);
one below 90%, and any deduction, an 改进项 (improvement).
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.rubric import Text
from scoring.scorecard import Scorecard, round_half_up

SEVERITY_ORDER = {"不足项": 0, "整改项": 1, "改进项": 2}


@dataclass(frozen=True)
class Finding:
    """One item of the improvement plan; `key` is the same across drills of one rubric."""

    key: str  # veto:ID, criterion:ID or deduction:ID
    title: Text
    severity: str
    owners: tuple[str, ...]  # department ids (empty: the command center)
    action: Text | None
    earned: float | None = None
    max: float | None = None
    count: int | None = None

    def text(self, lang: str) -> str:
        title = self.title.get(lang)
        if self.earned is not None and self.max is not None:
            return f"{title} ({round_half_up(self.earned, 2):.2f}/{round_half_up(self.max, 2):.2f})"
        if self.count is not None:
            return f"{title} ×{self.count}"
        return title


def findings(card: Scorecard) -> list[Finding]:
    """The improvement plan's items, most severe first."""
    out: list[Finding] = []
    for v in card.vetoes:
        if v.triggered:
            out.append(Finding(f"veto:{v.id}", v.title, "不足项", tuple(v.departments), None))
    for c in card.criteria():
        if not c.applicable or c.fraction is None or c.fraction >= 0.9:
            continue
        weak = tuple(
            d for d, r in sorted(c.departments.items()) if r.fraction is not None and r.fraction < 0.6
        )
        severity = "整改项" if c.fraction < 0.6 else "改进项"
        out.append(Finding(f"criterion:{c.id}", c.title, severity, weak, c.action, c.earned, c.max))
    for d in card.deductions:
        if d.deducted > 0:
            out.append(
                Finding(
                    f"deduction:{d.id}", d.title, "改进项", tuple(sorted(d.by_dept)), d.action, count=d.count
                )
            )
    out.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return out
