// The status board: a row per command, a cell per target department with its state and a
// running timer since issue; overdue cells turn red and offer 催办 (commander only).

import { clockMs, dur, el } from "./common.js";
import { t, nameOf } from "./i18n.js";
import { isDone, isOpen, nextStage, overdueStages, STAGE_STATE } from "./commands.js";

const KEEP_CLOSED = 8; // closed commands kept on the board (the newest)

export class StatusBoard {
  // opts: store, root, depts (id -> roster entry), nowUs(), onEscalate(cmd, dept) (optional), onCancel
  constructor(opts) {
    this.o = opts;
    this.root = opts.root;
    this.rows = new Map();
    setInterval(() => this.tick(), 500);
  }

  render() {
    const cmds = this.o.store.list();
    const open = cmds.filter(isOpen);
    const closed = cmds.filter((c) => !isOpen(c)).slice(-KEEP_CLOSED);
    const shown = [...open, ...closed].sort((a, b) => b.seq - a.seq);
    this.root.replaceChildren();
    this.rows.clear();
    if (!shown.length) {
      this.root.append(el("div", { class: "empty" }, t("board.empty")));
      return;
    }
    for (const cmd of shown) {
      const row = el("div", { class: `board-row prio-${cmd.priority} ${isOpen(cmd) ? "open" : "closed"}`, dataset: { cmd: cmd.command_id } });
      const head = el("div", { class: "board-head" },
        el("span", { class: "cmd-id" }, cmd.command_id),
        el("span", { class: `prio prio-${cmd.priority}` }, t(`prio.${cmd.priority}`)),
        el("span", { class: "cmd-text", title: cmd.text }, cmd.text),
        el("span", { class: "cmd-time", title: clockMs(cmd.issued_us) }, clockMs(cmd.issued_us).slice(0, 8)));
      if (this.o.onCancel && isOpen(cmd)) {
        head.append(el("button", { class: "small ghost", onclick: () => this.o.onCancel(cmd) }, t("board.cancel")));
      }
      const cells = el("div", { class: "board-cells" });
      for (const d of cmd.departments) {
        const cell = el("div", { class: "cell", dataset: { dept: d } });
        cells.append(cell);
      }
      row.append(head, cells);
      this.root.append(row);
      this.rows.set(cmd.command_id, row);
    }
    this.tick();
  }

  // Update states, timers, red marks (cheap: text and classes only).
  tick() {
    const now = this.o.nowUs();
    for (const [cid, row] of this.rows) {
      const cmd = this.o.store.commands.get(cid);
      if (!cmd) continue;
      for (const cell of row.querySelectorAll(".cell")) this.fillCell(cell, cmd, cell.dataset.dept, now);
    }
  }

  fillCell(cell, cmd, d, now) {
    const p = cmd.progress[d];
    if (!p) return;
    const done = isDone(cmd, p);
    const over = overdueStages(cmd, p, now);
    const lastT = Math.max(...Object.values(p.times_us));
    const elapsed = ((done ? lastT : now) - cmd.issued_us) / 1e6;
    const ack = p.times_us.acknowledged;
    const name = nameOf(this.o.depts[d]) || d;
    cell.className = `cell st-${p.state}${over.length && !done ? " overdue" : ""}${done ? " done" : ""}`;
    const parts = [el("div", { class: "cell-name" }, name),
      el("div", { class: "cell-state" }, t(`state.${p.state}`)),
      el("div", { class: "cell-timer" }, dur(elapsed))];
    if (ack != null) {
      parts.push(el("div", { class: "cell-latency" }, `${t("stage.receipt")} ${dur((ack - cmd.issued_us) / 1e6)}`));
    }
    if (cmd.escalated[d]) parts.push(el("div", { class: "cell-esc" }, `${t("inbox.escalated")} ×${cmd.escalated[d]}`));
    if (over.length && !done) {
      parts.push(el("div", { class: "cell-over" }, `${t("board.overdue")}: ${over.map((s) => t(`stage.${s}`)).join("/")}`));
      if (this.o.onEscalate) {
        parts.push(el("button", { class: "small danger escalate", onclick: (ev) => { ev.stopPropagation(); this.o.onEscalate(cmd, d); } }, t("board.escalate")));
      }
    }
    // Exact times in the tooltip.
    const lines = [`${cmd.command_id} · ${name}`, `${t("board.issuedAt")}: ${clockMs(cmd.issued_us)}`];
    for (const st of ["delivered", "acknowledged", "on_scene", "completed", "declined", "cancelled"]) {
      if (p.times_us[st] != null) {
        lines.push(`${t(`state.${st}`)}: ${clockMs(p.times_us[st])} (+${((p.times_us[st] - cmd.issued_us) / 1e6).toFixed(3)}s)`);
      }
    }
    for (const s of cmd.requires) {
      lines.push(`${t("board.deadline")} ${t(`stage.${s}`)}: ${clockMs(cmd.issued_us + cmd.deadlines[s] * 1e6)}`);
    }
    if (p.reason) lines.push(`${t("resp.reason")}: ${p.reason}`);
    cell.title = lines.join("\n");
    const key = JSON.stringify([p.state, Math.floor(elapsed * 10), over, cmd.escalated[d] || 0, nextStage(cmd, p)]);
    if (cell.dataset.key !== key) {
      cell.dataset.key = key;
      cell.replaceChildren(...parts);
    }
  }
}

export { STAGE_STATE };
