"""`commandhub roster`: the department and group ids a command, push or token can name."""

from __future__ import annotations

import argparse
import json
import unicodedata
from typing import Any

from hub.cli import CliError


def register(sub: Any) -> None:
    p = sub.add_parser("roster", help="list the roster's department and group ids (wall order)")
    p.add_argument("--roster", help="roster YAML (default: the bundled 16 departments)")
    p.add_argument("--json", action="store_true", help="the roster as JSON")
    p.set_defaults(handler=cmd_roster)


def width(text: str) -> int:
    """Columns `text` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def render(roster: Any) -> str:
    """The roster as an aligned table: the center, the departments in wall order, the groups."""
    c = roster.center
    lines = [f"command center: {c.id}  {c.name_zh} / {c.name_en}", "",
             f"departments ({len(roster.departments)}, in wall order):"]
    cols = [max(width(d.id) for d in roster.departments),
            max(width(d.name_zh) for d in roster.departments),
            max(width(d.name_en) for d in roster.departments)]
    for i, d in enumerate(roster.departments, 1):
        lines.append(f"  {i:>2}  {pad(d.id, cols[0])}  {pad(d.name_zh, cols[1])}  "
                     f"{pad(d.name_en, cols[2])}  {','.join(d.groups)}".rstrip())
    groups = roster.group_info()
    if groups:
        lines += ["", "groups:"]
        gcols = [max(width(g["id"]) for g in groups),
                 max(width(f"{g['name_zh']} / {g['name_en']}") for g in groups)]
        for g in groups:
            lines.append(f"  {pad(g['id'], gcols[0])}  {pad(g['name_zh'] + ' / ' + g['name_en'], gcols[1])}"
                         f"  {','.join(g['members'])}")
    lines += ["", "targets (commandhub send --to, command.issue, route.push): a department id, "
              "a group id, or all"]
    return "\n".join(lines)


def cmd_roster(args: argparse.Namespace) -> int:
    from hub.roster import RosterError, load_roster

    try:
        roster = load_roster(args.roster)
    except RosterError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps({"center": roster.center.to_dict(), "departments": roster.to_list(),
                          "groups": roster.group_info()}, ensure_ascii=False, indent=1))
    else:
        print(render(roster))
    return 0
