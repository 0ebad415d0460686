"""Hand-computed scores for small logs: the arithmetic is written out beside each assertion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.logformat import read_events
from scoring.drilllog import Department
from scoring.engine import score_events, score_log
from scoring.rubric import load_rubric_text
from scoring.synth import LogBuilder

RUBRIC = """
id: tiny
title: {zh: 小测试, en: Tiny}
version: "1"
total: 20
grades:
  - {id: a, zh: 优秀, en: Excellent, min: 90}
  - {id: b, zh: 合格, en: Pass, min: 60}
  - {id: f, zh: 不合格, en: Fail, min: 0}
ratings: {P: 1.0, S: 0.75, M: 0.4, U: 0}
curves:
  fast: {type: linear, full_at: 30s, zero_at: 90s}
sections:
  - id: resp
    title: 响应
    points: 14
    criteria:
      - {id: receipt, type: metric, title: 签收, metric: receipt_latency, scope: per_department,
         aggregate: mean, curve: fast, points: 6}
      - id: onscene
        type: metric
        title: 到场
        metric: on_scene_latency
        scope: overall
        aggregate: max
        curve: {type: steps, steps: [{upto: 5m, fraction: 1.0}, {upto: 10m, fraction: 0.5}]}
        points: 4
      - {id: missed, type: count, title: 漏签, metric: missed, scope: per_department, deduct: 1,
         points: 2}
      - {id: checkin, type: metric, title: 报到, metric: checked_in, scope: overall,
         aggregate: ratio, curve: {type: linear, full_at: 1, zero_at: 0}, points: 2}
  - id: eval
    title: 评估
    points: 6
    criteria:
      - {id: coord, type: observation, title: 指挥协调, capability: 统一指挥, points: 4}
      - id: kit
        type: checklist
        title: 保障
        points: 2
        items: [{id: plan, text: 方案}, {id: brief, text: 交底}]
deductions:
  - {id: late, title: 超时, metric: overdue, per: occurrence, points: 0.5, max: 1}
vetoes:
  - {id: crit, title: 关键指令未完成, when: critical_incomplete, cap: b}
department_score:
  sections: [resp]
