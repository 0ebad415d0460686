"""A stock GStreamer webrtcbin publishes over WHIP and views over WHEP (RSA and ECDSA DTLS
certificates, both DTLS roles, VP8 and H264); health, presence and the feed's life as logged."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hub.client import HubClient
from tests.interop.conftest import InteropHub, wait_for
from tests.interop.gst import GstPeer, run_peer

pytestmark = pytest.mark.timeout(240)


async def test_stock_webrtcbin_publishes_and_is_judged_live(interop_hub: InteropHub) -> None:
    h = interop_hub
    token = h.token("department", "fire")
    # webrtcbin's defaults: its own RSA certificate, a sendrecv transceiver
    publisher = await GstPeer.start("publish", f"{h.url}/whip/fire", token, "--seconds", "12",
                                    "--delete", "--sendrecv")
    try:
        answer = await publisher.wait_event("answer", 30)
        assert answer["status"] == 201 and answer["setup"] == ["passive"]  # hub: DTLS server
        await wait_for(lambda: h.events("media.published", dept="fire"), 20, "media.published")
        published = h.events("media.published", dept="fire")[0].payload
        assert published["source"] == "whip" and answer["location"].endswith(published["session"])
        # a WHEP viewer we did not write either: the feed forwarded as it came (VP8 320x240)
        viewer = await run_peer("view", f"{h.url}/whep/fire", h.token("commander"),
                                "--seconds", "3")
        assert viewer["ok"] and viewer["dtls"] == "connected", viewer
        assert viewer["frames"] >= 20 and viewer["size"] == [320, 240], viewer
        # presence: a WHIP-only department is online; health judged from what it sends
        state = await h.state()
        fire = next(d for d in state["departments"] if d["id"] == "fire")
        assert fire["online"] is True and fire["feed"]["source"] == "whip"
        assert state["media"]["health"]["fire"] == "ok"
        # a WHIP publisher gets no slots, whatever its m-line's direction: the hub only receives
        assert answer["directions"] == ["recvonly"], answer
        # the department answers a command (its console on the WebSocket, its camera on WHIP):
        # the hub snapshots the WHIP camera's picture
        async with HubClient(h.url, token) as console, \
                HubClient(h.url, h.token("commander")) as commander:
            command = await commander.issue(["fire"], "回传现场画面")
            await console.respond(command["command_id"], "receipt")
            await wait_for(lambda: h.events("media.snapshot", dept="fire"), 10, "media.snapshot")
        snap = h.events("media.snapshot", dept="fire")[0].payload
        assert snap["command_id"] == command["command_id"]
        assert (h.running.hub.data_dir / snap["path"]).read_bytes()[:3] == b"\xff\xd8\xff"
        result = await publisher.result(40)
    finally:
        await publisher.stop()
    assert result["ok"] and result["deleted"] == 200, result
    await wait_for(lambda: h.events("media.unpublished", dept="fire"), 10, "media.unpublished")
    ended = h.events("media.unpublished", dept="fire")[0].payload
    assert ended["cause"] == "left" and ended["session"] == published["session"]
    assert not h.events("video.lost", "video.frozen", "video.black", dept="fire")
    state = await h.state()
    assert next(d for d in state["departments"] if d["id"] == "fire")["online"] is False
    assert state["media"]["health"]["fire"] == "none"


@pytest.mark.parametrize(("cert", "setup"), [("rsa", "actpass"), ("ecdsa", "actpass"),
                                             ("rsa", "passive"), ("ecdsa", "passive")])
async def test_rsa_and_ecdsa_peers_connect_in_either_dtls_role(
        interop_hub: InteropHub, cert: str, setup: str) -> None:
    # setup passive: the offer makes the hub the DTLS client; against an RSA server that needs
    # the ECDHE-RSA suites aiortc does not offer by itself ("no shared cipher")
    h = interop_hub
    dept = "police"
    publisher = await GstPeer.start("publish", f"{h.url}/whip/{dept}", h.token("department", dept),
                                    "--cert", cert, "--offer-setup", setup, "--seconds", "40")
    try:
        answer = await publisher.wait_event("answer", 30)
        assert answer["setup"] == (["active"] if setup == "passive" else ["passive"])
        await wait_for(lambda: h.events("media.published", dept=dept), 20, "media.published")
        viewer = await run_peer("view", f"{h.url}/whep/{dept}", h.token("evaluator"),
                                "--cert", cert, "--offer-setup", setup, "--seconds", "2")
        assert viewer["ok"] and viewer["frames"] > 0, viewer
        result = await publisher.finish()
    finally:
        await publisher.stop()
    assert result["ok"] and result["dtls"] is not None, result
    assert not h.events("rtc.failed", "video.lost")


async def test_h264_publisher_and_codec_mismatch(interop_hub: InteropHub) -> None:
    h = interop_hub
    publisher = await GstPeer.start("publish", f"{h.url}/whip/water",
                                    h.token("department", "water"), "--codec", "h264",
                                    "--seconds", "10")
    try:
        await wait_for(lambda: h.events("media.published", dept="water"), 30, "media.published")
        viewer = await run_peer("view", f"{h.url}/whep/water", h.token("commander"),
                                "--codec", "h264", "--seconds", "3")
        assert viewer["ok"] and viewer["frames"] >= 15 and viewer["size"] == [320, 240], viewer
        # a viewer offering only VP8 for this H264 feed is refused, not left without media
        refused = await GstPeer.start("view", f"{h.url}/whep/water", h.token("commander"),
                                      "--codec", "vp8")
        try:
            rejected = await refused.wait_event("rejected", 30)
        finally:
            await refused.stop()
        assert rejected["status"] == 422 and "no_common_codec" in rejected["body"], rejected
        assert (await h.state())["media"]["health"]["water"] == "ok"
    finally:
        await publisher.stop()


async def test_failed_dtls_handshake_is_no_video_outage(interop_hub: InteropHub) -> None:
    h = interop_hub
    # the offer's fingerprint is not the certificate's: the hub (DTLS server) refuses the peer
    # after the handshake (webrtcbin may briefly think it is connected)
    result = await run_peer("publish", f"{h.url}/whip/floodctrl",
                            h.token("department", "floodctrl"), "--bad-fingerprint",
                            "--seconds", "2", "--connect-timeout", "10", "--delete")
    await wait_for(lambda: h.events("rtc.failed", dept="floodctrl"), 10, "rtc.failed")
    failed = h.events("rtc.failed", dept="floodctrl")[0].payload
    assert failed["reason"] == "dtls_failed" and failed["source"] == "whip"
    # the feed never existed: no video event, nothing published, no outage left open
    assert result["deleted"] == 404  # its session is gone with it
    assert not h.events("media.published", "media.unpublished", "video.lost", dept="floodctrl")
    state = await h.state()
    assert "floodctrl" not in state["video"]["outages"]
    assert next(d for d in state["departments"] if d["id"] == "floodctrl")["online"] is False


async def test_second_whip_publisher_replaces_the_first(interop_hub: InteropHub) -> None:
    h = interop_hub
    token = h.token("department", "fire")
    first = await GstPeer.start("publish", f"{h.url}/whip/fire", token, "--seconds", "30")
    second: GstPeer | None = None
    try:
        old = (await first.wait_event("answer", 30))["location"]
        await wait_for(lambda: h.events("media.published", dept="fire"), 20, "first published")
        second = await GstPeer.start("publish", f"{h.url}/whip/fire", token, "--seconds", "30")
        new = (await second.wait_event("answer", 30))["location"]
        await wait_for(lambda: len(h.events("media.published", dept="fire")) == 2, 20,
                       "second published")
        replaced = h.events("media.unpublished", dept="fire")
        assert [e.payload["cause"] for e in replaced] == ["replaced"]
        assert old.endswith(replaced[0].payload["session"])
        async with aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bearer {token}"}
            async with http.delete(h.url + old, headers=auth) as r:
                assert r.status == 404
            async with http.delete(h.url + new, headers=auth) as r:
                assert r.status == 200
        await wait_for(lambda: len(h.events("media.unpublished", dept="fire")) == 2, 10,
                       "second unpublished")
        assert h.events("media.unpublished", dept="fire")[1].payload["cause"] == "left"
        assert not h.events("video.lost", dept="fire")
    finally:
        await first.stop()
        if second is not None:
            await second.stop()


@pytest.mark.parametrize(("pattern", "kind", "within_s"), [("black", "video.black", 2.0),
                                                           ("smpte", "video.frozen", 5.0)])
async def test_black_and_still_pictures_then_a_deliberate_delete(
        interop_hub: InteropHub, pattern: str, kind: str, within_s: float) -> None:
    h = interop_hub
    publisher = await GstPeer.start("publish", f"{h.url}/whip/epidemic",
                                    h.token("department", "epidemic"), "--pattern", pattern,
                                    "--seconds", "8", "--delete")
    try:
        await wait_for(lambda: h.events(kind, dept="epidemic"), 20, kind)
        result = await publisher.result(40)
    finally:
        await publisher.stop()
    event = h.events(kind, dept="epidemic")[0]
    published = h.events("media.published", dept="epidemic")[0]
    assert event.payload["cause"] == "picture"
    # found from the stream (its frames shrink) confirmed by a decoded sample, dated from
    # the first still frame
    assert (event.ts_us - event.payload["since_us"]) / 1e6 <= within_s + 0.3, event.payload
    assert (event.ts_us - published.ts_us) / 1e6 <= within_s + 1.0
    # DELETE while the picture is bad: the feed ends on purpose, no outage follows it
    assert result["deleted"] == 200, result
    await wait_for(lambda: h.events("media.unpublished", dept="epidemic"), 10, "unpublished")
    await asyncio.sleep(4.0)  # longer than lost_after_s (3 s): nothing may come after the end
    after = [e.kind for e in h.events(dept="epidemic") if e.seq > published.seq
             and e.kind.startswith(("video.", "media."))]
    assert after == [kind, "media.unpublished"], after
    assert (await h.state())["media"]["health"]["epidemic"] == "none"
