"""What the scorecard PDF shows, computed (not drawn): texts, table rows and chart data, per language."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

import numpy as np

from scoring.curves import Curve, Linear, PerUnit
from scoring.metrics import NONE, US, Facts
from scoring.rubric import CountCriterion, Criterion, MetricCriterion, ObservationCriterion, Rubric, Text
from scoring.scorecard import CriterionResult, Scorecard

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "report": "演练评估报告",
        "drill": "演练名称",
        "date": "演练日期",
        "scenario": "演练脚本",
        "level": "响应级别",
        "evaluators": "评估人员",
        "score": "总分",
        "grade": "评定等级",
        "duration": "演练时长",
        "operation": "演练编号",
        "rubric": "评分细则",
        "summary": "一、总体评价",
        "strengths": "主要优点",
        "improve": "需改进之处",
        "breakdown": "二、分项得分",
        "section": "评分项",
        "criterion": "评分内容",
        "max": "满分",
        "earned": "得分",
        "deducted": "失分",
        "rule": "计分规则",
        "depts": "三、各部门得分",
        "dept": "部门",
        "checkin": "报到",
        "receipt_mean": "平均签收",
        "receipt_worst": "最慢签收",
        "on_scene": "平均到场",
        "completion": "平均完成",
        "missed": "漏签",
        "uptime": "视频在线",
        "dept_score": "得分",
        "dept_grade": "等级",
        "timeline": "四、指令响应时间线",
        "latency": "五、平均签收用时",
        "video": "六、视频在线情况",
        "injects": "七、情景注入（计划与实际）",
        "inject": "注入",
        "planned": "计划",
        "actual": "实际",
        "offset": "偏差",
        "on_time": "准时",
        "observations": "八、评估员评定（P/S/M/U）",
        "capability": "能力目标",
        "critical_tasks": "关键任务",
        "rating": "评定",
        "note": "说明",
        "deductions": "九、扣分与否决记录",
        "item": "事项",
        "count": "次数",
        "points": "扣分",
        "evidence": "证据（日志序号 时间）",
        "veto": "一票否决",
        "capped": "等级被限制为",
        "plan": "十、整改计划",
        "finding": "问题",
        "severity": "类别",
        "action": "整改措施",
        "owner": "责任单位",
        "due": "完成时限",
        "signoff": "十一、签署",
        "log_head": "日志头（序号:哈希）",
        "rubric_hash": "评分细则 SHA-256",
        "sign": "评估人员签字",
        "sign_date": "日期",
        "notes": "说明",
        "none": "无",
        "not_measured": "未测",
        "center": "指挥中心",
        "yes": "是",
        "no": "否",
        "legend_issued": "下达",
        "legend_receipt": "签收",
        "legend_on_scene": "到场",
        "legend_completed": "完成",
        "legend_late": "超时",
        "legend_deadline": "时限",
        "threshold": "时限",
        "up": "在线",
        "offline": "离线",
        "bad": "冻结/黑屏/中断",
        "page": "第 {n} 页",
        "shown": "显示 {a} / {b} 条指令-部门",
        "seconds": "秒",
        "not_rated": "未评定",
        "all_ok": "各项均达到要求",
        "no_checkin": "未报到",
    },
    "en": {
        "report": "Drill After-Action Report",
        "drill": "Drill",
        "date": "Date",
        "scenario": "Scenario",
        "level": "Response level",
        "evaluators": "Evaluators",
        "score": "Overall score",
        "grade": "Grade",
        "duration": "Duration",
        "operation": "Operation",
        "rubric": "Rubric",
        "summary": "1. Executive summary",
        "strengths": "Strengths",
        "improve": "Areas for improvement",
        "breakdown": "2. Score breakdown",
        "section": "Section",
        "criterion": "Criterion",
        "max": "Max",
        "earned": "Earned",
        "deducted": "Lost",
        "rule": "Rule",
        "depts": "3. Departments",
        "dept": "Department",
        "checkin": "Check-in",
        "receipt_mean": "Receipt mean",
        "receipt_worst": "Receipt worst",
        "on_scene": "On scene",
        "completion": "Completed",
        "missed": "Missed",
        "uptime": "Video up",
        "dept_score": "Score",
        "dept_grade": "Grade",
        "timeline": "4. Command timeline",
        "latency": "5. Mean receipt latency",
        "video": "6. Video uptime",
        "injects": "7. Injects: planned vs actual",
        "inject": "Inject",
        "planned": "Planned",
        "actual": "Actual",
        "offset": "Offset",
        "on_time": "On time",
        "observations": "8. Evaluator observations (P/S/M/U)",
        "capability": "Capability target",
        "critical_tasks": "Critical tasks",
        "rating": "Rating",
        "note": "Note",
        "deductions": "9. Deductions and vetoes",
        "item": "Item",
        "count": "Count",
        "points": "Points",
        "evidence": "Evidence (log seq, time)",
        "veto": "Veto",
        "capped": "grade capped at",
        "plan": "10. Improvement plan",
        "finding": "Finding",
        "severity": "Severity",
        "action": "Corrective action",
        "owner": "Owner",
        "due": "Due",
        "signoff": "11. Sign-off",
        "log_head": "Log head (seq:hash)",
        "rubric_hash": "Rubric SHA-256",
        "sign": "Evaluator",
        "sign_date": "Date",
        "notes": "Notes",
        "none": "none",
        "not_measured": "n/m",
        "center": "Command center",
        "yes": "yes",
        "no": "no",
        "legend_issued": "issued",
        "legend_receipt": "receipt",
        "legend_on_scene": "on scene",
        "legend_completed": "completed",
        "legend_late": "late",
        "legend_deadline": "deadline",
        "threshold": "deadline",
        "up": "up",
        "offline": "offline",
        "bad": "frozen/black/lost",
        "page": "Page {n}",
        "shown": "showing {a} of {b} command-department pairs",
        "seconds": "s",
        "not_rated": "not rated",
        "all_ok": "every criterion met",
        "no_checkin": "none",
    },
}
SEVERITY_EN = {"不足项": "deficiency", "整改项": "must fix", "改进项": "improvement"}
DUE_DAYS = {"不足项": 15, "整改项": 30, "改进项": 90}
MAX_TIMELINE_PAIRS = 3000


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


@dataclass
class DeptRow:
    name: str
    checkin: str
    receipt_mean: str
    receipt_worst: str
    on_scene: str
    completion: str
    missed: str
    uptime: str
    score: str
    grade: str
    failed: bool


@dataclass
class Marker:
    t_s: float
    kind: str  # issued, receipt, on_scene, completed, deadline
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
    value: float | None
    worst: float | None


@dataclass
class Strip:
    name: str
    uptime: float | None
    segments: list[tuple[float, float, str]]  # (start s, end s, state)


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
    depts: list[DeptRow]
    timeline: Timeline
    bars: list[Bar]
    threshold_s: float | None
    strips: list[Strip]
    span_s: float
    injects: list[list[str]]
    observations: list[list[str]]
    deductions: list[list[str]]
    plan: list[PlanRow]
    signoff: list[tuple[str, str]]
    evaluators: list[str]
    notes: list[str] = field(default_factory=list)


def fmt_s(x: float | int | None, lang: str) -> str:
    """Seconds as `42 s`, `3m05s`, `1h02m`."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    s = float(x)
    if s < 100:
        return f"{s:.0f} s" if lang == "en" else f"{s:.0f}秒"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m}m{sec:02d}s" if lang == "en" else f"{m}分{sec:02d}秒"
    h, rem = divmod(round(s), 3600)
    return f"{h}h{rem // 60:02d}m" if lang == "en" else f"{h}时{rem // 60:02d}分"