"""

ROSTER = [Department("a", "甲局", "Bureau A"), Department("b", "乙局", "Bureau B")]


def small_drill(critical: bool = False, b_on_scene: float | None = 650) -> LogBuilder:
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.checkin(30, "a")  # b never checks in
    lb.issue(
        100, "C1", ["a", "b"], ["receipt", "on_scene"], {"receipt": 60, "on_scene": 600}, critical=critical
    )
    lb.respond(120, "acknowledged", "C1", "a")  # 20 s
    lb.respond(400, "on_scene", "C1", "a")  # 300 s
    lb.overdue(160, "C1", "b", "receipt")
    lb.respond(190, "acknowledged", "C1", "b")  # 90 s: late
    if b_on_scene is not None:
        lb.respond(b_on_scene, "on_scene", "C1", "b")  # 550 s
    lb.issue(1000, "C2", ["a"], ["receipt"], {"receipt": 60})
    lb.respond(1060, "acknowledged", "C2", "a")  # 60 s: exactly on the deadline
    lb.observe(1500, "coord", "S")
    lb.tick(1600, "plan")
    lb.end(2000)
    return lb


def test_small_drill_by_hand(tmp_path: Path) -> None:
    rubric = load_rubric_text(RUBRIC, "tiny.yaml")
    path = small_drill().write(tmp_path / "events.db")
    card, _ = score_log(str(path), rubric)
    crit = {c.id: c for c in card.criteria()}

    # receipt, per department mean, linear 1 at 30 s, 0 at 90 s (fractions to 4 decimals):
    #   a: mean(20, 60) = 40 s -> (90 - 40) / 60 = 0.8333;  b: 90 s -> 0
    #   criterion = 6 * mean(0.8333, 0) = 6 * 0.4167 (0.41665 halves up) = 2.5002 -> 2.50
    assert crit["receipt"].departments["a"].value == pytest.approx(40)
    assert crit["receipt"].departments["a"].fraction == 0.8333
    assert crit["receipt"].fraction == 0.4167
    assert crit["receipt"].departments["b"].fraction == pytest.approx(0)
    assert crit["receipt"].earned == pytest.approx(2.5)
    # on scene, overall max: max(300, 550) = 550 s <= 10 min -> 0.5; 4 * 0.5 = 2
    assert crit["onscene"].value == pytest.approx(550)
    assert crit["onscene"].earned == pytest.approx(2.0)
    # missed (receipt deadline from the command, 60 s; 60 s is on time):
    #   a 0 missed -> 2/2 = 1; b 1 missed -> (2 - 1)/2 = 0.5; 2 * mean(1, 0.5) = 1.5
    assert crit["missed"].departments["b"].count == 1
    assert crit["missed"].earned == pytest.approx(1.5)
    # checked in: 1 of 2 -> ratio 0.5 -> linear(1 at 1, 0 at 0) = 0.5; 2 * 0.5 = 1
    assert crit["checkin"].earned == pytest.approx(1.0)
    # observation S = 0.75 of 4 = 3; checklist 1 of 2 items, 1 point each = 1
    assert crit["coord"].earned == pytest.approx(3.0)
    assert crit["kit"].earned == pytest.approx(1.0)
    # earned 2.5 + 2 + 1.5 + 1 + 3 + 1 = 11; deduction: 1 overdue * 0.5 = 0.5
    assert card.earned == pytest.approx(11.0)
    assert card.deducted == pytest.approx(0.5)
    # (11 - 0.5) / 20 = 52.5 % -> grade f; on the 20-point scale 10.5
    assert card.percent == pytest.approx(52.5)
    assert card.score == pytest.approx(10.5)
    assert card.grade == "f"
    # department scores (section resp: receipt 6 + missed 2 = 8 points):
    #   a: (6 * 0.8333 + 2 * 1) / 8 = 7 / 8 = 87.5 -> b
    #   b: (6 * 0 + 2 * 0.5 - 0.5 overdue) / 8 = 0.5 / 8 = 6.25 -> f
    depts = {d.id: d for d in card.departments}
    assert depts["a"].score == pytest.approx(87.5)
    assert depts["a"].grade == "b"
    assert depts["b"].score == pytest.approx(6.25)
    assert depts["b"].grade == "f"
    # evidence: the receipt of b is C1's issue and b's acknowledgement
    evs = read_events(path)
    issue = next(e for e in evs if e.kind == "command.issued")
    ack_b = next(e for e in evs if e.kind == "command.acknowledged" and e.dept == "b")
    got = crit["receipt"].departments["b"].evidence.to_json()
    assert got == [[issue.seq, issue.ts_us], [ack_b.seq, ack_b.ts_us]]
    # the deduction names its overdue event
    od = next(e for e in evs if e.kind == "command.overdue")
    assert card.deductions[0].evidence.to_json() == [[od.seq, od.ts_us]]


def test_veto_caps_grade_and_missing_response_is_censored(tmp_path: Path) -> None:
    rubric = load_rubric_text(RUBRIC, "tiny.yaml")
    # b never reports on scene for a critical command: the veto caps the grade at b,
    # and b's on-scene time counts as the rest of the drill: 2000 - 100 = 1900 s -> 0
    events = small_drill(critical=True, b_on_scene=None).events()
    card = score_events(events, rubric)
    crit = {c.id: c for c in card.criteria()}
    assert crit["onscene"].value == pytest.approx(1900)
    assert crit["onscene"].earned == 0
    veto = card.vetoes[0]
    assert veto.triggered and veto.departments == ["b"]
    assert "C1/b" in str(veto.detail)
    # 11 - 2 (on scene) = 9 earned; (9 - 0.5) / 20 = 42.5 % -> f (already below the cap)
    assert card.percent == pytest.approx(42.5)
    assert card.grade == "f"


def test_veto_lowers_a_good_grade() -> None:
    rubric = load_rubric_text(RUBRIC, "tiny.yaml")
    lb = LogBuilder(roster=ROSTER[:1])
    lb.start()
    lb.checkin(5, "a")
    lb.issue(10, "C1", ["a"], ["receipt", "completed"], {"receipt": 60, "completed": 600}, critical=True)
    lb.respond(20, "acknowledged", "C1", "a")  # 10 s, never completed
    lb.observe(50, "coord", "P")
    lb.tick(60, "plan")
    lb.tick(61, "brief")
    lb.end(100)
    card = score_events(lb.events(), rubric)
    # receipt 10 s -> 1 (6); on scene not required -> not applicable (4 points left out);
    # missed 0 -> 2; checked in 1/1 -> 2; P -> 4; both items -> 2: 16 of 16 = 100 %
    assert card.applicable == pytest.approx(16)
    assert card.percent == pytest.approx(100)
    assert card.grade_uncapped == "a"
    assert card.grade == "b"  # capped by the critical command never completed


def test_same_inputs_same_bytes_and_fast_path_equals_pure_path(tmp_path: Path) -> None:
    rubric = load_rubric_text(RUBRIC, "tiny.yaml")
    path = small_drill().write(tmp_path / "events.db")
    fast = score_log(str(path), rubric)[0].to_json()
    again = score_log(str(path), rubric)[0].to_json()
    pure = score_events(read_events(path), rubric).to_json()
    assert fast == again == pure
    doc = json.loads(fast)
    assert doc["log_head"]["seq"] == len(read_events(path))
    assert doc["rubric"]["sha256"] == rubric.sha256


SCENARIO_RUBRIC = """
id: deadlines
title: 时限
version: "1"
total: 10
grades:
  - {id: ok, zh: 合格, en: Pass, min: 60}
  - {id: fail, zh: 不合格, en: Fail, min: 0}
