"""The scorecard's evidence appendices, computed (not drawn): A per command x department, B per
criterion, C per department, D every rating. What does not fit on paper is named, with where in
score.json it is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from scoring.catalog import STAGES
from scoring.evidence import PairTable
from scoring.metrics import NONE, Evaluator, Facts
from scoring.report_text import (
    LABELS,
    clock,
    deadline_words,
    fmt_exact_s,
    fmt_pct_ratio,
    fmt_pts,
    rule_text,
)
from scoring.rubric import VIDEO_METRICS, Rubric
from scoring.scorecard import CriterionResult, DeptResult, Scorecard
from scoring.wording import exact_duration

MAX_APPENDIX_PAIRS = 400  # rows of Appendix A on paper; the JSON has them all
MAX_LOST_ON = 6  # units named per row of Appendix B


@dataclass
class PairsAppendix:
    intro: str
    head: list[str]
    rows: list[list[str]]
    flagged: list[int]  # rows that lost points
    more: str  # how many rows are only in score.json ("" when all are printed)


@dataclass
class CriterionEvidence:
    criterion: str
    ref: str  # B.n
    title: str
    lines: list[str]
    head: list[str]
    rows: list[list[str]]


@dataclass
class Appendices:
    pairs: PairsAppendix
    criteria: list[CriterionEvidence]
    dept_head: list[str]
    dept_rows: list[list[str]]
    dept_legend: str
    ratings: list[list[str]]
    refs: dict[str, str] = field(default_factory=dict)  # criterion id -> B.n


def build_appendices(card: Scorecard, facts: Facts, rubric: Rubric, lang: str, tz: dt.timezone) -> Appendices:
    criteria = _criteria(card, facts, rubric, lang, tz)
    refs = {c.criterion: c.ref for c in criteria}
    head, rows, legend = _dept_matrix(card, facts, lang, refs)
    return Appendices(
        _pairs(card.appendix, facts, lang, tz),
        criteria,
        head,
        rows,
        legend,
        _ratings(card, facts, lang, tz),
        refs,
    )


# --- A: command x department ---------------------------------------------------------------


def _stage_cell(t: PairTable, i: int, s: int, lang: str, tz: dt.timezone) -> str:
    f = t.facts
    L = LABELS[lang]
    if not t.required[i, s]:
        return ""
    dl = t.deadline[i, s]
    limit = f" / {fmt_exact_s(float(dl), lang)}" if np.isfinite(dl) else ""
    if t.missing[i, s]:
        return f"{L['app_missing']}\n{limit.strip()}"
    ts = int(f.p_stage_ts[i, s])
    if ts == NONE:
        return ""
    lines = [
        f"#{int(f.p_stage_seq[i, s])} {clock(ts, tz, ms=True)}",
        fmt_exact_s(float(t.latency[i, s]), lang) + limit,
    ]
    late = t.late[i, s]
    if np.isfinite(late) and late > 1e-9:
        lines.append(f"{L['app_late']} {fmt_exact_s(float(late), lang)}")
    if s == 0 and f.p_receipt_kind[i] == 4:
        lines[1] += f" {L['app_by_decline']}"
    return "\n".join(lines)


def _pairs(table: PairTable | None, facts: Facts, lang: str, tz: dt.timezone) -> PairsAppendix:
    L = LABELS[lang]
    intro = L["app_pairs_intro"].format(tz=tz.tzname(None))
    head = [
        "",
        L["app_cmd"],
        L["dept"],
        L["app_issued"],
        L["app_delivered"],
        L["stage_receipt"],
        L["stage_on_scene"],
        L["stage_completed"],
        L["app_marks"],
    ]
    if table is None or len(table) == 0:
        return PairsAppendix(intro, head, [], [], "")
    idx, rest = table.order_for_paper(MAX_APPENDIX_PAIRS)
    f = facts
    rows: list[list[str]] = []
    flagged: list[int] = []
    for i in idx.tolist():
        c, d = int(f.p_cmd[i]), int(f.p_dept[i])
        issued = int(f.cmd_ts[c])
        cmd = f.cmd_ids[c] + ("*" if f.cmd_critical[c] else "")
        level = f.cmd_level[c] or f.op.level
        dv = int(f.p_delivered_ts[i])
        delivered = (
            f"#{int(f.p_delivered_seq[i])}\n+{fmt_exact_s((dv - issued) * f.scale, lang)}"
            if dv != NONE
            else "—"
        )
        marks = [f"{L['app_overdue']} #{s}" for s in table.overdue.get(i, [])]
        marks += [f"{L['app_escalated']} #{s}" for s in table.escalated.get(i, [])]
        if f.p_cancel_ts[i] != NONE:
            marks.append(f"{L['app_cancelled']} #{int(f.p_cancel_seq[i])}")
        if table.lost[i]:
            flagged.append(len(rows))
        rows.append(
            [
                "!" if table.lost[i] else "",
                f"{cmd}\n{level}",
                f.names[f.depts[d]].name_zh,
                f"#{int(f.cmd_seq[c])}\n{clock(issued, tz, ms=True)}",
                delivered,
                *(_stage_cell(table, i, s, lang, tz) for s in range(3)),
                "\n".join(marks),
            ]
        )
    more = L["app_pairs_more"].format(a=len(idx), b=len(table), c=rest) if rest else ""
    return PairsAppendix(intro, head, rows, flagged, more)


# --- B: per criterion -----------------------------------------------------------------------


def _value(x: float | None, unit: str, lang: str) -> str:
    if x is None:
        return "—"
    if unit == "s":
        return fmt_exact_s(x, lang)
    if unit in ("ratio", "bool"):
        return fmt_pct_ratio(x)
    return f"{x:g}"


def _lost_on(c: CriterionResult, facts: Facts, dept: int | None, lang: str) -> str:
    """The units of a criterion (of one department) that cost points, by command or seq."""
    L = LABELS[lang]
    u = c.detail
    if u is None or len(u) == 0:
        return ""
    if c.type == "count":
        bad = u.value > 0
    elif c.detail_fraction is not None:
        bad = c.detail_fraction < 1 - 1e-9
    else:
        return ""
    if dept is not None:
        bad = bad & (u.dept == dept)
    idx = np.flatnonzero(bad)
    if not len(idx):
        return L["none"]
    stage = STAGES.index(c.params["stage"]) if "stage" in c.params else 0
    parts: list[str] = []
    for k in idx[:MAX_LOST_ON].tolist():
        d = int(u.dept[k])
        if u.pair is not None:
            p = int(u.pair[k])
            cmd = facts.cmd_ids[int(facts.p_cmd[p])]
            seq = int(facts.p_stage_seq[p, stage])
            reached = facts.p_stage_ts[p, stage] != NONE
            parts.append(f"{cmd} #{seq}" if reached else f"{cmd} ({L['app_missing']})")
        elif c.params.get("metric") in VIDEO_METRICS and d >= 0:
            marks = facts.video[facts.depts[d]].marks
            parts.append(" ".join(f"{L.get(kind, kind)} #{seq}" for seq, kind in marks[:4]) or L["no_feed"])
        else:
            seqs = [int(s) for s in u.ev_seq[k].tolist() if s > 0]
            who = (
                u.label[k]
                if u.label
                else (facts.names[facts.depts[d]].name_zh if dept is None and d >= 0 else "")
            )
            what = f"#{seqs[0]}" if seqs else L["app_missing"]
            parts.append(f"{who} {what}".strip())
    text = ", ".join(parts)
    if len(idx) > MAX_LOST_ON:
        text += "; " + L["app_more"].format(n=len(idx) - MAX_LOST_ON)
    return text


def _dept_value(c: CriterionResult, r: DeptResult, dept: int, lang: str) -> str:
    """A department's measured value; a value that was never measured (censored) says so."""
    u = c.detail
    value = _value(r.value, c.unit, lang)
    if u is not None and c.unit == "s" and c.params.get("basis") == "dept":
        mine = u.censored & (u.dept == dept)
        if mine.any():
            return f"{LABELS[lang]['app_missing']} ({value})"
    return value


