import { h, status } from '../dom.js';
import { count } from '../format.js';

/** One day of the usage history, as /usage/history gives it. */
export interface ChartDay {
  day: string;
  inUse: number;
  owned: number | null;
}
/** What the chart needs of /usage/forecast. */
export interface ChartForecast {
  fit: { slopePerDay: number; intercept: number; origin: string; to: string } | null;
  crossingDate: string | null;
  daysAhead: number | null;
  noForecast: { code: string; message: string } | null;
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 260;
const PAD = { left: 48, right: 16, top: 16, bottom: 36 };
/** A crossing further out than this is said in words, not drawn: it would squash the history to a sliver. */
const DRAW_AHEAD_DAYS = 365;

const dayNum = (day: string) => Math.round(Date.parse(`${day}T00:00:00Z`) / 86_400_000);
const dayText = (n: number) => new Date(n * 86_400_000).toISOString().slice(0, 10);

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The forecast in words: the date the trend passes what is owned, or why there is none. */
export function forecastText(f: ChartForecast | null): string {
  if (!f) return 'No forecast: no day of history in the forecast window yet.';
  if (f.crossingDate) return `Forecast: the trend passes the owned quantity on ${f.crossingDate}${f.daysAhead !== null ? ` (${f.daysAhead <= 0 ? 'already' : `in ${count(f.daysAhead)} day${f.daysAhead === 1 ? '' : 's'}`})` : ''}.`;
  return `No forecast: ${f.noForecast?.message ?? 'not enough history'}.`;
}

/**
 * In use per day as a solid line, owned as a dashed one, the forecast trend dotted up to the
 * crossing date, which is marked; the lines differ in pattern as well as colour, so the chart
 * reads in greyscale. Its text alternative is a summary the image is labelled by, and the
 * days as a table.
 */
export function usageChart(title: string, days: ChartDay[], f: ChartForecast | null, ownedNow: number | null): HTMLElement {
  const forecast = h('p', { id: 'chart-forecast', class: f?.crossingDate ? 'short' : '' }, forecastText(f));
  if (!days.length) {
    return h('div', { class: 'chart', id: 'usage-chart' }, status('No history yet: the collector records each day\'s highest use while it runs.'), forecast);
  }
  const first = dayNum(days[0]!.day);
  const last = dayNum(days[days.length - 1]!.day);
  const cross = f?.crossingDate ? dayNum(f.crossingDate) : null;
  const drawCross = cross !== null && cross - last <= DRAW_AHEAD_DAYS ? cross : null;
  const end = Math.max(last, drawCross ?? last, first + 1);
  const trendAt = (d: number) => (f?.fit ? f.fit.intercept + f.fit.slopePerDay * (d - dayNum(f.fit.origin)) : 0);
  const owneds = days.map((d) => d.owned).filter((o): o is number => o !== null);
  const top = Math.max(1, ...days.map((d) => d.inUse), ...owneds, ownedNow ?? 0, drawCross !== null ? trendAt(drawCross) : 0) * 1.1;
  const x = (d: number) => PAD.left + ((d - first) / (end - first)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const pts = (p: [number, number][]) => p.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');

  const peak = days.reduce((m, d) => Math.max(m, d.inUse), 0);
  const summaryText = `${title}: from ${days[0]!.day} to ${days[days.length - 1]!.day}, in use went from ${count(days[0]!.inUse)} to ${count(days[days.length - 1]!.inUse)} (highest ${count(peak)}); owned ${ownedNow === null ? 'unlimited' : count(ownedNow)}.`;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'usage-svg', role: 'img', 'aria-labelledby': 'chart-summary chart-forecast' });

  for (const v of [0, top / 2 / 1.1, top / 1.1]) {
    const val = Math.round(v);
    chart.append(svg('line', { class: 'chart-grid', x1: PAD.left, x2: W - PAD.right, y1: y(val), y2: y(val) }), svg('text', { class: 'chart-label', x: PAD.left - 6, y: y(val) + 4, 'text-anchor': 'end' }, count(val)));
  }
  chart.append(
    svg('text', { class: 'chart-label', x: x(first), y: H - 12, 'text-anchor': 'start' }, days[0]!.day),
    svg('text', { class: 'chart-label', x: x(last), y: H - 12, 'text-anchor': drawCross !== null && drawCross > last ? 'middle' : 'end' }, days[days.length - 1]!.day),
  );
  // Owned as a step: the day's value holds until the next day's.
  const ownedPts: [number, number][] = [];
  days.forEach((d, i) => {
    if (d.owned === null) return;
    const next = i + 1 < days.length ? dayNum(days[i + 1]!.day) : end;
    ownedPts.push([dayNum(d.day), d.owned], [next, d.owned]);
  });
  if (ownedPts.length) chart.append(svg('polyline', { class: 'chart-owned', points: pts(ownedPts) }));
  if (f?.fit && drawCross !== null) {
    const from = dayNum(f.fit.origin);
    chart.append(svg('polyline', { class: 'chart-trend', points: pts([[from, trendAt(from)], [drawCross, trendAt(drawCross)]]) }));
  }
  chart.append(svg('polyline', { class: 'chart-use', points: pts(days.map((d) => [dayNum(d.day), d.inUse])) }));
  if (drawCross !== null) {
    chart.append(
      svg('line', { class: 'chart-crossing', x1: x(drawCross), x2: x(drawCross), y1: PAD.top, y2: H - PAD.bottom }),
      svg('text', { class: 'chart-label chart-crossing-label', x: x(drawCross) - 4, y: PAD.top + 10, 'text-anchor': 'end' }, `shortage from ${dayText(drawCross)}`),
    );
  }

  const legend = h('ul', { class: 'chart-legend', 'aria-hidden': 'true' },
    h('li', { class: 'legend-use' }, 'In use (the day\'s highest)'),
    h('li', { class: 'legend-owned' }, 'Owned'),
    f?.fit && drawCross !== null ? h('li', { class: 'legend-trend' }, 'Trend, to the forecast crossing') : null,
  );
  const table = h('details', { class: 'chart-data' },
    h('summary', {}, 'The days as a table'),
    h('table', { id: 'history-table' },
      h('caption', { class: 'visually-hidden' }, `${title}, per day`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), h('th', { scope: 'col', class: 'num' }, 'In use'), h('th', { scope: 'col', class: 'num' }, 'Owned'))),
      h('tbody', {}, days.map((d) => h('tr', {}, h('th', { scope: 'row' }, d.day), h('td', { class: 'num' }, count(d.inUse)), h('td', { class: 'num' }, d.owned === null ? 'unlimited' : count(d.owned))))),
    ),
  );
  return h('div', { class: 'chart', id: 'usage-chart' }, h('p', { id: 'chart-summary' }, summaryText), forecast, chart, legend, table);
}
