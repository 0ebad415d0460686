// Type-ahead for command targets: type part of a department's or group's name (Chinese or
// English), its id or its wall number; ↑/↓ choose, Enter adds, Backspace on an empty box
// removes the last target, Tab (or Enter on an empty box) moves on to the command text.

import { el } from "./common.js";
import { t } from "./i18n.js";

const MAX_SHOWN = 8;

// Rank an option against the query: 0 exact, 1 prefix, 2 substring, null no match.
export function rank(opt, q) {
  let best = null;
  for (const key of opt.keys) {
    const k = String(key || "").toLowerCase();
    if (!k) continue;
    const r = k === q ? 0 : k.startsWith(q) ? 1 : k.includes(q) ? 2 : null;
    if (r != null && (best == null || r < best)) best = r;
  }
  return best;
}

export class TargetFinder {
  // opts: input, list (<ol>), options() -> [{kind, id, label, sub, keys}], onPick(opt), onBack(), onDone(), onHelp()
  constructor(opts) {
    this.o = opts;
    this.matches = [];
    this.active = 0;
    const input = opts.input;
    input.addEventListener("input", () => { this.active = 0; this.render(); });
    // closed a moment after the box loses focus (a click on a suggestion lands first), unless
    // the focus has come back meanwhile (the keys help closed, say) and typing goes on
    input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) this.close(); }, 150));
    input.addEventListener("keydown", (e) => this.key(e));
  }

  query() {
    return this.o.input.value.trim().toLowerCase();
  }

  render() {
    const q = this.query();
    const list = this.o.list;
    if (!q) { this.close(); return; }
    this.matches = this.o.options()
      .map((opt, i) => ({ opt, r: rank(opt, q), i }))
      .filter((m) => m.r != null)
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .slice(0, MAX_SHOWN)
      .map((m) => m.opt);
    if (this.active >= this.matches.length) this.active = 0;
    list.replaceChildren(...(this.matches.length ? this.matches.map((opt, i) => el("li", {
      role: "option", id: `suggest-${i}`, class: `suggest-item ${opt.kind}${i === this.active ? " active" : ""}`,
      "aria-selected": i === this.active ? "true" : "false", dataset: { kind: opt.kind, id: opt.id },
      onmousedown: (e) => { e.preventDefault(); this.pick(opt); },
    }, el("span", { class: "suggest-label" }, opt.label), opt.sub ? el("span", { class: "suggest-sub" }, opt.sub) : null))
      : [el("li", { class: "suggest-none" }, t("compose.noMatch"))]));
    list.hidden = false;
    this.o.input.setAttribute("aria-expanded", "true");
    if (this.matches.length) this.o.input.setAttribute("aria-activedescendant", `suggest-${this.active}`);
  }

  close() {
    this.o.list.hidden = true;
    this.o.list.replaceChildren(); // nothing stale left behind (in another language, say)
    this.o.input.setAttribute("aria-expanded", "false");
    this.o.input.removeAttribute("aria-activedescendant");
  }

  pick(opt) {
    this.o.onPick(opt);
    this.o.input.value = "";
    this.close();
    this.o.input.focus();
  }

  key(e) {
    if (e.isComposing) return;
    const q = this.query();
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!this.matches.length) return;
      e.preventDefault();
      const n = this.matches.length;
      this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.render();
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (!q) { this.o.onDone(); return; }
      if (this.matches[this.active]) this.pick(this.matches[this.active]);
    } else if (e.key === "Tab" && !e.shiftKey && q && this.matches[this.active]) {
      this.pick(this.matches[this.active]); // then the default Tab moves on to the text
      e.preventDefault();
      this.o.onDone();
    } else if (e.key === "?" && !this.o.input.value && this.o.onHelp) {
      e.preventDefault(); // no target has "?" in it: the keys help instead
      this.o.onHelp();
    } else if (e.key === "Backspace" && !this.o.input.value) {
      this.o.onBack();
    } else if (e.key === "Escape" && this.o.input.value) {
      e.stopPropagation();
      this.o.input.value = "";
      this.close();
    }
  }
}
