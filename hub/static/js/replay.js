// After-action replay: the operation's timeline, a wall of every department's recordings kept
// on the cursor's hub time (segment start_ts_us + media time), and the log around the cursor.
// URL: /replay?op=ID[&seq=N|&t=US][&token=...]. window.chReplay is the page's test/bench hook.

import { $, el, clockMs, dur, showTokenGate, toast } from "./common.js";
import { addStrings, applyI18n, getLang, initLangButton, kindLabel, nameOf, onLangChange, t } from "./i18n.js";
import { canDecode, FrameTile, frameAt, indexNow, Loader } from "./replayframes.js";
import { readStamp } from "./stamp.js";

addStrings({
  zh: {
    "title.replay": "CommandHub · 复盘", "app.replay": "复盘",
    "replay.play": "播放", "replay.pause": "暂停", "replay.prevEvent": "上一个事件", "replay.nextEvent": "下一个事件",
    "replay.frameBack": "后退一帧", "replay.frameFwd": "前进一帧", "replay.jumpKind": "跳转类别", "replay.jumpDept": "部门",
    "replay.any": "全部", "replay.link": "此刻链接", "replay.fit": "全程", "replay.log": "光标附近的日志",
    "replay.untrusted": "不可信录像", "replay.none": "无",
    "replay.noRecording": "此时无录像", "replay.untrustedTile": "录像不可信（{why}），不播放",
    "replay.logOk": "日志链已验证 · 截至 #{seq}", "replay.logBad": "日志链损坏：{why}",
    "replay.loading": "正在载入…", "replay.failed": "无法载入复盘：{why}",
    "cat.inject": "情景注入", "cat.command": "指令", "cat.stage": "部门响应", "cat.overdue": "超时",
    "cat.outage": "视频故障", "cat.rating": "评估", "cat.report": "现场报告", "cat.operation": "行动",
    "cat.media": "视频流", "cat.presence": "在线",
    "gap.untrusted": "录像不可信：{problem}", "gap.feed_ended": "视频流结束：{cause}（{reason}）",
    "gap.video_lost": "视频丢失：{cause}（{reason}）", "gap.recording_error": "录像写入错误：{op} {errno} {message}",
    "gap.connection_failed": "连接失败：{reason}", "gap.offline": "离线：{reason}",
    "gap.not_published": "尚未接入视频", "gap.no_recording": "日志中无录像",
  },
  en: {
    "title.replay": "CommandHub · Replay", "app.replay": "Replay",
    "replay.play": "Play", "replay.pause": "Pause", "replay.prevEvent": "Previous event", "replay.nextEvent": "Next event",
    "replay.frameBack": "Frame back", "replay.frameFwd": "Frame forward", "replay.jumpKind": "Jump to",
    "replay.jumpDept": "Department", "replay.any": "any", "replay.link": "Link to this moment", "replay.fit": "Fit",
    "replay.log": "Log around the cursor", "replay.untrusted": "Untrusted recordings", "replay.none": "none",
    "replay.noRecording": "No recording at this time", "replay.untrustedTile": "Recording not trusted ({why}): not played",
    "replay.logOk": "log chain verified · up to #{seq}", "replay.logBad": "log chain broken: {why}",
    "replay.loading": "Loading…", "replay.failed": "Cannot load the replay: {why}",
    "cat.inject": "Injects", "cat.command": "Commands", "cat.stage": "Responses", "cat.overdue": "Overdue",
    "cat.outage": "Video outages", "cat.rating": "Ratings", "cat.report": "Field reports", "cat.operation": "Operation",
    "cat.media": "Feeds", "cat.presence": "Presence",
    "gap.untrusted": "untrusted recording: {problem}", "gap.feed_ended": "feed ended: {cause} ({reason})",
    "gap.video_lost": "video lost: {cause} ({reason})", "gap.recording_error": "recording error: {op} {errno} {message}",
    "gap.connection_failed": "connection failed: {reason}", "gap.offline": "offline: {reason}",
    "gap.not_published": "not published yet", "gap.no_recording": "no recording logged",
  },
});

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
// tiles decode their frames themselves (WebCodecs, replayframes.js) where the browser can
// (a secure context: https or loopback); else, or with &player=video, each tile is a <video>
const decodeFrames = canDecode && params.get("player") !== "video";
const FRAME_US_DEFAULT = 1e6 / 15;
// a <video> is set this much after the cursor's media time: a cursor on a frame's own time (a
// frame step) would otherwise, as a double rounded down to µs, show the frame before it
const SEEK_BIAS_S = 0.0005;
const CATS = ["inject", "command", "stage", "overdue", "outage", "rating", "report", "operation", "media"];
const COLORS = { inject: "#bc8cff", command: "#2f81f7", stage: "#2ea043", overdue: "#d29922", outage: "#f85149",
                 rating: "#e3b341", report: "#79c0ff", operation: "#e6edf3", media: "#8b949e", presence: "#8b949e" };
