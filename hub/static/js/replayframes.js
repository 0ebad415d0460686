// A replay tile drawn from frames the page decodes itself (WebCodecs): the hub's frame index of a
// recording (GET /api/replay/frames) says where each frame lies in the file, the page fetches
// the bytes from the key frame before the moment (GET /api/replay/bytes, no connection held
// open), decodes forward to the moment's frame and paints only that one on a canvas. A move
// forward in the same group of pictures goes on from the frame decoded last instead of starting
// at the key frame again. The tiles' requests of one task go out together (Loader): a seek to
// another part of the drill asks for 16 indexes, then 16 byte ranges, in two requests.

export const canDecode = typeof VideoDecoder === "function" && typeof EncodedVideoChunk === "function";

const indexes = new Map();  // recording name -> Promise<index>, the last INDEX_KEEP kept
const INDEX_KEEP = 200;
const loaded = new Map();  // recording name -> index, for those of `indexes` that have come
const supported = new Map();  // "codec WxH" -> Promise<bool>
const GOP_FETCH_BYTES = 1 << 20;
// a decoder with nothing queued that gives no frame for this long holds it back (reordering): it
// is flushed (a slow one, on a loaded machine, is waited for)
const HELD_MS = 500;
const EPOCH = 1 << 24;  // more frames than a file has

function codecOf(ix) {
  if (ix.codec_id === "V_VP8") return { codec: "vp8" };
  if (ix.codec_id === "V_VP9") return { codec: "vp09.00.10.08" };
  if (ix.codec_id === "V_MPEG4/ISO/AVC" && ix.private.length >= 4) {
    const hex = (b) => b.toString(16).padStart(2, "0");
    return { codec: `avc1.${hex(ix.private[1])}${hex(ix.private[2])}${hex(ix.private[3])}`, description: ix.private };
  }
  return null;
}

// base64 -> bytes (the native decoder where there is one: the mapped Uint8Array.from took ~6 ms
// of the main thread per index, 16 of them per seek to another part of the drill)
function bytesOf(b64) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(b64);
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function parseIndex(ix) {
  ix.private = bytesOf(ix.private);
  for (const k of ["t_us", "offset", "size"]) ix[k] = new Float64Array(bytesOf(ix[k]).buffer);
  ix.key = bytesOf(ix.key);
  ix.keys = [];
  ix.key.forEach((k, i) => { if (k) ix.keys.push(i); });
  ix.config = codecOf(ix);
  return ix;
}

const BATCH = 32;  // recordings per request (the hub's hub/replay/web.py BATCH)
const BATCH_BYTES = 32 << 20;

// Collects what the tiles ask for in one task and asks the hub for it in one request per kind:
// frame indexes (cached by name, the last INDEX_KEEP) and byte ranges of the recordings.
// api(path) -> Response (with the page's token); query() -> URLSearchParams of the operation.
export class Loader {
  constructor(api, query) {
    Object.assign(this, { api, query });
    this.names = new Map();  // name -> {resolve, reject}: indexes to ask for
    this.ranges = [];        // {name, first, last, resolve, reject}: bytes to ask for
    this.timer = null;
  }

  // The frame index of a recording (parsed; cached): codec, size, t_us / offset / size / key per frame.
  index(name) {
    let got = indexes.get(name);
    if (got) { indexes.delete(name); indexes.set(name, got); return got; }
    got = new Promise((resolve, reject) => { this.names.set(name, { resolve, reject }); })
      .then((ix) => { loaded.set(name, ix); return ix; });
    got.catch(() => indexes.delete(name));
    indexes.set(name, got);
    while (indexes.size > INDEX_KEEP) {
      const old = indexes.keys().next().value;
      indexes.delete(old);
      loaded.delete(old);
    }
    this.soon();
    return got;
  }

  // Bytes first..last of a recording.
  bytes(name, first, last) {
    return new Promise((resolve, reject) => { this.ranges.push({ name, first, last, resolve, reject }); this.soon(); });
  }

