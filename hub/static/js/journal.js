// The live event timeline, newest first: what a commander needs by default (commands,
// responses, presence, video, routing, drill, evaluation); technical events (clock sync, link
// statistics, recording segments, ...) behind a toggle. Kinds shown in the operator's language.

import { $$, clockMs, el, num } from "./common.js";
import { getLang, joinNames, kindLabel, nameOf, t } from "./i18n.js";

const MAX_ROWS = 600;
const CATEGORIES = ["all", "commands", "responses", "presence", "video", "routing", "drill", "eval"];
// Events a commander does not act on: shown only with the "technical" toggle on.
export const NOISE = new Set(["presence.clock", "link.stats", "media.recording", "video.resolution", "command.resent",
  "auth.rejected", "auth.rejected_suppressed", "hub.started", "hub.stopped", "token.revoked", "media.error",
  "media.published", "media.unpublished", "ingest.started", "ingest.stopped", "ingest.connected"]);

export function category(kind) {
  if (["command.delivered", "command.acknowledged", "command.on_scene", "command.completed",
    "command.declined", "report.field", "dept.checked_in", "media.snapshot"].includes(kind)) return "responses";
  if (kind.startsWith("command.")) return "commands";
  if (kind.startsWith("presence.")) return "presence";
  if (kind.startsWith("video.") || kind.startsWith("media.") || kind.startsWith("ingest.") || kind === "link.stats") return "video";
  if (kind.startsWith("route.")) return "routing";
  if (kind.startsWith("operation.") || kind.startsWith("inject.")) return "drill";
  if (kind.startsWith("observation.") || kind.startsWith("checklist.")) return "eval";
  return "other";
}

export class Journal {
  // opts: root (container), depts (id -> roster entry), center, groups (id -> group info), order (id -> wall index)
  constructor(opts) {
    this.o = opts;
    this.events = [];
    this.filter = "all";
    this.text = "";
    this.noise = false;
    this.hidden = 0;
    this.list = el("ol", { class: "journal-list" });
    this.chips = el("div", { class: "chips" },
      ...CATEGORIES.map((c) => el("button", {
        type: "button", class: `chip${c === "all" ? " on" : ""}`, dataset: { cat: c, i18n: `journal.${c}` },
        onclick: () => this.setFilter(c),
      }, t(`journal.${c}`))));
    this.noiseBox = el("input", { type: "checkbox", class: "noise-toggle",
      onchange: (e) => { this.noise = e.target.checked; this.render(); } });
    this.noiseCount = el("span", { class: "noise-count sub" });
    const search = el("input", { type: "search", class: "journal-search", "data-i18n-ph": "journal.filter", placeholder: t("journal.filter"),
      oninput: (e) => { this.text = e.target.value.trim().toLowerCase(); this.render(); } });
    opts.root.append(el("div", { class: "journal-tools" }, this.chips,
      el("label", { class: "check noise" }, this.noiseBox, " ", el("span", { dataset: { i18n: "journal.noise" } }, t("journal.noise"))),
      search, this.noiseCount), this.list);
  }

  setFilter(c) {
    this.filter = c;
    for (const b of $$(".chip", this.chips)) b.classList.toggle("on", b.dataset.cat === c);
    this.render();
  }

  add(ev) {
    if (this.events.length && ev.seq <= this.events[this.events.length - 1].seq) return;
    this.events.push(ev);
    if (this.events.length > MAX_ROWS * 4) this.events.splice(0, this.events.length - MAX_ROWS * 2);
    if (this.matches(ev)) {
      this.list.prepend(this.row(ev));
      while (this.list.childElementCount > MAX_ROWS) this.list.lastChild.remove();
    } else if (NOISE.has(ev.kind) && !this.noise) {
      this.hidden += 1;
      this.showHidden();
    }
  }

  showHidden() {
    this.noiseCount.textContent = this.hidden && !this.noise ? t("journal.noiseHidden", { n: this.hidden }) : "";
  }

  matches(ev) {
    if (!this.noise && NOISE.has(ev.kind)) return false;
    if (this.filter !== "all" && category(ev.kind) !== this.filter) return false;
    if (this.text) {
      const hay = `${ev.kind} ${kindLabel(ev.kind)} ${ev.dept || ""} ${this.text(ev)}`.toLowerCase();
      if (!hay.includes(this.text)) return false;
    }
    return true;
  }

  render() {
    const rows = [];
    this.hidden = 0;
    for (let i = this.events.length - 1; i >= 0; i -= 1) {
      const ev = this.events[i];
      if (this.matches(ev)) { if (rows.length < MAX_ROWS) rows.push(this.row(ev)); } else if (!this.noise && NOISE.has(ev.kind)) this.hidden += 1;
    }
    this.list.replaceChildren(...rows);
    this.showHidden();
  }

  // who an event is about: a department, the commander, or an evaluator/observer seat
  who(ev) {
    if (ev.role === "department" && ev.dept) return this.name(ev.dept);
    const key = `app.${ev.role}`;
    return t(key) === key ? ev.role || "" : t(key);
  }

