"""HubState: the hub's live picture (operation, presence, check-ins, commands), folded from events.

Pure: `apply(event)` for every committed event, in seq order; on start the hub replays the
whole log through it, so a restarted hub knows exactly what it knew before — including which
client requests it already answered (`requests`, keyed by actor and client message id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.commands import RESPONSE_EVENTS, CommandBook
from hub.logformat import Event

# (actor key, scope, client message id): scope is the command id for a department's
# response (its ids are per command) and "" for every other request.
RequestKey = tuple[str, str, str]


@dataclass
class Operation:
    id: str
    title: str
    kind: str
    level: str
    started_us: int
    scenario: str | None = None
    speed: float = 1.0
    participants: list[str] = field(default_factory=list)  # department ids taking part
    excused: dict[str, str] = field(default_factory=dict)  # dept -> reason
    paused: bool = False
    paused_since_us: int | None = None
    paused_total_us: int = 0  # time spent paused before the current pause

    def paused_us(self, now_us: int) -> int:
        """All time this operation has spent paused, up to `now_us`."""
        current = now_us - self.paused_since_us if self.paused_since_us is not None else 0
        return self.paused_total_us + current

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "level": self.level,
                "started_us": self.started_us, "scenario": self.scenario, "speed": self.speed,
                "paused": self.paused, "participants": list(self.participants),
                "excused": dict(self.excused)}


@dataclass
class HubState:
    operation: Operation | None = None
    online: dict[str, int] = field(default_factory=dict)  # actor key -> since ts_us
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)  # dept -> live video feed
    checked_in: dict[str, int] = field(default_factory=dict)  # dept -> ts_us (current operation)
    commands: CommandBook = field(default_factory=CommandBook)
    last_seq: int = 0
    last_ended: str | None = None
    # Every request answered with a logged event: key -> (event kind, seq). A repeat of the
    # key is answered from that event and logged nothing (exactly-once, across restarts).
    requests: dict[RequestKey, tuple[str, int]] = field(default_factory=dict)
    # operation -> (snapshots uploaded by browsers, their bytes): the per-operation quota
    uploads: dict[str, tuple[int, int]] = field(default_factory=dict)
    # town -> its department whose feed the city called up (tier.callup; hub/tiers/)
    callups: dict[str, str] = field(default_factory=dict)

    @property
    def op_id(self) -> str:
        return self.operation.id if self.operation else "system"

    @property
    def op_kind(self) -> str:
        return self.operation.kind if self.operation else "system"

    def apply(self, ev: Event) -> None:
        self.last_seq = ev.seq
        k, p = ev.kind, ev.payload
        msg_id = p.get("client_msg_id")
        if isinstance(msg_id, str) and msg_id:
            scope = str(p.get("command_id")) if k in RESPONSE_EVENTS else ""
            self.requests[(actor_key(ev.role, ev.dept), scope, msg_id)] = (k, ev.seq)
        if k.startswith("command."):
            self.commands.apply(k, p, ev.ts_us, ev.seq, ev.op)
            if k == "command.issued" and self.operation is not None:
                # deadlines do not run while the drill is paused
                self.commands.commands[p["command_id"]].paused_us_at_issue = \
                    self.operation.paused_us(ev.ts_us)
        elif k == "operation.started":
            roster_ids = [d["id"] for d in p.get("roster") or [] if isinstance(d, dict)]
            self.operation = Operation(ev.op, p["title"], p["kind"], p["level"], ev.ts_us,
                                       p.get("scenario"), float(p.get("speed", 1.0)),
                                       list(p.get("participants") or roster_ids))
            self.checked_in = {}
        elif k == "operation.ended":
            self.operation = None
            self.last_ended = ev.op
            self.checked_in = {}
        elif k == "operation.level_changed" and self.operation:
            self.operation.level = p["to"]
        elif k == "operation.paused" and self.operation:
            self.operation.paused = True
            self.operation.paused_since_us = ev.ts_us
        elif k == "operation.resumed" and self.operation:
            self.operation.paused = False
            if self.operation.paused_since_us is not None:
                self.operation.paused_total_us += ev.ts_us - self.operation.paused_since_us
            self.operation.paused_since_us = None
        elif k == "dept.excused" and self.operation:
            self.operation.excused[p["dept"]] = p["reason"]
        elif k == "dept.checked_in" and ev.dept and self.operation:
            self.checked_in.setdefault(ev.dept, ev.ts_us)
        elif k == "media.snapshot" and p.get("source") == "browser":
            count, size = self.uploads.get(ev.op, (0, 0))
            self.uploads[ev.op] = (count + 1, size + int(p.get("bytes") or 0))
        elif k == "presence.online":
            self.online[actor_key(ev.role, ev.dept)] = ev.ts_us
        elif k == "presence.offline":
            self.online.pop(actor_key(ev.role, ev.dept), None)
        elif k == "media.published" and isinstance(p.get("dept"), str):
            self.feeds[p["dept"]] = {"source": p.get("source"), "session": p.get("session"),
                                     "since_us": ev.ts_us}
        elif k == "media.unpublished" and isinstance(p.get("dept"), str):
            feed = self.feeds.get(p["dept"])
            if feed is not None and feed.get("session") == p.get("session"):
                del self.feeds[p["dept"]]
        elif k == "route.changed" and p.get("action") in ("callup", "release") \
                and ev.role != "uplink":  # the city's; a town logs its side as `uplink`
            town, targets = str(p.get("source")), p.get("targets") or []
            if p["action"] == "callup" and targets:
                self.callups[town] = str(targets[0])
            else:
                self.callups.pop(town, None)
        elif k == "hub.started":
            # After a crash nobody is connected any more, whatever the log last said.
            self.online.clear()
            self.feeds.clear()

    def dept_online(self, dept: str) -> bool:
        """A department is online while it has a session (WebSocket) or a live video feed
        (a WHIP camera or an ingest publishes without a WebSocket)."""
        return actor_key("department", dept) in self.online or dept in self.feeds \
            or actor_key("hub", dept) in self.online  # a town hub's uplink (hub/tiers/)


def actor_key(role: str, dept: str | None) -> str:
    return f"{role}:{dept}" if dept else role
