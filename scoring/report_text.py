"""Words and number formats of the scorecard PDF, in Chinese and English (one rounding rule)."""

from __future__ import annotations

import datetime as dt
import math

from scoring.metrics import US, Facts
from scoring.rubric import CountCriterion, Criterion, MetricCriterion, ObservationCriterion, Rubric
from scoring.scorecard import round_half_up
from scoring.wording import AGG_ZH, SCOPE_ZH, curve_text, exact_duration

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "report": "演练评估报告",
        "drill": "演练名称",
        "date": "演练日期",
        "scenario": "演练脚本",
        "level": "响应级别",
        "evaluators": "评估人员",
        "score": "总分",
        "percent": "得分率",
        "grade": "评定等级",
        "duration": "演练时长",
        "operation": "演练编号",
        "rubric": "评分细则",
        "participants": "参演部门",
        "summary": "一、总体评价",
        "strengths": "主要优点",
        "improve": "需改进之处",
        "breakdown": "二、分项得分",
        "criterion": "评分内容",
        "max": "满分",
        "earned": "得分",
        "deducted": "失分",
        "rule": "计分规则",
        "ev": "证据",
        "totals": (
            "得分合计 {e} − 扣分 {d}（第九部分）= {n}；{n} ÷ 适用满分 {a} × 总分 {t} = {s}（得分率 {p}%）"
        ),
        "totals_na": "不适用的评分项（{na}分）不计入适用满分。",
        "depts": "三、各部门得分",
        "dept": "部门",
        "checkin": "报到",
        "receipt_mean": "平均签收",
        "receipt_worst": "最慢签收",
        "on_scene": "平均到场",
        "completion": "平均完成",
        "missed": "漏签",
        "uptime": "视频在线",
        "dept_points": "得分/满分",
        "dept_deducted": "扣分",
        "dept_score": "百分制",
        "dept_grade": "等级",
        "dept_note": (
            "平均用时只计已响应的指令；未响应的计入“漏签”。部门百分制 =（得分 − 扣分）÷ 满分 × 100，明细见"
            "附录C。"
        ),
        "absent_title": "未计分的部门",
        "status": "状态",
        "reason": "原因",
        "excused": "已请假",
        "not_taking_part": "未参演",
        "taking_part": "参演",
        "no_response": "未响应",
        "timeline": "四、指令响应时间线",
        "latency": "五、平均签收用时",
        "latency_note": (
            "条形为已签收指令的平均签收用时，黑色竖线为最慢一次；灰色标记为该部门各指令自身的签收时限（区间"
            "为最短至最长），条后数字为超时签收或未签收的指令数。"
        ),
        "video": "六、视频在线情况",
        "video_media": (
            "按视频画面计：仅在部门推送视频（media.published 至 media.unpublished）且画面无中断、冻结、黑屏"
            "时计为在线。"
        ),
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
        "evaluator": "评估员",
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
        "checked_given": "已核对交付的日志头",
        "checked_signed": "已核对签名日志头",
        "signed_by": "签名密钥指纹",
        "no_checkpoint": "未核对检查点（见说明）",
        "rubric_hash": "评分细则 SHA-256",
        "scenario_hash": "演练脚本 SHA-256",
        "sign": "评估人员签字",
        "sign_date": "日期",
        "notes": "说明",
        "none": "无",
        "not_measured": "未测",
        "na": "不适用",
        "center": "指挥中心",
        "yes": "是",
        "no": "否",
        "legend_issued": "下达",
        "legend_receipt": "签收",
        "legend_declined": "无法执行",
        "legend_on_scene": "到场",
        "legend_completed": "完成",
        "legend_late": "超时",
        "legend_missing": "未响应",
        "legend_deadline": "时限",
        "up": "在线",
        "offline": "离线",
        "no_feed": "无视频",
        "lost": "中断",
        "frozen": "冻结",
        "black": "黑屏",
        "page": "第 {n} 页",
        "shown": "显示 {a} / {b} 条指令-部门",
        "seconds": "秒",
        "not_rated": "未评定",
        "all_ok": "各项均达到要求",
        "no_checkin": "未报到",
        "weak": "不合格部门",
        # appendices
        "app_pairs": "附录A　指令-部门证据",
        "app_pairs_intro": (
            "每行为一条指令对一个部门：下达、送达及各环节的日志序号与平台时间（{tz}），用时（秒）与时限，超"
            "时与催办记录。带“!”的行有失分。"
        ),
        "app_pairs_more": (
            "共 {b} 行，此处列出 {a} 行（先列全部失分行）；其余 {c} 行见 score.json（appendix.pairs）。"
        ),
        "app_cmd": "指令",
        "app_issued": "下达",
        "app_delivered": "送达",
        "app_marks": "超时/催办/撤销",
        "app_missing": "未响应",
        "app_late": "超时",
        "app_by_decline": "无法执行",
        "app_cancelled": "撤销",
        "app_overdue": "超时",
        "app_escalated": "催办",
        "app_criteria": "附录B　各评分项的证据",
        "app_criteria_intro": (
            "每个评分项所用的单位（部门、指令-部门、事件）、测量值、得分比例与日志序号；得分 = 满分 × 得分"
            "比例（比例保留4位小数，得分保留2位小数，四舍五入）。"
        ),
        "app_units": "单位数",
        "app_value": "测量值",
        "app_fraction": "得分比例",
        "app_lost_on": "失分明细（日志序号）",
        "app_uses_pairs": "所用行：附录A中的“{stage}”列",
        "app_deadline": "时限：{d}",
        "app_more": "另 {n} 项见 score.json",
        "app_depts": "附录C　部门得分明细",
        "app_depts_intro": (
            "各部门在计入部门得分的评分项上的得分；合计 − 扣分 = 净得分，÷ 满分 × 100 = 百分制。"
        ),
        "app_sum": "合计",
        "app_net": "净得分",
        "app_ratings": "附录D　评定记录",
        "app_ratings_intro": "所有评定与勾选（日志中的原始记录）：计入、已被取代或未计入（附原因）。",
        "app_time": "时间",
        "app_status": "处理",
        "counted": "计入",
        "superseded": "已取代",
        "ignored": "未计入",
        "checked": "已勾选",
        "unchecked": "取消勾选",
        "stage_receipt": "签收",
        "stage_on_scene": "到场",
        "stage_declined": "无法执行",
        "tiers": "跨层级时延（市 → 镇街枢纽 → 部门）",
        "tier_part": "环节",
        "tier_stage": "阶段",
        "tier_down": "市 → 镇街枢纽（下达）",
        "tier_town": "镇街枢纽 → 部门",
        "tier_up": "镇街 → 市（回报）",
        "tier_end_to_end": "市 → 镇街 → 市（全程）",
        "tiers_note": (
            "由市级日志与各镇街日志（关联证据，链已校验）计算，单位毫秒；跨枢纽的时差按链路测得的时钟偏差"
            "校正。n 为样本数。"
        ),
        "stage_completed": "完成",
    },
    "en": {
        "report": "Drill After-Action Report",
        "drill": "Drill",
        "date": "Date",
        "scenario": "Scenario",
        "level": "Response level",
        "evaluators": "Evaluators",
        "score": "Overall score",
        "percent": "Percent",
        "grade": "Grade",
        "duration": "Duration",
        "operation": "Operation",
        "rubric": "Rubric",
        "participants": "Departments taking part",
        "summary": "1. Executive summary",
        "strengths": "Strengths",
        "improve": "Areas for improvement",
        "breakdown": "2. Score breakdown",
        "criterion": "Criterion",
        "max": "Max",
        "earned": "Earned",
        "deducted": "Lost",
        "rule": "Rule",
        "ev": "Evid.",
        "totals": "Earned {e} (sum of the sections) − deducted {d} (section 9) = {n}; {n} ÷ applicable "
        "{a} × total {t} = {s} ({p}%)",
        "totals_na": "Criteria not applicable ({na} points) are left out of the applicable points.",
        "depts": "3. Departments",
        "dept": "Department",
        "checkin": "Check-in",
        "receipt_mean": "Receipt mean",
        "receipt_worst": "Receipt worst",
        "on_scene": "On scene",
        "completion": "Completed",
        "missed": "Missed",
        "uptime": "Video up",
        "dept_points": "Earned / max",
        "dept_deducted": "Deducted",
        "dept_score": "Score",
        "dept_grade": "Grade",
        "dept_note": "Mean times count only the commands answered; unanswered ones are under Missed. "
        "Score = (earned − deducted) ÷ max × 100; Appendix C has every row.",
        "absent_title": "Departments not scored",
        "status": "Status",
        "reason": "Reason",
        "excused": "excused",
        "not_taking_part": "not taking part",
        "taking_part": "taking part",
        "no_response": "no response",
        "timeline": "4. Command timeline",
        "latency": "5. Mean receipt latency",
        "latency_note": "Bars: mean receipt latency of the commands answered; black tick: the slowest. "
        "Grey mark: the department's commands' own receipt deadlines (a band from the shortest to the "
        "longest). The number after a bar: commands received late or not at all.",
        "video": "6. Video uptime",
        "video_media": "From the feeds: up while the department published video (media.published to "
        "media.unpublished) and the picture was not lost, frozen or black.",
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
        "evaluator": "Evaluator",
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
        "checked_given": "Checked against the head handed over",
        "checked_signed": "Checked against the signed head",
        "signed_by": "Signed by key",
        "no_checkpoint": "No checkpoint checked (see the notes)",
        "rubric_hash": "Rubric SHA-256",
        "scenario_hash": "Scenario SHA-256",
        "sign": "Evaluator",
        "sign_date": "Date",
        "notes": "Notes",
        "none": "none",
        "not_measured": "n/m",
        "na": "N/A",
        "center": "Command center",
        "yes": "yes",
        "no": "no",
        "legend_issued": "issued",
        "legend_receipt": "receipt",
        "legend_declined": "declined",
        "legend_on_scene": "on scene",
        "legend_completed": "completed",
        "legend_late": "late",
        "legend_missing": "no response",
        "legend_deadline": "deadline",
        "up": "up",
        "offline": "offline",
        "no_feed": "no feed",
        "lost": "lost",
        "frozen": "frozen",
        "black": "black",
        "page": "Page {n}",
        "shown": "showing {a} of {b} command-department pairs",
        "seconds": "s",
        "not_rated": "not rated",
        "all_ok": "every criterion met",
        "no_checkin": "none",
        "weak": "Departments below 60",
        "app_pairs": "Appendix A. Evidence per command and department",
        "app_pairs_intro": "One row per command and department: the log seq and hub time ({tz}) of the "
        "issue, the delivery and each stage, the latency (s) against the command's own deadline, "
        "overdue and escalation marks. Rows marked ! lost points.",
        "app_pairs_more": "{b} rows in all; {a} printed here (every row that lost points first); the "
        "other {c} are in score.json (appendix.pairs).",
        "app_cmd": "Command",
        "app_issued": "Issued",
        "app_delivered": "Delivered",
        "app_marks": "Overdue / chased / cancelled",
        "app_missing": "no response",
        "app_late": "late",
        "app_by_decline": "declined",
        "app_cancelled": "cancelled",
        "app_overdue": "overdue",
        "app_escalated": "chased",
        "app_criteria": "Appendix B. Evidence per criterion",
        "app_criteria_intro": "The units each criterion measured (departments, command-department pairs, "
        "events), their values, fractions and log seqs; earned = points × fraction (fractions to 4 "
        "decimals, points to 2, halves up).",
        "app_units": "Units",
        "app_value": "Value",
        "app_fraction": "Fraction",
        "app_lost_on": "Points lost on (log seq)",
        "app_uses_pairs": "Rows used: the {stage} columns of Appendix A",
        "app_deadline": "deadline: {d}",
        "app_more": "{n} more in score.json",
        "app_depts": "Appendix C. Department scores",
        "app_depts_intro": "Each department's points on the criteria of the department score; sum − "
        "deducted = net, ÷ max × 100 = score.",
        "app_sum": "Sum",
        "app_net": "Net",
        "app_ratings": "Appendix D. Ratings",
        "app_ratings_intro": "Every rating and tick as logged: counted, superseded, or not counted (with "
        "the reason).",
        "app_time": "Time",
        "app_status": "Outcome",
        "counted": "counted",
        "superseded": "superseded",
        "ignored": "not counted",
        "checked": "ticked",
        "unchecked": "unticked",
        "stage_receipt": "receipt",
        "stage_on_scene": "on scene",
        "stage_declined": "cannot comply",
        "tiers": "Latency per tier (city -> town hub -> department)",
        "tier_part": "Tier",
        "tier_stage": "Stage",
        "tier_down": "city -> town hub (down)",
        "tier_town": "town hub -> department",
        "tier_up": "town -> city (up)",
        "tier_end_to_end": "city -> town -> city (end to end)",
        "tiers_note": "From the city log with the towns' logs as linked evidence (their chains "
        "verified), in milliseconds; across hubs corrected by the link's measured clock offset. "
        "n: how many.",
        "stage_completed": "completed",
    },
}
SEVERITY_EN = {"不足项": "deficiency", "整改项": "must fix", "改进项": "improvement"}


