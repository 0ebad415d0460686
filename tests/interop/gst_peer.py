"""A stock GStreamer webrtcbin WHIP publisher / WHEP viewer, run with Debian's /usr/bin/python3.

An independent WebRTC stack (libnice, GStreamer's DTLS/SRTP, vp8enc/x264enc) for the interop
tests; the project's venv has no `gi`, so tests start this file as a subprocess. Output: one JSON
object per line on stdout (`{"event": ...}`), the last one `{"event": "done", ...}`.

    gst_peer.py publish URL TOKEN [--codec vp8|h264] [--cert default|rsa|ecdsa] [--pattern ball|black|smpte]
    gst_peer.py view URL TOKEN [--codec vp8|h264] [--cert ...]
    common: --seconds N (how long to run once connected), --offer-setup actpass|passive,
            --delete (DELETE the session at the end), --connect-timeout S,
            --bad-fingerprint (offer a fingerprint that is not the certificate's: DTLS must fail),
            --sendrecv (publish with webrtcbin's default transceiver direction, not sendonly)

`--cert rsa|ecdsa` makes a fresh certificate with the openssl CLI and gives it to webrtcbin's DTLS
elements (`pem` of dtlssrtpdec). GStreamer 1.22's webrtcbin then hashes the key along with the
certificate into `a=fingerprint`, so the offer's fingerprint is recomputed from the certificate
alone before it is sent. `--offer-setup passive` rewrites the offer's `a=setup:actpass` so that the
answerer must take the DTLS client role (the hub then connects to webrtcbin's DTLS server).

libnice skips loopback interfaces: in a loopback-only namespace run this with the getifaddrs shim
(LD_PRELOAD, see tests/interop/lo_shim.c) so that it gathers 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

ENCODERS = {
    "vp8": ("vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 target-bitrate=400000 ! "
            "rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,"
            "clock-rate=90000"),
    "h264": ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=400 ! "
             "video/x-h264,profile=constrained-baseline ! rtph264pay pt=102 config-interval=-1 "
             "aggregate-mode=zero-latency ! application/x-rtp,media=video,encoding-name=H264,"
             "payload=102,clock-rate=90000"),
}
RECV_CAPS = {
    "vp8": "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
    "h264": ("application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
             "packetization-mode=(string)1,profile-level-id=(string)42e01f"),
}


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


def make_cert(kind: str, directory: str) -> tuple[str, str]:
    """(PEM of certificate + key, sha-256 fingerprint of the certificate) made with openssl."""
    key, crt = os.path.join(directory, f"{kind}.key"), os.path.join(directory, f"{kind}.crt")
    newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=gst-peer"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    with open(crt) as c, open(key) as k:
        return c.read() + k.read(), fingerprint


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.location: str | None = None
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.connected_at: float | None = None
        self.failed: str | None = None
        self.posted = False
        self.pem: str | None = None
        self.fingerprint: str | None = None
        if args.cert != "default":
            self.pem, self.fingerprint = make_cert(args.cert, tempfile.mkdtemp(prefix="gstpeer-"))
        if args.mode == "publish":
            pattern = {"ball": "ball background-color=0xff4a6a8a",  # moving, on a mid-grey field
                       "black": "black", "smpte": "smpte"}[args.pattern]
            desc = (f"videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,"
                    f"framerate=15/1 ! videoconvert ! queue ! {ENCODERS[args.codec]} ! "
                    "webrtcbin name=w bundle-policy=max-bundle")
            self.pipe = Gst.parse_launch(desc)
            self.w = self.pipe.get_by_name("w")
        else:
            self.pipe = Gst.Pipeline.new("viewer")
            self.w = Gst.ElementFactory.make("webrtcbin", "w")
            self.w.set_property("bundle-policy", "max-bundle")
            self.pipe.add(self.w)
        self.w.connect("deep-element-added", self._element_added)
        self.w.connect("on-negotiation-needed", self._negotiate)
        self.w.connect("notify::ice-gathering-state", self._gathering)
        self.w.connect("notify::connection-state", self._connection)
        self.w.connect("pad-added", self._pad_added)
        if args.mode == "view":
            caps = Gst.Caps.from_string(RECV_CAPS[args.codec])
            self.w.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._error)

    # -- set-up --------------------------------------------------------------------------------

    def _element_added(self, _bin: Any, _sub: Any, element: Any) -> None:
        factory = element.get_factory()
        if self.pem is not None and factory is not None and factory.get_name() == "dtlssrtpdec":
            element.set_property("pem", self.pem)

    def _negotiate(self, _w: Any) -> None:
        if self.args.mode == "publish" and not self.args.sendrecv:
            transceiver = self.w.emit("get-transceiver", 0)
            transceiver.set_property("direction",
                                     GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self._offer_created, None)
        self.w.emit("create-offer", None, promise)

    def _offer_created(self, promise: Any, _data: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            say("error", message=f"create-offer failed: {reply.to_string() if reply else None}")
            self.failed = "create-offer failed"
            self.loop.quit()
            return
        self.w.emit("set-local-description", offer, Gst.Promise.new())

    def _gathering(self, *_: Any) -> None:
        state = self.w.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.posted:
            self.posted = True
            GLib.idle_add(self._post)

    def _sdp_to_send(self) -> str:
        sdp: str = self.w.get_property("local-description").sdp.as_text()
        if self.fingerprint is not None:
            sdp = re.sub(r"a=fingerprint:sha-256 [0-9A-Fa-f:]+",
                         f"a=fingerprint:sha-256 {self.fingerprint}", sdp)
        if self.args.bad_fingerprint:
            sdp = re.sub(r"a=fingerprint:sha-256 [0-9A-Fa-f:]+",
                         "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), sdp)
        if self.args.offer_setup == "passive":
            sdp = sdp.replace("a=setup:actpass", "a=setup:passive")
        return sdp

    def _post(self) -> bool:
        sdp = self._sdp_to_send()
        candidates = re.findall(r"a=candidate:\S+ \d+ UDP \d+ (\S+) ", sdp)
        say("offer", candidates=candidates, setup=re.findall(r"a=setup:(\w+)", sdp)[:1])
        request = urllib.request.Request(self.args.url, data=sdp.encode(), method="POST", headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {self.args.token}"})
        try:
            with urllib.request.urlopen(request, timeout=15) as resp:
                status, answer = resp.status, resp.read().decode()
                self.location = resp.headers.get("Location")
        except urllib.error.HTTPError as exc:
            say("rejected", status=exc.code, body=exc.read().decode()[:500])
            self.failed = f"http {exc.code}"
            self.loop.quit()
            return False
        say("answer", status=status, location=self.location,
            setup=re.findall(r"a=setup:(\w+)", answer)[:1],
            directions=re.findall(r"a=(sendrecv|sendonly|recvonly|inactive)\r?$", answer, re.M))
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.w.emit("set-remote-description", desc, Gst.Promise.new())
        return False

    def _connection(self, *_: Any) -> None:
        state = self.w.get_property("connection-state")
        say("state", connection=state.value_nick)
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.connected_at is None:
            self.connected_at = time.monotonic()
            GLib.timeout_add(int(self.args.seconds * 1000), self._finish)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.failed = "connection failed"
            self.loop.quit()

    def _pad_added(self, _w: Any, pad: Any) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self._decoded_pad)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def _decoded_pad(self, _decodebin: Any, pad: Any) -> None:
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count)

    def _count(self, pad: Any, _info: Any) -> Any:
        self.frames += 1
        if self.size is None:
            caps = pad.get_current_caps()
            if caps is not None:
                s = caps.get_structure(0)
                self.size = (s.get_value("width"), s.get_value("height"))
        return Gst.PadProbeReturn.OK

    def _report(self) -> bool:
        say("frames", frames=self.frames)  # decoded so far (a viewer's progress, 4 a second)
        return True

    def _error(self, _bus: Any, message: Any) -> None:
        err, debug = message.parse_error()
        say("error", message=str(err), debug=str(debug)[:300])

    def _finish(self) -> bool:
        self.loop.quit()
        return False

    def _timeout(self) -> bool:
        if self.connected_at is None:
            self.failed = self.failed or "not connected in time"
            self.loop.quit()
        return False

    def _delete(self) -> int | None:
        if self.location is None:
            return None
        base = re.match(r"https?://[^/]+", self.args.url)
        assert base is not None
        request = urllib.request.Request(base.group(0) + self.location, method="DELETE",
                                         headers={"Authorization": f"Bearer {self.args.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def run(self) -> int:
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(self.args.connect_timeout * 1000), self._timeout)
        # SIGUSR1: finish now, as at the end of --seconds (the test has seen what it needed)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, self._finish)
        if self.args.mode == "view":
            GLib.timeout_add(250, self._report)
        self.loop.run()
        deleted = self._delete() if self.args.delete else None
        transceiver = self.w.emit("get-transceiver", 0)
        dtls = None
        if transceiver is not None:
            transport = transceiver.get_property("sender").get_property("transport")
            if transport is not None:
                dtls = transport.get_property("state").value_nick
        self.pipe.set_state(Gst.State.NULL)
        say("done", ok=self.failed is None, failed=self.failed, frames=self.frames,
            size=list(self.size) if self.size else None, dtls=dtls, deleted=deleted,
            location=self.location,
            connected_s=None if self.connected_at is None else round(
                time.monotonic() - self.connected_at, 2))
        return 0 if self.failed is None else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=["publish", "view"])
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("--codec", choices=sorted(ENCODERS), default="vp8")
    p.add_argument("--cert", choices=["default", "rsa", "ecdsa"], default="default")
    p.add_argument("--pattern", choices=["ball", "black", "smpte"], default="ball")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--offer-setup", choices=["actpass", "passive"], default="actpass")
    p.add_argument("--delete", action="store_true")
    p.add_argument("--bad-fingerprint", action="store_true")
    p.add_argument("--sendrecv", action="store_true",
                   help="publish with webrtcbin's default transceiver direction (sendrecv)")
    args = p.parse_args()
    Gst.init(None)
    return Peer(args).run()


if __name__ == "__main__":
    sys.exit(main())
