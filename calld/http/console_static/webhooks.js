// Outbound webhook subscriptions (admin): list, create, pause/resume, deliveries and redelivery.
import { del, get, openapi, patch, post } from "./api.js";
import { field, h, messageLine, say, when, words } from "./dom.js";

const BASE = "/api/webhook-subscriptions/";

async function eventTypes() {
  const spec = await openapi();
  return spec.components.schemas.CallEvent.properties.event_type.enum;
}

function deliveries(sub, area) {
  const line = messageLine();
  const body = h("tbody");
  const load = async (announce = true) => {
    const page = await get(`${BASE}${sub.id}/deliveries/`, { limit: 50 });
    body.replaceChildren(...page.results.map((d) => h("tr", { "data-delivery": d.id },
      h("td", { text: when(d.created_at) }), h("td", { text: words(d.event_type) }), h("td", { text: d.status }),
      h("td", { class: "n", text: String(d.attempts) }), h("td", { text: d.last_status_code ?? "" }),
      h("td", { text: d.last_error || "" }),
      h("td", null, h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          const again = await post(`${BASE}${sub.id}/deliveries/${d.id}/redeliver/`);
          say(line, `Delivery queued again (${again.status}).`);
          await load(false);
        } catch (error) { say(line, error.message, false); }
      } }, "Redeliver")))));
    if (announce) say(line, `${page.count} deliver${page.count === 1 ? "y" : "ies"}.`);
  };
  area.replaceChildren(h("h3", { text: `Deliveries to ${sub.url}` }), line,
    h("table", { class: "deliveries" }, h("thead", null, h("tr", null,
      ["Created", "Event", "Status", "Attempts", "Last HTTP status", "Last error", ""].map((c) => h("th", { scope: "col", text: c })))), body));
  load().catch((error) => say(line, error.message, false));
}

function createForm(types, reload) {
  const line = messageLine();
  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://crm.example/hooks/calld" });
  const description = h("input", { name: "description" });
  const boxes = types.map((t) => h("label", { class: "inline" }, h("input", { type: "checkbox", name: "event_types", value: t }), words(t)));
  const secretOut = h("p", { class: "secret", hidden: true });
  const form = h("form", { class: "grid-form", "aria-label": "New webhook subscription" },
    field("URL", url), field("Description", description),
    h("fieldset", { class: "choices" }, h("legend", { text: "Events (none: all)" }), boxes),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Subscribe")), line, secretOut);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { url: url.value.trim(), description: description.value.trim(),
      event_types: [...form.querySelectorAll("input[name=event_types]:checked")].map((i) => i.value) };
    try {
      const created = await post(BASE, body);
      say(line, "Subscribed. The signing secret is shown this once:");
      secretOut.textContent = created.secret;
      secretOut.hidden = false;
      reload();
    } catch (error) {
      say(line, error.message, false);
    }
  });
  return form;
}

export function render(root) {
  const status = messageLine();
  const body = h("tbody");
  const area = h("section", { class: "card deliveries-area", "aria-live": "polite" });
  area.hidden = true;
  const reload = async () => {
    try {
      const page = await get(BASE, { limit: 200 });
      body.replaceChildren(...page.results.map((sub) => h("tr", { "data-subscription": sub.id },
        h("td", { text: sub.url }), h("td", { text: sub.event_types.length ? sub.event_types.map(words).join(", ") : "all" }),
        h("td", { text: sub.active ? "active" : "paused" }), h("td", { text: sub.description || "" }),
        h("td", null,
          h("button", { type: "button", class: "secondary", onclick: () => { area.hidden = false; deliveries(sub, area); } }, "Deliveries"),
          h("button", { type: "button", class: "secondary", onclick: async () => {
            try { await patch(`${BASE}${sub.id}/`, { active: !sub.active }); reload(); } catch (error) { say(status, error.message, false); }
          } }, sub.active ? "Pause" : "Resume"),
          h("button", { type: "button", class: "danger", onclick: async () => {
            if (!window.confirm(`Delete the subscription to ${sub.url} and its deliveries?`)) return;
            try { await del(`${BASE}${sub.id}/`); reload(); } catch (error) { say(status, error.message, false); }
          } }, "Delete")))));
      say(status, `${page.count} subscription${page.count === 1 ? "" : "s"}.`);
    } catch (error) {
      say(status, error.message, false);
    }
  };
  root.append(h("h1", { text: "Webhook subscriptions" }), status,
    h("table", { class: "subscriptions" }, h("thead", null, h("tr", null,
      ["URL", "Events", "State", "Description", "Actions"].map((c) => h("th", { scope: "col", text: c })))), body),
    area);
  eventTypes().then((types) => root.append(h("details", { class: "card" },
    h("summary", { text: "New subscription" }), createForm(types, reload))));
  reload();
  return null;
}
