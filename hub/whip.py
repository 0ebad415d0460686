"""WHIP (RFC 9725) publish and WHEP pull endpoints: /whip/<dept>, /whep/<dept>, /whep/wall."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from hub.auth import Principal, Role
from hub.body import BodyError, read_body
from hub.eventlog import HUB, Actor, EventLogError
from hub.server import authenticate
from hub.service import Hub
from hub.sfu import forward, router
from hub.sfu.ice import IceConfig, NoCandidatesError, require_candidates
from hub.sfu.videohub import VideoError, VideoHub, _count_directions
from media.wall import VideoWall
from media.wall_track import WallTrack

log = logging.getLogger("commandhub.whip")

SDP_TYPE = "application/sdp"
MAX_SDP = 200_000
MAX_SESSIONS = 64
WALL = "wall"
STATUS = {"bad_sdp": 422, "no_common_codec": 422, "too_many_tracks": 422, "bad_role": 403,
          "out_of_order": 409, "closed": 503, "no_ice_candidates": 503}


class WhipError(Exception):
    """A WHIP/WHEP request fails with HTTP `status` (body: the JSON error of docs/protocol.md)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code

    def response(self, allow: str | None = None) -> web.Response:
        headers = {"Allow": allow} if allow else None
        return web.json_response({"error": {"code": self.code, "message": str(self)}},
                                 status=self.status, headers=headers)


@dataclass
class _Session:
    """One WHIP publisher (a VideoHub participant) or WHEP viewer (our own peer connection)."""

    kind: str  # "whip" or "whep"
    target: str
    principal: Principal | None = None  # the token that opened it; its revocation ends it
    pid: str = ""
    pc: RTCPeerConnection | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    wall: bool = False


