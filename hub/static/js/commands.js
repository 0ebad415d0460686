// Commands and their per-department progress, folded from the welcome state and events
// (the same rules as hub/commands.py).

export const ORDER = { issued: 0, delivered: 1, acknowledged: 2, on_scene: 3, completed: 4 };
export const STAGE_STATE = { receipt: "acknowledged", on_scene: "on_scene", completed: "completed" };
export const STAGES = ["receipt", "on_scene", "completed"];
export const TERMINAL = new Set(["completed", "declined", "cancelled"]);
export const EVENT_STATE = {
  "command.delivered": "delivered", "command.acknowledged": "acknowledged",
  "command.on_scene": "on_scene", "command.completed": "completed", "command.declined": "declined",
};
// Default deadlines (seconds) per response level, as the hub's DEFAULT_DEADLINES.
export const DEFAULT_DEADLINES = {
  I: { receipt: 30, on_scene: 600, completed: 1800 },
  II: { receipt: 60, on_scene: 900, completed: 2100 },
  III: { receipt: 120, on_scene: 1800, completed: 3600 },
  IV: { receipt: 300, on_scene: 3600, completed: 7200 },
};

export function isDone(cmd, p) {
  if (TERMINAL.has(p.state)) return true;
  const last = cmd.requires[cmd.requires.length - 1];
  return ORDER[p.state] >= ORDER[STAGE_STATE[last]];
}

export function isOpen(cmd) {
  return Object.values(cmd.progress).some((p) => !isDone(cmd, p));
}

// The response a department gives next (receipt, on_scene, completed), or null.
export function nextStage(cmd, p) {
  if (isDone(cmd, p)) return null;
  return cmd.requires.find((s) => ORDER[STAGE_STATE[s]] > ORDER[p.state]) || null;
}

// Stages whose deadline has passed for this department (marked by the hub, or by the clock).
export function overdueStages(cmd, p, nowUs) {
  const out = new Set(p.overdue || []);
  if (!isDone(cmd, p) && nowUs != null) {
    for (const s of cmd.requires) {
      if (ORDER[p.state] >= ORDER[STAGE_STATE[s]]) continue;
      if (cmd.issued_us + cmd.deadlines[s] * 1e6 <= nowUs) out.add(s);
    }
  }
  return [...out];
}

export class CommandStore {
  constructor() {
    this.commands = new Map();
    this.rebuilt = new Set(); // commands not in the welcome snapshot (closed): rebuilt from events
    this.folded = 0; // the newest seq folded by `fold`
  }

  load(list) {
    for (const c of list || []) this.put(c);
  }

  // A new welcome snapshot: its open commands replace ours; the others we hold (closed since)
  // are kept, and the replayed events bring them up to date.
  reload(list) {
    const held = [...this.commands.values()];
    this.commands.clear();
    this.load(list);
    for (const c of held) {
      if (this.commands.has(c.command_id)) continue;
      this.commands.set(c.command_id, c);
      this.rebuilt.add(c.command_id);
    }
  }

  // Fold an event from history or the live feed, once. Events up to `stateSeq` are already in
  // the snapshot for open commands; those of other (closed) commands rebuild them.
  fold(ev, stateSeq) {
    if (ev.seq <= this.folded) return null;
    this.folded = ev.seq;
    if (ev.seq > stateSeq) return this.apply(ev);
    const p = ev.payload || {};
    if (ev.kind === "command.issued") {
      if (this.commands.has(p.command_id)) return null;
      this.rebuilt.add(p.command_id);
      return this.apply(ev);
    }
    return ev.kind.startsWith("command.") && this.rebuilt.has(p.command_id) ? this.apply(ev) : null;
  }

  put(c) {
    const cmd = structuredClone(c);
    cmd.progress = cmd.progress || {};
    for (const p of Object.values(cmd.progress)) {
      p.overdue = p.overdue || [];
      p.times_us = p.times_us || {};
    }
    cmd.escalated = cmd.escalated || {};
    const old = this.commands.get(cmd.command_id);
    if (old) cmd.escalated = old.escalated;
    this.commands.set(cmd.command_id, cmd);
    return cmd;
  }

  // Fold one event; returns the command it touched (or null).
  apply(ev) {
    const k = ev.kind, p = ev.payload || {};
    if (!k.startsWith("command.")) return null;
    if (k === "command.issued") {
      const progress = {};
      for (const d of p.departments) progress[d] = { state: "issued", times_us: { issued: ev.ts_us }, overdue: [], reason: null };
      return this.put({ ...p, issued_us: ev.ts_us, seq: ev.seq, op: ev.op, progress });
    }
    const cmd = this.commands.get(p.command_id);
    if (!cmd) return null;
    if (EVENT_STATE[k]) {
      const prog = cmd.progress[p.dept];
      if (!prog) return null;
      const st = EVENT_STATE[k];
      if (prog.times_us[st] == null) {
        prog.state = st;
        prog.times_us[st] = ev.ts_us;
        if (p.reason) prog.reason = p.reason;
      }
    } else if (k === "command.overdue") {
      const prog = cmd.progress[p.dept];
      if (prog && !prog.overdue.includes(p.stage)) prog.overdue.push(p.stage);
    } else if (k === "command.cancelled") {
      for (const d of p.departments || []) {
        const prog = cmd.progress[d];
        if (prog && !isDone(cmd, prog)) {
          prog.state = "cancelled";
          prog.times_us.cancelled = ev.ts_us;
          prog.reason = p.reason;
        }
      }
    } else if (k === "command.escalated") {
      for (const d of p.departments || []) {
        cmd.escalated[d] = (cmd.escalated[d] || 0) + 1;
      }
    }
    return cmd;
  }

  list() {
    return [...this.commands.values()].sort((a, b) => a.seq - b.seq);
  }
}
