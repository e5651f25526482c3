// The live board: calls in progress, pushed over /api/ws (no polling), with running timers.
import { actionsAllowed } from "./session.js";
import { get, liveSocketUrl, serverClock } from "./api.js";
import { callControls, placeCallForm } from "./actions.js";
import { badge, duration, h, messageLine, say } from "./dom.js";
import { LIVE_STATUSES, isLive } from "./vocabulary.js";

const RECONNECT_MS = 2000;
const FINISHED_KEPT = 2000;

/** What a live call's timer shows: the phase it is in and since when. */
export function phase(call) {
  if (call.status === "on_hold") return { label: "on hold", since: call.on_hold_since || call.answered_at };
  if (call.answered_at) return { label: "talking", since: call.answered_at };
  if (call.status === "ringing") return { label: "ringing", since: call.ringing_at || call.started_at };
  return { label: "calling", since: call.started_at };
}

export function render(root, ctx) {
  const calls = new Map();
  const rows = new Map();
  const lines = new Map();
  // Calls seen ending. An ended call never goes live again, so an older answer that arrives after
  // the push of its end (the hang-up button's own reply, a snapshot in flight) must not bring it back.
  const finished = new Set();
  const canControl = actionsAllowed(ctx.scope);
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", text: "No calls in progress." });
  const connection = messageLine();
  const table = h("table", { class: "board", "aria-label": "Calls in progress" },
    h("thead", null, h("tr", null,
      ["Parties", "Direction", "Status", "Time", "Recording", canControl ? "Control" : null]
        .filter(Boolean).map((name) => h("th", { scope: "col", text: name })))),
    tbody);
  root.append(
    h("h1", { text: "Live calls" }),
    canControl ? placeCallForm() : null,
    connection, table, empty);

  function update(call) {
    if (finished.has(call.id)) return;
    const known = calls.get(call.id);
    if (known && Date.parse(known.updated_at) > Date.parse(call.updated_at)) return;
    if (!isLive(call.status)) return remove(call.id);
    calls.set(call.id, call);
    const row = buildRow(call);
    const old = rows.get(call.id);
    if (old) old.replaceWith(row); else tbody.prepend(row);
    rows.set(call.id, row);
    empty.hidden = calls.size > 0;
  }

  function remove(id) {
    finished.add(id);
    if (finished.size > FINISHED_KEPT) finished.delete(finished.values().next().value);
    calls.delete(id);
    rows.get(id)?.remove();
    rows.delete(id);
    lines.delete(id);
    empty.hidden = calls.size > 0;
  }

  function buildRow(call) {
    const timer = h("span", { class: "timer" });
    // One answer line per call, moved into each rebuilt row: an action's answer may arrive after
    // the push that rebuilt the row.
    let line = lines.get(call.id);
    if (!line) {
      line = h("p", { class: "message", role: "status", "aria-live": "polite" });
      lines.set(call.id, line);
    }
    const row = h("tr", { "data-call": call.id, "data-status": call.status },
      h("td", null,
        h("a", { href: `#/calls/${call.id}`, class: "parties" },
          h("span", { class: "party", text: call.caller_number }), " → ",
          h("span", { class: "party", text: call.recipient_number })),
        call.transfer_target ? h("div", { class: "muted", text: `transfer to ${call.transfer_target}` }) : null),
      h("td", { text: call.direction }),
      h("td", null, badge(call.status)),
      h("td", null, timer),
      h("td", null, call.is_recording ? h("span", { class: "rec", title: "recording" }, "● REC") : ""),
      canControl ? h("td", null, callControls(call, line, update), line) : null);
    tick(row, call);
    return row;
  }

  function tick(row, call) {
    const { label, since } = phase(call);
    const seconds = since ? (serverClock.now() - Date.parse(since)) / 1000 : null;
    row.querySelector(".timer").textContent = `${label} ${duration(seconds)}`;
  }

  async function snapshot() {
    const page = await get("/api/call-logs/", { status: LIVE_STATUSES.join(","), limit: 200 });
    for (const call of page.results) if (!calls.has(call.id)) update(call);
  }

  let socket = null;
  let stopped = false;
  let retry = null;
  function connect() {
    socket = new WebSocket(liveSocketUrl());
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === "ready") {
        say(connection, "Live: connected.");
        connection.dataset.state = "connected";
        snapshot().catch((error) => say(connection, `Loading the calls in progress: ${error.message}`, false));
      } else if (message.type === "call.deleted") {
        remove(message.call.id);
      } else if (message.call) {
        update(message.call);
      }
    });
    socket.addEventListener("close", (event) => {
      connection.dataset.state = "closed";
      if (stopped) return;
      const reason = event.reason ? `: ${event.reason}` : "";
      say(connection, `Live updates interrupted (${event.code}${reason}); reconnecting…`, false);
      retry = setTimeout(connect, RECONNECT_MS);
    });
  }
  connect();
  const timers = setInterval(() => {
    for (const [id, row] of rows) tick(row, calls.get(id));
  }, 1000);
  empty.hidden = false;
  return () => {
    stopped = true;
    clearInterval(timers);
    clearTimeout(retry);
    socket?.close(1000, "view closed");
  };
}

