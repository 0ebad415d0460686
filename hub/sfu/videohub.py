"""The VideoHub: one aiortc peer connection per participant, feeds forwarded by the routes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from hub.sfu import forward, router
from hub.sfu.ice import IceConfig, NoCandidatesError, apply_host_addresses, require_candidates
from hub.sfu.linkstats import LinkStats, collect_link_stats, format_metrics
from hub.sfu.peers import PacketSource, Participant, Slot
from hub.sfu.tap import FeedTap

logger = logging.getLogger(__name__)

Emit = Callable[[str, str | None, dict[str, Any]], Awaitable[None]]
SlotsCallback = Callable[[str, dict[str, Any]], Awaitable[None]]
ErrorCallback = Callable[[str, str, str], Awaitable[None]]

ROLES = ("commander", "department", "evaluator", "observer")
DELIBERATE = ("left", "replaced", "hub_closed", "kicked", "revoked")
SOURCES = ("webrtc", "whip", "ingest")  # of handle_offer; add_external: "ingest" or "tier"
# `media.unpublished` cause for each reason a feed ends (docs/events.md); others: "closed"
CAUSES = {"left": "left", "replaced": "replaced", "revoked": "revoked", "kicked": "revoked",
          "hub_closed": "closed", "closed": "closed", "socket_closed": "closed",
          "ice_closed": "closed", "heartbeat": "timeout", "ice_timeout": "timeout",
          "timeout": "timeout", "ice_failed": "error", "dtls_failed": "error", "error": "error",
          "too_large": "error"}
VIDEO_CODECS = ("video/VP8", "video/H264")
AUDIO_CODECS = ("audio/opus", "audio/PCMU", "audio/PCMA", "audio/G722")
MAX_SLOTS = 64


class VideoError(Exception):
    """Bad input to the video hub; `code` goes into the error frame sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _count_directions(sdp: str) -> dict[str, dict[str, int]]:
    """Per kind: how many m-lines the offerer sends on and receives on. Raises bad_sdp."""
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise VideoError("bad_sdp", f"cannot parse SDP: {exc!s:.200}") from exc
    counts = {"audio": {"send": 0, "recv": 0}, "video": {"send": 0, "recv": 0}}
    if not description.media:
        raise VideoError("bad_sdp", "offer has no media")
    for media in description.media:
        dtls, ice = media.dtls, media.ice
        if dtls is None or not dtls.fingerprints or ice is None or not ice.usernameFragment:
            raise VideoError("bad_sdp", f"m-line {media.kind} lacks ICE credentials or DTLS "
                             "fingerprint")
        if media.kind not in counts:
            continue
        if media.direction in ("sendonly", "sendrecv"):
            counts[media.kind]["send"] += 1
        if media.direction in ("recvonly", "sendrecv"):
            counts[media.kind]["recv"] += 1
    return counts


def unpublish_cause(reason: str) -> str:
    """The `cause` of `media.unpublished` for a reason a publisher went away."""
    return CAUSES.get(reason, "closed")


class ExternalSource(PacketSource):
    """A department's video that does not arrive over WebRTC (a camera ingest); feed `deliver()`."""

    def __init__(self, dept: str, codec: str, clock: Callable[[], float] = time.monotonic,
                 on_keyframe_request: Callable[[], None] | None = None,
                 session: str | None = None) -> None:
        no_transceiver: Any = SimpleNamespace(_codecs=[])  # PacketSource reads the codec there
        super().__init__(dept, "video", no_transceiver, clock)
        self.codec = codec
        self.session = session or uuid.uuid4().hex[:12]
        self._on_keyframe_request = on_keyframe_request

    def request_keyframe(self) -> None:
        if self._on_keyframe_request is not None and not self.closed:
            self._on_keyframe_request()


@dataclass
class Feed:
    """A department's video feed from one publisher: live from its first frame to its end."""

    dept: str
    source: PacketSource
    kind: str  # "webrtc", "whip", "ingest" or "tier" (the `source` of media.published)
    session: str
    live: bool = False  # media.published logged
    ended: bool = False

    def payload(self) -> dict[str, Any]:
        return {"dept": self.dept, "source": self.kind, "session": self.session}


