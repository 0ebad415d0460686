// Commander console: video wall, command composer (mouse or keyboard), status board, field
// reports, journal, drill bar, audio.

import { $, $$, boot, dur, el, num, toast, toastError, wallOrder } from "./common.js";
import { getLang, joinNames, nameOf, onLangChange, t } from "./i18n.js";
import { RtcLink, VideoWatch } from "./rtc.js";
import { CommandStore, DEFAULT_DEADLINES, STAGES } from "./commands.js";
import { StatusBoard } from "./board.js";
import { FieldReports } from "./reports.js";
import { Journal } from "./journal.js";
import { foldEvent, restore } from "./history.js";
import { MediaStatus } from "./mediastatus.js";
import { TargetFinder } from "./targets.js";
import { newId } from "./ws.js";

const S = {
  depts: [], byId: {}, order: {}, groups: {}, groupInfo: {}, center: null, operation: null,
  stateSeq: 0, lastSeq: 0, routes: { pushes: {}, muted: [], talk_to: null },
  stats: {}, hubHealth: {}, clientWarn: {}, localFps: {}, focus: null,
  selDepts: new Set(), selGroups: new Set(), selAll: false, picks: [], // picks: "g:id" / "d:id", in pick order
  injects: [], released: new Set(), scenarioFor: null, welcomed: false,
};
const store = new CommandStore();
const tiles = new Map(); // dept -> {root, video, mid}
const audios = new Map(); // mid -> <audio>
const watch = new VideoWatch();
const frames = new Map(); // mid -> {frames, at, changedAt}: for the browser's own fps and freezes
const FROZEN_MS = 2500;
// Timing marks for the UI benchmark (commandhub bench ui): when send was pressed.
window.chMetrics = { sent: [] };

let sock, rtc, board, journal, reports, finder, media;

async function main() {
  const started = await boot("commander", { onWelcome, onFrame });
  if (!started) return;
  sock = started.sock;
  S.token = started.token;
  media = new MediaStatus($("#media"), [$("#wall-media")]);
  rtc = new RtcLink(sock, {
    videoSlots: 16, audioSlots: 16, publish: true,
    onSlots: bindSlots,
    onStatus: (st) => media.update(st),
    onLocalError: () => toast(() => t("dept.noCamera"), "error"),
  });
  // for tests and support: what the page's WebRTC link looks like
  window.chDebug = () => ({ slots: rtc.slots, pc: rtc.pc && rtc.pc.connectionState, rtc: rtc.lastState,
    generation: rtc.generation, ws: sock.lastStatus, media: rtc.status, failures: rtc.history });
  setInterval(pollState, 2500);
  setInterval(checkTiles, 1000);
  setInterval(tickDrill, 500);
  wireComposer();
  wireDrillBar();
  wireFocus();
  wireAudio();
  wireKeys();
  onLangChange(() => {
    renderRoster(); board.render(); journal.render(); reports.render(); renderDrill(); renderDeadlineInputs();
    finder.render(); if (S.focus) openFocus(S.focus);
  });
}

function groupInfoOf(st) {
  const list = st.group_info || Object.entries(st.groups || {}).map(([id, members]) => ({ id, name_zh: id, name_en: id, members }));
  return Object.fromEntries(list.map((g) => [g.id, g]));
}

async function onWelcome(f, reconnected) {
  const st = f.state;
  S.center = st.center;
  S.depts = st.departments;
  S.byId = Object.fromEntries(st.departments.map((d) => [d.id, d]));
  S.order = wallOrder(st.departments);
  S.groups = st.groups;
  S.groupInfo = groupInfoOf(st);
  S.operation = st.operation;
  S.stateSeq = st.head.seq;
  store.reload(st.commands);
  if (!board) {
    board = new StatusBoard({ store, root: $("#board"), legend: $("#board-legend"), depts: S.byId, order: S.order,
      token: S.token, nowUs: () => sock.hubNowMs() * 1000, onEscalate: escalate, onCancel: cancelCommand });
    journal = new Journal({ root: $("#journal"), depts: S.byId, center: S.center, groups: S.groupInfo, order: S.order });
    reports = new FieldReports({ root: $("#reports"), depts: S.byId, token: S.token });
    finder = new TargetFinder({ input: $("#target-find"), list: $("#target-suggest"), options: targetOptions,
      onPick: pickTarget, onBack: unpickLast, onDone: () => $("#cmd-text").focus(), onHelp: () => showHelp(true) });
  } else {
    Object.assign(board.o, { depts: S.byId, order: S.order });
    Object.assign(journal.o, { depts: S.byId, groups: S.groupInfo, order: S.order });
    reports.o.depts = S.byId;
  }
  renderRoster();
  renderDrill();
  if (!S.welcomed) {
    S.welcomed = true;
    // closed commands and earlier field reports, from the log (the snapshot has open commands only)
    await restore(S.token, st, { store, board, reports });
    $("#target-find").focus();
  }
  board.render();
  reports.render();
  const after = reconnected ? S.lastSeq : Math.max(0, st.head.seq - 300);
  sock.request("subscribe", { after }).catch((e) => toast(`subscribe: ${e.message}`, "error"));
  rtc.start();
  pollState();
}