const SPAN_COLORS = { lost: "#f85149", frozen: "#58a6ff", black: "#6e7681" };

let M = null;              // the replay model (GET /api/replay)
let T = 0;                 // the cursor, hub clock µs
let view = [0, 1];         // the timeline's visible range, µs
let playing = false, speed = 1, anchor = null, lastSync = 0;
let frameUs = FRAME_US_DEFAULT;
let linkSeq = null;        // the seq the cursor was put on, for the deep link
const tiles = new Map();   // dept -> {box, video, canvas, frames, over, rec, want}

function api(path, init = {}) {
  const headers = { ...(init.headers || {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  return fetch(path, { ...init, headers, credentials: "same-origin" });
}

function opQuery() {
  const q = new URLSearchParams({ op: M.op });
  if (token) q.set("token", token);
  return q;
}
function mediaUrl(rec) {
  return `/api/replay/media/${encodeURIComponent(rec.name)}?${opQuery()}`;
}
const loader = new Loader(api, opQuery);

// ----------------------------------------------------------------------------------- model

const byDept = (list) => {
  const out = new Map();
  for (const x of list) { if (!out.has(x.dept)) out.set(x.dept, []); out.get(x.dept).push(x); }
  return out;
};
let recs = new Map(), gaps = new Map(), spans = new Map();

function recAt(dept, at) {
  return (recs.get(dept) || []).find((r) => r.trusted && r.start_us <= at && at < r.end_us) || null;
}
function untrustedAt(dept, at) {
  return (recs.get(dept) || []).find((r) => !r.trusted && r.start_us <= at && at < r.end_us) || null;
}
function gapAt(dept, at) {
  return (gaps.get(dept) || []).find((g) => g.from_us <= at && at <= g.to_us) || null;
}
// A gap's cause (the model's code and the logged details) in the page's language.
function gapText(gap) {
  const args = Object.fromEntries(Object.entries(gap.args || {}).map(([k, v]) => [k, v || ""]));
  return t(`gap.${gap.code}`, args).replace(/ ?[（(][）)]/g, "").trim();
}
function spanAt(dept, at) {
  return (spans.get(dept) || []).find((s) => s.from_us <= at && at <= s.to_us) || null;
}

// ----------------------------------------------------------------------------------- wall

function buildWall() {
  const wall = $("#rp-wall");
  wall.replaceChildren();
  tiles.clear();
  for (const d of M.depts) {
    const video = el("video", { muted: true, playsinline: true, preload: "metadata" });
    video.muted = true;
    const canvas = el("canvas", { class: "rp-frame", hidden: true });
    const over = el("div", { class: "rp-over" });
    const name = el("div", { class: "rp-name", text: nameOf(d) });
    const box = el("div", { class: "rp-tile", dataset: { dept: d.id } }, video, canvas, over, name);
    wall.append(box);
    const tile = { dept: d.id, box, video, canvas, over, name, rec: null, vrec: null, want: 0, marks: {},
                   frames: null, decoding: false };
    if (decodeFrames) {
      tile.frames = new FrameTile(canvas, loader, tile.marks);
      tile.frames.onfail = (rec) => { console.warn(`replay: ${rec.name} played by <video>: ${tile.frames.failed.get(rec.name)}`); syncTile(tile, T, true); };
    }
    // when each step of the last file switch and seek happened (chReplay.phases)
    for (const k of ["loadstart", "loadedmetadata", "seeking", "seeked"]) {
      video.addEventListener(k, () => { tile.marks[k] = performance.now(); });
    }
    video.addEventListener("loadedmetadata", () => {
      video.currentTime = tile.want + SEEK_BIAS_S;
      if (playing) { video.playbackRate = speed; video.play().catch(() => {}); }
    });
    tiles.set(d.id, tile);
  }
}

function syncTile(tile, at, hard) {
  const rec = recAt(tile.dept, at);
  const span = spanAt(tile.dept, at);
  tile.box.dataset.state = span ? "outage" : "ok";
  if (!rec) {
    tile.rec = null;
    if (!tile.video.paused) tile.video.pause();
    tile.video.hidden = true;
    tile.canvas.hidden = true;
    const bad = untrustedAt(tile.dept, at);
    const gap = gapAt(tile.dept, at);
    tile.box.dataset.state = bad ? "untrusted" : "gap";
    tile.over.textContent = bad ? t("replay.untrustedTile", { why: bad.problem })
      : `${t("replay.noRecording")}${gap ? ` · ${gapText(gap)}` : ""}`;
    tile.over.dataset.cause = gap ? gap.code : "";
    tile.over.hidden = false;
    return;
  }
  tile.over.hidden = true;
  tile.video.hidden = false;
  tile.want = Math.max(0, Math.min((at - rec.start_us) / 1e6, rec.duration_s - 0.001));
  tile.rec = rec;
  tile.decoding = tile.frames !== null && !tile.frames.failed.has(rec.name);
  tile.canvas.hidden = !tile.decoding;
  tile.video.hidden = tile.decoding;
  if (tile.decoding) {
    if (tile.vrec) {  // let go of the file (and the connection the <video> holds)
      tile.vrec = null;
      tile.video.pause();
      tile.video.removeAttribute("src");
      tile.video.load();
    }
    tile.frames.want(rec, tile.want, playing ? 2 * speed : 3);
    return;
  }
  if (tile.vrec !== rec) {
    tile.vrec = rec;
    loader.index(rec.name).catch(() => {});  // for frame steps
    tile.video.src = mediaUrl(rec);  // loadedmetadata sets the time
    return;
  }
  if (tile.video.readyState < 1) return;
  if (playing) {
    if (tile.video.paused) { tile.video.playbackRate = speed; tile.video.play().catch(() => {}); }
    if (Math.abs(tile.video.currentTime - tile.want) > 0.15) tile.video.currentTime = tile.want + SEEK_BIAS_S;
  } else {
    if (!tile.video.paused) tile.video.pause();
    if (hard || Math.abs(tile.video.currentTime - tile.want - SEEK_BIAS_S) > 1e-4) tile.video.currentTime = tile.want + SEEK_BIAS_S;
  }
}

function syncAll(hard = false) {
  for (const tile of tiles.values()) syncTile(tile, T, hard);
}

// Every tile shows the cursor's moment (its seek done and the frame decoded), or has no recording.
function settledNow() {
  for (const tile of tiles.values()) {
    if (!tile.rec) continue;
    if (tile.decoding) {
      if (!tile.frames.settled) return false;
      continue;
    }
    const v = tile.video;
    if (v.seeking || v.readyState < 2 || Math.abs(v.currentTime - tile.want) > 0.002) return false;
  }
  return true;
}

function settled(timeoutMs = 10000) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const check = () => {
      if (settledNow()) resolve(true);
      else if (performance.now() - t0 > timeoutMs) resolve(false);
      else requestAnimationFrame(check);
    };
    check();
  });
}

