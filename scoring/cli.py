"""`commandhub score`, `commandhub trend` and `commandhub bench score`: argument parsing and exit codes."""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

EXIT_USAGE = 2  # bad rubric, scenario, arguments or operation: nothing written
EXIT_CHAIN = 3  # the chain does not verify, or the log does not extend a checkpoint: nothing written


class Progress:
    """A progress bar on stderr for long work (plain lines when stderr is not a terminal)."""

    def __init__(self, steps: list[str], stream: TextIO | None = None, quiet: bool = False) -> None:
        self.steps = steps
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()
        self.done = 0

    def step(self, name: str) -> None:
        if self.quiet:
            return
        frac = self.done / max(len(self.steps), 1)
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = time.perf_counter() - self.t0
        line = f"[{bar}] {frac * 100:3.0f}% {name} ({elapsed:.1f}s)"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def finish(self) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.t0
        line = f"[{'#' * 24}] 100% done ({elapsed:.1f}s)"
        self.stream.write(("\r\x1b[K" + line + "\n") if self.tty else line + "\n")
        self.stream.flush()


def _fail(msg: str, code: int) -> int:
    print(f"commandhub: {msg}", file=sys.stderr)
    return code


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rubric", required=True, help="rubric YAML (see docs/rubric.md)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="report language")
    p.add_argument("--utc-offset", default="+08:00", help="local time for the report (+08:00)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that verify the hash chain of big logs (default: CPUs, max 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub: Any) -> None:
    """Add `score` and `trend` to the top-level subcommands."""
    p = sub.add_parser("score", help="score a drill from its event log against a rubric (PDF/JSON)")
    p.add_argument("--log", required=True, help="event log (SQLite)")
    p.add_argument("--operation", help="operation id (default: the latest drill in the log)")
    p.add_argument("--scenario", help="drill scenario YAML or bundled name (for deadline: from_scenario)")
    p.add_argument("--out", help="PDF scorecard to write")
    p.add_argument("--json", dest="json_out", help="scorecard JSON to write")
    p.add_argument(
        "--evaluator",
        action="append",
        default=[],
        help="evaluator's name for the cover and sign-off (repeatable; names in the log are listed too)",
    )
    p.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="a log head handed over out of band: refuse (exit 3) a log that does not extend it",
    )
    p.add_argument(
        "--replay-url",
        metavar="BASE",
        help="link every #seq in the PDF to the replay of that moment: BASE/replay?op=ID&seq=N "
        "(BASE: the hub, or `commandhub replay DIR`, e.g. http://127.0.0.1:8765)",
    )
    p.add_argument(
        "--key",
        metavar="PEM|FINGERPRINT",
        help="the hub's head key (`commandhub log key`): the log's signed heads must be signed by it",
    )
    p.add_argument(
        "--linked",
        nargs="+",
        metavar="TOWN_DB",
        help="town hubs' logs linked to this (city) log: print per-tier latencies (and add "
        "`tiers` to --json); check the links with `commandhub log verify --linked`",
    )
    _common(p)
    p.set_defaults(handler=score_command)

    t = sub.add_parser("trend", help="scores, criteria and departments across many drills (PDF)")
    t.add_argument("--logs", nargs="+", required=True, help="event logs; every drill in each")
    t.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="scenario YAML or bundled name; one applies to every drill, several by the drill's scenario id",
    )
    t.add_argument("--out", required=True, help="trend PDF to write")
    t.add_argument("--json", dest="json_out", help="trend data JSON to write")
    t.add_argument(
        "--csv", dest="csv_out", help="one row per drill and item (overall, criterion, department)"
    )
    _common(t)
    t.set_defaults(handler=trend_command)


def register_bench(bench_sub: Any) -> None:
    """Add `commandhub bench score`."""
    b = bench_sub.add_parser("score", help="score a synthetic 1,000,000-event log; draw a PDF")
    b.add_argument("--json", action="store_true", help="last line: JSON with score_s and pdf_s")
    b.add_argument("--events", type=int, default=1_000_000)
    b.add_argument("--commands", type=int, default=20_000)
    b.add_argument("--pdf-commands", type=int, default=200)
    b.add_argument("--trend-drills", type=int, default=66, help="drills in the trend benchmark (trend_66_s)")
    b.add_argument("--workers", type=int, default=None)
    b.add_argument("--dir", help="keep the synthetic logs here and reuse them")
    b.set_defaults(handler=bench_command)


def scenario_path(name: str) -> Path:
    """A scenario file, or the name of one bundled in drills/scenarios/ (found by path only)."""
    p = Path(name)
    if p.exists() or p.suffix in (".yaml", ".yml"):
        return p
    bundled = Path(__file__).resolve().parent.parent / "drills" / "scenarios" / f"{name}.yaml"
    return bundled if bundled.exists() else p


def _load_inputs(args: argparse.Namespace) -> tuple[Any, list[Any]] | int:
    from hub.yamlsrc import YamlSourceError
    from scoring.rubric import load_rubric
    from scoring.scenario import load_scenario

    names = args.scenario if isinstance(args.scenario, list) else [args.scenario] if args.scenario else []
    try:
        rubric = load_rubric(args.rubric)
        scenarios = [load_scenario(scenario_path(n)) for n in names]
    except YamlSourceError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        return _fail(f"{exc.filename}: {exc.strerror}", EXIT_USAGE)
    return rubric, scenarios


def _check_outputs(*paths: str | None) -> int:
    for p in paths:
        if p and not Path(p).resolve().parent.is_dir():
            return _fail(f"{p}: the folder does not exist", EXIT_USAGE)
    return 0


