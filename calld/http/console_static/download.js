// Files the API answers (CSV exports and reports), fetched with the token and saved from a blob: a plain
// link cannot send the Authorization header.
import { queryString, token } from "./api.js";
import { h, say } from "./dom.js";

/** A button that downloads GET ``path`` + ``query`` as ``name`` (a failure is said on ``status``). */
export function downloadButton(label, path, query, status, name) {
  return h("button", { type: "button", class: "secondary csv", onclick: async () => {
    try {
      const response = await fetch(path + queryString(query), { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status}: the download failed`);
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: name });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (error) {
      say(status, error.message, false);
    }
  } }, label);
}
