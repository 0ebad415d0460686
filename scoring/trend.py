"""The trend PDF across many drills (a year of them): drills by title, date and log head, points
out of the total, department and criterion series with charts, and the follow-up of each
improvement-plan item. The data is scoring.trenddata."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from scoring.report_text import fmt_s
from scoring.trenddata import MOVE, TrendData, collect, pick_scenario

__all__ = ["TEXT", "TrendData", "collect", "pick_scenario", "render_trend"]

TEXT = {
    "zh": {
        "title": "演练趋势分析",
        "subtitle": "{rubric}；{n}次演练，{a} 至 {b}",
        "drills": "二、参加比较的演练",
        "n": "序号",
        "date": "日期时间",
        "drill": "演练",
        "head": "演练结束处日志头",
        "all_drills": "各次演练均适用",
        "log_line": "日志 {log}：已校验至日志头 {head}",
        "score": "得分 / 总分",
        "percent": "得分率",
        "grade": "等级",
        "notes": "说明",
        "overall": "一、总体得分率趋势",
        "depts": "三、各部门得分（百分制）与平均签收用时",
        "depts_note": "每格为部门百分制得分 · 已签收指令的平均签收用时；“未响应”表示该次演练未签收任何指令。",
        "dept": "部门",
        "change": "变化",
        "improved": "进步的部门（首次至末次至少提高5分）",
        "slipped": "退步的部门（首次至末次至少降低5分）",
        "none": "无",
        "chart_score": "各部门得分趋势（0–100）",
        "chart_receipt": "各部门平均签收用时趋势（秒）",
        "criteria": "四、各评分项得分",
        "criterion": "评分项（满分）",
        "chart_criteria": "各评分项得分率趋势（0–100%）",
        "followup": "五、整改项跟踪",
        "followup_note": "每行为某次演练整改计划中的一项：红色为该次仍存在，绿色为此前提出、"
        "该次已消除，浅绿为尚未提出，灰色为不适用。",
        "item": "整改项",
        "severity": "类别",
        "first": "首次提出",
        "closed": "首次消除",
        "raised": "出现次数",
        "reopened": "复发次数",
        "now": "末次演练",
        "open": "未消除",
        "closed_now": "已消除",
        "no_response": "未响应",
        "excused": "请假",
        "not_taking_part": "未参演",
        "na": "不适用",
        "page": "第 {n} 页",
    },
    "en": {
        "title": "Drill trends",
        "subtitle": "{rubric}; {n} drills, {a} to {b}",
        "drills": "2. Drills compared",
        "n": "No.",
        "date": "Date and time",
        "drill": "Drill",
        "head": "Log head at its end",
        "all_drills": "For every drill",
        "log_line": "Log {log}: verified up to its head {head}",
        "score": "Points / total",
        "percent": "Percent",
        "grade": "Grade",
        "notes": "Notes",
        "overall": "1. Overall percent, drill by drill",
        "depts": "3. Department scores (0–100) and mean receipt latency",
        "depts_note": "Each cell: the department's score · the mean receipt latency of the commands it "
        "answered; no response: it answered none in that drill.",
        "dept": "Department",
        "change": "Change",
        "improved": "Improved (at least 5 points up, first drill to last)",
        "slipped": "Slipped (at least 5 points down, first drill to last)",
        "none": "none",
        "chart_score": "Department scores (0–100)",
        "chart_receipt": "Mean receipt latency (s)",
        "criteria": "4. Points per criterion",
        "criterion": "Criterion (max)",
        "chart_criteria": "Percent of each criterion's points (0–100%)",
        "followup": "5. Improvement plan follow-up",
        "followup_note": "One row per item any drill's improvement plan raised: red, still a finding "
        "in that drill; green, raised before and closed in it; light green, not raised yet; grey, "
        "not applicable.",
        "item": "Item",
        "severity": "Severity",
        "first": "First raised",
        "closed": "First closed",
        "raised": "Raised",
        "reopened": "Reopened",
        "now": "At the last drill",
        "open": "open",
        "closed_now": "closed",
        "no_response": "no response",
        "excused": "excused",
        "not_taking_part": "not taking part",
        "na": "N/A",
        "page": "Page {n}",
    },
}
CHUNK = 13  # at most this many drills per table on a landscape page


def render_trend(data: TrendData, out: str | Path, lang: str = "zh", utc_offset: str = "+08:00") -> int:
    """Write the trend PDF; return its number of pages."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
    )

    from scoring import charts
    from scoring.pdf import FONT, esc, register_font, styles, table, write_atomic
    from scoring.report_text import SEVERITY_EN, tz_from

    register_font()
    T = TEXT[lang]
    st = styles(lang)
    tz = tz_from(utc_offset)
    page = landscape(A4)
    margin = 14 * mm
    width = page[0] - 2 * margin
    n = len(data.drills)
    per = math.ceil(n / math.ceil(n / CHUNK))  # even chunks: 66 drills -> 6 tables of 11

    def P(s: object, style: str = "cell") -> Paragraph:
        return Paragraph(esc(s).replace("\n", "<br/>"), st[style])

    def name(did: str) -> str:
        zh, en = next((z, e) for i, z, e in data.depts if i == did)
        return zh if lang == "zh" or en == zh else f"{zh} {en}"

    def when(us: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return dt.datetime.fromtimestamp(us / 1e6, tz).strftime(fmt)

    def col(i: int) -> str:
        return f"#{i + 1}\n{when(data.drills[i].start_us, '%m-%d')}"

    first, last = data.drills[0], data.drills[-1]
    flow: list[Any] = [
        P(T["title"], "title"),
        P(
            T["subtitle"].format(rubric=data.rubric_id, n=n, a=when(first.start_us), b=when(last.start_us)),
            "subtitle",
        ),
        Spacer(1, 4 * mm),
        P(T["overall"], "h1"),
        charts.series_chart(
            [d.percent for d in data.drills],
            [col(i).replace("\n", " ") for i in range(n)],
            width,
            100.0,
            [float(g[3]) for g in data.grades if g[3] > 0],
        ),
        P(T["drills"], "h1"),
    ]
    common = [x for x in data.drills[0].notes if all(x in d.notes for d in data.drills)]
    sep = "；" if lang == "zh" else "; "
    if common:
        flow.append(P(f"{T['all_drills']}: " + sep.join(x.text(lang) for x in common), "small"))
    rows: list[list[Any]] = [
        [P(T[k]) for k in ("n", "date", "drill", "head", "score", "percent", "grade", "notes")]
    ]
    for i, d in enumerate(data.drills):
        rows.append(
            [
                f"#{i + 1}",
                when(d.start_us),
                P(f"{d.title} ({d.op})"),
                f"{d.end_head[0]}:{d.end_head[1][:12]}",
                f"{d.score:.2f} / {d.total:g}",
                f"{d.percent:.2f}%",
                d.grade_label[lang],
                P(sep.join(x.text(lang) for x in d.notes if x not in common)),
            ]
        )
    widths = [12 * mm, 28 * mm, 70 * mm, 40 * mm, 26 * mm, 18 * mm, 18 * mm]
    flow.append(table(rows, [*widths, width - sum(widths)], extra=[("ALIGN", (4, 1), (5, -1), "RIGHT")]))
    heads = {(Path(d.log).name, d.log_head) for d in data.drills}
    for log, (seq, h) in sorted(heads):
        flow.append(P(T["log_line"].format(log=log, head=f"{seq}:{h}"), "small"))

    # departments --------------------------------------------------------------------------------
    flow += [PageBreak(), P(T["depts"], "h1"), P(T["depts_note"], "small")]
    for lo in range(0, n, per):
        idx = list(range(lo, min(n, lo + per)))
        head = [P(T["dept"])] + [P(col(i)) for i in idx]
        last_chunk = idx[-1] == n - 1
        if last_chunk:
            head.append(P(T["change"]))
        rows = [head]
        extra: list[tuple[Any, ...]] = []
        for r, (did, _, _) in enumerate(data.depts, start=1):
            row: list[Any] = [P(name(did))]
            for i in idx:
                row.append(_dept_cell(data.drills[i].depts.get(did), T, lang))
            if last_chunk:
                c = data.change(did, "score")
                row.append("—" if c is None else f"{c:+.2f}")
                if c is not None and c >= MOVE:
                    extra.append(("TEXTCOLOR", (-1, r), (-1, r), charts.GREEN))
                elif c is not None and c <= -MOVE:
                    extra.append(("TEXTCOLOR", (-1, r), (-1, r), charts.RED))
            rows.append(row)
        name_w = 44 * mm
        k = len(head) - 1
        widths = [name_w] + [(width - name_w) / k] * k
        grid = table(rows, widths, extra=[*extra, ("ALIGN", (1, 1), (-1, -1), "RIGHT")])
        flow.append(KeepTogether([grid, Spacer(1, 3 * mm)]))
    up, down = data.movers()
    for key, ids in (("improved", up), ("slipped", down)):
        text = "、".join(f"{name(i)} ({data.change(i, 'score'):+.2f})" for i in ids) or T["none"]
        flow.append(Paragraph(f"<b>{esc(T[key])}</b>: {esc(text)}", st["body"]))
    ids = [i for i, _, _ in data.depts]
    short = [next(z for i2, z, _ in data.depts if i2 == i) for i in ids]
    xl = [when(first.start_us, "%m-%d"), when(last.start_us, "%m-%d")]
    flow.append(
        KeepTogether(
            [
                P(T["chart_score"], "h1"),
                charts.small_multiples(
                    short, [data.series(i, "score") for i in ids], xl, width, 100.0, cols=6, threshold=60.0
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
                P(T["chart_receipt"], "h1"),
                charts.small_multiples(short, lat, xl, width, math.ceil(top / step) * step, cols=6),
            ]
        )
    )

    # criteria -----------------------------------------------------------------------------------
    flow += [PageBreak(), P(T["criteria"], "h1")]
    for lo in range(0, n, per):
        idx = list(range(lo, min(n, lo + per)))
        rows = [[P(T["criterion"])] + [P(col(i)) for i in idx]]
        for cid, title, points in data.criteria:
            row = [P(f"{title.get(lang)} ({points:g})")]
            for i in idx:
                got = data.drills[i].criteria.get(cid)
                row.append(f"{got['earned']:.2f}" if got and got["applicable"] else T["na"])
            rows.append(row)
        name_w = 56 * mm
        k = len(idx)
        grid = table(
            rows, [name_w] + [(width - name_w) / k] * k, extra=[("ALIGN", (1, 1), (-1, -1), "RIGHT")]
        )
        flow.append(KeepTogether([grid, Spacer(1, 3 * mm)]))
    flow.append(
        KeepTogether(
            [
                P(T["chart_criteria"], "h1"),
                charts.small_multiples(
                    [t.get(lang) for _, t, _ in data.criteria],
                    [data.crit_series(cid) for cid, _, _ in data.criteria],
                    xl,
                    width,
                    100.0,
                    cols=5,
                    threshold=90.0,
                ),
            ]
        )
    )

    # follow-up ----------------------------------------------------------------------------------
    ups = data.followups()
    flow += [PageBreak(), P(T["followup"], "h1"), P(T["followup_note"], "small")]
    if ups:
        flow.append(
            charts.state_grid(
                [u.title.get(lang) for u in ups],
                [u.states for u in ups],
                [f"#{i + 1}" for i in range(n)],
                width,
            )
        )
        rows = [[P(T[k]) for k in ("item", "severity", "first", "closed", "raised", "reopened", "now")]]
        for u in ups:
            f0 = u.first
            closed = u.closed_at(f0)
            sev = u.severity if lang == "zh" else f"{u.severity} {SEVERITY_EN[u.severity]}"
            rows.append(
                [
                    P(u.title.get(lang)),
                    P(sev),
                    f"#{f0 + 1} {when(data.drills[f0].start_us, '%Y-%m-%d')}",
                    f"#{closed + 1} {when(data.drills[closed].start_us, '%Y-%m-%d')}"
                    if closed is not None
                    else "—",
                    f"{u.raised}/{n}",
                    str(u.reopened),
                    T["open"] if u.open_now else T["closed_now"],
                ]
            )
        widths = [80 * mm, 30 * mm, 36 * mm, 36 * mm, 20 * mm, 20 * mm]
        flow.append(table(rows, [*widths, width - sum(widths)]))
    else:
        flow.append(P(T["none"], "body"))

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
        pages.append(doc.page)

    pages: list[int] = []
    write_atomic(out, build)
    return pages[-1]


def _dept_cell(v: dict[str, Any] | None, T: dict[str, str], lang: str) -> str:
    if not v:
        return "—"
    if v["status"] != "taking_part":
        return T[v["status"]]
    score = "—" if v.get("score") is None else f"{v['score']:.2f}"
    if v.get("receipt_owed") and not v.get("receipt_answered"):
        return f"{score} · {T['no_response']}"
    rec = v.get("receipt_mean_s")
    return f"{score} · {fmt_s(rec, lang)}" if rec is not None else score
