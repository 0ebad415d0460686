"""CJK-capable text rendering onto numpy video frames with Pillow (OpenCV's putText has no CJK)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from media.fonts import find_cjk_font

Color = tuple[int, int, int]


class TextRenderError(Exception):
    """Text could not be rendered (bad font file, frame of the wrong shape)."""


@lru_cache(maxsize=32)
def load_font(size: int, path: str | None = None) -> ImageFont.FreeTypeFont:
    """The CJK TrueType font at `size` pixels (cached; `path` overrides `find_cjk_font()`)."""
    font_path = Path(path) if path else find_cjk_font()
    try:
        return ImageFont.truetype(str(font_path), size=size)
    except OSError as exc:
        raise TextRenderError(f"cannot load font {font_path}: {exc}") from exc


def text_size(text: str, size: int) -> tuple[int, int]:
    """(width, height) in pixels of `text` drawn at `size`."""
    left, top, right, bottom = load_font(size).getbbox(text or " ")
    return int(right - min(left, 0)), int(bottom - min(top, 0))


@lru_cache(maxsize=512)
def render_patch(
    text: str, size: int, color: Color = (255, 255, 255), background: Color | None = None,
    pad: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Rendered `text` as (rgb uint8 HxWx3, alpha float32 HxWx1); cached, treat as read-only."""
    w, h = text_size(text, size)
    w, h = w + 2 * pad, h + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad, pad), text, font=load_font(size), fill=255)
    alpha = np.asarray(mask, dtype=np.float32)[:, :, None] / 255.0
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    rgb[:] = color
    if background is not None:
        bg = np.empty_like(rgb)
        bg[:] = background
        rgb = (rgb * alpha + bg * (1.0 - alpha)).astype(np.uint8)
        alpha = np.ones_like(alpha)
    rgb.setflags(write=False)
    alpha.setflags(write=False)
    return rgb, alpha


def draw_text(
    frame: np.ndarray, text: str, xy: tuple[int, int], size: int,
    color: Color = (255, 255, 255), background: Color | None = None, *, bgr: bool = False,
) -> tuple[int, int]:
    """Draw `text` into an HxWx3 uint8 `frame` in place at top-left `xy`; returns its (w, h).

    Colors are RGB; pass `bgr=True` for OpenCV-ordered frames. Clipped at the frame edges.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise TextRenderError(f"expected HxWx3 uint8 frame, got {frame.shape} {frame.dtype}")
    if bgr:
        color = (color[2], color[1], color[0])
        if background is not None:
            background = (background[2], background[1], background[0])
    rgb, alpha = render_patch(text, size, color, background)
    ph, pw = rgb.shape[:2]
    x, y = xy
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, fw), min(y + ph, fh)
    if x0 >= x1 or y0 >= y1:
        return pw, ph
    src = rgb[y0 - y:y1 - y, x0 - x:x1 - x]
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
    dst = frame[y0:y1, x0:x1]
    if background is not None:
        dst[:] = src
    else:
        dst[:] = (src * a + dst * (1.0 - a)).astype(np.uint8)
    return pw, ph
