// The console's entry point: sign-in, the scope-aware navigation and the hash router.
import { forgetToken, get, keepToken, token } from "./api.js";
import { clear, h } from "./dom.js";
import { allows } from "./session.js";
import * as live from "./live.js";
import * as calls from "./calls.js";
import * as stats from "./stats.js";
import * as clients from "./clients.js";
import * as sip from "./sip.js";
import * as webhooks from "./webhooks.js";
import * as phone from "./phone.js";

const VIEWS = {
  live: { module: live, scope: "read" },
  calls: { module: calls, scope: "read" },
  stats: { module: stats, scope: "read" },
  clients: { module: clients, scope: "read" },
  sip: { module: sip, scope: "admin" },
  webhooks: { module: webhooks, scope: "admin" },
  phone: { module: phone, scope: "read" },
};

const state = { scope: null, name: null, line: null, cleanup: null };
const $ = (id) => document.getElementById(id);

/** "#/calls/abc?status=ended" → {view: "calls", id: "abc", params: URLSearchParams}. */
export function parseHash(hash) {
  const [path, query] = hash.replace(/^#\/?/, "").split("?");
  const [view, id] = path.split("/");
  return { view: view || "live", id: id || null, params: new URLSearchParams(query || "") };
}

function stopView() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
}

function showSignIn(message) {
  stopView();
  state.scope = null;
  document.body.dataset.scope = "";
  clear($("view"));
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-message").textContent = message || "";
  $("token").focus();
}

async function signIn(candidate) {
  keepToken(candidate);
  try {
    const me = await get("/api/auth/whoami/");
    state.scope = me.scope;
    state.name = me.name;
    state.line = me.sip_configuration_id;
  } catch (error) {
    forgetToken();
    showSignIn(error.status === 401 ? "That token is unknown or revoked." : error.message);
    return;
  }
  document.body.dataset.scope = state.scope;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${state.name} (${state.scope})`;
  for (const link of $("nav").querySelectorAll("a")) {
    link.hidden = !allows(state.scope, link.dataset.scope || "read");
  }
  route();
}

function route() {
  if (!state.scope) return;
  stopView();
  const where = parseHash(location.hash);
  const view = VIEWS[where.view] && allows(state.scope, VIEWS[where.view].scope) ? where.view : "live";
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const root = clear($("view"));
  root.dataset.view = view;
  const context = { scope: state.scope, id: where.id, params: where.params, line: state.line };
  try {
    state.cleanup = VIEWS[view].module.render(root, context) || null;
  } catch (error) {
    root.append(h("p", { class: "message error", role: "alert", text: String(error.message || error) }));
  }
}

function start() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value) signIn(value);
  });
  $("sign-out").addEventListener("click", () => {
    forgetToken();
    showSignIn("Signed out.");
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("calld:unauthorized", () => {
    forgetToken();
    showSignIn("The token is no longer valid: sign in again.");
  });
  const saved = token();
  if (saved) signIn(saved); else showSignIn();
}

start();
