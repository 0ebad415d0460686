// The field-report panel beside the board: every `report.field`, newest first, with its
// department, time, the command it belongs to and the snapshot that came with it.

import { clock, clockMs, el } from "./common.js";
import { nameOf, t } from "./i18n.js";
import { illustrated, snapshotUrl } from "./board.js";

const MAX = 200;

export class FieldReports {
  // opts: root, depts (id -> roster entry), token
  constructor(opts) {
    this.o = opts;
    this.items = []; // {ev, snap}
    this.byReport = new Map(); // report_id -> item
    this.early = new Map(); // report_id -> snapshot path that came before its report
  }

  // Returns true when the event changed the panel (redrawn unless `draw` is false).
  add(ev, draw = true) {
    const p = ev.payload || {};
    if (ev.kind === "report.field") {
      if (this.byReport.has(p.report_id)) return false;
      const item = { ev, snap: this.early.get(p.report_id) || null };
      this.items.push(item);
      this.byReport.set(p.report_id, item);
      if (this.items.length > MAX) this.byReport.delete(this.items.shift().ev.payload.report_id);
      if (draw) this.render();
      return true;
    }
    if (ev.kind === "media.snapshot") {
      let shown = false;
      for (const rid of illustrated(p).map((r) => r.report_id).filter(Boolean)) {
        const item = this.byReport.get(rid);
        if (!item) { this.early.set(rid, p.path); continue; }
        item.snap = p.path;
        shown = true;
      }
      if (shown && draw) this.render();
      return shown;
    }
    return false;
  }

  render() {
    const root = this.o.root;
    if (!this.items.length) {
      root.replaceChildren(el("div", { class: "empty" }, t("reports.empty")));
      return;
    }
    root.replaceChildren(...this.items.slice().reverse().map(({ ev, snap }) => {
      const p = ev.payload;
      const head = el("div", { class: "report-head" },
        el("span", { class: "report-dept" }, nameOf(this.o.depts[ev.dept]) || ev.dept),
        el("span", { class: "report-time", title: clockMs(ev.ts_us) }, clock(ev.ts_us)),
        p.command_id ? el("span", { class: "report-cmd" }, `${t("reports.forCommand")} ${p.command_id}`) : null);
      const body = [head, el("div", { class: "report-text user-text" }, p.text)];
      if (snap && this.o.token) {
        const url = snapshotUrl(snap, this.o.token);
        body.push(el("a", { class: "report-snap", href: url, target: "_blank", rel: "noopener" },
          el("img", { src: url, alt: t("reports.snapshot"), loading: "lazy" })));
      }
      return el("article", { class: "report-card", dataset: { report: p.report_id, dept: ev.dept } }, ...body);
    }));
  }
}
