// The page's own media link, as the operator sees it: a header badge ("Video: connected",
// "Video: failed: ICE timeout · retry 3 in 4 s") and the same words for an overlay on the
// picture that is missing. Fed by RtcLink's onStatus; re-rendered every second for the countdown.

import { $ } from "./common.js";
import { onLangChange, t } from "./i18n.js";

const KNOWN = new Set(["ice_timeout", "ice_failed", "dtls_failed", "ice_disconnected", "no_ice_candidates",
  "no_local_candidates", "no_common_codec", "offer_timeout", "bad_sdp"]);

// "ICE timeout: ... (seen by this browser)" for a failed status, "" otherwise.
export function causeText(st) {
  if (!st || st.state !== "failed") return "";
  const cause = t(`media.cause.${KNOWN.has(st.cause) ? st.cause : "other"}`);
  const code = KNOWN.has(st.cause) ? "" : ` (${st.cause})`;
  return `${cause}${code} · ${t(`media.side.${st.side === "hub" ? "hub" : "browser"}`)}`;
}

export function retryText(st) {
  if (!st || st.state !== "failed") return "";
  if (st.retryAt == null) return "";
  const s = Math.max(0, Math.ceil((st.retryAt - Date.now()) / 1000));
  return s > 0 ? t("media.retryIn", { s, n: st.attempt + 1 }) : t("media.retrying", { n: st.attempt + 1 });
}

export class MediaStatus {
  // badge: the header element (#media); overlays: elements that show the failure on a picture
  constructor(badge, overlays = []) {
    this.badge = badge;
    this.overlays = overlays;
    this.st = null;
    setInterval(() => this.render(), 1000);
    onLangChange(() => this.render());
  }

  update(st) {
    this.st = { ...st };
    this.render();
  }

  render() {
    const st = this.st;
    if (!st) return;
    const b = this.badge;
    b.dataset.state = st.state;
    b.dataset.cause = st.cause || "";
    const failed = st.state === "failed";
    const text = failed ? `${t("media.failed")}: ${causeText(st)} · ${retryText(st)}` : t(`media.${st.state}`);
    $(".conn-text", b).removeAttribute("data-i18n");
    $(".conn-text", b).textContent = text;
    b.title = failed ? `${st.cause}: ${st.detail}` : "";
    for (const o of this.overlays) {
      o.hidden = !failed;
      o.textContent = failed ? `⚠ ${t("media.label")} ${t("media.failed")}: ${causeText(st)} — ${retryText(st)}` : "";
      o.title = failed ? `${st.cause}: ${st.detail}` : "";
    }
  }
}
