"""Draw the scorecard PDF (reportlab) from a ReportModel, with an embedded CJK TrueType font."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import registerFontFamily
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from media.fonts import find_cjk_font
from scoring import charts
from scoring.report_model import ReportModel

FONT = charts.FONT
PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
BODY_W = PAGE_W - 2 * MARGIN


def register_font() -> str:
    """Register the CJK TrueType font (embedded as a subset in every PDF); return its name."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        path = find_cjk_font()
        pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
        # one face serves every style: <b> in a paragraph must not pull in a base-14 font
        registerFontFamily(FONT, normal=FONT, bold=FONT, italic=FONT, boldItalic=FONT)
    return FONT


def styles(lang: str = "zh") -> dict[str, ParagraphStyle]:
    """Paragraph styles: Chinese text wraps anywhere (CJK), English at word boundaries."""
    wrap = "CJK" if lang == "zh" else None
    base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=12, wordWrap=wrap)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=9),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7, leading=8.6),
        "tiny": ParagraphStyle("tiny", parent=base, fontSize=6, leading=7.2),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontSize=13,
            leading=18,
            spaceBefore=8,
            spaceAfter=5,
            textColor=colors.HexColor("#1f3864"),
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontSize=9,
            leading=12,
            spaceBefore=6,
            spaceAfter=2,
            textColor=colors.HexColor("#1f3864"),
        ),
        "title": ParagraphStyle("title", parent=base, fontSize=22, leading=30, alignment=TA_CENTER),
        "subtitle": ParagraphStyle(
            "subtitle",
            parent=base,
            fontSize=13,
            leading=18,
            alignment=TA_CENTER,
            textColor=colors.HexColor("#555555"),
        ),
        "big": ParagraphStyle(
            "big",
            parent=base,
            fontSize=30,
            leading=38,
            alignment=TA_CENTER,
            textColor=colors.HexColor("#1f3864"),
        ),
    }


def esc(s: object) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SEQ = re.compile(r"#(\d+)")


def table(
    rows: list[list[Any]],
    widths: list[float],
    header: bool = True,
    extra: list[tuple[Any, ...]] | None = None,
    font_size: float = 7,
) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), font_size),
        ("LEADING", (0, 0), (-1, -1), font_size + 1.5),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee"))]
    t.setStyle(TableStyle(style + (extra or [])))
    return t


def _page_decor(model: ReportModel) -> Callable[[Any, Any], None]:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(MARGIN, 10 * mm, model.title[:80])
        canvas.drawRightString(PAGE_W - MARGIN, 10 * mm, model.L["page"].format(n=doc.page))
        canvas.restoreState()

    return draw


class _Writer:
    """Turns texts into flowables; every `#seq` becomes a link when the model has `seq_link`
    (`linked`: the seqs linked so far, for the appendices' printed list of links)."""

    def __init__(self, model: ReportModel) -> None:
        self.model = model
        self.st = styles(model.lang)
        self.linked: set[int] = set()

    def markup(self, s: object) -> str:
        text = esc(s)
        link = self.model.seq_link
        if link is None:
            return text

        def linked(m: re.Match[str]) -> str:
            self.linked.add(int(m.group(1)))
            return f'<link href="{esc(link(int(m.group(1))))}">#{m.group(1)}</link>'

        return SEQ.sub(linked, text)

    def p(self, s: object, style: str = "cell") -> Paragraph:
        return Paragraph(self.markup(s).replace("\n", "<br/>"), self.st[style])

    def plain(self, s: str, style: str = "tiny") -> Any:
        """A cell as a plain string (fast), unless it holds a seq that must become a link."""
        if self.model.seq_link is not None and "#" in s:
            return self.p(s, style)
        return s


