// The status board: a row per command, a cell per target department in wall order. Each cell
// says its state by colour and word (sent / offline not reached / delivered / received / on
// scene / done / cannot comply / overdue), its timer since issue, the decline reason, the
// department's field reports and snapshot for the command. Closed commands stay: dimmed while
// among the newest three, collapsed to their summary line after that.

import { clockMs, dur, el } from "./common.js";
import { getLang, joinNames, nameOf, t } from "./i18n.js";
import { isDone, isOpen, ORDER, overdueStages, STAGE_STATE } from "./commands.js";

const KEEP_CLOSED = 100; // closed commands kept on the board (the newest)
const RECENT = 3; // a closed command among the newest RECENT stays open (dimmed); older ones collapse
export const LEGEND = ["issued", "offline", "delivered", "acknowledged", "on_scene", "completed", "declined", "overdue"];

export function snapshotUrl(path, token) {
  const name = String(path || "").split("/").pop();
  return `/api/snapshots/${encodeURIComponent(name)}?token=${encodeURIComponent(token)}`;
}

// The responses a media.snapshot illustrates: the hub's snapshots list them all (`responses`),
// a department's own upload names its one command or report
export function illustrated(p) {
  return Array.isArray(p.responses) && p.responses.length ? p.responses
    : [{ command_id: p.command_id, report_id: p.report_id }];
}

export class StatusBoard {
  // opts: store, root, legend (element, optional), depts (id -> roster entry with .online),
  // order (id -> wall index), token, nowUs(), onEscalate(cmd, dept) and onCancel(cmd) (commander only)
  constructor(opts) {
    this.o = opts;
    this.root = opts.root;
    this.rows = new Map(); // command id -> row element, in board order
    this.rowKeys = new Map(); // command id -> what its row was built from
    this.expanded = new Set(); // closed commands the operator opened
    this.folded = new Set(); // closed commands the operator collapsed
    this.reports = new Map(); // "cmd|dept" -> [report.field payload + ts]
    this.snaps = new Map(); // "cmd|dept" -> latest media.snapshot path
    this.noted = 0; // the newest seq `note` has seen
    setInterval(() => this.tick(), 500);
  }

  // Field reports and snapshots that belong to a command's cell. Returns true if it mattered.
  note(ev) {
    if (ev.seq <= this.noted) return false; // history and the subscribe replay overlap
    this.noted = ev.seq;
    const p = ev.payload || {};
    if (ev.kind === "report.field" && p.command_id) {
      const key = `${p.command_id}|${ev.dept}`;
      const list = this.reports.get(key) || [];
      list.push({ ...p, ts_us: ev.ts_us });
      this.reports.set(key, list);
      this.touch(p.command_id);
      return true;
    }
    if (ev.kind === "media.snapshot" && p.dept) {
      // one picture may illustrate several responses of the department (payload.responses)
      const cids = illustrated(p).map((r) => r.command_id).filter(Boolean);
      for (const cid of new Set(cids)) {
        this.snaps.set(`${cid}|${p.dept}`, p.path);
        this.touch(cid);
      }
      return cids.length > 0;
    }
    return false;
  }

  touch(cid) {
    const row = this.rows.get(cid);
    if (row) for (const cell of row.querySelectorAll(".cell")) cell.dataset.key = "";
  }

  renderLegend() {
    if (!this.o.legend || this.o.legend.dataset.lang === getLang()) return;
    this.o.legend.dataset.lang = getLang();
    const label = (s) => (s === "offline" ? t("legend.offline") : t(`state.${s}`));
    const help = (s) => (t(`state.help.${s}`) === `state.help.${s}` ? "" : t(`state.help.${s}`));
    this.o.legend.replaceChildren(...LEGEND.map((s) => el("span", { class: `legend-chip st-${s}`, title: help(s) }, label(s))));
  }

  render() {
    this.renderLegend();
    const cmds = this.o.store.list();
    const open = cmds.filter(isOpen);
    const closed = cmds.filter((c) => !isOpen(c)).slice(-KEEP_CLOSED);
    const shown = [...open.sort((a, b) => b.seq - a.seq), ...closed.sort((a, b) => b.seq - a.seq)];
    const order = this.o.order || {};
    const recent = new Set(cmds.slice(-RECENT).map((c) => c.command_id));
    // A row is kept while what it was built from holds: a new command adds one row instead of
    // rebuilding the board (its cells update themselves in tick()).
    const rows = new Map();
    let prev = null;
    for (const cmd of shown) {
      const isClosed = !isOpen(cmd);
      const cid = cmd.command_id;
      const collapsed = isClosed && !this.expanded.has(cid) && (this.folded.has(cid) || !recent.has(cid));
      const depts = [...cmd.departments].sort((a, b) => (order[a] ?? 999) - (order[b] ?? 999));
      const key = JSON.stringify([getLang(), isClosed, collapsed, depts]);
      let row = this.rows.get(cid);
      if (!row || this.rowKeys.get(cid) !== key) {
        const fresh = this.row(cmd, isClosed, collapsed, depts);
        if (row) row.replaceWith(fresh);
        row = fresh;
        this.rowKeys.set(cid, key);
      }
      rows.set(cid, row);
      const want = prev ? prev.nextSibling : this.root.firstChild;
      if (want !== row) this.root.insertBefore(row, want);
      prev = row;
    }
    for (const [cid, row] of this.rows) {
      if (!rows.has(cid)) { row.remove(); this.rowKeys.delete(cid); }
    }
    this.rows = rows;
    for (const c of [...this.root.children]) if (!c.classList.contains("board-row")) c.remove();
    if (!shown.length) this.root.append(el("div", { class: "empty" }, t("board.empty")));
    this.tick();
  }

