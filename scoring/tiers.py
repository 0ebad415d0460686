"""Per-tier latencies of a drill across tiers: the city log with its towns' logs as linked
evidence (`commandhub score --log city.db --linked town.db ...`; docs/protocol.md "Tiers").

For every city command a town answered (a city event with `link`), matched to the town's
linked command in a town log:
- `down`: city issue -> the town hub issued its linked command (town clock, corrected by the
  link's measured offset);
- `town`: the town's command -> each town department's stage (town clock alone);
- `up`: the town reached the stage -> the city logged it (offset-corrected);
- `end_to_end`: city issue -> the city learned the stage (city clock alone).
Pure: reads events through hub.logformat, nothing of the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.logformat import Event, read_events

STAGE_KINDS = {"command.acknowledged": "receipt", "command.on_scene": "on_scene",
               "command.completed": "completed", "command.declined": "declined"}


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    s = sorted(values)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))], 2)
    return {"n": len(s), "p50_ms": q(50), "p90_ms": q(90), "max_ms": round(s[-1], 2)}


class _TownLog:
    """A town log's linked commands (by id and seq), event hashes, departments' answers."""

    def __init__(self, events: list[Event]) -> None:
        self.hashes = {e.hash for e in events}
        self.linked = {(str(e.payload["command_id"]), e.seq): e for e in events
                       if e.kind == "command.issued" and isinstance(e.payload.get("link"), dict)}
        self.answers: dict[str, list[Event]] = {}
        for e in events:
            if e.kind in STAGE_KINDS and e.role == "department":
                self.answers.setdefault(str(e.payload.get("command_id")), []).append(e)


def _by_stage(values: dict[str, list[float]]) -> dict[str, Any]:
    return {s: _summary(values[s]) for s in STAGE_KINDS.values() if s in values}


def tier_latencies(city_db: str | Path, town_dbs: Sequence[str | Path],
                   operation: str | None = None) -> dict[str, Any]:
    """Latencies per tier and stage (milliseconds), for the city commands of `operation`."""
    city = read_events(city_db)
    issued = {e.payload["command_id"]: e for e in city if e.kind == "command.issued"
              and (operation is None or e.op == operation)}
    answered: set[str] = set()
    logs = [_TownLog(read_events(p)) for p in town_dbs]
    down: list[float] = []
    up_ms: dict[str, list[float]] = {}
    e2e: dict[str, list[float]] = {}
    town_ms: dict[str, list[float]] = {}
    for ev in city:
        link = ev.payload.get("link")
        stage = STAGE_KINDS.get(ev.kind)
        src = issued.get(str(ev.payload.get("command_id")))
        if ev.role != "hub" or not isinstance(link, dict) or stage is None or src is None:
            continue
        offset_ms = float(link.get("offset_us") or 0) / 1000
        e2e.setdefault(stage, []).append((ev.ts_us - src.ts_us) / 1000)
        up_ms.setdefault(stage, []).append((ev.ts_us - int(link["ts_us"])) / 1000 - offset_ms)
        answered.add(src.payload["command_id"])
        if stage != "receipt":
            continue
        head = ev.payload.get("head")
        seq = link.get("seq")
        key = (str(link.get("command_id")), seq if isinstance(seq, int) else -1)
        log = next((t for t in logs if key in t.linked and isinstance(head, dict)
                    and head.get("hash") in t.hashes), None)  # the town whose log it signed
        if log is None:
            continue
        tcmd = log.linked[key]
        down.append((tcmd.ts_us - src.ts_us) / 1000 + offset_ms)
        for te in log.answers.get(tcmd.payload["command_id"], []):
            town_ms.setdefault(STAGE_KINDS[te.kind], []).append((te.ts_us - tcmd.ts_us) / 1000)
    return {
        "commands": len(answered), "town_logs": len(town_dbs),
        "down": _summary(down),
        "town": _by_stage(town_ms), "up": _by_stage(up_ms), "end_to_end": _by_stage(e2e),
    }


def format_tiers(t: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    def fmt(s: dict[str, Any]) -> str:
        return "-" if not s.get("n") else f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, " \
                                          f"max {s['max_ms']} ms (n={s['n']})"
    lines = [f"tiers: {t['commands']} city command(s) answered by towns, {t['town_logs']} "
             f"town log(s)", f"  city -> town hub: {fmt(t['down'])}"]
    for name, title in (("town", "town hub -> department"), ("up", "town -> city"),
                        ("end_to_end", "city -> town -> city")):
        for stage, s in t[name].items():
            lines.append(f"  {title} {stage}: {fmt(s)}")
    return "\n".join(lines)
