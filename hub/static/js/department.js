// Department terminal: publishes camera and microphone, shows the commander's feed and pushed
// feeds, the command inbox with big response buttons, field reports with a camera snapshot.

import { $, boot, clock, clockMs, dur, el, toast, toastError } from "./common.js";
import { getLang, nameOf, onLangChange, t } from "./i18n.js";
import { RtcLink } from "./rtc.js";
import { MediaStatus } from "./mediastatus.js";
import { CommandStore, isDone, isOpen, nextStage, overdueStages, STAGE_STATE } from "./commands.js";
import { newId } from "./ws.js";

const S = { dept: null, me: null, byId: {}, center: null, operation: null, stateSeq: 0, lastSeq: 0,
  sending: new Map(), declining: null, alerted: new Set(), flashTimer: null, baseTitle: document.title };
const store = new CommandStore();
const others = new Map(); // mid -> box
const audios = new Map();
// Timing marks for the UI benchmark: when each command was first shown (rendered).
window.chMetrics = { shown: {}, arrived: {} };
const stamp = () => performance.timeOrigin + performance.now();

let sock, rtc, media;
const sentReports = []; // {at_us, report_id, command_id, text, snapshot}: this page's own, newest last

async function main() {
  const started = await boot("department", { onWelcome, onFrame, onStatus });
  if (!started) return;
  sock = started.sock;
  S.token = started.token;
  media = new MediaStatus($("#media"), [$("#main-media")]);
  rtc = new RtcLink(sock, {
    videoSlots: 4, audioSlots: 3, publish: true,
    onSlots: bindSlots,
    onStatus: (st) => media.update(st),
    onLocal: (stream) => { $("#self-video").srcObject = stream; },
    onLocalError: () => { $("#self-empty").hidden = false; toast(() => t("dept.noCamera"), "error"); },
  });
  // for tests and support: what the page's WebRTC link looks like
  window.chDebug = () => ({ slots: rtc.slots, pc: rtc.pc && rtc.pc.connectionState, rtc: rtc.lastState,
    generation: rtc.generation, ws: sock.lastStatus, media: rtc.status, failures: rtc.history });
  $("#checkin").onclick = checkin;
  $("#report").onsubmit = (e) => { e.preventDefault(); sendReport(); };
  for (const ev of ["click", "keydown", "focus"]) window.addEventListener(ev, stopFlash);
  setInterval(tickInbox, 1000);
  onLangChange(() => { renderHeader(); renderInbox(); bindSlots(rtc.slots); renderReports(); });
}

function onStatus(s) {
  document.body.classList.toggle("disconnected", s !== "online");
}

function onWelcome(f) {
  const st = f.state;
  S.dept = f.you.dept;
  S.center = st.center;
  S.byId = Object.fromEntries(st.departments.map((d) => [d.id, d]));
  S.me = S.byId[S.dept] || { id: S.dept };
  S.operation = st.operation;
  S.stateSeq = st.head.seq;
  S.lastSeq = Math.max(S.lastSeq, st.head.seq);
  store.load(st.commands);
  // commands we had that the snapshot no longer lists were closed meanwhile: kept as they were
  for (const c of st.commands) maybeDeliver(store.commands.get(c.command_id));
  renderHeader();
  renderInbox();
  rtc.start();
}

function onFrame(f) {
  const cid = f.type === "command" ? f.command.command_id : f.type === "event" && f.event.kind === "command.issued" ? f.event.payload.command_id : null;
  if (cid && !(cid in window.chMetrics.arrived)) window.chMetrics.arrived[cid] = stamp();
  if (f.type === "command") onCommand(f);
  else if (f.type === "event") onEvent(f.event);
  else if (f.type === "rtc.slots") rtc.applySlots(f);
  else if (f.type === "error") {
    if (f.re == null && rtc.hubError(f)) return; // our media link: shown in the video badge
    toast(`${f.code}: ${f.message}`, "error");
  }
}

function onCommand(f) {
  const isNew = !store.commands.has(f.command.command_id);
  const cmd = store.put(f.command);
  if (f.cause === "issued" || f.cause === "escalated" || f.cause === "overdue" || (isNew && f.cause === "replay")) {
    alertNew(cmd, f.cause);
  }
  if (f.cause === "escalated") cmd.escalated[S.dept] = (cmd.escalated[S.dept] || 0) + 1;
  maybeDeliver(cmd);
  renderInbox();
}

