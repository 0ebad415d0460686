"""HTTP routes the browser consoles need beyond the core API.

- `POST /api/snapshots` (department): a JPEG from the department's camera (at most 1 MiB),
  saved under DATA/snapshots/ and logged as `media.snapshot` (path relative to DATA, sha256,
  dept, command_id, report_id, source "browser"); rate-limited per token, and a quota of
  count and bytes per operation (HubConfig.snapshot_quota_*).
- `GET /api/snapshots/{name}`: a saved snapshot, the browser's or the hub's own (read-all roles,
  or the department it shows).
- `POST /api/report` (commander, evaluator): the scorecard PDF of the current or last operation,
  scored from the hub's own log with the hub's rubric (scoring package).
- `GET /api/rubric`: the rubric's observation criteria and checklist items (evaluator form).
- `GET /api/scenario` (commander, evaluator: the injects still to come are not for the
  departments or observers): the running operation's scenario injects, for the drill bar
  (`?list=1`: the bundled scenarios to start a drill with).

Who may call each route is declared in hub/api/routes.py and checked before these run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.api.errors import Forbidden
from hub.body import BodyError, read_body
from hub.eventlog import HUB
from hub.server import UPLOAD_LIMIT_KEY, json_body, json_error, principal_of, rate_limit
from hub.service import Hub, HubError

MAX_SNAPSHOT = 1024 * 1024
SNAPSHOT_DIR = "snapshots"
# a browser's upload (dept-TS_US-SHA12.jpg) or the hub's own (media/record.py write_snapshot:
# dept-YYYYMMDD-HHMMSS-MICROS-REF.jpg); nothing else is served
SNAPSHOT_NAME_RE = re.compile(r"^[a-z0-9_-]{1,64}-(\d{1,20}-[0-9a-f]{12}"
                              r"|\d{8}-\d{6}-\d{6}-[A-Za-z0-9_-]{1,40})\.jpg$")
SCENARIO_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CONSOLES_HUB_KEY = web.AppKey("consoles_hub", Hub)
REPORT_LOCK_KEY = web.AppKey("report_lock", asyncio.Lock)


def attach_consoles(app: web.Application, hub: Hub) -> None:
    """Add the consoles' routes to the hub's web app."""
    app[CONSOLES_HUB_KEY] = hub
    app[REPORT_LOCK_KEY] = asyncio.Lock()
    app.router.add_post("/api/snapshots", snapshot_upload)
    app.router.add_get("/api/snapshots/{name}", snapshot_get)
    app.router.add_post("/api/report", report_pdf)
    app.router.add_get("/api/rubric", rubric_info)
    app.router.add_get("/api/scenario", scenario_info)


# ------------------------------------------------------------------------------- snapshots

async def snapshot_upload(request: web.Request) -> web.Response:
    principal = principal_of(request)
    rate_limit(request, UPLOAD_LIMIT_KEY, "uploads")
    hub = request.app[CONSOLES_HUB_KEY]
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != "image/jpeg":
        return json_error(415, "unsupported_media_type", "Content-Type: image/jpeg")
    try:
        data = await read_body(request, MAX_SNAPSHOT)
    except BodyError as exc:
        return json_error(exc.status, exc.code, f"snapshot: {exc}")
    if not data.startswith(b"\xff\xd8\xff"):
        raise HubError("bad_request", "body is not a JPEG image")
    command_id = request.query.get("command_id") or None
    report_id = request.query.get("report_id") or None
    if command_id is not None:
        cmd = hub.state.commands.get(command_id)
        if principal.dept not in cmd.progress:
            raise HubError("not_targeted", f"{command_id} is not addressed to {principal.dept}")
    if report_id is not None and not re.fullmatch(r"R[0-9a-f]{1,32}", report_id):
        raise HubError("bad_request", "report_id: as returned by report.field")
    sha = hashlib.sha256(data).hexdigest()
    op = hub.state.op_id
    async with hub.lock(("snapshot-quota", op)):  # check, store and log as one step
        count, size = hub.state.uploads.get(op, (0, 0))
        cfg = hub.config
        if count + 1 > cfg.snapshot_quota_count or size + len(data) > cfg.snapshot_quota_bytes:
            raise HubError("quota_exceeded",
                           f"operation {op} has {count} snapshots ({size} bytes); the quota is "
                           f"{cfg.snapshot_quota_count} and {cfg.snapshot_quota_bytes} bytes")
        ts_us = hub.clock.wall_us()
        name = f"{principal.dept}-{ts_us}-{sha[:12]}.jpg"
        folder = hub.data_dir / SNAPSHOT_DIR
        await asyncio.get_running_loop().run_in_executor(None, _write_file, folder, name, data)
        rel = f"{SNAPSHOT_DIR}/{name}"
        ev = await hub.emit("media.snapshot", {"dept": principal.dept, "path": rel,
                                               "sha256": sha, "bytes": len(data),
                                               "command_id": command_id, "report_id": report_id,
                                               "source": "browser"}, HUB)
    return web.json_response({"path": rel, "sha256": sha, "seq": ev.seq, "bytes": len(data)},
                             status=201)


def _write_file(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(folder / name)


async def snapshot_get(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    hub = request.app[CONSOLES_HUB_KEY]
    name = request.match_info["name"]
    if not SNAPSHOT_NAME_RE.match(name):
        raise web.HTTPNotFound(reason="no such snapshot")
    if not principal.can("read.all") and not name.startswith(f"{principal.dept}-"):
        raise Forbidden("a department sees only its own snapshots")
    path = hub.data_dir / SNAPSHOT_DIR / name
    if not path.is_file():
        raise web.HTTPNotFound(reason="no such snapshot")
    return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})


# ------------------------------------------------------------------------------- scorecard

def _report_operation(hub: Hub, wanted: str | None) -> str:
    if wanted:
        return wanted
    if hub.state.operation is not None:
        return hub.state.operation.id
    if hub.state.last_ended:
        return hub.state.last_ended
    raise HubError("no_operation", "no operation to score yet: start (and end) a drill first")


def render_scorecard(log_path: Path, operation: str, lang: str, evaluators: list[str],
                     rubric_path: Path | None = None, replay_base: str | None = None) -> bytes:
    """Score `operation` in the log with the rubric (default: the bundled one) and its
    scenario, when the drill ran a bundled one, for `deadline: from_scenario`; return the PDF
    bytes (blocking)."""
    from hub.logformat import read_events
    from scoring.engine import score_log
    from scoring.output import write_outputs
    from scoring.rubric import bundled, load_rubric
    from scoring.scenario import load_scenario

    rubric = load_rubric(rubric_path or bundled())
    started = next((e for e in read_events(log_path, operation)
                    if e.kind == "operation.started"), None)
    scenario = None
    name = started.payload.get("scenario") if started is not None else None
    if isinstance(name, str):
        from drills.scenario import bundled as bundled_scenario
        from drills.scenario import bundled_names

        if name in bundled_names():
            scenario = load_scenario(bundled_scenario(name))
    card, facts = score_log(str(log_path), rubric, scenario, operation, workers=1)  # no fork
    with tempfile.TemporaryDirectory(prefix="commandhub-report-") as tmp:
        out = Path(tmp) / "scorecard.pdf"
        seq_link = None
        if replay_base is not None:  # every #seq links to the replay of that moment
            from scoring.cli import replay_links

            seq_link = replay_links(replay_base, operation)
        write_outputs(card, facts, rubric, pdf_out=out, json_out=None, lang=lang,
                      evaluators=evaluators, seq_link=seq_link)
        return out.read_bytes()


async def report_pdf(request: web.Request) -> web.Response:
    hub = request.app[CONSOLES_HUB_KEY]
    body: dict[str, Any] = {}
    if request.can_read_body and request.content_type == "application/json":
        body = await json_body(request)
    wanted = body.get("operation") or request.query.get("operation")
    operation = _report_operation(hub, wanted if isinstance(wanted, str) else None)
    lang = body.get("lang") or request.query.get("lang") or "zh"
    if lang not in ("zh", "en"):
        raise HubError("bad_request", "lang: zh or en")
    evaluators = [e for e in body.get("evaluators", []) if isinstance(e, str)][:8] \
        if isinstance(body.get("evaluators"), list) else []
    async with request.app[REPORT_LOCK_KEY]:  # one at a time: scoring is CPU-heavy
        try:
            pdf = await asyncio.get_running_loop().run_in_executor(
                None, render_scorecard, hub.data_dir / "events.db", operation, lang, evaluators,
                hub.rubric.path, f"{request.scheme}://{request.host}")
        except ImportError as exc:
            return json_error(503, "scoring_unavailable", f"the scoring package is not ready: {exc}")
        except Exception as exc:  # scoring's own errors: operation not found, chain broken, ...
            return json_error(422, "scoring_failed", f"{type(exc).__name__}: {exc}")
    filename = f"scorecard-{operation}.pdf"
    return web.Response(body=io.BytesIO(pdf),  # streamed: a PDF is large
                         content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ------------------------------------------------------------------------------- rubric, scenario

def rubric_summary(path: Path) -> dict[str, Any]:
    """Observation criteria and checklist items of the rubric at `path` (blocking)."""
    from scoring.rubric import load_rubric

    rubric = load_rubric(path)
    observations: list[dict[str, Any]] = []
    checklist: list[dict[str, Any]] = []
    for section, crit in rubric.criteria():
        if crit.type == "observation":
            observations.append({"id": crit.id, "section": section.id,
                                 "title": {"zh": crit.title.zh, "en": crit.title.en},
                                 "scope": crit.scope, "points": crit.points})
        elif crit.type == "checklist":
            for item in crit.items:
                checklist.append({"id": item.id, "criterion": crit.id,
                                  "text": {"zh": item.text.zh, "en": item.text.en}})
    return {"id": rubric.id, "title": {"zh": rubric.title.zh, "en": rubric.title.en},
            "observations": observations, "checklist": checklist}


async def rubric_info(request: web.Request) -> web.Response:
    hub = request.app[CONSOLES_HUB_KEY]
    try:
        body = await asyncio.get_running_loop().run_in_executor(None, rubric_summary,
                                                                hub.rubric.path)
    except ImportError as exc:
        return json_error(503, "scoring_unavailable", f"the scoring package is not ready: {exc}")
    return web.json_response(body)


def _scenario_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "drills" / "scenarios"


def scenario_list() -> list[dict[str, str]]:
    """Id and title of each bundled scenario (drills/scenarios/*.yaml)."""
    import yaml

    out = []
    folder = _scenario_dir()
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and SCENARIO_ID_RE.match(str(data.get("id", ""))):
            out.append({"id": str(data["id"]), "title": str(data.get("title") or data["id"]),
                        "level": str(data.get("level") or "")})
    return out


def scenario_injects(scenario_id: str) -> list[dict[str, Any]]:
    """The injects of a bundled scenario (drills/scenarios/ID.yaml), by drill time; [] if none."""
    import yaml

    from hub.yamlsrc import parse_duration

    if not SCENARIO_ID_RE.match(scenario_id):
        return []
    path = _scenario_dir() / f"{scenario_id}.yaml"
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[dict[str, Any]] = []
    raw = data.get("injects") if isinstance(data, dict) else None
    for inj in raw if isinstance(raw, list) else []:
        if not isinstance(inj, dict) or "id" not in inj:
            continue
        try:
            at = float(parse_duration(inj.get("at", 0)))
        except (ValueError, TypeError):
            continue
        cmd = inj.get("command") if isinstance(inj.get("command"), dict) else None
        out.append({"id": str(inj["id"]), "at_s": at, "type": str(inj.get("type", "event")),
                    "title": str(inj.get("title") or (cmd or {}).get("text") or ""),
                    "text": str(inj.get("text") or ""), "level": inj.get("level"),
                    "command": cmd})
    out.sort(key=lambda i: float(i["at_s"]))
    return out


async def scenario_info(request: web.Request) -> web.Response:
    hub = request.app[CONSOLES_HUB_KEY]
    if request.query.get("list"):
        listed = await asyncio.get_running_loop().run_in_executor(None, scenario_list)
        return web.json_response({"scenarios": listed})
    op = hub.state.operation
    sid = request.query.get("id") or (op.scenario if op is not None else None)
    injects = scenario_injects(sid) if isinstance(sid, str) and sid else []
    return web.json_response({"scenario": sid, "injects": injects})