// ----------------------------------------------------------------------------------- cursor

function setCursor(at, { seq = null, hard = true } = {}) {
  T = Math.max(M.start_us, Math.min(at, M.end_us));
  linkSeq = seq;
  if (T < view[0] || T > view[1]) {
    const w = view[1] - view[0];
    view = [T - w / 2, T + w / 2];
  }
  if (playing) anchor = { wall: performance.now(), T };
  syncAll(hard);
  drawClock();
  drawTimeline();
  scheduleLog();
  updateUrl();
}

function updateUrl() {
  const q = new URLSearchParams({ op: M.op });
  if (linkSeq != null) q.set("seq", linkSeq); else q.set("t", Math.round(T));
  const link = `${location.origin}/replay?${q}`;
  $("#rp-link").href = link;
  const own = new URLSearchParams(q);
  if (token) own.set("token", token);
  history.replaceState(null, "", `/replay?${own}`);
}

function drawClock() {
  $("#rp-clock").textContent = clockMs(T);
  $("#rp-offset").textContent = `+${dur((T - M.start_us) / 1e6)}`;
}

function play() {
  if (playing) return;
  if (T >= M.end_us) T = M.start_us;
  playing = true;
  anchor = { wall: performance.now(), T };
  $("#rp-play").textContent = t("replay.pause");
  $("#rp-play").dataset.i18n = "replay.pause";
  for (const tile of tiles.values()) tile.video.playbackRate = speed;
  syncAll();
  requestAnimationFrame(tick);
}