sections:
  - id: s
    title: 签收
    points: 10
    criteria:
      - {id: r, type: metric, title: 签收时效, metric: receipt_latency, deadline: from_scenario,
         scope: per_command_department, aggregate: mean,
         curve: {type: per_unit, full_at: 0s, unit: 30s, minus: 0.2}, points: 10}
"""


def test_deadline_from_scenario_in_drill_time() -> None:
    from scoring.scenario import scenario_from_data

    rubric = load_rubric_text(SCENARIO_RUBRIC, "deadlines.yaml")
    lb = LogBuilder(roster=ROSTER[:1], speed=2.0)  # compressed: 1 logged second = 2 drill seconds
    lb.start()
    lb.issue(10, "C1", ["a"], ["receipt"], {"receipt": 30})  # logged (real) 30 s = 60 s drill
    lb.respond(40, "acknowledged", "C1", "a")  # 30 s logged = 60 s drill
    lb.end(100)
    events = lb.events()
    # the scenario's level II receipt deadline is 30 s (drill time): 60 - 30 = 30 s late,
    # one started 30 s unit -> 1 - 0.2 = 0.8 -> 8 points
    scenario = scenario_from_data(
        {"id": "s", "title": "t", "level": "II", "levels": {"II": {"receipt": "30s"}}}
    )
    card = score_events(events, rubric, scenario)
    assert card.criteria()[0].value == pytest.approx(30)
    assert card.earned == pytest.approx(8)
    # without a scenario the command's own deadline (30 s logged = 60 s drill) is used:
    # 60 - 60 = 0 late -> 10 points, and the scorecard says so
    card = score_events(events, rubric)
    assert card.earned == pytest.approx(10)
    assert any("none was given" in n for n in map(str, card.notes))


def test_bundled_scenario_files_load() -> None:
    from scoring.scenario import load_scenario

    root = Path(__file__).resolve().parents[2] / "drills" / "scenarios"
    for path in sorted(root.glob("*.yaml")):
        view = load_scenario(path)
        assert view.id == path.stem
        assert view.injects
    weather = load_scenario(root / "extreme-weather.yaml")
    assert weather.deadline("II", "receipt") == 60
    assert weather.deadline("I", "on_scene") == 600


INJECT_RUBRIC = """
id: injects
title: 注入
version: "1"
total: 10
grades:
  - {id: pass, zh: 合格, en: Pass, min: 60}
  - {id: fail, zh: 不合格, en: Fail, min: 0}
