// SIP configurations (admin): list, create, set the default, test the connection, WebRTC settings.
import { get, post } from "./api.js";
import { field, h, messageLine, say } from "./dom.js";

const BASE = "/api/sip-configurations/";

function probeWords(result) {
  if (result.reachable) {
    const code = result.status_code ? ` (SIP ${result.status_code})` : "";
    return `Reachable: ${result.target} over ${result.transport} answered in ${result.latency_ms} ms${code}.`;
  }
  return `Not reachable: ${result.target} over ${result.transport} — ${result.error || "no answer"}.`;
}

function row(config, reload) {
  const line = messageLine();
  const out = h("pre", { class: "webrtc", hidden: true });
  const act = (label, fn) => h("button", { type: "button", class: "secondary", onclick: async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try { await fn(); } catch (error) { say(line, `${label}: ${error.message}`, false); }
    button.disabled = false;
  } }, label);
  return h("tr", { "data-sip": config.id },
    h("td", { text: config.name }),
    h("td", { text: `${config.server}:${config.port} (${config.transport})` }),
    h("td", { text: config.username }),
    h("td", { text: config.is_default ? "default" : "" }),
    h("td", { text: config.active ? "active" : "inactive" }),
    h("td", null,
      config.is_default ? null : act("Set default", async () => { await post(`${BASE}${config.id}/set_default/`); reload(); }),
      act("Test connection", async () => {
        say(line, "Probing…");
        const result = await post(`${BASE}${config.id}/test_connection/`);
        say(line, probeWords(result), result.reachable);
      }),
      act("WebRTC config", async () => {
        const settings = await get(`${BASE}${config.id}/webrtc_config/`);
        out.textContent = JSON.stringify(settings, null, 2);
        out.hidden = false;
      }),
      line, out));
}

function createForm(reload) {
  const line = messageLine();
  const name = h("input", { name: "name", required: true });
  const server = h("input", { name: "server", required: true, placeholder: "sip.example.com" });
  const port = h("input", { name: "port", type: "number", min: 1, max: 65535, placeholder: "default for the transport" });
  const transport = h("select", { name: "transport" }, ["udp", "tcp", "tls", "ws", "wss"].map((t) => h("option", { value: t, text: t })));
  const username = h("input", { name: "username", required: true });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "new-password" });
  const websocket = h("input", { name: "websocket_url", placeholder: "wss://…" });
  const form = h("form", { class: "grid-form", "aria-label": "New SIP configuration" },
    field("Name", name), field("Server", server), field("Port", port), field("Transport", transport),
    field("Username", username), field("Secret", secret), field("WebSocket URL", websocket),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Create")), line);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), server: server.value.trim(), username: username.value.trim(), transport: transport.value };
    if (port.value) body.port = Number(port.value);
    if (secret.value) body.secret = secret.value;
    if (websocket.value.trim()) body.websocket_url = websocket.value.trim();
    try {
      const created = await post(BASE, body);
      say(line, `Created ${created.name}.`);
      reload();
    } catch (error) {
      say(line, error.message, false);
    }
  });
  return form;
}

export function render(root) {
  const table = h("tbody");
  const status = messageLine();
  const reload = async () => {
    try {
      const page = await get(BASE, { limit: 200 });
      table.replaceChildren(...page.results.map((c) => row(c, reload)));
      say(status, `${page.count} configuration${page.count === 1 ? "" : "s"}.`);
    } catch (error) {
      say(status, error.message, false);
    }
  };
  root.append(h("h1", { text: "SIP configurations" }), status,
    h("table", { class: "sip" }, h("thead", null, h("tr", null,
      ["Name", "Server", "Username", "Default", "Active", "Actions"].map((c) => h("th", { scope: "col", text: c })))), table),
    h("details", { class: "card" }, h("summary", { text: "New SIP configuration" }), createForm(reload)));
  reload();
  return null;
}