  name(id) {
    if (!id) return "";
    if (id === "center") return nameOf(this.o.center) || id;
    if (this.o.depts[id]) return nameOf(this.o.depts[id]);
    if (this.o.groups && this.o.groups[id]) return nameOf(this.o.groups[id]);
    return id;
  }

  // The row's text as parts: strings the page wrote, and {u: text} for what people typed
  // (command and report text, reasons, notes, titles), which stays in its own language.
  describe(ev) {
    const p = ev.payload || {};
    const n = (x) => this.name(x);
    const u = (x) => ({ u: x == null ? "" : String(x) });
    const order = this.o.order || {};
    const list = (xs) => (xs === "all" ? t("wall.all")
      : joinNames([...(xs || [])].sort((a, b) => (order[a] ?? 999) - (order[b] ?? 999)).map(n)));
    switch (ev.kind) {
      case "command.issued": return [`${p.command_id} → ${list(p.departments)}: `, u(p.text)];
      case "command.delivered": case "command.acknowledged": case "command.on_scene":
      case "command.completed": return [`${p.command_id} ${n(p.dept)}`];
      case "command.declined": return [`${p.command_id} ${n(p.dept)}: `, u(p.reason)];
      case "command.overdue": return [`${p.command_id} ${n(p.dept)} ${t(`stage.${p.stage}`)}`];
      case "command.resent": return [`${p.command_id} ${n(p.dept)} (${p.cause})`];
      case "command.escalated": return [`${p.command_id} → ${list(p.departments)} `, u(p.note)];
      case "command.cancelled": return [`${p.command_id} ${list(p.departments)} `, u(p.reason)];
      case "report.field": return [`${n(ev.dept)}${p.command_id ? ` [${p.command_id}]` : ""}: `, u(p.text)];
      case "media.snapshot": return [`${n(p.dept)} ${p.command_id || ""} ${String(p.path).split("/").pop()}`];
      case "presence.online": case "presence.offline": return [`${this.who(ev)}${p.reason ? ` (${p.reason})` : ""}`];
      case "presence.clock": return [`${this.who(ev)}: offset ${num(p.offset_ms, 1)} ms, RTT ${num(p.rtt_ms, 1)} ms`];
      case "dept.checked_in": return [n(ev.dept)];
      case "video.lost": case "video.frozen": case "video.black":
        return [`${n(p.dept)}${p.reason ? ` (${p.reason})` : p.cause ? ` (${p.cause})` : ""}`];
      case "video.restored": return [`${n(p.dept)} (${p.was}, ${num(p.duration_s, 1)} ${t("sec")})`];
      case "link.stats": return [`${n(p.dept || ev.dept)} ${p.track || ""}: ${num(p.bitrate_kbps)} kbps${p.track === "video"
        ? `, ${num(p.fps)} fps` : ""}, loss ${num(p.loss_pct, 1)}%, RTT ${num(p.rtt_ms, 1)} ms`];
      case "media.recording": return [`${n(p.dept)} ${String(p.path || "").split("/").pop()}`];
      case "route.changed": return [`${p.action} ${n(p.source || p.dept)}${p.targets ? ` → ${list(p.targets)}` : ""}`];
      case "operation.started": return [u(p.title), ` (${t(`op.${p.kind}`)}, ${p.level})`];
      case "operation.level_changed": return [`${p.from} → ${p.to} `, u(p.reason)];
      case "operation.ended": return [u(p.reason)];
      case "inject.released": return [`${p.inject_id} `, u(p.title)];
      case "observation.recorded": return [`${p.criterion} ${p.rating}${p.dept ? ` ${n(p.dept)}` : ""} `, u(p.note)];
      case "checklist.ticked": return [`${p.item} ${p.checked ? "✓" : "✗"} `, u(p.note)];
      default: return Object.keys(p).length ? [u(JSON.stringify(p, (k, v) => (typeof v === "number" && !Number.isInteger(v)
        ? Math.round(v * 1000) / 1000 : v)).slice(0, 200))] : [];
    }
  }

  text(ev) {
    return this.describe(ev).map((x) => (typeof x === "string" ? x : x.u)).join("");
  }

  row(ev) {
    const cat = category(ev.kind);
    return el("li", { class: `jrow cat-${cat} kind-${ev.kind.replace(/\./g, "-")}`, dataset: { seq: ev.seq, kind: ev.kind } },
      el("span", { class: "jtime", title: `seq ${ev.seq} · ${ev.hash?.slice(0, 16) || ""}` }, clockMs(ev.ts_us)),
      el("span", { class: "jkind", title: ev.kind }, kindLabel(ev.kind)),
      el("span", { class: "jtext", lang: getLang() === "zh" ? "zh-CN" : "en" },
        ...this.describe(ev).map((x) => (typeof x === "string" ? x : el("span", { class: "user-text" }, x.u)))));
  }
}