function onFrame(f) {
  if (f.type === "event") onEvent(f.event);
  else if (f.type === "rtc.slots") rtc.applySlots(f);
  else if (f.type === "error") {
    if (f.re == null && rtc.hubError(f)) return; // our media link: shown in the video badge
    toast(`${f.code}: ${f.message}`, "error");
  }
}

function onEvent(ev) {
  if (ev.seq <= S.lastSeq) return;
  S.lastSeq = ev.seq;
  journal.add(ev);
  const p = ev.payload || {};
  foldEvent(ev, S.stateSeq, { store, board, reports });
  if (ev.seq <= S.stateSeq) {
    if (ev.kind === "inject.released") S.released.add(p.inject_id);
    return;
  }
  switch (ev.kind) {
    case "presence.online": case "presence.offline":
      // online: a session or a live feed (a WHIP camera has no session): the hub decides
      if (ev.role === "department" && S.byId[ev.dept]) {
        if (ev.kind === "presence.online") S.byId[ev.dept].online = true;
        updateTile(ev.dept);
        board.tick();
        pollState();
      }
      break;
    case "media.published": case "media.unpublished":
      if (ev.kind === "media.unpublished") delete S.hubHealth[p.dept]; // the feed ended: no outage
      pollState();
      break;
    case "dept.checked_in":
      if (S.byId[ev.dept]) { S.byId[ev.dept].checked_in_us = ev.ts_us; updateTile(ev.dept); }
      break;
    case "video.lost": case "video.frozen": case "video.black":
      S.hubHealth[p.dept] = ev.kind.slice(6);
      updateTile(p.dept);
      break;
    case "video.restored":
      S.hubHealth[p.dept] = "ok";
      updateTile(p.dept);
      break;
    case "route.changed":
      pollState();
      break;
    case "operation.started":
      S.operation = { id: ev.op, title: p.title, kind: p.kind, level: p.level, started_us: ev.ts_us,
        scenario: p.scenario, speed: p.speed, paused: false };
      S.released = new Set();
      for (const d of S.depts) d.checked_in_us = null;
      renderDrill();
      break;
    case "operation.level_changed": if (S.operation) S.operation.level = p.to; renderDrill(); break;
    case "operation.paused": if (S.operation) S.operation.paused = true; renderDrill(); break;
    case "operation.resumed": if (S.operation) S.operation.paused = false; renderDrill(); break;
    case "operation.ended": S.operation = null; renderDrill(); break;
    case "inject.released": S.released.add(p.inject_id); renderInject(); break;
    default: break;
  }
}

// ---------------------------------------------------------------- video wall
function renderRoster() {
  $("#center-name").textContent = nameOf(S.center);
  $("#center-name").removeAttribute("data-i18n");
  const wall = $("#wall");
  if (!tiles.size) {
    for (const d of S.depts) {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const root = el("div", { class: "tile", dataset: { dept: d.id }, tabindex: 0,
        onclick: () => openFocus(d.id),
        // preventDefault: the Enter must not also press the dialog's button that gets the focus
        onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); openFocus(d.id); } } },
      video,
      // badges on their own line under the name (never over it, nor over the verdicts)
      el("div", { class: "tile-top" }, el("span", { class: "presence" }), el("span", { class: "tile-name" }),
        el("div", { class: "tile-flags" })),
      el("div", { class: "tile-warn" }),
      el("div", { class: "tile-verdict" }, el("span", { class: "v-hub" }), el("span", { class: "v-local" })));
      tiles.set(d.id, { root, video, mid: null });
      wall.append(root);
    }
  }
  for (const d of S.depts) updateTile(d.id);
  // composer targets: every department by wall order, every group by its name
  $("#target-depts").replaceChildren(...S.depts.map((d, i) => el("button", { type: "button", class: "chip dept-chip", tabindex: -1,
    dataset: { dept: d.id }, title: `${i + 1} · ${nameOf(d)} (${d.id})`, onclick: () => toggleDept(d.id) }, nameOf(d))));
  $("#target-groups").replaceChildren(...Object.values(S.groupInfo).map((g) => el("button", { type: "button", class: "chip group-chip", tabindex: -1,
    dataset: { group: g.id }, title: `${nameOf(g)} (${g.id}): ${joinNames(g.members.map((m) => nameOf(S.byId[m]) || m))}`,
    onclick: () => toggleGroup(g.id) }, nameOf(g))));
  renderTargets();
  const talk = $("#talk-to");
  const cur = talk.value;
  talk.replaceChildren(el("option", { value: "" }, t("talk.all")), ...S.depts.map((d) => el("option", { value: d.id }, nameOf(d))));
  talk.value = S.routes.talk_to || cur || "";
}

