"""reportlab drawings for the scorecard and trend PDFs: timeline, latency bars, uptime strip, trends."""

from __future__ import annotations

import math

from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors

from scoring.report_model import Bar, Strip, Timeline

FONT = "CJK"
RED = colors.HexColor("#d62728")
BLUE = colors.HexColor("#1f77b4")
GREEN = colors.HexColor("#2ca02c")
ORANGE = colors.HexColor("#ff7f0e")
GREY = colors.HexColor("#9e9e9e")
LIGHT = colors.HexColor("#eeeeee")
DARK = colors.HexColor("#333333")
STATE_COLOURS = {
    "up": GREEN,
    "offline": colors.HexColor("#bdbdbd"),
    "lost": RED,
    "frozen": ORANGE,
    "black": colors.black,
}
SERIES = [
    colors.HexColor(c)
    for c in (
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#637939",
        "#8c6d31",
        "#843c39",
        "#7b4173",
        "#3182bd",
    )
]


def _drawing(width: float, height: float) -> Drawing:
    """A drawing whose default font is the embedded CJK font (no base-14 font in the PDF)."""
    d = Drawing(width, height)
    d.initialFontName = FONT
    d.initialFontSize = 7
    return d


def _text(
    x: float, y: float, s: str, size: float = 7, anchor: str = "start", colour: colors.Color = DARK
) -> String:
    return String(x, y, s, fontName=FONT, fontSize=size, textAnchor=anchor, fillColor=colour)


def _time_axis(d: Drawing, x0: float, x1: float, y: float, span_s: float, top: float) -> None:
    """Ticks at a round step (at most about 10), labelled T+Ns or T+Nm."""
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
    step = next((st for st in steps if span_s / st <= 10), 86400)
    k = 0
    while k * step <= span_s + 1e-9:
        x = x0 + (x1 - x0) * (k * step) / max(span_s, 1)
        d.add(Line(x, y, x, top, strokeColor=LIGHT, strokeWidth=0.4))
        label = f"T+{k * step}s" if step < 60 else f"T+{k * step // 60}m"
        d.add(_text(x, y - 8, label, 6, "middle"))
        k += 1


def timeline(t: Timeline, width: float, labels: dict[str, str]) -> Drawing:
    """One row per department: issued / receipt / on scene / completed markers, deadline ticks."""
    row_h = 13.0
    left, right, bottom = 92.0, 8.0, 30.0
    n = len(t.names)
    height = bottom + n * row_h + 22
    d = _drawing(width, height)
    x0, x1 = left, width - right
    top = bottom + n * row_h
    _time_axis(d, x0, x1, bottom, t.span_s, top)
    span = max(t.span_s, 1.0)

    def xpos(ts: float) -> float:
        return x0 + (x1 - x0) * min(max(ts, 0.0), span) / span

    for i, name in enumerate(t.names):
        y = top - (i + 0.5) * row_h
        if i % 2 == 0:
            d.add(
                Rect(
                    x0, y - row_h / 2, x1 - x0, row_h, fillColor=colors.HexColor("#f7f7f7"), strokeColor=None
                )
            )
        d.add(_text(x0 - 4, y - 2.5, name[:14], 6.5, "end"))
        for m in t.rows[i]:
            x = xpos(m.t_s)
            if m.kind == "deadline":
                d.add(Line(x, y - 4, x, y + 4, strokeColor=GREY, strokeWidth=0.5))
            elif m.kind == "issued":
                d.add(Line(x, y - 2, x, y + 2, strokeColor=BLUE, strokeWidth=0.8))
            else:
                colour = RED if m.late else {"receipt": BLUE, "on_scene": ORANGE, "completed": GREEN}[m.kind]
                r = {"receipt": 1.4, "on_scene": 1.7, "completed": 2.0}[m.kind]
                if m.kind == "on_scene":
                    d.add(
                        Polygon([x - r, y, x, y + r, x + r, y, x, y - r], fillColor=colour, strokeColor=None)
                    )
                else:
                    d.add(Circle(x, y, r, fillColor=colour, strokeColor=None))
    # legend
    lx, ly = x0, top + 10
    items = [
        ("issued", BLUE, "line"),
        ("receipt", BLUE, "dot"),
        ("on_scene", ORANGE, "diamond"),
        ("completed", GREEN, "dot"),
        ("late", RED, "dot"),
        ("deadline", GREY, "line"),
    ]
    for key, colour, shape in items:
        if shape == "line":
            d.add(Line(lx, ly - 3, lx, ly + 3, strokeColor=colour, strokeWidth=0.8))
        elif shape == "diamond":
            d.add(
                Polygon([lx - 2, ly, lx, ly + 2, lx + 2, ly, lx, ly - 2], fillColor=colour, strokeColor=None)
            )
        else:
            d.add(Circle(lx, ly, 2, fillColor=colour, strokeColor=None))
        label = labels[f"legend_{key}"]
        d.add(_text(lx + 5, ly - 2.5, label, 6.5))
        lx += 14 + 6.5 * max(len(label), 2) * (1.0 if any(ord(c) > 255 for c in label) else 0.55)
    if t.shown < t.total:
        d.add(_text(x1, ly - 2.5, labels["shown"].format(a=t.shown, b=t.total), 6, "end"))
    return d


