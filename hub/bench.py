"""Benchmarks of the log and the command path; figures printed, never asserted."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.clock import SystemClock
from hub.eventlog import Actor, EventLog


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    idx = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[idx]


async def bench_log(args: argparse.Namespace) -> dict[str, Any]:
    """N concurrent writers append small events with synchronous=FULL; group commit batches them."""
    with tempfile.TemporaryDirectory() as tmp:
        log = EventLog(Path(tmp) / "events.db", SystemClock(), synchronous=args.synchronous)
        log.open()
        log.commit_latencies_ns = []
        per_writer = max(1, args.events // args.writers)
        actor = Actor("department", "fire")

        async def writer(k: int) -> None:
            for i in range(per_writer):
                await log.append("command.acknowledged",
                                 {"command_id": f"C{i}", "dept": "fire",
                                  "client_msg_id": f"w{k}-{i}", "client_ts_us": None},
                                 actor=actor, op="drill-bench", op_kind="drill")

        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(writer(k) for k in range(args.writers)))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        n = per_writer * args.writers
        lat = [x / 1e6 for x in log.commit_latencies_ns]
        batches = log.batches
        await log.close()
        from hub.logformat import verify_file

        head = verify_file(Path(tmp) / "events.db")
    result = {
        "events": n, "writers": args.writers, "synchronous": args.synchronous,
        "events_per_s": round(n / wall, 1), "commit_p50_ms": round(percentile(lat, 50), 3),
        "commit_p99_ms": round(percentile(lat, 99), 3), "batches": batches,
        "mean_batch": round(n / max(batches, 1), 1), "cpu_pct": round(100 * cpu / wall, 1),
        "verified_head_seq": head.seq,
    }
    print(f"log: {n} durable appends (synchronous={args.synchronous}) by {args.writers} "
          f"writers in {wall:.2f} s = {result['events_per_s']:.0f} events/s; commit latency "
          f"p50 {result['commit_p50_ms']} ms, p99 {result['commit_p99_ms']} ms; "
          f"{batches} transactions (mean {result['mean_batch']} events each)")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, timeout: float = 20.0, ssl_context: Any = None) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/healthz", ssl=ssl_context or True) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"hub at {url} did not come up within {timeout} s")


def start_hub_process(data: Path, port: int, *extra: str,
                      env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run `commandhub serve` in its own process (so its CPU is measured apart); `env`: extra
    environment variables (e.g. a crash test's fault point).

    Its stderr goes to DATA/hub.log (a pipe nobody drains would stall a chatty hub).
    """
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "hub.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--data", str(data), "--host", "127.0.0.1",
             "--port", str(port), *extra],
            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})},
        )


