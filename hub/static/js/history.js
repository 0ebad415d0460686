// The log folded into a page's command store, board and field reports: first what happened
// before the page loaded (the command, report and snapshot events of the running operation, or
// the latest events when none runs, from GET /api/events, for roles that read the whole log),
// so closed commands and earlier reports are there after a reload; then each live event.
// Bounded: at most MAX_PAGES pages of PAGE events.

const PAGE = 5000;
const MAX_PAGES = 8;
const WANTED = (kind) => kind.startsWith("command.") || kind === "report.field" || kind === "media.snapshot";

// Calls onEvent(ev) for each wanted event with seq <= upTo, oldest first; resolves when done.
export async function loadHistory(token, { op, upTo }, onEvent) {
  let after = op ? 0 : Math.max(0, upTo - PAGE);
  for (let page = 0; page < MAX_PAGES && after < upTo; page += 1) {
    const q = new URLSearchParams({ after: String(after), limit: String(PAGE), ...(op ? { op } : {}) });
    let body;
    try {
      const resp = await fetch(`/api/events?${q}`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
      if (!resp.ok) return;
      body = await resp.json();
    } catch (_) { return; }
    for (const ev of body.events) {
      if (ev.seq > upTo) return;
      if (WANTED(ev.kind)) onEvent(ev);
    }
    if (!body.events.length || body.next <= after) return;
    after = body.next;
  }
}

// One event into the store, the board and the report panel (history or live); `quiet`: fold
// only, the caller draws once at the end.
export function foldEvent(ev, stateSeq, { store, board, reports, quiet = false }) {
  const cmd = store.fold(ev, stateSeq);
  if (cmd && !quiet) board.update(cmd, ev.kind);
  if (board.note(ev) && !quiet) board.tick();
  reports.add(ev, !quiet);
}

// At the first welcome: the history up to the snapshot's head (the caller then draws).
export async function restore(token, state, parts) {
  await loadHistory(token, { op: state.operation?.id, upTo: state.head.seq },
    (ev) => foldEvent(ev, state.head.seq, { ...parts, quiet: true }));
}
