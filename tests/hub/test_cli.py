"""The command line against a live hub: token issue, send, watch, serve over TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import warnings
from pathlib import Path

import aiohttp
import jwt
import pytest

from hub.bench import free_port, start_hub_process, wait_http
from hub.client import HubClient
from hub.logformat import read_events
from hub.runtime import RunningHub
from hub.tls import server_context


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_issue_prints_only_the_token(tmp_path: Path) -> None:
    code, out, err = await run_cli("token", "issue", "--data", str(tmp_path), "--role",
                                   "department", "--dept", "fire", "--ttl", "2h")
    assert code == 0
    tok = out.strip()
    assert out.count("\n") == 1 and tok.count(".") == 2
    claims = jwt.decode(tok, (tmp_path / "secret.key").read_bytes().strip(), algorithms=["HS256"])
    assert claims["role"] == "department" and claims["dept"] == "fire" and claims["op"] == "*"
    assert 7100 < claims["exp"] - claims["nbf"] <= 7200 and len(claims["jti"]) == 32
    code, _, err = await run_cli("token", "issue", "--data", str(tmp_path), "--role",
                                 "department")
    assert code == 2 and "--dept" in err
    code, _, err = await run_cli("token", "issue", "--data", str(tmp_path), "--role",
                                 "department", "--dept", "mars")
    assert code == 2 and "unknown department" in err


async def test_send_and_watch(running_hub: RunningHub) -> None:
    now = int(time.time())
    commander = running_hub.hub.authority.issue("commander", now=now)
    observer = running_hub.hub.authority.issue("observer", now=now)
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "watch", "--url", running_hub.url, "--token", observer,
        "--after", "0", "--count", "4", stdout=asyncio.subprocess.PIPE)
    code, out, err = await run_cli("send", "--url", running_hub.url, "--token", commander,
                                   "--to", "fire,flood", "--requires", "receipt,on_scene",
                                   "立即出动")
    assert code == 0, err
    cid = out.strip()
    assert cid.startswith("C")
    issued = [e for e in read_events(running_hub.hub.log.path) if e.kind == "command.issued"]
    assert issued[-1].payload["command_id"] == cid
    assert issued[-1].payload["requires"] == ["receipt", "on_scene"]
    assert "fire" in issued[-1].payload["departments"]
    watched, _ = await asyncio.wait_for(watch.communicate(), 30)
    lines = watched.decode().splitlines()
    # hub.started, the watcher's own presence.online and presence.clock, and the command
    assert len(lines) == 4 and any("command.issued" in ln and "立即出动" in ln for ln in lines)
    code, _, err = await run_cli("send", "--url", running_hub.url, "--token", observer,
                                 "--to", "fire", "x")
    assert code == 1 and "forbidden" in err


async def test_serve_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    code, _, err = await run_cli("serve", "--data", str(tmp_path), "--host", "0.0.0.0",
                                 "--port", "0")
    assert code == 2 and "--tls-cert" in err


async def test_serve_over_tls(tmp_path: Path) -> None:
    code, out, _ = await run_cli("tls", "self-signed", "--host", "127.0.0.1", "localhost",
                                 "--out", str(tmp_path))
    assert code == 0 and "SHA256" in out
    cert, key = tmp_path / "hub-cert.pem", tmp_path / "hub-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    port = free_port()
    proc = start_hub_process(tmp_path / "data", port, "--tls-cert", str(cert), "--tls-key",
                             str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "hub-ca.pem"))
        await wait_http(f"https://127.0.0.1:{port}", ssl_context=ctx)
        token = (await run_cli("token", "issue", "--data", str(tmp_path / "data"), "--role",
                               "commander"))[1].strip()
        async with HubClient(f"https://127.0.0.1:{port}", token, ssl_context=ctx) as c:
            assert (await c.request("ping"))["hub_time_us"] > 0  # WSS works
        assert server_context(cert, key).minimum_version == ssl.TLSVersion.TLSv1_2
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(tmp_path / "hub-ca.pem"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 on purpose
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.minimum_version = ssl.TLSVersion.TLSv1
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
            async with aiohttp.ClientSession() as http, \
                    http.get(f"https://127.0.0.1:{port}/healthz", ssl=old) as r:
                json.loads(await r.text())
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_serve_runs_on_the_event_loop_it_names(tmp_path: Path, loop: str) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "serve", "--data", str(tmp_path), "--port", str(port),
        "--event-loop", loop, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        banner = ""
        while "event loop:" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, f"serve ended before naming its event loop: {banner!r}"
            banner += line.decode()
        named = banner.rsplit("event loop:", 1)[1].split()[0]
        assert named == loop
        token = (await run_cli("token", "issue", "--data", str(tmp_path), "--role",
                               "commander"))[1].strip()
        async with HubClient(f"http://127.0.0.1:{port}", token) as c:
            assert (await c.request("ping"))["hub_time_us"] > 0
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0  # SIGTERM ends it cleanly on either loop
