"""What the scorecard PDF shows, computed (not drawn): texts, table rows and chart data, per language."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.metrics import NONE, Facts
from scoring.plan import Finding, findings
from scoring.report_appendix import Appendices, build_appendices
from scoring.report_text import (
    LABELS,
    SEVERITY_EN,
    clock,
    dept_label,
    fmt_pct_ratio,
    fmt_pts,
    fmt_s,
    rule_text,
    tz_from,
)
from scoring.rubric import MetricCriterion, Rubric
from scoring.scorecard import Scorecard, round_half_up

DUE_DAYS = {"不足项": 15, "整改项": 30, "改进项": 90}
MAX_TIMELINE_PAIRS = 3000
SeqLink = Callable[[int], str]  # log seq -> a link printed beside it (issue 15's replay deep links)


@dataclass
class CriterionRow:
    section: str
    title: str
    max: float
    earned: float | None
    lost: float | None
    rule: str
    notes: str
    is_section: bool = False
    ref: str = ""  # its entry in Appendix B


@dataclass
class DeptRow:
    name: str
    cells: list[str]
    failed: bool
    scored: bool


@dataclass
class Marker:
    t_s: float
    kind: str  # issued, receipt, declined, on_scene, completed, deadline, missing
    late: bool


@dataclass
class Timeline:
    names: list[str]
    span_s: float
    rows: list[list[Marker]]
    shown: int
    total: int


@dataclass
class Bar:
    name: str
    value: float | None  # mean receipt latency of the answered commands
    worst: float | None
    deadline_lo: float | None  # the department's commands' own receipt deadlines
    deadline_hi: float | None
    late: int  # receipts later than the command's own deadline, or never
    owed: int
    na: bool = False


@dataclass
class Strip:
    name: str
    uptime: float | None
    segments: list[tuple[float, float, str]]  # (start s, end s, state)
    na: bool = False


@dataclass
class PlanRow:
    finding: str
    severity: str
    action: str
    owner: str
    due: str


@dataclass
class ReportModel:
    lang: str
    L: dict[str, str]
    title: str
    cover: list[tuple[str, str]]
    score_text: str
    grade_text: str
    grade_note: str
    strengths: list[str]
    improvements: list[str]
    criteria: list[CriterionRow]
    totals: list[str]
    depts: list[DeptRow]
    absent: list[list[str]]
    timeline: Timeline
    bars: list[Bar]
    strips: list[Strip]
    span_s: float
    video_caption: str
    injects: list[list[str]]
    observations: list[list[str]]
    deductions: list[list[str]]
    plan: list[PlanRow]
    signoff: list[tuple[str, str]]
    evaluators: list[str]
    appendices: Appendices
    notes: list[str] = field(default_factory=list)
    seq_link: SeqLink | None = None
    tiers: list[list[str]] = field(default_factory=list)  # score --linked: per-tier latencies


def tier_rows(tiers: dict[str, Any], lang: str) -> list[list[str]]:
    """scoring.tiers' figures as table rows: tier, stage, n, p50, p90, max (ms)."""
    L = LABELS[lang]
    rows = []
    for part in ("down", "town", "up", "end_to_end"):
        stages = [("", tiers[part])] if part == "down" else list(tiers[part].items())
        for stage, s in stages:
            figures = [f"{s[k]:g}" if s.get("n") else "—" for k in ("p50_ms", "p90_ms", "max_ms")]
            rows.append([L[f"tier_{part}"], L.get(f"stage_{stage}", stage) if stage else "—",
                         str(s.get("n", 0)), *figures])
    return rows


def _evaluator_names(card: Scorecard, given: list[str], lang: str) -> list[str]:
    """Names from the log (each rating's evaluator) and from --evaluator, without repeats."""
    out: list[str] = []
    for e in card.evaluators:
        if e["name"] and e["id"]:
            label = f"{e['name']} ({e['id']})"
        elif e["name"]:
            label = str(e["name"])
        elif e["id"]:
            label = f"评估员 {e['id']}" if lang == "zh" else f"evaluator {e['id']}"
        else:
            label = "未记录姓名的评估员" if lang == "zh" else "evaluator (name not recorded)"
        out.append(label)
    logged = {str(e["name"]) for e in card.evaluators if e["name"]}
    out += [g for g in given if g not in logged]
    return out


