// Small SVG charts drawn with DOM calls (no library, no inline style): bars and a line.
import { h, s } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 12, right: 12, bottom: 34, left: 46 };

function scale(max) {
  const top = max > 0 ? niceCeiling(max) : 1;
  return { top, y: (v) => PAD.top + (HEIGHT - PAD.top - PAD.bottom) * (1 - v / top) };
}

export function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function frame(title, id, yTop, yFormat, labels, every) {
  const innerWidth = WIDTH - PAD.left - PAD.right;
  const band = innerWidth / Math.max(labels.length, 1);
  const { y } = scale(yTop);
  const top = scale(yTop).top;
  const grid = [0, 0.5, 1].map((f) => s("g", { class: "tick" },
    s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(top * f), y2: y(top * f) }),
    s("text", { x: PAD.left - 6, y: y(top * f) + 4, "text-anchor": "end", text: yFormat(top * f) })));
  const xLabels = labels.map((label, i) => (i % every === 0
    ? s("text", { class: "x", x: PAD.left + band * (i + 0.5), y: HEIGHT - PAD.bottom + 16, "text-anchor": "middle", text: label })
    : null));
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": id, class: "chart" },
    s("title", { id, text: title }), grid, xLabels);
  return { svg, band, y };
}

/** Stacked bars: series = [{name, values, className}]. */
export function barChart({ title, labels, series, every = 1, yFormat = (v) => String(Math.round(v)) }) {
  const totals = labels.map((_, i) => series.reduce((sum, one) => sum + (one.values[i] || 0), 0));
  const id = `chart-${Math.random().toString(36).slice(2, 9)}`;
  const { svg, band, y } = frame(title, id, Math.max(...totals, 0), yFormat, labels, every);
  labels.forEach((label, i) => {
    let base = 0;
    for (const one of series) {
      const value = one.values[i] || 0;
      if (value > 0) {
        svg.append(s("rect", { class: `bar ${one.className}`, x: PAD.left + band * i + band * 0.15, width: band * 0.7,
          y: y(base + value), height: y(base) - y(base + value) },
        s("title", { text: `${label}: ${value} ${one.name}` })));
      }
      base += value;
    }
  });
  return figure(title, svg, labels, series);
}

/** One line (null values break it), e.g. answer rate or average talk time per bucket. */
export function lineChart({ title, labels, values, name, every = 1, yFormat = (v) => String(Math.round(v)), yMax }) {
  const id = `chart-${Math.random().toString(36).slice(2, 9)}`;
  const top = yMax ?? Math.max(...values.filter((v) => v !== null), 0);
  const { svg, band, y } = frame(title, id, top, yFormat, labels, every);
  let path = "";
  values.forEach((value, i) => {
    if (value === null) return;
    const x = PAD.left + band * (i + 0.5);
    path += `${path && values[i - 1] !== null ? "L" : "M"}${x.toFixed(1)},${y(value).toFixed(1)}`;
    svg.append(s("circle", { class: "point", cx: x, cy: y(value), r: 3 }, s("title", { text: `${labels[i]}: ${yFormat(value)}` })));
  });
  if (path) svg.prepend(s("path", { class: "line", d: path }));
  return figure(title, svg, labels, [{ name, values: values.map((v) => (v === null ? "" : yFormat(v))) }]);
}

function figure(title, svg, labels, series) {
  return h("figure", { class: "chart-figure" }, h("figcaption", { text: title }), svg,
    h("details", null, h("summary", { text: "Data" }),
      h("table", { class: "data" },
        h("thead", null, h("tr", null, h("th", { scope: "col", text: "" }), series.map((one) => h("th", { scope: "col", text: one.name })))),
        h("tbody", null, labels.map((label, i) => h("tr", null, h("th", { scope: "row", text: label }),
          series.map((one) => h("td", { text: one.values[i] }))))))));
}