def _param_lines(c: CriterionResult, lang: str) -> list[str]:
    L = LABELS[lang]
    p = c.params
    lines: list[str] = []
    if "deadline" in p:
        text = deadline_words(p["deadline"], lang)
        levels = p.get("scenario_deadlines") or {}
        if levels:
            text += (
                " (" + ", ".join(f"{k}: {exact_duration(float(v), lang)}" for k, v in levels.items()) + ")"
            )
        lines.append(L["app_deadline"].format(d=text))
    if p.get("basis") == "pair" and "stage" in p:
        lines.append(L["app_uses_pairs"].format(stage=L[f"stage_{p['stage']}"]))
    return lines


def _criteria(
    card: Scorecard, facts: Facts, rubric: Rubric, lang: str, tz: dt.timezone
) -> list[CriterionEvidence]:
    L = LABELS[lang]
    crit_by_id = {c.id: c for _, c in rubric.criteria()}
    out: list[CriterionEvidence] = []
    index = facts.dept_index()
    rated = {(o["criterion"], o["dept"]): o for o in card.observations}
    n = 0
    for c in card.criteria():
        n += 1
        ref = f"B.{n}"
        earned = f"{fmt_pts(c.earned)} / {fmt_pts(c.max)}" if c.applicable else L["na"]
        title = f"{ref}  {c.title.get(lang)} ({c.id})  {earned}"
        lines = [rule_text(crit_by_id[c.id], rubric) if lang == "zh" else c.rule, *_param_lines(c, lang)]
        if c.applicable and c.fraction is not None:
            lines.append(
                f"{L['app_fraction']} {c.fraction:.4f} × {fmt_pts(c.max)} = {fmt_pts(c.earned)}"
                + (f"; {L['app_value']} {_value(c.value, c.unit, lang)}" if c.value is not None else "")
            )
        lines += [n_.text(lang) for n_ in c.notes]
        head: list[str] = []
        rows: list[list[str]] = []
        if c.type == "checklist":
            head = [L["item"], L["max"], L["checked"], L["evaluator"], "#"]
            for it in c.extra.get("items", []):
                rows.append(
                    [
                        str(it["text"][lang]),
                        fmt_pts(it["points"]),
                        L["yes"] if it["checked"] else L["no"],
                        _who(it, lang) if it.get("seq") else "—",
                        f"#{it['seq']}" if it.get("seq") else "—",
                    ]
                )
        elif c.departments:
            head = [
                L["dept"],
                L["app_units"],
                L["app_value"],
                L["app_fraction"],
                L["earned"],
                L["app_lost_on"],
            ]
            for d in card.departments:
                r = c.departments.get(d.id)
                if r is None:
                    continue
                name = facts.names[d.id].name_zh
                if r.fraction is None:
                    status = L.get(r.status, L["na"])
                    rows.append([name, "0", status, "—", "—", r.note])
                    continue
                if c.type == "observation":
                    o = rated.get((c.id, d.id))
                    value = str(o["rating"]) if o else L["not_rated"]
                    lost = f"{_who(o, lang)} #{o['seq']}" if o else "—"
                else:
                    lost = _lost_on(c, facts, index[d.id], lang)
                    value = _dept_value(c, r, index[d.id], lang)
                rows.append([name, str(r.units), value, f"{r.fraction:.4f}", fmt_pts(r.earned), lost])
        elif c.applicable:
            head = [L["app_units"], L["app_value"], L["app_fraction"], L["earned"], L["app_lost_on"]]
            lost = _lost_on(c, facts, None, lang)
            if c.type == "observation":
                o = rated.get((c.id, None))
                lost = f"{_who(o, lang)} #{o['seq']}" if o else L["not_rated"]
            units = len(c.detail) if c.detail is not None else len(c.evidence)
            rows.append(
                [
                    str(units),
                    str(c.extra.get("rating") or "—")
                    if c.type == "observation"
                    else _value(c.value, c.unit, lang),
                    f"{c.fraction:.4f}" if c.fraction is not None else "—",
                    fmt_pts(c.earned),
                    lost,
                ]
            )
        out.append(CriterionEvidence(c.id, ref, title, lines, head, rows))
    return out


