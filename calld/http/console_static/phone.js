// The Phone panel: a browser softphone (JsSIP, vendored: jssip-VENDORED.md) built from the line's
// webrtc_config. It registers over the line's WebSocket, calls an extension, answers an incoming call;
// hold, transfer, recording and hang-up go through calld's REST API like the live board's buttons.
// A softphone token (calld token create --scope softphone --sip-configuration <id>) gets its line's
// SIP password from calld; any other token must type it.
import { get } from "./api.js";
import { callControls } from "./actions.js";
import { actionsAllowed } from "./session.js";
import { field, h, messageLine, say } from "./dom.js";
import { CONNECTED_STATUSES } from "./vocabulary.js";

const JSSIP = "/console/jssip-3.13.8.min.js";
const FIND_CALL_MS = 500;
const FIND_CALL_TRIES = 40;

/** JsSIP, loaded on first use (a classic script: it defines window.JsSIP). */
function loadJsSIP() {
  if (window.JsSIP) return Promise.resolve(window.JsSIP);
  return new Promise((resolve, reject) => {
    const script = h("script", { src: JSSIP });
    script.addEventListener("load", () => resolve(window.JsSIP));
    script.addEventListener("error", () => reject(new Error("could not load the SIP library")));
    document.head.append(script);
  });
}

/** The host of "sip:2001@pbx.example.com". */
function sipHost(uri) {
  return uri.replace(/^sips?:/, "").split("@").pop();
}

/** Packets both ways and the ICE candidate type in use, from the peer connection's statistics. */
async function mediaStats(pc) {
  const out = { sent: 0, received: 0, candidate: "" };
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((report) => {
    if (report.type === "outbound-rtp" && report.kind === "audio") out.sent += report.packetsSent || 0;
    if (report.type === "inbound-rtp" && report.kind === "audio") out.received += report.packetsReceived || 0;
    if (report.type === "transport" && report.selectedCandidatePairId) pairId = report.selectedCandidatePairId;
  });
  const pair = pairId && stats.get(pairId);
  const local = pair && stats.get(pair.localCandidateId);
  if (local) out.candidate = local.candidateType;
  return out;
}