function onEvent(ev) {
  if (ev.seq <= S.lastSeq) return;
  S.lastSeq = ev.seq;
  const p = ev.payload || {};
  if (ev.kind === "command.issued" && !store.commands.has(p.command_id)) {
    const cmd = store.apply(ev);
    alertNew(cmd, "issued");
    maybeDeliver(cmd);
    renderInbox();
    return;
  }
  if (ev.kind.startsWith("command.")) {
    if (ev.kind === "command.escalated") return; // counted from the `command` frame
    if (store.apply(ev)) renderInbox();
    return;
  }
  if (ev.kind.startsWith("operation.")) {
    if (ev.kind === "operation.started") {
      S.operation = { id: ev.op, title: p.title, kind: p.kind, level: p.level, started_us: ev.ts_us };
      S.me.checked_in_us = null;
    } else if (ev.kind === "operation.ended") S.operation = null;
    else if (ev.kind === "operation.level_changed" && S.operation) S.operation.level = p.to;
    else if (ev.kind === "operation.paused" && S.operation) S.operation.paused = true;
    else if (ev.kind === "operation.resumed" && S.operation) S.operation.paused = false;
    renderHeader();
  } else if (ev.kind === "dept.checked_in" && ev.dept === S.dept) {
    S.me.checked_in_us = ev.ts_us;
    renderHeader();
  }
}

// The department's client confirms it holds the command (command.delivered), once.
function maybeDeliver(cmd) {
  if (!cmd) return;
  const p = cmd.progress[S.dept];
  if (!p || p.state !== "issued" || S.sending.has(`${cmd.command_id}:delivered`)) return;
  S.sending.set(`${cmd.command_id}:delivered`, true);
  sock.request("command.respond", { command_id: cmd.command_id, response: "delivered", client_ts_us: Math.round(Date.now() * 1000) },
    { id: `${S.dept}-${cmd.command_id}-delivered`, retry: true })
    .catch(() => {})
    .finally(() => S.sending.delete(`${cmd.command_id}:delivered`));
}

// ---------------------------------------------------------------- alerts
let audioCtx = null;
function beep() {
  try {
    audioCtx = audioCtx || new AudioContext();
    const now = audioCtx.currentTime;
    for (const [i, f] of [[0, 880], [1, 1175]]) {
      const o = audioCtx.createOscillator();
      const g = audioCtx.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, now + i * 0.22);
      g.gain.exponentialRampToValueAtTime(0.3, now + i * 0.22 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.22 + 0.2);
      o.connect(g).connect(audioCtx.destination);
      o.start(now + i * 0.22);
      o.stop(now + i * 0.22 + 0.21);
    }
  } catch (_) { /* no audio */ }
}

function alertNew(cmd, cause) {
  const key = `${cmd.command_id}:${cause}:${cmd.escalated[S.dept] || 0}:${(cmd.progress[S.dept]?.overdue || []).length}`;
  if (S.alerted.has(key)) return;
  S.alerted.add(key);
  beep();
  startFlash(t("inbox.flash", { what: t(cause === "escalated" ? "inbox.escalated" : "inbox.new"), id: cmd.command_id }));
}

function startFlash(text) {
  stopFlash();
  let on = true;
  let n = 0;
  document.title = text;
  document.body.classList.add("alerting");
  S.flashTimer = setInterval(() => {
    on = !on;
    n += 1;
    document.title = on ? text : S.baseTitle;
    if (n > 60) stopFlash();
  }, 700);
}

function stopFlash() {
  if (S.flashTimer) clearInterval(S.flashTimer);
  S.flashTimer = null;
  document.title = S.baseTitle;
  document.body.classList.remove("alerting");
}

// ---------------------------------------------------------------- header
function renderHeader() {
  const name = nameOf(S.me);
  $("#dept-name").textContent = `${name} · ${t("app.department")}`;
  $("#dept-name").removeAttribute("data-i18n");
  S.baseTitle = `CommandHub · ${name}`;
  document.querySelector("title").removeAttribute("data-i18n");
  if (!S.flashTimer) document.title = S.baseTitle;
  const op = S.operation;
  if (op) {
    $("#op-label").replaceChildren(`${t(`op.${op.kind}`)} · `, el("span", { class: "user-text" }, op.title),
      ` · ${op.level}${op.paused ? ` · ${t("op.paused")}` : ""}`);
  } else $("#op-label").textContent = t("op.none");
  $("#op-label").removeAttribute("data-i18n");
  const btn = $("#checkin");
  btn.hidden = !op;
  btn.disabled = !!S.me.checked_in_us;
  btn.textContent = S.me.checked_in_us ? `${t("dept.checkedIn")} ${clock(S.me.checked_in_us)}` : t("dept.checkin");
}