def fmt_pts(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def tz_from(offset: str) -> dt.timezone:
    """`+08:00` -> a fixed timezone."""
    sign = -1 if offset.startswith("-") else 1
    hh, _, mm = offset.lstrip("+-").partition(":")
    return dt.timezone(sign * dt.timedelta(hours=int(hh or 0), minutes=int(mm or 0)))


def clock(ts_us: int, tz: dt.timezone) -> str:
    return dt.datetime.fromtimestamp(ts_us / US, tz).strftime("%H:%M:%S")


def _title(t: Text, lang: str) -> str:
    return t.get(lang)


def build_report(
    card: Scorecard,
    facts: Facts,
    rubric: Rubric,
    lang: str = "zh",
    evaluators: list[str] | None = None,
    utc_offset: str = "+08:00",
) -> ReportModel:
    """Everything the PDF draws, in `lang` (department names stay Chinese in both)."""
    L = LABELS[lang]
    tz = tz_from(utc_offset)
    op = facts.op
    start = dt.datetime.fromtimestamp(op.start_us / US, tz)
    names = {d: dept_label(facts, d, lang) for d in facts.depts}
    short = {d: facts.names[d].name_zh for d in facts.depts}  # chart labels: the Chinese name
    grade = card.grade_label(card.grade, lang)
    grade_note = ""
    if card.grade != card.grade_uncapped:
        grade_note = f"{card.grade_label(card.grade_uncapped, lang)} → {grade} ({L['veto']})"
    ev_names = list(evaluators or [])
    scen = card.scenario
    cover = [
        (L["drill"], op.title),
        (L["operation"], op.id),
        (L["date"], start.strftime("%Y-%m-%d %H:%M") + f" (UTC{utc_offset})"),
        (L["duration"], fmt_s(facts.window_s, lang)),
        (L["scenario"], (f"{scen['title']} ({scen['id']})" if scen else (op.scenario or L["none"]))),
        (L["level"], op.level or "—"),
        (
            L["evaluators"],
            "、".join(ev_names) if ev_names else (f"{facts.evaluators}" if facts.evaluators else "—"),
        ),
        (L["rubric"], f"{rubric.title.get(lang)} v{rubric.version}"),
    ]
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
            ("不合格部门: " if lang == "zh" else "Departments below 60: ")
            + "、".join(names[d.id] for d in weak)
        )

    rows: list[CriterionRow] = []
    crit_by_id = {c.id: c for _, c in rubric.criteria()}
    for s in card.sections:
        rows.append(
            CriterionRow(
                s.title.get(lang), s.title.get(lang), s.max, s.earned, s.applicable - s.earned, "", "", True
            )
        )
        for c in s.criteria:
            rows.append(
                CriterionRow(
                    s.title.get(lang),
                    c.title.get(lang),
                    c.max,
                    c.earned if c.applicable else None,
                    (c.max - c.earned) if c.applicable else None,
                    rule_text(crit_by_id[c.id], rubric) if lang == "zh" else c.rule,
                    "; ".join(c.notes) if lang == "en" else "；".join(zh_note(n) for n in c.notes),
                )
            )

    depts: list[DeptRow] = []
    for d in card.departments:
        st = d.stats
        up = st.get("uptime")
        depts.append(
            DeptRow(
                names[d.id],
                fmt_s(st.get("checkin_s"), lang) if st.get("checkin_s") is not None else L["no_checkin"],
                fmt_s(st.get("receipt_mean_s"), lang),
                fmt_s(st.get("receipt_worst_s"), lang),
                fmt_s(st.get("on_scene_mean_s"), lang),
                fmt_s(st.get("completion_mean_s"), lang),
                f"{st.get('missed', 0)}/{st.get('commands', 0)}",
                L["not_measured"] if up is None else f"{float(up) * 100:.1f}%",
                "—" if d.score is None else f"{d.score:.1f}",
                card.grade_label(d.grade, lang) if d.grade else "—",
                d.grade is not None and d.grade == card.grades[-1]["id"],
            )
        )

    timeline = _timeline(facts, short, [d.id for d in card.departments])
    bars = [
        Bar(short[d.id], _f(d.stats.get("receipt_mean_s")), _f(d.stats.get("receipt_worst_s")))
        for d in card.departments
    ]
    receipts = facts.cmd_deadline[:, 0] if len(facts.cmd_ids) else np.zeros(0)
    finite = receipts[np.isfinite(receipts)]
    threshold = float(np.median(finite)) if len(finite) else None
    strips = []
    for d in card.departments:
        segs = [
            ((s.start_us - op.start_us) * facts.scale, (s.end_us - op.start_us) * facts.scale, s.state)
            for s in facts.video_segments.get(d.id, [])
        ]
        up = d.stats.get("uptime")
        strips.append(Strip(short[d.id], None if up is None else float(up), segs))

    injects = []
    for i in card.injects:
        planned, actual = i["planned_s"], i["actual_s"]
        off = None if planned is None or actual is None else actual - planned
        tol = _inject_tolerance(rubric)
        ok = off is not None and abs(off) <= tol + 1e-9
        injects.append(
            [
                i["id"],
                i["title"],
                fmt_s(planned, lang),
                fmt_s(actual, lang),
                "—" if off is None else (("+" if off >= 0 else "-") + fmt_s(abs(off), lang)),
                L["yes"] if ok else L["no"],
            ]
        )

    observations = []
    for c in crits:
        if c.type != "observation":
            continue
        cap = c.extra.get("capability", {}).get(lang, "")
        tasks = "；".join(t.get(lang, "") for t in c.extra.get("critical_tasks", []))
        if c.scope == "overall":
            rating = c.extra.get("rating") or L["not_rated"]
            observations.append(
                [c.title.get(lang), cap, tasks, L["center"], rating, str(c.extra.get("note", ""))]
            )
        else:
            for did in [d.id for d in card.departments]:
                r = c.departments.get(did)
                if r is None:
                    continue
                rating, _, note = r.note.partition(": ")
                observations.append(
                    [c.title.get(lang), cap, tasks, names[did], rating if r.units else L["not_rated"], note]
                )
                cap, tasks = "", ""  # printed once per criterion

    deductions = []
    for dd in card.deductions:
        times = ", ".join(f"#{s} {clock(t, tz)}" for s, t in dd.evidence.to_json()[:10])
        if len(dd.evidence) > 10:
            times += f" … (+{len(dd.evidence) - 10})"
        deductions.append([dd.title.get(lang), str(dd.count), f"-{fmt_pts(dd.deducted)}", times or L["none"]])
    for v in card.vetoes:
        times = ", ".join(f"#{s} {clock(t, tz)}" for s, t in v.evidence.to_json()[:10])
        state = f"{L['capped']} {card.grade_label(v.cap, lang)}" if v.triggered else L["none"]
        deductions.append(
            [
                f"{L['veto']}: {v.title.get(lang)}",
                "1" if v.triggered else "0",
                state,
                (times + " " + v.detail) if v.triggered else v.detail,
            ]
        )

    plan = _plan(card, names, lang, start.date())
    signoff = [
        (L["log_head"], f"{card.log_head[0]}:{card.log_head[1]}"),
        (L["rubric"], f"{rubric.id} v{rubric.version}"),
        (L["rubric_hash"], card.rubric_sha256),
    ]
    if card.scenario:
        signoff.append(("scenario SHA-256", card.scenario.get("sha256", "")))
    return ReportModel(
        lang=lang,
        L=L,
        title=f"{op.title} — {L['report']}",
        cover=cover,
        score_text=f"{card.score:.1f} / {card.total:g}",
        grade_text=grade,
        grade_note=grade_note,
        strengths=strengths or [L["none"]],
        improvements=improvements or [L["all_ok"]],
        criteria=rows,
        depts=depts,
        timeline=timeline,
        bars=bars,
        threshold_s=threshold,
        strips=strips,
        span_s=facts.window_s,
        injects=injects,
        observations=observations,
        deductions=deductions,
        plan=plan,
        signoff=signoff,
        evaluators=ev_names,
        notes=list(card.notes) if lang == "en" else [zh_note(n) for n in card.notes],
    )


