"""Running a hub: build it from options, serve HTTP(S), print how to join, stop cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hub.auth import TokenAuthority, load_secret
from hub.checkpoint import CheckpointError
from hub.cli import CliError
from hub.clock import SystemClock
from hub.eventlog import EventLogError, VerifySkip
from hub.roster import RosterError, load_roster
from hub.rubricinfo import RubricInfo, RubricInfoError
from hub.server import create_app, is_loopback
from hub.service import Hub, HubConfig
from hub.tiers.uplink import Uplink
from hub.tls import client_context, server_context

HOLD_ACK_ENV = "COMMANDHUB_FAULT_HOLD_ACK"  # tests: hold acks of matching ids (hub/api/dispatch.py)


@dataclass
class ServeOptions:
    data: Path
    host: str = "127.0.0.1"
    port: int = 8080
    roster: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False
    allow_origins: set[str] = field(default_factory=set)
    ice_hosts: list[str] = field(default_factory=list)
    synchronous: str = "FULL"
    print_tokens: bool = False
    record: bool = True  # record every feed and the wall (DATA/recordings)
    media_config: str | None = None  # health/wall/record/ingest settings (default DATA/media.yaml)
    skip_verify: VerifySkip | None = None  # start without verifying the log (logged)
    rubric: str | None = None  # the rubric evaluators rate against (default: the bundled one)
    snapshot_quota: int | None = None  # browser snapshots per operation (default HubConfig's)
    snapshot_quota_mb: float | None = None  # and their megabytes
    uplink: str | None = None  # the city hub's URL: this hub is one of its towns (hub/tiers/)
    uplink_token: str | None = None  # a `hub` token of the city hub for this town
    uplink_ca: str | None = None  # the CA certificate (PEM) to trust for an https uplink


def new_event_loop(kind: str = "uvloop") -> asyncio.AbstractEventLoop:
    """The served hub's event loop: uvloop's (libuv, in C: its UDP reads and writes, timers and
    polling cost a fraction of asyncio's Python selector loop, which the per-packet media path
    runs through) unless `kind` is "asyncio" or uvloop is not installed."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def event_loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """"uvloop 0.23.0" or "asyncio", for the serve banner."""
    if type(loop).__module__.startswith("uvloop"):
        from importlib.metadata import version

        return f"uvloop {version('uvloop')}"
    return "asyncio"


class RunningHub:
    """A started hub and its web server; `await stop()` to end both (once: a second call
    returns at once)."""

    def __init__(self, hub: Hub, runner: web.AppRunner, url: str) -> None:
        self.hub, self.runner, self.url = hub, runner, url
        self.uplink: Uplink | None = None
        self._stopped = False

    async def stop(self) -> None:
        if self._stopped:  # aiohttp's cleanup of a cleaned-up runner waits 10 s for nothing
            return
        self._stopped = True
        if self.uplink is not None:
            await self.uplink.stop()
        await self.runner.cleanup()  # closes the sockets (and the video hub) while the log is open
        await self.hub.stop()