def hub_log_tail(data: Path, size: int = 2000) -> str:
    """The end of a hub process's DATA/hub.log, for error messages."""
    try:
        return (data / "hub.log").read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return ""


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def bench_commands(args: argparse.Namespace) -> dict[str, Any]:
    """Department clients answer receipts; a commander issues commands to all at a fixed rate.

    The round trip is measured at the hub from the log: `command.issued` to each department's
    `command.acknowledged` (hub monotonic clock), so it includes the durable commit of the
    command, its delivery, the department's answer and the hub's handling of it.

    `--flood`: the first department, in its own process, sends `--flood-rate` messages a
    second for `--flood-seconds` while the others keep answering; the others' p99 is printed
    for the quiet phase (`--seconds`) and the flood, and their ratio.

    `--video-feeds N`: then N WHIP publishers (hub/bench_feeds.py, its own process; the roster
    gains camera departments beyond the 16) send video into the served hub (health, recording,
    wall on) while the same departments answer for another `--seconds`; the p99 with video and
    its ratio to the quiet phase are printed.
    """
    from hub.auth import TokenAuthority, load_secret
    from hub.client import HubClient
    from hub.logformat import read_events, verify_file
    from hub.roster import load_roster

    roster = load_roster()
    depts = roster.ids[: args.departments]
    feeds = args.video_feeds
    feed_depts = [*roster.ids, *(f"cam{i:02d}" for i in range(len(roster.ids) + 1, feeds + 1))][:feeds]
    flooder = depts[0] if args.flood else None
    answering = depts[1:] if args.flood else depts
    flood_report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        port = free_port()
        extra: list[str] = ["--ice-host", "127.0.0.1"] if feeds else []
        if feeds > len(roster.ids):
            extra += ["--roster", str(_camera_roster(data / "roster.yaml", feed_depts))]
        proc = start_hub_process(data, port, *extra)
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_http(url)
            auth = TokenAuthority(load_secret(data))
            now = int(time.time())
            # a loaded machine is slow, not broken: wait long rather than give up
            commander = HubClient(url, auth.issue("commander", now=now), request_timeout=60)
            await commander.connect()
            clients = []
            for d in answering:
                c = HubClient(url, auth.issue("department", now=now, dept=d), request_timeout=60)
                c.answer_commands("receipt")
                await c.connect()
                clients.append(c)
            await commander.request("operation.start", title="bench", kind="drill", level="IV")
            # The load generator's own garbage collector must not stall the departments'
            # answers (a pause here would be counted as hub latency): park what exists now.
            gc.collect()
            gc.freeze()
            cpu0 = proc_cpu_s(proc.pid)
            t0 = time.perf_counter()
            n_cmds = await _issue_at_rate(commander, answering, args.rate, args.seconds, "quiet")
            # the hub's CPU per second of each phase: a figure a loaded machine disturbs less
            # than latency does
            phase_cpu = {"quiet": (proc_cpu_s(proc.pid) - cpu0) / (time.perf_counter() - t0)}
            if flooder is not None:
                flood = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "hub.bench_flood", url,
                    auth.issue("department", now=now, dept=flooder), str(args.flood_rate),
                    str(args.flood_seconds), args.flood_type, stdout=asyncio.subprocess.PIPE)
                await asyncio.sleep(0.3)  # the flooder connects and starts
                cpu1, t1 = proc_cpu_s(proc.pid), time.perf_counter()
                n_cmds += await _issue_at_rate(commander, answering, args.rate,
                                               max(0.5, args.flood_seconds - 0.5), "flood")
                phase_cpu["flood"] = (proc_cpu_s(proc.pid) - cpu1) / (time.perf_counter() - t1)
                out, _ = await asyncio.wait_for(flood.communicate(), args.flood_seconds + 60)
                flood_report = json.loads(out.decode().strip().splitlines()[-1])
            if feeds:
                n_cmds += await _with_video(url, auth, now, feed_depts, data, args, commander,
                                            answering, proc.pid, phase_cpu)
            expected = n_cmds * len(answering)
            # wait (bounded) until every receipt is in
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st = await commander.rest("GET", "/api/state")
                if not st["commands"]:
                    break
                await asyncio.sleep(0.2)
            wall = time.perf_counter() - t0
            cpu = proc_cpu_s(proc.pid) - cpu0
            for c in [commander, *clients]:
                await c.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        verify_file(data / "events.db")
        events = read_events(data / "events.db")
    issued = {e.payload["command_id"]: (e.mono_ns, e.payload["text"].split()[0])
              for e in events if e.kind == "command.issued"}
    rtts: dict[str, list[float]] = {"quiet": [], "flood": [], "video": []}
    for e in events:
        if e.kind == "command.acknowledged":
            t_issue, phase = issued[e.payload["command_id"]]
            rtts[phase].append((e.mono_ns - t_issue) / 1e6)
    every = rtts["quiet"] + rtts["flood"] + rtts["video"]
    result: dict[str, Any] = {
        "departments": len(depts), "commands": n_cmds, "rate_per_s": args.rate,
        "receipts": len(every), "receipts_expected": expected,
        "rtt_p50_ms": round(percentile(every, 50), 3), "rtt_p99_ms": round(percentile(every, 99), 3),
        "rtt_max_ms": round(max(every), 3) if every else None,
        "hub_cpu_pct": round(100 * cpu / wall, 1),
        "bench_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine_load_1m": round(os.getloadavg()[0], 2),
    }
    print(f"commands: {n_cmds} commands to {len(answering)} departments at {args.rate}/s; "
          f"{len(every)}/{expected} receipts; command->receipt at the hub p50 "
          f"{result['rtt_p50_ms']} ms, p99 {result['rtt_p99_ms']} ms, max {result['rtt_max_ms']} "
          f"ms; hub CPU {result['hub_cpu_pct']}% of one core; load average "
          f"{result['machine_load_1m']}")
    if feeds:
        quiet, video = percentile(rtts["quiet"], 99), percentile(rtts["video"], 99)
        result |= {"video_feeds": feeds, "rtt_p99_ms_quiet": round(quiet, 3),
                   "rtt_p99_ms_video": round(video, 3),
                   "rtt_p50_ms_video": round(percentile(rtts["video"], 50), 3),
                   "rtt_p99_ratio_video": round(video / quiet, 3) if quiet else None,
                   "receipts_video": len(rtts["video"]),
                   "hub_cpu_pct_quiet": round(100 * phase_cpu["quiet"], 1),
                   "hub_cpu_pct_video": round(100 * phase_cpu["video"], 1)}
        print(f"video: {feeds} feeds flowing; command->receipt p99 without video "
              f"{result['rtt_p99_ms_quiet']} ms, with video {result['rtt_p99_ms_video']} ms, "
              f"ratio {result['rtt_p99_ratio_video']} (target <= 2); hub CPU "
              f"{result['hub_cpu_pct_quiet']}% without, {result['hub_cpu_pct_video']}% with "
              f"video, of one core")
    if flooder is not None:
        quiet, flooded = percentile(rtts["quiet"], 99), percentile(rtts["flood"], 99)
        result |= {"flood_dept": flooder, "flood_type": args.flood_type,
                   "rtt_p99_ms_quiet": round(quiet, 3), "rtt_p99_ms_flood": round(flooded, 3),
                   "rtt_p99_ratio": round(flooded / quiet, 3) if quiet else None,
                   "receipts_quiet": len(rtts["quiet"]), "receipts_flood": len(rtts["flood"]),
                   "hub_cpu_pct_quiet": round(100 * phase_cpu["quiet"], 1),
                   "hub_cpu_pct_flood": round(100 * phase_cpu["flood"], 1),
                   "flood": flood_report}
        print(f"flood: {flooder} tried {flood_report.get('tried')} {args.flood_type} messages "
              f"in {args.flood_seconds} s ({args.flood_rate:g}/s), sent "
              f"{flood_report.get('sent')} ({flood_report.get('sent_per_s')}/s) over "
              f"{flood_report.get('connections')} connections (the hub closes a flooding "
              f"session; it reconnects), acked {flood_report.get('acks')}, rate_limited "
              f"{flood_report.get('rate_limited')}; the others' p99 quiet "
              f"{result['rtt_p99_ms_quiet']} ms, during the flood {result['rtt_p99_ms_flood']} "
              f"ms, ratio {result['rtt_p99_ratio']} (goal <= 1.2); hub CPU quiet "
              f"{result['hub_cpu_pct_quiet']}%, during the flood {result['hub_cpu_pct_flood']}% "
              f"of one core")
    return result


