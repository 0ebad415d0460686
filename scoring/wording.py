"""Exact words for rules in both languages: durations as written (2.5 s, 1 min 30 s), curves."""

from __future__ import annotations

import math

from scoring.curves import Curve, Linear, PerUnit

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


def _g(x: float) -> str:
    """A number as written: no rounding of the digits it has (up to 12 significant)."""
    text = f"{x:.12g}"
    return "0" if text == "-0" else text


def exact_duration(seconds: float, lang: str) -> str:
    """A duration exactly: 2.5 s, 1 min 30 s, 1 h 30 min (2.5秒, 1分30秒, 1小时30分钟)."""
    if not math.isfinite(seconds):
        return "∞"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    h = int(s // 3600)
    m = int((s - h * 3600) // 60)
    rest = round(s - h * 3600 - m * 60, 9)
    if lang == "zh":
        parts = []
        if h:
            parts.append(f"{h}小时")
        if m:
            parts.append(f"{m}分" if rest else f"{m}分钟")
        if rest or not parts:
            parts.append(f"{_g(rest)}秒")
        return sign + "".join(parts)
    parts = []
    if h:
        parts.append(f"{h} h")
    if m:
        parts.append(f"{m} min")
    if rest or not parts:
        parts.append(f"{_g(rest)} s")
    return sign + " ".join(parts)


def value_text(x: float, unit: str, lang: str) -> str:
    """A curve threshold in its metric's unit: durations exactly, ratios as percentages."""
    if unit == "s":
        return exact_duration(x, lang)
    if unit in ("ratio", "bool"):
        return f"{_g(x * 100)}%"
    return _g(x)


def curve_text(curve: Curve, unit: str, lang: str) -> str:
    """What a curve does, in words, with every threshold exact."""

    def v(x: float) -> str:
        return value_text(x, unit, lang)

    def pct(f: float) -> str:
        return f"{_g(f * 100)}%"

    if isinstance(curve, Linear):
        if lang == "zh":
            return f"{v(curve.full_at)}得满分，{v(curve.zero_at)}得0分，其间线性"
        return f"linear: full marks at {v(curve.full_at)}, none at {v(curve.zero_at)}, straight between"
    if isinstance(curve, PerUnit):
        if lang == "zh":
            unit_ = v(curve.unit)
            return (
                f"{v(curve.full_at)}以内满分，超出部分每{unit_}（不足{unit_}按{unit_}计）扣{pct(curve.minus)}"
            )
        return (
            f"per unit: full marks up to {v(curve.full_at)}, minus {pct(curve.minus)} for each "
            f"started {v(curve.unit)} beyond"
        )
    word = "≤" if curve.better == "lower" else "≥"
    if lang == "zh":
        steps = "，".join(f"{word}{v(t)}得{pct(f)}" for t, f in curve.thresholds)
        return f"{steps}，其余得{pct(curve.otherwise)}"
    steps = ", ".join(f"{word} {v(t)}: {pct(f)}" for t, f in curve.thresholds)
    return f"steps: {steps}, otherwise {pct(curve.otherwise)}"
