"""hub/sfu/forward.py: encoded frames forwarded between real aiortc peers over loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from hub.sfu import forward
from hub.sfu.ice import IceConfig, apply_host_addresses
from media.encoded import EncodedPacket
from media.source import DepartmentVideo
from media.stamp import StampError, read_stamp

ICE = IceConfig.loopback()


def test_aiortc_version_pinned() -> None:
    forward.check_aiortc_version()
    with pytest.raises(forward.ForwardingUnsupportedError):
        forward.check_aiortc_version("1.17.0")


def _rtp(seq: int, ts: int, marker: int, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts)
    packet.marker = marker
    packet._data = data  # type: ignore[attr-defined]
    return packet


def test_marker_buffer_releases_frame_on_marker() -> None:
    buf = forward.MarkerJitterBuffer()
    assert buf.add(_rtp(100, 3000, 0, b"a"))[1] is None
    frame = buf.add(_rtp(101, 3000, 1, b"b"))[1]
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000
    # a gap holds the frame back until the missing packet arrives (NACK/RTX)
    assert buf.add(_rtp(103, 6000, 1, b"d"))[1] is None
    frame = buf.add(_rtp(102, 6000, 0, b"c"))[1]
    assert frame is not None and frame.data == b"cd"
    # a lost marker: the frame is released when the next frame starts
    assert buf.add(_rtp(104, 9000, 0, b"e"))[1] is None
    frame = buf.add(_rtp(105, 12000, 0, b"f"))[1]
    assert frame is not None and frame.data == b"e"


def test_padding_only_packets_make_no_frame() -> None:
    # Chromium probes bandwidth with padding-only packets: no payload, between two frames
    buf = forward.MarkerJitterBuffer()
    assert buf.add(_rtp(200, 3000, 1, b"k"))[1] is not None
    assert buf.add(_rtp(201, 3000, 0, b""))[1] is None  # padding after the frame's marker
    assert buf.add(_rtp(202, 3000, 0, b""))[1] is None
    frame = buf.add(_rtp(203, 6000, 1, b"n"))[1]  # the next frame comes out at once, alone
    assert frame is not None and frame.data == b"n" and frame.timestamp == 6000


def test_a_packet_lost_for_good_is_given_up_and_the_feed_waits_for_a_keyframe() -> None:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    now = [0.0]
    buf = forward.MarkerJitterBuffer(clock=lambda: now[0], drain=True)
    out: list[EncodedPacket] = []
    queue = forward._PassthroughQueue(out.append, lambda: now[0], buf)
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    inter, key = b"\x01inter", b"\x00key"  # VP8 frame tag bit 0: 1 inter, 0 key

    def add(seq: int, ts: int, marker: int, data: bytes) -> bool:
        pli, frame = buf.add(_rtp(seq, ts, marker, data))
        if frame is not None:
            queue.put((vp8, frame))
        return pli

    add(300, 3000, 1, inter)
    assert len(out) == 1
    # 301 (the first packet of frame 6000) never comes, nor its retransmission
    assert not add(302, 6000, 1, b"rest") and not add(303, 9000, 1, inter)
    now[0] = 0.3
    assert not add(304, 12000, 1, inter)  # still waiting for it
    assert len(out) == 1
    now[0] = 0.7
    assert add(305, 15000, 1, inter)  # given up: a PLI asks the publisher for a keyframe
    assert buf.holes_skipped == 1 and len(out) == 1  # the inter frames after it are dropped
    assert not add(306, 18000, 1, key)
    assert [p.data for p in out] == [inter, key] and out[1].keyframe
    add(307, 21000, 1, inter)
    assert len(out) == 3  # decodable again


def test_a_hole_is_found_and_given_up_after_the_sender_restarts_its_sequence() -> None:
    """The hole search looks only up to the newest packet: that must follow a restart (a new
    sequence far behind the old one), or a hole after it would wait for good."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    now = [0.0]
    buf = forward.MarkerJitterBuffer(clock=lambda: now[0], drain=True)
    out: list[EncodedPacket] = []
    queue = forward._PassthroughQueue(out.append, lambda: now[0], buf)
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    key, inter = b"\x00key", b"\x01inter"

    def add(seq: int, ts: int, data: bytes) -> bool:
        pli, frame = buf.add(_rtp(seq, ts, 1, data))
        if frame is not None:
            queue.put((vp8, frame))
        return pli

    for k in range(5):
        add(40000 + k, 3000 * k, key if k == 0 else inter)
    assert len(out) == 5
    add(39000, 900000, key)  # restarted 1000 behind: the buffer starts again there
    assert len(out) == 6
    add(39002, 906000, inter)  # 39001 never comes
    now[0] = 0.7
    assert add(39003, 909000, inter)  # given up, a keyframe asked for
    assert buf.holes_skipped == 1
    add(39004, 912000, key)
    assert out[-1].data == key and len(out) == 7


