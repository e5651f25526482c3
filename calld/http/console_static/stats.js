// Statistics: today/week/month cards (GET /api/call-logs/statistics/) and charts of calls per hour
// and per day with answer rate and average talk time, bucketed here from the call list.
import { allPages, get } from "./api.js";
import { barChart, lineChart } from "./chart.js";
import { duration, h, messageLine, say } from "./dom.js";

const PERIODS = [["today", "Today"], ["week", "This week"], ["month", "This month"]];
const DAYS = 30;

// The period answer is the seed's, unchanged: every call is inbound, outbound or internal.
function card(title, stats) {
  const rate = stats.total_calls ? `${Math.round(stats.answer_rate)} %` : "—";
  const rows = [
    ["Calls", stats.total_calls], ["Answered", stats.answered_calls], ["Missed", stats.missed_calls],
    ["Inbound", stats.inbound_calls], ["Outbound", stats.outbound_calls], ["Internal", stats.total_calls - stats.inbound_calls - stats.outbound_calls], ["Answer rate", rate],
    ["Average talk time", duration(stats.average_duration_seconds) || "—"],
  ];
  return h("section", { class: "card stat", "data-period": stats.period },
    h("h2", { text: title }),
    h("p", { class: "big", text: String(stats.total_calls) }),
    h("dl", { class: "facts" }, rows.slice(1).map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })])));
}

function dayKey(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

/** Calls grouped into buckets: per hour of ``day`` (24) or per day of the ``days`` days ending today. */
export function buckets(calls, { mode, now = new Date(), days = DAYS }) {
  const labels = [];
  const index = new Map();
  if (mode === "hour") {
    for (let hour = 0; hour < 24; hour++) { labels.push(String(hour).padStart(2, "0")); }
  } else {
    for (let back = days - 1; back >= 0; back--) {
      const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - back);
      index.set(dayKey(d), labels.length);
      labels.push(`${d.getMonth() + 1}/${d.getDate()}`);
    }
  }
  const total = labels.map(() => 0);
  const answered = labels.map(() => 0);
  const talk = labels.map(() => 0);
  for (const call of calls) {
    const started = new Date(call.started_at);
    let i;
    if (mode === "hour") i = dayKey(started) === dayKey(now) ? started.getHours() : undefined;
    else i = index.get(dayKey(started));
    if (i === undefined) continue;
    total[i] += 1;
    if (call.answered_at) {
      answered[i] += 1;
      talk[i] += call.duration_seconds || 0;
    }
  }
  return {
    labels,
    answered,
    unanswered: total.map((t, i) => t - answered[i]),
    answerRate: total.map((t, i) => (t ? (100 * answered[i]) / t : null)),
    averageTalk: answered.map((a, i) => (a ? talk[i] / a : null)),
  };
}

function charts(title, data, every) {
  return h("div", { class: "charts" },
    barChart({ title: `${title}: calls`, labels: data.labels, every,
      series: [{ name: "answered", values: data.answered, className: "answered" },
        { name: "not answered", values: data.unanswered, className: "unanswered" }] }),
    lineChart({ title: `${title}: answer rate`, labels: data.labels, every, name: "answer rate",
      values: data.answerRate, yMax: 100, yFormat: (v) => `${Math.round(v)} %` }),
    lineChart({ title: `${title}: average talk time`, labels: data.labels, every, name: "average talk time",
      values: data.averageTalk, yFormat: (v) => duration(v) }));
}

export function render(root) {
  const status = messageLine();
  const cards = h("div", { class: "cards" });
  const chartArea = h("div", { class: "chart-area" });
  root.append(h("h1", { text: "Statistics" }), status, cards, chartArea);
  (async () => {
    const periods = await Promise.all(PERIODS.map(([period]) => get("/api/call-logs/statistics/", { period })));
    cards.replaceChildren(...periods.map((stats, i) => card(PERIODS[i][1], stats)));
    const now = new Date();
    const since = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (DAYS - 1));
    const { rows, count } = await allPages("/api/call-logs/", { started_after: since.toISOString(), ordering: "started_at" });
    chartArea.replaceChildren(
      h("h2", { text: "Today, per hour" }), charts("Today per hour", buckets(rows, { mode: "hour", now }), 2),
      h("h2", { text: `The last ${DAYS} days, per day` }), charts("Per day", buckets(rows, { mode: "day", now }), 3));
    const note = rows.length < count ? ` (charts from the first ${rows.length} of ${count} calls)` : "";
    say(status, `Charts from ${rows.length} calls since ${since.toLocaleDateString()}, in this browser's time zone${note}.`);
  })().catch((error) => say(status, error.message, false));
  return null;
}
