// Statistics: today/week/month cards (GET /api/call-logs/statistics/) and charts of calls per hour
// and per day with answer rate and average talk time, from the statistics reports (interval=hour|day in
// this browser's time zone): the server's rollup, whatever the number of calls.
import { get } from "./api.js";
import { barChart, lineChart } from "./chart.js";
import { duration, h, messageLine, say } from "./dom.js";

const STATISTICS = "/api/call-logs/statistics/";
const PERIODS = [["today", "Today"], ["week", "This week"], ["month", "This month"]];
const DAYS = 30;

function card(title, stats) {
  const rate = stats.total_calls ? `${Math.round(stats.answer_rate)} %` : "—";
  const rows = [
    ["Calls", stats.total_calls], ["Answered", stats.answered_calls], ["Missed", stats.missed_calls],
    ["Inbound", stats.inbound_calls], ["Outbound", stats.outbound_calls], ["Answer rate", rate],
    ["Average talk time", duration(stats.average_duration_seconds) || "—"],
  ];
  return h("section", { class: "card stat", "data-period": stats.period },
    h("h2", { text: title }),
    h("p", { class: "big", text: String(stats.total_calls) }),
    h("dl", { class: "facts" }, rows.slice(1).map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })])));
}

/** A local calendar date as the reports read it (YYYY-MM-DD: that day's midnight in ``timezone``). */
function dayKey(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

/** A report's series as chart data: one label per bucket (its local hour, or month/day). */
export function seriesData(series, mode) {
  const label = (row) => {
    const start = new Date(row.start);
    return mode === "hour" ? String(start.getHours()).padStart(2, "0") : `${start.getMonth() + 1}/${start.getDate()}`;
  };
  return {
    labels: series.map(label),
    answered: series.map((row) => row.answered_calls),
    unanswered: series.map((row) => row.total_calls - row.answered_calls),
    answerRate: series.map((row) => (row.total_calls ? row.answer_rate : null)),
    averageTalk: series.map((row) => row.average_talk_seconds ?? null),
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
    const periods = await Promise.all(PERIODS.map(([period]) => get(STATISTICS, { period })));
    cards.replaceChildren(...periods.map((stats, i) => card(PERIODS[i][1], stats)));
    const now = new Date();
    const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const tomorrow = dayKey(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1));
    const since = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (DAYS - 1));
    const [hourly, daily] = await Promise.all([
      get(STATISTICS, { from: dayKey(now), until: tomorrow, interval: "hour", timezone }),
      get(STATISTICS, { from: dayKey(since), until: tomorrow, interval: "day", timezone }),
    ]);
    chartArea.replaceChildren(
      h("h2", { text: "Today, per hour" }), charts("Today per hour", seriesData(hourly.series, "hour"), 2),
      h("h2", { text: `The last ${DAYS} days, per day` }), charts("Per day", seriesData(daily.series, "day"), 3));
    say(status, `${daily.totals.total_calls} calls since ${since.toLocaleDateString()}, in ${timezone} time.`);
  })().catch((error) => say(status, error.message, false));
  return null;
}