function bindSlots(slots) {
  const seen = new Set();
  for (const s of slots.video) {
    if (!s.dept || !tiles.has(s.dept)) continue;
    seen.add(s.dept);
    const tile = tiles.get(s.dept);
    if (tile.mid !== s.mid) {
      tile.mid = s.mid;
      tile.video.srcObject = rtc.streamFor(s.mid);
      tile.video.play().catch(() => {});
    }
  }
  for (const [d, tile] of tiles) {
    if (!seen.has(d) && tile.mid !== null) {
      tile.mid = null;
      tile.video.srcObject = null;
    }
  }
  for (const s of slots.audio) {
    let a = audios.get(s.mid);
    if (!a || a.srcObject !== rtc.streamFor(s.mid)) {
      if (a) a.remove();
      a = el("audio", { autoplay: true });
      a.srcObject = rtc.streamFor(s.mid);
      audios.set(s.mid, a);
      document.body.append(a);
    }
    a.dataset.dept = s.dept || "";
  }
  if (S.focus) showFocusVideo();
  for (const d of S.depts) updateTile(d.id);
}

// The hub's verdict (its health monitor: /api/state and video.* events) and this browser's
// own (the <video> element and getStats), each labelled; null when there is nothing to judge.
function hubVerdict(d) {
  const dep = S.byId[d];
  if (!dep || !dep.online) return null;
  return S.hubHealth[d] || "unknown";
}

function localVerdict(d) {
  const dep = S.byId[d];
  if (!dep || !dep.online) return null;
  return S.clientWarn[d] || "missing";
}

// The big warning on a tile: what this browser sees wrong first; the hub's verdict only when
// this browser cannot see the picture itself (a hub verdict it contradicts stays in the line).
function warningOf(d) {
  const local = localVerdict(d);
  const hub = hubVerdict(d);
  if (local === "black" || local === "frozen") return { kind: local, side: "localVerdict" };
  if (hub && hub !== "ok" && hub !== "unknown" && local !== "ok") return { kind: hub, side: "hubVerdict" };
  if (local === "missing") return { kind: "missing", side: "localVerdict" };
  return null;
}

function verdictText(v, fps) {
  if (v == null) return "";
  if (v === "ok") return fps != null ? `${t("wall.ok")} ${num(fps)} fps` : t("wall.ok");
  return `⚠ ${t(`wall.${v}`)}`;
}

