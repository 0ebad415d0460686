// Commander console: video wall, command composer, status board, journal, drill bar, audio.

import { $, $$, boot, dur, el, toast } from "./common.js";
import { getLang, nameOf, onLangChange, t } from "./i18n.js";
import { RtcLink, VideoWatch } from "./rtc.js";
import { CommandStore, DEFAULT_DEADLINES, STAGES } from "./commands.js";
import { StatusBoard } from "./board.js";
import { Journal } from "./journal.js";
import { newId } from "./ws.js";

const S = {
  depts: [], byId: {}, groups: {}, center: null, operation: null,
  stateSeq: 0, lastSeq: 0, routes: { pushes: {}, muted: [], talk_to: null },
  stats: {}, hubWarn: {}, clientWarn: {}, focus: null,
  selDepts: new Set(), selGroups: new Set(), selAll: false,
  injects: [], released: new Set(), scenarioFor: null,
};
const store = new CommandStore();
const tiles = new Map(); // dept -> {root, video, ...}
const audios = new Map(); // mid -> <audio>
const watch = new VideoWatch();
// Timing marks for the UI benchmark (commandhub bench ui): when send was pressed.
window.chMetrics = { sent: [] };

let sock, rtc, board, journal;

async function main() {
  const started = await boot("commander", { onWelcome, onFrame });
  if (!started) return;
  sock = started.sock;
  S.token = started.token;
  rtc = new RtcLink(sock, {
    videoSlots: 16, audioSlots: 16, publish: true,
    onSlots: bindSlots,
    onLocalError: () => toast(t("dept.noCamera"), "error"),
  });
  // for tests and support: what the page's WebRTC link looks like
  window.chDebug = () => ({ slots: rtc.slots, pc: rtc.pc && rtc.pc.connectionState, rtc: rtc.lastState,
    generation: rtc.generation, ws: sock.lastStatus });
  setInterval(pollState, 2500);
  setInterval(checkTiles, 1000);
  setInterval(tickDrill, 500);
  wireComposer();
  wireDrillBar();
  wireFocus();
  wireAudio();
  onLangChange(() => { renderRoster(); board.render(); journal.render(); renderDrill(); });
}

function onWelcome(f, reconnected) {
  const st = f.state;
  S.center = st.center;
  S.depts = st.departments;
  S.byId = Object.fromEntries(st.departments.map((d) => [d.id, d]));
  S.groups = st.groups;
  S.operation = st.operation;
  S.stateSeq = st.head.seq;
  store.commands.clear();
  store.load(st.commands);
  if (!board) {
    board = new StatusBoard({ store, root: $("#board"), depts: S.byId, nowUs: () => sock.hubNowMs() * 1000,
      onEscalate: escalate, onCancel: cancelCommand });
    journal = new Journal({ root: $("#journal"), depts: S.byId, center: S.center });
  } else {
    board.o.depts = S.byId;
    journal.o.depts = S.byId;
  }
  renderRoster();
  board.render();
  renderDrill();
  const after = reconnected ? S.lastSeq : Math.max(0, st.head.seq - 300);
  sock.request("subscribe", { after }).catch((e) => toast(`subscribe: ${e.message}`, "error"));
  rtc.start();
  pollState();
}

function onFrame(f) {
  if (f.type === "event") onEvent(f.event);
  else if (f.type === "rtc.slots") rtc.applySlots(f);
  else if (f.type === "error") toast(`${f.code}: ${f.message}`, "error");
}

