"""Bad input to the VideoHub: error codes, clean teardown, and no leaks over 1,000 bad offers."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import tracemalloc
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from hub.sfu.videohub import VideoError
from tests.video.conftest import ICE, Harness, wait_for

pytestmark = pytest.mark.timeout(240)


async def _offer(video_send: int = 1, video_recv: int = 2, audio: bool = True) -> str:
    pc = RTCPeerConnection(ICE.rtc_configuration())
    try:
        for _ in range(video_send):
            pc.addTransceiver("video", direction="sendonly")
        for _ in range(video_recv):
            pc.addTransceiver("video", direction="recvonly")
        if audio:
            pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        return pc.localDescription.sdp
    finally:
        await pc.close()


def _no_codec(sdp: str) -> str:
    for name in ("VP8/90000", "H264/90000", "rtx/90000"):
        sdp = sdp.replace(name, "XV9/90000")
    return sdp


async def _expect(harness: Harness, code: str, pid: str, role: str, dept: str | None,
                  sdp: str) -> None:
    with pytest.raises(VideoError) as info:
        await harness.hub.handle_offer(pid, role, dept, sdp)
    assert info.value.code == code, info.value


async def test_each_bad_offer_gets_its_code(harness: Harness) -> None:
    good = await _offer()
    await _expect(harness, "bad_sdp", "a", "department", "fire", "v=0\r\nthis is not sdp")
    await _expect(harness, "bad_sdp", "a", "department", "fire", "")
    await _expect(harness, "no_common_codec", "a", "department", "fire", _no_codec(good))
    await _expect(harness, "too_many_tracks", "a", "department", "fire", await _offer(2))
    await _expect(harness, "too_many_tracks", "a", "observer", None, good)
    await _expect(harness, "bad_role", "a", "mayor", "fire", good)
    # a second offer while the first is being answered: out of order
    first = asyncio.ensure_future(harness.hub.handle_offer("b", "department", "fire", good))
    await asyncio.sleep(0)
    await _expect(harness, "out_of_order", "b", "department", "fire", good)
    await first  # the first one is answered normally (nobody connects to it)
    assert harness.hub.participants == {} or set(harness.hub.participants) == {"b"}


async def test_publisher_that_never_completes_ice_is_closed(harness: Harness) -> None:
    errors: list[tuple[str, str]] = []

    async def on_error(pid: str, code: str, message: str) -> None:
        errors.append((pid, code))

    harness.hub.on_error = on_error
    harness.hub._connect_timeout = 1.0
    viewer = await harness.join("cmd", "commander", None, video_slots=2)
    await harness.join("p-fire", "department", "fire")
    await harness.hub.handle_offer("ghost", "department", "police", await _offer())
    await wait_for(lambda: errors == [("ghost", "ice_timeout")], 5)
    # leave() takes the participant out first, closes it, then re-routes: wait for the routes
    await wait_for(lambda: "police" not in harness.hub.slot_map("cmd").values(), 3)
    assert "ghost" not in harness.hub.participants
    # others unaffected
    await wait_for(lambda: "fire" in viewer.seen().values(), 3)
    assert "fire" in harness.hub.slot_map("cmd").values()
    # a publisher that never connected had no video: a connection failure, not an outage
    failed = [p for k, _, p in harness.events if k == "rtc.failed"]
    assert failed == [{"dept": "police", "role": "department", "source": "webrtc",
                       "session": "ghost", "reason": "ice_timeout"}]
    assert not [k for k, d, _ in harness.events if k == "video.lost" and d == "police"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_thousand_bad_offers_leak_nothing(harness: Harness) -> None:
    good = await _offer()
    bad = [
        "garbage",
        _no_codec(good),
        await _offer(2),
        good.replace("a=fingerprint", "a=fingerprinx"),
        good.replace("a=ice-ufrag:", "a=ice-ufraX:"),
        good.replace("a=setup:actpass", "a=setup:bogus"),
    ]
    roles: list[tuple[str, str | None]] = [("department", "fire"), ("observer", None)]
    # warm up lazy imports and caches before measuring
    for sdp in bad:
        with pytest.raises(VideoError):
            await harness.hub.handle_offer("w", "department", "fire", sdp)
    gc.collect()
    fds, tasks, threads = _open_fds(), len(asyncio.all_tasks()), threading.active_count()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    codes: dict[str, int] = {}
    deadline = time.monotonic() + 120
    sent = 0
    for i in range(1000):
        if time.monotonic() > deadline:
            break
        role, dept = roles[i % 2] if i % 5 == 2 else roles[0]
        try:
            await harness.hub.handle_offer(f"x{i % 7}", role, dept, bad[i % len(bad)])
        except VideoError as exc:
            codes[exc.code] = codes.get(exc.code, 0) + 1
        sent += 1
    await asyncio.sleep(0.2)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    info: dict[str, Any] = {"sent": sent, "codes": codes, "growth_bytes": after - before}
    assert sent == 1000, info
    assert sum(codes.values()) == 1000, info
    assert set(codes) >= {"bad_sdp", "no_common_codec", "too_many_tracks"}, info
    assert _open_fds() <= fds, info
    assert len(asyncio.all_tasks()) <= tasks, info
    assert threading.active_count() <= threads, info
    assert after - before < 2_000_000, info
    assert harness.hub.participants == {}