export function render(root, ctx) {
  const state = { ua: null, session: null, settings: null, statsTimer: null, findTimer: null, stopped: false };
  const lineInput = h("input", { id: "phone-line", name: "line", required: true, spellcheck: "false",
    placeholder: "SIP configuration id", value: ctx.line || "" });
  const password = h("input", { id: "phone-password", name: "password", type: "password", autocomplete: "off",
    placeholder: ctx.line ? "given by calld for this token's line" : "the line's SIP password" });
  const relay = h("input", { id: "phone-relay", type: "checkbox" });
  const register = h("button", { type: "submit", id: "phone-register" }, "Register");
  const unregister = h("button", { type: "button", id: "phone-unregister", class: "secondary", disabled: true,
    onclick: () => stopUa("Unregistered.") }, "Unregister");
  const status = h("p", { id: "phone-status", class: "message", role: "status", "aria-live": "polite",
    "data-state": "idle", text: "Not registered." });
  const setup = h("form", { class: "grid-form", "aria-label": "Softphone line" },
    field("Line", lineInput), field("SIP password", password),
    h("label", { class: "inline" }, relay, " relay only (all media through the TURN server)"),
    h("div", { class: "buttons" }, register, unregister), status);

  const target = h("input", { id: "phone-dial", name: "target", inputmode: "tel", required: true,
    placeholder: "extension or number" });
  const dial = h("button", { type: "submit", id: "phone-call", disabled: true }, "Call");
  const dialForm = h("form", { class: "inline-form", "aria-label": "Call from the softphone" },
    h("label", { for: "phone-dial", text: "Call" }), target, dial);

  const incomingText = h("span", { class: "who" });
  const incoming = h("div", { id: "phone-incoming", class: "incoming", hidden: true }, incomingText,
    h("button", { type: "button", id: "phone-answer", onclick: () => answer() }, "Answer"),
    h("button", { type: "button", id: "phone-decline", class: "danger",
      onclick: () => state.session?.terminate({ status_code: 486 }) }, "Decline"));
  const callState = h("p", { id: "phone-call-state", class: "message", role: "status", "aria-live": "polite",
    "data-state": "none", text: "No call." });
  const media = h("p", { id: "phone-media", class: "muted", "data-sent": "0", "data-received": "0",
    "data-candidate": "" });
  const iceProblem = h("p", { id: "phone-ice", class: "message error", role: "alert" });
  const hangup = h("button", { type: "button", id: "phone-hangup", class: "danger", disabled: true,
    onclick: () => state.session?.terminate() }, "Hang up here");
  const controlsLine = messageLine();
  const controls = h("div", { id: "phone-controls" });
  const audio = h("audio", { id: "phone-audio", autoplay: true });

  root.append(h("h1", { text: "Phone" }), setup, dialForm, incoming, callState, media, iceProblem,
    h("div", { class: "buttons" }, hangup), controls, controlsLine, audio);

  function setCall(stateName, text, ok = true) {
    callState.dataset.state = stateName;
    say(callState, text, ok);
  }

  function stopUa(text) {
    endSessionView();
    if (state.ua) {
      state.ua.removeAllListeners();
      state.ua.stop();
    }
    state.ua = null;
    dial.disabled = true;
    unregister.disabled = true;
    register.disabled = false;
    status.dataset.state = "unregistered";
    say(status, text);
  }

  function endSessionView() {
    clearInterval(state.statsTimer);
    clearTimeout(state.findTimer);
    state.statsTimer = null;
    state.session = null;
    incoming.hidden = true;
    hangup.disabled = true;
    controls.replaceChildren();
    delete controls.dataset.call;
    delete controls.dataset.shown;
  }

  setup.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.ua) stopUa("Registering again…");
    register.disabled = true;
    status.dataset.state = "connecting";
    say(status, "Connecting…");
    try {
      const JsSIP = await loadJsSIP();
      const settings = await get(`/api/sip-configurations/${encodeURIComponent(lineInput.value.trim())}/webrtc_config/`);
      const secret = settings.password ?? password.value;
      if (!secret) throw new Error("this token is given no SIP password for the line: type it");
      state.settings = settings;
      const ua = new JsSIP.UA({
        sockets: settings.ws_servers.map((url) => new JsSIP.WebSocketInterface(url)),
        uri: settings.uri,
        password: secret,
        authorization_user: settings.authorization_user,
        display_name: settings.display_name,
        register: settings.register,
        session_timers: false,
      });
      state.ua = ua;
      ua.on("registered", () => {
        status.dataset.state = "registered";
        say(status, `Registered as ${settings.uri} through ${settings.ws_servers[0]}.`);
        dial.disabled = false;
        unregister.disabled = false;
      });
      ua.on("registrationFailed", (e) => {
        status.dataset.state = "failed";
        say(status, `Registration failed: ${e.cause}.`, false);
        register.disabled = false;
      });
      ua.on("disconnected", () => {
        if (status.dataset.state === "connecting") {
          status.dataset.state = "failed";
          say(status, `Could not reach ${settings.ws_servers[0]}.`, false);
          register.disabled = false;
        }
      });
      ua.on("newRTCSession", (e) => adopt(e.session, e.originator === "remote"));
      ua.start();
    } catch (error) {
      status.dataset.state = "failed";
      say(status, `Register: ${error.message}`, false);
      register.disabled = false;
    }
  });

  function callOptions() {
    return {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: state.settings.ice_servers, iceTransportPolicy: relay.checked ? "relay" : "all" },
    };
  }

  dialForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.ua || state.session) return;
    const to = target.value.trim();
    setCall("calling", `Calling ${to}…`);
    iceProblem.textContent = "";
    state.ua.call(`sip:${to}@${sipHost(state.settings.uri)}`, callOptions());
  });

  function answer() {
    if (!state.session) return;
    incoming.hidden = true;
    state.session.answer(callOptions());
  }

  function watchPeer(pc) {
    pc.addEventListener("track", (event) => { audio.srcObject = event.streams[0]; });
    pc.addEventListener("icecandidateerror", (event) => {
      // A TURN server refusing the credentials answers 401: say so rather than fail silently.
      if (event.url && String(event.url).startsWith("turn")) {
        iceProblem.dataset.code = String(event.errorCode);
        iceProblem.textContent = `TURN ${event.url}: ${event.errorCode} ${event.errorText}`;
      }
    });
  }

  function adopt(session, remote) {
    if (state.session) {
      session.terminate({ status_code: 486 });
      return;
    }
    state.session = session;
    hangup.disabled = false;
    if (session.connection) watchPeer(session.connection);
    session.on("peerconnection", (e) => watchPeer(e.peerconnection));
    if (remote) {
      const from = session.remote_identity?.uri?.user || "unknown";
      incomingText.textContent = `Incoming call from ${from} `;
      incoming.hidden = false;
      setCall("incoming", `Incoming call from ${from}.`);
    }
    session.on("progress", () => setCall("ringing", "Ringing…"));
    session.on("confirmed", () => {
      setCall("confirmed", "In call.");
      state.statsTimer = setInterval(() => showStats(session), 1000);
      findCall(0);
    });
    session.on("ended", (e) => {
      setCall("ended", `Call ended (${e.originator === "local" ? "here" : "by the other side"}: ${e.cause}).`);
      endSessionView();
    });
    session.on("failed", (e) => {
      setCall("failed", `Call failed: ${e.cause}.`, false);
      endSessionView();
    });
  }

  async function showStats(session) {
    if (!session.connection || state.stopped) return;
    const stats = await mediaStats(session.connection);
    media.dataset.sent = String(stats.sent);
    media.dataset.received = String(stats.received);
    media.dataset.candidate = stats.candidate;
    media.textContent = `Audio: ${stats.sent} packets sent, ${stats.received} received` +
      (stats.candidate ? `; ICE: ${stats.candidate}` : "");
  }

  // The call as calld logged it: its REST controls act on the switch, like the live board's. It is
  // read again every second while the call lasts, so the buttons follow what the switch confirmed.
  function showControls(call) {
    const shown = controls.dataset.shown;
    const now = `${call.status}/${call.is_recording}`;
    if (shown === now && controls.dataset.call === call.id) return;
    controls.dataset.call = call.id;
    controls.dataset.shown = now;
    controls.replaceChildren(callControls(call, controlsLine, showControls));
  }

  async function findCall(tries) {
    if (!state.session || state.stopped || !actionsAllowed(ctx.scope)) return;
    const user = state.settings.authorization_user;
    let next = tries + 1;
    try {
      if (controls.dataset.call) {
        showControls(await get(`/api/call-logs/${controls.dataset.call}/`));
        next = 0;  // found: keep following it while the call lasts
      } else {
        const page = await get("/api/call-logs/", { number: user, status: CONNECTED_STATUSES.join(","), limit: 5 });
        const call = page.results.find((c) => c.caller_number === user || c.recipient_number === user);
        if (call) {
          showControls(call);
          next = 0;
        }
      }
    } catch (error) {
      say(controlsLine, `Finding the call in calld: ${error.message}`, false);
    }
    if (next <= FIND_CALL_TRIES) state.findTimer = setTimeout(() => findCall(next), FIND_CALL_MS * 2);
  }

  return () => {
    state.stopped = true;
    if (state.ua) stopUa("Closed.");
  };
}
