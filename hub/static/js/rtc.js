// One RTCPeerConnection with the hub (docs/video.md): at most one sending m-line per kind
// (camera, microphone) and N receiving m-lines, the slots. The hub switches departments into
// slots and tells us which mid carries which department (`rtc.slots`). No trickle: gather
// fully, then offer. After a failure or a new WebSocket session: a fresh connection.

const GATHER_TIMEOUT_MS = 4000;

export class RtcLink {
  // opts: videoSlots, audioSlots, publish (bool), constraints, onSlots(list), onState(state), onLocal(stream)
  constructor(sock, opts) {
    this.sock = sock;
    this.o = opts;
    this.pc = null;
    this.local = null;
    this.localTried = false;
    this.streams = new Map(); // mid -> MediaStream
    this.slots = { video: [], audio: [] };
    this.generation = 0;
    this.retryTimer = null;
  }

  async localMedia() {
    if (this.localTried) return this.local;
    this.localTried = true;
    if (!this.o.publish || !navigator.mediaDevices) return null;
    try {
      this.local = await navigator.mediaDevices.getUserMedia(this.o.constraints || {
        video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15 } },
        audio: true,
      });
    } catch (err) {
      // try video only, then nothing: receiving still works
      try {
        this.local = await navigator.mediaDevices.getUserMedia({ video: true });
      } catch (_) {
        this.local = null;
        if (this.o.onLocalError) this.o.onLocalError(err);
      }
    }
    if (this.local && this.o.onLocal) this.o.onLocal(this.local);
    return this.local;
  }

  state(s) {
    this.lastState = s;
    if (this.o.onState) this.o.onState(s);
  }

  // (Re)connect: called after every `welcome` (a new session is a new participant).
  async start() {
    const gen = ++this.generation;
    clearTimeout(this.retryTimer);
    this.close(false);
    const local = await this.localMedia();
    if (gen !== this.generation) return;
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.streams = new Map();
    this.slotVersion = 0; // a new peer connection is a new participant: versions start again
    for (const kind of ["video", "audio"]) {
      const track = local ? local.getTracks().find((t) => t.kind === kind) : null;
      if (track) pc.addTransceiver(track, { direction: "sendonly", streams: [local] });
      const n = kind === "video" ? this.o.videoSlots : this.o.audioSlots;
      for (let i = 0; i < n; i += 1) pc.addTransceiver(kind, { direction: "recvonly" });
    }
    // VP8 and H264 (constrained baseline, packetization-mode 1: what the hub forwards) and Opus
    // only: a slot then carries a publisher of either codec, and a 34 m-line offer stays small.
    for (const tr of pc.getTransceivers()) preferCodecs(tr);
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      this.state(pc.connectionState);
      if (pc.connectionState === "failed") this.scheduleRetry(gen, 1000);
    };
    this.state("negotiating");
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (gen !== this.generation) return;
      const ack = await this.sock.request("rtc.offer", { sdp: pc.localDescription.sdp }, { timeout: 20000 });
      if (gen !== this.generation) return;
      // Apply the ack's slot map now, before awaiting anything: an `rtc.slots` frame that
      // arrives while the answer is being set is newer and must not be overwritten by it.
      if (ack.slots) this.applySlots(ack.slots);
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
    } catch (err) {
      if (gen !== this.generation) return;
      this.state("failed");
      console.warn("rtc offer failed", err);
      this.scheduleRetry(gen, 2000);
    }
  }

  scheduleRetry(gen, ms) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (gen === this.generation && this.sock.connected) this.start();
    }, ms);
  }

  applySlots(frame) {
    // Frames and the offer's ack can cross: keep the newest map (`version` grows per change).
    const version = frame.version || 0;
    if (version < (this.slotVersion || 0)) return;
    this.slotVersion = version;
    this.slots = { video: frame.video || [], audio: frame.audio || [] };
    if (this.o.onSlots) this.o.onSlots(this.slots);
  }

  // The MediaStream of the receiving transceiver with this mid (one per mid, kept).
  streamFor(mid) {
    if (!this.pc || mid == null) return null;
    if (this.streams.has(mid)) return this.streams.get(mid);
    const tr = this.pc.getTransceivers().find((x) => x.mid === String(mid));
    if (!tr) return null;
    const s = new MediaStream([tr.receiver.track]);
    this.streams.set(mid, s);
    return s;
  }

  setMicEnabled(on) {
    if (!this.local) return;
    for (const t of this.local.getAudioTracks()) t.enabled = on;
  }

  close(stopLocal = true) {
    if (this.pc) {
      try { this.pc.close(); } catch (_) { /* closed */ }
      this.pc = null;
    }
    if (stopLocal && this.local) {
      for (const t of this.local.getTracks()) t.stop();
      this.local = null;
      this.localTried = false;
    }
  }
}

const PREFERRED = { video: ["video/vp8", "video/h264"], audio: ["audio/opus"] };
// H264 as the hub (aiortc) takes it: baseline or constrained baseline, packetization-mode=1.
const H264_OK = (fmtp) => /packetization-mode=1/.test(fmtp || "")
  && /profile-level-id=42(e0|00)/i.test(fmtp || "");

function preferCodecs(tr) {
  const kind = tr.receiver.track.kind;
  if (!tr.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps) return;
  const codecs = [];
  for (const mime of PREFERRED[kind]) { // in order of preference: VP8 first
    for (const c of caps.codecs) {
      if (c.mimeType.toLowerCase() !== mime) continue;
      if (mime === "video/h264" && !H264_OK(c.sdpFmtpLine)) continue;
      codecs.push(c);
    }
  }
  if (!codecs.length) return; // leave the browser's list: the hub will say no_common_codec
  try { tr.setCodecPreferences(codecs); } catch (_) { /* older browsers */ }
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === "complete") done(); }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// Watches <video> elements: frozen (currentTime stands still) and black (dark picture).
export class VideoWatch {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.canvas.width = 16;
    this.canvas.height = 9;
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.last = new WeakMap();
  }

  // -> "ok" | "frozen" | "black" | "missing"
  check(video) {
    if (!video.srcObject || video.readyState < 2 || !video.videoWidth) return "missing";
    const now = performance.now();
    const prev = this.last.get(video);
    let state = "ok";
    if (prev && video.currentTime === prev.time && now - prev.at > 2500) state = "frozen";
    if (!prev || video.currentTime !== prev.time) this.last.set(video, { time: video.currentTime, at: now });
    if (state === "ok") {
      try {
        this.ctx.drawImage(video, 0, 0, 16, 9);
        const px = this.ctx.getImageData(0, 0, 16, 9).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += px[i] * 0.299 + px[i + 1] * 0.587 + px[i + 2] * 0.114;
        if (sum / (px.length / 4) < 12) state = "black";
      } catch (_) { /* not drawable yet */ }
    }
    return state;
  }
}