async def start_hub(opts: ServeOptions) -> RunningHub:
    """Start a hub per `opts`; raise CliError on bad options."""
    if (opts.tls_cert is None) != (opts.tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    if (opts.uplink is None) != (opts.uplink_token is None):
        raise CliError("--uplink and --uplink-token go together")
    uplink_ssl = uplink_context(opts.uplink, opts.uplink_ca)
    if opts.tls_cert is None and not is_loopback(opts.host) and not opts.insecure:
        raise CliError(f"refusing plain HTTP on {opts.host}: give --tls-cert/--tls-key "
                       "(see `commandhub tls self-signed`) or --insecure")
    try:
        roster = load_roster(opts.roster)
    except RosterError as exc:
        raise CliError(str(exc)) from exc
    try:
        rubric = RubricInfo.load(opts.rubric)
    except RubricInfoError as exc:
        raise CliError(f"--rubric: {exc}") from exc
    authority = TokenAuthority(load_secret(opts.data), set(roster.ids))
    try:
        hub = Hub(roster, opts.data, SystemClock(), authority=authority, config=hub_config(opts),
                  synchronous=opts.synchronous, rubric=rubric)
    except CheckpointError as exc:  # the log signing key cannot be read or made
        raise CliError(str(exc)) from exc
    try:
        await hub.start(skip_verify=opts.skip_verify)
    except EventLogError as exc:
        await hub.log.close()
        raise CliError(str(exc), getattr(exc, "exit_code", 2)) from exc
    app = create_app(hub, allowed_origins=opts.allow_origins)
    from hub.wiring import attach_extensions

    await attach_extensions(app, hub, opts)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    ssl_ctx = server_context(opts.tls_cert, opts.tls_key) if opts.tls_cert and opts.tls_key \
        else None
    site = web.TCPSite(runner, opts.host, opts.port, ssl_context=ssl_ctx)
    try:
        await site.start()
    except OSError as exc:
        await hub.stop()
        await runner.cleanup()
        raise CliError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror}") from exc
    port = opts.port
    if port == 0 and site._server is not None:  # an ephemeral port: find which
        sockets = getattr(site._server, "sockets", None) or []
        port = sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    if opts.insecure and ssl_ctx is None and not is_loopback(opts.host):
        print(f"WARNING: plain HTTP on {opts.host}: tokens and commands travel unencrypted",
              flush=True)
    running = RunningHub(hub, runner, f"{scheme}://{opts.host}:{port}")
    if opts.uplink is not None and opts.uplink_token is not None:
        from hub.wiring import VIDEO_HUB_KEY

        tier_video = None
        if VIDEO_HUB_KEY in app:
            from hub.sfu.tiervideo import TierVideo

            tier_video = TierVideo(hub, app[VIDEO_HUB_KEY], opts.uplink, opts.uplink_token,
                                   uplink_ssl)
        running.uplink = Uplink(hub, opts.uplink, opts.uplink_token, uplink_ssl, tier_video)
        running.uplink.start()
    return running


def uplink_context(url: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The TLS context of an uplink that trusts only `ca` (None: the system's CAs)."""
    if ca is None:
        return None
    if url is None or not url.startswith("https://"):
        raise CliError("--uplink-ca goes with an https:// --uplink")
    try:
        return client_context(ca)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"--uplink-ca {ca}: not a readable PEM CA certificate ({exc})") from exc


def hub_config(opts: ServeOptions) -> HubConfig:
    """The hub's limits from the options (and the crash tests' fault point from the environment)."""
    config = HubConfig()
    if opts.snapshot_quota is not None:
        config.snapshot_quota_count = opts.snapshot_quota
    if opts.snapshot_quota_mb is not None:
        config.snapshot_quota_bytes = round(opts.snapshot_quota_mb * 1024 * 1024)
    hold = os.environ.get(HOLD_ACK_ENV)
    if hold:
        config.hold_ack = re.compile(hold)
    return config


def join_links(hub: Hub, url: str, ttl_s: int = 12 * 3600) -> list[tuple[str, str]]:
    """(label, URL with a fresh token) for the commander, an evaluator and each department."""
    now = int(time.time())
    links = [("commander", f"{url}/commander?token="
              f"{hub.authority.issue('commander', now=now, ttl_s=ttl_s)}"),
             ("evaluator", f"{url}/evaluator?token="
              f"{hub.authority.issue('evaluator', now=now, ttl_s=ttl_s)}")]
    for d in hub.roster.departments:
        tok = hub.authority.issue("department", now=now, ttl_s=ttl_s, dept=d.id)
        links.append((f"{d.id} {d.name_zh}", f"{url}/department?token={tok}"))
    return links


async def serve(opts: ServeOptions) -> int:
    running = await start_hub(opts)
    print(f"CommandHub listening on {running.url} (log: {opts.data / 'events.db'})", flush=True)
    from hub.sfu.ice import describe_hosts

    print(f"ICE host candidates offered to browsers: {describe_hosts()}", flush=True)
    print(f"event loop: {event_loop_name(asyncio.get_running_loop())}", flush=True)
    if opts.print_tokens:
        for label, link in join_links(running.hub, running.url):
            print(f"  {label:<28} {link}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()
    return 0
