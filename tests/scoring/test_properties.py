"""Hypothesis properties of the engine: bounds, monotonicity, department order independence."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scoring.drilllog import Department
from scoring.engine import score_events
from scoring.rubric import Rubric, bundled, load_rubric
from scoring.scorecard import Scorecard
from scoring.synth import LogBuilder

EPS = 1e-9
DEPTS = [
    Department("fire", "消防救援大队", "Fire"),
    Department("police", "公安110", "Police"),
    Department("water", "水务局", "Water"),
    Department("power", "供电公司", "Power"),
]


@cache
def rubric() -> Rubric:
    return load_rubric(bundled())


# one response plan per (command, department): latencies in seconds or None (never sent)
pair_plan = st.fixed_dictionaries(
    {
        "ack": st.one_of(st.none(), st.integers(1, 400)),
        "on_scene": st.one_of(st.none(), st.integers(1, 2000)),
        "completed": st.one_of(st.none(), st.integers(1, 3000)),
        "declined": st.booleans(),
    }
)
command_plan = st.fixed_dictionaries(
    {
        "at": st.integers(0, 3000),
        "targets": st.sets(st.integers(0, 3), min_size=1, max_size=4),
        "requires": st.sampled_from(
            [
                ("receipt",),
                ("receipt", "on_scene"),
                ("receipt", "on_scene", "completed"),
                ("receipt", "completed"),
            ]
        ),
        "critical": st.booleans(),
        "pairs": st.lists(pair_plan, min_size=4, max_size=4),
    }
)
drill_plan = st.fixed_dictionaries(
    {
        "n_depts": st.integers(1, 4),
        "checkins": st.lists(st.one_of(st.none(), st.integers(1, 900)), min_size=4, max_size=4),
        "commands": st.lists(command_plan, min_size=1, max_size=5),
        "video": st.lists(
            st.tuples(
                st.integers(0, 3),
                st.integers(100, 5000),
                st.integers(1, 600),
                st.sampled_from(["frozen", "black", "lost"]),
            ),
            max_size=3,
        ),
        "ratings": st.lists(st.sampled_from("PSMU"), min_size=5, max_size=5),
    }
)


def build(
    plan: dict,
    order: list[int] | None = None,
    drop: tuple[int, int, str] | None = None,
    faster: tuple[int, int, int] | None = None,
) -> LogBuilder:
    """A drill from a plan. `drop` removes one response; `faster` moves a receipt earlier."""
    depts = DEPTS[: plan["n_depts"]]
    roster = [depts[i] for i in order] if order else depts
    lb = LogBuilder(roster=roster)
    for d in depts:
        lb.online(-10, d.id, op="system")
    lb.start()
    for i, d in enumerate(depts):
        if plan["checkins"][i] is not None:
            lb.checkin(plan["checkins"][i], d.id)
    for ci, cmd in enumerate(plan["commands"]):
        cid, t = f"C{ci + 1}", cmd["at"]
        targets = [depts[i].id for i in sorted(cmd["targets"]) if i < len(depts)] or [depts[0].id]
        lb.issue(t, cid, targets, cmd["requires"], critical=cmd["critical"])
        for d in targets:
            di = [x.id for x in depts].index(d)
            p = cmd["pairs"][di]
            if p["declined"]:
                lb.respond(t + 30, "declined", cid, d, reason="x")
                continue
            for stage, kind in (
                ("ack", "acknowledged"),
                ("on_scene", "on_scene"),
                ("completed", "completed"),
            ):
                lat = p[stage]
                if lat is None or drop == (ci, di, stage):
                    continue
                if stage == "ack" and faster is not None and faster[:2] == (ci, di):
                    lat = max(0, lat - faster[2])
                lb.respond(t + lat, kind, cid, d)
    for di, at, length, what in plan["video"]:
        if di < len(depts):
            lb.video(at, depts[di].id, what)
            lb.video(at + length, depts[di].id, "restored")
    lb.observe(6000, "command_coordination", plan["ratings"][0])
    for i, d in enumerate(depts):
        lb.observe(6001, "field_operations", plan["ratings"][1 + i], dept=d.id)
    lb.tick(6002, "plan_approved")
    lb.end(8000)
    return lb


def responses(plan: dict) -> list[tuple[int, int, str]]:
    """The (command, department, stage) responses `build(plan)` writes."""
    out = []
    for ci, cmd in enumerate(plan["commands"]):
        targets = sorted(i for i in cmd["targets"] if i < plan["n_depts"]) or [0]
        for di in targets:
            p = cmd["pairs"][di]
            if not p["declined"]:
                out += [(ci, di, s) for s in ("ack", "on_scene", "completed") if p[s] is not None]
    return out


def score(lb: LogBuilder) -> Scorecard:
    return score_events(lb.events(), rubric())


def grade_rank(card: Scorecard) -> int:
    return [g["id"] for g in card.grades].index(card.grade)


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(drill_plan)
def test_every_score_within_bounds(plan: dict) -> None:
    card = score(build(plan))
    assert 0 <= card.score <= card.total + EPS
    assert 0 <= card.percent <= 100 + EPS
    assert card.applicable <= card.total + EPS
    for c in card.criteria():
        assert -EPS <= c.earned <= c.max + EPS, c.id
        for d in c.departments.values():
            if d.fraction is not None:
                assert -EPS <= d.fraction <= 1 + EPS
    for s in card.sections:
        assert -EPS <= s.earned <= s.max + EPS
    for dept in card.departments:
        if dept.score is not None:
            assert -EPS <= dept.score <= 100 + EPS


@SETTINGS
@given(drill_plan, st.data())
def test_faster_receipt_never_lowers_a_score(plan: dict, data: st.DataObject) -> None:
    acks = [r for r in responses(plan) if r[2] == "ack"]
    assume(acks)
    ci, di, _ = data.draw(st.sampled_from(acks))
    by = data.draw(st.integers(1, 400))
    before = score(build(plan))
    after = score(build(plan, faster=(ci, di, by)))
    assert after.score >= before.score - EPS
    assert grade_rank(after) <= grade_rank(before)
    for b, a in zip(before.departments, after.departments, strict=True):
        if b.score is not None:
            assert a.score is not None and a.score >= b.score - EPS, b.id


@SETTINGS
@given(drill_plan, st.data())
def test_missing_response_never_raises_a_score(plan: dict, data: st.DataObject) -> None:
    sent = responses(plan)
    assume(sent)
    ci, di, stage = data.draw(st.sampled_from(sent))
    before = score(build(plan))
    after = score(build(plan, drop=(ci, di, stage)))
    assert after.score <= before.score + EPS
    assert grade_rank(after) >= grade_rank(before)
    for b, a in zip(before.departments, after.departments, strict=True):
        if b.score is not None and a.score is not None:
            assert a.score <= b.score + EPS, b.id


@SETTINGS
@given(drill_plan, st.randoms(use_true_random=False))
def test_shuffling_department_order_changes_nothing(plan: dict, rnd: random.Random) -> None:
    order = list(range(plan["n_depts"]))
    rnd.shuffle(order)
    a = score(build(plan)).to_dict()
    b = score(build(plan, order=order)).to_dict()
    for doc in (a, b):
        doc["operation"]["roster"] = sorted(doc["operation"]["roster"], key=lambda d: d["id"])
        doc["departments"] = sorted(doc["departments"], key=lambda d: d["id"])
        doc.pop("log_head")  # the operation.started payload differs, so the hashes do
        doc["operation"].pop("end_hash")
        doc["operation"].pop("end_seq")
        for o in doc["observations"] + doc["checklist"] + doc["injects"] + doc["ratings"]:
            o.pop("seq", None)
            o.pop("superseded_by", None)
            o.pop("reason", None)  # names the superseding seq
        doc["ratings"].sort(key=lambda r: (r["kind"], r["criterion"], r["dept"] or "", r["item"] or ""))
        doc.pop("appendix")  # rows hold seqs; tested on its own
    strip_evidence(a)
    strip_evidence(b)
    assert a == b


def strip_evidence(doc: object) -> None:
    """Seqs shift when events are written in a different order; the numbers must not."""
    if isinstance(doc, dict):
        doc.pop("evidence", None)
        for v in doc.values():
            strip_evidence(v)
    elif isinstance(doc, list):
        for v in doc:
            strip_evidence(v)


def test_plan_builder_is_deterministic() -> None:
    plan = {
        "n_depts": 2,
        "checkins": [5, None, None, None],
        "video": [],
        "ratings": list("PSMUP"),
        "commands": [
            {
                "at": 10,
                "targets": {0, 1},
                "requires": ("receipt",),
                "critical": False,
                "pairs": [{"ack": 5, "on_scene": None, "completed": None, "declined": False}] * 4,
            }
        ],
    }
    a, b = score(build(plan)), score(build(plan))
    assert a.to_json() == b.to_json()
    assert a.to_dict()["departments"][0] == b.to_dict()["departments"][0]
