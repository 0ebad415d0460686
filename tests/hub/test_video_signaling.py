"""Video over the hub's own WebSocket: offers, slots, routing and outages reach the real log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.client import HubClient
from hub.logformat import read_events
from hub.media_client import MediaClient
from hub.roster import load_roster
from hub.runtime import RunningHub, ServeOptions, start_hub
from hub.sfu.ice import IceConfig
from media.source import DepartmentVideo
from media.stamp import read_frame_stamp

IDS = load_roster().ids
NUMBERS = {i + 1: d for i, d in enumerate(IDS)} | {0: "center"}


async def join(url: str, token: str, dept: str, *, publish: bool, slots: int) -> tuple[HubClient,
                                                                                        MediaClient]:
    hub_client = HubClient(url, token)
    await hub_client.connect()
    number = 0 if dept == "center" else IDS.index(dept) + 1
    media = MediaClient(ice=IceConfig.loopback(),
                        video=DepartmentVideo(number, dept) if publish else None,
                        video_slots=slots, audio_slots=0, stamp_reader=read_frame_stamp,
                        stamp_numbers=NUMBERS)

    hub_client.on_frame = media.on_frame
    await media.connect_over(hub_client)
    return hub_client, media


async def wait_for(cond: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def test_video_routing_over_the_websocket(tmp_path: Any) -> None:
    running: RunningHub = await start_hub(ServeOptions(data=tmp_path / "d", port=0,
                                                       ice_hosts=["127.0.0.1"]))
    auth, now = running.hub.authority, int(time.time())
    joined: list[tuple[HubClient, MediaClient]] = []
    try:
        cmd = await join(running.url, auth.issue("commander", now=now), "center", publish=True,
                         slots=16)
        joined.append(cmd)
        for d in ("fire", "water"):
            joined.append(await join(running.url, auth.issue("department", now=now, dept=d), d,
                                     publish=True, slots=4))
        _, cmd_media = cmd
        # the commander sees both departments, each slot showing the stamp of its department
        await wait_for(lambda: {"fire", "water"} <= set(cmd_media.seen("video").values()), 10)
        for view in cmd_media.slots["video"]:
            if view.dept in ("fire", "water"):
                assert NUMBERS[view.last_stamp.dept] == view.dept
        # horizontal dispatch: push fire to water, over the WebSocket
        water_media = joined[2][1]
        t_push = time.monotonic()
        await cmd[0].request("route.push", source="fire", targets=["water"])
        took = await wait_for(lambda: "fire" in water_media.seen("video").values(), 5)
        assert time.monotonic() - t_push < 5 and took < 5
        # water drops its socket and peer connection, rejoins: routed again, outage logged
        await joined[2][1].close()
        await joined[2][0].close()
        joined.pop()
        await asyncio.sleep(0.5)
        joined.append(await join(running.url, auth.issue("department", now=now, dept="water"),
                                 "water", publish=True, slots=4))
        await wait_for(lambda: "fire" in joined[2][1].seen("video").values(), 10)
        state = await cmd[0].rest("GET", "/api/state")
        assert "video" in state
        # fire leaves on purpose: its media stops without an outage being logged
        fire_hub, fire_media = joined.pop(1)
        await fire_hub.request("rtc.leave")
        await fire_media.close()
        await fire_hub.close()
    finally:
        for hc, mc in joined:
            await mc.close()
            await hc.close()
        await running.stop()
    events = read_events(running.hub.log.path)
    routes = [e for e in events if e.kind == "route.changed"]
    assert routes and routes[0].payload["action"] == "push" and routes[0].role == "commander"
    kinds = [e.kind for e in events if e.payload.get("dept") == "water" or e.dept == "water"]
    assert "video.lost" in kinds and "video.restored" in kinds
    assert not [e for e in events if e.kind == "video.lost" and e.payload["dept"] == "fire"]
