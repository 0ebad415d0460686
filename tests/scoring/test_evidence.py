"""The evidence appendix: every command x department row in score.json, and on paper enough to
check a latency by hand (seq, hub time, latency, deadline); a capped appendix for big drills."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader

from hub.logformat import read_events
from scoring.drilllog import Department
from scoring.rubric import bundled
from scoring.synth import LogBuilder, random_drill

ScoreCli = Callable[..., tuple[dict, Path]]
RUBRIC = str(bundled())
BEIJING = dt.timezone(dt.timedelta(hours=8))
ROSTER = [Department("fire", "消防救援大队", "Fire"), Department("water", "水务局", "Water")]


def pdf_lines(path: Path) -> list[str]:
    return [ln.strip() for page in PdfReader(path).pages for ln in (page.extract_text() or "").splitlines()]


def small() -> LogBuilder:
    lb = LogBuilder(roster=ROSTER)
    lb.start()
    lb.checkin(10, "fire")
    lb.checkin(20, "water")
    lb.issue(100, "C1", ["fire", "water"], ["receipt", "on_scene"], {"receipt": 60, "on_scene": 600})
    lb.respond(101.5, "delivered", "C1", "fire")
    lb.respond(137.25, "acknowledged", "C1", "fire")  # 37.25 s
    lb.respond(820, "on_scene", "C1", "fire")  # 720 s: 120 s late
    lb.overdue(700, "C1", "fire", "on_scene")
    lb.respond(130, "declined", "C1", "water", reason="力量不足")  # a decline is a receipt
    lb.end(2000)
    return lb


def test_every_pair_is_in_the_json_with_its_events(tmp_path: Path, score_cli: ScoreCli) -> None:
    db = small().write(tmp_path / "events.db")
    card, _ = score_cli(db, tmp_path)
    table = card["appendix"]["pairs"]
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["rows"]]
    assert [(r["command"], r["dept"]) for r in rows] == [("C1", "fire"), ("C1", "water")]
    ev = {(e.kind, e.dept): e for e in read_events(db)}
    fire, water = rows
    issued = ev[("command.issued", "center")]
    ack = ev[("command.acknowledged", "fire")]
    scene = ev[("command.on_scene", "fire")]
    assert (fire["issued_seq"], fire["issued_us"]) == (issued.seq, issued.ts_us)
    assert fire["delivered_seq"] == ev[("command.delivered", "fire")].seq
    assert (fire["receipt_seq"], fire["receipt_us"]) == (ack.seq, ack.ts_us)
    assert fire["receipt_s"] == 37.25 and fire["receipt_deadline_s"] == 60 and fire["receipt_late_s"] == 0
    assert fire["on_scene_seq"] == scene.seq and fire["on_scene_s"] == 720 and fire["on_scene_late_s"] == 120
    assert fire["overdue_seqs"] == [ev[("command.overdue", None)].seq]
    assert fire["lost_points"] is True and fire["receipt_by"] == "acknowledged"
    # water declined: the decline is its receipt; on scene never came and is owed
    assert water["receipt_by"] == "declined" and water["declined_seq"] == water["receipt_seq"]
    assert water["on_scene_missing"] is True and water["on_scene_s"] is None
    # each criterion names the stage and deadline it used, and the seqs
    crit = {c["id"]: c for s in card["sections"] for c in s["criteria"]}
    assert crit["on_scene_on_time"]["params"] == {
        "metric": "on_scene_latency",
        "basis": "pair",
        "stage": "on_scene",
        "deadline": "from_command",
    }
    assert [issued.seq, scene.seq] == [
        s for s, _ in crit["on_scene_on_time"]["departments"]["fire"]["evidence"]
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_latency_can_be_checked_on_paper(tmp_path: Path, lang: str, score_cli: ScoreCli) -> None:
    db = small().write(tmp_path / "events.db")
    card, pdf = score_cli(db, tmp_path, lang)
    lines = pdf_lines(pdf)
    ev = {(e.kind, e.dept): e for e in read_events(db)}
    issued, ack = ev[("command.issued", "center")], ev[("command.acknowledged", "fire")]
    # Appendix A prints the issue and the receipt with their seqs and hub times (ms) ...
    t_issue = dt.datetime.fromtimestamp(issued.ts_us / 1e6, BEIJING).strftime("%H:%M:%S.%f")[:12]
    t_ack = dt.datetime.fromtimestamp(ack.ts_us / 1e6, BEIJING).strftime("%H:%M:%S.%f")[:12]
    assert f"#{issued.seq}" in lines and t_issue in lines
    assert f"#{ack.seq} {t_ack}" in lines
    # ... and the latency between them, which a reader recomputes from the printed times
    unit = "秒" if lang == "zh" else " s"
    printed = next(ln for ln in lines if ln.startswith(f"37.25{unit} / 60{unit}"))
    clock = [dt.datetime.strptime(t, "%H:%M:%S.%f") for t in (t_issue, t_ack)]
    assert (clock[1] - clock[0]).total_seconds() == pytest.approx(37.25)
    assert printed
    # the late on-scene report and the overdue mark
    late = "超时 120秒" if lang == "zh" else "late 120 s"
    assert late in lines
    assert any(re.fullmatch(r"(超时|overdue) #\d+", ln) for ln in lines)
    # Appendix B lists, per criterion and department, the fraction and the points
    crit = {c["id"]: c for s in card["sections"] for c in s["criteria"]}
    fire = crit["on_scene_on_time"]["departments"]["fire"]
    assert f"{fire['fraction']:.4f}" in lines and f"{fire['earned']:.2f}" in lines


def test_big_drill_appendix_is_capped_with_the_rest_in_json(tmp_path: Path, score_cli: ScoreCli) -> None:
    db = random_drill(1500, seed=9).write(tmp_path / "events.db")
    card, pdf = score_cli(db, tmp_path, "en")
    total = len(card["appendix"]["pairs"]["rows"])
    assert total == card["operation"]["pairs"] > 4000
    text = " ".join(pdf_lines(pdf))
    m = re.search(r"(\d+) rows in all; (\d+) printed here .*?the other (\d+) are in score.json", text)
    assert m, "the appendix must say how many rows are only in score.json"
    assert int(m.group(1)) == total and int(m.group(2)) + int(m.group(3)) == total
    assert len(PdfReader(pdf).pages) < 60  # not thousands of pages
