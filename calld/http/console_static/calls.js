// The call log (every filter the API documents, sortable, paged) and a call's detail page.
import { get, openapi, patch, token } from "./api.js";
import { downloadButton } from "./download.js";
import { callControls } from "./actions.js";
import { badge, duration, field, h, messageLine, say, when, words } from "./dom.js";
import { actionsAllowed } from "./session.js";
import { isLive } from "./vocabulary.js";

const CALLS = "/api/call-logs/";
const PAGING = new Set(["limit", "offset", "ordering"]);
const SORTABLE = { started_at: "Started", duration_seconds: "Talk time" };

export function render(root, ctx) {
  if (ctx.id) return renderDetail(root, ctx);
  renderList(root, ctx).catch((error) => root.append(h("p", { class: "message error", role: "alert", text: error.message })));
  return null;
}

// --- the list --------------------------------------------------------------------------------

/** The filters GET /api/call-logs/ takes, read from the OpenAPI document (new ones appear by themselves). */
async function filterParameters() {
  const spec = await openapi();
  const op = spec.paths[CALLS]?.get;
  return (op?.parameters || []).filter((p) => p.in === "query" && !PAGING.has(p.name));
}

function isDate(schema) {
  return schema.format === "date-time" || (schema.anyOf || []).some((s) => s.format === "date-time");
}

function control(param, params, clientNames) {
  const schema = param.schema || {};
  const name = param.name;
  const label = words(name);
  if (schema.type === "array" && schema.items?.enum) {
    const chosen = new Set(params.getAll(name).flatMap((v) => v.split(",")));
    return h("fieldset", { class: "choices", "data-filter": name },
      h("legend", { text: label }),
      schema.items.enum.map((value) => h("label", { class: "inline" },
        h("input", { type: "checkbox", name, value, checked: chosen.has(value) }), words(value))));
  }
  if (schema.enum) {
    const select = h("select", { name, "data-filter": name },
      h("option", { value: "", text: "any" }),
      schema.enum.filter((v) => v !== null).map((v) => h("option", { value: v, text: words(v), selected: params.get(name) === v })));
    return field(label, select);
  }
  if (name === "client") {
    const select = h("select", { name, "data-filter": name }, h("option", { value: "", text: "any" }),
      [...clientNames].map(([id, clientName]) => h("option", { value: id, text: clientName, selected: params.get(name) === id })));
    return field(label, select);
  }
  if (isDate(schema)) {
    const value = params.get(name) ? toLocalInput(params.get(name)) : "";
    return field(label, h("input", { type: "datetime-local", name, value, "data-filter": name }));
  }
  return field(label, h("input", { type: "search", name, value: params.get(name) || "", "data-filter": name }),
    param.description);
}

function toLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function formParams(form, filters) {
  const out = new URLSearchParams();
  for (const param of filters) {
    const schema = param.schema || {};
    if (schema.type === "array" && schema.items?.enum) {  // checkboxes; a free array (tag) is a text box
      const values = [...form.querySelectorAll(`input[name="${param.name}"]:checked`)].map((i) => i.value);
      if (values.length) out.set(param.name, values.join(","));
      continue;
    }
    const input = form.elements.namedItem(param.name);
    const value = input?.value?.trim();
    if (!value) continue;
    out.set(param.name, isDate(schema) ? new Date(value).toISOString() : value);
  }
  return out;
}

/** The call list's CSV export, if this calld has one: a GET under /api/call-logs/ answering text/csv. */
async function csvExportPath() {
  const spec = await openapi();
  const found = Object.entries(spec.paths).find(([path, item]) => path.startsWith(CALLS) && !path.includes("{")
    && item.get?.responses?.["200"]?.content?.["text/csv"]);
  return found ? found[0] : null;
}

export async function clientDirectory() {
  const page = await get("/api/clients/", { limit: 200 });
  return new Map(page.results.map((c) => [c.id, c.name]));
}

