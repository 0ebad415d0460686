"""`commandhub demo`: hub, 16 simulated departments, the weather drill compressed, scored, PDF out."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drills.drill import DrillConfig, DrillOutcome, run_drill
from drills.profile import bundled as bundled_profile
from drills.profile import load_profile
from drills.scenario import bundled, load_scenario
from hub.checkpoint import heads_path

DEMO_SCENARIO = "extreme-weather"
DEMO_PROFILE = "default"


class DemoError(Exception):
    """The demo could not run (output folder, drill or scoring failure)."""


@dataclass
class DemoOptions:
    out: Path | None = None
    speed: float = 60.0
    seed: int = 7
    bots: int = 16
    scenario: str = DEMO_SCENARIO
    profile: str = DEMO_PROFILE
    lang: str = "zh"


@dataclass
class DemoResult:
    out: Path
    report_pdf: Path
    events_db: Path
    score_json: Path
    score: float
    grade: str
    outcome: DrillOutcome


def default_out(now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path.cwd() / f"commandhub-demo-{stamp}"


def copy_log(src: Path, dst: Path) -> None:
    """A consistent copy of a (stopped) hub's SQLite log, WAL folded in, with its signed
    heads (the sidecar `log verify` and `score` check the copy against)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
    finally:
        source.close()
    heads = heads_path(src)
    if heads.exists():
        shutil.copyfile(heads, heads_path(dst))


async def run_demo(opts: DemoOptions, say: Callable[[str], None] = print) -> DemoResult:
    out = opts.out or default_out()
    if out.exists() and any(out.iterdir()):
        raise DemoError(f"{out}: the folder is not empty; give --out a new folder")
    out.mkdir(parents=True, exist_ok=True)
    scenario_path = bundled(opts.scenario) if not opts.scenario.endswith((".yaml", ".yml")) \
        else Path(opts.scenario)
    scenario = load_scenario(scenario_path)
    profile = load_profile(bundled_profile(opts.profile))
    real_s = scenario.end / opts.speed
    say(f"CommandHub demo: {scenario.title} ({scenario.end / 60:g} drill minutes at {opts.speed:g}x "
        f"= about {real_s:.0f} s), {opts.bots} simulated departments, output in {out}")

    def ready(console: str) -> None:
        say("")
        say("Watch it live: open the commander console (token included):")
        say(f"  {console}")
        say("")

    cfg = DrillConfig(scenario=scenario, profile=profile, data=out / "hub-data", bots=opts.bots,
                      seed=opts.seed, speed=opts.speed, hub_process=True, say=say,
                      on_ready=ready, status_every_s=300.0)
    outcome = await run_drill(cfg)
    events_db = out / "events.db"
    copy_log(outcome.log_path, events_db)
    say(f"drill done in {outcome.drill_real_s:.1f} s; "
        + (f"hub CPU {outcome.hub_cpu_s:.1f} s ({100 * outcome.hub_cpu_s / outcome.drill_real_s:.0f}% "
           "of one core)" if outcome.hub_cpu_s is not None else "")
        + "; scoring ...")
    score_json, report_pdf = out / "score.json", out / "report.pdf"
    score, grade = score_drill(events_db, scenario_path, outcome.result.operation, score_json,
                               report_pdf, opts.lang)
    (out / "drill.json").write_text(json.dumps({
        "operation": outcome.result.operation, "scenario": scenario.id, "speed": opts.speed,
        "seed": opts.seed, "profile": profile.id, "command_map": outcome.result.command_map,
        "releases": [r.__dict__ for r in outcome.result.releases],
        "drill_real_s": round(outcome.drill_real_s, 3), "hub_cpu_s": outcome.hub_cpu_s,
    }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    say(f"score {score:.2f} ({grade})")  # as score.json and the PDF print it
    say(f"  report: {report_pdf}")
    say(f"  log:    {events_db}   (verify: commandhub log verify {events_db})")
    say(f"  score:  {score_json}")
    return DemoResult(out, report_pdf, events_db, score_json, score, grade, outcome)


def score_drill(log: Path, scenario: Path, operation: str, json_out: Path, pdf_out: Path,
                lang: str = "zh") -> tuple[float, str]:
    """Score with the bundled rubric through scoring's public API; write JSON and PDF."""
    from scoring.engine import score_log
    from scoring.output import write_outputs
    from scoring.rubric import bundled as bundled_rubric
    from scoring.rubric import load_rubric
    from scoring.scenario import load_scenario as scenario_view

    rubric = load_rubric(bundled_rubric())
    card, facts = score_log(str(log), rubric, scenario_view(scenario), operation)
    write_outputs(card, facts, rubric, pdf_out=pdf_out, json_out=json_out, lang=lang)
    return float(card.score), card.grade_label(card.grade, lang)


def main_sync(opts: DemoOptions) -> int:
    import asyncio

    try:
        asyncio.run(run_demo(opts, say=lambda m: print(m, flush=True)))
    except DemoError as exc:
        print(f"commandhub: {exc}", file=sys.stderr)
        return 2
    return 0
