"""Scenario model: bundled scenarios load, bad files are named by file:line:col and key."""

from __future__ import annotations

import textwrap

import pytest

from drills.scenario import (
    ScenarioError,
    bundled,
    bundled_names,
    load_scenario,
    load_scenario_text,
    resolve_path,
)
from hub.roster import load_roster
from scoring.scenario import load_scenario as scoring_view

ROSTER = load_roster()
TARGETS = set(ROSTER.ids) | set(ROSTER.groups) | {"all"}

GOOD = """\
id: t
title: Test
level: III
levels:
  II: {receipt: 60s, on_scene: 15m}
injects:
  - {id: E1, at: 0s, type: event, title: start}
  - id: C1
    at: 1m
    type: command
    command: {targets: [fire], text: go, requires: [on_scene], deadlines: {receipt: 30s}}
  - {id: S1, at: 2m, type: escalation, level: II, title: up}
  - {id: K1, at: 3m, type: contingency, title: chase, expect: {command: C1}, escalate: true}
"""


def test_bundled_scenarios_load_against_the_roster() -> None:
    assert {"extreme-weather", "hazmat-vehicle", "rollcall"} <= set(bundled_names())
    for name in bundled_names():
        s = load_scenario(bundled(name), TARGETS)
        assert s.id == name and s.injects and s.end >= s.injects[-1].at
        assert [i.at for i in s.injects] == sorted(i.at for i in s.injects)
        # the scoring side reads the same file: same ids, same planned times and level tables
        view = scoring_view(bundled(name))
        assert {i.id: i.at for i in s.injects} == {i: at for i, _, at in view.injects}
        for lvl, stages in s.levels.items():
            assert dict(view.levels[lvl]) == dict(stages)


def test_weather_scenario_shape() -> None:
    s = load_scenario(resolve_path("extreme-weather"), TARGETS)
    kinds = {i.type for i in s.injects}
    assert kinds == {"event", "command", "escalation", "contingency"}
    c2 = s.command("C2")
    assert c2.critical and c2.requires == ("receipt", "on_scene", "completed")
    assert s.deadlines(c2, "II") == {"receipt": 60.0, "on_scene": 900.0, "completed": 2100.0}
    assert s.deadlines(s.command("C7"), "III")["completed"] == 900.0  # the command's own


def test_minimal_scenario_parses() -> None:
    s = load_scenario_text(GOOD, "t.yaml", TARGETS)
    c1 = s.command("C1")
    assert c1.requires == ("receipt", "on_scene")  # receipt is always required
    assert s.deadlines(c1, "II") == {"receipt": 30.0, "on_scene": 900.0}
    assert s.deadlines(c1, "IV") == {"receipt": 30.0, "on_scene": 3600.0}  # hub default
    k1 = s.injects[-1]
    assert k1.expect is not None and k1.expect.stage == "receipt" and k1.escalate
    assert s.end == 180 + 300


@pytest.mark.parametrize(("old", "new", "where", "why"), [
    ("level: III", "level: V", "t.yaml:3:1: level", "one of I, II, III, IV"),
    ("at: 1m", "at: soon", "t.yaml:9:5: injects[1].at", "bad duration"),
    ("targets: [fire]", "targets: [firemen]", "t.yaml:11:25: injects[1].command.targets[0]",
     "no department or group"),
    ("deadlines: {receipt: 30s}", "deadlines: {completed: 30s}",
     "t.yaml:11:76: injects[1].command.deadlines.completed", "not a required stage"),
    ("expect: {command: C1}", "expect: {command: C9}", "injects[3].expect.command",
     "no command C9"),
    ("type: escalation, level: II", "type: escalation, level: 2", "injects[2].level", "one of"),
    ("id: E1,", "id: C1,", "injects[1].id", "duplicate inject id"),
    ("title: start", "title: start, colour: red", "injects[0].colour", "unknown key"),
    ("  II: {receipt: 60s", "  II: {receipt: 0s", "levels.II.receipt", "more than 0"),
    ("escalate: true", "escalate: false", "injects[3]", "needs escalate"),
    ("at: 3m", "at: 30s", "injects[3].at", "must come after command C1"),
])
def test_bad_scenarios_name_the_place(old: str, new: str, where: str, why: str) -> None:
    assert old in GOOD
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(GOOD.replace(old, new, 1), "t.yaml", TARGETS)
    msg = str(info.value)
    assert where in msg and why in msg, msg
    assert msg.startswith("t.yaml:")


def test_syntax_error_and_laggards_outside_contingency() -> None:
    with pytest.raises(ScenarioError, match=r"^t.yaml:\d+:\d+: YAML syntax"):
        load_scenario_text("id: [", "t.yaml")
    bad = textwrap.dedent("""\
        id: t
        title: T
        level: I
        injects:
          - {id: C1, at: 0s, type: command, command: {targets: [laggards], text: x}}
        """)
    with pytest.raises(ScenarioError, match="only in a contingency"):
        load_scenario_text(bad, "t.yaml")


def test_missing_file_is_a_scenario_error(tmp_path: object) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/x.yaml")
    with pytest.raises(FileNotFoundError, match="no bundled scenario"):
        bundled("nope")