async def test_internals_check_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    forward.check_internals()
    forward.check_internals.cache_clear()
    facts = [*forward._SOURCE_FACTS,
             (RTCRtpSender, "_run_rtp", ("self.__something_aiortc_1_16_never_had",))]
    monkeypatch.setattr(forward, "_SOURCE_FACTS", tuple(facts))
    with pytest.raises(forward.ForwardingUnsupportedError, match="_run_rtp"):
        forward.check_internals()
    forward.check_internals.cache_clear()


async def test_dtls_answer_is_passive_to_actpass_and_active_to_passive() -> None:
    offerer = RTCPeerConnection(ICE.rtc_configuration())
    offerer.addTransceiver("video", direction="sendonly")
    await offerer.setLocalDescription(await offerer.createOffer())
    assert offerer.localDescription is not None
    offer = offerer.localDescription.sdp
    assert "a=setup:actpass" in offer
    for sdp, answered in ((offer, "a=setup:passive"),
                          (offer.replace("a=setup:actpass", "a=setup:passive"), "a=setup:active")):
        answerer = RTCPeerConnection(ICE.rtc_configuration())
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        forward.answer_dtls_passive(answerer)
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert answerer.localDescription is not None
        assert answered in answerer.localDescription.sdp
        await answerer.close()
    await offerer.close()
    # the DTLS client offers RSA suites as well (for servers with an RSA certificate)
    forward.install_dtls_ciphers()
    from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate

    ctx = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
    from OpenSSL import SSL

    names = SSL.Connection(ctx).get_cipher_list()
    assert "ECDHE-RSA-AES128-GCM-SHA256" in names and "ECDHE-ECDSA-AES128-GCM-SHA256" in names


async def _connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection,
                   before_answer: object = None) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    if callable(before_answer):
        before_answer()
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(
        RTCSessionDescription(sdp=answerer.localDescription.sdp, type="answer"))