def _who(o: dict[str, object] | None, lang: str) -> str:
    """The evaluator of a counted rating (observations/checklist entries of the scorecard)."""
    if o is None:
        return "—"
    eid = o.get("evaluator_id")
    return Evaluator(str(eid) if eid else None, str(o["evaluator"]) if o.get("evaluator") else None).label(
        lang
    )


# --- C: departments ---------------------------------------------------------------------------


def _dept_matrix(
    card: Scorecard, facts: Facts, lang: str, refs: dict[str, str]
) -> tuple[list[str], list[list[str]], str]:
    L = LABELS[lang]
    chosen = set(card.department_sections)
    cols = [c for s in card.sections if s.id in chosen for c in s.criteria if c.applicable and c.departments]
    head = [L["dept"]] + [f"{refs.get(c.id, c.id)}\n({fmt_pts(c.max)})" for c in cols]
    head += [L["app_sum"], L["dept_deducted"], L["app_net"], L["max"], L["dept_score"]]
    rows: list[list[str]] = []
    for d in card.departments:
        name = facts.names[d.id].name_zh
        if d.status != "taking_part":
            rows.append([name, L[d.status]] + [""] * (len(cols) + 4))
            continue
        cells = [name]
        for c in cols:
            r = c.departments.get(d.id)
            cells.append(fmt_pts(r.earned) if r is not None and r.fraction is not None else L["na"])
        cells += [
            fmt_pts(d.earned),
            f"-{fmt_pts(d.deducted)}" if d.deducted else fmt_pts(0.0),
            fmt_pts(max(0.0, d.earned - d.deducted)),
            fmt_pts(d.max),
            fmt_pts(d.score),
        ]
        rows.append(cells)
    legend = " · ".join(f"{refs.get(c.id, c.id)} {c.title.get(lang)}" for c in cols)
    return head, rows, legend


# --- D: ratings -------------------------------------------------------------------------------


def _ratings(card: Scorecard, facts: Facts, lang: str, tz: dt.timezone) -> list[list[str]]:
    L = LABELS[lang]
    rows = []
    for r in card.ratings:
        what = r.criterion if r.kind == "observation" else f"{r.criterion}/{r.item}"
        dept = facts.names[r.dept].name_zh if r.dept in facts.names else (r.dept or "—")
        status = L[r.status] + (": " + r.reason.text(lang) if r.reason else "")
        rows.append(
            [
                f"#{r.seq}",
                clock(r.ts_us, tz),
                r.author.label(lang),
                what,
                dept,
                L.get(r.value, r.value),
                status,
                r.note,
            ]
        )
    return rows
