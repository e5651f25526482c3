// Call control (write scope): hold/resume, transfer, record, hang up; each shows calld's answer.
import { post } from "./api.js";
import { h, say, words } from "./dom.js";
import { CONNECTED_STATUSES } from "./vocabulary.js";

const CALLS = "/api/call-logs/";

/** The controls for one live call; ``onDone(call)`` gets the call calld answered. */
export function callControls(call, line, onDone) {
  const run = (label, path, body) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    say(line, `${label}…`);
    try {
      const answer = await post(`${CALLS}${call.id}/${path}/`, body ? body() : undefined);
      const changed = answer.status !== call.status || answer.is_recording !== call.is_recording
        || answer.transfer_target !== call.transfer_target;
      // With a switch, calld asks it and its events (pushed to the board) confirm the change.
      say(line, changed ? `${label}: done — the call is ${words(answer.status)}.`
        : `${label}: sent to the switch — the board shows the change when the switch confirms it.`);
      onDone?.(answer);
    } catch (error) {
      say(line, `${label}: ${error.message}`, false);
    } finally {
      button.disabled = false;
    }
  };
  const connected = CONNECTED_STATUSES.includes(call.status);
  const held = call.status === "on_hold";
  const target = h("input", { type: "text", inputmode: "tel", placeholder: "number or extension",
    "aria-label": `Transfer target for the call with ${call.caller_number}`, class: "target", size: 14 });
  const attended = h("input", { type: "checkbox", "aria-label": "Attended transfer" });
  return h("div", { class: "controls" },
    h("button", { type: "button", class: "hold", disabled: !connected,
      onclick: run(held ? "Resume" : "Hold", "toggle_hold") }, held ? "Resume" : "Hold"),
    h("span", { class: "transfer" }, target,
      h("label", { class: "inline" }, attended, "attended"),
      h("button", { type: "button", class: "transfer-button", disabled: !connected,
        onclick: run("Transfer", "transfer_call", () => {
          const body = { transfer_to: target.value.trim() };
          if (attended.checked) body.attended = true;
          return body;
        }) }, "Transfer")),
    call.is_recording
      ? h("button", { type: "button", class: "record", onclick: run("Stop recording", "stop_recording") }, "Stop recording")
      : h("button", { type: "button", class: "record", disabled: !connected,
        onclick: run("Record", "start_recording") }, "Record"),
    h("button", { type: "button", class: "hangup danger", onclick: run("Hang up", "end_call") }, "Hang up"),
  );
}

/** "Place a call" (POST /api/call-logs/initiate_call/). */
export function placeCallForm(onPlaced) {
  const line = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const recipient = h("input", { id: "place-to", name: "recipient_number", required: true, inputmode: "tel" });
  const caller = h("input", { id: "place-from", name: "caller_number", inputmode: "tel",
    placeholder: "default SIP line" });
  const form = h("form", { class: "inline-form", "aria-label": "Place a call" },
    h("label", { for: "place-to", text: "Call" }), recipient,
    h("label", { for: "place-from", text: "from" }), caller,
    h("button", { type: "submit" }, "Place call"), line);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { recipient_number: recipient.value.trim() };
    if (caller.value.trim()) body.caller_number = caller.value.trim();
    say(line, "Placing the call…");
    try {
      const call = await post(`${CALLS}initiate_call/`, body);
      say(line, `Placed: the call to ${call.recipient_number} is ${words(call.status)}.`);
      onPlaced?.(call);
    } catch (error) {
      say(line, `Place call: ${error.message}`, false);
    }
  });
  return form;
}