function onEvent(ev) {
  if (ev.seq <= S.lastSeq) return;
  S.lastSeq = ev.seq;
  journal.add(ev);
  const p = ev.payload || {};
  if (ev.seq > S.stateSeq) {
    const cmd = store.apply(ev);
    if (cmd) {
      if (ev.kind === "command.issued" || ev.kind === "command.cancelled") board.render();
      else board.tick();
    }
    switch (ev.kind) {
      case "presence.online": case "presence.offline":
        // online: a session or a live feed (a WHIP camera has no session): the hub decides
        if (ev.role === "department" && S.byId[ev.dept]) {
          if (ev.kind === "presence.online") S.byId[ev.dept].online = true;
          updateTile(ev.dept);
          pollState();
        }
        break;
      case "media.published": case "media.unpublished":
        if (ev.kind === "media.unpublished") delete S.hubWarn[p.dept]; // the feed ended: no outage
        pollState();
        break;
      case "dept.checked_in":
        if (S.byId[ev.dept]) { S.byId[ev.dept].checked_in_us = ev.ts_us; updateTile(ev.dept); }
        break;
      case "video.lost": case "video.frozen": case "video.black":
        S.hubWarn[p.dept] = ev.kind.slice(6);
        updateTile(p.dept);
        break;
      case "video.restored":
        delete S.hubWarn[p.dept];
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
  } else if (ev.kind === "inject.released") {
    S.released.add(p.inject_id);
  }
}

// ---------------------------------------------------------------- video wall
function renderRoster() {
  $("#center-name").textContent = nameOf(S.center);
  const wall = $("#wall");
  if (!tiles.size) {
    for (const d of S.depts) {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const root = el("div", { class: "tile", dataset: { dept: d.id }, tabindex: 0,
        onclick: () => openFocus(d.id), onkeydown: (e) => { if (e.key === "Enter") openFocus(d.id); } },
      video,
      el("div", { class: "tile-top" }, el("span", { class: "presence" }), el("span", { class: "tile-name" }),
        el("span", { class: "tile-flags" })),
      el("div", { class: "tile-warn" }),
      el("div", { class: "tile-stats" }));
      tiles.set(d.id, { root, video, mid: null });
      wall.append(root);
    }
  }
  for (const d of S.depts) updateTile(d.id);
  // composer targets
  const box = $("#target-depts");
  box.replaceChildren(...S.depts.map((d) => el("button", { type: "button", class: "chip dept-chip", dataset: { dept: d.id }, title: `${d.name_zh} · ${d.name_en}`,
    onclick: () => toggleDept(d.id) }, nameOf(d))));
  $("#target-groups").replaceChildren(...Object.keys(S.groups).map((g) => el("button", { type: "button", class: "chip group-chip",
    dataset: { group: g }, onclick: () => toggleGroup(g) }, g)));
  renderTargets();
  const talk = $("#talk-to");
  const cur = talk.value;
  talk.replaceChildren(el("option", { value: "" }, t("talk.all")), ...S.depts.map((d) => el("option", { value: d.id }, nameOf(d))));
  talk.value = S.routes.talk_to || cur || "";
  $("#push-group").replaceChildren(...Object.keys(S.groups).map((g) => el("option", { value: g }, g)));
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
    if (!a) {
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

// What the commander's own browser sees (black, frozen) comes first; then the hub's logged
// verdict (lost/frozen/black until video.restored); then "missing" for an online department
// without a picture.
function warningOf(d) {
  const dep = S.byId[d];
  const cw = S.clientWarn[d];
  if (dep && dep.online && (cw === "black" || cw === "frozen")) return cw;
  if (S.hubWarn[d]) return S.hubWarn[d];
  if (!dep || !dep.online) return null;
  if (cw === "missing") return "missing";
  return null;
}

function updateTile(d) {
  const tile = tiles.get(d);
  const dep = S.byId[d];
  if (!tile || !dep) return;
  const r = tile.root;
  r.querySelector(".tile-name").textContent = nameOf(dep);
  r.querySelector(".tile-name").title = `${dep.name_zh} · ${dep.name_en} (${dep.id})`;
  r.classList.toggle("online", !!dep.online);
  r.classList.toggle("offline", !dep.online);
  r.querySelector(".presence").title = dep.online ? t("wall.online") : t("wall.offline");
  const warn = warningOf(d);
  r.dataset.warn = warn || "";
  const w = r.querySelector(".tile-warn");
  w.textContent = !dep.online ? t("wall.offline") : warn ? `⚠ ${t(`wall.${warn}`)}` : "";
  // plain-text badges (no emoji: wall PCs often have no emoji font)
  const flags = [];
  if (S.routes.pushes && S.routes.pushes[d]) flags.push(el("span", { class: "badge pushed" }, t("flag.pushed")));
  if ((S.routes.muted || []).includes(d)) flags.push(el("span", { class: "badge muted" }, t("flag.muted")));
  if (dep.checked_in_us) flags.push(el("span", { class: "badge checked" }, t("dept.checkedIn")));
  r.querySelector(".tile-flags").replaceChildren(...flags);
  r.classList.toggle("pushed", !!(S.routes.pushes && S.routes.pushes[d]));
  const st = S.stats[d];
  r.querySelector(".tile-stats").textContent = st
    ? `${Math.round(st.bitrate_kbps)} kbps · ${st.fps?.toFixed?.(0) ?? "-"} fps · loss ${st.loss_pct == null ? "-" : st.loss_pct.toFixed(1)}% · RTT ${st.rtt_ms == null ? "-" : Math.round(st.rtt_ms)} ms`
    : "";
}

function checkTiles() {
  for (const [d, tile] of tiles) {
    const before = S.clientWarn[d];
    S.clientWarn[d] = watch.check(tile.video);
    if (before !== S.clientWarn[d]) updateTile(d);
  }
}

async function pollState() {
  try {
    const resp = await fetch("/api/state", { headers: { Authorization: `Bearer ${S.token}` }, cache: "no-store" });
    if (!resp.ok) return;
    const st = await resp.json();
    for (const d of st.departments) if (S.byId[d.id]) S.byId[d.id].online = d.online;
    const v = st.video || {};
    S.routes = v.routes || S.routes;
    const stats = {};
    for (const p of Object.values(v.participants || {})) {
      if (p.dept && p.published && p.published.video) stats[p.dept] = p.published.video;
    }
    S.stats = stats;
    for (const d of S.depts) updateTile(d.id);
    if (S.focus) renderFocusStatus();
  } catch (_) { /* next poll */ }
}

// ---------------------------------------------------------------- enlarged tile, routing
function wireFocus() {
  $("#focus-close").onclick = closeFocus;
  $("#focus").onclick = (e) => { if (e.target.id === "focus") closeFocus(); };
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && S.focus) closeFocus(); });
  $("#push-all").onclick = () => route("route.push", { source: S.focus, targets: "all" });
  $("#push-group-go").onclick = () => route("route.push", { source: S.focus, targets: [$("#push-group").value] });
  $("#unpush").onclick = () => route("route.unpush", { source: S.focus });
  $("#focus-mute").onclick = () => route("route.mute", { dept: S.focus, muted: !(S.routes.muted || []).includes(S.focus) });
  $("#focus-talk").onclick = () => { $("#talk-to").value = S.focus; route("route.talk", { dept: S.focus }); };
}