def story(model: ReportModel) -> list[Flowable]:
    w = _Writer(model)
    st = w.st
    L = model.L
    P = w.p
    out: list[Flowable] = []

    def cell(s: object, style: str = "cell") -> Paragraph:
        return P(s, style)

    # cover -------------------------------------------------------------------------------------
    out += [
        Spacer(1, 26 * mm),
        P(model.cover[0][1], "title"),
        P(L["report"], "subtitle"),
        Spacer(1, 10 * mm),
        P(model.score_text, "big"),
        P(f"{L['grade']}: {model.grade_text}", "subtitle"),
    ]
    if model.grade_note:
        out.append(P(model.grade_note, "subtitle"))
    out.append(Spacer(1, 10 * mm))
    cover_rows = [[cell(k, "body"), cell(v, "body")] for k, v in model.cover]
    out.append(
        table(
            cover_rows,
            [44 * mm, 120 * mm],
            header=False,
            extra=[("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f7"))],
        )
    )
    out.append(PageBreak())

    # executive summary ---------------------------------------------------------------------------
    out.append(P(L["summary"], "h1"))
    out.append(P(f"{L['score']}: {model.score_text}  {L['grade']}: {model.grade_text}", "body"))
    out.append(Spacer(1, 3))
    out.append(Paragraph(f"<b>{esc(L['strengths'])}</b>", st["body"]))
    out += [P("• " + s, "body") for s in model.strengths]
    out.append(Spacer(1, 3))
    out.append(Paragraph(f"<b>{esc(L['improve'])}</b>", st["body"]))
    out += [P("• " + s, "body") for s in model.improvements]
    if model.notes:
        out.append(Spacer(1, 3))
        out.append(P(L["notes"], "body"))
        out += [P("– " + n, "small") for n in model.notes]

    # breakdown -----------------------------------------------------------------------------------
    out.append(P(L["breakdown"], "h1"))
    rows: list[list[Any]] = [
        [
            cell(L["criterion"]),
            cell(L["max"]),
            cell(L["earned"]),
            cell(L["deducted"]),
            cell(L["rule"]),
            cell(L["ev"]),
        ]
    ]
    extra: list[tuple[Any, ...]] = []

    def n(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    for cr in model.criteria:
        if cr.is_section:
            extra.append(("BACKGROUND", (0, len(rows)), (-1, len(rows)), colors.HexColor("#eef2f7")))
            rows.append([cell(cr.title), n(cr.max), n(cr.earned), n(cr.lost), "", ""])
        else:
            rule = cr.rule + (f" [{cr.notes}]" if cr.notes else "")
            rows.append([cell("    " + cr.title), n(cr.max), n(cr.earned), n(cr.lost), cell(rule), cr.ref])
    out.append(
        table(
            rows,
            [42 * mm, 12 * mm, 12 * mm, 12 * mm, BODY_W - 88 * mm, 10 * mm],
            extra=[*extra, ("ALIGN", (1, 1), (3, -1), "RIGHT")],
        )
    )
    out += [P(t, "small") for t in model.totals]

    # departments ---------------------------------------------------------------------------------
    out.append(CondPageBreak(90 * mm))
    out.append(P(L["depts"], "h1"))
    head = [
        L["dept"],
        L["checkin"],
        L["receipt_mean"],
        L["receipt_worst"],
        L["on_scene"],
        L["completion"],
        L["missed"],
        L["uptime"],
        L["dept_points"],
        L["dept_deducted"],
        L["dept_score"],
        L["dept_grade"],
    ]
    rows = [[cell(h, "tiny") for h in head]]
    extra = []
    for i, d in enumerate(model.depts, start=1):
        if not d.scored:
            rows.append([cell(d.name), cell(d.cells[0])] + [""] * 10)
            extra += [("SPAN", (1, i), (-1, i)), ("TEXTCOLOR", (1, i), (-1, i), charts.GREY)]
            continue
        rows.append([cell(d.name), *d.cells])
        if d.failed:
            extra.append(("TEXTCOLOR", (10, i), (11, i), charts.RED))
    widths = [
        12 * mm,
        12 * mm,
        12 * mm,
        12 * mm,
        13 * mm,
        11 * mm,
        12 * mm,
        19 * mm,
        12 * mm,
        12 * mm,
        13 * mm,
    ]
    out.append(
        table(
            rows,
            [BODY_W - sum(widths), *widths],
            extra=[*extra, ("ALIGN", (1, 1), (-1, -1), "RIGHT")],
            font_size=6.5,
        )
    )
    out.append(P(L["dept_note"], "small"))
    if model.absent:
        out.append(P(L["absent_title"], "h2"))
        rows = [[cell(h) for h in (L["dept"], L["status"], L["reason"], L["evidence"])]]
        rows += [[cell(x) for x in r] for r in model.absent]
        out.append(table(rows, [44 * mm, 24 * mm, BODY_W - 108 * mm, 40 * mm]))

    # charts --------------------------------------------------------------------------------------
    out.append(CondPageBreak(120 * mm))
    out.append(P(L["timeline"], "h1"))
    out.append(charts.timeline(model.timeline, BODY_W, L))
    out.append(
        KeepTogether(
            [P(L["latency"], "h1"), charts.latency_bars(model.bars, BODY_W, L), P(L["latency_note"], "small")]
        )
    )
    if model.tiers:  # score --linked
        rows = [[cell(h) for h in (L["tier_part"], L["tier_stage"], "n", "p50 ms", "p90 ms",
                                   "max ms")]]
        rows += [[cell(x) for x in r] for r in model.tiers]
        out.append(KeepTogether([
            P(L["tiers"], "h2"),
            table(rows, [BODY_W - 112 * mm, 28 * mm, 12 * mm, 24 * mm, 24 * mm, 24 * mm],
                  extra=[("ALIGN", (2, 1), (-1, -1), "RIGHT")]),
            P(L["tiers_note"], "small")]))
    out.append(
        KeepTogether(
            [
                P(L["video"], "h1"),
                charts.uptime_strip(model.strips, model.span_s, BODY_W, L),
                P(model.video_caption, "small"),
            ]
        )
    )

    # injects -------------------------------------------------------------------------------------
    out += [CondPageBreak(40 * mm), P(L["injects"], "h1")]
    rows = [[cell(h) for h in (L["inject"], "", L["planned"], L["actual"], L["offset"], L["on_time"], "#")]]
    extra = []
    for i, r in enumerate(model.injects, start=1):
        rows.append([cell(x) for x in r])
        if r[5] == L["no"]:
            extra.append(("TEXTCOLOR", (4, i), (5, i), charts.RED))
    if len(rows) == 1:
        rows.append([cell(L["none"])] + [""] * 6)
    out.append(
        table(rows, [14 * mm, BODY_W - 110 * mm, 20 * mm, 20 * mm, 22 * mm, 16 * mm, 18 * mm], extra=extra)
    )

    # observations --------------------------------------------------------------------------------
    out += [CondPageBreak(40 * mm), P(L["observations"], "h1")]
    head = [L["criterion"], L["capability"], L["critical_tasks"], L["dept"], L["rating"], L["evaluator"]]
    head += [L["note"], "#"]
    rows = [[cell(h) for h in head]]
    rows += [[cell(x) for x in r] for r in model.observations] or [[cell(L["none"])] + [""] * 7]
    out.append(
        table(rows, [20 * mm, 34 * mm, 34 * mm, 26 * mm, 10 * mm, 20 * mm, BODY_W - 156 * mm, 12 * mm])
    )

    # deductions ----------------------------------------------------------------------------------
    out += [CondPageBreak(40 * mm), P(L["deductions"], "h1")]
    rows = [[cell(h) for h in (L["item"], L["count"], L["points"], L["evidence"])]]
    rows += [[cell(x) for x in r] for r in model.deductions] or [[cell(L["none"]), "", "", ""]]
    out.append(table(rows, [42 * mm, 13 * mm, 24 * mm, BODY_W - 79 * mm]))

    # improvement plan ----------------------------------------------------------------------------
    out += [CondPageBreak(40 * mm), P(L["plan"], "h1")]
    rows = [[cell(h) for h in (L["finding"], L["severity"], L["action"], L["owner"], L["due"])]]
    rows += [
        [cell(p.finding), cell(p.severity), cell(p.action), cell(p.owner), cell(p.due)] for p in model.plan
    ] or [[cell(L["none"]), "", "", "", ""]]
    out.append(table(rows, [48 * mm, 22 * mm, 50 * mm, BODY_W - 138 * mm, 18 * mm]))

    # sign-off ------------------------------------------------------------------------------------
    block: list[Flowable] = [P(L["signoff"], "h1")]
    rows = [[cell(k), cell(v)] for k, v in model.signoff]
    block.append(table(rows, [44 * mm, BODY_W - 44 * mm], header=False))
    block.append(Spacer(1, 8 * mm))
    names = model.evaluators or [""]
    sign_rows = [
        [
            cell(L["sign"]),
            cell(nm),
            cell("_______________________"),
            cell(L["sign_date"]),
            cell("____________"),
        ]
        for nm in names
    ]
    block.append(
        table(
            sign_rows,
            [30 * mm, 30 * mm, 55 * mm, 15 * mm, BODY_W - 130 * mm],
            header=False,
            extra=[("GRID", (0, 0), (-1, -1), 0, colors.white)],
        )
    )
    out.append(KeepTogether(block))
    out += appendices(model, _Writer(model))
    return out


def appendices(model: ReportModel, w: _Writer) -> list[Flowable]:
    """Appendix A (commands x departments), B (criteria), C (departments), D (ratings)."""
    L = model.L
    a = model.appendices
    out: list[Flowable] = [PageBreak(), w.p(L["app_pairs"], "h1"), w.p(a.pairs.intro, "small")]
    if a.pairs.more:
        out.append(w.p(a.pairs.more, "small"))
    out.append(Spacer(1, 2 * mm))
    rows: list[list[Any]] = [[w.p(h, "tiny") for h in a.pairs.head]]
    rows += [[w.plain(c) for c in r] for r in a.pairs.rows] or [[w.p(L["none"], "tiny")] + [""] * 8]
    extra: list[tuple[Any, ...]] = [
        ("TEXTCOLOR", (0, i + 1), (0, i + 1), charts.RED) for i in a.pairs.flagged
    ]
    widths = [4 * mm, 13 * mm, 18 * mm, 23 * mm, 15 * mm, 29 * mm, 29 * mm, 29 * mm]
    widths.append(BODY_W - sum(widths))
    out.append(table(rows, widths, extra=[*extra, ("VALIGN", (0, 0), (-1, -1), "TOP")], font_size=5.8))
    if a.pairs.more:
        out.append(w.p(a.pairs.more, "small"))

    out += [PageBreak(), w.p(L["app_criteria"], "h1"), w.p(L["app_criteria_intro"], "small")]
    for ce in a.criteria:
        block: list[Flowable] = [w.p(ce.title, "h2")]
        block += [w.p(line, "tiny") for line in ce.lines if line]
        if ce.rows:
            n = len(ce.head)
            if n == 6:
                widths = [30 * mm, 12 * mm, 22 * mm, 16 * mm, 14 * mm]
            elif n == 5 and ce.head[0] == L["app_units"]:
                widths = [14 * mm, 26 * mm, 16 * mm, 14 * mm]
            else:
                widths = [60 * mm, 14 * mm, 14 * mm, 30 * mm]
            widths.append(BODY_W - sum(widths))
            rows = [[w.p(h, "tiny") for h in ce.head]] + [[w.p(c, "tiny") for c in r] for r in ce.rows]
            block.append(table(rows, widths, font_size=6))
        out += [KeepTogether(block)] if len(ce.rows) < 20 else block

    out += [PageBreak(), w.p(L["app_depts"], "h1"), w.p(L["app_depts_intro"], "small")]
    k = len(a.dept_head)
    rest = (BODY_W - 26 * mm) / max(k - 1, 1)
    rows = [[w.p(h, "tiny") for h in a.dept_head]] + [[w.p(r[0], "tiny"), *r[1:]] for r in a.dept_rows]
    extra = [("ALIGN", (1, 1), (-1, -1), "RIGHT")]
    for i, r in enumerate(a.dept_rows, start=1):
        if len(r) > 1 and r[2] == "" and k > 3:
            extra += [("SPAN", (1, i), (-1, i)), ("ALIGN", (1, i), (-1, i), "LEFT")]
    out.append(table(rows, [26 * mm] + [rest] * (k - 1), extra=extra, font_size=6))
    out.append(w.p(a.dept_legend, "tiny"))

    out += [w.p(L["app_ratings"], "h1"), w.p(L["app_ratings_intro"], "small")]
    head = [
        "#",
        L["app_time"],
        L["evaluator"],
        L["criterion"],
        L["dept"],
        L["rating"],
        L["app_status"],
        L["note"],
    ]
    rows = [[w.p(h, "tiny") for h in head]]
    rows += [[w.p(c, "tiny") for c in r] for r in a.ratings] or [[w.p(L["none"], "tiny")] + [""] * 7]
    widths = [11 * mm, 14 * mm, 24 * mm, 28 * mm, 22 * mm, 14 * mm, 38 * mm]
    widths.append(BODY_W - sum(widths))
    out.append(table(rows, widths, font_size=6))
    return out + _replay_links(model, w)


def _replay_links(model: ReportModel, w: _Writer) -> list[Flowable]:
    """The replay deep link of every seq the appendices cite, printed as text (for paper)."""
    link = model.seq_link
    if link is None or not w.linked:
        return []
    zh = model.lang == "zh"
    title = "复盘链接：附录中每个日志序号在复盘中的此刻" if zh else \
        "Replay links: each log seq cited in the appendices, at that moment in the replay"
    rows: list[list[Any]] = [["#" if zh else "seq", "链接" if zh else "link"]]
    rows += [[f"#{n}", link(n)] for n in sorted(w.linked)]
    return [CondPageBreak(40 * mm), w.p(title, "h1"),
            table(rows, [14 * mm, BODY_W - 14 * mm], font_size=6)]


def write_atomic(path: str | Path, build: Callable[[str], None]) -> None:
    """Build a file beside `path` and move it into place only when complete."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    tmp.touch(exist_ok=False)  # an ordinary file (umask applies), unlike mkstemp's 0600
    try:
        build(str(tmp))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render(model: ReportModel, path: str | Path) -> int:
    """Write the scorecard PDF; return its number of pages."""
    register_font()
    pages = 0

    def build(tmp: str) -> None:
        doc = SimpleDocTemplate(
            tmp,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=16 * mm,
            title=model.title,
            author="CommandHub",
            subject=model.L["report"],
            creator="CommandHub scoring",
            initialFontName=FONT,
            initialFontSize=8,
        )
        decor = _page_decor(model)
        doc.build(story(model), onFirstPage=decor, onLaterPages=decor)
        nonlocal pages
        pages = doc.page

    write_atomic(path, build)
    return pages


def table_page(
    path: str | Path,
    *,
    title: str,
    subtitle: str,
    header: list[str],
    rows: list[list[str]],
    ok_column: int,
    ok: list[bool],
    footer: str,
) -> None:
    """A one-page landscape table (e.g. the roll call's readiness): column `ok_column` is green
    where `ok`, red elsewhere. Written atomically, with the CJK font embedded."""
    font = register_font()
    title_style = ParagraphStyle("t", fontName=font, fontSize=18, leading=24)
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=13)
    grid = Table([header, *rows], repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
    ]
    for i, good in enumerate(ok, start=1):
        style.append(
            (
                "TEXTCOLOR",
                (ok_column, i),
                (ok_column, i),
                colors.HexColor("#1a7f37") if good else colors.HexColor("#c62828"),
            )
        )
    grid.setStyle(TableStyle(style))
    story = [
        Paragraph(esc(title), title_style),
        Spacer(1, 3 * mm),
        Paragraph(esc(subtitle), body),
        Spacer(1, 4 * mm),
        grid,
        Spacer(1, 4 * mm),
        Paragraph(esc(footer), body),
    ]
    write_atomic(
        path,
        lambda tmp: SimpleDocTemplate(
            tmp,
            pagesize=landscape(A4),
            leftMargin=14 * mm,
            rightMargin=14 * mm,
            topMargin=12 * mm,
            bottomMargin=12 * mm,
            title=title,
            initialFontName=font,
        ).build(story),
    )
