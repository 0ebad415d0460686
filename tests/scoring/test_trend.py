"""`trend` over a year of drills: --scenario matches `score`, drills named by title, time and log
head, points out of the total, series, the follow-up of plan items, CSV, and a readable PDF."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from hub.cli import main
from scoring.rubric import bundled, load_rubric
from scoring.synth import T0_US, LogBuilder, write_all, year_of_drills
from scoring.trenddata import collect

RUBRIC = str(bundled())
DAY = 86_400 * 1_000_000


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """66 drills in one log, as the hub keeps them."""
    return write_all(tmp_path_factory.mktemp("year") / "events.db", year_of_drills(66, commands=25))


def test_a_year_of_drills(year: Path, tmp_path: Path) -> None:
    out, js, cs = tmp_path / "t.pdf", tmp_path / "t.json", tmp_path / "t.csv"
    assert (
        main(
            [
                "trend",
                "--logs",
                str(year),
                "--rubric",
                RUBRIC,
                "--out",
                str(out),
                "--json",
                str(js),
                "--csv",
                str(cs),
                "--lang",
                "en",
                "--quiet",
            ]
        )
        == 0
    )
    data = json.loads(js.read_text(encoding="utf-8"))
    drills = data["drills"]
    assert len(drills) == 66 and [d["n"] for d in drills] == list(range(1, 67))
    assert drills[0]["title"] == "第1次联合实战演练" and drills[-1]["title"] == "第66次联合实战演练"
    assert len({d["end_head"]["hash"] for d in drills}) == 66  # each drill has its own place in the chain
    assert all(d["total"] == 100 and 0 <= d["score"] <= 100 for d in drills)
    rows = list(csv.DictReader(io.StringIO(cs.read_text(encoding="utf-8"))))
    overall = [r for r in rows if r["row"] == "overall"]
    assert [float(r["points"]) for r in overall] == [d["score"] for d in drills]
    assert {r["row"] for r in rows} >= {"overall", "criterion", "department", "finding"}
    assert sum(r["row"] == "criterion" for r in rows) == 66 * 15
    reader = PdfReader(out)
    assert len(reader.pages) <= 20  # readable, not a page per drill
    text = "".join(p.extract_text() for p in reader.pages)
    for d in (drills[0], drills[33], drills[-1]):
        assert d["op"] in text and f"{d['end_head']['seq']}:{d['end_head']['hash'][:12]}" in text
        assert f"{d['score']:.2f} / 100" in text
    assert "#66" in text and "Improvement plan follow-up" in text
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "30", "-png", str(out), str(tmp_path / "pg")], check=True, timeout=120
        )
        assert len(list(tmp_path.glob("pg-*.png"))) == len(reader.pages)


def test_scenario_makes_trend_match_score(tmp_path: Path) -> None:
    year = write_all(tmp_path / "events.db", year_of_drills(6, commands=25))
    rubric = load_rubric(bundled())
    from scoring.cli import scenario_path
    from scoring.scenario import load_scenario

    scenario = load_scenario(scenario_path("extreme-weather"))
    with_s = collect([str(year)], rubric, scenarios=[scenario])
    without = collect([str(year)], rubric)
    op = with_s.drills[4].op
    js = tmp_path / "s.json"
    assert (
        main(
            [
                "score",
                "--log",
                str(year),
                "--operation",
                op,
                "--rubric",
                RUBRIC,
                "--scenario",
                "extreme-weather",
                "--json",
                str(js),
                "--quiet",
            ]
        )
        == 0
    )
    signed = json.loads(js.read_text(encoding="utf-8"))
    assert with_s.drills[4].percent == signed["percent"]  # what was signed
    assert any(d.percent != w.percent for d, w in zip(with_s.drills, without.drills, strict=True))
    assert any(n.code == "scenario_missing" for n in without.drills[4].notes)


def test_followup_and_no_response() -> None:
    """Drill 1: a critical command never completed (a veto) and water never answers; drill 2:
    all done; drill 3: the veto again. The plan item is closed in 2 and reopened in 3."""
    logs = []
    for k, critical_done in enumerate((False, True, False)):
        lb = LogBuilder(op=f"drill-2026060{k + 1}-01", t0_us=T0_US + k * 30 * DAY, title=f"第{k + 1}次")
        lb.start(participants=["fire", "water"])
        lb.checkin(10, "fire")
        lb.checkin(12, "water")
        lb.issue(
            20, "C1", ["fire"], ["receipt", "completed"], {"receipt": 60, "completed": 600}, critical=True
        )
        lb.respond(30, "acknowledged", "C1", "fire")
        if critical_done:
            lb.respond(300, "completed", "C1", "fire")
        lb.issue(40, "C2", ["water"], ["receipt"], {"receipt": 60})
        if k:
            lb.respond(50, "acknowledged", "C2", "water")
        lb.end(1200)
        logs.append(lb)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = str(write_all(Path(tmp) / "e.db", logs))
        data = collect([path], load_rubric(bundled()))
    veto = next(u for u in data.followups() if u.key == "veto:critical_incomplete")
    assert veto.states == ["open", "closed", "open"]
    assert veto.first == 0 and veto.closed_at(0) == 1 and veto.reopened == 1 and veto.open_now
    water = data.drills[0].depts["water"]
    assert water["receipt_mean_s"] is None and water["receipt_answered"] == 0 and water["receipt_owed"] == 1
    assert data.drills[1].depts["water"]["receipt_mean_s"] == 10.0
    # non-participants are not applicable, not a stand-in latency
    assert data.drills[0].depts["police"]["status"] == "not_taking_part"
    assert data.series("police", "receipt_mean_s") == [None, None, None]