  row(cmd, isClosed, collapsed, depts) {
    const cid = cmd.command_id;
    const row = el("div", { class: `board-row prio-${cmd.priority} ${isClosed ? "closed" : "open"}${collapsed ? " collapsed" : ""}`,
      dataset: { cmd: cid } });
    const head = el("div", { class: "board-head" },
      el("span", { class: "cmd-id" }, cid),
      el("span", { class: `prio prio-${cmd.priority}` }, t(`prio.${cmd.priority}`)),
      el("span", { class: "cmd-text user-text", title: cmd.text }, cmd.text),
      el("span", { class: "cmd-time", title: clockMs(cmd.issued_us) }, clockMs(cmd.issued_us).slice(0, 8)));
    if (this.o.onCancel && !isClosed) {
      head.append(el("button", { class: "small ghost", onclick: () => this.o.onCancel(this.o.store.commands.get(cid) || cmd) }, t("board.cancel")));
    }
    if (isClosed) {
      head.append(el("button", { class: "small ghost toggle-row", "aria-expanded": collapsed ? "false" : "true",
        onclick: () => {
          if (collapsed) { this.expanded.add(cid); this.folded.delete(cid); } else { this.expanded.delete(cid); this.folded.add(cid); }
          this.render();
        } },
      collapsed ? t("board.expand") : t("board.collapse")));
    }
    row.append(head, el("span", { class: "cmd-summary" }));
    if (!collapsed) {
      row.append(el("div", { class: "board-cells" }, ...depts.map((d) => el("div", { class: "cell", dataset: { dept: d } }))));
    }
    return row;
  }

  // A command changed: a new or cancelled one, or one that just closed, re-renders the rows
  // (a closed row collapses); anything else only updates its cells.
  update(cmd, kind) {
    const row = this.rows.get(cmd.command_id);
    if (kind === "command.issued" || kind === "command.cancelled" || !row
        || row.classList.contains("open") !== isOpen(cmd)) this.render();
    else this.tick();
  }

  online(d) {
    const dep = this.o.depts[d];
    return !!(dep && dep.online);
  }

  // The word a cell shows: the progress state, except a command not yet on an offline
  // department's terminal (offline: not reached) and a missed deadline (overdue).
  display(cmd, p, d, now) {
    if (p.state === "issued" && !this.online(d)) return "offline";
    if (!isDone(cmd, p) && overdueStages(cmd, p, now).length) return "overdue";
    return p.state;
  }

  // Update states, timers and the row summaries (text and classes only, per changed cell).
  tick() {
    const now = this.o.nowUs();
    for (const [cid, row] of this.rows) {
      const cmd = this.o.store.commands.get(cid);
      if (!cmd) continue;
      for (const cell of row.querySelectorAll(".cell")) this.fillCell(cell, cmd, cell.dataset.dept, now);
      const summary = row.querySelector(".cmd-summary");
      const text = this.summary(cmd, now);
      if (summary.textContent !== text) summary.textContent = text;
    }
  }

  summary(cmd, now) {
    const ps = Object.entries(cmd.progress);
    const total = ps.length;
    const notReached = ps.filter(([, p]) => p.state === "issued");
    const off = notReached.filter(([d]) => !this.online(d)).length;
    const parts = [t("board.summary.reached", { n: total - notReached.length, total })];
    if (notReached.length) parts.push(t("board.summary.notReached", { n: notReached.length, off }));
    const count = (s) => ps.filter(([d, p]) => this.display(cmd, p, d, now) === s).length;
    for (const s of ["acknowledged", "on_scene", "completed", "declined", "overdue"]) {
      const n = count(s);
      if (n) parts.push(`${t(`state.${s}`)} ${n}`);
    }
    if (!isOpen(cmd)) parts.push(t("board.closed"));
    return parts.join(" · ");
  }

