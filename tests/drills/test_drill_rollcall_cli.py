"""Roll call against a hub with a few simulated departments (and one missing); profiles; the CLI tree."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from drills.bot import Bot
from drills.drill import DrillHub, join_bots
from drills.profile import (
    Behaviour,
    Latency,
    ProfileError,
    bundled,
    load_profile,
    load_profile_text,
    plan_command,
    plan_episodes,
)
from drills.rollcall import roll_call, save
from hub.cli import build_parser
from hub.logformat import read_events
from hub.roster import load_roster

ROSTER = load_roster()


async def test_rollcall_finds_the_absent_and_the_silent(tmp_path: Path) -> None:
    hub = DrillHub(tmp_path / "data", separate=False)
    await hub.start(ROSTER)
    quick = Behaviour(receipt=Latency("fixed", 0.2), fps=5.0, audio=True)
    depts = ROSTER.departments[:3]
    bots = [Bot(url=hub.url, token=hub.token("department", d.id), dept=d, index=i, seed=1, speed=1.0,
                behaviour=replace(quick, miss=1.0) if d.id == "floodctrl" else quick)
            for i, d in enumerate(depts)]
    try:
        assert await join_bots(bots, print) == 3
        report = await roll_call(hub.url, hub.token("commander"), ROSTER, timeout_s=4.0, say=print)
    finally:
        await asyncio.gather(*(b.close() for b in bots))
        await hub.stop()
    rows = {r.dept: r for r in report.rows}
    assert rows["emergency"].ready and rows["police"].ready
    assert rows["emergency"].video and rows["emergency"].audio and rows["emergency"].command
    assert rows["emergency"].command_s is not None and rows["emergency"].command_s < 3
    assert rows["floodctrl"].online and rows["floodctrl"].video and not rows["floodctrl"].command
    assert not rows["fire"].online and not rows["fire"].video and not rows["fire"].ready
    assert report.ready_count == 2
    paths = save(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["ready"] == 2
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    assert "emergency" in paths["txt"].read_text()
    # the roll-call command was logged, and cancelled for those that never answered
    events = read_events(tmp_path / "data" / "events.db")
    cancelled = [e.payload for e in events if e.kind == "command.cancelled"]
    assert len(cancelled) == 1 and "fire" in cancelled[0]["departments"]


def test_plans_are_seeded_by_command_not_arrival() -> None:
    b = load_profile(bundled("default")).for_dept("fire")
    first = [plan_command(b, 5, 4, c) for c in ("C1", "C2", "C3")]
    random.seed(time.time())  # global state does not matter
    again = [plan_command(b, 5, 4, c) for c in ("C3", "C1", "C2")]
    assert first == [again[1], again[2], again[0]]
    assert plan_command(b, 6, 4, "C1") != first[0]  # another seed, another drill
    water = load_profile(bundled("default")).for_dept("water")
    assert plan_command(water, 5, 10, "C2").outcome == "miss"
    assert plan_episodes(b, 5, 4) == plan_episodes(b, 5, 4)


def test_lognormal_latency_has_its_median_and_p90() -> None:
    lat = Latency("lognormal", 20.0, 40.0)
    rng = random.Random(1)
    xs = sorted(lat.sample(rng) for _ in range(20000))
    assert abs(xs[10000] - 20) < 1.0 and abs(xs[18000] - 40) < 2.0


@pytest.mark.parametrize(("text", "why"), [
    ("id: p\nreceipt: {uniform: [30s, 10s]}\n", "p.yaml:2:26: receipt.uniform[1]: must not be below"),
    ("id: p\nmiss: 2\n", "p.yaml:2:1: miss: a probability"),
    ("id: p\ndepartments: {firemen: {miss: 0.1}}\n", "departments.firemen: no department"),
    ("id: p\nreceipt: {lognormal: {median: 30s, p90: 10s}}\n", "need 0 < median < p90"),
    ("id: p\nfps: 60\n", "fps: frames per second"),
    ("id: p\nspeed: 3\n", "speed: unknown key"),
])
def test_bad_profiles_name_the_place(text: str, why: str) -> None:
    with pytest.raises(ProfileError, match=None) as info:
        load_profile_text(text, "p.yaml", set(ROSTER.ids))
    assert why in str(info.value), str(info.value)


def test_bundled_profiles_load() -> None:
    for name in ("default", "test"):
        p = load_profile(bundled(name), set(ROSTER.ids))
        assert p.id == name
    assert load_profile(bundled("test")).for_dept("power").decline_commands == {"C5"}


def test_cli_registers_drill_rollcall_demo() -> None:
    parser = build_parser()
    args = parser.parse_args(["drill", "run", "extreme-weather", "--bots", "16", "--seed", "3",
                              "--speed", "10", "--profile", "test"])
    assert args.handler.__name__ == "cmd_drill_run" and args.speed == 10.0 and not args.auto
    assert parser.parse_args(["drill", "run", "rollcall", "--auto"]).auto
    assert parser.parse_args(["rollcall", "--bots", "4"]).handler.__name__ == "cmd_rollcall"
    assert parser.parse_args(["demo", "--out", "x"]).handler.__name__ == "cmd_demo"
    with pytest.raises(SystemExit):
        parser.parse_args(["drill", "run", "x", "--speed", "0"])


def test_cli_drill_run_rejects_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: y\nlevel: I\ninjects: []\n", encoding="utf-8")
    parser = build_parser()
    args = parser.parse_args(["drill", "run", str(bad), "--data", str(tmp_path / "d")])
    assert args.handler(args) == 2
    assert "bad.yaml:4:1: injects: required" in capsys.readouterr().err


async def test_demo_writes_report_log_and_score(tmp_path: Path) -> None:
    """The demo's plumbing at 600x with 4 departments (the figures are the 16-bot test's job)."""
    from drills.demo import DemoError, DemoOptions, run_demo
    from hub.logformat import verify_file

    lines: list[str] = []
    result = await run_demo(DemoOptions(out=tmp_path / "demo", speed=600.0, bots=4), lines.append)
    assert result.report_pdf.read_bytes()[:5] == b"%PDF-"
    head = verify_file(result.events_db)
    # the copy keeps the hub's signed heads: `log verify` checks them, not only the chain
    verified = subprocess.run([sys.executable, "-m", "hub", "log", "verify", str(result.events_db)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "no signed heads" not in verified.stdout + verified.stderr, verified.stdout
    card = json.loads(result.score_json.read_text(encoding="utf-8"))
    assert card["log_head"]["seq"] <= head.seq and card["operation"]["speed"] == 600.0
    text = "\n".join(lines)
    assert "/commander?token=" in text and str(result.report_pdf) in text
    assert str(result.events_db) in text and str(result.score_json) in text
    with pytest.raises(DemoError, match="not empty"):
        await run_demo(DemoOptions(out=tmp_path / "demo", speed=600.0, bots=1), lines.append)