def fmt_s(x: float | int | None, lang: str) -> str:
    """A measured duration in a table: `42 s`, `3m05s`, `1h02m` (whole seconds, halves up)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    s = round_half_up(float(x), 0)
    if s < 100:
        return f"{s:.0f} s" if lang == "en" else f"{s:.0f}秒"
    if s < 3600:
        m, sec = divmod(int(s), 60)
        return f"{m}m{sec:02d}s" if lang == "en" else f"{m}分{sec:02d}秒"
    h, rem = divmod(int(s), 3600)
    return f"{h}h{rem // 60:02d}m" if lang == "en" else f"{h}时{rem // 60:02d}分"


def fmt_exact_s(x: float | None, lang: str) -> str:
    """A measured duration to the JSON's 3 decimals, for evidence: `37.012 s` / `37.012秒`."""
    if x is None or not math.isfinite(x):
        return "—"
    v = f"{round_half_up(x, 3):.3f}".rstrip("0").rstrip(".")
    return f"{v} s" if lang == "en" else f"{v}秒"


def fmt_pts(x: float | None) -> str:
    """Points and percentages as the JSON has them: 2 decimals."""
    return "—" if x is None else f"{round_half_up(x, 2):.2f}"


def fmt_pct_ratio(x: float | None) -> str:
    """A ratio (0..1, 3 decimals in the JSON) as a percentage with 1 decimal."""
    return "—" if x is None else f"{round_half_up(round_half_up(x, 3) * 100, 1):.1f}%"


