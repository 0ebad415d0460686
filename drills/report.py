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
    from scoring.pdf import table_page

    table_page(
        path,
        title="视频点名 就绪报告 / Roll call readiness",
        subtitle=f"{report.when} · hub {report.url} · command {report.command_id or '—'} · "
                 f"timeout {report.timeout_s:g} s",
        header=list(HEADER),
        rows=[list(r) for r in rows(report)],
        ok_column=5,
        ok=[r.ready for r in report.rows],
        footer=f"{report.ready_count}/{len(report.rows)} 个部门就绪 departments ready",
    )
