"""RTP-level forwarding seen by a stock GStreamer webrtcbin WHEP viewer (an independent stack)."""

from __future__ import annotations

import time

import pytest

from tests.interop.conftest import InteropHub, wait_for
from tests.interop.gst import GstPeer

pytestmark = pytest.mark.timeout(120)


def _decoded(viewer: GstPeer) -> int:
    reports = [e["frames"] for e in viewer.events if e.get("event") == "frames"]
    return reports[-1] if reports else 0


async def test_webrtcbin_viewer_decodes_on_across_a_publisher_switch(
        interop_hub: InteropHub) -> None:
    """A WHEP viewer of `fire` decodes the forwarded packets; when a second WHIP publisher
    replaces the first, the viewer's slot switches source (sequence numbers and timestamps
    continued, started at a keyframe the hub asks the new publisher for) and the same
    webrtcbin session keeps decoding, without renegotiating."""
    h = interop_hub
    token = h.token("department", "fire")
    first = await GstPeer.start("publish", f"{h.url}/whip/fire", token, "--seconds", "40",
                                "--pattern", "ball")
    second: GstPeer | None = None
    viewer: GstPeer | None = None
    try:
        await wait_for(lambda: h.events("media.published", dept="fire"), 30, "first published")
        viewer = await GstPeer.start("view", f"{h.url}/whep/fire", h.token("commander"),
                                     "--seconds", "40")
        await wait_for(lambda: _decoded(viewer) >= 15, 30, "the viewer decodes the first")
        second = await GstPeer.start("publish", f"{h.url}/whip/fire", token, "--seconds", "40",
                                     "--pattern", "smpte")
        await wait_for(lambda: [e.payload["cause"] for e in h.events("media.unpublished",
                                                                    dept="fire")] == ["replaced"],
                       30, "the second replaces the first")
        await first.stop()  # nothing of the first publisher can reach the viewer any more
        switched, at = _decoded(viewer), time.monotonic()
        await wait_for(lambda: _decoded(viewer) >= switched + 30, 20,
                       "the viewer decodes the second publisher")
        print(f"viewer: {_decoded(viewer) - switched} frames decoded in "
              f"{time.monotonic() - at:.1f} s after the switch")
        assert not [e for e in viewer.events if e.get("event") == "error"], viewer.events
    finally:
        for peer in (first, second, viewer):
            if peer is not None:
                await peer.stop()