function updateTile(d) {
  const tile = tiles.get(d);
  const dep = S.byId[d];
  if (!tile || !dep) return;
  const r = tile.root;
  const name = r.querySelector(".tile-name");
  name.textContent = nameOf(dep);
  name.title = `${nameOf(dep)} (${dep.id})`;
  r.classList.toggle("online", !!dep.online);
  r.classList.toggle("offline", !dep.online);
  r.querySelector(".presence").title = dep.online ? t("wall.online") : t("wall.offline");
  const warn = warningOf(d);
  r.dataset.warn = warn ? warn.kind : "";
  const w = r.querySelector(".tile-warn");
  w.textContent = !dep.online ? t("wall.offline") : warn ? `⚠ ${t(`wall.${warn.side}`)}: ${t(`wall.${warn.kind}`)}` : "";
  const hub = hubVerdict(d);
  const local = localVerdict(d);
  r.dataset.hub = hub || "";
  r.dataset.local = local || "";
  // the two verdicts disagree (the hub says bad, this browser sees frames): flagged, not hidden
  r.classList.toggle("disagree", !!(hub && local === "ok" && hub !== "ok" && hub !== "unknown"));
  const vh = r.querySelector(".v-hub");
  const vl = r.querySelector(".v-local");
  vh.textContent = hub ? `${t("wall.hubVerdict")}: ${verdictText(hub)}` : "";
  vl.textContent = local ? `${t("wall.localVerdict")}: ${verdictText(local, S.localFps[d])}` : "";
  vh.dataset.v = hub || "";
  vl.dataset.v = local || "";
  const st = S.stats[d];
  r.querySelector(".tile-verdict").title = `${t("wall.verdictHelp")}${st ? `\n${statsText(st)}` : ""}`;
  // plain-text badges (no emoji: wall PCs often have no emoji font)
  const flags = [];
  if (S.routes.pushes && S.routes.pushes[d]) flags.push(el("span", { class: "badge pushed" }, t("flag.pushed")));
  if ((S.routes.muted || []).includes(d)) flags.push(el("span", { class: "badge muted" }, t("flag.muted")));
  if (dep.checked_in_us) flags.push(el("span", { class: "badge checked" }, t("dept.checkedIn")));
  r.querySelector(".tile-flags").replaceChildren(...flags);
  r.classList.toggle("pushed", !!(S.routes.pushes && S.routes.pushes[d]));
}

function statsText(st) {
  return `${num(st.bitrate_kbps)} kbps · ${num(st.fps)} fps · loss ${num(st.loss_pct, 1)}% · RTT ${num(st.rtt_ms)} ms`;
}

// One at a time: on a loaded machine getStats can take longer than the interval.
let checking = false;
async function checkTiles() {
  if (checking) return;
  checking = true;
  try { await checkTilesNow(); } finally { checking = false; }
}

async function checkTilesNow() {
  const mids = [...tiles.values()].map((tile) => tile.mid).filter((mid) => mid != null);
  const stats = rtc && mids.length ? await rtc.inboundVideo(mids) : new Map();
  const now = performance.now();
  for (const [d, tile] of tiles) {
    const before = [S.clientWarn[d], S.localFps[d]];
    S.clientWarn[d] = watch.check(tile.video);
    const st = tile.mid != null ? stats.get(String(tile.mid)) : null;
    if (st) {
      const prev = frames.get(tile.mid);
      const fps = st.fps ?? (prev ? ((st.frames - prev.frames) * 1000) / (now - prev.at) : null);
      const changedAt = !prev || st.frames !== prev.frames ? now : prev.changedAt;
      frames.set(tile.mid, { frames: st.frames, at: now, changedAt });
      S.localFps[d] = fps;
      // no frame decoded for FROZEN_MS: frozen, whatever the <video> element still shows
      if (now - changedAt > FROZEN_MS && S.clientWarn[d] === "ok") S.clientWarn[d] = "frozen";
    } else {
      S.localFps[d] = null;
    }
    if (before[0] !== S.clientWarn[d] || before[1] !== S.localFps[d]) updateTile(d);
  }
}

let polling = false;
let pollAgain = false; // asked while a poll was running (a route change): poll once more after it
async function pollState() {
  if (polling) { pollAgain = true; return; }
  polling = true;
  try {
    const resp = await fetch("/api/state", { headers: { Authorization: `Bearer ${S.token}` }, cache: "no-store" });
    if (!resp.ok) return;
    const st = await resp.json();
    let presence = false;
    for (const d of st.departments) {
      if (S.byId[d.id] && S.byId[d.id].online !== d.online) { S.byId[d.id].online = d.online; presence = true; }
    }
    const v = st.video || {};
    S.routes = v.routes || S.routes;
    const stats = {};
    for (const p of Object.values(v.participants || {})) {
      if (p.dept && p.published && p.published.video) stats[p.dept] = p.published.video;
    }
    S.stats = stats;
    if (st.media && st.media.health) S.hubHealth = { ...st.media.health };
    for (const d of S.depts) updateTile(d.id);
    if (presence && board) board.tick();
    if (S.focus) renderFocusStatus();
  } catch (_) { /* next poll */ } finally {
    polling = false;
    if (pollAgain) { pollAgain = false; pollState(); }
  }
}

