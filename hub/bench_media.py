"""`commandhub bench media`: hub CPU, fps, pixel-stamp latency; forwarding vs stock aiortc relay.

`--serve` measures the hub as `commandhub serve` runs it (health, recording, snapshots, the
wall for WHEP viewers: the media wiring on) instead of the bare video hub; `--record-wall`
also records the wall (DATA/media.yaml `record: {wall: true}`: every frame decoded, the wall
composed and encoded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIGNAL_TIMEOUT = 30.0
DEPT_IDS = [f"d{i:02d}" for i in range(1, 65)]


class BenchError(Exception):
    """A benchmark process failed or did not report in time."""


# ----------------------------------------------------------------- hub process
def _bench_roster(path: str, departments: int) -> None:
    """A roster of the bench's departments (d01, d02, ...), so that the served hub's health,
    recording and wall take every feed."""
    import yaml

    doc = {"center": {"id": "center", "name_zh": "指挥中心", "name_en": "Center"},
           "departments": [{"id": d, "name_zh": f"部门{d}", "name_en": f"Dept {d}", "groups": [],
                            "tier": "city"} for d in DEPT_IDS[:departments]]}
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, allow_unicode=True)


async def _serve_hub(mode: str, ice_host: str, departments: int = 16) -> None:
    import contextlib
    import tempfile

    from hub.sfu.ice import IceConfig

    ice = IceConfig(hosts=(ice_host,))
    handler: Any
    cleanup = contextlib.AsyncExitStack()
    if mode in ("serve", "serve-wall", "forward"):
        from hub.sfu.videohub import VideoHub

        video: VideoHub
        if mode != "forward":  # the whole hub, media wiring on, as `commandhub serve` runs it
            from hub.runtime import ServeOptions, start_hub
            from hub.wiring import VIDEO_HUB_KEY

            data = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-"))
            roster = os.path.join(data, "roster.yaml")
            _bench_roster(roster, departments)
            if mode == "serve-wall":
                os.makedirs(os.path.join(data, "data"))
                with open(os.path.join(data, "data", "media.yaml"), "w", encoding="utf-8") as f:
                    f.write("record: {wall: true}\n")
            running = await start_hub(ServeOptions(data=Path(data) / "data", port=0,
                                                   ice_hosts=[ice_host], roster=roster))
            video = running.runner.app[VIDEO_HUB_KEY]
            close = running.stop
        else:
            async def emit(kind: str, dept: str | None, payload: dict[str, Any]) -> None:
                return None

            video = VideoHub(emit=emit, groups={}, ice=ice, departments=DEPT_IDS,
                             stats_interval=0)
            close = video.close

        async def handler(msg: dict[str, Any]) -> dict[str, Any]:
            sdp = await video.handle_offer(msg["pid"], msg["role"], msg.get("dept"), msg["sdp"])
            return {"sdp": sdp, "slots": video.slot_info(msg["pid"])}

        async def slots(pid: str) -> dict[str, Any]:
            return video.slot_info(pid)
    else:
        relay = _RelayHub(ice)
        handler = relay.handle
        slots = relay.slots
        close = relay.close

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            msg = json.loads(line)
            try:
                reply = await (slots(msg["pid"]) if msg.get("op") == "slots" else handler(msg))
            except Exception as exc:
                reply = {"error": str(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, limit=1 << 22)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    server.close()
    await close()  # peer connections and their tasks, before the loop goes
    await cleanup.aclose()


class _RelayHub:
    """Baseline: stock aiortc, each feed decoded and re-encoded per viewer via MediaRelay."""

    def __init__(self, ice: Any) -> None:
        from aiortc.contrib.media import MediaRelay

        from hub.sfu.ice import apply_host_addresses

        apply_host_addresses(ice)
        self._ice = ice
        self._relay = MediaRelay()
        self._tracks: dict[str, Any] = {}
        self._viewers: list[tuple[str, list[Any], dict[int, str]]] = []
        self._pcs: list[Any] = []

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection(self._ice.rtc_configuration())
        self._pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        slots = []
        for t in pc.getTransceivers():
            if t._offerDirection in ("recvonly", "sendrecv") and t.kind == "video":
                self._tracks[msg["dept"]] = t.receiver.track
            elif t._offerDirection == "sendonly" and t.kind == "video":
                t.direction = "sendonly"
                slots.append(t)
        mapping: dict[int, str] = {}
        if slots:
            self._viewers.append((msg["pid"], slots, mapping))
        await pc.setLocalDescription(await pc.createAnswer())
        self._assign()
        return {"sdp": pc.localDescription.sdp, "slots": await self.slots(msg["pid"])}

    def _assign(self) -> None:
        for _pid, slots, mapping in self._viewers:
            for dept, track in self._tracks.items():
                if dept in mapping.values() or len(mapping) >= len(slots):
                    continue
                index = len(mapping)
                slots[index].sender.replaceTrack(self._relay.subscribe(track))
                mapping[index] = dept

    async def close(self) -> None:
        for pc in self._pcs:
            await pc.close()

    async def slots(self, pid: str) -> dict[str, Any]:
        for viewer, _slots, mapping in self._viewers:
            if viewer == pid:
                return {"video": [{"slot": i, "dept": d} for i, d in mapping.items()]}
        return {"video": []}


# ------------------------------------------------------------- client processes
async def _signal(port: int, msg: dict[str, Any]) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.write(json.dumps(msg).encode() + b"\n")
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), SIGNAL_TIMEOUT))
    writer.close()
    if "error" in reply:
        raise BenchError(reply["error"])
    return reply


async def _run_publishers(port: int, first: int, count: int, width: int, height: int) -> None:
    from hub.media_client import MediaClient
    from hub.sfu.ice import IceConfig
    from media.source import DepartmentVideo

    ice = IceConfig.loopback()
    clients = []
    for number in range(first, first + count):
        dept = DEPT_IDS[number - 1]
        client = MediaClient(ice=ice, video=DepartmentVideo(number, dept, width=width,
                                                            height=height), video_slots=0,
                             audio_slots=0)

        async def signal(sdp: str, dept: str = dept) -> str:
            reply = await _signal(port, {"pid": dept, "role": "department", "dept": dept,
                                         "sdp": sdp})
            return str(reply["sdp"])

        clients.append((client, signal))
    await asyncio.gather(*(client.connect(signal) for client, signal in clients))
    print("PUBLISHING", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for client, _ in clients:
        await client.close()


async def _run_viewer(port: int, pid: str, expect: int, duration: float) -> None:
    from hub.media_client import MediaClient
    from hub.sfu.ice import IceConfig
    from media.stamp import read_frame_stamp

    numbers = {i + 1: d for i, d in enumerate(DEPT_IDS)}
    client = MediaClient(ice=IceConfig.loopback(), video_slots=expect, audio_slots=0,
                         stamp_reader=read_frame_stamp, stamp_numbers=numbers)

    async def signal(sdp: str) -> str:
        reply = await _signal(port, {"pid": pid, "role": "commander", "sdp": sdp})
        return str(reply["sdp"])

    await client.connect(signal)
    print("JOINED", flush=True)
    loop = asyncio.get_running_loop()
    t0 = float(await loop.run_in_executor(None, sys.stdin.readline))
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while len({d for d in client.seen().values() if d}) < expect:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    connect_all = time.time() - t0
    await asyncio.sleep(2.0)  # warm-up
    for view in client.slots["video"]:
        view.latencies_ms.clear()
    start = time.monotonic()
    counts = [v.frames for v in client.slots["video"]]
    print("WINDOW", flush=True)
    await asyncio.sleep(duration)
    span = time.monotonic() - start
    fps = [(v.frames - c) / span for v, c in zip(client.slots["video"], counts, strict=True)]
    lat = sorted(x for v in client.slots["video"] for x in v.latencies_ms)
    print("RESULT " + json.dumps({
        "fps": fps, "latencies": lat, "connect_all_s": connect_all,
        "seen": len({d for d in client.seen().values() if d}),
    }), flush=True)
    await client.close()


# ----------------------------------------------------------------- orchestrator
def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.bench_media", *args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )


def _expect(proc: subprocess.Popen[str], prefix: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise BenchError(f"process exited before {prefix}")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise BenchError(f"timed out waiting for {prefix}")


def run_once(mode: str, departments: int, viewers: int, width: int, height: int,
             duration: float, publisher_procs: int = 2) -> dict[str, Any]:
    """One run: hub process, `viewers` commander processes, publishers in their own ones."""
    hub = _spawn("_hub", mode, str(departments))
    procs: list[subprocess.Popen[str]] = [hub]
    try:
        port = int(_expect(hub, "READY "))
        views = [_spawn("_viewer", str(port), f"cmd{i}", str(departments), str(duration))
                 for i in range(viewers)]
        procs += views
        for v in views:
            _expect(v, "JOINED")
        t0 = time.time()
        for v in views:
            assert v.stdin is not None
            v.stdin.write(f"{t0}\n")
            v.stdin.flush()
        per = -(-departments // publisher_procs)
        pubs = [_spawn("_pub", str(port), str(1 + i * per), str(min(per, departments - i * per)),
                       str(width), str(height))
                for i in range(publisher_procs) if i * per < departments]
        procs += pubs
        for p in pubs:
            _expect(p, "PUBLISHING")
        for v in views:
            _expect(v, "WINDOW")
        cpu0, w0 = _cpu_seconds(hub.pid), time.monotonic()
        results = [json.loads(_expect(v, "RESULT ", duration + 60)) for v in views]
        cpu1, w1 = _cpu_seconds(hub.pid), time.monotonic()
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    fps = [f for r in results for f in r["fps"]]
    lat = sorted(x for r in results for x in r["latencies"])

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    return {
        "mode": mode, "departments": departments, "viewers": viewers,
        "size": f"{width}x{height}", "hub_cpu_pct": round(100 * (cpu1 - cpu0) / (w1 - w0), 1),
        "fps_min": round(min(fps), 2) if fps else 0.0,
        "fps_mean": round(statistics.fmean(fps), 2) if fps else 0.0,
        "latency_p50_ms": pct(0.5), "latency_p95_ms": pct(0.95),
        "connect_all_s": round(max(r["connect_all_s"] for r in results), 2),
        "seen": min(r["seen"] for r in results),
    }


def bench(args: argparse.Namespace) -> int:
    width, height = (int(x) for x in args.size.split("x"))
    mode = ("serve-wall" if args.record_wall else "serve") if args.serve else "forward"
    fwd = run_once(mode, args.departments, args.viewers, width, height, args.duration)
    out = dict(fwd)
    if not args.no_baseline:
        base = run_once("relay", args.departments, args.viewers, width, height, args.duration)
        out.update({f"baseline_{k}": v for k, v in base.items() if k not in ("departments",)})
    out["load_avg"] = os.getloadavg()[0]
    if not args.json:
        for key, value in out.items():
            print(f"{key:28s} {value}")
    print(json.dumps(out))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--departments", type=int, default=16)
    parser.add_argument("--viewers", type=int, default=1, help="commander clients")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--no-baseline", action="store_true", help="skip the relay baseline")
    parser.add_argument("--serve", action="store_true",
                        help="the hub as `commandhub serve` runs it: health, recording, wall on")
    parser.add_argument("--record-wall", action="store_true",
                        help="with --serve: the wall recorded too (record: {wall: true})")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    parser.set_defaults(handler=bench)


def register_bench(bench_sub: Any) -> None:
    """Adds `commandhub bench media` (for hub/cli_hub.py to call)."""
    add_arguments(bench_sub.add_parser("media", help="video hub forwarding benchmark"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_hub":
        from hub.runtime import new_event_loop

        with asyncio.Runner(loop_factory=new_event_loop) as runner:  # the loop serve runs on
            runner.run(_serve_hub(argv[1], "127.0.0.1", int(argv[2]) if len(argv) > 2 else 16))
        return 0
    if argv and argv[0] == "_pub":
        port, first, count, w, h = (int(x) for x in argv[1:6])
        asyncio.run(_run_publishers(port, first, count, w, h))
        return 0
    if argv and argv[0] == "_viewer":
        asyncio.run(_run_viewer(int(argv[1]), argv[2], int(argv[3]), float(argv[4])))
        return 0
    parser = argparse.ArgumentParser(prog="commandhub bench media")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
