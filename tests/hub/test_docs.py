"""docs/protocol.md and docs/events.md match the wire: the generated tables are current, every
type and every event kind a request logs is documented, with the field names the hub uses."""

from __future__ import annotations

import re
from pathlib import Path

from hub.api.doc import render
from hub.api.messages import MESSAGES
from hub.api.routes import ROUTES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_protocol_tables_are_generated_from_the_code() -> None:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m hub.api.doc docs/protocol.md"
    for mtype in MESSAGES:
        assert f"| `{mtype}`" in text, mtype
    for r in ROUTES:
        assert f"`{r.method} {r.path}`" in text, r


def test_events_doc_names_what_the_hub_logs() -> None:
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)`", text, re.M))
    documented |= {f"{a}.{b}" for a, b in re.findall(r"`([a-z_]+)\.([a-z_]+)` / `", text)}
    for spec in MESSAGES.values():
        for kind in spec.logs:
            assert kind in documented or f"`{kind}`" in text, kind
    for field in ("client_msg_id", "deadline_us", "evaluator_id", "participants", "dept.excused"):
        assert field in text, field
    assert "deadline_ts_us" not in text  # the wire says deadline_us


def test_protocol_doc_states_the_first_frame_and_the_id_rule() -> None:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    assert "first frame a client receives is always `welcome`" in text
    assert "without one it is refused with `bad_request`" in text
