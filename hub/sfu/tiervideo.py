"""The town side of tier video: the one feed of this town the city called up, published to
the city by WHIP as the town's feed; each city feed the city's routes push to this town,
pulled by WHEP and pushed here to every department as `city:SOURCE`.

Nothing goes up unless the city asks (`link.callup`), and a pushed feed is pulled only while
the city pushes it (`link.pushes`, sent again on every reconnect). Both ends forward RTP as
it arrives: no decoding, no re-encoding at either hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from hub.api.errors import HubError
from hub.eventlog import Actor
from hub.sfu import forward, router
from hub.sfu.peers import PacketSource

if TYPE_CHECKING:
    from hub.service import Hub
    from hub.sfu.videohub import VideoHub

logger = logging.getLogger(__name__)

CITY_PREFIX = "city:"  # a city feed pushed to this town is published here as city:<its id>
SDP_TYPE = "application/sdp"
KEEP_S = 2.0  # a failed call-up or pull is set up again this often
UPLINK = Actor("uplink", None)


class TierVideoError(HubError):
    """A call-up cannot be done: `unknown_target` (no such department here) or
    `callup_failed` (the city refused the WHIP/WHEP offer: its code and message follow)."""


@dataclass
class _Peer:
    """One peer connection to the city: the called-up feed (WHIP) or a pushed one (WHEP)."""

    target: str  # the department sent up, or the city source pulled
    pc: RTCPeerConnection
    location: str | None = None
    tracks: list[Any] = field(default_factory=list)
    source: PacketSource | None = None


class TierVideo:
    """Keeps this town's video link to the city as the city asks."""

    def __init__(self, hub: Hub, video: VideoHub, base_url: str, token: str,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.hub, self.video = hub, video
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._ssl = ssl_context
        self._http: aiohttp.ClientSession | None = None
        self.up: _Peer | None = None  # the feed the city watches
        self.pulled: dict[str, _Peer] = {}  # city source -> its WHEP pull
        self._asked: tuple[str, str] | None = None  # (town, dept) the city called up
        self._pushes: list[str] = []  # the city sources it pushes to this town
        self._lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None
        self._said = ""

    # -- the city asks ------------------------------------------------------------------------

    async def call_up(self, town: str, dept: str | None, fresh: bool = False) -> None:
        """Send `dept`'s feed up as `town`'s (None: stop sending); `fresh`: publish again
        even if the current WHIP session looks alive (the city may have restarted).
        TierVideoError if the department is unknown here or the city refuses the offer."""
        if dept is not None and dept not in self.hub.roster.ids and dept != router.CENTER:
            raise TierVideoError("unknown_target", f"{town} has no department {dept!r} "
                                 f"(it has {', '.join(self.hub.roster.ids)})")
        self._asked = (town, dept) if dept is not None else None
        self._keep()
        async with self._lock:
            if self.up is not None and self.up.target == dept and self._alive(self.up) \
                    and not fresh:
                return
            was, self.up = self.up, None
            if was is not None:
                await self._close(was)
            if dept is None:
                if was is not None:
                    await self.hub.emit("route.changed", {"action": "release",
                                                          "source": was.target,
                                                          "targets": ["city"]}, UPLINK)
                return
            try:
                self.up = await self._publish(town, dept)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise TierVideoError("callup_failed", f"cannot reach the city's WHIP "
                                     f"endpoint: {exc or type(exc).__name__}") from exc
            await self.hub.emit("route.changed", {"action": "callup", "source": dept,
                                                  "targets": ["city"]}, UPLINK)

    async def set_pushes(self, sources: list[str], fresh: bool = False) -> None:
        """Pull each city source in `sources` and push it here to all; drop the others.
        `fresh`: pull each again even if its WHEP session looks alive."""
        self._pushes = list(sources)
        self._keep()
        async with self._lock:
            for source in [s for s in self.pulled if s not in sources]:
                await self._unpull(source)
            for source in sources:
                peer = self.pulled.get(source)
                if peer is not None and self._alive(peer) and not fresh:
                    continue
                if peer is not None:
                    await self._unpull(source)
                try:
                    self.pulled[source] = await self._pull(source)
                except (TierVideoError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    logger.warning("tier video: cannot pull %s from the city: %s", source, exc)
                    continue
                await self.video.push(CITY_PREFIX + source, "all")

    def _keep(self) -> None:
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_up(), name="tier-video")

    async def _keep_up(self) -> None:
        """Every KEEP_S: a called-up feed or a pull whose connection failed (the city went
        away, the network broke) is set up again, for as long as the city wants it."""
        while True:
            await asyncio.sleep(KEEP_S)
            try:
                if self._asked is not None and (self.up is None or not self._alive(self.up)):
                    await self.call_up(*self._asked, fresh=True)
                if any(s not in self.pulled or not self._alive(self.pulled[s])
                       for s in self._pushes):
                    await self.set_pushes(self._pushes)
                self._said = ""
            except Exception as exc:  # said once per kind of failure; tried again
                if str(exc) != self._said:
                    self._said = str(exc)
                    logger.warning("tier video: cannot restore the link to the city: %s", exc)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        async with self._lock:
            if self.up is not None:
                await self._close(self.up)
                self.up = None
            for source in list(self.pulled):
                await self._unpull(source)
        if self._http is not None:
            await self._http.close()

    # -- up: WHIP ------------------------------------------------------------------------------

    async def _publish(self, town: str, dept: str) -> _Peer:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peer = _Peer(dept, pc)
        try:
            track = forward.ForwardTrack("video")
            transceiver = pc.addTransceiver(track, direction="sendonly")
            current = self.video.video_source(dept)
            codecs = [f"video/{current.codec}"] if current is not None else ["video/VP8"]
            transceiver.setCodecPreferences([
                c for c in _video_capabilities() if c.mimeType in codecs])
            track.bind_sender(transceiver.sender)
            peer.tracks.append(track)
            peer.location = await self._exchange(pc, f"/whip/{town}")
            self.video.add_viewer(dept, track)
        except BaseException:
            await self._close(peer)
            raise
        return peer

    # -- down: WHEP ----------------------------------------------------------------------------

    async def _pull(self, source: str) -> _Peer:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peer = _Peer(source, pc)
        try:
            transceiver = pc.addTransceiver("video", direction="recvonly")
            transceiver.setCodecPreferences([
                c for c in _video_capabilities() if c.mimeType in ("video/VP8", "video/H264")])
            peer.location = await self._exchange(pc, f"/whep/{source}", before_connect=lambda:
                                                 self._receive(peer, transceiver))
        except BaseException:
            await self._close(peer)
            raise
        assert peer.source is not None
        await self.video.add_external(CITY_PREFIX + source, peer.source, kind="tier")
        return peer

    def _receive(self, peer: _Peer, transceiver: Any) -> None:
        """The pulled feed's packets go to a publisher of this hub's video, as they arrive."""
        source = PacketSource(CITY_PREFIX + peer.target, "video", transceiver, time.monotonic)
        source.rtp_forwarding = True
        forward.install_passthrough(transceiver.receiver, source.deliver,
                                    on_packet=source.forward_rtp)
        peer.source = source

    async def _unpull(self, source: str) -> None:
        peer = self.pulled.pop(source)
        with contextlib.suppress(Exception):
            await self.video.unpush(CITY_PREFIX + source)
        if peer.source is not None:
            await self.video.remove_external(CITY_PREFIX + source, peer.source, "left")
        await self._close(peer)

    # -- the HTTP exchange ---------------------------------------------------------------------

    async def _exchange(self, pc: RTCPeerConnection, path: str,
                        before_connect: Any = None) -> str | None:
        """Offer to the city's WHIP/WHEP endpoint `path`, apply its answer; the session URL."""
        await pc.setLocalDescription(await pc.createOffer())
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15),
                connector=aiohttp.TCPConnector(ssl=self._ssl) if self._ssl else None)
        async with self._http.post(self.base_url + path, data=pc.localDescription.sdp,
                                   headers={"Authorization": f"Bearer {self._token}",
                                            "Content-Type": SDP_TYPE}) as r:
            text = await r.text()
            if r.status != 201:
                code, message = _error(text, r.status)
                raise TierVideoError("callup_failed", f"{path}: {code}: {message}")
            location = r.headers.get("Location")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
        if before_connect is not None:
            before_connect()  # the connection starts its receivers only after this returns
        return location

    def _alive(self, peer: _Peer) -> bool:
        return peer.pc.connectionState not in ("failed", "closed")

    async def _close(self, peer: _Peer) -> None:
        for track in peer.tracks:
            track.stop()
        if peer.location and self._http is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with self._http.delete(self.base_url + peer.location, headers={
                        "Authorization": f"Bearer {self._token}"}):
                    pass
        with contextlib.suppress(Exception):
            await peer.pc.close()


def _video_capabilities() -> list[Any]:
    return list(RTCRtpSender.getCapabilities("video").codecs)


def _error(text: str, status: int) -> tuple[str, str]:
    """The code and message of the city's JSON error body (docs/protocol.md)."""
    try:
        err = json.loads(text)["error"]
        return str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        return str(status), text[:200] or f"HTTP {status}"