function pause() {
  playing = false;
  $("#rp-play").textContent = t("replay.play");
  $("#rp-play").dataset.i18n = "replay.play";
  syncAll(true);
}

function tick(now) {
  if (!playing) return;
  T = anchor.T + (now - anchor.wall) * 1000 * speed;
  if (T >= M.end_us) { T = M.end_us; pause(); }
  if (now - lastSync > 250) { lastSync = now; syncAll(); scheduleLog(); updateUrl(); }
  else {  // decoded tiles follow the cursor frame by frame
    for (const tile of tiles.values()) {
      if (tile.decoding && tile.rec && T >= tile.rec.start_us && T < tile.rec.end_us) {
        tile.want = Math.min((T - tile.rec.start_us) / 1e6, tile.rec.duration_s - 0.001);
        tile.frames.want(tile.rec, tile.want, 2 * speed);
      }
    }
  }
  drawClock();
  drawTimeline();
  if (playing) requestAnimationFrame(tick);
}

// One frame on (dir 1) or back (-1): to the next / previous frame of the department chosen in
// the jump selector, else of the first tile with a recording (by its frame index), else by the
// recordings' average frame interval.
function step(dir) {
  if (playing) pause();
  const dept = $("#rp-dept").value;
  const tile = (dept && tiles.get(dept)?.rec) ? tiles.get(dept) : [...tiles.values()].find((x) => x.rec);
  let to = T + dir * frameUs;
  if (tile) {
    const rec = tile.rec;
    const ix = indexNow(rec.name);
    if (ix && ix.frames) {
      const i = frameAt(ix, (T - rec.start_us) / 1e6) + dir;
      if (i >= 0 && i < ix.frames) to = rec.start_us + ix.t_us[i];
      else if (i >= ix.frames) to = Math.max(to, rec.end_us);
    }
  }
  setCursor(to);
}

// The next (dir 1) or previous (-1) timeline item of the chosen kind and department.
function jump(dir) {
  const cat = $("#rp-kind").value, dept = $("#rp-dept").value;
  const fits = (i) => (!cat || i.cat === cat) && (!dept || i.dept === dept);
  const items = M.items.filter(fits);
  const hit = dir > 0 ? items.find((i) => i.ts_us > T + 500) : [...items].reverse().find((i) => i.ts_us < T - 500);
  if (hit) setCursor(hit.ts_us, { seq: hit.seq });
  return hit || null;
}

// ----------------------------------------------------------------------------------- log

let logTimer = null, logAsked = 0;
function scheduleLog() {
  clearTimeout(logTimer);
  logTimer = setTimeout(loadLog, playing ? 0 : 120);
}