def _camera_roster(path: Path, depts: list[str]) -> Path:
    """The bundled roster plus camera departments (cam17, ...) up to `depts`."""
    from importlib import resources

    import yaml

    doc = yaml.safe_load(resources.files("hub").joinpath("roster.yaml").read_text(encoding="utf-8"))
    known = {d["id"] for d in doc["departments"]}
    doc["departments"] += [{"id": d, "name_zh": f"摄像头{d[3:]}", "name_en": f"Camera {d[3:]}",
                            "groups": [], "tier": "city"} for d in depts if d not in known]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def _with_video(url: str, auth: Any, now: int, feed_depts: list[str], data: Path,
                      args: argparse.Namespace, commander: Any, answering: list[str], pid: int,
                      phase_cpu: dict[str, float]) -> int:
    """Start the publishers, wait until the hub has every feed, then the `video` phase."""
    from hub.logformat import read_events

    tokens = data / "feed-tokens.json"
    tokens.write_text(json.dumps({d: auth.issue("department", now=now, dept=d)
                                  for d in feed_depts}), encoding="utf-8")
    pubs = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.bench_feeds", url, str(tokens), str(args.seconds + 90),
        stdout=asyncio.subprocess.PIPE)
    assert pubs.stdout is not None
    try:
        line = await asyncio.wait_for(pubs.stdout.readline(), 120)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"publishers failed: {line!r}; {hub_log_tail(data)}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every feed's first frame reached the hub
            published = {e.payload["dept"] for e in read_events(data / "events.db")
                         if e.kind == "media.published"}
            if published >= set(feed_depts):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # health, wall and recording settle on every feed
        cpu0, t0 = proc_cpu_s(pid), time.perf_counter()
        n = await _issue_at_rate(commander, answering, args.rate, args.seconds, "video")
        phase_cpu["video"] = (proc_cpu_s(pid) - cpu0) / (time.perf_counter() - t0)
        return n
    finally:
        if pubs.returncode is None:
            pubs.terminate()
        await pubs.wait()


async def _issue_at_rate(commander: Any, depts: list[str], rate: float, seconds: float,
                         phase: str) -> int:
    """Issue `rate * seconds` commands to `depts` on a fixed schedule; their text starts with
    `phase` (how the receipts are told apart afterwards)."""
    n_cmds = int(rate * seconds)
    interval = 1.0 / rate
    t0 = time.perf_counter()
    sends = []
    for i in range(n_cmds):
        delay = t0 + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.ensure_future(
            commander.issue(depts, f"{phase} command {i}", requires=["receipt"])))
    await asyncio.gather(*sends)
    return n_cmds
