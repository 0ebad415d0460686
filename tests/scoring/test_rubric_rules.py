"""The rules docs/rubric.md states for the questions an evaluator asked, by hand: per_unit
boundaries, missing responses with a deadline, `within` in a veto, `stage` in a deduction,
deduction caps per department, unended operations."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.curves import PerUnit, apply
from scoring.drilllog import Department
from scoring.engine import score_events
from scoring.rubric import load_rubric_text
from scoring.synth import LogBuilder

ROSTER = [Department("a", "甲局", "A"), Department("b", "乙局", "B")]
RUBRIC = """
id: rules
title: 规则
version: "1"
total: 10
grades:
  - {id: pass, zh: 合格, en: Pass, min: 60}
  - {id: fail, zh: 不合格, en: Fail, min: 0}
sections:
  - id: s
    title: 签收
    points: 10
    criteria:
      - {id: late, type: metric, title: 签收超时, metric: receipt_latency, deadline: 60s,
         scope: per_command_department, aggregate: mean,
         curve: {type: per_unit, full_at: 0s, unit: 30s, minus: 0.2}, points: 10}
deductions:
  - {id: late_scene, title: 到场超时, metric: overdue, stage: on_scene, per: occurrence, points: 1, max: 2}
vetoes:
  - {id: slow_turnout, title: 1分钟内报到率低于60%,
     when: {metric: checked_in, within: 1m, aggregate: ratio, below: 0.6}, cap: fail}
"""


def test_per_unit_boundaries() -> None:
    c = PerUnit(0.0, 30.0, 0.2)
    got = apply(c, np.array([0.0, 0.001, 30.0, 30.001, 60.0, 150.0, 1e6]))
    assert got.tolist() == pytest.approx([1.0, 0.8, 0.8, 0.6, 0.6, 0.0, 0.0])


def test_missing_response_with_a_deadline_scores_nothing_and_unended_is_noted() -> None:
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.checkin(30, "a")  # within 1 minute
    lb.checkin(90, "b")  # later: 1 of 2 within 1m = 0.5 < 0.6 -> veto
    lb.issue(100, "C1", ["a", "b"], ["receipt", "on_scene"], {"receipt": 60, "on_scene": 120})
    lb.respond(190, "acknowledged", "C1", "a")  # 90 s: 30 s late -> one unit -> 0.8
    lb.overdue(160, "C1", "b", "receipt")  # b never answers
    lb.overdue(220, "C1", "a", "on_scene")
    lb.overdue(220, "C1", "b", "on_scene")
    lb.overdue(230, "C1", "b", "on_scene")
    lb.overdue(240, "C1", "b", "on_scene")
    lb.add(400, "hub", None, "link.stats", {"dept": "a"})  # the last event: no operation.ended
    card = score_events(lb.events(), load_rubric_text(RUBRIC, "rules.yaml"))
    crit = card.criteria()[0]
    # b: the drill runs to 400 s (its last event), 300 s after the issue: 240 s late, or the
    # curve's zero point (0 + 30 * 5 = 150 s) if later -> 240 s -> 0
    assert crit.departments["b"].fraction == 0 and crit.departments["a"].fraction == 0.8
    assert crit.earned == pytest.approx(4.0)  # 10 * mean(0.8, 0)
    # stage: on_scene only: 4 overdue on-scene marks (the receipt one does not count), 1 point
    # each, capped at 2 overall and at 2 for b alone (3 marks)
    ded = card.deductions[0]
    assert ded.count == 4 and ded.deducted == 2.0 and ded.by_dept == {"a": 1, "b": 3}
    depts = {d.id: d for d in card.departments}
    assert depts["a"].deducted == 1.0 and depts["b"].deducted == 2.0
    veto = card.vetoes[0]
    assert veto.triggered and "= 0.5" in str(veto.detail)
    assert any(n.code == "not_ended" for n in card.notes)
    assert card.operation["end_us"] - card.operation["start_us"] == 400_000_000