sections:
  - id: s
    title: 注入
    points: 10
    criteria:
      - {id: on_time, type: metric, title: 准时, metric: injects_on_time, tolerance: 1m,
         aggregate: ratio, curve: {type: linear, full_at: 1, zero_at: 0}, points: 6}
      - {id: worst, type: metric, title: 最大偏差, metric: inject_delay, aggregate: mean,
         curve: {type: linear, full_at: 0s, zero_at: 200s}, points: 4}
"""


def test_injects_planned_vs_actual_with_scenario() -> None:
    from scoring.scenario import scenario_from_data

    rubric = load_rubric_text(INJECT_RUBRIC, "injects.yaml")
    lb = LogBuilder(roster=ROSTER[:1])
    lb.start()
    lb.inject(330, "I1", 300)  # 30 s late: on time (tolerance 60 s)
    lb.inject(700, "I2", 600)  # 100 s late: not on time
    lb.end(1000)
    events = lb.events()
    # without a scenario: on time 1 of 2 -> 0.5 * 6 = 3; mean offset (30 + 100) / 2 = 65 s
    # -> (200 - 65) / 200 = 0.675 * 4 = 2.7
    card = score_events(events, rubric)
    assert card.earned == pytest.approx(3 + 2.7)
    # the scenario plans I3 at 15m, never released: on time 1 of 3 -> 2; its offset counts as
    # infinite -> mean infinite -> 0; I4 is a contingency (released only if needed): ignored
    scenario = scenario_from_data(
        {
            "id": "s",
            "title": "t",
            "level": "II",
            "injects": [
                {"id": "I1", "at": "5m", "type": "event"},
                {"id": "I2", "at": "10m", "type": "event"},
                {"id": "I3", "at": "15m", "type": "command"},
                {"id": "I4", "at": "16m", "type": "contingency"},
            ],
        }
    )
    card = score_events(events, rubric, scenario)
    assert card.earned == pytest.approx(2.0)
    assert [i["id"] for i in card.injects] == ["I1", "I2", "I3"]
    assert any("I3" in n for n in map(str, card.notes))


def test_latest_drill_is_scored_when_the_log_holds_several() -> None:
    rubric = load_rubric_text(RUBRIC, "tiny.yaml")
    first = small_drill()
    second = LogBuilder(op="drill-20260601-02", roster=ROSTER, t0_us=first.t0_us + 10**10)
    second.start()
    second.end(50)
    first.records += second.records
    card = score_events(first.events(), rubric)
    assert card.operation["id"] == "drill-20260601-02"
    assert any("drill-20260601-01" in n and "--operation" in n for n in map(str, card.notes))
    assert score_events(first.events(), rubric, op="drill-20260601-01").earned == pytest.approx(11)


def test_never_checked_in_scores_nothing_even_in_a_short_drill() -> None:
    from scoring.rubric import bundled, load_rubric

    rubric = load_rubric(bundled())
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.checkin(30, "a")  # 30 s <= 2 min: full marks
    lb.end(100)  # b never checks in; the drill lasts only 100 s
    card = score_events(lb.events(), rubric)
    crit = {c.id: c for c in card.criteria()}["checkin_speed"]
    # checkin_fast is linear, 1 at 2m, 0 at 10m: b counts as max(100 s, 10 min) = 600 s -> 0
    assert crit.departments["a"].fraction == pytest.approx(1.0)
    assert crit.departments["b"].fraction == pytest.approx(0.0)
    assert crit.earned == pytest.approx(5 * 0.5)


VIDEO_RUBRIC = """
id: video
title: 视频
version: "1"
total: 17
grades:
  - {id: pass, zh: 合格, en: Pass, min: 60}
  - {id: fail, zh: 不合格, en: Fail, min: 0}