async function route(type, fields) {
  try {
    await sock.request(type, fields);
    await pollState();
  } catch (e) {
    toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error");
  }
}

function openFocus(d) {
  S.focus = d;
  $("#focus").hidden = false;
  $("#focus-name").textContent = nameOf(S.byId[d]);
  showFocusVideo();
  renderFocusStatus();
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
  $("#focus-pushed").textContent = pushed
    ? `${t("wall.pushedTo")}: ${pushed === "all" ? t("wall.all") : pushed.map((x) => nameOf(S.byId[x]) || x).join("、")}`
    : "";
  $("#unpush").disabled = !pushed;
  const muted = (S.routes.muted || []).includes(d);
  $("#focus-mute").textContent = muted ? t("wall.unmute") : t("wall.mute");
  const st = S.stats[d];
  const warn = warningOf(d);
  $("#focus-status").textContent = [warn ? `⚠ ${t(`wall.${warn}`)}` : "",
    st ? `${Math.round(st.bitrate_kbps)} kbps · loss ${st.loss_pct ?? "-"}% · RTT ${st.rtt_ms ?? "-"} ms` : ""].join("  ");
}

function closeFocus() {
  S.focus = null;
  $("#focus").hidden = true;
  $("#focus-video").srcObject = null;
}

// ---------------------------------------------------------------- audio
function wireAudio() {
  $("#talk-to").onchange = (e) => route("route.talk", { dept: e.target.value || null });
  const mic = $("#mic");
  mic.onclick = () => {
    const on = !mic.classList.contains("on");
    mic.classList.toggle("on", on);
    mic.textContent = on ? t("mic.on") : t("mic.off");
    mic.dataset.i18n = on ? "mic.on" : "mic.off";
    rtc.setMicEnabled(on);
  };
}