// ---------------------------------------------------------------- enlarged tile, routing
function wireFocus() {
  $("#focus-close").onclick = closeFocus;
  $("#focus").onclick = (e) => { if (e.target.id === "focus") closeFocus(); };
  $("#push-go").onclick = () => {
    const v = $("#push-target").value;
    route("route.push", { source: S.focus, targets: v === "all" ? "all" : [v] });
  };
  $("#unpush").onclick = () => route("route.unpush", { source: S.focus });
  $("#focus-mute").onclick = () => route("route.mute", { dept: S.focus, muted: !(S.routes.muted || []).includes(S.focus) });
  $("#focus-talk").onclick = () => { $("#talk-to").value = S.focus; route("route.talk", { dept: S.focus }); };
}

async function route(type, fields) {
  try {
    await sock.request(type, fields);
    await pollState();
  } catch (e) {
    toastError(e);
  }
}

function openFocus(d) {
  S.focus = d;
  $("#focus").hidden = false;
  $("#focus-name").textContent = nameOf(S.byId[d]);
  // push to every other department, a group, or one department (never to itself)
  const sel = $("#push-target");
  const cur = sel.value;
  sel.replaceChildren(el("option", { value: "all" }, t("wall.allOthers")),
    el("optgroup", { label: t("compose.groups") }, ...Object.values(S.groupInfo).map((g) =>
      el("option", { value: g.id }, `${nameOf(g)} (${g.members.filter((m) => m !== d).length})`))),
    el("optgroup", { label: t("compose.depts") }, ...S.depts.filter((x) => x.id !== d).map((x) =>
      el("option", { value: x.id }, nameOf(x)))));
  if (cur && cur !== d) sel.value = cur;
  if (!sel.value) sel.value = "all";
  showFocusVideo();
  renderFocusStatus();
  $("#focus-close").focus();
}

function showFocusVideo() {
  const tile = tiles.get(S.focus);
  const v = $("#focus-video");
  const stream = tile && tile.mid != null ? rtc.streamFor(tile.mid) : null;
  if (v.srcObject !== stream) {
    v.srcObject = stream;
    v.play().catch(() => {});
  }
}

function renderFocusStatus() {
  const d = S.focus;
  const pushed = S.routes.pushes ? S.routes.pushes[d] : null;
  const to = pushed === "all" ? t("wall.allOthers")
    : pushed ? joinNames(pushed.filter((x) => x !== d).map((x) => nameOf(S.byId[x]) || x)) : "";
  $("#focus-pushed").textContent = pushed ? `${t("wall.pushedTo")}: ${to}` : "";
  $("#unpush").disabled = !pushed;
  const muted = (S.routes.muted || []).includes(d);
  $("#focus-mute").textContent = muted ? t("wall.unmute") : t("wall.mute");
  const st = S.stats[d];
  const hub = hubVerdict(d);
  const local = localVerdict(d);
  $("#focus-status").textContent = [hub ? `${t("wall.hubVerdict")}: ${verdictText(hub)}` : "",
    local ? `${t("wall.localVerdict")}: ${verdictText(local, S.localFps[d])}` : "", st ? statsText(st) : ""].filter(Boolean).join(" · ");
}

function closeFocus() {
  const d = S.focus;
  S.focus = null;
  $("#focus").hidden = true;
  $("#focus-video").srcObject = null;
  if (d && tiles.has(d)) tiles.get(d).root.focus();
}

// ---------------------------------------------------------------- audio
function wireAudio() {
  $("#talk-to").onchange = (e) => route("route.talk", { dept: e.target.value || null });
  const mic = $("#mic");
  mic.onclick = () => {
    const on = !mic.classList.contains("on");
    mic.classList.toggle("on", on);
    mic.dataset.i18n = on ? "mic.on" : "mic.off";
    mic.textContent = t(mic.dataset.i18n);
    rtc.setMicEnabled(on);
  };
}

// ---------------------------------------------------------------- composer
function setPick(kind, id, on) {
  const set = kind === "g" ? S.selGroups : S.selDepts;
  const key = `${kind}:${id}`;
  S.picks = S.picks.filter((k) => k !== key);
  if (on) { set.add(id); S.picks.push(key); } else set.delete(id);
}

function toggleDept(d) {
  S.selAll = false;
  setPick("d", d, !S.selDepts.has(d));
  renderTargets();
}

function toggleGroup(g) {
  S.selAll = false;
  setPick("g", g, !S.selGroups.has(g));
  renderTargets();
}

function clearTargets() {
  S.selAll = false;
  S.selDepts.clear();
  S.selGroups.clear();
  S.picks = [];
  renderTargets();
}