  soon() {
    if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.flush(); }, 0);
  }

  flush() {
    const names = [...this.names];
    this.names.clear();
    for (let i = 0; i < names.length; i += BATCH) this.askIndexes(names.slice(i, i + BATCH));
    const ranges = this.ranges;
    this.ranges = [];
    let part = [], bytes = 0;
    for (const r of ranges) {
      const n = r.last - r.first + 1;
      if (part.length && (part.length === BATCH || bytes + n > BATCH_BYTES)) { this.askBytes(part); part = []; bytes = 0; }
      part.push(r); bytes += n;
    }
    if (part.length) this.askBytes(part);
  }

  async askIndexes(batch) {
    const q = this.query();
    for (const [name] of batch) q.append("name", name);
    try {
      const r = await this.api(`/api/replay/frames?${q}`);
      if (!r.ok) throw new Error(`frame indexes: HTTP ${r.status}`);
      const body = await r.json();
      for (const [name, { resolve, reject }] of batch) {
        const ix = body.indexes[name];
        if (ix) resolve(parseIndex(ix));
        else reject(new Error(`frame index ${name}: ${body.errors[name]?.message || "not given"}`));
      }
    } catch (e) {
      for (const [, { reject }] of batch) reject(e);
    }
  }

  async askBytes(batch) {
    const q = this.query();
    for (const r of batch) q.append("r", `${r.name}:${r.first}-${r.last}`);
    try {
      const r = await this.api(`/api/replay/bytes?${q}`);
      if (!r.ok) throw new Error(`recording bytes: HTTP ${r.status}`);
      const buf = new Uint8Array(await r.arrayBuffer());
      const want = batch.reduce((n, x) => n + x.last - x.first + 1, 0);
      if (buf.length !== want) throw new Error(`recording bytes: ${buf.length} bytes, asked for ${want}`);
      let at = 0;
      for (const x of batch) {
        const n = x.last - x.first + 1;
        x.resolve(buf.subarray(at, at + n));
        at += n;
      }
    } catch (e) {
      for (const x of batch) x.reject(e);
    }
  }
}

// The frame index of a recording if it is loaded already, else null.
export function indexNow(name) {
  return loaded.get(name) || null;
}

// the last i with a[i] <= x (-1 if none)
function lastAtMost(a, x) {
  let lo = 0, hi = a.length - 1, got = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= x) { got = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return got;
}

// The frame a <video> would show at media time `s`: the last one due by then (the first before).
export function frameAt(ix, s) {
  return Math.max(0, lastAtMost(ix.t_us, Math.round(s * 1e6) + 1));
}

async function decodable(name, ix) {
  if (!ix.frames || !ix.keys.length || !ix.config) throw new Error(`${name}: no decodable frames (${ix.codec_id})`);
  const want = `${ix.config.codec} ${ix.width}x${ix.height}`;
  if (!supported.has(want)) {
    supported.set(want, VideoDecoder.isConfigSupported({ ...ix.config, codedWidth: ix.width, codedHeight: ix.height })
      .then((r) => r.supported, () => false));
  }
  if (!(await supported.get(want))) throw new Error(`${name}: ${want} is not decodable here`);
}

export class FrameTile {
  // loader: a Loader; marks: {name: performance.now()}
  constructor(canvas, loader, marks) {
    Object.assign(this, { canvas, loader, marks });
    this.ctx = canvas.getContext("2d");
    this.goal = null;       // {rec, s, ahead_s}
    this.shown = null;      // {name, i, t_us}
    this.name = null;       // the file the decoder is on
    this.epoch = 0;         // counts the files fed: a chunk's timestamp is epoch * EPOCH + frame
    this.config = "";       // the decoder's configuration ("codec WxH")
    this.fed = -1;          // the last frame given to the decoder (-1: it needs a key frame)
    this.bytes = null;      // {name, first, last, buf, base}: frames fetched, first..last
    this.waiting = null;    // {ts, resolve}: the chunk timestamp whose frame is awaited
    this.running = false;
    this.failed = new Map();  // recording name -> why it cannot be decoded here
    this.dec = null;
    this.lastOutput = 0;    // performance.now() of the decoder's last frame
  }

  // Show the frame of `rec` due at media time `s` (fetching `ahead_s` further on).
  want(rec, s, ahead_s = 1) {
    this.goal = { rec, s, ahead_s };
    if (!this.running) this.run();
  }

  // The goal's frame is on the canvas and nothing is in flight.
  get settled() {
    const g = this.goal;
    return !this.running && g !== null && this.shown !== null && this.shown.name === g.rec.name && this.shown.goal === g;
  }

  // The decoder for `ix`: the one there is when it has the same codec and size (made anew for
  // every file, 16 decoders per seek to another part cost more than their frames), else a new one.
  useDecoder(ix) {
    const want = `${ix.config.codec} ${ix.width}x${ix.height}`;
    this.epoch += 1;
    this.fed = -1;
    // (run() waits for every frame it queues, so nothing of the last file is still queued)
    if (this.dec && this.dec.state === "configured" && this.config === want) return;
    this.config = want;
    if (this.dec && this.dec.state !== "closed") this.dec.close();
    this.dec = new VideoDecoder({
      output: (frame) => {
        this.lastOutput = performance.now();
        const w = this.waiting;
        if (w && frame.timestamp === w.ts) {
          if (this.canvas.width !== frame.displayWidth || this.canvas.height !== frame.displayHeight) {
            this.canvas.width = frame.displayWidth; this.canvas.height = frame.displayHeight;
          }
          this.ctx.drawImage(frame, 0, 0);
          this.waiting = null;
          w.resolve(true);
        }
        frame.close();
      },
      error: (e) => { const w = this.waiting; this.waiting = null; this.fed = -1; if (w) w.resolve(e); },
    });
    this.dec.configure({ ...ix.config, codedWidth: ix.width, codedHeight: ix.height, optimizeForLatency: true });
  }