def tz_from(offset: str) -> dt.timezone:
    """`+08:00` -> a fixed timezone."""
    sign = -1 if offset.startswith("-") else 1
    hh, _, mm = offset.lstrip("+-").partition(":")
    return dt.timezone(sign * dt.timedelta(hours=int(hh or 0), minutes=int(mm or 0)))


def clock(ts_us: int, tz: dt.timezone, ms: bool = False) -> str:
    t = dt.datetime.fromtimestamp(ts_us / US, tz)
    return t.strftime("%H:%M:%S.%f")[:12] if ms else t.strftime("%H:%M:%S")


def dept_label(facts: Facts, did: str, lang: str) -> str:
    """Chinese name in both languages (names are Chinese), the English one added in English."""
    d = facts.names[did]
    if lang == "en" and d.name_en and d.name_en != d.name_zh:
        return f"{d.name_zh} {d.name_en}"
    return d.name_zh


def deadline_words(d: object, lang: str) -> str:
    if d == "from_command":
        return "按指令规定" if lang == "zh" else "each command's own"
    if d == "from_scenario":
        return "按演练脚本响应级别" if lang == "zh" else "the scenario's, by response level"
    return exact_duration(float(d), lang) if isinstance(d, int | float) else str(d)


def rule_text(c: Criterion, rubric: Rubric) -> str:
    """The criterion's scoring rule in Chinese (the JSON keeps the English one)."""
    if isinstance(c, MetricCriterion):
        m = c.metric
        what = f"{SCOPE_ZH[c.scope]}{AGG_ZH.get(c.aggregate, c.aggregate)}{m.zh}"
        if c.params.within is not None:
            what += f"（{exact_duration(c.params.within, 'zh')}内）"
        if c.params.deadline is not None and m.name.endswith("_latency"):
            what += f"超出时限（{deadline_words(c.params.deadline, 'zh')}）的时长"
        if m.name == "missed" and c.params.deadline is not None:
            what += f"（时限：{deadline_words(c.params.deadline, 'zh')}）"
        if c.scope == "per_command_department":
            what += f"，各指令-部门得分比例取{AGG_ZH.get(c.aggregate, c.aggregate)}"
        unit = "ratio" if c.aggregate == "ratio" else m.unit
        return f"{what}：{curve_text(c.curve, unit, 'zh')}"
    if isinstance(c, CountCriterion):
        scope = "每个部门" if c.scope == "per_department" else ""
        return f"{scope}满分{c.points:g}分，{c.metric.zh}每次扣{c.deduct:g}分，扣完为止"
    if isinstance(c, ObservationCriterion):
        return "评估员评定：" + "，".join(f"{k} {v:g}" for k, v in rubric.ratings.items())
    return "按评估员勾选的项目计分"
