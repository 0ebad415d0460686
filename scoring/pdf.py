"""Draw the scorecard PDF (reportlab) from a ReportModel, with an embedded CJK TrueType font."""

from __future__ import annotations

import os
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

from hub.fonts import find_cjk_font
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


def styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=12, wordWrap="CJK")
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=9),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7, leading=8.6),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontSize=13,
            leading=18,
            spaceBefore=8,
            spaceAfter=5,
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
        ("LEADING", (0, 0), (-1, -1), font_size + 2),
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


def story(model: ReportModel) -> list[Flowable]:
    st = styles()
    L = model.L
    P = Paragraph
    out: list[Flowable] = []

    def cell(s: object, style: str = "cell") -> Paragraph:
        return P(esc(s), st[style])

    # cover -------------------------------------------------------------------------------------
    out += [
        Spacer(1, 30 * mm),
        P(esc(model.cover[0][1]), st["title"]),
        P(esc(L["report"]), st["subtitle"]),
        Spacer(1, 12 * mm),
        P(esc(model.score_text), st["big"]),
        P(esc(f"{L['grade']}: {model.grade_text}"), st["subtitle"]),
    ]
    if model.grade_note:
        out.append(P(esc(model.grade_note), st["subtitle"]))
    out.append(Spacer(1, 12 * mm))
    cover_rows = [[cell(k, "body"), cell(v, "body")] for k, v in model.cover]
    out.append(
        table(
            cover_rows,
            [40 * mm, 110 * mm],
            header=False,
            extra=[("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f7"))],
        )
    )
    out.append(PageBreak())

    # executive summary ---------------------------------------------------------------------------
    out.append(P(esc(L["summary"]), st["h1"]))
    out.append(P(esc(f"{L['score']}: {model.score_text}  {L['grade']}: {model.grade_text}"), st["body"]))
    out.append(Spacer(1, 3))
    out.append(P(f"<b>{esc(L['strengths'])}</b>", st["body"]))
    out += [P("• " + esc(s), st["body"]) for s in model.strengths]
    out.append(Spacer(1, 3))
    out.append(P(f"<b>{esc(L['improve'])}</b>", st["body"]))
    out += [P("• " + esc(s), st["body"]) for s in model.improvements]
    if model.notes:
        out.append(Spacer(1, 3))
        out.append(P(esc(L["notes"]), st["body"]))
        out += [P("– " + esc(n), st["small"]) for n in model.notes]

    # breakdown -----------------------------------------------------------------------------------
    out.append(P(esc(L["breakdown"]), st["h1"]))
    rows: list[list[Any]] = [
        [cell(L["criterion"]), cell(L["max"]), cell(L["earned"]), cell(L["deducted"]), cell(L["rule"])]
    ]
    extra: list[tuple[Any, ...]] = []
    for cr in model.criteria:

        def n(x: float | None) -> str:
            return "—" if x is None else f"{x:.2f}"

        if cr.is_section:
            extra.append(("BACKGROUND", (0, len(rows)), (-1, len(rows)), colors.HexColor("#eef2f7")))
            rows.append([cell(cr.title), cell(n(cr.max)), cell(n(cr.earned)), cell(n(cr.lost)), ""])
        else:
            rule = cr.rule + (f" [{cr.notes}]" if cr.notes else "")
            rows.append(
                [cell("    " + cr.title), cell(n(cr.max)), cell(n(cr.earned)), cell(n(cr.lost)), cell(rule)]
            )
    out.append(table(rows, [44 * mm, 13 * mm, 13 * mm, 13 * mm, BODY_W - 83 * mm], extra=extra))

    # departments ---------------------------------------------------------------------------------
    out.append(CondPageBreak(90 * mm))
    out.append(P(esc(L["depts"]), st["h1"]))
    head = [
        L["dept"],
        L["checkin"],
        L["receipt_mean"],
        L["receipt_worst"],
        L["on_scene"],
        L["completion"],
        L["missed"],
        L["uptime"],
        L["dept_score"],
        L["dept_grade"],
    ]
    rows = [[cell(h) for h in head]]
    extra = []
    for i, d in enumerate(model.depts, start=1):
        rows.append(
            [
                cell(d.name),
                d.checkin,
                d.receipt_mean,
                d.receipt_worst,
                d.on_scene,
                d.completion,
                d.missed,
                d.uptime,
                d.score,
                d.grade,
            ]
        )
        if d.failed:
            extra.append(("TEXTCOLOR", (8, i), (9, i), charts.RED))
    w_name = 40 * mm
    rest = (BODY_W - w_name) / 9
    out.append(table(rows, [w_name] + [rest] * 9, extra=[*extra, ("ALIGN", (1, 1), (-1, -1), "RIGHT")]))

    # charts --------------------------------------------------------------------------------------
    out.append(CondPageBreak(120 * mm))
    out.append(P(esc(L["timeline"]), st["h1"]))
    out.append(charts.timeline(model.timeline, BODY_W, L))
    out.append(
        KeepTogether(
            [P(esc(L["latency"]), st["h1"]), charts.latency_bars(model.bars, model.threshold_s, BODY_W, L)]
        )
    )
    out.append(
        KeepTogether(
            [P(esc(L["video"]), st["h1"]), charts.uptime_strip(model.strips, model.span_s, BODY_W, L)]
        )
    )

    # injects -------------------------------------------------------------------------------------
    out.append(P(esc(L["injects"]), st["h1"]))
    rows = [[cell(h) for h in (L["inject"], "", L["planned"], L["actual"], L["offset"], L["on_time"])]]
    extra = []
    for i, r in enumerate(model.injects, start=1):
        rows.append([cell(x) for x in r])
        if r[-1] == L["no"]:
            extra.append(("TEXTCOLOR", (4, i), (5, i), charts.RED))
    if len(rows) == 1:
        rows.append([cell(L["none"]), "", "", "", "", ""])
    out.append(table(rows, [14 * mm, BODY_W - 94 * mm, 20 * mm, 20 * mm, 22 * mm, 18 * mm], extra=extra))

    # observations --------------------------------------------------------------------------------
    out.append(P(esc(L["observations"]), st["h1"]))
    rows = [
        [
            cell(h)
            for h in (L["criterion"], L["capability"], L["critical_tasks"], L["dept"], L["rating"], L["note"])
        ]
    ]
    rows += [[cell(x) for x in r] for r in model.observations] or [[cell(L["none"])] + [""] * 5]
    out.append(table(rows, [22 * mm, 42 * mm, 42 * mm, 30 * mm, 12 * mm, BODY_W - 148 * mm]))

    # deductions ----------------------------------------------------------------------------------
    out.append(P(esc(L["deductions"]), st["h1"]))
    rows = [[cell(h) for h in (L["item"], L["count"], L["points"], L["evidence"])]]
    rows += [[cell(x) for x in r] for r in model.deductions] or [[cell(L["none"]), "", "", ""]]
    out.append(table(rows, [42 * mm, 13 * mm, 24 * mm, BODY_W - 79 * mm]))

    # improvement plan ----------------------------------------------------------------------------
    out.append(P(esc(L["plan"]), st["h1"]))
    rows = [[cell(h) for h in (L["finding"], L["severity"], L["action"], L["owner"], L["due"])]]
    rows += [
        [cell(p.finding), cell(p.severity), cell(p.action), cell(p.owner), cell(p.due)] for p in model.plan
    ] or [[cell(L["none"]), "", "", "", ""]]
    out.append(table(rows, [48 * mm, 20 * mm, 52 * mm, BODY_W - 138 * mm, 18 * mm]))

    # sign-off ------------------------------------------------------------------------------------
    block: list[Flowable] = [P(esc(L["signoff"]), st["h1"])]
    rows = [[cell(k), cell(v)] for k, v in model.signoff]
    block.append(table(rows, [40 * mm, BODY_W - 40 * mm], header=False))
    block.append(Spacer(1, 8 * mm))
    names = model.evaluators or [""]
    sign_rows = [
        [
            cell(L["sign"]),
            cell(n),
            cell("_______________________"),
            cell(L["sign_date"]),
            cell("____________"),
        ]
        for n in names
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
    return out


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


def render(model: ReportModel, path: str | Path) -> None:
    """Write the scorecard PDF."""
    register_font()

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

    write_atomic(path, build)


def table_page(path: str | Path, *, title: str, subtitle: str, header: list[str],
               rows: list[list[str]], ok_column: int, ok: list[bool], footer: str) -> None:
    """A one-page landscape table (e.g. the roll call's readiness): column `ok_column` is green
    where `ok`, red elsewhere. Written atomically, with the CJK font embedded."""
    font = register_font()
    title_style = ParagraphStyle("t", fontName=font, fontSize=18, leading=24)
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=13)
    grid = Table([header, *rows], repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee"))]
    for i, good in enumerate(ok, start=1):
        style.append(("TEXTCOLOR", (ok_column, i), (ok_column, i),
                      colors.HexColor("#1a7f37") if good else colors.HexColor("#c62828")))
    grid.setStyle(TableStyle(style))
    story = [Paragraph(esc(title), title_style), Spacer(1, 3 * mm), Paragraph(esc(subtitle), body),
             Spacer(1, 4 * mm), grid, Spacer(1, 4 * mm), Paragraph(esc(footer), body)]
    write_atomic(path, lambda tmp: SimpleDocTemplate(
        tmp, pagesize=landscape(A4), leftMargin=14 * mm, rightMargin=14 * mm, topMargin=12 * mm,
        bottomMargin=12 * mm, title=title, initialFontName=font).build(story))