async function renderList(root, ctx) {
  const params = ctx.params;
  root.append(h("h1", { text: "Call log" }));
  const [filters, clientNames, csvPath] = await Promise.all([filterParameters(), clientDirectory(), csvExportPath()]);
  const form = h("form", { class: "filters", "aria-label": "Filters" },
    filters.map((p) => control(p, params, clientNames)),
    h("div", { class: "buttons" },
      h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "reset", class: "secondary" }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = formParams(form, filters);
    if (params.get("ordering")) next.set("ordering", params.get("ordering"));
    if (params.get("limit")) next.set("limit", params.get("limit"));
    location.hash = `#/calls?${next}`;
  });
  form.addEventListener("reset", () => setTimeout(() => { location.hash = "#/calls"; }));
  const status = messageLine();
  root.append(form, status);

  const query = {};
  for (const [key, value] of params) query[key] = value;
  let page;
  try {
    page = await get(CALLS, query);
  } catch (error) {
    say(status, error.message, false);
    return;
  }
  const limit = Number(params.get("limit") || 50);
  const offset = Number(params.get("offset") || 0);
  const ordering = params.get("ordering") || "-started_at";
  if (csvPath) {
    const selection = { ...query };
    delete selection.limit;
    delete selection.offset;
    root.append(downloadButton("Download CSV", csvPath, selection, status, "calls.csv"));
  }
  root.append(callTable(page.results, clientNames, ordering, params), pager(page, limit, offset, params));
  say(status, page.count ? `${page.count} call${page.count === 1 ? "" : "s"} match.` : "No calls match.");
}

function withParams(params, changes) {
  const next = new URLSearchParams(params);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) next.delete(key); else next.set(key, String(value));
  }
  return `#/calls?${next}`;
}

export function callTable(calls, clientNames, ordering, params) {
  const header = (label, key) => {
    if (!key || !params) return h("th", { scope: "col", text: label });
    const current = ordering.replace(/^-/, "") === key;
    const descending = current && ordering.startsWith("-");
    const sort = current ? (descending ? "descending" : "ascending") : "none";
    const next = current && !descending ? `-${key}` : key;
    return h("th", { scope: "col", "aria-sort": sort },
      h("a", { href: withParams(params, { ordering: current ? next : `-${key}`, offset: null }), class: "sort" },
        label, current ? (descending ? " ▼" : " ▲") : ""));
  };
  return h("table", { class: "calls" },
    h("thead", null, h("tr", null,
      header("Started", "started_at"), header("Direction"), header("Status"), header("From"), header("To"),
      header("Client"), header("Talk time", "duration_seconds"), header("Recording"))),
    h("tbody", null, calls.map((call) => h("tr", { "data-call": call.id },
      h("td", null, h("a", { href: `#/calls/${call.id}`, text: when(call.started_at) })),
      h("td", { text: call.direction }),
      h("td", null, badge(call.status)),
      h("td", { text: call.caller_number }),
      h("td", { text: call.recipient_number }),
      h("td", null, call.client ? h("a", { href: `#/clients/${call.client}`, text: clientNames?.get(call.client) || "client" }) : ""),
      h("td", { class: "n", text: duration(call.duration_seconds) }),
      h("td", { text: call.is_recording ? "● recording" : "" })))));
}

function pager(page, limit, offset, params) {
  const last = Math.min(offset + limit, page.count);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("span", { text: page.count ? `${offset + 1}–${last} of ${page.count}` : "0 of 0" }),
    page.previous ? h("a", { href: withParams(params, { offset: Math.max(0, offset - limit), limit }), rel: "prev" }, "← Previous") : null,
    page.next ? h("a", { href: withParams(params, { offset: offset + limit, limit }), rel: "next" }, "Next →") : null,
    field("Per page", h("select", { onchange: (e) => { location.hash = withParams(params, { limit: e.target.value, offset: null }); } },
      [25, 50, 100, 200].map((n) => h("option", { value: n, text: n, selected: n === limit })))));
}

// --- one call --------------------------------------------------------------------------------

function renderDetail(root, ctx) {
  const status = messageLine();
  root.append(h("p", null, h("a", { href: "#/calls", text: "← Call log" })), status);
  const body = h("div", { class: "detail" });
  root.append(body);
  const load = async () => {
    try {
      const call = await get(`${CALLS}${ctx.id}/`);
      let clientName = null;
      if (call.client) clientName = (await get(`/api/clients/${call.client}/`).catch(() => null))?.name;
      body.replaceChildren(...detail(call, clientName, ctx, load));
    } catch (error) {
      say(status, error.message, false);
    }
  };
  load();
  return null;
}

