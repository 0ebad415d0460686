// Evaluator view: the live journal and status board (read-only), observations (rubric
// criterion, P/S/M/U, note) and checklist ticks as logged events, the scorecard PDF.

import { $, boot, clock, dur, el, toast, toastError, wallOrder } from "./common.js";
import { getLang, nameOf, onLangChange, t } from "./i18n.js";
import { CommandStore } from "./commands.js";
import { StatusBoard } from "./board.js";
import { FieldReports } from "./reports.js";
import { Journal } from "./journal.js";
import { foldEvent, restore } from "./history.js";
import { newId } from "./ws.js";

const S = { byId: {}, depts: [], center: null, operation: null, stateSeq: 0, lastSeq: 0, rubric: null, ticked: {},
  welcomed: false, mine: [], pdf: null };
const store = new CommandStore();
let sock, board, journal, reports;

async function main() {
  const started = await boot("evaluator", { onWelcome, onFrame });
  if (!started) return;
  sock = started.sock;
  S.token = started.token;
  $("#observe").onsubmit = (e) => { e.preventDefault(); record(); };
  $("#pdf").onclick = producePdf;
  setInterval(tickOp, 1000);
  loadRubric();
  onLangChange(() => { board.render(); journal.render(); reports.render(); renderForm(); renderOp(); renderMine(); renderPdf(); });
}

async function onWelcome(f, reconnected) {
  const st = f.state;
  S.center = st.center;
  S.depts = st.departments;
  S.byId = Object.fromEntries(st.departments.map((d) => [d.id, d]));
  S.operation = st.operation;
  S.stateSeq = st.head.seq;
  store.reload(st.commands);
  const groups = Object.fromEntries((st.group_info || []).map((g) => [g.id, g]));
  if (!board) {
    board = new StatusBoard({ store, root: $("#board"), legend: $("#board-legend"), depts: S.byId,
      order: wallOrder(st.departments), token: S.token, nowUs: () => sock.hubNowMs() * 1000 });
    journal = new Journal({ root: $("#journal"), depts: S.byId, center: S.center, groups, order: wallOrder(st.departments) });
    reports = new FieldReports({ root: $("#reports"), depts: S.byId, token: S.token });
  } else {
    Object.assign(board.o, { depts: S.byId, order: wallOrder(st.departments) });
    Object.assign(journal.o, { depts: S.byId, groups, order: wallOrder(st.departments) });
    reports.o.depts = S.byId;
  }
  if (!S.welcomed) {
    S.welcomed = true;
    // commands closed before this page opened stay on the board (the snapshot has open ones only)
    await restore(S.token, st, { store, board, reports });
  }
  renderCenter();
  board.render();
  reports.render();
  renderForm();
  renderOp();
  const after = reconnected ? S.lastSeq : Math.max(0, st.head.seq - 300);
  sock.request("subscribe", { after }).catch((e) => toast(`subscribe: ${e.message}`, "error"));
}

function onFrame(f) {
  if (f.type !== "event") return;
  const ev = f.event;
  if (ev.seq <= S.lastSeq) return;
  S.lastSeq = ev.seq;
  journal.add(ev);
  const p = ev.payload || {};
  if (ev.kind === "checklist.ticked") { S.ticked[p.item] = p.checked; renderChecklist(); }
  foldEvent(ev, S.stateSeq, { store, board, reports });
  if (ev.seq <= S.stateSeq) return;
  if (ev.kind === "presence.online" || ev.kind === "presence.offline") {
    if (ev.role === "department" && S.byId[ev.dept]) { S.byId[ev.dept].online = ev.kind === "presence.online"; board.tick(); }
  }
  if (ev.kind === "operation.started") {
    S.operation = { id: ev.op, title: p.title, kind: p.kind, level: p.level, started_us: ev.ts_us };
    renderOp();
  } else if (ev.kind === "operation.ended") { S.operation = null; S.lastEnded = ev.op; renderOp(); }
  else if (ev.kind === "operation.level_changed" && S.operation) { S.operation.level = p.to; renderOp(); }
  else if (ev.kind === "observation.recorded" && ev.role === "evaluator") addMine(ev);
}

function renderCenter() {
  $("#center-name").textContent = nameOf(S.center);
  $("#center-name").removeAttribute("data-i18n");
}

function renderOp() {
  const op = S.operation;
  if (op) $("#op-label").replaceChildren(`${t(`op.${op.kind}`)} · `, el("span", { class: "user-text" }, op.title), ` · ${op.level}`);
  else $("#op-label").textContent = t("op.none");
  $("#op-label").removeAttribute("data-i18n");
  if (S.center) renderCenter();
}

function tickOp() {
  const op = S.operation;
  $("#op-clock").textContent = op && sock ? `${t("op.elapsed")} ${dur((sock.hubNowMs() * 1000 - op.started_us) / 1e6)}` : "";
}

