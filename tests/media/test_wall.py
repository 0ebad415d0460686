"""Video wall: layout geometry, tile scaling, CJK labels, state borders, clock, incremental draw."""

from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.wall import (
    BACKGROUND,
    BORDER,
    BORDER_ALERT,
    BORDER_OFFLINE,
    BORDER_OK,
    LAYOUTS,
    Rect,
    VideoWall,
    WallError,
    layout_cells,
)

NAMES = {
    "emergency": "应急管理局",
    "police": "公安110",
    "fire": "消防救援大队",
    "water": "水务局",
    "power": "供电公司",
}
IDS = list(NAMES)


def solid(color: tuple[int, int, int], w: int = 320, h: int = 240) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = color
    return img


def pattern(seed: int, w: int = 320, h: int = 240) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(1280, 720), (640, 360), (1282, 722)])
@pytest.mark.parametrize(
    ("layout", "count"), [("1", 1), ("2x2", 4), ("3x3", 9), ("4x4", 16), ("spotlight", 8)]
)
def test_layout_cells_tile_the_canvas(layout: str, count: int, size: tuple[int, int]) -> None:
    cells = layout_cells(layout, size)
    assert len(cells) == count
    cover = np.zeros((size[1], size[0]), np.int32)
    for c in cells:
        assert c.x >= 0 and c.y >= 0 and c.x1 <= size[0] and c.y1 <= size[1]
        cover[c.y : c.y1, c.x : c.x1] += 1
    assert (cover == 1).all()  # no gaps, no overlaps


def test_grid_cells_are_uniform_and_spotlight_is_large() -> None:
    assert {(c.w, c.h) for c in layout_cells("4x4", (1280, 720))} == {(320, 180)}
    assert layout_cells("2x2", (1280, 720))[3] == Rect(640, 360, 640, 360)
    big, *strip = layout_cells("spotlight", (1280, 720))
    assert big == Rect(0, 0, 960, 540)
    assert {(c.w, c.h) for c in strip} == {(320, 180)}
    assert [c.x for c in strip[3:]] == [0, 320, 640, 960]


def test_unknown_layout_and_bad_inputs() -> None:
    with pytest.raises(WallError):
        layout_cells("5x5", (1280, 720))
    with pytest.raises(WallError):
        VideoWall("4x4", size=(1279, 720))
    wall = VideoWall("2x2", names=NAMES)
    with pytest.raises(WallError):
        wall.update("police", np.zeros((240, 320), np.uint8))