async function loadLog() {
  const n = ++logAsked;
  const q = new URLSearchParams({ op: M.op });
  if (linkSeq != null) q.set("seq", linkSeq); else q.set("t", Math.round(T));
  const r = await api(`/api/replay/log?${q}`);
  if (!r.ok || n !== logAsked) return;
  const body = await r.json();
  const box = $("#rp-entries");
  box.replaceChildren();
  let marked = false;
  for (const e of body.entries) {
    const row = el("div", { class: "rp-entry", dataset: { seq: e.seq, ts: e.ts_us },
                            onclick: () => { if (playing) pause(); setCursor(e.ts_us, { seq: e.seq }); } },
      el("span", { class: "rp-seq", text: `#${e.seq}` }), el("span", { text: clockMs(e.ts_us) }),
      el("span", { text: `${kindLabel(e.kind)}${e.dept ? ` · ${e.dept}` : ""}` }),
      el("span", { class: "rp-text user-text", text: e.text }));
    const here = body.seq != null ? e.seq === body.seq : e.ts_us >= body.at_us;
    if (!marked && here) { row.classList.add("at"); marked = true; }
    box.append(row);
  }
  box.querySelector(".at")?.scrollIntoView({ block: "nearest" });
  box.dataset.at = body.at_us;
}

// ----------------------------------------------------------------------------------- timeline

const ROW = 13, HEAD = 44, AXIS = 16;
function xOf(us, w) { return ((us - view[0]) / (view[1] - view[0])) * w; }
function usOf(x, w) { return view[0] + (x / w) * (view[1] - view[0]); }

function drawTimeline() {
  const c = $("#rp-canvas");
  const w = c.clientWidth;
  const h = HEAD + AXIS + M.depts.length * ROW + 4;
  const dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); c.style.height = `${h}px`;
  }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = "10px system-ui, sans-serif";
  const lab = 84;  // department names on the left
  const W = w - lab;
  const X = (us) => lab + xOf(us, W);
  // axis
  g.fillStyle = "#8b949e";
  const span = view[1] - view[0];
  const stepS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600].find((s) => span / 1e6 / s < 12) || 3600;
  for (let s = Math.ceil((view[0] - M.start_us) / 1e6 / stepS) * stepS; M.start_us + s * 1e6 <= view[1]; s += stepS) {
    const x = X(M.start_us + s * 1e6);
    g.fillRect(x, HEAD, 1, 4);
    g.fillText(`+${dur(s)}`, x + 2, HEAD + 12);
  }
  // header rows: operation-wide items
  const headCats = ["operation", "inject", "command", "rating", "report"];
  for (const i of M.items) {
    if (i.ts_us < view[0] || i.ts_us > view[1]) continue;
    const x = X(i.ts_us);
    g.fillStyle = COLORS[i.cat] || "#fff";
    if (headCats.includes(i.cat) && (i.dept == null || i.dept === "center" || i.cat !== "report")) {
      const row = headCats.indexOf(i.cat);
      g.fillRect(x - 1, 2 + row * 8, 3, 7);
    }
  }
  // department rows
  M.depts.forEach((d, k) => {
    const y = HEAD + AXIS + k * ROW;
    g.fillStyle = "#e6edf3";
    g.fillText(nameOf(d).slice(0, 10), 2, y + 10);
    for (const r of recs.get(d.id) || []) {
      g.fillStyle = r.trusted ? "#1f3b2a" : "#5a1d1d";
      g.fillRect(X(r.start_us), y + 1, Math.max(1, X(r.end_us) - X(r.start_us)), ROW - 2);
    }
    for (const s of spans.get(d.id) || []) {
      g.fillStyle = SPAN_COLORS[s.kind] || "#f85149";
      g.fillRect(X(s.from_us), y + ROW - 5, Math.max(2, X(s.to_us) - X(s.from_us)), 4);
    }
    for (const i of M.items) {
      if (i.dept !== d.id || i.ts_us < view[0] || i.ts_us > view[1]) continue;
      g.fillStyle = i.kind === "command.declined" ? "#f85149" : (COLORS[i.cat] || "#fff");
      g.fillRect(X(i.ts_us) - 1, y + 1, 3, ROW - 6);
    }
  });
  // cursor
  g.fillStyle = "#ff7b72";
  g.fillRect(X(T) - 1, 0, 2, h);
}