async function loadRubric() {
  try {
    const resp = await fetch("/api/rubric", { headers: { Authorization: `Bearer ${S.token}` } });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error?.message || resp.statusText);
    S.rubric = body;
  } catch (e) {
    S.rubric = { observations: [], checklist: [] };
    toast(`rubric: ${e.message}`, "error");
  }
  renderForm();
}

function renderForm() {
  const lang = getLang();
  const crit = $("#obs-criterion");
  const cur = crit.value;
  const obs = S.rubric ? S.rubric.observations : [];
  crit.replaceChildren(...obs.map((c) => el("option", { value: c.id, dataset: { scope: c.scope } }, `${c.title[lang]} (${c.id})`)));
  if (cur) crit.value = cur;
  const dept = $("#obs-dept");
  const curD = dept.value;
  dept.replaceChildren(el("option", { value: "" }, t("eval.anyDept")), ...S.depts.map((d) => el("option", { value: d.id }, nameOf(d))));
  dept.value = curD;
  crit.onchange = fitScope;
  fitScope();
  renderChecklist();
}

// Offer only the scope the criterion takes: a department for a per_department criterion,
// none for an overall one (the hub refuses a rating that does not fit: bad_scope).
function fitScope() {
  const opt = $("#obs-criterion").selectedOptions[0];
  const perDept = !!opt && opt.dataset.scope === "per_department";
  const dept = $("#obs-dept");
  dept.disabled = !perDept;
  if (dept.options[0]) dept.options[0].disabled = perDept;
  if (!perDept) dept.value = "";
  else if (!dept.value && S.depts.length) dept.value = S.depts[0].id;
}

function renderChecklist() {
  const lang = getLang();
  const items = S.rubric ? S.rubric.checklist : [];
  $("#checklist").replaceChildren(...items.map((i) => {
    const box = el("input", { type: "checkbox", dataset: { item: i.id } });
    box.checked = !!S.ticked[i.id];
    box.onchange = () => tick(i.id, box.checked, box);
    return el("label", {}, box, ` ${i.text[lang]}`);
  }));
}

async function tick(item, checked, box) {
  try {
    await sock.request("checklist.tick", { item, checked });
  } catch (e) {
    box.checked = !checked;
    toastError(e);
  }
}

async function record() {
  const criterion = $("#obs-criterion").value;
  const rating = document.querySelector("#obs-rating input:checked")?.value;
  if (!criterion || !rating) { toast(() => `${t("eval.criterion")} / ${t("eval.rating")}?`, "error"); return; }
  const dept = $("#obs-dept").disabled ? null : ($("#obs-dept").value || null);
  const note = $("#obs-note").value.trim();
  try {
    await sock.request("observation.record", { criterion, rating, note, dept }, { id: newId("obs"), retry: true });
    $("#obs-note").value = "";
    toast(() => t("eval.recorded"));
  } catch (e) {
    toastError(e);
  }
}

function addMine(ev) {
  S.mine.push(ev);
  renderMine();
}

function renderMine() {
  $("#obs-mine").replaceChildren(...S.mine.slice().reverse().map((ev) => {
    const p = ev.payload;
    return el("div", { class: "obs-item", dataset: { seq: ev.seq } },
      `${clock(ev.ts_us)} ${p.criterion} ${p.rating}${p.dept ? ` ${nameOf(S.byId[p.dept])}` : ""} `,
      el("span", { class: "user-text" }, p.note || ""));
  }));
}

// The PDF status and the "download again" link (readable, one click), in the current language.
function renderPdf() {
  const status = $("#pdf-status");
  const link = $("#pdf-link");
  if (!S.pdf) { status.textContent = ""; link.hidden = true; return; }
  if (S.pdf.state === "working") status.textContent = t("eval.pdfWorking");
  else if (S.pdf.state === "failed") status.textContent = `${t("eval.pdfFailed")}: ${S.pdf.error}`;
  else status.textContent = `${t("eval.pdfReady")}: ${S.pdf.name}`;
  link.hidden = S.pdf.state !== "ready";
  if (S.pdf.state === "ready") link.textContent = `${t("eval.pdfAgain")} · ${S.pdf.name} (${Math.round(S.pdf.size / 1024)} KiB)`;
}

// One click: the PDF is produced, then saved at once (the link below saves it again).
async function producePdf() {
  const btn = $("#pdf");
  btn.disabled = true;
  S.pdf = { state: "working" };
  renderPdf();
  try {
    const resp = await fetch("/api/report", { method: "POST", headers: { Authorization: `Bearer ${S.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ lang: getLang() }) });
    if (!resp.ok) {
      let msg = resp.statusText;
      try { const b = await resp.json(); msg = `${b.error.code}: ${b.error.message}`; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const blob = await resp.blob();
    const name = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "")?.[1] || "scorecard.pdf";
    const link = $("#pdf-link");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = name;
    S.pdf = { state: "ready", name, size: blob.size };
    renderPdf();
    window.chLastPdf = { name, size: blob.size };
    link.click();
  } catch (e) {
    S.pdf = { state: "failed", error: e.message };
    renderPdf();
  } finally {
    btn.disabled = false;
  }
}

main();
