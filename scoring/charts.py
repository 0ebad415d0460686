"""reportlab drawings for the scorecard and trend PDFs: timeline, latency bars, uptime strip, trends."""

from __future__ import annotations

import math

from reportlab.graphics.shapes import Circle, Drawing, Line, Path, Polygon, PolyLine, Rect, String
from reportlab.lib import colors

from scoring.report_model import Bar, Strip, Timeline
from scoring.report_text import fmt_pct_ratio

FONT = "CJK"
RED = colors.HexColor("#d62728")
BLUE = colors.HexColor("#1f77b4")
GREEN = colors.HexColor("#2ca02c")
ORANGE = colors.HexColor("#ff7f0e")
GREY = colors.HexColor("#9e9e9e")
LIGHT = colors.HexColor("#eeeeee")
DARK = colors.HexColor("#333333")
PURPLE = colors.HexColor("#7b1fa2")
STATE_COLOURS = {
    "up": GREEN,
    "offline": colors.HexColor("#bdbdbd"),
    "no_feed": colors.HexColor("#bdbdbd"),
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

    marks = _Marks()
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
                marks.line(GREY, 0.5, x, y - 4, x, y + 4)
            elif m.kind == "issued":
                marks.line(BLUE, 0.8, x, y - 2, x, y + 2)
            elif m.kind == "missing":
                marks.line(RED, 0.9, x - 2.2, y - 2.2, x + 2.2, y + 2.2)
                marks.line(RED, 0.9, x - 2.2, y + 2.2, x + 2.2, y - 2.2)
            elif m.kind == "declined":
                marks.shape(PURPLE, _square_pts(x, y, 1.8))
            else:
                colour = RED if m.late else {"receipt": BLUE, "on_scene": ORANGE, "completed": GREEN}[m.kind]
                r = {"receipt": 1.4, "on_scene": 1.7, "completed": 2.0}[m.kind]
                pts = [x - r, y, x, y + r, x + r, y, x, y - r] if m.kind == "on_scene" else _dot_pts(x, y, r)
                marks.shape(colour, pts)
    marks.draw(d)
    # legend
    lx, ly = x0, top + 10
    items = [
        ("issued", BLUE, "line"),
        ("receipt", BLUE, "dot"),
        ("declined", PURPLE, "square"),
        ("on_scene", ORANGE, "diamond"),
        ("completed", GREEN, "dot"),
        ("late", RED, "dot"),
        ("missing", RED, "cross"),
        ("deadline", GREY, "line"),
    ]
    for key, colour, shape in items:
        if shape == "line":
            d.add(Line(lx, ly - 3, lx, ly + 3, strokeColor=colour, strokeWidth=0.8))
        elif shape == "diamond":
            d.add(
                Polygon([lx - 2, ly, lx, ly + 2, lx + 2, ly, lx, ly - 2], fillColor=colour, strokeColor=None)
            )
        elif shape == "cross":
            _cross(d, lx, ly, 2.2, colour)
        elif shape == "square":
            d.add(Polygon(_square_pts(lx, ly, 1.8), fillColor=colour, strokeColor=None))
        else:
            d.add(Polygon(_dot_pts(lx, ly, 2.0), fillColor=colour, strokeColor=None))
        label = labels[f"legend_{key}"]
        d.add(_text(lx + 5, ly - 2.5, label, 6.5))
        lx += 12 + text_width(label, 6.5)
    if t.shown < t.total:
        d.add(_text(x1, ly - 2.5, labels["shown"].format(a=t.shown, b=t.total), 6, "end"))
    return d


def text_width(s: str, size: float) -> float:
    """Roughly how wide a label is: CJK characters are square, Latin ones about half."""
    return sum(size if ord(c) > 255 else size * 0.55 for c in s)


def _cross(d: Drawing, x: float, y: float, r: float, colour: colors.Color) -> None:
    d.add(Line(x - r, y - r, x + r, y + r, strokeColor=colour, strokeWidth=0.9))
    d.add(Line(x - r, y + r, x + r, y - r, strokeColor=colour, strokeWidth=0.9))


def _square_pts(x: float, y: float, r: float) -> list[float]:
    return [x - r, y - r, x + r, y - r, x + r, y + r, x - r, y + r]


def _dot_pts(x: float, y: float, r: float) -> list[float]:
    """An octagon: a dot as cheap to draw as a square."""
    k = r * 0.414
    return [
        x - r,
        y - k,
        x - k,
        y - r,
        x + k,
        y - r,
        x + r,
        y - k,
        x + r,
        y + k,
        x + k,
        y + r,
        x - k,
        y + r,
        x - r,
        y + k,
    ]


class _Marks:
    """Markers batched into one path per colour (thousands of separate shapes draw slowly)."""

    def __init__(self) -> None:
        self.fills: dict[str, tuple[colors.Color, Path]] = {}
        self.strokes: dict[tuple[str, float], tuple[colors.Color, Path]] = {}

    def shape(self, colour: colors.Color, pts: list[float]) -> None:
        key = colour.hexval()
        if key not in self.fills:
            self.fills[key] = (colour, Path(fillColor=colour, strokeColor=None))
        path = self.fills[key][1]
        path.moveTo(pts[0], pts[1])
        for i in range(2, len(pts), 2):
            path.lineTo(pts[i], pts[i + 1])
        path.closePath()

    def line(self, colour: colors.Color, width: float, xa: float, ya: float, xb: float, yb: float) -> None:
        key = (colour.hexval(), width)
        if key not in self.strokes:
            self.strokes[key] = (colour, Path(strokeColor=colour, strokeWidth=width, fillColor=None))
        path = self.strokes[key][1]
        path.moveTo(xa, ya)
        path.lineTo(xb, yb)

    def draw(self, d: Drawing) -> None:
        for _, path in self.strokes.values():
            d.add(path)
        for _, path in self.fills.values():
            d.add(path)


def latency_bars(bars: list[Bar], width: float, labels: dict[str, str]) -> Drawing:
    """Horizontal bars of mean receipt latency (worst as a tick), each with its own commands'
    receipt deadlines (a grey tick, or a band from the shortest to the longest)."""
    row_h = 12.0
    left, right, bottom = 92.0, 44.0, 22.0
    n = len(bars)
    height = bottom + n * row_h + 8
    d = _drawing(width, height)
    x0, x1 = left, width - right
    top = bottom + n * row_h
    tops = [v for b in bars for v in (b.value, b.worst, b.deadline_hi) if v is not None]
    vmax = max([*tops, 1.0]) * 1.1

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
        if b.na:
            d.add(_text(x0 + 2, y + 2.5, labels["na"], 6.5, colour=GREY))
            continue
        if b.deadline_lo is not None and b.deadline_hi is not None:
            a, z = xpos(b.deadline_lo), xpos(b.deadline_hi)
            d.add(Rect(a - 0.6, y - 1.5, max(z - a, 0) + 1.2, row_h - 1, fillColor=GREY, strokeColor=None))
        if b.value is None:
            d.add(_text(x0 + 2, y + 2.5, labels["no_response"] if b.owed else "—", 6.5, colour=RED))
        else:
            d.add(
                Rect(
                    x0,
                    y,
                    max(xpos(b.value) - x0, 0.5),
                    row_h - 4,
                    fillColor=RED if b.deadline_hi is not None and b.value > b.deadline_hi else BLUE,
                    strokeColor=None,
                )
            )
            if b.worst is not None:
                xw = xpos(b.worst)
                d.add(Line(xw, y - 1, xw, y + row_h - 3, strokeColor=DARK, strokeWidth=0.8))
        if b.owed:
            colour = RED if b.late else DARK
            d.add(_text(x1 + 3, y + 2, f"{b.late}/{b.owed}", 6, colour=colour))
    return d


def uptime_strip(strips: list[Strip], span_s: float, width: float, labels: dict[str, str]) -> Drawing:
    """One strip per department across the drill: green up, grey no feed / offline, red lost,
    orange frozen, black black."""
    row_h = 10.0
    left, right, bottom = 92.0, 36.0, 30.0
    n = len(strips)
    height = bottom + n * row_h + 16
    d = _drawing(width, height)
    x0, x1 = left, width - right
    top = bottom + n * row_h
    span = max(span_s, 1.0)
    _time_axis(d, x0, x1, bottom, span, top)
    states = {st for s in strips for _, _, st in s.segments}
    for i, s in enumerate(strips):
        y = top - (i + 1) * row_h + 1.5
        d.add(_text(x0 - 4, y + 1.5, s.name[:14], 6.5, "end"))
        if s.na or s.uptime is None:
            d.add(Rect(x0, y, x1 - x0, row_h - 3, fillColor=LIGHT, strokeColor=None))
            d.add(_text(x1 + 3, y + 1.5, labels["na" if s.na else "not_measured"], 6))
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
        d.add(_text(x1 + 3, y + 1.5, fmt_pct_ratio(s.uptime), 6))
    lx = x0
    absent = "no_feed" if "no_feed" in states or "offline" not in states else "offline"
    for key in ("up", absent, "lost", "frozen", "black"):
        d.add(Rect(lx, top + 6, 8, 5, fillColor=STATE_COLOURS[key], strokeColor=None))
        d.add(_text(lx + 10, top + 6.5, labels[key], 6.5))
        lx += 18 + text_width(labels[key], 6.5)
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


def series_chart(
    values: list[float], xlabels: list[str], width: float, ymax: float, bands: list[float]
) -> Drawing:
    """One line across many drills (points, and dashed lines at the grade bands)."""
    left, right, bottom, top_pad = 30.0, 10.0, 26.0, 8.0
    height = 150.0
    d = _drawing(width, height)
    x0, x1 = left, width - right
    y0, y1 = bottom, height - top_pad
    d.add(Rect(x0, y0, x1 - x0, y1 - y0, fillColor=colors.HexColor("#fafafa"), strokeColor=LIGHT))
    for b in [0.0, *bands, ymax]:
        y = y0 + (y1 - y0) * b / ymax
        d.add(
            Line(
                x0,
                y,
                x1,
                y,
                strokeColor=GREY if b in bands else LIGHT,
                strokeWidth=0.4,
                strokeDashArray=[2, 2],
            )
        )
        d.add(_text(x0 - 3, y - 2, f"{b:g}", 6, "end"))
    k = len(values)

    def xpos(j: int) -> float:
        return x0 + (x1 - x0) * ((j + 0.5) / k)

    pts: list[float] = []
    for j, v in enumerate(values):
        x, y = xpos(j), y0 + (y1 - y0) * min(max(v, 0.0), ymax) / ymax
        pts += [x, y]
        d.add(Circle(x, y, 1.6, fillColor=BLUE, strokeColor=None))
    if len(pts) >= 4:
        d.add(PolyLine(pts, strokeColor=BLUE, strokeWidth=1))
    every = max(1, math.ceil(k / 16))  # at most about 16 labels
    for j in range(0, k, every):
        d.add(_text(xpos(j), y0 - 9, xlabels[j], 5.5, "middle"))
    return d


STATE_FILL = {
    "open": RED,
    "closed": GREEN,
    "ok": colors.HexColor("#c8e6c9"),
    "na": colors.HexColor("#e0e0e0"),
}


def state_grid(names: list[str], states: list[list[str]], xlabels: list[str], width: float) -> Drawing:
    """Items x drills: one coloured cell per item and drill (open, closed, ok, not applicable)."""
    left, right, bottom = 150.0, 6.0, 16.0
    row_h = 9.0
    n = len(names)
    height = bottom + n * row_h + 4
    d = _drawing(width, height)
    x0, x1 = left, width - right
    k = max((len(s) for s in states), default=1)
    cw = (x1 - x0) / k
    top = bottom + n * row_h
    for i, (name, row) in enumerate(zip(names, states, strict=True)):
        y = top - (i + 1) * row_h
        d.add(_text(x0 - 4, y + 2, name[:30], 6, "end"))
        for j, state in enumerate(row):
            d.add(
                Rect(
                    x0 + j * cw,
                    y + 0.5,
                    max(cw - 0.6, 0.4),
                    row_h - 1,
                    fillColor=STATE_FILL[state],
                    strokeColor=None,
                )
            )
    every = max(1, math.ceil(k / 22))
    for j in range(0, k, every):
        d.add(_text(x0 + (j + 0.5) * cw, bottom - 8, xlabels[j], 5.5, "middle"))
    return d
