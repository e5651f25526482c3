// Statistics: today/week/month cards (GET /api/call-logs/statistics/) and charts of calls per hour
// and per day with answer rate and average talk time, from the statistics reports (interval=hour|day in
// this browser's time zone): the server's rollup, whatever the number of calls.
import { get, openapi } from "./api.js";
import { clientDirectory } from "./calls.js";
import { barChart, lineChart } from "./chart.js";
import { downloadButton } from "./download.js";
import { duration, field, h, messageLine, say, words } from "./dom.js";

const STATISTICS = "/api/call-logs/statistics/";
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
    averageTalk: series.map((row) => (row.answered_calls ? row.average_talk_seconds : null)),
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

export function render(root, ctx) {
  const status = messageLine();
  const cards = h("div", { class: "cards" });
  const chartArea = h("div", { class: "chart-area" });
  const reportArea = h("section", { class: "report", "aria-label": "Report" });
  root.append(h("h1", { text: "Statistics" }), status, cards, chartArea, reportArea);
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
  renderReport(reportArea, ctx?.params || new URLSearchParams()).catch((error) => say(status, error.message, false));
  return null;
}

// --- reports ------------------------------------------------------------------------------------

const REPORT_PARAMS = ["from", "until", "interval", "group_by", "service_level_seconds"];
// (heading, the series row's value as text)
const REPORT_COLUMNS = [
  ["Calls", (r) => String(r.total_calls)],
  ["Answered", (r) => String(r.answered_calls)],
  ["Missed", (r) => String(r.missed_calls)],
  ["Answer rate", (r) => percent(r.answer_rate, r.total_calls)],
  ["Service level", (r) => percent(r.service_level, r.total_calls)],
  ["Average talk", (r) => (r.answered_calls ? duration(r.average_talk_seconds) || "—" : "—")],
  ["Average ring", (r) => (r.answered_calls ? duration(r.average_ring_seconds) || "—" : "—")],
  ["Abandon rate", (r) => percent(r.abandon_rate, r.inbound_calls)],
];

function percent(value, over) {
  return over && value !== null && value !== undefined ? `${Math.round(value * 10) / 10} %` : "—";
}

/** The report's parameters as the statistics endpoint documents them (choices read from OpenAPI). */
async function reportParameters() {
  const spec = await openapi();
  const params = spec.paths[STATISTICS]?.get?.parameters || [];
  return new Map(params.filter((p) => p.in === "query").map((p) => [p.name, p.schema || {}]));
}

function choiceField(name, schema, chosen, none) {
  const values = (schema.enum || []).filter((v) => v !== null);
  const select = h("select", { name, "data-report": name },
    none ? h("option", { value: "", text: none }) : null,
    values.map((v) => h("option", { value: String(v), text: words(String(v)), selected: String(chosen ?? "") === String(v) })));
  return field(words(name), select);
}

/** A report over any range by interval and group (GET statistics/ with from/until...): a form kept in the
 * page's address (#/stats?from=...), a table of its series with the totals, and its CSV. */
async function renderReport(area, params) {
  const schemas = await reportParameters();
  const now = new Date();
  const first = new Date(now.getFullYear(), now.getMonth(), 1);
  const form = h("form", { class: "filters report-form", "aria-label": "Report" },
    field("from", h("input", { type: "date", name: "from", value: params.get("from") || dayKey(first), required: true })),
    field("until", h("input", { type: "date", name: "until", value: params.get("until") || dayKey(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1)), required: true })),
    choiceField("interval", schemas.get("interval") || {}, params.get("interval") || "day", "whole range"),
    choiceField("group_by", schemas.get("group_by") || {}, params.get("group_by"), "no grouping"),
    choiceField("service_level_seconds", schemas.get("service_level_seconds") || {}, params.get("service_level_seconds") || "20"),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Show report")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of REPORT_PARAMS) {
      const value = form.elements.namedItem(name)?.value;
      if (value) next.set(name, value);
    }
    location.hash = `#/stats?${next}`;
  });
  const status = messageLine();
  area.replaceChildren(h("h2", { text: "Report" }), form, status);
  if (!params.get("from")) return;
  const query = { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone };
  for (const name of REPORT_PARAMS) if (params.get(name)) query[name] = params.get(name);
  const [report, clients] = await Promise.all([get(STATISTICS, query), query.group_by === "client" ? clientDirectory() : null]);
  const groupName = (group) => (group === null ? "—" : clients?.get(group) || words(group));
  const label = (row) => (report.interval ? bucketLabel(row.start, report.interval) : "whole range");
  const grouped = Boolean(report.group_by);
  const head = h("tr", null, h("th", { text: report.interval ? words(report.interval) : "range" }),
    grouped ? h("th", { text: words(report.group_by) }) : null, REPORT_COLUMNS.map(([name]) => h("th", { class: "n", text: name })));
  const line = (row, first, group) => h("tr", null, h("td", { text: first }), grouped ? h("td", { text: group }) : null,
    REPORT_COLUMNS.map(([, value]) => h("td", { class: "n", text: value(row) })));
  const rows = report.series.map((row) => line(row, label(row), groupName(row.group)));
  area.append(
    h("table", { class: "report-table" }, h("thead", null, head), h("tbody", null, rows),
      h("tfoot", null, line(report.totals, "Total", ""))),
    downloadButton("Download report CSV", STATISTICS, { ...query, format: "csv" }, status, "calld-report.csv"));
  say(status, `${report.totals.total_calls} calls from ${new Date(report.from).toLocaleString()} to ${new Date(report.until).toLocaleString()} (${report.timezone}).`);
}

function bucketLabel(iso, interval) {
  const date = new Date(iso);
  if (interval === "hour") return date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  if (interval === "month") return date.toLocaleDateString([], { year: "numeric", month: "long" });
  return date.toLocaleDateString();
}