async function checkin() {
  try {
    const ack = await sock.request("dept.checkin", { client_ts_us: Math.round(Date.now() * 1000) }, { id: `${S.dept}-checkin-${S.operation?.id}`, retry: true });
    S.me.checked_in_us = ack.checked_in_us;
    renderHeader();
  } catch (e) { toastError(e); }
}

// ---------------------------------------------------------------- video
function bindSlots(slots) {
  const main = slots.video.find((s) => s.dept === "center");
  const mv = $("#slot-main");
  const ms = main ? rtc.streamFor(main.mid) : null;
  if (mv.srcObject !== ms) { mv.srcObject = ms; mv.play().catch(() => {}); }
  $("#empty-main").hidden = !!main || rtc.status.state === "failed";
  $("#label-main").textContent = nameOf(S.center) || t("dept.commander");
  const box = $("#feed-others");
  const shown = new Set();
  for (const s of slots.video) {
    if (!s.dept || s.dept === "center") continue;
    shown.add(s.mid);
    let f = others.get(s.mid);
    if (!f) {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      f = { root: el("div", { class: "feed pushed-feed", dataset: { mid: s.mid } }, video, el("div", { class: "feed-label" })), video };
      others.set(s.mid, f);
      box.append(f.root);
    }
    const stream = rtc.streamFor(s.mid);
    if (f.video.srcObject !== stream) { f.video.srcObject = stream; f.video.play().catch(() => {}); }
    f.root.dataset.dept = s.dept;
    f.root.hidden = false;
    f.root.querySelector(".feed-label").textContent = `${t("dept.pushed")} · ${nameOf(S.byId[s.dept]) || s.dept}`;
  }
  for (const [mid, f] of others) {
    if (!shown.has(mid)) { f.root.hidden = true; f.root.dataset.dept = ""; }
  }
  for (const s of slots.audio) {
    if (audios.has(s.mid)) continue;
    const a = el("audio", { autoplay: true });
    a.srcObject = rtc.streamFor(s.mid);
    audios.set(s.mid, a);
    document.body.append(a);
  }
}

// ---------------------------------------------------------------- inbox
function mine() {
  return store.list().filter((c) => c.progress[S.dept]);
}

const cards = new Map(); // command id -> {key, node}

// Re-render only the cards whose content changed; keep the others' DOM nodes. The work per
// event is the changed cards' (and a walk of the list), not a rewrite of every card: a new
// command must show at once in a full inbox.
function renderInbox() {
  const cmds = mine();
  const open = cmds.filter((c) => !isDone(c, c.progress[S.dept])).sort((a, b) => b.seq - a.seq);
  const closed = cmds.filter((c) => isDone(c, c.progress[S.dept])).sort((a, b) => b.seq - a.seq).slice(0, 10);
  const inbox = $("#inbox");
  const wanted = [...open, ...closed];
  const keep = new Set();
  let prev = null;
  for (const c of wanted) {
    const key = cardKey(c);
    let entry = cards.get(c.command_id);
    if (!entry || entry.key !== key) {
      const node = card(c);
      if (entry) entry.node.replaceWith(node);
      entry = { key, node };
      cards.set(c.command_id, entry);
      tickCard(node, c, hubNowUs());
    }
    keep.add(c.command_id);
    // keep the order: newest open first, then the newest closed
    const want = prev ? prev.nextSibling : inbox.firstChild;
    if (want !== entry.node) inbox.insertBefore(entry.node, want);
    prev = entry.node;
  }
  for (const [cid, entry] of cards) {
    if (!keep.has(cid)) { entry.node.remove(); cards.delete(cid); }
  }
  let empty = $(".empty", inbox);
  if (!wanted.length && !empty) inbox.append(el("div", { class: "empty" }, t("inbox.empty")));
  else if (wanted.length && empty) empty.remove();
  $("#inbox-count").textContent = open.length ? `(${open.length})` : "";
  // record when each command was first shown (for the benchmark), at the next frame
  for (const c of wanted) {
    if (!(c.command_id in window.chMetrics.shown)) {
      window.chMetrics.shown[c.command_id] = null;
      requestAnimationFrame(() => { window.chMetrics.shown[c.command_id] = stamp(); });
    }
  }
  renderReportChoices(cmds);
}

function cardKey(c) {
  const p = c.progress[S.dept];
  return JSON.stringify([getLang(), p.state, p.reason, c.escalated[S.dept] || 0, (p.overdue || []).length, S.declining === c.command_id,
    ["receipt", "on_scene", "completed", "declined"].map((r) => S.sending.has(`${c.command_id}:${r}`))]);
}