  fillCell(cell, cmd, d, now) {
    const p = cmd.progress[d];
    if (!p) return;
    const done = isDone(cmd, p);
    const over = overdueStages(cmd, p, now);
    const shown = this.display(cmd, p, d, now);
    const lastT = Math.max(...Object.values(p.times_us));
    const elapsed = ((done ? lastT : now) - cmd.issued_us) / 1e6;
    const name = nameOf(this.o.depts[d]) || d;
    const reports = this.reports.get(`${cmd.command_id}|${d}`) || [];
    const snap = this.snaps.get(`${cmd.command_id}|${d}`);
    const online = this.online(d);
    // the running timer is the only text that changes by itself: it is set alone, the cell is
    // rebuilt only when something else changed
    const key = JSON.stringify([shown, p.state, done ? elapsed : null, over, cmd.escalated[d] || 0, p.reason,
      reports.length, snap, online, name]);
    if (cell.dataset.key === key) {
      const timer = cell.querySelector(".cell-timer");
      const text = dur(elapsed);
      if (timer && timer.textContent !== text) timer.textContent = text;
      return;
    }
    cell.dataset.key = key;
    cell.dataset.state = shown;
    cell.className = `cell st-${shown}${done ? " done" : ""}${!online ? " offline-now" : ""}`;
    // [name] [STATE (offline now) (thumbnail) ... timer] then details: latency, overdue, reason, report
    const line = el("div", { class: "cell-line" }, el("span", { class: "cell-state" }, t(`state.${shown}`)));
    if (!online && shown !== "offline") line.append(el("span", { class: "cell-tag" }, t("board.offlineNow")));
    if (snap && this.o.token) {
      const url = snapshotUrl(snap, this.o.token);
      line.append(el("a", { class: "cell-snap", href: url, target: "_blank", rel: "noopener", title: t("reports.snapshot") },
        el("img", { src: url, alt: t("reports.snapshot"), loading: "lazy" })));
    }
    line.append(el("span", { class: "cell-timer" }, dur(elapsed)));
    const parts = [el("div", { class: "cell-name" }, name), line];
    const ack = p.times_us.acknowledged;
    if (shown === "overdue") {
      parts.push(el("div", { class: "cell-over" }, `${over.map((s) => t(`stage.${s}`)).join("/")} ${t("board.overdue")} · ${t(`state.${p.state}`)}`));
    } else if (shown === "offline" && over.length) {
      parts.push(el("div", { class: "cell-over" }, `${over.map((s) => t(`stage.${s}`)).join("/")} ${t("board.overdue")}`));
    } else if (ack != null && p.state !== "declined" && !(done && p.state === "acknowledged")) {
      // the receipt time (unless the timer stopped at it: done with the receipt)
      parts.push(el("div", { class: "cell-latency" }, `${t("stage.receipt")} ${dur((ack - cmd.issued_us) / 1e6)}`));
    }
    if (p.state === "declined" && p.reason) {
      parts.push(el("div", { class: "cell-reason user-text", title: p.reason }, p.reason));
    }
    if (cmd.escalated[d]) parts.push(el("div", { class: "cell-esc" }, `${t("inbox.escalated")} ×${cmd.escalated[d]}`));
    if (reports.length) {
      const last = reports[reports.length - 1];
      parts.push(el("div", { class: "cell-report user-text", title: reports.map((r) => r.text).join("\n") },
        `${reports.length > 1 ? `(${reports.length}) ` : ""}${last.text}`));
    }
    if (over.length && !done && this.o.onEscalate) {
      parts.push(el("button", { class: "small danger escalate", onclick: (ev) => { ev.stopPropagation(); this.o.onEscalate(cmd, d); } }, t("board.escalate")));
    }
    cell.replaceChildren(...parts);
    cell.title = this.tooltip(cmd, p, d, name, shown);
  }

  // Exact times in the tooltip.
  tooltip(cmd, p, d, name, shown) {
    const lines = [`${cmd.command_id} · ${name} (${d}) · ${t(`state.${shown}`)}`];
    const help = t(`state.help.${shown}`);
    if (help !== `state.help.${shown}`) lines.push(help);
    lines.push(`${t("board.issuedAt")}: ${clockMs(cmd.issued_us)}`);
    for (const st of ["delivered", "acknowledged", "on_scene", "completed", "declined", "cancelled"]) {
      if (p.times_us[st] != null) {
        lines.push(`${t(`state.${st}`)}: ${clockMs(p.times_us[st])} (+${((p.times_us[st] - cmd.issued_us) / 1e6).toFixed(3)}s)`);
      }
    }
    for (const s of cmd.requires) {
      if (ORDER[p.state] >= ORDER[STAGE_STATE[s]]) continue;
      lines.push(`${t("board.deadline")} ${t(`stage.${s}`)}: ${clockMs(cmd.issued_us + cmd.deadlines[s] * 1e6)}`);
    }
    if (p.reason) lines.push(`${t("board.reason")}: ${p.reason}`);
    const reports = this.reports.get(`${cmd.command_id}|${d}`) || [];
    if (reports.length) lines.push(`${t("board.reports")}: ${joinNames(reports.map((r) => r.text))}`);
    return lines.join("\n");
  }
}