// What the type-ahead offers: all, the groups, the departments (with their wall numbers).
function targetOptions() {
  return [{ kind: "all", id: "all", label: t("compose.all"), keys: ["all", "全部", t("compose.all")] },
    ...Object.values(S.groupInfo).map((g) => ({ kind: "group", id: g.id, label: nameOf(g), sub: `${g.members.length}`,
      keys: [g.id, g.name_zh, g.name_en] })),
    ...S.depts.map((d, i) => ({ kind: "dept", id: d.id, label: nameOf(d), sub: String(i + 1),
      keys: [d.id, d.name_zh, d.name_en, String(i + 1)] }))];
}

function pickTarget(opt) {
  if (opt.kind === "all") { clearTargets(); S.selAll = true; } else {
    S.selAll = false;
    setPick(opt.kind === "group" ? "g" : "d", opt.id, true);
  }
  renderTargets();
}

// Backspace in the empty target box: the target picked last goes.
function unpickLast() {
  if (S.selAll) S.selAll = false;
  else if (S.picks.length) {
    const [kind, id] = S.picks[S.picks.length - 1].split(/:(.*)/s);
    setPick(kind, id, false);
  }
  renderTargets();
}

function covered() {
  if (S.selAll) return new Set(S.depts.map((d) => d.id));
  const out = new Set(S.selDepts);
  for (const g of S.selGroups) for (const d of S.groups[g] || []) out.add(d);
  return out;
}

function renderTargets() {
  const cov = covered();
  $("#target-all").classList.toggle("on", S.selAll);
  for (const b of $$(".dept-chip")) b.classList.toggle("on", cov.has(b.dataset.dept));
  for (const b of $$(".group-chip")) b.classList.toggle("on", S.selGroups.has(b.dataset.group));
  const pills = [];
  const pill = (label, remove, kind) => el("span", { class: `pill ${kind}` }, label,
    el("button", { type: "button", class: "pill-x", tabindex: -1, "aria-label": `${t("compose.clear")} ${label}`, onclick: remove }, "×"));
  if (S.selAll) pills.push(pill(t("compose.all"), () => { S.selAll = false; renderTargets(); }, "all"));
  for (const key of S.selAll ? [] : S.picks) {
    const [kind, id] = key.split(/:(.*)/s);
    if (kind === "g") pills.push(pill(nameOf(S.groupInfo[id]) || id, () => toggleGroup(id), "group"));
    else pills.push(pill(nameOf(S.byId[id]) || id, () => toggleDept(id), "dept"));
  }
  const n = cov.size;
  $("#picked").replaceChildren(el("span", { class: "picked-count" }, n ? t("compose.selected", { n }) : t("compose.none")), ...pills);
  $("#picked").dataset.count = String(n);
}

function targetsOf() {
  if (S.selAll) return ["all"];
  return [...S.selGroups, ...[...S.selDepts].filter((d) => ![...S.selGroups].some((g) => (S.groups[g] || []).includes(d)))];
}

function setDeadlines(level) {
  for (const b of $$("#deadline-presets button")) b.classList.toggle("on", b.dataset.level === level);
  for (const s of STAGES) {
    const inp = $(`#deadline-${s}`);
    if (inp) inp.value = DEFAULT_DEADLINES[level][s];
  }
}

function requiredStages() {
  return ["receipt", ...$$("#composer .req").filter((c) => c.checked).map((c) => c.value)];
}

function renderDeadlineInputs() {
  const req = requiredStages();
  const box = $("#deadlines");
  const values = Object.fromEntries(STAGES.map((s) => [s, $(`#deadline-${s}`)?.value]));
  const level = $("#deadline-presets button.on")?.dataset.level || S.operation?.level || "IV";
  box.replaceChildren(...req.map((s) => el("label", { class: "deadline" }, t(`stage.${s}`),
    el("input", { id: `deadline-${s}`, type: "number", min: 1, step: 1, value: values[s] || DEFAULT_DEADLINES[level][s] }))));
}

function wireComposer() {
  $("#target-all").onclick = () => {
    const on = !S.selAll;
    clearTargets();
    S.selAll = on;
    renderTargets();
  };
  $("#deadline-presets").replaceChildren(...["I", "II", "III", "IV"].map((l) =>
    el("button", { type: "button", class: "chip", dataset: { level: l }, onclick: () => setDeadlines(l) }, l)));
  for (const c of $$("#composer .req")) c.onchange = () => { renderDeadlineInputs(); };
  renderDeadlineInputs();
  setDeadlines(S.operation?.level || "IV");
  const text = $("#cmd-text");
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendCommand();
    } else if (e.key === "Escape") {
      text.blur(); // then "/" goes back to the targets, "?" shows the keys
    }
  });
  $("#composer").onsubmit = (e) => { e.preventDefault(); sendCommand(); };
}