def _write_text(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def replay_links(base: str, op: str) -> Callable[[int], str]:
    """seq -> the replay deep link of that moment (issue 15), for the PDF's `#seq` marks."""
    from hub.replay.model import replay_link  # standard library and hub.logformat only

    return lambda seq: replay_link(base, op, seq)


def _linked_tiers(args: argparse.Namespace, operation: str) -> dict[str, Any] | int:
    """Per-tier latencies from the city log and its towns' (each town chain verified first),
    or the exit code of a refused town log."""
    from hub.logformat import ChainError, LogFormatError, verify_file
    from scoring.tiers import tier_latencies

    for db in args.linked:
        try:
            verify_file(db)
        except (ChainError, LogFormatError) as exc:
            return _fail(f"{db}: refusing the linked log: {exc}", EXIT_CHAIN)
    return tier_latencies(args.log, args.linked, operation)


def score_command(args: argparse.Namespace) -> int:
    from hub.logformat import ChainError, Head, LogFormatError
    from scoring.drilllog import OperationNotFoundError
    from scoring.engine import ScoringError, score_log
    from scoring.trusthead import TrustError, signed_head_check

    if not args.out and not args.json_out:
        return _fail("nothing to write: give --out report.pdf and/or --json score.json", EXIT_USAGE)
    if code := _check_outputs(args.out, args.json_out):
        return code
    if not re.fullmatch(r"[+-]\d{1,2}(:\d{2})?", args.utc_offset):
        return _fail(f"--utc-offset {args.utc_offset!r}: write e.g. +08:00", EXIT_USAGE)
    try:
        head = Head.parse(args.head) if args.head else None
    except ValueError as exc:
        return _fail(f"--head: {exc}", EXIT_USAGE)
    steps = ["reading the rubric", "verifying the log and scoring"]
    if args.out:
        steps.append("drawing the PDF")
    progress = Progress(steps, quiet=args.quiet)
    progress.step(steps[0])
    loaded = _load_inputs(args)
    if isinstance(loaded, int):
        return loaded
    rubric, scenarios = loaded
    progress.step(steps[1])
    try:
        card, facts = score_log(
            args.log, rubric, scenarios[0] if scenarios else None, args.operation, args.workers, head,
            lambda path: signed_head_check(path, args.key),
        )
    except ChainError as exc:
        return _fail(f"{args.log}: refusing to score: {exc}", EXIT_CHAIN)
    except TrustError as exc:
        return _fail(f"{args.log}: refusing to score: signed head: {exc}", EXIT_CHAIN)
    except (LogFormatError, OperationNotFoundError, ScoringError) as exc:
        return _fail(f"{args.log}: {exc}", EXIT_USAGE)
    tiers = _linked_tiers(args, card.operation["id"]) if args.linked else None
    if isinstance(tiers, int):
        return tiers
    if args.out:
        progress.step(steps[2])
    from scoring.output import write_outputs

    write_outputs(
        card,
        facts,
        rubric,
        pdf_out=args.out,
        json_out=args.json_out,
        lang=args.lang,
        evaluators=args.evaluator,
        utc_offset=args.utc_offset,
        seq_link=replay_links(args.replay_url, facts.op.id) if args.replay_url else None,
        tiers=tiers,
    )
    progress.finish()
    if tiers is not None:
        from scoring.tiers import format_tiers

        print(format_tiers(tiers))
    grade = card.grade_label(card.grade, args.lang)
    checked = "".join(f"  checked against {c['source']} head {c['seq']}" for c in card.checkpoints)
    print(
        f"{card.operation['id']}: {card.score:.2f}/{card.total:g} ({card.percent:.2f}%) {grade}"
        f"  log head {card.log_head[0]}:{card.log_head[1][:12]}  rubric {card.rubric_sha256[:12]}{checked}"
    )
    return 0


def trend_command(args: argparse.Namespace) -> int:
    from hub.logformat import ChainError, LogFormatError
    from scoring.engine import ScoringError
    from scoring.report_text import tz_from
    from scoring.trend import collect, render_trend
    from scoring.trusthead import TrustError

    if code := _check_outputs(args.out, args.json_out, args.csv_out):
        return code
    if not re.fullmatch(r"[+-]\d{1,2}(:\d{2})?", args.utc_offset):
        return _fail(f"--utc-offset {args.utc_offset!r}: write e.g. +08:00", EXIT_USAGE)
    loaded = _load_inputs(args)
    if isinstance(loaded, int):
        return loaded
    rubric, scenarios = loaded
    progress = Progress([f"scoring {p}" for p in args.logs] + ["drawing the PDF"], quiet=args.quiet)
    try:
        data = collect(args.logs, rubric, args.workers, on_log=progress.step, scenarios=scenarios)
    except ChainError as exc:
        return _fail(f"refusing to score: {exc}", EXIT_CHAIN)
    except TrustError as exc:
        return _fail(f"refusing to score: signed head: {exc}", EXIT_CHAIN)
    except (LogFormatError, ScoringError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    progress.step("drawing the PDF")
    from scoring.pdf import write_atomic

    render_trend(data, args.out, args.lang, args.utc_offset)
    for path, text in (
        (args.json_out, data.to_json()),
        (args.csv_out, data.to_csv(tz_from(args.utc_offset))),
    ):
        if path:
            write_atomic(path, functools.partial(_write_text, text=text))
    progress.finish()
    print(f"{len(data.drills)} drills, {len(data.depts)} departments -> {args.out}")
    return 0


def bench_command(args: argparse.Namespace) -> int:
    from scoring.bench import run

    return run(args)