def latency_bars(bars: list[Bar], threshold: float | None, width: float, labels: dict[str, str]) -> Drawing:
    """Horizontal bars of mean receipt latency (worst as a tick), with the deadline line."""
    row_h = 12.0
    left, right, bottom = 92.0, 30.0, 22.0
    n = len(bars)
    height = bottom + n * row_h + 14
    d = _drawing(width, height)
    x0, x1 = left, width - right
    top = bottom + n * row_h
    vals = [b.value for b in bars if b.value is not None]
    vmax = max([*vals, threshold or 0.0, 1.0]) * 1.15
    vmax = min(vmax, max([*vals, 1.0]) * 1.15) if threshold is None else max(vmax, threshold * 1.2)

    def xpos(v: float) -> float:
        return x0 + (x1 - x0) * min(v, vmax) / vmax

    step = nice_step(vmax)
    k = 0
    while k * step <= vmax:
        x = xpos(k * step)
        d.add(Line(x, bottom, x, top, strokeColor=LIGHT, strokeWidth=0.4))
        d.add(_text(x, bottom - 9, f"{k * step:g}{labels['seconds']}", 6, "middle"))
        k += 1
    for i, b in enumerate(bars):
        y = top - (i + 1) * row_h + 2
        d.add(_text(x0 - 4, y + 2.5, b.name[:14], 6.5, "end"))
        if b.value is None:
            d.add(_text(x0 + 2, y + 2.5, "—", 6.5))
            continue
        late = threshold is not None and b.value > threshold
        d.add(
            Rect(
                x0,
                y,
                max(xpos(b.value) - x0, 0.5),
                row_h - 4,
                fillColor=RED if late else BLUE,
                strokeColor=None,
            )
        )
        d.add(_text(xpos(b.value) + 2, y + 2, f"{b.value:.0f}", 6))
        if b.worst is not None:
            xw = xpos(b.worst)
            d.add(Line(xw, y - 1, xw, y + row_h - 3, strokeColor=DARK, strokeWidth=0.8))
    if threshold is not None:
        x = xpos(threshold)
        d.add(Line(x, bottom, x, top + 4, strokeColor=RED, strokeWidth=1, strokeDashArray=[3, 2]))
        d.add(
            _text(x, top + 6, f"{labels['threshold']} {threshold:g}{labels['seconds']}", 6.5, "middle", RED)
        )
    return d


