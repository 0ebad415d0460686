// One RTCPeerConnection with the hub (docs/video.md): at most one sending m-line per kind
// (camera, microphone) and N receiving m-lines, the slots. The hub switches departments into
// slots and tells us which mid carries which department (`rtc.slots`). No trickle: gather
// fully, then offer. After a failure or a new WebSocket session: a fresh connection.
// A failure (the hub refusing the offer, no candidates, ICE/DTLS failing, no connection in
// time, the hub's `ice_timeout`) is reported with its cause through `onStatus` and retried
// with a growing delay (see "Failures and retries" below).

const GATHER_TIMEOUT_MS = 4000;
// Tests may shorten these: `window.chRtcTuning = {connectTimeoutMs, backoffMs: [...]}` before load.
const TUNING = { connectTimeoutMs: 15000, disconnectedMs: 10000,
  backoffMs: [1000, 2000, 4000, 8000, 15000, 30000], ...(globalThis.chRtcTuning || {}) };

export class RtcLink {
  // opts: videoSlots, audioSlots, publish (bool), constraints, onSlots(list), onState(state), onLocal(stream),
  // onStatus(status): {state, cause, detail, side, attempt, retryAt} (see "Failures and retries")
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
    this.failures = 0; // in a row, since the last connected link
    this.history = []; // the last failures: {at, cause, side, detail, attempt, delayMs}
    this.status = { state: "idle", cause: null, detail: "", side: null, attempt: 0, retryAt: null };
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
    this.watchLink(pc, gen);
    this.state("negotiating");
    this.setStatus({ state: "negotiating" });
    let ack;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (gen !== this.generation) return;
      if (!/^a=candidate:/m.test(pc.localDescription.sdp)) {
        this.fail(gen, "no_local_candidates", "browser",
          "the offer has no ICE candidate (a loopback-only machine needs Chromium's --allow-loopback-in-peer-connection)");
        return;
      }
      ack = await this.sock.request("rtc.offer", { sdp: pc.localDescription.sdp }, { timeout: 20000 });
    } catch (err) {
      if (gen !== this.generation) return;
      if (!this.sock.connected) { this.setStatus({ state: "idle" }); return; } // welcome restarts us
      const cause = err.code || (err.message === "timeout" ? "offer_timeout" : "other");
      this.fail(gen, cause, err.code ? "hub" : "browser", err.message || String(err));
      return;
    }
    if (gen !== this.generation) return;
    try {
      // Apply the ack's slot map now, before awaiting anything: an `rtc.slots` frame that
      // arrives while the answer is being set is newer and must not be overwritten by it.
      if (ack.slots) this.applySlots(ack.slots);
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
    } catch (err) {
      if (gen === this.generation) this.fail(gen, "bad_sdp", "browser", err.message || String(err));
      return;
    }
    if (pc.connectionState !== "connected") this.setStatus({ state: "connecting" });
    this.deadline = setTimeout(() => {
      if (gen === this.generation && pc.connectionState !== "connected") {
        this.fail(gen, "ice_timeout", "browser", `not connected within ${Math.round(TUNING.connectTimeoutMs / 1000)} s`);
      }
    }, TUNING.connectTimeoutMs);
  }

  // ------------------------------------------------------------ failures and retries
  // Kept apart from the negotiation above: what a failed link looks like to the page, and when
  // the next attempt starts (TUNING.backoffMs, then its last value; reset once connected).

  watchLink(pc, gen) {
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc || gen !== this.generation) return;
      const st = pc.connectionState;
      this.state(st);
      clearTimeout(this.downTimer);
      if (st === "connected") {
        clearTimeout(this.deadline);
        this.failures = 0;
        this.setStatus({ state: "connected" });
      } else if (st === "failed") {
        // ICE reached the hub but the encrypted link did not come up: DTLS; else ICE itself
        const ice = pc.iceConnectionState;
        const dtls = ice === "connected" || ice === "completed";
        this.fail(gen, dtls ? "dtls_failed" : "ice_failed", "browser", `connectionState failed (ICE ${ice})`);
      } else if (st === "disconnected") {
        this.downTimer = setTimeout(() => {
          if (pc === this.pc && pc.connectionState === "disconnected") {
            this.fail(gen, "ice_disconnected", "browser", `disconnected for ${Math.round(TUNING.disconnectedMs / 1000)} s`);
          }
        }, TUNING.disconnectedMs);
      }
    };
  }

  // An `error` frame the hub sent about our media (code ice_timeout, re: null).
  hubError(frame) {
    if (!this.pc || this.pc.connectionState === "connected") return false;
    this.fail(this.generation, frame.code, "hub", frame.message || "");
    return true;
  }

  fail(gen, cause, side, detail) {
    if (gen !== this.generation) return;
    clearTimeout(this.deadline);
    clearTimeout(this.downTimer);
    this.state("failed");
    this.close(false);
    this.slots = { video: [], audio: [] }; // nothing plays now: the page clears its videos
    if (this.o.onSlots) this.o.onSlots(this.slots);
    this.failures += 1;
    const steps = TUNING.backoffMs;
    const delayMs = steps[Math.min(this.failures - 1, steps.length - 1)];
    const entry = { at: Date.now(), cause, side, detail, attempt: this.failures, delayMs };
    this.history.push(entry);
    if (this.history.length > 20) this.history.shift();
    console.warn("media link failed:", cause, side, detail, `retry in ${delayMs} ms`);
    this.setStatus({ state: "failed", cause, side, detail, attempt: this.failures, retryAt: Date.now() + delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (gen !== this.generation || !this.sock.connected) return; // a welcome restarts us
      this.start();
    }, delayMs);
  }

  setStatus(fields) {
    const keep = fields.state === "failed" ? {} : { cause: null, detail: "", side: null, retryAt: null };
    this.status = { ...this.status, ...keep, ...fields, attempt: fields.attempt ?? this.failures };
    if (this.o.onStatus) this.o.onStatus(this.status);
  }

  // For the given receiving mids: frames decoded so far and the decoder's fps (the browser's
  // own view). One receiver's stats each (cheaper than the whole connection's report).
  async inboundVideo(mids) {
    const out = new Map();
    if (!this.pc) return out;
    const wanted = new Set([...mids].map(String));
    const trs = this.pc.getTransceivers().filter((tr) => tr.mid != null && wanted.has(tr.mid) && tr.receiver.track
      && tr.receiver.track.kind === "video");
    await Promise.all(trs.map(async (tr) => {
      let report;
      try { report = await tr.receiver.getStats(); } catch (_) { return; }
      report.forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") out.set(tr.mid, { frames: r.framesDecoded || 0, fps: r.framesPerSecond ?? null });
      });
    }));
    return out;
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
    clearTimeout(this.deadline);
    clearTimeout(this.downTimer);
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
