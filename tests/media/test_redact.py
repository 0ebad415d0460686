"""Camera credentials: the ingest uses them (a camera that insists on them), the log, /api/state
and the hub's messages never show them, and they are stored once, 0600."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from hub.logformat import read_events
from hub.runtime import RunningHub, ServeOptions, start_hub
from media.redact import CredentialStore, redact_text, redact_url, url_secrets
from tests.mediawiring.test_mw_ingest import make_file

PASSWORD, TOKEN = "S3cret-pass!", "T0ken-xyz42"
RTSP_PW, QUERY_PW = "Rtsp-Secret9", "Qw-Secret8"
SECRETS = (PASSWORD, TOKEN, RTSP_PW, QUERY_PW)


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:pw@cam.lan:554/live", "rtsp://admin:***@cam.lan:554/live"),
    ("rtsp://admin:p%40ss@cam/x?password=abc&channel=1", "rtsp://admin:***@cam/x?password=***&channel=1"),
    ("http://cam/snap.cgi?user=admin&pwd=1234", "http://cam/snap.cgi?user=admin&pwd=***"),
    ("http://cam/v?passwd=a&Token=b&AUTH=c&api-key=d", "http://cam/v?passwd=***&Token=***&AUTH=***&api-key=***"),
    ("rtsp://a:b@[::1]:8554/x", "rtsp://a:***@[::1]:8554/x"),
    ("rtsp://cam.lan/live", "rtsp://cam.lan/live"),
    ("file:///srv/clip.webm", "file:///srv/clip.webm"),
    ("rtsp://[bad", "<unparseable url>"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_urls_params_and_known_secrets() -> None:
    url = "rtsp://admin:hunter22@10.0.0.9:554/live?token=abc123"
    msg = (f"open {url}: [Errno 111] Connection refused (password=xyz999, "
           "decoded hunter22 again)")
    out = redact_text(msg, url_secrets(url))
    assert "hunter22" not in out and "abc123" not in out and "xyz999" not in out
    assert "rtsp://admin:***@10.0.0.9:554/live?token=***" in out and "Connection refused" in out


def test_credential_store_is_0600_and_resolves_the_redacted_form(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    real = "rtsp://admin:pw-1@cam/live?token=t-2"
    store.remember("fire", real)
    store.remember("flood", "rtsp://cam/open")  # nothing secret: not stored
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert json.loads(store.path.read_text()) == {"fire": real}
    assert store.resolve("fire", redact_url(real)) == real
    assert store.resolve("flood", redact_url(real)) == redact_url(real)  # not its URL
    assert store.resolve("fire", "rtsp://admin:***@other/live") == "rtsp://admin:***@other/live"


class Camera:
    """An HTTP 'camera' that serves a clip only with Basic auth and a token in the query."""

    def __init__(self, clip: Path) -> None:
        self.clip, self.ok, self.refused = clip, 0, 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        want = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != want or request.query.get("token") != TOKEN:
            self.refused += 1
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cam"'})
        self.ok += 1
        return web.FileResponse(self.clip)


async def wait_for(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_credentials_reach_the_camera_and_nowhere_else(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clip = tmp_path / "cam.webm"
    make_file(clip, "fire", "libvpx", seconds=3.0)
    camera = Camera(clip)
    app = web.Application()
    app.router.add_get("/cam/live.webm", camera.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cam_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    data = tmp_path / "data"
    data.mkdir()
    (data / "media.yaml").write_text(yaml.safe_dump({"ingest": {
        "backoff_initial_s": 0.2, "backoff_max_s": 0.4}}), encoding="utf-8")
    running: RunningHub = await start_hub(ServeOptions(data=data, port=0, record=False))
    cam_url = f"http://admin:{PASSWORD}@127.0.0.1:{cam_port}/cam/live.webm?token={TOKEN}"
    dead_url = f"rtsp://admin:{RTSP_PW}@127.0.0.1:1/live?password={QUERY_PW}"
    try:
        now = int(time.time())
        commander = running.hub.authority.issue("commander", now=now)
        dept = running.hub.authority.issue("department", now=now, dept="fire")
        auth = {"Authorization": f"Bearer {commander}"}
        async with aiohttp.ClientSession() as http:
            for d, url in (("fire", cam_url), ("water", dead_url)):
                async with http.post(running.url + "/api/ingest", headers=auth,
                                     json={"dept": d, "url": url}) as r:
                    body = await r.text()
                    assert r.status == 201, body
                    assert not any(s in body for s in SECRETS) and "***" in body

            def kinds(kind: str, d: str) -> list[dict[str, Any]]:
                return [dict(e.payload) for e in running.hub.log.after(0, 100_000)
                        if e.kind == kind and e.payload.get("dept") == d]

            await wait_for(lambda: kinds("ingest.connected", "fire"), 20)  # the real URL works
            await wait_for(lambda: kinds("video.lost", "water"), 20)
            assert camera.ok >= 1
            lost = kinds("video.lost", "water")[0]
            assert lost["url"] == "rtsp://admin:***@127.0.0.1:1/live?password=***"
            assert "127.0.0.1:1" in lost["reason"]  # the cause is kept, the secret is not
            states = []
            for tok in (commander, dept):
                async with http.get(running.url + "/api/state",
                                    headers={"Authorization": f"Bearer {tok}"}) as r:
                    states.append(await r.text())
            assert "rtsp://admin:***@127.0.0.1:1/live?password=***" in states[0]
            # the console re-starts an ingest from the URL it was shown: resolved from the store
            shown = json.loads(states[0])["media"]["ingest"]["fire"]["url"]
            assert "***" in shown
            before = len(kinds("ingest.connected", "fire"))
            async with http.post(running.url + "/api/ingest", headers=auth,
                                 json={"dept": "fire", "url": shown}) as r:
                assert r.status == 201
            await wait_for(lambda: len(kinds("ingest.connected", "fire")) > before, 20)
    finally:
        await running.stop()
        await runner.cleanup()
    store = data / "camera-credentials.json"
    assert store.stat().st_mode & 0o777 == 0o600
    assert json.loads(store.read_text()) == {"fire": cam_url, "water": dead_url}
    raw = b"".join(p.read_bytes() for p in data.iterdir()
                   if p.is_file() and p.name != store.name)
    for secret in SECRETS:
        assert secret.encode() not in raw, secret  # not in the log, its WAL, heads, anything
        assert all(secret not in s for s in states)
        assert all(secret not in r.getMessage() for r in caplog.records), secret
    events = read_events(data / "events.db")
    assert any(e.kind == "ingest.started" and e.payload["url"].startswith("http://admin:***@")
               for e in events)