function timelineAt(ev) {
  const c = $("#rp-canvas");
  const rect = c.getBoundingClientRect();
  const lab = 84;
  return usOf(Math.max(0, ev.clientX - rect.left - lab), rect.width - lab);
}

function zoom(f, around = T) {
  const w = Math.max(2e6, Math.min((view[1] - view[0]) * f, (M.end_us - M.start_us) * 1.05));
  const k = (around - view[0]) / (view[1] - view[0]);
  view = [around - k * w, around + (1 - k) * w];
  drawTimeline();
}

function fit() {
  const pad = (M.end_us - M.start_us) * 0.01;
  view = [M.start_us - pad, M.end_us + pad];
  drawTimeline();
}

function hoverText(ev) {
  const at = timelineAt(ev);
  const tol = ((view[1] - view[0]) / $("#rp-canvas").clientWidth) * 4;
  const near = M.items.filter((i) => Math.abs(i.ts_us - at) <= tol).slice(0, 6);
  $("#rp-canvas").title = near.map((i) => `#${i.seq} ${clockMs(i.ts_us)} ${kindLabel(i.kind)} ${i.dept || ""} ${i.label}`).join("\n");
}

// ----------------------------------------------------------------------------------- start

function fillSelects() {
  const kind = $("#rp-kind"), dept = $("#rp-dept");
  const k0 = kind.value, d0 = dept.value;
  kind.replaceChildren(el("option", { value: "", text: t("replay.any") }),
    ...CATS.map((c) => el("option", { value: c, text: t(`cat.${c}`) })));
  dept.replaceChildren(el("option", { value: "", text: t("replay.any") }),
    ...M.depts.map((d) => el("option", { value: d.id, text: nameOf(d) })));
  kind.value = k0; dept.value = d0;
  const sel = $("#op-select");
  sel.replaceChildren(...(M.operations || []).map((o) => el("option", { value: o.op, text: `${o.title} (${o.op})` })));
  sel.value = M.op;
  $("#op-label").textContent = M.title;
  const trust = $("#trust");
  trust.dataset.state = M.log.verified ? "online" : "offline";
  trust.textContent = M.log.verified ? t("replay.logOk", { seq: M.log.head.seq }) : t("replay.logBad", { why: M.log.error });
  const bad = M.recordings.filter((r) => !r.trusted);
  $("#rp-untrusted").replaceChildren(...(bad.length ? bad.map((r) => el("div", { text: `${r.name} (#${r.seq}): ${r.problem}` }))
    : [el("div", { class: "sub", text: t("replay.none") })]));
}