const reportChoices = new Map(); // command id -> <option>

// The report's command choices, newest first: options are added and removed, not rebuilt.
function renderReportChoices(cmds) {
  const sel = $("#report-command");
  if (sel.dataset.lang !== getLang()) {
    sel.dataset.lang = getLang();
    const none = sel.options[0]?.value === "" ? sel.options[0] : sel.insertBefore(el("option", { value: "" }), sel.firstChild);
    none.textContent = t("report.none");
  }
  const keep = new Set();
  let prev = sel.options[0];
  for (let i = cmds.length - 1; i >= 0; i -= 1) {
    const c = cmds[i];
    let opt = reportChoices.get(c.command_id);
    if (!opt) {
      opt = el("option", { value: c.command_id, class: "user-text" }, `${c.command_id} ${c.text.slice(0, 24)}`);
      reportChoices.set(c.command_id, opt);
    }
    keep.add(c.command_id);
    if (prev.nextSibling !== opt) sel.insertBefore(opt, prev.nextSibling);
    prev = opt;
  }
  for (const [cid, opt] of reportChoices) {
    if (!keep.has(cid)) { opt.remove(); reportChoices.delete(cid); }
  }
}

function card(cmd) {
  const p = cmd.progress[S.dept];
  const done = isDone(cmd, p);
  const next = nextStage(cmd, p);
  const c = el("article", { class: `card prio-${cmd.priority} st-${p.state}${done ? " done" : ""}`, dataset: { cmd: cmd.command_id } });
  c.append(el("div", { class: "card-head" },
    el("span", { class: "cmd-id" }, cmd.command_id),
    el("span", { class: `prio prio-${cmd.priority}` }, t(`prio.${cmd.priority}`)),
    el("span", { class: "card-time", title: clockMs(cmd.issued_us) }, `${t("inbox.from")} ${clock(cmd.issued_us)}`),
    cmd.escalated[S.dept] ? el("span", { class: "esc-badge" }, `${t("inbox.escalated")} ×${cmd.escalated[S.dept]}`) : null,
    el("span", { class: "card-state" }, p.state === "issued" ? t("inbox.new") : t(`state.${p.state}`))));
  c.append(el("div", { class: "card-text user-text" }, cmd.text));
  c.append(el("div", { class: "card-stages" }, ...cmd.requires.map((s) => el("span", { class: "stage", dataset: { stage: s } }))));
  if (!done) {
    const buttons = el("div", { class: "card-actions" });
    for (const r of ["receipt", "on_scene", "completed"]) {
      if (!cmd.requires.includes(r)) continue;
      const reached = p.times_us[STAGE_STATE[r]] != null;
      const busy = S.sending.has(`${cmd.command_id}:${r}`);
      buttons.append(el("button", { class: `big resp resp-${r}${reached ? " reached" : ""}`, disabled: next !== r || busy, dataset: { response: r },
        onclick: () => respond(cmd, r) }, t(`resp.${r}`)));
    }
    buttons.append(el("button", { class: "big resp resp-declined danger", dataset: { response: "declined" },
      onclick: () => { S.declining = cmd.command_id; renderInbox(); } }, t("resp.declined")));
    c.append(buttons);
    if (S.declining === cmd.command_id) {
      const reason = el("textarea", { class: "decline-reason", rows: 2, placeholder: t("resp.reasonPrompt") });
      c.append(el("div", { class: "decline" }, reason,
        el("button", { class: "danger", onclick: () => { if (reason.value.trim()) respond(cmd, "declined", reason.value.trim()); else reason.focus(); } }, t("resp.confirm")),
        el("button", { class: "ghost", onclick: () => { S.declining = null; renderInbox(); } }, t("resp.cancel"))));
      setTimeout(() => reason.focus(), 0);
    }
  } else if (p.reason) {
    c.append(el("div", { class: "card-reason user-text" }, p.reason));
  }
  return c;
}

function hubNowUs() {
  return sock ? sock.hubNowMs() * 1000 : Date.now() * 1000;
}

// The countdowns, every second: only what changed is written (an unchanged text or class
// left alone costs no style or layout work).
function tickInbox() {
  const now = hubNowUs();
  for (const [cid, entry] of cards) {
    const cmd = store.commands.get(cid);
    if (cmd) tickCard(entry.node, cmd, now);
  }
}