def uptime_strip(strips: list[Strip], span_s: float, width: float, labels: dict[str, str]) -> Drawing:
    """One strip per department across the drill: green up, grey offline, red/orange/black bad."""
    row_h = 10.0
    left, right, bottom = 92.0, 36.0, 30.0
    n = len(strips)
    height = bottom + n * row_h + 16
    d = _drawing(width, height)
    x0, x1 = left, width - right
    top = bottom + n * row_h
    span = max(span_s, 1.0)
    _time_axis(d, x0, x1, bottom, span, top)
    for i, s in enumerate(strips):
        y = top - (i + 1) * row_h + 1.5
        d.add(_text(x0 - 4, y + 1.5, s.name[:14], 6.5, "end"))
        if s.uptime is None:
            d.add(Rect(x0, y, x1 - x0, row_h - 3, fillColor=LIGHT, strokeColor=None))
            d.add(_text(x1 + 3, y + 1.5, labels["not_measured"], 6))
            continue
        for a, b, state in s.segments:
            xa = x0 + (x1 - x0) * max(a, 0) / span
            xb = x0 + (x1 - x0) * min(b, span) / span
            d.add(
                Rect(
                    xa,
                    y,
                    max(xb - xa, 0.3),
                    row_h - 3,
                    fillColor=STATE_COLOURS.get(state, GREY),
                    strokeColor=None,
                )
            )
        d.add(_text(x1 + 3, y + 1.5, f"{s.uptime * 100:.1f}%", 6))
    lx = x0
    for key, colour in (("up", GREEN), ("offline", STATE_COLOURS["offline"]), ("bad", RED)):
        d.add(Rect(lx, top + 6, 8, 5, fillColor=colour, strokeColor=None))
        d.add(_text(lx + 10, top + 6.5, labels[key], 6.5))
        lx += 70
    return d


def nice_step(vmax: float) -> float:
    raw = vmax / 6
    mag = 10 ** math.floor(math.log10(max(raw, 1e-9)))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def small_multiples(
    names: list[str],
    series: list[list[float | None]],
    xlabels: list[str],
    width: float,
    ymax: float = 100.0,
    cols: int = 4,
    threshold: float | None = None,
) -> Drawing:
    """A grid of tiny line charts, one per department, sharing the y scale."""
    n = len(names)
    rows = max(1, -(-n // cols))
    cell_w = width / cols
    cell_h = 62.0
    d = _drawing(width, rows * cell_h)
    for i, (name, ys) in enumerate(zip(names, series, strict=True)):
        col, row = i % cols, i // cols
        ox = col * cell_w + 18
        oy = (rows - row - 1) * cell_h + 12
        w = cell_w - 26
        h = cell_h - 26
        d.add(Rect(ox, oy, w, h, fillColor=colors.HexColor("#fafafa"), strokeColor=LIGHT))
        d.add(_text(ox, oy + h + 4, name[:16], 6.5))
        d.add(_text(ox - 2, oy - 2, "0", 5, "end"))
        d.add(_text(ox - 2, oy + h - 4, f"{ymax:g}", 5, "end"))
        if threshold is not None and threshold <= ymax:
            ty = oy + h * threshold / ymax
            d.add(Line(ox, ty, ox + w, ty, strokeColor=RED, strokeWidth=0.4, strokeDashArray=[2, 2]))
        k = len(ys)
        pts: list[float] = []
        for j, v in enumerate(ys):
            if v is None:
                continue
            x = ox + (w * (j / (k - 1)) if k > 1 else w / 2)
            y = oy + h * min(max(v, 0), ymax) / ymax
            pts += [x, y]
            d.add(Circle(x, y, 1.3, fillColor=SERIES[i % len(SERIES)], strokeColor=None))
        if len(pts) >= 4:
            d.add(PolyLine(pts, strokeColor=SERIES[i % len(SERIES)], strokeWidth=1))
        if xlabels:
            d.add(_text(ox, oy - 8, xlabels[0], 5))
            if k > 1:
                d.add(_text(ox + w, oy - 8, xlabels[-1], 5, "end"))
    return d