class WhipEndpoints:
    """The HTTP side of WHIP/WHEP. Publishers join the VideoHub like a department's camera;
    WHEP viewers of a department read its shared feed tap (forwarded, not re-encoded); WHEP
    viewers of the wall share one composed WallTrack through a MediaRelay, but aiortc encodes
    per sender, so each wall viewer costs a VP8 encoder: at most `max_wall_viewers`."""

    def __init__(self, hub: Hub, video: VideoHub, ice: IceConfig, *, wall: VideoWall | None,
                 wall_fps: float = 15.0, max_wall_viewers: int = 4,
                 on_wall_viewers: Callable[[int], None] | None = None) -> None:
        self.hub, self.video, self.ice = hub, video, ice
        self.on_wall_viewers = on_wall_viewers
        self.wall, self.wall_fps, self.max_wall_viewers = wall, wall_fps, max_wall_viewers
        self.sessions: dict[str, _Session] = {}
        self._relay: MediaRelay | None = None
        self._wall_track: WallTrack | None = None
        self._log_tasks: set[asyncio.Task[Any]] = set()
        hub.token_watchers.append(self.enforce_tokens)

    def add_routes(self, app: web.Application) -> None:
        for kind in ("whip", "whep"):
            app.router.add_route("*", f"/{kind}/{{target}}", self._endpoint)
            app.router.add_route("*", f"/{kind}/{{target}}/{{session}}", self._session_url)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _endpoint(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.split("/")[1]
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={"Accept-Post": SDP_TYPE,
                                                     "Allow": "OPTIONS, POST"})
        try:
            if request.method != "POST":
                raise WhipError(405, "method_not_allowed", f"{request.method} not allowed here")
            principal = await authenticate(request)
            target = request.match_info["target"]
            takeover = request.query.get("takeover", "") in ("1", "true")
            self._check_target(kind, target, principal, takeover)
            if request.content_type != SDP_TYPE:
                raise WhipError(415, "unsupported_media_type", f"Content-Type must be {SDP_TYPE}")
            try:
                raw = await read_body(request, MAX_SDP)
            except BodyError as exc:
                raise WhipError(exc.status, exc.code, f"SDP offer: {exc}") from exc
            try:
                offer = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WhipError(422, "bad_sdp", "SDP is not UTF-8") from exc
            self._prune()
            if len(self.sessions) >= MAX_SESSIONS:
                raise WhipError(503, "busy", "too many WHIP/WHEP sessions")
            sid = uuid.uuid4().hex
            if kind == "whip":
                answer = await self._publish(sid, target, offer)
            else:
                answer = await self._view(sid, target, offer)
        except WhipError as exc:
            return exc.response("OPTIONS, POST" if exc.status == 405 else None)
        session = self.sessions.get(sid)
        if session is not None:
            session.principal = principal
            await self._log_start(kind, sid, target, principal,
                                  kind == "whip" and principal.dept != target)
        location = f"/{kind}/{target}/{sid}"
        return web.Response(status=201, text=answer, content_type=SDP_TYPE, headers={
            "Location": location, "ETag": f'"{sid}"',
            "Access-Control-Expose-Headers": "Location, ETag"})

    async def _session_url(self, request: web.Request) -> web.StreamResponse:
        allow = "DELETE, OPTIONS"
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={"Allow": allow})
        if request.method != "DELETE":  # PATCH too: no trickle ICE or ICE restart (RFC 9725 4.3)
            return WhipError(405, "method_not_allowed",
                             f"{request.method} not supported (no trickle ICE)").response(allow)
        principal = await authenticate(request)
        sid = request.match_info["session"]
        self._prune()  # a replaced or dropped WHIP publisher's URL is gone
        session = self.sessions.get(sid)
        if session is None or session.target != request.match_info["target"]:
            return WhipError(404, "not_found", "no such session").response()
        owner = session.principal
        if not (owner is not None and principal.jti == owner.jti) \
                and principal.role is not Role.COMMANDER:
            return WhipError(403, "forbidden", "only the token that opened this session, or the "
                             "commander, may end it").response()
        await self._end(sid, "deleted", by=principal)
        return web.Response(status=200)

    def _check_target(self, kind: str, target: str, principal: Principal,
                      takeover: bool = False) -> None:
        depts = self.hub.roster.ids
        if kind == "whip":
            if target not in depts and target != router.CENTER:
                raise WhipError(404, "unknown_department", f"unknown department {target!r}")
            own = principal.dept == target and (str(principal.role) in router.PUBLISHING_ROLES
                                                or principal.role is Role.HUB)  # a call-up
            if own:
                return
            if principal.role is Role.COMMANDER:
                if takeover:
                    return  # logged as video.takeover once the session is up
                raise WhipError(403, "forbidden", f"publishing {target}'s feed needs {target}'s "
                                "token; a commander takes it over explicitly with ?takeover=1 "
                                "(logged as video.takeover)")
            raise WhipError(403, "forbidden", f"this token may not publish {target}")
        if target == WALL:
            if self.wall is None:
                raise WhipError(404, "no_wall", "the video wall is disabled")
        elif target not in depts and target != router.CENTER \
                and self.video.video_source(target) is None:  # e.g. city:police, at a town
            raise WhipError(404, "unknown_department", f"unknown department {target!r}")
        if principal.role is Role.HUB:  # a town hub pulls what the city pushes to it
            if target in router.pushed_to(self.video.routes, principal.dept or ""):
                return
            raise WhipError(403, "forbidden", f"{target} is not pushed to {principal.dept}")
        if not (principal.can("read.all") or principal.dept == target):
            raise WhipError(403, "forbidden", f"this token may not view {target}")

    # -- WHIP: a publisher joins the video hub as the department's camera ----------------------

    async def _publish(self, sid: str, dept: str, sdp: str) -> str:
        """The offer must send (RFC 9725: WHIP ingests); what it would receive is answered
        inactive. A second publisher of `dept` replaces the first (media.unpublished `replaced`;
        the first one's Location is then 404)."""
        pid = f"whip-{sid[:12]}"
        role = "commander" if dept == router.CENTER else "department"
        try:
            counts = _count_directions(sdp)
            if not counts["video"]["send"] and not counts["audio"]["send"]:
                raise VideoError("bad_sdp", "a WHIP offer must send media (sendonly or sendrecv "
                                 "m-lines); this one only receives")
            answer = await self.video.handle_offer(pid, role, dept, sdp, source="whip",
                                                   session=sid, receive=False)
        except VideoError as exc:
            raise WhipError(STATUS.get(exc.code, 422), exc.code, exc.message) from exc
        self.sessions[sid] = _Session("whip", dept, pid=pid)
        return answer

    # -- WHEP: a viewer of one department (forwarded packets) or of the wall (encoded) --------

    async def _view(self, sid: str, target: str, sdp: str) -> str:
        try:
            counts = _count_directions(sdp)
        except VideoError as exc:
            raise WhipError(422, exc.code, exc.message) from exc
        if counts["video"]["recv"] < 1:
            raise WhipError(422, "bad_sdp", "offer has no recvonly video m-line")
        if target == WALL and self._wall_viewers() >= self.max_wall_viewers:
            raise WhipError(503, "busy", f"at most {self.max_wall_viewers} wall viewers")
        pc = RTCPeerConnection(self.ice.rtc_configuration())
        session = _Session("whep", target, pc=pc, wall=target == WALL)
        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:
                raise WhipError(422, "bad_sdp", str(exc)[:200] or type(exc).__name__) from exc
            self._setup_view(session, pc, target)
            forward.answer_dtls_passive(pc)
            await pc.setLocalDescription(await pc.createAnswer())
            try:  # as for publishers: an answer nobody can reach fails now, with the reason
                require_candidates(pc.localDescription.sdp)
            except NoCandidatesError as exc:
                raise WhipError(503, "no_ice_candidates", str(exc)) from exc
        except BaseException:
            await self._close_session(session)
            raise
        self.sessions[sid] = session
        if session.wall and self.on_wall_viewers is not None:
            self.on_wall_viewers(self._wall_viewers())

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._end(sid, f"connection_{pc.connectionState}")

        local = pc.localDescription
        assert local is not None
        return local.sdp

    def _setup_view(self, session: _Session, pc: RTCPeerConnection, target: str) -> None:
        video = [t for t in pc.getTransceivers() if t.kind == "video"
                 and t._offerDirection in ("sendonly", "sendrecv")]  # reversed: we send
        if not video:
            raise WhipError(422, "bad_sdp", "offer has no recvonly video m-line")
        transceiver = video[0]
        if target == WALL:
            if forward.pin_codec(transceiver, ["video/VP8", "video/H264"]) is None:
                raise WhipError(422, "no_common_codec", "the wall is sent as VP8 or H264")
            track = self._wall_subscriber()
            session.tracks.append(track)
            transceiver.sender.replaceTrack(track)
        else:
            # the feed is forwarded as it arrives: the viewer must take its codec (none yet:
            # VP8 or H264, and only a publisher of that codec is shown)
            current = self.video.video_source(target)
            prefs = [f"video/{current.codec}"] if current is not None else ["video/VP8",
                                                                            "video/H264"]
            codec = forward.pin_codec(transceiver, prefs)
            if codec is None:
                raise WhipError(422, "no_common_codec",
                                f"{target} is sent as {current.codec}: offer it" if current
                                else "offer neither VP8 nor H264")
            fwd = forward.ForwardTrack("video")
            transceiver.sender.replaceTrack(fwd)
            fwd.bind_sender(transceiver.sender)
            self.video.add_viewer(target, fwd)  # packets of another codec are not sent
            session.tracks.append(fwd)
        transceiver.direction = "sendonly"

    def _wall_subscriber(self) -> MediaStreamTrack:
        assert self.wall is not None
        if self._wall_track is None or self._wall_track.readyState != "live":
            self._wall_track = WallTrack(self.wall, fps=self.wall_fps)
            self._relay = MediaRelay()
        assert self._relay is not None
        return self._relay.subscribe(self._wall_track, buffered=False)

    def _wall_viewers(self) -> int:
        return sum(1 for s in self.sessions.values() if s.wall)

    # -- ending sessions -----------------------------------------------------------------------

    def _prune(self) -> None:
        gone = [sid for sid, s in self.sessions.items()
                if s.kind == "whip" and s.pid not in self.video.participants]
        for sid in gone:
            session = self.sessions.pop(sid)
            self._spawn_log(self._log_end(sid, session, "gone", None))

    async def enforce_tokens(self) -> None:
        """End every session whose token was revoked, expired or is for another operation
        (run by the hub's token check, about once a second and right after a revocation)."""
        for sid, session in list(self.sessions.items()):
            if session.principal is None:
                continue
            problem = self.hub.token_problem(session.principal)
            if problem is not None:
                await self._end(sid, problem)

    async def _log_start(self, kind: str, sid: str, target: str, principal: Principal,
                         takeover: bool) -> None:
        who = {"role": str(principal.role), "dept": principal.dept, "jti": principal.jti}
        body = {"protocol": kind, "session": sid[:12], "target": target, **who}
        with contextlib.suppress(EventLogError):  # the session works; /healthz shows the log
            await self.hub.emit("video.session_started", body, _actor(principal))
            if takeover:
                await self.hub.emit("video.takeover", {"dept": target, "session": sid[:12],
                                                       "by": principal.actor,
                                                       "jti": principal.jti}, _actor(principal))

    async def _log_end(self, sid: str, session: _Session, reason: str,
                       by: Principal | None) -> None:
        owner = session.principal
        body: dict[str, Any] = {"protocol": session.kind, "session": sid[:12],
                                "target": session.target, "reason": reason,
                                "jti": owner.jti if owner is not None else None}
        if by is not None:
            body["by"] = by.actor
            body["by_commander"] = by.role is Role.COMMANDER and (
                owner is None or by.jti != owner.jti)
        with contextlib.suppress(EventLogError):
            await self.hub.emit("video.session_ended", body,
                                _actor(by) if by is not None else HUB)

    def _spawn_log(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._log_tasks.add(task)
        task.add_done_callback(self._log_tasks.discard)

    async def _end(self, sid: str, reason: str = "closed", by: Principal | None = None) -> None:
        """End a session; `reason` as logged in video.session_ended (DELETE: `deleted`, a
        deliberate leave; a token problem: `revoked`, `expired`, `wrong_operation`)."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        await self._log_end(sid, session, reason, by)
        if session.kind == "whip":
            await self.video.leave(session.pid, _LEAVE_REASONS.get(reason, reason))
        else:
            await self._close_session(session)
        if session.wall and self.on_wall_viewers is not None:
            self.on_wall_viewers(self._wall_viewers())
        if self._wall_track is not None and not self._wall_viewers():
            self._wall_track.stop()  # ends the relay's reader: the wall is composed only when watched
            self._wall_track, self._relay = None, None

    @staticmethod
    async def _close_session(session: _Session) -> None:
        for task in session.tasks:
            task.cancel()
        for track in session.tracks:
            track.stop()
        if session.pc is not None:
            with contextlib.suppress(Exception):
                await session.pc.close()

    async def close(self) -> None:
        for sid in list(self.sessions):
            await self._end(sid, "hub_closed")
        if self._log_tasks:
            await asyncio.wait(list(self._log_tasks), timeout=5.0)


def _actor(principal: Principal) -> Actor:
    return Actor(str(principal.role), principal.dept)


# a session's end reason (video.session_ended) as the feed's (media.unpublished cause,
# and whether it is an outage: hub.sfu.videohub.DELIBERATE)
_LEAVE_REASONS = {"deleted": "left", "expired": "revoked", "wrong_operation": "revoked",
                  "connection_failed": "ice_failed", "connection_closed": "closed"}
