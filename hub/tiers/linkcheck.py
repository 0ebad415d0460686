"""`commandhub log verify --linked CITY.db TOWN.db ...`: both chains, and what each log says
about the other (pure: reads the logs; standard library, logformat and checkpoint only).

Each town log is matched to its town id in the city log by the signed heads the city logged
with that town's answers (they must name events of that very log). Then:
- every linked `command.issued` of a town names a city `command.issued` at the named seq,
  addressed to that town, with the same text, level, priority and requirements;
- every city answer from a town (`link`) names the town's command at the named seq, which is
  linked back to that city command (or, a decline without one, the town's `link.declined` of
  it), and carries a town head that is signed and in the town's
  log; each is logged at most once per stage;
- every `link.acked` of a town names the city answer at the named seq, and the city head it
  carries is signed and in the city's log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.checkpoint import CheckpointError, SignedHead, latest_signed_head
from hub.logformat import Event, read_events

CONTENT = ("text", "level", "priority", "requires", "critical")


@dataclass
class LinkReport:
    """What `check_linked` found: per town, how many cross-references held; the problems."""

    towns: dict[str, Path] = field(default_factory=dict)  # town id -> its log
    checked: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _head_in(head: Any, by_seq: dict[int, Event], key: str | None) -> str | None:
    """None if `head` is a signed head of an event in this log (by its key, the fingerprint
    of the log's own signed heads, when it has any), else why not."""
    try:
        sh = SignedHead.from_dict(head)
        sh.verify()
    except (ValueError, CheckpointError) as exc:
        return f"bad signed head ({exc})"
    if key is not None and sh.key_fingerprint != key:
        return f"signed by key {sh.key_fingerprint[:16]}..., not this log's {key[:16]}..."
    ev = by_seq.get(sh.seq)
    if ev is None or ev.hash != sh.hash:
        return f"signed head {sh.seq}:{sh.hash[:12]} is not in this log"
    return None


def _answers(city: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for ev in city:
        if ev.role == "hub" and ev.dept and isinstance(ev.payload.get("link"), dict):
            out.setdefault(ev.dept, []).append(ev)
    return out


def check_linked(city_db: str | Path, town_dbs: list[str | Path]) -> LinkReport:
    rep = LinkReport()
    city = read_events(city_db)
    city_seq = {e.seq: e for e in city}
    city_key = _key_of(city_db)
    answers = _answers(city)
    for path in map(Path, town_dbs):
        town = read_events(path)
        town_seq = {e.seq: e for e in town}
        key = _key_of(path)
        tid = next((t for t, evs in answers.items()
                    if all(_head_in(e.payload.get("head"), town_seq, key) is None
                           for e in evs)), None)
        if tid is None:
            linked = [e for e in town if isinstance(e.payload.get("link"), dict)]
            if linked:
                rep.problems.append(f"{path}: no town of the city log answered with this log's "
                                    "signed heads")
            continue
        rep.towns[tid] = path
        _check_town(rep, tid, path, (town, town_seq, key), (city_seq, city_key),
                    answers.get(tid, []))
    return rep


def _int(value: Any) -> int:
    """A seq as logged (-1, no event, if it is not an integer)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _key_of(db: str | Path) -> str | None:
    """The fingerprint of the key that signs this log's heads (None: it has none)."""
    latest = latest_signed_head(db)
    return None if latest is None else latest.key_fingerprint


def _check_town(rep: LinkReport, tid: str, path: Path,
                town_log: tuple[list[Event], dict[int, Event], str | None],
                city_log: tuple[dict[int, Event], str | None], answers: list[Event]) -> None:
    town, town_seq, town_key = town_log
    city_seq, city_key = city_log
    seen: Counter[str] = Counter()
    for ev in town:  # down: the town's linked commands
        up = ev.payload.get("link")
        if ev.kind != "command.issued" or not isinstance(up, dict):
            continue
        seen[str(up.get("command_id"))] += 1
        src = city_seq.get(_int(up.get("seq")))
        where = f"{path}: seq {ev.seq} ({ev.payload['command_id']})"
        if src is None or src.kind != "command.issued" \
                or src.payload.get("command_id") != up.get("command_id"):
            rep.problems.append(f"{where}: the city log has no command.issued "
                                f"{up.get('command_id')} at seq {up.get('seq')}")
            continue
        if tid not in src.payload.get("departments", []):
            rep.problems.append(f"{where}: city command {src.payload['command_id']} is not "
                                f"addressed to {tid}")
        diff = [k for k in CONTENT if src.payload.get(k) != ev.payload.get(k)]
        if diff:
            rep.problems.append(f"{where}: differs from city seq {src.seq} in {', '.join(diff)}")
        rep.checked["commands"] += 1
    rep.problems += [f"{path}: city command {c} linked {n} times" for c, n in seen.items() if n > 1]
    stages: Counter[tuple[str, str]] = Counter()
    for ev in answers:  # up: the city's record of the town's answers
        link = ev.payload["link"]
        where = f"city seq {ev.seq} ({ev.kind} of {ev.payload.get('command_id')} by {tid})"
        stages[(str(ev.payload.get("command_id")), ev.kind)] += 1
        own = town_seq.get(_int(link.get("seq")))
        if link.get("command_id") is None:  # nobody in the town could take it: link.declined
            if own is None or own.kind != "link.declined" or ev.kind != "command.declined" \
                    or own.payload.get("city_command_id") != ev.payload.get("command_id"):
                rep.problems.append(f"{where}: {path} has no link.declined of it at seq "
                                    f"{link.get('seq')}")
        elif own is None or own.kind != "command.issued" \
                or own.payload.get("command_id") != link.get("command_id") \
                or (own.payload.get("link") or {}).get("command_id") != ev.payload.get("command_id"):
            rep.problems.append(f"{where}: {path} has no command {link.get('command_id')} at seq "
                                f"{link.get('seq')} linked to it")
        why = _head_in(ev.payload.get("head"), town_seq, town_key)
        if why is not None:
            rep.problems.append(f"{where}: town head: {why}")
        rep.checked["answers"] += 1
    rep.problems += [f"city log: {k} of {c} by {tid} logged {n} times"
                     for (c, k), n in stages.items() if n > 1]
    for ev in town:  # the city's acks, as the town logged them
        if ev.kind != "link.acked":
            continue
        p = ev.payload
        where = f"{path}: seq {ev.seq} (link.acked {p.get('city_command_id')} {p.get('response')})"
        ans = city_seq.get(_int(p.get("city_seq")))
        if ans is None or ans.dept != tid or ans.payload.get("command_id") != p.get(
                "city_command_id") or ans.payload.get("client_msg_id") != \
                f"link:{p.get('city_command_id')}:{p.get('response')}":
            rep.problems.append(f"{where}: the city log has no such answer at seq "
                                f"{p.get('city_seq')}")
        why = _head_in(p.get("head"), city_seq, city_key)
        if why is not None:
            rep.problems.append(f"{where}: city head: {why}")
        rep.checked["acks"] += 1
