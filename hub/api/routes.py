"""THE route table: every HTTP route the hub serves, with the permission it needs.

The web layer checks it for every request before the route's handler runs (hub/server.py,
`access_middleware`): a route or method not listed here is refused, and a test fails if a
registered route is missing. `permission` is a name in hub.auth.PERMISSIONS, or None for a
route that needs no token. Handlers may check more (a department sees only its own
snapshots; a WHIP session is deleted only by its publisher), never less.
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as aiohttp spells the resource ("/whip/{target}"; "/static" for the folder)
    permission: str | None
    what: str
    loopback_open: bool = False  # no token needed from a loopback address


ROUTES: tuple[Route, ...] = (
    # the core API (hub/server.py)
    Route("GET", "/ws", "read.own", "the WebSocket (docs/protocol.md)"),
    Route("GET", "/api/state", "read.own", "the state, as the token's role may see it"),
    Route("GET", "/api/events", "read.all", "committed events, filtered for the role"),
    Route("POST", "/api/commands", "command.issue", "issue a command (as `command.issue`)"),
    Route("POST", "/api/rpc", "read.own", "any request but `subscribe`; then the type's own"),
    Route("GET", "/api/roster", "read.own", "the roster"),
    Route("GET", "/metrics", "read.all", "Prometheus text", loopback_open=True),
    Route("GET", "/healthz", PUBLIC, "liveness and log head"),
    Route("GET", "/fonts/cjk.ttf", PUBLIC, "the CJK web font"),
    Route("GET", "/commander", PUBLIC, "the commander's console (its API calls need a token)"),
    Route("GET", "/department", PUBLIC, "the department's console"),
    Route("GET", "/evaluator", PUBLIC, "the evaluator's console"),
    Route("GET", "/static", PUBLIC, "the consoles' scripts and styles"),
    # the consoles' routes (hub/consoles.py)
    Route("POST", "/api/snapshots", "snapshot.upload", "a JPEG from the department's camera"),
    Route("GET", "/api/snapshots/{name}", "read.own", "a snapshot (a department: its own)"),
    Route("POST", "/api/report", "report.score", "the scorecard PDF"),
    Route("GET", "/api/rubric", "read.own", "the rubric's observation criteria and checklist"),
    Route("GET", "/api/scenario", "scenario.read", "the running scenario's injects"),
    # after-action replay (hub/replay/web.py)
    Route("GET", "/replay", PUBLIC, "the replay page (its API calls need a token)"),
    Route("GET", "/api/replay", "replay.view", "an operation's replay model"),
    Route("GET", "/api/replay/log", "replay.view", "the log entries around a moment"),
    Route("GET", "/api/replay/media/{name}", "replay.view", "a trusted recording, with Range"),
    Route("GET", "/api/replay/frames/{name}", "replay.view", "a trusted recording's frame index"),
    Route("GET", "/api/replay/frames", "replay.view", "trusted recordings' frame indexes, batched"),
    Route("GET", "/api/replay/bytes", "replay.view", "byte ranges of trusted recordings, batched"),
    # camera ingest (hub/media_wiring.py)
    Route("GET", "/api/ingest", "route.change", "camera ingests"),
    Route("POST", "/api/ingest", "route.change", "start a camera ingest"),
    Route("DELETE", "/api/ingest/{dept}", "route.change", "stop a camera ingest"),
    # WHIP / WHEP (hub/whip.py; RFC 9725)
    Route("OPTIONS", "/whip/{target}", PUBLIC, "CORS preflight"),
    Route("POST", "/whip/{target}", "video.publish", "publish a department's feed"),
    Route("OPTIONS", "/whip/{target}/{session}", PUBLIC, "CORS preflight"),
    Route("DELETE", "/whip/{target}/{session}", "video.publish", "end a WHIP session"),
    Route("OPTIONS", "/whep/{target}", PUBLIC, "CORS preflight"),
    Route("POST", "/whep/{target}", "video.pull", "view a feed or the wall"),
    Route("OPTIONS", "/whep/{target}/{session}", PUBLIC, "CORS preflight"),
    Route("DELETE", "/whep/{target}/{session}", "video.pull", "end a WHEP session"),
)

_BY_KEY = {(r.method, r.path): r for r in ROUTES}
assert len(_BY_KEY) == len(ROUTES), "a route is listed twice"


def methods(path: str) -> list[str]:
    """The methods declared for a path (for a 405's Allow header); [] for an unknown path."""
    return sorted({r.method for r in ROUTES if r.path == path})


def find(method: str, path: str) -> Route | None:
    """The declared route for a method (HEAD as GET) and resource path, or None."""
    return _BY_KEY.get(("GET" if method == "HEAD" else method, path))
