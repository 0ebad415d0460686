"""Video wall compositor (numpy/OpenCV): layouts, tile scaling, CJK labels, state borders, clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from media.text import render_patch

LAYOUTS = ("1", "2x2", "3x3", "4x4", "spotlight")
BGR = tuple[int, int, int]

BACKGROUND: BGR = (16, 16, 16)
EMPTY_TILE: BGR = (40, 40, 40)
BORDER_OK: BGR = (70, 170, 70)
BORDER_OFFLINE: BGR = (110, 110, 110)
BORDER_ALERT: BGR = (0, 0, 255)
GAP = 2  # pixels of background between tiles
BORDER = 3  # border thickness, drawn over the tile's edge


class WallError(ValueError):
    """Unknown layout, bad canvas size or a frame that is not an HxWx3 uint8 image."""


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def x1(self) -> int:
        return self.x + self.w

    @property
    def y1(self) -> int:
        return self.y + self.h


@dataclass(frozen=True)
class TileState:
    """What the wall shows about a department besides its picture."""

    online: bool = False
    overdue: bool = False
    frozen: bool = False
    black: bool = False
    lost: bool = False

    @property
    def alert(self) -> bool:
        return self.overdue or self.frozen or self.black or self.lost

    def tags(self) -> list[str]:
        """Short Chinese state tags shown in the label, most severe first."""
        flags = [
            (self.lost, "丢失"),
            (self.frozen, "冻结"),
            (self.black, "黑屏"),
            (self.overdue, "超时"),
            (not self.online, "离线"),
        ]
        return [text for on, text in flags if on]


def layout_cells(layout: str, size: tuple[int, int]) -> list[Rect]:
    """Tile rectangles for `layout` on a canvas of `size` (w, h), in slot order.

    Grids ('1', '2x2', '3x3', '4x4') fill the canvas row by row. 'spotlight' is one large tile
    (3/4 of width and height, top left) plus a strip of 7 small ones: 3 down the right side,
    then 4 along the bottom, all with the canvas's aspect ratio.
    """
    w, h = size
    if layout not in LAYOUTS:
        raise WallError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    if layout == "spotlight":
        xs = [w * i // 4 for i in range(5)]
        ys = [h * i // 4 for i in range(5)]
        cells = [Rect(0, 0, xs[3], ys[3])]
        cells += [Rect(xs[3], ys[r], xs[4] - xs[3], ys[r + 1] - ys[r]) for r in range(3)]
        cells += [Rect(xs[c], ys[3], xs[c + 1] - xs[c], ys[4] - ys[3]) for c in range(4)]
        return cells
    n = 1 if layout == "1" else int(layout[0])
    xs = [w * i // n for i in range(n + 1)]
    ys = [h * i // n for i in range(n + 1)]
    return [Rect(xs[c], ys[r], xs[c + 1] - xs[c], ys[r + 1] - ys[r]) for r in range(n) for c in range(n)]


@dataclass
class _Overlay:
    """A pre-rendered patch ready to blend: out = under * inv / 255 + premult."""

    premult: np.ndarray  # HxWx3 uint8, colour already multiplied by alpha
    inv: np.ndarray  # HxWx3 uint8, (1 - alpha) * 255

    def blend(self, dst: np.ndarray) -> None:
        h, w = dst.shape[:2]
        inv, pre = self.inv[:h, :w], self.premult[:h, :w]
        cv2.multiply(dst, inv, dst=dst, scale=1 / 255)
        cv2.add(dst, pre, dst=dst)


class _Layer:
    """A float BGRA drawing surface for building overlays once (never per frame)."""

    def __init__(self, w: int, h: int, color: BGR = (0, 0, 0), alpha: float = 0.0) -> None:
        self.bgr = np.empty((h, w, 3), np.float32)
        self.bgr[:] = color
        self.alpha = np.full((h, w, 1), alpha, np.float32)

    def paste(self, bgr: np.ndarray, alpha: np.ndarray, x: int, y: int) -> int:
        """Composite a patch over the layer at (x, y), clipped; returns the patch width."""
        ph, pw = bgr.shape[:2]
        lh, lw = self.alpha.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, lw), min(y + ph, lh)
        if x0 < x1 and y0 < y1:
            a = alpha[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
            src = bgr[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
            dst, da = self.bgr[y0:y1, x0:x1], self.alpha[y0:y1, x0:x1]
            out_a = a + da * (1 - a)
            dst[:] = (src * a + dst * da * (1 - a)) / np.maximum(out_a, 1e-6)
            da[:] = out_a
        return int(pw)

    def text(self, text: str, size: int, color: BGR, x: int, y: int) -> int:
        # render_patch fills with the colour as given, so a BGR tuple yields a BGR patch
        rgb, alpha = render_patch(text, size, color)
        return self.paste(rgb, alpha, x, y)

    def overlay(self) -> _Overlay:
        premult = np.clip(self.bgr * self.alpha + 0.5, 0, 255).astype(np.uint8)
        inv = np.repeat(np.clip((1 - self.alpha) * 255 + 0.5, 0, 255), 3, axis=2)
        return _Overlay(premult, inv.astype(np.uint8))


def _fitted(inner: Rect, frame: np.ndarray) -> tuple[tuple[int, int], int]:
    """The (w, h) `frame` takes in a tile's picture area, aspect ratio kept, and the
    interpolation to scale it with."""
    fh, fw = frame.shape[:2]
    k = min(inner.w / fw, inner.h / fh)
    size = max(1, min(inner.w, round(fw * k))), max(1, min(inner.h, round(fh * k)))
    return size, cv2.INTER_AREA if k <= 0.5 else cv2.INTER_LINEAR


def text_overlay(text: str, size: int, color: BGR, background: BGR, pad: int = 4) -> _Overlay:
    """`text` on an opaque-ish box, ready to blend (used for the clock and the empty tile)."""
    rgb, alpha = render_patch(text, size, color)
    h, w = rgb.shape[:2]
    layer = _Layer(w + 2 * pad, h + 2 * pad, background, 0.7)
    layer.paste(rgb, alpha, pad, pad)
    return layer.overlay()


class _Tile:
    """One slot of the layout: its rectangle, scaler output and pre-rendered label."""

    def __init__(self, cell: Rect) -> None:
        self.cell = cell
        self.inner = Rect(cell.x + GAP, cell.y + GAP, cell.w - 2 * GAP, cell.h - 2 * GAP)
        self.dept: str | None = None
        self.scaled: np.ndarray | None = None  # fitted image, keeps the source aspect ratio
        self.owned = False  # `scaled` is the tile's own buffer (else a caller's fit frame)
        self.place = self.inner  # where `scaled` goes inside `inner`
        self.label: _Overlay | None = None
        self.label_key: tuple[object, ...] = ()
        self.band = max(16, min(40, round(self.inner.h * 0.13)))
        self.dirty = True


class VideoWall:
    """Composes the latest frame of each department into one BGR canvas.

    `update(dept, frame)` keeps the frame and, if the department has a tile, scales it into that
    tile's buffer (one cv2.resize per new frame). `compose(now_text)` redraws only tiles that
    changed (new frame, state, layout) by slicing, blends their pre-rendered labels, draws
    borders, and puts the clock text top right. Labels are rendered with Pillow once per
    (name, state) and cached; nothing per frame goes through Pillow except a new clock text.
    The returned array is the wall's own canvas: valid until the next `compose`.
    """

    def __init__(
        self,
        layout: str = "4x4",
        size: tuple[int, int] = (1280, 720),
        names: Mapping[str, str] | None = None,
        order: Sequence[str] | None = None,
    ) -> None:
        w, h = size
        if w < 64 or h < 64 or w % 2 or h % 2:
            raise WallError(f"canvas size must be even and at least 64x64, got {w}x{h}")
        self.size = (w, h)
        self.names: dict[str, str] = dict(names or {})
        self.frames: dict[str, np.ndarray] = {}
        self.states: dict[str, TileState] = {}
        self.canvas = np.empty((h, w, 3), np.uint8)
        self._order: list[str] = list(order if order is not None else self.names)
        self._tiles: list[_Tile] = []
        self._by_dept: dict[str, _Tile] = {}
        self._clock_cache: OrderedDict[str, _Overlay] = OrderedDict()
        self._clock_rect: Rect | None = None
        self._clock_under: np.ndarray | None = None
        self._clock_text = ""
        self._empty: dict[int, _Overlay] = {}
        self.layout = ""
        self.set_layout(layout)

    # -- configuration --------------------------------------------------------------------

    def set_layout(self, layout: str, order: Sequence[str] | None = None) -> None:
        """Switch layout (and optionally the department order; the first is the spotlight)."""
        cells = layout_cells(layout, self.size)
        self.layout = layout
        if order is not None:
            self._order = list(order)
        self._tiles = [_Tile(c) for c in cells]
        self._by_dept = {}
        for tile, dept in zip(self._tiles, self._order, strict=False):
            tile.dept = dept
            self._by_dept[dept] = tile
            if dept in self.frames:
                self._scale(tile, self.frames[dept])
        cv2.rectangle(self.canvas, (0, 0), (self.size[0] - 1, self.size[1] - 1), BACKGROUND, -1)
        self._clock_rect = self._clock_under = None
        self._clock_text = ""

    def assign(self, order: Sequence[str]) -> None:
        """Which departments fill the slots, in slot order."""
        self.set_layout(self.layout, order)

    def tile_rect(self, dept: str) -> Rect | None:
        """The picture area of `dept`'s tile, or None when it has no tile in this layout."""
        tile = self._by_dept.get(dept)
        return tile.inner if tile else None

    @property
    def slots(self) -> list[Rect]:
        return [t.inner for t in self._tiles]

    # -- inputs ---------------------------------------------------------------------------

    def update(self, dept: str, frame: np.ndarray) -> None:
        """A new decoded frame (HxWx3 BGR uint8) for `dept`; the wall keeps a reference. A
        frame already `fit` to the tile is taken as it is (no scaling here)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise WallError(f"expected an HxWx3 uint8 BGR frame, got {frame.shape} {frame.dtype}")
        self.frames[dept] = frame
        tile = self._by_dept.get(dept)
        if tile is not None:
            self._scale(tile, frame)

    def fit(self, dept: str, frame: np.ndarray) -> np.ndarray:
        """`frame` scaled to `dept`'s tile (aspect ratio kept; a new array), or `frame` itself
        when `dept` has no tile. Safe to call from another thread (a decoding thread, so that
        the event loop does not scale): it only reads the layout; `update` rescales a frame
        fit to a layout that changed meanwhile."""
        tile = self._by_dept.get(dept)
        if tile is None:
            return frame
        (sw, sh), interp = _fitted(tile.inner, frame)
        if frame.shape[:2] == (sh, sw):
            return frame
        return cv2.resize(frame, (sw, sh), interpolation=interp)

    def set_state(
        self,
        dept: str,
        *,
        online: bool | None = None,
        overdue: bool | None = None,
        frozen: bool | None = None,
        black: bool | None = None,
        lost: bool | None = None,
    ) -> None:
        """Change what is shown about `dept` (only the given flags change)."""
        old = self.states.get(dept, TileState())
        changes = {
            k: v
            for k, v in {
                "online": online,
                "overdue": overdue,
                "frozen": frozen,
                "black": black,
                "lost": lost,
            }.items()
            if v is not None
        }
        new = replace(old, **changes)
        if new != old:
            self.states[dept] = new
            tile = self._by_dept.get(dept)
            if tile is not None:
                tile.dirty = True

    # -- output ---------------------------------------------------------------------------

    def compose(self, now_text: str = "") -> np.ndarray:
        """The wall as an HxWx3 BGR uint8 array (the wall's canvas, reused by the next call)."""
        canvas = self.canvas
        if self._clock_rect is not None and self._clock_under is not None:
            r = self._clock_rect
            canvas[r.y : r.y1, r.x : r.x1] = self._clock_under
        for tile in self._tiles:
            if tile.dirty:
                self._draw(tile)
        if now_text:
            clock = self._clock(now_text)
            ch, cw = clock.premult.shape[:2]
            w, h = self.size
            cw, ch = min(cw, w), min(ch, h)
            r = Rect(w - cw - 8 if cw + 8 <= w else 0, 8 if ch + 8 <= h else 0, cw, ch)
            region = canvas[r.y : r.y1, r.x : r.x1]
            self._clock_rect, self._clock_under = r, region.copy()
            clock.blend(region)
        else:
            self._clock_rect = self._clock_under = None
        return canvas

    # -- internals ------------------------------------------------------------------------

    def _scale(self, tile: _Tile, frame: np.ndarray) -> None:
        inner = tile.inner
        (sw, sh), interp = _fitted(inner, frame)
        tile.place = Rect(inner.x + (inner.w - sw) // 2, inner.y + (inner.h - sh) // 2, sw, sh)
        if frame.shape[:2] == (sh, sw):
            tile.scaled, tile.owned = frame, False  # already fit (in a decoding thread): kept
        else:
            if tile.scaled is None or not tile.owned or tile.scaled.shape[:2] != (sh, sw):
                tile.scaled, tile.owned = np.empty((sh, sw, 3), np.uint8), True
            cv2.resize(frame, (sw, sh), dst=tile.scaled, interpolation=interp)
        tile.dirty = True

    def _draw(self, tile: _Tile) -> None:
        canvas, inner = self.canvas, tile.inner
        view = canvas[inner.y : inner.y1, inner.x : inner.x1]
        state = self.states.get(tile.dept or "", TileState())
        # filled cv2.rectangle: numpy's broadcast fill is ~20x slower for a tile
        corners = (inner.x, inner.y), (inner.x1 - 1, inner.y1 - 1)
        if tile.scaled is None:
            cv2.rectangle(canvas, *corners, EMPTY_TILE, -1)
            if tile.dept is not None:
                empty = self._empty_overlay(tile)
                empty.blend(self._centered(view, empty))
        else:
            p = tile.place
            if p.w != inner.w or p.h != inner.h:
                cv2.rectangle(canvas, *corners, BACKGROUND, -1)  # letterbox bars
            canvas[p.y : p.y1, p.x : p.x1] = tile.scaled
        if tile.dept is not None:
            label = self._label(tile, state)
            label.blend(canvas[inner.y1 - tile.band : inner.y1, inner.x : inner.x1])
            color = BORDER_ALERT if state.alert else BORDER_OK if state.online else BORDER_OFFLINE
            x0, y0, x1, y1, b = inner.x, inner.y, inner.x1 - 1, inner.y1 - 1, BORDER - 1
            for a, c in (((x0, y0), (x1, y0 + b)), ((x0, y1 - b), (x1, y1))):
                cv2.rectangle(canvas, a, c, color, -1)  # top, bottom: exactly BORDER px
            for a, c in (((x0, y0), (x0 + b, y1)), ((x1 - b, y0), (x1, y1))):
                cv2.rectangle(canvas, a, c, color, -1)  # left, right
        tile.dirty = False

    def _label(self, tile: _Tile, state: TileState) -> _Overlay:
        dept = tile.dept or ""
        name = self.names.get(dept, dept)
        key = (tile.inner.w, tile.band, name, state)
        if tile.label is None or tile.label_key != key:
            tile.label = self._render_label(tile.inner.w, tile.band, name, state)
            tile.label_key = key
        return tile.label

    @staticmethod
    def _render_label(w: int, band: int, name: str, state: TileState) -> _Overlay:
        layer = _Layer(w, band, (0, 0, 0), 0.55)
        size = max(10, band - 8)
        r = max(3, band // 5)
        dot = np.zeros((band, 2 * r + 8, 3), np.float32)
        dot_a = np.zeros((band, 2 * r + 8, 1), np.float32)
        color = (0, 210, 0) if state.online else (140, 140, 140)
        cv2.circle(dot, (r + 6, band // 2), r, color, -1, cv2.LINE_AA)
        cv2.circle(dot_a, (r + 6, band // 2), r, 1.0, -1, cv2.LINE_AA)
        x = layer.paste(dot, dot_a, BORDER, 0) + BORDER
        top = max(0, (band - size) // 2 - 3)
        layer.text(name, size, (255, 255, 255), x, top)
        tags = "·".join(state.tags())
        if tags:
            rgb, _ = render_patch(tags, size, (0, 0, 0))
            tag_color: BGR = (60, 60, 255) if state.alert else (190, 190, 190)
            layer.text(tags, size, tag_color, w - rgb.shape[1] - BORDER - 2, top)
        return layer.overlay()

    def _empty_overlay(self, tile: _Tile) -> _Overlay:
        size = max(12, tile.inner.h // 10)
        if size not in self._empty:
            self._empty[size] = text_overlay("无视频", size, (200, 200, 200), (0, 0, 0))
        return self._empty[size]

    @staticmethod
    def _centered(view: np.ndarray, ov: _Overlay) -> np.ndarray:
        vh, vw = view.shape[:2]
        oh, ow = ov.premult.shape[:2]
        y, x = max(0, (vh - oh) // 2), max(0, (vw - ow) // 2)
        return view[y : y + oh, x : x + ow]

    def _clock(self, text: str) -> _Overlay:
        ov = self._clock_cache.get(text)
        if ov is None:
            size = max(14, self.size[1] // 30)
            ov = self._clock_cache[text] = text_overlay(text, size, (255, 255, 255), (0, 0, 0))
            while len(self._clock_cache) > 4:
                self._clock_cache.popitem(last=False)
        return ov
