// The hub's WebSocket protocol v1 (docs/protocol.md): one socket, request/ack by id,
// automatic reconnection, and requests that are re-sent with the same id after a reconnect
// (the hub logs them once).

// A socket whose peer vanished (a cable pulled, a laptop asleep, a dead Wi-Fi) can stay
// "open" for minutes: the hub is pinged every KEEPALIVE_MS, and a ping not answered within
// KEEPALIVE_MS means the link is down (reconnect at once; nothing waits for TCP).
const KEEPALIVE_MS = 5000;
let counter = 0;
const session = Math.random().toString(36).slice(2, 8);

export function newId(prefix = "m") {
  counter += 1;
  return `${prefix}-${session}-${counter}`;
}

export class AuthFailure extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// Check a token over REST first: a browser WebSocket cannot read the 401 body.
export async function checkToken(token) {
  let resp;
  try {
    resp = await fetch(`/api/state?token=${encodeURIComponent(token)}`, { cache: "no-store" });
  } catch (err) {
    return { ok: false, network: true, code: "network", message: String(err) };
  }
  if (resp.ok) return { ok: true, state: await resp.json() };
  let body = {};
  try { body = await resp.json(); } catch (_) { /* not JSON */ }
  const e = body.error || {};
  return { ok: false, status: resp.status, code: e.code || `http_${resp.status}`, message: e.message || resp.statusText };
}

export class HubSocket {
  // handlers: onWelcome(frame, reconnected), onFrame(frame), onStatus(status, detail), onAuthFailed(info)
  constructor(token, handlers = {}) {
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.pending = new Map(); // id -> {msg, resolve, reject, retry, timer}
    this.connected = false;
    this.welcomes = 0;
    this.backoff = 500;
    this.stopped = false;
    this.clockOffsetMs = 0; // hub minus client
    this.you = null;
    this.keepalive = null;
    this.sessionId = null; // the hub's id of the last welcomed socket
  }

  status(s, detail) {
    this.lastStatus = s;
    if (this.h.onStatus) this.h.onStatus(s, detail);
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // the hub may still hold the socket given up on (its pongs got through while our pings
    // did not): naming it ends it there, so the outage is logged before the new session
    const replaces = this.sessionId ? `&replaces=${this.sessionId}` : "";
    const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(this.token)}${replaces}`);
    this.ws = ws;
    this.status(this.welcomes ? "reconnecting" : "connecting");
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.onClose(ev);
    ws.onerror = () => {};
  }

  // The hub did not answer a ping in time: give this socket up and reconnect.
  linkDown() {
    const ws = this.ws;
    if (ws === null) return;
    ws.onclose = null;
    ws.onmessage = null;
    try { ws.close(4000, "no answer to ping"); } catch (_) { /* already closing */ }
    this.onClose({ code: 4000 });
  }

  startKeepalive() {
    clearInterval(this.keepalive);
    const ws = this.ws;
    this.keepalive = setInterval(() => {
      if (this.ws !== ws) { clearInterval(this.keepalive); return; }
      this.request("ping", {}, { timeout: KEEPALIVE_MS }).catch((err) => {
        if (err.message === "timeout" && this.ws === ws) this.linkDown();
      });
    }, KEEPALIVE_MS);
  }

  async onClose(ev) {
    if (this.ws === null) return;
    this.ws = null;
    this.connected = false;
    clearInterval(this.keepalive);
    for (const [id, p] of this.pending) {
      if (!p.retry) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new Error("disconnected"));
      }
    }
    if (this.stopped) return;
    this.status("offline", ev.code);
    // The token may have been revoked or expired: ask over REST before retrying forever.
    const check = await checkToken(this.token);
    if (!check.ok && !check.network && check.status === 401) {
      this.stopped = true;
      this.status("auth", check.message);
      if (this.h.onAuthFailed) this.h.onAuthFailed(check);
      return;
    }
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 5000);
    setTimeout(() => this.connect(), wait);
  }

  onMessage(data) {
    let f;
    try { f = JSON.parse(data); } catch (_) { return; }
    if (f.type === "welcome") {
      const reconnected = this.welcomes > 0;
      this.welcomes += 1;
      this.connected = true;
      this.backoff = 500;
      this.you = f.you;
      this.sessionId = f.session;
      this.clockOffsetMs = f.hub_time_us / 1000 - Date.now();
      this.status("online");
      if (this.h.onWelcome) this.h.onWelcome(f, reconnected);
      // re-send what was not acknowledged (same ids: the hub answers duplicates with the original)
      for (const p of this.pending.values()) this.rawSend(p.msg);
      this.syncClock();
      this.startKeepalive();
      return;
    }
    if ((f.type === "ack" || f.type === "error") && f.re != null && this.pending.has(f.re)) {
      const p = this.pending.get(f.re);
      this.pending.delete(f.re);
      clearTimeout(p.timer);
      if (f.type === "ack") p.resolve(f);
      else {
        const err = new Error(f.message || f.code);
        err.code = f.code;
        p.reject(err);
      }
      return;
    }
    if (this.h.onFrame) this.h.onFrame(f);
  }

  rawSend(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.connected) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  // Send a request; resolves with the ack frame, rejects with an Error carrying `.code`.
  // retry: keep it across reconnects and send it again with the same id.
  request(type, fields = {}, opts = {}) {
    const id = opts.id || newId(type.split(".")[0]);
    const msg = { v: 1, id, ...fields, type }; // a field named `type` never overrides the request
    return new Promise((resolve, reject) => {
      const p = { msg, resolve, reject, retry: !!opts.retry, timer: null };
      const timeout = opts.timeout ?? (opts.retry ? 0 : 15000);
      if (timeout > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new Error("timeout"));
        }, timeout);
      }
      this.pending.set(id, p);
      if (!this.rawSend(msg) && !opts.retry) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        reject(new Error("not connected"));
      }
    });
  }

  async syncClock() {
    try {
      const t0 = Date.now();
      const ack = await this.request("ping");
      const t1 = Date.now();
      const rtt = t1 - t0;
      this.clockOffsetMs = ack.hub_time_us / 1000 - (t0 + t1) / 2;
      await this.request("clock", { offset_ms: -this.clockOffsetMs, rtt_ms: rtt });
    } catch (_) { /* next connection will try again */ }
  }

  hubNowMs() {
    return Date.now() + this.clockOffsetMs;
  }

  close() {
    this.stopped = true;
    clearInterval(this.keepalive);
    if (this.ws) this.ws.close();
  }
}
