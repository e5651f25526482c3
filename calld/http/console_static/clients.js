// Clients: list and search, create, edit, and each client's call history.
import { get, patch, post } from "./api.js";
import { callTable } from "./calls.js";
import { field, h, messageLine, say } from "./dom.js";
import { actionsAllowed } from "./session.js";

const CLIENTS = "/api/clients/";

export function render(root, ctx) {
  const run = ctx.id ? renderOne(root, ctx) : renderList(root, ctx);
  run.catch((error) => root.append(h("p", { class: "message error", role: "alert", text: error.message })));
  return null;
}

function clientForm(client, onSaved) {
  const line = messageLine();
  const input = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
  const name = input("name", client?.name, { required: true, maxlength: 200 });
  const numbers = input("phone_numbers", (client?.phone_numbers || []).join(", "), { inputmode: "tel" });
  const email = input("email", client?.email, { type: "email" });
  const company = input("company", client?.company);
  const notes = h("textarea", { name: "notes", rows: 2 });
  notes.value = client?.notes || "";
  const form = h("form", { class: "grid-form", "aria-label": client ? "Edit client" : "New client" },
    field("Name", name), field("Phone numbers", numbers, "separate with commas"), field("Email", email),
    field("Company", company), field("Notes", notes),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, client ? "Save" : "Create client")), line);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: name.value.trim(),
      phone_numbers: numbers.value.split(",").map((n) => n.trim()).filter(Boolean),
      email: email.value.trim() || null,
      company: company.value.trim() || null,
      notes: notes.value,
    };
    try {
      const saved = client ? await patch(`${CLIENTS}${client.id}/`, body) : await post(CLIENTS, body);
      say(line, client ? "Saved." : `Created ${saved.name}.`);
      onSaved?.(saved);
    } catch (error) {
      say(line, error.message, false);
    }
  });
  return form;
}

async function renderList(root, ctx) {
  const search = ctx.params.get("search") || "";
  const box = h("input", { type: "search", name: "search", value: search });
  const form = h("form", { class: "inline-form", role: "search" }, field("Search clients", box),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = box.value.trim() ? `#/clients?search=${encodeURIComponent(box.value.trim())}` : "#/clients";
  });
  root.append(h("h1", { text: "Clients" }), form);
  if (actionsAllowed(ctx.scope)) {
    root.append(h("details", { class: "card" }, h("summary", { text: "New client" }),
      clientForm(null, (saved) => { location.hash = `#/clients/${saved.id}`; })));
  }
  const page = await get(CLIENTS, { search: search || undefined, limit: 200 });
  root.append(h("table", { class: "clients" },
    h("thead", null, h("tr", null, ["Name", "Phone numbers", "Email", "Company"].map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", null, page.results.map((client) => h("tr", { "data-client": client.id },
      h("td", null, h("a", { href: `#/clients/${client.id}`, class: "client-name", text: client.name })),
      h("td", { text: client.phone_numbers.join(", ") }),
      h("td", { text: client.email || "" }),
      h("td", { text: client.company || "" }))))),
  h("p", { class: "muted", text: `${page.count} client${page.count === 1 ? "" : "s"}.` }));
}

async function renderOne(root, ctx) {
  const client = await get(`${CLIENTS}${ctx.id}/`);
  root.append(h("p", null, h("a", { href: "#/clients", text: "← Clients" })),
    h("h1", { class: "client-name", text: client.name }));
  if (actionsAllowed(ctx.scope)) {
    const line = messageLine();
    root.append(h("section", { class: "card" }, h("h2", { text: "Edit" }),
      clientForm(client, (saved) => { root.querySelector("h1").textContent = saved.name; })),
    h("p", null, h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const answer = await post(`${CLIENTS}${client.id}/link_calls/`);
        say(line, `Linked ${answer.linked} past call${answer.linked === 1 ? "" : "s"} from or to this client's numbers.`);
      } catch (error) { say(line, error.message, false); }
    } }, "Link past calls"), line));
  } else {
    root.append(h("dl", { class: "facts" },
      [["Phone numbers", client.phone_numbers.join(", ")], ["Email", client.email], ["Company", client.company], ["Notes", client.notes]]
        .filter(([, v]) => v).map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
  }
  const history = await get(`${CLIENTS}${client.id}/call_history/`, { limit: 50 });
  root.append(h("h2", { text: `Call history (${history.count})` }),
    callTable(history.results, new Map([[client.id, client.name]]), "-started_at", null));
}