FeedListener = Callable[[str, Feed, str | None], None]  # ("published"|"unpublished", feed, cause)


class VideoHub:
    """WebRTC routing of the departments' feeds, forwarded without transcoding.

    Slot convention (docs/video.md): the client's offer carries at most one sending m-line
    per kind (its camera and microphone) and N receiving ones (slots). Slot i of a kind is
    the i-th receiving m-line of that kind in the offer; `on_slots` tells which department
    each slot carries whenever that changes.
    """

    def __init__(
        self, *, emit: Emit, groups: Mapping[str, Sequence[str]], ice: IceConfig,
        clock: Callable[[], float] = time.monotonic, on_slots: SlotsCallback | None = None,
        on_error: ErrorCallback | None = None, departments: Sequence[str] = (),
        video_codecs: Sequence[str] = VIDEO_CODECS, connect_timeout: float = 20.0,
        stats_interval: float = 5.0,
    ) -> None:
        forward.check_internals()  # fails loudly if aiortc's internals moved
        forward.install_dtls_ciphers()
        forward.install_consent_check()
        apply_host_addresses(ice)
        self._emit = emit
        self._groups = {g: tuple(m) for g, m in groups.items()}
        self._ice = ice
        self._clock = clock
        self.on_slots = on_slots
        self.on_error = on_error
        self._video_codecs = list(video_codecs)
        self._connect_timeout = connect_timeout
        self._stats_interval = stats_interval
        order = list(departments) + [m for ms in self._groups.values() for m in ms]
        self._departments = list(dict.fromkeys(order))
        self._participants: dict[str, Participant] = {}
        self._negotiating: set[str] = set()
        self._publishers: dict[str, dict[str, PacketSource]] = {}
        self._attached: dict[int, PacketSource] = {}  # id(slot track) -> source feeding it
        self._state = router.RouteState()
        self._outages: dict[str, float] = {}
        self._feeds: dict[str, Feed] = {}  # dept -> its current video feed
        self.feed_listeners: list[FeedListener] = []
        self._feed_log: asyncio.Task[None] | None = None  # last feed event being logged
        self._taps: dict[str, FeedTap] = {}
        self._viewers: dict[str, set[forward.ForwardTrack]] = {}  # WHEP viewers, by dept
        self._link_stats: dict[tuple[str, str], LinkStats] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stats_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._slot_versions = itertools.count(1)  # hub-wide: a replaced participant's maps are older

    # ----------------------------------------------------------------- signaling
    async def handle_offer(self, participant_id: str, role: str, dept: str | None, sdp: str, *,
                           source: str = "webrtc", session: str | None = None,
                           receive: bool = True) -> str:
        """Answer a client's offer with a fresh peer connection (replacing any previous one).

        `source`/`session` name the publisher in media.published/unpublished (WebRTC over the
        WebSocket: the participant id); `receive=False` (WHIP) answers receiving m-lines
        inactive: the participant gets no slots.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        if self._closed:
            raise VideoError("closed", "video hub is shutting down")
        if role not in ROLES:
            raise VideoError("bad_role", f"unknown role {role!r}")
        if role == "commander":
            dept = router.CENTER
        if role in router.PUBLISHING_ROLES and not dept:
            raise VideoError("bad_role", f"role {role} needs a department")
        if participant_id in self._negotiating:
            raise VideoError("out_of_order", "an offer from this participant is being answered")
        if not isinstance(sdp, str) or len(sdp) > 200_000:
            raise VideoError("bad_sdp", "SDP missing or too large")
        counts = _count_directions(sdp)
        publishes = role in router.PUBLISHING_ROLES
        for kind, c in counts.items():
            if c["send"] > (1 if publishes else 0):
                raise VideoError(
                    "too_many_tracks", f"role {role} may publish {1 if publishes else 0} {kind}"
                )
            if c["recv"] > MAX_SLOTS:
                raise VideoError("too_many_tracks", f"at most {MAX_SLOTS} {kind} receive slots")
        self._negotiating.add(participant_id)
        self._ensure_stats_task()
        pc = RTCPeerConnection(self._ice.rtc_configuration())
        try:
            participant = await self._negotiate(participant_id, role, dept, pc, sdp, receive)
        except BaseException:
            with contextlib.suppress(Exception):
                await pc.close()
            raise
        finally:
            self._negotiating.discard(participant_id)
        participant.source, participant.session = source, session or participant_id
        async with self._lock:
            old = self._participants.pop(participant_id, None)
            if old is not None:
                await self._drop(old, "replaced")
            if publishes and dept is not None and participant.published:
                for other in list(self._participants.values()):
                    if other.dept == dept and other.published:
                        # the same department published again from elsewhere: keep the newest
                        self._participants.pop(other.pid, None)
                        await self._drop(other, "replaced")
                self._set_publisher(dept, participant.published, source, participant.session)
            participant.slot_version = next(self._slot_versions)  # above any map of its predecessor
            self._participants[participant_id] = participant
            self._watch(participant)
            await self._apply_routes()
        local = pc.localDescription
        assert local is not None
        return local.sdp

    async def _negotiate(
        self, pid: str, role: str, dept: str | None, pc: RTCPeerConnection, sdp: str,
        receive: bool = True,
    ) -> Participant:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except VideoError:
            raise
        except Exception as exc:
            text = str(exc)
            if "send parameters" in text or "codec" in text.lower():
                raise VideoError("no_common_codec", text[:200]) from exc
            raise VideoError("bad_sdp", text[:200] or type(exc).__name__) from exc
        participant = Participant(pid=pid, role=role, dept=dept, pc=pc, joined=self._clock())
        for transceiver in pc.getTransceivers():
            self._setup_transceiver(participant, transceiver, receive)
        forward.answer_dtls_passive(pc)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        try:  # an answer nobody can reach is an error now, not a 20 s ice_timeout later
            require_candidates(pc.localDescription.sdp if pc.localDescription else "")
        except NoCandidatesError as exc:
            raise VideoError("no_ice_candidates", str(exc)) from exc
        return participant

    def _setup_transceiver(self, participant: Participant, transceiver: RTCRtpTransceiver,
                           receive: bool = True) -> None:
        kind = transceiver.kind
        offered: str | None = transceiver._offerDirection  # the hub's side, already reversed
        prefs = self._video_codecs if kind == "video" else list(AUDIO_CODECS)
        slot_only = offered == "sendonly" and kind == "video" and receive
        # a receiving slot may carry any codec of the list (the payload type tells which);
        # a published track is pinned to one, so its publisher has to send that one
        codecs = forward.pin_codecs(transceiver, prefs) if slot_only else []
        codec = codecs[0] if codecs else forward.pin_codec(transceiver, prefs)
        if codec is None:
            raise VideoError("no_common_codec", f"no {kind} codec in common (hub: {prefs})")
        if offered in ("recvonly", "sendrecv") and participant.dept is not None:
            source = PacketSource(participant.dept, kind, transceiver, self._clock)
            source.rtp_forwarding = kind == "video"
            forward.install_passthrough(
                transceiver.receiver, source.deliver, self._clock,
                on_packet=source.forward_rtp if source.rtp_forwarding else None)
            participant.published[kind] = source
        if offered in ("sendonly", "sendrecv") and not receive:
            transceiver.direction = "recvonly" if offered == "sendrecv" else "inactive"
        elif offered in ("sendonly", "sendrecv"):
            track = forward.ForwardTrack(kind, clock=self._clock)
            transceiver.sender.replaceTrack(track)
            track.bind_sender(transceiver.sender)
            transceiver.direction = offered
            index = len(participant.slots[kind])
            participant.slots[kind].append(
                Slot(index, kind, transceiver, track, tuple(codecs) or (codec,)))

    def _watch(self, participant: Participant) -> None:
        pc = participant.pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and not participant.connected:
                participant.connected = True
                await self._connected(participant)
            elif state in ("failed", "closed") and not participant.closing:
                reason = "dtls_failed" if forward.dtls_failed(pc) else "ice_" + state
                self._spawn(self.leave(participant.pid, reason))

        self._spawn(self._connect_deadline(participant), owner=participant)

    async def _connect_deadline(self, participant: Participant) -> None:
        await asyncio.sleep(self._connect_timeout)
        if not participant.connected and not participant.closing:
            if self.on_error is not None:
                await self.on_error(
                    participant.pid, "ice_timeout",
                    f"ICE did not complete within {self._connect_timeout:.0f} s",
                )
            await self.leave(participant.pid, "ice_timeout")

    async def _connected(self, participant: Participant) -> None:
        for source in participant.published.values():
            source.request_keyframe()
        for slot in participant.all_slots():
            slot.track.restart()  # frames queued before the link was up are stale

    async def leave(self, participant_id: str, reason: str) -> None:
        """The participant is gone (left, socket closed, heartbeat lost, ICE/DTLS failed).

        Only a feed that had video can be lost: a publisher whose connection never came up
        logs `rtc.failed`, not `video.lost`.
        """
        async with self._lock:
            participant = self._participants.pop(participant_id, None)
            if participant is None:
                return
            ended = await self._drop(participant, reason)
            dept = participant.dept
            lost = (
                ended is not None and dept is not None and reason not in DELIBERATE
                and dept not in self._outages and dept not in self._feeds
            )
            if lost and dept is not None:
                self._outages[dept] = self._clock()
            await self._apply_routes()
        if not participant.connected and reason not in DELIBERATE:
            await self._emit("rtc.failed", dept, {
                "dept": dept, "role": participant.role, "source": participant.source,
                "session": participant.session, "reason": reason})
            logger.warning("%s (%s %s) never connected: %s", participant.pid, participant.role,
                           dept, reason)
        if lost:
            await self._emit("video.lost", dept, {"dept": dept, "cause": "connection",
                                                  "reason": reason})

    async def _drop(self, participant: Participant, reason: str) -> Feed | None:
        """Close a participant that was taken out of `_participants`; returns its feed if one
        had started and ends with it."""
        for slot in participant.all_slots():
            self._detach(slot)
        dept = participant.dept
        ended = None
        if dept is not None:
            ended = self._clear_publisher(dept, participant.published, reason)
        await participant.close()
        if ended is not None:
            await self._feed_logged()
        return ended

    # ------------------------------------------------------------------ feeds
    # `_set_publisher` and `_clear_publisher` are the one place where a department's published
    # media is set and cleared, for every kind of publisher: its feed's life is logged here.

    def _set_publisher(self, dept: str, sources: dict[str, PacketSource], kind: str,
                       session: str) -> None:
        current = self._publishers.get(dept)
        if current is not None and current is not sources:
            self._clear_publisher(dept, current, "replaced")
        self._publishers[dept] = sources
        video = sources.get("video")
        if video is None:
            return
        for track in self._live_viewers(dept):
            video.subscribers.add(track)
            track.restart()  # a new stream: start it at a keyframe
        feed = Feed(dept, video, kind, session)
        self._feeds[dept] = feed
        video.on_first_frame = lambda: self._feed_started(feed)
        tap = self._taps.get(dept)
        if tap is not None:
            tap.attach(video)  # once, however often the source is published

    def _clear_publisher(self, dept: str, sources: dict[str, PacketSource],
                         reason: str) -> Feed | None:
        """Unpublish `sources` if they are `dept`'s current ones; returns the feed that ended
        (None if it never had video: then nothing is logged)."""
        if self._publishers.get(dept) is not sources:
            return None
        del self._publishers[dept]
        video = sources.get("video")
        if video is not None:
            video.subscribers.difference_update(self._viewers.get(dept, ()))
        feed = self._feeds.get(dept)
        if feed is None or feed.source is not sources.get("video"):
            return None
        del self._feeds[dept]
        feed.ended = True
        if not feed.live:
            return None
        cause = unpublish_cause(reason)
        self._log_feed("media.unpublished", {**feed.payload(), "cause": cause, "reason": reason})
        for listener in self.feed_listeners:
            listener("unpublished", feed, cause)
        return feed

    def _feed_started(self, feed: Feed) -> None:
        """The feed's first frame arrived (called from its source, on the event loop)."""
        if feed.live or feed.ended or self._feeds.get(feed.dept) is not feed:
            return
        feed.live = True
        self._log_feed("media.published", feed.payload())
        for listener in self.feed_listeners:
            listener("published", feed, None)
        started = self._outages.pop(feed.dept, None)
        if started is not None:
            self._log_feed("video.restored", {
                "dept": feed.dept, "was": "lost", "cause": "connection",
                "duration_s": round(self._clock() - started, 3)})

    def _log_feed(self, kind: str, payload: dict[str, Any]) -> None:
        """Log a feed event after the previous one (they are raised from sync callbacks)."""
        previous = self._feed_log

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await self._emit(kind, payload["dept"], payload)
            except Exception:
                logger.exception("could not log %s", kind)

        task = asyncio.ensure_future(run())
        self._feed_log = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _feed_logged(self) -> None:
        """Wait until the feed events raised so far are logged (keeps them before what follows)."""
        if self._feed_log is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._feed_log)

    def feeds(self) -> dict[str, Feed]:
        """Each department's current video feed (live or waiting for its first frame)."""
        return dict(self._feeds)

    # ------------------------------------------------------------------- routing
    def _published(self, kind: str) -> list[str]:
        present = [d for d, sources in self._publishers.items() if kind in sources]
        rank = {d: i for i, d in enumerate([router.CENTER, *self._departments])}
        return sorted(present, key=lambda d: (rank.get(d, len(rank)), d))

    def _detach(self, slot: Slot) -> None:
        source = self._attached.pop(id(slot.track), None)
        if source is not None:
            source.subscribers.discard(slot.track)

    def _attach(self, slot: Slot, dept: str | None) -> None:
        self._detach(slot)
        slot.track.switch(None)
        if dept is None:
            return
        source = self._publishers[dept][slot.kind]
        slot.track.on_keyframe_request = source.request_keyframe
        source.subscribers.add(slot.track)
        self._attached[id(slot.track)] = source
        slot.track.switch(dept)

    async def _apply_routes(self) -> None:
        published = {kind: self._published(kind) for kind in ("video", "audio")}
        changed: list[Participant] = []
        for participant in list(self._participants.values()):
            member = router.Member(participant.pid, participant.role, participant.dept)
            moved = False
            for kind, wants in (("video", router.video_wants), ("audio", router.audio_wants)):
                slots = participant.slots[kind]
                if not slots:
                    continue
                wanted = wants(self._state, self._groups, member, published[kind])

                def fits(i: int, dept: str, slots: list[Slot] = slots, kind: str = kind) -> bool:
                    return self._publishers[dept][kind].codec in slots[i].codecs

                plan = router.assign_slots([s.source for s in slots], wanted, fits)
                for slot, dept in zip(slots, plan, strict=True):
                    current = self._publishers.get(dept or "", {}).get(kind)
                    if slot.source != dept or self._attached.get(id(slot.track)) is not current:
                        self._attach(slot, dept)
                        moved = True
            if moved:
                participant.slot_version = next(self._slot_versions)
                changed.append(participant)
        if self.on_slots is not None:
            for participant in changed:
                try:
                    await self.on_slots(participant.pid, self.slot_info(participant.pid))
                except Exception:  # a closed socket must not break routing for others
                    logger.exception("on_slots failed for %s", participant.pid)

    def slot_map(self, participant_id: str, kind: str = "video") -> dict[int, str]:
        """Slot index -> department currently carried, for one participant."""
        participant = self._participants.get(participant_id)
        return participant.slot_map(kind) if participant else {}

    def slot_info(self, participant_id: str) -> dict[str, Any]:
        """The `rtc.slots` frame body: per kind, each slot's mid and department (or null), and
        a `version` that grows with every change (a client keeps the map with the highest)."""
        participant = self._participants.get(participant_id)
        out: dict[str, Any] = {"type": "rtc.slots", "video": [], "audio": [], "version": 0}
        if participant is None:
            return out
        out["version"] = participant.slot_version
        for kind in ("video", "audio"):
            out[kind] = []
            for s in participant.slots[kind]:
                source = self._attached.get(id(s.track))
                out[kind].append({"slot": s.index, "mid": s.transceiver.mid, "dept": s.source,
                                  "codec": source.codec if source is not None else s.codecs[0],
                                  "codecs": list(s.codecs)})
        return out

    def _known(self, dept: str) -> bool:
        return dept == router.CENTER or dept in self._departments or dept in self._publishers

    def _require(self, dept: str) -> None:
        if not self._known(dept):
            raise VideoError("bad_route", f"unknown department {dept!r}")

    async def _route(self, action: str, source: str, targets: Any, **extra: Any) -> None:
        await self._emit("route.changed", None, {
            "action": action, "source": source, "targets": targets, **extra,
        })
        async with self._lock:
            await self._apply_routes()

    async def push(self, source: str, targets: Sequence[str] | Literal["all"]) -> None:
        """Horizontal dispatch: show `source` to `targets` (departments, groups or "all")."""
        self._require(source)
        try:
            resolved = router.validate_targets(targets, self._departments, self._groups)
        except router.RouteError as exc:
            raise VideoError("bad_route", str(exc)) from exc
        self._state.pushes.pop(source, None)
        self._state.pushes[source] = resolved
        await self._route("push", source, resolved if resolved == "all" else list(resolved))

    async def unpush(self, source: str) -> None:
        self._require(source)
        targets = self._state.pushes.pop(source, ())
        await self._route("unpush", source, targets if targets == "all" else list(targets))

    async def set_group_channel(self, group: str, on: bool) -> None:
        if group not in self._groups:
            raise VideoError("bad_route", f"unknown group {group!r}")
        (self._state.groups_on.add if on else self._state.groups_on.discard)(group)
        await self._route("group", group, list(self._groups[group]), on=on)

    async def link(self, a: str, b: str) -> None:
        self._require(a)
        self._require(b)
        if a == b:
            raise VideoError("bad_route", "cannot link a department to itself")
        self._state.links.add(frozenset((a, b)))
        await self._route("link", a, [b])

    async def unlink(self, a: str, b: str) -> None:
        self._state.links.discard(frozenset((a, b)))
        await self._route("unlink", a, [b])

    async def mute(self, dept: str, muted: bool) -> None:
        self._require(dept)
        (self._state.muted.add if muted else self._state.muted.discard)(dept)
        await self._route("mute" if muted else "unmute", dept, [router.CENTER])

    async def talk_to(self, dept: str | None) -> None:
        """Commander audio to one department only (None: to all again)."""
        if dept is not None:
            self._require(dept)
        self._state.talk_to = dept
        await self._route("talk", router.CENTER, "all" if dept is None else [dept])

    @property
    def routes(self) -> router.RouteState:
        return self._state

    # ------------------------------------------------------------ taps and stats
    def frame_tap(self, dept: str) -> FeedTap:
        """The shared tap on `dept`'s video (created on first use, kept across reconnects)."""
        tap = self._taps.get(dept)
        if tap is None:
            tap = FeedTap(dept, lambda: self._request_keyframe(dept))
            self._taps[dept] = tap
            source = self._publishers.get(dept, {}).get("video")
            if source is not None:
                tap.attach(source)
        return tap

    def add_viewer(self, dept: str, track: forward.ForwardTrack) -> None:
        """Forward `dept`'s video (RTP level, whichever publisher it has now or later) to
        `track`, a viewer's slot outside the routes (WHEP); stopping the track ends it."""
        self._live_viewers(dept).add(track)
        track.on_keyframe_request = lambda: self._request_keyframe(dept)
        source = self.video_source(dept)
        if source is not None:
            source.subscribers.add(track)
        track.switch(dept)

    def _live_viewers(self, dept: str) -> set[forward.ForwardTrack]:
        viewers = self._viewers.setdefault(dept, set())
        for track in [t for t in viewers if t.readyState != "live"]:
            viewers.discard(track)
            source = self.video_source(dept)
            if source is not None:
                source.subscribers.discard(track)
        return viewers

    def request_keyframe(self, dept: str) -> None:
        """Ask `dept`'s current video publisher for a keyframe (no-op when none)."""
        self._request_keyframe(dept)

    def video_source(self, dept: str) -> PacketSource | None:
        """`dept`'s current video publisher (WebRTC or external; `.codec`), None if none."""
        return self._publishers.get(dept, {}).get("video")

    async def add_external(self, dept: str, source: PacketSource, kind: str = "ingest") -> None:
        """Publish `source` as `dept`'s video without a peer connection of this hub: a camera
        ingest (an ExternalSource), or a feed this hub pulled from its city (`kind` "tier").

        A WebRTC publisher of the same department that joins later replaces it.
        """
        session = source.session if isinstance(source, ExternalSource) else uuid.uuid4().hex[:12]
        async with self._lock:
            self._set_publisher(dept, {"video": source}, kind, session)
            await self._apply_routes()

    async def remove_external(self, dept: str, source: PacketSource, reason: str = "closed") -> None:
        """Stop publishing an external source added by `add_external` (if still current);
        `reason` as for `leave` (media.unpublished's cause: `left`, `error`, `replaced`...)."""
        async with self._lock:
            source.close()
            current = self._publishers.get(dept)
            if current is not None and current.get("video") is source:
                self._clear_publisher(dept, current, reason)
                await self._apply_routes()
        await self._feed_logged()

    def _request_keyframe(self, dept: str) -> None:
        source = self._publishers.get(dept, {}).get("video")
        if source is not None:
            source.request_keyframe()

    def _ensure_stats_task(self) -> None:
        if self._stats_task is None and self._stats_interval > 0:
            self._stats_task = asyncio.ensure_future(self._stats_loop())

    async def _stats_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._stats_interval)
            try:
                await self.collect_stats(log=True)
            except Exception:
                logger.exception("link stats collection failed")

    async def collect_stats(self, log: bool = False) -> None:
        """Refresh link health from getStats (and log one `link.stats` event per track)."""
        for participant in list(self._participants.values()):
            if not participant.connected or participant.closing:
                continue
            for kind, source in participant.published.items():
                key = (source.dept, kind)
                stats = await collect_link_stats(participant, source, self._link_stats.get(key))
                self._link_stats[key] = stats
                if log:
                    await self._emit("link.stats", source.dept, stats.event_payload())

    def stats(self) -> dict[str, Any]:
        """Per participant and track link health, routes and outages (for the state API)."""
        now = self._clock()
        participants: dict[str, Any] = {}
        for pid, p in self._participants.items():
            published = {}
            for kind, source in p.published.items():
                fps, kbps = source.rates()
                link = self._link_stats.get((source.dept, kind))
                published[kind] = {
                    "codec": source.codec, "fps": round(fps, 2), "bitrate_kbps": round(kbps, 1),
                    "frames": source.frames, "keyframes": source.keyframes,
                    "freezes": source.freezes, "subscribers": len(source.subscribers),
                    "loss_pct": link.loss_pct if link else None,
                    "rtt_ms": link.rtt_ms if link else None,
                }
            participants[pid] = {
                "role": p.role, "dept": p.dept, "connected": p.connected,
                "state": p.pc.connectionState, "published": published,
                "slots": {k: {str(i): d for i, d in p.slot_map(k).items()}
                          for k in ("video", "audio")},
                "forwarded": sum(s.track.frames_forwarded for s in p.all_slots()),
                "dropped": sum(s.track.frames_dropped for s in p.all_slots()),
                "rtp": {"packets": sum(s.track.packets_sent for s in p.all_slots()),
                        "nacks": sum(s.track.nacks for s in p.all_slots()),
                        "retransmits": sum(s.track.retransmits for s in p.all_slots())},
            }
        return {
            "participants": participants,
            "routes": self._state.snapshot(),
            "outages": {d: round(now - t, 3) for d, t in self._outages.items()},
            "feeds": {d: {**f.payload(), "live": f.live} for d, f in self._feeds.items()},
        }

    def metrics_text(self) -> str:
        """Prometheus text exposition of the link health (for /metrics)."""
        return format_metrics(self.stats())

    # ------------------------------------------------------------------ lifecycle
    def _spawn(self, coro: Awaitable[Any], owner: Participant | None = None) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        holder = owner.tasks if owner is not None else self._tasks
        holder.add(task)
        task.add_done_callback(holder.discard)

    @property
    def participants(self) -> dict[str, Participant]:
        return self._participants

    async def close(self) -> None:
        """Close every peer connection and task."""
        self._closed = True
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
        async with self._lock:
            for participant in list(self._participants.values()):
                await self._drop(participant, "hub_closed")
            self._participants.clear()
            for dept, sources in list(self._publishers.items()):  # external ones (ingest)
                self._clear_publisher(dept, sources, "hub_closed")
        await self._feed_logged()
        for tap in self._taps.values():
            tap.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
