"""Notes on a scorecard as codes with arguments, rendered in English (JSON, English PDF) or Chinese."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

# code -> (English, Chinese); str.format fields are the note's arguments
TEMPLATES: dict[str, tuple[str, str]] = {
    "several_operations": (
        "the log holds {n} operations; scored the latest drill, {chosen} (others: {others}; "
        "choose with --operation)",
        "日志含{n}次行动，本报告评定最近一次演练 {chosen}（其他：{others}；可用 --operation 指定）",
    ),
    "not_in_roster": (
        "department {dept} received commands but is not in the operation's roster",
        "部门 {dept} 收到了指令，但不在本次行动的部门名单中",
    ),
    "commanded_not_listed": (
        "department {dept} is not listed as taking part but received commands: it is scored as taking part",
        "部门 {dept} 未列为参演部门，但收到了指令：按参演部门计分",
    ),
    "unknown_participant": (
        "operation.started lists {dept} as taking part, but it is not in the roster; ignored",
        "行动开始事件将 {dept} 列为参演部门，但其不在部门名单中；已忽略",
    ),
    "issued_twice": (
        "command {cid} issued twice; the first issue (seq {seq}) counts",
        "指令 {cid} 下达了两次；以第一次（日志序号 {seq}）为准",
    ),
    "inject_never_released": (
        "inject {iid} is planned in the scenario but was never released",
        "情景注入 {iid} 在脚本中有计划但未发布",
    ),
    "bad_rating": (
        "observation at seq {seq} has no valid rating ({rating}); ignored",
        "日志序号 {seq} 的评定没有有效等级（{rating}）；已忽略",
    ),
    "video_not_measured": (
        "no presence or video events for any department: video uptime not measured; video "
        "criteria are left out of both the earned and the maximum points",
        "本次演练没有任何部门的在线或视频事件：视频在线率未测量，视频类评分项不计入得分与满分",
    ),
    "video_from_presence": (
        "this log has no media.published events (a hub from before media events): video uptime "
        "is taken from connection presence; the feeds themselves were not measured",
        "本日志没有 media.published 事件（早期版本的指挥平台）：视频在线率按连接在线计算，"
        "未对视频画面本身进行测量",
    ),
    "video_presence_left_out": (
        "this log has no media.published events: the feeds were not measured, and the rubric "
        "leaves the video criteria out of both the earned and the maximum points",
        "本日志没有 media.published 事件：未测量视频画面，按评分细则视频类评分项不计入得分与满分",
    ),
    "no_video_zero": (
        "{n} department(s) published no video during the drill ({names_en}): scored 0 in the video criteria",
        "{n}个部门在演练中未推送视频（{names_zh}）：视频类评分项计0分",
    ),
    "no_video_na": (
        "{n} department(s) published no video during the drill ({names_en}): not applicable in the "
        "video criteria",
        "{n}个部门在演练中未推送视频（{names_zh}）：视频类评分项不适用",
    ),
    "scenario_missing": (
        "the rubric takes deadlines from the scenario, but none was given: the commands' own "
        "deadlines were used",
        "评分细则按演练脚本的响应级别时限计分，但未提供脚本：已按各指令自身时限计分",
    ),
    "scenario_bad_duration": (
        "scenario level {level} {stage}: bad duration ignored",
        "演练脚本响应级别 {level} 的 {stage} 时限格式有误，已忽略",
    ),
    "scenario_other": (
        "the scenario given ({given}) is not the one the operation ran ({ran}); its deadlines were used",
        "所给演练脚本（{given}）与本次行动所用脚本（{ran}）不同；已按所给脚本的时限计分",
    ),
    "not_ended": (
        "the operation has no operation.ended event: it is scored up to its last event (seq {seq})",
        "本次行动没有结束事件：按至其最后一个事件（日志序号 {seq}）计分",
    ),
    "no_checkpoint": (
        "the log was checked only against itself: no signed head and no --head were given, so a "
        "cut or rewritten tail could not be detected",
        "日志仅做了自身校验：未提供签名日志头或 --head，无法发现被截断或改写的日志尾部",
    ),
    "ratings_ignored": (
        "{n} rating(s) did not count (see the ratings appendix)",
        "{n}条评定未计入（见评定记录附录）",
    ),
    # ratings that do not count
    "superseded": ("superseded by the rating at seq {seq}", "已被日志序号 {seq} 的评定取代"),
    "unknown_criterion": (
        "no observation criterion {criterion} in the rubric",
        "评分细则中没有评定项 {criterion}",
    ),
    "overall_with_dept": (
        "{criterion} is rated once for the whole drill; a rating for a department ({dept_en}) "
        "does not fit it (the hub now refuses these)",
        "{criterion} 为总体评定项；针对部门（{dept_zh}）的评定不适用（平台现已拒绝此类评定）",
    ),
    "needs_dept": (
        "{criterion} is rated per department; a rating without a department does not fit it",
        "{criterion} 为按部门评定项；未指定部门的评定不适用",
    ),
    "unknown_dept": ("no department {dept} in this operation", "本次行动中没有部门 {dept}"),
    "dept_na": (
        "{name_en} is not taking part or was excused",
        "{name_zh}未参演或已请假",
    ),
    "unknown_item": ("no checklist item {item} in the rubric", "评分细则中没有检查项 {item}"),
    # vetoes
    "veto_none": ("none", "无"),
    "veto_critical_incomplete": (
        "{n} critical command(s) never brought to their last required stage: {pairs}",
        "{n}条关键指令未完成最后要求的环节：{pairs}",
    ),
    "veto_critical_missed": (
        "{n} critical command(s) with no receipt by the deadline: {pairs}",
        "{n}条关键指令未在时限内签收：{pairs}",
    ),
    "veto_metric": (
        "{aggregate} of {metric} = {value} (veto when {cond})",
        "{metric_zh}{aggregate_zh}为 {value}（{cond_zh}时否决）",
    ),
    # criterion notes
    "left_out": (
        "not measured in this drill; left out of earned and maximum points",
        "本次演练未测量，不计入得分与满分",
    ),
    "never_reached": (
        "{n} never reached: counted as the time until the end of the drill or the curve's zero "
        "point, whichever is later",
        "{n}项未完成，按至演练结束的时长或该项得0分的时长（取较大者）计",
    ),
    "depts_not_rated": (
        "{n} department(s) not rated by an evaluator: scored 0",
        "{n}个部门未评定，计0分",
    ),
    "not_rated": ("not rated by an evaluator: scored 0", "评估员未评定，计0分"),
    "nothing_to_measure": ("nothing to measure in this drill", "本次演练无可测量的对象"),
    "depts_na": (
        "{n} department(s) not taking part or excused: not applicable",
        "{n}个部门未参演或已请假：不适用",
    ),
}


@dataclass(frozen=True)
class Note:
    """A note: a template code and its arguments."""

    code: str
    args: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str = "en") -> str:
        en, zh = TEMPLATES[self.code]
        return (zh if lang == "zh" else en).format(**dict(self.args))

    def __str__(self) -> str:
        return self.text("en")


def fields(code: str) -> set[str]:
    """The arguments a note's templates use, in both languages."""
    return {f for t in TEMPLATES[code] for _, f, _, _ in string.Formatter().parse(t) if f}


def note(code: str, **args: Any) -> Note:
    """A note with arguments; an unknown code or a missing argument is an error at once, not
    when the note is rendered."""
    if code not in TEMPLATES:
        raise KeyError(f"no note template {code!r}")
    missing = fields(code) - set(args)
    if missing:
        raise KeyError(f"note {code!r} needs {', '.join(sorted(missing))}")
    return Note(code, tuple(sorted(args.items())))
