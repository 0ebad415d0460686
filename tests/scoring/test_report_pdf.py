"""The PDF scorecard and trend report: read back with pypdf, fonts embedded, rendered by pdftoppm."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from hub.cli import main
from scoring.rubric import bundled
from scoring.synth import T0_US, default_roster, random_drill

RUBRIC = str(bundled())
DAY_US = 86_400 * 1_000_000

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdffonts") is None,
    reason="poppler-utils (pdftoppm, pdffonts) not installed",
)


@pytest.fixture(scope="module")
def drill_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_drill(200, seed=3).write(tmp_path_factory.mktemp("pdf") / "events.db")


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def flat(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_scorecard_pdf_reads_back(
    drill_db: Path, tmp_path: Path, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, js = tmp_path / f"report-{lang}.pdf", tmp_path / "score.json"
    code = main(
        [
            "score",
            "--log",
            str(drill_db),
            "--rubric",
            RUBRIC,
            "--out",
            str(out),
            "--json",
            str(js),
            "--lang",
            lang,
            "--evaluator",
            "王明",
            "--quiet",
        ]
    )
    assert code == 0
    card = json.loads(js.read_text(encoding="utf-8"))
    text = flat(pdf_text(out))
    assert f"{card['score']:.2f}/100" in text  # the overall score on the cover, as in the JSON
    grade = next(g for g in card["grades"] if g["id"] == card["grade"])
    assert flat(grade[lang]) in text
    for d in default_roster():  # every department, Chinese names in both languages
        assert flat(d.name_zh) in text, d.name_zh
        if lang == "en":
            assert flat(d.name_en) in text, d.name_en
    assert card["log_head"]["hash"] in text  # sign-off block
    assert card["rubric"]["sha256"] in text
    assert ("整改计划" if lang == "zh" else "Improvementplan") in text
    assert "王明" in text
    printed = capsys.readouterr().out
    assert card["operation"]["id"] in printed


@needs_poppler
def test_pdf_fonts_are_embedded_and_pages_render(drill_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    assert main(["score", "--log", str(drill_db), "--rubric", RUBRIC, "--out", str(out), "--quiet"]) == 0
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True)
    rows = fonts.stdout.splitlines()[2:]
    assert rows, fonts.stdout
    for row in rows:
        cols = row.split()
        # name type... emb sub uni id gen: emb is the 5th column from the end
        assert cols[-5] == "yes", row
    assert all("STSong" not in r and "Helvetica" not in r for r in rows)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(out), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(PdfReader(out).pages) >= 4
    for p in pages[:3]:
        with Image.open(p) as img:
            hist = img.convert("L").histogram()
            dark = sum(hist[:128])
            assert dark > 500, p.name  # text and charts were drawn


def test_bad_rubric_exit_2_nothing_written(
    drill_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(bundled().read_text(encoding="utf-8").replace("total: 100", "total: 99"), encoding="utf-8")
    out, js = tmp_path / "r.pdf", tmp_path / "s.json"
    code = main(
        [
            "score",
            "--log",
            str(drill_db),
            "--rubric",
            str(bad),
            "--out",
            str(out),
            "--json",
            str(js),
            "--quiet",
        ]
    )
    assert code == 2
    assert not out.exists() and not js.exists()
    assert list(tmp_path.iterdir()) == [bad]
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "total: points do not add up" in err


def test_broken_chain_refused_nothing_written(
    drill_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.db"
    shutil.copy(drill_db, bad)
    conn = sqlite3.connect(bad)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET ts_us = ts_us - 5000000 WHERE seq = 1000")
    conn.commit()
    conn.close()
    out = tmp_path / "r.pdf"
    assert main(["score", "--log", str(bad), "--rubric", RUBRIC, "--out", str(out), "--quiet"]) == 3
    assert not out.exists()
    assert "chain broken at seq 1000" in capsys.readouterr().err


def test_json_is_byte_identical_across_runs(drill_db: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for p in (a, b):
        assert main(["score", "--log", str(drill_db), "--rubric", RUBRIC, "--json", str(p), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_unknown_operation_is_a_user_error(
    drill_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "score",
                "--log",
                str(drill_db),
                "--rubric",
                RUBRIC,
                "--operation",
                "drill-x",
                "--json",
                str(tmp_path / "s.json"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "no operation 'drill-x'" in capsys.readouterr().err


def test_trend_across_drills(tmp_path: Path) -> None:
    logs = []
    for k in range(3):
        b = random_drill(
            60,
            seed=10 + k,
            op=f"drill-2026060{k + 1}-01",
            t0_us=T0_US + k * 30 * DAY_US,
            title=f"第{k + 1}次联合演练",
        )
        logs.append(str(b.write(tmp_path / f"d{k}.db")))
    out, js = tmp_path / "trend.pdf", tmp_path / "trend.json"
    assert (
        main(["trend", "--logs", *logs, "--rubric", RUBRIC, "--out", str(out), "--json", str(js), "--quiet"])
        == 0
    )
    data = json.loads(js.read_text(encoding="utf-8"))
    assert [d["op"] for d in data["drills"]] == [f"drill-2026060{k + 1}-01" for k in range(3)]
    assert len(data["departments"]) == 16
    for d in data["departments"]:
        series = [x["departments"][d["id"]]["score"] for x in data["drills"]]
        assert d["score_change"] == pytest.approx(series[-1] - series[0], abs=0.02)
        if d["score_change"] >= 5:
            assert d["id"] in data["improved"]
        if d["score_change"] <= -5:
            assert d["id"] in data["slipped"]
    text = flat(pdf_text(out))
    for d in default_roster():
        assert flat(d.name_zh) in text
    assert "进步的部门" in text and "退步的部门" in text


def test_bench_score_prints_json_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "score",
            "--json",
            "--events",
            "20000",
            "--commands",
            "300",
            "--pdf-commands",
            "30",
            "--trend-drills",
            "3",
            "--dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    doc = json.loads(last)
    assert doc["events"] == 20000
    assert doc["score_s"] > 0 and doc["pdf_s"] > 0
    assert {"verify_extract_s", "engine_s", "score_cpu_s"} <= set(doc)
    assert (tmp_path / "bench-report.pdf").read_bytes()[:5] == b"%PDF-"