  async fetchFrames(rec, ix, first, last) {
    const b = this.bytes;
    if (b && b.name === rec.name && b.first <= first && b.last >= last) return b;
    const from = ix.offset[first], to = ix.offset[last] + ix.size[last] - 1;
    const buf = await this.loader.bytes(rec.name, from, to);
    this.bytes = { name: rec.name, first, last, buf, base: from };
    return this.bytes;
  }

  // what `done` gives, or null once the decoder has had nothing queued and given no frame for HELD_MS
  async outputOr(done) {
    for (;;) {
      const got = await Promise.race([done, new Promise((r) => setTimeout(() => r(null), 100))]);
      if (got !== null) return got;
      if (this.dec.decodeQueueSize === 0 && performance.now() - this.lastOutput > HELD_MS) return null;
    }
  }

  async run() {
    this.running = true;
    try {
      for (;;) {
        const g = this.goal;
        const { rec } = g;
        const fresh = !indexes.has(rec.name);
        if (fresh) this.marks.loadstart = performance.now();
        let ix;
        try {
          ix = await this.loader.index(rec.name);
          await decodable(rec.name, ix);
        } catch (e) {
          this.failed.set(rec.name, String(e));
          if (g === this.goal) { this.onfail?.(rec); return; }
          continue;
        }
        if (fresh) this.marks.loadedmetadata = performance.now();
        if (g !== this.goal) continue;
        const k0 = lastAtMost(ix.keys, frameAt(ix, g.s));
        const j = k0 < 0 ? ix.keys[0] : frameAt(ix, g.s);  // before the first key frame: that one
        if (this.shown && this.shown.name === rec.name && this.shown.i === j) {
          this.shown.goal = g;
          if (g === this.goal) return;
          continue;
        }
        this.marks.seeking = performance.now();
        if (this.name !== rec.name || !this.dec || this.dec.state !== "configured") { this.useDecoder(ix); this.name = rec.name; }
        const k = ix.keys[Math.max(0, k0)];
        const start = this.fed >= k && this.fed < j ? this.fed + 1 : k;
        // fetched up to `ahead_s` on, and to the end of the group of pictures when that is
        // small (frame steps and moves forward in it then need no request)
        let ahead = Math.max(j, frameAt(ix, g.s + g.ahead_s));
        const gopEnd = (k0 + 1 < ix.keys.length ? ix.keys[k0 + 1] : ix.frames) - 1;
        if (ix.offset[gopEnd] + ix.size[gopEnd] - ix.offset[k] <= GOP_FETCH_BYTES) ahead = Math.max(ahead, gopEnd);
        let b;
        try {
          b = await this.fetchFrames(rec, ix, k, ahead);
        } catch (e) {
          this.failed.set(rec.name, String(e));
          if (g === this.goal) { this.onfail?.(rec); return; }
          continue;
        }
        if (g !== this.goal) continue;  // moved on while fetching: plan again (bytes kept)
        const base = this.epoch * EPOCH;
        const done = new Promise((resolve) => { this.waiting = { ts: base + j, resolve }; });
        for (let i = start; i <= j; i++) {
          const at = ix.offset[i] - b.base;
          this.dec.decode(new EncodedVideoChunk({ type: ix.key[i] ? "key" : "delta", timestamp: base + i,
                                                  data: b.buf.subarray(at, at + ix.size[i]) }));
        }
        this.fed = j;
        this.marks.decoded = (this.marks.decoded || 0) + j - start + 1;
        this.lastOutput = performance.now();
        let got = await this.outputOr(done);
        if (got === null) {  // held back: flush (the decoder then wants a key frame)
          await this.dec.flush().catch(() => {});
          this.fed = -1;
          got = this.waiting ? null : true;
        }
        if (got !== true) {
          this.waiting = null;
          this.failed.set(rec.name, got ? String(got) : "the decoder gave no frame");
          if (g === this.goal) { this.onfail?.(rec); return; }
          continue;
        }
        this.shown = { name: rec.name, i: j, t_us: ix.t_us[j], goal: g };
        this.marks.seeked = performance.now();
        if (g === this.goal) return;
      }
    } finally {
      this.running = false;
    }
  }
}