def _participants_text(card: Scorecard, facts: Facts, lang: str) -> str:
    L = LABELS[lang]
    rows = card.participants
    scored = [r for r in rows if r["status"] == "taking_part"]
    text = f"{len(scored)} / {len(rows)}"
    for status in ("excused", "not_taking_part"):
        these = [dept_label(facts, r["id"], lang) for r in rows if r["status"] == status]
        if these:
            sep = "：" if lang == "zh" else ": "
            text += f"；{L[status]}{sep}" if lang == "zh" else f"; {L[status]}{sep}"
            text += ("、" if lang == "zh" else ", ").join(these)
    return text


def build_report(
    card: Scorecard,
    facts: Facts,
    rubric: Rubric,
    lang: str = "zh",
    evaluators: list[str] | None = None,
    utc_offset: str = "+08:00",
    seq_link: SeqLink | None = None,
    tiers: dict[str, Any] | None = None,
) -> ReportModel:
    """Everything the PDF draws, in `lang` (department names stay Chinese in both)."""
    L = LABELS[lang]
    tz = tz_from(utc_offset)
    op = facts.op
    start = dt.datetime.fromtimestamp(op.start_us / 1e6, tz)
    names = {d: dept_label(facts, d, lang) for d in facts.depts}
    short = {d: facts.names[d].name_zh for d in facts.depts}  # chart labels: the Chinese name
    grade = card.grade_label(card.grade, lang)
    grade_note = ""
    if card.grade != card.grade_uncapped:
        veto = f"（{L['veto']}）" if lang == "zh" else f" ({L['veto']})"
        grade_note = f"{card.grade_label(card.grade_uncapped, lang)} → {grade}{veto}"
    ev_names = _evaluator_names(card, list(evaluators or []), lang)
    scen = card.scenario
    cover = [
        (L["drill"], op.title),
        (L["operation"], op.id),
        (L["date"], start.strftime("%Y-%m-%d %H:%M") + f" (UTC{utc_offset})"),
        (L["duration"], fmt_s(facts.window_s, lang)),
        (L["scenario"], (f"{scen['title']} ({scen['id']})" if scen else (op.scenario or L["none"]))),
        (L["level"], op.level or "—"),
        (L["participants"], _participants_text(card, facts, lang)),
        (L["evaluators"], ("、" if lang == "zh" else ", ").join(ev_names) or "—"),
        (L["rubric"], f"{rubric.title.get(lang)} v{rubric.version}"),
        (L["log_head"], f"{card.log_head[0]}:{card.log_head[1][:16]}…"),
    ]
    for cp in card.checkpoints:
        key = "checked_signed" if cp["source"] == "signed" else "checked_given"
        cover.append((L[key], f"{cp['seq']}:{str(cp['hash'])[:16]}…"))
    crits = card.criteria()
    strengths = [
        f"{c.title.get(lang)}: {fmt_pts(c.earned)}/{fmt_pts(c.max)}"
        for c in sorted(
            (c for c in crits if c.applicable and (c.fraction or 0) >= 0.9),
            key=lambda c: (-(c.fraction or 0), c.id),
        )
    ][:6]
    improvements: list[str] = []
    for v in card.vetoes:
        if v.triggered:
            improvements.append(
                f"{L['veto']}: {v.title.get(lang)} — {L['capped']} {card.grade_label(v.cap, lang)}"
            )
    for c in sorted(
        (c for c in crits if c.applicable and (c.fraction or 0) < 0.7),
        key=lambda c: ((c.fraction or 0), c.id),
    )[:6]:
        improvements.append(f"{c.title.get(lang)}: {fmt_pts(c.earned)}/{fmt_pts(c.max)}")
    for ded in card.deductions:
        if ded.deducted > 0:
            improvements.append(f"{ded.title.get(lang)}: {ded.count} → -{fmt_pts(ded.deducted)}")
    weak = [d for d in card.departments if d.score is not None and d.score < 60]
    if weak:
        improvements.append(
            f"{L['weak']}: " + ("、" if lang == "zh" else ", ").join(names[d.id] for d in weak)
        )

    appendices = build_appendices(card, facts, rubric, lang, tz)
    rows: list[CriterionRow] = []
    crit_by_id = {c.id: c for _, c in rubric.criteria()}
    for s in card.sections:
        rows.append(
            CriterionRow(
                s.title.get(lang),
                s.title.get(lang),
                s.max,
                s.earned,
                round_half_up(s.applicable - s.earned, 2),
                "",
                "",
                True,
            )
        )
        for c in s.criteria:
            rows.append(
                CriterionRow(
                    s.title.get(lang),
                    c.title.get(lang),
                    c.max,
                    c.earned if c.applicable else None,
                    round_half_up(c.max - c.earned, 2) if c.applicable else None,
                    rule_text(crit_by_id[c.id], rubric) if lang == "zh" else c.rule,
                    ("；" if lang == "zh" else "; ").join(n.text(lang) for n in c.notes),
                    ref=appendices.refs.get(c.id, ""),
                )
            )
    net = round_half_up(max(0.0, card.earned - card.deducted), 2)
    totals = [
        L["totals"].format(
            e=fmt_pts(card.earned),
            d=fmt_pts(card.deducted),
            n=fmt_pts(net),
            a=fmt_pts(card.applicable),
            t=f"{card.total:g}",
            s=fmt_pts(card.score),
            p=fmt_pts(card.percent),
        )
    ]
    if card.applicable < card.total:
        totals.append(L["totals_na"].format(na=fmt_pts(card.total - card.applicable)))

    depts: list[DeptRow] = []
    absent: list[list[str]] = []
    for d in card.departments:
        st = d.stats
        if d.status != "taking_part":
            ev = d.evidence.to_json()
            where = f"#{ev[0][0]} {clock(ev[0][1], tz)}" if ev else ""
            absent.append([names[d.id], L[d.status], d.reason or "—", where])
            depts.append(DeptRow(names[d.id], [L[d.status]] + [""] * 10, False, False))
            continue
        answered = st.get("receipt_answered") or 0
        owed = st.get("receipt_owed") or 0
        no_answer = bool(owed) and not answered
        cells = [
            fmt_s(st.get("checkin_s"), lang) if st.get("checkin_s") is not None else L["no_checkin"],
            L["no_response"] if no_answer else fmt_s(st.get("receipt_mean_s"), lang),
            L["no_response"] if no_answer else fmt_s(st.get("receipt_worst_s"), lang),
            fmt_s(st.get("on_scene_mean_s"), lang),
            fmt_s(st.get("completion_mean_s"), lang),
            f"{st.get('missed', 0)}/{st.get('commands', 0)}",
            L["not_measured"] if st.get("uptime") is None else fmt_pct_ratio(_f(st.get("uptime"))),
            f"{fmt_pts(d.earned)}/{fmt_pts(d.max)}" if d.score is not None else "—",
            f"-{fmt_pts(d.deducted)}" if d.deducted else "0.00",
            "—" if d.score is None else fmt_pts(d.score),
            card.grade_label(d.grade, lang) if d.grade else "—",
        ]
        failed = d.grade is not None and d.grade == card.grades[-1]["id"]
        depts.append(DeptRow(names[d.id], cells, failed, True))

    order = [d.id for d in card.departments]
    timeline = _timeline(facts, short, order)
    bars = _bars(facts, card, short)
    strips = []
    for d in card.departments:
        segs = [
            ((g.start_us - op.start_us) * facts.scale, (g.end_us - op.start_us) * facts.scale, g.state)
            for g in facts.video[d.id].segments
        ]
        up = d.stats.get("uptime")
        strips.append(Strip(short[d.id], None if up is None else float(up), segs, d.status != "taking_part"))
    if facts.video_source == "media":
        caption = L["video_media"]
    else:
        caption = next((n.text(lang) for n in card.notes if n.code.startswith("video_")), "")

    injects = []
    tol = _inject_tolerance(rubric)
    for i in card.injects:
        planned, actual = i["planned_s"], i["actual_s"]
        off = None if planned is None or actual is None else actual - planned
        ok = off is not None and abs(off) <= tol + 1e-9
        injects.append(
            [
                i["id"],
                i["title"],
                fmt_s(planned, lang),
                fmt_s(actual, lang),
                "—" if off is None else (("+" if off >= 0 else "-") + fmt_s(abs(off), lang)),
                L["yes"] if ok else L["no"],
                f"#{i['seq']}" if i["seq"] else "—",
            ]
        )

    observations = _observations(card, names, lang)
    deductions = []
    for dd in card.deductions:
        times = ", ".join(f"#{s} {clock(t, tz)}" for s, t in dd.evidence.to_json()[:10])
        if len(dd.evidence) > 10:
            times += f" … (+{len(dd.evidence) - 10})"
        deductions.append([dd.title.get(lang), str(dd.count), f"-{fmt_pts(dd.deducted)}", times or L["none"]])
    for v in card.vetoes:
        times = ", ".join(f"#{s} {clock(t, tz)}" for s, t in v.evidence.to_json()[:10])
        state = f"{L['capped']} {card.grade_label(v.cap, lang)}" if v.triggered else L["none"]
        detail = v.detail.text(lang)
        deductions.append(
            [
                f"{L['veto']}: {v.title.get(lang)}",
                "1" if v.triggered else "0",
                state,
                (times + " " + detail) if v.triggered and times else detail,
            ]
        )

    plan = _plan(findings(card), names, lang, start.date())
    signoff = [(L["log_head"], f"{card.log_head[0]}:{card.log_head[1]}")]
    for cp in card.checkpoints:
        key = "checked_signed" if cp["source"] == "signed" else "checked_given"
        signoff.append((L[key], f"{cp['seq']}:{cp['hash']}"))
        if cp.get("key_fingerprint"):
            signoff.append((L["signed_by"], str(cp["key_fingerprint"])))
    if not card.checkpoints:
        signoff.append((L["no_checkpoint"], "—"))
    signoff += [
        (L["rubric"], f"{rubric.id} v{rubric.version}"),
        (L["rubric_hash"], card.rubric_sha256),
    ]
    if card.scenario:
        signoff.append((L["scenario_hash"], card.scenario.get("sha256", "")))
    signers = [e["name"] for e in card.evaluators if e["name"]]
    signers += [g for g in (evaluators or []) if g not in signers]
    return ReportModel(
        lang=lang,
        L=L,
        title=f"{op.title} — {L['report']}",
        cover=cover,
        score_text=f"{fmt_pts(card.score)} / {card.total:g}",
        grade_text=f"{grade}（{fmt_pts(card.percent)}%）"
        if lang == "zh"
        else f"{grade} ({fmt_pts(card.percent)}%)",
        grade_note=grade_note,
        strengths=strengths or [L["none"]],
        improvements=improvements or [L["all_ok"]],
        criteria=rows,
        totals=totals,
        depts=depts,
        absent=absent,
        timeline=timeline,
        bars=bars,
        strips=strips,
        span_s=facts.window_s,
        video_caption=caption,
        injects=injects,
        observations=observations,
        deductions=deductions,
        plan=plan,
        signoff=signoff,
        evaluators=signers,
        appendices=appendices,
        notes=[n.text(lang) for n in card.notes],
        seq_link=seq_link,
        tiers=tier_rows(tiers, lang) if tiers else [],
    )


