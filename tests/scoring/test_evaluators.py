"""Evaluators: every rating carries its author; superseded ratings and ratings that fit no criterion
(an overall criterion rated for a department, in older logs) are listed with the reason, never
silently dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader

from scoring.drilllog import Department
from scoring.rubric import bundled
from scoring.synth import LogBuilder

ScoreCli = Callable[..., tuple[dict, Path]]
RUBRIC = str(bundled())
ROSTER = [Department("fire", "消防救援大队", "Fire"), Department("water", "水务局", "Water")]


def drill() -> LogBuilder:
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.checkin(10, "fire")
    lb.observe(100, "command_coordination", "M", None, "开始较慢", "王明", "a1b2c3d4")
    lb.observe(200, "command_coordination", "S", None, "改正后及时", "王明", "a1b2c3d4")  # supersedes
    lb.observe(250, "command_coordination", "P", "fire", "面向消防的评定", "李华", "e5f6a7b8")  # misfit
    lb.observe(300, "field_operations", "P", "fire", "", "李华", "e5f6a7b8")
    lb.observe(310, "field_operations", "U", "water", "", "3f2a9c1d")  # an older log: 8-hex token id
    lb.observe(320, "field_operations", "S", None, "", "李华", "e5f6a7b8")  # no department: misfit
    lb.tick(400, "plan_approved", True, "", "王明", "a1b2c3d4")
    lb.tick(410, "no_such_item")
    lb.end(1000)
    return lb


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ratings_with_authors_superseded_and_refused(tmp_path: Path, lang: str, score_cli: ScoreCli) -> None:
    db = drill().write(tmp_path / "events.db")
    card, pdf = score_cli(db, tmp_path, lang, "--evaluator", "赵强")
    by_seq = {r["seq"]: r for r in card["ratings"]}
    status = [(r["criterion"], r["dept"], r["value"], r["status"]) for r in card["ratings"]]
    assert status == [
        ("command_coordination", None, "M", "superseded"),
        ("command_coordination", None, "S", "counted"),
        ("command_coordination", "fire", "P", "ignored"),
        ("field_operations", "fire", "P", "counted"),
        ("field_operations", "water", "U", "counted"),
        ("field_operations", None, "S", "ignored"),
        ("support", None, "checked", "counted"),
        ("", None, "checked", "ignored"),
    ]
    first = card["ratings"][0]
    assert first["superseded_by"] == card["ratings"][1]["seq"] and first["evaluator"] == "王明"
    misfit = card["ratings"][2]
    assert "rated once for the whole drill" in misfit["reason"] and misfit["evaluator_id"] == "e5f6a7b8"
    assert by_seq[card["ratings"][4]["seq"]]["evaluator_id"] == "3f2a9c1d"  # old id kept as the id
    assert by_seq[card["ratings"][4]["seq"]]["evaluator"] is None
    crit = {c["id"]: c for s in card["sections"] for c in s["criteria"]}
    assert crit["command_coordination"]["extra"]["rating"] == "S"  # the later rating counts
    assert card["evaluators"] == [
        {"id": "a1b2c3d4", "name": "王明", "ratings": 3},
        {"id": "e5f6a7b8", "name": "李华", "ratings": 3},
        {"id": "3f2a9c1d", "name": None, "ratings": 1},
        {"id": None, "name": None, "ratings": 1},
    ]
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages).replace("\n", "")
    bare = "".join(text.split())
    # the cover lists the evaluators by name (and the old id), plus the one given on the command line
    for who in ("王明 (a1b2c3d4)", "李华 (e5f6a7b8)", "3f2a9c1d", "赵强"):
        assert who in text, who
    # Appendix D: every rating with its author and what became of it
    if lang == "zh":
        assert "已取代:已被日志序号" in bare and "为总体评定项；针对部门（消防救援大队）的评定不适用" in bare
        assert "评分细则中没有检查项no_such_item" in bare
    else:
        assert "superseded:supersededbytheratingatseq" in bare
        assert "isratedonceforthewholedrill;aratingforadepartment(Fire)doesnotfitit" in bare