def test_frame_lands_in_its_tile_with_aspect_kept() -> None:
    wall = VideoWall("2x2", names=NAMES, order=IDS)
    wall.update("police", solid((10, 200, 30)))  # 4:3 into a 16:9 tile
    img = wall.compose()
    r = wall.tile_rect("police")
    assert r is not None and r.x > 0  # police is slot 2: top right
    mid_y = r.y + r.h // 3  # above the label band
    assert tuple(img[mid_y, r.x + r.w // 2]) == (10, 200, 30)
    # picture width = 4/3 of its height, centered; the bars on each side are background
    row = img[mid_y, r.x + BORDER : r.x1 - BORDER]
    is_pic = np.all(row == (10, 200, 30), axis=1)
    width = int(is_pic.sum())
    assert abs(width - round(r.h * 4 / 3)) <= 2
    assert tuple(row[0]) == BACKGROUND and tuple(row[-1]) == BACKGROUND
    left = int(np.argmax(is_pic))
    assert abs(left - (len(row) - width) // 2) <= 2


def test_empty_slot_and_department_without_tile() -> None:
    wall = VideoWall("1", names=NAMES, order=["fire"])
    wall.update("police", solid((255, 0, 0)))  # no tile in this layout: kept, not drawn
    img = wall.compose()
    assert not np.any(np.all(img == (255, 0, 0), axis=2))
    assert wall.tile_rect("police") is None
    wall.assign(["police"])  # now it has the tile: the kept frame is scaled in
    img = wall.compose()
    r = wall.tile_rect("police")
    assert r is not None and tuple(img[r.y + r.h // 3, r.x + r.w // 2]) == (255, 0, 0)


def label_band(wall: VideoWall, img: np.ndarray, dept: str) -> np.ndarray:
    r = wall.tile_rect(dept)
    assert r is not None
    band = wall._by_dept[dept].band
    return img[r.y1 - band : r.y1 - BORDER, r.x + BORDER : r.x1 - BORDER].astype(np.int32)


def test_cjk_label_is_drawn_and_differs_per_name() -> None:
    frame = solid((128, 128, 128))
    walls = {}
    for name in ("应急管理局", "公安局", ""):
        wall = VideoWall("2x2", names={"x": name}, order=["x"])
        wall.update("x", frame)
        walls[name] = label_band(wall, wall.compose().copy(), "x")
    blank = walls[""]
    for name in ("应急管理局", "公安局"):
        diff = np.abs(walls[name] - blank).max(axis=2)
        assert (diff > 60).sum() > 100  # glyph strokes, not just the translucent band
    # two different CJK names give different pixels (missing glyphs would render the same box)
    assert (np.abs(walls["应急管理局"] - walls["公安局"]).max(axis=2) > 60).sum() > 100


def border_pixel(wall: VideoWall, img: np.ndarray, dept: str) -> tuple[int, ...]:
    r = wall.tile_rect(dept)
    assert r is not None
    return tuple(int(v) for v in img[r.y + r.h // 3, r.x + 1])


@pytest.mark.parametrize("flag", ["overdue", "frozen", "lost", "black"])
def test_alert_states_draw_red_border_and_tag(flag: str) -> None:
    wall = VideoWall("2x2", names=NAMES, order=IDS)
    wall.update("fire", pattern(1))
    wall.set_state("fire", online=True)
    ok = wall.compose().copy()
    assert border_pixel(wall, ok, "fire") == BORDER_OK
    wall.set_state("fire", **{flag: True})
    bad = wall.compose().copy()
    assert border_pixel(wall, bad, "fire") == BORDER_ALERT
    diff = np.abs(label_band(wall, bad, "fire") - label_band(wall, ok, "fire")).max(axis=2)
    assert (diff > 60).sum() > 30  # the state tag appeared
    wall.set_state("fire", **{flag: False})
    assert np.array_equal(wall.compose(), ok)


def test_offline_border_is_gray() -> None:
    wall = VideoWall("2x2", names=NAMES, order=IDS)
    img = wall.compose()
    assert border_pixel(wall, img, "emergency") == BORDER_OFFLINE


def test_clock_is_drawn_and_removed_cleanly() -> None:
    wall = VideoWall("4x4", names=NAMES, order=IDS)
    for i, d in enumerate(IDS):
        wall.update(d, pattern(i))
    plain = wall.compose().copy()
    with_clock = wall.compose("2025-06-01 14:03:22").copy()
    changed = np.argwhere(np.any(with_clock != plain, axis=2))
    assert len(changed) > 200
    assert changed[:, 1].min() > 1280 // 2 and changed[:, 0].max() < 720 // 4  # top right
    other = wall.compose("14:03:23").copy()
    assert not np.array_equal(other, with_clock)
    assert np.array_equal(wall.compose(""), plain)


def test_scales_once_per_new_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = cv2.resize

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(cv2, "resize", counting)
    wall = VideoWall("2x2", names=NAMES, order=IDS)
    for d in IDS:  # "power" has no tile in 2x2
        wall.update(d, pattern(0))
    assert len(calls) == 4
    for _ in range(3):
        wall.compose("12:00:00")
    wall.set_state("police", frozen=True)
    wall.compose("12:00:01")
    assert len(calls) == 4


def test_a_frame_fit_elsewhere_is_shown_as_scaled_here_without_scaling_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    src = pattern(7, 640, 360)
    here = VideoWall("2x2", names=NAMES, order=IDS)
    here.update("police", src)
    expected = here.compose().copy()
    wall = VideoWall("2x2", names=NAMES, order=IDS)
    fitted = wall.fit("police", src)  # what a decoding thread does
    assert fitted.shape[:2] != src.shape[:2] and wall.fit("power", src) is src  # no tile: as is
    calls = []
    real = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: calls.append(1) or real(*a, **k))
    wall.update("police", fitted)
    assert calls == [] and np.array_equal(wall.compose(), expected)
    wall.update("police", pattern(8))  # a frame of another size: scaled into the wall's own buffer
    assert calls == [1] and np.array_equal(fitted, here.fit("police", src))  # the fit frame intact
    wall.set_layout("1", order=["police"])  # the layout changed after the fit: scaled anew
    wall.update("police", fitted)
    fresh = VideoWall("1", names=NAMES, order=["police"])
    fresh.update("police", fitted)
    assert np.array_equal(wall.compose(), fresh.compose())


def fresh_render(
    layout: str,
    order: list[str],
    frames: dict[str, np.ndarray],
    states: dict[str, dict[str, bool]],
    clock: str,
) -> np.ndarray:
    wall = VideoWall(layout, size=(640, 360), names=NAMES, order=order)
    for d, f in frames.items():
        wall.update(d, f)
    for d, s in states.items():
        wall.set_state(d, **s)
    return wall.compose(clock).copy()


FLAGS = ["online", "overdue", "frozen", "black", "lost"]
step = st.one_of(
    st.tuples(st.just("frame"), st.sampled_from(IDS), st.integers(0, 3)),
    st.tuples(st.just("state"), st.sampled_from(IDS), st.sampled_from(FLAGS), st.booleans()),
    st.tuples(st.just("clock"), st.sampled_from(["", "12:00:00", "2025-06-01 12:00:01"])),
    st.tuples(st.just("layout"), st.sampled_from(LAYOUTS)),
    st.tuples(st.just("compose")),
)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, max_size=25))
def test_incremental_compose_equals_fresh_render(steps: list[tuple[object, ...]]) -> None:
    """Whatever happened before, the canvas equals a wall built from scratch in the end state."""
    frames: dict[str, np.ndarray] = {}
    states: dict[str, dict[str, bool]] = {}
    layout, clock = "4x4", ""
    wall = VideoWall(layout, size=(640, 360), names=NAMES, order=IDS)
    sizes = itertools.cycle([(320, 240), (640, 360), (160, 160)])
    for s in steps:
        if s[0] == "frame":
            dept, seed = str(s[1]), int(s[2])  # type: ignore[call-overload]
            w, h = next(sizes)
            frames[dept] = pattern(seed, w, h)
            wall.update(dept, frames[dept])
        elif s[0] == "state":
            states.setdefault(str(s[1]), {})[str(s[2])] = bool(s[3])
            wall.set_state(str(s[1]), **{str(s[2]): bool(s[3])})
        elif s[0] == "clock":
            clock = str(s[1])
        elif s[0] == "layout":
            layout = str(s[1])
            wall.set_layout(layout)
        wall.compose(clock) if s[0] in ("compose", "clock") else None
    got = wall.compose(clock)
    assert np.array_equal(got, fresh_render(layout, IDS, frames, states, clock))
