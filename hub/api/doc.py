"""The message and route tables as Markdown, for docs/protocol.md (`python -m hub.api.doc FILE`
rewrites the generated sections in place; a test checks they are current)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hub.api.messages import MESSAGES
from hub.api.routes import ROUTES
from hub.auth import PERMISSIONS, Role

ROLE_ORDER = (Role.COMMANDER, Role.DEPARTMENT, Role.EVALUATOR, Role.OBSERVER, Role.HUB)
BEGIN = "<!-- BEGIN GENERATED {name}: python -m hub.api.doc docs/protocol.md -->"
END = "<!-- END GENERATED {name} -->"


def who(permission: str | None) -> str:
    """The roles holding a permission, in a fixed order ("all" for every role)."""
    if permission is None:
        return "anyone (no token)"
    roles = [str(r) for r in ROLE_ORDER if r in PERMISSIONS[permission]]
    return "all" if len(roles) == len(ROLE_ORDER) else ", ".join(roles)


def messages_markdown() -> str:
    lines = ["| type | who | fields (`*` required) | ack | exactly-once |", "|---|---|---|---|---|"]
    for m in MESSAGES.values():
        once = ("per (department, command, id)" if m.per_command else "per (actor, id)") \
            if m.writes else "—"
        ws = " (WebSocket only)" if m.socket_only else ""
        lines.append(f"| `{m.type}`{ws} | {who(m.permission)} | {m.schema.describe() or '—'} "
                     f"| {m.answers or '—'} | {once} |")
    return "\n".join(lines)


def routes_markdown() -> str:
    lines = ["| method and path | who | what |", "|---|---|---|"]
    for r in ROUTES:
        roles = who(r.permission) + (" (no token needed from loopback)" if r.loopback_open else "")
        lines.append(f"| `{r.method} {r.path}` | {roles} | {r.what} |")
    return "\n".join(lines)


SECTIONS = {"MESSAGES": messages_markdown, "ROUTES": routes_markdown}


def render(text: str) -> str:
    """`text` with every generated section replaced by the current tables."""
    for name, make in SECTIONS.items():
        begin, end = BEGIN.format(name=name), END.format(name=name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"no generated section {name} (add the {begin} and {end} lines)")
        section = f"{begin}\n{make()}\n{end}"
        text = text[:found.start()] + section + text[found.end():]
    return text


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
