"""Video uptime from the feeds (media.published/unpublished and the health events), by hand; a
department without video scores 0 or is not applicable as the rubric says; older logs fall back
to presence with a note; the outage rule is media/uptime.py's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.uptime import outages as media_outages
from scoring.drilllog import Department
from scoring.engine import score_events
from scoring.rubric import load_rubric_text
from scoring.synth import LogBuilder
from scoring.videotime import dept_video

RUBRIC = """
id: video
title: 视频
version: "1"
total: 15
grades:
  - {id: pass, zh: 合格, en: Pass, min: 60}
  - {id: fail, zh: 不合格, en: Fail, min: 0}
sections:
  - id: v
    title: 视频
    points: 15
    criteria:
      - {id: up, type: metric, title: 在线率, metric: video_uptime, scope: per_department,
         curve: {type: linear, full_at: 1.0, zero_at: 0.5}, points: 10}
      - {id: fb, type: metric, title: 冻结黑屏, metric: frozen_black_s, scope: per_department,
         curve: {type: per_unit, full_at: 30s, unit: 10s, minus: 0.1}, points: 5}
"""
ROSTER = [
    Department("a", "甲局", "Bureau A"),
    Department("b", "乙局", "Bureau B"),
    Department("c", "丙局", "C"),
]


def drill() -> LogBuilder:
    lb = LogBuilder(roster=ROSTER)
    for d in "abc":
        lb.online(-30, d, op="system")  # all three connected the whole time
    lb.publish(-20, "a", op="system")  # a's feed is live before the drill: counts from 0
    lb.start()
    lb.video(200, "a", "frozen")
    lb.video(250, "a", "restored", was="frozen", duration_s=60)  # onset 190 (measured), not 200
    lb.unpublish(500, "a", cause="connection")
    lb.publish(600, "a", session="s2")  # no feed 500-600
    lb.video(800, "a", "lost")  # never restored: down to the end
    lb.publish(100, "b")  # b: live from 100 on, healthy
    lb.end(1000)  # c never publishes: connected, but no video at all
    return lb


def test_uptime_from_the_feeds_by_hand() -> None:
    card = score_events(drill().events(), load_rubric_text(RUBRIC, "v.yaml"))
    crit = {c.id: c for c in card.criteria()}
    up = crit["up"].departments
    # a up: 0-190, 250-500, 600-800 = 190 + 250 + 200 = 640 of 1000 s
    assert up["a"].value == pytest.approx(0.64)
    # b: 100-1000 = 0.9; c: no feed at all = 0 (presence alone is not video)
    assert up["b"].value == pytest.approx(0.9)
    assert up["c"].value == 0 and up["c"].status == "no_video"
    # linear 1 at 1.0, 0 at 0.5: a 0.28, b 0.8, c 0 -> 10 * mean = 10 * 0.36 = 3.6
    assert crit["up"].earned == pytest.approx(3.6)
    # frozen/black: a 60 s (190-250) -> 30 s over, 3 units -> 0.7; b 0 -> 1; c no feed -> 0
    fb = crit["fb"].departments
    assert fb["a"].value == pytest.approx(60) and fb["a"].fraction == pytest.approx(0.7)
    assert fb["c"].fraction == 0
    assert any("published no video" in str(n) for n in crit["up"].notes)
    assert card.video == {"source": "media", "measured": True}


def test_no_video_not_applicable_option() -> None:
    text = RUBRIC.replace("sections:", "video: {no_video: not_applicable}\nsections:")
    card = score_events(drill().events(), load_rubric_text(text, "v.yaml"))
    up = {c.id: c for c in card.criteria()}["up"]
    assert up.departments["c"].fraction is None  # left out, not 0
    # a 0.28, b 0.8 -> 10 * 0.54 = 5.4
    assert up.earned == pytest.approx(5.4)


def test_older_logs_fall_back_to_presence_with_a_note() -> None:
    lb = LogBuilder(roster=ROSTER[:1])
    lb.online(-10, "a", op="system")
    lb.start()
    lb.offline(400, "a")
    lb.online(500, "a", conn="c2")
    lb.end(1000)
    rubric = load_rubric_text(RUBRIC, "v.yaml")
    card = score_events(lb.events(), rubric)
    assert {c.id: c for c in card.criteria()}["up"].departments["a"].value == pytest.approx(0.9)
    assert card.video["source"] == "presence"
    assert any("no media.published events" in str(n) for n in card.notes)
    # the rubric may refuse the fallback: video left out of earned and maximum points
    strict = load_rubric_text(
        RUBRIC.replace("sections:", "video: {without_media_events: not_measured}\nsections:"), "v"
    )
    card = score_events(lb.events(), strict)
    assert not any(c.applicable for c in card.criteria())


def test_hub_that_announces_media_events_and_nobody_published_scores_zero() -> None:
    lb = LogBuilder(roster=ROSTER[:1])
    lb.add(
        -100,
        "hub",
        None,
        "hub.started",
        {"version": "0.2", "media_events": 1, "departments": ["a"]},
        "system",
    )
    lb.online(-10, "a", op="system")
    lb.start()
    lb.end(1000)
    card = score_events(lb.events(), load_rubric_text(RUBRIC, "v.yaml"))
    assert card.video["source"] == "media"
    assert card.earned == 0  # connected all along, but no video: not full marks


def test_bad_video_option_names_its_line() -> None:
    from hub.yamlsrc import YamlSourceError

    with pytest.raises(YamlSourceError, match=r"v.yaml:\d+:\d+: video.no_video: must be one of zero"):
        load_rubric_text(RUBRIC.replace("sections:", "video: {no_video: half}\nsections:"), "v.yaml")


# --- the outage rule is the one media/uptime.py states -------------------------------------------

event = st.tuples(
    st.sampled_from(["video.lost", "video.frozen", "video.black", "video.restored"]),
    st.integers(1, 50),  # seconds after the previous event
    st.floats(0, 80),  # duration_s of a restored
)


@settings(max_examples=200, deadline=None)
@given(st.lists(event, max_size=25))
def test_outages_within_a_live_feed_match_media_uptime(seq: list[tuple[str, int, float]]) -> None:
    lb = LogBuilder(roster=ROSTER[:1])
    lb.publish(-1000, "a", op="system")  # live throughout: only outages matter
    lb.start()
    t = 0.0
    for kind, gap, dur in seq:
        t += gap
        lb.video(t, "a", kind.split(".")[1], duration_s=round(dur, 3))
    lb.end(t + 10)
    events = lb.events()
    start, end = events[1].ts_us, events[-1].ts_us  # operation.started .. operation.ended
    mine = dept_video(events, ["a"], start, end, "media")["a"]
    down = 0
    for o in media_outages(e for e in events if e.kind.startswith("video.")):
        a, b = max(o.start_us, start), min(end if o.end_us is None else o.end_us, end)
        down += max(0, b - a)
    # media/uptime.py lets a back-dated outage reach into the previous one; scoring does not
    # count that time twice, so the two agree whenever outages do not overlap
    starts = [o.start_us for o in media_outages(e for e in events if e.kind.startswith("video."))]
    ends = [o.end_us or end for o in media_outages(e for e in events if e.kind.startswith("video."))]
    overlap = any(s < e for s, e in zip(starts[1:], ends[:-1], strict=False))
    if not overlap:
        assert mine.up_us == (end - start) - down
    else:
        assert mine.up_us >= (end - start) - down
