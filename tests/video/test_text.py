"""CJK text rendering onto frames (media/text.py)."""

from __future__ import annotations

import numpy as np
import pytest

from media.text import TextRenderError, draw_text, render_patch, text_size


def test_cjk_glyphs_are_drawn_not_tofu() -> None:
    # Different CJK characters render as different glyphs (a missing font draws same boxes).
    a, _ = render_patch("应急", 24, (255, 255, 255), (0, 0, 0))
    b, _ = render_patch("公安", 24, (255, 255, 255), (0, 0, 0))
    assert a.shape == b.shape
    assert a.max() == 255
    assert not np.array_equal(a, b)
    w, h = text_size("应急管理局", 24)
    assert w > 4 * 20 and 18 <= h <= 40


def test_draw_in_place_and_clipped() -> None:
    frame = np.zeros((40, 60, 3), dtype=np.uint8)
    w, h = draw_text(frame, "防汛抗旱指挥部", (30, 20), 20, (255, 0, 0))
    assert w > 30 and h > 10
    assert frame[:, :30].max() == 0  # nothing left of x
    assert frame[20:, 30:, 0].max() > 200 and frame[:, :, 1].max() == 0
    bgr = np.zeros((40, 60, 3), dtype=np.uint8)
    draw_text(bgr, "水", (0, 0), 20, (255, 0, 0), bgr=True)
    assert bgr[:, :, 2].max() > 200 and bgr[:, :, 0].max() == 0


def test_bad_frame_rejected() -> None:
    with pytest.raises(TextRenderError):
        draw_text(np.zeros((4, 4), dtype=np.uint8), "x", (0, 0), 10)