async function sendCommand() {
  const pressed = performance.timeOrigin + performance.now();
  const text = $("#cmd-text").value.trim();
  const targets = targetsOf();
  if (!targets.length) { toast(() => t("compose.noTarget"), "error"); $("#target-find").focus(); return; }
  if (!text) { toast(() => t("compose.noText"), "error"); $("#cmd-text").focus(); return; }
  const requires = requiredStages();
  const deadlines = {};
  for (const s of requires) deadlines[s] = Number($(`#deadline-${s}`).value) || DEFAULT_DEADLINES.IV[s];
  const level = $("#deadline-presets button.on")?.dataset.level;
  const mark = { t: pressed, text };
  window.chMetrics.sent.push(mark);
  // the targets' names for the "sent" toast, in whatever language is on when it is shown
  const [all, groups, depts] = [S.selAll, [...S.selGroups], [...S.selDepts]];
  const names = () => all ? t("compose.all") : joinNames(groups.map((g) => nameOf(S.groupInfo[g]) || g)
    .concat(depts.map((d) => nameOf(S.byId[d]) || d)));
  try {
    const ack = await sock.request("command.issue", { targets, text, priority: $("#cmd-priority").value,
      requires, deadlines, ...(level ? { level } : {}) }, { id: newId("cmd") });
    mark.command_id = ack.command_id;
    $("#cmd-text").value = "";
    // the next order must not go to the same set by accident: targets start empty again
    clearTargets();
    $("#target-find").focus();
    toast(() => t("compose.sent", { id: ack.command_id, to: names() }));
  } catch (e) {
    toastError(e);
  }
}

async function escalate(cmd, d) {
  try {
    await sock.request("command.escalate", { command_id: cmd.command_id, departments: [d], note: t("board.escalateNote") });
  } catch (e) {
    toastError(e);
  }
}

async function cancelCommand(cmd) {
  if (!confirm(`${t("board.cancel")} ${cmd.command_id}?`)) return;
  try {
    await sock.request("command.cancel", { command_id: cmd.command_id, reason: "cancelled by commander" });
  } catch (e) {
    toastError(e);
  }
}

// ---------------------------------------------------------------- keyboard
function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function showHelp(on) {
  $("#help-box").hidden = !on;
  if (on) $("#help-close").focus();
}

function wireKeys() {
  const help = $("#help-box");
  $("#help").onclick = () => showHelp(true);
  $("#help-close").onclick = () => { showHelp(false); $("#target-find").focus(); };
  help.onclick = (e) => { if (e.target === help) showHelp(false); };
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      if (!help.hidden) { showHelp(false); $("#target-find").focus(); e.preventDefault(); return; }
      if (S.focus) { closeFocus(); e.preventDefault(); return; }
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { showHelp(help.hidden); e.preventDefault(); } else if (e.key === "/") {
      if (S.focus) closeFocus();
      $("#target-find").focus();
      e.preventDefault();
    }
  });
}

// ---------------------------------------------------------------- drill bar, injects
function wireDrillBar() {
  loadScenarioList();
  $("#op-scenario").onchange = (e) => {
    const sc = S.scenarios.find((x) => x.id === e.target.value);
    if (sc) {
      if (!$("#op-title").value.trim()) $("#op-title").value = sc.title;
      if (sc.level) $("#op-level").value = sc.level;
    }
  };
  $("#op-start").onclick = async () => {
    const scenario = $("#op-scenario").value || null;
    const title = $("#op-title").value.trim() || t("op.defaultTitle");
    try {
      await sock.request("operation.start", { title, kind: "drill", level: $("#op-level").value, scenario });
    } catch (e) { toastError(e); }
  };
  $("#op-pause").onclick = () => opRequest("operation.pause");
  $("#op-resume").onclick = () => opRequest("operation.resume");
  $("#op-stop").onclick = () => { if (confirm(t("op.confirmStop"))) opRequest("operation.end", { reason: "ended by commander" }); };
  $("#op-level").onchange = (e) => {
    setDeadlines(e.target.value);
    if (S.operation) opRequest("operation.level", { level: e.target.value, reason: "commander" });
  };
}