function metadataText(metadata) {
  return Object.entries(metadata || {}).map(([k, v]) => `${words(k)}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
}

function definitionList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", { text: k }), h("dd", null, v)]));
}

function detail(call, clientName, ctx, reload) {
  const ending = [...call.events].reverse().find((e) => ["ended", "failed"].includes(e.event_type));
  const quality = call.events.filter((e) => e.event_type === "quality_change");
  const parts = [
    h("h1", null, h("span", { class: "party", text: call.caller_number }), " → ",
      h("span", { class: "party", text: call.recipient_number }), " ", badge(call.status)),
  ];
  if (isLive(call.status) && actionsAllowed(ctx.scope)) {
    const line = messageLine();
    parts.push(h("section", { class: "card" }, h("h2", { text: "Control" }), callControls(call, line, reload), line));
  }
  parts.push(h("section", { class: "card" }, h("h2", { text: "Participants" }), definitionList([
    ["From", call.caller_number], ["To", call.recipient_number], ["Direction", call.direction],
    ["Type", call.call_type],
    ["Client", call.client ? h("a", { href: `#/clients/${call.client}`, text: clientName || call.client }) : null],
    ["Transferred to", call.transfer_target], ["SIP Call-ID", call.sip_call_id], ["Switch", call.switch],
  ])));
  parts.push(h("section", { class: "card" }, h("h2", { text: "Times and outcome" }), definitionList([
    ["Started", when(call.started_at)], ["Answered", when(call.answered_at)], ["Ended", when(call.ended_at)],
    ["Ringing", duration(call.ring_seconds)], ["Talk time", duration(call.duration_seconds)],
    ["On hold", call.hold_seconds ? duration(call.hold_seconds) : null],
    ["Cause", ending ? `${words(ending.event_type)}${ending.metadata && Object.keys(ending.metadata).length ? ` — ${metadataText(ending.metadata)}` : ""}` : null],
    ["Quality score", call.call_quality_score === null ? null : String(call.call_quality_score)],
    ["Quality reports", quality.length ? quality.map((e) => metadataText(e.metadata)).join(" | ") : null],
  ])));
  parts.push(notesSection(call, ctx, reload));
  parts.push(h("section", { class: "card" }, h("h2", { text: "Recordings" }),
    call.recordings.length ? call.recordings.map(recording) : h("p", { class: "empty", text: "No recordings." })));
  parts.push(h("section", { class: "card" }, h("h2", { text: "Timeline" }),
    h("ol", { class: "timeline" }, call.events.map((e) => h("li", null,
      h("time", { datetime: e.timestamp, text: when(e.timestamp) }), " ",
      h("strong", { text: words(e.event_type) }), h("span", { class: "muted", text: ` (${e.source})` }),
      Object.keys(e.metadata || {}).length ? h("div", { class: "meta", text: metadataText(e.metadata) }) : null)))));
  return parts;
}

function notesSection(call, ctx, reload) {
  if (!actionsAllowed(ctx.scope)) {
    return h("section", { class: "card" }, h("h2", { text: "Notes" }),
      h("p", { class: "notes", text: call.notes || "No notes." }));
  }
  const line = messageLine();
  const notes = h("textarea", { name: "notes", rows: 3 });
  notes.value = call.notes || "";
  const score = h("input", { type: "number", name: "call_quality_score", min: 0, max: 5, step: 0.1,
    value: call.call_quality_score ?? "" });
  const form = h("form", { class: "notes-form" }, field("Notes", notes), field("Quality score (0–5)", score),
    h("button", { type: "submit" }, "Save"), line);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { notes: notes.value };
    body.call_quality_score = score.value === "" ? null : Number(score.value);
    try {
      await patch(`${CALLS}${call.id}/`, body);
      say(line, "Saved.");
    } catch (error) {
      say(line, error.message, false);
    }
  });
  return h("section", { class: "card" }, h("h2", { text: "Notes and score" }), form);
}

function playable(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function recording(rec) {
  const source = rec.external_url ? playable(rec.external_url) : null;
  const here = !source && rec.local_path && rec.status === "completed";
  return h("div", { class: "recording", "data-recording": rec.id },
    h("p", null, badge(rec.status), " ",
      [rec.format, rec.duration_seconds ? duration(rec.duration_seconds) : null,
        rec.file_size ? `${Math.round(rec.file_size / 1024)} KB` : null].filter(Boolean).join(" · ")),
    source
      ? h("audio", { controls: true, preload: "metadata", src: source, "aria-label": "Recording" })
      : here ? localPlayer(rec)
        : h("p", { class: "muted", text: rec.local_path ? `Stored at ${rec.local_path} on the calld host.` : "No file yet." }),
    rec.transcript ? h("blockquote", { class: "transcript", text: rec.transcript }) : null);
}

/** A recording whose file lies on calld's host: its media endpoint needs the token, which an
 * <audio src> cannot send, so the file is fetched with it and played from memory. */
function localPlayer(rec) {
  const audio = h("audio", { controls: true, preload: "metadata", "aria-label": "Recording" });
  const box = h("div", { class: "local-recording" }, audio);
  (async () => {
    const path = `${CALLS}${rec.call}/recordings/${rec.id}/media/`;
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (!response.ok) throw new Error(`Stored at ${rec.local_path}: not on this calld's host (${response.status}).`);
    audio.src = URL.createObjectURL(await response.blob());
  })().catch((error) => box.replaceChildren(h("p", { class: "muted", text: error.message })));
  return box;
}