async def _read_stamps(track: MediaStreamTrack, want: int, timeout: float) -> list[int]:
    depts: list[int] = []
    deadline = time.monotonic() + timeout
    while len(depts) < want and time.monotonic() < deadline:
        frame = await asyncio.wait_for(track.recv(), deadline - time.monotonic())
        try:
            depts.append(read_stamp(frame.to_ndarray(format="gray")).dept)
        except StampError:
            continue
    return depts


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
@pytest.mark.timeout(60)
async def test_forward_without_decoding_and_late_joiner_gets_keyframe(codec: str) -> None:
    """Publisher -> hub (passthrough receiver) -> subscriber that joins 2 s late."""
    apply_host_addresses(ICE)
    conf = ICE.rtc_configuration()
    pub, hub_in, hub_out, sub = (RTCPeerConnection(conf) for _ in range(4))
    packets: list[EncodedPacket] = []
    out = forward.ForwardTrack("video")
    out.switch("pub")
    try:
        source = DepartmentVideo(9, "消防救援大队", width=320, height=240, fps=15)
        tr = pub.addTransceiver(source, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        tr.setCodecPreferences([c for c in caps if c.mimeType == codec])

        def passthrough() -> None:
            (transceiver,) = hub_in.getTransceivers()
            assert forward.pin_codec(transceiver, [codec]) == codec.split("/")[1]

            def sink(p: EncodedPacket) -> None:
                packets.append(p)
                out.push(p)

            forward.install_passthrough(transceiver.receiver, sink)
            out.on_keyframe_request = lambda: asyncio.ensure_future(
                forward.send_pli(transceiver.receiver)) and None

        await _connect(pub, hub_in, passthrough)
        deadline = time.monotonic() + 10
        while len(packets) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(packets) >= 30
        assert all(p.codec == codec.split("/")[1] and p.clock_rate == 90000 for p in packets)
        assert packets[0].keyframe
        await asyncio.sleep(2.0)  # the publisher's GOP is 3000 frames: no keyframe by itself

        out_tr = hub_out.addTransceiver(out, direction="sendonly")
        out.bind_sender(out_tr.sender)
        out.switch(None)
        out.switch("pub")  # gate: wait for a keyframe and ask for one
        received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        sub.on("track", lambda t: received.done() or received.set_result(t))
        sub.addTransceiver("video", direction="recvonly")
        await _connect(sub, hub_out,
                       lambda: forward.pin_codec(hub_out.getTransceivers()[0], [codec]))
        assert forward.negotiated_codec(sub.getTransceivers()[0]) == codec.split("/")[1]
        track = await asyncio.wait_for(received, 10)
        forward.install_low_latency(sub.getTransceivers()[0].receiver)
        started = time.monotonic()
        depts = await _read_stamps(track, 5, timeout=10)
        assert depts[:5] == [9] * 5
        assert time.monotonic() - started < 5
        assert out.frames_forwarded >= 5
    finally:
        for pc in (pub, hub_in, hub_out, sub):
            await pc.close()


@pytest.mark.timeout(90)
async def test_rtp_forwarding_switch_nack_pli_and_sender_reports() -> None:
    """Two publishers -> hub (packets, no frames) -> one subscriber slot, switched live.

    The subscriber (aiortc's stock receiver, decoding) sees the second publisher after the
    switch with no gap in sequence numbers; the NACK it sends is answered from the
    slot's history (a packet lost on its way arrives after all); a raw PLI reaches the publisher of the
    slot's source (whose encoder otherwise sends no keyframe for 3000 frames); the sender
    reports it gets count what was forwarded.
    """
    import pylibsrtp
    from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

    from hub.sfu import rtp

    apply_host_addresses(ICE)
    conf = ICE.rtc_configuration()
    pubs = [RTCPeerConnection(conf) for _ in range(2)]
    hubs_in = [RTCPeerConnection(conf) for _ in range(2)]
    hub_out, sub = RTCPeerConnection(conf), RTCPeerConnection(conf)
    out = forward.ForwardTrack("video")
    keyframes: dict[int, list[float]] = {9: [], 3: []}
    try:
        for pub, hub_in, dept in zip(pubs, hubs_in, (9, 3), strict=True):
            pub.addTransceiver(DepartmentVideo(dept, "d", width=320, height=240, fps=15),
                               direction="sendonly")

            def passthrough(hub_in: RTCPeerConnection = hub_in, dept: int = dept) -> None:
                (transceiver,) = hub_in.getTransceivers()
                assert forward.pin_codec(transceiver, ["video/VP8"]) == "VP8"

                def on_packet(packet: RtpPacket) -> None:
                    if rtp.keyframe_start("VP8", packet.payload):
                        keyframes[dept].append(time.monotonic())
                    if out.source == str(dept):
                        out.push_rtp(packet, "VP8")

                forward.install_passthrough(transceiver.receiver, lambda p: None,
                                            on_packet=on_packet)

            await _connect(pub, hub_in, passthrough)
        receivers = {str(d): h.getTransceivers()[0].receiver for d, h in zip((9, 3), hubs_in,
                                                                              strict=True)}
        out.on_keyframe_request = lambda: asyncio.ensure_future(
            forward.send_pli(receivers[out.source or "9"])) and None
        await asyncio.sleep(0)
        out_tr = hub_out.addTransceiver(out, direction="sendonly")
        out.bind_sender(out_tr.sender)
        out.switch("9")
        received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        sub.on("track", lambda t: received.done() or received.set_result(t))
        sub.addTransceiver("video", direction="recvonly")
        await _connect(sub, hub_out,
                       lambda: forward.pin_codecs(hub_out.getTransceivers()[0], ["video/VP8"]))
        track = await asyncio.wait_for(received, 10)
        sub_receiver = sub.getTransceivers()[0].receiver
        seen: list[int] = []
        original = sub_receiver._handle_rtp_packet

        async def record(packet: RtpPacket, arrival_time_ms: int) -> None:
            seen.append(packet.sequence_number)
            await original(packet, arrival_time_ms)

        sub_receiver._handle_rtp_packet = record  # type: ignore[method-assign]
        assert (await _read_stamps(track, 5, timeout=15))[:5] == [9] * 5

        # switch: the next packets come from publisher 3, at its next (requested) keyframe
        before = len(seen)
        out.switch("3")
        depts = await _read_stamps(track, 40, timeout=20)
        assert depts[-3:] == [3] * 3, depts
        assert out.keyframe_requests >= 1
        base = seen[before - 1]  # the last packet of publisher 9 before the switch
        after = sorted({(seq - base) & 0xFFFF for seq in seen[before - 1:]})
        assert len(after) > 40 and after == list(range(len(after))), \
            "sequence numbers continue without a gap across the switch"

        # a packet lost on the way to the subscriber (dropped before its SRTP layer, so it was
        # never received): aiortc's receiver NACKs it, the slot's history sends it again
        lost = (out._rewriter.last_seq + 8) & 0xFFFF
        srtp = sub_receiver.transport._rx_srtp
        dropped: list[int] = []

        class LoseOnce:
            def unprotect(self, data: bytes) -> bytes:
                if int.from_bytes(data[2:4], "big") == lost and not dropped:
                    dropped.append(lost)
                    raise pylibsrtp.Error("lost in this test")
                result: bytes = srtp.unprotect(data)
                return result

            def unprotect_rtcp(self, data: bytes) -> bytes:
                result: bytes = srtp.unprotect_rtcp(data)
                return result

        sub_receiver.transport._rx_srtp = LoseOnce()
        deadline = time.monotonic() + 10
        while lost not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert dropped and lost in seen, "the lost packet came again"
        assert out.nacks >= 1 and out.retransmits >= 1
        ssrc = out_tr.sender._ssrc

        # PLI from the subscriber, as raw RTCP: publisher 3 sends a keyframe (its GOP is 3000)
        await asyncio.sleep(0.4)  # past the PLI rate limit of the switch's own request
        asked = time.monotonic()
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc)
        await sub_receiver.transport._send_rtp(bytes(pli))
        deadline = time.monotonic() + 5
        while not [t for t in keyframes[3] if t > asked] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert [t for t in keyframes[3] if t > asked], "the PLI reached the slot's publisher"

        # the sender reports (aiortc's own RTCP loop) count the forwarded packets
        deadline = time.monotonic() + 5
        remote: list[object] = []
        while not remote and time.monotonic() < deadline:
            stats = await sub.getStats()
            remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"
                      and getattr(s, "packetsSent", 0) > 0]
            await asyncio.sleep(0.2)
        assert remote and 0 < remote[0].packetsSent <= out.packets_sent  # type: ignore[attr-defined]
    finally:
        for pc in (*pubs, *hubs_in, hub_out, sub):
            await pc.close()