async function loadScenarioList() {
  S.scenarios = [];
  try {
    const resp = await fetch(`/api/scenario?list=1&token=${encodeURIComponent(S.token)}`, { cache: "no-store" });
    if (resp.ok) S.scenarios = (await resp.json()).scenarios || [];
  } catch (_) { /* none */ }
  // scenario titles are the drill author's text: shown as written
  $("#op-scenario").replaceChildren(el("option", { value: "", "data-i18n": "op.noScenario" }, t("op.noScenario")),
    ...S.scenarios.map((x) => el("option", { value: x.id, class: "user-text" }, `${x.id} · ${x.title}`)));
}

async function opRequest(type, fields = {}) {
  try { await sock.request(type, fields); } catch (e) { toastError(e); }
}

function renderDrill() {
  const op = S.operation;
  $("#op-start").hidden = !!op;
  $("#op-title").hidden = !!op;
  $("#op-scenario").hidden = !!op;
  $("#op-pause").hidden = !op || op.paused;
  $("#op-resume").hidden = !op || !op.paused;
  $("#op-stop").hidden = !op;
  const label = $("#op-label");
  if (op) {
    label.replaceChildren(`${t(`op.${op.kind}`)} · `, el("span", { class: "user-text" }, op.title),
      op.paused ? ` · ${t("op.paused")}` : "");
    label.removeAttribute("data-i18n");
    $("#op-level").value = op.level;
    $("#drillbar").dataset.level = op.level;
    loadScenario(op);
  } else {
    label.textContent = t("op.none");
    $("#drillbar").dataset.level = "";
    S.injects = [];
  }
  document.body.classList.toggle("paused", !!(op && op.paused));
  tickDrill();
}

async function loadScenario(op) {
  if (!op.scenario || S.scenarioFor === op.id) return;
  S.scenarioFor = op.id;
  try {
    const resp = await fetch(`/api/scenario?token=${encodeURIComponent(S.token)}`, { cache: "no-store" });
    if (resp.ok) S.injects = (await resp.json()).injects || [];
  } catch (_) { S.injects = []; }
  renderInject();
}

function drillSeconds() {
  const op = S.operation;
  if (!op) return 0;
  return ((sock.hubNowMs() * 1000 - op.started_us) / 1e6) * (op.speed || 1);
}

function tickDrill() {
  const op = S.operation;
  $("#op-clock").textContent = op ? `${t("op.elapsed")} ${dur((sock.hubNowMs() * 1000 - op.started_us) / 1e6)}` : "";
  renderInject();
}

function renderInject() {
  const banner = $("#inject-banner");
  const op = S.operation;
  if (!op || !S.injects.length) { banner.hidden = true; return; }
  const now = drillSeconds();
  const due = S.injects.find((i) => !S.released.has(i.id) && i.at_s <= now);
  const next = S.injects.find((i) => !S.released.has(i.id) && i.at_s > now);
  // rebuild only when the inject changes (a click must not land on a replaced button)
  const key = JSON.stringify([due?.id, next?.id, getLang()]);
  if (banner.dataset.key !== key) {
    banner.dataset.key = key;
    banner.classList.toggle("due", !!due);
    if (due) {
      banner.replaceChildren(el("strong", {}, `${t("inject.due")} ${due.id}`),
        el("span", { class: "user-text" }, ` ${due.title || ""} ${due.text || ""}`),
        el("button", { class: "primary", onclick: () => releaseInject(due) }, t("inject.release")));
    } else if (next) {
      banner.replaceChildren(el("span", {}, `${t("inject.next")} ${next.id} `), el("span", { class: "user-text" }, next.title || ""),
        el("span", {}, " · "), el("span", { class: "countdown" }));
    }
  }
  banner.hidden = !due && !next;
  const cd = banner.querySelector(".countdown");
  if (cd && next && !due) cd.textContent = dur(next.at_s - now);
}

async function releaseInject(inj) {
  const actual = drillSeconds();
  try {
    if (inj.type === "command" && inj.command) {
      const c = inj.command;
      await sock.request("command.issue", { targets: c.targets || ["all"], text: c.text || inj.title, priority: c.priority || "routine",
        requires: c.requires || ["receipt"], inject_id: inj.id });
    } else if (inj.type === "escalation" && inj.level) {
      await sock.request("operation.level", { level: inj.level, reason: inj.title || inj.id });
    }
    await sock.request("inject.release", { inject_id: inj.id, title: inj.title || (inj.command && inj.command.text) || inj.id,
      inject_type: inj.type || "event", planned_offset_s: inj.at_s, actual_offset_s: Math.round(actual * 1000) / 1000 });
  } catch (e) { toastError(e); }
}

main();
