// Page start-up shared by the consoles: token from the URL (or the paste form), a clear
// message for a bad token, the header (connection status, language switch), formatting.

import { checkToken, HubSocket } from "./ws.js";
import { applyI18n, initLangButton, onLangChange, t } from "./i18n.js";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  // what people typed in Chinese keeps Chinese glyphs on an English page
  if (e.classList.contains("user-text") && HAN.test(e.textContent)) e.lang = "zh-CN";
  return e;
}

const HAN = /\p{Script=Han}/u;

export function pad(n) { return String(n).padStart(2, "0"); }

// hub time (µs since epoch) -> local HH:MM:SS
export function clock(us) {
  if (us == null) return "";
  const d = new Date(us / 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function clockMs(us) {
  if (us == null) return "";
  const d = new Date(us / 1000);
  return `${clock(us)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

// seconds -> "12.3s" / "4:05" / "1:02:03"
export function dur(s) {
  if (s == null || !isFinite(s)) return "";
  if (s < 0) s = 0;
  if (s < 60) return `${s.toFixed(1)}${t("sec")}`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

// A number for display: rounded to `digits` decimals ("-" when missing).
export function num(x, digits = 0) {
  if (x == null || !isFinite(x)) return "-";
  return Number(x).toFixed(digits);
}

// The roster's department ids in wall order -> index (cells and tiles sort by it).
export function wallOrder(depts) {
  return Object.fromEntries(depts.map((d, i) => [d.id, i]));
}

// Toasts whose text is a function: worded again when the operator switches language.
const liveToasts = new Map(); // element -> () => text
onLangChange(() => { for (const [item, text] of liveToasts) item.textContent = text(); });

// message: a string, or a function giving it in the current language
export function toast(message, kind = "info") {
  let box = $("#toasts");
  if (!box) {
    box = el("div", { id: "toasts" });
    document.body.append(box);
  }
  const text = typeof message === "function" ? message : null;
  const item = el("div", { class: `toast ${kind}`, role: "status" }, text ? text() : message);
  if (text) liveToasts.set(item, text);
  box.append(item);
  setTimeout(() => { item.remove(); liveToasts.delete(item); }, kind === "error" ? 8000 : 4000);
}

// a request the hub refused: its code and message, after a word in the operator's language
export function toastError(e) {
  toast(() => `${t("err.generic")}: ${e.code || ""} ${e.message}`, "error");
}

function tokenFromUrl() {
  return new URLSearchParams(location.search).get("token") || "";
}

export function showTokenGate(message, isError) {
  const gate = $("#token-gate");
  gate.hidden = false;
  document.body.classList.add("gated");
  const msg = $("#token-message");
  msg.textContent = message;
  msg.className = isError ? "gate-message error" : "gate-message";
  $("#app").hidden = true;
  $("#token-form").onsubmit = (ev) => {
    ev.preventDefault();
    const tok = $("#token-input").value.trim();
    if (!tok) return;
    const url = new URL(location.href);
    url.searchParams.set("token", tok);
    location.href = url.toString();
  };
}

// Verify the token, open the socket. Returns {sock, state} or null when the page cannot start.
// handlers as for HubSocket; role: the page's role (a token of another role is refused).
export async function boot(role, handlers) {
  initLangButton($("#lang"));
  // The CJK web font (4 MB) is fetched and decoded now, not in the frame that first needs it
  // (the first command's card: its Chinese countdowns fall back to it), which it held ~0.3 s.
  document.fonts.load('16px "CJK"', "签").catch(() => {});
  const token = tokenFromUrl();
  if (!token) {
    showTokenGate(t("token.missing"), false);
    return null;
  }
  const check = await checkToken(token);
  if (!check.ok) {
    showTokenGate(`${t("token.bad")} (${check.code}: ${check.message})`, true);
    return null;
  }
  $("#token-gate").hidden = true;
  document.body.classList.remove("gated");
  $("#app").hidden = false;
  const status = $("#conn");
  const sock = new HubSocket(token, {
    ...handlers,
    onStatus: (s, detail) => {
      status.dataset.state = s;
      const text = $(".conn-text", status);
      text.dataset.i18n = `conn.${s}`;
      text.textContent = t(`conn.${s}`);
      document.body.dataset.conn = s;
      let banner = $("#offline-banner");
      if (!banner) {
        banner = el("div", { id: "offline-banner", class: "offline-banner", role: "alert" });
        $("#app").before(banner);
      }
      banner.hidden = s === "online" || s === "connecting";
      banner.dataset.i18n = s === "auth" ? "conn.auth" : "conn.offlineLong";
      banner.textContent = t(banner.dataset.i18n);
      if (handlers.onStatus) handlers.onStatus(s, detail);
    },
    onWelcome: (f, reconnected) => {
      if (f.you.role !== role && !(role === "evaluator" && f.you.role === "observer")) {
        sock.close();
        showTokenGate(t("token.wrongRole", { role: f.you.role }), true);
        return;
      }
      handlers.onWelcome(f, reconnected);
    },
    onAuthFailed: (info) => showTokenGate(`${t("token.bad")} (${info.code}: ${info.message})`, true),
  });
  sock.connect();
  applyI18n(document);
  return { sock, state: check.state, token };
}

// Which department ids a list of targets (ids, groups, "all") names, by the roster.
export function resolveTargets(targets, departments, groups) {
  const out = new Set();
  for (const tgt of targets) {
    if (tgt === "all") departments.forEach((d) => out.add(d.id));
    else if (groups[tgt]) groups[tgt].forEach((d) => out.add(d));
    else out.add(tgt);
  }
  return [...out];
}
