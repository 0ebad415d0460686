"""`commandhub bench score`: time scoring a 1,000,000-event synthetic log, drawing PDFs (with the
evidence appendix), and a trend report over 66 drills."""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from scoring.synth import random_drill, write_all, year_of_drills


def _log(path: Path, commands: int, events: int, seed: int) -> tuple[Path, float]:
    """Write the synthetic log unless it is already there; return it and the seconds spent."""
    if path.exists():
        return path, 0.0
    t = time.perf_counter()
    tmp = path.with_suffix(".part")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    random_drill(commands, seed=seed, target_events=events).write(tmp)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return path, time.perf_counter() - t


def _year(path: Path, drills: int) -> Path:
    """A log holding `drills` synthetic drills (a year of them), written unless it is there."""
    if not path.exists():
        tmp = path.with_suffix(".part")
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        write_all(tmp, year_of_drills(drills, commands=40))
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)
    return path


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the chain verifiers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(args: argparse.Namespace) -> int:
    from scoring.chaincheck import unavailable_reason
    from scoring.engine import score_drill, score_log
    from scoring.logread import load
    from scoring.pdf import register_font, render
    from scoring.report_model import build_report
    from scoring.rubric import bundled, load_rubric
    from scoring.trend import collect, render_trend

    tmpdir = None
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="commandhub-bench-")
        folder = Path(tmpdir.name)
    try:
        rubric = load_rubric(bundled())
        big, gen_big = _log(folder / f"bench-{args.events}-{args.commands}.db", args.commands, args.events, 7)
        print(
            f"synthetic log: {args.events} events, 16 departments, {args.commands} commands "
            f"({f'written in {gen_big:.1f}s' if gen_big else 'reused'})",
            flush=True,
        )
        cpu0 = _cpu()
        t0 = time.perf_counter()
        log, head = load(big, None, args.workers)
        t_load = time.perf_counter() - t0
        card, facts = score_drill(log, rubric, head)
        score_s = time.perf_counter() - t0
        cpu_all = _cpu() - cpu0
        t1 = time.perf_counter()
        text = card.to_json()
        json_s = time.perf_counter() - t1
        why_not_c = unavailable_reason()
        checker = "C (scoring/chaincheck.c)" if why_not_c is None else f"Python ({why_not_c})"
        print(
            f"score: {score_s:.3f}s, chain checked in {checker} (verify+extract {t_load:.3f}s, engine "
            f"{score_s - t_load:.3f}s; CPU {cpu_all:.3f}s in all processes; "
            f"load average {os.getloadavg()[0]:.1f}); "
            f"{head.seq} events, {card.operation['pairs']} command-department pairs; "
            f"scorecard JSON {len(text) / 1e6:.1f} MB in {json_s:.3f}s",
            flush=True,
        )

        small, _ = _log(folder / f"bench-pdf-{args.pdf_commands}.db", args.pdf_commands, 0, 3)
        card2, facts2 = score_log(str(small), rubric)
        out = folder / "bench-report.pdf"
        t2 = time.perf_counter()
        register_font()  # counted: a fresh process loads the CJK font once
        font_s = time.perf_counter() - t2
        model = build_report(card2, facts2, rubric, "zh")
        pages = render(model, out)
        pdf_s = time.perf_counter() - t2
        print(
            f"pdf: {pdf_s:.3f}s for 16 departments, {args.pdf_commands} commands, font load "
            f"{font_s:.3f}s included ({out.stat().st_size / 1e3:.0f} kB, {pages} pages with the appendix)",
            flush=True,
        )
        big_out = folder / "bench-report-big.pdf"
        t3 = time.perf_counter()
        big_pages = render(build_report(card, facts, rubric, "zh"), big_out)
        pdf_big_s = time.perf_counter() - t3
        print(
            f"pdf of the big drill: {pdf_big_s:.3f}s, {big_pages} pages for {card.operation['pairs']} "
            "command-department pairs (the appendix prints a capped share; score.json has them all)",
            flush=True,
        )
        year = _year(folder / f"bench-trend-{args.trend_drills}.db", args.trend_drills)
        t4 = time.perf_counter()
        data = collect([str(year)], rubric, args.workers)
        trend_pages = render_trend(data, folder / "bench-trend.pdf", "zh")
        trend_s = time.perf_counter() - t4
        print(f"trend: {trend_s:.3f}s for {len(data.drills)} drills ({trend_pages} pages)", flush=True)
        ok = score_s <= 3.0 and pdf_s <= 2.0
        print(
            f"targets: score <= 3 s {'met' if score_s <= 3.0 else 'MISSED'}, "
            f"pdf <= 2 s {'met' if pdf_s <= 2.0 else 'MISSED'}",
            flush=True,
        )
        if args.json:
            print(
                json.dumps(
                    {
                        "score_s": round(score_s, 3),
                        "chain_checker": "c" if why_not_c is None else "python",
                        "pdf_s": round(pdf_s, 3),
                        "verify_extract_s": round(t_load, 3),
                        "engine_s": round(score_s - t_load, 3),
                        "score_cpu_s": round(cpu_all, 3),
                        "load_average": round(os.getloadavg()[0], 2),
                        "events": head.seq,
                        "commands": args.commands,
                        "pdf_commands": args.pdf_commands,
                        "pdf_pages": pages,
                        "json_s": round(json_s, 3),
                        "json_mb": round(len(text) / 1e6, 1),
                        "pdf_big_s": round(pdf_big_s, 3),
                        "pdf_big_pages": big_pages,
                        f"trend_{args.trend_drills}_s": round(trend_s, 3),
                        "trend_pages": trend_pages,
                        "targets_met": ok,
                    }
                )
            )
        return 0
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
