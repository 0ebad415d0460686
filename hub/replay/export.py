"""`commandhub replay export`: a clip of the wall between two moments, captions burned in, hashed.

The clip (MP4, H.264) gets a manifest beside it (`CLIP.json`): its SHA-256 and size, the
operation, the span, the log head it was made from, every recording used with its logged hash,
and whether the export was logged. When the data folder is writable and no hub holds its log,
the export is appended as a `replay.exported` event through the log's own path
(`hub.eventlog.EventLog`: verified from the last signed head, `start` and `stop` heads signed,
so the chain and the heads stay valid). An archived (read-only)
folder, or a log a running hub holds, is not written at all: the manifest says why
(`logged: false`) and carries the hash.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from hub.cli import CliError
from hub.replay.model import Replay, ReplayError, load_replay, sha256_size


def parse_moment(text: str, replay: Replay) -> int:
    """`+SECONDS` from the operation's start, `#SEQ` (that event's time), or hub µs."""
    try:
        if text.startswith("+"):
            return replay.start_us + int(float(text[1:]) * 1e6)
        if text.startswith("#"):
            ev = replay.event(int(text[1:]))
            if ev is None:
                raise CliError(f"{text}: not an event of operation {replay.op}")
            return ev.ts_us
        return int(text)
    except ValueError as exc:
        raise CliError(f"{text!r}: write +SECONDS, #SEQ or hub microseconds") from exc


def export(data_dir: Path, op: str | None, start: str, end: str, out: Path,
           fps: int = 10) -> dict[str, Any]:
    """Write the clip and its manifest; return the manifest."""
    from media.clip import Caption, ClipError, ClipSource, write_clip

    try:
        replay = load_replay(data_dir, op)
    except ReplayError as exc:
        raise CliError(str(exc)) from exc
    from_us, to_us = parse_moment(start, replay), parse_moment(end, replay)
    if not replay.start_us <= from_us < to_us <= replay.end_us + 1_000_000:
        raise CliError(f"the clip must lie inside the operation ({replay.start_us} .. "
                       f"{replay.end_us}) and end after it starts")
    used = [r for r in replay.recordings
            if r.trusted and r.start_us < to_us and r.end_us > from_us]
    sources: dict[str, list[ClipSource]] = {}
    for r in used:
        sources.setdefault(r.dept, []).append(
            ClipSource(data_dir / r.path, r.start_us, r.duration_s))
    tiles = [(str(d["id"]), str(d["name_zh"])) for d in replay.depts]
    captions = [Caption(i.ts_us, f"{_clock(i.ts_us)} #{i.seq} {i.kind} "
                        f"{i.dept or ''} {i.label}".replace("  ", " "))
                for i in replay.items if from_us - 10_000_000 < i.ts_us <= to_us]
    t0 = time.monotonic()
    try:
        frames = write_clip(out, tiles, sources, captions, from_us, to_us, _clock, fps=fps)
    except ClipError as exc:
        raise CliError(str(exc)) from exc
    size, sha = sha256_size(out)
    made_s = round(time.monotonic() - t0, 2)
    logged = log_export(data_dir, replay, {
        "op": replay.op, "from_us": from_us, "to_us": to_us, "name": out.name,
        "path": str(out.resolve()), "sha256": sha, "size": size, "frames": frames,
        "who": _who()})
    manifest = {
        "clip": out.name, "sha256": sha, "size": size, "frames": frames, "fps": fps,
        "op": replay.op, "from_us": from_us, "to_us": to_us,
        "log": replay.log, "made_s": made_s, "logged": logged,
        "recordings": [{"path": r.path, "sha256": r.sha256, "seq": r.seq} for r in used],
        "untrusted_skipped": [{"path": r.path, "problem": r.problem}
                              for r in replay.recordings if not r.trusted
                              and r.start_us < to_us and r.end_us > from_us],
    }
    Path(f"{out}.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                   encoding="utf-8")
    return manifest


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def log_export(data_dir: Path, replay: Replay, payload: dict[str, Any]) -> dict[str, Any]:
    """Append `replay.exported` (payload: op, from_us, to_us, name, path, sha256, size, frames,
    who) to the folder's log through EventLog; {logged: True, seq} or {logged: False, why}.
    Nothing is written when the folder or its log is read-only or a hub holds the log."""
    from hub.checkpoint import CheckpointError, HeadSigner
    from hub.clock import SystemClock
    from hub.eventlog import EventLog, EventLogError

    log_path = data_dir / "events.db"
    if not (os.access(data_dir, os.W_OK) and os.access(log_path, os.W_OK)):
        return {"logged": False, "why": f"{data_dir} is read-only (archived): the export is not "
                "logged; its hash is in this manifest"}

    async def append() -> int:
        log = EventLog(log_path, SystemClock(), signer=HeadSigner.load_or_create(data_dir))
        log.open()
        try:
            event = await log.append("replay.exported", payload, op=replay.op,
                                     op_kind=replay.op_kind)
        finally:
            await log.close()
        return event.seq

    try:
        return {"logged": True, "seq": asyncio.run(append()), "kind": "replay.exported"}
    except (EventLogError, CheckpointError, OSError) as exc:
        return {"logged": False, "why": f"the export is not logged: {exc}"}


def _clock(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def export_cli(args: argparse.Namespace) -> int:
    if not (args.from_ and args.to and args.out):
        raise CliError("replay export needs --from, --to and --out")
    data = Path(args.data or "data")
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise CliError(f"{out}: the clip is MP4 (name it .mp4)")
    m = export(data, args.op, args.from_, args.to, out)
    print(f"replay export: {out} ({m['frames']} frames, {m['size']} bytes, sha256 {m['sha256']}) "
          f"from {len(m['recordings'])} recordings in {m['made_s']} s; manifest {out}.json")
    logged = m["logged"]
    if logged["logged"]:
        print(f"replay export: logged as replay.exported #{logged['seq']} in {data}/events.db")
    else:
        print(f"replay export: NOT LOGGED: {logged['why']}", file=sys.stderr)
    return 0