function tickCard(c, cmd, now) {
  const p = cmd.progress[S.dept];
  const over = overdueStages(cmd, p, now);
  const done = isDone(cmd, p);
  const late = over.length > 0 && !done;
  if (c.classList.contains("overdue") !== late) c.classList.toggle("overdue", late);
  for (const s of c.querySelectorAll(".stage")) {
    const stage = s.dataset.stage;
    const reachedAt = p.times_us[STAGE_STATE[stage]];
    const deadline = cmd.issued_us + cmd.deadlines[stage] * 1e6;
    let text;
    if (reachedAt != null) text = `${t(`stage.${stage}`)} ✓ ${dur((reachedAt - cmd.issued_us) / 1e6)}`;
    else if (done) text = `${t(`stage.${stage}`)} –`;
    else if (deadline <= now) text = `${t(`stage.${stage}`)} ${t("inbox.overdue")} ${dur((now - deadline) / 1e6)}`;
    else text = `${t(`stage.${stage}`)} ${t("inbox.due")} ${dur((deadline - now) / 1e6)}`;
    if (s.textContent !== text) s.textContent = text;
    const cls = `stage${reachedAt != null ? " ok" : ""}${reachedAt == null && !done && deadline <= now ? " late" : ""}`;
    if (s.className !== cls) s.className = cls;
    const title = `${t("board.deadline")}: ${clockMs(deadline)}`;
    if (s.title !== title) s.title = title;
  }
}

async function respond(cmd, response, reason) {
  const key = `${cmd.command_id}:${response}`;
  if (S.sending.has(key)) return;
  S.sending.set(key, true);
  renderInbox();
  const fields = { command_id: cmd.command_id, response, client_ts_us: Math.round(Date.now() * 1000) };
  if (reason) fields.reason = reason;
  try {
    // a stable id: pressed again or re-sent after a reconnect, the hub logs it once
    const ack = await sock.request("command.respond", fields, { id: `${S.dept}-${cmd.command_id}-${response}`, retry: true });
    const p = cmd.progress[S.dept];
    if (p && p.times_us[ack.state] == null) {
      p.state = ack.state;
      p.times_us[ack.state] = cmd.issued_us + Math.round(ack.latency_s * 1e6);
      if (reason) p.reason = reason;
    }
    if (response === "declined") S.declining = null;
  } catch (e) {
    toastError(e);
  } finally {
    S.sending.delete(key);
    renderInbox();
  }
}

// ---------------------------------------------------------------- field report
function snapshotBlob() {
  const v = $("#self-video");
  if (!v.videoWidth) return Promise.resolve(null);
  const canvas = document.createElement("canvas");
  canvas.width = v.videoWidth;
  canvas.height = v.videoHeight;
  canvas.getContext("2d").drawImage(v, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
}

// This page's reports, newest first (re-rendered on a language switch).
function renderReports() {
  $("#report-list").replaceChildren(...sentReports.slice().reverse().map((r) => {
    const item = el("div", { class: "report-item", dataset: { report: r.report_id } },
      `${clock(r.at_us)} ${r.report_id}${r.command_id ? ` [${r.command_id}]` : ""}: `, el("span", { class: "user-text" }, r.text));
    if (r.snapshot) {
      item.dataset.snapshot = r.snapshot.path;
      item.append(el("span", { class: "snap-ok", title: r.snapshot.sha256 }, ` · ${t("report.snapshotSaved")}`));
    }
    return item;
  }));
}

async function sendReport() {
  const text = $("#report-text").value.trim();
  if (!text) { $("#report-text").focus(); return; }
  const commandId = $("#report-command").value || null;
  const wantSnap = $("#report-snapshot").checked;
  const btn = $("#report-send");
  btn.disabled = true;
  try {
    const blob = wantSnap ? await snapshotBlob() : null;
    const ack = await sock.request("report.field", { text, ...(commandId ? { command_id: commandId } : {}) }, { id: newId(`${S.dept}-report`), retry: true });
    const item = { at_us: Date.now() * 1000, report_id: ack.report_id, command_id: commandId, text, snapshot: null };
    sentReports.push(item);
    renderReports();
    $("#report-text").value = "";
    toast(() => t("report.sent"));
    if (blob) {
      const q = new URLSearchParams({ report_id: ack.report_id, ...(commandId ? { command_id: commandId } : {}) });
      const resp = await fetch(`/api/snapshots?${q}`, { method: "POST", body: blob,
        headers: { Authorization: `Bearer ${S.token}`, "Content-Type": "image/jpeg" } });
      const body = await resp.json();
      if (!resp.ok) throw Object.assign(new Error(body.error?.message || resp.statusText), { code: body.error?.code });
      item.snapshot = body;
      renderReports();
    }
  } catch (e) {
    toastError(e);
  } finally {
    btn.disabled = false;
  }
}

main();