def dept_label(facts: Facts, did: str, lang: str) -> str:
    """Chinese name in both languages (names are Chinese), the English one added in English."""
    d = facts.names[did]
    if lang == "en" and d.name_en and d.name_en != d.name_zh:
        return f"{d.name_zh} {d.name_en}"
    return d.name_zh


def _f(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _inject_tolerance(rubric: Rubric) -> float:
    """The tolerance of the rubric's injects_on_time criterion (60 s if it has none)."""
    for _, c in rubric.criteria():
        if isinstance(c, MetricCriterion) and c.metric.name == "injects_on_time":
            return float(c.params.tolerance)
    return 60.0


def _timeline(facts: Facts, names: dict[str, str], order: list[str]) -> Timeline:
    op = facts.op
    k = facts.scale  # drill seconds per logged microsecond
    n = len(facts.p_cmd)
    idx = np.arange(n)
    if n > MAX_TIMELINE_PAIRS:
        idx = np.linspace(0, n - 1, MAX_TIMELINE_PAIRS).astype(np.int64)
    rows: list[list[Marker]] = [[] for _ in facts.depts]
    where = facts.dept_index()
    row_of = {where[d]: k for k, d in enumerate(order)}
    for i in idx.tolist():
        c = int(facts.p_cmd[i])
        d = int(facts.p_dept[i])
        issued = int(facts.cmd_ts[c])
        row = rows[row_of[d]]
        row.append(Marker((issued - op.start_us) * k, "issued", False))
        for s, kind in enumerate(("receipt", "on_scene", "completed")):
            if not facts.cmd_requires[c, s]:
                continue
            dl = float(facts.cmd_deadline[c, s])
            t = int(facts.p_stage_ts[i, s])
            if math.isfinite(dl):
                row.append(Marker((issued - op.start_us) * k + dl, "deadline", False))
            if t != NONE:
                late = math.isfinite(dl) and (t - issued) * k > dl + 1e-9
                row.append(Marker((t - op.start_us) * k, kind, late))
    return Timeline([names[d] for d in order], facts.window_s, rows, len(idx), n)


def _plan(card: Scorecard, names: dict[str, str], lang: str, day: dt.date) -> list[PlanRow]:
    L = LABELS[lang]
    out: list[PlanRow] = []

    def sev(s: str) -> str:
        return s if lang == "zh" else f"{s} {SEVERITY_EN[s]}"

    def due(s: str) -> str:
        return (day + dt.timedelta(days=DUE_DAYS[s])).isoformat()

    generic = {
        "zh": "分析原因，制定并落实整改措施，下次演练复核",
        "en": "Find the cause, fix it, and re-test at the next drill",
    }
    for v in card.vetoes:
        if v.triggered:
            owner = "、".join(names.get(d, d) for d in v.departments) or L["center"]
            out.append(PlanRow(v.title.get(lang), sev("不足项"), generic[lang], owner, due("不足项")))
    for c in card.criteria():
        if not c.applicable or c.fraction is None or c.fraction >= 0.9:
            continue
        severity = "整改项" if c.fraction < 0.6 else "改进项"
        owner = _owners(c, names) or L["center"]
        action = c.action.get(lang) if c.action else generic[lang]
        out.append(
            PlanRow(
                f"{c.title.get(lang)} ({fmt_pts(c.earned)}/{fmt_pts(c.max)})",
                sev(severity),
                action,
                owner,
                due(severity),
            )
        )
    for d in card.deductions:
        if d.deducted > 0:
            owner = "、".join(names.get(k, k) for k in sorted(d.by_dept)) or L["center"]
            action = d.action.get(lang) if d.action else generic[lang]
            out.append(
                PlanRow(f"{d.title.get(lang)} ×{d.count}", sev("改进项"), action, owner, due("改进项"))
            )
    order = {"不足项": 0, "整改项": 1, "改进项": 2}
    out.sort(key=lambda r: order[r.severity.split()[0]])
    return out


def _owners(c: CriterionResult, names: dict[str, str]) -> str:
    weak = [d for d, r in sorted(c.departments.items()) if r.fraction is not None and r.fraction < 0.6]
    return "、".join(names.get(d, d) for d in weak[:8]) + (" …" if len(weak) > 8 else "")


AGG_ZH = {
    "mean": "平均",
    "median": "中位数",
    "p90": "第90百分位",
    "max": "最大",
    "min": "最小",
    "ratio": "比例",
    "sum": "合计",
}
SCOPE_ZH = {"overall": "总体", "per_department": "按部门", "per_command_department": "按指令-部门"}


def _v(x: float, unit: str) -> str:
    if unit == "s":
        return fmt_s(x, "zh")
    if unit in ("ratio", "bool"):
        return f"{x * 100:g}%"
    return f"{x:g}"


def curve_zh(curve: Curve, unit: str) -> str:
    if isinstance(curve, Linear):
        return f"{_v(curve.full_at, unit)}得满分，{_v(curve.zero_at, unit)}得0分，其间线性"
    if isinstance(curve, PerUnit):
        return f"{_v(curve.full_at, unit)}以内满分，超出每{_v(curve.unit, unit)}扣{curve.minus * 100:g}%"
    word = "≤" if curve.better == "lower" else "≥"
    steps = "，".join(f"{word}{_v(t, unit)}得{f * 100:g}%" for t, f in curve.thresholds)
    return f"{steps}，其余得{curve.otherwise * 100:g}%"


def rule_text(c: Criterion, rubric: Rubric) -> str:
    """The criterion's scoring rule in Chinese (the JSON keeps the English one)."""
    if isinstance(c, MetricCriterion):
        m = c.metric
        what = f"{SCOPE_ZH[c.scope]}{AGG_ZH.get(c.aggregate, c.aggregate)}{m.zh}"
        if c.params.deadline is not None and m.name.endswith("_latency"):
            what += f"超出时限（{_deadline_zh(c.params.deadline)}）的时长"
        if m.name == "missed" and c.params.deadline is not None:
            what += f"（时限：{_deadline_zh(c.params.deadline)}）"
        unit = "ratio" if c.aggregate == "ratio" else m.unit
        return f"{what}：{curve_zh(c.curve, unit)}"
    if isinstance(c, CountCriterion):
        scope = "每个部门" if c.scope == "per_department" else ""
        return f"{scope}满分{c.points:g}分，{c.metric.zh}每次扣{c.deduct:g}分，扣完为止"
    if isinstance(c, ObservationCriterion):
        return "评估员评定：" + "，".join(f"{k} {v:g}" for k, v in rubric.ratings.items())
    return "按评估员勾选的项目计分"


def _deadline_zh(d: object) -> str:
    if d == "from_command":
        return "按指令规定"
    if d == "from_scenario":
        return "按演练脚本响应级别"
    return fmt_s(float(d), "zh") if isinstance(d, int | float) else str(d)


def zh_note(note: str) -> str:
    if "counted as the time until the end of the drill" in note:
        return f"{note.split(' ', 1)[0]}项未完成，按至演练结束的时长或该项得0分的时长（取较大者）计"
    if note.startswith("not measured"):
        return "本次演练未测量，不计入得分与满分"
    if note.startswith("not rated"):
        return "评估员未评定，计0分"
    if "not rated by an evaluator" in note:
        return f"{note.split(' ', 1)[0]}个部门未评定，计0分"
    if note.startswith("the rubric takes deadlines from the scenario"):
        return "评分细则按演练脚本的响应级别时限计分，但未提供脚本：已按各指令自身时限计分"
    if note.startswith("no presence or video events"):
        return "本次演练没有任何部门的在线或视频事件：视频在线率未测量，视频类评分项不计入得分与满分"
    m = re.match(r"inject (\S+) is planned in the scenario but was never released", note)
    if m:
        return f"情景注入 {m.group(1)} 在脚本中有计划但未发布"
    m = re.match(
        r"the log holds (\d+) operations; scored the latest drill, (\S+) \(others: (.*); "
        r"choose with --operation\)",
        note,
    )
    if m:
        return (
            f"日志含{m.group(1)}次行动，本报告评定最近一次演练 {m.group(2)}"
            f"（其他：{m.group(3)}；可用 --operation 指定）"
        )
    return note
