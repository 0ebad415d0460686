"""The metrics a rubric may name: what each measures, its unit, direction, scopes and parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"]
Unit = Literal["s", "count", "bool", "ratio"]
Basis = Literal["dept", "pair", "event", "inject"]

SCOPES = ("overall", "per_department", "per_command_department")
AGGREGATES = ("mean", "median", "p90", "max", "min", "ratio", "sum")
# How per-(command, department) fractions are combined into a department's fraction.
PAIR_FRACTION_AGGREGATES = ("mean", "median", "min")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: computed per unit (department, command-department pair, event or inject)."""

    name: str
    zh: str
    en: str
    unit: Unit
    better: Better
    basis: Basis
    params: tuple[str, ...] = ()
    default_aggregate: str = "mean"

    @property
    def aggregates(self) -> tuple[str, ...]:
        if self.basis == "event":
            return ("sum",)
        if self.unit == "bool":
            return ("ratio", "sum")
        if self.unit == "count":
            return ("sum", "mean", "max")
        return ("mean", "median", "p90", "max", "min")

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.basis == "inject":
            return ("overall",)
        if self.basis == "pair":
            return SCOPES
        return ("overall", "per_department")

    @property
    def countable(self) -> bool:
        """Usable by `count` criteria and deductions: occurrences, lower is better."""
        return self.better == "lower" and self.unit in ("count", "bool")


_SPECS = (
    MetricSpec("checkin_latency", "报到用时", "Check-in latency", "s", "lower", "dept"),
    MetricSpec(
        "checked_in", "报到率", "Departments checked in", "bool", "higher", "dept", ("within",), "ratio"
    ),
    MetricSpec("receipt_latency", "签收用时", "Receipt latency", "s", "lower", "pair", ("deadline",)),
    MetricSpec("on_scene_latency", "到场用时", "On-scene latency", "s", "lower", "pair", ("deadline",)),
    MetricSpec("completion_latency", "完成用时", "Completion latency", "s", "lower", "pair", ("deadline",)),
    MetricSpec("overdue", "超时次数", "Overdue stages", "count", "lower", "event", ("stage",), "sum"),
    MetricSpec("declined", "无法执行", "Commands declined", "bool", "lower", "pair", (), "sum"),
    MetricSpec(
        "missed",
        "漏签指令",
        "Commands missed (no receipt by the deadline)",
        "bool",
        "lower",
        "pair",
        ("deadline",),
        "sum",
    ),
    MetricSpec("escalated", "被催办次数", "Escalations (催办)", "count", "lower", "event", (), "sum"),
    MetricSpec("disconnects", "掉线次数", "Unplanned disconnects", "count", "lower", "event", (), "sum"),
    MetricSpec("video_uptime", "视频在线率", "Video uptime", "ratio", "higher", "dept"),
    MetricSpec("frozen_black_s", "画面冻结/黑屏时长", "Frozen or black video", "s", "lower", "dept"),
    MetricSpec(
        "injects_on_time",
        "情景注入准时率",
        "Injects released on time",
        "bool",
        "higher",
        "inject",
        ("tolerance",),
        "ratio",
    ),
    MetricSpec("inject_delay", "情景注入偏差", "Inject offset from plan", "s", "lower", "inject"),
)

METRICS: dict[str, MetricSpec] = {m.name: m for m in _SPECS}
STAGES = ("receipt", "on_scene", "completed")