sections:
  - id: v
    title: 视频
    points: 17
    criteria:
      - {id: up, type: metric, title: 在线率, metric: video_uptime, scope: per_department,
         curve: {type: linear, full_at: 1.0, zero_at: 0.5}, points: 10}
      - {id: fb, type: metric, title: 冻结黑屏, metric: frozen_black_s, scope: per_department,
         curve: {type: per_unit, full_at: 30s, unit: 10s, minus: 0.1}, points: 5}
      - {id: dc, type: count, title: 掉线, metric: disconnects, scope: per_department, deduct: 1,
         points: 2}
"""


def test_video_uptime_by_hand() -> None:
    rubric = load_rubric_text(VIDEO_RUBRIC, "video.yaml")
    lb = LogBuilder(roster=ROSTER)
    lb.online(-10, "a", op="system")  # online before the drill starts: counts from 0
    lb.start()
    lb.video(100, "a", "frozen")
    lb.video(150, "a", "restored")  # 50 s frozen
    lb.video(500, "a", "lost")
    lb.video(600, "a", "restored")  # 100 s lost: down, but not frozen/black
    lb.offline(800, "a")  # heartbeat: an unplanned disconnect
    lb.online(900, "a", conn="c2")
    lb.end(1000)  # b is never online
    card = score_events(lb.events(), rubric)
    crit = {c.id: c for c in card.criteria()}
    # a up: 0-100, 150-500, 600-800, 900-1000 = 100 + 350 + 200 + 100 = 750 of 1000 s
    assert crit["up"].departments["a"].value == pytest.approx(0.75)
    assert crit["up"].departments["b"].value == pytest.approx(0.0)
    # linear 1 at 1.0, 0 at 0.5: a 0.5, b 0 -> 10 * 0.25 = 2.5
    assert crit["up"].earned == pytest.approx(2.5)
    # frozen/black: a 50 s -> 20 s over 30 s = 2 units of 10 s -> 0.8; b had no feed at all
    # (never online), which counts as no picture: 0 (video.no_video defaults to zero);
    # 5 * mean(0.8, 0) = 2
    assert crit["fb"].departments["a"].value == pytest.approx(50)
    assert crit["fb"].departments["b"].fraction == 0
    assert crit["fb"].earned == pytest.approx(2.0)
    # disconnects: a 1 -> (2 - 1) / 2 = 0.5; b 0 -> 1; 2 * 0.75 = 1.5
    assert crit["dc"].earned == pytest.approx(1.5)
    assert card.departments[0].stats["uptime"] == pytest.approx(0.75)


def test_video_not_measured_is_left_out() -> None:
    rubric = load_rubric_text(VIDEO_RUBRIC, "video.yaml")
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.end(1000)
    card = score_events(lb.events(), rubric)
    crit = {c.id: c for c in card.criteria()}
    assert not crit["up"].applicable and not crit["fb"].applicable
    # only the disconnect count (2 points, none happened) is left: 2 of 2 = 100 %
    assert card.applicable == pytest.approx(2)
    assert card.percent == pytest.approx(100)
    assert any("not measured" in n for n in map(str, card.notes))
    assert card.departments[0].stats["uptime"] is None


@pytest.mark.parametrize(("reason", "counted"), [("heartbeat", 1), ("error", 1),
                                                 ("link_lost", 1), ("closed", 0),
                                                 ("revoked", 0)])
def test_disconnects_are_lost_links_only(reason: str, counted: int) -> None:
    """A lost link counts (the hub's heartbeat, a dropped socket, or the client finding its
    pings unanswered); a department closing its console or the hub revoking it does not."""
    rubric = load_rubric_text(VIDEO_RUBRIC, "video.yaml")
    lb = LogBuilder(roster=ROSTER)
    lb.online(-10, "a", op="system")
    lb.start()
    lb.offline(400, "a", reason=reason)
    lb.online(410, "a", conn="c2")
    lb.end(1000)
    crit = {c.id: c for c in score_events(lb.events(), rubric).criteria()}
    assert crit["dc"].departments["a"].value == counted