def _f(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _inject_tolerance(rubric: Rubric) -> float:
    """The tolerance of the rubric's injects_on_time criterion (60 s if it has none)."""
    for _, c in rubric.criteria():
        if isinstance(c, MetricCriterion) and c.metric.name == "injects_on_time":
            return float(c.params.tolerance)
    return 60.0


def _observations(card: Scorecard, names: dict[str, str], lang: str) -> list[list[str]]:
    """The ratings that count, per observation criterion, with their evaluator and seq."""
    L = LABELS[lang]
    by_key = {(o["criterion"], o["dept"]): o for o in card.observations}
    out: list[list[str]] = []

    def who(o: dict[str, object]) -> str:
        name, eid = o.get("evaluator"), o.get("evaluator_id")
        if name:
            return str(name)
        return (f"评估员 {eid}" if lang == "zh" else f"evaluator {eid}") if eid else "—"

    for c in card.criteria():
        if c.type != "observation":
            continue
        cap = c.extra.get("capability", {}).get(lang, "")
        tasks = "；".join(t.get(lang, "") for t in c.extra.get("critical_tasks", []))
        keys = [None] if c.scope == "overall" else [d.id for d in card.departments]
        for did in keys:
            r = c.departments.get(did) if did else None
            if did and (r is None or r.status in ("excused", "not_taking_part")):
                continue
            o = by_key.get((c.id, did))
            where = L["center"] if did is None else names[did]
            if o is None:
                out.append([c.title.get(lang), cap, tasks, where, L["not_rated"], "—", "", ""])
            else:
                out.append(
                    [
                        c.title.get(lang),
                        cap,
                        tasks,
                        where,
                        str(o["rating"]),
                        who(o),
                        str(o["note"]),
                        f"#{o['seq']}",
                    ]
                )
            cap, tasks = "", ""  # printed once per criterion
    return out


def _timeline(facts: Facts, names: dict[str, str], order: list[str]) -> Timeline:
    op = facts.op
    k = facts.scale  # drill seconds per logged microsecond
    n = len(facts.p_cmd)
    idx = np.arange(n)
    if n > MAX_TIMELINE_PAIRS:
        idx = np.linspace(0, n - 1, MAX_TIMELINE_PAIRS).astype(np.int64)
    rows: list[list[Marker]] = [[] for _ in facts.depts]
    where = facts.dept_index()
    row_of = {where[d]: r for r, d in enumerate(order)}
    owed = [facts.stage_applicable(s) for s in range(3)]
    declined_receipt = facts.p_receipt_kind == 4  # DECLINED
    for i in idx.tolist():
        c = int(facts.p_cmd[i])
        d = int(facts.p_dept[i])
        if not facts.dept_ok[d]:
            continue
        issued = int(facts.cmd_ts[c])
        t0 = (issued - op.start_us) * k
        row = rows[row_of[d]]
        row.append(Marker(t0, "issued", False))
        for s, kind in enumerate(("receipt", "on_scene", "completed")):
            if not facts.cmd_requires[c, s]:
                continue
            dl = float(facts.cmd_deadline[c, s])
            t = int(facts.p_stage_ts[i, s])
            if math.isfinite(dl):
                row.append(Marker(t0 + dl, "deadline", False))
            if t != NONE:
                late = math.isfinite(dl) and (t - issued) * k > dl + 1e-9
                shown = "declined" if s == 0 and declined_receipt[i] else kind
                row.append(Marker((t - op.start_us) * k, shown, late))
            elif owed[s][i]:  # never reached: a marker at its deadline (else at the end)
                row.append(Marker(t0 + dl if math.isfinite(dl) else facts.window_s, "missing", True))
    return Timeline([names[d] for d in order], facts.window_s, rows, len(idx), n)


def _bars(facts: Facts, card: Scorecard, short: dict[str, str]) -> list[Bar]:
    lat, missing = facts.latency(0)
    owed = facts.stage_applicable(0)
    dl = facts.cmd_deadline[facts.p_cmd, 0] if len(facts.p_cmd) else np.zeros(0)
    late = owed & (missing | (np.isfinite(dl) & (lat > np.nan_to_num(dl, nan=np.inf) + 1e-9)))
    where = facts.dept_index()
    out = []
    for d in card.departments:
        mine = (facts.p_dept == where[d.id]) & owed
        own = dl[mine]
        own = own[np.isfinite(own)]
        out.append(
            Bar(
                short[d.id],
                _f(d.stats.get("receipt_mean_s")),
                _f(d.stats.get("receipt_worst_s")),
                float(own.min()) if len(own) else None,
                float(own.max()) if len(own) else None,
                int(np.sum(late & mine)),
                int(np.sum(mine)),
                d.status != "taking_part",
            )
        )
    return out


def _plan(items: list[Finding], names: dict[str, str], lang: str, day: dt.date) -> list[PlanRow]:
    L = LABELS[lang]
    out: list[PlanRow] = []
    generic = {
        "zh": "分析原因，制定并落实整改措施，下次演练复核",
        "en": "Find the cause, fix it, and re-test at the next drill",
    }
    for f in items:
        sev = f.severity if lang == "zh" else f"{f.severity} {SEVERITY_EN[f.severity]}"
        owner = ("、" if lang == "zh" else ", ").join(names.get(d, d) for d in f.owners[:8])
        if len(f.owners) > 8:
            owner += " …"
        out.append(
            PlanRow(
                f.text(lang),
                sev,
                f.action.get(lang) if f.action else generic[lang],
                owner or L["center"],
                (day + dt.timedelta(days=DUE_DAYS[f.severity])).isoformat(),
            )
        )
    return out
