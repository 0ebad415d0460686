"""The roll call's readiness page: a plain-text table and a one-page PDF (reportlab, CJK font)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drills.rollcall import RollCallReport



def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("OK" if ok else "FAIL")


HEADER = ["部门 Department", "在线 Online", "视频 Video", "音频 Audio", "指令 Command", "就绪 Ready"]


def rows(report: RollCallReport) -> list[list[str]]:
    out = []
    for r in report.rows:
        video = _mark(r.video) + (f" {r.video_fps:.0f}fps" if r.video and r.video_fps else "")
        rtt = f" {r.command_s:.2f}s" if r.command_s is not None else ""
        out.append([f"{r.name_zh} ({r.dept})", _mark(r.online), video, _mark(r.audio),
                    _mark(r.command) + rtt, "就绪 READY" if r.ready else "未就绪 NOT READY"])
    return out


def table_text(report: RollCallReport) -> str:
    """The table as aligned text (CJK counted as two columns)."""
    body = [HEADER, *rows(report)]

    def width(s: str) -> int:
        return sum(2 if ord(c) > 0x2E7F else 1 for c in s)

    widths = [max(width(row[i]) for row in body) for i in range(len(HEADER))]
    lines = []
    for k, row in enumerate(body):
        lines.append("  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"{report.ready_count}/{len(report.rows)} departments ready "
                 f"(hub {report.url}, {report.when}, command {report.command_id or '—'})")
    return "\n".join(lines) + "\n"


def write_pdf(report: RollCallReport, path: Path) -> None:
    """One A4 page: title, when and where, the table, the count; written atomically."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from scoring.pdf import register_font, write_atomic

    font = register_font()
    title = ParagraphStyle("t", fontName=font, fontSize=18, leading=24)
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=13)
    data = [HEADER, *rows(report)]
    table = Table(data, repeatRows=1)
    style = [("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 9),
             ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee"))]
    for i, r in enumerate(report.rows, start=1):
        style.append(("TEXTCOLOR", (5, i), (5, i),
                      colors.HexColor("#1a7f37") if r.ready else colors.HexColor("#c62828")))
    table.setStyle(TableStyle(style))
    story = [Paragraph("视频点名 就绪报告 / Roll call readiness", title), Spacer(1, 3 * mm),
             Paragraph(f"{report.when} · hub {report.url} · command {report.command_id or '—'} · "
                       f"timeout {report.timeout_s:g} s", body), Spacer(1, 4 * mm), table,
             Spacer(1, 4 * mm),
             Paragraph(f"{report.ready_count}/{len(report.rows)} 个部门就绪 departments ready", body)]
    write_atomic(path, lambda tmp: SimpleDocTemplate(
        tmp, pagesize=landscape(A4), leftMargin=14 * mm, rightMargin=14 * mm, topMargin=12 * mm,
        bottomMargin=12 * mm, title="Roll call readiness").build(story))
