// The live event timeline: every committed event (except periodic link.stats), newest first,
// filterable by category and by text.

import { $$, clockMs, el } from "./common.js";
import { getLang, nameOf, t } from "./i18n.js";

const MAX_ROWS = 600;
const CATEGORIES = ["all", "commands", "responses", "presence", "video", "routing", "drill", "eval"];

export function category(kind) {
  if (["command.delivered", "command.acknowledged", "command.on_scene", "command.completed",
    "command.declined", "report.field", "dept.checked_in", "media.snapshot"].includes(kind)) return "responses";
  if (kind.startsWith("command.")) return "commands";
  if (kind.startsWith("presence.")) return "presence";
  if (kind.startsWith("video.") || kind.startsWith("media.") || kind === "link.stats") return "video";
  if (kind.startsWith("route.")) return "routing";
  if (kind.startsWith("operation.") || kind.startsWith("inject.")) return "drill";
  if (kind.startsWith("observation.") || kind.startsWith("checklist.")) return "eval";
  return "other";
}

export class Journal {
  // opts: root (container with .journal-list), depts (id -> roster entry), center
  constructor(opts) {
    this.o = opts;
    this.events = [];
    this.filter = "all";
    this.text = "";
    this.list = el("ol", { class: "journal-list" });
    const chips = el("div", { class: "chips" },
      ...CATEGORIES.map((c) => el("button", {
        class: `chip${c === "all" ? " on" : ""}`, dataset: { cat: c, i18n: `journal.${c}` },
        onclick: () => this.setFilter(c),
      }, t(`journal.${c}`))));
    const search = el("input", { type: "search", class: "journal-search", "data-i18n-ph": "journal.filter", placeholder: t("journal.filter"),
      oninput: (e) => { this.text = e.target.value.trim().toLowerCase(); this.render(); } });
    opts.root.append(el("div", { class: "journal-tools" }, chips, search), this.list);
  }

  setFilter(c) {
    this.filter = c;
    for (const b of $$(".chip", this.o.root)) b.classList.toggle("on", b.dataset.cat === c);
    this.render();
  }

  add(ev) {
    if (ev.kind === "link.stats") return;
    if (this.events.length && ev.seq <= this.events[this.events.length - 1].seq) return;
    this.events.push(ev);
    if (this.events.length > MAX_ROWS * 2) this.events.splice(0, this.events.length - MAX_ROWS);
    if (this.matches(ev)) {
      this.list.prepend(this.row(ev));
      while (this.list.childElementCount > MAX_ROWS) this.list.lastChild.remove();
    }
  }

  matches(ev) {
    if (this.filter !== "all" && category(ev.kind) !== this.filter) return false;
    if (this.text) {
      const hay = `${ev.kind} ${ev.dept || ""} ${this.describe(ev)}`.toLowerCase();
      if (!hay.includes(this.text)) return false;
    }
    return true;
  }

  render() {
    const rows = [];
    for (let i = this.events.length - 1; i >= 0 && rows.length < MAX_ROWS; i -= 1) {
      if (this.matches(this.events[i])) rows.push(this.row(this.events[i]));
    }
    this.list.replaceChildren(...rows);
  }

  name(id) {
    if (!id) return "";
    if (id === "center") return nameOf(this.o.center) || id;
    return nameOf(this.o.depts[id]) || id;
  }

  describe(ev) {
    const p = ev.payload || {};
    const n = (x) => this.name(x);
    const list = (xs) => (xs === "all" ? t("wall.all") : (xs || []).map(n).join("、"));
    switch (ev.kind) {
      case "command.issued": return `${p.command_id} → ${list(p.departments)}: ${p.text}`;
      case "command.delivered": case "command.acknowledged": case "command.on_scene":
      case "command.completed": return `${p.command_id} ${n(p.dept)}`;
      case "command.declined": return `${p.command_id} ${n(p.dept)}: ${p.reason || ""}`;
      case "command.overdue": return `${p.command_id} ${n(p.dept)} ${t(`stage.${p.stage}`)}`;
      case "command.resent": return `${p.command_id} ${n(p.dept)} (${p.cause})`;
      case "command.escalated": return `${p.command_id} → ${list(p.departments)} ${p.note || ""}`;
      case "command.cancelled": return `${p.command_id} ${list(p.departments)} ${p.reason || ""}`;
      case "report.field": return `${n(ev.dept)}${p.command_id ? ` [${p.command_id}]` : ""}: ${p.text}`;
      case "media.snapshot": return `${n(p.dept)} ${p.command_id || ""} ${String(p.path).split("/").pop()} sha256 ${String(p.sha256).slice(0, 12)}`;
      case "presence.online": case "presence.offline": return `${ev.dept ? n(ev.dept) : ev.role}${p.reason ? ` (${p.reason})` : ""}`;
      case "presence.clock": return `${ev.dept ? n(ev.dept) : ev.role} offset ${p.offset_ms} ms, rtt ${p.rtt_ms} ms`;
      case "dept.checked_in": return n(ev.dept);
      case "video.lost": case "video.frozen": case "video.black": return n(p.dept);
      case "video.restored": return `${n(p.dept)} (${p.was}, ${p.duration_s}s)`;
      case "route.changed": return `${p.action} ${n(p.source || p.dept)}${p.targets ? ` → ${list(p.targets)}` : ""}`;
      case "operation.started": return `${p.title} (${p.kind}, ${p.level})`;
      case "operation.level_changed": return `${p.from} → ${p.to}`;
      case "operation.ended": return p.reason || "";
      case "inject.released": return `${p.inject_id} ${p.title || ""}`;
      case "observation.recorded": return `${p.criterion} ${p.rating}${p.dept ? ` ${n(p.dept)}` : ""} ${p.note || ""}`;
      case "checklist.ticked": return `${p.item} ${p.checked ? "✓" : "✗"} ${p.note || ""}`;
      default: return Object.keys(p).length ? JSON.stringify(p).slice(0, 160) : "";
    }
  }

  row(ev) {
    const cat = category(ev.kind);
    return el("li", { class: `jrow cat-${cat} kind-${ev.kind.replace(/\./g, "-")}`, dataset: { seq: ev.seq, kind: ev.kind } },
      el("span", { class: "jtime", title: `seq ${ev.seq} · ${ev.hash?.slice(0, 16) || ""}` }, clockMs(ev.ts_us)),
      el("span", { class: "jkind" }, ev.kind),
      el("span", { class: "jtext", lang: getLang() === "zh" ? "zh-CN" : "en" }, this.describe(ev)));
  }
}
