"""Who took part: operation.started.participants and dept.excused make departments not
applicable (not 0): no turnout veto, no uptime 0, out of every average, shown with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader

from scoring.engine import score_events
from scoring.rubric import bundled, load_rubric
from scoring.synth import LogBuilder, default_roster, random_drill

ScoreCli = Callable[..., tuple[dict, Path]]
RUBRIC = str(bundled())


def two_of_sixteen(excuse: bool = False) -> LogBuilder:
    lb = LogBuilder()
    taking = ["fire", "police"]
    for d in taking:
        lb.online(-60, d, op="system")
        lb.publish(-55, d, op="system")
    lb.start(participants=taking)
    lb.checkin(30, "fire")
    lb.checkin(40, "police")
    lb.issue(100, "C1", taking, ["receipt"], {"receipt": 60})
    lb.respond(110, "acknowledged", "C1", "fire")
    lb.respond(120, "acknowledged", "C1", "police")
    if excuse:
        lb.excuse(600, "police", "抽调参加森林火灾实战处置")
    lb.end(1800)
    return lb


def test_two_of_sixteen_take_part_the_rest_are_not_applicable() -> None:
    card = score_events(two_of_sixteen().events(), load_rubric(bundled()))
    crit = {c.id: c for c in card.criteria()}
    # turnout counts the two taking part: both checked in within 5 minutes -> no veto
    assert crit["checkin_share"].value == 1.0 and crit["checkin_share"].earned == 5.0
    assert not next(v for v in card.vetoes if v.id == "low_turnout").triggered
    # uptime: the 14 others are not applicable, not 0
    up = crit["video_uptime"]
    assert {d for d, r in up.departments.items() if r.fraction is not None} == {"fire", "police"}
    assert all(
        r.status == "not_taking_part" for d, r in up.departments.items() if d not in ("fire", "police")
    )
    assert up.fraction == 1.0
    depts = {d.id: d for d in card.departments}
    assert depts["water"].status == "not_taking_part" and depts["water"].score is None
    assert depts["fire"].score is not None
    # the per-department field operations rating leaves them out too (fire, police unrated: 0)
    assert [d for d, r in crit["field_operations"].departments.items() if r.fraction is not None] == [
        "fire",
        "police",
    ]


def test_excused_department_is_not_applicable_with_its_reason() -> None:
    card = score_events(two_of_sixteen(excuse=True).events(), load_rubric(bundled()))
    police = next(d for d in card.departments if d.id == "police")
    assert police.status == "excused" and police.reason == "抽调参加森林火灾实战处置"
    assert police.score is None and len(police.evidence) == 1
    crit = {c.id: c for c in card.criteria()}
    assert crit["receipt_on_time"].departments["police"].status == "excused"
    assert crit["checkin_share"].value == 1.0  # fire alone
    row = next(p for p in card.participants if p["id"] == "police")
    assert row["status"] == "excused" and row["seq"] == police.evidence.seq[0]


def test_older_logs_take_every_roster_department() -> None:
    lb = LogBuilder()
    lb.start()  # no participants key
    lb.checkin(30, "fire")
    lb.end(600)
    card = score_events(lb.events(), load_rubric(bundled()))
    assert all(d.status == "taking_part" for d in card.departments)
    assert next(v for v in card.vetoes if v.id == "low_turnout").triggered  # 1 of 16


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_paper_shows_not_applicable_departments_and_reasons(
    tmp_path: Path, lang: str, score_cli: ScoreCli
) -> None:
    roster = default_roster()
    taking = [d.id for d in roster[:12]]
    db = random_drill(60, seed=8, participants=taking, excused=[("water", 900.0, "防汛抢险任务冲突")]).write(
        tmp_path / "events.db"
    )
    card, pdf = score_cli(db, tmp_path, lang)
    status = {p["id"]: p["status"] for p in card["participants"]}
    assert status["water"] == "excused"
    assert sum(s == "not_taking_part" for s in status.values()) == 4
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "防汛抢险任务冲突" in text
    assert ("已请假" if lang == "zh" else "excused") in text
    assert ("未参演" if lang == "zh" else "not taking part") in text
    flat = text.replace("\n", "")
    assert "11 / 16" in flat  # the cover: 11 scored of 16