async function start() {
  initLangButton($("#lang"));
  const op = params.get("op") || "";
  const r = await api(`/api/replay?${new URLSearchParams(op ? { op } : {})}`);
  if (r.status === 401 || r.status === 403) { showTokenGate(t(token ? "token.bad" : "token.missing"), true); return; }
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    showTokenGate(t("replay.failed", { why: body.error?.message || r.status }), true);
    return;
  }
  M = await r.json();
  recs = byDept(M.recordings); gaps = byDept(M.gaps); spans = byDept(M.spans);
  const firm = M.recordings.find((x) => x.trusted && x.frames > 1);
  if (firm) frameUs = (firm.duration_s * 1e6) / firm.frames;
  $("#app").hidden = false;
  fillSelects();
  buildWall();
  fit();
  let at = M.start_us, seq = null;
  const wantSeq = params.get("seq"), wantT = params.get("t");
  if (wantSeq) {
    const q = new URLSearchParams({ op: M.op, seq: wantSeq, before: 0, after: 0 });
    const got = await api(`/api/replay/log?${q}`);
    if (got.ok) { at = (await got.json()).at_us; seq = Number(wantSeq); } else toast(`#${wantSeq}: ${got.status}`, "error");
  } else if (wantT && /^\d+$/.test(wantT)) {
    at = Number(wantT);
  }
  setCursor(at, { seq });
  const c = $("#rp-canvas");
  c.addEventListener("click", (ev) => { if (playing) pause(); setCursor(timelineAt(ev)); });
  c.addEventListener("wheel", (ev) => { ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.5 : 1 / 1.5, timelineAt(ev)); }, { passive: false });
  c.addEventListener("mousemove", hoverText);
  $("#rp-play").onclick = () => (playing ? pause() : play());
  $("#rp-speed").onchange = () => {
    speed = Number($("#rp-speed").value);
    if (playing) anchor = { wall: performance.now(), T };
    for (const tile of tiles.values()) tile.video.playbackRate = speed;
  };
  $("#rp-back").onclick = () => step(-1);
  $("#rp-fwd").onclick = () => step(1);
  $("#rp-prev").onclick = () => jump(-1);
  $("#rp-next").onclick = () => jump(1);
  $("#rp-zin").onclick = () => zoom(1 / 2);
  $("#rp-zout").onclick = () => zoom(2);
  $("#rp-zfit").onclick = fit;
  $("#op-select").onchange = () => {
    const q = new URLSearchParams({ op: $("#op-select").value });
    if (token) q.set("token", token);
    location.href = `/replay?${q}`;
  };
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea")) return;
    if (ev.key === " ") { ev.preventDefault(); playing ? pause() : play(); }
    else if (ev.key === "ArrowRight") step(1);
    else if (ev.key === "ArrowLeft") step(-1);
    else if (ev.key === "n") jump(1);
    else if (ev.key === "p") jump(-1);
  });
  window.addEventListener("resize", drawTimeline);
  onLangChange(() => { fillSelects(); for (const [id, tile] of tiles) tile.name.textContent = nameOf(M.depts.find((d) => d.id === id)); syncAll(); drawTimeline(); loadLog(); applyI18n(document); });
  document.body.dataset.ready = "1";
}

// The hook tests and `commandhub bench replay` drive the page by.
window.chReplay = {
  seek: (at) => { if (playing) pause(); setCursor(at); return settled(); },
  settled,
  // where a seek begun at `since` (performance.now()) spent its time, over the tiles: opening
  // a new file (to its metadata) and seeking in it (the browser decoding from a key frame)
  phases: (since) => {
    let open = 0, seek = 0, opened = 0, decoded = 0;
    for (const x of tiles.values()) {
      const m = x.marks;
      decoded += m.decoded || 0;
      if (m.loadstart >= since && m.loadedmetadata >= m.loadstart) { opened += 1; open = Math.max(open, m.loadedmetadata - since); }
      if (m.seeking >= since && m.seeked >= m.seeking) seek = Math.max(seek, m.seeked - m.seeking);
    }
    return { open_ms: open, seek_ms: seek, opened, decoded };
  },
  jump: (dir) => { const hit = jump(dir); return settled().then(() => hit); },
  state: () => ({ t_us: T, playing, speed, op: M && M.op, frame_us: frameUs, lang: getLang(),
                  tiles: [...tiles.values()].map((x) => ({ dept: x.dept, rec: x.rec && x.rec.name,
                    player: x.decoding ? "frames" : "video",
                    media_s: x.decoding ? (x.frames.shown ? x.frames.shown.t_us / 1e6 : null) : x.video.currentTime,
                    want_s: x.want, state: x.box.dataset.state })) }),
  stamps: () => Object.fromEntries([...tiles.values()].map((x) => [x.dept, x.rec ? readStamp(x.decoding ? x.canvas : x.video) : null])),
};

start().catch((e) => { console.error(e); showTokenGate(t("replay.failed", { why: String(e) }), true); });
