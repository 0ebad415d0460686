"""`commandhub drill run`, `commandhub rollcall` and `commandhub demo`: arguments and exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2  # bad scenario, profile or arguments
EXIT_FAILED = 1  # the drill or the roll call could not run


def _speed(value: str) -> float:
    try:
        x = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("a number, e.g. 10") from exc
    if not 0 < x <= 1000:
        raise argparse.ArgumentTypeError("between 0 and 1000")
    return x


def register(sub: Any) -> None:
    d = sub.add_parser("drill", help="run a drill scenario (with simulated departments)")
    dsub = d.add_subparsers(dest="drill_cmd", metavar="ACTION", required=True)
    r = dsub.add_parser("run", help="run a scenario: release injects on time, bots answer")
    r.add_argument("scenario", help="scenario YAML, or a bundled name (extreme-weather, "
                                    "hazmat-vehicle, rollcall)")
    r.add_argument("--bots", type=int, default=16, help="simulated departments (0..16)")
    r.add_argument("--profile", default="default", help="behaviour profile YAML or bundled name")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--speed", type=_speed, default=1.0, help="time compression (10: ten times faster)")
    r.add_argument("--auto", action="store_true",
                   help="unattended: the runner issues the scripted commands, level changes and "
                        "chases itself (default: injects are released to the commander console "
                        "as prompts and the commander issues the commands)")
    r.add_argument("--data", default="commandhub-drill-data", help="the hub's data folder")
    r.add_argument("--hub-process", action="store_true",
                   help="run the hub in its own process and report its CPU time")
    r.add_argument("--operation-id", help="operation id (default: scenario id and time)")
    r.set_defaults(handler=cmd_drill_run)

    rc = sub.add_parser("rollcall", help="点名: every department online, video and audio, command "
                                         "round trip; table + PDF")
    rc.add_argument("--url", help="a running hub (default: start one with --bots simulated departments)")
    rc.add_argument("--token", help="commander token for --url")
    rc.add_argument("--bots", type=int, default=16, help="without --url: simulated departments")
    rc.add_argument("--out", help="folder for rollcall.json/.txt/.pdf (default: a new one here)")
    rc.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for answers")
    rc.set_defaults(handler=cmd_rollcall)

    dm = sub.add_parser("demo", help="the whole thing in about a minute: hub, 16 simulated "
                                     "departments, a compressed drill, a scored PDF")
    dm.add_argument("--out", help="output folder (default: a new folder here)")
    dm.add_argument("--speed", type=_speed, default=60.0)
    dm.add_argument("--seed", type=int, default=7)
    dm.add_argument("--bots", type=int, default=16)
    dm.add_argument("--lang", choices=("zh", "en"), default="zh")
    dm.set_defaults(handler=cmd_demo)


def _fail(msg: str, code: int) -> int:
    print(f"commandhub: {msg}", file=sys.stderr)
    return code


def cmd_drill_run(args: argparse.Namespace) -> int:
    import asyncio

    from drills.bot import BotError
    from drills.drill import DrillConfig, DrillError, run_drill
    from drills.profile import ProfileError, load_profile
    from drills.profile import resolve_path as profile_path
    from drills.runner import RunnerError
    from drills.scenario import ScenarioError, load_scenario, resolve_path
    from hub.roster import load_roster

    roster = load_roster()
    try:
        scenario = load_scenario(resolve_path(args.scenario),
                                 set(roster.ids) | set(roster.groups) | {"all"})
        profile = load_profile(profile_path(args.profile), set(roster.ids))
    except (ScenarioError, ProfileError, FileNotFoundError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    if not 0 <= args.bots <= len(roster.departments):
        return _fail(f"--bots: 0 to {len(roster.departments)}", EXIT_USAGE)
    cfg = DrillConfig(scenario=scenario, profile=profile, data=Path(args.data), bots=args.bots,
                      seed=args.seed, speed=args.speed, auto=args.auto,
                      hub_process=args.hub_process, operation_id=args.operation_id,
                      roster=roster, say=lambda m: print(m, flush=True),
                      on_ready=lambda url: print(f"commander console: {url}", flush=True))
    if not args.auto:
        print("prompt mode: injects appear in the commander console; issue the commands there "
              "(or run with --auto)", flush=True)
    try:
        out = asyncio.run(run_drill(cfg))
    except (DrillError, RunnerError, BotError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    r = out.result
    print(f"operation {r.operation}: {sum(x.released for x in r.releases)}/{len(r.releases)} "
          f"injects released, commands {r.command_map} (scenario id -> hub id)")
    if out.hub_cpu_s is not None:
        print(f"hub CPU {out.hub_cpu_s:.2f} s in {out.drill_real_s:.1f} s "
              f"({100 * out.hub_cpu_s / max(out.drill_real_s, 1e-9):.1f}% of one core)")
    print(f"log: {out.log_path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from drills.demo import DemoOptions, main_sync

    return main_sync(DemoOptions(out=Path(args.out) if args.out else None, speed=args.speed,
                                 seed=args.seed, bots=args.bots, lang=args.lang))


def cmd_rollcall(args: argparse.Namespace) -> int:
    from drills.rollcall import RollCallError, main_sync

    if args.url and not args.token:
        return _fail("--url needs --token (a commander token)", EXIT_USAGE)
    try:
        return main_sync(args)
    except RollCallError as exc:
        return _fail(str(exc), EXIT_FAILED)
