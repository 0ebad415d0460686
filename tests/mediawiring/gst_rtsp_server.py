"""A stock gst-rtsp-server camera for the ingest tests; run with Debian's /usr/bin/python3 (it has gi).

    /usr/bin/python3 gst_rtsp_server.py --codec h264|vp8 [--port N] [--fps 15] [--pattern ball]

Serves rtsp://127.0.0.1:PORT/cam (a live videotestsrc, 320x240, a key frame every second) and
prints `READY <port>` on stdout once it listens. Each client gets its own pipeline (not shared),
so a new connection starts at a key frame. Runs until killed.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ENCODERS = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={gop} "
            "bitrate=400 ! video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1",
    "vp8": "vp8enc deadline=1 cpu-used=8 keyframe-max-dist={gop} target-bitrate=400000 ! "
           "rtpvp8pay name=pay0 pt=96",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern (ball, black, smpte...)")
    args = parser.parse_args()
    Gst.init(None)
    launch = (f"( videotestsrc is-live=true pattern={args.pattern} ! "
              f"video/x-raw,width=320,height=240,framerate={args.fps}/1 ! videoconvert ! "
              + ENCODERS[args.codec].format(gop=args.fps) + " )")
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