// ---------------------------------------------------------------- composer
function toggleDept(d) {
  S.selAll = false;
  if (S.selDepts.has(d)) S.selDepts.delete(d); else S.selDepts.add(d);
  renderTargets();
}

function toggleGroup(g) {
  S.selAll = false;
  if (S.selGroups.has(g)) S.selGroups.delete(g); else S.selGroups.add(g);
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
    S.selAll = !S.selAll;
    S.selDepts.clear();
    S.selGroups.clear();
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
    }
  });
  $("#composer").onsubmit = (e) => { e.preventDefault(); sendCommand(); };
}

async function sendCommand() {
  const pressed = performance.timeOrigin + performance.now();
  const text = $("#cmd-text").value.trim();
  const targets = targetsOf();
  if (!targets.length) { toast(t("compose.noTarget"), "error"); return; }
  if (!text) { toast(t("compose.noText"), "error"); return; }
  const requires = requiredStages();
  const deadlines = {};
  for (const s of requires) deadlines[s] = Number($(`#deadline-${s}`).value) || DEFAULT_DEADLINES.IV[s];
  const level = $("#deadline-presets button.on")?.dataset.level;
  const mark = { t: pressed, text };
  window.chMetrics.sent.push(mark);
  try {
    const ack = await sock.request("command.issue", { targets, text, priority: $("#cmd-priority").value,
      requires, deadlines, ...(level ? { level } : {}) }, { id: newId("cmd") });
    mark.command_id = ack.command_id;
    $("#cmd-text").value = "";
    toast(t("compose.sent", { id: ack.command_id }));
  } catch (e) {
    toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error");
  }
}

async function escalate(cmd, d) {
  try {
    await sock.request("command.escalate", { command_id: cmd.command_id, departments: [d], note: "催办" });
  } catch (e) {
    toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error");
  }
}

async function cancelCommand(cmd) {
  if (!confirm(`${t("board.cancel")} ${cmd.command_id}?`)) return;
  try {
    await sock.request("command.cancel", { command_id: cmd.command_id, reason: "cancelled by commander" });
  } catch (e) {
    toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error");
  }
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
    } catch (e) { toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error"); }
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
  $("#op-scenario").replaceChildren(el("option", { value: "", "data-i18n": "op.noScenario" }, t("op.noScenario")),
    ...S.scenarios.map((x) => el("option", { value: x.id }, `${x.id} · ${x.title}`)));
}

async function opRequest(type, fields = {}) {
  try { await sock.request(type, fields); } catch (e) { toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error"); }
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
    label.textContent = `${t(`op.${op.kind}`)} · ${op.title}${op.paused ? ` · ${t("op.paused")}` : ""}`;
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
      banner.replaceChildren(el("strong", {}, `${t("inject.due")} ${due.id}`), el("span", {}, ` ${due.title || ""} ${due.text || ""}`),
        el("button", { class: "primary", onclick: () => releaseInject(due) }, t("inject.release")));
    } else if (next) {
      banner.replaceChildren(el("span", {}, `${t("inject.next")} ${next.id} ${next.title || ""} · `), el("span", { class: "countdown" }));
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
  } catch (e) { toast(`${t("err.generic")}: ${e.code || ""} ${e.message}`, "error"); }
}

main();
