"""Video across tiers, with a city hub and a town hub as separate processes on loopback and
GStreamer webrtcbin as every camera and viewer: nothing goes up until the city calls a town
feed up; a called-up feed plays at the city; a city feed pushed to the town plays at the town.
The commander speaks raw WebSocket frames, the logs are read with the sqlite3 CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from hub.bench import wait_http
from hub.tiers.cluster import Tiers
from tests.hub.raw import RawSocket, outcome
from tests.interop import gst
from tests.interop.gst import GstPeer, run_peer
from tests.tiers.test_tiers import sql, town_online, until

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")


def feeds(db: Path, kind: str, dept: str) -> list[dict[str, object]]:
    return [json.loads(r["payload"]) for r in sql(
        db, f"SELECT payload FROM events WHERE kind='{kind}' AND "
        f"json_extract(payload, '$.dept')='{dept}' ORDER BY seq")]


async def reading(sock: RawSocket, aw: Awaitable[T]) -> T:
    """Await `aw` while reading `sock` (a raw socket answers the hub's pings only as it reads)."""
    task = asyncio.ensure_future(aw)
    while not task.done():
        await sock.drain(0.2)
    return task.result()


async def whep_status(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, str]:
    """A WHEP offer that is refused before its SDP is read: the status and error code."""
    async with http.post(url, data="v=0\r\n", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}) as r:
        body = await r.json(content_type=None)
        return r.status, body["error"]["code"]


async def test_city_calls_up_a_town_feed_and_pushes_its_own_down(tmp_path: Path) -> None:
    why = gst.unavailable()
    if why is not None:
        pytest.skip(why)
    tiers = Tiers.make(tmp_path, towns=1, departments=2, extra=["--ice-host", "127.0.0.1"])
    city, town = tiers.city, tiers.towns["town01"]
    await tiers.start(timeout=90)
    http = aiohttp.ClientSession()
    peers: list[GstPeer] = []
    try:
        await until(lambda: town_online(city.db, "town01"), 20, "town01 online at the city")
        camera = await GstPeer.start("publish", f"{town.url}/whip/town01-u1",
                                     town.token("department", "town01-u1"), "--seconds", "90")
        peers.append(camera)
        await until(lambda: feeds(town.db, "media.published", "town01-u1"), 30,
                    "town01-u1's feed live at its town")
        cmdr = await RawSocket.open(http, city.url, city.token("commander"))
        # nothing is sent up that nobody watches
        assert feeds(city.db, "media.published", "town01") == []

        # up: the commander calls town01-u1 up; it plays at the city as town01
        ack = await cmdr.request("tier.callup", town="town01", dept="town01-u1")
        assert outcome(ack) == "ok", ack
        assert ack["dept"] == "town01-u1" and ack["whep"] == "/whep/town01"
        [published] = await reading(cmdr, until(
            lambda: feeds(city.db, "media.published", "town01"), 20,
            "the called-up feed live at the city"))
        assert published["source"] == "whip"
        viewer = await reading(cmdr, run_peer("view", f"{city.url}/whep/town01",
                                              city.token("commander"), "--seconds", "3"))
        assert viewer["ok"] and viewer["frames"] >= 20 and viewer["size"] == [320, 240], viewer

        # the call-up outlives a city restart: the city's state is folded from its log and
        # the town sends the feed up afresh when its uplink is back
        await cmdr.close()
        city.stop(kill=True)
        city.start()
        await wait_http(city.url, 90)
        await until(lambda: len(feeds(city.db, "media.published", "town01")) == 2, 40,
                    "the called-up feed live again at the restarted city")
        cmdr = await RawSocket.open(http, city.url, city.token("commander"))
        viewer = await reading(cmdr, run_peer("view", f"{city.url}/whep/town01",
                                              city.token("commander"), "--seconds", "3"))
        assert viewer["ok"] and viewer["frames"] >= 20, viewer

        # what cannot be called up is refused, with the reason
        bad = await cmdr.request("tier.callup", town="town01", dept="town01-u9")
        assert outcome(bad) == "unknown_target" and "town01-u1" in bad["message"], bad
        bad = await cmdr.request("tier.callup", town="police", dept="x")
        assert outcome(bad) == "unknown_target" and "town01" in bad["message"], bad
        dept_sock = await RawSocket.open(http, city.url, city.token("department", "police"))
        assert outcome(await dept_sock.request("tier.callup", town="town01",
                                               dept="town01-u1")) == "forbidden"
        await dept_sock.close()
        # a town hub may pull only what the city pushes to it, and publish only as itself
        hub_token = city.token("hub", "town01")
        assert await whep_status(http, f"{city.url}/whep/police", hub_token) == (403, "forbidden")
        assert await whep_status(http, f"{city.url}/whip/police", hub_token) == (403, "forbidden")

        # release: the feed stops going up
        ack = await cmdr.request("tier.callup", town="town01")
        assert outcome(ack) == "ok", ack
        await reading(cmdr, until(lambda: feeds(city.db, "media.unpublished", "town01"), 15,
                                  "the released feed ended at the city"))
        actions = [json.loads(r["payload"]) for r in sql(
            city.db, "SELECT payload FROM events WHERE kind='route.changed' ORDER BY seq")]
        assert [(a["action"], a["source"], a["targets"]) for a in actions] == [
            ("callup", "town01", ["town01-u1"]), ("release", "town01", ["town01-u1"])]
        sent = [json.loads(r["payload"]) for r in sql(
            town.db, "SELECT payload FROM events WHERE kind='route.changed' ORDER BY seq")]
        assert [(a["action"], a["source"]) for a in sent] == [
            ("callup", "town01-u1"), ("callup", "town01-u1"), ("release", "town01-u1")]

        # down: the city's police feed pushed to town01 reaches the town as city:police
        police = await GstPeer.start("publish", f"{city.url}/whip/police",
                                     city.token("department", "police"), "--seconds", "90")
        peers.append(police)
        await reading(cmdr, until(lambda: feeds(city.db, "media.published", "police"), 30,
                                  "police's feed live at the city"))
        assert feeds(town.db, "media.published", "city:police") == []
        assert outcome(await cmdr.request("route.push", source="police",
                                          targets=["town01"])) == "ok"
        [pulled] = await reading(cmdr, until(
            lambda: feeds(town.db, "media.published", "city:police"), 20,
            "the pushed feed live at the town"))
        assert pulled["source"] == "tier"
        pushed = [json.loads(r["payload"]) for r in sql(
            town.db, "SELECT payload FROM events WHERE kind='route.changed' AND "
            "json_extract(payload, '$.action')='push'")]
        assert [(p["source"], p["targets"]) for p in pushed] == [("city:police", "all")]
        viewer = await reading(cmdr, run_peer("view", f"{town.url}/whep/city:police",
                                              town.token("commander"), "--seconds", "3"))
        assert viewer["ok"] and viewer["frames"] >= 20 and viewer["size"] == [320, 240], viewer
        assert outcome(await cmdr.request("route.unpush", source="police")) == "ok"
        await reading(cmdr, until(
            lambda: feeds(town.db, "media.unpublished", "city:police"), 15,
            "the unpushed feed ended at the town"))
        await cmdr.close()
    finally:
        for p in peers:
            await p.stop()
        await http.close()
        tiers.stop()
