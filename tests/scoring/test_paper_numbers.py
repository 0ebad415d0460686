"""Numbers on paper: one rounding rule (the JSON's 2 decimals), sections that add up as printed,
exact rule text in both languages, a fully Chinese Chinese report, English wrapped at word
boundaries, and charts that draw what they say (own deadlines, missing receipts, declines)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from hub.logformat import Head
from scoring.charts import PURPLE, RED, latency_bars, timeline
from scoring.drilllog import Department, from_events
from scoring.engine import score_drill, score_events
from scoring.notes import TEMPLATES
from scoring.report_model import build_report
from scoring.report_text import LABELS
from scoring.rubric import bundled, load_rubric, load_rubric_text
from scoring.scorecard import round_half_up
from scoring.synth import LogBuilder, random_drill

ScoreCli = Callable[..., tuple[dict, Path]]
RUBRIC = str(bundled())


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, score_cli: ScoreCli) -> tuple[dict, dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("num")
    db = random_drill(120, seed=11).write(tmp / "events.db")
    card, zh = score_cli(db, tmp, "zh")
    _, en = score_cli(db, tmp, "en")
    return card, {"zh": zh, "en": en}


def lines(pdf: Path) -> list[str]:
    return [ln.strip() for p in PdfReader(pdf).pages for ln in (p.extract_text() or "").splitlines()]


def D(s: str) -> Decimal:
    return Decimal(s)


def test_half_up_is_the_one_rule() -> None:
    assert round_half_up(27.045, 2) == 27.05  # the cover once printed 27.1 / 27.04
    assert round_half_up(2.675, 2) == 2.68 and round_half_up(12.5, 0) == 13.0
    assert round_half_up(0.1 + 0.2, 2) == 0.3 and round_half_up(-0.125, 2) == -0.13


def test_sections_add_up_as_printed(scored: tuple[dict, dict[str, Path]]) -> None:
    card, pdfs = scored
    ln = lines(pdfs["zh"])
    start = ln.index("二、分项得分")

    def row(title: str) -> tuple[Decimal, Decimal, Decimal]:
        i = ln.index(title, start)
        return D(ln[i + 1]), D(ln[i + 2]), D(ln[i + 3])

    total_earned = Decimal(0)
    for s in card["sections"]:
        _, searned, slost = row(s["title"]["zh"])
        parts = [row(c["title"]["zh"]) for c in s["criteria"] if c["applicable"]]
        assert searned == sum(p[1] for p in parts), s["id"]  # the section is the sum of its printed rows
        assert slost == sum(p[0] for p in parts) - searned
        assert f"{searned:.2f}" == f"{s['earned']:.2f}"  # the JSON's 2 decimals on paper
        total_earned += searned
    e, d, a = D(f"{card['earned']:.2f}"), D(f"{card['deducted']:.2f}"), D(f"{card['applicable']:.2f}")
    assert total_earned == e
    totals = next(x for x in ln if x.startswith("得分合计"))
    assert f"得分合计 {e} − 扣分 {d}" in totals and f"= {card['score']:.2f}" in totals
    assert D(f"{card['score']:.2f}") == ((e - d) / a * Decimal(card["total"])).quantize(Decimal("0.01"))


def test_department_scores_add_up_as_printed(scored: tuple[dict, dict[str, Path]]) -> None:
    card, pdfs = scored
    text = "\n".join(lines(pdfs["zh"]))
    appendix = text[text.index("附录C") :]
    for d in card["departments"]:
        if d["score"] is None:
            continue
        # Appendix C row: name, each criterion's points, sum, -deducted, net, max, score
        m = re.search(re.escape(d["name_zh"]) + r"\n((?:-?\d+\.\d\d\n){8,16})", appendix)
        assert m, d["id"]
        nums = [D(x) for x in m.group(1).split()]
        *parts, total, ded, net, mx, score = nums
        assert total == sum(parts) and net == total + ded and mx == D(f"{d['max']:.2f}")
        assert score == (net / mx * 100).quantize(Decimal("0.01")) == D(f"{d['score']:.2f}")


def test_rule_text_is_exact_in_both_languages(tmp_path: Path) -> None:
    text = (
        "id: t\ntitle: t\nversion: '1'\ntotal: 10\ngrades: [{id: p, zh: 合格, en: Pass, min: 0}]\n"
        "sections:\n  - id: s\n    title: s\n    points: 10\n    criteria:\n"
        "      - {id: r, type: metric, title: 签收, metric: receipt_latency, scope: per_department,\n"
        "         curve: {type: linear, full_at: 2.5s, zero_at: 12.5s}, points: 10}\n"
    )
    rubric = load_rubric_text(text, "t.yaml")
    lb = LogBuilder(roster=[Department("a", "甲局", "A")])
    lb.start()
    lb.issue(10, "C1", ["a"])
    lb.respond(15, "acknowledged", "C1", "a")
    lb.end(100)
    events = lb.events()
    card, facts = score_drill(from_events(events), rubric, Head(0, ""))
    zh = build_report(card, facts, rubric, "zh").criteria[1].rule
    en = build_report(card, facts, rubric, "en").criteria[1].rule
    assert "2.5秒得满分，12.5秒得0分" in zh  # not 2秒 / 12秒 (half-even)
    assert "full marks at 2.5 s, none at 12.5 s" in en
    assert score_events(events, rubric).criteria()[0].fraction == 0.75  # 5 s: (12.5 - 5) / 10


def test_chinese_report_is_chinese(scored: tuple[dict, dict[str, Path]]) -> None:
    card, pdfs = scored
    text = re.sub(r"[0-9a-f]{12,}", " ", "\n".join(lines(pdfs["zh"])))  # hashes
    # ids, hashes and names that are the same in any language
    allowed = {"SHA", "UTC", "CommandHub", "media", "published", "unpublished", "score", "json", "appendix"}
    allowed |= {"pairs"}
    allowed |= {card["operation"]["id"], card["rubric"]["id"]}
    allowed |= {c["id"] for s in card["sections"] for c in s["criteria"]}
    allowed |= {i for c in card["checklist"] for i in c["item"].split("_")}
    allowed |= set(
        re.findall(r"[A-Za-z]{3,}", " ".join(c["id"] for s in card["sections"] for c in s["criteria"]))
    )
    allowed |= {"drill", "flood", "operation", "head"}  # operation id, scenario id, --operation / --head
    words = set(re.findall(r"[A-Za-z]{3,}", text))
    stray = {w for w in words if w not in allowed and not any(w in a for a in allowed)}
    assert stray == set(), sorted(stray)


def test_english_wraps_at_word_boundaries(scored: tuple[dict, dict[str, Path]]) -> None:
    card, pdfs = scored
    vocab_src = " ".join(LABELS["en"].values()) + " " + " ".join(en for en, _ in TEMPLATES.values())
    vocab_src += " " + json.dumps(card, ensure_ascii=False)
    vocab_src += " deficiency improvement must fix Find the cause fix it and re-test at the next drill UTC"
    vocab = {w.lower() for w in re.findall(r"[A-Za-z]+", vocab_src)}
    for ln in lines(pdfs["en"]):
        for w in re.findall(r"[A-Za-z]{2,}", re.sub(r"[0-9a-f]{12,}", " ", ln)):
            assert w.lower() in vocab, f"{w!r} in {ln!r}: a word broken across lines?"


def test_timeline_marks_missing_receipts_and_draws_declines_apart() -> None:
    rubric = load_rubric(bundled())
    lb = LogBuilder(
        roster=[Department("a", "甲局", "A"), Department("b", "乙局", "B"), Department("c", "丙局", "C")]
    )
    lb.start()
    lb.issue(10, "C1", ["a", "b", "c"], ["receipt"], {"receipt": 60})
    lb.issue(20, "C2", ["a"], ["receipt"], {"receipt": 30})
    lb.respond(30, "acknowledged", "C1", "a")
    lb.respond(35, "declined", "C1", "b", reason="力量不足")  # c never answers C1
    lb.respond(70, "acknowledged", "C2", "a")  # late: 50 s against 30 s
    lb.end(600)
    card, facts = score_drill(from_events(lb.events()), rubric, Head(0, ""))
    model = build_report(card, facts, rubric, "en")
    kinds = {
        name: {m.kind for m in row}
        for name, row in zip(model.timeline.names, model.timeline.rows, strict=True)
    }
    assert "declined" in kinds["乙局"] and "receipt" not in kinds["乙局"]
    assert "missing" in kinds["丙局"]
    missing = next(m for m in model.timeline.rows[model.timeline.names.index("丙局")] if m.kind == "missing")
    assert missing.t_s == pytest.approx(70)  # at its deadline: issued 10 + 60
    drawing = timeline(model.timeline, 500, model.L)
    paths = [x for x in drawing.contents if type(x).__name__ == "Path"]
    assert any(x.fillColor == PURPLE for x in paths)  # the decline's square, unlike a receipt's blue dot
    assert any(x.strokeColor == RED and x.fillColor is None for x in paths)  # the missing receipt's cross
    # the receipt chart: each department against its own commands' deadlines (30 and 60 s for a)
    bar = next(b for b in model.bars if b.name == "甲局")
    assert (bar.deadline_lo, bar.deadline_hi, bar.late, bar.owed) == (30.0, 60.0, 1, 2)
    assert latency_bars(model.bars, 500, model.L).contents
