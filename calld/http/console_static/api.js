// Talking to calld's public API with the signed-in token (kept in sessionStorage, never in a URL).

const TOKEN_KEY = "calld.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

const STATUS_WORDS = {
  400: "the request was malformed",
  401: "not signed in, or the token was revoked",
  403: "this token's scope does not allow it",
  404: "not found",
  405: "not allowed on this path",
  409: "refused in the current state",
  413: "too large",
  422: "invalid input",
  429: "too many requests",
  500: "calld failed",
  502: "the switch is unavailable",
  503: "calld is not ready",
};

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  const head = `${status}: ${STATUS_WORDS[status] || "request failed"}`;
  if (!body || typeof body !== "object") return head;
  const parts = [];
  if (body.error) parts.push(String(body.error));
  for (const [name, problem] of Object.entries(body.detail || {})) parts.push(`${name}: ${problem}`);
  if (body.current_status) parts.push(`the call is ${String(body.current_status).replaceAll("_", " ")}`);
  return parts.length ? `${head} — ${parts.join("; ")}` : head;
}

/** Query string from an object (arrays repeat the parameter; empty values are left out). */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") search.append(key, String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** One request; resolves to the JSON body (null for 204), rejects with ApiError. */
export async function request(method, path, { query, body } = {}) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path + queryString(query), init);
  let data = null;
  if (response.status !== 204) {
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  }
  if (!response.ok) {
    if (response.status === 401 && current) window.dispatchEvent(new CustomEvent("calld:unauthorized"));
    throw new ApiError(response.status, data);
  }
  const date = response.headers.get("Date");
  if (date) serverClock.observe(Date.parse(date));
  return data;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body) => request("POST", path, { body });
export const patch = (path, body) => request("PATCH", path, { body });
export const del = (path) => request("DELETE", path);

/** The server's clock, as far as its Date header (1 s resolution) tells: timers run on it. */
export const serverClock = {
  offset: 0,
  observe(serverNow) {
    if (Number.isNaN(serverNow)) return;
    const offset = serverNow - Date.now();
    // Within the header's resolution the browser's own clock is the better one.
    this.offset = Math.abs(offset) > 2000 ? offset : 0;
  },
  now() {
    return Date.now() + this.offset;
  },
};

let spec = null;
/** The OpenAPI document (public), read once: filters and vocabularies come from it. */
export async function openapi() {
  if (!spec) spec = await get("/api/openapi.json");
  return spec;
}

/** Every page of a list endpoint, up to maxPages pages of 200. */
export async function allPages(path, query, maxPages = 25) {
  const rows = [];
  let count = 0;
  for (let page = 0; page < maxPages; page++) {
    const answer = await get(path, { ...query, limit: 200, offset: page * 200 });
    count = answer.count;
    rows.push(...answer.results);
    if (!answer.next) break;
  }
  return { rows, count };
}

export function liveSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket handshake: /api/ws takes the documented query parameter.
  return `${scheme}//${location.host}/api/ws?access_token=${encodeURIComponent(token() || "")}`;
}
