"""Trends across drills: each department's score and receipt latency drill after drill (data + PDF)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.engine import score_drill
from scoring.logread import Verifier, extract, list_operations, open_readonly
from scoring.rubric import Rubric
from scoring.scorecard import num, pts

MOVE = 5.0  # points of change that count as improved / slipped


@dataclass
class DrillPoint:
    """One drill's results."""

    log: str
    op: str
    title: str
    start_us: int
    percent: float
    grade: str
    grade_label: dict[str, str]
    depts: dict[str, dict[str, float | None]]  # id -> score, receipt_mean_s


@dataclass
class TrendData:
    rubric_id: str
    rubric_sha256: str
    drills: list[DrillPoint]
    depts: list[tuple[str, str, str]]  # id, name_zh, name_en, in first-seen order
    notes: list[str] = field(default_factory=list)

    def series(self, did: str, key: str) -> list[float | None]:
        return [d.depts.get(did, {}).get(key) for d in self.drills]

    def change(self, did: str, key: str) -> float | None:
        vals = [v for v in self.series(did, key) if v is not None]
        return vals[-1] - vals[0] if len(vals) >= 2 else None

    def movers(self) -> tuple[list[str], list[str]]:
        """Departments whose score rose / fell by at least MOVE points, first drill to last."""
        up, down = [], []
        for did, _, _ in self.depts:
            c = self.change(did, "score")
            if c is not None and c >= MOVE:
                up.append(did)
            elif c is not None and c <= -MOVE:
                down.append(did)
        return up, down

    def to_json(self) -> str:
        up, down = self.movers()
        doc: dict[str, Any] = {
            "rubric": {"id": self.rubric_id, "sha256": self.rubric_sha256},
            "drills": [
                {
                    "log": Path(d.log).name,
                    "op": d.op,
                    "title": d.title,
                    "start_us": d.start_us,
                    "percent": pts(d.percent),
                    "grade": d.grade,
                    "departments": {
                        k: {kk: num(vv) for kk, vv in v.items()} for k, v in sorted(d.depts.items())
                    },
                }
                for d in self.drills
            ],
            "departments": [
                {
                    "id": i,
                    "name_zh": zh,
                    "name_en": en,
                    "score_change": pts(self.change(i, "score")),
                    "receipt_change_s": num(self.change(i, "receipt_mean_s")),
                }
                for i, zh, en in self.depts
            ],
            "improved": up,
            "slipped": down,
            "notes": self.notes,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def collect(
    logs: list[str], rubric: Rubric, workers: int | None = None, on_log: Callable[[str], None] | None = None
) -> TrendData:
    """Score every drill in every log (each chain verified once); order the drills by start."""
    drills: list[DrillPoint] = []
    names: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    notes: list[str] = []
    for path in logs:
        if on_log:
            on_log(f"scoring {path}")
        verifier = Verifier(path, workers)
        try:
            ops = [
                o
                for o in list_operations(path)
                if o.op.startswith("drill-") or o.payload.get("kind") == "drill"
            ]
            conn = open_readonly(path)
            try:
                logs_of = [extract(conn, o.op) for o in ops]
            finally:
                conn.close()
        except BaseException:
            verifier.close()
            raise
        head = verifier.result()
        if not ops:
            notes.append(f"{path}: no drill in this log")
        for log in logs_of:
            card, _ = score_drill(log, rubric, head)
            for d in log.operation.roster:
                if d.id not in names:
                    names[d.id] = (d.name_zh, d.name_en)
                    order.append(d.id)
            depts: dict[str, dict[str, float | None]] = {}
            for ds in card.departments:
                r = ds.stats.get("receipt_mean_s")
                depts[ds.id] = {
                    "score": ds.score,
                    "receipt_mean_s": float(r) if isinstance(r, int | float) else None,
                }
            g = next(x for x in card.grades if x["id"] == card.grade)
            drills.append(
                DrillPoint(
                    path,
                    log.operation.id,
                    log.operation.title,
                    log.operation.start_us,
                    card.percent,
                    card.grade,
                    {"zh": g["zh"], "en": g["en"]},
                    depts,
                )
            )
    if not drills:
        raise ValueError("no drill found in the given logs")
    drills.sort(key=lambda d: (d.start_us, d.op))
    return TrendData(rubric.id, rubric.sha256, drills, [(i, names[i][0], names[i][1]) for i in order], notes)


TEXT = {
    "zh": {
        "title": "演练趋势分析",
        "drills": "参加比较的演练",
        "date": "日期",
        "drill": "演练",
        "score": "总分",
        "grade": "等级",
        "table": "各部门得分（平均签收秒数）",
        "dept": "部门",
        "change": "变化",
        "improved": "进步的部门",
        "slipped": "退步的部门",
        "none": "无",
        "chart_score": "各部门得分趋势（0–100）",
        "chart_receipt": "各部门平均签收用时趋势（秒）",
        "page": "第 {n} 页",
        "shown": "表中显示最近 {n} 次演练",
    },
    "en": {
        "title": "Drill trends",
        "drills": "Drills compared",
        "date": "Date",
        "drill": "Drill",
        "score": "Score",
        "grade": "Grade",
        "table": "Department scores (mean receipt, s)",
        "dept": "Department",
        "change": "Change",
        "improved": "Improved",
        "slipped": "Slipped",
        "none": "none",
        "chart_score": "Department scores (0–100)",
        "chart_receipt": "Mean receipt latency (s)",
        "page": "Page {n}",
        "shown": "the table shows the last {n} drills",
    },
}
TABLE_DRILLS = 8


def render_trend(data: TrendData, out: str | Path, lang: str = "zh", utc_offset: str = "+08:00") -> None:
    """Write the trend PDF: drills, a department x drill table, movers, and charts."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

    from scoring import charts
    from scoring.pdf import FONT, esc, register_font, styles, table, write_atomic
    from scoring.report_model import tz_from

    register_font()
    T = TEXT[lang]
    st = styles()
    tz = tz_from(utc_offset)
    page = landscape(A4)
    margin = 14 * mm
    width = page[0] - 2 * margin

    def name(did: str) -> str:
        zh, en = next((z, e) for i, z, e in data.depts if i == did)
        return zh if lang == "zh" or en == zh else f"{zh} {en}"

    def day(us: int) -> str:
        return dt.datetime.fromtimestamp(us / 1e6, tz).strftime("%Y-%m-%d")

    flow: list[Any] = [
        Paragraph(esc(T["title"]), st["title"]),
        Spacer(1, 4 * mm),
        Paragraph(esc(T["drills"]), st["h1"]),
    ]
    rows: list[list[Any]] = [[T["date"], T["drill"], T["score"], T["grade"]]]
    rows += [
        [
            day(d.start_us),
            Paragraph(esc(f"{d.title} ({d.op})"), st["cell"]),
            f"{d.percent:.1f}",
            d.grade_label[lang],
        ]
        for d in data.drills
    ]
    flow.append(table(rows, [25 * mm, width - 70 * mm, 20 * mm, 25 * mm]))

    shown = data.drills[-TABLE_DRILLS:]
    flow.append(Paragraph(esc(T["table"]), st["h1"]))
    if len(shown) < len(data.drills):
        flow.append(Paragraph(esc(T["shown"].format(n=len(shown))), st["small"]))
    head = [T["dept"]] + [day(d.start_us)[5:] for d in shown] + [T["change"]]
    rows = [head]
    extra: list[tuple[Any, ...]] = []
    for r, (did, _, _) in enumerate(data.depts, start=1):
        row: list[Any] = [Paragraph(esc(name(did)), st["cell"])]
        for d in shown:
            v = d.depts.get(did)
            if not v or v.get("score") is None:
                row.append("—")
                continue
            rec = v.get("receipt_mean_s")
            row.append(f"{v['score']:.1f} ({rec:.0f})" if rec is not None else f"{v['score']:.1f}")
        c = data.change(did, "score")
        row.append("—" if c is None else f"{c:+.1f}")
        if c is not None and c >= MOVE:
            extra.append(("TEXTCOLOR", (-1, r), (-1, r), charts.GREEN))
        elif c is not None and c <= -MOVE:
            extra.append(("TEXTCOLOR", (-1, r), (-1, r), charts.RED))
        rows.append(row)
    name_w = 50 * mm
    col_w = (width - name_w) / (len(shown) + 1)
    flow.append(
        table(
            rows, [name_w] + [col_w] * (len(shown) + 1), extra=[*extra, ("ALIGN", (1, 1), (-1, -1), "RIGHT")]
        )
    )
    up, down = data.movers()
    flow.append(Spacer(1, 3 * mm))
    for key, ids in (("improved", up), ("slipped", down)):
        text = "、".join(f"{name(i)} ({data.change(i, 'score'):+.1f})" for i in ids) or T["none"]
        flow.append(Paragraph(f"<b>{esc(T[key])}</b>: {esc(text)}", st["body"]))
    labels = [day(d.start_us)[5:] for d in data.drills]
    ids = [i for i, _, _ in data.depts]
    short = [next(z for i2, z, _ in data.depts if i2 == i) for i in ids]
    flow.append(
        KeepTogether(
            [
                Paragraph(esc(T["chart_score"]), st["h1"]),
                charts.small_multiples(
                    short,
                    [data.series(i, "score") for i in ids],
                    labels,
                    width,
                    100.0,
                    cols=6,
                    threshold=60.0,
                ),
            ]
        )
    )
    lat = [data.series(i, "receipt_mean_s") for i in ids]
    top = max([v for s in lat for v in s if v is not None] + [60.0]) * 1.05
    step = charts.nice_step(top)
    flow.append(
        KeepTogether(
            [
                Paragraph(esc(T["chart_receipt"]), st["h1"]),
                charts.small_multiples(short, lat, labels, width, math.ceil(top / step) * step, cols=6),
            ]
        )
    )

    def decor(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawRightString(page[0] - margin, 8 * mm, T["page"].format(n=doc.page))
        canvas.restoreState()

    def build(tmp: str) -> None:
        doc = SimpleDocTemplate(
            tmp,
            pagesize=page,
            leftMargin=margin,
            rightMargin=margin,
            topMargin=margin,
            bottomMargin=14 * mm,
            title=T["title"],
            author="CommandHub",
            initialFontName=FONT,
            initialFontSize=8,
        )
        doc.build(flow, onFirstPage=decor, onLaterPages=decor)

    write_atomic(out, build)
